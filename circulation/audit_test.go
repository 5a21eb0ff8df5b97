package circulation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patronkit/patronkit/account"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// The audit trail is the kit's (package privacy): these tests read back
// what the circulation service put on it.

const auditInst = "UNI"

var librarian = patron.Actor{Institution: auditInst, ID: "librarian"}

func asLibrarian() context.Context { return patron.WithActor(context.Background(), librarian) }

func asPatron(u *patron.User) context.Context {
	return patron.WithActor(context.Background(), patron.Actor{Institution: auditInst, ID: u.PrimaryID, Patron: true})
}

// auditTerms lend for three weeks, renew twice, fine 25 a day, charge
// 5,000 for a lost item (by itself 30 days overdue) and deliver requests
// for 300.
var auditTerms = circulation.Rule{Name: "everyone", Terms: circulation.Terms{LoanPeriod: 3, LoanPeriodUnit: circulation.Weeks,
	Renewals: 2, OverdueFine: 25, OverdueFineUnit: circulation.PerDay, LostItemFee: 5000, DaysOverdueUntilLost: 30, Currency: "USD", RequestsAllowed: true,
	PersonalDelivery: true, DeliveryFee: 300}}

// seqNow is the number of the last entry of the trail.
func seqNow(t *testing.T, k *patronkittest.Kit) int64 {
	t.Helper()
	es, err := k.Privacy.Entries(context.Background(), auditInst, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		return 0
	}
	return es[len(es)-1].Seq
}

// trailSince is the entries after seq, each "action kind/actor subject
// what details".
func trailSince(t *testing.T, k *patronkittest.Kit, seq int64) []string {
	t.Helper()
	es, err := k.Privacy.Entries(context.Background(), auditInst, seq, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s/%s %s %s %s", e.Action, e.ActorKind, e.ActorID, e.Subject, e.What, e.Details)))
	}
	return out
}

// changesSince is trailSince without the patron service's reads of
// records ("user"), which sending notices makes too.
func changesSince(t *testing.T, k *patronkittest.Kit, seq int64) []string {
	t.Helper()
	return slices.DeleteFunc(trailSince(t, k, seq), func(e string) bool {
		return strings.HasPrefix(e, "read ") && strings.HasSuffix(e, " user")
	})
}

