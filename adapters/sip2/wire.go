package sip2

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// The character sets an account's kiosks may speak (Settings.Charset).
const (
	// UTF8 is Unicode as UTF-8, the default.
	UTF8 = "UTF-8"
	// CP850 is IBM code page 850 (DOS Latin-1), which many kiosks send.
	CP850 = "CP850"
	// Latin1 is ISO-8859-1.
	Latin1 = "ISO-8859-1"
)

// charmapOf is the single-byte table of a character set; nil for UTF-8.
func charmapOf(charset string) *charmap.Charmap {
	switch charset {
	case CP850:
		return charmap.CodePage850
	case Latin1:
		return charmap.ISO8859_1
	}
	return nil
}

// decode turns the bytes of a message into text.
func decode(b []byte, charset string) string {
	cm := charmapOf(charset)
	if cm == nil {
		return strings.ToValidUTF8(string(b), "?")
	}
	var s strings.Builder
	s.Grow(len(b))
	for _, c := range b {
		s.WriteRune(cm.DecodeByte(c))
	}
	return s.String()
}

// encode turns text into the bytes of a message; a character the set
// does not have becomes "?".
func encode(s, charset string) []byte {
	cm := charmapOf(charset)
	if cm == nil {
		return []byte(s)
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		b, ok := cm.EncodeRune(r)
		if !ok {
			b = '?'
		}
		out = append(out, b)
	}
	return out
}

// checksum is the SIP2 checksum of b: the 16-bit two's complement of the
// sum of its bytes.
func checksum(b []byte) uint16 {
	var sum uint16
	for _, c := range b {
		sum += uint16(c)
	}
	return -sum
}

// request is a message read from a kiosk: its command, its fixed part
// and its variable fields.
type request struct {
	code  string
	fixed string
	// fields holds the first value of each field id.
	fields map[string]string
	// repeated holds every value of each field id, in order.
	repeated map[string][]string
	// seq is the sequence number (AY), or -1 when the message had none.
	seq int
	// checked is true when the message carried a checksum (AZ).
	checked bool
}

// field is the value of a variable field, "" when absent.
func (r *request) field(id string) string { return r.fields[id] }

// fixedAt is the fixed field at offset off of length n.
func (r *request) fixedAt(off, n int) string {
	if off+n > len(r.fixed) {
		return ""
	}
	return r.fixed[off : off+n]
}

// fixedLengths are the lengths of the fixed part of the requests
// understood.
var fixedLengths = map[string]int{
	"93": 2, "99": 8, "23": 21, "63": 31, "11": 38, "09": 37, "29": 38,
	"65": 18, "17": 18, "37": 25, "01": 19, "35": 18, "97": 0,
}

// errBadChecksum and errMalformed are the ways a message cannot be read;
// both are answered with 96 (please resend).
type wireError string

func (e wireError) Error() string { return string(e) }

const (
	errBadChecksum = wireError("the checksum does not match")
	errMalformed   = wireError("the message is malformed")
	errUnknown     = wireError("the command is not one this server answers")
)

// splitTrailer separates the error detection fields (AYn, AZxxxx) from a
// raw message: it answers the message without them, the sequence number
// (-1 when absent), whether a checksum was there, and errBadChecksum when
// it does not match the bytes (when verify).
func splitTrailer(raw []byte, verify bool) (body []byte, seq int, checked bool, err error) {
	seq = -1
	n := len(raw)
	if n >= 6 && string(raw[n-6:n-4]) == "AZ" {
		want, perr := strconv.ParseUint(string(raw[n-4:]), 16, 16)
		if verify && (perr != nil || checksum(raw[:n-4]) != uint16(want)) {
			return nil, -1, true, errBadChecksum
		}
		raw, checked = raw[:n-6], true
		n = len(raw)
	}
	if n >= 3 && string(raw[n-3:n-1]) == "AY" && raw[n-1] >= '0' && raw[n-1] <= '9' {
		seq = int(raw[n-1] - '0')
		raw = raw[:n-3]
	}
	return raw, seq, checked, nil
}

// parse reads one message (without its terminator) in charset,
// checking its checksum when verify.
func parse(raw []byte, charset string, verify bool) (*request, error) {
	body, seq, checked, err := splitTrailer(raw, verify)
	if err != nil {
		return &request{seq: -1, checked: true}, err
	}
	r := &request{seq: seq, checked: checked, fields: map[string]string{}, repeated: map[string][]string{}}
	if len(body) < 2 || body[0] < '0' || body[0] > '9' || body[1] < '0' || body[1] > '9' {
		return r, errMalformed
	}
	r.code = string(body[:2])
	n, ok := fixedLengths[r.code]
	if !ok {
		return r, errUnknown
	}
	text := decode(body[2:], charset)
	if utf8.RuneCountInString(text) < n || strings.ContainsFunc(text, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		// Short, or holding a control character no field may hold.
		return r, errMalformed
	}
	// The fixed fields are ASCII; cut at their length in characters.
	runes := []rune(text)
	r.fixed = string(runes[:n])
	for _, f := range strings.Split(string(runes[n:]), "|") {
		if len(f) < 2 {
			continue
		}
		id, v := f[:2], f[2:]
		if _, seen := r.fields[id]; !seen {
			r.fields[id] = v
		}
		r.repeated[id] = append(r.repeated[id], v)
	}
	return r, nil
}

// response builds a message to a kiosk: fixed fields, then variable ones.
type response struct {
	b strings.Builder
}

func newResponse(code string) *response {
	r := &response{}
	r.b.WriteString(code)
	return r
}

// fixed appends fixed fields as they are.
func (r *response) fixed(s ...string) *response {
	for _, x := range s {
		r.b.WriteString(x)
	}
	return r
}

// yn appends one fixed Y or N.
func (r *response) yn(ok bool) *response {
	if ok {
		r.b.WriteByte('Y')
	} else {
		r.b.WriteByte('N')
	}
	return r
}

// field appends a variable field, even empty; "|" and control characters
// in the value become spaces, so that no value can end a field or the
// message.
func (r *response) field(id, v string) *response {
	r.b.WriteString(id)
	r.b.WriteString(clean(v))
	r.b.WriteByte('|')
	return r
}

// opt appends a variable field when its value is not empty.
func (r *response) opt(id, v string) *response {
	if v != "" {
		r.field(id, v)
	}
	return r
}

func clean(v string) string {
	return strings.Map(func(c rune) rune {
		if c == '|' || c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, v)
}

// bytes is the message as sent: in charset, with the sequence number and
// checksum when asked (seq -1: none), and the terminator CR.
func (r *response) bytes(charset string, seq int, sum bool) []byte {
	out := encode(r.b.String(), charset)
	if sum {
		if seq >= 0 {
			out = append(out, 'A', 'Y', byte('0'+seq%10))
		}
		out = append(out, 'A', 'Z')
		out = append(out, fmt.Sprintf("%04X", checksum(out))...)
	}
	return append(out, '\r')
}

// sipDate writes t as an 18-character SIP2 date: in loc with a blank
// zone, or in UTC with zone "   Z".
func sipDate(t time.Time, loc *time.Location, utc bool) string {
	if utc {
		return t.UTC().Format("20060102") + "   Z" + t.UTC().Format("150405")
	}
	t = t.In(loc)
	return t.Format("20060102") + "    " + t.Format("150405")
}

// blankDate is an 18-character date field left empty.
const blankDate = "                  "
