package sis

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/patronkit/patronkit/patron"
)

// Alma's users API (/almaws/v1/users, adapters/almaapi) reads and writes
// the same user record as the SIS files, in the same XML and JSON: the
// functions here walk the same tables (alma.go), with what the API adds:
// each code's description (XML's desc attribute, JSON's {"value",
// "desc"}), the user's link, the counts of expand=loans,requests,fees,
// the brief view, and the segments' segment_type read as sent.

// APIUser says what Alma's users API writes of a user besides the record.
type APIUser struct {
	// Desc is the description of code in the code table table ("" for
	// none): the desc of a code field. Nil: none.
	Desc func(table, code string) string
	// Link is the user's URL in the API (the link attribute or key); ""
	// for none.
	Link string
	// Brief is Alma's brief view: the core fields, emails, identifiers
	// and statistics only.
	Brief bool
	// Loans and Requests, when set, are the counts of expand=loans and
	// expand=requests; Fees the balance of expand=fees; each with its
	// link.
	Loans, Requests         *int
	Fees                    *float64
	LoansLink, RequestsLink string
	FeesLink                string
}

// apiDate is a date as Alma's users API writes it: 2030-01-16Z.
func apiDate(v *fieldValue) string {
	switch {
	case v.text == "":
		return ""
	case v.dateTime:
		return v.text + "T00:00:00Z"
	}
	return v.text + "Z"
}

// enumDescs are the descriptions of the codes of Alma's fixed lists when
// the institution's code tables give none.
var enumDescs = map[string]string{
	"ACTIVE": "Active", "INACTIVE": "Inactive", "PUBLIC": "Public", "STAFF": "Staff", "CONTACT": "Contact",
	"INTERNAL": "Internal", "EXTERNAL": "External",
}

func (o *APIUser) desc(v *fieldValue, code string) string {
	if v.table == "" || code == "" {
		return ""
	}
	if o.Desc != nil {
		if d := o.Desc(v.table, code); d != "" {
			return d
		}
	}
	if v.kind == kEnum {
		return enumDescs[code]
	}
	return ""
}

// briefSegment tells whether the brief view writes a segment list.
func briefSegment(n *segmentNames) bool {
	return n.item == "email" || n.item == "user_identifier" || n.item == "user_statistic"
}

// WriteAPIUserXML writes u as the <user> element of Alma's users API
// (rest_user.xsd), without an XML declaration.
func WriteAPIUserXML(w io.Writer, u *patron.User, o *APIUser) error {
	if o == nil {
		o = &APIUser{}
	}
	x := newXMLWriter(w)
	x.enc.Indent("", "  ")
	var attrs []xml.Attr
	if o.Link != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "link"}, Value: o.Link})
	}
	x.start("user", attrs)
	x.buf = userFields.values(u, x.buf[:0])
	x.apiFields(x.buf, o)
	count := func(name, text, link string) {
		var a []xml.Attr
		if link != "" {
			a = append(a, xml.Attr{Name: xml.Name{Local: "link"}, Value: link})
		}
		x.start(name, a)
		if x.err == nil {
			x.err = x.enc.EncodeToken(xml.CharData(text))
		}
		x.end(name)
	}
	if o.Loans != nil {
		count("loans", strconv.Itoa(*o.Loans), o.LoansLink)
	}
	if o.Requests != nil {
		count("requests", strconv.Itoa(*o.Requests), o.RequestsLink)
	}
	if o.Fees != nil {
		count("fees", strconv.FormatFloat(*o.Fees, 'f', -1, 64), o.FeesLink)
	}
	open := false
	for _, s := range userSegments {
		n := s.names()
		if !n.contact || s.size(u) == 0 || o.Brief && !briefSegment(n) {
			continue
		}
		if !open {
			x.start(contactInfo, nil)
			open = true
		}
		x.apiSegment(s, u, o)
	}
	if open {
		x.end(contactInfo)
	}
	for _, s := range userSegments {
		n := s.names()
		if !n.contact && s.size(u) > 0 && (!o.Brief || briefSegment(n)) {
			x.apiSegment(s, u, o)
		}
	}
	x.end("user")
	if x.err == nil {
		x.err = x.enc.Flush()
	}
	return x.err
}

