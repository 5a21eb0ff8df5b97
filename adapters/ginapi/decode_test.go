package ginapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/patron"
)

// A JSON body names each field once, exactly: a name given twice in one
// object (at any depth), or one that matches a field only when case is
// ignored, is refused (400, the name given) and nothing is written;
// encoding/json alone would take the last value, or "Amount" for amount.
func TestBodiesNameEachFieldOnceAndExactly(t *testing.T) {
	s := circServer(t)
	circLibraries(t, s)
	s.create("DEMO", &patron.User{PrimaryID: "student1", FirstName: "S", LastName: "S"})
	cases := []struct {
		name, who, method, path, body string
		field, code                   string
	}{
		{"a name twice", admin, "POST", "/api/users", `{"primary_id":"x","first_name":"A","last_name":"B","first_name":"C"}`, "first_name", "duplicate"},
		{"twice in a segment", admin, "POST", "/api/users", `{"primary_id":"x","first_name":"A","last_name":"B","emails":[{"email_address":"a@b.example"},{"email_address":"c@d.example","preferred":true,"preferred":false}]}`, "emails[1].preferred", "duplicate"},
		{"an embedded field twice", admin, "POST", "/api/users", `{"primary_id":"x","first_name":"A","last_name":"B","user_notes":[{"note_text":"n","segment_type":"Internal","segment_type":"External"}]}`, "user_notes[0].segment_type", "duplicate"},
		{"another case", admin, "POST", "/api/users", `{"primary_id":"x","First_Name":"A","last_name":"B"}`, "First_Name", "unknown_field"},
		{"another case in a segment", admin, "POST", "/api/users", `{"primary_id":"x","first_name":"A","last_name":"B","user_notes":[{"Note_Text":"n"}]}`, "user_notes[0].Note_Text", "unknown_field"},
		{"Amount", fulfil, "POST", "/api/users/student1/fees", `{"Amount":100,"currency":"USD","description":"d"}`, "Amount", "unknown_field"},
		{"amount twice", fulfil, "POST", "/api/users/student1/fees", `{"amount":1,"amount":100000,"currency":"USD","description":"d"}`, "amount", "duplicate"},
		{"an item of a bulk load", fulfil, "POST", "/api/items/bulk", `[{"barcode":"X1","title":"T","library":"MAIN"},{"barcode":"X2","Title":"T","library":"MAIN"}]`, "[1].Title", "unknown_field"},
		{"a library twice", fulfil, "POST", "/api/libraries", `{"code":"SCI","name":"Science","code":"ART"}`, "code", "duplicate"},
		{"a patron's settings", "DEMO/student1/patron", "PATCH", "/api/me/settings", `{"preferred_language":"es","preferred_language":"fr"}`, "preferred_language", "duplicate"},
		{"a patron's request", "DEMO/student1/patron", "POST", "/api/me/requests", `{"barcode":"MAIN-0001","Barcode":"MAIN-0002"}`, "Barcode", "unknown_field"},
	}
	for _, c := range cases {
		res := s.do(c.who, c.method, c.path, c.body)
		res.refused(t, c.name, http.StatusBadRequest, c.field)
		if res.Code == http.StatusBadRequest {
			for _, f := range res.problem().Errors {
				if f.Field == c.field && f.Code != c.code {
					t.Errorf("%s: code %s, want %s", c.name, f.Code, c.code)
				}
			}
		}
	}
	// A body that is not UTF-8.
	s.do(admin, "POST", "/api/users", "{\"primary_id\":\"x\",\"first_name\":\"A\xff\",\"last_name\":\"B\"}").refused(t, "not UTF-8", http.StatusBadRequest, "")

	// Nothing was written.
	if n := userCount(s); n != 1 {
		t.Fatalf("refused bodies wrote users: %d", n)
	}
	var fees struct {
		Total int `json:"total_record_count"`
	}
	s.do(fulfil, "GET", "/api/users/student1/fees", nil).status(http.StatusOK).json(&fees)
	if fees.Total != 0 {
		t.Fatalf("refused bodies charged fees: %d", fees.Total)
	}
	if res := s.do(fulfil, "GET", "/api/items/X1", nil); res.Code != http.StatusNotFound {
		t.Fatalf("a refused bulk load wrote items: %d", res.Code)
	}
	// What is exact passes, names that are no field of a map's values
	// included.
	s.do(admin, "POST", "/api/users", `{"primary_id":"x","first_name":"A","last_name":"B","emails":[{"email_address":"a@b.example","preferred":true}]}`).status(http.StatusCreated)
	if p := s.do(admin, "GET", "/api/users/x", nil).status(http.StatusOK); !strings.Contains(p.Body.String(), `"preferred":true`) {
		t.Fatalf("%s", p.Body.String())
	}
}
