package circulation_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

func ptr[T any](v T) *T { return &v }

// withLimits keeps the fixture's rules and sets block limits.
func (f *loanFixture) withLimits(t *testing.T, limits ...circulation.BlockLimit) {
	t.Helper()
	set, err := f.svc.Rules(f.ctx, "UNI")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ReplaceRules(f.ctx, "UNI", set.Version, set.Rules, limits); err != nil {
		t.Fatal(err)
	}
}

func blockTypes(bs []circulation.Block) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Type)
	}
	return out
}

func (f *loanFixture) wantBlocks(t *testing.T, primaryID string, types ...string) []circulation.Block {
	t.Helper()
	bs, err := f.svc.Blocks(f.ctx, "UNI", primaryID)
	if err != nil {
		t.Fatal(err)
	}
	if got := blockTypes(bs); !slices.Equal(got, types) {
		t.Fatalf("blocks of %s: %q, want %q (%+v)", primaryID, got, types, bs)
	}
	return bs
}

// wantBlocked checks that err is a refusal that names the blocks of types.
func wantBlocked(t *testing.T, err error, types ...string) {
	t.Helper()
	var be *circulation.BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want a refusal by blocks %q", err, types)
	}
	if got := blockTypes(be.Blocks); !slices.Equal(got, types) {
		t.Fatalf("refused by blocks %q, want %q", got, types)
	}
	pe := wantKind(t, err, fault.Refused)
	for _, b := range be.Blocks {
		if !slices.Contains(pe.Reasons, b.Description) {
			t.Errorf("reasons %q lack the block %q", pe.Reasons, b.Description)
		}
	}
}

func TestAutomaticBlocksStopTheActionsTheyName(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withLimits(t,
			circulation.BlockLimit{UserGroup: "undergrad", MaxBalance: ptr(int64(500)), Currency: "usd", Stops: []string{"loan", "request"}},
			circulation.BlockLimit{UserGroup: "UNDERGRAD", MaxOverdueLoans: ptr(5)}, // never reached: the first limit of the group applies
			circulation.BlockLimit{UserGroup: "*", MaxOverdueLoans: ptr(0)},
		)
		f.wantBlocks(t, "student1")

		// Owing more than 5.00 stops loans and requests, not renewals.
		l := f.checkOut(t, "student1", "B1")
		fee := f.addFee(t, "student1", 600)
		bs := f.wantBlocks(t, "student1", circulation.BlockMaxBalance)
		if !bs[0].Automatic || !slices.Equal(bs[0].Stops, []string{"loan", "request"}) || bs[0].Description != "student1 owes 6.00 USD, more than the limit of 5.00 USD" {
			t.Fatalf("block %+v", bs[0])
		}
		_, err := f.svc.CheckOut(f.ctx, "UNI", "student1", "B2", circulation.CheckOutOptions{})
		wantBlocked(t, err, circulation.BlockMaxBalance)
		f.clock.Set(utc(2026, 9, 25, 9, 0))
		if _, err := f.svc.Renew(f.ctx, "UNI", l.ID); err != nil {
			t.Fatalf("a balance block stopped a renewal: %v", err)
		}
		if _, err := f.svc.Pay(f.ctx, "UNI", "student1", fee.ID, 100); err != nil {
			t.Fatal(err)
		}
		f.wantBlocks(t, "student1") // 5.00 is not more than the limit
		f.checkOut(t, "student1", "B2")

		// Faculty fall under the catch-all limit: one overdue loan stops
		// everything, renewals included.
		fl := f.checkOut(t, "faculty1", "B3")
		f.clock.Set(utc(2026, 12, 19, 9, 0))
		bs = f.wantBlocks(t, "faculty1", circulation.BlockMaxOverdue)
		if !slices.Equal(bs[0].Stops, []string{"loan", "renew", "request"}) {
			t.Fatalf("stops %q", bs[0].Stops)
		}
		_, err = f.svc.CheckOut(f.ctx, "UNI", "faculty1", "B4", circulation.CheckOutOptions{})
		wantBlocked(t, err, circulation.BlockMaxOverdue)
		_, err = f.svc.Renew(f.ctx, "UNI", fl.ID)
		wantBlocked(t, err, circulation.BlockMaxOverdue)
		res, err := f.svc.RenewMany(f.ctx, "UNI", "faculty1", nil)
		if err != nil || len(res) != 1 || res[0].Renewed || blockTypes(res[0].Blocks)[0] != circulation.BlockMaxOverdue {
			t.Fatalf("renew all %+v, %v", res, err)
		}
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "B3"); err != nil {
			t.Fatal(err)
		}
		f.wantBlocks(t, "faculty1")
	})
}

