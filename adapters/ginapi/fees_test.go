package ginapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
)

// feeList is the body of GET /users/{primary_id}/fees.
type feeList struct {
	Fees    []circulation.Fee `json:"fees"`
	Total   int               `json:"total_record_count"`
	Balance []ginapi.Money    `json:"balance"`
}

func TestFeesThroughTheAPI(t *testing.T) {
	s, _ := loanServer(t)
	s.create("DEMO", &patron.User{PrimaryID: "fulfil", FirstName: "F", LastName: "A"})

	var fee circulation.Fee
	res := s.do(deskStaff, "POST", "/api/users/STUDENT1/fees", map[string]any{"amount": 1250, "currency": "usd", "description": "Personal delivery"}).status(http.StatusCreated)
	res.json(&fee)
	if res.Header().Get("Location") != "/api/users/student1/fees/"+fee.ID || res.Header().Get("ETag") != `"1"` ||
		fee.CreatedBy != "desk" || fee.Currency != "USD" || fee.Amount != 1250 || fee.Status != circulation.FeeOpen {
		t.Fatalf("Location %q, fee %+v", res.Header().Get("Location"), fee)
	}
	var list feeList
	s.do(deskStaff, "GET", "/api/users/student1/fees", nil).status(http.StatusOK).json(&list)
	if list.Total != 1 || len(list.Balance) != 1 || list.Balance[0] != (ginapi.Money{Amount: 1250, Currency: "USD", Display: "12.50 USD"}) {
		t.Fatalf("fees %+v", list)
	}

	feePath := "/api/users/student1/fees/" + fee.ID
	s.do(deskStaff, "POST", feePath+"/pay", map[string]any{"amount": 250}).status(http.StatusOK).json(&fee)
	if fee.Paid != 250 || fee.Status != circulation.FeeOpen || len(fee.Transactions) != 1 || fee.Transactions[0].By != "desk" {
		t.Fatalf("after a payment: %+v", fee)
	}
	// Mistakes change nothing.
	s.do(deskStaff, "POST", feePath+"/pay", map[string]any{"amount": 1001}).refused(t, "paying more than remains", http.StatusUnprocessableEntity, "amount")
	s.do(deskStaff, "POST", feePath+"/pay", map[string]any{}).refused(t, "no amount", http.StatusUnprocessableEntity, "amount")
	s.do(deskStaff, "POST", feePath+"/pay", map[string]any{"amount": 10, "reason": "x"}).refused(t, "a payment with a reason", http.StatusUnprocessableEntity, "reason")
	s.do(deskStaff, "POST", feePath+"/pay", `{"amount": 2.5}`).refused(t, "a fractional amount", http.StatusBadRequest, "amount")
	s.do(deskStaff, "POST", feePath+"/waive", map[string]any{"amount": 10, "reason": "Goodwill"}).status(http.StatusForbidden)
	s.do(fulfil, "POST", feePath+"/waive", map[string]any{"amount": 10}).refused(t, "a waiver without a reason", http.StatusUnprocessableEntity, "reason")
	s.do(fulfil, "POST", "/api/users/faculty1/fees/"+fee.ID+"/pay", map[string]any{"amount": 10}).status(http.StatusNotFound)
	s.do(deskStaff, "GET", "/api/users/faculty1/fees/"+fee.ID, nil).status(http.StatusNotFound)
	s.do(deskStaff, "GET", feePath, nil).status(http.StatusOK).json(&fee)
	if fee.Paid != 250 || fee.Waived != 0 || fee.Version != 2 {
		t.Fatalf("mistakes changed the fee: %+v", fee)
	}

	s.do(fulfil, "POST", feePath+"/waive", map[string]any{"amount": 1000, "reason": "Goodwill"}).status(http.StatusOK).json(&fee)
	if fee.Status != circulation.FeeClosed || fee.Waived != 1000 || fee.Transactions[1].Reason != "Goodwill" {
		t.Fatalf("after the waiver: %+v", fee)
	}
	s.do(deskStaff, "POST", feePath+"/pay", map[string]any{"amount": 1}).refused(t, "a closed fee", http.StatusConflict, "")
	s.do(deskStaff, "GET", "/api/users/student1/fees", nil).status(http.StatusOK).json(&list)
	if list.Total != 0 || len(list.Balance) != 0 {
		t.Fatalf("open fees after the waiver: %+v", list)
	}
	s.do(deskStaff, "GET", "/api/users/student1/fees?status=all", nil).status(http.StatusOK).json(&list)
	if list.Total != 1 || list.Fees[0].ID != fee.ID {
		t.Fatalf("all fees: %+v", list)
	}

	// Staff cannot waive their own fee.
	var own circulation.Fee
	s.do(deskStaff, "POST", "/api/users/fulfil/fees", map[string]any{"amount": 500, "currency": "USD", "description": "Overdue laptop"}).status(http.StatusCreated).json(&own)
	p := s.do(fulfil, "POST", "/api/users/fulfil/fees/"+own.ID+"/waive", map[string]any{"amount": 500, "reason": "Mine"}).status(http.StatusConflict).problem()
	if !hasReason(p.Reasons, "staff cannot waive a fee of their own") {
		t.Fatalf("own waiver: %+v", p)
	}
}

