package sis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/patronkit/patronkit/internal/conformance"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// decodeRecords reads data with f and returns every record emitted and
// Decode's error.
func decodeRecords(t testing.TB, f sis.Format, data string) ([]sis.Record, error) {
	t.Helper()
	var recs []sis.Record
	err := f.Decode(context.Background(), strings.NewReader(data), func(r sis.Record) error {
		recs = append(recs, r)
		return nil
	})
	return recs, err
}

// usersOf decodes data and fails unless every record is a user.
func usersOf(t testing.TB, f sis.Format, data string) []*patron.User {
	t.Helper()
	recs, err := decodeRecords(t, f, data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	var users []*patron.User
	for _, r := range recs {
		if r.Err != nil || r.User == nil {
			t.Fatalf("%s: want a user, got error %v", r.Ref, r.Err)
		}
		users = append(users, r.User)
	}
	return users
}

// segmentTypes lists the segment type of every segment of u.
func segmentTypes(u *patron.User) []string {
	var out []string
	for _, s := range u.Identifiers {
		out = append(out, s.SegmentType)
	}
	for _, s := range u.Addresses {
		out = append(out, s.SegmentType)
	}
	for _, s := range u.Emails {
		out = append(out, s.SegmentType)
	}
	for _, s := range u.Phones {
		out = append(out, s.SegmentType)
	}
	for _, s := range u.Notes {
		out = append(out, s.SegmentType)
	}
	for _, s := range u.Blocks {
		out = append(out, s.SegmentType)
	}
	for _, s := range u.Statistics {
		out = append(out, s.SegmentType)
	}
	for _, s := range u.ProxyFor {
		out = append(out, s.SegmentType)
	}
	return out
}

func allExternal(t testing.TB, ref string, u *patron.User) {
	t.Helper()
	for i, st := range segmentTypes(u) {
		if st != patron.SegmentExternal {
			t.Errorf("%s: segment %d is %q, want External", ref, i, st)
		}
	}
	for i, n := range u.Notes {
		if n.Origin != patron.OriginExternal {
			t.Errorf("%s: note %d has origin %q, want external", ref, i, n.Origin)
		}
	}
}

func hasLabel(labels []sis.Label, table, code, desc string) bool {
	for _, l := range labels {
		if l == (sis.Label{Table: table, Code: code, Desc: desc}) {
			return true
		}
	}
	return false
}

func want[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func wantCodes(t testing.TB, what string, got patron.Codes, want ...string) {
	t.Helper()
	if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual([]string(got), want)) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestConformanceJSON(t *testing.T) {
	dir := conformance.AlmaDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string]bool{}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := decodeRecords(t, sis.JSON(sis.Limits{}), string(data))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(recs) == 0 {
				t.Fatal("no user read")
			}
			for i, r := range recs {
				want(t, "Ref", r.Ref, fmt.Sprintf("user %d", i+1))
				if r.Err != nil || r.User == nil {
					t.Fatalf("%s: %v", r.Ref, r.Err)
				}
				allExternal(t, r.Ref, r.User)
				for _, l := range r.Labels {
					if l.Table == "" || l.Code == "" || l.Desc == "" {
						t.Errorf("%s: label with an empty part: %+v", r.Ref, l)
					}
				}
			}
			switch name {
			case "exlibris_doc_example_user.json":
				checked[name] = true
				checkExLibrisExample(t, recs)
			case "uio_user_response.json":
				checked[name] = true
				checkUiOResponse(t, recs)
			}
		})
	}
	for _, name := range []string{"exlibris_doc_example_user.json", "uio_user_response.json"} {
		if !checked[name] {
			t.Errorf("%s was not found in %s", name, dir)
		}
	}
}

