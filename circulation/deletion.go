package circulation

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/patron"
)

// DeletionGuard objects to deleting a patron who has open loans ("has N
// open loans") or owes money ("owes 12.50 USD", one reason per currency).
// Register it with the patron service's AddDeletionGuard.
func (s *Service) DeletionGuard() patron.DeletionGuard {
	return patron.DeletionGuardFunc(func(ctx context.Context, u *patron.User) ([]string, error) {
		db := latest(s.conn(ctx))
		var reasons []string
		for _, q := range []struct {
			what  string
			count *gorm.DB
		}{
			{"open loan", db.Model(&Loan{}).Where("institution = ? AND user_id = ? AND status = ?", u.Institution, u.ID, LoanOpen)},
			{"active request", db.Model(&Request{}).Where("institution = ? AND user_id = ? AND status IN ?", u.Institution, u.ID, activeRequests)},
		} {
			var n int64
			if err := q.count.Count(&n).Error; err != nil {
				return nil, err
			}
			switch {
			case n == 1:
				reasons = append(reasons, "has 1 "+q.what)
			case n > 1:
				reasons = append(reasons, fmt.Sprintf("has %d %ss", n, q.what))
			}
		}
		owed, err := s.balance(db, u.Institution, u.ID)
		if err != nil {
			return nil, err
		}
		currencies := make([]string, 0, len(owed))
		for c := range owed {
			currencies = append(currencies, c)
		}
		slices.Sort(currencies)
		for _, c := range currencies {
			if owed[c] > 0 {
				reasons = append(reasons, "owes "+FormatMoney(owed[c], c))
			}
		}
		return reasons, nil
	})
}

// latest makes the reads of db see the latest committed rows: a locking
// read on MySQL, whose plain reads within a transaction see the snapshot
// taken at its first read (a host's transaction may have read before it
// deleted a user, and a check-out committed since). PostgreSQL's reads see
// what was committed before each statement, and SQLite lets one writer in
// at a time.
func latest(db *gorm.DB) *gorm.DB {
	if db.Dialector.Name() != "mysql" {
		return db
	}
	return db.Clauses(shareMode{}).Session(&gorm.Session{})
}

// shareMode is MySQL's locking read, which MariaDB spells only LOCK IN
// SHARE MODE (not FOR SHARE, as clause.Locking writes it).
type shareMode struct{}

func (shareMode) Name() string                 { return "FOR" }
func (shareMode) Build(b clause.Builder)       { b.WriteString("LOCK IN SHARE MODE") }
func (shareMode) MergeClause(c *clause.Clause) { c.Name, c.Expression = "", shareMode{} }
