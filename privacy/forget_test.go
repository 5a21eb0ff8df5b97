package privacy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

var withKey = func(c *patronkit.Config) { c.AuditKey = []byte("a secret of the library's") }

// forgettable makes a trail about jdoe (Jane Doe, renamed Janet Doedel):
// created, read and changed by staff, exported by herself; and about
// someone else, read by staff. It returns the user.
func forgettable(t *testing.T, k *patronkittest.Kit) *patron.User {
	t.Helper()
	ctx := patron.WithOrigin(staffCtx(), patron.Origin{Via: "http PUT /users/:primary_id", RequestID: "req-7"})
	u, err := k.Patrons.Create(ctx, inst, &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
	if err != nil {
		t.Fatal(err)
	}
	other := patronkittest.User(t, k, inst)
	if _, err := k.Patrons.Get(ctx, inst, "JDoe"); err != nil {
		t.Fatal(err)
	}
	u.FirstName, u.LastName = "Janet", "Doedel"
	if _, err := k.Patrons.Replace(ctx, inst, "jdoe", u.Version, u); err != nil {
		t.Fatal(err)
	}
	self := patron.WithActor(context.Background(), patron.Actor{Institution: inst, ID: "JDOE", Patron: true})
	k.Patrons.Audit(self, inst, patron.AuditExport, "jdoe", "personal data")
	if _, err := k.Patrons.Get(ctx, inst, other.PrimaryID); err != nil {
		t.Fatal(err)
	}
	return u
}

// rows reads every column of every row of table, as text.
func rows(t *testing.T, db *gorm.DB, table string) []map[string]string {
	t.Helper()
	rs, err := db.Raw("SELECT * FROM " + table).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for i, c := range cols {
			switch v := vals[i].(type) {
			case []byte:
				m[c] = string(v)
			default:
				m[c] = fmt.Sprint(v)
			}
		}
		out = append(out, m)
	}
	return out
}

// named reports the cells of the trail that name jdoe.
func named(t *testing.T, db *gorm.DB) []string {
	var found []string
	for _, table := range []string{"pk_privacy_audit", "pk_privacy_redactions"} {
		for _, r := range rows(t, db, table) {
			for c, v := range r {
				for _, name := range []string{"jdoe", "jane", "janet", "doe"} {
					if strings.Contains(strings.ToLower(v), name) {
						found = append(found, fmt.Sprintf("%s.%s = %q", table, c, v))
					}
				}
			}
		}
	}
	return found
}

func TestForgetTakesTheUserOffTheTrailAndTheChainStaysWhole(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		forgettable(t, k)
		before := entries(t, k)
		if len(named(t, k.DB)) == 0 {
			t.Fatal("the trail does not name the user to begin with")
		}
		n, err := k.Privacy.Forget(staffCtx(), inst, "jDoe", "erased:1")
		if err != nil || n != 4 {
			t.Fatalf("Forget = %d, %v; want 4 entries", n, err)
		}
		if found := named(t, k.DB); len(found) > 0 {
			t.Fatalf("the trail still names the user:\n%s", strings.Join(found, "\n"))
		}
		if b := verify(t, k); b != nil {
			t.Fatalf("the chain after Forget: %v", b)
		}
		after := entries(t, k)
		if len(after) != len(before) {
			t.Fatalf("%d entries, had %d", len(after), len(before))
		}
		for i, e := range after {
			was := before[i]
			if e.Hash != was.Hash || e.PrevHash != was.PrevHash || e.RequestID != was.RequestID || e.Action != was.Action || e.AtUS != was.AtUS || e.What != was.What {
				t.Errorf("entry %d changed beyond the name: %+v, was %+v", e.Seq, e, was)
			}
			if strings.EqualFold(was.Subject, "jdoe") {
				if e.Subject != "erased:1" || (was.Details != "" && e.Details != privacy.Forgotten) {
					t.Errorf("entry %d not forgotten: %+v", e.Seq, e)
				}
				if was.ActorKind == privacy.ActorPatron && e.ActorID != "erased:1" || was.ActorKind == privacy.ActorStaff && e.ActorID != "librarian" {
					t.Errorf("entry %d actor: %+v", e.Seq, e)
				}
			} else if e != was {
				t.Errorf("another user's entry changed: %+v, was %+v", e, was)
			}
		}
		// The trail's readers show the replacement.
		p, err := k.Privacy.Search(context.Background(), inst, privacy.Query{Subject: "erased:1"})
		if err != nil || len(p.Entries) != 4 {
			t.Fatalf("Search = %+v, %v", p, err)
		}
		var csv bytes.Buffer
		if n, err := k.Privacy.WriteCSV(context.Background(), &csv, inst, privacy.Query{Subject: "erased:1"}); err != nil || n != 4 || strings.Contains(strings.ToLower(csv.String()), "jane") {
			t.Fatalf("WriteCSV = %d, %v:\n%s", n, err, csv.String())
		}
		log, err := k.Privacy.AccessLog(context.Background(), inst, "erased:1", 0, 0)
		if err != nil || len(log.Entries) != 3 {
			t.Fatalf("AccessLog = %+v, %v; want the 3 entries of staff", log, err)
		}
		// Forgetting again finds nothing more.
		if n, err := k.Privacy.Forget(staffCtx(), inst, "jdoe", "erased:2"); err != nil || n != 0 {
			t.Fatalf("Forget again = %d, %v", n, err)
		}
	}, withKey)
}

