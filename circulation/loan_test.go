package circulation_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
	"github.com/patronkit/patronkit/patron"
)

type loanFixture struct {
	*fixture
	patrons *patron.Service
}

// loanFixture sets up an institution UNI with library MAIN, items B1..B9,
// rules (faculty to the end of semester, undergraduates 4 weeks with two
// renewals of 2 weeks and at most 3 loans) and users student1, student2,
// faculty1 and helper (a proxy for faculty1). The clock reads
// 2026-09-01 09:00 UTC.
func newLoanFixture(t *testing.T, db *gorm.DB) *loanFixture {
	t.Helper()
	return newLoanFixtureWith(t, db, circulation.Options{})
}

// euroToo accepts US dollars and euros, one euro worth 1.10 USD.
var euroToo = []circulation.Currency{{Code: "USD"}, {Code: "EUR", Rate: "1.10"}}

// newLoanFixtureWith is newLoanFixture with a service of options o (its
// clock, logger and patron service are the fixture's).
func newLoanFixtureWith(t *testing.T, db *gorm.DB, o circulation.Options) *loanFixture {
	t.Helper()
	ctx := context.Background()
	if err := migrate.Run(ctx, db, append(patron.Migrations(), circulation.Migrations()...)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	c := &clock{now: utc(2026, 9, 1, 9, 0)}
	ps, err := patron.NewService(db, patron.Options{Now: c.Now, PINCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	o.Now, o.Logger, o.Patrons = c.Now, slog.New(slog.DiscardHandler), ps
	svc, err := circulation.NewService(db, o)
	if err != nil {
		t.Fatal(err)
	}
	f := &loanFixture{fixture: &fixture{svc: svc, clock: c, ctx: ctx}, patrons: ps}
	f.library(t, "UNI", circulation.Library{Code: "MAIN", Name: "Main Library"})
	for i := 1; i <= 9; i++ {
		f.item(t, "UNI", circulation.Item{Barcode: fmt.Sprintf("B%d", i), Title: fmt.Sprintf("Book %d", i), Library: "MAIN", MaterialType: "BOOK"})
	}
	if _, err := svc.ReplaceRules(ctx, "UNI", 0, []circulation.Rule{
		{Name: "Faculty: end of semester", UserGroup: "FACULTY", Terms: circulation.Terms{FixedDueDate: "2026-12-18", Renewals: 1}},
		{Name: "Undergraduates", UserGroup: "UNDERGRAD", Terms: circulation.Terms{LoanPeriod: 4, LoanPeriodUnit: "weeks",
			Renewals: 2, RenewalPeriod: 2, RenewalPeriodUnit: "weeks", MaxLoans: 3}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	f.user(t, "UNI", patron.User{PrimaryID: "student1", UserGroup: "UNDERGRAD", ExpiryDate: "2027-06-30"})
	f.user(t, "UNI", patron.User{PrimaryID: "student2", UserGroup: "UNDERGRAD"})
	f.user(t, "UNI", patron.User{PrimaryID: "faculty1", UserGroup: "FACULTY"})
	f.user(t, "UNI", patron.User{PrimaryID: "helper", UserGroup: "UNDERGRAD", ProxyFor: []patron.ProxyFor{{PrimaryID: "faculty1"}}})
	return f
}

func (f *loanFixture) user(t *testing.T, inst string, u patron.User) *patron.User {
	t.Helper()
	if u.FirstName == "" {
		u.FirstName, u.LastName = "Pat", "Ron"
	}
	out, err := f.patrons.Create(f.ctx, inst, &u)
	if err != nil {
		t.Fatalf("create user %s: %v", u.PrimaryID, err)
	}
	return out
}

func (f *loanFixture) checkOut(t *testing.T, primaryID, barcode string) *circulation.Loan {
	t.Helper()
	l, err := f.svc.CheckOut(f.ctx, "UNI", primaryID, barcode, circulation.CheckOutOptions{})
	if err != nil {
		t.Fatalf("check out %s to %s: %v", barcode, primaryID, err)
	}
	return l
}

func wantReasons(t *testing.T, err error, parts ...string) *fault.Error {
	t.Helper()
	pe := wantKind(t, err, fault.Refused)
	for _, p := range parts {
		if !slices.ContainsFunc(pe.Reasons, func(r string) bool { return strings.Contains(r, p) }) {
			t.Errorf("no reason with %q in %q", p, pe.Reasons)
		}
	}
	return pe
}

func TestCheckOutSetsTheDueDateFromTheTerms(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		l := f.checkOut(t, "Student1", "b1")
		if !l.DueAt.Equal(utc(2026, 9, 29, 23, 59)) || l.PrimaryID != "student1" || l.ItemBarcode != "B1" || l.Library != "MAIN" ||
			l.Status != circulation.LoanOpen || l.ReturnedAt != nil || l.Renewals != 0 || !l.LoanedAt.Equal(f.clock.Now()) || l.ID == "" {
			t.Fatalf("undergraduate loan %+v", l)
		}
		fl := f.checkOut(t, "faculty1", "B2")
		if !fl.DueAt.Equal(utc(2026, 12, 18, 23, 59)) {
			t.Fatalf("faculty due %v", fl.DueAt)
		}
		it, err := f.svc.Item(f.ctx, "UNI", "B1")
		if err != nil || it.Status != circulation.StatusOnLoan || it.Version != 2 {
			t.Fatalf("item after check-out %+v, %v", it, err)
		}
		open, err := f.svc.Loans(f.ctx, "UNI", "STUDENT1", true)
		if err != nil || len(open) != 1 || open[0].ID != l.ID || !open[0].DueAt.Equal(l.DueAt) || open[0].Overdue || open[0].DueAt.Location() != time.UTC {
			t.Fatalf("open loans %+v, %v", open, err)
		}
		_, err = f.svc.CheckOut(f.ctx, "UNI", "nobody", "B3", circulation.CheckOutOptions{})
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student1", "NOPE", circulation.CheckOutOptions{})
		wantKind(t, err, fault.NotFound)
	})
}

func TestCheckOutRefusalsListEveryReason(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.user(t, "UNI", patron.User{PrimaryID: "lapsed", UserGroup: "UNDERGRAD", Status: patron.StatusInactive, ExpiryDate: "2026-08-31",
			Blocks: []patron.Block{
				{BlockType: "GENERAL", BlockDescription: "Unpaid fees"},
				{BlockType: "GENERAL", BlockDescription: "Lifted block", BlockStatus: patron.StatusInactive},
				{BlockType: "GENERAL", BlockDescription: "Expired block", ExpiryDate: "2026-08-31"},
			}})
		f.checkOut(t, "student1", "B1")
		_, err := f.svc.CheckOut(f.ctx, "UNI", "lapsed", "B1", circulation.CheckOutOptions{})
		pe := wantReasons(t, err, "lapsed is inactive", "expired on 2026-08-31", "blocked: Unpaid fees", "item B1 is on loan")
		if len(pe.Reasons) != 4 {
			t.Fatalf("reasons %q", pe.Reasons)
		}
		// Nothing was written.
		if loans, err := f.svc.ItemLoans(f.ctx, "UNI", "B1"); err != nil || len(loans) != 1 {
			t.Fatalf("%+v, %v", loans, err)
		}

		// Expiring today still lends; the maximum of 3 loans is counted.
		f.user(t, "UNI", patron.User{PrimaryID: "lastday", UserGroup: "UNDERGRAD", ExpiryDate: "2026-09-01"})
		f.checkOut(t, "lastday", "B2")
		f.checkOut(t, "student1", "B3")
		f.checkOut(t, "student1", "B4")
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student1", "B5", circulation.CheckOutOptions{})
		pe = wantReasons(t, err, "student1 already has 3 loans")
		if len(pe.Reasons) != 1 {
			t.Fatalf("reasons %q", pe.Reasons)
		}

		// No terms for the group.
		f.user(t, "UNI", patron.User{PrimaryID: "visitor", UserGroup: "VISITOR"})
		_, err = f.svc.CheckOut(f.ctx, "UNI", "visitor", "B5", circulation.CheckOutOptions{})
		wantReasons(t, err, `no rule matches user_group "VISITOR"`)

		// An item whose status says available while it is still on loan
		// (written behind the service's back): the open loan's key
		// refuses the second loan.
		if err := db.Model(&circulation.Item{}).Where("barcode = ?", "B1").Update("status", circulation.StatusAvailable).Error; err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student2", "B1", circulation.CheckOutOptions{})
		if pe := wantReasons(t, err, "item B1 is on loan"); len(pe.Reasons) != 1 {
			t.Fatalf("reasons %q", pe.Reasons)
		}

		// A missing item status refuses.
		it, _ := f.svc.Item(f.ctx, "UNI", "B6")
		it.Status = circulation.StatusMissing
		if _, err := f.svc.ReplaceItem(f.ctx, "UNI", "B6", it.Version, it); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student2", "B6", circulation.CheckOutOptions{})
		wantReasons(t, err, "item B6 is missing")
	})
}

func TestAProxyBorrowsForTheSponsor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		l, err := f.svc.CheckOut(f.ctx, "UNI", "faculty1", "B1", circulation.CheckOutOptions{Proxy: "Helper"})
		if err != nil {
			t.Fatal(err)
		}
		// The sponsor's loan, on the sponsor's terms, recording the proxy.
		if l.PrimaryID != "faculty1" || l.ProxyPrimaryID != "helper" || !l.DueAt.Equal(utc(2026, 12, 18, 23, 59)) {
			t.Fatalf("%+v", l)
		}
		if loans, err := f.svc.Loans(f.ctx, "UNI", "faculty1", true); err != nil || len(loans) != 1 || loans[0].ProxyPrimaryID != "helper" {
			t.Fatalf("sponsor's loans %+v, %v", loans, err)
		}
		if loans, err := f.svc.Loans(f.ctx, "UNI", "helper", true); err != nil || len(loans) != 0 {
			t.Fatalf("proxy's loans %+v, %v", loans, err)
		}
		// Not a proxy for student1.
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student1", "B2", circulation.CheckOutOptions{Proxy: "helper"})
		wantReasons(t, err, "helper is not an active proxy for student1")
		// An expired relation is not active.
		f.user(t, "UNI", patron.User{PrimaryID: "former", UserGroup: "UNDERGRAD", ProxyFor: []patron.ProxyFor{{PrimaryID: "faculty1", ExpiryDate: "2026-08-31"}}})
		_, err = f.svc.CheckOut(f.ctx, "UNI", "faculty1", "B2", circulation.CheckOutOptions{Proxy: "former"})
		wantReasons(t, err, "former is not an active proxy for faculty1")
		_, err = f.svc.CheckOut(f.ctx, "UNI", "faculty1", "B2", circulation.CheckOutOptions{Proxy: "ghost"})
		wantKind(t, err, fault.NotFound)
	})
}

