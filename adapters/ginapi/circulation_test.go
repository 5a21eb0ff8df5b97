package ginapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
)

// DEMO's fulfillment administrator and desk operator in circServer.
const (
	fulfil    = "DEMO/fulfil/staff"
	deskStaff = "DEMO/desk/staff"
)

// circServer is a server whose clock reads testNow, with admin a
// user-administrator, fulfil a fulfillment-administrator and desk a
// circulation desk operator at MAIN.
func circServer(t *testing.T) *server {
	t.Helper()
	s := adminServer(t, &patronkit.Config{Now: func() time.Time { return testNow }})
	s.grant("DEMO", "fulfil", "fulfillment-administrator", "*")
	s.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")
	return s
}

// circLibraries creates MAIN (New York, closed on 2026-09-29) and SCIENCE.
func circLibraries(t *testing.T, s *server) {
	t.Helper()
	s.do(fulfil, "POST", "/api/libraries", map[string]any{
		"code": "MAIN", "name": "Main Library", "time_zone": "America/New_York", "pickup_locations": []string{"MAIN-DESK"},
		"closed_dates": []any{map[string]any{"date": "2026-09-29", "note": "Staff day"}},
	}).status(http.StatusCreated)
	s.do(fulfil, "POST", "/api/libraries", map[string]any{"code": "SCIENCE", "name": "Science Library"}).status(http.StatusCreated)
}

func TestLibrariesThroughTheAPI(t *testing.T) {
	s := circServer(t)
	res := s.do(fulfil, "POST", "/api/libraries", map[string]any{"code": "MAIN", "name": "Main Library", "time_zone": "America/New_York"}).status(http.StatusCreated)
	if res.Header().Get("Location") != "/api/libraries/MAIN" || res.Header().Get("ETag") != `"1"` {
		t.Fatalf("Location %q ETag %q", res.Header().Get("Location"), res.Header().Get("ETag"))
	}
	s.do(fulfil, "POST", "/api/libraries", map[string]any{"code": "main", "name": "Again"}).refused(t, "a taken code", http.StatusConflict, "")
	s.do(fulfil, "POST", "/api/libraries", map[string]any{"code": "X Y", "name": "Bad", "time_zone": "Mars/Olympus"}).refused(t, "a bad library", http.StatusUnprocessableEntity, "time_zone")
	s.do(fulfil, "POST", "/api/libraries", `{"code": "X", "name": "X", "institution": "OTHER"}`).refused(t, "an unknown field", http.StatusBadRequest, "institution")

	var l circulation.Library
	s.do(deskStaff, "GET", "/api/libraries/main", nil).status(http.StatusOK).json(&l)
	if l.Code != "MAIN" || l.TimeZone != "America/New_York" || l.Version != 1 {
		t.Fatalf("library %+v", l)
	}
	var list struct {
		Libraries []circulation.Library `json:"libraries"`
		Total     int                   `json:"total_record_count"`
	}
	s.do(admin, "GET", "/api/libraries", nil).status(http.StatusOK).json(&list)
	if list.Total != 1 || len(list.Libraries) != 1 {
		t.Fatalf("libraries %+v", list)
	}

	// Replace: If-Match required, the version read, the code kept.
	l.Name = "Main Library (renamed)"
	l.ClosedDates = []circulation.ClosedDate{{Date: "2026-12-25", Note: "Christmas"}}
	s.do(fulfil, "PUT", "/api/libraries/MAIN", l).refused(t, "a replace without If-Match", http.StatusPreconditionRequired, "")
	res = s.do(fulfil, "PUT", "/api/libraries/MAIN", l, "If-Match", `"1"`).status(http.StatusOK)
	if res.Header().Get("ETag") != `"2"` || !strings.Contains(res.Body.String(), "Christmas") {
		t.Fatalf("ETag %q: %s", res.Header().Get("ETag"), res.Body.String())
	}
	s.do(fulfil, "PUT", "/api/libraries/MAIN", l, "If-Match", `"1"`).refused(t, "a stale replace", http.StatusPreconditionFailed, "")
	l.Code = "OTHER"
	s.do(fulfil, "PUT", "/api/libraries/MAIN", l, "If-Match", `"2"`).refused(t, "a new code", http.StatusUnprocessableEntity, "code")
	s.do(fulfil, "PUT", "/api/libraries/NOPE", l, "If-Match", `"1"`).refused(t, "an unknown library", http.StatusNotFound, "")

	// Only fulfillment administrators change libraries.
	s.do(admin, "POST", "/api/libraries", map[string]any{"code": "X", "name": "X"}).refused(t, "a user administrator creating", http.StatusForbidden, "")
	s.do(deskStaff, "DELETE", "/api/libraries/MAIN", nil).refused(t, "a desk operator deleting", http.StatusForbidden, "")

	// A library with items cannot be deleted; an empty one can.
	s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": "B1", "title": "T", "library": "MAIN"}).status(http.StatusCreated)
	p := s.do(fulfil, "DELETE", "/api/libraries/MAIN", nil).status(http.StatusConflict).problem()
	if len(p.Reasons) == 0 || !strings.Contains(p.Reasons[0], "1 items") {
		t.Fatalf("refusal %+v", p)
	}
	s.do(fulfil, "DELETE", "/api/items/B1", nil).status(http.StatusNoContent)
	s.do(fulfil, "DELETE", "/api/libraries/MAIN", nil).status(http.StatusNoContent)
	s.do(fulfil, "GET", "/api/libraries/MAIN", nil).refused(t, "a deleted library", http.StatusNotFound, "")
}

