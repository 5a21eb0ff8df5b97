package ginapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// The personal data routes: the patron downloads their own, with links to
// the notices sent to them; staff who hold users.personal_data read any
// user's, with links to every file; a desk does not; and nobody's
// document holds anything of another patron.
func TestPersonalDataRoutes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, &patronkit.Config{Now: func() time.Time { return testNow }, Email: &patronkittest.Notifier{}})
		ctx := context.Background()
		s.grant("DEMO", "desk", "circulation-desk-operator", "*")
		s.grant("DEMO", "auditor", "auditor", "*")
		s.grant("DEMO", "librarian", "user-administrator", "*")
		other := s.create("DEMO", &patron.User{PrimaryID: "other1", FirstName: "Ottoline", LastName: "Zweifel"})
		s.create("DEMO", &patron.User{PrimaryID: "student1", FirstName: "Stella", LastName: "Student",
			Emails:   []patron.Email{{EmailAddress: "stella@uni.example", Preferred: true}},
			Notes:    []patron.Note{{NoteText: "Staff only: ask for ID"}},
			ProxyFor: []patron.ProxyFor{{PrimaryID: "other1"}}})
		if _, err := s.kit.Circulation.CreateLibrary(ctx, "DEMO", &circulation.Library{Code: "MAIN", Name: "Main"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.kit.Circulation.ReplaceRules(ctx, "DEMO", 0, []circulation.Rule{{Terms: circulation.Terms{LoanPeriod: 3, LoanPeriodUnit: "weeks"}}}, nil); err != nil {
			t.Fatal(err)
		}
		for _, it := range []circulation.Item{{Barcode: "MAIN-1", Title: "Middlemarch", Library: "MAIN"}, {Barcode: "MAIN-2", Title: "Zweifel's Zither", Library: "MAIN"}} {
			if _, err := s.kit.Circulation.CreateItem(ctx, "DEMO", &it); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.kit.Circulation.CheckOut(ctx, "DEMO", "student1", "MAIN-1", circulation.CheckOutOptions{}); err != nil {
			t.Fatal(err)
		}
		otherLoan, err := s.kit.Circulation.CheckOut(ctx, "DEMO", "other1", "MAIN-2", circulation.CheckOutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		otherFee, err := s.kit.Circulation.AddFee(ctx, "DEMO", "other1", circulation.NewFee{Amount: 300, Currency: "USD", Description: "Zither strings"})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.kit.Circulation.SendNotices(ctx); err != nil || n != 1 { // student1's loan receipt
			t.Fatalf("sent %d notices: %v", n, err)
		}
		upload, err := s.kit.Patrons.AddAttachment(ctx, "DEMO", "student1", patron.Attachment{FileName: "form.pdf", ContentType: "application/pdf"}, strings.NewReader("%PDF"))
		if err != nil {
			t.Fatal(err)
		}
		notice, err := s.kit.Patrons.AddAttachment(ctx, "DEMO", "student1", patron.Attachment{FileName: "n.txt", ContentType: "text/plain", Kind: "notice"}, strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}

		const student = "DEMO/student1/patron"
		mine := s.do(student, http.MethodGet, "/api/me/personal-data", nil).status(http.StatusOK)
		if got := mine.Header().Get("Content-Disposition"); got != "attachment; filename=personal-data-student1.json" {
			t.Errorf("Content-Disposition %q", got)
		}
		var doc privacy.PersonalDataDocument
		mine.json(&doc)
		if doc.User == nil || doc.User.PrimaryID != "student1" || len(doc.Loans) != 1 || len(doc.Notices) != 1 || len(doc.Attachments) != 3 {
			t.Fatalf("student1's personal data: %s", mine.Body)
		}
		for _, a := range doc.Attachments {
			switch {
			case a.ID == upload.ID || a.ID == notice.ID: // no route of the patron's
				if a.Link != "" {
					t.Errorf("a patron's attachment %s links to %q", a.ID, a.Link)
				}
			case a.NoticeID != doc.Notices[0].ID || a.Link != "/api/me/notices/"+a.NoticeID:
				t.Errorf("the archived loan receipt %+v", a)
			default:
				s.do(student, http.MethodGet, a.Link, nil).status(http.StatusOK)
			}
		}
		body := mine.Body.String()
		if strings.Contains(body, "Staff only") {
			t.Errorf("a note for staff only reached the patron: %s", body)
		}
		for _, theirs := range []string{"Ottoline", "Zweifel", otherLoan.ID, otherFee.ID, "Zither"} {
			if strings.Contains(body, theirs) {
				t.Errorf("student1's personal data hold %q of other1: %s", theirs, body)
			}
		}
		if !strings.Contains(body, `"primary_id":"`+other.PrimaryID+`"`) {
			t.Errorf("the proxy relation does not name other1: %s", body)
		}

		for _, who := range []string{"DEMO/auditor/staff", "DEMO/librarian/staff"} {
			var staffDoc privacy.PersonalDataDocument
			r := s.do(who, http.MethodGet, "/api/users/STUDENT1/personal-data", nil).status(http.StatusOK)
			r.json(&staffDoc)
			if r.Header().Get("Content-Disposition") != "" || staffDoc.User.PrimaryID != "student1" || len(staffDoc.Attachments) != 3 ||
				len(staffDoc.User.Notes) != 1 {
				t.Errorf("%s read student1's personal data: %s", who, r.Body)
			}
			links := map[string]string{}
			for _, a := range staffDoc.Attachments {
				links[a.ID] = a.Link
				if a.Link != "/api/users/student1/attachments/"+a.ID {
					t.Errorf("%s: attachment %s links to %q", who, a.ID, a.Link)
				}
			}
			if links[upload.ID] != "/api/users/student1/attachments/"+upload.ID || links[notice.ID] != "/api/users/student1/attachments/"+notice.ID {
				t.Errorf("%s: the links %v", who, links)
			}
		}
		s.do("DEMO/desk/staff", http.MethodGet, "/api/users/student1/personal-data", nil).refused(t, "a desk", http.StatusForbidden, "")
		s.do(student, http.MethodGet, "/api/users/other1/personal-data", nil).refused(t, "another's, as a patron", http.StatusForbidden, "")
		s.do(student, http.MethodGet, "/api/users/student1/personal-data", nil).refused(t, "their own, on the staff route", http.StatusForbidden, "")
		s.do("DEMO/auditor/staff", http.MethodGet, "/api/users/nobody/personal-data", nil).refused(t, "nobody's", http.StatusNotFound, "")
		s.do("DEMO/auditor/staff", http.MethodGet, "/api/me/personal-data", nil).refused(t, "staff on /me", http.StatusForbidden, "")
	})
}