func TestAccountAndManualBlocksAreListedWithTheActionsTheyStop(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.user(t, "UNI", patron.User{PrimaryID: "old", UserGroup: "UNDERGRAD", ExpiryDate: "2026-08-31",
			Blocks: []patron.Block{
				{BlockType: "LIBRARY", BlockDescription: "Damaged a book", BlockStatus: patron.StatusActive, ExpiryDate: "2026-12-31"},
				{BlockType: "LIBRARY", BlockDescription: "Over", BlockStatus: patron.StatusActive, ExpiryDate: "2026-08-01"},
			}})
		bs := f.wantBlocks(t, "old", circulation.BlockExpired, "LIBRARY")
		if bs[1].Automatic || bs[1].ExpiryDate != "2026-12-31" || bs[1].Description != "old is blocked: Damaged a book" ||
			!slices.Equal(bs[1].Stops, []string{"loan", "renew", "request"}) {
			t.Fatalf("manual block %+v", bs[1])
		}
		_, err := f.svc.CheckOut(f.ctx, "UNI", "old", "B1", circulation.CheckOutOptions{})
		wantBlocked(t, err, circulation.BlockExpired, "LIBRARY")
		_, err = f.svc.Blocks(f.ctx, "UNI", "nobody")
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.Blocks(f.ctx, "OTHER", "old")
		wantKind(t, err, fault.NotFound)
	})
}

func TestBadBlockLimitsAreRefusedAndChangeNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		before, err := f.svc.Rules(f.ctx, "UNI")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.ReplaceRules(f.ctx, "UNI", before.Version, before.Rules, []circulation.BlockLimit{
			{UserGroup: "UNDERGRAD"},
			{MaxBalance: ptr(int64(-1))},
			{MaxOverdueLoans: ptr(-2), Currency: "USD", Stops: []string{"loan", "fly"}},
		})
		pe := wantKind(t, err, fault.Invalid)
		var fields []string
		for _, fe := range pe.Fields {
			fields = append(fields, fe.Field+":"+fe.Code)
		}
		want := []string{"block_limits[0].max_balance:required", "block_limits[1].max_balance:out_of_range", "block_limits[1].currency:required",
			"block_limits[2].currency:bad_format", "block_limits[2].max_overdue_loans:out_of_range", "block_limits[2].stops[1]:unknown_value"}
		if !slices.Equal(fields, want) {
			t.Fatalf("fields %q, want %q", fields, want)
		}
		after, err := f.svc.Rules(f.ctx, "UNI")
		if err != nil || after.Version != before.Version || len(after.BlockLimits) != 0 {
			t.Fatalf("rules changed: %+v, %v", after, err)
		}
	})
}

