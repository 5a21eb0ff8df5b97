package sis

import (
	"fmt"
	"strings"

	"github.com/patronkit/patronkit/patron"
)

// Alma's user record (rest_user.xsd) is described here once, and mapped
// here once to patron.User: the XML reader, the JSON reader, the CSV reader
// and the XML export all walk userFields and userSegments. A field added to
// patron.User is mapped by adding it to these tables; each format keeps
// only what is its own (XML's desc attributes and list elements, JSON's
// {"value", "desc"} objects and flattened lists, CSV's numbered columns).

// valueKind is what a value of Alma's user record holds, and so how each
// format reads and writes it.
type valueKind uint8

const (
	// kText is text, as it is.
	kText valueKind = iota
	// kCode is a code of a code table (user_group, id_type...). A file may
	// describe the code (XML's desc attribute, JSON's {"value", "desc"}):
	// the record then gets a Label of the field's table.
	kCode
	// kEnum is a code of a fixed list (ACTIVE, PUBLIC...), read in upper
	// case; it is labelled like a code when its field has a table.
	kEnum
	// kDate is a date, read with Date and kept as YYYY-MM-DD.
	kDate
	// kBool is true or false.
	kBool
	// kCodes is a list of codes (an address's types): in XML a list
	// element, named by the field (address_types), of code elements named
	// by item (address_type); in JSON a list under the key item.
	kCodes
	// kFirstCode is the code of the first of a list of items that each
	// hold a code: rs_libraries > rs_library > code in XML, rs_library[]
	// with "code" keys in JSON.
	kFirstCode
)

// itemCode is the name of the code in the items of a kFirstCode list.
const itemCode = "code"

// fieldMeta describes one field of Alma's user record or of one of its
// segments: everything but where its value is.
type fieldMeta struct {
	// name is Alma's name: the XML element (or attribute), the JSON key.
	name string
	kind valueKind
	// table is the code table of the field's labels ("" for none): the
	// field's own name for a code, item for a list of codes.
	table string
	// item names one code of a kCodes list, or one item of a kFirstCode
	// list.
	item string
	// csv is the CSV column (a user's field) or the column's suffix in its
	// group ("" is the group's own column, email_N); inCSV says whether the
	// CSV format has it at all.
	csv   string
	inCSV bool
	// attr: XML holds it as an attribute of the segment's element.
	attr bool
	// always: the export writes it even when it is empty.
	always bool
	// exported: the export writes it (Alma's schema has no place for some
	// fields the SIS formats read: a proxy's expiry date; a PIN is never
	// written out).
	exported bool
	// readable: the readers take it from a file. segment_type is written
	// only: every segment of an SIS file is External, whatever it says.
	readable bool
	// dateTime: Alma's schema types it xs:dateTime (a block's expiry); the
	// export writes the date at midnight UTC.
	dateTime bool
}

// jsonKey is the field's key in Alma's JSON.
func (m *fieldMeta) jsonKey() string {
	if m.kind == kCodes || m.kind == kFirstCode {
		return m.item
	}
	return m.name
}

// field is a fieldMeta and where its value is in a T (patron.User or a
// segment type): str for text, code, enum, date and first-code fields, flag
// for kBool, codes for kCodes.
type field[T any] struct {
	fieldMeta
	str   func(*T) *string
	flag  func(*T) *bool
	codes func(*T) *patron.Codes
}

func newField[T any](name string, kind valueKind) field[T] {
	return field[T]{fieldMeta: fieldMeta{name: name, kind: kind, csv: name, inCSV: true, exported: true, readable: true}}
}

// stringField is a field held in a string, labelled in table ("" for
// none).
func stringField[T any](name string, kind valueKind, table string, at func(*T) *string) field[T] {
	f := newField[T](name, kind)
	f.table, f.str = table, at
	return f
}

// textField is a field of text.
func textField[T any](name string, at func(*T) *string) field[T] {
	return stringField(name, kText, "", at)
}

// codeField is a code whose labels go to the table of its name.
func codeField[T any](name string, at func(*T) *string) field[T] {
	return stringField(name, kCode, name, at)
}

// enumField is a code of a fixed list, labelled in the table of its name.
func enumField[T any](name string, at func(*T) *string) field[T] {
	return stringField(name, kEnum, name, at)
}

