package circulation_test

import (
	"context"
	"testing"
	"time"

	"github.com/patronkit/patronkit/patronkittest"
)

// TestLoansPageCountsEveryPage: a page of a patron's loans holds the
// loans of its place in order, and the number of loans in all pages is
// right on every page: full, the last, past the end, none asked, all.
func TestLoansPageCountsEveryPage(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u := patronkittest.User(t, k, "UNI")
		var ids []string
		for range 5 {
			ids = append(ids, patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI")).ID)
			k.Clock.Advance(time.Hour) // due dates in the order lent
		}
		for _, c := range []struct{ limit, offset, n int }{
			{5, 0, 5}, {6, 0, 5}, {4, 0, 4}, {2, 0, 2}, {2, 2, 2}, {2, 4, 1}, {2, 5, 0}, {2, 10, 0}, {0, 0, 0}, {-1, 0, 5},
		} {
			ls, total, err := k.Circulation.LoansPage(ctx, "UNI", u.PrimaryID, true, c.limit, c.offset)
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) != c.n || total != 5 {
				t.Errorf("limit %d offset %d: %d loans of %d, want %d of 5", c.limit, c.offset, len(ls), total, c.n)
				continue
			}
			for i, l := range ls {
				if l.ID != ids[c.offset+i] {
					t.Errorf("limit %d offset %d: loan %d is %s, want %s", c.limit, c.offset, i, l.ID, ids[c.offset+i])
				}
			}
		}
		if _, total, err := k.Circulation.LoansPage(ctx, "UNI", u.PrimaryID, false, 2, 0); err != nil || total != 0 {
			t.Fatalf("no returned loans: total %d (%v)", total, err)
		}
	})
}
