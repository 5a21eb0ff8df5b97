package sets_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
	"github.com/patronkit/patronkit/sets"
)

// readers makes ann (an email), bob (a phone for SMS) and cy (neither),
// and the query set of them all.
func readers(t *testing.T, k *patronkittest.Kit) *sets.Set {
	t.Helper()
	user(t, k, "ann", func(u *patron.User) {
		u.FirstName, u.LastName, u.UserGroup = "Ann", "Lee", "READER"
		u.Emails = []patron.Email{{EmailAddress: "ann@example.edu", Preferred: true}}
	})
	user(t, k, "bob", func(u *patron.User) {
		u.FirstName, u.LastName, u.UserGroup = "Bob", "Roy", "READER"
		u.Emails = []patron.Email{{EmailAddress: "bob@example.edu", Preferred: true}}
		u.Phones = []patron.Phone{{PhoneNumber: "+15550100", PreferredSMS: true}}
	})
	user(t, k, "cy", func(u *patron.User) { u.UserGroup = "READER" })
	set, err := k.Sets.Create(staff, "UNI", sets.New{Name: "Readers", Query: sets.Query{UserGroup: "READER"}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

var closure = sets.Message{Subject: "The library closes on Friday", Text: "The main library is closed on Friday 4 September."}

// A notify job's preview counts the members and renders the message each
// of a sample would get, by their channel, writing nothing; the job
// queues one notice per member in the outbox (skipped, and named, for a
// member with no address), each on the audit trail; the outbox sends them
// and archives each on the record; the job cannot be undone; a message
// not valid is refused naming the field.
func TestANotifyJobQueuesAMessageToEveryMember(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		set := readers(t, k)
		for name, c := range map[string]struct {
			m    sets.Message
			want []string
		}{
			"no text":          {sets.Message{Subject: "x"}, []string{"text"}},
			"unknown template": {sets.Message{Template: "no_such", Text: "x"}, []string{"template"}},
			"a bad name":       {sets.Message{Template: "../x", Text: "x"}, []string{"template"}},
			"two lines":        {sets.Message{Subject: "a\nb", Text: "x"}, []string{"subject"}},
		} {
			if _, err := k.Sets.PreviewNotify(staff, "UNI", set.ID, c.m, 0); !slices.Equal(fieldsOf(t, err), c.want) {
				t.Errorf("preview, %s: %v", name, err)
			}
			if _, err := k.Sets.StartNotify(staff, "UNI", set.ID, c.m); !slices.Equal(fieldsOf(t, err), c.want) {
				t.Errorf("job, %s: %v", name, err)
			}
		}

		p, err := k.Sets.PreviewNotify(staff, "UNI", set.ID, closure, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != 3 || len(p.Sample) != 3 {
			t.Fatalf("the preview %+v", p)
		}
		ann, bob, cy := p.Sample[0], p.Sample[1], p.Sample[2]
		if ann.Channel != circulation.ChannelEmail || ann.Recipient != "ann@example.edu" || ann.Subject != closure.Subject ||
			!strings.Contains(ann.Body, "Dear Ann Lee") || !strings.Contains(ann.Body, closure.Text) || ann.Status != circulation.NoticePending {
			t.Errorf("ann's preview %+v", ann)
		}
		if bob.Channel != circulation.ChannelSMS || bob.Recipient != "+15550100" || strings.TrimSpace(bob.Body) != closure.Text {
			t.Errorf("bob's preview %+v", bob)
		}
		if cy.Status != circulation.NoticeSkipped || cy.Error == "" {
			t.Errorf("cy's preview %+v", cy)
		}
		var n int64
		if err := k.DB.Table("pk_circ_notices").Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("the preview wrote %d notices (%v)", n, err)
		}

		job, err := k.Sets.StartNotify(staff, "UNI", set.ID, closure)
		if err != nil {
			t.Fatal(err)
		}
		if job.Kind != sets.JobNotify || job.Total != 3 || job.Message == nil || job.Message.Template != "message" {
			t.Fatalf("started %+v", job)
		}
		if job, err = k.Sets.Run(context.Background(), "UNI", job.ID); err != nil || job.Status != sets.JobDone || job.Changed != 2 || job.Refused != 1 || job.Done != 3 {
			t.Fatalf("ran %+v, %v", job, err)
		}
		want := map[string]string{"ann": sets.NotifyQueued, "bob": sets.NotifyQueued, "cy": sets.NotifySkipped}
		if got := outcomes(t, k, job.ID); !mapsEqual(got, want) {
			t.Errorf("outcomes %v", got)
		}
		if sent, err := k.Circulation.SendNotices(context.Background()); err != nil || sent != 2 {
			t.Fatalf("sent %d (%v)", sent, err)
		}
		if m := k.Email.Messages(); len(m) != 1 || m[0].To != "ann@example.edu" || m[0].Subject != closure.Subject {
			t.Errorf("emails %+v", m)
		}
		if m := k.SMS.Messages(); len(m) != 1 || m[0].To != "+15550100" {
			t.Errorf("SMS %+v", m)
		}
		ns, err := k.Circulation.Notices(staff, "UNI", "ann")
		if err != nil || len(ns) != 1 || ns[0].Kind != circulation.NoticeMessage || ns[0].Status != circulation.NoticeSent || ns[0].AttachmentID == "" {
			t.Errorf("ann's notices %+v, %v", ns, err)
		}
		trail, err := k.Privacy.Search(staff, "UNI", privacy.Query{Subject: "bob", Action: patron.AuditCreate})
		if err != nil || len(trail.Entries) != 2 || trail.Entries[0].What != "notice" || trail.Entries[0].Via != "job "+job.ID || trail.Entries[0].ActorID != "boss" {
			t.Errorf("bob's trail %+v, %v", trail, err)
		}
		if _, err := k.Sets.StartUndo(staff, "UNI", job.ID); !errors.Is(err, fault.ErrRefused) {
			t.Errorf("undoing a notify job: %v", err)
		}
	})
}

// messenger is the kit's notice outbox as a sets.Messenger, calling
// after once each notice is written.
type messenger struct {
	circ  *circulation.Service
	after func(ctx context.Context)
}

func (m messenger) CheckMessage(msg *sets.Message) error {
	sm := circulation.StaffMessage(*msg)
	err := m.circ.CheckMessage(&sm)
	*msg = sets.Message(sm)
	return err
}

func (m messenger) QueueMessage(ctx context.Context, inst, userID, key string, msg sets.Message, dry bool) (*sets.Sent, error) {
	n, err := m.circ.QueueMessage(ctx, inst, userID, key, circulation.StaffMessage(msg), dry)
	if err != nil {
		return nil, err
	}
	m.after(ctx)
	return &sets.Sent{NoticeID: n.ID, Channel: n.Channel, Status: n.Status, Error: n.Error}, nil
}

// A notify job asked to stop stops between batches; one interrupted in a
// batch is resumed by another instance, and no member gets the message
// twice.
func TestANotifyJobIsCancelledAndResumedWritingEachNoticeOnce(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		set := readers(t, k)
		job, err := k.Sets.StartNotify(staff, "UNI", set.ID, closure)
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		a, err := sets.NewService(k.DB, k.Patrons, sets.Options{Now: k.Clock.Now, Instance: "a", BatchSize: 2,
			Messenger: messenger{k.Circulation, func(context.Context) { stop() }}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Run(ctx, "UNI", job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != sets.JobRunning || got.Done != 0 {
			t.Fatalf("interrupted %+v", got)
		}
		b, err := sets.NewService(k.DB, k.Patrons, sets.Options{Now: k.Clock.Now, Instance: "b", BatchSize: 2,
			Messenger: messenger{k.Circulation, func(context.Context) {}}})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := b.Resume(context.Background()); err != nil || n != 1 {
			t.Fatalf("resumed %d (%v)", n, err)
		}
		var n int64
		if err := k.DB.Table("pk_circ_notices").Count(&n).Error; err != nil || n != 3 {
			t.Errorf("%d notices (%v), want 3", n, err)
		}
		if got, err = b.Job(staff, "UNI", job.ID); err != nil || got.Status != sets.JobDone || got.Done != 3 || got.Changed != 2 {
			t.Errorf("resumed %+v, %v", got, err)
		}

		// Cancelled after its first batch.
		job, err = k.Sets.StartNotify(staff, "UNI", set.ID, closure)
		if err != nil {
			t.Fatal(err)
		}
		c, err := sets.NewService(k.DB, k.Patrons, sets.Options{Now: k.Clock.Now, Instance: "c", BatchSize: 2,
			Messenger: messenger{k.Circulation, func(ctx context.Context) {
				// In the batch's transaction, which ctx carries.
				if _, err := k.Sets.Cancel(ctx, "UNI", job.ID); err != nil {
					t.Errorf("cancel: %v", err)
				}
			}}})
		if err != nil {
			t.Fatal(err)
		}
		if got, err = c.Run(context.Background(), "UNI", job.ID); err != nil || got.Status != sets.JobCancelled || got.Done != 2 {
			t.Fatalf("cancelled %+v, %v", got, err)
		}
		if err := k.DB.Table("pk_circ_notices").Count(&n).Error; err != nil || n != 5 {
			t.Errorf("%d notices (%v), want 5", n, err)
		}
	})
}
