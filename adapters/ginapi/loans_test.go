package ginapi_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
)

// testClock is a clock the test moves forward.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// loanList is the body of the routes that list loans.
type loanList struct {
	Loans []circulation.Loan `json:"loans"`
	Total int                `json:"total_record_count"`
}

// loanServer is circServer with a clock that moves, the libraries, the
// terms of use (circRules), items MAIN-0001 to MAIN-0003 at MAIN and the
// users student1 and blocked1 (UNDERGRAD, blocked1 under a manual block),
// faculty1 (FACULTY) and proxy1 (a proxy for student1).
func loanServer(t *testing.T) (*server, *testClock) {
	t.Helper()
	return loanServerOn(t, nil, nil)
}

// loanServerOn is loanServer on db (nil: a new SQLite database) with the
// kit configured by cfg (its clock is the test's).
func loanServerOn(t *testing.T, db *gorm.DB, cfg *patronkit.Config) (*server, *testClock) {
	t.Helper()
	clock := &testClock{now: testNow}
	if cfg == nil {
		cfg = &patronkit.Config{}
	}
	cfg.Now = clock.Now
	s := newServer(t, db, cfg)
	s.grant("DEMO", "librarian", "user-administrator", "*")
	s.grant("DEMO", "fulfil", "fulfillment-administrator", "*")
	s.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")
	circLibraries(t, s)
	s.do(fulfil, "PUT", "/api/terms-of-use", circRules, "If-Match", `"0"`).status(http.StatusOK)
	for _, b := range []string{"MAIN-0001", "MAIN-0002", "MAIN-0003"} {
		s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": b, "title": "Book " + b, "library": "MAIN", "material_type": "BOOK"}).status(http.StatusCreated)
	}
	s.create("DEMO", &patron.User{PrimaryID: "student1", FirstName: "S", LastName: "S", UserGroup: "UNDERGRAD"})
	s.create("DEMO", &patron.User{PrimaryID: "faculty1", FirstName: "F", LastName: "F", UserGroup: "FACULTY"})
	s.create("DEMO", &patron.User{PrimaryID: "blocked1", FirstName: "B", LastName: "B", UserGroup: "UNDERGRAD",
		Blocks: []patron.Block{{BlockType: "GENERAL", BlockDescription: "LOST_CARD"}}})
	s.create("DEMO", &patron.User{PrimaryID: "proxy1", FirstName: "P", LastName: "P", UserGroup: "UNDERGRAD",
		ProxyFor: []patron.ProxyFor{{PrimaryID: "student1", ExpiryDate: "2027-06-30"}}})
	return s, clock
}

// hasReason tells whether one of the reasons contains part.
func hasReason(reasons []string, part string) bool {
	for _, r := range reasons {
		if strings.Contains(r, part) {
			return true
		}
	}
	return false
}

