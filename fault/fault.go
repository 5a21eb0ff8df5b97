// Package fault holds the errors every patronkit module returns for what a
// caller did or can act on: a Kind that adapters map to their answers (an
// HTTP status, a SIP2 screen message) without parsing messages, the fields
// refused with stable codes, and the reasons of a refusal. Any other error
// a module returns is an internal failure.
//
// It is a leaf: it imports nothing of patronkit, and every module imports
// it.
package fault

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind classifies an Error so that adapters can answer with the right
// status without parsing messages.
type Kind int

// The kinds of Error.
const (
	// Invalid input; Fields says which fields and why.
	Invalid Kind = iota + 1
	// NotFound: no such record (user, segment, item, loan...) in the
	// institution.
	NotFound
	// Conflict with data already held: a taken primary_id or identifier.
	Conflict
	// Stale: the record changed since the version the caller read.
	Stale
	// Refused: the action is not allowed now; Reasons lists every reason
	// (e.g. a deletion guard's), and Causes the same reasons with their
	// codes where the module gives them.
	Refused
	// Locked: too many failed sign-ins; RetryAfter says for how long.
	Locked
	// Unauthenticated: unknown user or wrong PIN.
	Unauthenticated
	// Forbidden: the actor may not do this whatever their roles (a staff
	// user changing their own roles).
	Forbidden
)

// FieldError is one reason a field was refused. Field is the JSON path of
// the field (emails[1].email_address); Code is stable for clients.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is the error a module returns for anything a caller did or can act
// on. Errors not of this type are internal failures.
//
// Reasons are the reasons of a refusal in English; Causes, when the module
// gives them, are the same reasons one for one with a stable code and its
// named values, so that an adapter can say them in the patron's language
// (Refuse and Because keep the two in step; Why reads them).
type Error struct {
	Kind       Kind
	Detail     string
	Fields     []FieldError
	Reasons    []string
	RetryAfter time.Duration
	Causes     []Reason
}

// Reason is one reason of a refusal: a stable Code (max_loans, blocked,
// item_not_available...) with its named values in Args (the limit, the
// item's barcode and status...), and Text, the reason in English. A
// reason without a Code has its Text alone.
type Reason struct {
	Code string            `json:"code,omitempty"`
	Args map[string]string `json:"args,omitempty"`
	Text string            `json:"text"`
}

// Refuse returns a Refused Error with detail whose Causes are reasons and
// whose Reasons are their texts.
func Refuse(detail string, reasons ...Reason) *Error {
	return (&Error{Kind: Refused, Detail: detail}).Because(reasons...)
}

// Because adds reasons to e, to its Causes and their texts to its
// Reasons, and returns e.
func (e *Error) Because(reasons ...Reason) *Error {
	for _, r := range reasons {
		e.Causes = append(e.Causes, r)
		e.Reasons = append(e.Reasons, r.Text)
	}
	return e
}

// Why returns every reason of e as a Reason (see Explain).
func (e *Error) Why() []Reason { return Explain(e.Reasons, e.Causes) }

// Texts returns the texts of reasons, in order.
func Texts(reasons []Reason) []string {
	if len(reasons) == 0 {
		return nil
	}
	out := make([]string, len(reasons))
	for i, r := range reasons {
		out[i] = r.Text
	}
	return out
}

// Explain returns the reasons whose English texts are texts: causes when
// they are those texts one for one, otherwise each text without a code
// (reasons added as texts alone, by a module that gives no codes).
func Explain(texts []string, causes []Reason) []Reason {
	if len(causes) == len(texts) {
		same := true
		for i := range texts {
			if causes[i].Text != texts[i] {
				same = false
				break
			}
		}
		if same {
			return causes
		}
	}
	if len(texts) == 0 {
		return nil
	}
	out := make([]Reason, len(texts))
	for i, t := range texts {
		out[i] = Reason{Text: t}
	}
	return out
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Detail)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Message)
	}
	for _, r := range e.Reasons {
		fmt.Fprintf(&b, "; %s", r)
	}
	return b.String()
}

// Is makes errors.Is(err, fault.ErrNotFound) and the like match any Error
// of the same kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Detail == ""
}

// Sentinels for errors.Is.
var (
	ErrInvalid         = &Error{Kind: Invalid}
	ErrNotFound        = &Error{Kind: NotFound}
	ErrConflict        = &Error{Kind: Conflict}
	ErrStale           = &Error{Kind: Stale}
	ErrRefused         = &Error{Kind: Refused}
	ErrLocked          = &Error{Kind: Locked}
	ErrUnauthenticated = &Error{Kind: Unauthenticated}
	ErrForbidden       = &Error{Kind: Forbidden}
)

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
