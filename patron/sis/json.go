package sis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/patronkit/patronkit/patron"
)

// JSON returns the format of Alma's user JSON: the shape of the Users API
// (GET /almaws/v1/users/{id} with format=json), as an SIS export or another
// Alma writes it. A file holds one of:
//
//   - one user object;
//   - an array of user objects;
//   - Alma's list of users, {"user": [...], "total_record_count": N}
//     (a "user" that is a single object is read as a list of one);
//   - several of these one after another (JSON Lines, one user per line).
//
// A user is read with Alma's field names. Code fields (user_group,
// campus_code, id_type, email_type...) are {"value": ..., "desc": ...}
// objects or plain strings; the user gets the code and the record a Label
// for every code the file describes. Lists are flattened as Alma writes
// them: contact_info.address[], contact_info.email[], contact_info.phone[],
// user_identifier[], user_note[], user_block[], user_statistic[],
// proxy_for_user[], rs_library[] (the first library's code is the user's
// rs_library). Dates are read with Date ("1979-01-11Z"). A key written twice
// takes its last value; keys the SIS has no use for (full_name, pref_*,
// user_role, loans, fees, requests, link...) are ignored. Every segment is
// External, whatever segment_type the file gives, and notes have the
// external origin. account_type, record_type, status, identifier status and
// block_status are upper-cased.
//
// Users are read one at a time and never the whole file: memory does not
// grow with the number of users. A user with a value of the wrong type or
// a bad date is emitted with Err (naming "user N", counted from 1 in file
// order) and the next user is read. A file that is not JSON, holds no
// users, is cut short or broken in its syntax, or breaks Limits.MaxUserBytes
// (the bytes of one user object) or Limits.MaxDepth (the nesting of values,
// counted from the file's outermost value) makes Decode return an error.
func JSON(l Limits) Format { return jsonFormat{lim: l.withDefaults()} }

type jsonFormat struct{ lim Limits }

// Name is "json".
func (jsonFormat) Name() string { return "json" }

// Decode reads the users of an Alma user JSON file; see JSON.
func (f jsonFormat) Decode(ctx context.Context, r io.Reader, emit func(Record) error) error {
	in := &readBudget{r: stripUTF8BOM(r), max: -1}
	dec := json.NewDecoder(in)
	dec.UseNumber() // numbers are only skipped or refused: never converted
	w := &jsonWalker{ctx: ctx, dec: dec, in: in, lim: f.lim, emit: emit}
	return w.run()
}

// readBudget passes reads through while fewer than max bytes have been
// read (max < 0: no cap), so that a decoder cannot buffer an unbounded
// value; beyond it, reads fail and hit is set.
type readBudget struct {
	r   io.Reader
	n   int64 // bytes read so far
	max int64
	hit bool
	bad bool // the reader failed (not io.EOF)
}

var errBudget = errors.New("sis: read budget spent")

func (b *readBudget) Read(p []byte) (int, error) {
	if b.max >= 0 {
		if b.n >= b.max {
			b.hit = true
			return 0, errBudget
		}
		if rest := b.max - b.n; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.bad = true
	}
	return n, err
}

// stripUTF8BOM drops a UTF-8 byte order mark at the start of r.
func stripUTF8BOM(r io.Reader) io.Reader {
	var head [3]byte
	n, err := io.ReadFull(r, head[:])
	if n == 3 && bytes.Equal(head[:], []byte("\xEF\xBB\xBF")) {
		return r
	}
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return io.MultiReader(bytes.NewReader(head[:n]), bomReadError{err})
	}
	return io.MultiReader(bytes.NewReader(head[:n]), r)
}

type bomReadError struct{ err error }

func (e bomReadError) Read([]byte) (int, error) { return 0, e.err }

// budgetSlack is how far past a user's limit the reader may read ahead,
// so that the exact check (on the decoder's offsets) is the one that
// usually refuses.
const budgetSlack = 64 << 10

