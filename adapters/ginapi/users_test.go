package ginapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/patron"
)

const admin = "DEMO/librarian/staff"

func adminServer(t testing.TB, cfg *patronkit.Config) *server {
	return adminServerOn(t, nil, cfg)
}

// adminServerOn is adminServer on db (nil: a new SQLite database).
func adminServerOn(t testing.TB, db *gorm.DB, cfg *patronkit.Config) *server {
	s := newServer(t, db, cfg)
	s.grant("DEMO", "librarian", "user-administrator", "*")
	return s
}

func userCount(s *server) int {
	var page struct {
		Total int `json:"total_record_count"`
	}
	s.do(admin, "GET", "/api/users", nil).status(200).json(&page)
	return page.Total
}

func fieldNamed(p ginapi.Problem, field string) bool {
	for _, f := range p.Errors {
		if f.Field == field {
			return true
		}
	}
	return false
}

func TestCreateGetAndListUsers(t *testing.T) {
	s := adminServer(t, nil)
	res := s.do(admin, "POST", "/api/users", `{
		"primary_id": "jdoe", "first_name": "Jane", "last_name": "Doe", "user_group": "UNDERGRAD",
		"pin_number": "1234",
		"user_identifiers": [{"id_type": "BARCODE", "value": "B1"}],
		"emails": [{"email_address": "jane@uni.example", "preferred": true}],
		"user_notes": [{"note_text": "staff only"}, {"note_text": "hello", "user_viewable": true}]
	}`).status(http.StatusCreated)
	if res.Header().Get("Location") != "/api/users/jdoe" || res.Header().Get("ETag") != `"1"` {
		t.Fatalf("Location %q ETag %q", res.Header().Get("Location"), res.Header().Get("ETag"))
	}
	if strings.Contains(res.Body.String(), "pin") || strings.Contains(res.Body.String(), "1234") {
		t.Fatalf("the PIN came back: %s", res.Body.String())
	}

	var u patron.User
	s.do(admin, "GET", "/api/users/JDOE", nil).status(200).json(&u)
	if u.PrimaryID != "jdoe" || len(u.Notes) != 2 {
		t.Fatalf("staff read: %+v", u)
	}
	s.do(admin, "GET", "/api/users/b1?user_id_type=BARCODE", nil).status(200).json(&u)
	if u.PrimaryID != "jdoe" {
		t.Fatalf("lookup by barcode: %+v", u)
	}
	s.do(admin, "GET", "/api/users/nobody", nil).status(404).problem()

	// The patron sees their record without staff notes.
	var own patron.User
	s.do("DEMO/jdoe/patron", "GET", "/api/users/jdoe", nil).status(200).json(&own)
	if len(own.Notes) != 1 || own.Notes[0].NoteText != "hello" {
		t.Fatalf("a patron must see only public notes: %+v", own.Notes)
	}
	// ...and cannot reach another record through an identifier lookup
	// whose value happens to be their own primary id.
	s.create("DEMO", &patron.User{PrimaryID: "other", FirstName: "O", LastName: "O", Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "jdoe"}}})
	s.do("DEMO/jdoe/patron", "GET", "/api/users/jdoe?user_id_type=BARCODE", nil).status(404).problem()

	var page struct {
		Users []patron.User `json:"user"`
		Total int           `json:"total_record_count"`
	}
	s.do(admin, "GET", "/api/users?q=jane&limit=5", nil).status(200).json(&page)
	if page.Total != 1 || len(page.Users) != 1 || page.Users[0].PrimaryID != "jdoe" {
		t.Fatalf("search: %+v", page)
	}
	for _, bad := range []string{"limit=abc", "limit=-1", "offset=x", "limit=1000"} {
		p := s.do(admin, "GET", "/api/users?"+bad, nil).problem()
		if p.Status != 400 && p.Status != 422 {
			t.Fatalf("%s: status %d", bad, p.Status)
		}
	}
}

