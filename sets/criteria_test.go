package sets_test

import (
	"slices"
	"testing"
	"time"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/sets"
)

// members makes a query set of q and returns its members' primary_ids.
func members(t *testing.T, k *patronkittest.Kit, q sets.Query) []string {
	t.Helper()
	set, err := k.Sets.Create(staff, "UNI", sets.New{Name: "q", Query: q})
	if err != nil {
		t.Fatal(err)
	}
	return primaryIDs(t, k, "UNI", set.ID, 10)
}

// A balance_over query holds the users whose open fees in the
// institution's currency leave more than the amount to pay: paid and
// waived parts, closed fees and other institutions do not count.
func TestAQuerySetOfTheUsersOwingMoreThanAnAmount(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		fee := func(pid string, amount int64) *circulation.Fee {
			t.Helper()
			f, err := k.Circulation.AddFee(staff, "UNI", pid, circulation.NewFee{Amount: amount, Currency: "USD", Description: "Damaged book"})
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		user(t, k, "ann")
		fee("ann", 1000)
		user(t, k, "bob")
		fee("bob", 300)
		fee("bob", 300)
		user(t, k, "cy")
		f := fee("cy", 1000)
		if _, err := k.Circulation.Pay(staff, "UNI", "cy", f.ID, 600); err != nil {
			t.Fatal(err)
		}
		user(t, k, "dan")
		f = fee("dan", 2000)
		if _, err := k.Circulation.Waive(staff, "UNI", "dan", f.ID, 2000, "goodwill"); err != nil {
			t.Fatal(err)
		}
		user(t, k, "eve")

		for over, want := range map[int64][]string{
			0:    {"ann", "bob", "cy"},
			500:  {"ann", "bob"},
			600:  {"ann"},
			1000: nil,
		} {
			if got := members(t, k, sets.Query{BalanceOver: &over}); !slices.Equal(got, want) {
				t.Errorf("owing more than %d: %v, want %v", over, got, want)
			}
		}
		neg := int64(-1)
		if _, err := k.Sets.Create(staff, "UNI", sets.New{Name: "x", Query: sets.Query{BalanceOver: &neg}}); !slices.Equal(fieldsOf(t, err), []string{"query.balance_over"}) {
			t.Errorf("a negative amount: %v", err)
		}
	})
}

// A last_activity_before query holds the users of whom nothing newer than
// the day is stored: a loan, a return, a request placed or a change of
// the record after it takes the user out.
func TestAQuerySetOfTheUsersInactiveSinceADay(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		users := map[string]*patron.User{}
		for _, id := range []string{"idle", "lends", "requests", "returns", "changed"} {
			users[id] = user(t, k, id)
		}
		held := patronkittest.Item(t, k, "UNI")
		patronkittest.Loan(t, k, "UNI", users["idle"], held)
		back := patronkittest.Item(t, k, "UNI")
		patronkittest.Loan(t, k, "UNI", users["returns"], back)

		k.Clock.Set(time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC))
		patronkittest.Loan(t, k, "UNI", users["lends"], patronkittest.Item(t, k, "UNI"))
		if _, err := k.Circulation.PlaceRequest(staff, "UNI", "requests", circulation.NewRequest{Barcode: held.Barcode}); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Circulation.CheckIn(staff, "UNI", back.Barcode); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Patrons.UpdateMany(staff, "UNI", []string{users["changed"].ID}, map[string]string{"campus_code": "NORTH"}, false); err != nil {
			t.Fatal(err)
		}

		if got := members(t, k, sets.Query{ActivityBefore: "2026-09-15"}); !slices.Equal(got, []string{"idle"}) {
			t.Errorf("inactive since 15 September: %v", got)
		}
		if got := members(t, k, sets.Query{ActivityBefore: "2026-10-02"}); len(got) != 5 {
			t.Errorf("inactive since 2 October: %v", got)
		}
		if got := members(t, k, sets.Query{ActivityBefore: "2026-09-01"}); len(got) != 0 {
			t.Errorf("inactive since 1 September, the day they came: %v", got)
		}
		if _, err := k.Sets.Create(staff, "UNI", sets.New{Name: "x", Query: sets.Query{ActivityBefore: "last year"}}); !slices.Equal(fieldsOf(t, err), []string{"query.last_activity_before"}) {
			t.Errorf("a date not valid: %v", err)
		}
	})
}
