package patron

import (
	"fmt"

	"github.com/patronkit/patronkit/fault"
)

func invalid(fields ...fault.FieldError) *fault.Error {
	return &fault.Error{Kind: fault.Invalid, Detail: "the record is not valid", Fields: fields}
}

func notFound(format string, args ...any) *fault.Error {
	return &fault.Error{Kind: fault.NotFound, Detail: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *fault.Error {
	return &fault.Error{Kind: fault.Conflict, Detail: fmt.Sprintf(format, args...)}
}
