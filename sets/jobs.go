package sets

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// Options configure the jobs over sets. The zero value is the default.
type Options struct {
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Instance names this instance of the host's application in the
	// lease of a running job. Default: "sets-" and a new id.
	Instance string
	// BatchSize is how many users a job changes at a time, in one
	// transaction of a few statements; a job is cancelled, interrupted
	// and resumed between batches. Default: 500.
	BatchSize int
	// LeaseTTL is how long a running job's hold lasts unless renewed (each
	// batch renews it): another instance resumes a crashed instance's job
	// after it. Default: 5 minutes.
	LeaseTTL time.Duration
	// Currency is the ISO 4217 code of the institution's currency, in
	// which a query set's balance_over is counted. Default: USD (the
	// kit gives the first of Config.Currencies).
	Currency string
	// Messenger writes the notices of notify jobs into the notice outbox.
	// Default: none, and a notify job is Refused (the kit gives
	// circulation's outbox).
	Messenger Messenger
}

// Job statuses.
const (
	// JobRunning: started, not ended; an instance holds it or, when its
	// lease has run out, Resume takes it over.
	JobRunning = "running"
	// JobDone: every member was handled.
	JobDone = "done"
	// JobCancelled: stopped on request between batches; what it did
	// stays done.
	JobCancelled = "cancelled"
)

// Kinds of job.
const (
	// JobUpdate sets or clears fields of every member of a set (Alma's
	// "Update User Information").
	JobUpdate = "update"
	// JobUndo gives back to each user an update job changed the values
	// it changed, unless the user changed again since.
	JobUndo = "undo"
)

