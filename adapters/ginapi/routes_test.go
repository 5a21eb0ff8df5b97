package ginapi_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/patron"
)

// isFallback tells a route Mount registers to answer what no route of the
// API takes (404, 405, OPTIONS) from a route of the API.
func isFallback(ri gin.RouteInfo) bool {
	return strings.HasSuffix(ri.Handler, ".unmatched-fm")
}

// apiRoutes are the routes of the API below /api (method, pattern), HEAD
// and the fallbacks left out.
func apiRoutes(t *testing.T, s *server) [][2]string {
	t.Helper()
	var out [][2]string
	for _, ri := range s.r.Routes() {
		if strings.HasPrefix(ri.Path, "/api/") && ri.Method != http.MethodHead && !isFallback(ri) {
			out = append(out, [2]string{ri.Method, ri.Path})
		}
	}
	if len(out) < 50 {
		t.Fatalf("only %d routes below /api", len(out))
	}
	return out
}

// fill writes a pattern's parameters as value.
func fill(pattern, value string) string {
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			segs[i] = value
		}
	}
	return strings.Join(segs, "/")
}

// routeMatches tells whether a path has the shape of a pattern.
func routeMatches(pattern, path string) bool {
	p, q := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(p) != len(q) {
		return false
	}
	for i := range p {
		if !(strings.HasPrefix(p[i], ":") && q[i] != "") && p[i] != q[i] {
			return false
		}
	}
	return true
}

// Every route of the API is reached as before: a staff user without a
// role is refused by the policies (403), never answered by a fallback,
// whatever the parameters are, "bulk" (a static segment beside
// /items/:barcode) and "me" included. Every GET route takes HEAD.
func TestEveryRouteIsReachedAndTakesHeadWhereGet(t *testing.T) {
	s := newServer(t, nil, nil)
	routes := apiRoutes(t, s)
	heads := map[string]bool{}
	for _, ri := range s.r.Routes() {
		if ri.Method == http.MethodHead && !isFallback(ri) {
			heads[ri.Path] = true
		}
	}
	for _, rt := range routes {
		if rt[0] == http.MethodGet && !heads[rt[1]] {
			t.Errorf("GET %s has no HEAD", rt[1])
		}
		methods := []string{rt[0]}
		if rt[0] == http.MethodGet {
			methods = append(methods, http.MethodHead)
		}
		for _, m := range methods {
			for _, v := range []string{"x", "bulk", "me", "users", "a%20b"} {
				path := fill(rt[1], v)
				if res := s.do("DEMO/nobody/staff", m, path, nil); res.Code != http.StatusForbidden {
					t.Errorf("%s %s: %d, want 403 from the policies: %.200s", m, path, res.Code, res.Body.String())
				}
			}
		}
	}
}

// What no route of the API takes is answered by the API below the mount:
// 404 for a path it does not have, 405 with Allow for a method the path
// does not take, 204 with Allow for OPTIONS; as problem details with a
// request id, after authentication and whatever the roles.
func TestUnknownPathsAndMethodsAreProblems(t *testing.T) {
	s := newServer(t, nil, nil)
	s.grant("DEMO", "librarian", "user-administrator", "*")
	routes := apiRoutes(t, s)
	allow := func(path string) []string {
		var out []string
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.ContainsFunc(routes, func(rt [2]string) bool {
				return (rt[0] == m || m == "HEAD" && rt[0] == "GET") && routeMatches(rt[1], path)
			}) {
				out = append(out, m)
			}
		}
		if out != nil {
			out = append(out, "OPTIONS")
		}
		return out
	}
	check := func(who, method, path string) {
		t.Helper()
		res := s.do(who, method, path, nil)
		want := allow(path)
		switch {
		case slices.Contains(want, method) && method != http.MethodOptions:
			return // a route of the API: checked above
		case method == http.MethodOptions && want != nil:
			if res.Code != http.StatusNoContent || res.Header().Get("Allow") != strings.Join(want, ", ") || res.Header().Get("X-Request-ID") == "" {
				t.Errorf("OPTIONS %s: %d Allow %q, want 204 Allow %q", path, res.Code, res.Header().Get("Allow"), strings.Join(want, ", "))
			}
		case want != nil:
			if res.Code != http.StatusMethodNotAllowed || res.Header().Get("Allow") != strings.Join(want, ", ") {
				t.Errorf("%s %s: %d Allow %q, want 405 Allow %q: %.200s", method, path, res.Code, res.Header().Get("Allow"), strings.Join(want, ", "), res.Body.String())
				return
			}
			if p := res.problem(); p.Type != "urn:patronkit:problem:method-not-allowed" || !strings.Contains(p.Detail, method) {
				t.Errorf("%s %s: %+v", method, path, p)
			}
		default:
			if res.Code != http.StatusNotFound {
				t.Errorf("%s %s: %d, want 404: %.200s", method, path, res.Code, res.Body.String())
				return
			}
			if method != http.MethodHead {
				if p := res.problem(); p.Type != "urn:patronkit:problem:not-found" || p.Instance != path {
					t.Errorf("%s %s: %+v", method, path, p)
				}
			}
		}
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
	for _, rt := range routes {
		for _, v := range []string{"x", "bulk"} {
			path := fill(rt[1], v)
			for _, m := range methods {
				check(admin, m, path)
				check(admin, m, path+"/zzz")
				check(admin, m, path+"/zzz/deeper/still/more/and/more")
			}
		}
		// The prefixes of every route.
		segs := strings.Split(fill(rt[1], "x"), "/")
		for i := 2; i < len(segs); i++ {
			for _, m := range methods {
				check(admin, m, strings.Join(segs[:i], "/"))
			}
		}
	}
	for _, path := range []string{"/api/nowhere", "/api/", "/api/a/b/c/d/e/f/g/h/i"} {
		for _, m := range methods {
			check(admin, m, path)
		}
	}

	// Before the 404: authentication (401); not the policies (a staff user
	// without roles gets the 404 and the 405, not a 403).
	s.do("", "GET", "/api/nowhere", nil).status(http.StatusUnauthorized).problem()
	s.do("DEMO/nobody/staff", "GET", "/api/nowhere", nil).status(http.StatusNotFound).problem()
	p := s.do("DEMO/nobody/staff", "DELETE", "/api/users", nil).status(http.StatusMethodNotAllowed).problem()
	if p.Detail == "" || p.RequestID == "" {
		t.Fatalf("405: %+v", p)
	}
	// An item whose barcode is "bulk" is still reached (POST /items/bulk
	// is a route of its own).
	s.grant("DEMO", "fulfil", "fulfillment-administrator", "*")
	s.do("DEMO/fulfil/staff", "POST", "/api/libraries", map[string]any{"code": "MAIN", "name": "Main"}).status(http.StatusCreated)
	s.do("DEMO/fulfil/staff", "POST", "/api/items", map[string]any{"barcode": "bulk", "title": "Bulk", "library": "MAIN"}).status(http.StatusCreated)
	s.do("DEMO/fulfil/staff", "GET", "/api/items/bulk", nil).status(http.StatusOK)
	s.do("DEMO/fulfil/staff", "POST", "/api/items/bulk/lost", nil).status(http.StatusNotFound).problem() // not on loan
	s.do("DEMO/fulfil/staff", "DELETE", "/api/items/bulk", nil).status(http.StatusNoContent)
}

