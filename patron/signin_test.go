package patron_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
	"github.com/patronkit/patronkit/patron"
)

func failureRows(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Model(&patron.SignInFailures{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// logBuffer is a log that tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

func TestSignInAnswersANameNobodyHoldsAsAHeldOne(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{MaxSignInFailures: 3, Lockout: 10 * time.Minute})
		mustCreate(t, f, "UNI", jane())
		// The same guesses at a user and at a name nobody holds get the
		// same answers, lock included: a lock does not tell who exists.
		answers := func(name string) []string {
			var out []string
			for i := 0; i < 5; i++ {
				_, err := f.svc.SignIn(f.ctx, "UNI", name, "0000", "192.0.2.1")
				e, _ := fault.As(err)
				if e == nil {
					t.Fatalf("%s signed in with a wrong PIN", name)
				}
				out = append(out, fmt.Sprintf("%d %s %v", e.Kind, e.Detail, e.RetryAfter))
			}
			return out
		}
		held, nobody := answers("jdoe"), answers("nobody")
		if strings.Join(held, "\n") != strings.Join(nobody, "\n") {
			t.Fatalf("a held name and a name nobody holds answer differently:\n%s\n--\n%s", strings.Join(held, "\n"), strings.Join(nobody, "\n"))
		}
		if !strings.HasPrefix(nobody[4], fmt.Sprint(fault.Locked)) {
			t.Fatalf("guesses at a name nobody holds were never locked: %v", nobody)
		}
		// Their counts are forgotten like any other.
		f.clock.Advance(10*time.Minute + time.Second)
		if _, err := f.svc.ExpireSignInFailures(f.ctx); err != nil {
			t.Fatal(err)
		}
		if n := failureRows(t, db); n != 0 {
			t.Fatalf("failures not forgotten after the lockout: %d rows", n)
		}
		// A name longer than any primary_id fails at once: no statement,
		// no PIN hash, nothing stored.
		sent := dbtest.CountStatements(t, db)
		hashes := patron.PINHashesCompared(f.svc)
		for _, name := range []string{strings.Repeat("x", 512<<10), strings.Repeat("é", 256), " "} {
			_, err := f.svc.SignIn(f.ctx, "UNI", name, "1234", "192.0.2.1")
			wantKind(t, err, fault.Unauthenticated)
		}
		if n := sent.Load(); n != 0 {
			t.Fatalf("a name that cannot exist cost %d statements", n)
		}
		if n := patron.PINHashesCompared(f.svc) - hashes; n != 0 {
			t.Fatalf("a name that cannot exist cost %d PIN hashes", n)
		}
		if n := failureRows(t, db); n != 0 {
			t.Fatalf("huge names stored: %d rows", n)
		}
		// A PIN longer than any PIN is wrong without a hash, and counts.
		hashes = patron.PINHashesCompared(f.svc)
		_, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", strings.Repeat("1", 100), "192.0.2.1")
		wantKind(t, err, fault.Unauthenticated)
		if n := patron.PINHashesCompared(f.svc) - hashes; n != 0 {
			t.Fatalf("an overlong PIN cost %d PIN hashes", n)
		}
		if n := failureRows(t, db); n != 2 {
			t.Fatalf("the existing user's failure: %d rows, want one for the source and one for the account", n)
		}
	})
}

