package ginapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
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

// Reading a run's report reads every user it names: one entry each, on
// the trail before the report is answered; a report whose entries cannot
// be written is answered with a problem, naming no one.
func TestAnSISRunReportIsAReadOfEveryUserItNames(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := adminServerOn(t, db, nil)
		id := s.sisRun("DEMO", "REG", sisFile(sisUser("s1001", "Ada", "Lovelace", "UG"), sisUser("s1002", "", "", "UG"),
			sisUser("s1003", "Alan", "Turing", "GRAD"), sisUser("s1001", "Ada", "Lovelace", "UG")))
		ctx := context.Background()
		before, err := s.kit.Privacy.Entries(ctx, "DEMO", 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		after := before[len(before)-1].Seq
		if rep := s.report(admin, id); len(rep.Outcomes) != 4 {
			t.Fatalf("the report: %+v", rep)
		}
		es, err := s.kit.Privacy.Entries(ctx, "DEMO", after, 10000)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, fmt.Sprintf("%s %s/%s %s %s %s %s", e.Action, e.ActorKind, e.ActorID, e.Subject, e.What, e.Details, e.Via))
		}
		slices.Sort(got)
		d := `{"run_id":"` + id + `"} http GET /api/sis/runs/:run_id/report`
		want := []string{
			"read staff/librarian s1001 sis report " + d,
			"read staff/librarian s1002 sis report " + d,
			"read staff/librarian s1003 sis report " + d,
		}
		if !slices.Equal(got, want) {
			t.Fatalf("entries:\n%q\nwant\n%q", got, want)
		}

		if err := s.db.Exec("DROP TABLE pk_privacy_audit").Error; err != nil {
			t.Fatal(err)
		}
		for _, accept := range []string{"application/json", "text/csv"} {
			res := s.do(admin, "GET", "/api/sis/runs/"+id+"/report", nil, "Accept", accept).status(http.StatusInternalServerError)
			if body := res.Body.String(); strings.Contains(body, "s1001") || !strings.Contains(res.Header().Get("Content-Type"), "problem") {
				t.Fatalf("a report without its entries (%s): %s %s", accept, res.Header().Get("Content-Type"), body)
			}
		}
	})
}
