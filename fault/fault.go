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
	// (e.g. a deletion guard's).
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
type Error struct {
	Kind       Kind
	Detail     string
	Fields     []FieldError
	Reasons    []string
	RetryAfter time.Duration
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
