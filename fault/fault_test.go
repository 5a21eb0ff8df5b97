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

func TestCausesGoWithTheirTexts(t *testing.T) {
	max := fault.Reason{Code: "max_loans", Args: map[string]string{"limit": "3"}, Text: "jdoe already has 3 loans"}
	e := fault.Refuse("item B1 cannot be lent to jdoe", max)
	if len(e.Reasons) != 1 || e.Reasons[0] != max.Text || e.Kind != fault.Refused {
		t.Fatalf("Refuse: %+v", e)
	}
	e.Because(fault.Reason{Code: "blocked", Text: "jdoe is blocked: FINES"})
	if got := e.Why(); len(got) != 2 || got[0].Code != "max_loans" || got[1].Code != "blocked" || got[1].Text != e.Reasons[1] {
		t.Fatalf("Why: %+v", got)
	}
	// A text added alone leaves every reason without its code rather
	// than a code on the wrong text.
	e.Reasons = append(e.Reasons, "under rule 1")
	got := e.Why()
	if len(got) != 3 || got[0].Code != "" || got[2].Text != "under rule 1" {
		t.Fatalf("Why after a text alone: %+v", got)
	}
	old := &fault.Error{Kind: fault.Refused, Reasons: []string{"itemized"}}
	if got := old.Why(); len(got) != 1 || got[0].Code != "" || got[0].Text != "itemized" {
		t.Fatalf("Why of reasons without causes: %+v", got)
	}
	if got := (&fault.Error{Kind: fault.Refused}).Why(); got != nil {
		t.Fatalf("Why of no reasons: %+v", got)
	}
}
