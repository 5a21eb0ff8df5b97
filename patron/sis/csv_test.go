package sis_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// documentedCSV is the example of csv.md.
func documentedCSV(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("csv.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```csv\n")
	example, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("csv.md has no ```csv example")
	}
	return example
}

func TestCSVDocumentedExample(t *testing.T) {
	example := documentedCSV(t)
	f := sis.CSV(sis.Limits{})
	for name, data := range map[string]string{
		"as documented":          example,
		"with a byte order mark": "\uFEFF" + example,
		"with CRLF line ends":    strings.ReplaceAll(example, "\n", "\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			recs, err := decodeRecords(t, f, data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(recs) != 2 {
				t.Fatalf("%d records, want 2: %+v", len(recs), recs)
			}
			for _, r := range recs {
				if r.Err != nil {
					t.Fatalf("%s: %v", r.Ref, r.Err)
				}
				allExternal(t, r.Ref, r.User)
				if len(r.Labels) != 0 {
					t.Errorf("%s: labels %+v from a CSV file", r.Ref, r.Labels)
				}
			}
			want(t, "Ref 1", recs[0].Ref, "line 2")
			want(t, "Ref 2 (after a note over two lines)", recs[1].Ref, "line 4")

			ada := recs[0].User
			want(t, "primary_id", ada.PrimaryID, "s1001")
			want(t, "first_name", ada.FirstName, "Ada")
			want(t, "last_name", ada.LastName, "Lovelace")
			want(t, "user_group", ada.UserGroup, "UNDERGRAD")
			want(t, "campus_code", ada.CampusCode, "MAIN")
			want(t, "birth_date", ada.BirthDate, "2004-12-10")
			want(t, "expiry_date", ada.ExpiryDate, "2028-06-30")
			want(t, "status", ada.Status, patron.StatusActive)
			if len(ada.Emails) != 2 || len(ada.Phones) != 3 || len(ada.Addresses) != 1 || len(ada.Identifiers) != 2 || len(ada.Statistics) != 1 || len(ada.Notes) != 1 || len(ada.Blocks) != 0 {
				t.Fatalf("segments: %d emails, %d phones, %d addresses, %d identifiers, %d statistics, %d notes, %d blocks",
					len(ada.Emails), len(ada.Phones), len(ada.Addresses), len(ada.Identifiers), len(ada.Statistics), len(ada.Notes), len(ada.Blocks))
			}
			want(t, "email 1", ada.Emails[0].EmailAddress, "ada@example.edu")
			want(t, "email 1 preferred", ada.Emails[0].Preferred, true)
			wantCodes(t, "email 1 types", ada.Emails[0].EmailTypes, "school")
			want(t, "email 2", ada.Emails[1].EmailAddress, "ada.l@example.org")
			want(t, "email 2 preferred", ada.Emails[1].Preferred, false)
			want(t, "phone 1", ada.Phones[0].PhoneNumber, "+44 20 7946 0001")
			want(t, "phone 1 preferred", ada.Phones[0].Preferred, true)
			want(t, "phone 1 preferred_sms", ada.Phones[0].PreferredSMS, true)
			wantCodes(t, "phone 2 types", ada.Phones[1].PhoneTypes, "home", "office")
			want(t, "phone 2 preferred", ada.Phones[1].Preferred, false)
			want(t, "phone 3", ada.Phones[2].PhoneNumber, "+44 20 7946 0003")
			a := ada.Addresses[0]
			want(t, "address line1", a.Line1, "12 St James's Square")
			want(t, "address city", a.City, "London")
			want(t, "address postal_code", a.PostalCode, "SW1Y 4JH")
			want(t, "address country", a.Country, "GB")
			want(t, "address preferred", a.Preferred, true)
			wantCodes(t, "address types", a.AddressTypes, "home")
			want(t, "identifier 1", ada.Identifiers[0], patron.Identifier{Segment: patron.Segment{SegmentType: patron.SegmentExternal}, IDType: "BARCODE", Value: "B1001"})
			want(t, "identifier 2", ada.Identifiers[1].Value, "U-1001")
			want(t, "statistic", ada.Statistics[0].StatisticCategory, "UG1")
			want(t, "note text (a comma and a line break)", ada.Notes[0].NoteText, "Moved halls, new room\nfrom 1 October")
			want(t, "note type", ada.Notes[0].NoteType, "ADDRESS")
			want(t, "note user_viewable", ada.Notes[0].UserViewable, true)

			charles := recs[1].User
			want(t, "primary_id", charles.PrimaryID, "s1002")
			want(t, "birth_date", charles.BirthDate, "2001-12-26")
			want(t, "expiry_date", charles.ExpiryDate, "2027-06-30")
			if len(charles.Emails) != 1 || len(charles.Phones) != 1 || len(charles.Addresses) != 0 || len(charles.Identifiers) != 1 || len(charles.Notes) != 0 || len(charles.Blocks) != 1 {
				t.Fatalf("segments: %d emails, %d phones, %d addresses, %d identifiers, %d notes, %d blocks",
					len(charles.Emails), len(charles.Phones), len(charles.Addresses), len(charles.Identifiers), len(charles.Notes), len(charles.Blocks))
			}
			want(t, "phone preferred_sms", charles.Phones[0].PreferredSMS, false)
			want(t, "block", charles.Blocks[0], patron.Block{Segment: patron.Segment{SegmentType: patron.SegmentExternal}, BlockType: "GENERAL", BlockDescription: "02-GLOBAL", ExpiryDate: "2026-01-31"})
		})
	}
}