func TestCheckOutThroughTheAPI(t *testing.T) {
	s, _ := loanServer(t)

	// Four weeks from 1 September in New York is 29 September, when MAIN
	// is closed: due at 23:59 on the 30th there.
	res := s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "STUDENT1", "barcode": "main-0001"}).status(http.StatusCreated)
	var l circulation.Loan
	res.json(&l)
	if want := time.Date(2026, 10, 1, 3, 59, 0, 0, time.UTC); !l.DueAt.Equal(want) || !l.LoanedAt.Equal(testNow) {
		t.Fatalf("loan %+v, want due %s", l, want)
	}
	if l.ID == "" || l.PrimaryID != "student1" || l.ItemBarcode != "MAIN-0001" || l.Library != "MAIN" || l.Status != circulation.LoanOpen ||
		l.Renewals != 0 || l.Version != 1 || l.ReturnedAt != nil || l.Overdue {
		t.Fatalf("loan %+v", l)
	}
	if res.Header().Get("Location") != "/api/loans/"+l.ID || res.Header().Get("ETag") != `"1"` {
		t.Fatalf("Location %q ETag %q", res.Header().Get("Location"), res.Header().Get("ETag"))
	}
	var it circulation.Item
	s.do(fulfil, "GET", "/api/items/MAIN-0001", nil).status(http.StatusOK).json(&it)
	if it.Status != circulation.StatusOnLoan {
		t.Fatalf("the item lent is %s", it.Status)
	}
	// Faculty: the end of semester.
	s.do(fulfil, "POST", "/api/loans", map[string]any{"primary_id": "faculty1", "barcode": "MAIN-0002"}).status(http.StatusCreated).json(&l)
	if want := time.Date(2026, 12, 19, 4, 59, 0, 0, time.UTC); !l.DueAt.Equal(want) {
		t.Fatalf("faculty loan due %s, want %s", l.DueAt, want)
	}

	// Refusals list every reason.
	p := s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "faculty1", "barcode": "MAIN-0001"}).status(http.StatusConflict).problem()
	if p.Type != "urn:patronkit:problem:refused" || len(p.Reasons) != 1 || !hasReason(p.Reasons, "MAIN-0001 is on loan") {
		t.Fatalf("an item on loan: %+v", p)
	}
	p = s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "blocked1", "barcode": "MAIN-0001"}).status(http.StatusConflict).problem()
	if len(p.Reasons) != 2 || !hasReason(p.Reasons, "blocked1 is blocked: LOST_CARD") || !hasReason(p.Reasons, "on loan") {
		t.Fatalf("a blocked patron and an item on loan: %+v", p)
	}
	p = s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "blocked1", "barcode": "MAIN-0003"}).status(http.StatusConflict).problem()
	if len(p.Reasons) != 1 || !hasReason(p.Reasons, "blocked") {
		t.Fatalf("a blocked patron: %+v", p)
	}

	// Proxies borrow for their sponsor; the loan is the sponsor's.
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0003", "proxy": "faculty1"}).
		refused(t, "a proxy who is not one", http.StatusConflict, "")
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0003", "proxy": "proxy1"}).status(http.StatusCreated).json(&l)
	if l.PrimaryID != "student1" || l.ProxyPrimaryID != "proxy1" {
		t.Fatalf("proxy loan %+v", l)
	}

	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "nobody", "barcode": "MAIN-0003"}).refused(t, "an unknown user", http.StatusNotFound, "")
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "NOPE"}).refused(t, "an unknown item", http.StatusNotFound, "")
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": " "}).refused(t, "no barcode", http.StatusUnprocessableEntity, "barcode")
	s.do(deskStaff, "POST", "/api/loans", `{"primary_id": "student1", "barcode": "MAIN-0003", "due_date": "2030-01-01"}`).refused(t, "an unknown field", http.StatusBadRequest, "due_date")
	s.do(admin, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0003"}).refused(t, "a user administrator lending", http.StatusForbidden, "")
	s.do("DEMO/student1/patron", "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0003"}).refused(t, "a patron lending", http.StatusForbidden, "")
}

