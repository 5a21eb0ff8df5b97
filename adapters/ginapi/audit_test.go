package ginapi_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/privacy"
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

const (
	auditor = "DEMO/audit/staff"
	desk    = "DEMO/desk/staff"
)

// auditServer has DEMO's auditor "audit", a desk at MAIN "desk", and the
// patrons jdoe and alice, whose records the desk read once each; jdoe read
// hers (no entry) and downloaded her data: entries 1 and 2 create them (a
// host's call), 3 and 4 are the desk's reads, 5 is jdoe's download.
func auditServer(t *testing.T, db *gorm.DB, cfg *patronkit.Config) *server {
	t.Helper()
	s := newServer(t, db, cfg)
	s.grant("DEMO", "audit", "auditor", "*")
	s.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")
	s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
	s.create("DEMO", &patron.User{PrimaryID: "alice", FirstName: "Alice", LastName: "Reader"})
	s.do(desk, "GET", "/api/users/jdoe", nil).status(200)
	s.do(desk, "GET", "/api/users/alice", nil).status(200)
	s.do("DEMO/jdoe/patron", "GET", "/api/users/jdoe", nil).status(200) // their own read: no entry
	s.do("DEMO/jdoe/patron", "GET", "/api/me/personal-data", nil).status(200)
	return s
}

type auditPage struct {
	Entries []struct {
		Seq          int64    `json:"seq"`
		ActorID      string   `json:"actor_id"`
		ActorKind    string   `json:"actor_kind"`
		ActorRoles   []string `json:"actor_roles"`
		ActorLibrary string   `json:"actor_library"`
		Action       string   `json:"action"`
		Subject      string   `json:"subject"`
		What         string   `json:"what"`
		Details      string   `json:"details"`
		Via          string   `json:"via"`
		Hash         string   `json:"hash"`
	} `json:"entries"`
	More       bool   `json:"more"`
	NextCursor int64  `json:"next_cursor"`
	Next       string `json:"next"`
}

func (p auditPage) seqs() string {
	var out []string
	for _, e := range p.Entries {
		out = append(out, fmt.Sprint(e.Seq))
	}
	return strings.Join(out, " ")
}

func trailLength(t *testing.T, s *server) int {
	t.Helper()
	es, err := s.kit.Privacy.Entries(context.Background(), "DEMO", 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestTheAuditorSearchesTheTrailByEachFilterAndPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := auditServer(t, db, nil)
		var p auditPage
		s.do(auditor, "GET", "/api/audit/entries?subject=JDOE", nil).status(200).json(&p)
		if p.seqs() != "5 3 1" || p.More || p.Next != "" {
			t.Fatalf("jdoe's entries: %+v", p)
		}
		d := p.Entries[1]
		if d.ActorID != "desk" || d.ActorKind != "staff" || !slices.Equal(d.ActorRoles, []string{"circulation-desk-operator@MAIN"}) || d.ActorLibrary != "MAIN" ||
			d.Action != "read" || d.Subject != "jdoe" || d.Via != "http GET /api/users/:primary_id" || len(d.Hash) != 64 {
			t.Fatalf("the desk's read: %+v", d)
		}
		if e := p.Entries[0]; e.ActorKind != "patron" || e.Action != "export" || e.What != "personal data" || len(e.ActorRoles) != 0 || e.ActorLibrary != "" {
			t.Fatalf("jdoe's download of their data: %+v", e)
		}
		for query, want := range map[string]string{
			"actor=desk":                          "4 3",
			"action=create":                       "2 1",
			"via=http":                            "5 4 3",
			"via=" + "http+GET+%2Fapi%2Fusers%2F": "4 3",
			"via=sis":                             "",
			"subject=alice&actor=desk":            "4",
			"from=2000-01-01&to=2000-01-01":       "",
			"from=2000-01-01":                     "5 4 3 2 1",
			"to=2000-01-01T00:00:00Z":             "",
			"subject=nobody":                      "",
		} {
			var p auditPage
			s.do(auditor, "GET", "/api/audit/entries?"+query, nil).status(200).json(&p)
			if p.seqs() != want || p.Entries == nil {
				t.Errorf("%s: %q, want %q", query, p.seqs(), want)
			}
		}

		// Pages of two, by the link of each.
		var pages []string
		next := "/api/audit/entries?limit=2&via=http"
		for next != "" {
			var p auditPage
			res := s.do(auditor, "GET", next, nil).status(200)
			res.json(&p)
			pages = append(pages, p.seqs())
			if p.More != (p.Next != "") || (p.Next != "" && res.Header().Get("Link") != "<"+p.Next+`>; rel="next"`) {
				t.Fatalf("page %+v, Link %q", p, res.Header().Get("Link"))
			}
			next = p.Next
			if len(pages) > 3 {
				t.Fatal("the pages do not end")
			}
		}
		if fmt.Sprint(pages) != "[5 4 3]" {
			t.Fatalf("pages %q", pages)
		}
		if trailLength(t, s) != 5 {
			t.Fatal("searching the trail wrote to it")
		}
	})
}