func wantTrail(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("trail:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// wantTrailAnyOrder is wantTrail for entries written together (those of
// a list naming several patrons), in any order.
func wantTrailAnyOrder(t *testing.T, got, want []string) {
	t.Helper()
	wantTrail(t, slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)))
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestStaffReadsOfAPatronsCirculationAreOnTheTrailOnePerPatronNamed(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		patronkittest.Terms(t, k, auditInst, auditTerms)
		ann := patronkittest.User(t, k, auditInst)
		bob := patronkittest.User(t, k, auditInst)
		cat := patronkittest.User(t, k, auditInst)
		it := patronkittest.Item(t, k, auditInst)
		first := patronkittest.Loan(t, k, auditInst, ann, it)
		if _, err := k.Circulation.CheckIn(context.Background(), auditInst, it.Barcode); err != nil {
			t.Fatal(err)
		}
		loan := patronkittest.Loan(t, k, auditInst, bob, it)
		bg := context.Background()
		fee := must[*circulation.Fee](t)(k.Circulation.AddFee(bg, auditInst, bob.PrimaryID, circulation.NewFee{Amount: 150, Currency: "USD", Description: "Card"}))
		ra := must[*circulation.Request](t)(k.Circulation.PlaceRequest(bg, auditInst, ann.PrimaryID, circulation.NewRequest{Barcode: it.Barcode}))
		rc := must[*circulation.Request](t)(k.Circulation.PlaceRequest(bg, auditInst, cat.PrimaryID, circulation.NewRequest{Barcode: it.Barcode}))
		notices := must[[]circulation.Notice](t)(k.Circulation.Notices(bg, auditInst, bob.PrimaryID))
		if len(notices) == 0 {
			t.Fatal("no notice to read")
		}
		// Someone renamed since the loan: the trail names them as they
		// are called now.
		ann.PrimaryID = "ann-renamed"
		if _, err := k.Patrons.Replace(bg, auditInst, first.PrimaryID, ann.Version, ann); err != nil {
			t.Fatal(err)
		}

		from := seqNow(t, k)
		ctx := asLibrarian()
		_, err := k.Circulation.Loans(ctx, auditInst, bob.PrimaryID, true)
		if err != nil {
			t.Fatal(err)
		}
		must[[]circulation.Loan](t)(k.Circulation.Loans(ctx, auditInst, "ANN-RENAMED", false))
		must[*circulation.Loan](t)(k.Circulation.Loan(ctx, auditInst, loan.ID))
		itemLoans := must[[]circulation.Loan](t)(k.Circulation.ItemLoans(ctx, auditInst, it.Barcode))
		if len(itemLoans) != 2 {
			t.Fatalf("loans of the item: %+v", itemLoans)
		}
		must[[]circulation.Fee](t)(k.Circulation.Fees(ctx, auditInst, bob.PrimaryID, false))
		must[*circulation.Fee](t)(k.Circulation.Fee(ctx, auditInst, bob.PrimaryID, fee.ID))
		must[map[string]int64](t)(k.Circulation.Balance(ctx, auditInst, bob.PrimaryID))
		must[[]circulation.Request](t)(k.Circulation.Requests(ctx, auditInst, cat.PrimaryID, true))
		must[*circulation.Request](t)(k.Circulation.Request(ctx, auditInst, cat.PrimaryID, rc.ID))
		must[[]circulation.Request](t)(k.Circulation.ItemRequests(ctx, auditInst, it.Barcode))
		must[*circulation.QueuePlace](t)(k.Circulation.QueueFor(ctx, auditInst, cat.PrimaryID, it.Barcode))
		must[[]circulation.Block](t)(k.Circulation.Blocks(ctx, auditInst, bob.PrimaryID))
		must[[]circulation.Notice](t)(k.Circulation.Notices(ctx, auditInst, bob.PrimaryID))
		must[*circulation.Notice](t)(k.Circulation.Notice(ctx, auditInst, bob.PrimaryID, notices[0].ID))
		must[[]string](t)(k.Circulation.NoticeOptOuts(ctx, auditInst, bob.PrimaryID))
		must[*circulation.Account](t)(k.Circulation.Account(ctx, auditInst, bob.PrimaryID))

		b := bob.PrimaryID
		by := "read staff/librarian "
		wantTrailAnyOrder(t, trailSince(t, k, from), []string{
			by + b + " loans",
			by + "ann-renamed loan history",
			by + b + " loans " + js(map[string]any{"item_barcode": it.Barcode, "loan_id": loan.ID}),
			by + b + " loans " + js(map[string]any{"item_barcode": it.Barcode, "loan_id": loan.ID}),
			by + "ann-renamed loans " + js(map[string]any{"item_barcode": it.Barcode, "loan_id": first.ID}),
			by + b + " fees",
			by + b + " fees " + js(map[string]any{"fee_id": fee.ID}),
			by + b + " balance",
			by + cat.PrimaryID + " requests",
			by + cat.PrimaryID + " requests " + js(map[string]any{"request_id": rc.ID}),
			by + "ann-renamed requests " + js(map[string]any{"item_barcode": it.Barcode, "request_id": ra.ID}),
			by + cat.PrimaryID + " requests " + js(map[string]any{"item_barcode": it.Barcode, "request_id": rc.ID}),
			by + cat.PrimaryID + " requests " + js(map[string]any{"item_barcode": it.Barcode}),
			by + b + " user", // the record the blocks are read from
			by + b + " blocks",
			by + b + " notices",
			by + b + " notices " + js(map[string]any{"notice_id": notices[0].ID}),
			by + b + " notice settings",
			by + b + " account",
		})
	})
}