func TestRenewalsFollowTheTerms(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		l := f.checkOut(t, "student1", "B1") // due 2026-09-29 23:59
		early := f.checkOut(t, "student1", "B2")

		// Two weeks from 2 September would be earlier than the due date.
		f.clock.Set(utc(2026, 9, 2, 10, 0))
		_, err := f.svc.Renew(f.ctx, "UNI", l.ID)
		wantReasons(t, err, "would not move the due date")

		f.clock.Set(utc(2026, 9, 20, 10, 0))
		r, err := f.svc.Renew(f.ctx, "UNI", l.ID)
		if err != nil || !r.DueAt.Equal(utc(2026, 10, 4, 23, 59)) || r.Renewals != 1 || r.Version != 2 {
			t.Fatalf("first renewal %+v, %v", r, err)
		}
		f.clock.Set(utc(2026, 9, 22, 10, 0))
		if r, err = f.svc.Renew(f.ctx, "UNI", l.ID); err != nil || !r.DueAt.Equal(utc(2026, 10, 6, 23, 59)) || r.Renewals != 2 {
			t.Fatalf("second renewal %+v, %v", r, err)
		}
		f.clock.Set(utc(2026, 9, 23, 10, 0))
		_, err = f.svc.Renew(f.ctx, "UNI", l.ID)
		pe := wantReasons(t, err, "renewed 2 times, the most the terms of use allow (2)")
		if len(pe.Reasons) != 1 {
			t.Fatalf("%q", pe.Reasons)
		}

		// Selected ids: one renewed, one not this patron's, one unknown.
		mine := f.checkOut(t, "student2", "B4") // due 2026-10-21
		f.clock.Set(utc(2026, 10, 15, 12, 0))
		res, err := f.svc.RenewMany(f.ctx, "UNI", "student2", []string{mine.ID, l.ID, "no-such-loan"})
		if err != nil || len(res) != 3 {
			t.Fatalf("%+v, %v", res, err)
		}
		if !res[0].Renewed || !res[0].DueAt.Equal(utc(2026, 10, 29, 23, 59)) || res[1].Renewed || res[2].Renewed ||
			!strings.Contains(res[1].Reasons[0], "student2 has no open loan") || !strings.Contains(res[2].Reasons[0], "student2 has no open loan") {
			t.Fatalf("%+v", res)
		}

		// A block and an expired account stop every renewal, each listed.
		if _, err := f.patrons.AddBlock(f.ctx, "UNI", "student1", patron.Block{BlockType: "GENERAL", BlockDescription: "Library card lost"}); err != nil {
			t.Fatal(err)
		}
		f.clock.Set(utc(2027, 7, 1, 10, 0))
		res, err = f.svc.RenewMany(f.ctx, "UNI", "student1", nil)
		if err != nil || len(res) != 2 {
			t.Fatalf("%+v, %v", res, err)
		}
		for _, x := range res {
			if x.Renewed || !slices.ContainsFunc(x.Reasons, func(r string) bool { return strings.Contains(r, "blocked: Library card lost") }) ||
				!slices.ContainsFunc(x.Reasons, func(r string) bool { return strings.Contains(r, "expired on 2027-06-30") }) {
				t.Fatalf("%+v", x)
			}
		}
		if res[0].LoanID != early.ID || !res[0].DueAt.Equal(early.DueAt) || res[1].LoanID != l.ID || !res[1].DueAt.Equal(utc(2026, 10, 6, 23, 59)) {
			t.Fatalf("results in due order: %+v", res)
		}
		_, err = f.svc.Renew(f.ctx, "UNI", "no-such-loan")
		wantKind(t, err, fault.NotFound)
	})
}

