package sis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/patronkit/patronkit/patron"
)

// runState is what a run accumulates while it reads its files.
type runState struct {
	run     *Run
	profile *Profile
	how     patron.ExternalApply
	// load applies the users, each after those before it in the run.
	load *patron.ExternalLoad
	seq  int
	// seen maps each user's match key to where it was first read: the same
	// user twice in a run is rejected the second time.
	seen map[string]string
	// users holds the internal ids of the users the run saw, for
	// deactivate-missing.
	users   map[string]bool
	pending []pendingUser
	out     []Outcome
	// labels are the code labels read since the last flush.
	labels []patron.CodeLabel
	read   atomic.Int64
}

// pendingUser is a user waiting to be applied; slot is its place in out,
// so that outcomes are saved in file order.
type pendingUser struct {
	slot int
	user *patron.User
}

// execute runs a profile's files (or the upload) to the end and records
// the outcome; it never panics the process.
func (s *Service) execute(ctx context.Context, p *Profile, run *Run, upload *spooled, holder string) {
	// The audit trail names the run as the way in of what it writes; the
	// actor is who started it, or the profile's schedule (system:sis).
	if _, ok := patron.ActorFrom(ctx); !ok {
		ctx = patron.WithActor(ctx, patron.Actor{Institution: run.Institution, ID: "system:sis"})
	}
	o, _ := patron.OriginFrom(ctx)
	ctx = patron.WithOrigin(ctx, patron.Origin{Via: "sis run of profile " + p.Code, RequestID: run.ID, Roles: o.Roles, Library: o.Library})
	now := s.now().UTC()
	run.Status, run.StartedAt = RunRunning, &now
	s.save(ctx, run)
	st := &runState{run: run, profile: p, how: p.apply(run.DryRun), seen: map[string]string{}, users: map[string]bool{}}
	st.load = s.patrons.NewExternalLoad(run.Institution, st.how)

	// The run stops when it loses its lease: another instance, thinking
	// this one stopped, took the profile over (see acquire), and its own
	// run is the one that counts.
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	renewCtx, stopRenew := context.WithCancel(ctx)
	defer stopRenew()
	go s.keepLease(renewCtx, run, holder, stopRun)

	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("the run failed unexpectedly: %v", r)
				s.log.Error("sis: run panicked", "run", run.ID, "panic", r)
			}
		}()
		if upload != nil {
			return s.readUpload(runCtx, st, upload)
		}
		return s.readSource(runCtx, st)
	}()
	if err == nil && p.DeactivateMissing && run.Rejected == 0 && run.Failed == 0 {
		var n int
		if run.DryRun {
			n, err = s.patrons.CountMissing(ctx, run.Institution, st.how, st.users)
		} else {
			n, err = s.patrons.DeactivateMissing(ctx, run.Institution, st.how, st.users)
		}
		run.Deactivated = n
	}
	end := s.now().UTC()
	run.FinishedAt, run.Total = &end, run.Done
	run.Status = RunSucceeded
	if err != nil {
		run.Status, run.Error = RunFailed, err.Error()
	}
	s.save(ctx, run)
	s.log.Info("sis: run ended", "institution", run.Institution, "profile", p.Code, "run", run.ID, "status", run.Status,
		"created", run.Created, "updated", run.Updated, "unchanged", run.Unchanged, "rejected", run.Rejected, "failed", run.Failed, "error", run.Error)
}

// keepLease renews the run's lease until the run ends, and stops the run
// when the lease is lost.
func (s *Service) keepLease(ctx context.Context, run *Run, holder string, stop context.CancelCauseFunc) {
	t := time.NewTicker(s.leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := s.renew(ctx, run.Institution, run.Profile, holder)
			switch {
			case errors.Is(err, errLeaseLost):
				s.log.Warn("sis: the run lost its lease: another instance took the profile over; the run stops", "run", run.ID)
				stop(err)
				return
			case err != nil && ctx.Err() == nil:
				s.log.Error("sis: renewing the lease", "run", run.ID, "error", err)
			}
		}
	}
}