func TestOverdueLoansBecomeLostByThemselves(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		set, err := f.svc.Rules(f.ctx, "UNI")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ReplaceRules(f.ctx, "UNI", set.Version, []circulation.Rule{{Name: "Everyone", Terms: circulation.Terms{
			LoanPeriod: 4, LoanPeriodUnit: circulation.Weeks, Renewals: 1, LostItemFee: 5000, DaysOverdueUntilLost: 10, Currency: "USD"}}}, nil); err != nil {
			t.Fatal(err)
		}
		var loans []*circulation.Loan
		for _, b := range []string{"B1", "B2", "B3"} {
			loans = append(loans, f.checkOut(t, "student1", b))
		}
		due := loans[0].DueAt
		if loans[0].LostAfter == nil || !loans[0].LostAfter.Equal(due.Add(10*24*time.Hour)) {
			t.Fatalf("lost after %v, due %v", loans[0].LostAfter, due)
		}
		// A renewal, a week before it is due, moves the day it gets lost.
		f.clock.Set(due.Add(-7 * 24 * time.Hour))
		renewed, err := f.svc.Renew(f.ctx, "UNI", loans[2].ID)
		if err != nil || renewed.LostAfter == nil || !renewed.LostAfter.Equal(renewed.DueAt.Add(10*24*time.Hour)) {
			t.Fatalf("renewed %+v, %v", renewed, err)
		}

		f.clock.Set(due.Add(10*24*time.Hour - time.Minute))
		if n, err := f.svc.DeclareOverdueLost(f.ctx); err != nil || n != 0 {
			t.Fatalf("declared %d lost a minute early, %v", n, err)
		}
		f.clock.Set(due.Add(10 * 24 * time.Hour))
		// Two instances run the job at once: each loan is lost once.
		var wg sync.WaitGroup
		counts := make([]int, 2)
		for i := range counts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := f.svc.DeclareOverdueLost(f.ctx)
				if err != nil {
					t.Errorf("job: %v", err)
				}
				counts[i] = n
			}()
		}
		wg.Wait()
		if counts[0]+counts[1] != 2 {
			t.Fatalf("declared %v lost, want 2 in all", counts)
		}
		for _, b := range []string{"B1", "B2"} {
			it, err := f.svc.Item(f.ctx, "UNI", b)
			if err != nil || it.Status != circulation.StatusLost {
				t.Fatalf("item %+v, %v", it, err)
			}
		}
		open, err := f.svc.Loans(f.ctx, "UNI", "student1", true)
		if err != nil || len(open) != 1 || open[0].ItemBarcode != "B3" {
			t.Fatalf("open loans %+v, %v", open, err)
		}
		f.wantBalance(t, "student1", map[string]int64{"USD": 10000})
		hist, err := f.svc.Loans(f.ctx, "UNI", "student1", false)
		if err != nil || len(hist) != 2 || hist[0].Status != circulation.LoanLost || hist[0].LostAfter != nil {
			t.Fatalf("history %+v, %v", hist, err)
		}
		if n, err := f.svc.DeclareOverdueLost(f.ctx); err != nil || n != 0 {
			t.Fatalf("declared %d more, %v", n, err)
		}
	})
}

func TestALostItemThatComesBack(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withFines(t) // 0.25 a day after two days of grace, at most 2.00; lost 50.00
		l := f.checkOut(t, "student2", "B4")
		f.clock.Set(l.DueAt.Add(30 * 24 * time.Hour))
		if _, err := f.svc.DeclareLost(f.ctx, "UNI", "B4"); err != nil {
			t.Fatal(err)
		}
		fees, err := f.svc.Fees(f.ctx, "UNI", "student2", true)
		if err != nil || len(fees) != 1 {
			t.Fatalf("fees %+v, %v", fees, err)
		}
		if _, err := f.svc.Pay(f.ctx, "UNI", "student2", fees[0].ID, 1000); err != nil {
			t.Fatal(err)
		}

		f.clock.Set(l.DueAt.Add(60 * 24 * time.Hour))
		back, err := f.svc.CheckIn(f.ctx, "UNI", "B4")
		if err != nil || back.Status != circulation.LoanComplete || back.ID != l.ID || back.AccruedFine != 200 ||
			back.ReturnedAt == nil || !back.ReturnedAt.Equal(l.DueAt.Add(60*24*time.Hour)) {
			t.Fatalf("returned %+v, %v", back, err)
		}
		it, err := f.svc.Item(f.ctx, "UNI", "B4")
		if err != nil || it.Status != circulation.StatusAvailable {
			t.Fatalf("item %+v, %v", it, err)
		}
		all, err := f.svc.Fees(f.ctx, "UNI", "student2", false)
		if err != nil || len(all) != 2 {
			t.Fatalf("fees %+v, %v", all, err)
		}
		lost := all[1]
		if lost.Type != circulation.FeeLostItem || lost.Status != circulation.FeeClosed || lost.Paid != 1000 || lost.Waived != 4000 ||
			len(lost.Transactions) != 2 || lost.Transactions[1].Reason != "item B4 came back" {
			t.Fatalf("lost-item fee %+v", lost)
		}
		if all[0].Type != circulation.FeeOverdueFine || all[0].Amount != 200 {
			t.Fatalf("overdue fine %+v", all[0])
		}
		f.wantBalance(t, "student2", map[string]int64{"USD": 200})
		// It is on the shelf: lent again, and a second return is NotFound.
		f.checkOut(t, "student1", "B4")
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "B4"); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.CheckIn(f.ctx, "UNI", "B4")
		wantKind(t, err, fault.NotFound)
	})
}
