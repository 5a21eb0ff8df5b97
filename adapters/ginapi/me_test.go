package ginapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/adapters/notify"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/smtptest"
	"github.com/patronkit/patronkit/patron"
)

const (
	student  = "DEMO/student1/patron"
	faculty  = "DEMO/faculty1/patron"
	internal = "Staff only: watch this account"
)

// meRules are circRules with requests: undergraduates four weeks and
// pickup at the owning library, faculty the end of semester and any
// library.
var meRules = map[string]any{"rules": []any{
	map[string]any{"name": "Undergraduates: 4 weeks", "user_group": "UNDERGRAD",
		"terms": map[string]any{"loan_period": 4, "loan_period_unit": "weeks", "renewals": 2, "overdue_fine": 25, "overdue_fine_unit": "day",
			"currency": "USD", "requests_allowed": true}},
	map[string]any{"name": "Faculty: end of semester", "user_group": "FACULTY",
		"terms": map[string]any{"fixed_due_date": "2026-12-18", "renewals": 1, "requests_allowed": true, "pickup_any_library": true}},
}}

// meServer is loanServer with meRules and notes on student1's record, one
// for the patron and one for staff only.
func meServer(t *testing.T) (*server, *testClock) {
	t.Helper()
	return meServerOn(t, nil, nil)
}

// meServerOn is meServer on db (nil: a new SQLite database) with the kit
// configured by cfg.
func meServerOn(t *testing.T, db *gorm.DB, cfg *patronkit.Config) (*server, *testClock) {
	t.Helper()
	s, clock := loanServerOn(t, db, cfg)
	s.do(fulfil, "PUT", "/api/terms-of-use", meRules, "If-Match", `"1"`).status(http.StatusOK)
	for _, n := range []map[string]any{
		{"note_type": "CIRCULATION", "note_text": "Your card expires soon", "user_viewable": true},
		{"note_type": "OTHER", "note_text": internal},
	} {
		s.do(admin, "POST", "/api/users/student1/user_notes", n).status(http.StatusCreated)
	}
	return s, clock
}

