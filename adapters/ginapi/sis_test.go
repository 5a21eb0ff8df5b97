package ginapi_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// sisUser is one <user> of an Alma SIS file, as a registrar sends it.
func sisUser(id, first, last, group string) string {
	return fmt.Sprintf(`  <user>
    <record_type desc="Public">PUBLIC</record_type>
    <primary_id>%s</primary_id>
    <first_name>%s</first_name>
    <last_name>%s</last_name>
    <user_group desc="Student">%s</user_group>
    <expiry_date>2027-08-31Z</expiry_date>
    <account_type desc="External">EXTERNAL</account_type>
    <status desc="Active">ACTIVE</status>
    <contact_info>
      <emails>
        <email preferred="true" segment_type="External"><email_address>%s@uni.example</email_address></email>
      </emails>
    </contact_info>
    <user_identifiers>
      <user_identifier segment_type="External"><id_type desc="Barcode">BARCODE</id_type><value>BC-%s</value></user_identifier>
    </user_identifiers>
  </user>
`, id, first, last, group, id, id)
}

// sisFile is an Alma SIS file holding the users.
func sisFile(users ...string) string {
	return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<users>\n" + strings.Join(users, "") + "</users>\n"
}

// gateSource is a Source offering one file, users.xml, whose Open waits
// until the test opens the gate: a run of its profile holds the profile as
// long as the test needs.
type gateSource struct {
	name, content string
	gate          chan struct{}
	once          sync.Once
}

func newGateSource(name, content string) *gateSource {
	return &gateSource{name: name, content: content, gate: make(chan struct{})}
}

func (g *gateSource) Name() string { return g.name }

func (g *gateSource) List(context.Context) ([]sis.File, error) {
	return []sis.File{{Name: "users.xml", Size: int64(len(g.content)), ModTime: testNow}}, nil
}

func (g *gateSource) Open(ctx context.Context, _ string) (io.ReadCloser, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return io.NopCloser(strings.NewReader(g.content)), nil
}

func (g *gateSource) Done(context.Context, string, bool) error { return nil }

// open lets every run through, now and later.
func (g *gateSource) open() { g.once.Do(func() { close(g.gate) }) }

// sisServer is an admin server with an upload profile REG of DEMO.
func sisServer(t *testing.T, cfg *patronkit.Config) *server {
	t.Helper()
	s := adminServer(t, cfg)
	s.do(admin, "POST", "/api/sis/profiles", map[string]any{"code": "REG", "source": "upload", "mode": "synchronize"}).status(http.StatusCreated)
	return s
}

// multipartFile is a multipart body with the file in the part "file".
func multipartFile(t testing.TB, name, content string) (string, string) {
	return uploadBody(t, name, "application/xml", []byte(content))
}

// start posts to a profile's runs and checks the 202: the run queued for
// that profile, its URL in Location. It returns the run as answered.
func (s *server) start(who, code, query, body string, headers ...string) sis.Run {
	s.t.Helper()
	var run sis.Run
	res := s.do(who, "POST", "/api/sis/profiles/"+code+"/runs"+query, body, headers...).status(http.StatusAccepted)
	res.json(&run)
	if run.ID == "" || run.Profile != code || run.Trigger != sis.TriggerManual {
		s.t.Fatalf("the started run: %+v", run)
	}
	if got := res.Header().Get("Location"); got != "/api/sis/runs/"+run.ID {
		s.t.Fatalf("Location %q, want /api/sis/runs/%s", got, run.ID)
	}
	return run
}

// finish waits for a run to end and returns it as GET /sis/runs/{id}
// shows it.
func (s *server) finish(who, id string) sis.Run {
	s.t.Helper()
	if _, err := s.kit.SIS.Wait(context.Background(), id); err != nil {
		s.t.Fatal(err)
	}
	var run sis.Run
	s.do(who, "GET", "/api/sis/runs/"+id, nil).status(http.StatusOK).json(&run)
	if run.ID != id || run.FinishedAt == nil || run.StartedAt == nil {
		s.t.Fatalf("the ended run: %+v", run)
	}
	return run
}

func runCounts(r sis.Run) string {
	return fmt.Sprintf("%s done=%d total=%d created=%d updated=%d unchanged=%d rejected=%d failed=%d", r.Status, r.Done, r.Total, r.Created, r.Updated, r.Unchanged, r.Rejected, r.Failed)
}

type sisReport struct {
	RunID    string        `json:"run_id"`
	Outcomes []sis.Outcome `json:"outcomes"`
	Total    int           `json:"total_record_count"`
}

