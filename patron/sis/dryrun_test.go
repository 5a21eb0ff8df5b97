package sis_test

import (
	"fmt"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// barcodeUserXML is a user record with the barcodes given, in order.
func barcodeUserXML(id, first string, barcodes ...string) string {
	var ids strings.Builder
	for _, b := range barcodes {
		fmt.Fprintf(&ids, "<user_identifier><id_type>BARCODE</id_type><value>%s</value></user_identifier>", b)
	}
	return fmt.Sprintf(`<user><primary_id>%s</primary_id><first_name>%s</first_name><last_name>L</last_name>
<user_group>UG</user_group><expiry_date>2027-08-31Z</expiry_date><status>ACTIVE</status>
<user_identifiers>%s</user_identifiers></user>`, id, first, ids.String())
}

// outcomesOf lists a run's outcomes as "primary_id outcome [changes] reason",
// in file order.
func outcomesOf(t *testing.T, e *env, r *sis.Run) []string {
	t.Helper()
	var out []string
	for _, o := range e.report(t, r.ID) {
		out = append(out, fmt.Sprintf("%s %s [%s] %s", o.PrimaryID, o.Outcome, o.Changes, o.Reason))
	}
	return out
}

// dryThenReal runs file on the profile code as a dry run, then for real,
// and fails the test unless both have the same counts and outcomes, user
// by user, and these are want (primary_id and outcome, in file order).
func dryThenReal(t *testing.T, e *env, code, file string, want ...string) {
	t.Helper()
	dry := e.run(t, code, file, true)
	dryOut := outcomesOf(t, e, dry)
	real := e.run(t, code, file, false)
	realOut := outcomesOf(t, e, real)
	if counts(dry) != counts(real) {
		t.Errorf("%s: the dry run counted %s, the run %s", code, counts(dry), counts(real))
	}
	for i := range max(len(dryOut), len(realOut)) {
		var d, r string
		if i < len(dryOut) {
			d = dryOut[i]
		}
		if i < len(realOut) {
			r = realOut[i]
		}
		if d != r {
			t.Errorf("%s: user %d: the dry run said %q, the run %q", code, i+1, d, r)
		}
	}
	if len(realOut) != len(want) {
		t.Fatalf("%s: %d outcomes, want %d: %q", code, len(realOut), len(want), realOut)
	}
	for i, w := range want {
		if !strings.HasPrefix(realOut[i], w+" ") {
			t.Errorf("%s: user %d: %q, want %q", code, i+1, realOut[i], w)
		}
	}
}

// A dry run gives the outcome the run gives, user by user, the file's own
// conflicts included: a user taking an identifier or a primary_id an
// earlier user of the file took (whatever its case) is rejected; one
// taking an identifier or primary_id an earlier user of the file gave up
// is applied. Two users at a time are applied, so that these meet both
// within a batch and across batches.
func TestADryRunGivesTheOutcomesOfTheRun(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{})
		e.profile(t, sis.Profile{Code: "BC", MatchBy: "BARCODE"})
		var base []string
		for _, id := range []string{"s1", "s2", "s3", "s4", "s5"} {
			base = append(base, barcodeUserXML(id, strings.ToUpper(id), "BC-"+id))
		}
		if r := e.run(t, "SIS", usersXML(base...), false); r.Created != 5 {
			t.Fatalf("loading the users: %s", counts(r))
		}

		// Matching on primary_id.
		dryThenReal(t, e, "SIS", usersXML(
			base[2], // s3 as it is
			barcodeUserXML("s1", "S1", "BC-s1", "BC-z"),
			barcodeUserXML("z", "Z", "BC-Z"), // s1's, the batch before
			barcodeUserXML("n2", "N", "BC-x"),
			barcodeUserXML("n3", "N", "bc-X"), // n2's, the batch before
			barcodeUserXML("s2", "S2", "BC-s2-new"),
			barcodeUserXML("n1", "N", "BC-s2"), // s2 gave it up the batch before
			barcodeUserXML("w", "W", "BC-w"),
			barcodeUserXML("s4", "S4", "BC-s4", "BC-q"),
			barcodeUserXML("q", "Q", "BC-q"), // s4's, in the same batch
			barcodeUserXML("n6", "N", "BC-m"),
			barcodeUserXML("n7", "N", "bc-M"), // n6's, in the same batch
			barcodeUserXML("s5", "S5", "BC-s5-new"),
			barcodeUserXML("n8", "N", "BC-s5"), // s5 gave it up in the same batch
		),
			"s3 unchanged", "s1 updated", "z rejected", "n2 created", "n3 rejected", "s2 updated", "n1 created",
			"w created", "s4 updated", "q rejected", "n6 created", "n7 rejected", "s5 updated", "n8 created")

		// Matching on a barcode: primary ids may change.
		dryThenReal(t, e, "BC", usersXML(
			barcodeUserXML("x1", "X", "BC-x1", "BC-x1b"),
			barcodeUserXML("X1", "Y", "BC-x9"), // x1's primary_id, in the same batch
			barcodeUserXML("s3-new", "S3", "BC-s3"),
			barcodeUserXML("y1", "Y", "BC-y1"),
			barcodeUserXML("s3", "S", "BC-s3b"),  // s3 gave it up the batch before
			barcodeUserXML("x1", "S4", "BC-s4"),  // s4 would take x1's primary_id
			barcodeUserXML("x1", "X2", "BC-x1b"), // x1, created by this file, by its other barcode
		),
			"x1 created", "X1 rejected", "s3-new updated", "y1 created", "s3 created", "x1 rejected", "x1 updated")

		// Nothing left to change: the same outcomes again.
		u, err := e.patrons.Get(e.ctx, "UNI", "n1")
		if err != nil || len(u.Identifiers) != 1 || u.Identifiers[0].Value != "BC-s2" {
			t.Fatalf("n1 after the run: %+v, %v", u, err)
		}
	})
}

// A dry run of a profile that deactivates the users missing from a clean
// run counts those the run deactivates, and changes nobody.
func TestADryRunCountsTheUsersTheRunDeactivates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{DeactivateMissing: true})
		e.run(t, "SIS", usersXML(userXML("a", "A", "A"), userXML("b", "B", "B"), userXML("c", "C", "C")), false)
		file := usersXML(userXML("a", "A", "A"), userXML("d", "D", "D"))
		dry := e.run(t, "SIS", file, true)
		if got := counts(dry); got != "succeeded created=1 updated=0 unchanged=1 rejected=0 failed=0 deactivated=2" {
			t.Fatalf("dry run: %s", got)
		}
		for _, id := range []string{"b", "c"} {
			if u, _ := e.patrons.Get(e.ctx, "UNI", id); u.Status != patron.StatusActive {
				t.Fatalf("the dry run deactivated %s", id)
			}
		}
		if real := e.run(t, "SIS", file, false); counts(real) != counts(dry) {
			t.Fatalf("the run: %s, the dry run: %s", counts(real), counts(dry))
		}
	})
}
