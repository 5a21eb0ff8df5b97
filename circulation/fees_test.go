package circulation_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// staff is a context whose actor is the staff user id.
func (f *loanFixture) staff(id string) context.Context {
	return patron.WithActor(f.ctx, patron.Actor{Institution: "UNI", ID: id})
}

func (f *loanFixture) addFee(t *testing.T, primaryID string, amount int64) *circulation.Fee {
	t.Helper()
	fee, err := f.svc.AddFee(f.staff("librarian"), "UNI", primaryID, circulation.NewFee{Amount: amount, Currency: "usd", Description: "Personal delivery"})
	if err != nil {
		t.Fatalf("add fee: %v", err)
	}
	return fee
}

func (f *loanFixture) wantBalance(t *testing.T, primaryID string, want map[string]int64) {
	t.Helper()
	got, err := f.svc.Balance(f.ctx, "UNI", primaryID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("balance of %s %v, want %v", primaryID, got, want)
	}
	for c, v := range want {
		if got[c] != v {
			t.Fatalf("balance of %s %v, want %v", primaryID, got, want)
		}
	}
}

func TestManualFeesArePaidAndWaived(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.wantBalance(t, "student1", map[string]int64{})
		fee := f.addFee(t, "Student1", 1000)
		if fee.Type != circulation.FeeManual || fee.Currency != "USD" || fee.Status != circulation.FeeOpen || fee.CreatedBy != "librarian" ||
			fee.PrimaryID != "student1" || fee.Amount != 1000 || fee.ID == "" {
			t.Fatalf("fee %+v", fee)
		}
		for _, in := range []circulation.NewFee{
			{Amount: 0, Currency: "USD", Description: "x"},
			{Amount: 10, Currency: "DOLLARS", Description: "x"},
			{Amount: 10, Currency: "USD"},
		} {
			_, err := f.svc.AddFee(f.ctx, "UNI", "student1", in)
			wantKind(t, err, patron.Invalid)
		}
		_, err := f.svc.AddFee(f.ctx, "UNI", "nobody", circulation.NewFee{Amount: 10, Currency: "USD", Description: "x"})
		wantKind(t, err, patron.NotFound)

		got, err := f.svc.Pay(f.staff("desk"), "UNI", "student1", fee.ID, 400)
		if err != nil || got.Paid != 400 || got.Remaining() != 600 || got.Status != circulation.FeeOpen || got.Version != 2 {
			t.Fatalf("partial payment %+v, %v", got, err)
		}
		f.wantBalance(t, "student1", map[string]int64{"USD": 600})
		_, err = f.svc.Pay(f.ctx, "UNI", "student1", fee.ID, 601)
		wantField(t, err, "amount", "out_of_range")
		_, err = f.svc.Pay(f.ctx, "UNI", "student1", fee.ID, 0)
		wantKind(t, err, patron.Invalid)
		_, err = f.svc.Waive(f.staff("desk"), "UNI", "student1", fee.ID, 100, " ")
		wantField(t, err, "reason", "required")
		got, err = f.svc.Waive(f.staff("desk"), "UNI", "student1", fee.ID, 100, "first offence")
		if err != nil || got.Waived != 100 || got.Remaining() != 500 || got.Status != circulation.FeeOpen {
			t.Fatalf("waiver %+v, %v", got, err)
		}
		got, err = f.svc.Pay(f.ctx, "UNI", "student1", fee.ID, 500)
		if err != nil || got.Remaining() != 0 || got.Status != circulation.FeeClosed {
			t.Fatalf("full payment %+v, %v", got, err)
		}
		f.wantBalance(t, "student1", map[string]int64{})
		_, err = f.svc.Pay(f.ctx, "UNI", "student1", fee.ID, 1)
		wantKind(t, err, patron.Refused)
		_, err = f.svc.Pay(f.ctx, "UNI", "student2", fee.ID, 1)
		wantKind(t, err, patron.NotFound)

		open, err := f.svc.Fees(f.ctx, "UNI", "student1", true)
		if err != nil || len(open) != 0 {
			t.Fatalf("open fees %+v, %v", open, err)
		}
		all, err := f.svc.Fees(f.ctx, "UNI", "student1", false)
		if err != nil || len(all) != 1 || len(all[0].Transactions) != 3 {
			t.Fatalf("fees %+v, %v", all, err)
		}
		w := all[0].Transactions[1]
		if w.Kind != circulation.Waiver || w.Amount != 100 || w.Reason != "first offence" || w.By != "desk" {
			t.Fatalf("waiver transaction %+v", w)
		}
	})
}

func TestStaffCannotWaiveTheirOwnFee(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		fee := f.addFee(t, "student2", 700)
		_, err := f.svc.Waive(f.staff("STUDENT2"), "UNI", "student2", fee.ID, 700, "my own")
		wantReasons(t, err, "own")
		if _, err := f.svc.Waive(f.staff("librarian"), "UNI", "student2", fee.ID, 700, "goodwill"); err != nil {
			t.Fatal(err)
		}
		f.wantBalance(t, "student2", map[string]int64{})
	})
}

func TestConcurrentPaymentsNeverPayMoreThanOwed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		fee := f.addFee(t, "student1", 2000)
		other := f.addFee(t, "student1", 500)
		if _, err := f.svc.Waive(f.staff("librarian"), "UNI", "student1", other.ID, 200, "goodwill"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, invalid := 0, 0
		for range 10 {
			wg.Go(func() {
				_, err := f.svc.Pay(f.ctx, "UNI", "student1", fee.ID, 300)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, patron.ErrInvalid):
					invalid++
				default:
					t.Errorf("payment: %v", err)
				}
			})
		}
		wg.Wait()
		if ok != 6 || invalid != 4 {
			t.Fatalf("%d payments succeeded and %d were refused, want 6 and 4", ok, invalid)
		}
		fees, err := f.svc.Fees(f.ctx, "UNI", "student1", false)
		if err != nil {
			t.Fatal(err)
		}
		var owed int64
		for _, fe := range fees {
			owed += fe.Amount
			for _, tr := range fe.Transactions {
				owed -= tr.Amount
			}
		}
		if owed != 200+300 {
			t.Fatalf("fees minus transactions %d", owed)
		}
		f.wantBalance(t, "student1", map[string]int64{"USD": owed})
	})
}