func TestBadSearchParametersAreRefusedNamingThemAndChangeNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := auditServer(t, db, nil)
		for _, c := range []struct {
			query  string
			status int
			field  string
		}{
			{"limit=abc", 400, "limit"},
			{"limit=0", 422, "limit"},
			{"limit=1001", 422, "limit"},
			{"limit=99999999999999999999", 422, "limit"},
			{"cursor=x", 400, "cursor"},
			{"cursor=-3", 422, "cursor"},
			{"from=yesterday", 400, "from"},
			{"to=2026-13-01", 400, "to"},
			{"from=2026-09-02&to=2026-09-01", 422, "to"},
			{"format=xml", 400, "format"},
			{"format=xml&limit=abc", 400, "format"},
			{"subject=jd%00oe", 400, "subject"},
			{"via=%FF", 400, "via"},
			{"action=" + strings.Repeat("a", 17), 422, "action"},
			{"format=csv&limit=abc", 400, "limit"},
			{"format=csv&from=2026-09-02&to=2026-09-01", 422, "to"},
		} {
			s.do(auditor, "GET", "/api/audit/entries?"+c.query, nil).refused(t, c.query, c.status, c.field)
		}
		if n := trailLength(t, s); n != 5 {
			t.Fatalf("refused searches left %d entries, want 5", n)
		}
	})
}

func TestTheCSVExportHasItsRowsAndIsOnTheTrail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := auditServer(t, db, nil)
		for _, how := range []struct {
			query   string
			headers []string
		}{
			{"actor=desk&format=csv", nil},
			{"actor=desk&limit=1", []string{"Accept", "text/csv"}},
		} {
			res := s.do(auditor, "GET", "/api/audit/entries?"+how.query, nil, how.headers...).status(200)
			if ct := res.Header().Get("Content-Type"); ct != "text/csv; charset=utf-8" ||
				res.Header().Get("Content-Disposition") != "attachment; filename=audit-trail-DEMO.csv" {
				t.Fatalf("%s: %q, %q", how.query, ct, res.Header().Get("Content-Disposition"))
			}
			rows, err := csv.NewReader(res.Body).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 3 || !slices.Equal(rows[0], privacy.CSVHeader) || rows[1][0] != "4" || rows[1][7] != "alice" || rows[2][0] != "3" || rows[2][7] != "jdoe" ||
				rows[1][4] != "circulation-desk-operator@MAIN" || rows[1][5] != "MAIN" {
				t.Fatalf("%s: rows %q", how.query, rows)
			}
		}
		// Each export is an entry: by the auditor, with its filters.
		var p auditPage
		s.do(auditor, "GET", "/api/audit/entries?action=export&actor=audit", nil).status(200).json(&p)
		if p.seqs() != "7 6" {
			t.Fatalf("the exports on the trail: %+v", p)
		}
		e := p.Entries[0]
		if e.ActorID != "audit" || !slices.Equal(e.ActorRoles, []string{"auditor@*"}) || e.ActorLibrary != "*" || e.What != "audit trail" ||
			e.Subject != "" || e.Details != `{"actor":"desk"}` || e.Via != "http GET /api/audit/entries" {
			t.Fatalf("the export's entry: %+v", e)
		}
		// An export of one user's entries is in their access log.
		res := s.do(auditor, "GET", "/api/audit/entries?subject=jdoe&format=csv", nil).status(200)
		if rows, err := csv.NewReader(res.Body).ReadAll(); err != nil || len(rows) != 5 || rows[1][6] != "export" || rows[1][7] != "jdoe" {
			t.Fatalf("jdoe's export, with its own entry first: %q, %v", rows, err)
		}
		var log accessLog
		s.do("DEMO/jdoe/patron", "GET", "/api/me/access-log", nil).status(200).json(&log)
		if len(log.Entries) == 0 || log.Entries[0].Action != "export" || log.Entries[0].What != "audit trail" {
			t.Fatalf("jdoe's access log: %+v", log)
		}
	})
}

func TestOnlyTheAuditorSearchesAndVerifies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := auditServer(t, db, nil)
		for _, path := range []string{"/api/audit/entries", "/api/audit/entries?format=csv", "/api/audit/verify"} {
			s.do(desk, "GET", path, nil).refused(t, "the desk: "+path, http.StatusForbidden, "")
			s.do("DEMO/jdoe/patron", "GET", path, nil).refused(t, "a patron: "+path, http.StatusForbidden, "")
			s.do(auditor, "GET", path, nil).status(200)
		}
		if n := trailLength(t, s); n != 6 { // the auditor's export
			t.Fatalf("%d entries, want 6: refused exports leave none", n)
		}
	})
}

