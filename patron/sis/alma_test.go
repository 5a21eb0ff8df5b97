package sis

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/patron"
)

// notFromSIS are the fields of patron.User and its segments that no SIS
// file gives: the store's own, and the library's.
var notFromSIS = map[string]bool{
	"User.ID": true, "User.Institution": true, "User.PrimaryIDKey": true, "User.PINHash": true, "User.SISHash": true,
	"User.Version": true, "User.CreatedAt": true, "User.UpdatedAt": true, "User.Warnings": true,
	"Segment.ID": true, "Segment.UserID": true,
	// Alma's proxy_for_user has no segment_type: a proxy is the user's.
	"ProxyFor.SegmentType":   true,
	"Identifier.Institution": true, "Identifier.ValueKey": true,
	"Note.Origin": true, "Note.CreatedBy": true, "Note.CreatedDate": true,
	"Block.CreatedBy": true, "Block.CreatedDate": true,
}

// leaf is a field of patron.User or of one of its segments that holds a
// value (text, yes/no or codes), with a way to set it in a user that has
// one item of every segment.
type leaf struct {
	name string
	set  func(u *patron.User)
}

// patronLeaves lists the value fields of patron.User and of its segments.
func patronLeaves(t *testing.T) []leaf {
	t.Helper()
	var out []leaf
	// owner is the type that holds typ (Address holds Segment).
	var walk func(owner string, typ reflect.Type, at func(u *patron.User) reflect.Value)
	walk = func(owner string, typ reflect.Type, at func(u *patron.User) reflect.Value) {
		for i := range typ.NumField() {
			sf := typ.Field(i)
			name := owner + "." + sf.Name
			field := func(u *patron.User) reflect.Value { return at(u).Field(i) }
			switch {
			case !sf.IsExported() || notFromSIS[name] || notFromSIS[typ.Name()+"."+sf.Name]:
			case sf.Anonymous:
				walk(owner, sf.Type, field)
			case sf.Type == reflect.TypeFor[string]():
				out = append(out, leaf{name, func(u *patron.User) { field(u).SetString("x") }})
			case sf.Type == reflect.TypeFor[bool]():
				out = append(out, leaf{name, func(u *patron.User) { field(u).SetBool(true) }})
			case sf.Type == reflect.TypeFor[patron.Codes]():
				out = append(out, leaf{name, func(u *patron.User) { field(u).Set(reflect.ValueOf(patron.Codes{"x"})) }})
			case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct:
				walk(sf.Type.Elem().Name(), sf.Type.Elem(), func(u *patron.User) reflect.Value { return field(u).Index(0) })
			default:
				t.Errorf("%s (%s): a kind of field Alma's user mapping has no way to hold: map it in alma.go, or list it in notFromSIS", name, sf.Type)
			}
		}
	}
	walk("User", reflect.TypeFor[patron.User](), func(u *patron.User) reflect.Value { return reflect.ValueOf(u).Elem() })
	return out
}

// oneOfEach is a user with one empty item in every segment list.
func oneOfEach() *patron.User {
	return &patron.User{Identifiers: make([]patron.Identifier, 1), Addresses: make([]patron.Address, 1), Emails: make([]patron.Email, 1),
		Phones: make([]patron.Phone, 1), Notes: make([]patron.Note, 1), Blocks: make([]patron.Block, 1),
		Statistics: make([]patron.Statistic, 1), ProxyFor: make([]patron.ProxyFor, 1)}
}

// mappedValues are the values Alma's user mapping finds in u, by field:
// "user_group", "address.city"...
func mappedValues(u *patron.User) map[string][]fieldValue {
	out := map[string][]fieldValue{}
	for _, v := range userFields.values(u, nil) {
		out[v.name] = append(out[v.name], v)
	}
	for _, s := range userSegments {
		s.each(u, func(vals []fieldValue) error {
			for _, v := range vals {
				name := s.names().item + "." + v.name
				out[name] = append(out[name], v)
			}
			return nil
		})
	}
	return out
}

