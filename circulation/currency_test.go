package circulation_test

import (
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/dbtest"
)

// storeFee writes an open fee straight into the database, as fees were
// stored before their amounts and currencies were checked.
func (f *loanFixture) storeFee(t *testing.T, db *gorm.DB, primaryID string, amount int64, currency string) {
	t.Helper()
	u, err := f.patrons.Get(f.ctx, "UNI", primaryID)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	if err := db.Create(&circulation.Fee{ID: uuid.NewString(), Institution: "UNI", UserID: u.ID, PrimaryID: u.PrimaryID,
		Type: circulation.FeeManual, Description: "Stored long ago", Amount: amount, Currency: currency, Status: circulation.FeeOpen,
		CreatedAt: now, UpdatedAt: now, Version: 1}).Error; err != nil {
		t.Fatal(err)
	}
}

// sameData is the fixture seen through another service of options o,
// over the same database, patrons and clock.
func (f *loanFixture) sameData(t *testing.T, db *gorm.DB, o circulation.Options) *loanFixture {
	t.Helper()
	o.Now, o.Logger, o.Patrons = f.clock.Now, slog.New(slog.DiscardHandler), f.patrons
	svc, err := circulation.NewService(db, o)
	if err != nil {
		t.Fatal(err)
	}
	return &loanFixture{fixture: &fixture{svc: svc, clock: f.clock, ctx: f.ctx}, patrons: f.patrons}
}

func TestAManualFeeIsAtMostMaxFee(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		for _, amount := range []int64{math.MaxInt64, circulation.DefaultMaxFee + 1} {
			_, err := f.svc.AddFee(f.ctx, "UNI", "student1", circulation.NewFee{Amount: amount, Currency: "USD", Description: "Damages"})
			wantField(t, err, "amount", "out_of_range")
		}
		all, err := f.svc.Fees(f.ctx, "UNI", "student1", false)
		if err != nil || len(all) != 0 {
			t.Fatalf("refused fees were stored: %+v, %v", all, err)
		}
		f.addFee(t, "student1", circulation.DefaultMaxFee)
		f.addFee(t, "student1", circulation.DefaultMaxFee)
		f.wantBalance(t, "student1", map[string]int64{"USD": 2 * circulation.DefaultMaxFee})

		// A host's own limit.
		small := f.sameData(t, db, circulation.Options{MaxFee: 5000})
		_, err = small.svc.AddFee(small.ctx, "UNI", "student2", circulation.NewFee{Amount: 5001, Currency: "USD", Description: "Damages"})
		wantField(t, err, "amount", "out_of_range")
		small.addFee(t, "student2", 5000)
	})
}

// Balances are summed without overflowing, whatever fees were stored
// before amounts were bounded; what reads them keeps working.
func TestBalancesOfHugeFeesDoNotFail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.patrons.AddDeletionGuard(f.svc.DeletionGuard())
		f.withLimits(t, circulation.BlockLimit{MaxBalance: ptr(int64(1000)), Currency: "USD", Stops: []string{"loan"}})
		l := f.checkOut(t, "student1", "B1")
		f.storeFee(t, db, "student1", math.MaxInt64, "USD")
		f.storeFee(t, db, "student1", math.MaxInt64, "USD")
		f.storeFee(t, db, "student1", 700, "EUR")

		f.wantBalance(t, "student1", map[string]int64{"USD": math.MaxInt64, "EUR": 700})
		acc, err := f.svc.Account(f.ctx, "UNI", "student1")
		if err != nil || acc.Balance["USD"] != math.MaxInt64 {
			t.Fatalf("account %+v, %v", acc, err)
		}
		f.wantBlocks(t, "student1", circulation.BlockMaxBalance)
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student1", "B2", circulation.CheckOutOptions{})
		wantBlocked(t, err, circulation.BlockMaxBalance)
		f.clock.Set(utc(2026, 9, 25, 9, 0))
		if _, err := f.svc.Renew(f.ctx, "UNI", l.ID); err != nil {
			t.Fatalf("renewal: %v", err)
		}
		wantReasons(t, f.patrons.Delete(f.ctx, "UNI", "student1"), "owes 92233720368547758.07 USD", "owes 7.00 EUR")

		// They are waived whole.
		fees, err := f.svc.Fees(f.ctx, "UNI", "student1", true)
		if err != nil {
			t.Fatal(err)
		}
		for _, fee := range fees {
			if _, err := f.svc.Waive(f.staff("librarian"), "UNI", "student1", fee.ID, fee.Remaining(), "charged in error"); err != nil {
				t.Fatal(err)
			}
		}
		f.wantBalance(t, "student1", map[string]int64{})
		f.wantBlocks(t, "student1")
	})
}