// HEAD answers what GET answers, headers only, to whoever may GET: through
// a real HTTP server, which sends no body.
func TestHeadAnswersGetsHeadersWithoutTheBody(t *testing.T) {
	s := newServer(t, nil, nil)
	s.grant("DEMO", "librarian", "user-administrator", "*")
	s.create("DEMO", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
	srv := httptest.NewServer(s.r)
	defer srv.Close()
	send := func(method, path, who string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("X-Test-Who", who)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	get, body := send("GET", "/api/users/jdoe", admin)
	head, hbody := send("HEAD", "/api/users/jdoe", admin)
	if get.StatusCode != 200 || head.StatusCode != 200 || hbody != "" || body == "" {
		t.Fatalf("GET %d (%d bytes), HEAD %d with body %q", get.StatusCode, len(body), head.StatusCode, hbody)
	}
	for _, h := range []string{"Content-Type", "ETag", "Content-Length"} {
		if head.Header.Get(h) != get.Header.Get(h) {
			t.Errorf("%s: HEAD %q, GET %q", h, head.Header.Get(h), get.Header.Get(h))
		}
	}
	if head.Header.Get("X-Request-ID") == "" {
		t.Error("HEAD without a request id")
	}
	// The policies decide HEAD as GET: the patron reads their own record,
	// not the list of users.
	if res, _ := send("HEAD", "/api/users/jdoe", "DEMO/jdoe/patron"); res.StatusCode != 200 {
		t.Errorf("the patron's HEAD of their record: %d", res.StatusCode)
	}
	if res, _ := send("HEAD", "/api/users", "DEMO/jdoe/patron"); res.StatusCode != 403 {
		t.Errorf("the patron's HEAD of the users: %d, want 403", res.StatusCode)
	}
	if res, _ := send("HEAD", "/api/nowhere", admin); res.StatusCode != 404 {
		t.Errorf("HEAD of nothing: %d", res.StatusCode)
	}
}

// A host's own routes below the mount point stay the host's, and one the
// fallbacks would conflict with does not stop Mount (the requests it
// leaves go to the engine's NoRoute; the log says which).
func TestHostRoutesBelowTheMountStay(t *testing.T) {
	s := newServer(t, nil, nil)
	s.grant("DEMO", "librarian", "user-administrator", "*")
	for _, hostPath := range []string{"", "/api/ui", "/api/:page"} {
		r := gin.New()
		if hostPath != "" {
			r.GET(hostPath, func(c *gin.Context) { c.String(http.StatusOK, "host") })
		}
		var log bytes.Buffer
		err := ginapi.Mount(r.Group("/api"), s.kit, &ginapi.Options{Logger: slog.New(slog.NewTextHandler(&log, nil)), Principal: func(c *gin.Context) (ginapi.Who, error) {
			return ginapi.Who{Institution: "DEMO", ID: "librarian"}, nil
		}})
		if err != nil {
			t.Fatalf("%s: %v", hostPath, err)
		}
		if warned := strings.Contains(log.String(), "NoRoute"); warned != (hostPath == "/api/:page") {
			t.Errorf("host route %q: warned %v: %s", hostPath, warned, log.String())
		}
		if hostPath == "" {
			continue
		}
		for path, want := range map[string]int{"/api/ui": 200, "/api/users": 200, "/api/users/nobody": 404, "/api/ui/more": 404} {
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
			if w.Code != want {
				t.Errorf("host route %s: GET %s %d, want %d", hostPath, path, w.Code, want)
			}
		}
	}
}

// Paths with empty segments name no route, as Gin routes them.
func TestEmptySegmentsNameNoRoute(t *testing.T) {
	s := adminServer(t, nil)
	for _, path := range []string{"/api//users", "/api/users//x", "/api//"} {
		for _, m := range []string{"GET", "POST", "DELETE"} {
			s.do(admin, m, path, nil).refused(t, m+" "+path, http.StatusNotFound, "")
		}
	}
}