func TestCheckInCompletesTheLoanAndKeepsHistory(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		l := f.checkOut(t, "student1", "B1")
		f.clock.Set(utc(2026, 9, 10, 15, 30))
		back, err := f.svc.CheckIn(f.ctx, "UNI", "b1")
		if err != nil || back.ID != l.ID || back.Status != circulation.LoanComplete || back.ReturnedAt == nil || !back.ReturnedAt.Equal(f.clock.Now()) {
			t.Fatalf("check-in %+v, %v", back, err)
		}
		if it, err := f.svc.Item(f.ctx, "UNI", "B1"); err != nil || it.Status != circulation.StatusAvailable {
			t.Fatalf("item after check-in %+v, %v", it, err)
		}
		_, err = f.svc.CheckIn(f.ctx, "UNI", "B1")
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.Renew(f.ctx, "UNI", l.ID)
		wantKind(t, err, fault.NotFound)

		// Lent again, to someone else; the history keeps both.
		f.clock.Set(utc(2026, 9, 11, 9, 0))
		again := f.checkOut(t, "student2", "B1")
		if open, err := f.svc.Loans(f.ctx, "UNI", "student1", true); err != nil || len(open) != 0 {
			t.Fatalf("open %+v, %v", open, err)
		}
		hist, err := f.svc.Loans(f.ctx, "UNI", "student1", false)
		if err != nil || len(hist) != 1 || hist[0].ID != l.ID || hist[0].ReturnedAt == nil || !hist[0].ReturnedAt.Equal(utc(2026, 9, 10, 15, 30)) {
			t.Fatalf("history %+v, %v", hist, err)
		}
		byItem, err := f.svc.ItemLoans(f.ctx, "UNI", "B1")
		if err != nil || len(byItem) != 2 || byItem[0].ID != again.ID || byItem[1].ID != l.ID {
			t.Fatalf("item loans %+v, %v", byItem, err)
		}
		// The returned loan no longer counts against the limit of 3.
		f.checkOut(t, "student1", "B2")
		f.checkOut(t, "student1", "B3")
		f.checkOut(t, "student1", "B4")

		// Two check-ins of one item at once: one returns it, the other
		// finds it not on loan, and the count of open loans stays right.
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { _, errs[i] = f.svc.CheckIn(f.ctx, "UNI", "B4") })
		}
		wg.Wait()
		returned := 0
		for _, err := range errs {
			if err == nil {
				returned++
			} else if !errors.Is(err, fault.ErrNotFound) {
				t.Fatalf("a second check-in: %v", err)
			}
		}
		if returned != 1 {
			t.Fatalf("%d check-ins returned B4", returned)
		}
		f.checkOut(t, "student1", "B5")
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student1", "B6", circulation.CheckOutOptions{})
		wantReasons(t, err, "student1 already has 3 loans")
	})
}

