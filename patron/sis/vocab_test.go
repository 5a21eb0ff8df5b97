package sis_test

import (
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron/sis"
)

// A profile applies its file as its mode, match_by and unmatched say: an
// import adds new users only, a synchronize that rejects unmatched users
// updates the users it matches only, and match_by picks what makes a user
// the same one.
func TestAProfileAppliesItsModeMatchAndUnmatchedRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{Code: "IMP", Mode: sis.ModeImport})
		e.profile(t, sis.Profile{Code: "STRICT", Mode: sis.ModeSynchronize, Unmatched: sis.UnmatchedReject})
		e.profile(t, sis.Profile{Code: "BYBC", Mode: sis.ModeSynchronize, MatchBy: "BARCODE"})

		r := e.run(t, "IMP", usersXML(userXML("s1", "Ann", "A")), false)
		if got := counts(r); got != "succeeded created=1 updated=0 unchanged=0 rejected=0 failed=0 deactivated=0" {
			t.Fatalf("import of a new user: %s", got)
		}
		r = e.run(t, "IMP", usersXML(userXML("s1", "Changed", "A"), userXML("s2", "Bo", "B")), false)
		rep := e.report(t, r.ID)
		if rep[0].Outcome != sis.OutcomeRejected || !strings.Contains(rep[0].Reason, "exists already") || rep[1].Outcome != sis.OutcomeCreated {
			t.Fatalf("import of a known user and a new one: %+v", rep)
		}

		r = e.run(t, "STRICT", usersXML(userXML("s1", "Annie", "A"), userXML("s3", "Cy", "C")), false)
		rep = e.report(t, r.ID)
		if rep[0].Outcome != sis.OutcomeUpdated || rep[0].Changes != "external_id,first_name" ||
			rep[1].Outcome != sis.OutcomeRejected || !strings.Contains(rep[1].Reason, "rejects unmatched") {
			t.Fatalf("a synchronize that rejects unmatched users: %+v", rep)
		}
		if _, err := e.patrons.Get(e.ctx, "UNI", "s3"); err == nil {
			t.Fatal("an unmatched user was added")
		}

		// BC-s2 is s2's barcode: the user matched by it takes a new
		// primary_id.
		renamed := strings.Replace(userXML("s2", "Bo", "B"), "<primary_id>s2</primary_id>", "<primary_id>s2-new</primary_id>", 1)
		r = e.run(t, "BYBC", usersXML(renamed), false)
		rep = e.report(t, r.ID)
		if rep[0].Outcome != sis.OutcomeUpdated || !strings.Contains(rep[0].Changes, "primary_id") {
			t.Fatalf("a match on barcode: %+v", rep)
		}
		u, err := e.patrons.Get(e.ctx, "UNI", "s2-new")
		if err != nil || u.ExternalID != "BYBC" {
			t.Fatalf("s2-new: %+v, %v", u, err)
		}
	})
}
