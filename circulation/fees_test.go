package circulation_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
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
			wantKind(t, err, fault.Invalid)
		}
		_, err := f.svc.AddFee(f.ctx, "UNI", "nobody", circulation.NewFee{Amount: 10, Currency: "USD", Description: "x"})
		wantKind(t, err, fault.NotFound)

		got, err := f.svc.Pay(f.staff("desk"), "UNI", "student1", fee.ID, 400)
		if err != nil || got.Paid != 400 || got.Remaining() != 600 || got.Status != circulation.FeeOpen || got.Version != 2 {
			t.Fatalf("partial payment %+v, %v", got, err)
		}
		f.wantBalance(t, "student1", map[string]int64{"USD": 600})
		_, err = f.svc.Pay(f.ctx, "UNI", "student1", fee.ID, 601)
		wantField(t, err, "amount", "out_of_range")
		_, err = f.svc.Pay(f.ctx, "UNI", "student1", fee.ID, 0)
		wantKind(t, err, fault.Invalid)
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
		wantKind(t, err, fault.Refused)
		_, err = f.svc.Pay(f.ctx, "UNI", "student2", fee.ID, 1)
		wantKind(t, err, fault.NotFound)

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
				case errors.Is(err, fault.ErrInvalid):
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

// withFines replaces the fixture's rules with ones that charge: 25 cents a
// day after a grace period of 2 days, at most 2.00, and 50.00 for a lost
// item. Undergraduate loans made at the fixture's start are due
// 2026-09-29 23:59 UTC.
func (f *loanFixture) withFines(t *testing.T) {
	t.Helper()
	set, err := f.svc.Rules(f.ctx, "UNI")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ReplaceRules(f.ctx, "UNI", set.Version, []circulation.Rule{{Name: "Everyone", Terms: circulation.Terms{
		LoanPeriod: 4, LoanPeriodUnit: circulation.Weeks, OverdueFine: 25, OverdueFineUnit: circulation.PerDay,
		GracePeriod: 2, GracePeriodUnit: circulation.Days, MaxFine: 200, LostItemFee: 5000, Currency: "USD"}}}, nil); err != nil {
		t.Fatal(err)
	}
}

func (f *loanFixture) openLoan(t *testing.T, primaryID, barcode string) circulation.Loan {
	t.Helper()
	loans, err := f.svc.Loans(f.ctx, "UNI", primaryID, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range loans {
		if l.ItemBarcode == barcode {
			return l
		}
	}
	t.Fatalf("%s has no open loan of %s", primaryID, barcode)
	return circulation.Loan{}
}

func TestOverdueFinesAreChargedOnReturnAfterTheGracePeriod(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withFines(t)
		for _, b := range []string{"B1", "B2", "B3"} {
			f.checkOut(t, "student1", b)
		}
		due := utc(2026, 9, 29, 23, 59)

		// Within the grace period: overdue, but nothing accrues.
		f.clock.Set(due.Add(47 * time.Hour))
		if l := f.openLoan(t, "student1", "B1"); !l.Overdue || l.AccruedFine != 0 {
			t.Fatalf("loan within grace %+v", l)
		}
		l, err := f.svc.CheckIn(f.ctx, "UNI", "B1")
		if err != nil || l.AccruedFine != 0 {
			t.Fatalf("return within grace %+v, %v", l, err)
		}
		f.wantBalance(t, "student1", map[string]int64{})

		// Three days and a minute late: four started days.
		f.clock.Set(due.Add(72*time.Hour + time.Minute))
		if l := f.openLoan(t, "student1", "B2"); l.AccruedFine != 100 || l.FineCurrency != "USD" {
			t.Fatalf("accruing fine %+v", l)
		}
		l, err = f.svc.CheckIn(f.ctx, "UNI", "B2")
		if err != nil || l.AccruedFine != 100 || l.Status != circulation.LoanComplete {
			t.Fatalf("late return %+v, %v", l, err)
		}
		fees, err := f.svc.Fees(f.ctx, "UNI", "student1", true)
		if err != nil || len(fees) != 1 || fees[0].Type != circulation.FeeOverdueFine || fees[0].Amount != 100 ||
			fees[0].LoanID != l.ID || fees[0].Barcode != "B2" || fees[0].Currency != "USD" || fees[0].CreatedBy != "" {
			t.Fatalf("fees %+v, %v", fees, err)
		}
		f.wantBalance(t, "student1", map[string]int64{"USD": 100})

		// Twenty days late: 5.25, capped at 2.00.
		f.clock.Set(due.Add(20 * 24 * time.Hour))
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "B3"); err != nil {
			t.Fatal(err)
		}
		f.wantBalance(t, "student1", map[string]int64{"USD": 300})
	})
}

