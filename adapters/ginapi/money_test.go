package ginapi_test

import (
	"context"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/dbtest"
)

// storeFee writes a fee straight into the database, as fees were stored
// before their amounts were bounded.
func storeFee(t *testing.T, s *server, primaryID string, amount int64, currency string) {
	t.Helper()
	u, err := s.kit.Patrons.Get(context.Background(), "DEMO", primaryID)
	if err != nil {
		t.Fatal(err)
	}
	now := testNow
	f := circulation.Fee{ID: uuid.NewString(), Institution: "DEMO", UserID: u.ID, PrimaryID: u.PrimaryID,
		Type: circulation.FeeManual, Description: "Stored before the limit", Amount: amount, Currency: currency,
		Status: circulation.FeeOpen, CreatedAt: now, UpdatedAt: now, Version: 1}
	if err := s.db.Create(&f).Error; err != nil {
		t.Fatal(err)
	}
}

// balanceRoutesAnswer checks that every route that reads student1's
// balance answers, none with a 500.
func balanceRoutesAnswer(t *testing.T, s *server, loanID string) {
	t.Helper()
	for _, r := range []struct {
		who, method, path string
		body              any
		want              int
	}{
		{student, "GET", "/api/me", nil, http.StatusOK},
		{student, "GET", "/api/me/fees", nil, http.StatusOK},
		{student, "GET", "/api/me/blocks", nil, http.StatusOK},
		{deskStaff, "GET", "/api/users/student1/fees", nil, http.StatusOK},
		{deskStaff, "GET", "/api/users/student1/blocks", nil, http.StatusOK},
		// Over the limit: check-outs and requests are refused by the block;
		// renewals, which it does not stop, are decided on their own (0:
		// any answer but a failure).
		{deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0002"}, http.StatusConflict},
		{student, "POST", "/api/me/requests", map[string]any{"barcode": "MAIN-0001"}, http.StatusConflict},
		{deskStaff, "POST", "/api/users/student1/requests", map[string]any{"barcode": "MAIN-0001"}, http.StatusConflict},
		{student, "POST", "/api/me/loans/renew", map[string]any{}, http.StatusOK},
		{deskStaff, "POST", "/api/loans/" + loanID + "/renew", nil, 0},
		{admin, "DELETE", "/api/users/student1", nil, http.StatusConflict},
	} {
		res := s.do(r.who, r.method, r.path, r.body)
		if res.Code >= 500 || r.want != 0 && res.Code != r.want {
			t.Errorf("%s %s: %d, want %d: %s", r.method, r.path, res.Code, r.want, res.Body.String())
		}
	}
}

// A fee beyond the largest the library charges is refused, naming amount,
// and stores nothing; fees of the largest amount, and fees of any size
// stored before the limit, leave every route that reads the balance
// answering.
func TestAFeeIsNeverLargerThanMaxFee(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, _ := meServerOn(t, db, nil)
		var set circulation.RuleSet
		s.do(fulfil, "GET", "/api/terms-of-use", nil).status(http.StatusOK).json(&set)
		s.do(fulfil, "PUT", "/api/terms-of-use", map[string]any{"rules": set.Rules, "block_limits": []any{
			map[string]any{"max_balance": 1000, "currency": "USD", "stops": []string{"loan", "request"}},
		}}, "If-Match", `"2"`).status(http.StatusOK)
		var loan circulation.Loan
		s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0003"}).status(http.StatusCreated).json(&loan)

		for _, amount := range []string{"9223372036854775807", "9223372036854775808", "100000001", "-9223372036854775809"} {
			s.do(deskStaff, "POST", "/api/users/student1/fees", `{"amount": `+amount+`, "currency": "USD", "description": "Attack"}`).
				refused(t, "a fee of "+amount, http.StatusUnprocessableEntity, "amount")
		}
		var list feeList
		s.do(deskStaff, "GET", "/api/users/student1/fees?status=all", nil).status(http.StatusOK).json(&list)
		if list.Total != 0 || len(list.Balance) != 0 {
			t.Fatalf("refused fees were stored: %+v", list)
		}
		p := s.do(deskStaff, "POST", "/api/users/student1/fees", map[string]any{"amount": math.MaxInt64, "currency": "USD", "description": "Attack"}).problem()
		if len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Message, "1000000.00 USD") {
			t.Fatalf("the refusal does not say the largest fee: %+v", p)
		}

		// Two fees of the largest amount.
		for range 2 {
			s.do(deskStaff, "POST", "/api/users/student1/fees", map[string]any{"amount": circulation.DefaultMaxFee, "currency": "USD", "description": "Damages"}).
				status(http.StatusCreated)
		}
		s.do(deskStaff, "GET", "/api/users/student1/fees", nil).status(http.StatusOK).json(&list)
		if list.Total != 2 || len(list.Balance) != 1 || list.Balance[0].Amount != 2*circulation.DefaultMaxFee {
			t.Fatalf("fees %+v", list)
		}
		balanceRoutesAnswer(t, s, loan.ID)

		// Two fees stored before the limit, whose sum no int64 holds.
		storeFee(t, s, "student1", math.MaxInt64, "USD")
		storeFee(t, s, "student1", math.MaxInt64, "USD")
		balanceRoutesAnswer(t, s, loan.ID)
		s.do(deskStaff, "GET", "/api/users/student1/fees", nil).status(http.StatusOK).json(&list)
		if list.Total != 4 || len(list.Balance) != 1 || list.Balance[0].Amount != math.MaxInt64 {
			t.Fatalf("fees stored before the limit: %+v", list)
		}
		var blocks struct {
			Blocks []circulation.Block `json:"blocks"`
		}
		s.do(student, "GET", "/api/me/blocks", nil).status(http.StatusOK).json(&blocks)
		if len(blocks.Blocks) != 1 || blocks.Blocks[0].Type != circulation.BlockMaxBalance {
			t.Fatalf("blocks %+v", blocks)
		}
		// They can still be waived whole.
		for _, f := range list.Fees {
			if f.Amount == math.MaxInt64 {
				s.do(fulfil, "POST", "/api/users/student1/fees/"+f.ID+"/waive", map[string]any{"amount": f.Amount, "reason": "Charged in error"}).status(http.StatusOK)
			}
		}
		s.do(deskStaff, "GET", "/api/users/student1/fees", nil).status(http.StatusOK).json(&list)
		if list.Total != 2 || list.Balance[0].Amount != 2*circulation.DefaultMaxFee {
			t.Fatalf("after the waivers: %+v", list)
		}
	})
}

