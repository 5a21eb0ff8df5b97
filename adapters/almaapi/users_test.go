package almaapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// read reads a user answered by the API (XML or JSON) with the API's own
// reader: what a client sends back is what it read.
func read(t testing.TB, body []byte, asXML bool) *patron.User {
	t.Helper()
	u, _, err := sis.ReadAPIUser(body, asXML, sis.Limits{})
	if err != nil {
		t.Fatalf("the answer does not read back: %v\n%s", err, body)
	}
	return u
}

// Ex Libris's own example user, posted as XML, is answered in XML that
// validates against rest_user.xsd and in JSON that reads back into the
// same user; codes carry their descriptions, dates are written as Alma
// writes them, the brief view and the counts of expand are Alma's; it is
// found by an identifier of a type; every read is on the audit trail
// through the Alma API and the key.
func TestAUserPostedInXMLReadsBackInXMLAndJSON(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		ctx := context.Background()
		if err := k.Patrons.SaveLabels(ctx, inst, []patron.CodeLabel{{CodeTable: "user_group", Code: "08", Description: "Staff"}}); err != nil {
			t.Fatal(err)
		}
		doc, err := os.ReadFile(filepath.Join(almaDir(t), "exlibris_doc_example_user.xml"))
		if err != nil {
			t.Fatal(err)
		}
		doc = []byte(strings.Replace(string(doc), "<purge_date>2021-01-20Z</purge_date>", "<purge_date>2031-01-20Z</purge_date>", 1))
		w := want(t, s.do(http.MethodPost, "/almaws/v1/users", string(doc), "Content-Type", "application/xml"), http.StatusOK)
		validXML(t, w.Body.Bytes(), "rest_user.xsd")
		body := w.Body.String()
		for _, part := range []string{`<user link="http://example.com/almaws/v1/users/johns">`, `<user_group desc="Staff">08</user_group>`, `<birth_date>1979-01-11Z</birth_date>`,
			`<status desc="Active">ACTIVE</status>`, `<email preferred="true" segment_type="Internal">`} {
			if !strings.Contains(body, part) {
				t.Errorf("the answer lacks %s:\n%s", part, body)
			}
		}

		asXML := want(t, s.do(http.MethodGet, "/almaws/v1/users/johns", ""), http.StatusOK)
		validXML(t, asXML.Body.Bytes(), "rest_user.xsd")
		asJSON := want(t, s.do(http.MethodGet, "/almaws/v1/users/johns", "", "Accept", "application/json"), http.StatusOK)
		if ct := asJSON.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Accept: application/json answered %s", ct)
		}
		fromXML, fromJSON := read(t, asXML.Body.Bytes(), true), read(t, asJSON.Body.Bytes(), false)
		if !reflect.DeepEqual(fromXML, fromJSON) {
			t.Errorf("XML and JSON disagree:\n%+v\n%+v", fromXML, fromJSON)
		}
		if fromJSON.LastName != "Smith" || len(fromJSON.Emails) != 1 || len(fromJSON.Addresses) != 1 || len(fromJSON.Phones) != 1 ||
			len(fromJSON.Identifiers) != 1 || len(fromJSON.Blocks) != 1 || len(fromJSON.Notes) != 1 || len(fromJSON.Statistics) != 1 {
			t.Errorf("the user read back: %+v", fromJSON)
		}
		var j map[string]any
		if err := json.Unmarshal(asJSON.Body.Bytes(), &j); err != nil {
			t.Fatal(err)
		}
		if g, _ := j["user_group"].(map[string]any); g["value"] != "08" || g["desc"] != "Staff" || j["birth_date"] != "1979-01-11Z" || j["link"] != "http://example.com/almaws/v1/users/johns" {
			t.Errorf("Alma's JSON: user_group %v, birth_date %v, link %v", j["user_group"], j["birth_date"], j["link"])
		}

		// By an identifier of a type; the brief view; the counts.
		w = want(t, s.do(http.MethodGet, "/almaws/v1/users/JOHNS02?user_id_type=02&view=brief&expand=loans,requests,fees", ""), http.StatusOK)
		validXML(t, w.Body.Bytes(), "rest_user.xsd")
		brief := read(t, w.Body.Bytes(), true)
		if brief.PrimaryID != "johns" || len(brief.Addresses) != 0 || len(brief.Emails) != 1 || len(brief.Identifiers) != 1 ||
			!strings.Contains(w.Body.String(), `<loans link="http://example.com/almaws/v1/users/johns/loans">0</loans>`) || !strings.Contains(w.Body.String(), `<fees link=`) {
			t.Errorf("brief with counts:\n%s", w.Body)
		}

		// all_unique (the default): the primary_id, else an identifier of any type.
		if u := read(t, want(t, s.do(http.MethodGet, "/almaws/v1/users/johns02", ""), http.StatusOK).Body.Bytes(), true); u.PrimaryID != "johns" {
			t.Errorf("by an identifier without its type: %s", u.PrimaryID)
		}
		want(t, s.do(http.MethodGet, "/almaws/v1/users/Johns02/loans?user_id_type=all_unique", ""), http.StatusOK)

		// Alma's refusals.
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/nobody", ""), http.StatusBadRequest, "401861")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/nobody?user_id_type=02&format=json", ""), http.StatusBadRequest, "401890")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/johns?view=everything", ""), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/johns?expand=holdings", "", "Accept", "application/json"), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users", "<user><primary_id>x</user>", "Content-Type", "application/xml"), http.StatusBadRequest, "401676")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users", "<users/>", "Content-Type", "application/xml"), http.StatusBadRequest, "401676")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users", string(doc), "Content-Type", "application/xml"), http.StatusBadRequest, "401851")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users?format=json", `{"primary_id":"nameless"}`, "Content-Type", "application/json"), http.StatusBadRequest, "401664")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users?send_pin_number_letter=maybe", `{"primary_id":"x","first_name":"X","last_name":"Y"}`), http.StatusBadRequest, "401666")

		// Every read through the Alma API is on the trail, naming it and the key.
		page, err := k.Privacy.Search(ctx, inst, privacy.Query{Subject: "johns", Via: "alma-api GET"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) == 0 || !strings.Contains(page.Entries[0].Via, " key ") || !strings.Contains(page.Entries[0].Via, "(scripts)") || page.Entries[0].ActorID != "api" {
			t.Errorf("the trail of the Alma API's reads: %+v", page.Entries)
		}
	})
}

