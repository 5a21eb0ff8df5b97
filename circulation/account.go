package circulation

import "context"

// Account is a patron's circulation at a glance: what their own account
// page shows.
type Account struct {
	// Loans is the number of open loans, OverdueLoans of those overdue.
	Loans        int `json:"loans"`
	OverdueLoans int `json:"overdue_loans"`
	// Requests is the number of active requests (waiting or on the hold
	// shelf), OnHoldShelf of those ready to pick up.
	Requests    int `json:"requests"`
	OnHoldShelf int `json:"on_hold_shelf"`
	// Balance is what the patron owes, per currency (as Balance).
	Balance map[string]int64 `json:"-"`
}

// Account sums up the loans, requests and balance of the patron
// primaryID. The read is on the audit trail ("account") unless the patron
// reads their own.
func (s *Service) Account(ctx context.Context, inst, primaryID string) (*Account, error) {
	uid, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	db := s.conn(ctx)
	var a Account
	var loans struct {
		N       int
		Overdue int
	}
	if err := db.Model(&Loan{}).Select("COUNT(*) AS n, COALESCE(SUM(CASE WHEN due_at < ? THEN 1 ELSE 0 END), 0) AS overdue", s.loanClock()).
		Where("institution = ? AND user_id = ? AND status = ?", inst, uid, LoanOpen).Scan(&loans).Error; err != nil {
		return nil, err
	}
	a.Loans, a.OverdueLoans = loans.N, loans.Overdue
	var reqs []struct {
		Status string
		N      int
	}
	if err := db.Model(&Request{}).Select("status, COUNT(*) AS n").
		Where("institution = ? AND user_id = ? AND status IN ?", inst, uid, activeRequests).Group("status").Scan(&reqs).Error; err != nil {
		return nil, err
	}
	for _, r := range reqs {
		a.Requests += r.N
		if r.Status == RequestOnHoldShelf {
			a.OnHoldShelf += r.N
		}
	}
	if a.Balance, err = s.balance(db, inst, uid); err != nil {
		return nil, err
	}
	if err := s.auditRead(ctx, inst, pid, "account", nil); err != nil {
		return nil, err
	}
	return &a, nil
}
