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
// open loans"), active requests ("has 1 active request") or owes money
// ("owes 12.50 USD", one reason per currency). Register it with the
// patron service's AddDeletionGuard. It answers for a batch of users in
// three queries (patron.BatchDeletionGuard).
func (s *Service) DeletionGuard() patron.DeletionGuard { return deletionGuard{s} }

// deletionGuard is the DeletionGuard of circulation.
type deletionGuard struct{ s *Service }

// DeletionReasons implements patron.DeletionGuard.
func (g deletionGuard) DeletionReasons(ctx context.Context, u *patron.User) ([]string, error) {
	rs, err := g.DeletionReasonsMany(ctx, []*patron.User{u})
	return rs[u.ID], err
}

// DeletionReasonsMany implements patron.BatchDeletionGuard.
func (g deletionGuard) DeletionReasonsMany(ctx context.Context, users []*patron.User) (map[string][]string, error) {
	out := map[string][]string{}
	byInst := map[string][]string{}
	for _, u := range users {
		byInst[u.Institution] = append(byInst[u.Institution], u.ID)
	}
	db := latest(g.s.conn(ctx))
	for inst, ids := range byInst {
		for _, q := range []struct {
			what  string
			count *gorm.DB
		}{
			{"open loan", db.Model(&Loan{}).Where("institution = ? AND user_id IN ? AND status = ?", inst, ids, LoanOpen)},
			{"active request", db.Model(&Request{}).Where("institution = ? AND user_id IN ? AND status IN ?", inst, ids, activeRequests)},
		} {
			var rows []struct {
				UserID string
				N      int64
			}
			if err := q.count.Select("user_id, COUNT(*) AS n").Group("user_id").Scan(&rows).Error; err != nil {
				return nil, err
			}
			for _, r := range rows {
				switch {
				case r.N == 1:
					out[r.UserID] = append(out[r.UserID], "has 1 "+q.what)
				case r.N > 1:
					out[r.UserID] = append(out[r.UserID], fmt.Sprintf("has %d %ss", r.N, q.what))
				}
			}
		}
		owed, err := g.s.balances(db, inst, ids)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			currencies := make([]string, 0, len(owed[id]))
			for c := range owed[id] {
				currencies = append(currencies, c)
			}
			slices.Sort(currencies)
			for _, c := range currencies {
				if owed[id][c] > 0 {
					out[id] = append(out[id], "owes "+FormatMoney(owed[id][c], c))
				}
			}
		}
	}
	return out, nil
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
