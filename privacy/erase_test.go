package privacy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// rowsNaming counts the rows of table in which some column holds one of
// values (as text).
func rowsNaming(t *testing.T, k *patronkittest.Kit, table string, values ...string) int {
	t.Helper()
	rows, err := k.DB.Table(table).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	n := 0
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			s := fmt.Sprint(v)
			if b, ok := v.([]byte); ok {
				s = string(b)
			}
			hit := false
			for _, want := range values {
				if strings.Contains(strings.ToLower(s), strings.ToLower(want)) {
					hit = true
				}
			}
			if hit {
				n++
				break
			}
		}
	}
	return n
}

// An erased user is gone: record, segments, files; their closed loans
// stay for statistics with nothing that names them; the trail no longer
// names them, still verifies, and holds the hash of the report.
func TestEraseRemovesTheUserAnonymizesTheirHistoryAndProvesIt(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := staffCtx()
		u := patronkittest.User(t, k, inst, func(u *patron.User) { u.PrimaryID, u.FirstName, u.LastName = "erin", "Erin", "Quartz" })
		other := patronkittest.User(t, k, inst)
		it := patronkittest.Item(t, k, inst)
		patronkittest.Loan(t, k, inst, u, it)
		if _, err := k.Circulation.CheckIn(ctx, inst, it.Barcode); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Patrons.Get(ctx, inst, u.PrimaryID); err != nil {
			t.Fatal(err)
		}
		proof, err := k.Erasure.Erase(ctx, inst, "ERIN")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := k.Patrons.ID(context.Background(), inst, "erin"); err == nil {
			t.Fatal("the erased user is still there")
		}
		for _, table := range []string{"pk_users", "pk_user_emails", "pk_user_identifiers", "pk_circ_loans", "pk_privacy_audit"} {
			if n := rowsNaming(t, k, table, u.ID, "erin", "Quartz"); n != 0 {
				t.Errorf("%d rows of %s still name the user", n, table)
			}
		}
		var loans int64
		k.DB.Table("pk_circ_loans").Count(&loans)
		if loans != 1 {
			t.Errorf("%d loans kept, want the anonymized one", loans)
		}
		if n := rowsNaming(t, k, "pk_privacy_audit", other.PrimaryID); n == 0 {
			t.Error("the other user's entries were forgotten too")
		}
		if b := verify(t, k); b != nil {
			t.Fatalf("the trail after the erasure: %v", b)
		}
		sum := sha256.Sum256(proof.Report)
		if proof.Hash != hex.EncodeToString(sum[:]) {
			t.Fatal("the proof's hash is not its report's")
		}
		es := entries(t, k)
		last := es[len(es)-1]
		if last.Seq != proof.Seq || last.Action != patron.AuditDelete || last.What != privacy.ErasureWhat || last.Details != "sha256:"+proof.Hash ||
			!strings.HasPrefix(last.Subject, "erased:") {
			t.Fatalf("the erasure's entry: %+v", last)
		}
		var report privacy.ErasureReport
		if err := json.Unmarshal(proof.Report, &report); err != nil {
			t.Fatal(err)
		}
		got := map[string][2]int64{}
		for _, c := range report.Tables {
			got[c.Table] = [2]int64{got[c.Table][0] + c.Removed, got[c.Table][1] + c.Anonymized}
		}
		if got["pk_users"] != [2]int64{1, 0} || got["pk_circ_loans"] != [2]int64{0, 1} || report.Forgotten == 0 || report.Subject != last.Subject {
			t.Fatalf("report %+v", report)
		}
	}, withKey)
}

// Every guard keeps its user, with its reason, and nothing changes.
func TestEraseKeepsAUserAGuardObjectsTo(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := staffCtx()
		borrower := patronkittest.User(t, k, inst)
		patronkittest.Loan(t, k, inst, borrower, patronkittest.Item(t, k, inst))
		held := patronkittest.User(t, k, inst)
		if _, err := k.LegalHolds.Set(ctx, inst, held.PrimaryID, "court order 12/2026", ""); err != nil {
			t.Fatal(err)
		}
		before := entries(t, k)
		for who, reason := range map[string]string{borrower.PrimaryID: "open loan", held.PrimaryID: "court order 12/2026"} {
			_, err := k.Erasure.Erase(ctx, inst, who)
			if fe, ok := fault.As(err); !ok || fe.Kind != fault.Refused || !strings.Contains(strings.Join(fe.Reasons, "; "), reason) {
				t.Fatalf("erasing %s: %v", who, err)
			}
			if _, _, err := k.Patrons.ID(context.Background(), inst, who); err != nil {
				t.Fatalf("%s is gone: %v", who, err)
			}
		}
		if after := entries(t, k); !reflect.DeepEqual(after, before) {
			t.Fatalf("the trail changed: %d entries, then %d", len(before), len(after))
		}
	}, withKey)
}