func TestRenewalsThroughTheAPI(t *testing.T) {
	s, clock := loanServer(t)
	var first, second circulation.Loan
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0001"}).status(http.StatusCreated).json(&first)

	// At once, renewing would not move the due date.
	p := s.do(deskStaff, "POST", "/api/loans/"+first.ID+"/renew", nil).status(http.StatusConflict).problem()
	if !hasReason(p.Reasons, "would not move the due date") {
		t.Fatalf("renewing at once: %+v", p)
	}

	// Three weeks on (22 September), four weeks from then: 20 October,
	// 23:59 in New York.
	clock.set(testNow.AddDate(0, 0, 21))
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0002"}).status(http.StatusCreated).json(&second)
	var l circulation.Loan
	res := s.do(fulfil, "POST", "/api/loans/"+first.ID+"/renew", nil).status(http.StatusOK)
	res.json(&l)
	if want := time.Date(2026, 10, 21, 3, 59, 0, 0, time.UTC); !l.DueAt.Equal(want) || l.Renewals != 1 || l.Version != 2 || res.Header().Get("ETag") != `"2"` {
		t.Fatalf("renewed %+v (ETag %s), want due %s", l, res.Header().Get("ETag"), want)
	}

	// A week later, all of student1's loans: both move to 27 October.
	var rr struct {
		Results []circulation.RenewResult `json:"results"`
	}
	clock.set(testNow.AddDate(0, 0, 28))
	s.do(deskStaff, "POST", "/api/users/student1/loans/renew", map[string]any{}).status(http.StatusOK).json(&rr)
	if len(rr.Results) != 2 {
		t.Fatalf("renew all: %+v", rr)
	}
	byID := map[string]circulation.RenewResult{}
	for _, r := range rr.Results {
		byID[r.LoanID] = r
	}
	want := time.Date(2026, 10, 28, 3, 59, 0, 0, time.UTC)
	if r := byID[first.ID]; !r.Renewed || !r.DueAt.Equal(want) || len(r.Reasons) != 0 {
		t.Fatalf("the first loan, renewed a second time: %+v, want due %s", r, want)
	}
	if r := byID[second.ID]; !r.Renewed || !r.DueAt.Equal(want) {
		t.Fatalf("the second loan, lent a week ago: %+v, want due %s", r, want)
	}
	// Named loans: each gets a result, in the order named; a loan that is
	// not an open loan of student1 says so, and the first loan was renewed
	// as often as the terms allow.
	s.do(deskStaff, "POST", "/api/users/student1/loans/renew", map[string]any{"loan_ids": []string{"no-such-loan", first.ID}}).status(http.StatusOK).json(&rr)
	if len(rr.Results) != 2 || rr.Results[0].LoanID != "no-such-loan" || rr.Results[0].Renewed || !hasReason(rr.Results[0].Reasons, "no open loan") ||
		rr.Results[1].LoanID != first.ID || rr.Results[1].Renewed || !hasReason(rr.Results[1].Reasons, "renewed 2 times") {
		t.Fatalf("named renewals: %+v", rr)
	}
	// Another patron's loan is not student1's.
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "faculty1", "barcode": "MAIN-0003"}).status(http.StatusCreated).json(&l)
	s.do(deskStaff, "POST", "/api/users/student1/loans/renew", map[string]any{"loan_ids": []string{l.ID}}).status(http.StatusOK).json(&rr)
	if len(rr.Results) != 1 || rr.Results[0].Renewed {
		t.Fatalf("faculty1's loan renewed as student1's: %+v", rr)
	}

	// A block stops renewals, with every reason.
	s.do(deskStaff, "POST", "/api/users/student1/user_blocks", map[string]any{"block_type": "GENERAL", "block_description": "UNPAID"}).status(http.StatusCreated)
	clock.set(testNow.AddDate(0, 0, 35))
	p = s.do(deskStaff, "POST", "/api/loans/"+second.ID+"/renew", nil).status(http.StatusConflict).problem()
	if !hasReason(p.Reasons, "student1 is blocked: UNPAID") {
		t.Fatalf("a blocked patron renewing: %+v", p)
	}
	s.do(deskStaff, "POST", "/api/users/student1/loans/renew", map[string]any{}).status(http.StatusOK).json(&rr)
	for _, r := range rr.Results {
		if r.Renewed || !hasReason(r.Reasons, "blocked") {
			t.Fatalf("a blocked patron's renewals: %+v", rr)
		}
	}

	s.do(deskStaff, "POST", "/api/loans/no-such-loan/renew", nil).refused(t, "an unknown loan", http.StatusNotFound, "")
	s.do(deskStaff, "POST", "/api/users/nobody/loans/renew", map[string]any{}).refused(t, "an unknown user", http.StatusNotFound, "")
	s.do(deskStaff, "POST", "/api/users/student1/loans/renew", `{"loan_ids": "all"}`).refused(t, "loan_ids not a list", http.StatusBadRequest, "loan_ids")
	s.do(deskStaff, "POST", "/api/users/student1/loans/renew", nil).refused(t, "no body", http.StatusBadRequest, "")
	s.do(admin, "POST", "/api/loans/"+first.ID+"/renew", nil).refused(t, "a user administrator renewing", http.StatusForbidden, "")
	// A returned loan is no longer renewed.
	s.do(deskStaff, "POST", "/api/returns", map[string]any{"barcode": "MAIN-0001"}).status(http.StatusOK)
	s.do(deskStaff, "POST", "/api/loans/"+first.ID+"/renew", nil).refused(t, "a returned loan", http.StatusNotFound, "")
}