// TestAlmaMappingCoversPatronUser fails when a field is added to
// patron.User (or to a segment) and not to Alma's user mapping in alma.go,
// unless it is listed as a field no SIS file gives.
func TestAlmaMappingCoversPatronUser(t *testing.T) {
	leaves := patronLeaves(t)
	if len(leaves) < 50 {
		t.Fatalf("%d fields found in patron.User: the walk is broken", len(leaves))
	}
	for _, l := range leaves {
		u := oneOfEach()
		l.set(u)
		found := false
		for _, vals := range mappedValues(u) {
			for _, v := range vals {
				found = found || v.flag || len(v.codes) > 0 || v.text != ""
			}
		}
		if !found {
			t.Errorf("patron.%s is not in Alma's user mapping (alma.go): map it there, or list it in notFromSIS", l.name)
		}
	}
}

// fullPatron has every field Alma's user mapping knows, and two items of
// every segment list, as an SIS load gives them (External).
func fullPatron() *patron.User {
	return &patron.User{
		RecordType: "STAFF", PrimaryID: "full-1", FirstName: "Ada", MiddleName: "Byron", LastName: "King & Lovelace",
		UserTitle: "DR", JobCategory: "LIB", JobDescription: "Analyst <engines>", Gender: "FEMALE", UserGroup: "FAC",
		CampusCode: "NORTH", PreferredLanguage: "en", BirthDate: "1815-12-10", ExpiryDate: "2030-06-30", PurgeDate: "2031-06-30",
		AccountType: "EXTERNAL", ExternalID: "SIS", Status: "INACTIVE", PINNumber: "2468", RSLibrary: "RS1",
		Addresses: []patron.Address{
			{Segment: external, Line1: "1 Main St", Line2: "Flat 2", Line3: "Wing 3", Line4: "Floor 4", Line5: "Box 5",
				City: "Springfield", StateProvince: "IL", PostalCode: "62701", Country: "USA", AddressNote: "ring twice",
				StartDate: "2020-01-01", EndDate: "2029-12-31", AddressTypes: patron.Codes{"home", "work"}, Preferred: true},
			{Segment: external, Line1: "2 Side St", Line2: "b", Line3: "c", Line4: "d", Line5: "e", City: "Shelbyville",
				StateProvince: "IN", PostalCode: "46176", Country: "CAN", AddressNote: "old", StartDate: "2019-01-01",
				EndDate: "2019-12-31", AddressTypes: patron.Codes{"school"}, Preferred: true},
		},
		Emails: []patron.Email{
			{Segment: external, EmailAddress: "ada@uni.example", Description: "work", EmailTypes: patron.Codes{"school", "office"}, Preferred: true},
			{Segment: external, EmailAddress: "ada@home.example", Description: "home", EmailTypes: patron.Codes{"personal"}, Preferred: true},
		},
		Phones: []patron.Phone{
			{Segment: external, PhoneNumber: "+1 555 0100", PhoneTypes: patron.Codes{"mobile"}, Preferred: true, PreferredSMS: true},
			{Segment: external, PhoneNumber: "+1 555 0101", PhoneTypes: patron.Codes{"home", "fax"}, Preferred: true, PreferredSMS: true},
		},
		Identifiers: []patron.Identifier{
			{Segment: external, IDType: "BARCODE", Value: "B-1", Note: "lost once", Status: "ACTIVE"},
			{Segment: external, IDType: "UNIV_ID", Value: "U-2", Note: "card 2", Status: "INACTIVE"},
		},
		Notes: []patron.Note{
			{Segment: external, Origin: patron.OriginExternal, NoteType: "CIRC", NoteText: "Ring twice,\nthen wait", UserViewable: true, PopupNote: true},
			{Segment: external, Origin: patron.OriginExternal, NoteType: "REGISTRAR", NoteText: "Exchange", UserViewable: true, PopupNote: true},
		},
		Blocks: []patron.Block{
			{Segment: external, BlockType: "GENERAL", BlockDescription: "LOST_CARD", BlockStatus: "ACTIVE", BlockNote: "new card", ExpiryDate: "2027-01-01"},
			{Segment: external, BlockType: "LOAN", BlockDescription: "FEES", BlockStatus: "INACTIVE", BlockNote: "paid", ExpiryDate: "2026-05-31"},
		},
		Statistics: []patron.Statistic{
			{Segment: external, StatisticCategory: "GRAD", CategoryType: "LEVEL", StatisticNote: "honours"},
			{Segment: external, StatisticCategory: "CHEM", CategoryType: "DEPT", StatisticNote: "minor"},
		},
		ProxyFor: []patron.ProxyFor{
			{Segment: external, PrimaryID: "sponsor-1", ExpiryDate: "2028-01-31"},
			{Segment: external, PrimaryID: "sponsor-2", ExpiryDate: "2028-02-29"},
		},
	}
}

