package sip2

import (
	"fmt"
	"testing"
)

// The protocol's checksum vectors.
func TestChecksumVectors(t *testing.T) {
	for msg, want := range map[string]string{"990 402.00AY1AZ": "FCB4", "941AY0AZ": "FDFD"} {
		if got := fmt.Sprintf("%04X", checksum([]byte(msg))); got != want {
			t.Errorf("checksum(%q) = %s, want %s", msg, got, want)
		}
		if _, _, checked, err := splitTrailer([]byte(msg+want), true); err != nil || !checked {
			t.Errorf("%q with its checksum is refused: %v", msg, err)
		}
	}
}