// jsonWalker walks the tokens of an Alma user JSON file.
type jsonWalker struct {
	ctx  context.Context
	dec  *json.Decoder
	in   *readBudget
	lim  Limits
	emit func(Record) error

	depth int // nesting of the value being read; the outermost value is 1
	n     int // users seen

	// The item being read (a user, or the bytes around users) may use
	// MaxUserBytes from start, not counting excluded (the list of users
	// inside Alma's list object).
	start, excluded int64
	what            string

	cur *jsonUser // the user being read

	// failed is the error that stopped the file, once explained (or the
	// error emit returned, passed on as it is).
	failed error
}

// jsonUser is a user being read.
type jsonUser struct {
	u        *patron.User
	labels   []Label
	problems []string
	more     int
}

func (b *jsonUser) bad(path, msg string) {
	if len(b.problems) < 8 {
		b.problems = append(b.problems, path+": "+msg)
	} else {
		b.more++
	}
}

func (b *jsonUser) label(table, code, desc string) {
	if table == "" || code == "" || desc == "" {
		return
	}
	for i := range b.labels {
		if b.labels[i].Table == table && b.labels[i].Code == code {
			b.labels[i].Desc = desc
			return
		}
	}
	b.labels = append(b.labels, Label{Table: table, Code: code, Desc: desc})
}

// record is what the file said of user n.
func (b *jsonUser) record(n int) Record {
	ref := fmt.Sprintf("user %d", n)
	if len(b.problems) == 0 {
		return Record{User: b.u, Labels: b.labels, Ref: ref}
	}
	who := ref
	if b.u.PrimaryID != "" {
		who += fmt.Sprintf(" (primary_id %q)", b.u.PrimaryID)
	}
	msg := strings.Join(b.problems, "; ")
	if b.more > 0 {
		msg += fmt.Sprintf("; and %d more", b.more)
	}
	return Record{Ref: ref, Err: fmt.Errorf("%s: %s", who, msg)}
}

func newJSONUser() *jsonUser { return &jsonUser{u: &patron.User{}} }

// budget starts a new item at the decoder's position.
func (w *jsonWalker) budget(what string) {
	w.start, w.excluded, w.what = w.dec.InputOffset(), 0, what
}

func (w *jsonWalker) overSize() error {
	return &LimitError{Limit: "MaxUserBytes", Value: w.lim.MaxUserBytes, What: w.what}
}

// token reads the next token, holding the item to its byte budget and
// the file to MaxDepth.
func (w *jsonWalker) token() (json.Token, error) {
	off := w.dec.InputOffset()
	used := off - w.start - w.excluded
	w.in.max = off + max(w.lim.MaxUserBytes-used, 0) + budgetSlack
	t, err := w.dec.Token()
	if err != nil {
		if w.in.hit {
			return nil, w.overSize()
		}
		if err == io.EOF && w.depth > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if w.dec.InputOffset()-w.start-w.excluded > w.lim.MaxUserBytes {
		return nil, w.overSize()
	}
	if d, ok := t.(json.Delim); ok {
		switch d {
		case '{', '[':
			w.depth++
			if w.depth > w.lim.MaxDepth {
				return nil, &LimitError{Limit: "MaxDepth", Value: int64(w.lim.MaxDepth), What: fmt.Sprintf("%s (values nested %d deep)", w.what, w.depth)}
			}
		default:
			w.depth--
		}
	}
	return t, nil
}

// fatal explains an error that stops the file, once.
func (w *jsonWalker) fatal(err error) error {
	if w.failed != nil {
		return w.failed
	}
	var le *LimitError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &le), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	case errors.As(err, &se):
		err = fmt.Errorf("sis: json: %s is not valid JSON at byte %d: %v", w.what, se.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("sis: json: the file ends inside %s: it is cut short", w.what)
	case w.in.bad:
		err = fmt.Errorf("sis: json: reading %s: %w", w.what, err)
	default:
		err = fmt.Errorf("sis: json: %s: %w", w.what, err)
	}
	w.failed = err
	return err
}

// send emits a record; an error from emit stops the file as it is.
func (w *jsonWalker) send(rec Record) error {
	if err := w.emit(rec); err != nil {
		w.failed = err
		return err
	}
	return nil
}

