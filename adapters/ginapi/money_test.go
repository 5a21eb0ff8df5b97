package ginapi_test

import (
	"net/http"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/dbtest"
)

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