// PUT swaps every segment list whole; the retained fields the body leaves
// empty are kept unless override names them; DELETE removes the user.
func TestPutSwapsTheSegmentsAndKeepsTheRetainedFields(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		post := `{"primary_id":"jdoe","first_name":"Jane","last_name":"Doe","user_group":{"value":"UG"},"campus_code":{"value":"MAIN"},
			"contact_info":{"email":[{"email_address":"a@example.org","preferred":true},{"email_address":"b@example.org"}],
			"address":[{"line1":"1 Road","city":"Town","address_type":[{"value":"home"}]}]},
			"user_identifier":[{"id_type":{"value":"BARCODE"},"value":"B1"}]}`
		want(t, s.do(http.MethodPost, "/almaws/v1/users?format=json", post, "Content-Type", "application/json"), http.StatusOK)
		put := `{"primary_id":"jdoe","first_name":"Jane","last_name":"Doe-Smith","contact_info":{"email":[{"email_address":"c@example.org","preferred":true}]}}`
		w := want(t, s.do(http.MethodPut, "/almaws/v1/users/jdoe?format=json", put, "Content-Type", "application/json"), http.StatusOK)
		u := read(t, w.Body.Bytes(), false)
		if u.LastName != "Doe-Smith" || len(u.Emails) != 1 || u.Emails[0].EmailAddress != "c@example.org" || len(u.Addresses) != 0 || len(u.Identifiers) != 0 ||
			u.UserGroup != "UG" || u.CampusCode != "MAIN" {
			t.Errorf("after PUT: %+v", u)
		}
		w = want(t, s.do(http.MethodPut, "/almaws/v1/users/JDOE?override=user_group&format=json", put, "Content-Type", "application/json"), http.StatusOK)
		if u := read(t, w.Body.Bytes(), false); u.UserGroup != "" || u.CampusCode != "MAIN" {
			t.Errorf("override=user_group: group %q, campus %q", u.UserGroup, u.CampusCode)
		}
		almaErr(t, s.do(http.MethodPut, "/almaws/v1/users/nobody", put, "Content-Type", "application/json"), http.StatusBadRequest, "401861")
		almaErr(t, s.do(http.MethodPut, "/almaws/v1/users/jdoe?format=json", `{"primary_id":"jdoe","first_name":"","last_name":"Doe"}`), http.StatusBadRequest, "401664")
		want(t, s.do(http.MethodDelete, "/almaws/v1/users/jdoe", ""), http.StatusNoContent)
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/jdoe", ""), http.StatusBadRequest, "401861")
		almaErr(t, s.do(http.MethodDelete, "/almaws/v1/users/jdoe", ""), http.StatusBadRequest, "401861")
	})
}

