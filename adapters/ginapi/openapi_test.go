package ginapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
	"github.com/patronkit/patronkit/privacy"
)

// oaInst is the institution of every principal of these tests.
const oaInst = "T"

// oaMaxAttachment is the attachment limit of oaNewServer's kit.
const oaMaxAttachment = 64 << 10

// oaGuarded is a user that the deletion guard of oaNewServer refuses to
// delete, with two reasons.
const oaGuarded = "guarded"

// oaMaxUpload is the mount's limit on an SIS file sent to start a run.
const oaMaxUpload = 64 << 10

// oaServer is a kit mounted under /api of a Gin engine, with the OpenAPI
// document the mount serves and a router over it. Requests name their
// principal in X-Test-User (a staff primary_id; "locked" answers 429) and
// act as a patron on their own account when X-Test-Patron is set.
type oaServer struct {
	kit    *patronkit.Kit
	db     *gorm.DB
	engine *gin.Engine
	// gate is the source of SIS files whose runs wait until it opens.
	gate   *gateSource
	doc    *openapi3.T
	router routers.Router
	// seen counts the exchanges validated per operation ("GET /users").
	seen map[string]int
}

// The export answers Alma user XML, which kin-openapi does not decode by
// itself: validate it as the string the document says it is.
func init() { openapi3filter.RegisterBodyDecoder("application/xml", openapi3filter.FileBodyDecoder) }

func oaPrincipal(c *gin.Context) (ginapi.Who, error) {
	id := c.GetHeader("X-Test-User")
	switch id {
	case "":
		return ginapi.Who{}, fmt.Errorf("%w: no X-Test-User header", ginapi.ErrNotSignedIn)
	case "locked":
		return ginapi.Who{}, &fault.Error{Kind: fault.Locked, Detail: "too many failed sign-ins", RetryAfter: 90 * time.Second}
	}
	return ginapi.Who{Institution: oaInst, ID: id, Patron: c.GetHeader("X-Test-Patron") != ""}, nil
}

// oaNewServer builds the engine: a fresh SQLite file, the kit migrated,
// "admin" a user-administrator everywhere, "clerk" staff without roles.
// Notices by email are delivered (to nowhere) when the test sends them
// (Circulation.SendNotices); SMS notices stay pending.
func oaNewServer(t *testing.T) *oaServer {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	if sqlDB, err := db.DB(); err == nil {
		t.Cleanup(func() { _ = sqlDB.Close() })
	}
	guard := patron.DeletionGuardFunc(func(_ context.Context, u *patron.User) ([]string, error) {
		if u.PrimaryID == oaGuarded {
			return []string{"has 2 loans open", "owes 12.50"}, nil
		}
		return nil, nil
	})
	gate := newGateSource("gate", sisFile(sisUser("g1", "Gil", "Gate", "UG")))
	kit, err := patronkit.New(db, &patronkit.Config{
		PINCost:        4,
		Logger:         slog.New(slog.DiscardHandler),
		DeletionGuards: []patron.DeletionGuard{guard},
		Sources:        []sis.Source{gate},
		Email:          circulation.NotifierFunc(func(context.Context, circulation.Message) error { return nil }),

		MaxAttachmentBytes: oaMaxAttachment,
		AuditKey:           []byte("the library's secret"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Runs end before the database closes; a run waiting at the gate is
	// let through first.
	t.Cleanup(kit.Close)
	t.Cleanup(gate.open)
	if err := kit.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := kit.Access.AssignRole(ctx, oaInst, "admin", "user-administrator", "*"); err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.TestMode)
	r := gin.New()
	if err := ginapi.Mount(r.Group("/api"), kit, &ginapi.Options{Principal: oaPrincipal, MaxBodyBytes: 64 << 10, MaxUploadBytes: oaMaxUpload}); err != nil {
		t.Fatal(err)
	}

	// The document under test is the one the mount serves.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/openapi.json", nil)
	req.Header.Set("X-Test-User", "admin")
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/openapi.json: %d %s", rec.Code, rec.Body)
	}
	doc, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("the served document does not load: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("the served document is not valid: %v", err)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/api" {
		t.Fatalf("the served document's servers are %+v, want the mount point /api", doc.Servers)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &oaServer{kit: kit, db: db, engine: r, gate: gate, doc: doc, router: router, seen: map[string]int{}}
}

// oaOpenAPIPath turns a gin route path (/users/:primary_id) into an OpenAPI
// path template (/users/{primary_id}).
func oaOpenAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if len(s) > 1 && (s[0] == ':' || s[0] == '*') {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// oaOperations lists the operations of a document as "METHOD /path".
func oaOperations(doc *openapi3.T) map[string]*openapi3.Operation {
	out := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out[method+" "+path] = op
		}
	}
	return out
}

func oaSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestOpenAPIDocumentListsEveryRoute compares the routes Mount registers
// with the operations of the document, both ways.
func TestOpenAPIDocumentListsEveryRoute(t *testing.T) {
	s := oaNewServer(t)
	routes := map[string]bool{}
	for _, ri := range s.engine.Routes() {
		rest, ok := strings.CutPrefix(ri.Path, "/api/")
		if !ok {
			continue
		}
		// HEAD is registered on every GET route's handlers and the
		// document says so once; the fallback routes (404, 405 and
		// OPTIONS below the mount) are no operations. routes_test.go
		// checks both.
		if ri.Method == http.MethodHead || isFallback(ri) {
			continue
		}
		routes[ri.Method+" "+oaOpenAPIPath("/"+rest)] = true
	}
	if len(routes) == 0 {
		t.Fatal("the engine lists no route below /api")
	}
	ops := oaOperations(s.doc)
	var undocumented, unrouted []string
	for _, k := range oaSortedKeys(routes) {
		if ops[k] == nil {
			undocumented = append(undocumented, k)
		}
	}
	for _, k := range oaSortedKeys(ops) {
		if !routes[k] {
			unrouted = append(unrouted, k)
		}
	}
	if len(undocumented) > 0 {
		t.Errorf("routes Mount registers that the document does not describe:\n  %s", strings.Join(undocumented, "\n  "))
	}
	if len(unrouted) > 0 {
		t.Errorf("operations of the document that Mount does not register:\n  %s", strings.Join(unrouted, "\n  "))
	}
	// Each operation names the action the route table maps its route to.
	for _, rt := range ginapi.Routes() {
		key := rt.Method + " " + oaOpenAPIPath(rt.Path)
		if op := ops[key]; op != nil && op.Extensions["x-patronkit-action"] != rt.Action {
			t.Errorf("%s: x-patronkit-action %v, want %s (the route table's)", key, op.Extensions["x-patronkit-action"], rt.Action)
		}
		if !routes[key] {
			t.Errorf("the route table has %s, which Mount does not register", key)
		}
	}
	t.Logf("%d routes, %d operations", len(routes), len(ops))
}

// TestOpenAPIOperationsAreComplete checks what every operation must say:
// an id, a summary, tags, the problems every route can answer, the body
// problems of the routes that read one, and If-Match on PUT.
func TestOpenAPIOperationsAreComplete(t *testing.T) {
	s := oaNewServer(t)
	ids := map[string]string{}
	ops := oaOperations(s.doc)
	for _, key := range oaSortedKeys(ops) {
		op := ops[key]
		method, path, _ := strings.Cut(key, " ")
		if op.OperationID == "" || op.Summary == "" || len(op.Tags) == 0 {
			t.Errorf("%s: operationId %q, summary %q, tags %v: all are required", key, op.OperationID, op.Summary, op.Tags)
		}
		if prev, dup := ids[op.OperationID]; dup {
			t.Errorf("%s: operationId %q is also the id of %s", key, op.OperationID, prev)
		}
		ids[op.OperationID] = key
		want := []int{401, 403, 429, 500}
		if op.RequestBody != nil {
			want = append(want, 400, 413, 415, 422)
			// JSON, or a file upload: multipart/form-data, and perhaps the
			// raw file under the media types it may be sent with.
			content := op.RequestBody.Value.Content
			if content["multipart/form-data"] != nil {
				for mt, m := range content {
					if mt == "multipart/form-data" {
						continue
					}
					if m.Schema == nil || m.Schema.Value == nil || !m.Schema.Value.Type.Is("string") || m.Schema.Value.Format != "binary" {
						t.Errorf("%s: the upload's %s body is not the raw file (a binary string)", key, mt)
					}
				}
			} else if content.Get("application/json") == nil {
				t.Errorf("%s: the request body is neither application/json nor multipart/form-data", key)
			} else {
				// JSON, and perhaps the same data as a CSV file (a bulk load).
				for mt, m := range content {
					if mt == "application/json" {
						continue
					}
					if mt != "text/csv" || m.Schema == nil || m.Schema.Value == nil || !m.Schema.Value.Type.Is("string") {
						t.Errorf("%s: the request body may be application/json, or text/csv as a string; not %s", key, mt)
					}
				}
			}
		}
		if strings.Contains(path, "{") {
			// Whatever the path names may not exist.
			want = append(want, 404)
		}
		if method == http.MethodPut {
			want = append(want, 412, 428)
			p := oaParameter(s.doc, path, op, "header", "If-Match")
			if p == nil || !p.Required {
				t.Errorf("%s: If-Match must be a required header parameter", key)
			}
		}
		for _, code := range want {
			if op.Responses.Status(code) == nil {
				t.Errorf("%s: response %d is not documented", key, code)
			}
		}
		for code, ref := range op.Responses.Map() {
			r := ref.Value
			if r.Headers["X-Request-ID"] == nil {
				t.Errorf("%s %s: the X-Request-ID header is not documented", key, code)
			}
			if n, err := strconv.Atoi(code); err != nil || n >= 400 {
				mt := r.Content.Get("application/problem+json")
				if mt == nil || len(r.Content) != 1 {
					t.Errorf("%s %s: an error must be application/problem+json only", key, code)
				}
			}
		}
		for _, name := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
			if p := oaParameter(s.doc, path, op, "path", name[1]); p == nil || !p.Required {
				t.Errorf("%s: path parameter %s is not declared as required", key, name[1])
			}
		}
	}
}

// oaParameter finds a parameter of an operation or of its path item.
func oaParameter(doc *openapi3.T, path string, op *openapi3.Operation, in, name string) *openapi3.Parameter {
	if p := op.Parameters.GetByInAndName(in, name); p != nil {
		return p
	}
	return doc.Paths.Value(path).Parameters.GetByInAndName(in, name)
}

// oaResponse is a response the document has been checked to describe.
type oaResponse struct {
	status int
	header http.Header
	body   []byte
}

// oaJSON decodes the body of a response into v.
func oaJSON(t *testing.T, r oaResponse, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
}

// do sends a request through the engine as principal user ("" for none),
// fails the test unless the status is want, and validates the response
// (status, headers, body) against the document; for a 2xx the request is
// validated too. body is sent as it is when a string, as JSON otherwise;
// headers are name, value pairs (Content-Type defaults to
// application/json when there is a body).
func (s *oaServer) do(t *testing.T, want int, user, method, target string, body any, headers ...string) oaResponse {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		raw = j
	}
	newRequest := func() *http.Request {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(raw)
		}
		req := httptest.NewRequest(method, target, rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if user != "" {
			req.Header.Set("X-Test-User", user)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return req
	}
	req := newRequest()
	name := method + " " + target

	route, pathParams, err := s.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s: the document has no operation for it: %v", name, err)
	}
	ctx := context.Background()
	if want >= 200 && want < 300 {
		in := &openapi3filter.RequestValidationInput{
			Request:    newRequest(),
			PathParams: pathParams,
			Route:      route,
			Options: &openapi3filter.Options{
				AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
				SkipSettingDefaults: true,
				MultiError:          true,
			},
		}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s: the request does not match the document: %v", name, err)
		}
	}

	rec := httptest.NewRecorder()
	s.engine.ServeHTTP(rec, req)
	res := oaResponse{status: rec.Code, header: rec.Header().Clone(), body: rec.Body.Bytes()}
	if res.status != want {
		t.Errorf("%s: status %d, want %d: %s", name, res.status, want, res.body)
	}

	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route},
		Status:                 res.status,
		Header:                 res.header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(res.body)
	if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
		t.Errorf("%s: the %d response does not match the document: %v\nbody: %s", name, res.status, err, res.body)
	}
	if doc := route.Operation.Responses.Status(res.status); doc != nil && len(doc.Value.Content) == 0 && len(res.body) > 0 {
		t.Errorf("%s: the document gives the %d response no body, but it has one: %s", name, res.status, res.body)
	}
	if res.status >= 400 {
		var p ginapi.Problem
		if err := json.Unmarshal(res.body, &p); err == nil && (p.Status != res.status || p.RequestID != res.header.Get(ginapi.RequestIDHeader)) {
			t.Errorf("%s: the problem disagrees with the response: %+v", name, p)
		}
	}
	s.seen[route.Method+" "+route.Path]++
	return res
}

// oaSegmentID finds the id of the entry of a user's list (its JSON name)
// whose field has a value.
func oaSegmentID(t *testing.T, r oaResponse, list, field, value string) string {
	t.Helper()
	var u map[string]any
	oaJSON(t, r, &u)
	entries, _ := u[list].([]any)
	for _, e := range entries {
		m, _ := e.(map[string]any)
		if m[field] == value {
			id, _ := m["id"].(string)
			return id
		}
	}
	t.Fatalf("no %s entry with %s %q in %s", list, field, value, r.body)
	return ""
}

