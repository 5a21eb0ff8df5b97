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
// A code keeps its code as the value, and its desc attribute becomes a
// Label of the table named by the element (rs_libraries' codes go to the
// table rs_library). Values are trimmed; an empty element is an empty
// string. Dates are read with Date; booleans are true or false in any case
// (1 and 0 too), empty being false. record_type, account_type, status,
// block_status and an identifier's status are upper-cased. Every segment is
// External and every note's origin external, whatever the file's
// segment_type says, as in an Alma SIS load; the first rs_library is the
// user's RSLibrary.
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
	labels []Label
	buf    []byte
}

// decodeUser decodes the user element in chunk, which starts on the given
// line of the file.
func decodeUser(chunk []byte, line int) (*patron.User, []Label, error) {
	p := &userReader{d: xml.NewDecoder(bytes.NewReader(chunk)), line0: line - 1}
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

// code reads a code element: its text is the code, its desc attribute a
// Label of the table named by the element.
func (p *userReader) code(el xml.StartElement) (string, error) {
	return p.codeIn(el, el.Name.Local)
}

// codeIn reads a code element whose label goes to the named table.
func (p *userReader) codeIn(el xml.StartElement, table string) (string, error) {
	v, err := p.text()
	if err == nil {
		p.label(table, v, attr(el, "desc"))
	}
	return v, err
}

// enum reads a code of a fixed list (ACTIVE, PUBLIC...), in upper case.
func (p *userReader) enum(el xml.StartElement) (string, error) {
	v, err := p.text()
	v = strings.ToUpper(v)
	if err == nil {
		p.label(el.Name.Local, v, attr(el, "desc"))
	}
	return v, err
}

// label keeps the description of a code, once per record.
func (p *userReader) label(table, code, desc string) {
	if code == "" || desc == "" {
		return
	}
	l := Label{Table: table, Code: code, Desc: desc}
	for _, have := range p.labels {
		if have == l {
			return
		}
	}
	p.labels = append(p.labels, l)
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

// external is the segment every segment of an SIS record gets.
var external = patron.Segment{SegmentType: patron.SegmentExternal}

// user reads the children of <user>.
func (p *userReader) user(u *patron.User) error {
	return p.each(func(el xml.StartElement) error {
		var err error
		switch el.Name.Local {
		case "record_type":
			u.RecordType, err = p.enum(el)
		case "primary_id":
			u.PrimaryID, err = p.text()
		case "first_name":
			u.FirstName, err = p.text()
		case "middle_name":
			u.MiddleName, err = p.text()
		case "last_name":
			u.LastName, err = p.text()
		case "user_title":
			u.UserTitle, err = p.code(el)
		case "job_category":
			u.JobCategory, err = p.code(el)
		case "job_description":
			u.JobDescription, err = p.text()
		case "gender":
			u.Gender, err = p.code(el)
		case "user_group":
			u.UserGroup, err = p.code(el)
		case "campus_code":
			u.CampusCode, err = p.code(el)
		case "preferred_language":
			u.PreferredLanguage, err = p.code(el)
		case "birth_date":
			u.BirthDate, err = p.date(el)
		case "expiry_date":
			u.ExpiryDate, err = p.date(el)
		case "purge_date":
			u.PurgeDate, err = p.date(el)
		case "account_type":
			u.AccountType, err = p.enum(el)
		case "external_id":
			u.ExternalID, err = p.text()
		case "status":
			u.Status, err = p.enum(el)
		case "pin_number":
			u.PINNumber, err = p.text()
		case "rs_libraries":
			err = p.rsLibraries(u)
		case "contact_info":
			err = p.contactInfo(u)
		case "user_identifiers":
			err = p.list("user_identifier", func(el xml.StartElement) error {
				id, err := p.identifier()
				u.Identifiers = append(u.Identifiers, id)
				return err
			})
		case "user_blocks":
			err = p.list("user_block", func(el xml.StartElement) error {
				b, err := p.block()
				u.Blocks = append(u.Blocks, b)
				return err
			})
		case "user_notes":
			err = p.list("user_note", func(el xml.StartElement) error {
				n, err := p.note()
				u.Notes = append(u.Notes, n)
				return err
			})
		case "user_statistics":
			err = p.list("user_statistic", func(el xml.StartElement) error {
				st, err := p.statistic()
				u.Statistics = append(u.Statistics, st)
				return err
			})
		case "proxy_for_users":
			err = p.list("proxy_for_user", func(el xml.StartElement) error {
				pf, err := p.proxyFor()
				u.ProxyFor = append(u.ProxyFor, pf)
				return err
			})
		default:
			err = p.skip()
		}
		return err
	})
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

// rsLibraries reads <rs_libraries>; the first library code is the user's.
func (p *userReader) rsLibraries(u *patron.User) error {
	return p.list("rs_library", func(xml.StartElement) error {
		return p.each(func(el xml.StartElement) error {
			if el.Name.Local != "code" {
				return p.skip()
			}
			code, err := p.codeIn(el, "rs_library")
			if u.RSLibrary == "" {
				u.RSLibrary = code
			}
			return err
		})
	})
}

// contactInfo reads <contact_info>: addresses, emails and phones.
func (p *userReader) contactInfo(u *patron.User) error {
	return p.each(func(el xml.StartElement) error {
		switch el.Name.Local {
		case "addresses":
			return p.list("address", func(el xml.StartElement) error {
				a, err := p.address(el)
				u.Addresses = append(u.Addresses, a)
				return err
			})
		case "emails":
			return p.list("email", func(el xml.StartElement) error {
				e, err := p.email(el)
				u.Emails = append(u.Emails, e)
				return err
			})
		case "phones":
			return p.list("phone", func(el xml.StartElement) error {
				ph, err := p.phone(el)
				u.Phones = append(u.Phones, ph)
				return err
			})
		}
		return p.skip()
	})
}

// codes reads a list of codes (<address_types>), skipping empty ones.
func (p *userReader) codes(item string, into *patron.Codes) error {
	return p.list(item, func(el xml.StartElement) error {
		c, err := p.code(el)
		if c != "" {
			*into = append(*into, c)
		}
		return err
	})
}

func (p *userReader) address(el xml.StartElement) (patron.Address, error) {
	a := patron.Address{Segment: external}
	var err error
	if a.Preferred, err = p.boolAttr(el, "preferred"); err != nil {
		return a, err
	}
	err = p.each(func(el xml.StartElement) error {
		var err error
		switch el.Name.Local {
		case "line1":
			a.Line1, err = p.text()
		case "line2":
			a.Line2, err = p.text()
		case "line3":
			a.Line3, err = p.text()
		case "line4":
			a.Line4, err = p.text()
		case "line5":
			a.Line5, err = p.text()
		case "city":
			a.City, err = p.text()
		case "state_province":
			a.StateProvince, err = p.text()
		case "postal_code":
			a.PostalCode, err = p.text()
		case "country":
			a.Country, err = p.code(el)
		case "address_note":
			a.AddressNote, err = p.text()
		case "start_date":
			a.StartDate, err = p.date(el)
		case "end_date":
			a.EndDate, err = p.date(el)
		case "address_types":
			err = p.codes("address_type", &a.AddressTypes)
		default:
			err = p.skip()
		}
		return err
	})
	return a, err
}

func (p *userReader) email(el xml.StartElement) (patron.Email, error) {
	e := patron.Email{Segment: external}
	var err error
	if e.Preferred, err = p.boolAttr(el, "preferred"); err != nil {
		return e, err
	}
	err = p.each(func(el xml.StartElement) error {
		var err error
		switch el.Name.Local {
		case "email_address":
			e.EmailAddress, err = p.text()
		case "description":
			e.Description, err = p.text()
		case "email_types":
			err = p.codes("email_type", &e.EmailTypes)
		default:
			err = p.skip()
		}
		return err
	})
	return e, err
}

func (p *userReader) phone(el xml.StartElement) (patron.Phone, error) {
	ph := patron.Phone{Segment: external}
	var err error
	if ph.Preferred, err = p.boolAttr(el, "preferred"); err != nil {
		return ph, err
	}
	if ph.PreferredSMS, err = p.boolAttr(el, "preferred_sms"); err != nil {
		return ph, err
	}
	err = p.each(func(el xml.StartElement) error {
		var err error
		switch el.Name.Local {
		case "phone_number":
			ph.PhoneNumber, err = p.text()
		case "phone_types":
			err = p.codes("phone_type", &ph.PhoneTypes)
		default:
			err = p.skip()
		}
		return err
	})
	return ph, err
}

func (p *userReader) identifier() (patron.Identifier, error) {
	id := patron.Identifier{Segment: external}
	err := p.each(func(el xml.StartElement) error {
		var err error
		switch el.Name.Local {
		case "id_type":
			id.IDType, err = p.code(el)
		case "value":
			id.Value, err = p.text()
		case "note":
			id.Note, err = p.text()
		case "status":
			id.Status, err = p.enum(el)
		default:
			err = p.skip()
		}
		return err
	})
	return id, err
}

func (p *userReader) block() (patron.Block, error) {
	b := patron.Block{Segment: external}
	err := p.each(func(el xml.StartElement) error {
		var err error
		switch el.Name.Local {
		case "block_type":
			b.BlockType, err = p.code(el)
		case "block_description":
			b.BlockDescription, err = p.code(el)
		case "block_status":
			b.BlockStatus, err = p.enum(el)
		case "block_note":
			b.BlockNote, err = p.text()
		case "expiry_date":
			b.ExpiryDate, err = p.date(el)
		default: // created_by, created_date are the library's, not the SIS's
			err = p.skip()
		}
		return err
	})
	return b, err
}

func (p *userReader) note() (patron.Note, error) {
	n := patron.Note{Segment: external, Origin: patron.OriginExternal}
	err := p.each(func(el xml.StartElement) error {
		var err error
		switch el.Name.Local {
		case "note_type":
			n.NoteType, err = p.code(el)
		case "note_text":
			n.NoteText, err = p.text()
		case "user_viewable":
			n.UserViewable, err = p.boolean(el)
		case "popup_note":
			n.PopupNote, err = p.boolean(el)
		default:
			err = p.skip()
		}
		return err
	})
	return n, err
}

func (p *userReader) statistic() (patron.Statistic, error) {
	st := patron.Statistic{Segment: external}
	err := p.each(func(el xml.StartElement) error {
		var err error
		switch el.Name.Local {
		case "statistic_category":
			st.StatisticCategory, err = p.code(el)
		case "category_type":
			st.CategoryType, err = p.code(el)
		case "statistic_note":
			st.StatisticNote, err = p.text()
		default:
			err = p.skip()
		}
		return err
	})
	return st, err
}

func (p *userReader) proxyFor() (patron.ProxyFor, error) {
	pf := patron.ProxyFor{Segment: external}
	err := p.each(func(el xml.StartElement) error {
		var err error
		switch el.Name.Local {
		case "primary_id":
			pf.PrimaryID, err = p.text()
		case "expiry_date":
			pf.ExpiryDate, err = p.date(el)
		default:
			err = p.skip()
		}
		return err
	})
	return pf, err
}