// checkExLibrisExample checks Ex Libris's documented example user, johns.
func checkExLibrisExample(t *testing.T, recs []sis.Record) {
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	u, labels := recs[0].User, recs[0].Labels
	want(t, "primary_id", u.PrimaryID, "johns")
	want(t, "first_name", u.FirstName, "John")
	want(t, "middle_name", u.MiddleName, "Appleseed")
	want(t, "last_name", u.LastName, "Smith")
	want(t, "record_type", u.RecordType, patron.RecordPublic)
	want(t, "status", u.Status, patron.StatusActive)
	want(t, "account_type", u.AccountType, patron.AccountInternal)
	want(t, "gender", u.Gender, "FEMALE")
	want(t, "user_group", u.UserGroup, "08")
	want(t, "campus_code", u.CampusCode, "Main")
	want(t, "job_category", u.JobCategory, "Cataloger")
	want(t, "job_description", u.JobDescription, "The best cataloger")
	want(t, "preferred_language", u.PreferredLanguage, "en")
	want(t, "birth_date", u.BirthDate, "1979-01-11")
	want(t, "expiry_date", u.ExpiryDate, "2030-01-16")
	want(t, "purge_date", u.PurgeDate, "2021-01-20")
	want(t, "pin_number", u.PINNumber, "")
	for _, l := range [][3]string{
		{"user_group", "08", "Staff"},
		{"campus_code", "Main", "Main Campus"},
		{"record_type", "PUBLIC", "Public"},
		{"preferred_language", "en", "English"},
		{"phone_type", "home", "Home"},
		{"phone_type", "office", "Office"},
		{"email_type", "personal", "Personal"},
		{"address_type", "home", "Home"},
		{"id_type", "02", "User ID"},
		{"block_type", "GENERAL", "General"},
		{"block_description", "02-GLOBAL", "Block (02)(GLOBAL)"},
		{"note_type", "ADDRESS", "Address"},
		{"statistic_category", "Graduate", "Graduate"},
	} {
		if !hasLabel(labels, l[0], l[1], l[2]) {
			t.Errorf("no label %v in %+v", l, labels)
		}
	}
	for _, l := range labels {
		if l.Table == "role_type" || l.Table == "scope" || l.Table == "country" {
			t.Errorf("unexpected label %+v (roles are ignored, the country has no code)", l)
		}
	}

	if len(u.Addresses) != 1 {
		t.Fatalf("%d addresses, want 1", len(u.Addresses))
	}
	a := u.Addresses[0]
	want(t, "address line1", a.Line1, "Main Street 1")
	want(t, "address line2", a.Line2, "Nice building near the corner")
	want(t, "address line3", a.Line3, "")
	want(t, "address city", a.City, "London")
	want(t, "address country", a.Country, "")
	want(t, "address start_date", a.StartDate, "2013-12-26")
	want(t, "address preferred", a.Preferred, false)
	wantCodes(t, "address types", a.AddressTypes, "home")

	if len(u.Emails) != 2 {
		t.Fatalf("%d emails, want 2", len(u.Emails))
	}
	want(t, "email 1", u.Emails[0].EmailAddress, "johns@mylib.org")
	want(t, "email 1 preferred", u.Emails[0].Preferred, true)
	want(t, "email 1 description", u.Emails[0].Description, "")
	wantCodes(t, "email 1 types", u.Emails[0].EmailTypes, "personal")
	want(t, "email 2", u.Emails[1].EmailAddress, "johns@myOTHERlib.org")
	want(t, "email 2 preferred", u.Emails[1].Preferred, false)

	if len(u.Phones) != 1 {
		t.Fatalf("%d phones, want 1", len(u.Phones))
	}
	want(t, "phone", u.Phones[0].PhoneNumber, "123456789")
	want(t, "phone preferred", u.Phones[0].Preferred, true)
	want(t, "phone preferred_sms", u.Phones[0].PreferredSMS, false)
	wantCodes(t, "phone types", u.Phones[0].PhoneTypes, "home", "office")

	if len(u.Identifiers) != 1 {
		t.Fatalf("%d identifiers, want 1", len(u.Identifiers))
	}
	want(t, "id_type", u.Identifiers[0].IDType, "02")
	want(t, "identifier value", u.Identifiers[0].Value, "johns02")
	want(t, "identifier status", u.Identifiers[0].Status, "ACTIVE")
	want(t, "identifier note", u.Identifiers[0].Note, "")

	if len(u.Blocks) != 1 {
		t.Fatalf("%d blocks, want 1", len(u.Blocks))
	}
	want(t, "block_type", u.Blocks[0].BlockType, "GENERAL")
	want(t, "block_description", u.Blocks[0].BlockDescription, "02-GLOBAL")
	want(t, "block_status", u.Blocks[0].BlockStatus, "ACTIVE")

	if len(u.Notes) != 1 {
		t.Fatalf("%d notes, want 1", len(u.Notes))
	}
	want(t, "note_type", u.Notes[0].NoteType, "ADDRESS")
	want(t, "note_text", u.Notes[0].NoteText, "His address was changed a month ago")
	want(t, "note user_viewable", u.Notes[0].UserViewable, true)
	want(t, "note popup_note", u.Notes[0].PopupNote, false)

	if len(u.Statistics) != 1 {
		t.Fatalf("%d statistics, want 1", len(u.Statistics))
	}
	want(t, "statistic_category", u.Statistics[0].StatisticCategory, "Graduate")
	if len(u.ProxyFor) != 0 || u.RSLibrary != "" {
		t.Errorf("proxies %v, rs_library %q: want none", u.ProxyFor, u.RSLibrary)
	}
}

