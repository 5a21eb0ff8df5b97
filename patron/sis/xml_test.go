package sis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/patronkit/patronkit/internal/conformance"
	"github.com/patronkit/patronkit/patron"
)

// decodeAll decodes r with f and returns every record emitted.
func decodeAll(t testing.TB, f Format, r io.Reader) ([]Record, error) {
	t.Helper()
	var recs []Record
	err := f.Decode(context.Background(), r, func(rec Record) error {
		recs = append(recs, rec)
		return nil
	})
	return recs, err
}

// decodeString decodes an XML document that must be readable as a whole.
func decodeString(t testing.TB, doc string, l Limits) []Record {
	t.Helper()
	recs, err := decodeAll(t, XML(l), strings.NewReader(doc))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return recs
}

// lineOf is the line of doc where marker first occurs.
func lineOf(t testing.TB, doc, marker string) int {
	t.Helper()
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatalf("marker %q not in the document", marker)
	}
	return strings.Count(doc[:i], "\n") + 1
}

func eq[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func hasLabel(t testing.TB, rec Record, want Label) {
	t.Helper()
	if !slices.Contains(rec.Labels, want) {
		t.Errorf("%s: no label %+v in %+v", rec.Ref, want, rec.Labels)
	}
}

// allExternal checks that every segment of the user is External.
func allExternal(t testing.TB, rec Record) {
	t.Helper()
	u := rec.User
	var segs []patron.Segment
	for _, s := range u.Identifiers {
		segs = append(segs, s.Segment)
	}
	for _, s := range u.Addresses {
		segs = append(segs, s.Segment)
	}
	for _, s := range u.Emails {
		segs = append(segs, s.Segment)
	}
	for _, s := range u.Phones {
		segs = append(segs, s.Segment)
	}
	for _, s := range u.Notes {
		segs = append(segs, s.Segment)
		eq(t, rec.Ref+" note origin", s.Origin, patron.OriginExternal)
	}
	for _, s := range u.Blocks {
		segs = append(segs, s.Segment)
	}
	for _, s := range u.Statistics {
		segs = append(segs, s.Segment)
	}
	for _, s := range u.ProxyFor {
		segs = append(segs, s.Segment)
	}
	for i, s := range segs {
		eq(t, fmt.Sprintf("%s segment %d type", rec.Ref, i), s.SegmentType, patron.SegmentExternal)
	}
}

// TestConformanceXML reads the real SIS files in shared/conformance/alma
// and checks what Alma would load from each.
func TestConformanceXML(t *testing.T) {
	dir := conformance.AlmaDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no XML files in %s (%v)", dir, err)
	}
	checks := map[string]func(t *testing.T, recs []Record){
		"mit_student_patrons.xml":       checkMITStudents,
		"mit_staff_patrons.xml":         checkMITStaff,
		"ucb_sis_expected_xml_3.xml":    checkUCB,
		"exlibris_doc_example_user.xml": checkExLibrisExample,
	}
	seen := map[string]bool{}
	for _, path := range files {
		name := filepath.Base(path)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			recs, err := decodeAll(t, XML(Limits{}), f)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			for _, rec := range recs {
				if rec.Err != nil || rec.User == nil {
					t.Fatalf("%s: %v", rec.Ref, rec.Err)
				}
				allExternal(t, rec)
			}
			check, ok := checks[name]
			if !ok {
				t.Logf("%d users read; no file-specific expectations", len(recs))
				return
			}
			check(t, recs)
		})
	}
	for name := range checks {
		if !seen[name] {
			t.Errorf("conformance file %s is missing from %s", name, dir)
		}
	}
}