func TestMyLibraryCard(t *testing.T) {
	s, clock := meServer(t)
	var loan circulation.Loan
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0001"}).status(http.StatusCreated).json(&loan)
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "faculty1", "barcode": "MAIN-0002"}).status(http.StatusCreated)
	s.do(deskStaff, "POST", "/api/users/student1/fees", map[string]any{"amount": 300, "currency": "USD", "description": "Printing"}).status(http.StatusCreated)

	var me struct {
		User         patron.User    `json:"user"`
		Loans        int            `json:"loans"`
		OverdueLoans int            `json:"overdue_loans"`
		Requests     int            `json:"requests"`
		Balance      []ginapi.Money `json:"balance"`
	}
	res := s.do(student, "GET", "/api/me", nil).status(http.StatusOK)
	res.json(&me)
	if me.User.PrimaryID != "student1" || me.Loans != 1 || me.OverdueLoans != 0 || me.Requests != 0 || len(me.Balance) != 1 || me.Balance[0].Amount != 300 {
		t.Fatalf("GET /me: %+v", me)
	}
	if strings.Contains(res.Body.String(), internal) || strings.Contains(res.Body.String(), "pin_number") || len(me.User.Notes) != 1 {
		t.Fatalf("GET /me shows what is not the patron's to see: %s", res.Body.String())
	}

	// The loan period each would get: four weeks, the end of semester.
	var q circulation.Quote
	s.do(student, "GET", "/api/me/items/MAIN-0003/terms", nil).status(http.StatusOK).json(&q)
	if q.Rule != "Undergraduates: 4 weeks" || q.Terms.LoanPeriod != 4 {
		t.Fatalf("student1's terms %+v", q)
	}
	s.do(faculty, "GET", "/api/me/items/MAIN-0003/terms", nil).status(http.StatusOK).json(&q)
	if q.Rule != "Faculty: end of semester" || q.Terms.FixedDueDate != "2026-12-18" {
		t.Fatalf("faculty1's terms %+v", q)
	}

	// A request on faculty1's loan: the place in the queue first.
	var place struct {
		Place int `json:"place_in_queue"`
	}
	s.do(student, "GET", "/api/me/items/main-0002/queue", nil).status(http.StatusOK).json(&place)
	if place.Place != 1 {
		t.Fatalf("place %+v", place)
	}
	s.do(student, "POST", "/api/me/requests", map[string]any{"barcode": "MAIN-0002", "pickup_library": "SCIENCE"}).
		refused(t, "an undergraduate picking up elsewhere", http.StatusUnprocessableEntity, "pickup_library")
	var r circulation.Request
	res = s.do(student, "POST", "/api/me/requests", map[string]any{"barcode": "MAIN-0002"}).status(http.StatusCreated)
	res.json(&r)
	if res.Header().Get("Location") != "/api/me/requests/"+r.ID || r.Place != 1 || r.PickupLibrary != "MAIN" {
		t.Fatalf("request %+v at %s", r, res.Header().Get("Location"))
	}
	s.do(student, "GET", "/api/me/requests/"+r.ID, nil).status(http.StatusOK)
	var reqs struct {
		Requests []circulation.Request `json:"requests"`
	}
	s.do(student, "GET", "/api/me/requests", nil).status(http.StatusOK).json(&reqs)
	if len(reqs.Requests) != 1 || reqs.Requests[0].ID != r.ID {
		t.Fatalf("my requests %+v", reqs)
	}

	// Overdue: the fine accrues, and renewing moves the due date.
	clock.set(loan.DueAt.Add(50 * time.Hour))
	var loans loanList
	s.do(student, "GET", "/api/me/loans", nil).status(http.StatusOK).json(&loans)
	if loans.Total != 1 || !loans.Loans[0].Overdue || loans.Loans[0].AccruedFine != 75 {
		t.Fatalf("my loans %+v", loans)
	}
	var fees struct {
		Fees     []circulation.Fee `json:"fees"`
		Balance  []ginapi.Money    `json:"balance"`
		Accruing []ginapi.Money    `json:"accruing"`
	}
	s.do(student, "GET", "/api/me/fees", nil).status(http.StatusOK).json(&fees)
	if len(fees.Fees) != 1 || fees.Balance[0].Amount != 300 || len(fees.Accruing) != 1 || fees.Accruing[0].Amount != 75 {
		t.Fatalf("my fees %+v", fees)
	}
	var renewed struct {
		Results []circulation.RenewResult `json:"results"`
	}
	s.do(student, "POST", "/api/me/loans/renew", map[string]any{}).status(http.StatusOK).json(&renewed)
	if len(renewed.Results) != 1 || !renewed.Results[0].Renewed || !renewed.Results[0].DueAt.After(loan.DueAt) {
		t.Fatalf("renew all %+v", renewed)
	}

	// Blocks and messages.
	s.do(admin, "POST", "/api/users/student1/user_blocks", map[string]any{"block_type": "GENERAL", "block_description": "Card reported lost"}).status(http.StatusCreated)
	var blocks struct {
		Blocks   []circulation.Block `json:"blocks"`
		Messages []patron.Note       `json:"messages"`
	}
	res = s.do(student, "GET", "/api/me/blocks", nil).status(http.StatusOK)
	res.json(&blocks)
	if len(blocks.Blocks) != 1 || blocks.Blocks[0].Type != "GENERAL" || len(blocks.Messages) != 1 || blocks.Messages[0].NoteText != "Your card expires soon" {
		t.Fatalf("my blocks %+v", blocks)
	}
	if strings.Contains(res.Body.String(), internal) {
		t.Fatal("an internal note reached the patron")
	}

	// Cancel, and the history.
	s.do(student, "DELETE", "/api/me/requests/"+r.ID, nil).status(http.StatusOK).json(&r)
	if r.Status != circulation.RequestCancelled || r.CloseReason != "cancelled by the patron" || r.ClosedBy != "student1" {
		t.Fatalf("cancelled %+v", r)
	}
	s.do(deskStaff, "POST", "/api/returns", map[string]any{"barcode": "MAIN-0001"}).status(http.StatusOK)
	s.do(student, "GET", "/api/me/loans/history", nil).status(http.StatusOK).json(&loans)
	if loans.Total != 1 || loans.Loans[0].ID != loan.ID || loans.Loans[0].Status != circulation.LoanComplete {
		t.Fatalf("history %+v", loans)
	}
}

