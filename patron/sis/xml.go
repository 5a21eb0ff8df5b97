package sis

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/patronkit/patronkit/patron"
)

// XML returns the format of Alma's SIS user XML (rest_user.xsd): a root
// element, <users> or any other name (MIT writes <userRecords>), holding
// <user> elements, or a single <user> as the root. Elements may come in any
// order; elements that patron.User has no field for (<user_roles>,
// <pref_first_name>, <web_site_url>...) are ignored, and so are namespaces.
// A code (an element Alma's schema gives a desc attribute) keeps its code
// as the value, and its desc attribute becomes a Label of the table named
// by the element (rs_libraries' codes go to the table rs_library). Values
// are trimmed; an empty element is an empty string. Dates are read with
// Date; booleans are true or false in any case (1 and 0 too), empty being
// false. record_type, account_type, status, block_status and an
// identifier's status are upper-cased. Every segment is External and every
// note's origin external, whatever the file's segment_type says, as in an
// Alma SIS load; the first rs_library code is the user's RSLibrary. The
// fields and their names are Alma's user record as alma.go maps it, the
// same for every format.
//
// The file is read as a stream, one user at a time: memory does not grow
// with the number of users. A user that is not well-formed XML or has a bad
// value is emitted with an Err naming the line and the reason, and the
// other users still load. That holds for a <user> left open too: a user
// never contains another, so the next <user> tag, the end tag of the
// element around the users, or the end of the file ends it.
//
// Limits: a user element larger than Limits.MaxUserBytes, or nesting
// elements deeper than Limits.MaxDepth (the <user> counting as 1), is
// emitted with a *LimitError and the reading goes on with the next user: a
// user over the size limit is scanned to its end without being kept, so
// there is always a next user to go on with. Elements around the users
// nested deeper than MaxDepth refuse the whole file.
//
// The file is refused as a whole (Decode returns an error and emits
// nothing) when it is not XML (a PDF, JSON, an empty file), or declares an
// encoding that cannot be read. UTF-8 is expected; another encoding is
// converted when the XML declaration or a UTF-16 byte order mark names it.
// An XML file with no <user> is valid and emits nothing; a root element
// left open at the end of the file is not an error.
func XML(l Limits) Format { return xmlFormat{limits: l.withDefaults()} }

type xmlFormat struct{ limits Limits }

// Name is "xml".
func (xmlFormat) Name() string { return "xml" }

// Decode reads the users of an XML file, in file order. Record.Ref is
// "line N", the line where the user's <user> tag starts.
func (f xmlFormat) Decode(ctx context.Context, r io.Reader, emit func(Record) error) error {
	s := &xmlSplitter{
		r:      bufio.NewReaderSize(r, xmlBufferSize),
		lim:    f.limits,
		line:   1,
		ctx:    ctx,
		emit:   emit,
		tokCap: int(min(f.limits.MaxUserBytes+1, 1<<30)),
	}
	return s.run()
}

// errUserCut says a user element ended before its </user>.
var errUserCut = errors.New("sis: xml: the user element ends early")

// userReader maps one user element, decoded by encoding/xml, to a
// patron.User.
type userReader struct {
	d      *xml.Decoder
	line0  int // the element's first line, less one
	labels labelSet
	buf    []byte
	// keepTypes reads each segment's segment_type (Alma's users API);
	// an SIS file's segments are all External.
	keepTypes bool
}

// decode decodes the user element in chunk, which starts on the given
// line of the file. The reader is used again for the next user.
func (p *userReader) decode(chunk []byte, line int) (*patron.User, []Label, error) {
	p.d, p.line0, p.labels = xml.NewDecoder(bytes.NewReader(chunk)), line-1, nil
	for {
		tok, err := p.d.Token()
		if err != nil {
			return nil, nil, p.fail(err)
		}
		if _, ok := tok.(xml.StartElement); ok {
			break
		}
	}
	u := &patron.User{}
	if err := p.user(u); err != nil {
		return nil, nil, err
	}
	return u, p.labels, nil
}

// fail turns an encoding/xml error into one that names the line in the file.
func (p *userReader) fail(err error) error {
	var se *xml.SyntaxError
	switch {
	case errors.As(err, &se) && se.Msg == "unexpected EOF", err == io.EOF:
		return errUserCut
	case errors.As(err, &se):
		return fmt.Errorf("line %d: %s", p.line0+se.Line, se.Msg)
	}
	return err
}

// line is the line of the file the decoder is at.
func (p *userReader) line() int {
	l, _ := p.d.InputPos()
	return p.line0 + l
}