func checkMITStudents(t *testing.T, recs []Record) {
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	r := recs[0]
	u := r.User
	eq(t, "ref", r.Ref, "line 3")
	eq(t, "primary_id", u.PrimaryID, "STUDENT_KRB_NAME@MIT.EDU")
	eq(t, "record_type", u.RecordType, patron.RecordPublic)
	eq(t, "first_name", u.FirstName, "Jane")
	eq(t, "middle_name", u.MiddleName, "Janeth")
	eq(t, "last_name", u.LastName, "Doe")
	eq(t, "user_group", u.UserGroup, "32")
	eq(t, "user_title", u.UserTitle, "")
	eq(t, "campus_code", u.CampusCode, "")
	eq(t, "preferred_language", u.PreferredLanguage, "en")
	eq(t, "expiry_date", u.ExpiryDate, "2023-09-01")
	eq(t, "purge_date", u.PurgeDate, "2025-09-01")
	eq(t, "account_type", u.AccountType, patron.AccountExternal)
	eq(t, "external_id", u.ExternalID, "SIS")
	eq(t, "status", u.Status, patron.StatusActive)
	if len(u.Addresses) != 1 {
		t.Fatalf("%d addresses, want 1", len(u.Addresses))
	}
	a := u.Addresses[0]
	eq(t, "address preferred", a.Preferred, true)
	eq(t, "line1", a.Line1, "100 Smith St")
	eq(t, "line2", a.Line2, "")
	eq(t, "line3", a.Line3, "Apt 34")
	eq(t, "city", a.City, "Cambridge")
	eq(t, "state_province", a.StateProvince, "MA")
	eq(t, "postal_code", a.PostalCode, "00000")
	eq(t, "country", a.Country, "")
	eq(t, "address_note", a.AddressNote, "User Address Type: Mailing address")
	eq(t, "address_types", strings.Join(a.AddressTypes, ","), "work")
	if len(u.Emails) != 1 {
		t.Fatalf("%d emails, want 1", len(u.Emails))
	}
	eq(t, "email", u.Emails[0].EmailAddress, "STUDENT_KRB_NAME@MIT.EDU")
	eq(t, "email preferred", u.Emails[0].Preferred, true)
	eq(t, "email_types", strings.Join(u.Emails[0].EmailTypes, ","), "work")
	if len(u.Phones) != 2 {
		t.Fatalf("%d phones, want 2", len(u.Phones))
	}
	eq(t, "phone 1", u.Phones[0].PhoneNumber, "333-333-3333")
	eq(t, "phone 1 preferred", u.Phones[0].Preferred, true)
	eq(t, "phone 1 types", strings.Join(u.Phones[0].PhoneTypes, ","), "office")
	eq(t, "phone 2", u.Phones[1].PhoneNumber, "555-555-5555")
	eq(t, "phone 2 preferred", u.Phones[1].Preferred, false)
	eq(t, "phone 2 sms", u.Phones[1].PreferredSMS, false)
	if len(u.Identifiers) != 2 {
		t.Fatalf("%d identifiers, want 2", len(u.Identifiers))
	}
	eq(t, "id 1", u.Identifiers[0], patron.Identifier{Segment: external, IDType: "02", Value: "333333333", Status: "ACTIVE"})
	eq(t, "id 2", u.Identifiers[1], patron.Identifier{Segment: external, IDType: "01", Value: "33333333333333", Status: "ACTIVE"})
	if len(u.Statistics) != 1 {
		t.Fatalf("%d statistics, want 1", len(u.Statistics))
	}
	eq(t, "statistic", u.Statistics[0], patron.Statistic{Segment: external, StatisticCategory: "SN", CategoryType: "DEPT"})
	eq(t, "blocks+notes+proxies", len(u.Blocks)+len(u.Notes)+len(u.ProxyFor), 0)
	hasLabel(t, r, Label{"preferred_language", "en", "English"})
	hasLabel(t, r, Label{"id_type", "02", "MIT ID"})
	hasLabel(t, r, Label{"phone_type", "home", "Home"})
	hasLabel(t, r, Label{"category_type", "DEPT", "Department"})
	for _, l := range r.Labels {
		if l.Desc == "" || l.Table == "cataloger_level" || l.Table == "scope" || l.Table == "role_type" {
			t.Errorf("unexpected label %+v (empty desc, or a field patron.User has not)", l)
		}
	}

	// The second user has no names and no user group: it still parses;
	// validation rejects it later.
	r = recs[1]
	u = r.User
	eq(t, "ref 2", r.Ref, "line 98")
	eq(t, "primary_id 2", u.PrimaryID, "2STUDENT_KRB_NAME@MIT.EDU")
	eq(t, "first_name 2", u.FirstName, "")
	eq(t, "middle_name 2", u.MiddleName, "")
	eq(t, "last_name 2", u.LastName, "")
	eq(t, "user_group 2", u.UserGroup, "")
	eq(t, "emails 2", len(u.Emails), 0)
	eq(t, "phones 2", len(u.Phones), 0)
	eq(t, "line1 2", u.Addresses[0].Line1, "NO ADDRESS ON FILE IN DATA WAREHOUSE")
	eq(t, "identifiers 2", len(u.Identifiers), 1)
}

func checkMITStaff(t *testing.T, recs []Record) {
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	r := recs[0]
	u := r.User
	eq(t, "primary_id", u.PrimaryID, "STAFF_KRB_NAME@MIT.EDU")
	eq(t, "first_name", u.FirstName, "Nancy")
	eq(t, "middle_name", u.MiddleName, "")
	eq(t, "last_name", u.LastName, "Drew")
	eq(t, "user_group", u.UserGroup, "27")
	eq(t, "gender", u.Gender, "")
	hasLabel(t, r, Label{"user_group", "27", "Staff - Lincoln Labs"})
	// &amp; in a desc attribute is decoded.
	hasLabel(t, r, Label{"statistic_category", "NK", "LL-Homeland Protection & Air Traffic Con"})
	eq(t, "emails", len(u.Emails), 1)
	eq(t, "phones", len(u.Phones), 1)
	eq(t, "statistic", u.Statistics[0].StatisticCategory, "NK")

	r = recs[1]
	u = r.User
	eq(t, "ref 2", r.Ref, "line 93")
	eq(t, "primary_id 2", u.PrimaryID, "2STAFF_KRB_NAME@MIT.EDU")
	eq(t, "first_name 2", u.FirstName, "")
	eq(t, "user_group 2", u.UserGroup, "")
	// <emails /> and <phones /> give none.
	eq(t, "emails 2", len(u.Emails), 0)
	eq(t, "phones 2", len(u.Phones), 0)
	eq(t, "address 2", u.Addresses[0].Line1, "NO ADDRESS ON FILE IN DATA WAREHOUSE")
	hasLabel(t, r, Label{"statistic_category", "ZQ", "Unknown"})
	for _, l := range r.Labels {
		if l.Table == "user_group" {
			t.Errorf("label %+v from an empty user_group", l)
		}
	}
}