// fieldsWhere names the readable fields of the mapping for which keep
// holds: "pin_number", "proxy_for_user.expiry_date"...
func fieldsWhere(keep func(m *fieldMeta) bool) []string {
	var out []string
	for name, vals := range mappedValues(oneOfEach()) {
		if m := vals[0].fieldMeta; m.readable && keep(m) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestOneAlmaMappingForEveryFormat writes a user with every field set as
// the export does, as Alma's JSON and as CSV, and reads each back: the XML,
// JSON and CSV readers give the same patron.User, less what a format has
// no place for.
func TestOneAlmaMappingForEveryFormat(t *testing.T) {
	full := fullPatron()
	for name, vals := range mappedValues(full) {
		for _, v := range vals {
			if v.empty() || v.kind == kBool && !v.flag {
				t.Errorf("fullPatron leaves %s empty: give it a value", name)
			}
		}
	}

	t.Run("export then XML", func(t *testing.T) {
		var doc bytes.Buffer
		doc.WriteString(xml.Header + "<users>\n")
		if err := newXMLWriter(&doc).user(full); err != nil {
			t.Fatal(err)
		}
		doc.WriteString("</users>\n")
		recs := decodeString(t, doc.String(), Limits{})
		if len(recs) != 1 || recs[0].Err != nil {
			t.Fatalf("records %+v from\n%s", recs, doc.String())
		}
		eq(t, "fields the export does not write", fmt.Sprint(fieldsWhere(func(m *fieldMeta) bool { return !m.exported })),
			"[pin_number proxy_for_user.expiry_date]")
		want := fullPatron()
		want.PINNumber = ""
		for i := range want.ProxyFor {
			want.ProxyFor[i].ExpiryDate = ""
		}
		sameUser(t, recs[0].User, want)
		// A block's expiry is an xs:dateTime in Alma's schema.
		if !strings.Contains(doc.String(), "<expiry_date>2027-01-01T00:00:00Z</expiry_date>") {
			t.Errorf("the block's expiry is not written as a dateTime:\n%s", doc.String())
		}
	})

	t.Run("JSON", func(t *testing.T) {
		data, labels := almaJSON(t, full)
		recs, err := decodeAll(t, JSON(Limits{}), bytes.NewReader(data))
		if err != nil || len(recs) != 1 || recs[0].Err != nil {
			t.Fatalf("Decode: %v, %+v from\n%s", err, recs, data)
		}
		sameUser(t, recs[0].User, fullPatron())
		got := slices.Clone(recs[0].Labels)
		sortLabels(got)
		sortLabels(labels)
		eq(t, "labels", fmt.Sprint(got), fmt.Sprint(labels))
	})

	t.Run("CSV", func(t *testing.T) {
		data := almaCSV(t, full)
		recs, err := decodeAll(t, CSV(Limits{}), bytes.NewReader(data))
		if err != nil || len(recs) != 1 || recs[0].Err != nil {
			t.Fatalf("Decode: %v, %+v from\n%s", err, recs, data)
		}
		eq(t, "fields the CSV format has no column for", fmt.Sprint(fieldsWhere(func(m *fieldMeta) bool { return !m.inCSV })),
			"[account_type external_id pin_number]")
		want := fullPatron()
		want.AccountType, want.ExternalID, want.PINNumber = "", "", ""
		sameUser(t, recs[0].User, want)
	})
}

func sameUser(t *testing.T, got, want *patron.User) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("user\n got %s\nwant %s", g, w)
	}
}

