package circulation

import (
	"context"

	"github.com/patronkit/patronkit/patron"
)

// Limits are the limits of the terms of use that hold for a patron
// whatever they borrow: what a self-check kiosk shows beside their
// counts. A nil limit is one the terms do not set for the patron.
type Limits struct {
	// MaxLoans is the most loans the patron may hold at once
	// (Terms.MaxLoans), when every rule that may give the terms of their
	// loans sets the same limit; nil when none applies, one of them sets
	// none, or they differ (the limit then depends on the item).
	MaxLoans *int `json:"max_loans,omitempty"`
	// MaxOverdueLoans is the most overdue loans the patron may have
	// before they are blocked (BlockLimit.MaxOverdueLoans of their user
	// group).
	MaxOverdueLoans *int `json:"max_overdue_loans,omitempty"`
	// MaxBalance is the most the patron may owe before they are blocked,
	// in minor units of Currency (BlockLimit.MaxBalance of their user
	// group).
	MaxBalance *int64 `json:"max_balance,omitempty"`
	Currency   string `json:"currency,omitempty"`
}

// LimitsOf returns the limits of the terms of use that hold for the
// patron u (their user group): the most loans, from the rules that may
// apply to their loans (those of their group, up to the first that
// matches any item), and the overdue and balance limits of the first
// block limit of their group. Reading them is not on the audit trail:
// they are the terms of a group, not the patron's data.
func (s *Service) LimitsOf(ctx context.Context, inst string, u *patron.User) (Limits, error) {
	db := s.conn(ctx)
	rules, err := loadRuleList(db, inst)
	if err != nil {
		return Limits{}, err
	}
	var out Limits
	seen := false
	same := true
	max := 0
	for _, r := range rules {
		if !matches(r.UserGroup, u.UserGroup) {
			continue
		}
		if !seen {
			max, seen = r.Terms.MaxLoans, true
		} else if r.Terms.MaxLoans != max {
			same = false
		}
		if matches(r.ItemPolicy, "") && matches(r.Library, "") && matches(r.MaterialType, "") {
			break // no later rule gives the terms of this patron's loans
		}
	}
	if seen && same && max > 0 {
		out.MaxLoans = &max
	}
	limits, err := loadLimits(db, inst)
	if err != nil {
		return Limits{}, err
	}
	for _, l := range limits {
		if matches(l.UserGroup, u.UserGroup) {
			out.MaxOverdueLoans, out.MaxBalance = l.MaxOverdueLoans, l.MaxBalance
			if l.MaxBalance != nil {
				out.Currency = l.Currency
			}
			break
		}
	}
	return out, nil
}
