package privacy_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

const inst = "UNI"

var staff = patron.Actor{Institution: inst, ID: "librarian"}

func staffCtx() context.Context {
	return patron.WithActor(context.Background(), staff)
}

func entries(t *testing.T, k *patronkittest.Kit) []privacy.Entry {
	t.Helper()
	es, err := k.Privacy.Entries(context.Background(), inst, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func verify(t *testing.T, k *patronkittest.Kit) *privacy.Break {
	t.Helper()
	b, err := k.Privacy.Verify(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTheTrailRecordsReadsChangesDeletesAndExports(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := patron.WithOrigin(staffCtx(), patron.Origin{Via: "http GET /users/:id", RequestID: "req-1", Roles: []string{"CIRC_DESK"}, Library: "MAIN"})
		u, err := k.Patrons.Create(ctx, inst, &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Patrons.Get(ctx, inst, "JDOE"); err != nil {
			t.Fatal(err)
		}
		u.FirstName = "Janet"
		if _, err := k.Patrons.Replace(ctx, inst, "jdoe", u.Version, u); err != nil {
			t.Fatal(err)
		}
		k.Patrons.Audit(ctx, inst, patron.AuditExport, "jdoe", "user")
		self := patron.WithActor(context.Background(), patron.Actor{Institution: inst, ID: "jdoe", Patron: true})
		if _, err := k.Patrons.Get(self, inst, "jdoe"); err != nil { // their own read: not on the trail
			t.Fatal(err)
		}
		k.Patrons.Audit(self, inst, patron.AuditExport, "jdoe", "personal data")
		if err := k.Patrons.Delete(ctx, inst, "jdoe"); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries(t, k) {
			got = append(got, fmt.Sprintf("%d %s %s/%s %s %s %s %s %s %s %s", e.Seq, e.Action, e.ActorKind, e.ActorID, e.ActorRoles, e.ActorLibrary, e.Subject, e.What, e.Via, e.RequestID, e.Time().Format(time.RFC3339)))
		}
		at := patronkittest.Start.Format(time.RFC3339)
		want := []string{
			"1 create staff/librarian CIRC_DESK MAIN jdoe user http GET /users/:id req-1 " + at,
			"2 read staff/librarian CIRC_DESK MAIN jdoe user http GET /users/:id req-1 " + at,
			"3 update staff/librarian CIRC_DESK MAIN jdoe user http GET /users/:id req-1 " + at,
			"4 export staff/librarian CIRC_DESK MAIN jdoe user http GET /users/:id req-1 " + at,
			"5 export patron/jdoe   jdoe personal data   " + at,
			"6 delete staff/librarian CIRC_DESK MAIN jdoe user http GET /users/:id req-1 " + at,
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("trail:\n%q\nwant\n%q", got, want)
		}
		if b := verify(t, k); b != nil {
			t.Fatalf("an untouched trail verifies, got %v", b)
		}
	})
}

func TestAFailedChangeLeavesNoEntry(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := staffCtx()
		if _, err := k.Patrons.Create(ctx, inst, &patron.User{PrimaryID: "", FirstName: "No", LastName: "Id"}); err == nil {
			t.Fatal("a user without primary_id was created")
		}
		refused := errors.New("the host changes its mind")
		err := k.InTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
			if _, err := k.Patrons.Create(ctx, inst, &patron.User{PrimaryID: "ghost", FirstName: "G", LastName: "Host"}); err != nil {
				return err
			}
			return refused
		})
		if !errors.Is(err, refused) {
			t.Fatalf("InTx: %v", err)
		}
		if es := entries(t, k); len(es) != 0 {
			t.Fatalf("entries of changes not made: %+v", es)
		}
		// The chain goes on whole after the rolled-back entry.
		patronkittest.User(t, k, inst)
		if es := entries(t, k); len(es) != 1 || es[0].Seq != 1 || es[0].Action != patron.AuditCreate {
			t.Fatalf("entries: %+v", es)
		}
		if b := verify(t, k); b != nil {
			t.Fatal(b)
		}
	})
}

