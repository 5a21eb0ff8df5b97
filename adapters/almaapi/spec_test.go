package almaapi_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/patronkittest"
)

// Every path and method of Alma's users API, as Ex Libris's OpenAPI
// description lists them, answers in Alma's shape: data, or Alma's error
// body (the routes patronkit has no data for: Alma's error for an
// unsupported operation); never a 500, never the router's own 404.
func TestEveryRouteOfAlmasSpecificationAnswersInAlmasShape(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(almaAPIDir(t), "alma_users_api.openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	type op struct{ method, path string }
	var ops []op
	for p, methods := range spec.Paths {
		for m := range methods {
			switch m = strings.ToUpper(m); m {
			case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
				ops = append(ops, op{m, strings.TrimPrefix(p, "/almaws/v1")})
			}
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	if len(ops) < 40 {
		t.Fatalf("the specification lists %d operations", len(ops))
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		for _, o := range ops {
			path := "/almaws/v1" + param.ReplaceAllStringFunc(o.path, func(p string) string {
				if p == "{user_id}" || p == "{user_name}" {
					return "api"
				}
				return "x1"
			})
			if o.method == http.MethodDelete && o.path == "/users/{user_id}" {
				path = "/almaws/v1/users/nobody" // the key's own user stays
			}
			body := ""
			if o.method == http.MethodPost || o.method == http.MethodPut {
				body = "{}"
			}
			w := s.do(o.method, path+"?format=json", body, "Content-Type", "application/json")
			if o.method == http.MethodGet {
				// HEAD: the GET's status and headers, no body.
				h := s.do(http.MethodHead, path+"?format=json", "")
				if h.Code != w.Code || h.Body.Len() != 0 || h.Header().Get("Content-Type") != w.Header().Get("Content-Type") ||
					h.Header().Get("Content-Length") != strconv.Itoa(w.Body.Len()) {
					t.Errorf("HEAD %s: %d %q %q %q, the GET's %d %q %d", o.path, h.Code, h.Header().Get("Content-Type"), h.Header().Get("Content-Length"), h.Body, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
				}
			}
			switch {
			case w.Code >= 500:
				t.Errorf("%s %s: %d %s", o.method, o.path, w.Code, w.Body)
			case w.Code == http.StatusNoContent:
			case !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json"):
				t.Errorf("%s %s: %d answered %q: %s", o.method, o.path, w.Code, w.Header().Get("Content-Type"), w.Body)
			case w.Code >= 400:
				var e almaError
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !e.ErrorsExist || len(e.ErrorList.Error) == 0 || e.ErrorList.Error[0].ErrorCode == "" {
					t.Errorf("%s %s: %d is not Alma's error body: %s", o.method, o.path, w.Code, w.Body)
				}
			default:
				var v map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
					t.Errorf("%s %s: %d is not a JSON object: %s", o.method, o.path, w.Code, w.Body)
				}
			}
		}
		// The unsupported ones say so.
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/api/deposits", ""), http.StatusBadRequest, "401873")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/api/purchase-requests?format=json", "{}"), http.StatusBadRequest, "401873")
		// The operations served since the first release answer Alma's
		// own errors for what is missing, no longer the unsupported one.
		for _, c := range []struct{ method, path, body, code string }{
			{http.MethodPost, "/users/api?op=auth", "", "401664"},
			{http.MethodPost, "/users/api?op=auth", "", "401866"}, // with a wrong password, below
			{http.MethodPost, "/users/api?op=refresh", "", "401873"},
			{http.MethodPut, "/users/api/loans/x1", `{"due_date":"2030-01-01T00:00:00Z"}`, "401823"},
			{http.MethodPut, "/users/api/loans/x1", `{}`, "401824"},
			{http.MethodPut, "/users/api/requests/x1", `{"last_interest_date":"2030-01-01Z"}`, "401694"},
			{http.MethodPut, "/users/api/requests/x1", `{"request_type":"DIGITIZATION"}`, "401873"},
			{http.MethodPost, "/users/api/loans?item_pid=x1", "", "401651"},
			{http.MethodPost, "/users/api/requests?item_pid=x1", `{}`, "60328"},
			{http.MethodPost, "/users/api/requests?item_pid=x1", `{"request_type":"BOOKING"}`, "401873"},
		} {
			hdr := []string{"Content-Type", "application/json"}
			if c.code == "401866" {
				hdr = append(hdr, "Exl-User-Pw", "wrong")
			}
			almaErr(t, s.do(c.method, "/almaws/v1"+c.path+"&format=json", c.body, hdr...), http.StatusBadRequest, c.code)
		}
		// A read-only key reads with HEAD too.
		ro := s.makeKey("ro", "api", true)
		if w := s.do(http.MethodHead, "/almaws/v1/users/api", "", "Authorization", "apikey "+ro); w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Errorf("HEAD with a read-only key: %d %s", w.Code, w.Body)
		}
		// Behind the key, as every route.
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/api/deposits", "", "Authorization", ""), http.StatusUnauthorized, "UNAUTHORIZED")
		// A method a path does not take, and a path the API does not have.
		w := s.do(http.MethodPatch, "/almaws/v1/users/api?format=json", "{}")
		almaErr(t, w, http.StatusMethodNotAllowed, "401873")
		if allow := w.Header().Get("Allow"); allow != "GET, HEAD, POST, PUT, DELETE" {
			t.Errorf("Allow %q", allow)
		}
		for _, p := range []string{"/almaws/v1/bibs/99", "/almaws/v1", "/almaws/v1/conf"} {
			w := s.do(http.MethodGet, p+"?format=json", "")
			if w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed && w.Code != http.StatusBadRequest {
				t.Errorf("GET %s: %d %s", p, w.Code, w.Body)
				continue
			}
			var e almaError
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !e.ErrorsExist {
				t.Errorf("GET %s: %d is not Alma's error body: %s", p, w.Code, w.Body)
			}
		}
	})
}