func (s *server) report(who, id string) sisReport {
	s.t.Helper()
	var rep sisReport
	s.do(who, "GET", "/api/sis/runs/"+id+"/report", nil).status(http.StatusOK).json(&rep)
	if rep.RunID != id || rep.Total != len(rep.Outcomes) {
		s.t.Fatalf("the report of %s: %+v", id, rep)
	}
	return rep
}

func (s *server) user(who, id string) map[string]any {
	s.t.Helper()
	var u map[string]any
	s.do(who, "GET", "/api/users/"+id, nil).status(http.StatusOK).json(&u)
	return u
}

func TestSISProfileValidationNamesEveryField(t *testing.T) {
	s := adminServer(t, &patronkit.Config{Sources: []sis.Source{newGateSource("registrar-sftp", sisFile())}})
	cases := []struct {
		name    string
		profile map[string]any
		fields  []string
	}{
		{"bad mode", map[string]any{"code": "REG", "source": "upload", "mode": "mirror"}, []string{"mode"}},
		{"no mode", map[string]any{"code": "REG", "source": "upload"}, []string{"mode"}},
		{"bad cron schedule", map[string]any{"code": "REG", "source": "upload", "mode": "import", "schedule": "every night at six"}, []string{"schedule"}},
		{"six-field schedule", map[string]any{"code": "REG", "source": "upload", "mode": "import", "schedule": "0 0 6 * * *"}, []string{"schedule"}},
		{"unknown source", map[string]any{"code": "REG", "source": "registrar-ftp", "mode": "import"}, []string{"source"}},
		{"bad code", map[string]any{"code": "REG 2026", "source": "upload", "mode": "import"}, []string{"code"}},
		{"fixed expiry without a date", map[string]any{"code": "REG", "source": "upload", "mode": "import", "expiry_rule": "fixed"}, []string{"expiry_date"}},
		{"bad unmatched", map[string]any{"code": "REG", "source": "upload", "mode": "synchronize", "unmatched": "ignore"}, []string{"unmatched"}},
		{"all at once", map[string]any{"code": "REG", "source": "dropbox", "mode": "mirror", "schedule": "nightly"}, []string{"mode", "schedule", "source"}},
	}
	for _, c := range cases {
		res := s.do(admin, "POST", "/api/sis/profiles", c.profile)
		res.refused(t, c.name, http.StatusUnprocessableEntity, c.fields[0])
		if res.Code != http.StatusUnprocessableEntity {
			continue
		}
		p := res.problem()
		for _, f := range c.fields {
			if !fieldNamed(p, f) {
				t.Errorf("%s: the problem does not name %s: %+v", c.name, f, p.Errors)
			}
		}
		if len(p.Errors) != len(c.fields) {
			t.Errorf("%s: the problem names %+v, want only %v", c.name, p.Errors, c.fields)
		}
	}
	// The unknown source's message lists the sources there are.
	p := s.do(admin, "POST", "/api/sis/profiles", map[string]any{"code": "REG", "source": "registrar-ftp", "mode": "import"}).problem()
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Message, "registrar-sftp") || !strings.Contains(p.Errors[0].Message, "upload") {
		t.Errorf("the unknown source's message should list upload and registrar-sftp: %+v", p.Errors)
	}
	s.do(admin, "POST", "/api/sis/profiles", `{"code": "REG", "source": "upload", "mode": "import", "shoe_size": 44}`).refused(t, "unknown field", http.StatusBadRequest, "shoe_size")
	s.do(admin, "POST", "/api/sis/profiles", `{"code": "REG", "source": "upload", "mode": "import", "expiry_days": "ten"}`).refused(t, "wrong type", http.StatusBadRequest, "expiry_days")
	var list struct {
		Profiles []sis.Profile `json:"profiles"`
		Total    int           `json:"total_record_count"`
	}
	s.do(admin, "GET", "/api/sis/profiles", nil).status(http.StatusOK).json(&list)
	if list.Total != 0 || len(list.Profiles) != 0 {
		t.Fatalf("refused profiles were saved: %+v", list)
	}

	// A good profile: the defaults filled in, case normalized.
	res := s.do(admin, "POST", "/api/sis/profiles", map[string]any{
		"code": "REG", "description": "Registrar, nightly", "source": "registrar-sftp", "mode": "Synchronize", "format": "XML",
		"schedule": "0 6,18 * * *", "time_zone": "Europe/Oslo",
	}).status(http.StatusCreated)
	if res.Header().Get("Location") != "/api/sis/profiles/REG" || res.Header().Get("ETag") != `"1"` {
		t.Fatalf("Location %q ETag %q", res.Header().Get("Location"), res.Header().Get("ETag"))
	}
	var p1 sis.Profile
	res.json(&p1)
	if p1.Mode != "synchronize" || p1.Format != "xml" || p1.MatchBy != "primary_id" || p1.Unmatched != "add" || p1.ExpiryRule != "file" || p1.PurgeRule != "none" || p1.Version != 1 {
		t.Fatalf("the new profile: %+v", p1)
	}
	s.do(admin, "POST", "/api/sis/profiles", map[string]any{"code": "REG", "source": "upload", "mode": "import"}).refused(t, "the same code again", http.StatusConflict, "")

	// Replace: If-Match, the code of the path kept, the rules of a create.
	change := map[string]any{"code": "RENAMED", "source": "upload", "mode": "import", "unmatched": "reject"}
	s.do(admin, "PUT", "/api/sis/profiles/REG", change).refused(t, "no If-Match", http.StatusPreconditionRequired, "")
	var p2 sis.Profile
	res = s.do(admin, "PUT", "/api/sis/profiles/REG", change, "If-Match", `"1"`).status(http.StatusOK)
	res.json(&p2)
	if p2.Code != "REG" || p2.Mode != "import" || p2.Source != "upload" || p2.Version != 2 || res.Header().Get("ETag") != `"2"` || !p2.CreatedAt.Equal(p1.CreatedAt) {
		t.Fatalf("the replaced profile (ETag %s): %+v", res.Header().Get("ETag"), p2)
	}
	s.do(admin, "PUT", "/api/sis/profiles/REG", change, "If-Match", `"1"`).refused(t, "stale If-Match", http.StatusPreconditionFailed, "")
	s.do(admin, "PUT", "/api/sis/profiles/REG", map[string]any{"source": "upload", "mode": "mirror"}, "If-Match", `"2"`).refused(t, "bad replace", http.StatusUnprocessableEntity, "mode")
	s.do(admin, "GET", "/api/sis/profiles/RENAMED", nil).refused(t, "the code in the body", http.StatusNotFound, "")
	s.do(admin, "DELETE", "/api/sis/profiles/REG", nil).status(http.StatusNoContent)
	s.do(admin, "GET", "/api/sis/profiles/REG", nil).refused(t, "a deleted profile", http.StatusNotFound, "")
}

