package patronkittest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// The builders below write through the kit's services, as the host's
// code would, and end the test (t.Fatal) when the service refuses.

// DefaultLibrary is the library Item puts items in unless told otherwise.
const DefaultLibrary = "MAIN"

// DefaultRule is the rule of the terms of use Loan sets when an
// institution has none: everyone borrows everything for three weeks,
// renews twice and may place requests.
var DefaultRule = circulation.Rule{Name: "patronkittest: everyone, 3 weeks", Terms: circulation.Terms{
	LoanPeriod: 3, LoanPeriodUnit: circulation.Weeks, Renewals: 2, RequestsAllowed: true,
}}

// User creates a user of inst and returns it as stored: an active public
// user named "Test Patron N", primary_id "patron-N" (N new in the kit),
// then as opts change it (e.g. func(u *patron.User) { u.UserGroup =
// "FACULTY" }).
func User(t testing.TB, k *Kit, inst string, opts ...func(*patron.User)) *patron.User {
	t.Helper()
	n := k.next()
	u := &patron.User{PrimaryID: fmt.Sprintf("patron-%d", n), FirstName: "Test", LastName: fmt.Sprintf("Patron %d", n)}
	for _, o := range opts {
		o(u)
	}
	out, err := k.Patrons.Create(context.Background(), inst, u)
	if err != nil {
		t.Fatalf("patronkittest: creating user %s: %v", u.PrimaryID, err)
	}
	return out
}

// Library returns the library code of inst, created (named code, in UTC)
// if the institution does not have it yet.
func Library(t testing.TB, k *Kit, inst, code string) *circulation.Library {
	t.Helper()
	ctx := context.Background()
	lib, err := k.Circulation.Library(ctx, inst, code)
	if errors.Is(err, fault.ErrNotFound) {
		lib, err = k.Circulation.CreateLibrary(ctx, inst, &circulation.Library{Code: code, Name: code})
	}
	if err != nil {
		t.Fatalf("patronkittest: library %s: %v", code, err)
	}
	return lib
}

// Item creates an item of inst and returns it as stored: barcode
// "ITEM-N", titled "Test item N", in DefaultLibrary, then as opts change
// it. Its library is created if the institution does not have it yet.
func Item(t testing.TB, k *Kit, inst string, opts ...func(*circulation.Item)) *circulation.Item {
	t.Helper()
	n := k.next()
	it := &circulation.Item{Barcode: fmt.Sprintf("ITEM-%d", n), Title: fmt.Sprintf("Test item %d", n), Library: DefaultLibrary}
	for _, o := range opts {
		o(it)
	}
	Library(t, k, inst, it.Library)
	out, err := k.Circulation.CreateItem(context.Background(), inst, it)
	if err != nil {
		t.Fatalf("patronkittest: creating item %s: %v", it.Barcode, err)
	}
	return out
}

// Terms replaces the terms of use of inst with rules (tried in order, the
// first that matches wins) and returns them as stored.
func Terms(t testing.TB, k *Kit, inst string, rules ...circulation.Rule) circulation.RuleSet {
	t.Helper()
	ctx := context.Background()
	cur, err := k.Circulation.Rules(ctx, inst)
	if err != nil {
		t.Fatalf("patronkittest: reading the terms of use: %v", err)
	}
	set, err := k.Circulation.ReplaceRules(ctx, inst, cur.Version, rules, cur.BlockLimits)
	if err != nil {
		t.Fatalf("patronkittest: setting the terms of use: %v", err)
	}
	return set
}

// Loan lends item to user now (the kit's clock) and returns the loan.
// When inst has no terms of use yet, DefaultRule becomes its terms first.
func Loan(t testing.TB, k *Kit, inst string, user *patron.User, item *circulation.Item) *circulation.Loan {
	t.Helper()
	ctx := context.Background()
	cur, err := k.Circulation.Rules(ctx, inst)
	if err != nil {
		t.Fatalf("patronkittest: reading the terms of use: %v", err)
	}
	if len(cur.Rules) == 0 {
		Terms(t, k, inst, DefaultRule)
	}
	l, err := k.Circulation.CheckOut(ctx, inst, user.PrimaryID, item.Barcode, circulation.CheckOutOptions{})
	if err != nil {
		t.Fatalf("patronkittest: lending %s to %s: %v", item.Barcode, user.PrimaryID, err)
	}
	return l
}