func TestOpenLoansBecomeOverdueAsTheClockMoves(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.checkOut(t, "student1", "B1")
		f.clock.Set(utc(2026, 9, 29, 23, 59))
		if open, err := f.svc.Loans(f.ctx, "UNI", "student1", true); err != nil || len(open) != 1 || open[0].Overdue {
			t.Fatalf("at the due date %+v, %v", open, err)
		}
		f.clock.Set(utc(2026, 9, 30, 0, 0))
		if open, err := f.svc.Loans(f.ctx, "UNI", "student1", true); err != nil || len(open) != 1 || !open[0].Overdue {
			t.Fatalf("after the due date %+v, %v", open, err)
		}
	})
}

func TestOneItemIsNeverLentTwice(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		users := []string{"student1", "student2", "faculty1", "helper"}
		for round := range 3 {
			barcode := fmt.Sprintf("B%d", round+1)
			errs := make([]error, 2*len(users))
			var wg sync.WaitGroup
			for i := range errs {
				wg.Go(func() {
					_, errs[i] = f.svc.CheckOut(f.ctx, "UNI", users[i%len(users)], barcode, circulation.CheckOutOptions{})
				})
			}
			wg.Wait()
			won := 0
			for _, err := range errs {
				if err == nil {
					won++
					continue
				}
				// A patron who already won the earlier rounds may also be
				// at the limit of 3 loans.
				pe := wantKind(t, err, fault.Refused)
				if !slices.ContainsFunc(pe.Reasons, func(r string) bool {
					return strings.Contains(r, "item "+barcode+" is on loan") || strings.Contains(r, "already has 3 loans")
				}) {
					t.Fatalf("a losing check-out: %v", err)
				}
			}
			if won != 1 {
				t.Fatalf("%s: %d check-outs won", barcode, won)
			}
			loans, err := f.svc.ItemLoans(f.ctx, "UNI", barcode)
			if err != nil || len(loans) != 1 || loans[0].Status != circulation.LoanOpen {
				t.Fatalf("%+v, %v", loans, err)
			}
		}
	})
}