func TestTheVerifyRouteReportsATamperedEntry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := auditServer(t, db, nil)
		var v struct {
			OK          bool   `json:"ok"`
			Institution string `json:"institution"`
			Seq         int64  `json:"seq"`
			Reason      string `json:"reason"`
			Detail      string `json:"detail"`
		}
		s.do(auditor, "GET", "/api/audit/verify", nil).status(200).json(&v)
		if !v.OK || v.Institution != "DEMO" || v.Seq != 0 || v.Reason != "" {
			t.Fatalf("an untouched trail: %+v", v)
		}
		if err := db.Exec("UPDATE pk_privacy_audit SET actor_id = 'someone-else' WHERE seq = 3").Error; err != nil {
			t.Fatal(err)
		}
		s.do(auditor, "GET", "/api/audit/verify", nil).status(200).json(&v)
		if v.OK || v.Seq != 3 || v.Reason != privacy.Altered || v.Detail == "" {
			t.Fatalf("a tampered trail: %+v", v)
		}
	})
}

type accessLog struct {
	Entries []struct {
		Actor     *string  `json:"actor"`
		ActorKind string   `json:"actor_kind"`
		Roles     []string `json:"roles"`
		Library   string   `json:"library"`
		Action    string   `json:"action"`
		What      string   `json:"what"`
	} `json:"entries"`
	More       bool   `json:"more"`
	NextCursor int64  `json:"next_cursor"`
	Next       string `json:"next"`
}

// A patron's access log shows the desk's read of their record by role and
// library, named only where the institution says so, never their own
// reads, and to nobody else.
func TestAPatronsAccessLogShowsStaffReadsByRoleAndLibrary(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named=%v", named), func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
				cfg := &patronkit.Config{}
				if named {
					cfg.AccessLogNames = []string{"DEMO"}
				}
				s := auditServer(t, db, cfg)
				s.do("DEMO/jdoe/patron", "GET", "/api/me/personal-data", nil).status(200)
				var log accessLog
				s.do("DEMO/JDoe/patron", "GET", "/api/me/access-log", nil).status(200).json(&log)
				if len(log.Entries) != 2 || log.More {
					t.Fatalf("jdoe's access log: %+v", log)
				}
				r, c := log.Entries[0], log.Entries[1]
				if r.Action != "read" || r.What != "user" || r.ActorKind != "staff" || !slices.Equal(r.Roles, []string{"circulation-desk-operator@MAIN"}) || r.Library != "MAIN" {
					t.Errorf("the desk's read: %+v", r)
				}
				if named != (r.Actor != nil && *r.Actor == "desk") || (!named && r.Actor != nil) {
					t.Errorf("the desk's read names %v; named %v", r.Actor, named)
				}
				if c.Action != "create" || c.ActorKind != "system" {
					t.Errorf("the creation: %+v", c)
				}
				// Pages of one.
				var first, second accessLog
				res := s.do("DEMO/jdoe/patron", "GET", "/api/me/access-log?limit=1", nil).status(200)
				res.json(&first)
				if len(first.Entries) != 1 || !first.More || first.Next == "" || res.Header().Get("Link") == "" {
					t.Fatalf("the first page: %+v", first)
				}
				s.do("DEMO/jdoe/patron", "GET", first.Next, nil).status(200).json(&second)
				if len(second.Entries) != 1 || second.More || second.Entries[0].Action != "create" {
					t.Fatalf("the second page: %+v", second)
				}
				// The personal data hold the same.
				var doc struct {
					AccessLog []struct {
						Action  string `json:"action"`
						Library string `json:"library"`
					} `json:"access_log"`
				}
				s.do("DEMO/jdoe/patron", "GET", "/api/me/personal-data", nil).status(200).json(&doc)
				if len(doc.AccessLog) != 2 || doc.AccessLog[0].Library != "MAIN" {
					t.Errorf("the personal data's access log: %+v", doc.AccessLog)
				}
				// alice's log has the desk's read of hers, not of jdoe's.
				var other accessLog
				s.do("DEMO/alice/patron", "GET", "/api/me/access-log", nil).status(200).json(&other)
				if len(other.Entries) != 2 || other.Entries[0].Action != "read" || other.Entries[1].Action != "create" {
					t.Errorf("alice's access log: %+v", other)
				}
				s.do(desk, "GET", "/api/me/access-log", nil).refused(t, "staff", http.StatusForbidden, "")
				s.do("DEMO/nobody/patron", "GET", "/api/me/access-log", nil).refused(t, "no record", http.StatusNotFound, "")
				s.do("DEMO/jdoe/patron", "GET", "/api/me/access-log?limit=x", nil).refused(t, "limit=x", http.StatusBadRequest, "limit")
				s.do("DEMO/jdoe/patron", "GET", "/api/me/access-log?limit=0", nil).refused(t, "limit=0", http.StatusUnprocessableEntity, "limit")
				s.do("DEMO/jdoe/patron", "GET", "/api/me/access-log?cursor=0", nil).refused(t, "cursor=0", http.StatusUnprocessableEntity, "cursor")
			})
		})
	}
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