func (w *jsonWalker) run() error {
	first := true
	for {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		w.budget("the file")
		t, err := w.token()
		if err == io.EOF {
			if first {
				return errors.New("sis: json: the file is empty: want a user object, an array of users or Alma's list {\"user\": [...]}")
			}
			return nil
		}
		if err != nil {
			var le *LimitError
			if first && !errors.As(err, &le) && !w.in.bad {
				return fmt.Errorf("sis: json: the file is not JSON: %v", err)
			}
			return w.fatal(err)
		}
		first = false
		switch t {
		case json.Delim('['):
			err = w.userList()
		case json.Delim('{'):
			err = w.topObject()
		default:
			return fmt.Errorf("sis: json: the file holds %s where users are expected: want a user object, an array of users or Alma's list {\"user\": [...]}", jsonKind(t))
		}
		if err != nil {
			return err
		}
	}
}

// userList reads the users of an array whose '[' has been read.
func (w *jsonWalker) userList() error {
	for {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		w.budget(fmt.Sprintf("user %d", w.n+1))
		t, err := w.token()
		if err != nil {
			return w.fatal(err)
		}
		if t == json.Delim(']') {
			return nil
		}
		w.n++
		if t != json.Delim('{') {
			if err := w.skipRest(t); err != nil {
				return w.fatal(err)
			}
			if err := w.send(Record{Ref: w.what, Err: fmt.Errorf("%s: %s where a user object is expected", w.what, jsonKind(t))}); err != nil {
				return err
			}
			continue
		}
		w.start = w.dec.InputOffset() - 1
		w.cur = newJSONUser()
		if err := w.object(func(key string) error { return w.userField(key) }); err != nil {
			return w.fatal(err)
		}
		rec := w.cur.record(w.n)
		w.cur = nil
		if err := w.send(rec); err != nil {
			return err
		}
	}
}

// topObject reads an object at the top of the file whose '{' has been
// read: a user, or Alma's list of users when it has a "user" list or a
// total_record_count.
func (w *jsonWalker) topObject() error {
	w.start = w.dec.InputOffset() - 1
	w.what = fmt.Sprintf("user %d", w.n+1)
	w.cur = newJSONUser()
	list := false
	err := w.object(func(key string) error {
		switch key {
		case "user":
			t, err := w.token()
			if err != nil {
				return err
			}
			if t != json.Delim('[') && t != json.Delim('{') {
				return w.skipRest(t)
			}
			list = true
			from := w.dec.InputOffset() - 1
			start, excluded, cur := w.start, w.excluded, w.cur
			if t == json.Delim('[') {
				err = w.userList()
			} else {
				err = w.oneUser()
			}
			if err != nil {
				return err
			}
			w.start, w.excluded, w.what, w.cur = start, excluded, "the list around the users", cur
			w.excluded += w.dec.InputOffset() - from
			return nil
		case "total_record_count":
			list = true
			return w.skip()
		}
		return w.userField(key)
	})
	if err != nil {
		return w.fatal(err)
	}
	cur := w.cur
	w.cur = nil
	if list {
		return nil
	}
	w.n++
	return w.send(cur.record(w.n))
}

// oneUser reads the user of Alma's list {"user": {...}}, whose '{' has
// been read.
func (w *jsonWalker) oneUser() error {
	w.n++
	w.start, w.excluded, w.what = w.dec.InputOffset()-1, 0, fmt.Sprintf("user %d", w.n)
	w.cur = newJSONUser()
	if err := w.object(func(key string) error { return w.userField(key) }); err != nil {
		return w.fatal(err)
	}
	rec := w.cur.record(w.n)
	w.cur = nil
	return w.send(rec)
}

// jsonKind names the JSON value a token starts, for messages.
func jsonKind(t json.Token) string {
	switch v := t.(type) {
	case string:
		return "text"
	case json.Number:
		return "a number"
	case bool:
		return "true/false"
	case nil:
		return "null"
	case json.Delim:
		if v == '[' {
			return "a list"
		}
		return "an object"
	}
	return fmt.Sprintf("%v", t)
}

// skipRest reads the rest of the value that t starts.
func (w *jsonWalker) skipRest(t json.Token) error {
	d, ok := t.(json.Delim)
	if !ok || (d != '{' && d != '[') {
		return nil
	}
	for level := 1; level > 0; {
		t, err := w.token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			if d == '{' || d == '[' {
				level++
			} else {
				level--
			}
		}
	}
	return nil
}