// TestAPatronReachesOnlyTheirOwnData walks every route the router
// registers as student1, naming faculty1's records wherever a route names
// one, and checks that no answer carries anything of faculty1's or any
// note for staff only, and that faculty1's loans, requests and fees are
// as they were.
func TestAPatronReachesOnlyTheirOwnData(t *testing.T) {
	s, _ := meServer(t)
	var loan circulation.Loan
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "faculty1", "barcode": "MAIN-0001"}).status(http.StatusCreated).json(&loan)
	var fee circulation.Fee
	s.do(deskStaff, "POST", "/api/users/faculty1/fees", map[string]any{"amount": 4200, "currency": "USD", "description": "Faculty secret fee"}).
		status(http.StatusCreated).json(&fee)
	var req circulation.Request
	s.do(deskStaff, "POST", "/api/users/faculty1/requests", map[string]any{"barcode": "MAIN-0002"}).status(http.StatusCreated).json(&req)
	s.do(admin, "POST", "/api/users/faculty1/user_notes", map[string]any{"note_text": "Faculty1's own message", "user_viewable": true}).status(http.StatusCreated)
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0003"}).status(http.StatusCreated)
	// faculty1's notices: a loan receipt, a charge, an item held.
	ns, err := s.kit.Circulation.Notices(context.Background(), "DEMO", "faculty1")
	if err != nil || len(ns) != 3 {
		t.Fatalf("faculty1's notices %+v, %v", ns, err)
	}
	notice := ns[0].ID

	// What student1 cannot know: faculty1's fee and message, the note for
	// staff only; and in a successful answer, anything naming faculty1
	// (a problem may repeat the path student1 sent).
	secrets := []string{"Faculty secret fee", "Faculty1's own message", internal}
	named := []string{"faculty1", fee.ID, req.ID, notice}
	param := strings.NewReplacer(":primary_id", "faculty1", ":notice_id", notice, ":loan_id", loan.ID, ":fee_id", fee.ID, ":request_id", req.ID,
		":barcode", "MAIN-0001", ":library", "MAIN", ":code", "SIS", ":table", "user_group", ":run_id", "no-run",
		":attachment_id", "no-attachment", ":segment_id", "no-segment")
	for _, rt := range s.r.Routes() {
		if isFallback(rt) {
			continue // 404, 405 and OPTIONS: no data (routes_test.go)
		}
		for _, body := range []string{`{}`, `{"primary_id": "faculty1", "barcode": "MAIN-0001"}`, `{"loan_ids": ["` + loan.ID + `"]}`, `{"amount": 4200}`} {
			res := s.do(student, rt.Method, param.Replace(rt.Path), body, "If-Match", `"1"`)
			if res.Code >= 500 {
				t.Errorf("%s %s: %d", rt.Method, rt.Path, res.Code)
			}
			leaks := secrets
			if res.Code < 300 {
				leaks = append(leaks, named...)
			}
			for _, secret := range leaks {
				if strings.Contains(res.Body.String(), secret) {
					t.Errorf("%s %s (%d) shows student1 %q: %.300s", rt.Method, rt.Path, res.Code, secret, res.Body.String())
				}
			}
			if !strings.HasPrefix(rt.Path, "/api/me") && rt.Path != "/api/openapi.json" && !strings.HasPrefix(rt.Path, "/api/code-tables") &&
				rt.Path != "/api/users/:primary_id" && res.Code != http.StatusForbidden {
				t.Errorf("%s %s as a patron: %d, want 403", rt.Method, rt.Path, res.Code)
			}
		}
	}

	// faculty1's data is as it was.
	var loans loanList
	s.do(deskStaff, "GET", "/api/users/faculty1/loans", nil).status(http.StatusOK).json(&loans)
	if loans.Total != 1 || loans.Loans[0].ID != loan.ID || loans.Loans[0].Renewals != 0 {
		t.Fatalf("faculty1's loans %+v", loans)
	}
	var got circulation.Fee
	s.do(deskStaff, "GET", "/api/users/faculty1/fees/"+fee.ID, nil).status(http.StatusOK).json(&got)
	if got.Paid != 0 || got.Waived != 0 || got.Status != circulation.FeeOpen {
		t.Fatalf("faculty1's fee %+v", got)
	}
	var r circulation.Request
	s.do(deskStaff, "GET", "/api/users/faculty1/requests/"+req.ID, nil).status(http.StatusOK).json(&r)
	if r.Status != req.Status || r.Version != req.Version {
		t.Fatalf("faculty1's request %+v", r)
	}
}