func TestConcurrentCheckOutsKeepTheLoanLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = f.svc.CheckOut(f.ctx, "UNI", "student1", fmt.Sprintf("B%d", i+1), circulation.CheckOutOptions{})
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			wantReasons(t, err, "student1 already has 3 loans")
		}
		if won != 3 {
			t.Fatalf("%d check-outs succeeded under a limit of 3", won)
		}
		open, err := f.svc.Loans(f.ctx, "UNI", "student1", true)
		if err != nil || len(open) != 3 {
			t.Fatalf("%d open loans, %v", len(open), err)
		}
		page, err := f.svc.Items(f.ctx, "UNI", circulation.ItemQuery{Status: circulation.StatusOnLoan})
		if err != nil || page.TotalRecordCount != 3 {
			t.Fatalf("%d items on loan, %v", page.TotalRecordCount, err)
		}
		// Returning one frees a place, concurrently too.
		if _, err := f.svc.CheckIn(f.ctx, "UNI", open[0].ItemBarcode); err != nil {
			t.Fatal(err)
		}
		errs = make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = f.svc.CheckOut(f.ctx, "UNI", "student1", "B9", circulation.CheckOutOptions{})
			})
		}
		wg.Wait()
		won = 0
		for _, err := range errs {
			if err == nil {
				won++
			} else if !errors.Is(err, fault.ErrRefused) {
				t.Fatalf("a losing check-out: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d check-outs of B9 won", won)
		}
	})
}