// csvGroupSuffixes are the columns of each repeatable group, as csvWrite
// writes them.
var csvGroupSuffixes = map[string][]string{
	"email":      {"", "_types", "_preferred", "_description"},
	"phone":      {"", "_types", "_preferred", "_preferred_sms"},
	"address":    {"_line1", "_line2", "_line3", "_line4", "_line5", "_city", "_state_province", "_postal_code", "_country", "_types", "_preferred", "_note", "_start_date", "_end_date"},
	"identifier": {"_type", "_value", "_note", "_status"},
	"statistic":  {"_category", "_type", "_note"},
	"note":       {"_text", "_type", "_user_viewable", "_popup"},
	"block":      {"_type", "_description", "_expiry_date", "_status", "_note"},
	"proxy_for":  {"", "_expiry_date"},
}

var csvUserColumns = []string{"primary_id", "first_name", "last_name", "middle_name", "user_title", "gender", "birth_date", "user_group", "campus_code", "job_category", "job_description", "preferred_language", "expiry_date", "purge_date", "status", "record_type", "rs_library"}

// csvWrite writes users as the CSV format, with as many groups of each
// kind as the users need: the other way round from Decode.
func csvWrite(w io.Writer, users []*patron.User) error {
	most := map[string]int{}
	for _, u := range users {
		for kind, n := range map[string]int{"email": len(u.Emails), "phone": len(u.Phones), "address": len(u.Addresses), "identifier": len(u.Identifiers),
			"statistic": len(u.Statistics), "note": len(u.Notes), "block": len(u.Blocks), "proxy_for": len(u.ProxyFor)} {
			most[kind] = max(most[kind], n)
		}
	}
	header := append([]string(nil), csvUserColumns...)
	kinds := []string{"email", "phone", "address", "identifier", "statistic", "note", "block", "proxy_for"}
	for _, kind := range kinds {
		for n := 1; n <= most[kind]; n++ {
			for _, s := range csvGroupSuffixes[kind] {
				header = append(header, fmt.Sprintf("%s_%d%s", kind, n, s))
			}
		}
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	b := strconv.FormatBool
	types := func(c patron.Codes) string { return strings.Join(c, "|") }
	for _, u := range users {
		row := []string{u.PrimaryID, u.FirstName, u.LastName, u.MiddleName, u.UserTitle, u.Gender, u.BirthDate, u.UserGroup, u.CampusCode,
			u.JobCategory, u.JobDescription, u.PreferredLanguage, u.ExpiryDate, u.PurgeDate, u.Status, u.RecordType, u.RSLibrary}
		group := func(kind string, n int, cells func(i int) []string) {
			for i := range most[kind] {
				if i < n {
					row = append(row, cells(i)...)
				} else {
					row = append(row, make([]string, len(csvGroupSuffixes[kind]))...)
				}
			}
		}
		group("email", len(u.Emails), func(i int) []string {
			e := u.Emails[i]
			return []string{e.EmailAddress, types(e.EmailTypes), b(e.Preferred), e.Description}
		})
		group("phone", len(u.Phones), func(i int) []string {
			p := u.Phones[i]
			return []string{p.PhoneNumber, types(p.PhoneTypes), b(p.Preferred), b(p.PreferredSMS)}
		})
		group("address", len(u.Addresses), func(i int) []string {
			a := u.Addresses[i]
			return []string{a.Line1, a.Line2, a.Line3, a.Line4, a.Line5, a.City, a.StateProvince, a.PostalCode, a.Country, types(a.AddressTypes), b(a.Preferred), a.AddressNote, a.StartDate, a.EndDate}
		})
		group("identifier", len(u.Identifiers), func(i int) []string {
			x := u.Identifiers[i]
			return []string{x.IDType, x.Value, x.Note, x.Status}
		})
		group("statistic", len(u.Statistics), func(i int) []string {
			s := u.Statistics[i]
			return []string{s.StatisticCategory, s.CategoryType, s.StatisticNote}
		})
		group("note", len(u.Notes), func(i int) []string {
			n := u.Notes[i]
			return []string{n.NoteText, n.NoteType, b(n.UserViewable), b(n.PopupNote)}
		})
		group("block", len(u.Blocks), func(i int) []string {
			x := u.Blocks[i]
			return []string{x.BlockType, x.BlockDescription, x.ExpiryDate, x.BlockStatus, x.BlockNote}
		})
		group("proxy_for", len(u.ProxyFor), func(i int) []string {
			p := u.ProxyFor[i]
			return []string{p.PrimaryID, p.ExpiryDate}
		})
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func TestCSVRoundTrip(t *testing.T) {
	seg := patron.Segment{SegmentType: patron.SegmentExternal}
	users := []*patron.User{
		{
			PrimaryID: "p1", FirstName: "Zoë", LastName: "O'Neil, Jr.", MiddleName: "M", UserTitle: "Dr", Gender: "FEMALE",
			BirthDate: "1999-09-09", UserGroup: "STAFF", CampusCode: "C1", JobCategory: "Lib", JobDescription: "Reads \"everything\"",
			PreferredLanguage: "en", ExpiryDate: "2030-01-01", PurgeDate: "2031-01-01", Status: "ACTIVE", RecordType: "STAFF", RSLibrary: "RS",
			Emails: []patron.Email{
				{Segment: seg, EmailAddress: "a@x.org", EmailTypes: patron.Codes{"work", "school"}, Preferred: true, Description: "main"},
				{Segment: seg, EmailAddress: "b@x.org"},
				{Segment: seg, EmailAddress: "c@x.org", EmailTypes: patron.Codes{"personal"}},
			},
			Phones: []patron.Phone{
				{Segment: seg, PhoneNumber: "+1 555 0100", PhoneTypes: patron.Codes{"mobile"}, Preferred: true, PreferredSMS: true},
				{Segment: seg, PhoneNumber: "+1 555 0101", PhoneTypes: patron.Codes{"home", "office"}},
			},
			Addresses: []patron.Address{{Segment: seg, Line1: "1 Main St, Apt 2", Line2: "b", Line3: "c", Line4: "d", Line5: "e", City: "Town",
				StateProvince: "ST", PostalCode: "01234", Country: "USA", AddressTypes: patron.Codes{"home"}, Preferred: true,
				AddressNote: "ring twice", StartDate: "2020-01-01", EndDate: "2029-01-01"}},
			Identifiers: []patron.Identifier{{Segment: seg, IDType: "BARCODE", Value: "0042", Note: "n", Status: "INACTIVE"}, {Segment: seg, IDType: "UNIV_ID", Value: "U1"}},
			Statistics:  []patron.Statistic{{Segment: seg, StatisticCategory: "SC", CategoryType: "CT", StatisticNote: "sn"}},
			Notes: []patron.Note{{Segment: seg, NoteText: "Line one, with a comma\nline \"two\"", NoteType: "OTHER", UserViewable: true, PopupNote: true, Origin: patron.OriginExternal},
				{Segment: seg, NoteText: "staff only", Origin: patron.OriginExternal}},
			Blocks:   []patron.Block{{Segment: seg, BlockType: "GENERAL", BlockDescription: "02-GLOBAL", ExpiryDate: "2026-01-01", BlockStatus: "ACTIVE", BlockNote: "fees"}},
			ProxyFor: []patron.ProxyFor{{Segment: seg, PrimaryID: "sponsor", ExpiryDate: "2027-01-01"}},
		},
		{PrimaryID: "p2", FirstName: "B", LastName: "C", Status: "INACTIVE", Emails: []patron.Email{{Segment: seg, EmailAddress: "p2@x.org"}}},
	}
	var buf bytes.Buffer
	if err := csvWrite(&buf, users); err != nil {
		t.Fatal(err)
	}
	got := usersOf(t, sis.CSV(sis.Limits{}), buf.String())
	if len(got) != len(users) {
		t.Fatalf("%d users, want %d", len(got), len(users))
	}
	for i := range users {
		if !reflect.DeepEqual(got[i], users[i]) {
			t.Errorf("user %d\n got %+v\nwant %+v", i+1, got[i], users[i])
		}
	}
}

func TestCSVHeaderIsChecked(t *testing.T) {
	f := sis.CSV(sis.Limits{})
	for _, c := range []struct{ header, says string }{
		{"primary_id,first_name,emial_1", `"emial_1" (column 3)`},
		{"primary_id,email_01", `"email_01"`},
		{"primary_id,email_0", `"email_0"`},
		{"primary_id,email_1_typo", `"email_1_typo"`},
		{"primary_id,phone_1_description", `"phone_1_description"`},
		{"primary_id,address_1", `"address_1"`},
		{"primary_id,pref_first_name", `"pref_first_name"`},
		{"first_name,last_name", "no primary_id column"},
		{"primary_id,first_name,First_Name", "first_name twice (columns 2 and 3)"},
		{"primary_id,,last_name", "column 2 of the header has no name"},
		{"", "the file is empty"},
	} {
		recs, err := decodeRecords(t, f, c.header+"\nu1,A,B\n")
		if c.header == "" {
			recs, err = decodeRecords(t, f, "")
		}
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("header %q: Decode: %v, want an error saying %s", c.header, err, c.says)
		}
		if len(recs) != 0 {
			t.Errorf("header %q: emitted %+v", c.header, recs)
		}
	}

	// Names are case-insensitive and blank space around them is ignored.
	users := usersOf(t, f, "\uFEFF Primary_ID ,FIRST_NAME,Email_1 ,phone_12_preferred_sms\nu1,Ann,a@x.org,yes\n")
	if len(users) != 1 || users[0].PrimaryID != "u1" || users[0].FirstName != "Ann" || len(users[0].Emails) != 1 || len(users[0].Phones) != 1 || !users[0].Phones[0].PreferredSMS {
		t.Errorf("users %+v", users)
	}
	// A header alone is a file of no users.
	if recs, err := decodeRecords(t, f, "primary_id,first_name\n"); err != nil || len(recs) != 0 {
		t.Errorf("header only: %v, %+v", err, recs)
	}
}

func TestCSVBadRowsAreRejectedWithTheirLine(t *testing.T) {
	data := "primary_id,first_name,birth_date,email_1,email_1_preferred,note_1_text\n" +
		"u1,A,2000-01-01,a@x.org,true,fine\n" +
		"u2,short,row\n" +
		"u3,B,,b@x.org,false,\"a note\nover two lines\"\n" +
		"u4,C,2000-13-01,,,\n" +
		"u5,too,many,cells,true,x,y\n" +
		"u6,D\"quote,,,,\n" +
		"u7,E,,e@x.org,perhaps,\n" +
		"\n" +
		",,,,,\n" +
		"u8,\"F\"G,,,,\n" +
		"u9,H,,,,\n" +
		"u10,Andr\xe9,,,,\n"
	recs, err := decodeRecords(t, sis.CSV(sis.Limits{}), data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	type outcome struct{ ref, id, err string }
	wantRecs := []outcome{
		{"line 2", "u1", ""},
		{"line 3", "", "line 3: the row has 3 cells where the header has 6 columns"},
		{"line 4", "u3", ""},
		{"line 6", "", `line 6 (primary_id "u4"): birth_date: "2000-13-01" is not a date`},
		{"line 7", "", "line 7: the row has 7 cells where the header has 6 columns"},
		{"line 8", "", "line 8: a quote in a cell that is not quoted"},
		{"line 9", "", `line 9 (primary_id "u7"): email_1_preferred: "perhaps" is not yes or no`},
		{"line 12", "", "line 12: a quoted cell goes on after its closing quote"},
		{"line 13", "u9", ""},
		{"line 14", "", `line 14 (primary_id "u10"): first_name: is not UTF-8 text`},
	}
	if len(recs) != len(wantRecs) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(wantRecs), recs)
	}
	for i, w := range wantRecs {
		r := recs[i]
		want(t, "Ref", r.Ref, w.ref)
		if (r.User == nil) == (r.Err == nil) {
			t.Errorf("%s: want a user or an error: %+v", r.Ref, r)
		}
		if w.err == "" {
			if r.Err != nil || r.User.PrimaryID != w.id {
				t.Errorf("%s: %v, want user %s", r.Ref, r.Err, w.id)
			}
			continue
		}
		if r.Err == nil || !strings.HasPrefix(r.Err.Error(), w.err) {
			t.Errorf("%s: error %v, want %q", r.Ref, r.Err, w.err)
		}
	}
	want(t, "the note over two lines", recs[2].User.Notes[0].NoteText, "a note\nover two lines")
	want(t, "an empty email makes no email", len(recs[8].User.Emails), 0)
}

func TestCSVSegmentsFromGroupsWithAValue(t *testing.T) {
	data := "primary_id,email_1,email_1_types,email_1_preferred,email_2,email_2_types,email_2_preferred,identifier_1_type,identifier_1_value,identifier_2_type,identifier_2_value,phone_1,phone_1_preferred\n" +
		"u1,,school,false,b@x.org,work,no,BARCODE,B1,UNIV_ID,,,yes\n"
	u := usersOf(t, sis.CSV(sis.Limits{}), data)[0]
	// email_1 has only a type and a "no": no email. email_2 is one.
	if len(u.Emails) != 1 || u.Emails[0].EmailAddress != "b@x.org" {
		t.Errorf("emails %+v", u.Emails)
	}
	// identifier_2 has only its type: no identifier.
	if len(u.Identifiers) != 1 || u.Identifiers[0].Value != "B1" {
		t.Errorf("identifiers %+v", u.Identifiers)
	}
	// phone_1 is preferred but has no number: it is kept, for the load to
	// refuse with its own message, rather than dropped.
	if len(u.Phones) != 1 || !u.Phones[0].Preferred || u.Phones[0].PhoneNumber != "" {
		t.Errorf("phones %+v", u.Phones)
	}
}

func TestCSVUnclosedQuoteRefusesTheFile(t *testing.T) {
	data := "primary_id,first_name\nu1,A\nu2,\"B\nu3,C\nu4,D\n"
	recs, err := decodeRecords(t, sis.CSV(sis.Limits{}), data)
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("Decode: %v, want the file refused at line 3", err)
	}
	t.Log(err)
	if len(recs) != 1 {
		t.Errorf("records %+v, want the row before", recs)
	}
}

