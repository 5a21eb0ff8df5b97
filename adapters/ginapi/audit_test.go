package ginapi_test

import (
	"context"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// A read through the API is on the audit trail with its route and request
// id by the time the answer comes.
func TestAReadThroughTheAPIIsOnTheTrailWithItsRouteAndRequestID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, nil)
		s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
		s.do("DEMO/jdoe/patron", "GET", "/api/users/jdoe", nil, "X-Request-ID", "req-own-1").status(200)
		es, err := s.kit.Privacy.Entries(context.Background(), "DEMO", 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 {
			t.Fatalf("entries after the creation: %+v", es)
		}
		e := es[0]
		if e.Action != patron.AuditRead || e.ActorID != "jdoe" || e.ActorKind != "patron" || e.Subject != "jdoe" ||
			e.Via != "http GET /api/users/:primary_id" || e.RequestID != "req-own-1" {
			t.Fatalf("entry: %+v", e)
		}
	})
}

// A staff user's read through the API names, on the trail, the roles they
// hold and the library the roles allowed it in: every role with its
// library for a read of a user record, which concerns the whole
// institution. Its entry and a list's are kept before the answer; when
// they cannot be, the read fails.
func TestAStaffReadThroughTheAPINamesTheirRolesAndLibrary(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, nil)
		s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
		s.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")
		s.grant("DEMO", "desk", "auditor", "WEST")
		s.do("DEMO/desk/staff", "GET", "/api/users/jdoe", nil, "X-Request-ID", "req-staff-1").status(200)
		s.do("DEMO/desk/staff", "GET", "/api/users?q=doe", nil, "X-Request-ID", "req-staff-2").status(200)
		es, err := s.kit.Privacy.Entries(context.Background(), "DEMO", 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 {
			t.Fatalf("entries of the reads: %+v", es)
		}
		for i, what := range []string{"user", "user list"} {
			e := es[i]
			if e.Action != patron.AuditRead || e.ActorID != "desk" || e.ActorKind != "staff" || e.Subject != "jdoe" || e.What != what ||
				e.ActorRoles != "auditor@WEST,circulation-desk-operator@MAIN" || e.ActorLibrary != "MAIN" {
				t.Fatalf("entry %d: %+v", i, e)
			}
		}
		if err := db.Exec("DROP TABLE pk_privacy_audit").Error; err != nil {
			t.Fatal(err)
		}
		r := s.do("DEMO/desk/staff", "GET", "/api/users?q=doe", nil)
		if r.Code != 500 || strings.Contains(r.Body.String(), "jdoe") {
			t.Fatalf("a list whose entries could not be written: %d %s", r.Code, r.Body)
		}
	})
}