// An overdue fine grows to MaxFee and no further, without overflowing;
// terms of use set under a higher limit charge no more than it.
func TestChargesStopAtMaxFee(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixtureWith(t, db, circulation.Options{MaxFee: circulation.MaxFeeLimit})
		set, err := f.svc.Rules(f.ctx, "UNI")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ReplaceRules(f.ctx, "UNI", set.Version, []circulation.Rule{{Name: "Costly", Terms: circulation.Terms{
			LoanPeriod: 2, LoanPeriodUnit: circulation.Hours, OverdueFine: circulation.MaxFeeLimit, OverdueFineUnit: circulation.PerHour,
			LostItemFee: circulation.MaxFeeLimit, Currency: "USD"}}}, nil); err != nil {
			t.Fatal(err)
		}
		l := f.checkOut(t, "student1", "B1")
		f.checkOut(t, "student2", "B2")
		f.checkOut(t, "student2", "B3")
		// 10,000 hours late: 10,000 × MaxFeeLimit is more than an int64.
		f.clock.Set(l.DueAt.Add(10000 * time.Hour))
		open, err := f.svc.Loans(f.ctx, "UNI", "student1", true)
		if err != nil || len(open) != 1 || open[0].AccruedFine != circulation.MaxFeeLimit {
			t.Fatalf("accruing %+v, %v", open, err)
		}
		back, err := f.svc.CheckIn(f.ctx, "UNI", "B1")
		if err != nil || back.AccruedFine != circulation.MaxFeeLimit {
			t.Fatalf("check-in %+v, %v", back, err)
		}
		f.wantBalance(t, "student1", map[string]int64{"USD": circulation.MaxFeeLimit})

		// The same terms, read by a service with a lower limit.
		low := f.sameData(t, db, circulation.Options{MaxFee: 1000})
		if _, err := low.svc.DeclareLost(low.ctx, "UNI", "B2"); err != nil {
			t.Fatal(err)
		}
		if back, err := low.svc.CheckIn(low.ctx, "UNI", "B3"); err != nil || back.AccruedFine != 1000 {
			t.Fatalf("check-in under a lower limit %+v, %v", back, err)
		}
		fees, err := low.svc.Fees(low.ctx, "UNI", "student2", true)
		if err != nil || len(fees) != 2 || fees[0].Amount != 1000 || fees[1].Amount != 1000 {
			t.Fatalf("fees under a lower limit %+v, %v", fees, err)
		}
	})
}

func TestTermsAmountsAreAtMostMaxFee(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixtureWith(t, db, circulation.Options{MaxFee: 5000})
		set, err := f.svc.Rules(f.ctx, "UNI")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.ReplaceRules(f.ctx, "UNI", set.Version, []circulation.Rule{{Terms: circulation.Terms{
			LoanPeriod: 1, LoanPeriodUnit: circulation.Weeks, OverdueFine: 5001, OverdueFineUnit: circulation.PerDay,
			MaxFine: 5001, LostItemFee: 5001, DeliveryFee: 5001, Currency: "USD"}}}, nil)
		for _, field := range []string{"overdue_fine", "max_fine", "lost_item_fee", "delivery_fee"} {
			wantField(t, err, "rules[0].terms."+field, "out_of_range")
		}
		if _, err := f.svc.ReplaceRules(f.ctx, "UNI", set.Version, []circulation.Rule{{Terms: circulation.Terms{
			LoanPeriod: 1, LoanPeriodUnit: circulation.Weeks, OverdueFine: 5000, OverdueFineUnit: circulation.PerDay,
			MaxFine: 5000, LostItemFee: 5000, DeliveryFee: 5000, Currency: "USD"}}}, nil); err != nil {
			t.Fatal(err)
		}
	})
}

// Currencies are ISO 4217 codes in use that the library accepts.
func TestCurrenciesAreThoseTheLibraryAccepts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		for code, want := range map[string]string{"": "required", "ABC": "bad_format", "XXX": "bad_format", "HRK": "bad_format",
			"US": "bad_format", "EUR": "unknown_value", "gbp": "unknown_value"} {
			_, err := f.svc.AddFee(f.ctx, "UNI", "student1", circulation.NewFee{Amount: 100, Currency: code, Description: "Printing"})
			wantField(t, err, "currency", want)
		}
		set, err := f.svc.Rules(f.ctx, "UNI")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.ReplaceRules(f.ctx, "UNI", set.Version, []circulation.Rule{{Terms: circulation.Terms{
			LoanPeriod: 1, LoanPeriodUnit: circulation.Weeks, LostItemFee: 100, Currency: "EUR"}}},
			[]circulation.BlockLimit{{MaxBalance: ptr(int64(100)), Currency: "ABC"}})
		wantField(t, err, "rules[0].terms.currency", "unknown_value")
		wantField(t, err, "block_limits[0].currency", "bad_format")
		if got, _ := f.svc.Rules(f.ctx, "UNI"); got.Version != set.Version {
			t.Fatalf("refused terms were stored: %+v", got)
		}
		all, err := f.svc.Fees(f.ctx, "UNI", "student1", false)
		if err != nil || len(all) != 0 {
			t.Fatalf("refused fees were stored: %+v, %v", all, err)
		}

		// A host that takes euros first, and dollars: codes in any case.
		eu := f.sameData(t, db, circulation.Options{Currencies: []circulation.Currency{{Code: " eur "}, {Code: "usd", Rate: "0.9"}}})
		fee, err := eu.svc.AddFee(eu.ctx, "UNI", "student1", circulation.NewFee{Amount: 100, Currency: "eur", Description: "Printing"})
		if err != nil || fee.Currency != "EUR" {
			t.Fatalf("a fee in euros %+v, %v", fee, err)
		}
	})
}