func TestCSVLimits(t *testing.T) {
	f := sis.CSV(sis.Limits{MaxUserBytes: 1024})
	for name, data := range map[string]string{
		"a long row":    "primary_id,note_1_text\nu1,short\nu2," + strings.Repeat("x", 2000) + "\nu3,short\n",
		"a long header": "primary_id," + strings.Repeat("x", 2000) + "\nu1,short\n",
		"a long quoted": "primary_id,note_1_text\nu1,\"" + strings.Repeat("line\n", 400) + "\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeRecords(t, f, data)
			var le *sis.LimitError
			if !errors.As(err, &le) || le.Limit != "MaxUserBytes" || !strings.Contains(err.Error(), "MaxUserBytes") {
				t.Fatalf("Decode: %v, want MaxUserBytes", err)
			}
			t.Log(err)
		})
	}
	t.Run("an endless row is not read to its end", func(t *testing.T) {
		in := &byteCounter{r: io.MultiReader(strings.NewReader("primary_id,first_name\nu1,"), endless('x'))}
		err := f.Decode(context.Background(), in, func(sis.Record) error { return nil })
		var le *sis.LimitError
		if !errors.As(err, &le) {
			t.Fatalf("Decode: %v, want MaxUserBytes", err)
		}
		if in.n > 1<<20 {
			t.Errorf("read %d bytes of an endless row with a limit of 1024", in.n)
		}
	})
}

