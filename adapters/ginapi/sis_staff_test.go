package ginapi_test

import (
	"net/http"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
)

// An SIS file that makes someone staff is rejected under a profile that
// does not allow staff records (the default), with the reason, and the
// run goes on; a user administrator allows them in the profile
// (allow_staff), and the same file then loads.
func TestSISStaffUsersNeedAProfileThatAllowsThem(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, nil)
		s.grant("DEMO", "librarian", "user-administrator", "*")
		var p map[string]any
		s.do(admin, "POST", "/api/sis/profiles", map[string]any{"code": "REG", "source": "upload", "mode": "synchronize"}).status(http.StatusCreated).json(&p)
		if p["allow_staff"] != false {
			t.Fatalf("a new profile allows staff: %v", p)
		}
		s.do(admin, "POST", "/api/sis/profiles", map[string]any{"code": "HR", "source": "upload", "mode": "import", "record_type": "STAFF"}).
			refused(t, "a STAFF default without allow_staff", http.StatusUnprocessableEntity, "record_type")

		staffUser := strings.Replace(sisUser("boss", "Bo", "Ss", "STAFF"), `<record_type desc="Public">PUBLIC</record_type>`, `<record_type desc="Staff">STAFF</record_type>`, 1)
		file := sisFile(sisUser("s1", "Sam", "S", "UG"), staffUser)
		run := s.finish(admin, s.start(admin, "REG", "", file, "Content-Type", "application/xml").ID)
		if got := runCounts(run); got != "succeeded done=2 total=2 created=1 updated=0 unchanged=0 rejected=1 failed=0" {
			t.Fatalf("under the default profile: %s %s", got, run.Error)
		}
		if rep := s.report(admin, run.ID); rep.Outcomes[1].PrimaryID != "boss" || !strings.Contains(rep.Outcomes[1].Reason, "allow_staff") {
			t.Fatalf("the staff user's outcome: %+v", rep.Outcomes[1])
		}
		s.do(admin, "GET", "/api/users/boss", nil).refused(t, "the rejected staff user", http.StatusNotFound, "")

		p["allow_staff"] = true
		delete(p, "version")
		delete(p, "created_date")
		delete(p, "updated_date")
		s.do(admin, "PUT", "/api/sis/profiles/REG", p, "If-Match", `"1"`).status(http.StatusOK).json(&p)
		if p["allow_staff"] != true {
			t.Fatalf("allow_staff was not kept: %v", p)
		}
		run = s.finish(admin, s.start(admin, "REG", "", file, "Content-Type", "application/xml").ID)
		if got := runCounts(run); got != "succeeded done=2 total=2 created=1 updated=0 unchanged=1 rejected=0 failed=0" {
			t.Fatalf("under a profile that allows staff: %s %s", got, run.Error)
		}
		if u := s.user(admin, "boss"); u["record_type"] != "STAFF" {
			t.Fatalf("boss: %v", u)
		}
	})
}