// A balance limit counts what is owed in every currency, at the rates the
// library sets; a currency without a rate is over any limit.
func TestABalanceLimitWeighsEveryCurrency(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixtureWith(t, db, circulation.Options{Currencies: euroToo}) // 1 EUR = 1.10 USD
		f.withLimits(t,
			circulation.BlockLimit{UserGroup: "UNDERGRAD", MaxBalance: ptr(int64(1000)), Currency: "USD"},
			circulation.BlockLimit{UserGroup: "FACULTY", MaxBalance: ptr(int64(1000)), Currency: "EUR"},
		)
		fee := func(who string, amount int64, currency string) {
			t.Helper()
			if _, err := f.svc.AddFee(f.ctx, "UNI", who, circulation.NewFee{Amount: amount, Currency: currency, Description: "Damages"}); err != nil {
				t.Fatal(err)
			}
		}
		wantWhy := func(who, why string) {
			t.Helper()
			bs := f.wantBlocks(t, who, circulation.BlockMaxBalance)
			if bs[0].Description != why {
				t.Fatalf("block of %s: %q, want %q", who, bs[0].Description, why)
			}
		}

		// 5,000.00 EUR is more than 10.00 USD.
		fee("student2", 500000, "EUR")
		wantWhy("student2", "student2 owes 5000.00 EUR, 5500.00 USD at the library's rates, more than the limit of 10.00 USD")
		_, err := f.svc.CheckOut(f.ctx, "UNI", "student2", "B1", circulation.CheckOutOptions{})
		wantBlocked(t, err, circulation.BlockMaxBalance)

		// 5.00 USD and 4.00 EUR (4.40 USD) are not; one euro more is.
		fee("student1", 500, "USD")
		fee("student1", 400, "EUR")
		f.wantBlocks(t, "student1")
		fee("student1", 100, "EUR")
		wantWhy("student1", "student1 owes 5.00 USD and 5.00 EUR, 10.50 USD at the library's rates, more than the limit of 10.00 USD")

		// The other way: 11.00 USD is 10.00 EUR exactly, not more; a cent
		// more is (shown rounded up).
		fee("faculty1", 1100, "USD")
		f.wantBlocks(t, "faculty1")
		fee("faculty1", 1, "USD")
		wantWhy("faculty1", "faculty1 owes 11.01 USD, 10.01 EUR at the library's rates, more than the limit of 10.00 EUR")

		// A currency the library no longer accepts has no rate: any amount
		// of it is over the limit.
		f.storeFee(t, db, "helper", 100, "GBP")
		wantWhy("helper", "helper owes 1.00 GBP, and GBP has no rate to weigh against the limit of 10.00 USD")
	})
}

func TestNewServiceChecksTheMoneyOptions(t *testing.T) {
	db := dbtest.Open(t, sqldb.SQLite)
	for _, o := range []circulation.Options{
		{MaxFee: -1},
		{MaxFee: circulation.MaxFeeLimit + 1},
		{Currencies: []circulation.Currency{{Code: "ABC"}}},
		{Currencies: []circulation.Currency{{Code: "USD"}, {Code: "usd", Rate: "1"}}},
		{Currencies: []circulation.Currency{{Code: "USD"}, {Code: "EUR"}}},
		{Currencies: []circulation.Currency{{Code: "USD"}, {Code: "EUR", Rate: "0"}}},
		{Currencies: []circulation.Currency{{Code: "USD"}, {Code: "EUR", Rate: "-1.1"}}},
		{Currencies: []circulation.Currency{{Code: "USD"}, {Code: "EUR", Rate: "1e3"}}},
		{Currencies: []circulation.Currency{{Code: "USD"}, {Code: "EUR", Rate: "11/10"}}},
		{Currencies: []circulation.Currency{{Code: "USD", Rate: "2"}}},
	} {
		if _, err := circulation.NewService(db, o); err == nil || !strings.HasPrefix(err.Error(), "circulation: ") {
			t.Errorf("NewService(%+v): %v", o, err)
		}
	}
	for _, o := range []circulation.Options{
		{MaxFee: circulation.MaxFeeLimit},
		{Currencies: []circulation.Currency{{Code: "jpy", Rate: "1"}, {Code: "USD", Rate: "150.25"}, {Code: "KWD", Rate: "490"}}},
	} {
		if _, err := circulation.NewService(db, o); err != nil {
			t.Errorf("NewService(%+v): %v", o, err)
		}
	}
}