// checkUiOResponse checks the University of Oslo's GET-user response.
func checkUiOResponse(t *testing.T, recs []sis.Record) {
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	u, labels := recs[0].User, recs[0].Labels
	want(t, "primary_id", u.PrimaryID, "12345")
	want(t, "first_name", u.FirstName, "Dan")
	want(t, "last_name", u.LastName, "Banan")
	want(t, "birth_date", u.BirthDate, "1990-03-01")
	want(t, "user_group", u.UserGroup, "1")
	want(t, "campus_code", u.CampusCode, "BLINDERN")
	want(t, "preferred_language", u.PreferredLanguage, "no")
	want(t, "gender", u.Gender, "")
	want(t, "user_title", u.UserTitle, "")
	want(t, "job_category", u.JobCategory, "")
	want(t, "rs_library", u.RSLibrary, "1030310")
	if !hasLabel(labels, "user_group", "1", "Egne studenter") {
		t.Errorf("no user_group label in %+v", labels)
	}
	if !hasLabel(labels, "rs_library", "1030310", "UiO Realfagsbiblioteket") {
		t.Errorf("no rs_library label in %+v", labels)
	}
	for _, l := range labels {
		if l.Table == "gender" || l.Table == "user_title" || l.Table == "country" || l.Table == "cataloger_level" {
			t.Errorf("unexpected label %+v", l)
		}
	}

	// Internal and External identifiers all come out External (checked
	// for every file), and the inactive barcode keeps its status.
	if len(u.Identifiers) != 4 {
		t.Fatalf("%d identifiers, want 4", len(u.Identifiers))
	}
	want(t, "identifier 1", u.Identifiers[0].Value, "ub12345")
	want(t, "identifier 1 type", u.Identifiers[0].IDType, "BARCODE")
	want(t, "identifier 1 status", u.Identifiers[0].Status, patron.StatusInactive)
	want(t, "identifier 2 status", u.Identifiers[1].Status, patron.StatusActive)
	want(t, "identifier 3", u.Identifiers[2].Value, "ntb12897787")
	want(t, "identifier 4 type", u.Identifiers[3].IDType, "UNIV_ID")
	want(t, "identifier 4", u.Identifiers[3].Value, "test@uio.no")
	want(t, "identifier 4 segment", u.Identifiers[3].SegmentType, patron.SegmentExternal)

	if len(u.Phones) != 2 {
		t.Fatalf("%d phones, want 2", len(u.Phones))
	}
	want(t, "phone 1", u.Phones[0].PhoneNumber, "12345678")
	want(t, "phone 1 preferred", u.Phones[0].Preferred, true)
	want(t, "phone 1 preferred_sms", u.Phones[0].PreferredSMS, false)
	want(t, "phone 2", u.Phones[1].PhoneNumber, "87654321")
	want(t, "phone 2 preferred", u.Phones[1].Preferred, false)
	want(t, "phone 2 preferred_sms", u.Phones[1].PreferredSMS, true)
	wantCodes(t, "phone 2 types", u.Phones[1].PhoneTypes, "mobile")

	if len(u.Addresses) != 1 || len(u.Emails) != 1 {
		t.Fatalf("%d addresses and %d emails, want 1 and 1", len(u.Addresses), len(u.Emails))
	}
	a := u.Addresses[0]
	want(t, "address line1", a.Line1, "Niels Henrik Abels hus")
	want(t, "address line2 (null)", a.Line2, "")
	want(t, "address country (desc and value null)", a.Country, "")
	want(t, "address postal_code", a.PostalCode, "0316")
	want(t, "address preferred", a.Preferred, true)
	want(t, "address start_date", a.StartDate, "2016-08-22")
	want(t, "email", u.Emails[0].EmailAddress, "dan@banan.com")
	want(t, "email description (null)", u.Emails[0].Description, "")
	if len(u.Notes)+len(u.Blocks)+len(u.Statistics)+len(u.ProxyFor) != 0 {
		t.Errorf("empty lists gave segments: %v %v %v %v", u.Notes, u.Blocks, u.Statistics, u.ProxyFor)
	}
}