func TestReturnsAndLoanHistoryThroughTheAPI(t *testing.T) {
	s, clock := loanServer(t)
	var first, second circulation.Loan
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0001"}).status(http.StatusCreated).json(&first)
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0002"}).status(http.StatusCreated).json(&second)

	var list loanList
	s.do(admin, "GET", "/api/users/student1/loans", nil).status(http.StatusOK).json(&list)
	if list.Total != 2 || len(list.Loans) != 2 || list.Loans[0].Overdue || list.Loans[1].Overdue {
		t.Fatalf("open loans: %+v", list)
	}
	// In November both are overdue...
	clock.set(time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC))
	s.do("DEMO/auditor/staff", "GET", "/api/users/student1/loans?status=open", nil).refused(t, "staff without the auditor role yet", http.StatusForbidden, "")
	s.grant("DEMO", "auditor", "auditor", "*")
	s.do("DEMO/auditor/staff", "GET", "/api/users/STUDENT1/loans?status=open", nil).status(http.StatusOK).json(&list)
	if list.Total != 2 || !list.Loans[0].Overdue || !list.Loans[1].Overdue {
		t.Fatalf("overdue loans: %+v", list)
	}
	// ... and accrue a fine (25 cents a day for undergraduates).
	if l := list.Loans[0]; l.AccruedFine <= 0 || l.FineCurrency != "USD" {
		t.Fatalf("an overdue loan accrues no fine: %+v", l)
	}

	// The return completes the loan and frees the item.
	var l circulation.Loan
	res := s.do(deskStaff, "POST", "/api/returns", map[string]any{"barcode": "main-0001"}).status(http.StatusOK)
	res.json(&l)
	if l.ID != first.ID || l.Status != circulation.LoanComplete || l.ReturnedAt == nil || !l.ReturnedAt.Equal(clock.Now()) || l.Version != 2 || res.Header().Get("ETag") != `"2"` {
		t.Fatalf("returned %+v", l)
	}
	var it circulation.Item
	s.do(fulfil, "GET", "/api/items/MAIN-0001", nil).status(http.StatusOK).json(&it)
	if it.Status != circulation.StatusAvailable {
		t.Fatalf("the item returned is %s", it.Status)
	}
	s.do(deskStaff, "POST", "/api/returns", map[string]any{"barcode": "MAIN-0001"}).refused(t, "an item not on loan", http.StatusNotFound, "")
	s.do(deskStaff, "POST", "/api/returns", map[string]any{"barcode": "NOPE"}).refused(t, "an unknown item", http.StatusNotFound, "")
	s.do(deskStaff, "POST", "/api/returns", map[string]any{}).refused(t, "no barcode", http.StatusUnprocessableEntity, "barcode")
	s.do(admin, "POST", "/api/returns", map[string]any{"barcode": "MAIN-0002"}).refused(t, "a user administrator returning", http.StatusForbidden, "")

	// Open loans and history apart.
	s.do(admin, "GET", "/api/users/student1/loans", nil).status(http.StatusOK).json(&list)
	if list.Total != 1 || list.Loans[0].ID != second.ID {
		t.Fatalf("open loans after the return: %+v", list)
	}
	s.do(admin, "GET", "/api/users/student1/loans?status=complete", nil).status(http.StatusOK).json(&list)
	if list.Total != 1 || list.Loans[0].ID != first.ID || list.Loans[0].Overdue || list.Loans[0].ReturnedAt == nil {
		t.Fatalf("history: %+v", list)
	}
	s.do(admin, "GET", "/api/users/student1/loans?status=lost", nil).refused(t, "an unknown status", http.StatusBadRequest, "status")
	s.do(admin, "GET", "/api/users/nobody/loans", nil).refused(t, "an unknown user", http.StatusNotFound, "")

	// The item's loans, the latest first, open or not.
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "faculty1", "barcode": "MAIN-0001"}).status(http.StatusCreated).json(&l)
	s.do("DEMO/manager/staff", "GET", "/api/items/MAIN-0001/loans", nil).refused(t, "staff without roles", http.StatusForbidden, "")
	s.grant("DEMO", "manager", "user-manager", "SCIENCE")
	s.do("DEMO/manager/staff", "GET", "/api/items/main-0001/loans", nil).status(http.StatusOK).json(&list)
	if list.Total != 2 || list.Loans[0].ID != l.ID || list.Loans[0].Status != circulation.LoanOpen || list.Loans[1].ID != first.ID || list.Loans[1].Status != circulation.LoanComplete {
		t.Fatalf("the item's loans: %+v", list)
	}
	s.do(admin, "GET", "/api/items/NOPE/loans", nil).refused(t, "an unknown item", http.StatusNotFound, "")
	s.do(admin, "GET", "/api/items/MAIN-0003/loans", nil).status(http.StatusOK).json(&list)
	if list.Total != 0 || list.Loans == nil {
		t.Fatalf("an item never lent: %s", s.do(admin, "GET", "/api/items/MAIN-0003/loans", nil).Body.String())
	}
}