func TestCSVStopsWhenEmitFails(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := sis.CSV(sis.Limits{}).Decode(context.Background(), strings.NewReader("primary_id\na\nb\n"), func(sis.Record) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Errorf("Decode: %v after %d records, want stop after 1", err, n)
	}
}

func TestCSVReadErrorStopsTheFile(t *testing.T) {
	boom := errors.New("disk on fire")
	for name, head := range map[string]string{"in the header": "primary_id,fir", "in a row": "primary_id\nu1\nu2"} {
		n := 0
		err := sis.CSV(sis.Limits{}).Decode(context.Background(), io.MultiReader(strings.NewReader(head), iotest.ErrReader(boom)), func(sis.Record) error { n++; return nil })
		if !errors.Is(err, boom) {
			t.Errorf("%s: Decode: %v after %d records, want %v", name, err, n, boom)
		}
	}
}

func TestCSVIsRegistered(t *testing.T) {
	f, err := sis.BuiltinFormats().Detect("patrons.Csv", sis.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want(t, "Name", f.Name(), "csv")
}

func FuzzCSV(f *testing.F) {
	if doc, err := os.ReadFile("csv.md"); err == nil {
		if _, rest, ok := strings.Cut(string(doc), "```csv\n"); ok {
			example, _, _ := strings.Cut(rest, "```")
			f.Add([]byte(example))
		}
	}
	f.Add([]byte("primary_id,first_name,birth_date\nu1,A,2000-01-01\nu2,B\nu3,\"C\"\"\",x\n"))
	f.Add([]byte("\uFEFFprimary_id,email_1,email_1_preferred\r\nu1,a@x.org,maybe\r\n"))
	f.Add([]byte("primary_id,note_1_text\nu1,\"unclosed\n"))
	f.Add([]byte("primary_id,phone_2_types\nu1,a|b||c\n,\n"))
	limits := []sis.Limits{{}, {MaxUserBytes: 64}}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range limits {
			_ = sis.CSV(l).Decode(context.Background(), bytes.NewReader(data), func(r sis.Record) error {
				if (r.User == nil) == (r.Err == nil) {
					t.Fatalf("%s: want a user or an error, got %+v", r.Ref, r)
				}
				if !strings.HasPrefix(r.Ref, "line ") {
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

func TestCSVMemoryDoesNotGrowWithUsers(t *testing.T) {
	memoryTest(t, sis.CSV(sis.Limits{}), func(w io.Writer) error {
		cw := csv.NewWriter(w)
		header := []string{"primary_id", "first_name", "last_name", "user_group", "birth_date", "email_1", "email_1_types", "email_1_preferred",
			"phone_1", "phone_1_types", "identifier_1_type", "identifier_1_value", "note_1_text", "note_1_user_viewable"}
		if err := cw.Write(header); err != nil {
			return err
		}
		note := strings.Repeat("n", 1000) + ", with a comma"
		for i := range memoryUsers {
			id := fmt.Sprintf("u%06d", i)
			if err := cw.Write([]string{id, "F", "L", "G" + strconv.Itoa(i%10), "2000-01-01", id + "@example.edu", "school", "true",
				strconv.Itoa(i), "mobile", "BARCODE", "B" + id, note, "false"}); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
}