func TestItemsThroughTheAPI(t *testing.T) {
	s := circServer(t)
	circLibraries(t, s)
	res := s.do(fulfil, "POST", "/api/items", map[string]any{
		"barcode": "MAIN-0001", "title": "A Tale of Two Cities", "author": "Dickens, Charles", "library": "main",
		"location": "STACKS", "item_policy": "STANDARD", "material_type": "BOOK",
	}).status(http.StatusCreated)
	var it circulation.Item
	res.json(&it)
	if res.Header().Get("Location") != "/api/items/MAIN-0001" || res.Header().Get("ETag") != `"1"` || it.Library != "MAIN" || it.Status != "available" {
		t.Fatalf("Location %q ETag %q item %+v", res.Header().Get("Location"), res.Header().Get("ETag"), it)
	}
	s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": "main-0001", "title": "Again", "library": "MAIN"}).refused(t, "a taken barcode", http.StatusConflict, "")
	s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": "X1", "title": "No library", "library": "NOPE"}).refused(t, "an unknown library", http.StatusUnprocessableEntity, "library")
	s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": "X1", "title": "Bad status", "library": "MAIN", "status": "borrowed"}).refused(t, "a bad status", http.StatusUnprocessableEntity, "status")
	s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": "SCI-0001", "title": "Cosmos", "author": "Sagan, Carl", "library": "SCIENCE", "material_type": "DVD"}).status(http.StatusCreated)

	// Read, list and filter.
	s.do(deskStaff, "GET", "/api/items/main-0001", nil).status(http.StatusOK).json(&it)
	if it.Barcode != "MAIN-0001" || it.Version != 1 {
		t.Fatalf("item %+v", it)
	}
	var page circulation.ItemPage
	s.do(deskStaff, "GET", "/api/items", nil).status(http.StatusOK).json(&page)
	if page.TotalRecordCount != 2 || len(page.Items) != 2 || page.Items[0].Title != "A Tale of Two Cities" {
		t.Fatalf("items %+v", page)
	}
	s.do(deskStaff, "GET", "/api/items?q=sagan&library=science&status=available&limit=5&offset=0", nil).status(http.StatusOK).json(&page)
	if page.TotalRecordCount != 1 || len(page.Items) != 1 || page.Items[0].Barcode != "SCI-0001" {
		t.Fatalf("filtered items %+v", page)
	}
	s.do(deskStaff, "GET", "/api/items?limit=1&offset=1", nil).status(http.StatusOK).json(&page)
	if page.TotalRecordCount != 2 || len(page.Items) != 1 || page.Items[0].Barcode != "SCI-0001" {
		t.Fatalf("second page %+v", page)
	}
	s.do(deskStaff, "GET", "/api/items?limit=101", nil).refused(t, "a limit over 100", http.StatusBadRequest, "limit")
	s.do(deskStaff, "GET", "/api/items/NOPE", nil).refused(t, "an unknown item", http.StatusNotFound, "")

	// Replace: versions, a new barcode, a barcode taken.
	it.Location = "REF"
	s.do(fulfil, "PUT", "/api/items/MAIN-0001", it).refused(t, "a replace without If-Match", http.StatusPreconditionRequired, "")
	s.do(fulfil, "PUT", "/api/items/MAIN-0001", it, "If-Match", "one").refused(t, "a bad If-Match", http.StatusBadRequest, "")
	res = s.do(fulfil, "PUT", "/api/items/MAIN-0001", it, "If-Match", `"1"`).status(http.StatusOK)
	if res.Header().Get("ETag") != `"2"` || !strings.Contains(res.Body.String(), `"location":"REF"`) {
		t.Fatalf("ETag %q: %s", res.Header().Get("ETag"), res.Body.String())
	}
	s.do(fulfil, "PUT", "/api/items/MAIN-0001", it, "If-Match", `"1"`).refused(t, "a stale replace", http.StatusPreconditionFailed, "")
	it.Barcode = "SCI-0001"
	s.do(fulfil, "PUT", "/api/items/MAIN-0001", it, "If-Match", `"2"`).refused(t, "a barcode taken", http.StatusConflict, "")
	it.Barcode = "MAIN-0001A"
	s.do(fulfil, "PUT", "/api/items/MAIN-0001", it, "If-Match", `"2"`).status(http.StatusOK)
	s.do(fulfil, "GET", "/api/items/MAIN-0001A", nil).status(http.StatusOK)
	s.do(fulfil, "GET", "/api/items/MAIN-0001", nil).refused(t, "the old barcode", http.StatusNotFound, "")

	// The loans own on_loan; an item on the hold shelf cannot be deleted.
	it.Status = "on_loan"
	s.do(fulfil, "PUT", "/api/items/MAIN-0001A", it, "If-Match", `"3"`).refused(t, "on_loan by hand", http.StatusUnprocessableEntity, "status")
	it.Status = "on_hold_shelf"
	s.do(fulfil, "PUT", "/api/items/MAIN-0001A", it, "If-Match", `"3"`).status(http.StatusOK)
	s.do(fulfil, "DELETE", "/api/items/MAIN-0001A", nil).refused(t, "deleting an item on the hold shelf", http.StatusConflict, "")
	s.do(deskStaff, "DELETE", "/api/items/SCI-0001", nil).refused(t, "a desk operator deleting", http.StatusForbidden, "")
	s.do(fulfil, "DELETE", "/api/items/SCI-0001", nil).status(http.StatusNoContent)
	s.do(fulfil, "DELETE", "/api/items/SCI-0001", nil).refused(t, "deleting twice", http.StatusNotFound, "")
}

