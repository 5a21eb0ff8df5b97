package almaapi_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
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
		// Behind the key, as every route.
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/api/deposits", "", "Authorization", ""), http.StatusUnauthorized, "UNAUTHORIZED")
		// A method a path does not take, and a path the API does not have.
		w := s.do(http.MethodPatch, "/almaws/v1/users/api?format=json", "{}")
		almaErr(t, w, http.StatusMethodNotAllowed, "401873")
		if allow := w.Header().Get("Allow"); allow != "GET, POST, PUT, DELETE" {
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