func TestBlocksThroughTheAPI(t *testing.T) {
	s, clock := loanServer(t)
	var set circulation.RuleSet
	s.do(fulfil, "GET", "/api/terms-of-use", nil).status(http.StatusOK).json(&set)
	withLimits := map[string]any{"rules": set.Rules, "block_limits": []any{
		map[string]any{"user_group": "UNDERGRAD", "max_balance": 500, "currency": "USD", "stops": []string{"loan", "request"}},
		map[string]any{"max_overdue_loans": 0},
	}}
	s.do(fulfil, "PUT", "/api/terms-of-use", map[string]any{"rules": set.Rules, "block_limits": []any{map[string]any{"stops": []string{"sleep"}}}}, "If-Match", `"1"`).
		refused(t, "a bad limit", http.StatusUnprocessableEntity, "block_limits[0].stops[0]")
	s.do(fulfil, "PUT", "/api/terms-of-use", withLimits, "If-Match", `"1"`).status(http.StatusOK).json(&set)
	if len(set.BlockLimits) != 2 || *set.BlockLimits[0].MaxBalance != 500 || set.BlockLimits[1].MaxBalance != nil {
		t.Fatalf("limits %+v", set.BlockLimits)
	}

	var blocks struct {
		Blocks []circulation.Block `json:"blocks"`
	}
	s.do(deskStaff, "GET", "/api/users/student1/blocks", nil).status(http.StatusOK).json(&blocks)
	if blocks.Blocks == nil || len(blocks.Blocks) != 0 {
		t.Fatalf("student1 is blocked: %+v", blocks)
	}
	s.do(deskStaff, "GET", "/api/users/blocked1/blocks", nil).status(http.StatusOK).json(&blocks)
	if len(blocks.Blocks) != 1 || blocks.Blocks[0].Type != "GENERAL" || blocks.Blocks[0].Automatic {
		t.Fatalf("blocked1's blocks: %+v", blocks)
	}

	// Owing 6.00 stops loans; the 409 lists the block.
	s.do(deskStaff, "POST", "/api/users/student1/fees", map[string]any{"amount": 600, "currency": "USD", "description": "Lost card"}).status(http.StatusCreated)
	s.do(deskStaff, "GET", "/api/users/student1/blocks", nil).status(http.StatusOK).json(&blocks)
	if len(blocks.Blocks) != 1 || blocks.Blocks[0].Type != circulation.BlockMaxBalance || !blocks.Blocks[0].Automatic {
		t.Fatalf("student1's blocks: %+v", blocks)
	}
	p := s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0001"}).status(http.StatusConflict).problem()
	if len(p.Blocks) != 1 || p.Blocks[0].Type != circulation.BlockMaxBalance || !hasReason(p.Reasons, "owes 6.00 USD, more than the limit of 5.00 USD") {
		t.Fatalf("refused check-out: %+v", p)
	}

	// Faculty: one overdue loan stops the next.
	var l circulation.Loan
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "faculty1", "barcode": "MAIN-0002"}).status(http.StatusCreated).json(&l)
	clock.set(l.DueAt.Add(time.Hour))
	p = s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "faculty1", "barcode": "MAIN-0003"}).status(http.StatusConflict).problem()
	if len(p.Blocks) != 1 || p.Blocks[0].Type != circulation.BlockMaxOverdue {
		t.Fatalf("refused check-out: %+v", p)
	}
	s.do(deskStaff, "GET", "/api/users/nobody/blocks", nil).status(http.StatusNotFound)
}

