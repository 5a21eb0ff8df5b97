package sets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// JobNotify sends a message to every member of a set through the notice
// outbox. It cannot be undone: a message sent stays sent.
const JobNotify = "notify"

// Outcomes of a member in a notify job.
const (
	// NotifyQueued: the notice is in the outbox (sent by the notices
	// job, then archived on the record).
	NotifyQueued = "queued"
	// NotifySkipped: the member has no email address nor SMS phone; the
	// notice is kept as skipped, with the reason.
	NotifySkipped = "skipped"
)

// Message is what a notify job sends: a notice template and what staff
// wrote (see circulation.StaffMessage, which the kit's Messenger takes).
type Message struct {
	// Template names the notice template; default: "message", the
	// built-in one (the subject, and the text after "Dear <name>").
	Template string `json:"template,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Text     string `json:"text,omitempty"`
}

// Sent is a notice a Messenger wrote (or, dry, rendered) for one member.
type Sent struct {
	// NoticeID names the notice in the outbox; empty for a rendering.
	NoticeID string `json:"notice_id,omitempty"`
	// Channel is email or sms; Recipient the address or number.
	Channel   string `json:"channel"`
	Recipient string `json:"recipient,omitempty"`
	Subject   string `json:"subject,omitempty"`
	Body      string `json:"body,omitempty"`
	// Status is the notice's: pending, or skipped when the member has
	// no address (Error says so).
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Messenger writes the notices of a notify job into the notice outbox.
// The kit gives circulation's (circulation.Service.QueueMessage); a host
// building a Service alone may give its own.
type Messenger interface {
	// CheckMessage refuses, as Invalid naming each field (template,
	// subject, text), a message that cannot be sent; it may trim m and
	// fill its defaults.
	CheckMessage(m *Message) error
	// QueueMessage writes, within the transaction ctx carries, a notice
	// of m to the user of internal id userID of inst, by their preferred
	// channel, once per key; with dry it only renders it. A user who no
	// longer exists is fault.NotFound.
	QueueMessage(ctx context.Context, inst, userID, key string, m Message, dry bool) (*Sent, error)
}

// errNoMessenger answers a notify job on a Service without a Messenger.
var errNoMessenger = &fault.Error{Kind: fault.Refused, Detail: "no notice outbox is wired to send messages", Reasons: []string{"no_messenger"}}

// MessagePreview is what a notify job would send to one member.
type MessagePreview struct {
	PrimaryID string `json:"primary_id"`
	Sent
}

// NotifyPreview is what a notify job would do, before anything is
// written.
type NotifyPreview struct {
	// Total is how many users the set holds now.
	Total int64 `json:"total"`
	// Sample is the message each of the first members by primary_id
	// would get, rendered.
	Sample []MessagePreview `json:"sample"`
}

// checkMessage checks m with the Messenger.
func (s *Service) checkMessage(m *Message) error {
	if s.o.Messenger == nil {
		return errNoMessenger
	}
	return s.o.Messenger.CheckMessage(m)
}

// PreviewNotify tells what a notify job sending m to the set id of inst
// would do: the count of its members, and for the first sample of them
// (default 10, at most 100) the message each would get, rendered, by
// the channel it would go by. Nothing is written but the audit trail's
// reads of the users shown. A message not valid is Invalid naming each
// field.
func (s *Service) PreviewNotify(ctx context.Context, inst, id string, m Message, sample int) (*NotifyPreview, error) {
	if sample == 0 {
		sample = 10
	}
	set, err := s.load(ctx, inst, id)
	if err != nil {
		return nil, err
	}
	if sample < 1 || sample > 100 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the preview is not valid", Fields: []fault.FieldError{{Field: "sample", Code: "out_of_range", Message: "must be 1..100"}}}
	}
	if err := s.checkMessage(&m); err != nil {
		return nil, err
	}
	p := &NotifyPreview{Sample: []MessagePreview{}}
	if err := s.users(ctx, set).Count(&p.Total).Error; err != nil {
		return nil, err
	}
	var rows []struct{ ID, PrimaryID string }
	if err := s.users(ctx, set).Select("pk_users.id, pk_users.primary_id").Order("pk_users.primary_id_key").Limit(sample).Scan(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		sent, err := s.o.Messenger.QueueMessage(patron.WithOrigin(ctx, patron.Origin{Via: "job preview"}), inst, r.ID, "", m, true)
		if errors.Is(err, fault.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		p.Sample = append(p.Sample, MessagePreview{PrimaryID: r.PrimaryID, Sent: *sent})
	}
	return p, nil
}

// StartNotify starts a notify job of inst sending m to the members of the
// set id as they are now (a query set evaluated once, here): kept running
// and held by no instance, with its total; Run (or Resume, Launch) does
// the work, a batch at a time, each member's notice written in the
// outbox with the batch (once per job and member, so that a resumed job
// never writes one twice) and on the audit trail. A message not valid is
// Invalid naming each field; an unknown set is NotFound. It cannot be
// undone (StartUndo refuses it).
func (s *Service) StartNotify(ctx context.Context, inst, id string, m Message) (*Job, error) {
	if err := s.checkMessage(&m); err != nil {
		return nil, err
	}
	var job *Job
	err := txctx.Transaction(ctx, s.db, func(ctx context.Context, tx *gorm.DB) error {
		set, err := s.load(ctx, inst, id)
		if err != nil {
			return err
		}
		actor, _ := patron.ActorFrom(ctx)
		now := s.now().UTC().Truncate(time.Second)
		job = &Job{ID: keys.NewID(), Institution: inst, SetID: set.ID, Kind: JobNotify, Fields: map[string]string{}, Message: &m,
			Status: JobRunning, CreatedBy: actor.ID, CreatedAt: now, LeaseUntil: now}
		return s.fill(tx, job, set)
	})
	if err != nil {
		return nil, err
	}
	return job, nil
}

// fill keeps the new job and the members of set it works on, with its
// total.
func (s *Service) fill(tx *gorm.DB, job *Job, set *Set) error {
	if err := tx.Create(job).Error; err != nil {
		return err
	}
	if !uuidText.MatchString(job.ID) {
		return fmt.Errorf("sets: a job id %q is not a UUID", job.ID)
	}
	cond, args := s.where(set)
	if err := tx.Exec("INSERT INTO pk_set_job_items (job_id, user_id) SELECT '"+job.ID+"', pk_users.id FROM pk_users WHERE "+cond, args...).Error; err != nil {
		return err
	}
	if err := tx.Model(&jobItem{}).Where("job_id = ?", job.ID).Count(&job.Total).Error; err != nil {
		return err
	}
	return tx.Model(&Job{}).Where("id = ?", job.ID).Update("total", job.Total).Error
}

// notify writes the notices of the notify job j to the users ids, in the
// batch's transaction ctx carries, each on the audit trail; it returns
// the outcomes (a user gone since is left out).
func (s *Service) notify(ctx context.Context, inst string, j *Job, ids []string) ([]JobOutcome, error) {
	if s.o.Messenger == nil {
		return nil, errNoMessenger
	}
	var m Message
	if j.Message != nil {
		m = *j.Message
	}
	var pids []struct{ ID, PrimaryID string }
	if err := s.conn(ctx).Table("pk_users").Select("id, primary_id").Where("institution = ? AND id IN ?", inst, ids).Scan(&pids).Error; err != nil {
		return nil, err
	}
	primary := make(map[string]string, len(pids))
	for _, p := range pids {
		primary[p.ID] = p.PrimaryID
	}
	var out []JobOutcome
	var events []patron.AuditEvent
	for _, uid := range ids {
		pid, ok := primary[uid]
		if !ok {
			continue
		}
		sent, err := s.o.Messenger.QueueMessage(ctx, inst, uid, "set-job:"+j.ID+":"+uid, m, false)
		if errors.Is(err, fault.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		o := JobOutcome{UserID: uid, PrimaryID: pid, Outcome: NotifyQueued,
			Notice: &Sent{NoticeID: sent.NoticeID, Channel: sent.Channel, Status: sent.Status, Error: sent.Error}}
		if sent.Status == NotifySkipped {
			o.Outcome = NotifySkipped
			o.Reasons = []fault.FieldError{{Field: "channel", Code: "no_address", Message: sent.Error}}
		}
		out = append(out, o)
		details, _ := json.Marshal(map[string]string{"notice_id": sent.NoticeID, "channel": sent.Channel, "status": sent.Status})
		events = append(events, patron.AuditEvent{Action: patron.AuditCreate, PrimaryID: pid, What: "notice", Details: string(details)})
	}
	if err := s.patrons.RecordAuditMany(ctx, inst, events); err != nil {
		return nil, err
	}
	return out, nil
}
