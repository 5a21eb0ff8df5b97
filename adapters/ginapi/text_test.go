package ginapi_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// NUL and other control characters in a text field are a 422 naming the
// field on every database (PostgreSQL cannot store NUL: never a 500), and
// nothing is written; tabs, line feeds and, in notes, carriage returns are
// stored. A path or a filter holding one finds nothing (404, 422), never
// a 500.
func TestControlCharactersAre422OnEveryDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, &patronkit.Config{Now: func() time.Time { return testNow }})
		s.grant("DEMO", "librarian", "user-administrator", "*")
		s.grant("DEMO", "fulfil", "fulfillment-administrator", "*")
		for name, c := range map[string]struct{ body, field string }{
			"NUL in a name":    {`{"primary_id":"a1","first_name":"Ja\u0000ne","last_name":"Doe"}`, "first_name"},
			"NUL in a note":    {`{"primary_id":"a1","first_name":"Jane","last_name":"Doe","user_notes":[{"note_text":"ok"},{"note_text":"a\u0000b"}]}`, "user_notes[1].note_text"},
			"escape in a city": {`{"primary_id":"a1","first_name":"Jane","last_name":"Doe","addresses":[{"line1":"1 Main St","city":"Oslo\u001b[2J"}]}`, "addresses[0].city"},
			"CR in a name":     {`{"primary_id":"a1","first_name":"Ja\rne","last_name":"Doe"}`, "first_name"},
		} {
			s.do(admin, "POST", "/api/users", c.body).refused(t, name, http.StatusUnprocessableEntity, c.field)
		}
		if n := userCount(s); n != 0 {
			t.Fatalf("refused users were written: %d", n)
		}
		res := s.do(admin, "POST", "/api/users", `{"primary_id":"a1","first_name":"Jane","last_name":"Doe","job_description":"day\tnight\nshift",
			"user_notes":[{"note_text":"line one\r\nline two"}]}`).status(http.StatusCreated)
		var u patron.User
		s.do(admin, "GET", res.Header().Get("Location"), nil).status(http.StatusOK).json(&u)
		if u.JobDescription != "day\tnight\nshift" || u.Notes[0].NoteText != "line one\r\nline two" {
			t.Fatalf("allowed characters not kept: %q %q", u.JobDescription, u.Notes[0].NoteText)
		}
		s.do(admin, "POST", "/api/users/a1/user_notes", `{"note_text":"x\u0000"}`).refused(t, "a note added alone", http.StatusUnprocessableEntity, "user_notes[1].note_text")

		s.do(fulfil, "POST", "/api/libraries", `{"code":"MAIN","name":"Main\u0000"}`).refused(t, "a library", http.StatusUnprocessableEntity, "name")
		s.do(fulfil, "POST", "/api/libraries", `{"code":"MAIN","name":"Main"}`).status(http.StatusCreated)
		s.do(fulfil, "POST", "/api/items", `{"barcode":"B1","title":"Moby\u0000Dick","library":"MAIN"}`).refused(t, "an item", http.StatusUnprocessableEntity, "title")
		s.do(fulfil, "POST", "/api/loans", `{"primary_id":"a1","barcode":"B\u00001"}`).refused(t, "a check-out of nothing", http.StatusNotFound, "")
		var renewed struct {
			Results []struct {
				LoanID  string   `json:"loan_id"`
				Reasons []string `json:"reasons"`
			} `json:"results"`
		}
		s.do(fulfil, "POST", "/api/users/a1/loans/renew", `{"loan_ids":["L\u00001"]}`).status(http.StatusOK).json(&renewed)
		if len(renewed.Results) != 1 || len(renewed.Results[0].Reasons) != 1 {
			t.Fatalf("renewing a loan id no loan holds: %+v", renewed)
		}

		for _, path := range []string{"/api/users/a%00b", "/api/users/a1/fees/f%00", "/api/items/B%001", "/api/libraries/MA%00IN", "/api/code-tables/user%00group", "/api/users/a%FF"} {
			s.do(admin, "GET", path, nil).refused(t, path, http.StatusNotFound, "")
		}
		s.do(admin, "GET", "/api/users?q=ja%00", nil).refused(t, "a search", http.StatusUnprocessableEntity, "q")
		s.do(fulfil, "GET", "/api/items?library=MA%00IN", nil).refused(t, "an item filter", http.StatusUnprocessableEntity, "library")
		s.do(admin, "GET", "/api/users/a1?user_id_type=BAR%00CODE", nil).refused(t, "an identifier lookup", http.StatusNotFound, "")
	})
}

// A primary_id is one segment of a URL path: ".", "..", "me" and ids with
// a slash are refused (422 naming primary_id); what is accepted is reached
// again at the Location the API answers.
func TestPrimaryIDsRoundTripThroughThePath(t *testing.T) {
	s := adminServer(t, nil)
	for _, id := range []string{".", "..", "me", "Me", " me ", "a/b", "x\u0000"} {
		s.do(admin, "POST", "/api/users", map[string]any{"primary_id": id, "first_name": "A", "last_name": "B"}).
			refused(t, "primary_id "+id, http.StatusUnprocessableEntity, "primary_id")
	}
	for _, id := range []string{"50%", "a b", "x?y", "a#b", "a;b", "ü.ñ", "...", "me.too", "%2F", "a+b"} {
		res := s.do(admin, "POST", "/api/users", map[string]any{"primary_id": id, "first_name": "A", "last_name": "B"}).status(http.StatusCreated)
		loc := res.Header().Get("Location")
		if loc != "/api/users/"+url.PathEscape(id) {
			t.Errorf("%q: Location %q", id, loc)
		}
		var u patron.User
		s.do(admin, "GET", loc, nil).status(http.StatusOK).json(&u)
		if u.PrimaryID != id {
			t.Errorf("%q read back as %q", id, u.PrimaryID)
		}
	}
}