func TestAPatronWithLoansCannotBeDeleted(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.patrons.AddDeletionGuard(f.svc.DeletionGuard())
		f.checkOut(t, "student1", "B1")
		f.checkOut(t, "student1", "B2")
		err := f.patrons.Delete(f.ctx, "UNI", "student1")
		pe := wantKind(t, err, fault.Refused)
		if len(pe.Reasons) != 1 || pe.Reasons[0] != "has 2 open loans" {
			t.Fatalf("%q", pe.Reasons)
		}
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "B1"); err != nil {
			t.Fatal(err)
		}
		pe = wantKind(t, f.patrons.Delete(f.ctx, "UNI", "student1"), fault.Refused)
		if len(pe.Reasons) != 1 || pe.Reasons[0] != "has 1 open loan" {
			t.Fatalf("%q", pe.Reasons)
		}
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "B2"); err != nil {
			t.Fatal(err)
		}
		if err := f.patrons.Delete(f.ctx, "UNI", "student1"); err != nil {
			t.Fatalf("delete with no open loans: %v", err)
		}
		// student2 has no loans at all.
		if err := f.patrons.Delete(f.ctx, "UNI", "student2"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLoansStayInTheirInstitution(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		l := f.checkOut(t, "student1", "B1")
		_, err := f.svc.CheckOut(f.ctx, "OTHER", "student1", "B2", circulation.CheckOutOptions{})
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.Loans(f.ctx, "OTHER", "student1", true)
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.ItemLoans(f.ctx, "OTHER", "B1")
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.CheckIn(f.ctx, "OTHER", "B1")
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.Renew(f.ctx, "OTHER", l.ID)
		wantKind(t, err, fault.NotFound)

		// OTHER's own student1 and B1 are not UNI's.
		f.library(t, "OTHER", circulation.Library{Code: "MAIN", Name: "Their Main"})
		f.item(t, "OTHER", circulation.Item{Barcode: "B1", Title: "Theirs", Library: "MAIN"})
		f.user(t, "OTHER", patron.User{PrimaryID: "student1", UserGroup: "UNDERGRAD"})
		if _, err := f.svc.ReplaceRules(f.ctx, "OTHER", 0, []circulation.Rule{{Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: "days"}}}, nil); err != nil {
			t.Fatal(err)
		}
		theirs, err := f.svc.CheckOut(f.ctx, "OTHER", "student1", "B1", circulation.CheckOutOptions{})
		if err != nil || !theirs.DueAt.Equal(utc(2026, 9, 2, 23, 59)) {
			t.Fatalf("%+v, %v", theirs, err)
		}
		if loans, err := f.svc.Loans(f.ctx, "UNI", "student1", true); err != nil || len(loans) != 1 || loans[0].ID != l.ID {
			t.Fatalf("UNI's loans %+v, %v", loans, err)
		}
		res, err := f.svc.RenewMany(f.ctx, "OTHER", "student1", []string{l.ID})
		if err != nil || len(res) != 1 || res[0].Renewed {
			t.Fatalf("%+v, %v", res, err)
		}
	})
}