func TestSISUploadRunsLoadUsersAndReportEachOne(t *testing.T) {
	s := sisServer(t, nil)
	file := sisFile(sisUser("s1001", "Ada", "Lovelace", "UG"), sisUser("s1002", "", "", "UG"), sisUser("s1003", "Alan", "Turing", "GRAD"))

	// As multipart/form-data, as a browser form sends it.
	body, ctype := multipartFile(t, "registrar-2026-09-01.xml", file)
	run := s.start(admin, "REG", "", body, "Content-Type", ctype)
	if run.Status != sis.RunQueued || run.DryRun {
		t.Errorf("the 202 shows %+v, want a queued run", run)
	}
	run = s.finish(admin, run.ID)
	if got := runCounts(run); got != "succeeded done=3 total=3 created=2 updated=0 unchanged=0 rejected=1 failed=0" || run.Files != "registrar-2026-09-01.xml" {
		t.Fatalf("the multipart run: %s, files %q, error %q", got, run.Files, run.Error)
	}
	u := s.user(admin, "s1001")
	if u["account_type"] != "EXTERNAL" || u["external_id"] != "REG" || u["user_group"] != "UG" || u["first_name"] != "Ada" {
		t.Fatalf("the loaded user: %v", u)
	}
	s.do(admin, "GET", "/api/users/s1002", nil).refused(t, "the rejected user", http.StatusNotFound, "")

	// The report, as JSON: every user in file order.
	rep := s.report(admin, run.ID)
	var got []string
	for _, o := range rep.Outcomes {
		got = append(got, fmt.Sprintf("%d %s %s", o.Seq, o.PrimaryID, o.Outcome))
		if o.File != "registrar-2026-09-01.xml" || o.Ref == "" {
			t.Errorf("outcome %d does not say where the user is: %+v", o.Seq, o)
		}
	}
	if want := []string{"1 s1001 created", "2 s1002 rejected", "3 s1003 created"}; !slices.Equal(got, want) {
		t.Fatalf("the report: %q, want %q", got, want)
	}
	if reason := rep.Outcomes[1].Reason; !strings.Contains(reason, "first_name") {
		t.Errorf("the rejection reason %q does not name first_name", reason)
	}

	// ...and as CSV, a download.
	res := s.do(admin, "GET", "/api/sis/runs/"+run.ID+"/report", nil, "Accept", "text/csv").status(http.StatusOK)
	if ct := res.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("the CSV report is %q", ct)
	}
	if _, params, err := mime.ParseMediaType(res.Header().Get("Content-Disposition")); err != nil || params["filename"] != "run-"+run.ID+".csv" {
		t.Errorf("Content-Disposition %q", res.Header().Get("Content-Disposition"))
	}
	rows, err := csv.NewReader(strings.NewReader(res.Body.String())).ReadAll()
	if err != nil {
		t.Fatalf("the CSV report does not parse: %v\n%s", err, res.Body.String())
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != "seq,file,ref,primary_id,outcome,reason,changes" {
		t.Fatalf("the CSV report: %q, want a header line and one line per user", rows)
	}
	if r := rows[2]; r[0] != "2" || r[3] != "s1002" || r[4] != "rejected" || !strings.Contains(r[5], "first_name") {
		t.Errorf("the nameless user's line: %q", r)
	}
	if r := rows[3]; r[0] != "3" || r[3] != "s1003" || r[4] != "created" || r[5] != "" {
		t.Errorf("s1003's line: %q", r)
	}

	// The raw file as application/xml, named by file_name: one user
	// changed, one the same.
	next := sisFile(sisUser("s1001", "Ada", "King", "UG"), sisUser("s1003", "Alan", "Turing", "GRAD"))
	run = s.start(admin, "REG", "?file_name=registrar-2026-09-02.xml", next, "Content-Type", "application/xml")
	run = s.finish(admin, run.ID)
	if got := runCounts(run); got != "succeeded done=2 total=2 created=0 updated=1 unchanged=1 rejected=0 failed=0" || run.Files != "registrar-2026-09-02.xml" {
		t.Fatalf("the raw run: %s, files %q, error %q", got, run.Files, run.Error)
	}
	if rep := s.report(admin, run.ID); rep.Outcomes[0].Outcome != sis.OutcomeUpdated || rep.Outcomes[0].Changes != "last_name" {
		t.Errorf("the update's outcome: %+v, want last_name changed", rep.Outcomes[0])
	}
	if u := s.user(admin, "s1001"); u["last_name"] != "King" {
		t.Errorf("s1001 after the second run: %v", u)
	}

	// Raw, without file_name: named after the media type.
	run = s.finish(admin, s.start(admin, "REG", "", next, "Content-Type", "text/xml; charset=utf-8").ID)
	if run.Status != sis.RunSucceeded || run.Files != "upload.xml" || run.Unchanged != 2 {
		t.Errorf("the text/xml run: %s, files %q", runCounts(run), run.Files)
	}

	// The profile's runs, newest first.
	var runs struct {
		Runs  []sis.Run `json:"runs"`
		Total int       `json:"total_record_count"`
	}
	s.do(admin, "GET", "/api/sis/profiles/REG/runs", nil).status(http.StatusOK).json(&runs)
	if runs.Total != 3 || len(runs.Runs) != 3 || runs.Runs[0].ID != run.ID {
		t.Fatalf("the runs: %+v", runs)
	}
	s.do(admin, "GET", "/api/sis/profiles/REG/runs?limit=1", nil).status(http.StatusOK).json(&runs)
	if runs.Total != 1 || runs.Runs[0].ID != run.ID {
		t.Fatalf("the latest run: %+v", runs)
	}
	s.do(admin, "GET", "/api/sis/profiles/REG/runs?limit=lots", nil).refused(t, "bad limit", http.StatusBadRequest, "limit")
}

