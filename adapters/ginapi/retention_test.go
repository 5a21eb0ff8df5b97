package ginapi_test

import (
	"net/http"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/privacy"
)

// A patron who chose never keeps no loan history, whatever the library's
// rule and whatever staff do: the next run anonymizes their returned
// loans, and staff cannot change the choice. Another patron deletes their
// history now.
func TestThePatronsNeverHoldsAgainstStaff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, _ := meServerOn(t, db, &patronkit.Config{RetentionRules: []privacy.RetentionRule{{Kind: privacy.RetainLoans, Anonymize: privacy.AnonymizeAfterDays, Days: 365}}})
		var me struct {
			LoanHistory string `json:"loan_history"`
		}
		s.do(student, "GET", "/api/me", nil).status(http.StatusOK).json(&me)
		if me.LoanHistory != "library_rule" {
			t.Fatalf("the default choice %q", me.LoanHistory)
		}
		var st struct {
			LoanHistory string   `json:"loan_history"`
			Choices     []string `json:"loan_history_choices"`
		}
		s.do(student, "PATCH", "/api/me/settings", map[string]any{"loan_history": "Never"}).status(http.StatusOK).json(&st)
		if st.LoanHistory != "never" || len(st.Choices) != 3 {
			t.Fatalf("settings %+v", st)
		}
		s.do(student, "PATCH", "/api/me/settings", map[string]any{"loan_history": "sometimes"}).refused(t, "an unknown choice", http.StatusUnprocessableEntity, "loan_history")

		// Staff have no way to the choice: not through the patron's
		// account, nor by changing the record.
		s.do(admin, "PATCH", "/api/me/settings", map[string]any{"loan_history": "forever"}).status(http.StatusForbidden)
		s.do(admin, "POST", "/api/users/student1/emails", map[string]any{"email_address": "sam@uni.example"}).status(http.StatusCreated)
		s.do(student, "GET", "/api/me", nil).status(http.StatusOK).json(&me)
		if me.LoanHistory != "never" {
			t.Fatalf("after staff changed the record: %q", me.LoanHistory)
		}

		for _, l := range []struct{ who, barcode string }{{"student1", "MAIN-0001"}, {"faculty1", "MAIN-0002"}} {
			s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": l.who, "barcode": l.barcode}).status(http.StatusCreated)
			s.do(deskStaff, "POST", "/api/returns", map[string]any{"barcode": l.barcode}).status(http.StatusOK)
		}
		var run privacy.AnonymizationRun
		s.do(admin, "POST", "/api/privacy/anonymization-runs?dry_run=true", nil).status(http.StatusCreated).json(&run)
		if run.Counts != (privacy.Counts{Loans: 1}) || !run.DryRun {
			t.Fatalf("the dry run %+v", run)
		}
		s.do(admin, "POST", "/api/privacy/anonymization-runs", nil).status(http.StatusCreated).json(&run)
		if run.Counts != (privacy.Counts{Loans: 1}) || run.DryRun || run.Status != privacy.RunDone {
			t.Fatalf("the run %+v", run)
		}
		var got privacy.AnonymizationRun
		s.do(admin, "GET", "/api/privacy/anonymization-runs/"+run.ID, nil).status(http.StatusOK).json(&got)
		if got.ID != run.ID || got.Counts != run.Counts {
			t.Errorf("the report %+v", got)
		}
		var hist struct {
			Total int `json:"total_record_count"`
		}
		s.do(student, "GET", "/api/me/loans/history", nil).status(http.StatusOK).json(&hist)
		if hist.Total != 0 {
			t.Errorf("student1 keeps %d loans", hist.Total)
		}
		s.do(admin, "GET", "/api/users/student1/loans?status=complete", nil).status(http.StatusOK).json(&hist)
		if hist.Total != 0 {
			t.Errorf("staff see %d loans of student1", hist.Total)
		}
		s.do(faculty, "GET", "/api/me/loans/history", nil).status(http.StatusOK).json(&hist)
		if hist.Total != 1 {
			t.Fatalf("faculty1 keeps %d loans", hist.Total)
		}

		// Delete my history now.
		var del struct {
			Loans int `json:"loans"`
		}
		s.do(faculty, "POST", "/api/me/loans/history/delete", nil).status(http.StatusOK).json(&del)
		s.do(faculty, "GET", "/api/me/loans/history", nil).status(http.StatusOK).json(&hist)
		if del.Loans != 1 || hist.Total != 0 {
			t.Errorf("deleted %+v, faculty1 keeps %d loans", del, hist.Total)
		}
		s.do(admin, "POST", "/api/me/loans/history/delete", nil).status(http.StatusForbidden)
	})
}