func TestALostItemIsChargedItsFee(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withFines(t)
		f.checkOut(t, "student2", "B4")
		f.clock.Set(utc(2026, 11, 1, 12, 0))
		l, err := f.svc.DeclareLost(f.ctx, "UNI", "b4")
		if err != nil || l.Status != circulation.LoanLost || l.AccruedFine != 5000 || l.ReturnedAt == nil {
			t.Fatalf("lost loan %+v, %v", l, err)
		}
		it, err := f.svc.Item(f.ctx, "UNI", "B4")
		if err != nil || it.Status != circulation.StatusLost {
			t.Fatalf("item %+v, %v", it, err)
		}
		fees, err := f.svc.Fees(f.ctx, "UNI", "student2", true)
		if err != nil || len(fees) != 1 || fees[0].Type != circulation.FeeLostItem || fees[0].Amount != 5000 || fees[0].LoanID != l.ID {
			t.Fatalf("fees %+v, %v", fees, err)
		}
		hist, err := f.svc.Loans(f.ctx, "UNI", "student2", false)
		if err != nil || len(hist) != 1 || hist[0].Status != circulation.LoanLost {
			t.Fatalf("history %+v, %v", hist, err)
		}
		_, err = f.svc.DeclareLost(f.ctx, "UNI", "B4")
		wantKind(t, err, fault.NotFound)
	})
}

func TestAPatronWhoOwesCannotBeDeleted(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixtureWith(t, db, circulation.Options{Currencies: euroToo})
		f.patrons.AddDeletionGuard(f.svc.DeletionGuard())
		fee := f.addFee(t, "student1", 1250)
		if _, err := f.svc.AddFee(f.ctx, "UNI", "student1", circulation.NewFee{Amount: 300, Currency: "EUR", Description: "Replacement card"}); err != nil {
			t.Fatal(err)
		}
		f.checkOut(t, "student1", "B1")
		pe := wantKind(t, f.patrons.Delete(f.ctx, "UNI", "student1"), fault.Refused)
		if len(pe.Reasons) != 3 || pe.Reasons[0] != "has 1 open loan" || pe.Reasons[1] != "owes 3.00 EUR" || pe.Reasons[2] != "owes 12.50 USD" {
			t.Fatalf("%q", pe.Reasons)
		}
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "B1"); err != nil {
			t.Fatal(err)
		}
		fees, err := f.svc.Fees(f.ctx, "UNI", "student1", true)
		if err != nil {
			t.Fatal(err)
		}
		for _, fe := range fees {
			if fe.ID != fee.ID {
				if _, err := f.svc.Waive(f.staff("librarian"), "UNI", "student1", fe.ID, fe.Remaining(), "card found"); err != nil {
					t.Fatal(err)
				}
			}
		}
		pe = wantKind(t, f.patrons.Delete(f.ctx, "UNI", "student1"), fault.Refused)
		if len(pe.Reasons) != 1 || pe.Reasons[0] != "owes 12.50 USD" {
			t.Fatalf("%q", pe.Reasons)
		}
		if _, err := f.svc.Pay(f.ctx, "UNI", "student1", fee.ID, 1250); err != nil {
			t.Fatal(err)
		}
		if err := f.patrons.Delete(f.ctx, "UNI", "student1"); err != nil {
			t.Fatalf("delete after paying: %v", err)
		}
	})
}

func TestFormatMoney(t *testing.T) {
	for amount, want := range map[int64]string{1250: "12.50 USD", 5: "0.05 USD", -1250: "-12.50 USD"} {
		if got := circulation.FormatMoney(amount, "USD"); got != want {
			t.Errorf("FormatMoney(%d) = %q, want %q", amount, got, want)
		}
	}
	if got := circulation.FormatMoney(500, "JPY"); got != "500 JPY" {
		t.Errorf("JPY: %q", got)
	}
	// ISO 4217's minor units, also where they differ from how amounts
	// are usually shown (IQD, COP); a code not in use has two decimals.
	for _, c := range []struct {
		amount   int64
		currency string
		want     string
	}{
		{1250, "KWD", "1.250 KWD"}, {1250, "IQD", "1.250 IQD"}, {1250, "COP", "12.50 COP"},
		{12345, "CLF", "1.2345 CLF"}, {1250, "ABC", "12.50 ABC"},
		{math.MaxInt64, "USD", "92233720368547758.07 USD"}, {math.MinInt64, "USD", "-92233720368547758.08 USD"},
	} {
		if got := circulation.FormatMoney(c.amount, c.currency); got != c.want {
			t.Errorf("FormatMoney(%d, %s) = %q, want %q", c.amount, c.currency, got, c.want)
		}
	}
}