func TestSISDryRunWritesNothing(t *testing.T) {
	s := sisServer(t, nil)
	s.create("DEMO", &patron.User{PrimaryID: "staff1", FirstName: "Stella", LastName: "Staff"})
	before := userCount(s)
	file := sisFile(sisUser("s2001", "Grace", "Hopper", "UG"), sisUser("s2002", "Edsger", "Dijkstra", "UG"))
	run := s.start(admin, "REG", "?dry_run=true", file, "Content-Type", "application/xml")
	if !run.DryRun {
		t.Errorf("the 202 shows %+v, want a dry run", run)
	}
	run = s.finish(admin, run.ID)
	if got := runCounts(run); got != "succeeded done=2 total=2 created=2 updated=0 unchanged=0 rejected=0 failed=0" || !run.DryRun {
		t.Fatalf("the dry run: %s (dry %v) %q", got, run.DryRun, run.Error)
	}
	if n := userCount(s); n != before {
		t.Fatalf("the dry run changed the number of users from %d to %d", before, n)
	}
	s.do(admin, "GET", "/api/users/s2001", nil).refused(t, "a user of the dry run", http.StatusNotFound, "")
	if rep := s.report(admin, run.ID); len(rep.Outcomes) != 2 || rep.Outcomes[0].Outcome != sis.OutcomeCreated {
		t.Errorf("the dry run's report says what it would do: %+v", rep.Outcomes)
	}

	// A real run after it creates them.
	run = s.finish(admin, s.start(admin, "REG", "?dry_run=false", file, "Content-Type", "application/xml").ID)
	if run.Created != 2 || run.DryRun || userCount(s) != before+2 {
		t.Fatalf("the real run: %s (dry %v)", runCounts(run), run.DryRun)
	}
	// A dry run of a change reports it and leaves the user as it is.
	run = s.finish(admin, s.start(admin, "REG", "?dry_run=1", sisFile(sisUser("s2001", "Grace", "Brewster", "UG")), "Content-Type", "application/xml").ID)
	if rep := s.report(admin, run.ID); run.Updated != 1 || rep.Outcomes[0].Changes != "last_name" {
		t.Fatalf("the dry update: %s %+v", runCounts(run), rep.Outcomes)
	}
	if u := s.user(admin, "s2001"); u["last_name"] != "Hopper" {
		t.Fatalf("the dry run wrote: %v", u)
	}
}