func (x *xmlWriter) apiSegment(s almaSegment, u *patron.User, o *APIUser) {
	n := s.names()
	x.start(n.list, nil)
	s.each(u, func(vals []fieldValue) error {
		var attrs []xml.Attr
		for i := range vals {
			if v := &vals[i]; v.attr && v.exported && (v.always || !v.empty()) {
				attrs = append(attrs, xml.Attr{Name: xml.Name{Local: v.name}, Value: xmlText(v)})
			}
		}
		x.start(n.item, attrs)
		x.apiFields(vals, o)
		x.end(n.item)
		return nil
	})
	x.end(n.list)
}

// apiFields writes the element fields of a record, codes with their desc
// and dates as Alma writes them.
func (x *xmlWriter) apiFields(vals []fieldValue, o *APIUser) {
	code := func(name string, v *fieldValue, c string) {
		var a []xml.Attr
		if d := o.desc(v, c); d != "" {
			a = append(a, xml.Attr{Name: xml.Name{Local: "desc"}, Value: d})
		}
		x.start(name, a)
		if x.err == nil {
			x.err = x.enc.EncodeToken(xml.CharData(c))
		}
		x.end(name)
	}
	for i := range vals {
		v := &vals[i]
		if v.attr || !v.exported || !v.always && v.empty() {
			continue
		}
		switch v.kind {
		case kCodes:
			x.start(v.name, nil)
			for _, c := range v.codes {
				code(v.item, v, c)
			}
			x.end(v.name)
		case kFirstCode:
			x.start(v.name, nil)
			x.start(v.item, nil)
			code(itemCode, v, v.text)
			x.end(v.item)
			x.end(v.name)
		case kCode, kEnum:
			code(v.name, v, v.text)
		case kDate:
			x.element(v.name, apiDate(v))
		default:
			x.element(v.name, xmlText(v))
		}
	}
}

// jsonObject is a JSON object that keeps its keys in order.
type jsonObject []jsonMember

type jsonMember struct {
	key   string
	value any
}

// MarshalJSON implements json.Marshaler.
func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// APIUserJSON is u as a user object of Alma's users API in JSON: code
// fields as {"value", "desc"}, lists under their item's name
// (user_identifier, contact_info.email...), dates as Alma writes them.
func APIUserJSON(u *patron.User, o *APIUser) ([]byte, error) {
	if o == nil {
		o = &APIUser{}
	}
	var obj jsonObject
	obj = apiJSONFields(obj, userFields.values(u, nil), o, true)
	if o.Link != "" {
		obj = append(obj, jsonMember{"link", o.Link})
	}
	count := func(name string, value any, link string) {
		c := jsonObject{{"value", value}}
		if link != "" {
			c = append(c, jsonMember{"link", link})
		}
		obj = append(obj, jsonMember{name, c})
	}
	if o.Loans != nil {
		count("loans", *o.Loans, o.LoansLink)
	}
	if o.Requests != nil {
		count("requests", *o.Requests, o.RequestsLink)
	}
	if o.Fees != nil {
		count("fees", *o.Fees, o.FeesLink)
	}
	var contact jsonObject
	for _, s := range userSegments {
		n := s.names()
		if o.Brief && !briefSegment(n) {
			continue
		}
		items := []jsonObject{}
		s.each(u, func(vals []fieldValue) error {
			items = append(items, apiJSONFields(nil, vals, o, false))
			return nil
		})
		if n.contact {
			contact = append(contact, jsonMember{n.item, items})
		} else {
			obj = append(obj, jsonMember{n.item, items})
		}
	}
	obj = append(obj, jsonMember{contactInfo, contact})
	return json.Marshal(obj)
}