// dateField is a date.
func dateField[T any](name string, at func(*T) *string) field[T] {
	return stringField(name, kDate, "", at)
}

// boolField is a true/false value.
func boolField[T any](name string, at func(*T) *bool) field[T] {
	f := newField[T](name, kBool)
	f.flag = at
	return f
}

// codesField is a list of codes, labelled in the table of item.
func codesField[T any](name, item string, at func(*T) *patron.Codes) field[T] {
	f := newField[T](name, kCodes)
	f.item, f.table, f.codes = item, item, at
	return f
}

// firstCodeField is the code of the first item of the list name, whose
// items are named item; labels and the CSV column are named item too.
func firstCodeField[T any](name, item string, at func(*T) *string) field[T] {
	f := stringField(name, kFirstCode, item, at)
	f.item, f.csv = item, item
	return f
}

// column names the field's CSV column (or suffix).
func (f field[T]) column(c string) field[T] { f.csv = c; return f }

// notInCSV says the CSV format has no column for the field.
func (f field[T]) notInCSV() field[T] { f.inCSV, f.csv = false, ""; return f }

// attribute says XML holds the field as an attribute.
func (f field[T]) attribute() field[T] { f.attr = true; return f }

// required says the export writes the field even when it is empty.
func (f field[T]) required() field[T] { f.always = true; return f }

// unlabelled says the field's codes have no code table.
func (f field[T]) unlabelled() field[T] { f.table = ""; return f }

// notExported says the export does not write the field.
func (f field[T]) notExported() field[T] { f.exported = false; return f }

// writtenOnly says the readers pass the field over.
func (f field[T]) writtenOnly() field[T] { f.readable = false; return f }

// asDateTime says Alma's schema types the field xs:dateTime.
func (f field[T]) asDateTime() field[T] { f.dateTime = true; return f }

// fieldValue is the value of one field of a record, for writing it.
type fieldValue struct {
	*fieldMeta
	text  string       // every kind but kBool and kCodes
	flag  bool         // kBool
	codes patron.Codes // kCodes
}

// empty reports whether the value has nothing to write.
func (v *fieldValue) empty() bool {
	switch v.kind {
	case kBool:
		return false // false is a value
	case kCodes:
		return len(v.codes) == 0
	}
	return v.text == ""
}

// fieldTable is the fields of a record, in the order the export writes
// them, with indexes by each format's names.
type fieldTable[T any] struct {
	all    []field[T]
	byXML  map[string]*field[T] // readable child elements
	attrs  []*field[T]          // readable XML attributes
	byJSON map[string]*field[T]
	byCSV  map[string]*field[T]
}

func newFieldTable[T any](fields ...field[T]) *fieldTable[T] {
	t := &fieldTable[T]{all: fields, byXML: map[string]*field[T]{}, byJSON: map[string]*field[T]{}, byCSV: map[string]*field[T]{}}
	for i := range t.all {
		f := &t.all[i]
		if !f.readable {
			continue
		}
		if f.attr {
			if f.kind != kBool {
				panic(fmt.Sprintf("sis: Alma's user record reads the attribute %q, which is not true/false", f.name))
			}
			t.attrs = append(t.attrs, f)
		} else {
			mustAdd(t.byXML, f.name, f)
		}
		mustAdd(t.byJSON, f.jsonKey(), f)
		if f.inCSV {
			mustAdd(t.byCSV, f.csv, f)
		}
	}
	return t
}

// mustAdd indexes f by name; two fields of one name are a mistake in the
// tables below.
func mustAdd[T any](m map[string]*field[T], name string, f *field[T]) {
	if _, dup := m[name]; dup {
		panic(fmt.Sprintf("sis: Alma's user record maps %q twice", name))
	}
	m[name] = f
}

// values appends the values of x's fields to buf.
func (t *fieldTable[T]) values(x *T, buf []fieldValue) []fieldValue {
	for i := range t.all {
		f := &t.all[i]
		v := fieldValue{fieldMeta: &f.fieldMeta}
		switch f.kind {
		case kBool:
			v.flag = *f.flag(x)
		case kCodes:
			v.codes = *f.codes(x)
		default:
			v.text = *f.str(x)
		}
		buf = append(buf, v)
	}
	return buf
}