func checkUCB(t *testing.T, recs []Record) {
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	r := recs[0]
	u := r.User
	eq(t, "ref", r.Ref, "line 3")
	eq(t, "primary_id", u.PrimaryID, "10162050")
	eq(t, "names", u.FirstName+"|"+u.MiddleName+"|"+u.LastName, "Deirdra|Andre|Forte")
	eq(t, "job_description", u.JobDescription, "Epidemiology PhD")
	eq(t, "user_group", u.UserGroup, "GRADSTUD")
	eq(t, "campus_code", u.CampusCode, "UCB_Campus")
	// Dates without Z.
	eq(t, "expiry_date", u.ExpiryDate, "2023-10-31")
	eq(t, "purge_date", u.PurgeDate, "2024-10-31")
	eq(t, "account_type", u.AccountType, "EXTERNAL")
	eq(t, "labels", len(r.Labels), 0)
	// segment_type="Internal" in the file: still External (checked for
	// every file by allExternal); the addresses are read all the same.
	if len(u.Addresses) != 2 {
		t.Fatalf("%d addresses, want 2", len(u.Addresses))
	}
	eq(t, "address 1", u.Addresses[0].Line1+"|"+u.Addresses[0].Line2, "6626 CLAREMONT AVE|CAMP")
	eq(t, "address 1 preferred", u.Addresses[0].Preferred, true)
	eq(t, "address 1 start", u.Addresses[0].StartDate, "")
	eq(t, "address 2", u.Addresses[1].Line1, "6626 CLAREMONT AVENU")
	eq(t, "address 2 types", strings.Join(u.Addresses[1].AddressTypes, ","), "home")
	eq(t, "email", u.Emails[0].EmailAddress, "deirdra.wilson@berkeley.edu")
	eq(t, "phone preferred", u.Phones[0].Preferred, false)
	eq(t, "identifier", u.Identifiers[0], patron.Identifier{Segment: external, IDType: "UNIV_ID", Value: "114278", Status: "ACTIVE"})
	eq(t, "second user", recs[1].User.PrimaryID, "10162000")
	eq(t, "second ref", recs[1].Ref, "line 77")
}

func checkExLibrisExample(t *testing.T, recs []Record) {
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1 (the root is the <user>)", len(recs))
	}
	r := recs[0]
	u := r.User
	eq(t, "ref", r.Ref, "line 2")
	eq(t, "primary_id", u.PrimaryID, "johns")
	eq(t, "names", u.FirstName+"|"+u.MiddleName+"|"+u.LastName, "John||Smith")
	eq(t, "pin_number", u.PINNumber, "")
	eq(t, "job_category", u.JobCategory, "Cataloger")
	eq(t, "job_description", u.JobDescription, "The best cataloger")
	eq(t, "gender", u.Gender, "MALE")
	eq(t, "user_group", u.UserGroup, "08")
	eq(t, "campus_code", u.CampusCode, "Main")
	eq(t, "birth_date", u.BirthDate, "1979-01-11")
	// The user's own expiry, not a role's.
	eq(t, "expiry_date", u.ExpiryDate, "2030-01-16")
	eq(t, "purge_date", u.PurgeDate, "2021-01-20")
	eq(t, "account_type", u.AccountType, patron.AccountInternal)
	eq(t, "status", u.Status, "ACTIVE")
	hasLabel(t, r, Label{"user_group", "08", "Staff"})
	hasLabel(t, r, Label{"campus_code", "Main", "Main Campus"})
	hasLabel(t, r, Label{"gender", "MALE", "Male"})
	hasLabel(t, r, Label{"block_description", "02-GLOBAL", "Block (02)(GLOBAL)"})

	if len(u.Addresses) != 1 {
		t.Fatalf("%d addresses, want 1", len(u.Addresses))
	}
	a := u.Addresses[0]
	eq(t, "address", a.Line1+"|"+a.Line2+"|"+a.City, "Main Street 1|Nice building near the corner|London")
	eq(t, "address preferred (no attribute)", a.Preferred, false)
	eq(t, "start_date", a.StartDate, "2013-12-26")
	eq(t, "address_types", strings.Join(a.AddressTypes, ","), "home")
	eq(t, "email", u.Emails[0].EmailAddress, "johns@mylib.org")
	eq(t, "email types", strings.Join(u.Emails[0].EmailTypes, ","), "personal")
	if len(u.Phones) != 1 {
		t.Fatalf("%d phones, want 1", len(u.Phones))
	}
	eq(t, "phone", u.Phones[0].PhoneNumber, "123456789")
	eq(t, "phone preferred", u.Phones[0].Preferred, true)
	eq(t, "phone types", strings.Join(u.Phones[0].PhoneTypes, ","), "home,office")
	if len(u.Identifiers) != 1 {
		t.Fatalf("%d identifiers, want 1", len(u.Identifiers))
	}
	eq(t, "identifier", u.Identifiers[0], patron.Identifier{Segment: external, IDType: "02", Value: "johns02"})
	hasLabel(t, r, Label{"id_type", "02", "User ID"})
	if len(u.Blocks) != 1 {
		t.Fatalf("%d blocks, want 1", len(u.Blocks))
	}
	eq(t, "block", u.Blocks[0], patron.Block{Segment: external, BlockType: "GENERAL", BlockDescription: "02-GLOBAL",
		BlockStatus: "ACTIVE", BlockNote: "Slept and snored in the library"})
	if len(u.Notes) != 1 {
		t.Fatalf("%d notes, want 1", len(u.Notes))
	}
	eq(t, "note", u.Notes[0], patron.Note{Segment: external, NoteType: "ADDRESS", NoteText: "His address was changed a month ago",
		UserViewable: true, Origin: patron.OriginExternal})
	if len(u.Statistics) != 1 {
		t.Fatalf("%d statistics, want 1", len(u.Statistics))
	}
	eq(t, "statistic", u.Statistics[0], patron.Statistic{Segment: external, StatisticCategory: "Graduate", StatisticNote: "With Honors"})
}