// Job is a job over a set of users, with its progress.
type Job struct {
	ID          string `json:"id" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	SetID       string `json:"set_id" gorm:"size:36;not null"`
	// Kind is JobUpdate, JobUndo or JobNotify.
	Kind string `json:"kind" gorm:"size:16;not null"`
	// UndoOf is, for an undo, the update job it undoes.
	UndoOf string `json:"undo_of,omitempty" gorm:"size:36;not null;default:''"`
	// Fields are the fields an update job sets, by JSON name ("" clears).
	Fields map[string]string `json:"fields" gorm:"serializer:json;type:text"`
	// Segments are the blocks, notes and statistics an update job adds
	// or removes (see patron.BatchSegments); nil when it touches none.
	Segments *patron.BatchSegments `json:"segments,omitempty" gorm:"serializer:json;type:text"`
	// Message is what a notify job sends.
	Message *Message `json:"message,omitempty" gorm:"serializer:json;type:text"`
	// Status is JobRunning, JobDone or JobCancelled.
	Status string `json:"status" gorm:"size:16;not null"`
	// Total is how many members the set had when the job started (the
	// job works on those); Done how many it handled so far (a member
	// deleted since is done without an outcome). For a notify job,
	// Changed counts the notices queued and Refused the members skipped
	// (no address).
	Total     int64 `json:"total" gorm:"not null"`
	Done      int64 `json:"done" gorm:"not null"`
	Changed   int64 `json:"changed" gorm:"column:n_changed;not null"`
	Unchanged int64 `json:"unchanged" gorm:"column:n_unchanged;not null"`
	Refused   int64 `json:"refused" gorm:"column:n_refused;not null"`
	// CancelRequested tells that someone asked the job to stop: it stops
	// after the batch it is in.
	CancelRequested bool       `json:"cancel_requested" gorm:"not null;default:false"`
	Cursor          string     `json:"-" gorm:"size:36;not null"`
	Holder          string     `json:"-" gorm:"size:128;not null"`
	LeaseUntil      time.Time  `json:"-" gorm:"not null"`
	CreatedBy       string     `json:"created_by" gorm:"size:255;not null"`
	CreatedAt       time.Time  `json:"created_date" gorm:"not null"`
	FinishedAt      *time.Time `json:"finished_date,omitempty"`
}

// TableName places jobs in the pk_ namespace.
func (Job) TableName() string { return "pk_set_jobs" }

// JobOutcome is what a job did to one member, in the order it went (Seq
// from 1): changed (with the fields' values before and after, and the
// segments added or removed; with reasons when the user's rules refused
// part of the change), unchanged, or refused with the reasons.
type JobOutcome struct {
	JobID  string `json:"-" gorm:"primaryKey;size:36"`
	Seq    int64  `json:"seq" gorm:"primaryKey;autoIncrement:false"`
	UserID string `json:"-" gorm:"size:36;not null"`
	// Version is the version of a changed user's record after the change.
	Version   int                  `json:"-" gorm:"column:version_after;not null"`
	PrimaryID string               `json:"primary_id" gorm:"size:255;not null"`
	Outcome   string               `json:"outcome" gorm:"size:16;not null"`
	Changes   map[string][2]string `json:"changes,omitempty" gorm:"serializer:json;type:text"`
	// Segments are the blocks, notes and statistics added or removed,
	// each whole (what an undo takes away or puts back).
	Segments []patron.SegmentChange `json:"segments,omitempty" gorm:"serializer:json;type:text"`
	Reasons  []fault.FieldError     `json:"reasons,omitempty" gorm:"serializer:json;type:text"`
	// Notice is, for a notify job, the notice written for the member
	// (its id, channel and status; not its text).
	Notice *Sent `json:"notice,omitempty" gorm:"serializer:json;type:text"`
}

// TableName places outcomes in the pk_ namespace.
func (JobOutcome) TableName() string { return "pk_set_job_outcomes" }

// jobItem is one user a job works on, fixed when it starts.
type jobItem struct {
	JobID  string `gorm:"primaryKey;size:36"`
	UserID string `gorm:"primaryKey;size:36"`
}

func (jobItem) TableName() string { return "pk_set_job_items" }

// Preview is what an update job would do, before anything is written.
type Preview struct {
	// Total is how many users the set holds now.
	Total int64 `json:"total"`
	// Sample is, for the first members by primary_id, what the job would
	// do to each, field by field.
	Sample []patron.BatchOutcome `json:"sample"`
}

// ErrJobInProgress says another instance holds the job.
var ErrJobInProgress = &fault.Error{Kind: fault.Refused, Detail: "another instance is running this job", Reasons: []string{"job_in_progress"}}

var errNoJob = &fault.Error{Kind: fault.NotFound, Detail: "no job has this id"}

// PreviewUpdate tells what an update job setting fields (JSON name to
// value, "" to clear; see patron.CheckBatchFields) on the set id of inst
// would do: the count of its members, and for the first sample of them
// (default 10, at most 100) the change of each, field by field, or why
// it would be refused. Nothing is written but the audit trail's entries
// of the users shown (read, "job preview").
func (s *Service) PreviewUpdate(ctx context.Context, inst, id string, fields map[string]string, sample int) (*Preview, error) {
	return s.PreviewChange(ctx, inst, id, patron.BatchChange{Fields: fields}, sample)
}

// PreviewChange is PreviewUpdate of a whole change: fields set or cleared
// and blocks, notes and statistics added or removed (checked by
// patron.CheckBatch); the sample shows the segments each user would gain
// or lose.
func (s *Service) PreviewChange(ctx context.Context, inst, id string, change patron.BatchChange, sample int) (*Preview, error) {
	if sample == 0 {
		sample = 10
	}
	if _, err := s.load(ctx, inst, id); err != nil {
		return nil, err
	}
	if sample < 1 || sample > 100 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the preview is not valid", Fields: []fault.FieldError{{Field: "sample", Code: "out_of_range", Message: "must be 1..100"}}}
	}
	set, err := s.load(ctx, inst, id)
	if err != nil {
		return nil, err
	}
	if err := patron.CheckBatch(&change); err != nil {
		return nil, err
	}
	p := &Preview{Sample: []patron.BatchOutcome{}}
	if err := s.users(ctx, set).Count(&p.Total).Error; err != nil {
		return nil, err
	}
	var ids []string
	if err := s.users(ctx, set).Order("pk_users.primary_id_key").Limit(sample).Pluck("pk_users.id", &ids).Error; err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return p, nil
	}
	out, err := s.patrons.ChangeMany(ctx, inst, ids, change, true)
	if err != nil {
		return nil, err
	}
	p.Sample = out
	es := make([]patron.AuditEvent, len(out))
	for i, o := range out {
		es[i] = patron.AuditEvent{Action: patron.AuditRead, PrimaryID: o.PrimaryID, What: "job preview"}
	}
	if err := s.patrons.RecordAuditMany(ctx, inst, es); err != nil {
		return nil, err
	}
	return p, nil
}

// StartUpdate starts an update job of inst setting fields on the members
// of the set id as they are now (a query set evaluated once, here): the
// job is kept, running and held by no instance, with its total; Run (or
// Resume) does the work. Fields not valid are Invalid naming each; an
// unknown set is NotFound.
func (s *Service) StartUpdate(ctx context.Context, inst, id string, fields map[string]string) (*Job, error) {
	return s.StartChange(ctx, inst, id, patron.BatchChange{Fields: fields})
}

// StartChange is StartUpdate of a whole change: fields set or cleared and
// blocks, notes and statistics added or removed (checked by
// patron.CheckBatch).
func (s *Service) StartChange(ctx context.Context, inst, id string, change patron.BatchChange) (*Job, error) {
	var job *Job
	err := txctx.Transaction(ctx, s.db, func(ctx context.Context, tx *gorm.DB) error {
		set, err := s.load(ctx, inst, id)
		if err != nil {
			return err
		}
		if err := patron.CheckBatch(&change); err != nil {
			return err
		}
		actor, _ := patron.ActorFrom(ctx)
		now := s.now().UTC().Truncate(time.Second)
		if change.Fields == nil {
			change.Fields = map[string]string{}
		}
		job = &Job{ID: keys.NewID(), Institution: inst, SetID: set.ID, Kind: JobUpdate, Fields: change.Fields, Status: JobRunning,
			CreatedBy: actor.ID, CreatedAt: now, LeaseUntil: now}
		if segs := change.BatchSegments; !reflect.ValueOf(segs).IsZero() {
			job.Segments = &segs
		}
		return s.fill(tx, job, set)
	})
	if err != nil {
		return nil, err
	}
	return job, nil
}

// Job returns the job id of inst with its progress. An unknown id is
// NotFound.
func (s *Service) Job(ctx context.Context, inst, id string) (*Job, error) {
	var found []Job
	if err := s.conn(ctx).Where("institution = ? AND id = ?", inst, id).Limit(1).Find(&found).Error; err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, errNoJob
	}
	j := &found[0]
	j.CreatedAt = j.CreatedAt.UTC()
	if j.FinishedAt != nil {
		t := j.FinishedAt.UTC()
		j.FinishedAt = &t
	}
	return j, nil
}

// Cancel asks the running job id of inst to stop after the batch it is in
// (at once when no instance runs it). A job ended already is Refused.
func (s *Service) Cancel(ctx context.Context, inst, id string) (*Job, error) {
	res := s.conn(ctx).Model(&Job{}).Where("institution = ? AND id = ? AND status = ?", inst, id, JobRunning).Update("cancel_requested", true)
	if res.Error != nil {
		return nil, res.Error
	}
	j, err := s.Job(ctx, inst, id)
	if err != nil {
		return nil, err
	}
	if j.Status != JobRunning {
		return nil, &fault.Error{Kind: fault.Refused, Detail: "the job has ended: it is " + j.Status, Reasons: []string{"job_ended"}}
	}
	return j, nil
}

// Outcomes returns the outcomes of the job id of inst after the sequence
// number after, at most limit (default 100, at most 1000).
func (s *Service) Outcomes(ctx context.Context, inst, id string, after int64, limit int) ([]JobOutcome, error) {
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 || after < 0 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the page is not valid", Fields: []fault.FieldError{{Field: "limit", Code: "out_of_range", Message: "limit must be 1..1000 and after at least 0"}}}
	}
	if _, err := s.Job(ctx, inst, id); err != nil {
		return nil, err
	}
	out := []JobOutcome{}
	err := s.conn(ctx).Where("job_id = ? AND seq > ?", id, after).Order("seq").Limit(limit).Find(&out).Error
	return out, err
}

// acquire takes the job's lease for this instance: a job no instance
// holds, whose lease ran out, or its own.
func (s *Service) acquire(ctx context.Context, inst, id string) error {
	now := s.now().UTC()
	res := s.db.WithContext(ctx).Model(&Job{}).
		Where("institution = ? AND id = ? AND status = ? AND (holder = '' OR lease_until < ? OR holder = ?)", inst, id, JobRunning, now, s.o.Instance).
		Updates(map[string]any{"holder": s.o.Instance, "lease_until": now.Add(s.o.LeaseTTL)})
	if res.Error != nil {
		return res.Error
	}
	j, err := s.Job(ctx, inst, id)
	if err != nil {
		return err
	}
	switch {
	case j.Status != JobRunning:
		return &fault.Error{Kind: fault.Refused, Detail: "the job has ended: it is " + j.Status, Reasons: []string{"job_ended"}}
	case j.Holder != s.o.Instance:
		return ErrJobInProgress
	}
	return nil
}

// Run works on the running job id of inst until it is done, cancelled, or
// ctx ends, batch by batch (Options.BatchSize members at a time, each
// batch in one transaction with its outcomes and the job's progress), and
// returns the job as it stands. A job another instance holds, or this
// one runs already, is ErrJobInProgress; one whose holder's lease ran out (an instance that
// stopped) is taken over and goes on after the last batch it committed.
// When ctx ends the job stays running, its lease given up: Run or Resume
// goes on with it later.
func (s *Service) Run(ctx context.Context, inst, id string) (*Job, error) {
	// One run of a job at a time in this instance too: its lease is the
	// instance's, whichever of its goroutines runs it.
	if _, running := s.active.LoadOrStore(id, true); running {
		return nil, ErrJobInProgress
	}
	defer s.active.Delete(id)
	if err := s.acquire(ctx, inst, id); err != nil {
		return nil, err
	}
	for {
		if ctx.Err() != nil {
			s.release(context.WithoutCancel(ctx), id)
			return s.Job(context.WithoutCancel(ctx), inst, id)
		}
		more, err := s.batch(ctx, inst, id)
		if err != nil {
			if ctx.Err() != nil {
				s.release(context.WithoutCancel(ctx), id)
				return s.Job(context.WithoutCancel(ctx), inst, id)
			}
			return nil, err
		}
		if !more {
			return s.Job(ctx, inst, id)
		}
	}
}

// release gives the job's lease up.
func (s *Service) release(ctx context.Context, id string) {
	s.db.WithContext(ctx).Model(&Job{}).Where("id = ? AND holder = ?", id, s.o.Instance).Update("holder", "")
}

// batch does the next batch of the job, in one transaction; it tells
// whether more remain.
func (s *Service) batch(ctx context.Context, inst, id string) (bool, error) {
	more := false
	err := txctx.Transaction(ctx, s.db, func(ctx context.Context, tx *gorm.DB) error {
		var jobs []Job
		if err := tx.Where("id = ? AND holder = ?", id, s.o.Instance).Limit(1).Find(&jobs).Error; err != nil {
			return err
		}
		if len(jobs) == 0 {
			return errors.New("sets: the job lost its lease: another instance took it over")
		}
		j := jobs[0]
		now := s.now().UTC()
		if j.Status != JobRunning {
			return nil
		}
		if j.CancelRequested {
			return s.finish(tx, &j, JobCancelled, now)
		}
		var ids []string
		if err := tx.Model(&jobItem{}).Where("job_id = ? AND user_id > ?", id, j.Cursor).Order("user_id").Limit(s.o.BatchSize).Pluck("user_id", &ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return s.finish(tx, &j, JobDone, now)
		}
		// The changes are the job's creator's, made through the job.
		ctx = patron.WithOrigin(patron.WithActor(ctx, patron.Actor{Institution: inst, ID: j.CreatedBy}), patron.Origin{Via: "job " + j.ID})
		var out []patron.BatchOutcome
		var rows []JobOutcome
		var err error
		switch j.Kind {
		case JobUndo:
			out, err = s.restore(ctx, tx, inst, j.UndoOf, ids)
		case JobNotify:
			rows, err = s.notify(ctx, inst, &j, ids)
		default:
			change := patron.BatchChange{Fields: j.Fields}
			if j.Segments != nil {
				change.BatchSegments = *j.Segments
			}
			out, err = s.patrons.ChangeMany(ctx, inst, ids, change, false)
		}
		if err != nil {
			return err
		}
		for _, o := range out {
			rows = append(rows, JobOutcome{UserID: o.UserID, Version: o.Version, PrimaryID: o.PrimaryID, Outcome: o.Outcome, Changes: o.Changes, Segments: o.Segments, Reasons: o.Reasons})
		}
		seq := j.Changed + j.Unchanged + j.Refused
		for i := range rows {
			rows[i].JobID, rows[i].Seq = id, seq+int64(i)+1
			switch rows[i].Outcome {
			case patron.BatchChanged, NotifyQueued:
				j.Changed++
			case patron.BatchRefused, NotifySkipped:
				j.Refused++
			default:
				j.Unchanged++
			}
		}
		if len(rows) > 0 {
			if err := tx.Create(&rows).Error; err != nil {
				return err
			}
		}
		// A member deleted since the job started is passed over: done,
		// without an outcome.
		j.Done += int64(len(ids))
		j.Cursor = ids[len(ids)-1]
		more = true
		res := tx.Model(&Job{}).Where("id = ? AND holder = ?", id, s.o.Instance).Updates(map[string]any{
			"done": j.Done, "n_changed": j.Changed, "n_unchanged": j.Unchanged, "n_refused": j.Refused,
			"cursor": j.Cursor, "lease_until": now.Add(s.o.LeaseTTL)})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			// Another instance took the job over: this batch is undone.
			return errors.New("sets: the job lost its lease: another instance took it over")
		}
		return nil
	})
	return more, err
}

// finish ends the job with status.
func (s *Service) finish(tx *gorm.DB, j *Job, status string, now time.Time) error {
	at := now.Truncate(time.Second)
	return tx.Model(&Job{}).Where("id = ?", j.ID).Updates(map[string]any{"status": status, "finished_at": at, "holder": ""}).Error
}

// Resume runs, one after the other, every running job no instance holds
// (started and not yet run, or left by an instance that stopped: its
// lease ran out), each from where it stopped. It returns how many it
// ran; a job another instance took first is passed over.
func (s *Service) Resume(ctx context.Context) (int, error) {
	var jobs []Job
	if err := s.db.WithContext(ctx).Where("status = ? AND (holder = '' OR lease_until < ?)", JobRunning, s.now().UTC()).Order("id").Find(&jobs).Error; err != nil {
		return 0, err
	}
	n := 0
	for _, j := range jobs {
		if _, err := s.Run(ctx, j.Institution, j.ID); err != nil {
			if errors.Is(err, ErrJobInProgress) {
				continue
			}
			return n, err
		}
		n++
	}
	return n, nil
}

// Launch runs the job id of inst in the background (see Run), until it
// ends or the service closes; what goes wrong is given to report (when not
// nil). A job another instance holds is left to it.
func (s *Service) Launch(ctx context.Context, inst, id string, report func(error)) {
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		stop := context.AfterFunc(s.stop, cancel)
		defer stop()
		if _, err := s.Run(bg, inst, id); err != nil && !errors.Is(err, ErrJobInProgress) && report != nil {
			report(err)
		}
	}()
}

// ResumeInBackground is Resume in the background, until it is done or
// the service closes; what goes wrong is given to report (when not nil).
func (s *Service) ResumeInBackground(ctx context.Context, report func(error)) {
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		stop := context.AfterFunc(s.stop, cancel)
		defer stop()
		if _, err := s.Resume(bg); err != nil && bg.Err() == nil && report != nil {
			report(err)
		}
	}()
}

// Wait blocks until the jobs this service runs in the background (Launch,
// ResumeInBackground) have ended.
func (s *Service) Wait() { s.running.Wait() }

// Close stops the jobs this service runs after the batch each is in
// (they stay running, their leases given up, for Resume) and waits for
// them.
func (s *Service) Close() {
	s.closing()
	s.running.Wait()
}

// StartUndo starts the undo of the update job id of inst, ended (done or
// cancelled): a job giving back to each user the update changed the old
// value of every field it changed, unless the user's record changed again
// since (those are refused, with the reason patron.ChangedSince, and
// listed in its outcomes). Run (or Resume, Launch) does the work. A job
// running, an undo, or an update undone already is Refused.
func (s *Service) StartUndo(ctx context.Context, inst, id string) (*Job, error) {
	var job *Job
	err := txctx.Transaction(ctx, s.db, func(ctx context.Context, tx *gorm.DB) error {
		orig, err := s.Job(ctx, inst, id)
		if err != nil {
			return err
		}
		switch {
		case orig.Kind == JobNotify:
			return &fault.Error{Kind: fault.Refused, Detail: "a notify job cannot be undone: the messages sent stay sent", Reasons: []string{"not_an_update"}}
		case orig.Kind != JobUpdate:
			return &fault.Error{Kind: fault.Refused, Detail: "only an update can be undone", Reasons: []string{"not_an_update"}}
		case orig.Status == JobRunning:
			return &fault.Error{Kind: fault.Refused, Detail: "the job is running: cancel it, then undo it", Reasons: []string{"job_running"}}
		}
		var n int64
		if err := tx.Model(&Job{}).Where("institution = ? AND undo_of = ?", inst, id).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return &fault.Error{Kind: fault.Refused, Detail: "the job was undone already", Reasons: []string{"undone"}}
		}
		actor, _ := patron.ActorFrom(ctx)
		now := s.now().UTC().Truncate(time.Second)
		job = &Job{ID: keys.NewID(), Institution: inst, SetID: orig.SetID, Kind: JobUndo, UndoOf: orig.ID, Fields: map[string]string{},
			Status: JobRunning, CreatedBy: actor.ID, CreatedAt: now, LeaseUntil: now}
		if err := tx.Create(job).Error; err != nil {
			return err
		}
		if !uuidText.MatchString(job.ID) {
			return fmt.Errorf("sets: a job id %q is not a UUID", job.ID)
		}
		if err := tx.Exec("INSERT INTO pk_set_job_items (job_id, user_id) SELECT '"+job.ID+"', o.user_id FROM pk_set_job_outcomes o WHERE o.job_id = ? AND o.outcome = ?",
			orig.ID, patron.BatchChanged).Error; err != nil {
			return err
		}
		if err := tx.Model(&jobItem{}).Where("job_id = ?", job.ID).Count(&job.Total).Error; err != nil {
			return err
		}
		return tx.Model(&Job{}).Where("id = ?", job.ID).Update("total", job.Total).Error
	})
	if err != nil {
		return nil, err
	}
	return job, nil
}

// restore gives the users ids back the values the update job orig
// changed, each if their record is still at the version orig left.
func (s *Service) restore(ctx context.Context, tx *gorm.DB, inst, orig string, ids []string) ([]patron.BatchOutcome, error) {
	var done []JobOutcome
	if err := tx.Where("job_id = ? AND outcome = ? AND user_id IN ?", orig, patron.BatchChanged, ids).Find(&done).Error; err != nil {
		return nil, err
	}
	items := make([]patron.BatchItem, len(done))
	for i, o := range done {
		fields := make(map[string]string, len(o.Changes))
		for f, c := range o.Changes {
			fields[f] = c[0]
		}
		items[i] = patron.BatchItem{UserID: o.UserID, Version: o.Version, Fields: fields, Undo: o.Segments}
	}
	if len(items) == 0 {
		return nil, nil
	}
	return s.patrons.RestoreMany(ctx, inst, items)
}

// OutcomesCSVHeader is the first row of WriteCSV: per member, the
// sequence number, primary_id, outcome, the fields changed ("field: old
// -> new") and the segments added or removed ("user_blocks: + GENERAL:
// Lost card", "user_notes: - text"), separated by "; ", and the reasons
// of a refusal.
var OutcomesCSVHeader = []string{"seq", "primary_id", "outcome", "changes", "reasons"}

// WriteCSV writes every outcome of the job id of inst to w as CSV, in
// the order the job went (a page at a time): the report of the job. A
// cell starting with =, +, -, @ or a tab is written after a quote ('),
// so that a spreadsheet does not take it for a formula. An unknown job is
// NotFound, and nothing is written.
func (s *Service) WriteCSV(ctx context.Context, w io.Writer, inst, id string) error {
	if _, err := s.Job(ctx, inst, id); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(OutcomesCSVHeader); err != nil {
		return err
	}
	after := int64(0)
	for {
		page, err := s.Outcomes(ctx, inst, id, after, 1000)
		if err != nil {
			return err
		}
		for _, o := range page {
			var reasons []string
			changes := patron.DescribeChanges(o.Changes, o.Segments)
			if n := o.Notice; n != nil {
				changes = append(changes, "notice: "+n.Channel+" "+n.Status)
			}
			for _, r := range o.Reasons {
				reasons = append(reasons, r.Field+": "+r.Message)
			}
			if err := cw.Write([]string{strconv.FormatInt(o.Seq, 10), cell(o.PrimaryID), o.Outcome,
				cell(strings.Join(changes, "; ")), cell(strings.Join(reasons, "; "))}); err != nil {
				return err
			}
			after = o.Seq
		}
		if len(page) < 1000 {
			break
		}
	}
	cw.Flush()
	return cw.Error()
}

// cell keeps a spreadsheet from taking s for a formula.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
