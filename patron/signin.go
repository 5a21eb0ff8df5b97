package patron

import (
	"context"
	"errors"
	"math"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// SignInFailures counts the failed sign-ins of an account in a row, kept in
// the database so that a restart or another instance does not reset it.
type SignInFailures struct {
	Institution  string    `gorm:"primaryKey;size:64"`
	PrimaryIDKey string    `gorm:"primaryKey;size:255"`
	Failures     int       `gorm:"not null"`
	LockedUntil  time.Time `gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (SignInFailures) TableName() string { return "pk_signin_failures" }

// SignIn checks a user's primary_id and PIN. After MaxSignInFailures wrong
// PINs in a row the account is Locked for the Lockout duration, whatever the
// PIN; unknown users count too, so that guessing learns nothing. Inactive
// users and users without a PIN cannot sign in.
func (s *Service) SignIn(ctx context.Context, inst, primaryID, pin string) (*User, error) {
	if !Findable(primaryID) {
		// No user holds such a primary_id, and PostgreSQL cannot even
		// compare it: unknown, without counting a failure that could not
		// be stored either.
		return nil, &Error{Kind: Unauthenticated, Detail: "unknown user, wrong PIN or inactive account"}
	}
	db := s.db.WithContext(ctx)
	key := foldKey(primaryID)
	now := s.clock()
	var f SignInFailures
	err := db.Where("institution = ? AND primary_id_key = ?", inst, key).Take(&f).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, err
	}
	if f.LockedUntil.After(now) {
		return nil, locked(f.LockedUntil.Sub(now))
	}
	var u User
	err = db.Where("institution = ? AND primary_id_key = ?", inst, key).Take(&u).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, err
	}
	if s.pinMatches(u.PINHash, pin) && u.Status == StatusActive {
		if f.Failures > 0 {
			if err := db.Where("institution = ? AND primary_id_key = ?", inst, key).Delete(&SignInFailures{}).Error; err != nil {
				return nil, err
			}
		}
		return loadUserByID(db, inst, u.ID)
	}
	if err := s.countFailure(db, inst, key, now); err != nil {
		return nil, err
	}
	return nil, &Error{Kind: Unauthenticated, Detail: "unknown user, wrong PIN or inactive account"}
}

// countFailure adds one failure atomically and locks the account when the
// count reaches the limit.
func (s *Service) countFailure(db *gorm.DB, inst, key string, now time.Time) error {
	row := SignInFailures{Institution: inst, PrimaryIDKey: key, Failures: 1, LockedUntil: time.Unix(0, 0).UTC()}
	err := db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "institution"}, {Name: "primary_id_key"}},
		DoUpdates: clause.Assignments(map[string]any{"failures": gorm.Expr("pk_signin_failures.failures + 1")}),
	}).Create(&row).Error
	if err != nil {
		return err
	}
	return db.Model(&SignInFailures{}).
		Where("institution = ? AND primary_id_key = ? AND failures >= ?", inst, key, s.maxFails).
		Updates(map[string]any{"failures": 0, "locked_until": now.Add(s.lockout)}).Error
}

func locked(d time.Duration) *Error {
	secs := int(math.Ceil(d.Seconds()))
	return &Error{Kind: Locked, Detail: "too many failed sign-ins: the account is locked for a while", RetryAfter: time.Duration(secs) * time.Second}
}
