package circulation_test

import (
	"context"
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patronkittest"
)

// A check-out reads each row it needs once: the patron with their blocks
// and contacts, the item, the block limits, the rules, the item's library
// and the closed days ahead, the patron's loan counter; then writes the
// loan, its notice and its entry on the trail.
func TestACheckOutReadsEachRowOnce(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		patronkittest.Terms(t, k, auditInst, auditTerms)
		u := patronkittest.User(t, k, auditInst)
		ctx := asLibrarian()
		n := dbtest.CountStatements(t, k.DB)
		var took []int64
		for range 3 {
			it := patronkittest.Item(t, k, auditInst)
			from := n.Load()
			must[*circulation.Loan](t)(k.Circulation.CheckOut(ctx, auditInst, u.PrimaryID, it.Barcode, circulation.CheckOutOptions{}))
			took = append(took, n.Load()-from)
		}
		// The patron's first check-out makes their loan counter too.
		if took[0] > 21 || took[1] > 19 || took[2] > 19 {
			t.Errorf("statements of three check-outs: %v; want at most 21, 19, 19", took)
		}
	})
}

// A check-out that lends is on the trail as the loan it makes; one that
// is refused, whose reasons tell of the patron's record, as the read of
// the record.
func TestACheckOutIsOnTheTrailAsItsLoanOrItsRead(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		patronkittest.Terms(t, k, auditInst, auditTerms)
		u := patronkittest.User(t, k, auditInst)
		it := patronkittest.Item(t, k, auditInst)
		ctx := asLibrarian()
		from := seqNow(t, k)
		l := must[*circulation.Loan](t)(k.Circulation.CheckOut(ctx, auditInst, u.PrimaryID, it.Barcode, circulation.CheckOutOptions{}))
		wantTrail(t, trailSince(t, k, from), []string{
			"create staff/librarian " + u.PrimaryID + " loans " + js(map[string]any{"loan_id": l.ID, "item_barcode": it.Barcode, "library": it.Library, "due_date": ts(l.DueAt)}),
		})
		other := patronkittest.User(t, k, auditInst)
		from = seqNow(t, k)
		if _, err := k.Circulation.CheckOut(ctx, auditInst, other.PrimaryID, it.Barcode, circulation.CheckOutOptions{}); !errors.Is(err, fault.ErrRefused) {
			t.Fatalf("check-out of an item on loan: %v", err)
		}
		wantTrail(t, trailSince(t, k, from), []string{"read staff/librarian " + other.PrimaryID + " user"})
		// Nothing of an unknown item's check-out.
		from = seqNow(t, k)
		if _, err := k.Circulation.CheckOut(ctx, auditInst, other.PrimaryID, "NO-SUCH", circulation.CheckOutOptions{}); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("check-out of an unknown item: %v", err)
		}
		wantTrail(t, trailSince(t, k, from), nil)
		// A host's transaction: the same, the reads one after the other.
		from = seqNow(t, k)
		free := patronkittest.Item(t, k, auditInst)
		err := k.InTx(ctx, func(ctx context.Context, _ *gorm.DB) error {
			_, err := k.Circulation.CheckOut(ctx, auditInst, other.PrimaryID, free.Barcode, circulation.CheckOutOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := trailSince(t, k, from); len(got) != 1 || got[0][:len("create staff/librarian")] != "create staff/librarian" {
			t.Errorf("the trail of a check-out in a host's transaction: %q", got)
		}
	})
}