// Terms of use may not charge more than the largest fee either.
func TestTermsOfUseAmountsAreBounded(t *testing.T) {
	s, _ := loanServerOn(t, nil, &patronkit.Config{MaxFee: 5000})
	for _, field := range []string{"overdue_fine", "max_fine", "lost_item_fee", "delivery_fee"} {
		terms := map[string]any{"loan_period": 4, "loan_period_unit": "weeks", "currency": "USD", field: 5001}
		if field == "overdue_fine" {
			terms["overdue_fine_unit"] = "day"
		}
		res := s.do(fulfil, "PUT", "/api/terms-of-use", map[string]any{"rules": []any{map[string]any{"terms": terms}}}, "If-Match", `"1"`)
		res.refused(t, "terms with "+field+" 5001", http.StatusUnprocessableEntity, "rules[0].terms."+field)
		if p := res.problem(); len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Message, "50.00 USD") {
			t.Errorf("%s: %+v", field, res.problem().Errors)
		}
	}
	s.do(fulfil, "PUT", "/api/terms-of-use", map[string]any{"rules": []any{map[string]any{"terms": map[string]any{
		"loan_period": 4, "loan_period_unit": "weeks", "currency": "USD", "overdue_fine": 5000, "overdue_fine_unit": "day",
		"max_fine": 5000, "lost_item_fee": 5000, "delivery_fee": 5000}}}}, "If-Match", `"1"`).status(http.StatusOK)
	var fee circulation.Fee
	s.do(deskStaff, "POST", "/api/users/student1/fees", map[string]any{"amount": 5000, "currency": "USD", "description": "Damages"}).status(http.StatusCreated).json(&fee)
	s.do(deskStaff, "POST", "/api/users/student1/fees", map[string]any{"amount": 5001, "currency": "USD", "description": "Damages"}).
		refused(t, "a fee over MaxFee", http.StatusUnprocessableEntity, "amount")
	s.do(deskStaff, "POST", "/api/users/student1/fees/"+fee.ID+"/pay", `{"amount": 9223372036854775808}`).
		refused(t, "a payment no int64 holds", http.StatusUnprocessableEntity, "amount")
}

// Currencies are ISO 4217 codes the library accepts; a balance limit in
// one counts what is owed in all of them.
func TestCurrenciesAreThoseTheLibraryAccepts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, _ := loanServerOn(t, db, &patronkit.Config{Currencies: []circulation.Currency{{Code: "USD"}, {Code: "eur", Rate: "1.08"}}})
		for _, c := range []string{"ABC", "GBP", "XXX", "US", ""} {
			s.do(deskStaff, "POST", "/api/users/student1/fees", map[string]any{"amount": 100, "currency": c, "description": "Printing"}).
				refused(t, "a fee in "+c, http.StatusUnprocessableEntity, "currency")
		}
		var set circulation.RuleSet
		s.do(fulfil, "GET", "/api/terms-of-use", nil).status(http.StatusOK).json(&set)
		s.do(fulfil, "PUT", "/api/terms-of-use", map[string]any{"rules": []any{map[string]any{"terms": map[string]any{
			"loan_period": 4, "loan_period_unit": "weeks", "lost_item_fee": 500, "currency": "ABC"}}}}, "If-Match", `"1"`).
			refused(t, "terms in ABC", http.StatusUnprocessableEntity, "rules[0].terms.currency")
		s.do(fulfil, "PUT", "/api/terms-of-use", map[string]any{"rules": set.Rules, "block_limits": []any{
			map[string]any{"max_balance": 1000, "currency": "GBP"}}}, "If-Match", `"1"`).
			refused(t, "a limit in GBP", http.StatusUnprocessableEntity, "block_limits[0].currency")
		s.do(fulfil, "PUT", "/api/terms-of-use", map[string]any{"rules": set.Rules, "block_limits": []any{
			map[string]any{"user_group": "UNDERGRAD", "max_balance": 1000, "currency": "USD", "stops": []string{"loan", "request"}}}}, "If-Match", `"1"`).
			status(http.StatusOK)

		// 5,000.00 EUR is more than 10.00 USD.
		s.do(deskStaff, "POST", "/api/users/student1/fees", map[string]any{"amount": 500000, "currency": "eur", "description": "Damages"}).status(http.StatusCreated)
		p := s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0001"}).status(http.StatusConflict).problem()
		if len(p.Blocks) != 1 || p.Blocks[0].Type != circulation.BlockMaxBalance ||
			!hasReason(p.Reasons, "student1 owes 5000.00 EUR, 5400.00 USD at the library's rates, more than the limit of 10.00 USD") {
			t.Fatalf("check-out with a debt in EUR: %+v", p)
		}
	})
}
