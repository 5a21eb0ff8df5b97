package patron

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/patronkit/patronkit/fault"
)

// The text rule: every text a record holds (a name, a note, a code, a
// library's name, a fee's description...) is valid UTF-8 and holds no
// control character but tab and line feed; a field that takes several
// lines (a note, a reason) may hold carriage returns too. NUL in
// particular is refused: PostgreSQL cannot store it in text, and what one
// database cannot store none of them keeps. The rule holds whatever the
// record came from (the API, an SIS file, a host's own code), so that a
// record that loads on one database loads on all three.

// TextError says why s cannot be the value of the text field named field
// (its JSON path, e.g. user_notes[0].note_text), or nil when it can.
// multiLine allows carriage returns as well as tabs and line feeds.
func TextError(field, s string, multiLine bool) *fault.FieldError {
	if !utf8.ValidString(s) {
		return &fault.FieldError{Field: field, Code: "bad_format", Message: "is not valid UTF-8 text"}
	}
	i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && !allowedControl(r, multiLine) })
	if i < 0 {
		return nil
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	allowed := "tab and line feed"
	if multiLine {
		allowed = "tab, line feed and carriage return"
	}
	what := fmt.Sprintf("the control character U+%04X", r)
	if r == 0 {
		what = "a NUL character (U+0000)"
	}
	return &fault.FieldError{Field: field, Code: "bad_format", Message: "holds " + what + "; of the control characters only " + allowed + " are allowed"}
}

func allowedControl(r rune, multiLine bool) bool {
	return r == '\t' || r == '\n' || (multiLine && r == '\r')
}

// TextErrors checks every string that v holds by the rule of TextError: v
// is a struct (or a pointer to one), walked through its nested structs,
// slices, maps and pointers. Each failure names its field by JSON path
// after prefix ("user_notes[0].note_text"); fields that JSON leaves out
// (tagged "-") are set by the services, not by clients, and are not
// walked. A string field tagged text:"multiline" takes several lines
// (carriage returns allowed).
func TextErrors(prefix string, v any) []fault.FieldError {
	var out []fault.FieldError
	walkText(reflect.ValueOf(v), prefix, false, &out)
	return out
}

func walkText(v reflect.Value, path string, multiLine bool, out *[]fault.FieldError) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkText(v.Elem(), path, multiLine, out)
		}
	case reflect.String:
		if e := TextError(path, v.String(), multiLine); e != nil {
			*out = append(*out, *e)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // bytes: a file's content, raw JSON, not text
		}
		for i := 0; i < v.Len(); i++ {
			walkText(v.Index(i), path+"["+strconv.Itoa(i)+"]", multiLine, out)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := fmt.Sprint(iter.Key().Interface())
			if iter.Key().Kind() == reflect.String {
				if e := TextError(join(path, k), k, false); e != nil {
					*out = append(*out, *e)
					continue
				}
			}
			walkText(iter.Value(), join(path, k), multiLine, out)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			ml := f.Tag.Get("text") == "multiline"
			if f.Anonymous && name == "" {
				walkText(v.Field(i), path, ml, out) // embedded: its fields are at this level
				continue
			}
			if name == "" {
				name = f.Name
			}
			walkText(v.Field(i), join(path, name), ml, out)
		}
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// reservedPrimaryIDs are names a primary_id cannot take, whatever their
// case: "me" is the signed-in patron's own account in the API (/me), and a
// user of that name could not be told from it.
var reservedPrimaryIDs = []string{"me"}

// PrimaryIDError says why id cannot be a new primary_id, or nil when it can.
// A primary_id is one segment of a URL path (/users/{primary_id}) that
// every client and proxy passes on as it is: it holds no slash and no
// control character, is valid UTF-8, is not "." or ".." (which URL clients
// resolve away) and is not a name the API reserves ("me"). Surrounding
// blank space is trimmed before the check. Users that already hold a
// primary_id this rule refuses (stored by an earlier release) are read,
// changed and deleted as before; only new ids are checked.
func PrimaryIDError(id string) *fault.FieldError {
	const field = "primary_id"
	if !utf8.ValidString(id) {
		return &fault.FieldError{Field: field, Code: "bad_format", Message: "is not valid UTF-8 text"}
	}
	if strings.ContainsFunc(id, func(r rune) bool { return r == '/' || unicode.IsControl(r) }) {
		return &fault.FieldError{Field: field, Code: "bad_format", Message: "must not contain a slash or control characters"}
	}
	if id == "." || id == ".." {
		return &fault.FieldError{Field: field, Code: "bad_format", Message: `must not be "." or "..": a URL cannot name it`}
	}
	for _, r := range reservedPrimaryIDs {
		if strings.EqualFold(id, r) {
			return &fault.FieldError{Field: field, Code: "bad_format", Message: fmt.Sprintf("%q is reserved: the API uses it for the account of whoever asks", id)}
		}
	}
	return nil
}

// Findable reports whether every key (a primary_id, a barcode, a code, an
// id) can name a stored record: a key that breaks the text rule cannot
// (and PostgreSQL refuses to compare one holding NUL), so a lookup by it
// is answered "not found" without asking the database.
func Findable(keys ...string) bool {
	for _, k := range keys {
		if TextError("", k, true) != nil {
			return false
		}
	}
	return true
}