// each calls fn for every child element of the element being read, up to
// its end tag. fn must read the child through its end tag.
func (p *userReader) each(fn func(el xml.StartElement) error) error {
	for {
		tok, err := p.d.Token()
		if err != nil {
			return p.fail(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := fn(t); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

// skip reads an element that is not mapped.
func (p *userReader) skip() error {
	if err := p.d.Skip(); err != nil {
		return p.fail(err)
	}
	return nil
}

// text reads an element's text, trimmed; child elements are ignored.
func (p *userReader) text() (string, error) {
	p.buf = p.buf[:0]
	depth := 0
	for {
		tok, err := p.d.Token()
		if err != nil {
			return "", p.fail(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if depth == 0 {
				p.buf = append(p.buf, t...)
			}
		case xml.StartElement:
			depth++
		case xml.EndElement:
			if depth == 0 {
				return string(bytes.TrimSpace(p.buf)), nil
			}
			depth--
		}
	}
}

// code reads a code element whose desc attribute labels it in table.
func (p *userReader) code(el xml.StartElement, table string) (string, error) {
	v, err := p.text()
	if err == nil {
		p.labels.add(table, v, attr(el, "desc"))
	}
	return v, err
}

// enum reads a code of a fixed list (ACTIVE, PUBLIC...), in upper case.
func (p *userReader) enum(el xml.StartElement, table string) (string, error) {
	v, err := p.text()
	v = strings.ToUpper(v)
	if err == nil {
		p.labels.add(table, v, attr(el, "desc"))
	}
	return v, err
}

// date reads a date element as YYYY-MM-DD.
func (p *userReader) date(el xml.StartElement) (string, error) {
	line := p.line()
	v, err := p.text()
	if err != nil {
		return "", err
	}
	d, err := Date(v)
	if err != nil {
		return "", fmt.Errorf("line %d: %s: %v", line, el.Name.Local, err)
	}
	return d, nil
}

// boolean reads a true/false element; empty is false.
func (p *userReader) boolean(el xml.StartElement) (bool, error) {
	line := p.line()
	v, err := p.text()
	if err != nil {
		return false, err
	}
	b, ok := parseBool(v)
	if !ok {
		return false, fmt.Errorf("line %d: %s: %q is not true or false", line, el.Name.Local, v)
	}
	return b, nil
}

// boolAttr reads a true/false attribute; absent or empty is false.
func (p *userReader) boolAttr(el xml.StartElement, name string) (bool, error) {
	v := attr(el, name)
	b, ok := parseBool(v)
	if !ok {
		return false, fmt.Errorf("line %d: <%s %s=%q>: not true or false", p.line(), el.Name.Local, name, v)
	}
	return b, nil
}

func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "", "false", "0":
		return false, true
	case "true", "1":
		return true, true
	}
	return false, false
}

// attr is the trimmed value of an element's attribute, or empty.
func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if a.Name.Local == name {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// readXMLField reads the element el as the field f of x.
func readXMLField[T any](p *userReader, f *field[T], el xml.StartElement, x *T) (err error) {
	switch f.kind {
	case kText:
		*f.str(x), err = p.text()
	case kCode:
		*f.str(x), err = p.code(el, f.table)
	case kEnum:
		*f.str(x), err = p.enum(el, f.table)
	case kDate:
		*f.str(x), err = p.date(el)
	case kBool:
		*f.flag(x), err = p.boolean(el)
	case kCodes:
		err = p.codes(f.item, f.table, f.codes(x))
	case kFirstCode:
		err = p.firstCode(f.item, f.table, f.str(x))
	}
	return err
}

// readXMLFields reads the children of the element being read into the
// fields of x, passing over the elements the table has not.
func readXMLFields[T any](p *userReader, t *fieldTable[T], x *T) error {
	return p.each(func(el xml.StartElement) error {
		if f := t.byXML[el.Name.Local]; f != nil {
			return readXMLField(p, f, el, x)
		}
		return p.skip()
	})
}

// user reads the children of <user>.
func (p *userReader) user(u *patron.User) error {
	return p.each(func(el xml.StartElement) error {
		name := el.Name.Local
		if f := userFields.byXML[name]; f != nil {
			return readXMLField(p, f, el, u)
		}
		if s := segmentNamed(name, false, false); s != nil {
			return s.readXML(p, u)
		}
		if name == contactInfo {
			return p.each(func(el xml.StartElement) error {
				if s := segmentNamed(el.Name.Local, true, false); s != nil {
					return s.readXML(p, u)
				}
				return p.skip()
			})
		}
		return p.skip()
	})
}

// readXML reads a segment list element, each item into a new segment.
func (s *segment[T]) readXML(p *userReader, u *patron.User) error {
	return p.list(s.item, func(el xml.StartElement) error {
		x := s.add(u)
		if p.keepTypes {
			s.setType(x, attr(el, segmentTypeName))
		}
		err := readXMLAttrs(p, s.fields, el, x)
		if err == nil {
			err = readXMLFields(p, s.fields, x)
		}
		return err
	})
}

// readXMLAttrs reads the attributes of a segment's element that are
// fields of x (preferred, preferred_sms: true or false).
func readXMLAttrs[T any](p *userReader, t *fieldTable[T], el xml.StartElement, x *T) (err error) {
	for _, f := range t.attrs {
		if *f.flag(x), err = p.boolAttr(el, f.name); err != nil {
			return err
		}
	}
	return nil
}

// list reads a list element (<emails>), calling fn for each item element
// (<email>) and ignoring any other child.
func (p *userReader) list(item string, fn func(el xml.StartElement) error) error {
	return p.each(func(el xml.StartElement) error {
		if el.Name.Local != item {
			return p.skip()
		}
		return fn(el)
	})
}

// firstCode reads a list of items holding a code (<rs_libraries>): the
// first code goes to into, and every code is labelled in table.
func (p *userReader) firstCode(item, table string, into *string) error {
	return p.list(item, func(xml.StartElement) error {
		return p.each(func(el xml.StartElement) error {
			if el.Name.Local != itemCode {
				return p.skip()
			}
			code, err := p.code(el, table)
			if *into == "" {
				*into = code
			}
			return err
		})
	})
}

// codes reads a list of codes (<address_types>), skipping empty ones.
func (p *userReader) codes(item, table string, into *patron.Codes) error {
	return p.list(item, func(el xml.StartElement) error {
		c, err := p.code(el, table)
		if c != "" {
			*into = append(*into, c)
		}
		return err
	})
}
