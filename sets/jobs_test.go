package sets_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
	"github.com/patronkit/patronkit/sets"
)

func batchOf(n int) patronkittest.Option {
	return func(c *patronkit.Config) { c.SetJobBatchSize = n }
}

// grads makes the users of the tests of jobs: ann, bob and cy in GRAD,
// eve an external GRAD user of the SIS profile SIS, and the query set of
// GRAD users.
func grads(t *testing.T, k *patronkittest.Kit) *sets.Set {
	t.Helper()
	for _, id := range []string{"ann", "bob", "cy"} {
		user(t, k, id, func(u *patron.User) { u.UserGroup, u.ExpiryDate = "GRAD", "2026-12-31" })
	}
	user(t, k, "eve", func(u *patron.User) {
		u.UserGroup, u.ExpiryDate, u.AccountType, u.ExternalID = "GRAD", "2026-12-31", patron.AccountExternal, "SIS"
	})
	set, err := k.Sets.Create(staff, "UNI", sets.New{Name: "Grads", Query: sets.Query{UserGroup: "GRAD"}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func outcomes(t *testing.T, k *patronkittest.Kit, id string) map[string]string {
	t.Helper()
	os, err := k.Sets.Outcomes(staff, "UNI", id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, o := range os {
		if o.Seq != int64(i+1) {
			t.Errorf("outcome %d has seq %d", i, o.Seq)
		}
		if _, twice := out[o.PrimaryID]; twice {
			t.Errorf("%s handled twice", o.PrimaryID)
		}
		out[o.PrimaryID] = o.Outcome
	}
	return out
}

// A preview tells the count and, for a sample, each field's change; an
// external user's SIS-managed field is refused for them, named, while the
// other field still changes; it writes nothing; fields not valid are
// refused naming each.
func TestAnUpdatePreviewWritesNothing(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		set := grads(t, k)
		p, err := k.Sets.PreviewUpdate(staff, "UNI", set.ID, map[string]string{"user_group": "ALUMNI", "expiry_date": ""}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != 4 || len(p.Sample) != 4 {
			t.Fatalf("preview %+v", p)
		}
		ann, eve := p.Sample[0], p.Sample[3]
		if ann.PrimaryID != "ann" || ann.Outcome != patron.BatchChanged || ann.Changes["user_group"] != [2]string{"GRAD", "ALUMNI"} || ann.Changes["expiry_date"] != [2]string{"2026-12-31", ""} {
			t.Errorf("ann's preview %+v", ann)
		}
		if eve.PrimaryID != "eve" || eve.Outcome != patron.BatchChanged || len(eve.Reasons) != 1 || eve.Reasons[0].Field != "expiry_date" ||
			len(eve.Changes) != 1 || eve.Changes["user_group"] != [2]string{"GRAD", "ALUMNI"} {
			t.Errorf("eve's preview %+v", eve)
		}
		if p, err := k.Sets.PreviewUpdate(staff, "UNI", set.ID, map[string]string{"user_group": "ALUMNI"}, 1); err != nil || len(p.Sample) != 1 || p.Total != 4 {
			t.Errorf("a sample of one: %+v, %v", p, err)
		}
		u, err := k.Patrons.Get(staff, "UNI", "ann")
		if err != nil || u.UserGroup != "GRAD" || u.Version != 1 {
			t.Errorf("the preview changed ann: %+v, %v", u, err)
		}
		_, err = k.Sets.PreviewUpdate(staff, "UNI", set.ID, map[string]string{"status": "gone", "purge_date": "soon", "last_name": "X"}, 0)
		if got := fieldsOf(t, err); !slices.Equal(got, []string{"last_name", "purge_date", "status"}) {
			t.Errorf("refused %v", got)
		}
		if _, err := k.Sets.StartUpdate(staff, "UNI", set.ID, map[string]string{}); !slices.Equal(fieldsOf(t, err), []string{"fields"}) {
			t.Errorf("a job of no field: %v", err)
		}
		var n int64
		if err := k.DB.Table("pk_set_jobs").Count(&n).Error; err != nil || n != 0 {
			t.Errorf("refused jobs left %d rows (%v)", n, err)
		}
	})
}

// An update job changes the members the set had when it started (a
// member deleted since is passed over), in batches: each changed user is on the audit trail with the fields'
// change, an external user's SIS-managed field refuses that user (named
// in the outcomes) and the rest go on, a user already holding the values
// is unchanged; a retained field changed on an external user is
// remembered as a change by hand.
func TestAnUpdateJobChangesTheSetInBatches(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		set := grads(t, k)
		user(t, k, "dan", func(u *patron.User) { u.UserGroup, u.ExpiryDate = "GRAD", "2027-06-30" })
		job, err := k.Sets.StartUpdate(staff, "UNI", set.ID, map[string]string{"expiry_date": "2027-06-30"})
		if err != nil {
			t.Fatal(err)
		}
		if job.Status != sets.JobRunning || job.Total != 5 || job.Done != 0 || job.CreatedBy != "boss" {
			t.Fatalf("started %+v", job)
		}
		user(t, k, "late", func(u *patron.User) { u.UserGroup = "GRAD" })
		if err := k.Patrons.Delete(staff, "UNI", "cy"); err != nil {
			t.Fatal(err)
		}
		done, err := k.Sets.Run(context.Background(), "UNI", job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done.Status != sets.JobDone || done.Done != 5 || done.Changed != 2 || done.Unchanged != 1 || done.Refused != 1 || done.FinishedAt == nil {
			t.Fatalf("ended %+v", done)
		}
		// cy, deleted since the job started, is done without an outcome.
		want := map[string]string{"ann": "changed", "bob": "changed", "dan": "unchanged", "eve": "refused"}
		if got := outcomes(t, k, job.ID); !mapsEqual(got, want) {
			t.Errorf("outcomes %v, want %v", got, want)
		}
		for id, want := range map[string]string{"ann": "2027-06-30", "eve": "2026-12-31", "late": ""} {
			u, err := k.Patrons.Get(staff, "UNI", id)
			if err != nil || u.ExpiryDate != want {
				t.Errorf("%s expires on %q (%v), want %q", id, u.ExpiryDate, err, want)
			}
		}
		if u, _ := k.Patrons.Get(staff, "UNI", "bob"); u.Version != 2 {
			t.Errorf("bob's version is %d", u.Version)
		}
		trail, err := k.Privacy.Search(staff, "UNI", privacy.Query{Subject: "bob", Action: patron.AuditUpdate})
		if err != nil || len(trail.Entries) != 1 || !strings.Contains(trail.Entries[0].Details, `"expiry_date":{"new":"2027-06-30","old":"2026-12-31"}`) ||
			trail.Entries[0].ActorID != "boss" || trail.Entries[0].Via != "job "+job.ID {
			t.Errorf("bob's change on the trail: %+v, %v", trail, err)
		}
		if _, err := k.Sets.Run(context.Background(), "UNI", job.ID); !errors.Is(err, fault.ErrRefused) {
			t.Errorf("running a job done: %v", err)
		}

		// A retained field of the external user: changed, remembered.
		job, err = k.Sets.StartUpdate(staff, "UNI", set.ID, map[string]string{"campus_code": "NORTH"})
		if err != nil {
			t.Fatal(err)
		}
		if done, err = k.Sets.Run(context.Background(), "UNI", job.ID); err != nil || done.Changed != 5 {
			t.Fatalf("the second job %+v, %v", done, err)
		}
		ov, err := k.Patrons.Overrides(staff, "UNI", "eve")
		if err != nil || len(ov) != 1 || ov[0].Field != "campus_code" || ov[0].ChangedBy != "boss" {
			t.Errorf("eve's overrides %+v, %v", ov, err)
		}
	}, batchOf(2))
}

// A job asked to stop stops after the batch it is in: what it did stays
// done, the rest is left; a job ended cannot be cancelled.
func TestACancelledJobStopsBetweenBatches(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		set := grads(t, k)
		job, err := k.Sets.StartUpdate(staff, "UNI", set.ID, map[string]string{"user_group": "ALUMNI"})
		if err != nil {
			t.Fatal(err)
		}
		k.Patrons.AddListener(patron.ListenerFunc(func(ctx context.Context, c patron.Change) {
			if _, err := k.Sets.Cancel(ctx, "UNI", job.ID); err != nil {
				t.Errorf("cancel: %v", err)
			}
		}))
		got, err := k.Sets.Run(context.Background(), "UNI", job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != sets.JobCancelled || got.Done != 1 || got.Changed != 1 || !got.CancelRequested {
			t.Fatalf("cancelled %+v", got)
		}
		if o := outcomes(t, k, job.ID); len(o) != 1 {
			t.Errorf("outcomes %v", o)
		}
		var n int64
		if err := k.DB.Table("pk_users").Where("user_group = ?", "ALUMNI").Count(&n).Error; err != nil || n != 1 {
			t.Errorf("%d users changed (%v)", n, err)
		}
		if _, err := k.Sets.Cancel(staff, "UNI", job.ID); !errors.Is(err, fault.ErrRefused) {
			t.Errorf("cancelling an ended job: %v", err)
		}
	}, batchOf(1))
}

// A job whose instance stopped is resumed by another where it stopped,
// each member handled once; while an instance holds a job, another may
// not run it, and takes it over once that instance's lease has run out.
func TestAnInterruptedJobResumesOnOneInstanceAtATime(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		set := grads(t, k)
		job, err := k.Sets.StartUpdate(staff, "UNI", set.ID, map[string]string{"user_group": "ALUMNI"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		k.Patrons.AddListener(patron.ListenerFunc(func(context.Context, patron.Change) { stop() }))
		got, err := k.Sets.Run(ctx, "UNI", job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != sets.JobRunning || got.Done != 1 {
			t.Fatalf("interrupted %+v", got)
		}

		// Instance a holds the job (its lease runs five minutes).
		other, err := sets.NewService(k.DB, k.Patrons, sets.Options{Now: k.Clock.Now, Instance: "b", BatchSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := k.DB.Table("pk_set_jobs").Where("id = ?", job.ID).
			Updates(map[string]any{"holder": "a", "lease_until": k.Clock.Now().Add(5 * time.Minute)}).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := other.Run(context.Background(), "UNI", job.ID); !errors.Is(err, sets.ErrJobInProgress) {
			t.Fatalf("running a job another instance holds: %v", err)
		}
		if n, err := other.Resume(context.Background()); err != nil || n != 0 {
			t.Fatalf("resumed %d (%v) while a holds the job", n, err)
		}
		k.Clock.Advance(6 * time.Minute)
		if n, err := other.Resume(context.Background()); err != nil || n != 1 {
			t.Fatalf("resumed %d (%v)", n, err)
		}
		got, err = k.Sets.Job(staff, "UNI", job.ID)
		if err != nil || got.Status != sets.JobDone || got.Done != 4 || got.Changed != 4 {
			t.Fatalf("resumed job %+v, %v", got, err)
		}
		if o := outcomes(t, k, job.ID); len(o) != 4 {
			t.Errorf("outcomes %v", o)
		}
	}, batchOf(1))
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The undo of an update gives every user it changed their old values
// back, unless the user changed again since (refused, named with the
// reason, left as they are); a job is undone once, an undo is not undone,
// a running job is not undone.
func TestAnUndoRestoresWhatTheUpdateChangedUnlessChangedSince(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		set := grads(t, k)
		job, err := k.Sets.StartUpdate(staff, "UNI", set.ID, map[string]string{"user_group": "ALUMNI", "expiry_date": "2027-06-30"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Sets.StartUndo(staff, "UNI", job.ID); !errors.Is(err, fault.ErrRefused) {
			t.Errorf("undoing a running job: %v", err)
		}
		if _, err := k.Sets.Run(context.Background(), "UNI", job.ID); err != nil {
			t.Fatal(err)
		}
		bob, err := k.Patrons.Get(staff, "UNI", "bob")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Patrons.UpdateMany(staff, "UNI", []string{bob.ID}, map[string]string{"campus_code": "NORTH"}, false); err != nil {
			t.Fatal(err)
		}
		undo, err := k.Sets.StartUndo(staff, "UNI", job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if undo.Kind != sets.JobUndo || undo.UndoOf != job.ID || undo.Total != 4 {
			t.Fatalf("the undo %+v", undo)
		}
		got, err := k.Sets.Run(context.Background(), "UNI", undo.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != sets.JobDone || got.Changed != 3 || got.Refused != 1 || got.Done != 4 {
			t.Fatalf("undone %+v", got)
		}
		os, err := k.Sets.Outcomes(staff, "UNI", undo.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range os {
			if o.PrimaryID == "bob" && (o.Outcome != patron.BatchRefused || len(o.Reasons) != 1 || o.Reasons[0].Code != patron.ChangedSince) {
				t.Errorf("bob's outcome %+v", o)
			}
		}
		for id, want := range map[string][2]string{"ann": {"GRAD", "2026-12-31"}, "cy": {"GRAD", "2026-12-31"}, "bob": {"ALUMNI", "2027-06-30"}, "eve": {"GRAD", "2026-12-31"}} {
			u, err := k.Patrons.Get(staff, "UNI", id)
			if err != nil || u.UserGroup != want[0] || u.ExpiryDate != want[1] {
				t.Errorf("%s after the undo: %q %q (%v), want %v", id, u.UserGroup, u.ExpiryDate, err, want)
			}
		}
		trail, err := k.Privacy.Search(staff, "UNI", privacy.Query{Subject: "ann", Action: patron.AuditUpdate})
		if err != nil || len(trail.Entries) != 2 || !strings.Contains(trail.Entries[0].Details, `"user_group":{"new":"GRAD","old":"ALUMNI"}`) {
			t.Errorf("ann's trail: %+v, %v", trail, err)
		}
		if _, err := k.Sets.StartUndo(staff, "UNI", job.ID); !errors.Is(err, fault.ErrRefused) {
			t.Errorf("undoing twice: %v", err)
		}
		if _, err := k.Sets.StartUndo(staff, "UNI", undo.ID); !errors.Is(err, fault.ErrRefused) {
			t.Errorf("undoing an undo: %v", err)
		}
		if _, err := k.Sets.StartUndo(staff, "OTHER", job.ID); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("another institution undoes: %v", err)
		}
	}, batchOf(2))
}

// An erased user leaves the itemized sets, and the jobs' outcomes about
// them keep what happened but no longer name them nor hold their values.
func TestAnErasedUserLeavesTheSetsAndTheJobsReports(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		set := grads(t, k)
		job, err := k.Sets.StartUpdate(staff, "UNI", set.ID, map[string]string{"expiry_date": "2027-06-30"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Sets.Run(context.Background(), "UNI", job.ID); err != nil {
			t.Fatal(err)
		}
		frozen, err := k.Sets.Freeze(staff, "UNI", set.ID, "Grads, frozen")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Erasure.Erase(staff, "UNI", "ann"); err != nil {
			t.Fatal(err)
		}
		got := outcomes(t, k, job.ID)
		if _, named := got["ann"]; named || got[""] != "changed" || got["bob"] != "changed" {
			t.Errorf("outcomes %v", got)
		}
		var rows int64
		k.DB.Table("pk_set_members").Where("set_id = ?", frozen.ID).Count(&rows)
		if rows != 3 {
			t.Errorf("%d members left in the frozen set, want bob, cy and eve", rows)
		}
		// ann's outcome keeps "changed", without her id or the values;
		// bob's and cy's keep theirs.
		var blank, valued int64
		k.DB.Table("pk_set_job_outcomes").Where("job_id = ? AND user_id = '' AND primary_id = '' AND changes IS NULL", job.ID).Count(&blank)
		k.DB.Table("pk_set_job_outcomes").Where("job_id = ? AND changes LIKE ?", job.ID, "%2026-12-31%").Count(&valued)
		if blank != 1 || valued != 2 {
			t.Errorf("%d outcomes forgotten, %d with their values", blank, valued)
		}
		var items int64
		k.DB.Table("pk_set_job_items").Where("job_id = ?", job.ID).Count(&items)
		if items != 4 {
			t.Errorf("%d members in the job's list, want its four (its progress counts them)", items)
		}
	}, func(c *patronkit.Config) { c.AuditKey = []byte("the library's key") })
}
