package ginapi_test

import (
	"context"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// A read through the API is on the audit trail with its route and request
// id by the time the answer comes; a patron reading their own record is
// not: the trail records who else accessed it.
func TestAReadThroughTheAPIIsOnTheTrailWithItsRouteAndRequestID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, nil)
		s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
		s.do("DEMO/JDoe/patron", "GET", "/api/users/jdoe", nil, "X-Request-ID", "req-own-1").status(200)
		s.grant("DEMO", "desk1", "circulation-desk-operator", "*")
		s.do("DEMO/desk1/staff", "GET", "/api/users/jdoe", nil, "X-Request-ID", "req-desk-1").status(200)
		es, err := s.kit.Privacy.Entries(context.Background(), "DEMO", 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 {
			t.Fatalf("entries after the creation: %+v", es)
		}
		e := es[0]
		if e.Action != patron.AuditRead || e.ActorID != "desk1" || e.ActorKind != "staff" || e.Subject != "jdoe" ||
			e.Via != "http GET /api/users/:primary_id" || e.RequestID != "req-desk-1" {
			t.Fatalf("entry: %+v", e)
		}
	})
}
