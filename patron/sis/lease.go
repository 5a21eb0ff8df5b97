package sis

import (
	"context"
	"errors"
	"time"

	"github.com/patronkit/patronkit/internal/dberr"
)

// lease is the row that lets one instance at a time run a profile. It
// expires, so that the lease of a crashed instance is taken over.
type lease struct {
	Institution string    `gorm:"primaryKey;size:64"`
	Profile     string    `gorm:"primaryKey;size:64"`
	Holder      string    `gorm:"size:128;not null"`
	ExpiresAt   time.Time `gorm:"not null"`
}

func (lease) TableName() string { return "pk_sis_leases" }

// errLeaseHeld says another run holds the profile's lease.
var errLeaseHeld = errors.New("another run of the profile is in progress")

// errLeaseLost says a run's lease was taken over by another instance.
var errLeaseLost = errors.New("the run lost its lease on the profile: another instance took the profile over")

// acquire takes the profile's lease for holder until now+ttl: a new row,
// or an expired one taken over. Only one of several instances trying at
// once succeeds.
func (s *Service) acquire(ctx context.Context, inst, profile, holder string) error {
	now := s.now().UTC()
	db := s.conn(ctx)
	res := db.Model(&lease{}).Where("institution = ? AND profile = ? AND expires_at < ?", inst, profile, now).
		Updates(map[string]any{"holder": holder, "expires_at": now.Add(s.leaseTTL)})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 1 {
		// The instance that held the lease stopped: its runs will not end.
		return db.Model(&Run{}).Where("institution = ? AND profile = ? AND status IN ?", inst, profile, []string{RunQueued, RunRunning}).
			Updates(map[string]any{"status": RunFailed, "error": "the instance running it stopped before the run ended", "finished_at": now}).Error
	}
	err := db.Create(&lease{Institution: inst, Profile: profile, Holder: holder, ExpiresAt: now.Add(s.leaseTTL)}).Error
	if err == nil {
		return nil
	}
	if dberr.Duplicate(s.db, err) {
		return errLeaseHeld
	}
	return err
}

// renew extends a held lease; it fails when the lease was lost.
func (s *Service) renew(ctx context.Context, inst, profile, holder string) error {
	res := s.conn(ctx).Model(&lease{}).Where("institution = ? AND profile = ? AND holder = ?", inst, profile, holder).
		Update("expires_at", s.now().UTC().Add(s.leaseTTL))
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return errLeaseLost
	}
	return nil
}

// release gives the lease up.
func (s *Service) release(ctx context.Context, inst, profile, holder string) error {
	return s.conn(ctx).Where("institution = ? AND profile = ? AND holder = ?", inst, profile, holder).Delete(&lease{}).Error
}