// fullUser has every field patron.User has, some in odd spellings.
const fullUser = `<?xml version="1.0"?>
<!-- written by hand -->
<!DOCTYPE users [ <!ELEMENT users ANY> ]>
<users total_record_count="1">
  <user link="https://example.org/users/x">
    <proxy_for_users>
      <proxy_for_user link="x"><primary_id>sponsor1</primary_id><full_name>S One</full_name><expiry_date>2026-01-31Z</expiry_date></proxy_for_user>
    </proxy_for_users>
    <record_type desc="Staff">staff</record_type>
    <primary_id> x&amp;y </primary_id>
    <first_name><![CDATA[Ann <the> Great]]></first_name>
    <middle_name>M&#233;lanie</middle_name>
    <last_name>O&apos;Brien</last_name>
    <user_title desc="Doctor">DR</user_title>
    <job_category desc="Librarian &amp; archivist">LIB</job_category>
    <job_description>Keeper</job_description>
    <gender desc="Female">FEMALE</gender>
    <user_group desc="Faculty">FAC</user_group>
    <campus_code desc="North">N</campus_code>
    <preferred_language desc="French">fr</preferred_language>
    <birth_date>1980-02-29+02:00</birth_date>
    <expiry_date>2030-12-31</expiry_date>
    <purge_date>2031-12-31Z</purge_date>
    <account_type>external</account_type>
    <external_id>SIS_PROFILE</external_id>
    <status desc="Inactive">Inactive</status>
    <pin_number>1234</pin_number>
    <rs_libraries>
      <rs_library><code desc="Main library">MAIN</code></rs_library>
      <rs_library><code>SECOND</code></rs_library>
    </rs_libraries>
    <contact_info>
      <addresses>
        <address preferred="TRUE" segment_type="Internal">
          <line1>1 Main St</line1><line2>b</line2><line3>c</line3><line4>d</line4><line5>e</line5>
          <city>Springfield</city><state_province>IL</state_province><postal_code>62701</postal_code>
          <country desc="United States">USA</country>
          <address_note>note</address_note>
          <start_date>2020-01-01</start_date><end_date>2029-01-01Z</end_date>
          <address_types><address_type desc="Home">home</address_type><address_type/><address_type>work</address_type></address_types>
        </address>
      </addresses>
      <emails>
        <email preferred="False"><email_address>a@example.org</email_address><description>old</description>
          <email_types><email_type>personal</email_type></email_types></email>
        <email preferred="1"><email_address>b@example.org</email_address></email>
      </emails>
      <phones>
        <phone preferred="" preferred_sms="true" segment_type="Whatever"><phone_number>555</phone_number>
          <phone_types><phone_type>mobile</phone_type></phone_types></phone>
      </phones>
    </contact_info>
    <user_identifiers>
      <user_identifier segment_type="Internal"><id_type desc="Barcode">BARCODE</id_type><value>B1</value><note>lost once</note><status>inactive</status></user_identifier>
    </user_identifiers>
    <user_blocks>
      <user_block><block_type desc="General">GENERAL</block_type><block_description>LOST</block_description>
        <block_status>active</block_status><block_note>n</block_note><created_by>admin</created_by>
        <created_date>2019-01-01T00:00:00Z</created_date><expiry_date>2019-12-18T14:36:48.659Z</expiry_date></user_block>
    </user_blocks>
    <user_notes>
      <user_note segment_type="Internal"><note_type>CIRC</note_type><note_text>Ring twice</note_text>
        <user_viewable>false</user_viewable><popup_note>TRUE</popup_note><created_by>x</created_by></user_note>
    </user_notes>
    <user_statistics>
      <user_statistic><statistic_category desc="Graduate">GRAD</statistic_category><category_type>LEVEL</category_type><statistic_note>hon</statistic_note></user_statistic>
    </user_statistics>
    <user_roles><user_role><status>ACTIVE</status><expiry_date>not a date, but ignored</expiry_date></user_role></user_roles>
    <pref_first_name>ignored</pref_first_name>
    <web_site_url/>
    <unknown><nested deeply="yes"><primary_id>not this one</primary_id></nested></unknown>
  </user>
</users>
`

func TestXMLEveryField(t *testing.T) {
	recs := decodeString(t, fullUser, Limits{})
	if len(recs) != 1 || recs[0].Err != nil {
		t.Fatalf("records %+v", recs)
	}
	r := recs[0]
	u := r.User
	allExternal(t, r)
	eq(t, "ref", r.Ref, fmt.Sprintf("line %d", lineOf(t, fullUser, "<user link")))
	eq(t, "record_type", u.RecordType, "STAFF")
	eq(t, "primary_id", u.PrimaryID, "x&y")
	eq(t, "first_name", u.FirstName, "Ann <the> Great")
	eq(t, "middle_name", u.MiddleName, "Mélanie")
	eq(t, "last_name", u.LastName, "O'Brien")
	eq(t, "user_title", u.UserTitle, "DR")
	eq(t, "job_category", u.JobCategory, "LIB")
	eq(t, "job_description", u.JobDescription, "Keeper")
	eq(t, "gender", u.Gender, "FEMALE")
	eq(t, "user_group", u.UserGroup, "FAC")
	eq(t, "campus_code", u.CampusCode, "N")
	eq(t, "preferred_language", u.PreferredLanguage, "fr")
	eq(t, "birth_date", u.BirthDate, "1980-02-29")
	eq(t, "expiry_date", u.ExpiryDate, "2030-12-31")
	eq(t, "purge_date", u.PurgeDate, "2031-12-31")
	eq(t, "account_type", u.AccountType, "EXTERNAL")
	eq(t, "external_id", u.ExternalID, "SIS_PROFILE")
	eq(t, "status", u.Status, "INACTIVE")
	eq(t, "pin_number", u.PINNumber, "1234")
	eq(t, "rs_library", u.RSLibrary, "MAIN")

	eq(t, "addresses", len(u.Addresses), 1)
	eq(t, "address", fmt.Sprint(u.Addresses[0]), fmt.Sprint(patron.Address{Segment: external,
		Line1: "1 Main St", Line2: "b", Line3: "c", Line4: "d", Line5: "e", City: "Springfield", StateProvince: "IL",
		PostalCode: "62701", Country: "USA", AddressNote: "note", StartDate: "2020-01-01", EndDate: "2029-01-01",
		AddressTypes: patron.Codes{"home", "work"}, Preferred: true}))
	eq(t, "emails", len(u.Emails), 2)
	eq(t, "email 1", fmt.Sprint(u.Emails[0]), fmt.Sprint(patron.Email{Segment: external, EmailAddress: "a@example.org",
		Description: "old", EmailTypes: patron.Codes{"personal"}}))
	eq(t, "email 2 preferred", u.Emails[1].Preferred, true)
	eq(t, "phone", fmt.Sprint(u.Phones), fmt.Sprint([]patron.Phone{{Segment: external, PhoneNumber: "555",
		PhoneTypes: patron.Codes{"mobile"}, PreferredSMS: true}}))
	eq(t, "identifier", fmt.Sprint(u.Identifiers), fmt.Sprint([]patron.Identifier{{Segment: external,
		IDType: "BARCODE", Value: "B1", Note: "lost once", Status: "INACTIVE"}}))
	eq(t, "block", fmt.Sprint(u.Blocks), fmt.Sprint([]patron.Block{{Segment: external, BlockType: "GENERAL",
		BlockDescription: "LOST", BlockStatus: "ACTIVE", BlockNote: "n", ExpiryDate: "2019-12-18"}}))
	eq(t, "note", fmt.Sprint(u.Notes), fmt.Sprint([]patron.Note{{Segment: external, NoteType: "CIRC",
		NoteText: "Ring twice", PopupNote: true, Origin: patron.OriginExternal}}))
	eq(t, "statistic", fmt.Sprint(u.Statistics), fmt.Sprint([]patron.Statistic{{Segment: external,
		StatisticCategory: "GRAD", CategoryType: "LEVEL", StatisticNote: "hon"}}))
	eq(t, "proxy", fmt.Sprint(u.ProxyFor), fmt.Sprint([]patron.ProxyFor{{Segment: external,
		PrimaryID: "sponsor1", ExpiryDate: "2026-01-31"}}))

	want := []Label{
		{"record_type", "STAFF", "Staff"}, {"user_title", "DR", "Doctor"},
		{"job_category", "LIB", "Librarian & archivist"}, {"gender", "FEMALE", "Female"},
		{"user_group", "FAC", "Faculty"}, {"campus_code", "N", "North"},
		{"preferred_language", "fr", "French"}, {"status", "INACTIVE", "Inactive"},
		{"rs_library", "MAIN", "Main library"}, {"country", "USA", "United States"},
		{"address_type", "home", "Home"}, {"id_type", "BARCODE", "Barcode"},
		{"block_type", "GENERAL", "General"}, {"statistic_category", "GRAD", "Graduate"},
	}
	eq(t, "labels", fmt.Sprint(r.Labels), fmt.Sprint(want))
}