func TestAPatronReadingTheirOwnCirculationLeavesNoEntry(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		patronkittest.Terms(t, k, auditInst, auditTerms)
		u := patronkittest.User(t, k, auditInst)
		other := patronkittest.User(t, k, auditInst)
		l := patronkittest.Loan(t, k, auditInst, u, patronkittest.Item(t, k, auditInst))
		patronkittest.Loan(t, k, auditInst, other, patronkittest.Item(t, k, auditInst))
		from := seqNow(t, k)
		me := asPatron(u)
		if ls, _, err := k.Account.Loans(me, auditInst, u.PrimaryID, -1, 0); err != nil || len(ls) != 1 || ls[0].ID != l.ID {
			t.Fatalf("own loans: %+v, %v", ls, err)
		}
		must[[]circulation.Loan](t)(k.Circulation.Loans(me, auditInst, strings.ToUpper(u.PrimaryID), false))
		must[*circulation.Loan](t)(k.Circulation.Loan(me, auditInst, l.ID))
		must[[]circulation.Request](t)(k.Account.Requests(me, auditInst, u.PrimaryID, true))
		must[[]circulation.Notice](t)(k.Account.Notices(me, auditInst, u.PrimaryID))
		must[*account.Fees](t)(k.Account.Fees(me, auditInst, u.PrimaryID))
		wantTrail(t, trailSince(t, k, from), nil)

		// A patron reading another's data is on the trail.
		must[[]circulation.Loan](t)(k.Circulation.Loans(me, auditInst, other.PrimaryID, true))
		wantTrail(t, trailSince(t, k, from), []string{"read patron/" + u.PrimaryID + " " + other.PrimaryID + " loans"})
	})
}