func TestMySettings(t *testing.T) {
	s, _ := meServer(t)
	var u patron.User
	s.do(admin, "POST", "/api/users/student1/emails", map[string]any{"email_address": "sam@uni.example", "preferred": true}).status(http.StatusCreated)
	s.do(admin, "POST", "/api/users/student1/emails", map[string]any{"email_address": "sam@home.example"}).status(http.StatusCreated)
	s.do(admin, "POST", "/api/users/student1/phones", map[string]any{"phone_number": "+15550002", "preferred": true}).status(http.StatusCreated).json(&u)

	var st struct {
		Emails []ginapi.Contact `json:"emails"`
		Phones []ginapi.Contact `json:"phones"`
		SMS    bool             `json:"sms"`
		Lang   string           `json:"preferred_language"`
		Opts   []string         `json:"notice_opt_outs"`
	}
	s.do(student, "GET", "/api/me/settings", nil).status(http.StatusOK).json(&st)
	if len(st.Emails) != 2 || !st.Emails[0].Preferred || st.SMS || len(st.Opts) != 0 {
		t.Fatalf("settings %+v", st)
	}
	home := st.Emails[1].ID

	// What a patron may not change is refused, each field named, and
	// nothing changes.
	p := s.do(student, "PATCH", "/api/me/settings", map[string]any{"first_name": "Samuel", "user_group": "FACULTY", "preferred_language": "es"}).
		status(http.StatusUnprocessableEntity).problem()
	if len(p.Errors) != 2 || p.Errors[0].Field != "first_name" || p.Errors[0].Code != "read_only" || p.Errors[1].Field != "user_group" {
		t.Fatalf("refused fields %+v", p.Errors)
	}
	s.do(student, "PATCH", "/api/me/settings", map[string]any{"preferred_email": "someone-elses"}).refused(t, "an email not hers", http.StatusUnprocessableEntity, "preferred_email")
	s.do(student, "PATCH", "/api/me/settings", map[string]any{"preferred_language": "es", "notice_opt_outs": []string{"overdue"}}).
		refused(t, "opting out of overdue notices", http.StatusUnprocessableEntity, "notice_opt_outs[0]")
	s.do(student, "PATCH", "/api/me/settings", `{"sms": "yes"}`).refused(t, "sms as a string", http.StatusBadRequest, "sms")
	s.do(student, "GET", "/api/me/settings", nil).status(http.StatusOK).json(&st)
	if st.Lang != "" || !st.Emails[0].Preferred || st.SMS {
		t.Fatalf("refused changes changed something: %+v", st)
	}

	s.do(student, "PATCH", "/api/me/settings", map[string]any{"preferred_email": home, "sms": true, "preferred_language": "es", "notice_opt_outs": []string{"due_soon"}}).
		status(http.StatusOK).json(&st)
	if st.Emails[0].Preferred || !st.Emails[1].Preferred || !st.SMS || !st.Phones[0].PreferredSMS || st.Lang != "es" || len(st.Opts) != 1 || st.Opts[0] != "due_soon" {
		t.Fatalf("changed settings %+v", st)
	}
	s.do(admin, "GET", "/api/users/student1", nil).status(http.StatusOK).json(&u)
	if u.PreferredLanguage != "es" || u.FirstName != "S" {
		t.Fatalf("the record %+v", u)
	}
	// Text messages follow the preferred phone.
	s.do(admin, "POST", "/api/users/student1/phones", map[string]any{"phone_number": "+15550003"}).status(http.StatusCreated)
	s.do(student, "GET", "/api/me/settings", nil).status(http.StatusOK).json(&st)
	var after struct {
		Phones []ginapi.Contact `json:"phones"`
		SMS    bool             `json:"sms"`
	}
	s.do(student, "PATCH", "/api/me/settings", map[string]any{"preferred_phone": st.Phones[1].ID}).status(http.StatusOK).json(&after)
	if !after.SMS || after.Phones[0].PreferredSMS || !after.Phones[1].PreferredSMS || !after.Phones[1].Preferred {
		t.Fatalf("phones after a new preferred one %+v", after.Phones)
	}
	s.do(faculty, "GET", "/api/me/settings", nil).status(http.StatusOK).json(&st)
	if len(st.Emails) != 0 || st.Lang == "es" {
		t.Fatalf("faculty1 sees student1's settings: %+v", st)
	}
}