// Roles held in one library lend, renew and declare lost that library's
// items only; returns are taken at any desk.
func TestLoansStayInTheLibrariesOfTheRoles(t *testing.T) {
	s, clock := loanServer(t)
	s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": "SCI-0001", "title": "Cosmos", "library": "SCIENCE"}).status(http.StatusCreated)

	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "SCI-0001"}).refused(t, "a SCIENCE item at the MAIN desk", http.StatusForbidden, "")
	var sci, main circulation.Loan
	s.do(fulfil, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "SCI-0001"}).status(http.StatusCreated).json(&sci)
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0001"}).status(http.StatusCreated).json(&main)
	s.do(deskStaff, "GET", "/api/loans/"+sci.ID, nil).status(http.StatusOK)

	clock.set(testNow.Add(21 * 24 * time.Hour))
	s.do(deskStaff, "POST", "/api/loans/"+sci.ID+"/renew", nil).refused(t, "renewing a SCIENCE loan at the MAIN desk", http.StatusForbidden, "")
	var res struct {
		Results []circulation.RenewResult `json:"results"`
	}
	s.do(deskStaff, "POST", "/api/users/student1/loans/renew", map[string]any{}).status(http.StatusOK).json(&res)
	if len(res.Results) != 2 {
		t.Fatalf("renew all: %+v", res)
	}
	for _, r := range res.Results {
		switch r.LoanID {
		case main.ID:
			if !r.Renewed {
				t.Errorf("the MAIN loan was not renewed: %+v", r)
			}
		case sci.ID:
			if r.Renewed || !hasReason(r.Reasons, "do not allow renewals in library SCIENCE") || !r.DueAt.Equal(sci.DueAt) {
				t.Errorf("the SCIENCE loan: %+v", r)
			}
		default:
			t.Errorf("result for %s", r.LoanID)
		}
	}
	s.do(deskStaff, "POST", "/api/items/SCI-0001/lost", nil).refused(t, "declaring a SCIENCE item lost at the MAIN desk", http.StatusForbidden, "")
	s.do(deskStaff, "GET", "/api/loans/"+sci.ID, nil).status(http.StatusOK).json(&sci)
	if sci.Status != circulation.LoanOpen || sci.Renewals != 0 {
		t.Fatalf("refused actions changed the loan: %+v", sci)
	}
	// Any desk takes a book back.
	s.do(deskStaff, "POST", "/api/returns", map[string]any{"barcode": "SCI-0001"}).status(http.StatusOK)

	// Items: a fulfillment administrator of MAIN cannot edit SCIENCE's,
	// nor move one of MAIN's there.
	s.grant("DEMO", "mainfulfil", "fulfillment-administrator", "MAIN")
	const mainFulfil = "DEMO/mainfulfil/staff"
	s.do(mainFulfil, "PUT", "/api/items/SCI-0001", map[string]any{"barcode": "SCI-0001", "title": "Cosmos", "library": "MAIN"}, "If-Match", `"3"`).
		refused(t, "editing a SCIENCE item", http.StatusForbidden, "")
	s.do(mainFulfil, "PUT", "/api/items/MAIN-0002", map[string]any{"barcode": "MAIN-0002", "title": "Moved", "library": "SCIENCE"}, "If-Match", `"1"`).
		refused(t, "moving an item to SCIENCE", http.StatusForbidden, "")
	s.do(mainFulfil, "POST", "/api/items", map[string]any{"barcode": "SCI-0002", "title": "Nova", "library": "SCIENCE"}).refused(t, "a new SCIENCE item", http.StatusForbidden, "")
	s.do(mainFulfil, "DELETE", "/api/items/SCI-0001", nil).refused(t, "deleting a SCIENCE item", http.StatusForbidden, "")
	s.do(mainFulfil, "DELETE", "/api/libraries/SCIENCE", nil).refused(t, "deleting SCIENCE", http.StatusForbidden, "")
	s.do(mainFulfil, "POST", "/api/items/bulk", []map[string]any{{"barcode": "MAIN-0009", "title": "T", "library": "MAIN"}}).
		refused(t, "a bulk load by a role of one library", http.StatusForbidden, "")
	s.do(mainFulfil, "POST", "/api/libraries", map[string]any{"code": "EAST", "name": "East"}).refused(t, "a new library by a role of one library", http.StatusForbidden, "")
	s.do(mainFulfil, "PUT", "/api/items/MAIN-0002", map[string]any{"barcode": "MAIN-0002", "title": "Renamed", "library": "MAIN"}, "If-Match", `"1"`).status(http.StatusOK)
	s.do(fulfil, "GET", "/api/items/SCI-0001", nil).status(http.StatusOK)
}

