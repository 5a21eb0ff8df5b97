package ginapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/sets"
)

// A user administrator makes a query set and an itemized set from a CSV
// file, lists them, reads one with its count and its members in pages,
// freezes the query set and deletes a set; other staff may not; a set not
// valid is refused naming the field and nothing is made.
func TestSetsAreMadeReadFrozenAndDeleted(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, &patronkit.Config{})
		s.grant("UNI", "boss", "user-administrator", "*")
		s.grant("UNI", "desk", "circulation-desk-operator", "*")
		const boss = "UNI/boss/staff"
		for _, id := range []string{"ann", "bob", "cy"} {
			s.create("UNI", &patron.User{PrimaryID: id, FirstName: "F", LastName: strings.ToUpper(id), UserGroup: "GRAD", ExpiryDate: "2026-12-31"})
		}
		s.create("UNI", &patron.User{PrimaryID: "dan", FirstName: "F", LastName: "Dan", UserGroup: "STAFF"})

		for name, c := range map[string]struct {
			body        any
			contentType string
			status      int
			field       string
		}{
			"no name":        {`{"query":{"user_group":"GRAD"}}`, "application/json", http.StatusUnprocessableEntity, "name"},
			"a bad status":   {`{"name":"x","query":{"status":"gone"}}`, "application/json", http.StatusUnprocessableEntity, "query.status"},
			"a bad date":     {`{"name":"x","query":{"expiry_date_to":"31/12/2026"}}`, "application/json", http.StatusUnprocessableEntity, "query.expiry_date_to"},
			"unknown field":  {`{"name":"x","query":{"group":"GRAD"}}`, "application/json", http.StatusBadRequest, ""},
			"not json":       {`{`, "application/json", http.StatusBadRequest, ""},
			"xml":            {`<set/>`, "application/xml", http.StatusUnsupportedMediaType, ""},
			"a file unnamed": {"ann\n", "text/csv", http.StatusUnprocessableEntity, "name"},
			"a balance < 0":  {`{"name":"x","query":{"balance_over":-1}}`, "application/json", http.StatusUnprocessableEntity, "query.balance_over"},
			"a balance text": {`{"name":"x","query":{"balance_over":"10"}}`, "application/json", http.StatusBadRequest, ""},
			"an activity":    {`{"name":"x","query":{"last_activity_before":"2026"}}`, "application/json", http.StatusUnprocessableEntity, "query.last_activity_before"},
		} {
			s.do(boss, http.MethodPost, "/api/sets", c.body, "Content-Type", c.contentType).refused(t, name, c.status, c.field)
		}
		s.do(boss, http.MethodPost, "/api/sets?name=x", "ghost\n", "Content-Type", "text/csv").refused(t, "nobody", http.StatusUnprocessableEntity, "file")
		s.do("UNI/desk/staff", http.MethodPost, "/api/sets", `{"name":"x"}`).refused(t, "desk", http.StatusForbidden, "")
		s.do("UNI/desk/staff", http.MethodGet, "/api/sets", nil).refused(t, "desk reads", http.StatusForbidden, "")
		s.do("UNI/ann/patron", http.MethodGet, "/api/sets", nil).refused(t, "a patron", http.StatusForbidden, "")
		var n int64
		if err := db.Table("pk_sets").Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("refused sets left %d rows (%v)", n, err)
		}

		if _, err := s.kit.Circulation.AddFee(context.Background(), "UNI", "bob", circulation.NewFee{Amount: 500, Currency: "USD", Description: "Lost card"}); err != nil {
			t.Fatal(err)
		}
		var owing sets.Set
		s.do(boss, http.MethodPost, "/api/sets", `{"name":"Owing","query":{"balance_over":499,"last_activity_before":"2999-01-01"}}`).status(http.StatusCreated).json(&owing)
		if owing.MemberCount != 1 || owing.Query == nil || *owing.Query.BalanceOver != 499 || owing.Query.ActivityBefore != "2999-01-01" {
			t.Errorf("the set of who owes: %+v", owing)
		}
		s.do(boss, http.MethodDelete, "/api/sets/"+owing.ID, nil).status(http.StatusNoContent)

		var grads sets.Set
		r := s.do(boss, http.MethodPost, "/api/sets", `{"name":"Grads","query":{"user_group":"GRAD","expiry_date_to":"2026-12-31"}}`).status(http.StatusCreated)
		r.json(&grads)
		if grads.MemberCount != 3 || grads.Kind != sets.KindQuery || r.Header().Get("Location") != "/api/sets/"+grads.ID {
			t.Fatalf("made %+v at %q", grads, r.Header().Get("Location"))
		}
		var listed sets.Made
		s.do(boss, http.MethodPost, "/api/sets?name=List&id_type=primary_id", "ANN\n\nghost\ndan\n", "Content-Type", "text/csv").status(http.StatusCreated).json(&listed)
		if listed.MemberCount != 2 || !slices.Equal(listed.NotFound, []sets.Line{{Line: 3, Value: "ghost"}}) {
			t.Fatalf("made from a file %+v", listed)
		}

		var page sets.Members
		s.do(boss, http.MethodGet, "/api/sets/"+grads.ID+"/members?limit=2", nil).status(http.StatusOK).json(&page)
		if page.TotalRecordCount != 3 || len(page.Members) != 2 || page.Members[0].PrimaryID != "ann" || page.Next != "bob" {
			t.Fatalf("the first page %+v", page)
		}
		after := page.Next
		page = sets.Members{}
		s.do(boss, http.MethodGet, "/api/sets/"+grads.ID+"/members?limit=2&after="+after, nil).status(http.StatusOK).json(&page)
		if len(page.Members) != 1 || page.Members[0].PrimaryID != "cy" || page.Next != "" {
			t.Fatalf("the second page %+v", page)
		}
		s.do(boss, http.MethodGet, "/api/sets/"+grads.ID+"/members?limit=101", nil).refused(t, "a page of 101", http.StatusBadRequest, "limit")

		var frozen sets.Set
		s.do(boss, http.MethodPost, "/api/sets/"+grads.ID+"/freeze", `{"name":"Grads in September"}`).status(http.StatusCreated).json(&frozen)
		if frozen.Kind != sets.KindItemized || frozen.MemberCount != 3 || frozen.FrozenFrom != grads.ID || frozen.Name != "Grads in September" {
			t.Fatalf("frozen %+v", frozen)
		}
		s.do(boss, http.MethodPost, "/api/sets/"+frozen.ID+"/freeze", nil).refused(t, "freeze an itemized set", http.StatusConflict, "")
		s.do(boss, http.MethodPost, "/api/sets/"+grads.ID+"/freeze", `{"name":"`+strings.Repeat("n", 256)+`"}`).refused(t, "a long name", http.StatusUnprocessableEntity, "name")

		var list sets.Page
		s.do(boss, http.MethodGet, "/api/sets", nil).status(http.StatusOK).json(&list)
		if list.TotalRecordCount != 3 || len(list.Sets) != 3 || list.Sets[1].ID != listed.ID || list.Sets[1].MemberCount != 2 {
			t.Fatalf("the list %+v", list)
		}
		s.do("OTHER/boss/staff", http.MethodGet, "/api/sets/"+grads.ID, nil).status(http.StatusForbidden)
		s.grant("OTHER", "boss", "user-administrator", "*")
		s.do("OTHER/boss/staff", http.MethodGet, "/api/sets/"+grads.ID, nil).refused(t, "another institution", http.StatusNotFound, "")
		s.do("OTHER/boss/staff", http.MethodDelete, "/api/sets/"+grads.ID, nil).refused(t, "another institution deletes", http.StatusNotFound, "")

		s.do(boss, http.MethodDelete, "/api/sets/"+listed.ID, nil).status(http.StatusNoContent)
		s.do(boss, http.MethodGet, "/api/sets/"+listed.ID, nil).refused(t, "deleted", http.StatusNotFound, "")
		var got sets.Set
		s.do(boss, http.MethodGet, "/api/sets/"+grads.ID, nil).status(http.StatusOK).json(&got)
		if got.MemberCount != 3 || got.Query == nil || got.Query.UserGroup != "GRAD" {
			t.Errorf("read %+v", got)
		}
	})
}