func TestBulkLoadOfItems(t *testing.T) {
	s := circServer(t)
	circLibraries(t, s)

	// JSON: the second item has no library it can find; the others load.
	var rep circulation.LoadReport
	s.do(fulfil, "POST", "/api/items/bulk", []map[string]any{
		{"barcode": "J1", "title": "One", "library": "MAIN"},
		{"barcode": "J2", "title": "Two", "library": "NOWHERE"},
		{"barcode": "J3", "title": "Three", "library": "science", "status": "missing"},
	}).status(http.StatusOK).json(&rep)
	if rep.Created != 2 || rep.Updated != 0 || len(rep.Rejected) != 1 || rep.Rejected[0].Line != 2 || rep.Rejected[0].Barcode != "J2" ||
		!strings.Contains(rep.Rejected[0].Reason, "library") {
		t.Fatalf("JSON load %+v", rep)
	}

	// CSV: line 3 lacks a title, line 4 has a field too many; J1 is
	// updated and keeps its status.
	csv := "barcode,title,library,material_type\n" +
		"J1,One (2nd ed.),MAIN,BOOK\n" +
		"C2,,MAIN,BOOK\n" +
		"C3,Three,MAIN,BOOK,extra\n" +
		"\"C4\",\"Four, with a comma\",SCIENCE,DVD\n"
	s.do(fulfil, "POST", "/api/items/bulk", csv, "Content-Type", "text/csv; charset=utf-8").status(http.StatusOK).json(&rep)
	if rep.Created != 1 || rep.Updated != 1 || len(rep.Rejected) != 2 || rep.Rejected[0].Line != 3 || rep.Rejected[1].Line != 4 {
		t.Fatalf("CSV load %+v", rep)
	}
	if rep.Rejected[0].Barcode != "C2" || !strings.Contains(rep.Rejected[0].Reason, "title") {
		t.Fatalf("the rejected row does not say why: %+v", rep.Rejected[0])
	}
	var it circulation.Item
	s.do(fulfil, "GET", "/api/items/C4", nil).status(http.StatusOK).json(&it)
	if it.Title != "Four, with a comma" || it.Library != "SCIENCE" || it.MaterialType != "DVD" {
		t.Fatalf("C4 %+v", it)
	}
	s.do(fulfil, "GET", "/api/items/J1", nil).status(http.StatusOK).json(&it)
	if it.Title != "One (2nd ed.)" || it.Version != 2 {
		t.Fatalf("J1 %+v", it)
	}

	// Refusals of the whole body.
	s.do(fulfil, "POST", "/api/items/bulk", "barcode,title,shelf\nX,Y,Z\n", "Content-Type", "text/csv").refused(t, "an unknown column", http.StatusUnprocessableEntity, "file")
	s.do(fulfil, "POST", "/api/items/bulk", `{"barcode": "X"}`).refused(t, "an object, not an array", http.StatusBadRequest, "")
	s.do(fulfil, "POST", "/api/items/bulk", `null`).refused(t, "null", http.StatusBadRequest, "")
	s.do(fulfil, "POST", "/api/items/bulk", "<items/>", "Content-Type", "application/xml").refused(t, "XML", http.StatusUnsupportedMediaType, "")
	s.do(fulfil, "POST", "/api/items/bulk", "J1", "Content-Type", "").refused(t, "no media type", http.StatusUnsupportedMediaType, "")
	big := "barcode,title,library\n" + strings.Repeat("B,"+strings.Repeat("t", 1000)+",MAIN\n", 1100)
	s.do(fulfil, "POST", "/api/items/bulk", big, "Content-Type", "text/csv").refused(t, "a CSV body over 1 MiB", http.StatusRequestEntityTooLarge, "")
	s.do(fulfil, "POST", "/api/items/bulk", "["+strings.Repeat(`{"barcode":"B","title":"`+strings.Repeat("t", 1000)+`","library":"MAIN"},`, 1100)+"{}]").
		refused(t, "a JSON body over 1 MiB", http.StatusRequestEntityTooLarge, "")
	var page circulation.ItemPage
	s.do(fulfil, "GET", "/api/items", nil).status(http.StatusOK).json(&page)
	if page.TotalRecordCount != 3 {
		t.Fatalf("after the refused loads %d items, want 3 (J1, J3, C4)", page.TotalRecordCount)
	}
	s.do(deskStaff, "POST", "/api/items/bulk", "[]").refused(t, "a desk operator loading", http.StatusForbidden, "")
}