func TestVerifyFindsAForgottenEntryChangedOrAForgettingForged(t *testing.T) {
	for _, tc := range []struct {
		name string
		sql  []string
		seq  int64 // the entry found
	}{
		// Entry 1 is jdoe's creation (forgotten), 2 the other user's.
		{"a forgotten entry edited", []string{"UPDATE pk_privacy_audit SET what = 'notes' WHERE seq = 1"}, 1},
		{"a forgotten entry's name put back", []string{"UPDATE pk_privacy_audit SET subject = 'jdoe' WHERE seq = 1"}, 1},
		{"a forgotten entry's redaction dropped", []string{"DELETE FROM pk_privacy_redactions WHERE seq = 1"}, 1},
		{"an entry forgotten behind the kit's back", []string{"UPDATE pk_privacy_audit SET subject = 'erased:1' WHERE seq = 2"}, 2},
		{"a forgetting mimicked with a copied redaction", []string{
			"UPDATE pk_privacy_audit SET subject = 'erased:1', details = '" + privacy.Forgotten + "' WHERE seq = 2",
			"INSERT INTO pk_privacy_redactions (institution, seq, hash, redacted_hash, at_us, sig) SELECT institution, 2, hash, redacted_hash, at_us, sig FROM pk_privacy_redactions WHERE seq = 1",
		}, 2},
		{"a forgotten entry's hash and redaction rewritten", []string{
			"UPDATE pk_privacy_audit SET what = 'notes' WHERE seq = 1",
			"UPDATE pk_privacy_redactions SET redacted_hash = 'x' WHERE seq = 1",
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
				forgettable(t, k)
				if _, err := k.Privacy.Forget(staffCtx(), inst, "jdoe", "erased:1"); err != nil {
					t.Fatal(err)
				}
				if b := verify(t, k); b != nil {
					t.Fatalf("untouched: %v", b)
				}
				for _, q := range tc.sql {
					if err := k.DB.Exec(q).Error; err != nil {
						t.Fatal(err)
					}
				}
				if b := verify(t, k); b == nil || b.Reason != privacy.Altered || b.Seq != tc.seq {
					t.Fatalf("Verify = %v, want altered at %d", b, tc.seq)
				}
			}, withKey)
		})
	}
}

func TestForgetNeedsTheKeyAndChangesNothingWithout(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		forgettable(t, k)
		before := entries(t, k)
		if n, err := k.Privacy.Forget(staffCtx(), inst, "jdoe", "erased:1"); !errors.Is(err, privacy.ErrForgetNeedsKey) || n != 0 {
			t.Fatalf("Forget without the key = %d, %v", n, err)
		}
		if after := entries(t, k); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatal("entries changed")
		}
	})
}

func TestForgetRefusesABadReplacementAndAnAlteredEntry(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		forgettable(t, k)
		before := entries(t, k)
		for _, r := range []string{"", "JDOE", "a\nb", strings.Repeat("x", 256)} {
			_, err := k.Privacy.Forget(staffCtx(), inst, "jdoe", r)
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind != fault.Invalid || len(fe.Fields) != 1 || fe.Fields[0].Field != "replacement" {
				t.Errorf("replacement %q: %v", r, err)
			}
		}
		// An entry altered behind the kit's back is not blessed by a
		// redaction: nothing is forgotten, and the break stays.
		if err := k.DB.Exec("UPDATE pk_privacy_audit SET what = 'notes' WHERE seq = 3").Error; err != nil {
			t.Fatal(err)
		}
		_, err := k.Privacy.Forget(staffCtx(), inst, "jdoe", "erased:1")
		var b *privacy.Break
		if !errors.As(err, &b) || b.Seq != 3 || b.Reason != privacy.Altered {
			t.Fatalf("Forget over an altered entry: %v", err)
		}
		after := entries(t, k)
		for i := range after {
			if after[i].Subject != before[i].Subject {
				t.Fatalf("entry %d forgotten: %+v", after[i].Seq, after[i])
			}
		}
		if b := verify(t, k); b == nil || b.Seq != 3 {
			t.Fatalf("Verify = %v", b)
		}
	}, withKey)
}