func TestMyNoticesAreArchivedAndDownloadable(t *testing.T) {
	mail := smtptest.Start(t, "", "")
	clock := &testClock{now: testNow}
	s := adminServer(t, &patronkit.Config{Now: clock.Now, Email: &notify.SMTP{Host: mail.Host, Port: mail.Port, From: "library@demo.example", TLS: "none"}})
	s.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")
	s.grant("DEMO", "fulfil", "fulfillment-administrator", "*")
	circLibraries(t, s)
	s.do(fulfil, "PUT", "/api/terms-of-use", meRules, "If-Match", `"0"`).status(http.StatusOK)
	s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": "MAIN-0001", "title": "Middlemarch", "library": "MAIN"}).status(http.StatusCreated)
	s.create("DEMO", &patron.User{PrimaryID: "student1", FirstName: "Sam", LastName: "Student", UserGroup: "UNDERGRAD",
		Emails: []patron.Email{{EmailAddress: "sam@uni.example", Preferred: true}}})
	s.create("DEMO", &patron.User{PrimaryID: "faculty1", FirstName: "F", LastName: "F", UserGroup: "FACULTY"})
	s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0001"}).status(http.StatusCreated)
	if n, err := s.kit.Circulation.SendNotices(context.Background()); err != nil || n != 1 {
		t.Fatalf("sent %d, %v", n, err)
	}
	if m := mail.Messages(); len(m) != 1 || m[0].Subject != "Loan receipt: Middlemarch" {
		t.Fatalf("mail %+v", m)
	}
	var list struct {
		Notices []circulation.Notice `json:"notices"`
	}
	s.do(student, "GET", "/api/me/notices", nil).status(http.StatusOK).json(&list)
	if len(list.Notices) != 1 || list.Notices[0].Status != circulation.NoticeSent || list.Notices[0].AttachmentID == "" {
		t.Fatalf("my notices %+v", list)
	}
	res := s.do(student, "GET", "/api/me/notices/"+list.Notices[0].ID, nil).status(http.StatusOK)
	if !strings.Contains(res.Body.String(), "Subject: Loan receipt: Middlemarch") || !strings.HasPrefix(res.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("the notice downloaded: %q", res.Body.String())
	}
	// Staff download it from the record; another patron cannot.
	s.do(admin, "GET", "/api/users/student1/attachments/"+list.Notices[0].AttachmentID, nil).status(http.StatusOK)
	s.do(faculty, "GET", "/api/me/notices/"+list.Notices[0].ID, nil).status(http.StatusNotFound)
}

// myQueue is what GET /me/items/{barcode}/queue answers.
type myQueue struct {
	Barcode       string               `json:"barcode"`
	ItemStatus    string               `json:"item_status"`
	Available     bool                 `json:"available"`
	RequestNeeded bool                 `json:"request_needed"`
	QueueLength   int                  `json:"queue_length"`
	RequestsAhead int                  `json:"requests_ahead"`
	Place         int                  `json:"place_in_queue"`
	YourRequest   *circulation.Request `json:"your_request"`
	OnLoanToYou   bool                 `json:"on_loan_to_you"`
}

func (s *server) myQueue(t *testing.T, who, barcode string) myQueue {
	t.Helper()
	var q myQueue
	s.do(who, "GET", "/api/me/items/"+barcode+"/queue", nil).status(http.StatusOK).json(&q)
	return q
}

