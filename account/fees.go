package account

import (
	"context"

	"github.com/patronkit/patronkit/circulation"
)

// Fees is what the patron owes.
type Fees struct {
	// Fees are the open fees.
	Fees []circulation.Fee
	// Balance is what the patron owes on them, in minor units per
	// currency.
	Balance map[string]int64
	// Accruing are the fines accruing on overdue loans, per currency: not
	// owed yet, charged when the loans come back.
	Accruing map[string]int64
}

// Fees answers the patron's open fees, their balance and the fines
// accruing on their overdue loans.
func (s *Service) Fees(ctx context.Context, inst, primaryID string) (*Fees, error) {
	fees, err := s.circ.Fees(ctx, inst, primaryID, true)
	if err != nil {
		return nil, err
	}
	bal, err := s.circ.Balance(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	loans, err := s.circ.Loans(ctx, inst, primaryID, true)
	if err != nil {
		return nil, err
	}
	accruing := map[string]int64{}
	for _, l := range loans {
		if l.AccruedFine > 0 {
			accruing[l.FineCurrency] = circulation.AddOwed(accruing[l.FineCurrency], l.AccruedFine)
		}
	}
	return &Fees{Fees: fees, Balance: bal, Accruing: accruing}, nil
}