// A file of identifiers larger than the mount's upload limit is refused
// (413) and makes nothing.
func TestASetFileOverTheLimitIsRefused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, &patronkit.Config{})
		s.grant("UNI", "boss", "user-administrator", "*")
		s.create("UNI", &patron.User{PrimaryID: "ann", FirstName: "F", LastName: "Ann"})
		s.limitUploads(t, 64)
		file := strings.Repeat("ann\n", 40)
		s.do("UNI/boss/staff", http.MethodPost, "/api/sets?name=x", file, "Content-Type", "text/csv").refused(t, "too large", http.StatusRequestEntityTooLarge, "")
		var n int64
		if err := db.Table("pk_sets").Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("a refused file left %d sets (%v)", n, err)
		}
	})
}

// A user administrator previews an update of the members of a set (the
// count, each field's change, an external user refused), which writes
// nothing, then starts it: it runs in the background and its progress
// and outcomes are read; bad fields are refused naming the field; a job
// ended cannot be cancelled; other staff may not run jobs.
func TestAnUpdateOfASetIsPreviewedAndRun(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, &patronkit.Config{})
		s.grant("UNI", "boss", "user-administrator", "*")
		s.grant("UNI", "desk", "circulation-desk-operator", "*")
		const boss = "UNI/boss/staff"
		for _, id := range []string{"ann", "bob"} {
			s.create("UNI", &patron.User{PrimaryID: id, FirstName: "F", LastName: id, UserGroup: "GRAD", ExpiryDate: "2026-12-31"})
		}
		s.create("UNI", &patron.User{PrimaryID: "eve", FirstName: "F", LastName: "Eve", UserGroup: "GRAD", ExpiryDate: "2027-01-31", AccountType: "EXTERNAL", ExternalID: "SIS"})
		var set sets.Set
		s.do(boss, http.MethodPost, "/api/sets", `{"name":"Grads","query":{"user_group":"GRAD"}}`).status(http.StatusCreated).json(&set)

		for name, c := range map[string]struct {
			body   string
			status int
			field  string
		}{
			"no field":       {`{"fields":{}}`, http.StatusUnprocessableEntity, "fields"},
			"a name":         {`{"fields":{"last_name":"X"}}`, http.StatusUnprocessableEntity, "last_name"},
			"a bad date":     {`{"fields":{"expiry_date":"soon"}}`, http.StatusUnprocessableEntity, "expiry_date"},
			"status clear":   {`{"fields":{"status":null}}`, http.StatusUnprocessableEntity, "status"},
			"another kind":   {`{"kind":"merge","fields":{"status":"ACTIVE"}}`, http.StatusUnprocessableEntity, "kind"},
			"notify fields":  {`{"kind":"notify","fields":{"status":"ACTIVE"},"message":{"text":"x"}}`, http.StatusUnprocessableEntity, "fields"},
			"no message":     {`{"kind":"notify"}`, http.StatusUnprocessableEntity, "message"},
			"no text":        {`{"kind":"notify","message":{"subject":"x"}}`, http.StatusUnprocessableEntity, "text"},
			"a template":     {`{"kind":"notify","message":{"template":"none","text":"x"}}`, http.StatusUnprocessableEntity, "template"},
			"update message": {`{"fields":{"status":"ACTIVE"},"message":{"text":"x"}}`, http.StatusUnprocessableEntity, "message"},
			"a big sample":   {`{"fields":{"status":"ACTIVE"},"sample":101}`, http.StatusUnprocessableEntity, "sample"},
			"a block":        {`{"add_blocks":[{"block_type":"GENERAL"}]}`, http.StatusUnprocessableEntity, "add_blocks[0].block_description"},
			"a statistic":    {`{"remove_statistics":[""]}`, http.StatusUnprocessableEntity, "remove_statistics[0]"},
			"not an object":  {`{"fields":["status"]}`, http.StatusBadRequest, ""},
		} {
			s.do(boss, http.MethodPost, "/api/sets/"+set.ID+"/preview", c.body).refused(t, "preview: "+name, c.status, c.field)
			if name != "a big sample" {
				s.do(boss, http.MethodPost, "/api/sets/"+set.ID+"/jobs", c.body).refused(t, "job: "+name, c.status, c.field)
			}
		}
		s.do(boss, http.MethodPost, "/api/sets/nothing/jobs", `{"fields":{"status":"ACTIVE"}}`).refused(t, "no set", http.StatusNotFound, "")
		s.do("UNI/desk/staff", http.MethodPost, "/api/sets/"+set.ID+"/jobs", `{"fields":{"status":"ACTIVE"}}`).refused(t, "desk", http.StatusForbidden, "")

		body := `{"fields":{"user_group":"ALUMNI","expiry_date":null},"add_blocks":[{"block_type":"GENERAL","block_description":"Graduated"}]}`
		var p sets.Preview
		s.do(boss, http.MethodPost, "/api/sets/"+set.ID+"/preview", body).status(http.StatusOK).json(&p)
		if p.Total != 3 || len(p.Sample) != 3 || p.Sample[0].Changes["user_group"] != [2]string{"GRAD", "ALUMNI"} || p.Sample[2].Outcome != "changed" ||
			len(p.Sample[2].Reasons) != 1 || len(p.Sample[0].Segments) != 1 || p.Sample[0].Segments[0].Value != "GENERAL: Graduated" {
			t.Fatalf("preview %+v", p)
		}
		var n int64
		if err := db.Table("pk_set_jobs").Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("a preview or refused job left %d jobs (%v)", n, err)
		}

		var job sets.Job
		r := s.do(boss, http.MethodPost, "/api/sets/"+set.ID+"/jobs", body).status(http.StatusAccepted)
		r.json(&job)
		if job.Total != 3 || r.Header().Get("Location") != "/api/jobs/"+job.ID {
			t.Fatalf("started %+v at %q", job, r.Header().Get("Location"))
		}
		s.kit.Sets.Wait()
		s.do(boss, http.MethodGet, "/api/jobs/"+job.ID, nil).status(http.StatusOK).json(&job)
		if job.Status != sets.JobDone || job.Done != 3 || job.Changed != 3 || job.Refused != 0 || job.Segments == nil || len(job.Segments.AddBlocks) != 1 {
			t.Fatalf("the job %+v", job)
		}
		var os struct {
			Outcomes []sets.JobOutcome `json:"outcomes"`
		}
		s.do(boss, http.MethodGet, "/api/jobs/"+job.ID+"/outcomes?after=1&limit=5", nil).status(http.StatusOK).json(&os)
		if len(os.Outcomes) != 2 || os.Outcomes[0].Seq != 2 {
			t.Errorf("outcomes %+v", os)
		}
		csvBody := s.do(boss, http.MethodGet, "/api/jobs/"+job.ID+"/outcomes", nil, "Accept", "text/csv").status(http.StatusOK).Body.String()
		wantCSV := "seq,primary_id,outcome,changes,reasons\n" +
			"1,ann,changed,expiry_date: 2026-12-31 -> ; user_group: GRAD -> ALUMNI; user_blocks: + GENERAL: Graduated,\n" +
			"2,bob,changed,expiry_date: 2026-12-31 -> ; user_group: GRAD -> ALUMNI; user_blocks: + GENERAL: Graduated,\n" +
			"3,eve,changed,user_group: GRAD -> ALUMNI; user_blocks: + GENERAL: Graduated,\"expiry_date: is kept by the SIS for an external user; only user_group, job_category, pin_number, preferred_language, campus_code and rs_library may be changed by hand\"\n"
		if csvBody != wantCSV {
			t.Errorf("the CSV report\n%s\nwant\n%s", csvBody, wantCSV)
		}
		u, err := s.kit.Patrons.Get(context.Background(), "UNI", "ann")
		if err != nil || u.UserGroup != "ALUMNI" || u.ExpiryDate != "" || len(u.Blocks) != 1 {
			t.Errorf("ann after the job: %+v, %v", u, err)
		}
		s.do(boss, http.MethodPost, "/api/jobs/"+job.ID+"/cancel", nil).refused(t, "cancel an ended job", http.StatusConflict, "")

		var undo sets.Job
		r = s.do(boss, http.MethodPost, "/api/jobs/"+job.ID+"/undo", nil).status(http.StatusAccepted)
		r.json(&undo)
		if undo.Kind != sets.JobUndo || undo.UndoOf != job.ID || undo.Total != 3 || r.Header().Get("Location") != "/api/jobs/"+undo.ID {
			t.Fatalf("the undo %+v", undo)
		}
		s.kit.Sets.Wait()
		if u, err := s.kit.Patrons.Get(context.Background(), "UNI", "ann"); err != nil || u.UserGroup != "GRAD" || u.ExpiryDate != "2026-12-31" || len(u.Blocks) != 0 {
			t.Errorf("ann after the undo: %+v, %v", u, err)
		}
		s.do(boss, http.MethodPost, "/api/jobs/"+job.ID+"/undo", nil).refused(t, "undo twice", http.StatusConflict, "")
		s.do("OTHER/boss/staff", http.MethodPost, "/api/jobs/"+job.ID+"/undo", nil).status(http.StatusForbidden)
		s.do(boss, http.MethodGet, "/api/jobs/"+job.ID+"/outcomes?limit=1001", nil).refused(t, "a page of 1001", http.StatusBadRequest, "limit")
		s.grant("OTHER", "boss", "user-administrator", "*")
		s.do("OTHER/boss/staff", http.MethodGet, "/api/jobs/"+job.ID, nil).refused(t, "another institution", http.StatusNotFound, "")
		s.do("OTHER/boss/staff", http.MethodPost, "/api/jobs/"+job.ID+"/cancel", nil).refused(t, "another institution cancels", http.StatusNotFound, "")
	})
}