func TestBadBodiesAre4xxAndWriteNothing(t *testing.T) {
	s := adminServer(t, &patronkit.Config{})
	s.create("DEMO", &patron.User{PrimaryID: "taken", FirstName: "T", LastName: "T", Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "B9"}}})
	big := `{"primary_id":"x","first_name":"` + strings.Repeat("a", 2<<20) + `","last_name":"y"}`
	cases := []struct {
		name, body, ctype string
		status            int
		field             string
	}{
		{"malformed", `{"primary_id": "x",`, "", 400, ""},
		{"not json", `hello`, "", 400, ""},
		{"empty", ``, "", 400, ""},
		{"two values", `{"primary_id":"a","first_name":"a","last_name":"a"} {}`, "", 400, ""},
		{"unknown field", `{"primary_id":"x","first_name":"a","last_name":"b","shoe_size":44}`, "", 400, "shoe_size"},
		{"wrong type", `{"primary_id":"x","first_name":"a","last_name":"b","emails":"a@b.c"}`, "", 400, "emails"},
		{"wrong nested type", `{"primary_id":"x","first_name":"a","last_name":"b","emails":[{"email_address":"a@b.example","preferred":"yes"}]}`, "", 400, "emails.preferred"},
		{"too large", big, "", 413, ""},
		{"not json media type", `{"primary_id":"x"}`, "text/plain", 415, ""},
		{"no names", `{"primary_id":"x"}`, "", 422, "first_name"},
		{"two preferred emails", `{"primary_id":"x","first_name":"a","last_name":"b","emails":[{"email_address":"a@b.example","preferred":true},{"email_address":"c@d.example","preferred":true}]}`, "", 422, "emails[1].preferred"},
		{"bad email", `{"primary_id":"x","first_name":"a","last_name":"b","emails":[{"email_address":"nope"}]}`, "", 422, "emails[0].email_address"},
		{"taken primary id", `{"primary_id":"TAKEN","first_name":"a","last_name":"b"}`, "", 409, ""},
		{"taken identifier", `{"primary_id":"x","first_name":"a","last_name":"b","user_identifiers":[{"id_type":"BARCODE","value":"b9"}]}`, "", 409, ""},
	}
	for _, c := range cases {
		headers := []string{}
		if c.ctype != "" {
			headers = append(headers, "Content-Type", c.ctype)
		}
		s.do(admin, "POST", "/api/users", c.body, headers...).refused(t, c.name, c.status, c.field)
	}
	if n := userCount(s); n != 1 {
		t.Fatalf("refused bodies wrote users: %d", n)
	}
}

func TestReplaceNeedsTheCurrentVersion(t *testing.T) {
	s := adminServer(t, nil)
	s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
	body := `{"primary_id":"jdoe","first_name":"Janet","last_name":"Doe"}`
	s.do(admin, "PUT", "/api/users/jdoe", body).status(http.StatusPreconditionRequired).problem()
	s.do(admin, "PUT", "/api/users/jdoe", body, "If-Match", "yesterday").status(400).problem()
	s.do(admin, "PUT", "/api/users/jdoe", body, "If-Match", `"7"`).status(http.StatusPreconditionFailed).problem()
	res := s.do(admin, "PUT", "/api/users/jdoe", body, "If-Match", `"1"`).status(200)
	if res.Header().Get("ETag") != `"2"` {
		t.Fatalf("ETag after replace: %q", res.Header().Get("ETag"))
	}
	// The same If-Match again is now stale, and changes nothing.
	s.do(admin, "PUT", "/api/users/jdoe", `{"primary_id":"jdoe","first_name":"Lost","last_name":"Update"}`, "If-Match", `"1"`).status(412)
	var u patron.User
	s.do(admin, "GET", "/api/users/jdoe", nil).status(200).json(&u)
	if u.FirstName != "Janet" || u.Version != 2 {
		t.Fatalf("after a stale PUT: %+v", u)
	}
	s.do(admin, "PUT", "/api/users/nobody", body, "If-Match", `"1"`).status(404).problem()
}