// skip reads a value and forgets it.
func (w *jsonWalker) skip() error {
	t, err := w.token()
	if err != nil {
		return err
	}
	return w.skipRest(t)
}

// wrong records that the value t starts is not what path wants, and skips
// it.
func (w *jsonWalker) wrong(path string, t json.Token, want string) error {
	w.cur.bad(path, jsonKind(t)+" where "+want+" is expected")
	return w.skipRest(t)
}

// object reads the keys of an object whose '{' has been read; each must
// consume its value.
func (w *jsonWalker) object(field func(key string) error) error {
	for {
		t, err := w.token()
		if err != nil {
			return err
		}
		key, ok := t.(string)
		if !ok { // the closing '}': the decoder allows nothing else
			return nil
		}
		if err := field(key); err != nil {
			return err
		}
	}
}

// obj reads an object value; present is false for null and for a value of
// another type (recorded as a problem).
func (w *jsonWalker) obj(path string, field func(key string) error) (present bool, err error) {
	t, err := w.token()
	if err != nil || t == nil {
		return false, err
	}
	if t != json.Delim('{') {
		return false, w.wrong(path, t, "an object")
	}
	return true, w.object(field)
}

// list reads a list value (null is an empty list), calling elem for each
// element with its path.
func (w *jsonWalker) list(path string, elem func(path string) error) error {
	t, err := w.token()
	if err != nil || t == nil {
		return err
	}
	if t != json.Delim('[') {
		return w.wrong(path, t, "a list")
	}
	for i := 0; w.dec.More(); i++ {
		if err := elem(fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	_, err = w.token() // ']'
	return err
}

// str reads a text value; null is empty.
func (w *jsonWalker) str(path string) (string, error) {
	t, err := w.token()
	if err != nil {
		return "", err
	}
	switch v := t.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	}
	return "", w.wrong(path, t, "text")
}

// enum reads a code of an enumeration, upper-cased; table names it for
// labels ("" for none).
func (w *jsonWalker) enum(path, table string) (string, error) {
	s, err := w.code(path, table)
	return strings.ToUpper(strings.TrimSpace(s)), err
}

// boolean reads true or false; null is false.
func (w *jsonWalker) boolean(path string) (bool, error) {
	t, err := w.token()
	if err != nil {
		return false, err
	}
	switch v := t.(type) {
	case bool:
		return v, nil
	case nil:
		return false, nil
	}
	return false, w.wrong(path, t, "true or false")
}

// date reads a date with Date.
func (w *jsonWalker) date(path string) (string, error) {
	s, err := w.str(path)
	if err != nil || s == "" {
		return "", err
	}
	d, derr := Date(s)
	if derr != nil {
		w.cur.bad(path, derr.Error())
	}
	return d, nil
}

// code reads a code field, {"value": ..., "desc": ...} or a plain string,
// and labels the code with its description in table.
func (w *jsonWalker) code(path, table string) (string, error) {
	t, err := w.token()
	if err != nil {
		return "", err
	}
	switch v := t.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	case json.Delim:
		if v != '{' {
			break
		}
		var code, desc string
		err := w.object(func(key string) error {
			var err error
			switch key {
			case "value":
				code, err = w.str(path + ".value")
			case "desc":
				desc, err = w.str(path + ".desc")
			default:
				err = w.skip()
			}
			return err
		})
		w.cur.label(table, code, desc)
		return code, err
	}
	return "", w.wrong(path, t, "a code")
}

// codes reads a list of codes (address_type[], email_type[]...).
func (w *jsonWalker) codes(path, table string) (patron.Codes, error) {
	var out patron.Codes
	err := w.list(path, func(p string) error {
		c, err := w.code(p, table)
		if c != "" {
			out = append(out, c)
		}
		return err
	})
	return out, err
}

