package circulation_test

import (
	"log/slog"
	"strings"
	"testing"

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
		{Currencies: []circulation.Currency{{Code: "jpy", Rate: "1"}, {Code: "USD", Rate: "150.25"}, {Code: "KWD", Rate: "490"}}},
	} {
		if _, err := circulation.NewService(db, o); err != nil {
			t.Errorf("NewService(%+v): %v", o, err)
		}
	}
}