func TestSegmentsOneAtATime(t *testing.T) {
	s := adminServer(t, nil)
	s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
	var u patron.User
	s.do(admin, "POST", "/api/users/jdoe/user_notes", `{"note_text":"Returned a book wet","note_type":"CIRC"}`).status(201).json(&u)
	if len(u.Notes) != 1 || u.Notes[0].CreatedBy != "librarian" {
		t.Fatalf("note: %+v", u.Notes)
	}
	s.do(admin, "POST", "/api/users/jdoe/user_blocks", `{"block_type":"GENERAL","block_description":"FINES","expiry_date":"2027-01-01"}`).status(201)
	s.do(admin, "POST", "/api/users/jdoe/user_notes", `{"note_text":"`+strings.Repeat("n", 2001)+`"}`).status(422).problem()
	s.do(admin, "POST", "/api/users/jdoe/user_blocks", `{"block_type":"GENERAL"}`).status(422).problem()
	s.do(admin, "DELETE", "/api/users/jdoe/user_notes/"+u.Notes[0].ID, nil).status(204)
	s.do(admin, "DELETE", "/api/users/jdoe/user_notes/"+u.Notes[0].ID, nil).status(404).problem()
	var after patron.User
	s.do(admin, "GET", "/api/users/jdoe", nil).status(200).json(&after)
	if len(after.Notes) != 0 || len(after.Blocks) != 1 || after.Version != 4 {
		t.Fatalf("after the edits: %+v", after)
	}
}

func TestDeleteListsEveryReasonItIsRefused(t *testing.T) {
	guard := patron.DeletionGuardFunc(func(_ context.Context, u *patron.User) ([]string, error) {
		if u.UserGroup == "BUSY" {
			return []string{"has 3 loans", "owes 4.50 EUR"}, nil
		}
		return nil, nil
	})
	s := adminServer(t, &patronkit.Config{DeletionGuards: []patron.DeletionGuard{guard}})
	s.create("DEMO", &patron.User{PrimaryID: "busy", FirstName: "B", LastName: "B", UserGroup: "BUSY"})
	s.create("DEMO", &patron.User{PrimaryID: "idle", FirstName: "I", LastName: "I"})
	p := s.do(admin, "DELETE", "/api/users/busy", nil).status(409).problem()
	if strings.Join(p.Reasons, "|") != "has 3 loans|owes 4.50 EUR" {
		t.Fatalf("reasons: %+v", p)
	}
	s.do(admin, "GET", "/api/users/busy", nil).status(200)
	s.do(admin, "DELETE", "/api/users/idle", nil).status(204)
	s.do(admin, "GET", "/api/users/idle", nil).status(404)
}

func TestExternalUsersThroughTheAPI(t *testing.T) {
	s := adminServer(t, nil)
	var u patron.User
	s.do(admin, "POST", "/api/users", `{"primary_id":"fast1","first_name":"F","last_name":"R","account_type":"EXTERNAL","external_id":"SIS","user_group":"UNDERGRAD"}`).status(201).json(&u)
	body := `{"primary_id":"fast1","first_name":"Changed","last_name":"R","account_type":"EXTERNAL","external_id":"SIS","user_group":"GRAD"}`
	p := s.do(admin, "PUT", "/api/users/fast1", body, "If-Match", `"1"`).status(422).problem()
	if !fieldNamed(p, "first_name") || fieldNamed(p, "user_group") {
		t.Fatalf("only first_name is the SIS's: %+v", p.Errors)
	}
	s.do(admin, "PUT", "/api/users/fast1", strings.Replace(body, "Changed", "F", 1), "If-Match", `"1"`).status(200)
	var ov struct {
		Overrides []patron.FieldOverride `json:"overrides"`
	}
	s.do(admin, "GET", "/api/users/fast1/overrides", nil).status(200).json(&ov)
	if len(ov.Overrides) != 1 || ov.Overrides[0].Field != "user_group" || ov.Overrides[0].ChangedBy != "librarian" {
		t.Fatalf("overrides: %+v", ov)
	}
}

