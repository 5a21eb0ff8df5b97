package keys_test

import (
	"testing"

	"github.com/patronkit/patronkit/internal/keys"
)

func TestFoldIgnoresCaseAndSurroundingBlanks(t *testing.T) {
	for in, want := range map[string]string{" Jane.Doe ": "jane.doe", "BC-0001\t": "bc-0001", "ÉCOLE": "école", "": ""} {
		if got := keys.Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewIDsSortInTheOrderTheyWereMade(t *testing.T) {
	prev := ""
	for range 1000 {
		id := keys.NewID()
		if len(id) != 36 || id <= prev {
			t.Fatalf("id %q after %q: want 36 characters, sorting after the one before", id, prev)
		}
		prev = id
	}
}