// malformed holds good users and bad ones; lines matter.
const malformed = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" +
	"<users>\n" +
	"<user><primary_id>good1</primary_id></user>\n" +
	"<user>\n" +
	"  <primary_id>control</primary_id>\n" +
	"  <first_name>Bad\x01Char</first_name>\n" +
	"</user>\n" +
	"<user><primary_id>good2</primary_id></user>\n" +
	"<user>\n" +
	"  <primary_id>unclosed-tag</primary_id>\n" +
	"  <first_name>Jane\n" +
	"</user>\n" +
	"<user>\n" +
	"  <primary_id>bad-date</primary_id>\n" +
	"  <expiry_date>2023-02-30</expiry_date>\n" +
	"</user>\n" +
	"<user>\n" +
	"  <primary_id>bad-bool</primary_id>\n" +
	"  <contact_info><emails><email preferred=\"yes\"><email_address>a@b.c</email_address></email></emails></contact_info>\n" +
	"</user>\n" +
	"<user>\n" +
	"  <primary_id>bad-entity</primary_id><first_name>A&nbsp;B</first_name>\n" +
	"</user>\n" +
	"<user><primary_id>good3</primary_id></user>\n" +
	"<user>\n" +
	"  <primary_id>never-closed</primary_id>\n"

// wantRecord is what checkRecords expects of one record: a user with that
// primary id if errText is empty, else an error naming errLine and
// holding errText.
type wantRecord struct {
	line      int
	primaryID string
	errLine   int
	errText   string
}

