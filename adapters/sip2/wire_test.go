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

// Whatever bytes come, parse answers a request or an error, never a
// panic, in every character set.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"990 402.00AY1AZFCB4", "9300CNa|COb|CPc|", "63001" + "20260901    120000" + "Y         AOX|AAy|BP1|BQ5|", "11", "AZ", "AY1AZ", "\xff\xfe|AB", "35"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, cs := range []string{UTF8, CP850, Latin1} {
			r, err := parse(b, cs, true)
			if err == nil && (r == nil || len(r.code) != 2) {
				t.Fatalf("parse(%q) = %+v without an error", b, r)
			}
		}
	})
}
