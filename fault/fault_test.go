package fault_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/patronkit/patronkit/fault"
)

func TestKindsMatchThroughWrapping(t *testing.T) {
	err := fmt.Errorf("checking out: %w", &fault.Error{Kind: fault.Refused, Detail: "the patron is blocked", Reasons: []string{"owes 12.50 USD"}})
	if !errors.Is(err, fault.ErrRefused) || errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("errors.Is by kind: %v", err)
	}
	e, ok := fault.As(err)
	if !ok || e.Kind != fault.Refused {
		t.Fatalf("As: %v %v", e, ok)
	}
	if got, want := e.Error(), "the patron is blocked; owes 12.50 USD"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	v := &fault.Error{Kind: fault.Invalid, Detail: "the record is not valid", Fields: []fault.FieldError{{Field: "last_name", Code: "required", Message: "is required"}}}
	if got, want := v.Error(), "the record is not valid; last_name: is required"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if _, ok := fault.As(errors.New("disk full")); ok {
		t.Fatal("an internal failure is not a fault")
	}
}