// TestOpenAPIResponsesMatchTheDocument drives the API through real requests,
// successes and failures, and checks every response against the document.
func TestOpenAPIResponsesMatchTheDocument(t *testing.T) {
	s := oaNewServer(t)
	const admin = "admin"

	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/openapi.json", nil)

	// Create a user with every kind of segment.
	jdoe := map[string]any{
		"primary_id": "jdoe", "first_name": "Jane", "last_name": "Doe", "middle_name": "Q",
		"user_group": "UNDERGRAD", "campus_code": "MAIN", "preferred_language": "en",
		"birth_date": "2001-02-03", "expiry_date": "2030-06-30", "pin_number": "1234",
		"user_identifiers": []any{map[string]any{"id_type": "BARCODE", "value": "B0001", "note": "card"}},
		"addresses":        []any{map[string]any{"line1": "1 College Road", "city": "Springfield", "start_date": "2024-09-01", "address_types": []string{"home"}, "preferred": true}},
		"emails":           []any{map[string]any{"email_address": "jane@example.org", "email_types": []string{"personal"}, "preferred": true}},
		"phones":           []any{map[string]any{"phone_number": "+15550001", "phone_types": []string{"mobile"}, "preferred": true, "preferred_sms": true}},
		"user_notes": []any{
			map[string]any{"note_type": "CIRCULATION", "note_text": "Welcome!", "user_viewable": true},
			map[string]any{"note_type": "OTHER", "note_text": "For staff only."},
		},
		"user_blocks":     []any{map[string]any{"block_type": "GENERAL", "block_description": "LOST_CARD", "expiry_date": "2027-01-01"}},
		"user_statistics": []any{map[string]any{"statistic_category": "FIRSTYEAR", "category_type": "LEVEL"}},
		"proxy_for_users": []any{map[string]any{"primary_id": "sponsor", "expiry_date": "2028-01-01"}},
	}
	created := s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users", jdoe, "X-Request-ID", "req-create-1")
	if got := created.header.Get("Location"); got != "/api/users/jdoe" {
		t.Errorf("Location %q, want /api/users/jdoe", got)
	}
	if got := created.header.Get("ETag"); got != `"1"` {
		t.Errorf("ETag %s, want \"1\"", got)
	}
	if got := created.header.Get(ginapi.RequestIDHeader); got != "req-create-1" {
		t.Errorf("X-Request-ID %q, want the request's own", got)
	}
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users", map[string]any{
		"primary_id": "sponsor", "first_name": "Sam", "last_name": "Sponsor", "record_type": "STAFF", "status": "INACTIVE",
		"emails": []any{map[string]any{"email_address": "sam@example.org"}, map[string]any{"email_address": "sam2@example.org"}},
	})
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users", map[string]any{"primary_id": oaGuarded, "first_name": "Gus", "last_name": "Guarded"})

	// Read it back in every way.
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/JDOE?user_id_type=all_unique", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/b0001?user_id_type=BARCODE", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/sponsor", nil) // with warnings

	// A staff user's roles: read, replaced, read with the record, and the
	// record sent back with them.
	staff1 := map[string]any{"primary_id": "staff1", "first_name": "Stef", "last_name": "Staff", "record_type": "STAFF"}
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users", staff1)
	none := s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/staff1/user_roles", nil)
	auditor := map[string]any{"user_roles": []any{map[string]any{"role_type": "auditor", "scope": "*"}}}
	s.do(t, http.StatusPreconditionRequired, admin, http.MethodPut, "/api/users/staff1/user_roles", auditor)
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPut, "/api/users/staff1/user_roles",
		map[string]any{"user_roles": []any{map[string]any{"role_type": "librarian-in-chief", "scope": "NOWHERE"}}}, "If-Match", none.header.Get("ETag"))
	given := s.do(t, http.StatusOK, admin, http.MethodPut, "/api/users/staff1/user_roles", auditor, "If-Match", none.header.Get("ETag"))
	s.do(t, http.StatusPreconditionFailed, admin, http.MethodPut, "/api/users/staff1/user_roles", auditor, "If-Match", none.header.Get("ETag"))
	s.do(t, http.StatusNotFound, admin, http.MethodPut, "/api/users/nobody/user_roles", auditor, "If-Match", given.header.Get("ETag"))
	var withRoles map[string]any
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/staff1", nil), &withRoles)
	if roles, _ := withRoles["user_roles"].([]any); len(roles) != 1 {
		t.Errorf("staff1 read with roles %v, want the auditor role", withRoles["user_roles"])
	}
	staff1["user_roles"] = withRoles["user_roles"]
	s.do(t, http.StatusOK, admin, http.MethodPut, "/api/users/staff1", staff1, "If-Match", `"1"`)
	staff1["user_roles"] = []any{}
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPut, "/api/users/staff1", staff1, "If-Match", `"2"`)

	// Lists.
	var page struct {
		User  []map[string]any `json:"user"`
		Total int              `json:"total_record_count"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users", nil), &page)
	if page.Total != 4 || len(page.User) != 4 {
		t.Errorf("list: %d users of %d, want 4 of 4", len(page.User), page.Total)
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users?q=jane+doe&user_group=UNDERGRAD&status=ACTIVE&account_type=INTERNAL&record_type=PUBLIC&limit=5&offset=0", nil), &page)
	if page.Total != 1 || len(page.User) != 1 {
		t.Errorf("filtered list: %d users of %d, want 1 of 1", len(page.User), page.Total)
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users?limit=1&offset=5", nil), &page)
	if page.Total != 4 || len(page.User) != 0 {
		t.Errorf("list past the end: %d users of %d, want 0 of 4", len(page.User), page.Total)
	}

	// Replace with If-Match.
	replacement := map[string]any{
		"primary_id": "jdoe", "first_name": "Jane", "last_name": "Doe-Smith", "user_group": "GRAD", "job_category": "Student",
		"user_identifiers": []any{map[string]any{"id_type": "BARCODE", "value": "B0001"}},
		"emails":           []any{map[string]any{"email_address": "jane@example.org", "preferred": true}},
		"user_notes":       []any{map[string]any{"note_text": "Replaced.", "created_by": "admin", "popup_note": true}},
	}
	replaced := s.do(t, http.StatusOK, admin, http.MethodPut, "/api/users/jdoe", replacement, "If-Match", `"1"`)
	if got := replaced.header.Get("ETag"); got != `"2"` {
		t.Errorf("ETag after replace %s, want \"2\"", got)
	}
	s.do(t, http.StatusOK, admin, http.MethodPut, "/api/users/jdoe", replacement, "If-Match", `W/"2"`)

	// Add and remove one entry of every kind.
	entries := []struct {
		kind, field, value string
		entry              map[string]any
	}{
		{"user_identifiers", "value", "U-77", map[string]any{"id_type": "UNIV_ID", "value": "U-77", "status": "ACTIVE"}},
		{"addresses", "line1", "2 Elm St", map[string]any{"line1": "2 Elm St", "postal_code": "12345", "country": "USA"}},
		{"emails", "email_address", "jd@uni.example", map[string]any{"email_address": "jd@uni.example", "description": "school"}},
		{"phones", "phone_number", "+15550002", map[string]any{"phone_number": "+15550002"}},
		{"user_notes", "note_text", "Asked about ILL.", map[string]any{"note_text": "Asked about ILL.", "note_type": "OTHER", "user_viewable": false}},
		{"user_blocks", "block_type", "FINE", map[string]any{"block_type": "FINE", "block_description": "Unpaid fine", "block_note": "12.50"}},
		{"user_statistics", "statistic_category", "ATHLETE", map[string]any{"statistic_category": "ATHLETE", "statistic_note": "varsity"}},
		{"proxy_for_users", "primary_id", "guarded", map[string]any{"primary_id": "guarded"}},
	}
	for _, e := range entries {
		added := s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users/jdoe/"+e.kind, e.entry)
		id := oaSegmentID(t, added, e.kind, e.field, e.value)
		s.do(t, http.StatusNoContent, admin, http.MethodDelete, "/api/users/jdoe/"+e.kind+"/"+id, nil)
		s.do(t, http.StatusNotFound, admin, http.MethodDelete, "/api/users/jdoe/"+e.kind+"/"+id, nil)
	}

	// Overrides: none on an internal user; one per retained field staff
	// change by hand on an external one.
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe/overrides", nil)
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users", map[string]any{
		"primary_id": "ext1", "first_name": "Sol", "last_name": "Synced", "account_type": "EXTERNAL", "external_id": "SIS", "user_group": "UNDERGRAD",
	})
	s.do(t, http.StatusOK, admin, http.MethodPut, "/api/users/ext1", map[string]any{
		"primary_id": "ext1", "first_name": "Sol", "last_name": "Synced", "account_type": "EXTERNAL", "external_id": "SIS", "user_group": "GRAD", "pin_number": "9999",
	}, "If-Match", `"1"`)
	var overrides struct {
		Overrides []patron.FieldOverride `json:"overrides"`
		Total     int                    `json:"total_record_count"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/ext1/overrides", nil), &overrides)
	if overrides.Total != 2 || len(overrides.Overrides) != 2 {
		t.Errorf("overrides of ext1: %+v, want pin_number and user_group", overrides)
	}
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPut, "/api/users/ext1", map[string]any{
		"primary_id": "ext1", "first_name": "Solange", "last_name": "Synced", "account_type": "EXTERNAL", "external_id": "SIS",
	}, "If-Match", `"2"`)

	// A patron reads their own record only.
	s.do(t, http.StatusOK, "jdoe", http.MethodGet, "/api/users/jdoe", nil, "X-Test-Patron", "1")
	s.do(t, http.StatusOK, "jdoe", http.MethodGet, "/api/openapi.json", nil, "X-Test-Patron", "1")
	s.do(t, http.StatusForbidden, "jdoe", http.MethodGet, "/api/users/sponsor", nil, "X-Test-Patron", "1")
	s.do(t, http.StatusForbidden, "jdoe", http.MethodGet, "/api/users", nil, "X-Test-Patron", "1")

	// Sign-in and access failures.
	unauth := s.do(t, http.StatusUnauthorized, "", http.MethodGet, "/api/users", nil)
	if unauth.header.Get(ginapi.RequestIDHeader) == "" {
		t.Error("a 401 has no X-Request-ID")
	}
	locked := s.do(t, http.StatusTooManyRequests, "locked", http.MethodGet, "/api/users/jdoe", nil)
	if got := locked.header.Get("Retry-After"); got != "90" {
		t.Errorf("Retry-After %q, want 90", got)
	}
	s.do(t, http.StatusForbidden, "clerk", http.MethodGet, "/api/users", nil)
	s.do(t, http.StatusForbidden, "clerk", http.MethodDelete, "/api/users/jdoe", nil)

	// Not found.
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/nobody", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/X999?user_id_type=BARCODE", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/nobody/overrides", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodPut, "/api/users/nobody", replacement, "If-Match", `"1"`)
	s.do(t, http.StatusNotFound, admin, http.MethodDelete, "/api/users/nobody", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodPost, "/api/users/nobody/user_notes", map[string]any{"note_text": "x"})
	s.do(t, http.StatusNotFound, admin, http.MethodDelete, "/api/users/jdoe/emails/no-such-entry", nil)

	// Validation (422).
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/users", map[string]any{"primary_id": "x1", "last_name": "NoFirst", "birth_date": "3 May", "status": "ASLEEP"})
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/users", map[string]any{
		"primary_id": "x2", "first_name": "A", "last_name": "B",
		"emails": []any{map[string]any{"email_address": "a@x.org", "preferred": true}, map[string]any{"email_address": "b@x.org", "preferred": true}},
	})
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/users", map[string]any{
		"primary_id": "x3", "first_name": "A", "last_name": "B", "user_identifiers": []any{map[string]any{"id_type": "BARCODE", "value": "Z1", "segment_type": "External"}},
	})
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/users/jdoe/emails", map[string]any{"email_address": "not an address"})
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/users?limit=500", nil)

	// Conflicts (409).
	s.do(t, http.StatusConflict, admin, http.MethodPost, "/api/users", map[string]any{"primary_id": "JDoe", "first_name": "Other", "last_name": "Jane"})
	s.do(t, http.StatusConflict, admin, http.MethodPost, "/api/users/sponsor/user_identifiers", map[string]any{"id_type": "BARCODE", "value": "b0001"})
	etag := s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/sponsor", nil).header.Get("ETag")
	s.do(t, http.StatusConflict, admin, http.MethodPut, "/api/users/sponsor", map[string]any{"primary_id": "jdoe", "first_name": "Sam", "last_name": "Sponsor"}, "If-Match", etag)
	refused := s.do(t, http.StatusConflict, admin, http.MethodDelete, "/api/users/"+oaGuarded, nil)
	var p ginapi.Problem
	oaJSON(t, refused, &p)
	if len(p.Reasons) != 2 {
		t.Errorf("a refused deletion lists reasons %q, want both of the guard's", p.Reasons)
	}

	// Versions: stale (412), missing (428), malformed (400).
	s.do(t, http.StatusPreconditionFailed, admin, http.MethodPut, "/api/users/jdoe", replacement, "If-Match", `"1"`)
	s.do(t, http.StatusPreconditionRequired, admin, http.MethodPut, "/api/users/jdoe", replacement)
	s.do(t, http.StatusBadRequest, admin, http.MethodPut, "/api/users/jdoe", replacement, "If-Match", "*")

	// Bodies the adapter refuses before the service sees them.
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/users", map[string]any{"primary_id": "x4", "first_name": "A", "last_name": "B", "nickname": "Al"})
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/users", `{"primary_id": 7}`)
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/users", `{"primary_id": "x5",`)
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/users", `{} {}`)
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/users/jdoe/user_notes", ``)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/users?offset=-1", nil)
	s.do(t, http.StatusUnsupportedMediaType, admin, http.MethodPost, "/api/users", "primary_id=x6", "Content-Type", "text/plain")
	s.do(t, http.StatusUnsupportedMediaType, admin, http.MethodPut, "/api/users/jdoe", "<user/>", "Content-Type", "application/xml", "If-Match", `"3"`)
	big := fmt.Sprintf(`{"primary_id": "x7", "first_name": "A", "last_name": "B", "user_notes": [{"note_text": %q}]}`, strings.Repeat("n", 70<<10))
	s.do(t, http.StatusRequestEntityTooLarge, admin, http.MethodPost, "/api/users", big)

	// Attachments: upload, list, download, remove, and each refusal.
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe/attachments", nil)
	pdf := []byte("%PDF-1.7\n\x00\x01\xfe\xff binary")
	body, ctype := uploadBody(t, "Lån – form \"signed\".pdf", "application/pdf", pdf, "kind", "upload", "description", "Signed registration form")
	added := s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users/jdoe/attachments", body, "Content-Type", ctype)
	var att patron.Attachment
	oaJSON(t, added, &att)
	if got := added.header.Get("Location"); got != "/api/users/jdoe/attachments/"+att.ID {
		t.Errorf("Location %q, want the new attachment's path", got)
	}
	body, ctype = uploadBody(t, "overdue.txt", "", []byte("Your loan is overdue."), "kind", "notice")
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users/jdoe/attachments", body, "Content-Type", ctype)
	var atts struct {
		Attachments []patron.Attachment `json:"attachments"`
		Total       int                 `json:"total_record_count"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe/attachments", nil), &atts)
	if atts.Total != 2 || len(atts.Attachments) != 2 || atts.Attachments[1].ID != att.ID {
		t.Errorf("attachments of jdoe: %+v", atts)
	}
	file := s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe/attachments/"+att.ID, nil)
	if !bytes.Equal(file.body, pdf) || file.header.Get("Content-Type") != "application/pdf" {
		t.Errorf("download: %q (%s), want the uploaded bytes", file.body, file.header.Get("Content-Type"))
	}
	body, ctype = uploadBody(t, "big.bin", "application/octet-stream", bytes.Repeat([]byte{0xA5}, oaMaxAttachment+1))
	s.do(t, http.StatusRequestEntityTooLarge, admin, http.MethodPost, "/api/users/jdoe/attachments", body, "Content-Type", ctype)
	body, ctype = uploadBody(t, "-", "", nil, "description", "no file")
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/users/jdoe/attachments", body, "Content-Type", ctype)
	s.do(t, http.StatusUnsupportedMediaType, admin, http.MethodPost, "/api/users/jdoe/attachments", `{"file": "x"}`)
	body, ctype = uploadBody(t, "a.txt", "", []byte("x"), "kind", "letter")
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/users/jdoe/attachments", body, "Content-Type", ctype)
	body, ctype = uploadBody(t, "a.txt", "", []byte("x"))
	s.do(t, http.StatusNotFound, admin, http.MethodPost, "/api/users/nobody/attachments", body, "Content-Type", ctype)
	s.do(t, http.StatusForbidden, "clerk", http.MethodPost, "/api/users/jdoe/attachments", body, "Content-Type", ctype)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/nobody/attachments", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/sponsor/attachments/"+att.ID, nil)
	s.do(t, http.StatusForbidden, "jdoe", http.MethodGet, "/api/users/jdoe/attachments", nil, "X-Test-Patron", "1")
	s.do(t, http.StatusForbidden, "clerk", http.MethodGet, "/api/users/jdoe/attachments/"+att.ID, nil)
	s.do(t, http.StatusUnauthorized, "", http.MethodGet, "/api/users/jdoe/attachments/"+att.ID, nil)
	s.do(t, http.StatusTooManyRequests, "locked", http.MethodDelete, "/api/users/jdoe/attachments/"+att.ID, nil)
	s.do(t, http.StatusNoContent, admin, http.MethodDelete, "/api/users/jdoe/attachments/"+att.ID, nil)
	s.do(t, http.StatusNotFound, admin, http.MethodDelete, "/api/users/jdoe/attachments/"+att.ID, nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/jdoe/attachments/"+att.ID, nil)

	// SIS integration: profiles.
	ctx := context.Background()
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sis/profiles", nil)
	profile := map[string]any{
		"code": "REG", "description": "The registrar's nightly file", "source": "upload", "format": "xml",
		"mode": "synchronize", "match_by": "primary_id", "unmatched": "add", "record_type": "PUBLIC",
		"expiry_rule": "relative", "expiry_days": 365, "purge_rule": "fixed", "purge_date": "2031-01-31",
		"schedule": "0 6,18 * * *", "time_zone": "Europe/Oslo", "deactivate_missing": false,
	}
	createdProfile := s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/sis/profiles", profile)
	if loc, etag := createdProfile.header.Get("Location"), createdProfile.header.Get("ETag"); loc != "/api/sis/profiles/REG" || etag != `"1"` {
		t.Errorf("a new profile: Location %q ETag %s, want /api/sis/profiles/REG and \"1\"", loc, etag)
	}
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/sis/profiles", map[string]any{"code": "GATE", "source": "gate", "mode": "import"})
	var profiles struct {
		Profiles []sis.Profile `json:"profiles"`
		Total    int           `json:"total_record_count"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sis/profiles", nil), &profiles)
	if profiles.Total != 2 || len(profiles.Profiles) != 2 || profiles.Profiles[0].Code != "GATE" {
		t.Errorf("profiles: %+v, want GATE and REG", profiles)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sis/profiles/REG", nil)
	profile["description"] = "The registrar's file, twice a day"
	if got := s.do(t, http.StatusOK, admin, http.MethodPut, "/api/sis/profiles/REG", profile, "If-Match", `"1"`).header.Get("ETag"); got != `"2"` {
		t.Errorf("ETag after a profile replace %s, want \"2\"", got)
	}
	s.do(t, http.StatusPreconditionFailed, admin, http.MethodPut, "/api/sis/profiles/REG", profile, "If-Match", `"1"`)
	s.do(t, http.StatusPreconditionRequired, admin, http.MethodPut, "/api/sis/profiles/REG", profile)
	s.do(t, http.StatusBadRequest, admin, http.MethodPut, "/api/sis/profiles/REG", profile, "If-Match", "*")
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPut, "/api/sis/profiles/REG", map[string]any{"code": "REG", "source": "upload", "mode": "mirror"}, "If-Match", `"2"`)
	s.do(t, http.StatusUnsupportedMediaType, admin, http.MethodPut, "/api/sis/profiles/REG", "<profile/>", "Content-Type", "application/xml", "If-Match", `"2"`)
	s.do(t, http.StatusRequestEntityTooLarge, admin, http.MethodPut, "/api/sis/profiles/REG", map[string]any{"code": "REG", "source": "upload", "mode": "import", "description": strings.Repeat("d", 70<<10)}, "If-Match", `"2"`)
	s.do(t, http.StatusConflict, admin, http.MethodPost, "/api/sis/profiles", map[string]any{"code": "REG", "source": "upload", "mode": "import"})
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/sis/profiles", map[string]any{"code": "bad code", "source": "ftp", "mode": "mirror", "schedule": "whenever"})
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/sis/profiles", map[string]any{"code": "X", "source": "upload", "mode": "import", "institution": "OTHER"})
	s.do(t, http.StatusUnsupportedMediaType, admin, http.MethodPost, "/api/sis/profiles", "code=X", "Content-Type", "application/x-www-form-urlencoded")
	s.do(t, http.StatusRequestEntityTooLarge, admin, http.MethodPost, "/api/sis/profiles", map[string]any{"code": "X", "source": "upload", "mode": "import", "description": strings.Repeat("d", 70<<10)})
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/sis/profiles/NOPE", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodPut, "/api/sis/profiles/NOPE", profile, "If-Match", `"1"`)
	s.do(t, http.StatusNotFound, admin, http.MethodDelete, "/api/sis/profiles/NOPE", nil)
	s.do(t, http.StatusForbidden, "clerk", http.MethodGet, "/api/sis/profiles", nil)
	s.do(t, http.StatusForbidden, "clerk", http.MethodPost, "/api/sis/profiles", profile)
	s.do(t, http.StatusUnauthorized, "", http.MethodGet, "/api/sis/profiles/REG", nil)

	// Runs: a file sent as multipart and raw, a dry run, and the reports.
	regFile := sisFile(sisUser("s1", "Sam", "One", "UG"), sisUser("s2", "", "", "UG"), sisUser("s3", "Sue", "Three", "GRAD"))
	body, ctype = uploadBody(t, "registrar.xml", "application/xml", []byte(regFile))
	started := s.do(t, http.StatusAccepted, admin, http.MethodPost, "/api/sis/profiles/REG/runs", body, "Content-Type", ctype)
	var run sis.Run
	oaJSON(t, started, &run)
	if got := started.header.Get("Location"); got != "/api/sis/runs/"+run.ID {
		t.Errorf("a started run: Location %q, want /api/sis/runs/%s", got, run.ID)
	}
	if _, err := s.kit.SIS.Wait(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sis/runs/"+run.ID, nil), &run)
	if run.Status != sis.RunSucceeded || run.Created != 2 || run.Rejected != 1 || run.Files != "registrar.xml" {
		t.Errorf("the run: %+v, want succeeded, 2 created and 1 rejected from registrar.xml", run)
	}
	// The dry run would change one user and add one.
	nextFile := sisFile(sisUser("s1", "Sam", "Onesie", "UG"), sisUser("s3", "Sue", "Three", "GRAD"), sisUser("s4", "Sid", "Four", "UG"))
	var dry sis.Run
	oaJSON(t, s.do(t, http.StatusAccepted, admin, http.MethodPost, "/api/sis/profiles/REG/runs?dry_run=true&file_name=registrar.xml", nextFile, "Content-Type", "application/xml"), &dry)
	if _, err := s.kit.SIS.Wait(ctx, dry.ID); err != nil {
		t.Fatal(err)
	}
	var runs struct {
		Runs  []sis.Run `json:"runs"`
		Total int       `json:"total_record_count"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sis/profiles/REG/runs?limit=5", nil), &runs)
	if runs.Total != 2 || len(runs.Runs) != 2 || runs.Runs[0].ID != dry.ID || !runs.Runs[0].DryRun {
		t.Errorf("runs of REG: %+v, want the dry run, then the first", runs)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sis/profiles/REG/runs", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/sis/profiles/REG/runs?limit=101", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/sis/profiles/NOPE/runs", nil)
	var report struct {
		RunID    string        `json:"run_id"`
		Outcomes []sis.Outcome `json:"outcomes"`
		Total    int           `json:"total_record_count"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sis/runs/"+run.ID+"/report", nil), &report)
	if report.RunID != run.ID || report.Total != 3 || len(report.Outcomes) != 3 || report.Outcomes[1].Reason == "" {
		t.Errorf("the report: %+v, want 3 outcomes, the second with a reason", report)
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sis/runs/"+dry.ID+"/report", nil), &report)
	if report.Total != 3 || len(report.Outcomes) != 3 || report.Outcomes[0].Changes != "last_name" || report.Outcomes[2].Outcome != sis.OutcomeCreated {
		t.Errorf("the dry run's report: %+v, want s1's last_name changed, s3 unchanged, s4 created", report)
	}
	csvReport := s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sis/runs/"+run.ID+"/report", nil, "Accept", "text/csv")
	if lines := strings.Split(strings.TrimSpace(string(csvReport.body)), "\n"); len(lines) != 4 || !strings.HasPrefix(csvReport.header.Get("Content-Type"), "text/csv") {
		t.Errorf("the CSV report (%s): %q, want a header and 3 lines", csvReport.header.Get("Content-Type"), csvReport.body)
	}
	export := s.do(t, http.StatusOK, admin, http.MethodPost, "/api/sis/profiles/REG/exports", nil)
	if !strings.Contains(string(export.body), "<users>") || !strings.Contains(export.header.Get("Content-Disposition"), "REG-users.xml") {
		t.Errorf("the export: %s %q", export.header.Get("Content-Disposition"), export.body)
	}
	s.do(t, http.StatusOK, admin, http.MethodPost, "/api/sis/profiles/REG/exports?what=blocks", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/sis/profiles/REG/exports?what=loans", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodPost, "/api/sis/profiles/NOPE/exports", nil)
	s.do(t, http.StatusForbidden, "clerk", http.MethodPost, "/api/sis/profiles/REG/exports", nil)
	var tables struct {
		Names []string `json:"code_tables"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/code-tables", nil), &tables)
	var groups struct {
		Row []struct{ Code, Description string } `json:"row"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/code-tables/user_group", nil), &groups)
	if len(groups.Row) == 0 {
		t.Errorf("the user_group code table is empty after a run that labeled its codes")
	}
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/code-tables/no_such_table", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/sis/runs/no-such-run", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/sis/runs/no-such-run/report", nil)
	s.do(t, http.StatusForbidden, "clerk", http.MethodGet, "/api/sis/runs/"+run.ID+"/report", nil)

	// Runs refused before they start.
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/sis/profiles/REG/runs", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/sis/profiles/REG/runs?dry_run=maybe", regFile, "Content-Type", "application/xml")
	body, ctype = uploadBody(t, "-", "", nil, "note", "no file")
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/sis/profiles/REG/runs", body, "Content-Type", ctype)
	s.do(t, http.StatusUnsupportedMediaType, admin, http.MethodPost, "/api/sis/profiles/REG/runs", regFile, "Content-Type", "text/plain")
	s.do(t, http.StatusRequestEntityTooLarge, admin, http.MethodPost, "/api/sis/profiles/REG/runs", sisFile(strings.Repeat(sisUser("big", "B", "B", "UG"), 200)), "Content-Type", "application/xml")
	s.do(t, http.StatusNotFound, admin, http.MethodPost, "/api/sis/profiles/NOPE/runs", regFile, "Content-Type", "application/xml")
	s.do(t, http.StatusForbidden, "clerk", http.MethodPost, "/api/sis/profiles/REG/runs", regFile, "Content-Type", "application/xml")
	// A profile that names no format reads the extension of the file name.
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/sis/profiles", map[string]any{"code": "ANY", "source": "upload", "mode": "synchronize"})
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/sis/profiles/ANY/runs?file_name=users.txt", regFile, "Content-Type", "application/xml")

	// One run at a time: the gate holds GATE's run until it opens.
	var gated sis.Run
	oaJSON(t, s.do(t, http.StatusAccepted, admin, http.MethodPost, "/api/sis/profiles/GATE/runs", nil), &gated)
	s.do(t, http.StatusConflict, admin, http.MethodPost, "/api/sis/profiles/GATE/runs", nil)
	s.do(t, http.StatusConflict, admin, http.MethodDelete, "/api/sis/profiles/GATE", nil)
	s.gate.open()
	if r, err := s.kit.SIS.Wait(ctx, gated.ID); err != nil || r.Status != sis.RunSucceeded || r.Created != 1 {
		t.Errorf("the gated run: %+v %v, want succeeded with 1 created", r, err)
	}
	s.do(t, http.StatusNoContent, admin, http.MethodDelete, "/api/sis/profiles/GATE", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/sis/profiles/GATE", nil)

	// Retained fields handed back to the SIS.
	var restored struct {
		Restored []string `json:"restored"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodPost, "/api/users/ext1/restore-sis-fields", map[string]any{"fields": []string{"user_group", "campus_code"}}), &restored)
	if !slices.Equal(restored.Restored, []string{"user_group"}) {
		t.Errorf("restored %q, want [user_group]: campus_code was not held by hand", restored.Restored)
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodPost, "/api/users/ext1/restore-sis-fields", map[string]any{}), &restored)
	if !slices.Equal(restored.Restored, []string{"pin_number"}) {
		t.Errorf("restored %q, want [pin_number]", restored.Restored)
	}
	s.do(t, http.StatusConflict, admin, http.MethodPost, "/api/users/jdoe/restore-sis-fields", map[string]any{})
	s.do(t, http.StatusNotFound, admin, http.MethodPost, "/api/users/nobody/restore-sis-fields", map[string]any{})
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/users/s1/restore-sis-fields", `{"fields": ["first_name"]}`)
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/users/s1/restore-sis-fields", `{"fields": "user_group"}`)
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/users/s1/restore-sis-fields", ``)
	s.do(t, http.StatusUnsupportedMediaType, admin, http.MethodPost, "/api/users/s1/restore-sis-fields", "fields=user_group", "Content-Type", "text/plain")
	s.do(t, http.StatusRequestEntityTooLarge, admin, http.MethodPost, "/api/users/s1/restore-sis-fields", `{"fields": ["`+strings.Repeat("f", 70<<10)+`"]}`)
	s.do(t, http.StatusForbidden, "clerk", http.MethodPost, "/api/users/s1/restore-sis-fields", map[string]any{})

	// Circulation: libraries, items, bulk loads, terms of use, and the
	// terms a user would get.
	const fulfil = "fulfil"
	if err := s.kit.Access.AssignRole(ctx, oaInst, fulfil, "fulfillment-administrator", "*"); err != nil {
		t.Fatal(err)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/libraries", nil)
	mainLib := map[string]any{"code": "MAIN", "name": "Main Library", "time_zone": "America/New_York", "pickup_locations": []string{"MAIN-DESK"},
		"closed_dates": []any{map[string]any{"date": "2030-12-25", "note": "Christmas"}}}
	lib := s.do(t, http.StatusCreated, fulfil, http.MethodPost, "/api/libraries", mainLib)
	if loc, etag := lib.header.Get("Location"), lib.header.Get("ETag"); loc != "/api/libraries/MAIN" || etag != `"1"` {
		t.Errorf("a new library: Location %q ETag %s", loc, etag)
	}
	s.do(t, http.StatusCreated, fulfil, http.MethodPost, "/api/libraries", map[string]any{"code": "SCIENCE", "name": "Science Library"})
	s.do(t, http.StatusConflict, fulfil, http.MethodPost, "/api/libraries", map[string]any{"code": "main", "name": "Again"})
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPost, "/api/libraries", map[string]any{"code": "EAST", "name": "East", "time_zone": "Mars/Olympus"})
	s.do(t, http.StatusForbidden, admin, http.MethodPost, "/api/libraries", map[string]any{"code": "EAST", "name": "East"})
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/libraries", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/libraries/main", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/libraries/NOPE", nil)
	mainLib["name"] = "Main Library (renamed)"
	s.do(t, http.StatusOK, fulfil, http.MethodPut, "/api/libraries/MAIN", mainLib, "If-Match", `"1"`)
	s.do(t, http.StatusPreconditionFailed, fulfil, http.MethodPut, "/api/libraries/MAIN", mainLib, "If-Match", `"1"`)
	s.do(t, http.StatusPreconditionRequired, fulfil, http.MethodPut, "/api/libraries/MAIN", mainLib)
	s.do(t, http.StatusNotFound, fulfil, http.MethodPut, "/api/libraries/NOPE", mainLib, "If-Match", `"1"`)

	book := map[string]any{"barcode": "MAIN-0001", "title": "A Tale of Two Cities", "author": "Dickens, Charles", "library": "MAIN",
		"location": "STACKS", "item_policy": "STANDARD", "material_type": "BOOK"}
	item := s.do(t, http.StatusCreated, fulfil, http.MethodPost, "/api/items", book)
	if loc, etag := item.header.Get("Location"), item.header.Get("ETag"); loc != "/api/items/MAIN-0001" || etag != `"1"` {
		t.Errorf("a new item: Location %q ETag %s", loc, etag)
	}
	s.do(t, http.StatusConflict, fulfil, http.MethodPost, "/api/items", book)
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPost, "/api/items", map[string]any{"barcode": "X", "title": "X", "library": "NOPE"})
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/items/main-0001", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/items/NOPE", nil)
	book["location"] = "REF"
	s.do(t, http.StatusOK, fulfil, http.MethodPut, "/api/items/MAIN-0001", book, "If-Match", `"1"`)
	s.do(t, http.StatusPreconditionFailed, fulfil, http.MethodPut, "/api/items/MAIN-0001", book, "If-Match", `"1"`)
	s.do(t, http.StatusPreconditionRequired, fulfil, http.MethodPut, "/api/items/MAIN-0001", book)
	s.do(t, http.StatusNotFound, fulfil, http.MethodPut, "/api/items/NOPE", book, "If-Match", `"1"`)
	s.do(t, http.StatusForbidden, admin, http.MethodPut, "/api/items/MAIN-0001", book, "If-Match", `"2"`)

	var loaded circulation.LoadReport
	oaJSON(t, s.do(t, http.StatusOK, fulfil, http.MethodPost, "/api/items/bulk", []map[string]any{
		{"barcode": "MAIN-0002", "title": "Bleak House", "library": "MAIN"},
		{"barcode": "MAIN-0003", "title": "Nowhere", "library": "NOWHERE"},
	}), &loaded)
	if loaded.Created != 1 || len(loaded.Rejected) != 1 || loaded.Rejected[0].Line != 2 {
		t.Errorf("JSON bulk load: %+v", loaded)
	}
	oaJSON(t, s.do(t, http.StatusOK, fulfil, http.MethodPost, "/api/items/bulk", "barcode,title,library,material_type\nSCI-0001,Cosmos,SCIENCE,DVD\nSCI-0002,,SCIENCE,DVD\nMAIN-0002,Bleak House (2nd ed.),MAIN,BOOK\n", "Content-Type", "text/csv"), &loaded)
	if loaded.Created != 1 || loaded.Updated != 1 || len(loaded.Rejected) != 1 || loaded.Rejected[0].Line != 3 {
		t.Errorf("CSV bulk load: %+v", loaded)
	}
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPost, "/api/items/bulk", "barcode,shelf\nX,Y\n", "Content-Type", "text/csv")
	s.do(t, http.StatusBadRequest, fulfil, http.MethodPost, "/api/items/bulk", `{"barcode": "X"}`)
	s.do(t, http.StatusUnsupportedMediaType, fulfil, http.MethodPost, "/api/items/bulk", "<items/>", "Content-Type", "application/xml")
	s.do(t, http.StatusRequestEntityTooLarge, fulfil, http.MethodPost, "/api/items/bulk", "barcode,title,library\n"+strings.Repeat("B,T,MAIN\n", 10<<10), "Content-Type", "text/csv")
	s.do(t, http.StatusForbidden, admin, http.MethodPost, "/api/items/bulk", "[]")
	var items circulation.ItemPage
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/items?q=house&library=main&status=available&limit=5&offset=0", nil), &items)
	if items.TotalRecordCount != 1 || len(items.Items) != 1 || items.Items[0].Barcode != "MAIN-0002" {
		t.Errorf("items found: %+v", items)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/items", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/items?limit=101", nil)

	rules := map[string]any{"rules": []any{
		map[string]any{"name": "Undergraduates: 4 weeks", "user_group": "UNDERGRAD",
			"terms": map[string]any{"loan_period": 4, "loan_period_unit": "weeks", "renewals": 2, "renewal_period": 8, "renewal_period_unit": "weeks",
				"overdue_fine": 25, "overdue_fine_unit": "day", "currency": "USD"}},
		map[string]any{"user_group": "FACULTY", "material_type": "*", "terms": map[string]any{"loan_period": 120, "loan_period_unit": "days"}},
		map[string]any{"name": "Graduates: 6 weeks", "user_group": "grad", "terms": map[string]any{"loan_period": 6, "loan_period_unit": "weeks"}},
	}}
	if got := s.do(t, http.StatusOK, admin, http.MethodGet, "/api/terms-of-use", nil).header.Get("ETag"); got != `"0"` {
		t.Errorf("ETag %s of no rules, want \"0\"", got)
	}
	s.do(t, http.StatusPreconditionRequired, fulfil, http.MethodPut, "/api/terms-of-use", rules)
	s.do(t, http.StatusPreconditionFailed, fulfil, http.MethodPut, "/api/terms-of-use", rules, "If-Match", `"3"`)
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPut, "/api/terms-of-use", map[string]any{"rules": []any{map[string]any{"terms": map[string]any{}}}}, "If-Match", `"0"`)
	s.do(t, http.StatusForbidden, admin, http.MethodPut, "/api/terms-of-use", rules, "If-Match", `"0"`)
	if got := s.do(t, http.StatusOK, fulfil, http.MethodPut, "/api/terms-of-use", rules, "If-Match", `"0"`).header.Get("ETag"); got != `"1"` {
		t.Errorf("ETag %s after the first rules, want \"1\"", got)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/terms-of-use", nil)
	var terms struct {
		DueDate time.Time `json:"due_date"`
		Rule    string    `json:"rule"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe/terms?barcode=main-0001", nil), &terms)
	if terms.Rule != "Graduates: 6 weeks" || terms.DueDate.Before(time.Now().AddDate(0, 0, 41)) { // jdoe is GRAD by now
		t.Errorf("jdoe's terms: %+v", terms)
	}
	s.do(t, http.StatusConflict, admin, http.MethodGet, "/api/users/sponsor/terms?barcode=MAIN-0001", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/nobody/terms?barcode=MAIN-0001", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/jdoe/terms?barcode=NOPE", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/users/jdoe/terms", nil)
	s.do(t, http.StatusForbidden, "jdoe", http.MethodGet, "/api/users/jdoe/terms?barcode=MAIN-0001", nil, "X-Test-Patron", "1")

	// Loans: lend, renew, list, return.
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users", map[string]any{"primary_id": "borrower", "first_name": "Bo", "last_name": "Rower", "user_group": "UNDERGRAD"})
	var loan circulation.Loan
	lent := s.do(t, http.StatusCreated, fulfil, http.MethodPost, "/api/loans", map[string]any{"primary_id": "borrower", "barcode": "main-0002"})
	oaJSON(t, lent, &loan)
	if lent.header.Get("Location") != "/api/loans/"+loan.ID || loan.ItemBarcode != "MAIN-0002" || loan.Status != circulation.LoanOpen {
		t.Errorf("check-out: Location %q, loan %+v", lent.header.Get("Location"), loan)
	}
	s.do(t, http.StatusConflict, fulfil, http.MethodPost, "/api/loans", map[string]any{"primary_id": "sponsor", "barcode": "MAIN-0002"})
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/loans", map[string]any{"primary_id": "nobody", "barcode": "MAIN-0001"})
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPost, "/api/loans", map[string]any{"barcode": "MAIN-0001"})
	s.do(t, http.StatusBadRequest, fulfil, http.MethodPost, "/api/loans", `{"primary_id": 1}`)
	s.do(t, http.StatusForbidden, admin, http.MethodPost, "/api/loans", map[string]any{"primary_id": "borrower", "barcode": "MAIN-0001"})
	s.do(t, http.StatusOK, fulfil, http.MethodPost, "/api/loans/"+loan.ID+"/renew", nil)
	s.do(t, http.StatusConflict, fulfil, http.MethodPost, "/api/loans/"+loan.ID+"/renew", nil) // the due date would not move
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/loans/no-such-loan/renew", nil)
	var renewed struct {
		Results []circulation.RenewResult `json:"results"`
	}
	oaJSON(t, s.do(t, http.StatusOK, fulfil, http.MethodPost, "/api/users/borrower/loans/renew", map[string]any{"loan_ids": []string{loan.ID, "no-such-loan"}}), &renewed)
	if len(renewed.Results) != 2 || renewed.Results[0].Renewed || len(renewed.Results[1].Reasons) == 0 {
		t.Errorf("renewals: %+v", renewed)
	}
	s.do(t, http.StatusOK, fulfil, http.MethodPost, "/api/users/borrower/loans/renew", map[string]any{})
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/users/nobody/loans/renew", map[string]any{})
	s.do(t, http.StatusBadRequest, fulfil, http.MethodPost, "/api/users/borrower/loans/renew", `{"loan_ids": "all"}`)
	var loans struct {
		Loans []circulation.Loan `json:"loans"`
		Total int                `json:"total_record_count"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/borrower/loans", nil), &loans)
	if loans.Total != 1 || len(loans.Loans) != 1 || loans.Loans[0].ID != loan.ID || loans.Loans[0].Renewals != 1 {
		t.Errorf("borrower's loans: %+v", loans)
	}
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/users/borrower/loans?status=lost", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/nobody/loans", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/items/MAIN-0002/loans", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/items/NOPE/loans", nil)
	s.do(t, http.StatusOK, fulfil, http.MethodPost, "/api/returns", map[string]any{"barcode": "MAIN-0002"})
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/returns", map[string]any{"barcode": "MAIN-0002"})
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPost, "/api/returns", map[string]any{})
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/borrower/loans?status=complete", nil), &loans)
	if loans.Total != 1 || loans.Loans[0].Status != circulation.LoanComplete || loans.Loans[0].ReturnedAt == nil {
		t.Errorf("borrower's history: %+v", loans)
	}

	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/borrower/loans?status=complete&limit=1&offset=0", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/users/borrower/loans?limit=1001", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/items/MAIN-0002/loans?limit=1&offset=1", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/items/MAIN-0002/loans?offset=-1", nil)
	if got := s.do(t, http.StatusOK, admin, http.MethodGet, "/api/loans/"+loan.ID, nil).header.Get("ETag"); got != `"3"` {
		t.Errorf("ETag %s of a loan renewed once and returned, want \"3\"", got)
	}
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/loans/no-such-loan", nil)

	// Fees: charge, list, pay, waive.
	delivery := map[string]any{"amount": 1250, "currency": "usd", "description": "Personal delivery"}
	var fee circulation.Fee
	charged := s.do(t, http.StatusCreated, fulfil, http.MethodPost, "/api/users/borrower/fees", delivery)
	oaJSON(t, charged, &fee)
	if charged.header.Get("Location") != "/api/users/borrower/fees/"+fee.ID || fee.Currency != "USD" || fee.Status != circulation.FeeOpen {
		t.Errorf("a new fee: Location %q, fee %+v", charged.header.Get("Location"), fee)
	}
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPost, "/api/users/borrower/fees", map[string]any{"amount": 0, "currency": "USD", "description": "x"})
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/users/nobody/fees", delivery)
	s.do(t, http.StatusBadRequest, fulfil, http.MethodPost, "/api/users/borrower/fees", `{"amount": "12.50"}`)
	s.do(t, http.StatusForbidden, admin, http.MethodPost, "/api/users/borrower/fees", delivery)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/borrower/fees", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/borrower/fees?status=all", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/users/borrower/fees?status=paid", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/nobody/fees", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/borrower/fees/"+fee.ID, nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/borrower/fees/no-such-fee", nil)
	feePath := "/api/users/borrower/fees/" + fee.ID
	s.do(t, http.StatusOK, fulfil, http.MethodPost, feePath+"/pay", map[string]any{"amount": 250})
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPost, feePath+"/pay", map[string]any{"amount": 5000})
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPost, feePath+"/pay", map[string]any{})
	s.do(t, http.StatusBadRequest, fulfil, http.MethodPost, feePath+"/pay", `{"amount": "ten"}`)
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/users/borrower/fees/no-such-fee/pay", map[string]any{"amount": 1})
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPost, feePath+"/waive", map[string]any{"amount": 100})
	s.do(t, http.StatusOK, fulfil, http.MethodPost, feePath+"/waive", map[string]any{"amount": 1000, "reason": "Goodwill"})
	s.do(t, http.StatusConflict, fulfil, http.MethodPost, feePath+"/waive", map[string]any{"amount": 1, "reason": "Again"})
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/users/borrower/fees/no-such-fee/waive", map[string]any{"amount": 1, "reason": "x"})
	s.do(t, http.StatusForbidden, admin, http.MethodPost, feePath+"/waive", map[string]any{"amount": 1, "reason": "x"})

	// Blocks: a balance over the group's limit stops check-outs.
	rules["block_limits"] = []any{map[string]any{"user_group": "UNDERGRAD", "max_balance": 500, "currency": "USD", "stops": []string{"loan"}}}
	s.do(t, http.StatusOK, fulfil, http.MethodPut, "/api/terms-of-use", rules, "If-Match", `"1"`)
	s.do(t, http.StatusCreated, fulfil, http.MethodPost, "/api/users/borrower/fees", map[string]any{"amount": 600, "currency": "USD", "description": "Replacement card"})
	var blocks struct {
		Blocks []circulation.Block `json:"blocks"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/borrower/blocks", nil), &blocks)
	if len(blocks.Blocks) != 1 || blocks.Blocks[0].Type != circulation.BlockMaxBalance {
		t.Errorf("borrower's blocks: %+v", blocks)
	}
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/nobody/blocks", nil)
	var refusedLoan ginapi.Problem
	oaJSON(t, s.do(t, http.StatusConflict, fulfil, http.MethodPost, "/api/loans", map[string]any{"primary_id": "borrower", "barcode": "MAIN-0001"}), &refusedLoan)
	if len(refusedLoan.Blocks) != 1 || refusedLoan.Blocks[0].Type != circulation.BlockMaxBalance {
		t.Errorf("a check-out refused by a block: %+v", refusedLoan)
	}

	// An item declared lost, and back.
	s.do(t, http.StatusCreated, fulfil, http.MethodPost, "/api/loans", map[string]any{"primary_id": "jdoe", "barcode": "MAIN-0001"})
	s.do(t, http.StatusForbidden, admin, http.MethodPost, "/api/items/MAIN-0001/lost", nil)
	s.do(t, http.StatusOK, fulfil, http.MethodPost, "/api/items/MAIN-0001/lost", nil)
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/items/MAIN-0001/lost", nil)
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/items/NOPE/lost", nil)
	s.do(t, http.StatusOK, fulfil, http.MethodPost, "/api/returns", map[string]any{"barcode": "MAIN-0001"})

	s.do(t, http.StatusConflict, fulfil, http.MethodDelete, "/api/libraries/SCIENCE", nil)
	s.do(t, http.StatusNoContent, fulfil, http.MethodDelete, "/api/items/SCI-0001", nil)
	s.do(t, http.StatusNotFound, fulfil, http.MethodDelete, "/api/items/SCI-0001", nil)
	s.do(t, http.StatusNoContent, fulfil, http.MethodDelete, "/api/libraries/SCIENCE", nil)
	s.do(t, http.StatusNotFound, fulfil, http.MethodDelete, "/api/libraries/SCIENCE", nil)
	s.do(t, http.StatusForbidden, admin, http.MethodDelete, "/api/items/MAIN-0001", nil)

	// Requests: the terms of use now allow them (graduates may pick up at
	// any library, undergraduates have items delivered for a fee), and two
	// copies of one title.
	requestRules := map[string]any{"block_limits": rules["block_limits"], "rules": []any{
		map[string]any{"name": "Undergraduates: 4 weeks", "user_group": "UNDERGRAD",
			"terms": map[string]any{"loan_period": 4, "loan_period_unit": "weeks", "renewals": 2, "renewal_period": 8, "renewal_period_unit": "weeks",
				"overdue_fine": 25, "overdue_fine_unit": "day", "currency": "USD",
				"requests_allowed": true, "personal_delivery": true, "delivery_fee": 300, "hold_shelf_days": 3}},
		map[string]any{"user_group": "FACULTY", "material_type": "*", "terms": map[string]any{"loan_period": 120, "loan_period_unit": "days"}},
		map[string]any{"name": "Graduates: 6 weeks", "user_group": "grad",
			"terms": map[string]any{"loan_period": 6, "loan_period_unit": "weeks", "requests_allowed": true, "pickup_any_library": true}},
	}}
	s.do(t, http.StatusOK, fulfil, http.MethodPut, "/api/terms-of-use", requestRules, "If-Match", `"2"`)
	s.do(t, http.StatusCreated, fulfil, http.MethodPost, "/api/libraries", map[string]any{"code": "EAST", "name": "East Library"})
	oaJSON(t, s.do(t, http.StatusOK, fulfil, http.MethodPost, "/api/items/bulk", "barcode,title,library,title_id\nMAIN-0003,Bleak House,MAIN,MMS-1\nMAIN-0004,Bleak House,MAIN,MMS-1\n", "Content-Type", "text/csv"), &loaded)
	if loaded.Created != 2 || len(loaded.Rejected) != 0 {
		t.Errorf("CSV bulk load with title_id: %+v", loaded)
	}
	var copy3 circulation.Item
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/items/MAIN-0003", nil), &copy3)
	if copy3.TitleID != "MMS-1" {
		t.Errorf("an item loaded with its title: %+v", copy3)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/borrower/terms?barcode=MAIN-0003", nil)

	// Staff place, read and cancel requests for users; an item's queue.
	var held circulation.Request
	placed := s.do(t, http.StatusCreated, fulfil, http.MethodPost, "/api/users/jdoe/requests", map[string]any{"barcode": "main-0002", "pickup_library": "east"})
	oaJSON(t, placed, &held)
	if placed.header.Get("Location") != "/api/users/jdoe/requests/"+held.ID || placed.header.Get("ETag") != strconv.Quote(strconv.Itoa(held.Version)) ||
		held.Status != circulation.RequestOnHoldShelf || held.HoldUntil == nil || held.PickupLibrary != "EAST" || held.Barcode != "MAIN-0002" {
		t.Errorf("a request of an item on the shelf: Location %q ETag %s, request %+v", placed.header.Get("Location"), placed.header.Get("ETag"), held)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe/requests/"+held.ID, nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/sponsor/requests/"+held.ID, nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/jdoe/requests/no-such-request", nil)
	var reqs struct {
		Requests []circulation.Request `json:"requests"`
		Total    int                   `json:"total_record_count"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe/requests", nil), &reqs)
	if reqs.Total != 1 || len(reqs.Requests) != 1 || reqs.Requests[0].ID != held.ID {
		t.Errorf("jdoe's requests: %+v", reqs)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe/requests?status=all", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/users/jdoe/requests?status=done", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/nobody/requests", nil)
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPost, "/api/users/jdoe/requests", map[string]any{"barcode": "MAIN-0003", "title_id": "MMS-1"})
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodPost, "/api/users/jdoe/requests", map[string]any{"barcode": "MAIN-0003", "not_needed_after": "2001-01-01"})
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/users/jdoe/requests", map[string]any{"barcode": "NOPE"})
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/users/jdoe/requests", map[string]any{"title_id": "NO-SUCH-TITLE"})
	s.do(t, http.StatusNotFound, fulfil, http.MethodPost, "/api/users/nobody/requests", map[string]any{"barcode": "MAIN-0003"})
	var refusedRequest ginapi.Problem
	oaJSON(t, s.do(t, http.StatusConflict, fulfil, http.MethodPost, "/api/users/sponsor/requests", map[string]any{"barcode": "MAIN-0003"}), &refusedRequest)
	if len(refusedRequest.Blocks) != 1 || refusedRequest.Blocks[0].Type != circulation.BlockInactive || len(refusedRequest.Reasons) < 2 {
		t.Errorf("a request of an inactive user no rule applies to: %+v", refusedRequest)
	}
	s.do(t, http.StatusConflict, fulfil, http.MethodPost, "/api/users/jdoe/requests", map[string]any{"barcode": "MAIN-0002"}) // requested already
	s.do(t, http.StatusBadRequest, fulfil, http.MethodPost, "/api/users/jdoe/requests", `{"barcode": 2}`)
	s.do(t, http.StatusUnsupportedMediaType, fulfil, http.MethodPost, "/api/users/jdoe/requests", "barcode=MAIN-0003", "Content-Type", "text/plain")
	s.do(t, http.StatusRequestEntityTooLarge, fulfil, http.MethodPost, "/api/users/jdoe/requests", map[string]any{"barcode": strings.Repeat("b", 70<<10)})
	s.do(t, http.StatusForbidden, admin, http.MethodPost, "/api/users/jdoe/requests", map[string]any{"barcode": "MAIN-0003"})
	s.do(t, http.StatusForbidden, "jdoe", http.MethodGet, "/api/users/jdoe/requests", nil, "X-Test-Patron", "1")
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/items/main-0002/requests", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/items/NOPE/requests", nil)
	s.do(t, http.StatusForbidden, "jdoe", http.MethodGet, "/api/items/MAIN-0002/requests", nil, "X-Test-Patron", "1")

	// The patron's own account (/me): borrower, an undergraduate who owes
	// more than their group's limit (a block on loans, not on requests).
	const me = "borrower"
	asPatron := []string{"X-Test-Patron", "1"}
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users/borrower/user_notes", map[string]any{"note_text": "Your card expires soon", "user_viewable": true})
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users/borrower/user_notes", map[string]any{"note_text": "Staff only: asked twice about fines"})
	home := oaSegmentID(t, s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users/borrower/addresses",
		map[string]any{"line1": "3 Oak Street", "city": "Springfield", "postal_code": "12345"}), "addresses", "line1", "3 Oak Street")
	// Addresses for borrower's notices from now on (those before were
	// skipped): an email, preferred, another, and a phone not preferred.
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users/borrower/emails", map[string]any{"email_address": "bo@uni.example", "preferred": true})
	homeEmail := oaSegmentID(t, s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users/borrower/emails",
		map[string]any{"email_address": "bo@home.example"}), "emails", "email_address", "bo@home.example")
	mobile := oaSegmentID(t, s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users/borrower/phones",
		map[string]any{"phone_number": "+15550003"}), "phones", "phone_number", "+15550003")
	var card struct {
		User        patron.User    `json:"user"`
		Loans       int            `json:"loans"`
		Requests    int            `json:"requests"`
		OnHoldShelf int            `json:"on_hold_shelf"`
		Balance     []ginapi.Money `json:"balance"`
	}
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me", nil, asPatron...), &card)
	if card.User.PrimaryID != "borrower" || len(card.User.Notes) != 1 || card.Loans != 0 || card.Requests != 0 || len(card.Balance) != 1 || card.Balance[0].Amount != 600 {
		t.Errorf("borrower's card: %+v", card)
	}
	var place struct {
		Barcode string `json:"barcode"`
		Place   int    `json:"place_in_queue"`
	}
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/items/main-0002/queue", nil, asPatron...), &place)
	if place.Barcode != "MAIN-0002" || place.Place != 1 {
		t.Errorf("borrower's place in the queue of MAIN-0002: %+v", place)
	}
	s.do(t, http.StatusNotFound, me, http.MethodGet, "/api/me/items/NOPE/queue", nil, asPatron...)
	var quote circulation.Quote
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/items/MAIN-0002/terms", nil, asPatron...), &quote)
	if quote.Rule != "Undergraduates: 4 weeks" || !quote.Terms.PersonalDelivery || quote.Terms.DeliveryFee != 300 {
		t.Errorf("borrower's terms: %+v", quote)
	}
	s.do(t, http.StatusNotFound, me, http.MethodGet, "/api/me/items/NOPE/terms", nil, asPatron...)
	s.do(t, http.StatusBadRequest, me, http.MethodGet, "/api/me/items/%20/terms", nil, asPatron...)
	s.do(t, http.StatusConflict, "sponsor", http.MethodGet, "/api/me/items/MAIN-0002/terms", nil, asPatron...) // no rule for sponsor's group

	var waiting circulation.Request
	placedMine := s.do(t, http.StatusCreated, me, http.MethodPost, "/api/me/requests", map[string]any{"barcode": "MAIN-0002", "not_needed_after": "2099-12-31"}, asPatron...)
	oaJSON(t, placedMine, &waiting)
	if placedMine.header.Get("Location") != "/api/me/requests/"+waiting.ID || waiting.Status != circulation.RequestWaiting || waiting.Place != 1 ||
		waiting.PickupLibrary != "MAIN" || waiting.PrimaryID != "borrower" {
		t.Errorf("a request of an item held for another: Location %q, request %+v", placedMine.header.Get("Location"), waiting)
	}
	var delivered circulation.Request
	oaJSON(t, s.do(t, http.StatusCreated, me, http.MethodPost, "/api/me/requests", map[string]any{"title_id": "MMS-1", "delivery_address_id": home}, asPatron...), &delivered)
	if delivered.Level != circulation.RequestTitle || delivered.Status != circulation.RequestOnHoldShelf || delivered.Barcode != "MAIN-0003" ||
		delivered.DeliveryAddress == "" || delivered.PickupLibrary != "" || delivered.FeeID == "" {
		t.Errorf("a title request delivered: %+v", delivered)
	}
	// The queue once the patron has requested: their own place, then the
	// item held for them.
	var mine struct {
		Place         int                  `json:"place_in_queue"`
		RequestNeeded bool                 `json:"request_needed"`
		YourRequest   *circulation.Request `json:"your_request"`
	}
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/items/MAIN-0002/queue", nil, asPatron...), &mine)
	if mine.Place != 1 || mine.RequestNeeded || mine.YourRequest == nil || mine.YourRequest.ID != waiting.ID {
		t.Errorf("borrower's place in the queue of MAIN-0002 once requested: %+v", mine)
	}
	mine.YourRequest = nil
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/items/MAIN-0003/queue", nil, asPatron...), &mine)
	if mine.Place != 0 || mine.RequestNeeded || mine.YourRequest == nil || mine.YourRequest.ID != delivered.ID {
		t.Errorf("borrower's queue of MAIN-0003 held for them: %+v", mine)
	}
	s.do(t, http.StatusUnprocessableEntity, me, http.MethodPost, "/api/me/requests", map[string]any{"barcode": "MAIN-0001", "pickup_library": "EAST"}, asPatron...)
	s.do(t, http.StatusUnprocessableEntity, me, http.MethodPost, "/api/me/requests", map[string]any{}, asPatron...)
	s.do(t, http.StatusConflict, me, http.MethodPost, "/api/me/requests", map[string]any{"barcode": "MAIN-0004"}, asPatron...) // its title is requested already
	s.do(t, http.StatusNotFound, me, http.MethodPost, "/api/me/requests", map[string]any{"barcode": "NOPE"}, asPatron...)
	s.do(t, http.StatusBadRequest, me, http.MethodPost, "/api/me/requests", `{"barcode": ["MAIN-0001"]}`, asPatron...)
	s.do(t, http.StatusUnsupportedMediaType, me, http.MethodPost, "/api/me/requests", "barcode=MAIN-0001", "Content-Type", "text/plain", "X-Test-Patron", "1")
	s.do(t, http.StatusRequestEntityTooLarge, me, http.MethodPost, "/api/me/requests", map[string]any{"barcode": strings.Repeat("b", 70<<10)}, asPatron...)
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/requests", nil, asPatron...), &reqs)
	if reqs.Total != 2 || len(reqs.Requests) != 2 || reqs.Requests[0].ID != waiting.ID || reqs.Requests[1].ID != delivered.ID {
		t.Errorf("borrower's requests: %+v", reqs)
	}
	s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/requests?status=active", nil, asPatron...)
	s.do(t, http.StatusBadRequest, me, http.MethodGet, "/api/me/requests?status=open", nil, asPatron...)
	s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/requests/"+waiting.ID, nil, asPatron...)
	s.do(t, http.StatusNotFound, me, http.MethodGet, "/api/me/requests/"+held.ID, nil, asPatron...) // jdoe's
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/items/MAIN-0002/requests", nil), &reqs)
	if reqs.Total != 2 || len(reqs.Requests) != 2 || reqs.Requests[0].ID != held.ID || reqs.Requests[1].ID != waiting.ID {
		t.Errorf("the queue of MAIN-0002: %+v", reqs)
	}
	var myFees struct {
		Fees     []circulation.Fee `json:"fees"`
		Balance  []ginapi.Money    `json:"balance"`
		Accruing []ginapi.Money    `json:"accruing"`
	}
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/fees", nil, asPatron...), &myFees)
	if len(myFees.Fees) != 2 || myFees.Fees[0].ID != delivered.FeeID || myFees.Fees[0].Type != circulation.FeeDelivery ||
		len(myFees.Balance) != 1 || myFees.Balance[0].Amount != 900 || len(myFees.Accruing) != 0 {
		t.Errorf("borrower's fees: %+v", myFees)
	}
	var myBlocks struct {
		Blocks   []circulation.Block `json:"blocks"`
		Messages []patron.Note       `json:"messages"`
	}
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/blocks", nil, asPatron...), &myBlocks)
	if len(myBlocks.Blocks) != 1 || myBlocks.Blocks[0].Type != circulation.BlockMaxBalance || len(myBlocks.Messages) != 1 || myBlocks.Messages[0].NoteText != "Your card expires soon" {
		t.Errorf("borrower's blocks and messages: %+v", myBlocks)
	}

	// Notices: those written before borrower had an email were skipped;
	// those since are sent, archived, and downloadable.
	if n, err := s.kit.Circulation.SendNotices(ctx); err != nil || n == 0 {
		t.Fatalf("notices sent: %d, %v", n, err)
	}
	var myNotices struct {
		Notices []circulation.Notice `json:"notices"`
	}
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/notices", nil, asPatron...), &myNotices)
	var sentNotice, skippedNotice *circulation.Notice
	for i, n := range myNotices.Notices {
		if n.PrimaryID != "borrower" || (i > 0 && n.CreatedAt.After(myNotices.Notices[i-1].CreatedAt)) {
			t.Errorf("borrower's notices, the newest first: %+v", myNotices.Notices)
		}
		switch {
		case n.Status == circulation.NoticeSent && n.AttachmentID != "" && sentNotice == nil:
			sentNotice = &myNotices.Notices[i]
		case n.Status == circulation.NoticeSkipped && skippedNotice == nil:
			skippedNotice = &myNotices.Notices[i]
		}
	}
	if sentNotice == nil || skippedNotice == nil || sentNotice.Recipient != "bo@uni.example" {
		t.Fatalf("borrower's notices, one sent and one skipped: %+v", myNotices.Notices)
	}
	archived := s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/notices/"+sentNotice.ID, nil, asPatron...)
	if !strings.Contains(string(archived.body), "Subject: "+sentNotice.Subject) || !strings.HasPrefix(archived.header.Get("Content-Type"), "text/plain") ||
		!strings.HasPrefix(archived.header.Get("Content-Disposition"), "attachment;") {
		t.Errorf("a notice downloaded: %s %s: %q", archived.header.Get("Content-Type"), archived.header.Get("Content-Disposition"), archived.body)
	}
	s.do(t, http.StatusNotFound, me, http.MethodGet, "/api/me/notices/"+skippedNotice.ID, nil, asPatron...) // never sent
	s.do(t, http.StatusNotFound, me, http.MethodGet, "/api/me/notices/no-such-notice", nil, asPatron...)
	theirs, err := s.kit.Circulation.Notices(ctx, oaInst, "jdoe")
	if err != nil || len(theirs) == 0 || theirs[0].Status != circulation.NoticeSent {
		t.Fatalf("jdoe's notices: %+v, %v", theirs, err)
	}
	s.do(t, http.StatusNotFound, me, http.MethodGet, "/api/me/notices/"+theirs[0].ID, nil, asPatron...) // jdoe's

	// Settings: the preferred contacts, SMS, language and opt-outs; nothing
	// else of the record, and nothing at all when anything is refused.
	type mySettings struct {
		Emails    []ginapi.Contact `json:"emails"`
		Phones    []ginapi.Contact `json:"phones"`
		Addresses []ginapi.Contact `json:"addresses"`
		SMS       bool             `json:"sms"`
		Language  string           `json:"preferred_language"`
		OptOuts   []string         `json:"notice_opt_outs"`
		Optional  []string         `json:"optional_notices"`
	}
	var settings mySettings
	read := s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/settings", nil, asPatron...)
	oaJSON(t, read, &settings)
	if len(settings.Emails) != 2 || !settings.Emails[0].Preferred || settings.Emails[1].ID != homeEmail || len(settings.Phones) != 1 ||
		len(settings.Addresses) != 1 || settings.Addresses[0].ID != home || settings.SMS || len(settings.OptOuts) != 0 ||
		!slices.Equal(settings.Optional, circulation.OptionalNotices) {
		t.Errorf("borrower's settings: %+v", settings)
	}
	var readOnly ginapi.Problem
	oaJSON(t, s.do(t, http.StatusUnprocessableEntity, me, http.MethodPatch, "/api/me/settings",
		map[string]any{"first_name": "Robert", "user_group": "FACULTY", "preferred_language": "es"}, asPatron...), &readOnly)
	if len(readOnly.Errors) != 2 || readOnly.Errors[0].Field != "first_name" || readOnly.Errors[0].Code != "read_only" || readOnly.Errors[1].Field != "user_group" {
		t.Errorf("fields a patron may not change: %+v", readOnly.Errors)
	}
	s.do(t, http.StatusUnprocessableEntity, me, http.MethodPatch, "/api/me/settings", map[string]any{"preferred_email": "someone-elses"}, asPatron...)
	s.do(t, http.StatusUnprocessableEntity, me, http.MethodPatch, "/api/me/settings", map[string]any{"sms": true}, asPatron...) // no preferred phone
	s.do(t, http.StatusUnprocessableEntity, me, http.MethodPatch, "/api/me/settings",
		map[string]any{"preferred_language": "es", "notice_opt_outs": []string{"overdue"}}, asPatron...)
	s.do(t, http.StatusBadRequest, me, http.MethodPatch, "/api/me/settings", `{"sms": "yes"}`, asPatron...)
	s.do(t, http.StatusBadRequest, me, http.MethodPatch, "/api/me/settings", `["sms"]`, asPatron...)
	s.do(t, http.StatusUnsupportedMediaType, me, http.MethodPatch, "/api/me/settings", "sms=true", "Content-Type", "text/plain", "X-Test-Patron", "1")
	s.do(t, http.StatusRequestEntityTooLarge, me, http.MethodPatch, "/api/me/settings", map[string]any{"preferred_language": strings.Repeat("l", 70<<10)}, asPatron...)
	if again := s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/settings", nil, asPatron...); !bytes.Equal(again.body, read.body) || again.header.Get("ETag") != read.header.Get("ETag") {
		t.Errorf("refused changes changed the settings: %s, then %s", read.body, again.body)
	}
	changed := s.do(t, http.StatusOK, me, http.MethodPatch, "/api/me/settings", map[string]any{"preferred_email": homeEmail, "preferred_phone": mobile,
		"sms": true, "preferred_language": "es", "notice_opt_outs": []string{"loan_receipt", "due_soon"}}, asPatron...)
	oaJSON(t, changed, &settings)
	if settings.Emails[0].Preferred || !settings.Emails[1].Preferred || !settings.Phones[0].Preferred || !settings.Phones[0].PreferredSMS || !settings.SMS ||
		settings.Language != "es" || !slices.Equal(settings.OptOuts, []string{"due_soon", "loan_receipt"}) || changed.header.Get("ETag") == read.header.Get("ETag") {
		t.Errorf("borrower's settings changed: %s %+v", changed.header.Get("ETag"), settings)
	}
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodPatch, "/api/me/settings", map[string]any{"notice_opt_outs": []string{}}, asPatron...), &settings)
	if len(settings.OptOuts) != 0 || !settings.SMS || settings.Language != "es" {
		t.Errorf("borrower's settings, opted back in: %+v", settings)
	}

	// The patron's personal data, as a download; a user's, for staff.
	download := s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/personal-data", nil, asPatron...)
	if got := download.header.Get("Content-Disposition"); got != `attachment; filename=personal-data-borrower.json` {
		t.Errorf("Content-Disposition %q", got)
	}
	s.do(t, http.StatusForbidden, admin, http.MethodGet, "/api/me/personal-data", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe/personal-data", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/nobody/personal-data", nil)
	s.do(t, http.StatusForbidden, me, http.MethodGet, "/api/users/borrower/personal-data", nil, asPatron...)

	// The audit trail: an auditor searches it, a page at a time, exports a
	// search as CSV and verifies it; the patron reads their access log.
	const aud = "aud"
	if err := s.kit.Access.AssignRole(context.Background(), oaInst, aud, "auditor", "*"); err != nil {
		t.Fatal(err)
	}

	// A legal hold: set by a user administrator, read by an auditor, it
	// refuses the user's deletion with its reason until it is lifted.
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users", map[string]any{"primary_id": "held", "first_name": "Hal", "last_name": "Held"})
	noHold := s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/held/legal-hold", nil).header.Get("ETag")
	if noHold != `"none"` {
		t.Errorf("no hold's ETag %q", noHold)
	}
	s.do(t, http.StatusPreconditionRequired, admin, http.MethodPut, "/api/users/held/legal-hold", map[string]any{"reason": "claim 42"})
	s.do(t, http.StatusPreconditionFailed, admin, http.MethodPut, "/api/users/held/legal-hold", map[string]any{"reason": "claim 42"}, "If-Match", `"0123"`)
	var bad ginapi.Problem
	oaJSON(t, s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPut, "/api/users/held/legal-hold", map[string]any{"reason": "  "}, "If-Match", noHold), &bad)
	if len(bad.Errors) != 1 || bad.Errors[0].Field != "reason" {
		t.Errorf("an empty reason: %+v", bad)
	}
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPut, "/api/users/held/legal-hold", map[string]any{"reason": strings.Repeat("r", 1025)}, "If-Match", noHold)
	s.do(t, http.StatusBadRequest, admin, http.MethodPut, "/api/users/held/legal-hold", `{"reason": 1}`, "If-Match", noHold)
	s.do(t, http.StatusBadRequest, admin, http.MethodPut, "/api/users/held/legal-hold", `{"reason": "x", "until": "never"}`, "If-Match", noHold)
	s.do(t, http.StatusUnsupportedMediaType, admin, http.MethodPut, "/api/users/held/legal-hold", "reason=x", "Content-Type", "text/plain", "If-Match", noHold)
	s.do(t, http.StatusNotFound, admin, http.MethodPut, "/api/users/nobody/legal-hold", map[string]any{"reason": "claim 42"}, "If-Match", noHold)
	s.do(t, http.StatusForbidden, aud, http.MethodPut, "/api/users/held/legal-hold", map[string]any{"reason": "claim 42"}, "If-Match", noHold)
	var hold map[string]any
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodPut, "/api/users/held/legal-hold", map[string]any{"reason": "claim 42 of the insurer"}, "If-Match", noHold), &hold)
	if hold["reason"] != "claim 42 of the insurer" || hold["set_by"] != admin || hold["primary_id"] != "held" {
		t.Errorf("the hold set: %v", hold)
	}
	var heldRefused ginapi.Problem
	oaJSON(t, s.do(t, http.StatusConflict, admin, http.MethodDelete, "/api/users/held", nil), &heldRefused)
	if len(heldRefused.Reasons) != 1 || !strings.Contains(heldRefused.Reasons[0], "legal hold") || !strings.Contains(heldRefused.Reasons[0], "claim 42 of the insurer") {
		t.Errorf("the deletion of a held user: %+v", heldRefused)
	}
	oaJSON(t, s.do(t, http.StatusOK, aud, http.MethodGet, "/api/users/HELD/legal-hold", nil), &hold)
	if hold["reason"] != "claim 42 of the insurer" {
		t.Errorf("the hold read: %v", hold)
	}
	s.do(t, http.StatusPreconditionFailed, admin, http.MethodPut, "/api/users/held/legal-hold", map[string]any{"reason": "another"}, "If-Match", noHold)
	s.do(t, http.StatusForbidden, aud, http.MethodDelete, "/api/users/held/legal-hold", nil)
	var eraseRefused ginapi.Problem
	oaJSON(t, s.do(t, http.StatusConflict, admin, http.MethodPost, "/api/users/held/erasure", nil), &eraseRefused)
	if len(eraseRefused.Reasons) != 1 || !strings.Contains(eraseRefused.Reasons[0], "claim 42 of the insurer") {
		t.Errorf("the erasure of a held user: %+v", eraseRefused)
	}
	s.do(t, http.StatusForbidden, aud, http.MethodPost, "/api/users/held/erasure", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodPost, "/api/users/nobody/erasure", nil)
	s.do(t, http.StatusNoContent, admin, http.MethodDelete, "/api/users/held/legal-hold", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodDelete, "/api/users/held/legal-hold", nil)
	var proof struct {
		Report map[string]any `json:"report"`
		Hash   string         `json:"hash"`
		Seq    int64          `json:"seq"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodPost, "/api/users/held/erasure", nil), &proof)
	if len(proof.Hash) != 64 || proof.Seq == 0 || !strings.HasPrefix(fmt.Sprint(proof.Report["subject"]), "erased:") {
		t.Errorf("the proof of erasure: %+v", proof)
	}
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/held", nil)
	var trail struct {
		Entries []map[string]any `json:"entries"`
		Next    string           `json:"next"`
	}
	oaJSON(t, s.do(t, http.StatusOK, aud, http.MethodGet, "/api/audit/entries?subject=borrower&limit=2", nil), &trail)
	if len(trail.Entries) != 2 || trail.Next == "" {
		t.Errorf("the first page of borrower's entries: %+v", trail)
	} else {
		s.do(t, http.StatusOK, aud, http.MethodGet, trail.Next, nil)
	}
	s.do(t, http.StatusOK, aud, http.MethodGet, "/api/audit/entries?actor=admin&action=read&via=http&from=2020-01-01&to=2100-01-01T00:00:00Z&format=json", nil)
	if res := s.do(t, http.StatusOK, aud, http.MethodGet, "/api/audit/entries?actor=admin", nil, "Accept", "text/csv"); !bytes.HasPrefix(res.body, []byte("seq,date,")) {
		t.Errorf("the CSV export: %.200s", res.body)
	}
	s.do(t, http.StatusOK, aud, http.MethodGet, "/api/audit/entries?subject=borrower&format=csv", nil)
	s.do(t, http.StatusBadRequest, aud, http.MethodGet, "/api/audit/entries?from=soon", nil)
	s.do(t, http.StatusUnprocessableEntity, aud, http.MethodGet, "/api/audit/entries?limit=5000", nil)
	s.do(t, http.StatusForbidden, admin, http.MethodGet, "/api/audit/entries", nil)
	s.do(t, http.StatusOK, aud, http.MethodGet, "/api/audit/verify", nil)
	s.do(t, http.StatusForbidden, admin, http.MethodGet, "/api/audit/verify", nil)
	var accessLog struct {
		Entries []map[string]any `json:"entries"`
		Next    string           `json:"next"`
	}
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/access-log?limit=1", nil, asPatron...), &accessLog)
	if len(accessLog.Entries) != 1 || accessLog.Next == "" {
		t.Errorf("borrower's access log: %+v", accessLog)
	} else {
		s.do(t, http.StatusOK, me, http.MethodGet, accessLog.Next, nil, asPatron...)
	}
	s.do(t, http.StatusBadRequest, me, http.MethodGet, "/api/me/access-log?cursor=x", nil, asPatron...)
	s.do(t, http.StatusUnprocessableEntity, me, http.MethodGet, "/api/me/access-log?limit=0", nil, asPatron...)
	s.do(t, http.StatusForbidden, admin, http.MethodGet, "/api/me/access-log", nil)
	s.do(t, http.StatusNotFound, "nobody", http.MethodGet, "/api/me/access-log", nil, asPatron...)

	// jdoe borrows the item held for them, which fulfils the request; the
	// loan is not renewed while borrower waits for the item.
	var held2 circulation.Loan
	oaJSON(t, s.do(t, http.StatusCreated, fulfil, http.MethodPost, "/api/loans", map[string]any{"primary_id": "jdoe", "barcode": "MAIN-0002"}), &held2)
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe/requests/"+held.ID, nil), &held)
	if held.Status != circulation.RequestFulfilled || held.ClosedAt == nil {
		t.Errorf("a request whose item was lent: %+v", held)
	}
	oaJSON(t, s.do(t, http.StatusOK, "jdoe", http.MethodGet, "/api/me/loans", nil, asPatron...), &loans)
	if loans.Total != 1 || len(loans.Loans) != 1 || loans.Loans[0].ID != held2.ID {
		t.Errorf("jdoe's loans: %+v", loans)
	}
	s.do(t, http.StatusOK, "jdoe", http.MethodGet, "/api/me/loans?limit=1&offset=0", nil, asPatron...)
	s.do(t, http.StatusBadRequest, "jdoe", http.MethodGet, "/api/me/loans?limit=1001", nil, asPatron...)
	oaJSON(t, s.do(t, http.StatusOK, "jdoe", http.MethodGet, "/api/me/loans/history", nil, asPatron...), &loans)
	if loans.Total != 1 || len(loans.Loans) != 1 || loans.Loans[0].Status != circulation.LoanComplete {
		t.Errorf("jdoe's loan history: %+v", loans)
	}
	s.do(t, http.StatusBadRequest, "jdoe", http.MethodGet, "/api/me/loans/history?offset=-1", nil, asPatron...)
	oaJSON(t, s.do(t, http.StatusOK, "jdoe", http.MethodPost, "/api/me/loans/renew", map[string]any{}, asPatron...), &renewed)
	if len(renewed.Results) != 1 || renewed.Results[0].Renewed || !slices.ContainsFunc(renewed.Results[0].Reasons, func(r string) bool { return strings.Contains(r, "requested") }) {
		t.Errorf("jdoe's renewals while borrower waits: %+v", renewed)
	}
	oaJSON(t, s.do(t, http.StatusOK, "jdoe", http.MethodPost, "/api/me/loans/renew", map[string]any{"loan_ids": []string{loan.ID}}, asPatron...), &renewed)
	if len(renewed.Results) != 1 || renewed.Results[0].Renewed || len(renewed.Results[0].Reasons) == 0 {
		t.Errorf("jdoe renewing a loan of borrower's: %+v", renewed)
	}
	s.do(t, http.StatusBadRequest, "jdoe", http.MethodPost, "/api/me/loans/renew", `{"loan_ids": "all"}`, asPatron...)
	s.do(t, http.StatusUnsupportedMediaType, "jdoe", http.MethodPost, "/api/me/loans/renew", "all", "Content-Type", "text/plain", "X-Test-Patron", "1")
	s.do(t, http.StatusRequestEntityTooLarge, "jdoe", http.MethodPost, "/api/me/loans/renew", map[string]any{"loan_ids": []string{strings.Repeat("l", 70<<10)}}, asPatron...)

	// Cancellations: by the patron (no reason needed), by staff (with one).
	var cancelled circulation.Request
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodDelete, "/api/me/requests/"+waiting.ID, nil, asPatron...), &cancelled)
	if cancelled.Status != circulation.RequestCancelled || cancelled.CloseReason != "cancelled by the patron" || cancelled.ClosedBy != "borrower" {
		t.Errorf("a request cancelled by the patron: %+v", cancelled)
	}
	s.do(t, http.StatusConflict, me, http.MethodDelete, "/api/me/requests/"+waiting.ID, nil, asPatron...)
	s.do(t, http.StatusNotFound, me, http.MethodDelete, "/api/me/requests/"+held.ID, nil, asPatron...) // jdoe's
	s.do(t, http.StatusUnprocessableEntity, me, http.MethodDelete, "/api/me/requests/"+delivered.ID+"?reason="+strings.Repeat("r", 1001), nil, asPatron...)
	s.do(t, http.StatusUnprocessableEntity, fulfil, http.MethodDelete, "/api/users/borrower/requests/"+delivered.ID, nil)
	s.do(t, http.StatusForbidden, admin, http.MethodDelete, "/api/users/borrower/requests/"+delivered.ID+"?reason=Duplicate", nil)
	s.do(t, http.StatusNotFound, fulfil, http.MethodDelete, "/api/users/jdoe/requests/"+delivered.ID+"?reason=Duplicate", nil)
	oaJSON(t, s.do(t, http.StatusOK, fulfil, http.MethodDelete, "/api/users/borrower/requests/"+delivered.ID+"?reason=Address+unreachable", nil), &cancelled)
	if cancelled.Status != circulation.RequestCancelled || cancelled.CloseReason != "Address unreachable" || cancelled.ClosedBy != fulfil {
		t.Errorf("a request cancelled by staff: %+v", cancelled)
	}
	s.do(t, http.StatusConflict, fulfil, http.MethodDelete, "/api/users/borrower/requests/"+delivered.ID+"?reason=Again", nil)
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/fees", nil, asPatron...), &myFees)
	if len(myFees.Fees) != 1 || len(myFees.Balance) != 1 || myFees.Balance[0].Amount != 600 {
		t.Errorf("borrower's fees once the delivery was cancelled: %+v", myFees)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/borrower/fees?status=all", nil) // the delivery fee waived by circulation
	// The cancellations are told by SMS now, which the kit cannot send: a
	// notice not sent yet is not downloadable.
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/notices", nil, asPatron...), &myNotices)
	if n := myNotices.Notices; len(n) == 0 || n[0].Kind != circulation.NoticeRequestCancelled || n[0].Status != circulation.NoticePending ||
		n[0].Channel != circulation.ChannelSMS || n[0].Recipient != "+15550003" {
		t.Errorf("borrower's notices after the cancellations: %+v", n)
	} else {
		s.do(t, http.StatusNotFound, me, http.MethodGet, "/api/me/notices/"+n[0].ID, nil, asPatron...)
	}
	oaJSON(t, s.do(t, http.StatusOK, me, http.MethodGet, "/api/me/requests?status=all", nil, asPatron...), &reqs)
	if reqs.Total != 2 || reqs.Requests[0].Status != circulation.RequestCancelled || reqs.Requests[1].Status != circulation.RequestCancelled {
		t.Errorf("borrower's requests, all: %+v", reqs)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/jdoe/requests?status=all", nil) // the fulfilled one

	// Every /me route is for patrons: staff answer 403; a patron without
	// a record in the institution, 404. Staff routes answer a patron 403.
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/api/me", nil},
		{http.MethodGet, "/api/me/loans", nil},
		{http.MethodGet, "/api/me/loans/history", nil},
		{http.MethodPost, "/api/me/loans/renew", map[string]any{}},
		{http.MethodGet, "/api/me/requests", nil},
		{http.MethodPost, "/api/me/requests", map[string]any{"barcode": "MAIN-0001"}},
		{http.MethodGet, "/api/me/requests/" + waiting.ID, nil},
		{http.MethodDelete, "/api/me/requests/" + waiting.ID, nil},
		{http.MethodGet, "/api/me/items/MAIN-0001/queue", nil},
		{http.MethodGet, "/api/me/items/MAIN-0001/terms", nil},
		{http.MethodGet, "/api/me/fees", nil},
		{http.MethodGet, "/api/me/blocks", nil},
		{http.MethodGet, "/api/me/notices", nil},
		{http.MethodGet, "/api/me/notices/" + sentNotice.ID, nil},
		{http.MethodGet, "/api/me/settings", nil},
		{http.MethodPatch, "/api/me/settings", map[string]any{"sms": false}},
	} {
		s.do(t, http.StatusForbidden, admin, r.method, r.path, r.body)
		s.do(t, http.StatusNotFound, "nobody", r.method, r.path, r.body, asPatron...)
	}
	s.do(t, http.StatusForbidden, me, http.MethodPost, "/api/users/borrower/requests", map[string]any{"barcode": "MAIN-0001"}, asPatron...)
	s.do(t, http.StatusForbidden, me, http.MethodGet, "/api/users/borrower/requests/"+delivered.ID, nil, asPatron...)
	s.do(t, http.StatusForbidden, me, http.MethodDelete, "/api/users/borrower/requests/"+delivered.ID+"?reason=x", nil, asPatron...)
	s.do(t, http.StatusUnauthorized, "", http.MethodGet, "/api/me", nil)
	s.do(t, http.StatusTooManyRequests, "locked", http.MethodGet, "/api/me/requests", nil)

	// Retention: the rules, a dry run and a run, their reports; the
	// patron's choice and "delete my history now".
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/privacy/retention", nil)
	var dryRun struct {
		ID string `json:"id"`
	}
	oaJSON(t, s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/privacy/anonymization-runs?dry_run=true", nil), &dryRun)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/privacy/anonymization-runs/"+dryRun.ID, nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/privacy/anonymization-runs/nothing", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/privacy/anonymization-runs?dry_run=maybe", nil)
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/privacy/anonymization-runs", nil)
	s.do(t, http.StatusForbidden, aud, http.MethodPost, "/api/privacy/anonymization-runs", nil)
	s.do(t, http.StatusUnprocessableEntity, me, http.MethodPatch, "/api/me/settings", map[string]any{"loan_history": "sometimes"}, asPatron...)
	s.do(t, http.StatusOK, me, http.MethodPatch, "/api/me/settings", map[string]any{"loan_history": "forever"}, asPatron...)
	s.do(t, http.StatusOK, me, http.MethodPost, "/api/me/loans/history/delete", nil, asPatron...)
	s.do(t, http.StatusForbidden, admin, http.MethodPost, "/api/me/loans/history/delete", nil)

	// The purge: a user past their purge date, listed by a dry run, then
	// purged; the outcomes as JSON and CSV.
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/users", map[string]any{"primary_id": "gone", "first_name": "Gus", "last_name": "Gone", "purge_date": "2000-01-01"})
	var purgeRun struct {
		ID     string `json:"id"`
		Purged int64  `json:"purged"`
	}
	oaJSON(t, s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/privacy/purge-runs?dry_run=true", nil), &purgeRun)
	if purgeRun.Purged != 1 {
		t.Errorf("the dry purge: %+v", purgeRun)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/privacy/purge-runs/"+purgeRun.ID, nil)
	var outcomes struct {
		Outcomes []map[string]any `json:"outcomes"`
	}
	oaJSON(t, s.do(t, http.StatusOK, admin, http.MethodGet, "/api/privacy/purge-runs/"+purgeRun.ID+"/outcomes?limit=10", nil), &outcomes)
	if len(outcomes.Outcomes) != 1 || outcomes.Outcomes[0]["primary_id"] != "gone" || outcomes.Outcomes[0]["purged"] != true {
		t.Errorf("the dry purge's outcomes: %+v", outcomes)
	}
	if body := s.do(t, http.StatusOK, admin, http.MethodGet, "/api/privacy/purge-runs/"+purgeRun.ID+"/outcomes", nil, "Accept", "text/csv").body; !strings.HasPrefix(string(body), "seq,primary_id,purged,waived,reasons\n1,gone,true,,") {
		t.Errorf("the outcomes as CSV: %q", body)
	}
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/privacy/purge-runs/"+purgeRun.ID+"/outcomes?format=csv", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/privacy/purge-runs/"+purgeRun.ID+"/outcomes?after=x", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/privacy/purge-runs/"+purgeRun.ID+"/outcomes?format=xml", nil)
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodGet, "/api/privacy/purge-runs/"+purgeRun.ID+"/outcomes?limit=5000", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/privacy/purge-runs/nothing", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/privacy/purge-runs/nothing/outcomes", nil)
	// Cancel: an ended run is refused, a running one (another instance's)
	// is asked to stop after its batch.
	s.do(t, http.StatusConflict, admin, http.MethodPost, "/api/privacy/purge-runs/"+purgeRun.ID+"/cancel", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodPost, "/api/privacy/purge-runs/nothing/cancel", nil)
	s.do(t, http.StatusForbidden, aud, http.MethodPost, "/api/privacy/purge-runs/"+purgeRun.ID+"/cancel", nil)
	running := privacy.PurgeRun{ID: "run-elsewhere", Institution: oaInst, Status: privacy.RunRunning, Instance: "other", Started: time.Now().UTC()}
	if err := s.db.Create(&running).Error; err != nil {
		t.Fatal(err)
	}
	var asked struct {
		Status          string `json:"status"`
		CancelRequested bool   `json:"cancel_requested"`
	}
	oaJSON(t, s.do(t, http.StatusAccepted, admin, http.MethodPost, "/api/privacy/purge-runs/run-elsewhere/cancel", nil), &asked)
	if asked.Status != privacy.RunRunning || !asked.CancelRequested {
		t.Errorf("the running run asked to stop: %+v", asked)
	}
	if err := s.db.Model(&running).Update("status", privacy.RunCancelled).Error; err != nil {
		t.Fatal(err)
	}
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/privacy/purge-runs?dry_run=maybe", nil)
	s.do(t, http.StatusForbidden, aud, http.MethodPost, "/api/privacy/purge-runs", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/users/gone", nil)
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/privacy/purge-runs", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/gone", nil)

	// API keys: made, listed, revoked.
	var key struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	oaJSON(t, s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/api-keys", map[string]any{"name": "IdM", "staff_id": "staff1", "read_only": true, "expires_at": "2099-01-01T00:00:00Z"}), &key)
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/api-keys", map[string]any{"name": "IdM", "staff_id": "jdoe"})
	s.do(t, http.StatusBadRequest, admin, http.MethodPost, "/api/api-keys", "{")
	s.do(t, http.StatusForbidden, aud, http.MethodPost, "/api/api-keys", map[string]any{"name": "IdM", "staff_id": "staff1"})
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/api-keys", nil)
	s.do(t, http.StatusNoContent, admin, http.MethodDelete, "/api/api-keys/"+key.ID, nil)
	s.do(t, http.StatusNotFound, admin, http.MethodDelete, "/api/api-keys/nothing", nil)

	// Sets of users: a query set and a file, listed, read with their
	// members, frozen, deleted.
	var set struct {
		ID string `json:"id"`
	}
	oaJSON(t, s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/sets", map[string]any{"name": "Undergraduates", "query": map[string]any{"user_group": "UNDERGRAD", "has_block": false}}), &set)
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/sets", map[string]any{"name": "x", "query": map[string]any{"status": "gone"}})
	s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/sets?name=List&id_type=BARCODE", "B0001\nnobody\n", "Content-Type", "text/csv")
	s.do(t, http.StatusUnsupportedMediaType, admin, http.MethodPost, "/api/sets", "<set/>", "Content-Type", "application/xml")
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sets?limit=1", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sets/"+set.ID, nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/sets/"+set.ID+"/members?limit=5", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/sets/"+set.ID+"/members?limit=x", nil)
	var frozen struct {
		ID string `json:"id"`
	}
	oaJSON(t, s.do(t, http.StatusCreated, admin, http.MethodPost, "/api/sets/"+set.ID+"/freeze", map[string]any{"name": "Frozen"}), &frozen)
	s.do(t, http.StatusConflict, admin, http.MethodPost, "/api/sets/"+frozen.ID+"/freeze", nil)
	// A job over a set: previewed, started, followed, its outcomes read.
	update := map[string]any{"fields": map[string]any{"campus_code": "NORTH", "purge_date": nil}, "sample": 2}
	s.do(t, http.StatusOK, admin, http.MethodPost, "/api/sets/"+set.ID+"/preview", update)
	s.do(t, http.StatusUnprocessableEntity, admin, http.MethodPost, "/api/sets/"+set.ID+"/preview", map[string]any{"fields": map[string]any{"status": "gone"}})
	var job struct {
		ID string `json:"id"`
	}
	oaJSON(t, s.do(t, http.StatusAccepted, admin, http.MethodPost, "/api/sets/"+set.ID+"/jobs", update), &job)
	s.kit.Sets.Wait()
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/jobs/"+job.ID, nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/jobs/"+job.ID+"/outcomes", nil)
	s.do(t, http.StatusOK, admin, http.MethodGet, "/api/jobs/"+job.ID+"/outcomes?format=csv", nil)
	s.do(t, http.StatusBadRequest, admin, http.MethodGet, "/api/jobs/"+job.ID+"/outcomes?format=xml", nil)
	s.do(t, http.StatusConflict, admin, http.MethodPost, "/api/jobs/"+job.ID+"/cancel", nil)
	s.do(t, http.StatusAccepted, admin, http.MethodPost, "/api/jobs/"+job.ID+"/undo", nil)
	s.kit.Sets.Wait()
	s.do(t, http.StatusConflict, admin, http.MethodPost, "/api/jobs/"+job.ID+"/undo", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/jobs/nothing", nil)
	s.do(t, http.StatusNoContent, admin, http.MethodDelete, "/api/sets/"+frozen.ID, nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/sets/"+frozen.ID, nil)

	// Deletions.
	s.do(t, http.StatusNoContent, admin, http.MethodDelete, "/api/users/sponsor", nil)
	s.do(t, http.StatusNotFound, admin, http.MethodGet, "/api/users/sponsor", nil)

	// A trail changed behind the kit's back: verify says where.
	if err := s.db.Exec("UPDATE pk_privacy_audit SET what = 'nothing' WHERE seq = 2").Error; err != nil {
		t.Fatal(err)
	}
	var broken struct {
		OK     bool   `json:"ok"`
		Seq    int64  `json:"seq"`
		Reason string `json:"reason"`
	}
	oaJSON(t, s.do(t, http.StatusOK, "aud", http.MethodGet, "/api/audit/verify", nil), &broken)
	if broken.OK || broken.Seq != 2 || broken.Reason != "altered" {
		t.Errorf("the tampered trail verified: %+v", broken)
	}

	// Every operation of the document was exercised.
	for _, key := range oaSortedKeys(oaOperations(s.doc)) {
		if s.seen[key] == 0 {
			t.Errorf("no exchange exercised %s", key)
		}
	}
}