func checkRecords(t *testing.T, recs []Record, want []wantRecord) {
	t.Helper()
	if len(recs) != len(want) {
		for _, r := range recs {
			t.Logf("%s: user %v err %v", r.Ref, r.User != nil, r.Err)
		}
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, w := range want {
		r := recs[i]
		eq(t, fmt.Sprintf("record %d ref", i), r.Ref, fmt.Sprintf("line %d", w.line))
		if w.errText == "" {
			if r.Err != nil || r.User == nil {
				t.Errorf("%s: want user %s, got error %v", r.Ref, w.primaryID, r.Err)
				continue
			}
			eq(t, r.Ref+" primary_id", r.User.PrimaryID, w.primaryID)
			continue
		}
		if r.Err == nil || r.User != nil {
			t.Errorf("%s: want an error with %q, got user %+v", r.Ref, w.errText, r.User)
			continue
		}
		msg := r.Err.Error()
		if !strings.Contains(msg, w.errText) || !strings.Contains(msg, fmt.Sprintf("line %d", w.errLine)) {
			t.Errorf("%s: error %q, want line %d and %q", r.Ref, msg, w.errLine, w.errText)
		}
	}
}

func TestXMLMalformedUsersAmongGoodOnes(t *testing.T) {
	doc := malformed
	lines := func(marker string) int { return lineOf(t, doc, marker) }
	want := []wantRecord{
		{line: 3, primaryID: "good1"},
		{line: 4, errLine: lines("Bad\x01"), errText: "illegal character code U+0001"},
		{line: 8, primaryID: "good2"},
		{line: 9, errLine: lines("</user>\n<user>\n  <primary_id>bad-date"), errText: "element <first_name> closed by </user>"},
		{line: 13, errLine: lines("2023-02-30"), errText: `expiry_date: "2023-02-30" is not a date`},
		{line: 17, errLine: lines(`preferred="yes"`), errText: `preferred="yes"`},
		{line: 21, errLine: lines("&nbsp;"), errText: "invalid character entity &nbsp;"},
		{line: 24, primaryID: "good3"},
		{line: 25, errLine: 25, errText: "<user> is not closed: no </user> before the end of the file"},
	}
	t.Run("cut at the end of the file", func(t *testing.T) {
		checkRecords(t, decodeString(t, doc, Limits{}), want)
	})
	t.Run("closed root", func(t *testing.T) {
		doc := doc + "</users>\n"
		want := slices.Clone(want)
		want[len(want)-1].errText = fmt.Sprintf("no </user> before </users> at line %d", lineOf(t, doc, "</users>"))
		checkRecords(t, decodeString(t, doc, Limits{}), want)
	})
}

func TestXMLUserNotClosedBeforeTheNext(t *testing.T) {
	doc := "<userRecords>\n" +
		"<user><primary_id>a</primary_id>\n" +
		"<user><primary_id>b</primary_id></user>\n" +
		"<user><primary_id>c</primary_id><first_name>x</first_name\n" +
		"<user><primary_id>d</primary_id></user>\n" +
		"</userRecords>"
	checkRecords(t, decodeString(t, doc, Limits{}), []wantRecord{
		{line: 2, errLine: 2, errText: "no </user> before the next <user> at line 3"},
		{line: 3, primaryID: "b"},
		{line: 4, errLine: 4, errText: "no </user> before the next <user> at line 5"},
		{line: 5, primaryID: "d"},
	})
}

func TestXMLBrokenMarkupResynchronizes(t *testing.T) {
	doc := "<users>\n" +
		"<user><primary_id a=\"unclosed>x</primary_id></user>\n" +
		"<user><primary_id>ok1</primary_id></user>\n" +
		"<user><primary_id a=\"<\">x</primary_id></user>\n" +
		"<user><primary_id>ok2</primary_id></user>\n" +
		"<user><primary_id>x</primary_id></wrong></user>\n" +
		"<user><primary_id>ok3</primary_id></user>\n" +
		"<user><primary_id>< x</primary_id></user>\n" +
		"<user><primary_id>ok4</primary_id></user>\n" +
		"</users>\n"
	recs := decodeString(t, doc, Limits{})
	var ok []string
	for _, r := range recs {
		if r.Err == nil {
			ok = append(ok, r.User.PrimaryID)
		}
	}
	eq(t, "loaded", strings.Join(ok, ","), "ok1,ok2,ok3,ok4")
	eq(t, "records", len(recs), 8)
}

func TestXMLMarkupThatIsNotAUser(t *testing.T) {
	doc := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<?xml-stylesheet href="x.xsl"?>
<users>
  <!-- <user><primary_id>commented out</primary_id></user> -->
  <user_group>not a user</user_group>
  <users_total>2</users_total>
  <user
    link="a>b"><primary_id>one</primary_id>
    <user_notes><user_note><note_type>X</note_type><note_text><![CDATA[a </user> <user> b]]></note_text></user_note></user_notes>
    <!-- </user> -->
    <user_identifiers><user_identifier><id_type>T</id_type><value>v</value></user_identifier></user_identifiers>
  </user>
  <batch><inner><user	/></inner></batch>
  <user/>
</users>
<!-- trailing comment -->
`
	recs := decodeString(t, doc, Limits{})
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3: %+v", len(recs), recs)
	}
	for _, r := range recs {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Ref, r.Err)
		}
	}
	eq(t, "ref", recs[0].Ref, fmt.Sprintf("line %d", lineOf(t, doc, "<user\n")))
	eq(t, "primary_id", recs[0].User.PrimaryID, "one")
	eq(t, "note", recs[0].User.Notes[0].NoteText, "a </user> <user> b")
	eq(t, "identifier", recs[0].User.Identifiers[0].Value, "v")
	eq(t, "empty user", recs[1].User.PrimaryID, "")
	eq(t, "empty user ref", recs[2].Ref, fmt.Sprintf("line %d", lineOf(t, doc, "<user/>")))
}

func TestXMLFilesWithNoUsers(t *testing.T) {
	for _, doc := range []string{
		`<users/>`,
		"<?xml version=\"1.0\"?>\n<users total_record_count=\"0\">\n</users>\n",
		"\xef\xbb\xbf<userRecords><!-- none --></userRecords>",
		`<html><body><p>Not found</p></body></html>`,
	} {
		recs, err := decodeAll(t, XML(Limits{}), strings.NewReader(doc))
		if err != nil || len(recs) != 0 {
			t.Errorf("%q: %d records, error %v; want none and no error", doc, len(recs), err)
		}
	}
}

func TestXMLRefusesWhatIsNotXML(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"pdf", "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "looks like a PDF"},
		{"json", `{"user": [{"primary_id": "x"}]}`, "looks like JSON"},
		{"json list", "\n  [1, 2]", "looks like JSON"},
		{"csv", "primary_id,first_name\nx,<y>\n", `starts with "primary_id,first_name`},
		{"zip", "PK\x03\x04\x14\x00\x00\x00", "looks like a zip"},
		{"binary", "\x00\x01\x02<user>", "not an XML file"},
		{"empty", "", "no root element"},
		{"blank", " \n\t\r\n", "no root element"},
		{"only a declaration", `<?xml version="1.0"?>`, "no root element"},
		{"lone <", "< users>", "not an XML file"},
		{"cdata before the root", "<![CDATA[x]]><users/>", "not an XML file"},
	} {
		recs, err := decodeAll(t, XML(Limits{}), strings.NewReader(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
		if len(recs) != 0 {
			t.Errorf("%s: %d records emitted", c.name, len(recs))
		}
	}
}

func TestXMLEncodings(t *testing.T) {
	t.Run("latin-1", func(t *testing.T) {
		doc := "<?xml version='1.0' encoding='ISO-8859-1'?><users><user><primary_id>a</primary_id>" +
			"<first_name>Ren\xe9e</first_name></user></users>"
		recs := decodeString(t, doc, Limits{})
		if len(recs) != 1 || recs[0].Err != nil {
			t.Fatalf("%+v", recs)
		}
		eq(t, "first_name", recs[0].User.FirstName, "Renée")
	})
	t.Run("utf-16 with a byte order mark", func(t *testing.T) {
		doc := "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<users>\n<user><primary_id>é</primary_id></user>\n</users>\n"
		for _, order := range []string{"LE", "BE"} {
			var b bytes.Buffer
			put := func(u uint16) {
				if order == "LE" {
					b.WriteByte(byte(u))
					b.WriteByte(byte(u >> 8))
				} else {
					b.WriteByte(byte(u >> 8))
					b.WriteByte(byte(u))
				}
			}
			put(0xFEFF)
			for _, u := range utf16.Encode([]rune(doc)) {
				put(u)
			}
			recs, err := decodeAll(t, XML(Limits{}), &b)
			if err != nil || len(recs) != 1 || recs[0].Err != nil {
				t.Fatalf("%s: %v %+v", order, err, recs)
			}
			eq(t, order+" primary_id", recs[0].User.PrimaryID, "é")
			eq(t, order+" ref", recs[0].Ref, "line 3")
		}
	})
	for _, c := range []struct{ name, doc, want string }{
		{"unknown", `<?xml version="1.0" encoding="x-klingon"?><users/>`, `encoding "x-klingon" is not supported`},
		{"utf-16 without a mark", `<?xml version="1.0" encoding="UTF-16"?><users/>`, "no UTF-16 byte order mark"},
	} {
		recs, err := decodeAll(t, XML(Limits{}), strings.NewReader(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) || len(recs) != 0 {
			t.Errorf("%s: error %v, %d records; want %q", c.name, err, len(recs), c.want)
		}
	}
}

func TestXMLLimits(t *testing.T) {
	big := strings.Repeat("x", 4000)
	t.Run("MaxUserBytes", func(t *testing.T) {
		doc := "<users>\n<user><primary_id>a</primary_id></user>\n" +
			"<user><primary_id>big</primary_id><job_description>" + big + "</job_description><!-- " + big + " --></user>\n" +
			"<user><primary_id>b</primary_id></user>\n" +
			"<user big=\"" + big + "\"><primary_id>c</primary_id></user>\n" +
			"<user><primary_id>d</primary_id></user>\n" +
			"<user><primary_id>cut</primary_id>" + big
		recs := decodeString(t, doc, Limits{MaxUserBytes: 1000})
		checkRecords(t, recs, []wantRecord{
			{line: 2, primaryID: "a"},
			{line: 3, errLine: 3, errText: "the limit MaxUserBytes = 1000"},
			{line: 4, primaryID: "b"},
			{line: 5, errLine: 5, errText: "the limit MaxUserBytes = 1000"},
			{line: 6, primaryID: "d"},
			{line: 7, errLine: 7, errText: "bytes or more) breaks the limit MaxUserBytes"},
		})
		var le *LimitError
		if !errors.As(recs[1].Err, &le) || le.Limit != "MaxUserBytes" || le.Value != 1000 {
			t.Errorf("error %#v, want a *LimitError on MaxUserBytes", recs[1].Err)
		}
	})
	t.Run("MaxDepth in a user", func(t *testing.T) {
		deep := strings.Repeat("<a>", 10) + strings.Repeat("</a>", 10)
		doc := "<users>\n<user><primary_id>a</primary_id>" + deep + "</user>\n" +
			"<user><contact_info><addresses><address><address_types><address_type/></address_types></address></addresses></contact_info></user>\n" +
			"<user><primary_id>b</primary_id></user>\n</users>"
		recs := decodeString(t, doc, Limits{MaxDepth: 6})
		checkRecords(t, recs, []wantRecord{
			{line: 2, errLine: 2, errText: "(elements nested 11 deep) breaks the limit MaxDepth = 6"},
			{line: 3},
			{line: 4, primaryID: "b"},
		})
	})
	t.Run("MaxDepth around the users", func(t *testing.T) {
		doc := strings.Repeat("<a>", 40) + "<user/>"
		recs, err := decodeAll(t, XML(Limits{}), strings.NewReader(doc))
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != "MaxDepth" || le.Value != 32 || len(recs) != 0 {
			t.Errorf("error %v, %d records; want a *LimitError on MaxDepth", err, len(recs))
		}
	})
}

func TestXMLStopsWhenEmitFailsOrContextEnds(t *testing.T) {
	doc := "<users><user/><user/><user/></users>"
	stop := errors.New("stop")
	n := 0
	err := XML(Limits{}).Decode(context.Background(), strings.NewReader(doc), func(Record) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("emit error: got %v after %d records", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = XML(Limits{}).Decode(ctx, strings.NewReader(doc), func(Record) error { n++; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v", err)
	}
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestXMLReadErrorFailsTheFile(t *testing.T) {
	broken := errors.New("connection reset")
	r := &failingReader{r: strings.NewReader("<users><user><primary_id>a</primary_id></user><user><primary_id>"), err: broken}
	_, err := decodeAll(t, XML(Limits{}), r)
	if !errors.Is(err, broken) {
		t.Errorf("got %v, want the read error", err)
	}
}

func TestDetect(t *testing.T) {
	for name, want := range map[string]string{
		"users.xml": "xml", "/drop/2024/USERS.XML": "xml", "batch.Zip": "zip", "a.b.zip": "zip",
	} {
		f, err := BuiltinFormats().Detect(name, Limits{})
		if err != nil || f.Name() != want {
			t.Errorf("Detect(%q) = %v, %v; want %s", name, f, err, want)
		}
	}
	for _, name := range []string{"users.txt", "users", "users.xml.gz"} {
		_, err := BuiltinFormats().Detect(name, Limits{})
		if err == nil || !strings.Contains(err.Error(), ".xml") || !strings.Contains(err.Error(), ".zip") {
			t.Errorf("Detect(%q): error %v, want one naming the known extensions", name, err)
		}
	}
}

// userTemplate is one generated user, about 900 bytes.
const userTemplate = `  <user>
    <record_type desc="Public">PUBLIC</record_type>
    <primary_id>user%07d@example.edu</primary_id>
    <first_name>First%d</first_name>
    <last_name>Last</last_name>
    <user_group desc="Undergraduate">UG</user_group>
    <expiry_date>2030-09-01Z</expiry_date>
    <account_type desc="External">EXTERNAL</account_type>
    <external_id>SIS</external_id>
    <status desc="Active">ACTIVE</status>
    <contact_info>
      <addresses><address preferred="true" segment_type="External">
        <line1>%d Main Street</line1><city>Cambridge</city><postal_code>02139</postal_code>
        <address_types><address_type desc="Home">home</address_type></address_types>
      </address></addresses>
      <emails><email preferred="true"><email_address>u@example.edu</email_address>
        <email_types><email_type desc="School">school</email_type></email_types></email></emails>
    </contact_info>
    <user_identifiers><user_identifier><id_type desc="Barcode">01</id_type><value>B%d</value>
      <status>ACTIVE</status></user_identifier></user_identifiers>
  </user>
`

// compactUserTemplate is a small generated user, about 300 bytes, for the
// memory test, which must stay quick under the race detector.
const compactUserTemplate = `<user><primary_id>user%07d</primary_id><first_name>F%d</first_name>` +
	`<last_name>L</last_name><user_group>UG</user_group><expiry_date>2030-09-01Z</expiry_date>` +
	`<contact_info><emails><email preferred="true"><email_address>u%d@example.edu</email_address>` +
	`</email></emails></contact_info><user_identifiers><user_identifier><id_type>01</id_type>` +
	`<value>B%d</value></user_identifier></user_identifiers></user>
`

// generatedUsers streams an XML document of n users made from template
// (which takes four numbers) through a pipe, the way a large upload
// reaches Decode.
func generatedUsers(template string, n int) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriter(pw)
		w.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<users>\n")
		for i := range n {
			fmt.Fprintf(w, template, i, i, i, i)
		}
		w.WriteString("</users>\n")
		pw.CloseWithError(w.Flush())
	}()
	return pr
}

// heapWatch samples the heap in use while users are decoded.
type heapWatch struct {
	every int
	n     int
	peak  uint64
}

func (h *heapWatch) sample() {
	if h.n++; h.n%h.every != 0 {
		return
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.peak = max(h.peak, ms.HeapInuse)
}

// TestXMLMemoryDoesNotGrowWithUsers decodes 50,000 users from a pipe: the
// heap in use stays flat, far below what holding them would take (about
// 16 MB of XML, several times that decoded).
func TestXMLMemoryDoesNotGrowWithUsers(t *testing.T) {
	const users = 50_000
	const ceiling = 64 << 20
	src := generatedUsers(compactUserTemplate, users)
	defer src.Close()
	runtime.GC()
	h := &heapWatch{every: 2500}
	n := 0
	err := XML(Limits{}).Decode(context.Background(), src, func(r Record) error {
		if r.Err != nil {
			return fmt.Errorf("%s: %w", r.Ref, r.Err)
		}
		n++
		h.sample()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "users", n, users)
	t.Logf("peak heap in use: %.1f MiB", float64(h.peak)/(1<<20))
	if h.peak > ceiling {
		t.Errorf("peak heap in use %d bytes, want under %d", h.peak, ceiling)
	}
}

// BenchmarkXMLDecode decodes 20,000 generated users streamed through a
// pipe; allocations per op and the peak heap show that memory does not
// grow with the number of users.
func BenchmarkXMLDecode(b *testing.B) {
	const users = 20_000
	b.ReportAllocs()
	h := &heapWatch{every: 1000}
	for b.Loop() {
		src := generatedUsers(userTemplate, users)
		n := 0
		err := XML(Limits{}).Decode(context.Background(), src, func(Record) error {
			n++
			h.sample()
			return nil
		})
		src.Close()
		if err != nil || n != users {
			b.Fatalf("%d users, %v", n, err)
		}
	}
	b.ReportMetric(float64(h.peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*users), "ns/user")
}

// FuzzXML feeds arbitrary bytes: never a panic, and every record is either
// a user or an error, with a line.
func FuzzXML(f *testing.F) {
	if dir := conformance.Find(); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
		for _, path := range files {
			if data, err := os.ReadFile(path); err == nil {
				f.Add(data)
			}
		}
	}
	for _, doc := range []string{
		fullUser, malformed, `<users/>`, `<user/>`, `<user><user></user>`, `</user><user>`,
		`<users><user a="<"></user></users>`, `<users><user><!-- </user>`, `<users><user><![CDATA[`,
		"<users><user><primary_id>\x00</primary_id></user></users>", `<?xml encoding="latin1"?><user/>`,
		`<!DOCTYPE x [<!ENTITY a "b">]><user>&a;</user>`, "\xfe\xff\x00<\x00u", `<u:user xmlns:u="x"/>`,
		`<users><user><contact_info><emails><email preferred="maybe"/></emails></contact_info></user></users>`,
	} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = XML(Limits{MaxUserBytes: 2048, MaxDepth: 12}).Decode(context.Background(), bytes.NewReader(data), func(r Record) error {
			if (r.User == nil) == (r.Err == nil) {
				t.Fatalf("%s: user %v and error %v: want exactly one", r.Ref, r.User != nil, r.Err)
			}
			if !strings.HasPrefix(r.Ref, "line ") {
				t.Fatalf("ref %q", r.Ref)
			}
			return nil
		})
	})
}
