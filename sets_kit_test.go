package patronkit_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/patronkit/patronkit"
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

// A job whose instance died (its lease held, never renewed) is taken over
// by another running instance once the lease has run out, without a
// restart: Start's loop looks again every SetJobResumeEvery.
func TestARunningInstanceTakesOverAJobWhoseInstanceDied(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, a *patronkittest.Kit) {
		ctx := patron.WithActor(context.Background(), patron.Actor{Institution: "UNI", ID: "boss"})
		for range 3 {
			patronkittest.User(t, a, "UNI", func(u *patron.User) { u.UserGroup = "GRAD" })
		}
		set, err := a.Sets.Create(ctx, "UNI", sets.New{Name: "Grads", Query: sets.Query{UserGroup: "GRAD"}})
		if err != nil {
			t.Fatal(err)
		}
		job, err := a.Sets.StartUpdate(ctx, "UNI", set.ID, map[string]string{"user_group": "ALUMNI"})
		if err != nil {
			t.Fatal(err)
		}
		// Instance a took the job and died: its lease stays until it runs
		// out.
		if err := a.DB.Table("pk_set_jobs").Where("id = ?", job.ID).
			Updates(map[string]any{"holder": "a", "lease_until": a.Clock.Now().Add(5 * time.Minute)}).Error; err != nil {
			t.Fatal(err)
		}

		log := jobLog{msg: "patronkit: jobs over sets resumed", ch: make(chan map[string]int64, 1)}
		b := patronkittest.On(t, a.DB, func(c *patronkit.Config) {
			c.Now, c.Instance, c.Logger, c.SetJobResumeEvery = a.Clock.Now, "b", slog.New(log), 10*time.Millisecond
		})
		b.Start(context.Background())
		select {
		case m := <-log.ch:
			if m["resumed"] != 0 {
				t.Fatalf("b took a job a holds: %v", m)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("b never looked again")
		}
		if got, err := b.Sets.Job(ctx, "UNI", job.ID); err != nil || got.Done != 0 || got.Holder != "a" {
			t.Fatalf("while a's lease lasts the job is %+v (%v)", got, err)
		}
		a.Clock.Advance(6 * time.Minute)
		if m := log.wait(t, "resumed"); m["resumed"] != 1 {
			t.Fatalf("resumed %v", m)
		}
		got, err := b.Sets.Job(ctx, "UNI", job.ID)
		if err != nil || got.Status != sets.JobDone || got.Done != 3 || got.Changed != 3 {
			t.Fatalf("after b took it over the job is %+v (%v)", got, err)
		}
	})
}
