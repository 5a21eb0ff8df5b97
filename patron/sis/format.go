// Package sis loads patron records from a campus Student Information System:
// integration profiles, import and synchronize runs, the file formats an SIS
// writes (Alma's user XML, alone or in zip files, Alma's user JSON, CSV) and
// the sources files come from (a drop folder, SFTP, an HTTP upload).
//
// Hosts may implement Format (a file format of their own) and Source (where
// files come from). Everything else is implemented here.
package sis

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/patronkit/patronkit/patron"
)

// Record is one user read from an SIS file: the user as the SIS describes
// it, or the reason it could not be read.
type Record struct {
	// User is the incoming record. Every segment is External, whatever the
	// file says (an SIS load takes only external information). Nil when Err
	// is set.
	User *patron.User
	// Labels are the descriptions a file gives for codes (Alma's desc
	// attributes), to fill code tables.
	Labels []Label
	// Ref says where the user is in the file, for reports: "line 12", or
	// "part2.xml line 3" inside a zip, or "user 4" in JSON.
	Ref string
	// Err is why the user could not be read; the run rejects the user with
	// it and goes on with the next.
	Err error
}

// Label is the description of a code in a code table: the user group 08 is
// "Staff".
type Label struct {
	Table string // the field: user_group, campus_code, id_type...
	Code  string
	Desc  string
}

// Format reads the users of one file. Decode calls emit once per user, in
// file order, and stops when emit returns an error. A user that cannot be
// read is emitted with Err set and decoding goes on; Decode returns an
// error only when the file as a whole cannot be read (it is not in the
// format at all, or breaks a Limit), and the run then fails and changes
// nothing.
type Format interface {
	// Name is the format's code, as profiles name it: xml, zip, json, csv.
	Name() string
	Decode(ctx context.Context, r io.Reader, emit func(Record) error) error
}

// Limits guard against hostile files. Every refusal names the limit.
type Limits struct {
	// MaxUserBytes caps the size of one user's record in the file.
	// Default: 1 MiB.
	MaxUserBytes int64
	// MaxDepth caps the nesting of elements (XML) or values (JSON).
	// Default: 32.
	MaxDepth int
	// MaxZipFiles caps the files in a zip. Default: 1000.
	MaxZipFiles int
	// MaxZipBytes caps the total decompressed size of a zip. Default: 4 GiB.
	MaxZipBytes int64
	// MaxZipRatio caps decompressed size over compressed size, per file.
	// Default: 200.
	MaxZipRatio int64
}

// withDefaults fills the zero fields of l.
func (l Limits) withDefaults() Limits {
	if l.MaxUserBytes <= 0 {
		l.MaxUserBytes = 1 << 20
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 32
	}
	if l.MaxZipFiles <= 0 {
		l.MaxZipFiles = 1000
	}
	if l.MaxZipBytes <= 0 {
		l.MaxZipBytes = 4 << 30
	}
	if l.MaxZipRatio <= 0 {
		l.MaxZipRatio = 200
	}
	return l
}

// LimitError says which limit a file broke.
type LimitError struct {
	Limit string // the Limits field
	Value int64  // the limit in force
	What  string // what broke it
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("sis: %s breaks the limit %s = %d", e.What, e.Limit, e.Value)
}

// Date reads the dates SIS files write, 2023-09-01, 2023-09-01Z or
// 2023-09-01+02:00, as a civil date YYYY-MM-DD; empty stays empty.
func Date(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) >= 10 {
		if _, err := time.Parse("2006-01-02", s[:10]); err == nil {
			rest := s[10:]
			if rest == "" || rest == "Z" || isZoneOffset(rest) {
				return s[:10], nil
			}
			if _, err := time.Parse(time.RFC3339, s); err == nil {
				return s[:10], nil
			}
		}
	}
	return "", fmt.Errorf("%q is not a date (want YYYY-MM-DD, optionally with Z or an offset)", s)
}

func isZoneOffset(s string) bool {
	if len(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' {
		return false
	}
	_, err := time.Parse("15:04", s[1:])
	return err == nil
}