// save writes the run's progress or its end, unless the run has ended
// already: an instance that took over the profile's lease marked it failed
// (this instance was thought stopped), and that stays.
func (s *Service) save(ctx context.Context, run *Run) {
	run.Files, run.Error = storable(run.Files), clip(storable(run.Error), 2000)
	res := s.conn(ctx).Model(run).Where("status IN ?", []string{RunQueued, RunRunning}).Select("*").Updates(run)
	switch {
	case res.Error != nil:
		s.log.Error("sis: saving the run", "run", run.ID, "error", res.Error)
	case res.RowsAffected == 0:
		s.log.Warn("sis: the run was ended by another instance, which took its profile over", "run", run.ID, "status", run.Status)
	}
}

func (s *Service) readUpload(ctx context.Context, st *runState, up *spooled) error {
	f, err := os.Open(up.path)
	if err != nil {
		return err
	}
	defer f.Close()
	st.run.Files = up.name
	info, _ := f.Stat()
	return s.readFile(ctx, st, up.name, f, info.ModTime(), up.size)
}

func (s *Service) readSource(ctx context.Context, st *runState) error {
	src, ok := s.sources[st.profile.Source]
	if !ok {
		return fmt.Errorf("the profile's source %q is not configured in this instance", st.profile.Source)
	}
	files, err := src.List(ctx)
	if err != nil {
		return fmt.Errorf("listing the files of source %q: %w", src.Name(), err)
	}
	var names []string
	for _, file := range files {
		names = append(names, file.Name)
	}
	st.run.Files = strings.Join(names, ",")
	if len(st.run.Files) > 2000 {
		st.run.Files = st.run.Files[:1990] + "..."
	}
	for _, file := range files {
		rc, err := src.Open(ctx, file.Name)
		if err != nil {
			return fmt.Errorf("opening %s: %w", file.Name, err)
		}
		date := file.ModTime
		if date.IsZero() {
			date = s.now()
		}
		ferr := s.readFile(ctx, st, file.Name, rc, date, file.Size)
		rc.Close()
		if !st.run.DryRun {
			if err := src.Done(ctx, file.Name, ferr == nil); err != nil {
				s.log.Error("sis: marking a file", "file", file.Name, "error", err)
			}
		}
		if ferr != nil {
			return ferr
		}
	}
	return nil
}

// countingReader counts the bytes a format has read, for progress.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// readFile decodes one file and applies its users in batches. Decoding
// and applying overlap: while one batch is written, the next is read.
func (s *Service) readFile(ctx context.Context, st *runState, name string, r io.Reader, date time.Time, size int64) error {
	format, err := s.formatFor(st.profile, name)
	if err != nil {
		return err
	}
	st.read.Store(0)
	st.run.BytesTotal = size

	batches := make(chan []Record, 1)
	var applyErr error
	var failed atomic.Bool
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for batch := range batches {
			if applyErr != nil {
				continue // drain: the decoder stops at its next user
			}
			for _, rec := range batch {
				s.take(st, name, rec, date)
			}
			if applyErr = s.flush(ctx, st); applyErr != nil {
				failed.Store(true)
			}
		}
	}()
	emitted := 0
	var batch []Record
	err = format.Decode(ctx, countingReader{r, &st.read}, func(rec Record) error {
		if failed.Load() {
			return errors.New("applying the users failed")
		}
		emitted++
		batch = append(batch, rec)
		if len(batch) >= s.batch {
			batches <- batch
			batch = nil
		}
		return nil
	})
	if len(batch) > 0 {
		batches <- batch
	}
	close(batches)
	<-applied
	if applyErr != nil {
		err = applyErr
	}
	if err != nil {
		if emitted == 0 {
			return fmt.Errorf("%s: %w (nothing was changed)", name, err)
		}
		return fmt.Errorf("%s: %w (after %d users)", name, err, emitted)
	}
	return nil
}

func (s *Service) formatFor(p *Profile, name string) (Format, error) {
	if p.Format != "" {
		return s.formats.Named(p.Format, s.limits)
	}
	return s.formats.Detect(name, s.limits)
}