func TestSISOneRunAtATimePerProfile(t *testing.T) {
	gate := newGateSource("registrar-sftp", sisFile(sisUser("s3001", "Barbara", "Liskov", "UG")))
	s := adminServer(t, &patronkit.Config{Sources: []sis.Source{gate}})
	t.Cleanup(gate.open) // before the kit closes
	s.do(admin, "POST", "/api/sis/profiles", map[string]any{"code": "NIGHTLY", "source": "registrar-sftp", "mode": "synchronize"}).status(http.StatusCreated)
	s.do(admin, "POST", "/api/sis/profiles", map[string]any{"code": "REG", "source": "upload", "mode": "synchronize"}).status(http.StatusCreated)

	// The first run reads the source, and waits at the gate.
	first := s.start(admin, "NIGHTLY", "", "")
	var now sis.Run
	s.do(admin, "GET", "/api/sis/runs/"+first.ID, nil).status(http.StatusOK).json(&now)
	if now.Status != sis.RunQueued && now.Status != sis.RunRunning {
		t.Fatalf("the held run is %s", now.Status)
	}

	// Meanwhile the profile refuses a second run, from its source or from
	// a file, and its deletion; another profile runs.
	res := s.do(admin, "POST", "/api/sis/profiles/NIGHTLY/runs", nil)
	res.refused(t, "a second run", http.StatusConflict, "")
	if p := res.problem(); p.Type != ginapi.ProblemTypePrefix+"conflict" || !strings.Contains(p.Detail, "running") {
		t.Errorf("the second run's problem: %+v", p)
	}
	s.do(admin, "POST", "/api/sis/profiles/NIGHTLY/runs", sisFile(sisUser("s3002", "Ken", "Thompson", "UG")), "Content-Type", "application/xml").
		refused(t, "a second run from a file", http.StatusConflict, "")
	del := s.do(admin, "DELETE", "/api/sis/profiles/NIGHTLY", nil)
	del.refused(t, "deleting a running profile", http.StatusConflict, "")
	if p := del.problem(); p.Type != ginapi.ProblemTypePrefix+"refused" || len(p.Reasons) == 0 {
		t.Errorf("the refused deletion: %+v", p)
	}
	other := s.finish(admin, s.start(admin, "REG", "", sisFile(sisUser("s3003", "Frances", "Allen", "UG")), "Content-Type", "application/xml").ID)
	if other.Status != sis.RunSucceeded || other.Created != 1 {
		t.Fatalf("another profile's run: %s", runCounts(other))
	}
	var runs struct {
		Total int `json:"total_record_count"`
	}
	s.do(admin, "GET", "/api/sis/profiles/NIGHTLY/runs", nil).status(http.StatusOK).json(&runs)
	if runs.Total != 1 {
		t.Fatalf("the refused runs were recorded: %d runs", runs.Total)
	}

	// Once the first run has ended, the profile runs again.
	gate.open()
	done := s.finish(admin, first.ID)
	if done.Status != sis.RunSucceeded || done.Created != 1 || done.Files != "users.xml" {
		t.Fatalf("the first run: %s, files %q, %q", runCounts(done), done.Files, done.Error)
	}
	again := s.finish(admin, s.start(admin, "NIGHTLY", "", "").ID)
	if again.Status != sis.RunSucceeded || again.Unchanged != 1 {
		t.Fatalf("the run after: %s", runCounts(again))
	}
	s.do(admin, "DELETE", "/api/sis/profiles/NIGHTLY", nil).status(http.StatusNoContent)
}