func TestEveryChangeOfAPatronsCirculationIsOnTheTrailWithWhatChanged(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		patronkittest.Terms(t, k, auditInst, auditTerms)
		u := patronkittest.User(t, k, auditInst, func(u *patron.User) {
			u.Addresses = []patron.Address{{Line1: "1 Main St", City: "Springfield", AddressTypes: []string{"home"}}}
		})
		waiter := patronkittest.User(t, k, auditInst)
		it := patronkittest.Item(t, k, auditInst)
		lost := patronkittest.Item(t, k, auditInst)
		ctx := asLibrarian()
		by, pid := "staff/librarian ", u.PrimaryID

		// Check-out, renewal, check-in with a fine.
		from := seqNow(t, k)
		l := must[*circulation.Loan](t)(k.Circulation.CheckOut(ctx, auditInst, pid, it.Barcode, circulation.CheckOutOptions{}))
		k.Clock.Advance(24 * time.Hour)
		r := must[*circulation.Loan](t)(k.Circulation.Renew(ctx, auditInst, l.ID))
		req := must[*circulation.Request](t)(k.Circulation.PlaceRequest(ctx, auditInst, waiter.PrimaryID, circulation.NewRequest{Barcode: it.Barcode}))
		k.Clock.Set(r.DueAt.Add(36 * time.Hour))
		in := must[*circulation.Loan](t)(k.Circulation.CheckIn(ctx, auditInst, it.Barcode))
		fines := must[[]circulation.Fee](t)(k.Circulation.Fees(asPatron(u), auditInst, pid, true))
		if len(fines) != 1 || fines[0].Amount != 50 {
			t.Fatalf("fines: %+v", fines)
		}
		held := must[*circulation.Request](t)(k.Circulation.Request(asPatron(waiter), auditInst, waiter.PrimaryID, req.ID))
		wantTrail(t, changesSince(t, k, from), []string{
			"create " + by + pid + " loans " + js(map[string]any{"loan_id": l.ID, "item_barcode": it.Barcode, "library": it.Library, "due_date": ts(l.DueAt)}),
			"update " + by + pid + " loans " + js(map[string]any{"loan_id": l.ID, "item_barcode": it.Barcode,
				"due_date": map[string]any{"old": ts(l.DueAt), "new": ts(r.DueAt)}, "renewals": map[string]any{"old": 0, "new": 1}}),
			"create " + by + waiter.PrimaryID + " requests " + js(map[string]any{"request_id": req.ID, "status": "waiting",
				"item_barcode": it.Barcode, "pickup_library": it.Library}),
			"update " + by + pid + " loans " + js(map[string]any{"loan_id": l.ID, "item_barcode": it.Barcode,
				"status": map[string]any{"old": "open", "new": "complete"}, "return_date": map[string]any{"old": nil, "new": ts(*in.ReturnedAt)}}),
			"update " + by + waiter.PrimaryID + " requests " + js(map[string]any{"request_id": req.ID, "item_barcode": it.Barcode,
				"status": map[string]any{"old": "waiting", "new": "on_hold_shelf"}, "hold_until": ts(*held.HoldUntil)}),
			"create " + by + pid + " fees " + js(map[string]any{"fee_id": fines[0].ID, "type": "overdue_fine", "amount": 50, "currency": "USD",
				"loan_id": l.ID, "item_barcode": it.Barcode, "balance": map[string]any{"old": 0, "new": 50}}),
		})

		// Payment, waiver (closing the fee), manual fee.
		from = seqNow(t, k)
		must[*circulation.Fee](t)(k.Circulation.Pay(ctx, auditInst, pid, fines[0].ID, 20))
		must[*circulation.Fee](t)(k.Circulation.Waive(ctx, auditInst, pid, fines[0].ID, 30, "first time"))
		manual := must[*circulation.Fee](t)(k.Circulation.AddFee(ctx, auditInst, pid, circulation.NewFee{Amount: 700, Currency: "USD", Description: "Card"}))
		wantTrail(t, changesSince(t, k, from), []string{
			"update " + by + pid + " fees " + js(map[string]any{"fee_id": fines[0].ID, "kind": "payment", "amount": 20, "currency": "USD",
				"remaining": map[string]any{"old": 50, "new": 30}, "balance": map[string]any{"old": 50, "new": 30}}),
			"update " + by + pid + " fees " + js(map[string]any{"fee_id": fines[0].ID, "kind": "waiver", "amount": 30, "currency": "USD",
				"reason": "first time", "remaining": map[string]any{"old": 30, "new": 0}, "balance": map[string]any{"old": 30, "new": 0},
				"status": map[string]any{"old": "open", "new": "closed"}}),
			"create " + by + pid + " fees " + js(map[string]any{"fee_id": manual.ID, "type": "manual", "amount": 700, "currency": "USD",
				"balance": map[string]any{"old": 0, "new": 700}}),
		})

		// The held item fulfils the waiter's request; a delivery request
		// with its fee, cancelled (the fee waived by the system).
		from = seqNow(t, k)
		must[*circulation.Loan](t)(k.Circulation.CheckOut(ctx, auditInst, waiter.PrimaryID, it.Barcode, circulation.CheckOutOptions{}))
		wl := must[[]circulation.Loan](t)(k.Circulation.Loans(asPatron(waiter), auditInst, waiter.PrimaryID, true))
		me := asPatron(u)
		dr := must[*circulation.Request](t)(k.Circulation.PlaceRequest(me, auditInst, pid, circulation.NewRequest{Barcode: it.Barcode,
			DeliveryAddressID: u.Addresses[0].ID}))
		must[*circulation.Request](t)(k.Circulation.CancelRequest(me, auditInst, pid, dr.ID, "found it elsewhere"))
		self := "patron/" + pid + " "
		wantTrail(t, changesSince(t, k, from), []string{
			"update " + by + waiter.PrimaryID + " requests " + js(map[string]any{"request_id": req.ID, "item_barcode": it.Barcode,
				"status": map[string]any{"old": "on_hold_shelf", "new": "fulfilled"}}),
			"create " + by + waiter.PrimaryID + " loans " + js(map[string]any{"loan_id": wl[0].ID, "item_barcode": it.Barcode, "library": it.Library, "due_date": ts(wl[0].DueAt)}),
			"create " + self + pid + " fees " + js(map[string]any{"fee_id": dr.FeeID, "type": "delivery", "amount": 300, "currency": "USD",
				"item_barcode": it.Barcode, "balance": map[string]any{"old": 700, "new": 1000}}),
			"create " + self + pid + " requests " + js(map[string]any{"request_id": dr.ID, "status": "waiting", "item_barcode": it.Barcode,
				"delivery": true, "fee_id": dr.FeeID}),
			"update " + self + pid + " requests " + js(map[string]any{"request_id": dr.ID, "item_barcode": it.Barcode,
				"status": map[string]any{"old": "waiting", "new": "cancelled"}, "reason": "found it elsewhere"}),
			"update " + self + pid + " fees " + js(map[string]any{"fee_id": dr.FeeID, "kind": "waiver", "amount": 300, "currency": "USD",
				"reason": "request cancelled", "remaining": map[string]any{"old": 300, "new": 0}, "balance": map[string]any{"old": 1000, "new": 700},
				"status": map[string]any{"old": "open", "new": "closed"}}),
		})

		// The jobs: a loan lost by itself, and a request not needed any
		// more, as the system; the lost item back at the desk.
		must[*circulation.Loan](t)(k.Circulation.CheckIn(ctx, auditInst, it.Barcode))
		ll := must[*circulation.Loan](t)(k.Circulation.CheckOut(ctx, auditInst, pid, lost.Barcode, circulation.CheckOutOptions{}))
		nr := must[*circulation.Request](t)(k.Circulation.PlaceRequest(ctx, auditInst, waiter.PrimaryID, circulation.NewRequest{Barcode: lost.Barcode,
			NotNeededAfter: k.Clock.Now().Format(time.DateOnly)}))
		from = seqNow(t, k)
		k.Clock.Set(ll.LostAfter.Add(time.Hour))
		if n, err := k.Circulation.DeclareOverdueLost(context.Background()); err != nil || n != 1 {
			t.Fatalf("DeclareOverdueLost: %d, %v", n, err)
		}
		if n, err := k.Circulation.ExpireRequests(context.Background()); err != nil || n != 1 {
			t.Fatalf("ExpireRequests: %d, %v", n, err)
		}
		got := changesSince(t, k, from)
		jobs, err := k.Privacy.Entries(context.Background(), auditInst, from, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range jobs {
			if want := "job " + strings.TrimPrefix(e.ActorID, "system:"); e.ActorKind == "system" && e.Via != want {
				t.Fatalf("a job's entry came by %q, want %q: %+v", e.Via, want, e)
			}
		}
		lostFees := must[[]circulation.Fee](t)(k.Circulation.Fees(me, auditInst, pid, true))
		lostFee := lostFees[slices.IndexFunc(lostFees, func(f circulation.Fee) bool { return f.Type == circulation.FeeLostItem })]
		lh := must[[]circulation.Loan](t)(k.Circulation.Loans(me, auditInst, pid, false))
		closed := lh[slices.IndexFunc(lh, func(x circulation.Loan) bool { return x.ID == ll.ID })]
		wantTrail(t, got, []string{
			"update system/system:lost-items " + pid + " loans " + js(map[string]any{"loan_id": ll.ID, "item_barcode": lost.Barcode,
				"status": map[string]any{"old": "open", "new": "lost"}, "return_date": map[string]any{"old": nil, "new": ts(*closed.ReturnedAt)}}),
			"create system/system:lost-items " + pid + " fees " + js(map[string]any{"fee_id": lostFee.ID, "type": "lost_item", "amount": 5000, "currency": "USD",
				"loan_id": ll.ID, "item_barcode": lost.Barcode, "balance": map[string]any{"old": 700, "new": 5700}}),
			"update system/system:request-expiry " + waiter.PrimaryID + " requests " + js(map[string]any{"request_id": nr.ID, "item_barcode": lost.Barcode,
				"status": map[string]any{"old": "waiting", "new": "expired"}, "reason": "not needed after " + nr.NotNeededAfter}),
		})
		from = seqNow(t, k)
		back := must[*circulation.Loan](t)(k.Circulation.CheckIn(ctx, auditInst, lost.Barcode))
		got = changesSince(t, k, from)
		if len(got) < 2 || got[0] != "update "+by+pid+" loans "+js(map[string]any{"loan_id": ll.ID, "item_barcode": lost.Barcode,
			"status": map[string]any{"old": "lost", "new": "complete"}, "return_date": map[string]any{"old": ts(*closed.ReturnedAt), "new": ts(*back.ReturnedAt)}}) ||
			got[1] != "update "+by+pid+" fees "+js(map[string]any{"fee_id": lostFee.ID, "kind": "waiver", "amount": 5000, "currency": "USD",
				"reason": "item " + lost.Barcode + " came back", "remaining": map[string]any{"old": 5000, "new": 0},
				"balance": map[string]any{"old": 5700, "new": 700}, "status": map[string]any{"old": "open", "new": "closed"}}) {
			t.Fatalf("the lost item back:\n  %s", strings.Join(got, "\n  "))
		}
		for _, e := range got {
			if strings.Contains(e, "1 Main St") || strings.Contains(e, "Springfield") {
				t.Fatalf("an address on the trail: %s", e)
			}
		}
	})
}