func TestForgetCommitsOrRollsBackWithItsTransaction(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		forgettable(t, k)
		refused := errors.New("the purge stops")
		err := k.InTx(staffCtx(), func(ctx context.Context, tx *gorm.DB) error {
			if n, err := k.Privacy.Forget(ctx, inst, "jdoe", "erased:1"); err != nil || n != 4 {
				return fmt.Errorf("Forget = %d, %v", n, err)
			}
			return refused
		})
		if !errors.Is(err, refused) {
			t.Fatal(err)
		}
		if len(named(t, k.DB)) == 0 {
			t.Fatal("a rolled-back Forget forgot")
		}
		if b := verify(t, k); b != nil {
			t.Fatal(b)
		}
		var proof *privacy.ErasureProof
		err = k.InTx(staffCtx(), func(ctx context.Context, tx *gorm.DB) error {
			n, err := k.Privacy.Forget(ctx, inst, "jdoe", "erased:1")
			if err != nil {
				return err
			}
			proof, err = k.Privacy.RecordErasure(ctx, inst, "erased:1", privacy.ErasureReport{Institution: inst, Subject: "erased:1", At: k.Clock.Now(),
				Tables: []privacy.ErasureCount{{Table: "pk_users", Removed: 1}, {Table: "pk_loans", Anonymized: 3}}, Forgotten: n})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if found := named(t, k.DB); len(found) > 0 {
			t.Fatalf("still named: %v", found)
		}
		if b := verify(t, k); b != nil {
			t.Fatal(b)
		}
		// The proof: canonical JSON whose hash is on the trail.
		sum := sha256.Sum256(proof.Report)
		if hex.EncodeToString(sum[:]) != proof.Hash {
			t.Fatalf("the report's hash %s is not %x", proof.Hash, sum)
		}
		want := `{"at":"` + k.Clock.Now().Format(time.RFC3339Nano) + `","institution":"UNI","subject":"erased:1","tables":[{"anonymized":0,"removed":1,"table":"pk_users"},{"anonymized":3,"removed":0,"table":"pk_loans"}],"trail_entries_forgotten":4}`
		if string(proof.Report) != want {
			t.Fatalf("report %s\nwant   %s", proof.Report, want)
		}
		var generic map[string]any
		if err := json.Unmarshal(proof.Report, &generic); err != nil {
			t.Fatal(err)
		}
		if _, again, err := privacy.CanonicalJSON(generic); err != nil || again != proof.Hash {
			t.Fatalf("the report read back hashes to %s, %v", again, err)
		}
		es := entries(t, k)
		last := es[len(es)-1]
		if last.Seq != proof.Seq || last.Action != patron.AuditDelete || last.What != privacy.ErasureWhat || last.Subject != "erased:1" ||
			last.Details != "sha256:"+proof.Hash || last.ActorID != "librarian" {
			t.Fatalf("the erasure's entry %+v, proof %+v", last, proof)
		}
	}, withKey)
}

func TestPruneGoesOnFromAForgottenEntry(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		forgettable(t, k)                                                  // 1-6
		if _, err := k.Patrons.Get(staffCtx(), inst, "jdoe"); err != nil { // 7
			t.Fatal(err)
		}
		cut := k.Clock.Advance(30 * 24 * time.Hour)
		u := patronkittest.User(t, k, inst)                                     // 8
		if _, err := k.Patrons.Get(staffCtx(), inst, u.PrimaryID); err != nil { // 9
			t.Fatal(err)
		}
		if n, err := k.Privacy.Forget(staffCtx(), inst, "jdoe", "erased:1"); err != nil || n != 5 {
			t.Fatalf("Forget = %d, %v", n, err)
		}
		// The checkpoint is entry 7, forgotten: the chain goes on from
		// the hash it was written with.
		if n, err := k.Privacy.Prune(context.Background(), inst, cut); err != nil || n != 7 {
			t.Fatalf("Prune = %d, %v", n, err)
		}
		if b := verify(t, k); b != nil {
			t.Fatalf("after pruning across forgotten entries: %v", b)
		}
		if left := rows(t, k.DB, "pk_privacy_redactions"); len(left) != 0 {
			t.Fatalf("redactions of pruned entries left: %v", left)
		}
		if err := k.DB.Exec("UPDATE pk_privacy_audit SET subject = 'someone' WHERE seq = 8").Error; err != nil {
			t.Fatal(err)
		}
		if b := verify(t, k); b == nil || b.Seq != 8 || b.Reason != privacy.Altered {
			t.Fatalf("Verify = %v, want altered at 8", b)
		}
	}, withKey)
}