// GET /users takes Alma's q (field~value terms joined by AND), limit,
// offset and order_by, and answers total_record_count with a page of
// brief users, in XML valid against rest_users.xsd and in JSON shaped as
// a real Alma list (which parses into the same structure).
func TestTheUserListTakesAlmasQueryAndPages(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		for _, u := range []patron.User{
			{PrimaryID: "s1", FirstName: "Ann", LastName: "Smith", UserGroup: "UG", Emails: []patron.Email{{EmailAddress: "ann@uni.edu"}}},
			{PrimaryID: "s2", FirstName: "Bob", LastName: "Smith", UserGroup: "GRAD"},
			{PrimaryID: "s3", FirstName: "Cid", LastName: "Smithers", UserGroup: "UG", Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "BC-77"}}},
			{PrimaryID: "j1", FirstName: "Ann", LastName: "Jones", UserGroup: "UG"},
		} {
			if _, err := k.Patrons.Create(context.Background(), inst, &u); err != nil {
				t.Fatal(err)
			}
		}
		type list struct {
			Total int `json:"total_record_count"`
			User  []struct {
				PrimaryID string `json:"primary_id"`
				Link      string `json:"link"`
				Status    struct {
					Value string `json:"value"`
					Desc  string `json:"desc"`
				} `json:"status"`
			} `json:"user"`
		}
		ids := func(q string) (int, []string) {
			t.Helper()
			var l list
			w := want(t, s.do(http.MethodGet, "/almaws/v1/users?"+q, "", "Accept", "application/json"), http.StatusOK)
			if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, u := range l.User {
				out = append(out, u.PrimaryID)
				if u.Link == "" || u.Status.Value != "ACTIVE" || u.Status.Desc != "Active" {
					t.Errorf("%s: a listed user %+v", q, u)
				}
			}
			return l.Total, out
		}
		for q, want := range map[string][]string{
			"q=last_name~smith":                      {"s1", "s2", "s3"},
			"q=last_name~smith+AND+user_group~UG":    {"s1", "s3"},
			"q=first_name~ann&order_by=primary_id":   {"j1", "s1"},
			"q=email~ann@uni":                        {"s1"},
			"q=identifiers~bc-77":                    {"s3"},
			"q=primary_id~s*":                        {"s1", "s2", "s3"},
			"q=ALL~jones":                            {"j1"},
			"q=last_name~smith&limit=2&offset=1":     {"s2", "s3"},
			"limit=1&order_by=primary_id,first_name": {"api"},
		} {
			total, got := ids(q)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %v, want %v", q, got, want)
			}
			if (q == "q=last_name~smith&limit=2&offset=1" || q == "q=last_name~smith&limit=0") && total != 3 {
				t.Errorf("%s: total_record_count %d, want 3", q, total)
			}
		}
		w := want(t, s.do(http.MethodGet, "/almaws/v1/users?q=last_name~smith", ""), http.StatusOK)
		validXML(t, w.Body.Bytes(), "rest_users.xsd")
		if !strings.Contains(w.Body.String(), `<users total_record_count="3">`) {
			t.Errorf("the XML list:\n%s", w.Body)
		}
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users?q=shoe_size~9", ""), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users?limit=500", ""), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users?order_by=birth_date", ""), http.StatusBadRequest, "401666")

		// A real Alma list parses into the same structure.
		sample, err := os.ReadFile(filepath.Join(almaAPIDir(t), "uio_users_response.json"))
		if err != nil {
			t.Fatal(err)
		}
		var l list
		if err := json.Unmarshal(sample, &l); err != nil || l.Total != 1 || len(l.User) != 1 || l.User[0].Status.Value != "ACTIVE" {
			t.Errorf("Alma's list sample: %+v, %v", l, err)
		}
	})
}