func TestSISRunsRefuseBadFiles(t *testing.T) {
	s := sisServer(t, nil)
	file := sisFile(sisUser("s4001", "Radia", "Perlman", "UG"))
	s.do(admin, "POST", "/api/sis/profiles", map[string]any{"code": "XMLONLY", "source": "upload", "mode": "import", "format": "xml"}).status(http.StatusCreated)

	cases := []struct {
		name, code, query, body string
		headers                 []string
		status                  int
		field                   string
	}{
		{"no file for an upload profile", "REG", "", "", nil, http.StatusUnprocessableEntity, "file"},
		{"unknown media type", "REG", "", file, []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType, ""},
		{"octet stream", "REG", "", file, []string{"Content-Type", "application/octet-stream"}, http.StatusUnsupportedMediaType, ""},
		{"no media type", "REG", "", file, []string{"Content-Type", ""}, http.StatusUnsupportedMediaType, ""},
		{"unknown extension", "REG", "?file_name=users.txt", file, []string{"Content-Type", "application/xml"}, http.StatusUnprocessableEntity, "file"},
		{"no extension", "REG", "?file_name=users", file, []string{"Content-Type", "application/xml"}, http.StatusUnprocessableEntity, "file"},
		{"bad dry_run", "REG", "?dry_run=perhaps", file, []string{"Content-Type", "application/xml"}, http.StatusBadRequest, ""},
		{"unknown profile", "NOPE", "", file, []string{"Content-Type", "application/xml"}, http.StatusNotFound, ""},
	}
	for _, c := range cases {
		s.do(admin, "POST", "/api/sis/profiles/"+c.code+"/runs"+c.query, c.body, c.headers...).refused(t, c.name, c.status, c.field)
	}
	body, ctype := multipartFile(t, "users.pdf", file)
	s.do(admin, "POST", "/api/sis/profiles/REG/runs", body, "Content-Type", ctype).refused(t, "a multipart file of unknown extension", http.StatusUnprocessableEntity, "file")
	body, ctype = uploadBody(t, "-", "", nil, "comment", "forgot the file")
	s.do(admin, "POST", "/api/sis/profiles/REG/runs", body, "Content-Type", ctype).refused(t, "a multipart body without a file", http.StatusBadRequest, "file")
	s.do(admin, "POST", "/api/sis/profiles/REG/runs", body, "Content-Type", "multipart/form-data").refused(t, "multipart without a boundary", http.StatusBadRequest, "")

	var runs struct {
		Total int `json:"total_record_count"`
	}
	s.do(admin, "GET", "/api/sis/profiles/REG/runs", nil).status(http.StatusOK).json(&runs)
	if runs.Total != 0 {
		t.Fatalf("refused requests started %d runs", runs.Total)
	}

	// A profile with a format reads any file name.
	run := s.finish(admin, s.start(admin, "XMLONLY", "?file_name=export.dat", file, "Content-Type", "application/xml").ID)
	if run.Status != sis.RunSucceeded || run.Created != 1 {
		t.Fatalf("a file of the profile's format: %s %q", runCounts(run), run.Error)
	}

	// A file that is not what its media type says fails the run, which
	// changes nothing.
	run = s.finish(admin, s.start(admin, "REG", "", "%PDF-1.7 not a user file", "Content-Type", "application/xml").ID)
	if run.Status != sis.RunFailed || run.Error == "" || run.Created != 0 {
		t.Fatalf("a file that is not XML: %s %q", runCounts(run), run.Error)
	}
}