func TestAFailedChangeOfCirculationLeavesNoEntry(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		patronkittest.Terms(t, k, auditInst, auditTerms)
		u := patronkittest.User(t, k, auditInst)
		other := patronkittest.User(t, k, auditInst)
		it := patronkittest.Item(t, k, auditInst)
		patronkittest.Loan(t, k, auditInst, other, it)
		ctx := asLibrarian()
		f := must[*circulation.Fee](t)(k.Circulation.AddFee(ctx, auditInst, u.PrimaryID, circulation.NewFee{Amount: 100, Currency: "USD", Description: "Card"}))
		from := seqNow(t, k)
		if _, err := k.Circulation.CheckOut(ctx, auditInst, u.PrimaryID, it.Barcode, circulation.CheckOutOptions{}); !errors.Is(err, fault.ErrRefused) {
			t.Fatalf("check-out of an item on loan: %v", err)
		}
		if _, err := k.Circulation.Pay(ctx, auditInst, u.PrimaryID, f.ID, 101); !errors.Is(err, fault.ErrInvalid) {
			t.Fatalf("payment over what the fee owes: %v", err)
		}
		if _, err := k.Circulation.Waive(patron.WithActor(context.Background(), patron.Actor{Institution: auditInst, ID: u.PrimaryID}),
			auditInst, u.PrimaryID, f.ID, 10, "mine"); !errors.Is(err, fault.ErrRefused) {
			t.Fatalf("a waiver of one's own fee: %v", err)
		}
		if _, err := k.Circulation.AddFee(ctx, auditInst, u.PrimaryID, circulation.NewFee{Amount: 0, Currency: "USD", Description: "Nothing"}); !errors.Is(err, fault.ErrInvalid) {
			t.Fatalf("a fee of 0: %v", err)
		}
		if _, err := k.Circulation.PlaceRequest(ctx, auditInst, u.PrimaryID, circulation.NewRequest{}); !errors.Is(err, fault.ErrInvalid) {
			t.Fatalf("a request of nothing: %v", err)
		}
		for _, e := range trailSince(t, k, from) {
			if !strings.HasPrefix(e, "read ") || !strings.HasSuffix(e, " user") {
				t.Fatalf("an entry of a change not made: %s", e)
			}
		}
	})
}