// segment is a list of a user's segments of type T: Alma's list element
// and item element (user_identifiers, user_identifier; JSON's key is the
// item), inside contact_info or not, and the CSV group (identifier_N_...).
type segment[T any] struct {
	segmentNames
	// zero is a new item: every segment of an SIS file is External, and
	// its notes have the external origin.
	zero   T
	of     func(*patron.User) *[]T
	fields *fieldTable[T]
	// typed is the segment_type field, nil for a list without one.
	typed *field[T]
}

// segmentNames names a segment list in each format.
type segmentNames struct {
	list, item string
	contact    bool
	csv        string
	// csvColumns are the suffixes of the columns the CSV format reads in
	// the group, and csvBools the yes/no ones.
	csvColumns []string
	csvBools   map[string]bool
}

// almaSegment is a segment list of Alma's user record, whatever its
// type. Each format implements its part in its own file.
type almaSegment interface {
	names() *segmentNames
	// clear empties the list in u; size is its length.
	clear(u *patron.User)
	size(u *patron.User) int
	// each calls fn with the values of each item of the list in u.
	each(u *patron.User, fn func([]fieldValue) error) error
	readXML(p *userReader, u *patron.User) error
	readJSON(w *jsonWalker, u *patron.User, path string) error
	readCSV(r *csvRow, u *patron.User, g *csvGroup)
}

func newSegment[T any](names segmentNames, zero T, of func(*patron.User) *[]T, fields ...field[T]) *segment[T] {
	s := &segment[T]{segmentNames: names, zero: zero, of: of, fields: newFieldTable(fields...)}
	for i := range s.fields.all {
		if s.fields.all[i].name == segmentTypeName {
			s.typed = &s.fields.all[i]
		}
	}
	s.csvBools = map[string]bool{}
	for _, f := range s.fields.all {
		if f.readable && f.inCSV {
			s.csvColumns = append(s.csvColumns, f.csv)
			if f.kind == kBool {
				s.csvBools[f.csv] = true
			}
		}
	}
	return s
}

func (s *segment[T]) names() *segmentNames    { return &s.segmentNames }
func (s *segment[T]) clear(u *patron.User)    { *s.of(u) = nil }
func (s *segment[T]) size(u *patron.User) int { return len(*s.of(u)) }

// add appends a new segment to the list in u and returns it, to be read
// in place.
func (s *segment[T]) add(u *patron.User) *T {
	list := s.of(u)
	*list = append(*list, s.zero)
	return &(*list)[len(*list)-1]
}

func (s *segment[T]) each(u *patron.User, fn func([]fieldValue) error) error {
	items := *s.of(u)
	var buf []fieldValue
	for i := range items {
		buf = s.fields.values(&items[i], buf[:0])
		if err := fn(buf); err != nil {
			return err
		}
	}
	return nil
}

// external is the segment every segment of an SIS record gets.
var external = patron.Segment{SegmentType: patron.SegmentExternal}

// segmentTypeName is the name of a segment's segment_type attribute.
const segmentTypeName = "segment_type"

// setType sets the segment_type of x to what a document of Alma's users
// API sent (see ReadAPIUser): External or Internal in any case, as it is
// otherwise, for the validator to name.
func (s *segment[T]) setType(x *T, sent string) {
	if s.typed == nil {
		return
	}
	switch sent = strings.TrimSpace(sent); {
	case strings.EqualFold(sent, patron.SegmentExternal):
		sent = patron.SegmentExternal
	case strings.EqualFold(sent, patron.SegmentInternal):
		sent = patron.SegmentInternal
	}
	*s.typed.str(x) = sent
}

// segmentType is the segment_type attribute of a segment: written, and
// read only from Alma's users API (an SIS file's segments are all
// External).
func segmentType[T any](at func(*T) *patron.Segment) field[T] {
	return textField(segmentTypeName, func(x *T) *string { return &at(x).SegmentType }).attribute().required().writtenOnly().notInCSV()
}