func TestSignInLocksTheSourceFirstAndTheAccountAtAHigherBar(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		var logs logBuffer
		opts := patron.Options{MaxSignInFailures: 3, MaxAccountSignInFailures: 8, Lockout: 10 * time.Minute, Logger: logs.logger()}
		f := newFixture(t, db, opts)
		mustCreate(t, f, "UNI", jane())
		const attacker, owner = "198.51.100.66", "203.0.113.7"
		for i := 0; i < 3; i++ {
			_, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "0000", attacker)
			wantKind(t, err, fault.Unauthenticated)
		}
		// The guessing source is locked, even with the right PIN, also on
		// another instance...
		opts.Now, opts.PINCost = f.clock.Now, 4
		other, err := patron.NewService(db, opts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = other.SignIn(f.ctx, "UNI", "jdoe", "1234", attacker)
		if e := wantKind(t, err, fault.Locked); e.RetryAfter != 10*time.Minute {
			t.Fatalf("retry after %v", e.RetryAfter)
		}
		// ...but the owner signs in from their own address.
		if u, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", owner); err != nil || u.PrimaryID != "jdoe" {
			t.Fatalf("the owner is locked out by someone else's failures: %v", err)
		}
		if !strings.Contains(logs.String(), "locked for one source") || !strings.Contains(logs.String(), "primary_id=jdoe") {
			t.Fatalf("the source's lock was not logged:\n%s", logs.String())
		}

		// Failures from many sources add up to the account's bar (3 from
		// the attacker so far; the owner's success does not clear them).
		for i, src := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"} {
			_, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "000"+string(rune('1'+i)), src)
			wantKind(t, err, fault.Unauthenticated)
		}
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", owner); err != nil {
			t.Fatalf("locked before the account's bar: %v", err)
		}
		_, err = f.svc.SignIn(f.ctx, "UNI", "jdoe", "0009", "192.0.2.5")
		wantKind(t, err, fault.Unauthenticated)
		for _, src := range []string{owner, "192.0.2.200"} {
			_, err = other.SignIn(f.ctx, "UNI", "jdoe", "1234", src)
			if e := wantKind(t, err, fault.Locked); e.RetryAfter != 10*time.Minute {
				t.Fatalf("retry after %v", e.RetryAfter)
			}
		}
		log := logs.String()
		if !strings.Contains(log, "locked after failed sign-ins from many sources") {
			t.Fatalf("the account's lock was not logged:\n%s", log)
		}
		for _, addr := range []string{attacker, owner, "192.0.2.5"} {
			if strings.Contains(log, addr) {
				t.Fatalf("the log holds the address %s:\n%s", addr, log)
			}
		}

		f.clock.Advance(10*time.Minute + time.Second)
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", owner); err != nil {
			t.Fatalf("the account's lock did not end: %v", err)
		}
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", attacker); err != nil {
			t.Fatalf("the source's lock did not end: %v", err)
		}
	})
}

func TestSignInFailuresAreForgottenAfterLockout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{MaxSignInFailures: 3, Lockout: 10 * time.Minute})
		mustCreate(t, f, "UNI", jane())
		fail := func(src string) {
			t.Helper()
			_, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "0000", src)
			wantKind(t, err, fault.Unauthenticated)
		}
		expire := func(want int64) {
			t.Helper()
			n, err := f.svc.ExpireSignInFailures(f.ctx)
			if err != nil || n != want {
				t.Fatalf("expired %d rows (%v), want %d", n, err, want)
			}
		}
		// Two failures, then a pause longer than Lockout: the count starts
		// again, so two more do not lock.
		fail("192.0.2.1")
		fail("192.0.2.1")
		f.clock.Advance(9 * time.Minute)
		expire(0)
		f.clock.Advance(2 * time.Minute)
		fail("192.0.2.1")
		fail("192.0.2.1")
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", "192.0.2.1"); err != nil {
			t.Fatalf("failures older than Lockout still counted: %v", err)
		}

		// Rows whose last failure is older than Lockout are deleted; a
		// lock is kept while it holds.
		fail("192.0.2.2")
		for i := 0; i < 3; i++ {
			fail("192.0.2.3")
		}
		if n := failureRows(t, db); n != 3 {
			t.Fatalf("%d rows, want 192.0.2.2, 192.0.2.3 and the account's", n)
		}
		f.clock.Advance(10*time.Minute - time.Second)
		expire(0)
		f.clock.Advance(2 * time.Second)
		expire(3)
		if n := failureRows(t, db); n != 0 {
			t.Fatalf("%d rows left", n)
		}
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", "192.0.2.3"); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
	})
}

