package privacy_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
	"github.com/patronkit/patronkit/sets"
)

// A purge that takes a set of users as its input purges, of the set's
// members read in batches, only those past their purge date; users
// outside the set stay whatever their purge date; the run names the set;
// an unknown set is refused and nothing is run.
func TestAPurgeTakesASetOfUsersAsItsInput(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		for _, id := range []string{"in-1", "in-2", "in-3", "out-1"} {
			patronkittest.User(t, k, inst, purgeable(longPast, func(u *patron.User) { u.PrimaryID = id }))
		}
		patronkittest.User(t, k, inst, purgeable("2027-01-01", func(u *patron.User) { u.PrimaryID = "in-later" }))
		ctx := patron.WithActor(context.Background(), patron.Actor{Institution: inst, ID: "boss"})
		set, err := k.Sets.CreateFromFile(ctx, inst, sets.NewItemized{Name: "Leaving"}, strings.NewReader("in-1\nin-2\nin-3\nin-later\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Purge.PurgeSet(ctx, inst, "no-such-set", false); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("an unknown set: %v", err)
		}
		if _, err := k.Purge.PurgeSet(ctx, "OTHER", set.ID, false); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("another institution's set: %v", err)
		}
		var n int64
		if err := k.DB.Table("pk_privacy_purge_runs").Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("refused purges left %d runs (%v)", n, err)
		}
		dry, err := k.Purge.PurgeSet(ctx, inst, set.ID, true)
		if err != nil || dry.Purged != 3 || dry.SetID != set.ID {
			t.Fatalf("the dry run %+v, %v", dry, err)
		}
		run, err := k.Purge.PurgeSet(ctx, inst, set.ID, false)
		if err != nil || run.Purged != 3 || run.Kept != 0 || run.SetID != set.ID || run.Status != privacy.RunDone {
			t.Fatalf("the run %+v, %v", run, err)
		}
		var left []string
		for _, id := range []string{"in-1", "in-2", "in-3", "in-later", "out-1"} {
			if exists(k, id) {
				left = append(left, id)
			}
		}
		if !slices.Equal(left, []string{"in-later", "out-1"}) {
			t.Errorf("left %v", left)
		}
		again, err := k.Purge.Run(ctx, inst, run.ID)
		if err != nil || again.SetID != set.ID {
			t.Errorf("the report read again %+v, %v", again, err)
		}
	}, withKey, func(c *patronkit.Config) { c.Purge = privacy.PurgeOptions{BatchSize: 2} })
}