// take files one record: rejected at once when it could not be read or
// was read before in this run, else queued to be applied.
func (s *Service) take(st *runState, file string, rec Record, date time.Time) {
	st.run.Done++
	if rec.Err != nil || rec.User == nil {
		reason := "the record could not be read"
		if rec.Err != nil {
			reason = rec.Err.Error()
		}
		st.add(Outcome{File: file, Ref: rec.Ref, PrimaryID: primaryIDOf(rec.User), Outcome: OutcomeRejected, Reason: reason})
		return
	}
	key := st.how.Match.Of(rec.User)
	if key != "" {
		if first, dup := st.seen[key]; dup {
			st.add(Outcome{File: file, Ref: rec.Ref, PrimaryID: rec.User.PrimaryID, Outcome: OutcomeRejected,
				Reason: fmt.Sprintf("the same user appears twice in the run: first at %s; the first was applied", first)})
			return
		}
		st.seen[key] = file + " " + rec.Ref
	}
	for _, l := range rec.Labels {
		st.labels = append(st.labels, patron.CodeLabel{CodeTable: l.Table, Code: l.Code, Description: l.Desc})
	}
	st.profile.dates(rec.User, date)
	st.add(Outcome{File: file, Ref: rec.Ref, PrimaryID: rec.User.PrimaryID})
	st.pending = append(st.pending, pendingUser{slot: len(st.out) - 1, user: rec.User})
}

func primaryIDOf(u *patron.User) string {
	if u == nil {
		return ""
	}
	return u.PrimaryID
}

func (st *runState) add(o Outcome) {
	st.out = append(st.out, o)
}

// flush applies the queued users, saves every outcome so far in file
// order, and saves the run's progress.
func (s *Service) flush(ctx context.Context, st *runState) error {
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		return cause
	}
	if len(st.pending) > 0 {
		users := make([]*patron.User, len(st.pending))
		for i, p := range st.pending {
			users[i] = p.user
		}
		results := st.load.Apply(ctx, users)
		for i, res := range results {
			o := &st.out[st.pending[i].slot]
			o.PrimaryID, o.Outcome, o.Reason, o.Changes = res.PrimaryID, outcomeOf(res.Effect), res.Reason, strings.Join(res.Changes, ",")
			if res.UserID != "" {
				st.users[res.UserID] = true
			}
		}
		st.pending = st.pending[:0]
	}
	if len(st.labels) > 0 && !st.run.DryRun {
		if err := s.patrons.SaveLabels(ctx, st.run.Institution, st.labels); err != nil {
			return fmt.Errorf("saving the code labels: %w", err)
		}
	}
	st.labels = st.labels[:0]
	if len(st.out) == 0 {
		return nil
	}
	for i := range st.out {
		st.seq++
		o := &st.out[i]
		o.RunID, o.Seq = st.run.ID, st.seq
		o.Reason = clip(storable(o.Reason), 2000)
		o.Changes = clip(storable(o.Changes), 2000)
		o.File = clip(storable(o.File), 255)
		o.Ref = clip(storable(o.Ref), 255)
		o.PrimaryID = clip(storable(o.PrimaryID), 255)
		switch o.Outcome {
		case OutcomeCreated:
			st.run.Created++
		case OutcomeUpdated:
			st.run.Updated++
		case OutcomeUnchanged:
			st.run.Unchanged++
		case OutcomeRejected:
			st.run.Rejected++
		default:
			st.run.Failed++
		}
	}
	if err := s.conn(ctx).CreateInBatches(st.out, 200).Error; err != nil {
		return fmt.Errorf("saving the outcomes: %w", err)
	}
	st.out = st.out[:0]
	st.run.BytesRead = st.read.Load()
	s.save(ctx, st.run)
	if err := ctx.Err(); err != nil {
		if cause := context.Cause(ctx); cause != nil && cause != err {
			return cause
		}
		return errors.New("the run was stopped")
	}
	return nil
}

// clip shortens s to at most n bytes, on a rune boundary.
// storable writes s so that every database keeps it (see
// patron.TextError): bytes that are not UTF-8, and control characters but
// tab, line feed and carriage return, are written as Go escapes (\x00), so
// that a report still shows what a file held.
func storable(s string) string {
	if patron.TextError("", s, true) == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}