// userFields are the fields of Alma's user record that patron.User holds,
// in the order the export writes them. Alma's other fields (full_name,
// pref_*, user_roles, web_site_url...) are passed over by every reader.
var userFields = newFieldTable(
	enumField("record_type", func(u *patron.User) *string { return &u.RecordType }),
	textField("primary_id", func(u *patron.User) *string { return &u.PrimaryID }).required(),
	textField("first_name", func(u *patron.User) *string { return &u.FirstName }),
	textField("middle_name", func(u *patron.User) *string { return &u.MiddleName }),
	textField("last_name", func(u *patron.User) *string { return &u.LastName }),
	codeField("user_title", func(u *patron.User) *string { return &u.UserTitle }),
	codeField("job_category", func(u *patron.User) *string { return &u.JobCategory }),
	textField("job_description", func(u *patron.User) *string { return &u.JobDescription }),
	codeField("gender", func(u *patron.User) *string { return &u.Gender }),
	codeField("user_group", func(u *patron.User) *string { return &u.UserGroup }),
	codeField("campus_code", func(u *patron.User) *string { return &u.CampusCode }),
	codeField("preferred_language", func(u *patron.User) *string { return &u.PreferredLanguage }),
	dateField("birth_date", func(u *patron.User) *string { return &u.BirthDate }),
	dateField("expiry_date", func(u *patron.User) *string { return &u.ExpiryDate }),
	dateField("purge_date", func(u *patron.User) *string { return &u.PurgeDate }),
	enumField("account_type", func(u *patron.User) *string { return &u.AccountType }).notInCSV(),
	textField("external_id", func(u *patron.User) *string { return &u.ExternalID }).notInCSV(),
	enumField("status", func(u *patron.User) *string { return &u.Status }),
	textField("pin_number", func(u *patron.User) *string { return &u.PINNumber }).notInCSV().notExported(),
	firstCodeField("rs_libraries", "rs_library", func(u *patron.User) *string { return &u.RSLibrary }),
)

// contactInfo is the element (XML) or key (JSON) that holds the addresses,
// emails and phones.
const contactInfo = "contact_info"

