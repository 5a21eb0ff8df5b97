package patronkit_test

import (
	"context"
	"testing"

	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/sets"
)

// A job over a set that an instance started and did not finish (it
// stopped) is resumed by the kit when it starts, and done.
func TestStartResumesTheJobsOverSets(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := patron.WithActor(context.Background(), patron.Actor{Institution: "UNI", ID: "boss"})
		for range 3 {
			patronkittest.User(t, k, "UNI", func(u *patron.User) { u.UserGroup = "GRAD" })
		}
		set, err := k.Sets.Create(ctx, "UNI", sets.New{Name: "Grads", Query: sets.Query{UserGroup: "GRAD"}})
		if err != nil {
			t.Fatal(err)
		}
		job, err := k.Sets.StartUpdate(ctx, "UNI", set.ID, map[string]string{"user_group": "ALUMNI"})
		if err != nil {
			t.Fatal(err)
		}
		k.Start(context.Background())
		k.Sets.Wait()
		got, err := k.Sets.Job(ctx, "UNI", job.ID)
		if err != nil || got.Status != sets.JobDone || got.Changed != 3 {
			t.Fatalf("after the start the job is %+v (%v)", got, err)
		}
	})
}