// userField reads the value of one key of a user object.
func (w *jsonWalker) userField(key string) error {
	u := w.cur.u
	var err error
	switch key {
	case "record_type", "account_type", "status":
		var s string
		s, err = w.enum(key, key)
		switch key {
		case "record_type":
			u.RecordType = s
		case "account_type":
			u.AccountType = s
		default:
			u.Status = s
		}
	case "primary_id":
		u.PrimaryID, err = w.str(key)
	case "first_name":
		u.FirstName, err = w.str(key)
	case "middle_name":
		u.MiddleName, err = w.str(key)
	case "last_name":
		u.LastName, err = w.str(key)
	case "job_description":
		u.JobDescription, err = w.str(key)
	case "external_id":
		u.ExternalID, err = w.str(key)
	case "pin_number":
		u.PINNumber, err = w.str(key)
	case "user_title":
		u.UserTitle, err = w.code(key, key)
	case "job_category":
		u.JobCategory, err = w.code(key, key)
	case "gender":
		u.Gender, err = w.code(key, key)
	case "user_group":
		u.UserGroup, err = w.code(key, key)
	case "campus_code":
		u.CampusCode, err = w.code(key, key)
	case "preferred_language":
		u.PreferredLanguage, err = w.code(key, key)
	case "birth_date":
		u.BirthDate, err = w.date(key)
	case "expiry_date":
		u.ExpiryDate, err = w.date(key)
	case "purge_date":
		u.PurgeDate, err = w.date(key)
	case "rs_library":
		u.RSLibrary = ""
		first := true
		err = w.list(key, func(p string) error {
			var code string
			_, err := w.obj(p, func(k string) error {
				if k != "code" {
					return w.skip()
				}
				var err error
				code, err = w.code(p+".code", "rs_library")
				return err
			})
			if first {
				u.RSLibrary, first = code, false
			}
			return err
		})
	case "contact_info":
		u.Addresses, u.Emails, u.Phones = nil, nil, nil
		_, err = w.obj(key, w.contactField)
	case "user_identifier":
		u.Identifiers = nil
		err = w.list(key, func(p string) error {
			id := patron.Identifier{Segment: externalSegment()}
			ok, err := w.obj(p, func(k string) error {
				var err error
				switch k {
				case "id_type":
					id.IDType, err = w.code(p+".id_type", "id_type")
				case "value":
					id.Value, err = w.str(p + ".value")
				case "note":
					id.Note, err = w.str(p + ".note")
				case "status":
					id.Status, err = w.enum(p+".status", "")
				default:
					err = w.skip()
				}
				return err
			})
			if ok {
				u.Identifiers = append(u.Identifiers, id)
			}
			return err
		})
	case "user_note":
		u.Notes = nil
		err = w.list(key, func(p string) error {
			n := patron.Note{Segment: externalSegment(), Origin: patron.OriginExternal}
			ok, err := w.obj(p, func(k string) error {
				var err error
				switch k {
				case "note_type":
					n.NoteType, err = w.code(p+".note_type", "note_type")
				case "note_text":
					n.NoteText, err = w.str(p + ".note_text")
				case "user_viewable":
					n.UserViewable, err = w.boolean(p + ".user_viewable")
				case "popup_note":
					n.PopupNote, err = w.boolean(p + ".popup_note")
				default:
					err = w.skip()
				}
				return err
			})
			if ok {
				u.Notes = append(u.Notes, n)
			}
			return err
		})
	case "user_block":
		u.Blocks = nil
		err = w.list(key, func(p string) error {
			b := patron.Block{Segment: externalSegment()}
			ok, err := w.obj(p, func(k string) error {
				var err error
				switch k {
				case "block_type":
					b.BlockType, err = w.code(p+".block_type", "block_type")
				case "block_description":
					b.BlockDescription, err = w.code(p+".block_description", "block_description")
				case "block_status":
					b.BlockStatus, err = w.enum(p+".block_status", "")
				case "block_note":
					b.BlockNote, err = w.str(p + ".block_note")
				case "expiry_date":
					b.ExpiryDate, err = w.date(p + ".expiry_date")
				default:
					err = w.skip()
				}
				return err
			})
			if ok {
				u.Blocks = append(u.Blocks, b)
			}
			return err
		})
	case "user_statistic":
		u.Statistics = nil
		err = w.list(key, func(p string) error {
			s := patron.Statistic{Segment: externalSegment()}
			ok, err := w.obj(p, func(k string) error {
				var err error
				switch k {
				case "statistic_category":
					s.StatisticCategory, err = w.code(p+".statistic_category", "statistic_category")
				case "category_type":
					s.CategoryType, err = w.code(p+".category_type", "category_type")
				case "statistic_note":
					s.StatisticNote, err = w.str(p + ".statistic_note")
				default:
					err = w.skip()
				}
				return err
			})
			if ok {
				u.Statistics = append(u.Statistics, s)
			}
			return err
		})
	case "proxy_for_user":
		u.ProxyFor = nil
		err = w.list(key, func(p string) error {
			x := patron.ProxyFor{Segment: externalSegment()}
			ok, err := w.obj(p, func(k string) error {
				var err error
				switch k {
				case "primary_id":
					x.PrimaryID, err = w.str(p + ".primary_id")
				case "expiry_date":
					x.ExpiryDate, err = w.date(p + ".expiry_date")
				default:
					err = w.skip()
				}
				return err
			})
			if ok {
				u.ProxyFor = append(u.ProxyFor, x)
			}
			return err
		})
	default:
		err = w.skip()
	}
	return err
}