// limitUploads mounts the API again on a new engine of s, with the
// upload limit n.
func (s *server) limitUploads(t *testing.T, n int64) {
	t.Helper()
	r := gin.New()
	err := ginapi.Mount(r.Group("/api"), s.kit, &ginapi.Options{MaxUploadBytes: n, Principal: func(c *gin.Context) (ginapi.Who, error) {
		parts := strings.Split(c.GetHeader("X-Test-Who"), "/")
		if len(parts) != 3 {
			return ginapi.Who{}, nil
		}
		return ginapi.Who{Institution: parts[0], ID: parts[1], Patron: parts[2] == "patron"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.r = r
}

// A notify job is previewed (the count, each message of a sample
// rendered) and run over HTTP: one notice per member in the outbox, each
// job's outcome naming its channel; it cannot be undone (409).
func TestANotifyJobOverASetIsPreviewedAndRun(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, &patronkit.Config{})
		s.grant("UNI", "boss", "user-administrator", "*")
		s.grant("UNI", "desk", "circulation-desk-operator", "*")
		const boss = "UNI/boss/staff"
		s.create("UNI", &patron.User{PrimaryID: "ann", FirstName: "Ann", LastName: "Lee", UserGroup: "GRAD",
			Emails: []patron.Email{{EmailAddress: "ann@example.edu", Preferred: true}}})
		s.create("UNI", &patron.User{PrimaryID: "bob", FirstName: "Bob", LastName: "Roy", UserGroup: "GRAD"})
		var set sets.Set
		s.do(boss, http.MethodPost, "/api/sets", `{"name":"Grads","query":{"user_group":"GRAD"}}`).status(http.StatusCreated).json(&set)

		body := `{"kind":"notify","message":{"subject":"Closed on Friday","text":"The library is closed on Friday."}}`
		s.do("UNI/desk/staff", http.MethodPost, "/api/sets/"+set.ID+"/jobs", body).refused(t, "desk", http.StatusForbidden, "")
		var p sets.NotifyPreview
		s.do(boss, http.MethodPost, "/api/sets/"+set.ID+"/preview", body).status(http.StatusOK).json(&p)
		if p.Total != 2 || len(p.Sample) != 2 || p.Sample[0].Recipient != "ann@example.edu" || !strings.Contains(p.Sample[0].Body, "Dear Ann Lee") ||
			p.Sample[1].Status != "skipped" {
			t.Fatalf("the preview %+v", p)
		}
		var job sets.Job
		s.do(boss, http.MethodPost, "/api/sets/"+set.ID+"/jobs", body).status(http.StatusAccepted).json(&job)
		s.kit.Sets.Wait()
		s.do(boss, http.MethodGet, "/api/jobs/"+job.ID, nil).status(http.StatusOK).json(&job)
		if job.Kind != sets.JobNotify || job.Status != sets.JobDone || job.Changed != 1 || job.Refused != 1 || job.Message == nil || job.Message.Subject != "Closed on Friday" {
			t.Fatalf("the job %+v", job)
		}
		csvBody := s.do(boss, http.MethodGet, "/api/jobs/"+job.ID+"/outcomes?format=csv", nil).status(http.StatusOK).Body.String()
		if !strings.Contains(csvBody, "1,ann,queued,notice: email pending,") || !strings.Contains(csvBody, "2,bob,skipped,notice: email skipped,") {
			t.Errorf("the report\n%s", csvBody)
		}
		var n int64
		if err := db.Table("pk_circ_notices").Where("kind = ?", "message").Count(&n).Error; err != nil || n != 2 {
			t.Errorf("%d notices (%v)", n, err)
		}
		s.do(boss, http.MethodPost, "/api/jobs/"+job.ID+"/undo", nil).refused(t, "undo a notify job", http.StatusConflict, "")
	})
}

// The purge takes a set as its input (set_id): of its members, those past
// their purge date are purged, others stay; an unknown set is 404 and
// nothing is run.
func TestAPurgeRunTakesASet(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, &patronkit.Config{AuditKey: []byte("the library's secret")})
		s.grant("UNI", "boss", "user-administrator", "*")
		const boss = "UNI/boss/staff"
		for _, id := range []string{"ann", "bob"} {
			s.create("UNI", &patron.User{PrimaryID: id, FirstName: "F", LastName: id, PurgeDate: "2000-01-01"})
		}
		var made sets.Made
		s.do(boss, http.MethodPost, "/api/sets?name=Leaving", "ann\n", "Content-Type", "text/csv").status(http.StatusCreated).json(&made)
		s.do(boss, http.MethodPost, "/api/privacy/purge-runs?set_id=nothing", nil).refused(t, "an unknown set", http.StatusNotFound, "")
		var run struct {
			SetID  string `json:"set_id"`
			Purged int64  `json:"purged"`
		}
		s.do(boss, http.MethodPost, "/api/privacy/purge-runs?set_id="+made.ID, nil).status(http.StatusCreated).json(&run)
		if run.SetID != made.ID || run.Purged != 1 {
			t.Errorf("the run %+v", run)
		}
		if _, err := s.kit.Patrons.Get(context.Background(), "UNI", "bob"); err != nil {
			t.Errorf("bob, not in the set: %v", err)
		}
		if _, err := s.kit.Patrons.Get(context.Background(), "UNI", "ann"); err == nil {
			t.Error("ann, in the set, was not purged")
		}
	})
}
