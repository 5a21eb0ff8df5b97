package sis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// Run statuses.
const (
	RunQueued    = "queued"
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// Run triggers.
const (
	TriggerManual   = "manual"
	TriggerSchedule = "schedule"
)

// Run is one load of a profile's files: a persisted job with its progress
// and counts while it runs, and an outcome per user afterwards.
type Run struct {
	ID          string `json:"id" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	Profile     string `json:"profile" gorm:"size:64;not null"`
	Status      string `json:"status" gorm:"size:16;not null"`
	Trigger     string `json:"trigger" gorm:"size:16;not null"`
	DryRun      bool   `json:"dry_run"`
	// Files names the files read, comma-separated.
	Files string `json:"files" gorm:"size:2000"`
	// Done counts the users read so far; Total is set when the run ends.
	Done  int `json:"done"`
	Total int `json:"total"`
	// BytesRead of BytesTotal of the file being read: the progress of a
	// run whose user count is not known before the end.
	BytesRead  int64 `json:"bytes_read"`
	BytesTotal int64 `json:"bytes_total"`

	Created     int `json:"created"`
	Updated     int `json:"updated"`
	Unchanged   int `json:"unchanged"`
	Rejected    int `json:"rejected"`
	Failed      int `json:"failed"`
	Deactivated int `json:"deactivated"`

	// Error says why a failed run failed.
	Error      string     `json:"error,omitempty" gorm:"size:2000"`
	CreatedAt  time.Time  `json:"created_date"`
	StartedAt  *time.Time `json:"started_date,omitempty"`
	FinishedAt *time.Time `json:"finished_date,omitempty"`
}

// TableName implements gorm's Tabler.
func (Run) TableName() string { return "pk_sis_runs" }

// Outcome is what a run did with one incoming user.
type Outcome struct {
	RunID string `json:"-" gorm:"primaryKey;size:36"`
	Seq   int    `json:"seq" gorm:"primaryKey;autoIncrement:false"`
	// File and Ref say where the user is: the file, and the line or
	// position within it.
	File      string `json:"file" gorm:"size:255"`
	Ref       string `json:"ref" gorm:"size:255"`
	PrimaryID string `json:"primary_id" gorm:"size:255"`
	Outcome   string `json:"outcome" gorm:"size:16;not null"`
	Reason    string `json:"reason,omitempty" gorm:"size:2000"`
	// Changes names, comma-separated, the fields and segment lists an
	// update changed (or would change, in a dry run).
	Changes string `json:"changes,omitempty" gorm:"size:2000"`
}

// TableName implements gorm's Tabler.
func (Outcome) TableName() string { return "pk_sis_outcomes" }

// RunOptions says how to start a run.
type RunOptions struct {
	// Upload is a file sent with the request, read instead of the
	// profile's source; UploadName gives its name (its extension picks the
	// format when the profile names none).
	Upload     io.Reader
	UploadName string
	// DryRun computes every outcome and writes no user: each outcome is the
	// one the run would give, after the users before it in the run, and
	// Deactivated counts the users the run would make inactive.
	DryRun bool
	// Trigger is manual (the default) or schedule.
	Trigger string
}

// StartRun starts a run of a profile now and returns it queued; the run
// goes on in the background (see Wait), in transactions of its own. An
// upload is read whole into a temporary file first, so the caller may
// close it on return. A profile that is running already is a Conflict.
//
// Within a transaction ctx carries (patronkit.WithTx, Kit.InTx), the
// queued run and the profile's lease are written in it: the run starts
// when that transaction commits, and never starts (the upload is deleted)
// when it rolls back.
func (s *Service) StartRun(ctx context.Context, inst, code string, o RunOptions) (*Run, error) {
	p, err := s.Profile(ctx, inst, code)
	if err != nil {
		return nil, err
	}
	if o.Upload == nil && p.Source == Upload {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the profile's files come by upload: send a file", Fields: []fault.FieldError{{Field: "file", Code: "required", Message: "is required"}}}
	}
	if o.Trigger == "" {
		o.Trigger = TriggerManual
	}
	run := &Run{ID: keys.NewID(), Institution: inst, Profile: code, Status: RunQueued, Trigger: o.Trigger, DryRun: o.DryRun, CreatedAt: s.now().UTC()}
	var upload *spooled
	if o.Upload != nil {
		// The name only labels the run: one no database keeps is kept
		// escaped.
		name := storable(filepath.Base(strings.ReplaceAll(o.UploadName, "\\", "/")))
		if p.Format == "" {
			if _, err := s.formats.Detect(name, s.limits); err != nil {
				return nil, &fault.Error{Kind: fault.Invalid, Detail: err.Error(), Fields: []fault.FieldError{{Field: "file", Code: "unknown_format", Message: err.Error()}}}
			}
		}
		if upload, err = s.spool(o.Upload, name); err != nil {
			return nil, err
		}
		run.Files, run.BytesTotal = name, upload.size
	}
	holder := s.instance + "/" + run.ID
	// The lease and the queued run are written together, within the
	// caller's transaction when ctx carries one: the run starts once they
	// are committed, and never when they are rolled back.
	var queued Run // the caller's copy: the run goes on changing in the background
	err = s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		if err := s.acquire(ctx, inst, code, holder); err != nil {
			return err
		}
		if err := tx.Create(run).Error; err != nil {
			return err
		}
		queued = *run
		txctx.AfterRollback(ctx, upload.remove)
		txctx.AfterCommit(ctx, func() { s.launch(txctx.Without(ctx), p, run, upload, holder) })
		return nil
	})
	if err != nil {
		upload.remove()
		if errors.Is(err, errLeaseHeld) {
			return nil, &fault.Error{Kind: fault.Conflict, Detail: fmt.Sprintf("profile %q is running already; try when its run has ended", code)}
		}
		return nil, err
	}
	return &queued, nil
}

// launch runs a queued run in the background, in transactions of its own,
// and gives its lease up at the end.
func (s *Service) launch(ctx context.Context, p *Profile, run *Run, upload *spooled, holder string) {
	done := make(chan struct{})
	s.mu.Lock()
	s.finished[run.ID] = done
	s.mu.Unlock()
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		defer close(done)
		defer upload.remove()
		bg := context.WithoutCancel(ctx)
		s.execute(bg, p, run, upload, holder)
		if err := s.release(bg, run.Institution, run.Profile, holder); err != nil {
			s.log.Error("sis: releasing the lease", "profile", run.Profile, "run", run.ID, "error", err)
		}
	}()
}

// spooled is an uploaded file kept on disk while its run reads it.
type spooled struct {
	name, path string
	size       int64
}

func (s *Service) spool(r io.Reader, name string) (*spooled, error) {
	f, err := os.CreateTemp(s.tempDir, "patronkit-sis-*")
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &spooled{name: name, path: f.Name(), size: n}, nil
}

func (u *spooled) remove() {
	if u != nil {
		os.Remove(u.path)
	}
}

// Wait blocks until a run started by this process has ended, or ctx ends.
// Runs of other processes are not waited for.
func (s *Service) Wait(ctx context.Context, runID string) (*Run, error) {
	s.mu.Lock()
	done := s.finished[runID]
	s.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var r Run
	err := s.conn(ctx).Where("id = ?", runID).Take(&r).Error
	return &r, err
}

// GetRun returns a run of an institution.
func (s *Service) GetRun(ctx context.Context, inst, id string) (*Run, error) {
	var r Run
	err := s.conn(ctx).Where("institution = ? AND id = ?", inst, id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &fault.Error{Kind: fault.NotFound, Detail: fmt.Sprintf("no run %q", id)}
	}
	return &r, err
}

// Runs lists the latest runs of a profile, newest first.
func (s *Service) Runs(ctx context.Context, inst, code string, limit int) ([]Run, error) {
	out := []Run{}
	err := s.conn(ctx).Where("institution = ? AND profile = ?", inst, code).Order("id DESC").Limit(limit).Find(&out).Error
	return out, err
}

// Report calls fn with every outcome of a run of an institution, in file
// order, reading them a page at a time. An outcome names a user: before
// fn is given a page, the read is on the patron service's audit trail,
// one event per user the page names first (patron.AuditRead, What "sis
// report", details {"run_id": id}); when an event cannot be kept, Report
// fails and fn is given nothing more.
func (s *Service) Report(ctx context.Context, inst, id string, fn func(Outcome) error) error {
	if _, err := s.GetRun(ctx, inst, id); err != nil {
		return err
	}
	last := -1
	named := map[string]bool{}
	d, err := json.Marshal(map[string]string{"run_id": id})
	if err != nil {
		return err
	}
	for {
		var page []Outcome
		if err := s.conn(ctx).Where("run_id = ? AND seq > ?", id, last).Order("seq").Limit(1000).Find(&page).Error; err != nil {
			return err
		}
		var subjects []patron.AuditEvent
		for _, o := range page {
			if o.PrimaryID != "" && !named[o.PrimaryID] {
				named[o.PrimaryID] = true
				subjects = append(subjects, patron.AuditEvent{Action: patron.AuditRead, What: "sis report", PrimaryID: o.PrimaryID, Details: string(d)})
			}
		}
		if err := s.patrons.RecordAuditMany(ctx, inst, subjects); err != nil {
			return err
		}
		for _, o := range page {
			if err := fn(o); err != nil {
				return err
			}
			last = o.Seq
		}
		if len(page) < 1000 {
			return nil
		}
	}
}

// UserOutcome is what one run did with the record of one user: the run,
// its profile and date, and the user's outcome in it.
type UserOutcome struct {
	RunID   string
	Profile string
	Date    time.Time
	DryRun  bool
	Outcome string
	Reason  string
	Changes string
}

// OutcomesOf lists what every run of an institution did with the records
// of primaryID (any case), the latest run first: what a person's personal
// data names of the SIS loads that touched them.
func (s *Service) OutcomesOf(ctx context.Context, inst, primaryID string) ([]UserOutcome, error) {
	var rows []struct {
		RunID     string
		Profile   string
		CreatedAt time.Time
		DryRun    bool
		Outcome   string
		Reason    string
		Changes   string
	}
	err := s.conn(ctx).Table(Outcome{}.TableName()+" o").
		Select("o.run_id, r.profile, r.created_at, r.dry_run, o.outcome, o.reason, o.changes").
		Joins("JOIN "+Run{}.TableName()+" r ON r.id = o.run_id").
		Where("r.institution = ? AND LOWER(o.primary_id) = ?", inst, strings.ToLower(primaryID)).
		Order("r.created_at DESC, o.run_id DESC, o.seq").Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]UserOutcome, 0, len(rows))
	for _, r := range rows {
		out = append(out, UserOutcome{RunID: r.RunID, Profile: r.Profile, Date: r.CreatedAt.UTC(), DryRun: r.DryRun,
			Outcome: r.Outcome, Reason: r.Reason, Changes: r.Changes})
	}
	return out, nil
}