func TestSignInRateLimitsASourceBeforeAnyHash(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		var logs logBuffer
		f := newFixture(t, db, patron.Options{SignInBurst: 3, SignInRefill: time.Minute, SignInCacheFor: -1, Logger: logs.logger()})
		mustCreate(t, f, "UNI", jane())
		const flood = "198.51.100.9"
		for _, name := range []string{"nobody1", "nobody2", "jdoe"} {
			_, err := f.svc.SignIn(f.ctx, "UNI", name, "0000", flood)
			wantKind(t, err, fault.Unauthenticated)
		}
		// The source has used its burst: it waits, even with a good PIN,
		// and costs neither a statement nor a hash.
		sent := dbtest.CountStatements(t, db)
		hashes := patron.PINHashesCompared(f.svc)
		for i := 0; i < 5; i++ {
			_, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", flood)
			if e := wantKind(t, err, fault.Locked); e.RetryAfter != time.Minute {
				t.Fatalf("retry after %v", e.RetryAfter)
			}
		}
		if n := patron.PINHashesCompared(f.svc) - hashes; n != 0 {
			t.Fatalf("a limited source cost %d PIN hashes", n)
		}
		if n := sent.Load(); n != 0 {
			t.Fatalf("a limited source cost %d statements", n)
		}
		if log := logs.String(); strings.Count(log, "too many failed sign-ins") != 1 || strings.Contains(log, flood) {
			t.Fatalf("the limit must be logged once, without the address:\n%s", log)
		}
		// Other sources are not limited; successes use no budget.
		for i := 0; i < 6; i++ {
			if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", "203.0.113.7"); err != nil {
				t.Fatalf("sign-in %d from another source: %v", i, err)
			}
		}
		// One more attempt comes back every SignInRefill.
		f.clock.Advance(time.Minute)
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", flood); err != nil {
			t.Fatalf("after waiting: %v", err)
		}
		_, err := f.svc.SignIn(f.ctx, "UNI", "nobody", "1234", flood)
		wantKind(t, err, fault.Unauthenticated)
		_, err = f.svc.SignIn(f.ctx, "UNI", "nobody", "1234", flood)
		wantKind(t, err, fault.Locked)
	})
}

func TestSignInCachesAVerifiedCredentialBriefly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{MaxSignInFailures: 3})
		u := mustCreate(t, f, "UNI", jane())
		const src = "192.0.2.1"
		signIn := func(id, pin string, hashes int64) error {
			t.Helper()
			before := patron.PINHashesCompared(f.svc)
			_, err := f.svc.SignIn(f.ctx, "UNI", id, pin, src)
			if n := patron.PINHashesCompared(f.svc) - before; n != hashes {
				t.Fatalf("%s/%s: %d PIN hashes, want %d", id, pin, n, hashes)
			}
			return err
		}
		if err := signIn("jdoe", "1234", 1); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"jdoe", "JDOE"} {
			if err := signIn(id, "1234", 0); err != nil {
				t.Fatalf("cached credential refused: %v", err)
			}
		}
		wantKind(t, signIn("jdoe", "0000", 1), fault.Unauthenticated)
		// The cache forgets after SignInCacheFor (one minute by default).
		f.clock.Advance(time.Minute)
		if err := signIn("jdoe", "1234", 1); err != nil {
			t.Fatal(err)
		}

		// A new PIN ends the old one at once.
		in := *u
		in.PINNumber = "9876"
		u, err := f.svc.Replace(f.ctx, "UNI", "jdoe", u.Version, &in)
		if err != nil {
			t.Fatal(err)
		}
		wantKind(t, signIn("jdoe", "1234", 1), fault.Unauthenticated)
		if err := signIn("jdoe", "9876", 1); err != nil {
			t.Fatal(err)
		}
		if err := signIn("jdoe", "9876", 0); err != nil {
			t.Fatal(err)
		}

		// A lock holds for a cached credential too.
		for i := 0; i < 2; i++ {
			wantKind(t, signIn("jdoe", "0000", 1), fault.Unauthenticated)
		}
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "0000", "198.51.100.66"); err == nil {
			t.Fatal("a wrong PIN signed in")
		}
		wantKind(t, signIn("jdoe", "0000", 1), fault.Unauthenticated)
		wantKind(t, signIn("jdoe", "9876", 0), fault.Locked)
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "9876", "203.0.113.7"); err != nil {
			t.Fatalf("from another source: %v", err)
		}

		// Deactivating ends it at once, and so does deleting.
		in = *u
		in.Status = patron.StatusInactive
		if _, err := f.svc.Replace(f.ctx, "UNI", "jdoe", u.Version, &in); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.SignIn(f.ctx, "UNI", "jdoe", "9876", "203.0.113.7")
		wantKind(t, err, fault.Unauthenticated)

		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "temp", FirstName: "T", LastName: "T", PINNumber: "5555"})
		if _, err := f.svc.SignIn(f.ctx, "UNI", "temp", "5555", src); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Delete(f.ctx, "UNI", "temp"); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.SignIn(f.ctx, "UNI", "temp", "5555", "203.0.113.7")
		wantKind(t, err, fault.Unauthenticated)
	})
}