func TestTheOnLoanStatusBelongsToTheLoans(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		item, err := f.svc.Item(f.ctx, "UNI", "B1")
		if err != nil {
			t.Fatal(err)
		}
		// Not by hand on an available item...
		in := *item
		in.Status = circulation.StatusOnLoan
		if _, err := f.svc.ReplaceItem(f.ctx, "UNI", "B1", item.Version, &in); err == nil {
			t.Fatal("on_loan was set by hand")
		}
		// ...nor cleared by hand while the loan is open.
		if _, err := f.svc.CheckOut(f.ctx, "UNI", "student1", "B1", circulation.CheckOutOptions{}); err != nil {
			t.Fatal(err)
		}
		lent, _ := f.svc.Item(f.ctx, "UNI", "B1")
		in = *lent
		in.Status = circulation.StatusAvailable
		if _, err := f.svc.ReplaceItem(f.ctx, "UNI", "B1", lent.Version, &in); err == nil {
			t.Fatal("a lent item was made available by hand")
		}
		rep, err := f.svc.LoadItems(f.ctx, "UNI", []circulation.Item{{Barcode: "B1", Title: lent.Title, Library: lent.Library, Status: circulation.StatusAvailable}})
		if err != nil || len(rep.Rejected) != 1 {
			t.Fatalf("a bulk load made a lent item available: %+v %v", rep, err)
		}
		if _, err := f.svc.CreateItem(f.ctx, "UNI", &circulation.Item{Barcode: "QA76/1", Title: "T", Library: lent.Library}); err == nil {
			t.Fatal("a barcode with a slash cannot be addressed in a URL")
		}
	})
}

func TestRenewalsFollowTheItemAndCountEachLoanOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		loan, err := f.svc.CheckOut(f.ctx, "UNI", "student1", "B1", circulation.CheckOutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Staff relabel the lent item: its loan still renews.
		item, _ := f.svc.Item(f.ctx, "UNI", "B1")
		relabelled := *item
		relabelled.Barcode = "B1-NEW"
		if _, err := f.svc.ReplaceItem(f.ctx, "UNI", "B1", item.Version, &relabelled); err != nil {
			t.Fatal(err)
		}
		f.clock.Set(f.clock.Now().AddDate(0, 0, 20))
		res, err := f.svc.RenewMany(f.ctx, "UNI", "student1", []string{loan.ID, loan.ID, loan.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || !res[0].Renewed {
			t.Fatalf("a loan named three times: %+v", res)
		}
	})
}

// A check-out and the deletion of its borrower at the same moment: one of
// the two wins, never both (no loan of a deleted patron).
func TestACheckOutAndTheDeletionOfItsBorrowerDoNotBothHappen(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.patrons.AddDeletionGuard(f.svc.DeletionGuard())
		lent, deleted := 0, 0
		// The delete starts later and later, to meet the check-out at every
		// point of its way.
		for i := range 9 {
			who := fmt.Sprintf("racer%d", i)
			f.user(t, "UNI", patron.User{PrimaryID: who, UserGroup: "UNDERGRAD"})
			barcode := fmt.Sprintf("B%d", i+1)
			var wg sync.WaitGroup
			var outErr, delErr error
			wg.Go(func() { _, outErr = f.svc.CheckOut(f.ctx, "UNI", who, barcode, circulation.CheckOutOptions{}) })
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 700 * time.Microsecond)
				delErr = f.patrons.Delete(f.ctx, "UNI", who)
			})
			wg.Wait()
			if outErr == nil && delErr == nil {
				t.Fatalf("%s: the loan was made and its borrower deleted", who)
			}
			if outErr == nil {
				lent++
				if _, err := f.svc.CheckIn(f.ctx, "UNI", barcode); err != nil {
					t.Fatal(err)
				}
			}
			if delErr == nil {
				deleted++
				var n int64
				db.Model(&circulation.Loan{}).Where("primary_id = ?", who).Count(&n)
				if n != 0 {
					t.Fatalf("%s was deleted with %d loans", who, n)
				}
				if it, _ := f.svc.Item(f.ctx, "UNI", barcode); it.Status != circulation.StatusAvailable {
					t.Fatalf("item %s is %s", barcode, it.Status)
				}
			}
		}
		t.Logf("%d lent, %d deleted", lent, deleted)
	})
}