func TestConcurrentReadsAreWrittenTogetherBeforeTheyReturn(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		var inserts atomic.Int64
		if err := k.DB.Callback().Raw().After("gorm:raw").Register("test:count_audit_inserts", func(tx *gorm.DB) {
			// (on PostgreSQL, within the statement that moves the head)
			if q := tx.Statement.SQL.String(); strings.HasPrefix(q, "INSERT INTO pk_privacy_audit") || strings.HasPrefix(q, "WITH entries AS (INSERT INTO pk_privacy_audit") {
				inserts.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
		u := patronkittest.User(t, k, inst)
		const readers = 20
		var wg sync.WaitGroup
		errs := make(chan error, readers)
		// A host transaction holds the chain's head while the readers
		// come: their entries wait together for the writer.
		err := k.InTx(staffCtx(), func(ctx context.Context, tx *gorm.DB) error {
			if _, err := k.Patrons.Get(ctx, inst, u.PrimaryID); err != nil {
				return err
			}
			inserts.Store(0)
			for i := range readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("reader-%d", i)
					ctx := patron.WithOrigin(staffCtx(), patron.Origin{RequestID: id})
					if _, err := k.Patrons.Get(ctx, inst, u.PrimaryID); err != nil {
						errs <- err
						return
					}
					var n int64
					if err := k.DB.Model(&privacy.Entry{}).Where("request_id = ?", id).Count(&n).Error; err != nil {
						errs <- err
					} else if n != 1 {
						errs <- fmt.Errorf("%s returned with %d entries on record", id, n)
					}
				}()
			}
			deadline := time.Now().Add(time.Minute)
			for privacy.Pending(k.Privacy) < readers {
				if time.Now().After(deadline) {
					return fmt.Errorf("only %d readers waiting", privacy.Pending(k.Privacy))
				}
				runtime.Gosched()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := inserts.Load(); n < 1 || n > 2 {
			t.Errorf("%d readers' entries took %d statements, want at most 2", readers, n)
		}
		if es := entries(t, k); len(es) != readers+2 {
			t.Errorf("%d entries, want %d", len(es), readers+2)
		}
		if b := verify(t, k); b != nil {
			t.Fatal(b)
		}
	})
}

func TestVerifyFindsWhatWasChangedBehindTheKitsBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sql    string
		reason string
		seq    int64
	}{
		{"altered", "UPDATE pk_privacy_audit SET subject = 'someone-else' WHERE seq = 3", privacy.Altered, 3},
		{"relinked", "UPDATE pk_privacy_audit SET prev_hash = hash WHERE seq = 4", privacy.Altered, 4},
		{"removed", "DELETE FROM pk_privacy_audit WHERE seq = 3", privacy.Removed, 3},
		{"removed at the end", "DELETE FROM pk_privacy_audit WHERE seq >= 5", privacy.Removed, 5},
		{"inserted", "INSERT INTO pk_privacy_audit (institution, seq, at_us, actor_id, actor_kind, actor_roles, actor_library, action, subject, what, details, via, request_id, prev_hash, hash) " +
			"SELECT institution, 7, at_us, actor_id, actor_kind, actor_roles, actor_library, action, subject, what, details, via, request_id, hash, hash FROM pk_privacy_audit WHERE seq = 6", privacy.Inserted, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
				u := patronkittest.User(t, k, inst)
				for range 5 {
					if _, err := k.Patrons.Get(staffCtx(), inst, u.PrimaryID); err != nil {
						t.Fatal(err)
					}
				}
				if b := verify(t, k); b != nil {
					t.Fatalf("untouched: %v", b)
				}
				if err := k.DB.Exec(tc.sql).Error; err != nil {
					t.Fatal(err)
				}
				b := verify(t, k)
				if b == nil || b.Reason != tc.reason || b.Seq != tc.seq || b.Institution != inst {
					t.Fatalf("Verify = %v, want %s at %d", b, tc.reason, tc.seq)
				}
			})
		})
	}
}