// jsonUser writes a small Alma user object.
func jsonUser(id string) string {
	return fmt.Sprintf(`{"primary_id": %q, "first_name": "F%s", "last_name": "L%s", "user_group": {"value": "G", "desc": "Group"},
		"contact_info": {"email": [{"email_address": "%s@example.edu", "preferred": true, "email_type": [{"value": "school"}]}]}}`, id, id, id, id)
}

func primaryIDs(users []*patron.User) string {
	var ids []string
	for _, u := range users {
		ids = append(ids, u.PrimaryID)
	}
	return strings.Join(ids, ",")
}

func TestJSONShapes(t *testing.T) {
	f := sis.JSON(sis.Limits{})
	for _, c := range []struct {
		name, data, ids string
	}{
		{"one user", jsonUser("a"), "a"},
		{"an array of 3", "[" + jsonUser("a") + "," + jsonUser("b") + ",\n" + jsonUser("c") + "]", "a,b,c"},
		{"Alma's list", `{"user": [` + jsonUser("a") + "," + jsonUser("b") + `], "total_record_count": 2}`, "a,b"},
		{"Alma's list, count first", `{"total_record_count": 2, "link": null, "user": [` + jsonUser("a") + "," + jsonUser("b") + `]}`, "a,b"},
		{"Alma's list of one object", `{"user": ` + jsonUser("a") + `, "total_record_count": 1}`, "a"},
		{"Alma's empty list", `{"total_record_count": 0}`, ""},
		{"an empty array", "[]", ""},
		{"JSON lines", jsonUser("a") + "\n" + jsonUser("b") + "\n", "a,b"},
		{"with a byte order mark", "\uFEFF[" + jsonUser("a") + "]", "a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			recs, err := decodeRecords(t, f, c.data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			users := usersOf(t, f, c.data)
			want(t, "users", primaryIDs(users), c.ids)
			for i, r := range recs {
				want(t, "Ref", r.Ref, fmt.Sprintf("user %d", i+1))
				if !hasLabel(r.Labels, "user_group", "G", "Group") {
					t.Errorf("%s: labels %+v", r.Ref, r.Labels)
				}
				if len(r.User.Emails) != 1 || r.User.Emails[0].EmailAddress == "" {
					t.Errorf("%s: emails %+v", r.Ref, r.User.Emails)
				}
			}
		})
	}
}

func TestJSONDuplicatedKeyTakesItsLastValue(t *testing.T) {
	data := `{"primary_id": "a", "first_name": "First", "first_name": "Second", "last_name": "L",
		"user_group": {"value": "01", "desc": "One"}, "user_group": "02",
		"campus_code": {"value": "X", "desc": "Old", "value": "Y"},
		"status": "inactive", "status": "active",
		"contact_info": {"email": [{"email_address": "a@x.org"}], "phone": [{"phone_number": "1"}]},
		"contact_info": {"phone": [{"phone_number": "2", "preferred": true, "preferred": false}]},
		"user_identifier": [{"id_type": "BARCODE", "value": "1", "note": "old"}, {"value": "2"}],
		"user_identifier": [{"value": "3"}],
		"rs_library": [{"code": "R1"}], "rs_library": []}`
	u := usersOf(t, sis.JSON(sis.Limits{}), data)[0]
	want(t, "first_name", u.FirstName, "Second")
	want(t, "user_group", u.UserGroup, "02")
	want(t, "campus_code", u.CampusCode, "Y")
	want(t, "status", u.Status, "ACTIVE")
	want(t, "emails (the last contact_info has none)", len(u.Emails), 0)
	if len(u.Phones) != 1 {
		t.Fatalf("phones %+v, want the last contact_info's one", u.Phones)
	}
	want(t, "phone", u.Phones[0].PhoneNumber, "2")
	want(t, "phone preferred", u.Phones[0].Preferred, false)
	if len(u.Identifiers) != 1 {
		t.Fatalf("identifiers %+v, want the last list's one", u.Identifiers)
	}
	// Nothing of the first list's first identifier is left in it.
	want(t, "identifier", u.Identifiers[0], patron.Identifier{Segment: patron.Segment{SegmentType: patron.SegmentExternal}, Value: "3"})
	want(t, "rs_library", u.RSLibrary, "")
}