func TestSISFileOverMaxUploadBytesIs413(t *testing.T) {
	s := sisServer(t, nil)
	// A second engine over the same kit, with a small upload limit.
	const limit = 2 << 10
	r := gin.New()
	err := ginapi.Mount(r.Group("/api"), s.kit, &ginapi.Options{MaxUploadBytes: limit, Principal: func(c *gin.Context) (ginapi.Who, error) {
		return ginapi.Who{Institution: "DEMO", ID: "librarian"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	send := func(body, ctype string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/sis/profiles/REG/runs", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	big := sisFile(sisUser("s5001", "Big", "File", "UG"), strings.Repeat("<!-- padding -->\n", limit/16), sisUser("s5002", "Big", "File", "UG"))
	body, ctype := multipartFile(t, "big.xml", big)
	for name, w := range map[string]*httptest.ResponseRecorder{"raw": send(big, "application/xml"), "multipart": send(body, ctype)} {
		res := response{w, t}
		res.refused(t, name+" file over the limit", http.StatusRequestEntityTooLarge, "")
		if res.Code == http.StatusRequestEntityTooLarge && !strings.Contains(res.problem().Detail, fmt.Sprint(limit)) {
			t.Errorf("%s: the problem does not give the limit: %s", name, res.Body.String())
		}
	}
	// Under the limit the same engine starts the run.
	small := sisFile(sisUser("s5003", "Small", "File", "UG"))
	if w := send(small, "application/xml"); w.Code != http.StatusAccepted {
		t.Fatalf("a small file: %d %s", w.Code, w.Body.String())
	}
	var runs struct {
		Runs []sis.Run `json:"runs"`
	}
	s.do(admin, "GET", "/api/sis/profiles/REG/runs", nil).status(http.StatusOK).json(&runs)
	if len(runs.Runs) != 1 {
		t.Fatalf("runs %+v, want only the small file's", runs.Runs)
	}
	if run := s.finish(admin, runs.Runs[0].ID); run.Created != 1 {
		t.Fatalf("the small file's run: %s", runCounts(run))
	}
	if _, err := s.kit.Patrons.Get(context.Background(), "DEMO", "s5001"); err == nil {
		t.Fatal("a user of the refused file was loaded")
	}
}

func TestSISRestoreFieldsHandsThemBackToTheFile(t *testing.T) {
	s := sisServer(t, nil)
	file := sisFile(sisUser("s6001", "Katherine", "Johnson", "UG"))
	s.finish(admin, s.start(admin, "REG", "", file, "Content-Type", "application/xml").ID)

	// Staff move the student to another group by hand.
	res := s.do(admin, "GET", "/api/users/s6001", nil).status(http.StatusOK)
	var u map[string]any
	res.json(&u)
	u["user_group"] = "GRAD"
	s.do(admin, "PUT", "/api/users/s6001", u, "If-Match", res.Header().Get("ETag")).status(http.StatusOK)
	var overrides struct {
		Overrides []patron.FieldOverride `json:"overrides"`
	}
	s.do(admin, "GET", "/api/users/s6001/overrides", nil).status(http.StatusOK).json(&overrides)
	if len(overrides.Overrides) != 1 || overrides.Overrides[0].Field != "user_group" {
		t.Fatalf("overrides: %+v", overrides)
	}
	// The same file keeps the hand-set group.
	s.finish(admin, s.start(admin, "REG", "", file, "Content-Type", "application/xml").ID)
	if got := s.user(admin, "s6001")["user_group"]; got != "GRAD" {
		t.Fatalf("the file overwrote the hand-set group: %v", got)
	}

	// Restored, the next run of the same file sets it from the file again.
	var restored struct {
		Restored []string `json:"restored"`
	}
	s.do(admin, "POST", "/api/users/s6001/restore-sis-fields", map[string]any{"fields": []string{"user_group", "job_category"}}).status(http.StatusOK).json(&restored)
	if !slices.Equal(restored.Restored, []string{"user_group"}) {
		t.Fatalf("restored %q, want [user_group]", restored.Restored)
	}
	if got := s.user(admin, "s6001")["user_group"]; got != "GRAD" {
		t.Fatalf("the restore changed the group before a run: %v", got)
	}
	run := s.finish(admin, s.start(admin, "REG", "", file, "Content-Type", "application/xml").ID)
	if rep := s.report(admin, run.ID); run.Updated != 1 || rep.Outcomes[0].Changes != "user_group" {
		t.Fatalf("the run after the restore: %s %+v", runCounts(run), rep.Outcomes)
	}
	if got := s.user(admin, "s6001")["user_group"]; got != "UG" {
		t.Fatalf("user_group %v after the run, want UG from the file", got)
	}
	s.do(admin, "GET", "/api/users/s6001/overrides", nil).status(http.StatusOK).json(&overrides)
	if len(overrides.Overrides) != 0 {
		t.Fatalf("overrides after the restore: %+v", overrides)
	}

	// Nothing held by hand: an empty list, not null.
	res = s.do(admin, "POST", "/api/users/s6001/restore-sis-fields", map[string]any{}).status(http.StatusOK)
	if strings.TrimSpace(res.Body.String()) != `{"restored":[]}` {
		t.Errorf("nothing to restore: %s", res.Body.String())
	}

	// Refusals.
	s.create("DEMO", &patron.User{PrimaryID: "internal1", FirstName: "Ida", LastName: "Internal"})
	res = s.do(admin, "POST", "/api/users/internal1/restore-sis-fields", map[string]any{})
	res.refused(t, "an internal user", http.StatusConflict, "")
	if p := res.problem(); p.Type != ginapi.ProblemTypePrefix+"refused" || len(p.Reasons) == 0 {
		t.Errorf("the internal user's problem: %+v", p)
	}
	s.do(admin, "POST", "/api/users/s6001/restore-sis-fields", map[string]any{"fields": []string{"user_group", "first_name"}}).
		refused(t, "a field that is not retained", http.StatusUnprocessableEntity, "fields[1]")
	s.do(admin, "POST", "/api/users/nobody/restore-sis-fields", map[string]any{}).refused(t, "an unknown user", http.StatusNotFound, "")
	s.do(admin, "POST", "/api/users/s6001/restore-sis-fields", `{"field": ["user_group"]}`).refused(t, "a misspelt key", http.StatusBadRequest, "field")
}

func TestSISOtherInstitutionFindsNothing(t *testing.T) {
	s := sisServer(t, nil)
	s.grant("OTHER", "librarian", "user-administrator", "*")
	const foreign = "OTHER/librarian/staff"
	run := s.finish(admin, s.start(admin, "REG", "", sisFile(sisUser("s7001", "Hedy", "Lamarr", "UG")), "Content-Type", "application/xml").ID)

	var list struct {
		Profiles []sis.Profile `json:"profiles"`
		Total    int           `json:"total_record_count"`
	}
	s.do(foreign, "GET", "/api/sis/profiles", nil).status(http.StatusOK).json(&list)
	if list.Total != 0 {
		t.Fatalf("OTHER lists DEMO's profiles: %+v", list)
	}
	file := sisFile(sisUser("x1", "X", "X", "UG"))
	for _, c := range []struct {
		method, path string
		body         any
		headers      []string
	}{
		{"GET", "/api/sis/profiles/REG", nil, nil},
		{"PUT", "/api/sis/profiles/REG", map[string]any{"code": "REG", "source": "upload", "mode": "import"}, []string{"If-Match", `"1"`}},
		{"GET", "/api/sis/profiles/REG/runs", nil, nil},
		{"POST", "/api/sis/profiles/REG/runs", file, []string{"Content-Type", "application/xml"}},
		{"POST", "/api/sis/profiles/REG/runs", nil, nil},
		{"GET", "/api/sis/runs/" + run.ID, nil, nil},
		{"GET", "/api/sis/runs/" + run.ID + "/report", nil, nil},
		{"GET", "/api/sis/runs/" + run.ID + "/report", nil, []string{"Accept", "text/csv"}},
		{"POST", "/api/users/s7001/restore-sis-fields", map[string]any{}, nil},
		{"DELETE", "/api/sis/profiles/REG", nil, nil},
	} {
		res := s.do(foreign, c.method, c.path, c.body, c.headers...)
		res.refused(t, "OTHER: "+c.method+" "+c.path, http.StatusNotFound, "")
		if strings.Contains(res.Body.String(), "s7001") && !strings.HasSuffix(c.path, "restore-sis-fields") {
			t.Errorf("OTHER: %s %s leaks DEMO's data: %s", c.method, c.path, res.Body.String())
		}
	}
	// DEMO's profile and run are as they were.
	s.do(admin, "GET", "/api/sis/profiles/REG", nil).status(http.StatusOK)
	if rep := s.report(admin, run.ID); len(rep.Outcomes) != 1 {
		t.Fatalf("DEMO's report: %+v", rep)
	}

	// OTHER may have a profile of the same code: its own.
	s.do(foreign, "POST", "/api/sis/profiles", map[string]any{"code": "REG", "source": "upload", "mode": "import", "description": "OTHER's"}).status(http.StatusCreated)
	var p sis.Profile
	s.do(admin, "GET", "/api/sis/profiles/REG", nil).status(http.StatusOK).json(&p)
	if p.Description != "" || p.Mode != "synchronize" {
		t.Fatalf("OTHER's profile changed DEMO's: %+v", p)
	}
	otherRun := s.finish(foreign, s.start(foreign, "REG", "", sisFile(sisUser("s7001", "Other", "Person", "UG")), "Content-Type", "application/xml").ID)
	if otherRun.Created != 1 {
		t.Fatalf("OTHER's run: %s", runCounts(otherRun))
	}
	s.do(admin, "GET", "/api/sis/runs/"+otherRun.ID, nil).refused(t, "DEMO reading OTHER's run", http.StatusNotFound, "")
	if u := s.user(admin, "s7001"); u["first_name"] != "Hedy" {
		t.Fatalf("OTHER's run changed DEMO's user: %v", u)
	}
}