func TestPruneLeavesASignedCheckpoint(t *testing.T) {
	key := func(c *patronkit.Config) { c.AuditKey = []byte("a secret of the library's") }
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u := patronkittest.User(t, k, inst) // 1
		for range 3 {                       // 2-4
			if _, err := k.Patrons.Get(staffCtx(), inst, u.PrimaryID); err != nil {
				t.Fatal(err)
			}
		}
		cut := k.Clock.Advance(30 * 24 * time.Hour)
		for range 2 { // 5-6
			if _, err := k.Patrons.Get(staffCtx(), inst, u.PrimaryID); err != nil {
				t.Fatal(err)
			}
		}
		n, err := k.Privacy.Prune(ctx, inst, cut)
		if err != nil || n != 4 {
			t.Fatalf("Prune = %d, %v; want 4 dropped", n, err)
		}
		es := entries(t, k)
		if len(es) != 2 || es[0].Seq != 5 {
			t.Fatalf("left: %+v", es)
		}
		if b := verify(t, k); b != nil {
			t.Fatalf("a pruned trail verifies from its checkpoint, got %v", b)
		}
		// Dropping the next entry behind the kit's back is found.
		if err := k.DB.Exec("DELETE FROM pk_privacy_audit WHERE seq = 5").Error; err != nil {
			t.Fatal(err)
		}
		if b := verify(t, k); b == nil || b.Reason != privacy.Removed || b.Seq != 5 {
			t.Fatalf("Verify = %v, want removed at 5", b)
		}
		// So is moving the checkpoint over it.
		if err := k.DB.Exec("UPDATE pk_privacy_heads SET checkpoint_seq = 5 WHERE institution = ?", inst).Error; err != nil {
			t.Fatal(err)
		}
		if b := verify(t, k); b == nil || b.Reason != privacy.Altered || b.Seq != 5 {
			t.Fatalf("Verify = %v, want the forged checkpoint", b)
		}
		// Prune refuses a broken trail and drops nothing.
		if n, err := k.Privacy.Prune(ctx, inst, k.Clock.Now().Add(time.Hour)); err == nil || n != 0 {
			t.Fatalf("Prune of a broken trail = %d, %v", n, err)
		}
		if es := entries(t, k); len(es) != 1 {
			t.Fatalf("left: %+v", es)
		}
	}, key)
}

func TestPruneNeedsTheKey(t *testing.T) {
	k := patronkittest.New(t)
	patronkittest.User(t, k, inst)
	if _, err := k.Privacy.Prune(context.Background(), inst, k.Clock.Now().Add(time.Hour)); err == nil {
		t.Fatal("Prune without a key dropped entries")
	}
	if es := entries(t, k); len(es) != 1 {
		t.Fatalf("entries: %+v", es)
	}
}

func TestAForgedEndOfChainIsFoundWithTheKey(t *testing.T) {
	key := func(c *patronkit.Config) { c.AuditKey = []byte("k") }
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		u := patronkittest.User(t, k, inst)
		if _, err := k.Patrons.Get(staffCtx(), inst, u.PrimaryID); err != nil {
			t.Fatal(err)
		}
		// Whoever drops the last entry and moves the end of the chain
		// back cannot sign it.
		var h struct{ Hash string }
		if err := k.DB.Raw("SELECT hash FROM pk_privacy_audit WHERE seq = 1").Scan(&h).Error; err != nil {
			t.Fatal(err)
		}
		if err := k.DB.Exec("DELETE FROM pk_privacy_audit WHERE seq = 2").Error; err != nil {
			t.Fatal(err)
		}
		if err := k.DB.Exec("UPDATE pk_privacy_heads SET seq = 1, hash = ?", h.Hash).Error; err != nil {
			t.Fatal(err)
		}
		if b := verify(t, k); b == nil || b.Reason != privacy.Altered {
			t.Fatalf("Verify = %v, want the forged end", b)
		}
	}, key)
}

func TestNothingLeavesOrChangesWhenItsEntryCannotBeWritten(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		u := patronkittest.User(t, k, inst)
		if err := k.DB.Exec("DROP TABLE pk_privacy_audit").Error; err != nil {
			t.Fatal(err)
		}
		if got, err := k.Patrons.Get(staffCtx(), inst, u.PrimaryID); err == nil || got != nil {
			t.Fatalf("a read left without its entry: %v, %v", got, err)
		}
		if got, err := k.Patrons.Overrides(staffCtx(), inst, u.PrimaryID); err == nil || got != nil {
			t.Fatalf("the provenance of fields left without its entry: %v, %v", got, err)
		}
		if _, err := k.Patrons.Create(staffCtx(), inst, &patron.User{PrimaryID: "unrecorded", FirstName: "U", LastName: "R"}); err == nil {
			t.Fatal("a user was created without an entry")
		}
		if _, _, err := k.Patrons.ID(context.Background(), inst, "unrecorded"); err == nil {
			t.Fatal("the user created without an entry is there")
		}
	})
}