func TestJSONEveryField(t *testing.T) {
	data := `{"record_type": "staff", "primary_id": "p1", "first_name": "F", "middle_name": "M", "last_name": "L",
		"user_title": {"value": "Dr", "desc": "Doctor"}, "job_category": "JC", "job_description": "JD", "gender": "MALE",
		"user_group": "G", "campus_code": "C", "preferred_language": "fr", "birth_date": "2000-01-02",
		"expiry_date": "2031-02-03+02:00", "purge_date": "2032-03-04Z", "account_type": "external", "external_id": "SIS",
		"status": {"value": "Inactive"}, "pin_number": "9876", "full_name": "ignored", "pref_first_name": "ignored",
		"user_role": [{"status": {"value": "ACTIVE"}, "parameter": [{"type": {"value": "x"}}]}],
		"loans": {"value": "14"}, "fees": {"value": 1.5, "currency": "EUR"}, "requests": null, "is_researcher": false,
		"rs_library": [{"code": {"value": "RS1", "desc": null}}, {"code": "RS2"}],
		"contact_info": {"address": [{"line1": "1", "line2": "2", "line3": "3", "line4": "4", "line5": "5", "city": "Ci",
			"state_province": "St", "postal_code": "P", "country": {"value": "NOR", "desc": "Norway"}, "address_note": "AN",
			"start_date": "2020-01-01", "end_date": "2029-12-31Z", "preferred": true, "segment_type": "Internal",
			"address_type": [{"value": "home"}, "work", {"value": null}]}],
			"email": [{"email_address": "e@x.org", "description": "D", "preferred": true, "email_type": ["personal"]}],
			"phone": [{"phone_number": "1", "preferred": false, "preferred_sms": true, "phone_type": []}]},
		"user_identifier": [{"id_type": "UNIV_ID", "value": "U1", "note": "N", "status": "inactive", "segment_type": "Internal"}],
		"user_note": [{"note_type": {"value": "POPUP"}, "note_text": "T", "user_viewable": false, "popup_note": true,
			"created_by": "x", "created_date": "2020-01-01T00:00:00Z", "segment_type": "Internal"}],
		"user_block": [{"block_type": "LOAN", "block_description": "D1", "block_status": "inactive", "block_note": "BN",
			"expiry_date": "2019-12-18T14:36:48.659Z", "created_by": "x"}],
		"user_statistic": [{"statistic_category": {"value": "SC", "desc": "Cat"}, "category_type": {"value": "CT", "desc": "Type"},
			"statistic_note": "SN"}],
		"proxy_for_user": [{"primary_id": "sponsor", "full_name": "S P"}]}`
	recs, err := decodeRecords(t, sis.JSON(sis.Limits{}), data)
	if err != nil || len(recs) != 1 || recs[0].Err != nil {
		t.Fatalf("Decode: %v, %+v", err, recs)
	}
	u := recs[0].User
	seg := patron.Segment{SegmentType: patron.SegmentExternal}
	wantUser := &patron.User{
		RecordType: "STAFF", PrimaryID: "p1", FirstName: "F", MiddleName: "M", LastName: "L", UserTitle: "Dr",
		JobCategory: "JC", JobDescription: "JD", Gender: "MALE", UserGroup: "G", CampusCode: "C", PreferredLanguage: "fr",
		BirthDate: "2000-01-02", ExpiryDate: "2031-02-03", PurgeDate: "2032-03-04", AccountType: "EXTERNAL", ExternalID: "SIS",
		Status: "INACTIVE", PINNumber: "9876", RSLibrary: "RS1",
		Addresses: []patron.Address{{Segment: seg, Line1: "1", Line2: "2", Line3: "3", Line4: "4", Line5: "5", City: "Ci",
			StateProvince: "St", PostalCode: "P", Country: "NOR", AddressNote: "AN", StartDate: "2020-01-01", EndDate: "2029-12-31",
			Preferred: true, AddressTypes: patron.Codes{"home", "work"}}},
		Emails:      []patron.Email{{Segment: seg, EmailAddress: "e@x.org", Description: "D", Preferred: true, EmailTypes: patron.Codes{"personal"}}},
		Phones:      []patron.Phone{{Segment: seg, PhoneNumber: "1", PreferredSMS: true}},
		Identifiers: []patron.Identifier{{Segment: seg, IDType: "UNIV_ID", Value: "U1", Note: "N", Status: "INACTIVE"}},
		Notes:       []patron.Note{{Segment: seg, NoteType: "POPUP", NoteText: "T", PopupNote: true, Origin: patron.OriginExternal}},
		Blocks:      []patron.Block{{Segment: seg, BlockType: "LOAN", BlockDescription: "D1", BlockStatus: "INACTIVE", BlockNote: "BN", ExpiryDate: "2019-12-18"}},
		Statistics:  []patron.Statistic{{Segment: seg, StatisticCategory: "SC", CategoryType: "CT", StatisticNote: "SN"}},
		ProxyFor:    []patron.ProxyFor{{Segment: seg, PrimaryID: "sponsor"}},
	}
	if !reflect.DeepEqual(u, wantUser) {
		t.Errorf("user\n got %+v\nwant %+v", u, wantUser)
	}
	wantLabels := []sis.Label{
		{Table: "user_title", Code: "Dr", Desc: "Doctor"},
		{Table: "country", Code: "NOR", Desc: "Norway"},
		{Table: "statistic_category", Code: "SC", Desc: "Cat"},
		{Table: "category_type", Code: "CT", Desc: "Type"},
	}
	if !reflect.DeepEqual(recs[0].Labels, wantLabels) {
		t.Errorf("labels\n got %+v\nwant %+v", recs[0].Labels, wantLabels)
	}
}

