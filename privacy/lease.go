package privacy

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dberr"
)

// leaseRow is one institution's row of a lease table: who holds it, until
// when.
type leaseRow struct {
	Institution string    `gorm:"primaryKey;size:64"`
	Holder      string    `gorm:"size:128;not null"`
	ExpiresAt   time.Time `gorm:"not null"`
}

// lease lets one instance at a time work on an institution (a run of the
// anonymization, of the purge): a row per institution in table, held by
// holder until it expires, renewed as the work goes on.
type lease struct {
	table  string
	holder string
	ttl    time.Duration
	now    func() time.Time
	busy   error  // what acquire answers while another instance holds it
	what   string // the work, in the error of a lease lost
}

// acquire takes inst's lease for this instance: a new row, an expired one
// or its own.
func (l *lease) acquire(ctx context.Context, db *gorm.DB, inst string) error {
	now := l.now().UTC()
	db = db.WithContext(ctx)
	res := db.Table(l.table).Where("institution = ? AND (expires_at < ? OR holder = ?)", inst, now, l.holder).
		Updates(map[string]any{"holder": l.holder, "expires_at": now.Add(l.ttl)})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 1 || l.holds(db, inst) {
		// (MySQL counts a row set to what it held as unchanged.)
		return nil
	}
	err := db.Table(l.table).Create(&leaseRow{Institution: inst, Holder: l.holder, ExpiresAt: now.Add(l.ttl)}).Error
	if err != nil && dberr.Duplicate(db, err) {
		return l.busy
	}
	return err
}

// holds tells whether this instance holds inst's lease.
func (l *lease) holds(db *gorm.DB, inst string) bool {
	var n int64
	return db.Table(l.table).Where("institution = ? AND holder = ?", inst, l.holder).Count(&n).Error == nil && n == 1
}

// renew extends the lease through db; it fails when another instance took
// it over.
func (l *lease) renew(db *gorm.DB, inst string) error {
	res := db.Table(l.table).Where("institution = ? AND holder = ?", inst, l.holder).Update("expires_at", l.now().UTC().Add(l.ttl))
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 && !l.holds(db, inst) {
		return errors.New("privacy: the " + l.what + " lost its lease: another instance took the institution over")
	}
	return nil
}

// release gives inst's lease up, whatever ctx's state.
func (l *lease) release(ctx context.Context, db *gorm.DB, inst string) error {
	return db.WithContext(context.WithoutCancel(ctx)).Table(l.table).Where("institution = ? AND holder = ?", inst, l.holder).Delete(&leaseRow{}).Error
}