// Without the audit key the trail cannot forget: Erase refuses and
// changes nothing.
func TestEraseNeedsTheAuditKey(t *testing.T) {
	k := patronkittest.New(t)
	u := patronkittest.User(t, k, inst)
	_, err := k.Erasure.Erase(staffCtx(), inst, u.PrimaryID)
	if fe, ok := fault.As(err); !ok || fe.Kind != fault.Refused || !strings.Contains(fe.Detail, "AuditKey") {
		t.Fatalf("erasing without the key: %v", err)
	}
	if _, _, err := k.Patrons.ID(context.Background(), inst, u.PrimaryID); err != nil {
		t.Fatalf("the user is gone: %v", err)
	}
}

// Users erased together, as a purge erases a batch, each get a report of
// their own rows: what one had is not counted for the other, and each
// has a tombstone of their own on a trail that still verifies.
func TestUsersErasedTogetherEachGetTheirOwnReport(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := staffCtx()
		ann := patronkittest.User(t, k, inst, func(u *patron.User) {
			u.PrimaryID = "ann"
			u.Emails = []patron.Email{{EmailAddress: "ann@example.edu", Preferred: true}, {EmailAddress: "ann2@example.edu"}}
		})
		patronkittest.User(t, k, inst, func(u *patron.User) {
			u.PrimaryID = "bob"
			u.Identifiers = []patron.Identifier{{IDType: "BARCODE", Value: "BOB-1"}}
		})
		kept := patronkittest.User(t, k, inst)
		it := patronkittest.Item(t, k, inst)
		patronkittest.Loan(t, k, inst, ann, it)
		if _, err := k.Circulation.CheckIn(ctx, inst, it.Barcode); err != nil {
			t.Fatal(err)
		}
		for _, who := range []string{"ann", "bob", kept.PrimaryID} {
			if _, err := k.Patrons.Get(ctx, inst, who); err != nil {
				t.Fatal(err)
			}
		}
		proofs, err := privacy.EraseTogether(ctx, k.Erasure, inst, "ann", "bob")
		if err != nil {
			t.Fatal(err)
		}
		count := func(who, table string, anonymized bool) int64 {
			var r privacy.ErasureReport
			if err := json.Unmarshal(proofs[who].Report, &r); err != nil {
				t.Fatal(err)
			}
			for _, c := range r.Tables {
				if c.Table == table {
					if anonymized {
						return c.Anonymized
					}
					return c.Removed
				}
			}
			t.Fatalf("the report of %s has no %s", who, table)
			return 0
		}
		for _, c := range []struct {
			who, table string
			anonymized bool
			want       int64
		}{
			{"ann", "pk_user_emails", false, 2}, {"bob", "pk_user_emails", false, 0},
			{"ann", "pk_user_identifiers", false, 0}, {"bob", "pk_user_identifiers", false, 1},
			{"ann", "pk_users", false, 1}, {"bob", "pk_users", false, 1},
			{"ann", "pk_circ_loans", true, 1}, {"bob", "pk_circ_loans", true, 0},
		} {
			if got := count(c.who, c.table, c.anonymized); got != c.want {
				t.Errorf("%s: %s counted %d, want %d", c.who, c.table, got, c.want)
			}
		}
		var ra, rb privacy.ErasureReport
		_ = json.Unmarshal(proofs["ann"].Report, &ra)
		_ = json.Unmarshal(proofs["bob"].Report, &rb)
		if ra.Subject == rb.Subject || ra.Forgotten == 0 || rb.Forgotten == 0 {
			t.Fatalf("tombstones %q and %q, forgotten %d and %d", ra.Subject, rb.Subject, ra.Forgotten, rb.Forgotten)
		}
		if n := rowsNaming(t, k, "pk_privacy_audit", "ann@", "BOB-1", `"ann"`, `"bob"`); n != 0 {
			t.Fatalf("%d entries of the trail still name them", n)
		}
		if _, err := k.Patrons.Get(ctx, inst, kept.PrimaryID); err != nil {
			t.Fatalf("the other user: %v", err)
		}
		if b := verify(t, k); b != nil {
			t.Fatalf("the trail no longer verifies: %+v", b)
		}
	}, withKey)
}