func TestRequestIDsAndPanics(t *testing.T) {
	s := adminServer(t, nil)
	res := s.do(admin, "GET", "/api/users/nobody", nil, ginapi.RequestIDHeader, "trace-42")
	if p := res.problem(); p.RequestID != "trace-42" {
		t.Fatalf("request id not kept: %+v", p)
	}
	res = s.do(admin, "GET", "/api/users/nobody", nil, ginapi.RequestIDHeader, "bad id with spaces")
	if id := res.problem().RequestID; id == "bad id with spaces" || len(id) < 16 {
		t.Fatalf("a malformed request id must be replaced: %q", id)
	}

	// A listener that panics is a server fault: a plain 500 problem with no
	// stack trace.
	s2 := adminServer(t, &patronkit.Config{Listeners: []patron.Listener{patron.ListenerFunc(func(context.Context, patron.Change) { panic("listener bug at /secret/path.go:12") })}})
	res = s2.do(admin, "POST", "/api/users", `{"primary_id":"p","first_name":"a","last_name":"b"}`).status(500)
	if p := res.problem(); strings.Contains(res.Body.String(), "secret") || p.Detail == "" {
		t.Fatalf("500 leaks: %s", res.Body.String())
	}
}

func TestBasicPINSignInLocksOut(t *testing.T) {
	s := newServer(t, nil, &patronkit.Config{MaxSignInFailures: 3})
	s.create("DEMO", &patron.User{PrimaryID: "student1", FirstName: "S", LastName: "S", PINNumber: "3333"})
	r := gin.New()
	if err := ginapi.Mount(r.Group("/api"), s.kit, &ginapi.Options{Principal: ginapi.BasicPIN(s.kit.Patrons, "DEMO")}); err != nil {
		t.Fatal(err)
	}
	basic := &server{t: t, kit: s.kit, r: r, db: s.db}
	get := func(user, pin string) response {
		req := "/api/users/student1"
		if user == "" {
			return basic.do("", "GET", req, nil)
		}
		return basic.do("", "GET", req, nil, "Authorization", "Basic "+b64(user+":"+pin))
	}
	if res := get("", ""); res.Code != 401 || res.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("no credentials: %d %v", res.Code, res.Header())
	}
	get("student1", "3333").status(200)
	for i := 0; i < 3; i++ {
		get("student1", "0000").status(401).problem()
	}
	res := get("student1", "3333").status(429)
	res.problem()
	if ra := res.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After: %q", ra)
	}
}

func TestLocationIsEscapedAndResolverFailuresAre500(t *testing.T) {
	s := adminServer(t, nil)
	res := s.do(admin, "POST", "/api/users", `{"primary_id":"a b?c","first_name":"a","last_name":"b"}`).status(201)
	if loc := res.Header().Get("Location"); loc != "/api/users/a%20b%3Fc" {
		t.Fatalf("Location %q", loc)
	}
	s.do(admin, "GET", res.Header().Get("Location"), nil).status(200)
	s.do(admin, "POST", "/api/users", `{"primary_id":"a/b","first_name":"a","last_name":"b"}`).status(422).problem()

	r := gin.New()
	err := ginapi.Mount(r.Group(""), s.kit, &ginapi.Options{Principal: func(c *gin.Context) (ginapi.Who, error) {
		if c.GetHeader("X-Down") != "" {
			return ginapi.Who{}, fmt.Errorf("session store: connection refused")
		}
		return ginapi.Who{Institution: "DEMO", ID: "librarian"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	root := &server{t: t, kit: s.kit, r: r, db: s.db}
	res = root.do("", "POST", "/users", `{"primary_id":"rooted","first_name":"a","last_name":"b"}`).status(201)
	if loc := res.Header().Get("Location"); loc != "/users/rooted" {
		t.Fatalf("Location at the root: %q", loc)
	}
	res = root.do("", "GET", "/users", nil, "X-Down", "1").status(500)
	if strings.Contains(res.Body.String(), "refused") {
		t.Fatalf("the resolver's error leaked: %s", res.Body.String())
	}
}