// A patron's download of their data is an export on the trail (their own
// reads are not): a download whose entry cannot be written hands out
// nothing.
func TestAPersonalDataDownloadLeavesOnlyWithItsEntry(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		u := patronkittest.User(t, k, inst)
		self := patron.WithActor(context.Background(), patron.Actor{Institution: inst, ID: u.PrimaryID, Patron: true})
		if _, err := k.PersonalData.OwnPersonalData(self, inst, u.PrimaryID); err != nil {
			t.Fatal(err)
		}
		es := entries(t, k)
		if last := es[len(es)-1]; last.Action != patron.AuditExport || last.ActorID != u.PrimaryID || last.What != "personal data" {
			t.Fatalf("the download's entry: %+v", last)
		}
		// Entries can no longer be written; the trail can still be read.
		if err := k.DB.Exec("ALTER TABLE pk_privacy_audit DROP COLUMN details").Error; err != nil {
			t.Fatal(err)
		}
		if doc, err := k.PersonalData.OwnPersonalData(self, inst, u.PrimaryID); err == nil || doc != nil {
			t.Fatalf("a download left without its entry: %v, %v", doc, err)
		}
	})
}

func TestVerifyWhileEntriesAreWritten(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		u := patronkittest.User(t, k, inst)
		var wg sync.WaitGroup
		var writing atomic.Int32
		for range 4 {
			wg.Add(1)
			writing.Add(1)
			go func() {
				defer wg.Done()
				defer writing.Add(-1)
				for range 30 {
					if _, err := k.Patrons.Get(staffCtx(), inst, u.PrimaryID); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		for writing.Load() > 0 {
			if b := verify(t, k); b != nil {
				t.Fatalf("a trail being written does not verify: %v", b)
			}
		}
		wg.Wait()
		if b := verify(t, k); b != nil {
			t.Fatal(b)
		}
		if es := entries(t, k); len(es) != 121 {
			t.Fatalf("%d entries", len(es))
		}
	})
}

// TestSignInFailuresAndLockoutsAreOnTheTrail: every wrong PIN for an
// existing user is an entry naming them, and the lock the failures set is
// one more; the source is named by the start of its hash, never the
// address.
func TestSignInFailuresAndLockoutsAreOnTheTrail(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u := patronkittest.User(t, k, inst, func(u *patron.User) { u.PINNumber = "1234" })
		for range 5 {
			if _, err := k.Patrons.SignIn(ctx, inst, u.PrimaryID, "0000", "192.0.2.7"); !errors.Is(err, fault.ErrUnauthenticated) {
				t.Fatalf("wrong PIN: %v", err)
			}
		}
		if _, err := k.Patrons.SignIn(ctx, inst, "nobody", "0000", "192.0.2.7"); err == nil {
			t.Fatal("an unknown user signed in")
		}
		var failed, locked int
		for _, e := range entries(t, k) {
			if strings.Contains(e.What, "192.0.2.7") {
				t.Fatalf("an entry names the address: %+v", e)
			}
			switch e.Action {
			case patron.AuditSignInFailed:
				failed++
				if e.Subject != u.PrimaryID || !strings.HasPrefix(e.What, "sign-in from source ") {
					t.Errorf("failure entry %+v", e)
				}
			case patron.AuditLocked:
				locked++
				if e.Subject != u.PrimaryID || !strings.HasPrefix(e.What, "sign-in locked for source ") {
					t.Errorf("lock entry %+v", e)
				}
			}
		}
		if failed != 5 || locked != 1 {
			t.Fatalf("%d failure and %d lock entries, want 5 and 1", failed, locked)
		}
		if b := verify(t, k); b != nil {
			t.Fatalf("the chain: %+v", b)
		}
	})
}

// Two instances write one institution's trail at once, with changes in
// transactions of their own between the reads: each extends the chain
// where the other left it, and the chain holds every entry, whole.
func TestTwoInstancesExtendOneChain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		one := patronkittest.On(t, db)
		two := patronkittest.On(t, db)
		u := patronkittest.User(t, one, inst)
		var wg sync.WaitGroup
		for _, k := range []*patronkittest.Kit{one, two, one, two} {
			wg.Go(func() {
				for i := range 25 {
					if _, err := k.Patrons.Get(staffCtx(), inst, u.PrimaryID); err != nil {
						t.Error(err)
						return
					}
					if i%10 == 0 {
						if err := k.InTx(staffCtx(), func(ctx context.Context, tx *gorm.DB) error {
							_, err := k.Patrons.Get(ctx, inst, u.PrimaryID)
							return err
						}); err != nil {
							t.Error(err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		for _, k := range []*patronkittest.Kit{one, two} {
			if b := verify(t, k); b != nil {
				t.Fatal(b)
			}
		}
		if es := entries(t, one); len(es) != 1+4*(25+3) {
			t.Fatalf("%d entries, want %d", len(es), 1+4*(25+3))
		}
	})
}
