package ginapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzUserBodies sends arbitrary bodies to the routes that take a user or a
// segment. Whatever arrives, the answer is a success or a 4xx problem,
// never a 5xx, and a refused body writes nothing.
func FuzzUserBodies(f *testing.F) {
	for _, seed := range []string{
		`{"primary_id":"a","first_name":"A","last_name":"B"}`,
		`{"primary_id":"a","first_name":"A","last_name":"B","emails":[{"email_address":"a@b.example","preferred":true}],"user_identifiers":[{"id_type":"BARCODE","value":"1"}]}`,
		`{"primary_id":"a","first_name":"A","last_name":"B","user_notes":[{"note_text":"x","user_viewable":true}],"birth_date":"2001-02-03"}`,
		`{"primary_id":"a","account_type":"EXTERNAL","external_id":"SIS","first_name":"A","last_name":"B"}`,
		`{"note_text":"hello"}`, `{"block_type":"GENERAL","block_description":"X"}`,
		`{"primary_id":null}`, `[]`, `"x"`, `{"primary_id":"\u0000"}`, `{"emails":[null]}`, `{`, ``,
		`{"primary_id":"a","first_name":"A","last_name":"B","version":-1,"created_date":"x"}`,
	} {
		f.Add(seed)
	}
	s := adminServer(f, nil)
	paths := []string{"/api/users", "/api/users/jdoe/user_notes", "/api/users/jdoe/user_blocks", "/api/users/jdoe/emails"}
	s.do(admin, "POST", "/api/users", `{"primary_id":"jdoe","first_name":"J","last_name":"D"}`).status(http.StatusCreated)
	f.Fuzz(func(t *testing.T, body string) {
		s := &server{t: t, kit: s.kit, r: s.r, db: s.db}
		for _, p := range paths {
			res := s.do(admin, "POST", p, body)
			if res.Code >= 500 {
				t.Fatalf("POST %s %q: %d %s", p, body, res.Code, res.Body.String())
			}
			if res.Code >= 400 && !strings.HasPrefix(res.Header().Get("Content-Type"), "application/problem+json") {
				t.Fatalf("POST %s %q: %d without a problem body", p, body, res.Code)
			}
		}
		res := s.do(admin, "PUT", "/api/users/jdoe", body, "If-Match", `"1"`)
		if res.Code >= 500 {
			t.Fatalf("PUT %q: %d %s", body, res.Code, res.Body.String())
		}
	})
}
