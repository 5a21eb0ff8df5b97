package account

import (
	"context"

	"github.com/patronkit/patronkit/circulation"
)

// Loans answers a page of the patron's open loans (limit of them from
// offset, by due date; limit 0 answers only the count) and how many there
// are in all. An overdue loan shows the fine it accrues.
func (s *Service) Loans(ctx context.Context, inst, primaryID string, limit, offset int) ([]circulation.Loan, int64, error) {
	return s.circ.LoansPage(ctx, inst, primaryID, true, limit, offset)
}

// LoanHistory answers a page of the patron's past loans (returned or
// lost), as Loans does.
func (s *Service) LoanHistory(ctx context.Context, inst, primaryID string, limit, offset int) ([]circulation.Loan, int64, error) {
	return s.circ.LoansPage(ctx, inst, primaryID, false, limit, offset)
}

// Renew renews the patron's own loans: those named by loanIDs, or every
// open loan when loanIDs is nil. Each is renewed on its own, as the terms
// of use and the patron's blocks allow; the results say which were
// renewed and, for the others, every reason (a loan that is not an open
// loan of the patron's is one). The list is never nil.
func (s *Service) Renew(ctx context.Context, inst, primaryID string, loanIDs []string) ([]circulation.RenewResult, error) {
	res, err := s.circ.RenewMany(ctx, inst, primaryID, loanIDs)
	if err != nil {
		return nil, err
	}
	if res == nil {
		res = []circulation.RenewResult{}
	}
	return res, nil
}