// circRules are the terms of use of the tests: undergraduates four weeks,
// faculty to the end of semester.
var circRules = map[string]any{"rules": []any{
	map[string]any{"name": "Undergraduates: 4 weeks", "user_group": "UNDERGRAD",
		"terms": map[string]any{"loan_period": 4, "loan_period_unit": "weeks", "renewals": 2, "overdue_fine": 25, "overdue_fine_unit": "day", "currency": "USD"}},
	map[string]any{"name": "Faculty: end of semester", "user_group": "FACULTY", "item_policy": "*",
		"terms": map[string]any{"fixed_due_date": "2026-12-18", "renewals": 1}},
}}

func TestTermsOfUseThroughTheAPI(t *testing.T) {
	s := circServer(t)
	var set circulation.RuleSet
	res := s.do(deskStaff, "GET", "/api/terms-of-use", nil).status(http.StatusOK)
	res.json(&set)
	if res.Header().Get("ETag") != `"0"` || set.Version != 0 || set.Rules == nil || len(set.Rules) != 0 {
		t.Fatalf("no rules yet: ETag %q %s", res.Header().Get("ETag"), res.Body.String())
	}
	s.do(fulfil, "PUT", "/api/terms-of-use", circRules).refused(t, "a replace without If-Match", http.StatusPreconditionRequired, "")
	s.do(fulfil, "PUT", "/api/terms-of-use", circRules, "If-Match", `"1"`).refused(t, "a replace of a version that is not", http.StatusPreconditionFailed, "")
	s.do(fulfil, "PUT", "/api/terms-of-use", circRules, "If-Match", `"-1"`).refused(t, "a negative version", http.StatusBadRequest, "")
	s.do(fulfil, "PUT", "/api/terms-of-use", `{}`, "If-Match", `"0"`).refused(t, "a body without rules", http.StatusUnprocessableEntity, "rules")
	s.do(fulfil, "PUT", "/api/terms-of-use", map[string]any{"rules": []any{map[string]any{"terms": map[string]any{"loan_period": 2, "loan_period_unit": "fortnights"}}}}, "If-Match", `"0"`).
		refused(t, "a bad rule", http.StatusUnprocessableEntity, "rules[0].terms.loan_period_unit")
	s.do(admin, "PUT", "/api/terms-of-use", circRules, "If-Match", `"0"`).refused(t, "a user administrator replacing", http.StatusForbidden, "")
	res = s.do(fulfil, "PUT", "/api/terms-of-use", circRules, "If-Match", `"0"`).status(http.StatusOK)
	if res.Header().Get("ETag") != `"1"` {
		t.Fatalf("ETag %q after the first rules", res.Header().Get("ETag"))
	}
	s.do(fulfil, "PUT", "/api/terms-of-use", circRules, "If-Match", `"0"`).refused(t, "a second first write", http.StatusPreconditionFailed, "")

	// What is read can be sent back whole.
	s.do(admin, "GET", "/api/terms-of-use", nil).status(http.StatusOK).json(&set)
	if set.Version != 1 || len(set.Rules) != 2 || set.Rules[1].Terms.FixedDueDate != "2026-12-18" || set.Rules[1].ItemPolicy != "" {
		t.Fatalf("rules %+v", set)
	}
	if res := s.do(fulfil, "PUT", "/api/terms-of-use", set, "If-Match", `"1"`).status(http.StatusOK); res.Header().Get("ETag") != `"2"` {
		t.Fatalf("ETag %q after a round trip", res.Header().Get("ETag"))
	}
}

