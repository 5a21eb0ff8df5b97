package sis

import (
	"bufio"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// What an export writes.
const (
	// ExportUsers writes whole user records.
	ExportUsers = "users"
	// ExportBlocks writes each user's primary_id and blocks.
	ExportBlocks = "blocks"
)

// Export writes the users of a profile (external users whose external_id
// names it), or only their blocks, as Alma user XML (a <users> root, valid
// against Alma's rest_users.xsd), the format the XML import reads back. A
// block's expiry date is written as the schema types it, a date-time at
// midnight UTC (2027-01-01T00:00:00Z); a proxy's expiry date, which the
// schema has no place for, and PINs are not written. It streams: a user is
// read, written and let go.
func (s *Service) Export(ctx context.Context, inst, code, what string, w io.Writer) error {
	if what != ExportUsers && what != ExportBlocks {
		return &fault.Error{Kind: fault.Invalid, Detail: "what must be users or blocks", Fields: []fault.FieldError{{Field: "what", Code: "unknown_value", Message: "must be one of: users, blocks"}}}
	}
	if _, err := s.Profile(ctx, inst, code); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := io.WriteString(bw, xml.Header+"<users>\n"); err != nil {
		return err
	}
	xw := newXMLWriter(bw)
	err := s.patrons.EachOfProfile(ctx, inst, code, func(u *patron.User) error {
		if what == ExportBlocks {
			u = &patron.User{PrimaryID: u.PrimaryID, Blocks: u.Blocks}
		}
		return xw.user(u)
	})
	if err != nil {
		return fmt.Errorf("sis: export: %w", err)
	}
	if _, err := io.WriteString(bw, "</users>\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// xmlWriter writes users as Alma's user XML, from userFields and
// userSegments: the format the XML reader reads back.
type xmlWriter struct {
	w   io.Writer
	enc *xml.Encoder
	err error
	buf []fieldValue
}

func newXMLWriter(w io.Writer) *xmlWriter {
	enc := xml.NewEncoder(w)
	enc.Indent("  ", "  ")
	return &xmlWriter{w: w, enc: enc}
}

// user writes one <user> element and a line break.
func (x *xmlWriter) user(u *patron.User) error {
	x.start("user", nil)
	x.buf = userFields.values(u, x.buf[:0])
	x.fields(x.buf)
	x.contact(u)
	for _, s := range userSegments {
		if !s.names().contact && s.size(u) > 0 {
			x.segment(s, u)
		}
	}
	x.end("user")
	if x.err == nil {
		x.err = x.enc.Flush()
	}
	if x.err == nil {
		_, x.err = io.WriteString(x.w, "\n")
	}
	return x.err
}

// contact writes <contact_info> with the lists it holds, when u has any.
func (x *xmlWriter) contact(u *patron.User) {
	open := false
	for _, s := range userSegments {
		if !s.names().contact || s.size(u) == 0 {
			continue
		}
		if !open {
			x.start(contactInfo, nil)
			open = true
		}
		x.segment(s, u)
	}
	if open {
		x.end(contactInfo)
	}
}

// segment writes a segment list of u: the list element, an item element
// for each segment, the attribute fields on it and the others in it.
func (x *xmlWriter) segment(s almaSegment, u *patron.User) {
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
		x.fields(vals)
		x.end(n.item)
		return nil
	})
	x.end(n.list)
}

// fields writes the element fields of a record.
func (x *xmlWriter) fields(vals []fieldValue) {
	for i := range vals {
		v := &vals[i]
		if v.attr || !v.exported || !v.always && v.empty() {
			continue
		}
		switch v.kind {
		case kCodes:
			x.start(v.name, nil)
			for _, c := range v.codes {
				x.element(v.item, c)
			}
			x.end(v.name)
		case kFirstCode:
			x.start(v.name, nil)
			x.start(v.item, nil)
			x.element(itemCode, v.text)
			x.end(v.item)
			x.end(v.name)
		default:
			x.element(v.name, xmlText(v))
		}
	}
}

// xmlText is a value as Alma's XML writes it.
func xmlText(v *fieldValue) string {
	switch {
	case v.kind == kBool:
		return strconv.FormatBool(v.flag)
	case v.dateTime && v.text != "":
		return v.text + "T00:00:00Z"
	}
	return v.text
}

func (x *xmlWriter) start(name string, attrs []xml.Attr) {
	if x.err == nil {
		x.err = x.enc.EncodeToken(xml.StartElement{Name: xml.Name{Local: name}, Attr: attrs})
	}
}

func (x *xmlWriter) end(name string) {
	if x.err == nil {
		x.err = x.enc.EncodeToken(xml.EndElement{Name: xml.Name{Local: name}})
	}
}

func (x *xmlWriter) element(name, text string) {
	x.start(name, nil)
	if x.err == nil {
		x.err = x.enc.EncodeToken(xml.CharData(text))
	}
	x.end(name)
}