func TestACirculationReadOrChangeWhoseEntryCannotBeWrittenFails(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		patronkittest.Terms(t, k, auditInst, auditTerms)
		u := patronkittest.User(t, k, auditInst)
		it := patronkittest.Item(t, k, auditInst)
		l := patronkittest.Loan(t, k, auditInst, u, it)
		if err := k.DB.Exec("DROP TABLE " + privacy.Entry{}.TableName()).Error; err != nil {
			t.Fatal(err)
		}
		ctx := asLibrarian()
		if ls, err := k.Circulation.Loans(ctx, auditInst, u.PrimaryID, true); err == nil || ls != nil {
			t.Fatalf("loans read without their entry: %+v, %v", ls, err)
		}
		if ls, err := k.Circulation.ItemLoans(ctx, auditInst, it.Barcode); err == nil || ls != nil {
			t.Fatalf("loans of an item read without their entries: %+v, %v", ls, err)
		}
		if got, err := k.Circulation.Loan(ctx, auditInst, l.ID); err == nil || got != nil {
			t.Fatalf("a loan read without its entry: %+v, %v", got, err)
		}
		if fs, err := k.Circulation.Fees(ctx, auditInst, u.PrimaryID, false); err == nil || fs != nil {
			t.Fatalf("fees read without their entry: %+v, %v", fs, err)
		}
		// The patron's own read needs none.
		if ls, err := k.Circulation.Loans(asPatron(u), auditInst, u.PrimaryID, true); err != nil || len(ls) != 1 {
			t.Fatalf("own loans: %+v, %v", ls, err)
		}
		// A change whose entry cannot be written is not kept.
		if _, err := k.Circulation.CheckIn(ctx, auditInst, it.Barcode); err == nil {
			t.Fatal("a check-in without its entry")
		}
		if got := must[*circulation.Item](t)(k.Circulation.Item(context.Background(), auditInst, it.Barcode)); got.Status != circulation.StatusOnLoan {
			t.Fatalf("the item checked in without an entry is %s", got.Status)
		}
	})
}