func TestTermsAUserWouldGet(t *testing.T) {
	s := circServer(t)
	circLibraries(t, s)
	s.do(fulfil, "PUT", "/api/terms-of-use", circRules, "If-Match", `"0"`).status(http.StatusOK)
	s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": "MAIN-0001", "title": "A Book", "library": "MAIN", "material_type": "BOOK"}).status(http.StatusCreated)
	s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": "SCI-0001", "title": "Another", "library": "SCIENCE"}).status(http.StatusCreated)
	s.create("DEMO", &patron.User{PrimaryID: "student1", FirstName: "S", LastName: "S", UserGroup: "UNDERGRAD"})
	s.create("DEMO", &patron.User{PrimaryID: "faculty1", FirstName: "F", LastName: "F", UserGroup: "FACULTY"})
	s.create("DEMO", &patron.User{PrimaryID: "grad1", FirstName: "G", LastName: "G", UserGroup: "GRAD"})

	type answer struct {
		Terms   circulation.Terms `json:"terms"`
		DueDate time.Time         `json:"due_date"`
		Rule    string            `json:"rule"`
	}
	// testNow is 2026-09-01 05:00 in New York: four weeks on is 29
	// September, when MAIN is closed, so the loan is due at 23:59 on the
	// 30th there (EDT, UTC-4).
	var a answer
	s.do(deskStaff, "GET", "/api/users/student1/terms?barcode=main-0001", nil).status(http.StatusOK).json(&a)
	if want := time.Date(2026, 10, 1, 3, 59, 0, 0, time.UTC); !a.DueDate.Equal(want) || a.Rule != "Undergraduates: 4 weeks" ||
		a.Terms.LoanPeriod != 4 || a.Terms.LoanPeriodUnit != "weeks" || a.Terms.OverdueFine != 25 {
		t.Fatalf("undergraduate at MAIN: %+v, want due %s", a, want)
	}
	// SCIENCE keeps UTC and no closed dates: 29 September 23:59 UTC.
	s.do(admin, "GET", "/api/users/STUDENT1/terms?barcode=SCI-0001", nil).status(http.StatusOK).json(&a)
	if want := time.Date(2026, 9, 29, 23, 59, 0, 0, time.UTC); !a.DueDate.Equal(want) {
		t.Fatalf("undergraduate at SCIENCE: due %s, want %s", a.DueDate, want)
	}
	// Faculty: the end of semester, 18 December 23:59 in New York (EST).
	s.do(deskStaff, "GET", "/api/users/faculty1/terms?barcode=MAIN-0001", nil).status(http.StatusOK).json(&a)
	if want := time.Date(2026, 12, 19, 4, 59, 0, 0, time.UTC); !a.DueDate.Equal(want) || a.Rule != "Faculty: end of semester" ||
		a.Terms.FixedDueDate != "2026-12-18" || a.Terms.Renewals != 1 {
		t.Fatalf("faculty: %+v, want due %s", a, want)
	}

	// No rule for graduates.
	p := s.do(deskStaff, "GET", "/api/users/grad1/terms?barcode=MAIN-0001", nil).status(http.StatusConflict).problem()
	if p.Type != "urn:patronkit:problem:refused" || len(p.Reasons) == 0 || !strings.Contains(p.Reasons[0], `"GRAD"`) {
		t.Fatalf("no rule: %+v", p)
	}
	s.do(deskStaff, "GET", "/api/users/nobody/terms?barcode=MAIN-0001", nil).refused(t, "an unknown user", http.StatusNotFound, "")
	s.do(deskStaff, "GET", "/api/users/student1/terms?barcode=NOPE", nil).refused(t, "an unknown item", http.StatusNotFound, "")
	s.do(deskStaff, "GET", "/api/users/student1/terms", nil).refused(t, "no barcode", http.StatusBadRequest, "barcode")
	s.do("DEMO/student1/patron", "GET", "/api/users/student1/terms?barcode=MAIN-0001", nil).refused(t, "the patron themself", http.StatusForbidden, "")
	s.do("DEMO/temp/staff", "GET", "/api/users/student1/terms?barcode=MAIN-0001", nil).refused(t, "staff without roles", http.StatusForbidden, "")
}

