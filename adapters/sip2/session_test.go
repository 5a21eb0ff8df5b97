package sip2_test

import (
	"strings"
	"testing"
	"time"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

// A kiosk sends the patron's PIN with every message of a visit: the
// connection checks it once, and again after an end session, for another
// patron or once the patron session is over; a wrong PIN ends it and
// counts toward the lockout as ever.
func TestAPatronsPINIsCheckedOncePerVisit(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k)
		bob := patronkittest.User(t, k, inst, func(u *patron.User) { u.PINNumber = "9999" })
		ks := f.signedIn(t, kioskID)
		n := dbtest.CountStatements(t, k.DB)
		// lend lends a new item to who over ks and answers how many
		// statements it took.
		lend := func(who, pin string) int64 {
			t.Helper()
			it := f.item(t, "MAIN")
			from := n.Load()
			if rp := ks.send(checkout(inst, who, pin, it.Barcode)); rp.fixed[0] != '1' {
				t.Fatalf("check-out to %s: %q", who, rp.raw)
			}
			return n.Load() - from
		}
		first := lend("alice", patronPW)
		again := lend("alice", patronPW)
		if again > first-5 {
			t.Errorf("a second check-out in the visit took %d statements, the first %d: the PIN was checked again", again, first)
		}
		// Another patron, then alice again: each checked anew.
		if other := lend(bob.PrimaryID, "9999"); other < first-1 {
			t.Errorf("another patron's first check-out took %d statements (alice's %d)", other, first)
		}
		if back := lend("alice", patronPW); back < first-1 {
			t.Errorf("alice back after bob: %d statements (first %d)", back, first)
		}
		// End session: checked anew.
		if rp := ks.send(endSession(inst, "alice")); rp.fixed[0] != 'Y' {
			t.Fatalf("end session: %q", rp.raw)
		}
		if after := lend("alice", patronPW); after < first-1 {
			t.Errorf("after the end session: %d statements (first %d)", after, first)
		}
		// The patron session is over after three minutes.
		k.Clock.Advance(3*time.Minute + time.Second)
		if later := lend("alice", patronPW); later < first-1 {
			t.Errorf("after the patron session: %d statements (first %d)", later, first)
		}

		// Wrong PINs within a visit count toward the lockout: five lock
		// alice at this kiosk's address, right PIN or not.
		free := f.item(t, "MAIN")
		for range 5 {
			if rp := ks.send(checkout(inst, "alice", "0000", free.Barcode)); rp.fixed[0] != '0' || rp.f("AF") != "wrong PIN" {
				t.Fatalf("a wrong PIN: %q", rp.raw)
			}
		}
		if rp := ks.send(checkout(inst, "alice", patronPW, free.Barcode)); rp.fixed[0] != '0' || !strings.Contains(rp.f("AF"), "too many wrong PINs") {
			t.Errorf("the right PIN after five wrong ones: %q", rp.raw)
		}
	})
}