func TestJSONBrokenUserAmongGoodOnes(t *testing.T) {
	data := "[" + jsonUser("a") + `,
		{"primary_id": "b", "first_name": 5, "last_name": "L"},
		{"primary_id": "c", "birth_date": "1990-13-01Z", "contact_info": {"email": "x@y.org"}},
		` + jsonUser("d") + `, 42, null,
		{"primary_id": "e", "user_group": ["x"], "user_note": [{"user_viewable": "yes"}]}, ` + jsonUser("f") + "]"
	recs, err := decodeRecords(t, sis.JSON(sis.Limits{}), data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(recs) != 8 {
		t.Fatalf("%d records, want 8", len(recs))
	}
	for i, r := range recs {
		want(t, "Ref", r.Ref, fmt.Sprintf("user %d", i+1))
		if (r.User == nil) == (r.Err == nil) {
			t.Errorf("%s: want a user or an error, got %+v", r.Ref, r)
		}
	}
	for _, i := range []int{0, 3, 7} {
		if recs[i].Err != nil {
			t.Errorf("%s: %v", recs[i].Ref, recs[i].Err)
		}
	}
	for i, parts := range map[int][]string{
		1: {"user 2", `"b"`, "first_name", "a number where text is expected"},
		2: {"user 3", `"c"`, "birth_date", "1990-13-01Z", "contact_info.email", "text where a list is expected"},
		4: {"user 5", "a number where a user object is expected"},
		5: {"user 6", "null where a user object is expected"},
		6: {"user 7", "user_group", "a list where a code is expected", "user_note[0].user_viewable"},
	} {
		if recs[i].Err == nil {
			t.Errorf("%s: no error", recs[i].Ref)
			continue
		}
		for _, p := range parts {
			if !strings.Contains(recs[i].Err.Error(), p) {
				t.Errorf("%s: error %q does not say %q", recs[i].Ref, recs[i].Err, p)
			}
		}
		if recs[i].Labels != nil {
			t.Errorf("%s: a rejected user has labels %+v", recs[i].Ref, recs[i].Labels)
		}
	}
}

func TestJSONNotJSONIsRefused(t *testing.T) {
	for name, data := range map[string]string{
		"text":          "primary_id,first_name\na,b\n",
		"xml":           `<?xml version="1.0"?><users><user/></users>`,
		"empty":         "",
		"blank":         " \n\t",
		"a number":      "42",
		"a string":      `"user"`,
		"cut short":     `{"primary_id": "a", "first_name": "F`,
		"unclosed list": `[` + jsonUser("a") + `, `,
		"a cut literal": "tru",
	} {
		t.Run(name, func(t *testing.T) {
			recs, err := decodeRecords(t, sis.JSON(sis.Limits{}), data)
			if err == nil {
				t.Fatalf("Decode accepted %q: %+v", data, recs)
			}
			if !strings.HasPrefix(err.Error(), "sis: json: ") {
				t.Errorf("error %q does not say it is the JSON format", err)
			}
			t.Log(err)
			if name == "unclosed list" {
				if len(recs) != 1 || recs[0].User == nil {
					t.Errorf("the user before the cut: %+v", recs)
				}
				return
			}
			if len(recs) != 0 {
				t.Errorf("emitted %+v", recs)
			}
		})
	}
}

// byteCounter counts the bytes read from it.
type byteCounter struct {
	r io.Reader
	n int64
}

func (c *byteCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestJSONLimits(t *testing.T) {
	limits := sis.Limits{MaxUserBytes: 4096, MaxDepth: 8}
	f := sis.JSON(limits)
	big := strings.Repeat("x", 5000)
	for _, c := range []struct {
		name, data, limit, what string
	}{
		{"a user in an array", "[" + jsonUser("a") + `, {"primary_id": "b", "user_note": [{"note_text": "` + big + `"}]}]`, "MaxUserBytes", "user 2"},
		{"a single user", `{"primary_id": "b", "ignored": "` + big + `"}`, "MaxUserBytes", "user 1"},
		{"a user in Alma's list", `{"user": [{"primary_id": "b", "job_description": "` + big + `"}]}`, "MaxUserBytes", "user 1"},
		{"the list around the users", `{"user": [], "link": "` + big + `"}`, "MaxUserBytes", "the list"},
		{"blank space between users", "[" + jsonUser("a") + strings.Repeat(" ", 5000) + "]", "MaxUserBytes", "user 2"},
		{"nesting in a user", `[{"primary_id": "a", "x": [[[[[[[[1]]]]]]]]}]`, "MaxDepth", "user 1"},
		{"nesting around users", `[[[[[[[[[]]]]]]]]]`, "MaxDepth", "user 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeRecords(t, f, c.data)
			var le *sis.LimitError
			if !errors.As(err, &le) {
				t.Fatalf("Decode: %v, want a LimitError", err)
			}
			want(t, "Limit", le.Limit, c.limit)
			if !strings.Contains(err.Error(), c.limit) || !strings.Contains(err.Error(), c.what) {
				t.Errorf("error %q does not name %s and %s", err, c.limit, c.what)
			}
		})
	}

	t.Run("users within the limits, a list beyond it", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(`{"user": [`)
		for i := range 300 {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(jsonUser(fmt.Sprint(i)))
		}
		b.WriteString(`], "total_record_count": 300}`)
		if b.Len() < 10*4096 {
			t.Fatalf("the file is only %d bytes", b.Len())
		}
		if users := usersOf(t, f, b.String()); len(users) != 300 {
			t.Errorf("%d users, want 300", len(users))
		}
	})

	t.Run("a huge value is not read to its end", func(t *testing.T) {
		in := &byteCounter{r: io.MultiReader(strings.NewReader(`[{"primary_id": "a", "note": "`), endless('x'))}
		err := f.Decode(context.Background(), in, func(sis.Record) error { return nil })
		var le *sis.LimitError
		if !errors.As(err, &le) || le.Limit != "MaxUserBytes" {
			t.Fatalf("Decode: %v, want MaxUserBytes", err)
		}
		if in.n > 1<<20 {
			t.Errorf("read %d bytes of an endless value with a limit of 4096", in.n)
		}
	})
}

