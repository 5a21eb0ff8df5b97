package sis

import (
	"context"
	"errors"
	"time"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/txctx"
)

// RunDue starts a run of every profile whose schedule came due since its
// last scheduled run (or since it was created), and returns the runs it
// started. Each due time starts one run across all instances sharing the
// database: the instance that moves the profile's last_scheduled_at first
// starts it. A profile still running is skipped until its next due time.
func (s *Service) RunDue(ctx context.Context) ([]*Run, error) {
	var profiles []Profile
	if err := s.conn(ctx).Where("schedule <> ''").Order("institution, code").Find(&profiles).Error; err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Second)
	var started []*Run
	for _, p := range profiles {
		sched, err := p.schedule()
		if err != nil || sched == nil {
			continue
		}
		since := p.CreatedAt
		if p.LastScheduledAt != nil {
			since = *p.LastScheduledAt
		}
		if sched.Next(since).After(now) {
			continue
		}
		claimed, err := s.claim(ctx, &p, now)
		if err != nil {
			return started, err
		}
		if !claimed {
			continue
		}
		run, err := s.StartRun(ctx, p.Institution, p.Code, RunOptions{Trigger: TriggerSchedule})
		if e, ok := fault.As(err); ok && e.Kind == fault.Conflict {
			s.log.Info("sis: scheduled run skipped: the profile is running", "institution", p.Institution, "profile", p.Code)
			continue
		}
		if err != nil {
			s.log.Error("sis: scheduled run", "institution", p.Institution, "profile", p.Code, "error", err)
			continue
		}
		started = append(started, run)
	}
	return started, nil
}

// claim moves a profile's last_scheduled_at to now if no other instance
// moved it since it was read.
func (s *Service) claim(ctx context.Context, p *Profile, now time.Time) (bool, error) {
	q := s.conn(ctx).Model(&Profile{}).Where("institution = ? AND code = ?", p.Institution, p.Code)
	if p.LastScheduledAt == nil {
		q = q.Where("last_scheduled_at IS NULL")
	} else {
		q = q.Where("last_scheduled_at = ?", p.LastScheduledAt.UTC())
	}
	res := q.Update("last_scheduled_at", now)
	return res.RowsAffected == 1, res.Error
}

// Start checks the schedules every interval (default: 30 seconds) until
// ctx ends or Close is called, in transactions of its own whatever ctx
// carries.
func (s *Service) Start(ctx context.Context, interval time.Duration) {
	ctx = txctx.Without(ctx)
	if interval <= 0 {
		interval = 30 * time.Second
	}
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-t.C:
				if _, err := s.RunDue(ctx); err != nil && !errors.Is(err, context.Canceled) {
					s.log.Error("sis: checking schedules", "error", err)
				}
			}
		}
	}()
}