// userSegments are the segment lists of Alma's user record, in the order
// the export writes them (contact_info's in the order Alma's schema wants
// them: addresses, emails, phones).
var userSegments = []almaSegment{
	newSegment(segmentNames{list: "addresses", item: "address", contact: true, csv: "address"},
		patron.Address{Segment: external}, func(u *patron.User) *[]patron.Address { return &u.Addresses },
		boolField("preferred", func(a *patron.Address) *bool { return &a.Preferred }).attribute(),
		segmentType(func(a *patron.Address) *patron.Segment { return &a.Segment }),
		textField("line1", func(a *patron.Address) *string { return &a.Line1 }).required(),
		textField("line2", func(a *patron.Address) *string { return &a.Line2 }),
		textField("line3", func(a *patron.Address) *string { return &a.Line3 }),
		textField("line4", func(a *patron.Address) *string { return &a.Line4 }),
		textField("line5", func(a *patron.Address) *string { return &a.Line5 }),
		textField("city", func(a *patron.Address) *string { return &a.City }),
		textField("state_province", func(a *patron.Address) *string { return &a.StateProvince }),
		textField("postal_code", func(a *patron.Address) *string { return &a.PostalCode }),
		codeField("country", func(a *patron.Address) *string { return &a.Country }),
		textField("address_note", func(a *patron.Address) *string { return &a.AddressNote }).column("note"),
		dateField("start_date", func(a *patron.Address) *string { return &a.StartDate }),
		dateField("end_date", func(a *patron.Address) *string { return &a.EndDate }),
		codesField("address_types", "address_type", func(a *patron.Address) *patron.Codes { return &a.AddressTypes }).column("types"),
	),
	newSegment(segmentNames{list: "emails", item: "email", contact: true, csv: "email"},
		patron.Email{Segment: external}, func(u *patron.User) *[]patron.Email { return &u.Emails },
		boolField("preferred", func(e *patron.Email) *bool { return &e.Preferred }).attribute(),
		segmentType(func(e *patron.Email) *patron.Segment { return &e.Segment }),
		textField("email_address", func(e *patron.Email) *string { return &e.EmailAddress }).required().column(""),
		textField("description", func(e *patron.Email) *string { return &e.Description }),
		codesField("email_types", "email_type", func(e *patron.Email) *patron.Codes { return &e.EmailTypes }).column("types"),
	),
	newSegment(segmentNames{list: "phones", item: "phone", contact: true, csv: "phone"},
		patron.Phone{Segment: external}, func(u *patron.User) *[]patron.Phone { return &u.Phones },
		boolField("preferred", func(p *patron.Phone) *bool { return &p.Preferred }).attribute(),
		boolField("preferred_sms", func(p *patron.Phone) *bool { return &p.PreferredSMS }).attribute(),
		segmentType(func(p *patron.Phone) *patron.Segment { return &p.Segment }),
		textField("phone_number", func(p *patron.Phone) *string { return &p.PhoneNumber }).required().column(""),
		codesField("phone_types", "phone_type", func(p *patron.Phone) *patron.Codes { return &p.PhoneTypes }).column("types"),
	),
	newSegment(segmentNames{list: "user_identifiers", item: "user_identifier", csv: "identifier"},
		patron.Identifier{Segment: external}, func(u *patron.User) *[]patron.Identifier { return &u.Identifiers },
		segmentType(func(x *patron.Identifier) *patron.Segment { return &x.Segment }),
		codeField("id_type", func(x *patron.Identifier) *string { return &x.IDType }).required().column("type"),
		textField("value", func(x *patron.Identifier) *string { return &x.Value }).required(),
		textField("note", func(x *patron.Identifier) *string { return &x.Note }),
		enumField("status", func(x *patron.Identifier) *string { return &x.Status }).unlabelled(),
	),
	newSegment(segmentNames{list: "user_blocks", item: "user_block", csv: "block"},
		patron.Block{Segment: external}, func(u *patron.User) *[]patron.Block { return &u.Blocks },
		segmentType(func(b *patron.Block) *patron.Segment { return &b.Segment }),
		codeField("block_type", func(b *patron.Block) *string { return &b.BlockType }).required().column("type"),
		codeField("block_description", func(b *patron.Block) *string { return &b.BlockDescription }).required().column("description"),
		enumField("block_status", func(b *patron.Block) *string { return &b.BlockStatus }).unlabelled().column("status"),
		textField("block_note", func(b *patron.Block) *string { return &b.BlockNote }).column("note"),
		// created_by and created_date are the library's, not the SIS's.
		dateField("expiry_date", func(b *patron.Block) *string { return &b.ExpiryDate }).asDateTime(),
	),
	newSegment(segmentNames{list: "user_notes", item: "user_note", csv: "note"},
		patron.Note{Segment: external, Origin: patron.OriginExternal}, func(u *patron.User) *[]patron.Note { return &u.Notes },
		segmentType(func(n *patron.Note) *patron.Segment { return &n.Segment }),
		codeField("note_type", func(n *patron.Note) *string { return &n.NoteType }).column("type"),
		textField("note_text", func(n *patron.Note) *string { return &n.NoteText }).required().column("text"),
		boolField("user_viewable", func(n *patron.Note) *bool { return &n.UserViewable }),
		boolField("popup_note", func(n *patron.Note) *bool { return &n.PopupNote }).column("popup"),
	),
	newSegment(segmentNames{list: "user_statistics", item: "user_statistic", csv: "statistic"},
		patron.Statistic{Segment: external}, func(u *patron.User) *[]patron.Statistic { return &u.Statistics },
		segmentType(func(s *patron.Statistic) *patron.Segment { return &s.Segment }),
		codeField("statistic_category", func(s *patron.Statistic) *string { return &s.StatisticCategory }).required().column("category"),
		codeField("category_type", func(s *patron.Statistic) *string { return &s.CategoryType }).column("type"),
		textField("statistic_note", func(s *patron.Statistic) *string { return &s.StatisticNote }).column("note"),
	),
	newSegment(segmentNames{list: "proxy_for_users", item: "proxy_for_user", csv: "proxy_for"},
		patron.ProxyFor{Segment: external}, func(u *patron.User) *[]patron.ProxyFor { return &u.ProxyFor },
		textField("primary_id", func(p *patron.ProxyFor) *string { return &p.PrimaryID }).required().column(""),
		// Alma's schema has no expiry date for a proxy: it is read, never
		// written.
		dateField("expiry_date", func(p *patron.ProxyFor) *string { return &p.ExpiryDate }).notExported(),
	),
}

// segmentNamed is the segment list of the user (contact false) or of its
// contact_info (contact true) that name names: its list element (json
// false) or its item, JSON's key (json true); nil if none.
func segmentNamed(name string, contact, json bool) almaSegment {
	for _, s := range userSegments {
		n := s.names()
		if n.contact == contact && (!json && n.list == name || json && n.item == name) {
			return s
		}
	}
	return nil
}