// contactField reads one key of contact_info.
func (w *jsonWalker) contactField(key string) error {
	u := w.cur.u
	path := "contact_info." + key
	switch key {
	case "address":
		u.Addresses = nil
		return w.list(path, func(p string) error {
			a := patron.Address{Segment: externalSegment()}
			ok, err := w.obj(p, func(k string) error {
				var err error
				switch k {
				case "line1":
					a.Line1, err = w.str(p + ".line1")
				case "line2":
					a.Line2, err = w.str(p + ".line2")
				case "line3":
					a.Line3, err = w.str(p + ".line3")
				case "line4":
					a.Line4, err = w.str(p + ".line4")
				case "line5":
					a.Line5, err = w.str(p + ".line5")
				case "city":
					a.City, err = w.str(p + ".city")
				case "state_province":
					a.StateProvince, err = w.str(p + ".state_province")
				case "postal_code":
					a.PostalCode, err = w.str(p + ".postal_code")
				case "country":
					a.Country, err = w.code(p+".country", "country")
				case "address_note":
					a.AddressNote, err = w.str(p + ".address_note")
				case "start_date":
					a.StartDate, err = w.date(p + ".start_date")
				case "end_date":
					a.EndDate, err = w.date(p + ".end_date")
				case "preferred":
					a.Preferred, err = w.boolean(p + ".preferred")
				case "address_type":
					a.AddressTypes, err = w.codes(p+".address_type", "address_type")
				default:
					err = w.skip()
				}
				return err
			})
			if ok {
				u.Addresses = append(u.Addresses, a)
			}
			return err
		})
	case "email":
		u.Emails = nil
		return w.list(path, func(p string) error {
			e := patron.Email{Segment: externalSegment()}
			ok, err := w.obj(p, func(k string) error {
				var err error
				switch k {
				case "email_address":
					e.EmailAddress, err = w.str(p + ".email_address")
				case "description":
					e.Description, err = w.str(p + ".description")
				case "preferred":
					e.Preferred, err = w.boolean(p + ".preferred")
				case "email_type":
					e.EmailTypes, err = w.codes(p+".email_type", "email_type")
				default:
					err = w.skip()
				}
				return err
			})
			if ok {
				u.Emails = append(u.Emails, e)
			}
			return err
		})
	case "phone":
		u.Phones = nil
		return w.list(path, func(p string) error {
			ph := patron.Phone{Segment: externalSegment()}
			ok, err := w.obj(p, func(k string) error {
				var err error
				switch k {
				case "phone_number":
					ph.PhoneNumber, err = w.str(p + ".phone_number")
				case "preferred":
					ph.Preferred, err = w.boolean(p + ".preferred")
				case "preferred_sms":
					ph.PreferredSMS, err = w.boolean(p + ".preferred_sms")
				case "phone_type":
					ph.PhoneTypes, err = w.codes(p+".phone_type", "phone_type")
				default:
					err = w.skip()
				}
				return err
			})
			if ok {
				u.Phones = append(u.Phones, ph)
			}
			return err
		})
	}
	return w.skip()
}

// externalSegment is the segment of everything an SIS file gives.
func externalSegment() patron.Segment { return patron.Segment{SegmentType: patron.SegmentExternal} }