func sortLabels(ls []Label) {
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Table+"\x00"+a.Code, b.Table+"\x00"+b.Code) })
}

// almaJSON writes u as Alma's JSON writes a user: every code as a
// {"value", "desc"} object, lists flattened under their item's name, dates
// with Z, segment_type Internal (which an SIS load passes over). It
// returns the labels the descriptions make.
func almaJSON(t *testing.T, u *patron.User) ([]byte, []Label) {
	t.Helper()
	var labels labelSet
	code := func(table, c string) any {
		labels.add(table, c, "about "+c)
		return map[string]any{"value": c, "desc": "about " + c}
	}
	object := func(vals []fieldValue) map[string]any {
		m := map[string]any{}
		for _, v := range vals {
			var val any
			switch {
			case !v.readable:
				val = "Internal"
			case v.kind == kBool:
				val = v.flag
			case v.kind == kDate:
				val = v.text + "Z"
			case v.kind == kCodes:
				var list []any
				for _, c := range v.codes {
					list = append(list, code(v.table, c))
				}
				val = list
			case v.kind == kFirstCode:
				val = []any{map[string]any{itemCode: code(v.table, v.text)}, map[string]any{itemCode: "SECOND"}}
			case v.kind == kCode || v.kind == kEnum && v.table != "":
				val = code(v.table, v.text)
			default:
				val = v.text
			}
			m[v.jsonKey()] = val
		}
		return m
	}
	user := object(userFields.values(u, nil))
	contact := map[string]any{}
	for _, s := range userSegments {
		var list []any
		s.each(u, func(vals []fieldValue) error {
			list = append(list, object(vals))
			return nil
		})
		if s.names().contact {
			contact[s.names().item] = list
		} else {
			user[s.names().item] = list
		}
	}
	user[contactInfo] = contact
	data, err := json.Marshal(map[string]any{"user": []any{user}, "total_record_count": 1})
	if err != nil {
		t.Fatal(err)
	}
	return data, labels
}