func apiJSONFields(obj jsonObject, vals []fieldValue, o *APIUser, all bool) jsonObject {
	code := func(v *fieldValue, c string) jsonObject {
		return jsonObject{{"value", c}, {"desc", o.desc(v, c)}}
	}
	for i := range vals {
		v := &vals[i]
		if !v.exported || !all && !v.always && v.empty() && v.kind != kCode {
			continue
		}
		switch v.kind {
		case kCodes:
			cs := []jsonObject{}
			for _, c := range v.codes {
				cs = append(cs, code(v, c))
			}
			obj = append(obj, jsonMember{v.item, cs})
		case kFirstCode:
			cs := []jsonObject{}
			if v.text != "" {
				cs = append(cs, jsonObject{{itemCode, code(v, v.text)}})
			}
			obj = append(obj, jsonMember{v.item, cs})
		case kCode, kEnum:
			if v.table == "" {
				obj = append(obj, jsonMember{v.name, v.text})
			} else {
				obj = append(obj, jsonMember{v.name, code(v, v.text)})
			}
		case kDate:
			if d := apiDate(v); d != "" {
				obj = append(obj, jsonMember{v.name, d})
			}
		case kBool:
			obj = append(obj, jsonMember{v.name, v.flag})
		default:
			obj = append(obj, jsonMember{v.name, v.text})
		}
	}
	return obj
}

// ErrNoAPIUser is ReadAPIUser's error for a body that holds no user.
var ErrNoAPIUser = errors.New("the body holds no user")

// ReadAPIUser reads the user a client of Alma's users API sends (POST or
// PUT /almaws/v1/users), as XML (a <user> element) or JSON (a user
// object), with the readers of the SIS formats, but each segment's
// segment_type as sent (none being Internal) and notes of the library's
// origin unless External. It returns the labels the body gives its codes.
func ReadAPIUser(body []byte, asXML bool, l Limits) (*patron.User, []Label, error) {
	l = l.withDefaults()
	if int64(len(body)) > l.MaxUserBytes {
		return nil, nil, &LimitError{Limit: "MaxUserBytes", Value: l.MaxUserBytes, What: "the user"}
	}
	var u *patron.User
	var labels []Label
	if asXML {
		d := xml.NewDecoder(bytes.NewReader(body))
		found := false
		for !found {
			tok, err := d.Token()
			if err == io.EOF {
				return nil, nil, ErrNoAPIUser
			}
			if err != nil {
				return nil, nil, err
			}
			if el, ok := tok.(xml.StartElement); ok {
				if el.Name.Local != "user" {
					return nil, nil, errors.New("the root element is <" + el.Name.Local + ">, not <user>")
				}
				found = true
			}
		}
		p := &userReader{keepTypes: true}
		var err error
		if u, labels, err = p.decode(body, 1); err != nil {
			return nil, nil, err
		}
	} else {
		var recs []Record
		in := &readBudget{r: stripUTF8BOM(bytes.NewReader(body)), max: -1}
		dec := json.NewDecoder(in)
		dec.UseNumber()
		w := &jsonWalker{ctx: context.Background(), dec: dec, in: in, lim: l, keepTypes: true, emit: func(r Record) error { recs = append(recs, r); return nil }}
		if err := w.run(); err != nil {
			return nil, nil, err
		}
		if len(recs) != 1 {
			return nil, nil, ErrNoAPIUser
		}
		if recs[0].Err != nil {
			return nil, nil, recs[0].Err
		}
		u, labels = recs[0].User, recs[0].Labels
	}
	for i := range u.ProxyFor {
		u.ProxyFor[i].SegmentType = ""
	}
	for i := range u.Notes {
		if u.Notes[i].SegmentType != patron.SegmentExternal {
			u.Notes[i].Origin = ""
		}
	}
	return u, labels, nil
}

// APIDate is a date (YYYY-MM-DD) as Alma's users API writes it:
// 2030-01-16Z; "" stays "".
func APIDate(d string) string {
	if d == "" {
		return ""
	}
	return strings.TrimSpace(d) + "Z"
}
