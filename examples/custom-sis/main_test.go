package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestTheCustomSourceLoadsTheCampusUsers runs the example end to end.
func TestTheCustomSourceLoadsTheCampusUsers(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"run succeeded: created 2, rejected 1", "ada@campus.example", "nameless@campus.example", "first_name is required"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