// oldSignInFailures is the table of failed sign-ins as releases before
// sources were counted had it.
type oldSignInFailures struct {
	Institution  string    `gorm:"primaryKey;size:64"`
	PrimaryIDKey string    `gorm:"primaryKey;size:255"`
	Failures     int       `gorm:"not null"`
	LockedUntil  time.Time `gorm:"not null"`
}

func (oldSignInFailures) TableName() string { return "pk_signin_failures" }

func TestSignInFailuresTableIsReplacedOnUpgrade(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		all := patron.Migrations()
		var before []*gormigrate.Migration
		for _, m := range all {
			if m.ID == "202612010001_patron_signin_sources" {
				break
			}
			before = append(before, m)
		}
		if len(before) == len(all) {
			t.Fatal("no migration of the sign-in sources")
		}
		if err := migrate.Run(ctx, db, before); err != nil {
			t.Fatal(err)
		}
		// The table as the earlier release made it, with a lock in it.
		if err := db.Exec("DROP TABLE pk_signin_failures").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Migrator().CreateTable(&oldSignInFailures{}); err != nil {
			t.Fatal(err)
		}
		if err := db.Create(&oldSignInFailures{Institution: "UNI", PrimaryIDKey: "jdoe", LockedUntil: time.Now().Add(time.Hour).UTC()}).Error; err != nil {
			t.Fatal(err)
		}
		f := newFixture(t, db, patron.Options{MaxSignInFailures: 2})
		mustCreate(t, f, "UNI", jane())
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", "192.0.2.1"); err != nil {
			t.Fatalf("after the upgrade: %v", err)
		}
		for i := 0; i < 2; i++ {
			_, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "0000", "192.0.2.1")
			wantKind(t, err, fault.Unauthenticated)
		}
		_, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", "192.0.2.1")
		wantKind(t, err, fault.Locked)
	})
}

// TestSignInByAnIdentifier: with SignInIdentifiers, a barcode signs its
// user in as the primary_id does; a wrong PIN by barcode counts against
// that user (and locks them); an INACTIVE barcode, or one of a type not
// named, signs nobody in; without the option only the primary_id does.
func TestSignInByAnIdentifier(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{SignInIdentifiers: []string{"BARCODE"}, MaxSignInFailures: 2})
		u := jane()
		u.Identifiers = append(u.Identifiers, patron.Identifier{IDType: "BARCODE", Value: "OLD-7", Status: "INACTIVE"}, patron.Identifier{IDType: "UNIV_ID", Value: "U-9"})
		mustCreate(t, f, "UNI", u)
		if got, err := f.svc.SignIn(f.ctx, "UNI", "b-100", "1234", "192.0.2.1"); err != nil || got.PrimaryID != "jdoe" {
			t.Fatalf("sign-in by barcode: %v %v", got, err)
		}
		for _, v := range []string{"OLD-7", "U-9"} {
			_, err := f.svc.SignIn(f.ctx, "UNI", v, "1234", "192.0.2.1")
			wantKind(t, err, fault.Unauthenticated)
		}
		for range 2 {
			_, err := f.svc.SignIn(f.ctx, "UNI", "B-100", "0000", "192.0.2.2")
			wantKind(t, err, fault.Unauthenticated)
		}
		// The barcode's failures locked jdoe for that source, by either name.
		_, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", "192.0.2.2")
		wantKind(t, err, fault.Locked)

		plain := newFixture(t, db, patron.Options{})
		_, err = plain.svc.SignIn(plain.ctx, "UNI", "B-100", "1234", "192.0.2.3")
		wantKind(t, err, fault.Unauthenticated)
	})
}