// endless is a reader that never ends.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

func TestJSONStopsWhenEmitFails(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := sis.JSON(sis.Limits{}).Decode(context.Background(), strings.NewReader(`{"user": [`+jsonUser("a")+","+jsonUser("b")+"]}"), func(sis.Record) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Errorf("Decode: %v after %d records, want stop after 1", err, n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = sis.JSON(sis.Limits{}).Decode(ctx, strings.NewReader("["+jsonUser("a")+"]"), func(sis.Record) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Decode with a cancelled context: %v", err)
	}
}

func TestJSONReadErrorStopsTheFile(t *testing.T) {
	boom := errors.New("disk on fire")
	in := io.MultiReader(strings.NewReader("["+jsonUser("a")+", "), iotest.ErrReader(boom))
	n := 0
	err := sis.JSON(sis.Limits{}).Decode(context.Background(), in, func(sis.Record) error { n++; return nil })
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("Decode: %v after %d records, want %v after 1", err, n, boom)
	}
}

func TestJSONIsRegistered(t *testing.T) {
	f, err := sis.BuiltinFormats().Detect("users-2024.JSON", sis.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want(t, "Name", f.Name(), "json")
}

func FuzzJSON(f *testing.F) {
	if dir := conformance.Find(); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("[" + jsonUser("a") + `, 1, null, {"primary_id": "b", "birth_date": "x"}]`))
	f.Add([]byte(`{"user": [` + jsonUser("a") + `], "total_record_count": 1}`))
	f.Add([]byte(`{"primary_id": "a", "contact_info": {"phone": [{"phone_type": [{"value": "x", "desc": null}]}]}}`))
	f.Add([]byte(`[[[[{}]]]]`))
	f.Add([]byte("\uFEFF{}{}"))
	limits := []sis.Limits{{}, {MaxUserBytes: 512, MaxDepth: 6}}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range limits {
			_ = sis.JSON(l).Decode(context.Background(), bytes.NewReader(data), func(r sis.Record) error {
				if (r.User == nil) == (r.Err == nil) {
					t.Fatalf("%s: want a user or an error, got %+v", r.Ref, r)
				}
				if !strings.HasPrefix(r.Ref, "user ") {
					t.Fatalf("Ref %q", r.Ref)
				}
				if r.User != nil {
					allExternal(t, r.Ref, r.User)
				}
				return nil
			})
		}
	})
}