func TestLoansStayInTheirInstitution(t *testing.T) {
	s, _ := loanServer(t)
	var l circulation.Loan
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0001"}).status(http.StatusCreated).json(&l)

	const other = "OTHER/boss/staff"
	s.grant("OTHER", "boss", "fulfillment-administrator", "*")
	s.do(other, "POST", "/api/loans/"+l.ID+"/renew", nil).refused(t, "OTHER renewing DEMO's loan", http.StatusNotFound, "")
	s.do(other, "POST", "/api/users/student1/loans/renew", map[string]any{"loan_ids": []string{l.ID}}).refused(t, "OTHER renewing student1's loans", http.StatusNotFound, "")
	s.do(other, "GET", "/api/users/student1/loans", nil).refused(t, "OTHER reading student1's loans", http.StatusNotFound, "")
	s.do(other, "GET", "/api/users/student1/loans?status=complete", nil).refused(t, "OTHER reading student1's history", http.StatusNotFound, "")
	s.do(other, "GET", "/api/items/MAIN-0001/loans", nil).refused(t, "OTHER reading the item's loans", http.StatusNotFound, "")
	s.do(other, "POST", "/api/returns", map[string]any{"barcode": "MAIN-0001"}).refused(t, "OTHER returning DEMO's item", http.StatusNotFound, "")
	s.do(other, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0002"}).refused(t, "OTHER lending DEMO's item", http.StatusNotFound, "")

	// OTHER's own user of the same primary_id and item of the same barcode
	// are apart from DEMO's.
	s.do(other, "POST", "/api/libraries", map[string]any{"code": "MAIN", "name": "Other Main"}).status(http.StatusCreated)
	s.do(other, "POST", "/api/items", map[string]any{"barcode": "MAIN-0001", "title": "Other Book", "library": "MAIN"}).status(http.StatusCreated)
	s.do(other, "PUT", "/api/terms-of-use", map[string]any{"rules": []any{map[string]any{"terms": map[string]any{"loan_period": 1, "loan_period_unit": "weeks"}}}}, "If-Match", `"0"`).status(http.StatusOK)
	s.create("OTHER", &patron.User{PrimaryID: "student1", FirstName: "O", LastName: "S"})
	var ol circulation.Loan
	s.do(other, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0001"}).status(http.StatusCreated).json(&ol)
	var list loanList
	s.do(other, "GET", "/api/users/student1/loans", nil).status(http.StatusOK).json(&list)
	if list.Total != 1 || list.Loans[0].ID != ol.ID {
		t.Fatalf("OTHER's student1's loans: %+v", list)
	}
	s.do(admin, "GET", "/api/items/MAIN-0001/loans", nil).status(http.StatusOK).json(&list)
	if list.Total != 1 || list.Loans[0].ID != l.ID {
		t.Fatalf("DEMO's item's loans: %+v", list)
	}
	// OTHER's return takes back OTHER's item; DEMO's loan stays open.
	s.do(other, "POST", "/api/returns", map[string]any{"barcode": "MAIN-0001"}).status(http.StatusOK)
	s.do(admin, "GET", "/api/users/student1/loans", nil).status(http.StatusOK).json(&list)
	if list.Total != 1 || list.Loans[0].ID != l.ID || list.Loans[0].Status != circulation.LoanOpen {
		t.Fatalf("DEMO's loan after OTHER's return: %+v", list)
	}
}