func TestCirculationStaysInItsInstitution(t *testing.T) {
	s := circServer(t)
	circLibraries(t, s)
	s.do(fulfil, "PUT", "/api/terms-of-use", circRules, "If-Match", `"0"`).status(http.StatusOK)
	s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": "MAIN-0001", "title": "A Book", "library": "MAIN"}).status(http.StatusCreated)
	s.create("DEMO", &patron.User{PrimaryID: "student1", FirstName: "S", LastName: "S", UserGroup: "UNDERGRAD"})

	const other = "OTHER/boss/staff"
	s.grant("OTHER", "boss", "fulfillment-administrator", "*")
	for _, path := range []string{"/api/libraries/MAIN", "/api/items/MAIN-0001", "/api/users/student1/terms?barcode=MAIN-0001"} {
		s.do(other, "GET", path, nil).refused(t, "OTHER reading "+path, http.StatusNotFound, "")
	}
	s.do(other, "PUT", "/api/libraries/MAIN", map[string]any{"name": "Taken over"}, "If-Match", `"1"`).refused(t, "OTHER replacing MAIN", http.StatusNotFound, "")
	s.do(other, "PUT", "/api/items/MAIN-0001", map[string]any{"title": "Taken over", "library": "MAIN"}, "If-Match", `"1"`).refused(t, "OTHER replacing the item", http.StatusNotFound, "")
	s.do(other, "DELETE", "/api/items/MAIN-0001", nil).refused(t, "OTHER deleting the item", http.StatusNotFound, "")
	s.do(other, "DELETE", "/api/libraries/SCIENCE", nil).refused(t, "OTHER deleting SCIENCE", http.StatusNotFound, "")

	// OTHER's lists are its own: empty, then its own library and rules.
	for _, path := range []string{"/api/libraries", "/api/items", "/api/terms-of-use"} {
		res := s.do(other, "GET", path, nil).status(http.StatusOK)
		if body := res.Body.String(); strings.Contains(body, "MAIN") || strings.Contains(body, "SCIENCE") || strings.Contains(body, "UNDERGRAD") {
			t.Errorf("OTHER sees DEMO's data at %s: %s", path, body)
		}
	}
	// The same codes and barcodes are free in another institution.
	s.do(other, "POST", "/api/libraries", map[string]any{"code": "MAIN", "name": "Other Main"}).status(http.StatusCreated)
	s.do(other, "POST", "/api/items", map[string]any{"barcode": "MAIN-0001", "title": "Other Book", "library": "MAIN"}).status(http.StatusCreated)
	// A bulk load of OTHER's writes only OTHER's items.
	var rep circulation.LoadReport
	s.do(other, "POST", "/api/items/bulk", "barcode,title,library\nMAIN-0001,Other Book (2),MAIN\n", "Content-Type", "text/csv").status(http.StatusOK).json(&rep)
	if rep.Updated != 1 || rep.Created != 0 {
		t.Fatalf("OTHER's load %+v", rep)
	}
	var it circulation.Item
	s.do(fulfil, "GET", "/api/items/MAIN-0001", nil).status(http.StatusOK).json(&it)
	if it.Title != "A Book" {
		t.Fatalf("DEMO's item was changed by OTHER: %+v", it)
	}
	// OTHER has no rules: its user gets none, DEMO's are not used.
	s.create("OTHER", &patron.User{PrimaryID: "student1", FirstName: "O", LastName: "S", UserGroup: "UNDERGRAD"})
	s.do(other, "GET", "/api/users/student1/terms?barcode=MAIN-0001", nil).refused(t, "OTHER without rules", http.StatusConflict, "")
}