func TestDeclaringLostAndTheLoanRouteThroughTheAPI(t *testing.T) {
	s, _ := loanServer(t)
	var l circulation.Loan
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0001"}).status(http.StatusCreated).json(&l)
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0002"}).status(http.StatusCreated)
	var page loanList
	s.do(deskStaff, "GET", "/api/users/student1/loans?limit=1", nil).status(http.StatusOK).json(&page)
	if page.Total != 2 || len(page.Loans) != 1 {
		t.Fatalf("a page of loans: %+v", page)
	}
	first := page.Loans[0].ID
	s.do(deskStaff, "GET", "/api/users/student1/loans?limit=1&offset=1", nil).status(http.StatusOK).json(&page)
	if page.Total != 2 || len(page.Loans) != 1 || page.Loans[0].ID == first {
		t.Fatalf("the second page: %+v", page)
	}
	s.do(deskStaff, "GET", "/api/users/student1/loans?limit=0", nil).status(http.StatusOK).json(&page)
	if page.Total != 2 || len(page.Loans) != 0 {
		t.Fatalf("limit 0: %+v", page)
	}
	s.do(deskStaff, "GET", "/api/users/student1/loans?limit=1001", nil).refused(t, "limit 1001", http.StatusBadRequest, "limit")

	res := s.do(deskStaff, "POST", "/api/items/main-0001/lost", nil).status(http.StatusOK)
	var lost circulation.Loan
	res.json(&lost)
	if lost.ID != l.ID || lost.Status != circulation.LoanLost || res.Header().Get("ETag") != `"2"` {
		t.Fatalf("declared lost: %+v", lost)
	}
	var got circulation.Loan
	s.do(deskStaff, "GET", "/api/loans/"+l.ID, nil).status(http.StatusOK).json(&got)
	if got.Status != circulation.LoanLost || got.ReturnedAt == nil {
		t.Fatalf("the lost loan: %+v", got)
	}
	s.do(deskStaff, "POST", "/api/items/MAIN-0001/lost", nil).status(http.StatusNotFound)
	s.do(deskStaff, "GET", "/api/loans/no-such-loan", nil).status(http.StatusNotFound)
	s.do("OTHER/desk/staff", "GET", "/api/loans/"+l.ID, nil).status(http.StatusForbidden)
	// It turns up: the loan is complete and the item back on the shelf.
	s.do(deskStaff, "POST", "/api/returns", map[string]any{"barcode": "MAIN-0001"}).status(http.StatusOK).json(&got)
	if got.ID != l.ID || got.Status != circulation.LoanComplete {
		t.Fatalf("the lost item came back: %+v", got)
	}
	var it circulation.Item
	s.do(fulfil, "GET", "/api/items/MAIN-0001", nil).status(http.StatusOK).json(&it)
	if it.Status != circulation.StatusAvailable {
		t.Fatalf("item %+v", it)
	}
}