// almaCSV writes u as the CSV format: the user's columns, then a group of
// columns for each segment.
func almaCSV(t *testing.T, u *patron.User) []byte {
	t.Helper()
	var header, row []string
	cells := func(prefix string, vals []fieldValue) {
		for _, v := range vals {
			if !v.readable || !v.inCSV {
				continue
			}
			header = append(header, strings.TrimSuffix(prefix+v.csv, "_"))
			switch v.kind {
			case kBool:
				row = append(row, map[bool]string{true: "yes", false: "no"}[v.flag])
			case kCodes:
				row = append(row, strings.Join(v.codes, "|"))
			default:
				row = append(row, v.text)
			}
		}
	}
	cells("", userFields.values(u, nil))
	for _, s := range userSegments {
		n := 0
		s.each(u, func(vals []fieldValue) error {
			n++
			cells(fmt.Sprintf("%s_%d_", s.names().csv, n), vals)
			return nil
		})
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(header)
	w.Write(row)
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFirstLibraryWithACode: the user's rs_library is the first library
// that has a code, in XML and JSON alike.
func TestFirstLibraryWithACode(t *testing.T) {
	xmlRecs := decodeString(t, `<user><primary_id>a</primary_id><rs_libraries><rs_library><code/></rs_library><rs_library><code>R2</code></rs_library></rs_libraries></user>`, Limits{})
	jsonRecs, err := decodeAll(t, JSON(Limits{}), strings.NewReader(`{"primary_id": "a", "rs_library": [{"code": null}, {"code": "R2"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, recs := range [][]Record{xmlRecs, jsonRecs} {
		if len(recs) != 1 || recs[0].Err != nil {
			t.Fatalf("records %+v", recs)
		}
		eq(t, recs[0].Ref+" rs_library", recs[0].User.RSLibrary, "R2")
	}
}

// TestLabelsAreTheSameInXMLAndJSON: the same user, described in XML and in
// JSON, gives the same labels: an upper-cased code is labelled upper-cased,
// an identifier's status and a block's status (plain values in Alma's
// schema) are not labelled, and a code described twice keeps its last
// description.
func TestLabelsAreTheSameInXMLAndJSON(t *testing.T) {
	xmlDoc := `<user><primary_id>a</primary_id><record_type desc="Staff member">staff</record_type>
		<contact_info><addresses>
			<address><line1>1</line1><address_types><address_type desc="Home">home</address_type></address_types></address>
			<address><line1>2</line1><address_types><address_type desc="House">home</address_type></address_types></address>
		</addresses></contact_info>
		<user_identifiers><user_identifier><id_type>BARCODE</id_type><value>1</value><status desc="Active">active</status></user_identifier></user_identifiers>
		<user_blocks><user_block><block_type>GENERAL</block_type><block_description>X</block_description><block_status desc="Active">active</block_status></user_block></user_blocks>
	</user>`
	jsonDoc := `{"primary_id": "a", "record_type": {"value": "staff", "desc": "Staff member"},
		"contact_info": {"address": [
			{"line1": "1", "address_type": [{"value": "home", "desc": "Home"}]},
			{"line1": "2", "address_type": [{"value": "home", "desc": "House"}]}]},
		"user_identifier": [{"id_type": "BARCODE", "value": "1", "status": {"value": "active", "desc": "Active"}}],
		"user_block": [{"block_type": "GENERAL", "block_description": "X", "block_status": {"value": "active", "desc": "Active"}}]}`
	jsonRecs, err := decodeAll(t, JSON(Limits{}), strings.NewReader(jsonDoc))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]Label{{"record_type", "STAFF", "Staff member"}, {"address_type", "home", "House"}})
	for name, recs := range map[string][]Record{"xml": decodeString(t, xmlDoc, Limits{}), "json": jsonRecs} {
		if len(recs) != 1 || recs[0].Err != nil {
			t.Fatalf("%s: records %+v", name, recs)
		}
		eq(t, name+" labels", fmt.Sprint(recs[0].Labels), want)
		eq(t, name+" identifier status", recs[0].User.Identifiers[0].Status, "ACTIVE")
		eq(t, name+" block status", recs[0].User.Blocks[0].BlockStatus, "ACTIVE")
	}
}

// TestARejectedRowNamesItsFirstEightProblems: a CSV row with many bad
// cells is rejected with the first eight, then how many more, as a JSON
// user is.
func TestARejectedRowNamesItsFirstEightProblems(t *testing.T) {
	header, row := []string{"primary_id"}, []string{"u1"}
	for n := 1; n <= 10; n++ {
		header = append(header, fmt.Sprintf("proxy_for_%d", n), fmt.Sprintf("proxy_for_%d_expiry_date", n))
		row = append(row, "sponsor", fmt.Sprintf("2030-13-%02d", n))
	}
	data := strings.Join(header, ",") + "\n" + strings.Join(row, ",") + "\n"
	recs, err := decodeAll(t, CSV(Limits{}), strings.NewReader(data))
	if err != nil || len(recs) != 1 || recs[0].Err == nil {
		t.Fatalf("Decode: %v, %+v", err, recs)
	}
	msg := recs[0].Err.Error()
	for _, part := range []string{`line 2 (primary_id "u1"): proxy_for_1_expiry_date: "2030-13-01" is not a date`, "proxy_for_8_expiry_date", "; and 2 more"} {
		if !strings.Contains(msg, part) {
			t.Errorf("error %q does not say %q", msg, part)
		}
	}
	if strings.Contains(msg, "proxy_for_9_") {
		t.Errorf("error %q names more than eight problems", msg)
	}
}
