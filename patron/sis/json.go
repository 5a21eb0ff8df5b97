package sis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
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
// proxy_for_user[], rs_library[] (the first library code is the user's
// rs_library). Dates are read with Date ("1979-01-11Z"). A key written twice
// takes its last value; keys the SIS has no use for (full_name, pref_*,
// user_role, loans, fees, requests, link...) are ignored. Every segment is
// External, whatever segment_type the file gives, and notes have the
// external origin. account_type, record_type, status, identifier status and
// block_status are upper-cased (a label describes the upper-cased code).
// The fields are Alma's user record as alma.go maps it, the same for every
// format.
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

	// keepTypes reads each segment's segment_type (Alma's users API);
	// an SIS file's segments are all External.
	keepTypes bool

	// failed is the error that stopped the file, once explained (or the
	// error emit returned, passed on as it is).
	failed error
}

// jsonUser is a user being read.
type jsonUser struct {
	u        *patron.User
	labels   labelSet
	problems problems
}

// record is what the file said of user n.
func (b *jsonUser) record(n int) Record {
	return b.problems.record(fmt.Sprintf("user %d", n), b.u, b.labels)
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
	w.cur.problems.add(path, jsonKind(t)+" where "+want+" is expected")
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
		if err := elem(path + "[" + strconv.Itoa(i) + "]"); err != nil {
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

// enum reads a code of a fixed list, upper-cased, and labels it in table
// ("" for none).
func (w *jsonWalker) enum(path, table string) (string, error) {
	code, desc, err := w.codeDesc(path)
	code = strings.ToUpper(strings.TrimSpace(code))
	w.cur.labels.add(table, code, desc)
	return code, err
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
		w.cur.problems.add(path, derr.Error())
	}
	return d, nil
}

// code reads a code field, {"value": ..., "desc": ...} or a plain string,
// and labels the code with its description in table.
func (w *jsonWalker) code(path, table string) (string, error) {
	code, desc, err := w.codeDesc(path)
	w.cur.labels.add(table, code, desc)
	return code, err
}

// codeDesc reads a code field: the code and its description, if any.
func (w *jsonWalker) codeDesc(path string) (code, desc string, err error) {
	t, err := w.token()
	if err != nil {
		return "", "", err
	}
	switch v := t.(type) {
	case string:
		return v, "", nil
	case nil:
		return "", "", nil
	case json.Delim:
		if v != '{' {
			break
		}
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
		return code, desc, err
	}
	return "", "", w.wrong(path, t, "a code")
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

// userField reads the value of one key of a user object. A key written
// twice takes its last value: a list is emptied before it is read.
func (w *jsonWalker) userField(key string) error {
	u := w.cur.u
	if f := userFields.byJSON[key]; f != nil {
		return readJSONField(w, f, key, u)
	}
	if s := segmentNamed(key, false, true); s != nil {
		return s.readJSON(w, u, key)
	}
	if key != contactInfo {
		return w.skip()
	}
	for _, s := range userSegments {
		if s.names().contact {
			s.clear(u)
		}
	}
	_, err := w.obj(key, func(k string) error {
		if s := segmentNamed(k, true, true); s != nil {
			return s.readJSON(w, u, contactInfo+"."+k)
		}
		return w.skip()
	})
	return err
}

// readJSONField reads the value at path as the field f of x.
func readJSONField[T any](w *jsonWalker, f *field[T], path string, x *T) (err error) {
	switch f.kind {
	case kText:
		*f.str(x), err = w.str(path)
	case kCode:
		*f.str(x), err = w.code(path, f.table)
	case kEnum:
		*f.str(x), err = w.enum(path, f.table)
	case kDate:
		*f.str(x), err = w.date(path)
	case kBool:
		*f.flag(x), err = w.boolean(path)
	case kCodes:
		*f.codes(x), err = w.codes(path, f.table)
	case kFirstCode:
		err = w.firstCode(path, f.table, f.str(x))
	}
	return err
}

// readJSON reads a list of segments (user_identifier[]), each object into
// a new segment; null items are passed over.
func (s *segment[T]) readJSON(w *jsonWalker, u *patron.User, path string) error {
	list := s.of(u)
	*list = nil
	return w.list(path, func(p string) error {
		x := s.add(u)
		if w.keepTypes {
			s.setType(x, "")
		}
		ok, err := w.obj(p, func(k string) error {
			if k == segmentTypeName && w.keepTypes {
				t, err := w.str(p + "." + k)
				s.setType(x, t)
				return err
			}
			if f := s.fields.byJSON[k]; f != nil {
				return readJSONField(w, f, p+"."+k, x)
			}
			return w.skip()
		})
		if !ok {
			*list = (*list)[:len(*list)-1]
		}
		return err
	})
}

// firstCode reads a list of objects holding a "code" (rs_library[]): the
// first code goes to into, and every code is labelled in table.
func (w *jsonWalker) firstCode(path, table string, into *string) error {
	*into = ""
	return w.list(path, func(p string) error {
		_, err := w.obj(p, func(k string) error {
			if k != itemCode {
				return w.skip()
			}
			code, err := w.code(p+"."+itemCode, table)
			if *into == "" {
				*into = code
			}
			return err
		})
		return err
	})
}