// heapWatch samples the heap in use while a decode runs.
type heapWatch struct {
	n    int
	peak uint64
}

func (h *heapWatch) sample() {
	h.n++
	if h.n%2500 != 0 {
		return
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	h.peak = max(h.peak, m.HeapInuse)
}

const memoryUsers = 50_000

// memoryTest feeds memoryUsers users written by write through a pipe to
// f, and checks that the heap stays small whatever their number.
func memoryTest(t *testing.T, f sis.Format, write func(w io.Writer) error) {
	pr, pw := io.Pipe()
	written := &byteCounter{}
	go func() {
		cw := &countingWriter{w: pw}
		err := write(cw)
		written.n = cw.n
		pw.CloseWithError(err)
	}()
	runtime.GC()
	h := &heapWatch{}
	got := 0
	err := f.Decode(context.Background(), pr, func(r sis.Record) error {
		if r.Err != nil {
			return r.Err
		}
		got++
		h.sample()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want(t, "users", got, memoryUsers)
	t.Logf("%d users, %d MiB read, peak heap in use %d MiB", got, written.n>>20, h.peak>>20)
	if h.peak > 64<<20 {
		t.Errorf("the heap grew to %d MiB", h.peak>>20)
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func TestJSONMemoryDoesNotGrowWithUsers(t *testing.T) {
	memoryTest(t, sis.JSON(sis.Limits{}), func(w io.Writer) error {
		if _, err := io.WriteString(w, `{"user": [`); err != nil {
			return err
		}
		note := strings.Repeat("n", 1000)
		for i := range memoryUsers {
			sep := ","
			if i == 0 {
				sep = ""
			}
			_, err := fmt.Fprintf(w, `%s{"primary_id": "u%06d", "first_name": "F", "last_name": "L", "user_group": {"value": "G%d", "desc": "Group %d"},
				"birth_date": "2000-01-01Z", "contact_info": {"email": [{"email_address": "u%06d@example.edu", "preferred": true, "email_type": [{"value": "school", "desc": "School"}]}],
				"phone": [{"phone_number": "%d", "phone_type": [{"value": "mobile"}]}]},
				"user_identifier": [{"id_type": {"value": "BARCODE"}, "value": "B%d", "status": "ACTIVE"}],
				"user_note": [{"note_text": "%s", "user_viewable": false}]}`, sep, i, i%10, i%10, i, i, i, note)
			if err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(w, `], "total_record_count": %d}`, memoryUsers)
		return err
	})
}