func TestConcurrentPaymentsAndWaiversAddUp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		fee := f.addFee(t, "student2", 2000)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := range 10 {
			wg.Go(func() {
				var err error
				if i%2 == 0 {
					_, err = f.svc.Pay(f.ctx, "UNI", "student2", fee.ID, 300)
				} else {
					_, err = f.svc.Waive(f.staff("librarian"), "UNI", "student2", fee.ID, 300, "goodwill")
				}
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
				} else if !errors.Is(err, fault.ErrInvalid) {
					t.Errorf("%d: %v", i, err)
				}
			})
		}
		wg.Wait()
		fees, err := f.svc.Fees(f.ctx, "UNI", "student2", false)
		if err != nil || len(fees) != 1 {
			t.Fatalf("fees %+v, %v", fees, err)
		}
		var taken int64
		for _, tr := range fees[0].Transactions {
			taken += tr.Amount
		}
		if ok != 6 || taken != 1800 || fees[0].Paid+fees[0].Waived != taken || fees[0].Status != circulation.FeeOpen {
			t.Fatalf("%d succeeded, transactions %d, fee %+v", ok, taken, fees[0])
		}
		f.wantBalance(t, "student2", map[string]int64{"USD": 200})
	})
}

func TestHourlyFinesCountEveryStartedHour(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixtureWith(t, db, circulation.Options{Currencies: euroToo})
		set, err := f.svc.Rules(f.ctx, "UNI")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ReplaceRules(f.ctx, "UNI", set.Version, []circulation.Rule{{Name: "Reserve desk", Terms: circulation.Terms{
			LoanPeriod: 2, LoanPeriodUnit: circulation.Hours, OverdueFine: 10, OverdueFineUnit: circulation.PerHour,
			GracePeriod: 30, GracePeriodUnit: circulation.Minutes, Currency: "EUR"}}}, nil); err != nil {
			t.Fatal(err)
		}
		l1 := f.checkOut(t, "student1", "B1")
		f.checkOut(t, "student1", "B2")
		if !l1.DueAt.Equal(utc(2026, 9, 1, 11, 0)) {
			t.Fatalf("due %v", l1.DueAt)
		}
		f.clock.Set(utc(2026, 9, 1, 11, 20))
		if l, err := f.svc.CheckIn(f.ctx, "UNI", "B1"); err != nil || l.AccruedFine != 0 {
			t.Fatalf("within grace %+v, %v", l, err)
		}
		f.clock.Set(utc(2026, 9, 1, 13, 30))
		if l, err := f.svc.CheckIn(f.ctx, "UNI", "B2"); err != nil || l.AccruedFine != 30 || l.FineCurrency != "EUR" {
			t.Fatalf("two and a half hours late %+v, %v", l, err)
		}
		f.wantBalance(t, "student1", map[string]int64{"EUR": 30})
	})
}

func TestALoanKeepsTheChargesItWasLentOn(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withFines(t)
		f.checkOut(t, "student1", "B1")
		f.checkOut(t, "student1", "B2")
		// The rules change: no more fines. The loans were lent with them.
		set, err := f.svc.Rules(f.ctx, "UNI")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ReplaceRules(f.ctx, "UNI", set.Version, []circulation.Rule{{Name: "Free", Terms: circulation.Terms{
			LoanPeriod: 4, LoanPeriodUnit: circulation.Weeks}}}, nil); err != nil {
			t.Fatal(err)
		}
		f.clock.Set(utc(2026, 10, 3, 12, 0))
		if l, err := f.svc.CheckIn(f.ctx, "UNI", "B1"); err != nil || l.AccruedFine != 100 {
			t.Fatalf("return %+v, %v", l, err)
		}
		// A loan made before charges were copied falls back on the rules.
		if err := db.Exec("UPDATE pk_circ_loans SET charges_set = ? WHERE item_barcode = ?", false, "B2").Error; err != nil {
			t.Fatal(err)
		}
		if l, err := f.svc.CheckIn(f.ctx, "UNI", "B2"); err != nil || l.AccruedFine != 0 {
			t.Fatalf("return of an old loan %+v, %v", l, err)
		}
		f.wantBalance(t, "student1", map[string]int64{"USD": 100})
	})
}

func TestLoansFromBeforeTheChargesMigrateWithDefaults(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		all := circulation.Migrations()
		if err := migrate.Run(ctx, db, all[:len(all)-1]); err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("INSERT INTO pk_circ_loans (id, institution, user_id, primary_id, item_id, item_barcode, library, loaned_at, due_at, renewals, status, version, updated_at) "+
			"VALUES ('l1', 'UNI', 'u1', 'p1', 'i1', 'B1', 'MAIN', ?, ?, 0, 'open', 1, ?)", utc(2026, 9, 1, 9, 0), utc(2026, 9, 2, 9, 0), utc(2026, 9, 1, 9, 0)).Error; err != nil {
			t.Fatal(err)
		}
		if err := migrate.Run(ctx, db, all); err != nil {
			t.Fatal(err)
		}
		var l circulation.Loan
		if err := db.Where("id = ?", "l1").Take(&l).Error; err != nil || l.ChargesSet || l.Charges != (circulation.Charges{}) {
			t.Fatalf("old loan %+v, %v", l, err)
		}
	})
}