func TestMyPlaceInTheQueueSaysWhetherARequestIsNeeded(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, _ := meServerOn(t, db, nil)
		s.create("DEMO", &patron.User{PrimaryID: "student2", FirstName: "T", LastName: "T", UserGroup: "UNDERGRAD"})
		const proxy, student2 = "DEMO/proxy1/patron", "DEMO/student2/patron"

		// On the shelf, nobody waits: no request is needed.
		if q := s.myQueue(t, student, "main-0003"); q != (myQueue{Barcode: "MAIN-0003", ItemStatus: circulation.StatusAvailable, Available: true}) {
			t.Errorf("an item on the shelf: %+v", q)
		}

		// On loan to faculty1; student1 then proxy1 request it.
		s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "faculty1", "barcode": "MAIN-0002"}).status(http.StatusCreated)
		if q := s.myQueue(t, student, "MAIN-0002"); !q.RequestNeeded || q.Available || q.Place != 1 || q.RequestsAhead != 0 || q.QueueLength != 0 || q.YourRequest != nil {
			t.Errorf("an item on loan, nobody waiting: %+v", q)
		}
		var first circulation.Request
		s.do(student, "POST", "/api/me/requests", map[string]any{"barcode": "MAIN-0002"}).status(http.StatusCreated).json(&first)
		s.do(proxy, "POST", "/api/me/requests", map[string]any{"barcode": "MAIN-0002"}).status(http.StatusCreated)

		// The patron already first: place 1, no other request needed.
		q := s.myQueue(t, student, "MAIN-0002")
		if q.RequestNeeded || q.Place != 1 || q.RequestsAhead != 0 || q.QueueLength != 2 || q.YourRequest == nil ||
			q.YourRequest.ID != first.ID || q.YourRequest.Place != 1 || q.YourRequest.Status != circulation.RequestWaiting {
			t.Errorf("the first in the queue: %+v (request %+v)", q, q.YourRequest)
		}
		if q := s.myQueue(t, proxy, "MAIN-0002"); q.RequestNeeded || q.Place != 2 || q.RequestsAhead != 1 || q.YourRequest == nil {
			t.Errorf("the second in the queue: %+v", q)
		}
		// The borrower needs no request.
		if q := s.myQueue(t, faculty, "MAIN-0002"); !q.OnLoanToYou || q.RequestNeeded || q.Place != 0 || q.QueueLength != 2 || q.ItemStatus != circulation.StatusOnLoan {
			t.Errorf("the borrower: %+v", q)
		}
		// Two wait: a request would be third, and is.
		q = s.myQueue(t, student2, "MAIN-0002")
		if !q.RequestNeeded || q.Available || q.Place != 3 || q.RequestsAhead != 2 || q.QueueLength != 2 || q.YourRequest != nil || q.OnLoanToYou {
			t.Errorf("with two waiting: %+v", q)
		}
		var third circulation.Request
		s.do(student2, "POST", "/api/me/requests", map[string]any{"barcode": "MAIN-0002"}).status(http.StatusCreated).json(&third)
		if third.Place != q.Place {
			t.Errorf("the request placed got place %d, the queue said %d", third.Place, q.Place)
		}

		// Back: on the hold shelf for student1, who needs nothing more; the
		// others move up.
		s.do(deskStaff, "POST", "/api/returns", map[string]any{"barcode": "MAIN-0002"}).status(http.StatusOK)
		q = s.myQueue(t, student, "MAIN-0002")
		if q.RequestNeeded || q.Available || q.Place != 0 || q.YourRequest == nil || q.YourRequest.Status != circulation.RequestOnHoldShelf ||
			q.ItemStatus != circulation.StatusOnHoldShelf || q.QueueLength != 2 {
			t.Errorf("held for the patron: %+v", q)
		}
		if q := s.myQueue(t, proxy, "MAIN-0002"); q.Place != 1 || q.RequestNeeded {
			t.Errorf("next after the hold: %+v", q)
		}
		if q := s.myQueue(t, faculty, "MAIN-0002"); !q.RequestNeeded || q.OnLoanToYou || q.Place != 3 || q.RequestsAhead != 2 {
			t.Errorf("the former borrower: %+v", q)
		}
	})
}