// refusing is the kit's trail, but for the events about what, which it
// cannot keep.
type refusing struct {
	*privacy.Service
	what string
}

func (r refusing) RecordAudit(ctx context.Context, e patron.AuditEvent) error {
	if e.What == r.what {
		return errors.New("the trail is full")
	}
	return r.Service.RecordAudit(ctx, e)
}

func TestACirculationChangeWhoseEntryCannotBeWrittenIsNotKept(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		patronkittest.Terms(t, k, auditInst, auditTerms)
		u := patronkittest.User(t, k, auditInst)
		lent := patronkittest.Item(t, k, auditInst)
		l := patronkittest.Loan(t, k, auditInst, u, lent)
		free := patronkittest.Item(t, k, auditInst)
		ctx := asLibrarian()
		f := must[*circulation.Fee](t)(k.Circulation.AddFee(ctx, auditInst, u.PrimaryID, circulation.NewFee{Amount: 100, Currency: "USD", Description: "Card"}))
		r := must[*circulation.Request](t)(k.Circulation.PlaceRequest(ctx, auditInst, u.PrimaryID, circulation.NewRequest{Barcode: free.Barcode}))
		k.Patrons.SetAuditSink(refusing{k.Privacy, "loans"})
		if _, err := k.Circulation.CheckOut(ctx, auditInst, u.PrimaryID, free.Barcode, circulation.CheckOutOptions{}); err == nil {
			t.Fatal("a check-out without its entry")
		}
		k.Clock.Advance(48 * time.Hour)
		if _, err := k.Circulation.Renew(ctx, auditInst, l.ID); err == nil {
			t.Fatal("a renewal without its entry")
		}
		if _, err := k.Circulation.DeclareLost(ctx, auditInst, lent.Barcode); err == nil {
			t.Fatal("a loss without its entry")
		}
		k.Patrons.SetAuditSink(refusing{k.Privacy, "fees"})
		if _, err := k.Circulation.Pay(ctx, auditInst, u.PrimaryID, f.ID, 50); err == nil {
			t.Fatal("a payment without its entry")
		}
		k.Patrons.SetAuditSink(refusing{k.Privacy, "requests"})
		if _, err := k.Circulation.CancelRequest(ctx, auditInst, u.PrimaryID, r.ID, "changed my mind"); err == nil {
			t.Fatal("a cancellation without its entry")
		}
		k.Patrons.SetAuditSink(k.Privacy)
		loans := must[[]circulation.Loan](t)(k.Circulation.Loans(ctx, auditInst, u.PrimaryID, true))
		fee := must[*circulation.Fee](t)(k.Circulation.Fee(ctx, auditInst, u.PrimaryID, f.ID))
		req := must[*circulation.Request](t)(k.Circulation.Request(ctx, auditInst, u.PrimaryID, r.ID))
		if len(loans) != 1 || loans[0].ID != l.ID || !loans[0].DueAt.Equal(l.DueAt) || loans[0].Renewals != 0 || fee.Paid != 0 ||
			req.Status != circulation.RequestOnHoldShelf {
			t.Fatalf("kept without their entries: loans %+v, fee %+v, request %+v", loans, fee, req)
		}
	})
}
