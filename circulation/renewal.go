package circulation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// RenewResult is the outcome of renewing one loan.
type RenewResult struct {
	// LoanID names the loan, as the caller did.
	LoanID string `json:"loan_id"`
	// Renewed tells whether the loan was renewed; when not, Reasons lists
	// every reason.
	Renewed bool     `json:"renewed"`
	Reasons []string `json:"reasons,omitempty"`
	// Causes are the same reasons, one for one, with their codes and
	// named values (see ReasonText).
	Causes []fault.Reason `json:"causes,omitempty"`
	// Blocks are the blocks among the reasons a loan was not renewed.
	Blocks []Block `json:"blocks,omitempty"`
	// DueAt is the loan's due date after the attempt (UTC); zero when the
	// loan was not found.
	DueAt time.Time `json:"due_date,omitzero"`
}

// Renew renews one open loan and returns it. The terms of use that apply
// now give the renewal period (a RenewalPeriod of 0 renews by the loan
// period, or to the fixed due date), counted from now; the new due date is
// never earlier than the current one. The renewal is Refused, with every
// reason, when the loan was renewed as often as the terms allow, the
// patron is blocked, inactive or expired, no terms apply, or the due date
// would not move. An unknown or returned loan is NotFound.
func (s *Service) Renew(ctx context.Context, inst, loanID string) (*Loan, error) {
	ps, err := s.patronService()
	if err != nil {
		return nil, err
	}
	loan, err := s.openLoan(ctx, inst, loanID)
	if err != nil {
		return nil, err
	}
	user, err := s.loanUser(ctx, ps, inst, loan)
	if err != nil {
		return nil, err
	}
	bs, err := s.blocks(ctx, inst, user)
	if err != nil {
		return nil, err
	}
	blocked, _ := stopping(bs, ActionRenew)
	out, reasons, err := s.renew(ctx, inst, user, blocked, loan)
	if err != nil {
		return nil, err
	}
	if len(reasons) > 0 {
		return nil, refusal(fmt.Sprintf("loan %s of item %s cannot be renewed", loan.ID, loan.ItemBarcode), reasons, blocked)
	}
	return out, nil
}

// renewResult is the result of loan id, due at due, with the reasons it
// was not renewed (none when it was).
func renewResult(id string, due time.Time, reasons ...fault.Reason) RenewResult {
	return RenewResult{LoanID: id, DueAt: due, Reasons: fault.Texts(reasons), Causes: reasons}
}

// RenewMany renews loans of the patron primaryID: those named by ids, or
// every open loan when ids is nil. Each loan is renewed as Renew does, on
// its own; the results, in the order of ids (or of due dates), say which
// were renewed and why the others were not. A loan that is not an open
// loan of the patron gets a reason saying so. The error is for an unknown
// patron or a failure of the database.
func (s *Service) RenewMany(ctx context.Context, inst, primaryID string, ids []string) ([]RenewResult, error) {
	return s.RenewManyIn(ctx, inst, primaryID, ids, nil)
}

// RenewManyIn is RenewMany for a caller whose renewals are limited to
// some libraries: a loan of a library that allowed (asked once per
// library) refuses is answered as not renewed, with that reason. A nil
// allowed allows every library.
func (s *Service) RenewManyIn(ctx context.Context, inst, primaryID string, ids []string, allowed func(library string) (bool, error)) ([]RenewResult, error) {
	ps, err := s.patronService()
	if err != nil {
		return nil, err
	}
	user, err := ps.GetSegments(ctx, inst, primaryID, patron.KindBlocks)
	if err != nil {
		return nil, err
	}
	db := s.conn(ctx)
	var loans []Loan
	q := db.Where("institution = ? AND user_id = ? AND status = ?", inst, user.ID, LoanOpen)
	if ids != nil {
		// An id no record can hold is no loan of the patron's: it is
		// answered so below, without asking the database.
		q = q.Where("id IN ?", append([]string{""}, slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !patron.Findable(id) })...))
	}
	if err := q.Order("due_at, id").Find(&loans).Error; err != nil {
		return nil, err
	}
	if ids == nil {
		for _, l := range loans {
			ids = append(ids, l.ID)
		}
	}
	bs, err := s.blocks(ctx, inst, user)
	if err != nil {
		return nil, err
	}
	blocked, _ := stopping(bs, ActionRenew)
	// A loan named twice is renewed once and answered once.
	seen := map[string]bool{}
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool {
		dup := seen[id]
		seen[id] = true
		return dup
	})
	out := make([]RenewResult, 0, len(ids))
	libraries := map[string]bool{}
	for _, id := range ids {
		i := slices.IndexFunc(loans, func(l Loan) bool { return l.ID == id })
		if i < 0 {
			out = append(out, renewResult(id, time.Time{}, cause(ReasonNoOpenLoan, "primary_id", user.PrimaryID, "loan_id", id)))
			continue
		}
		if lib := loans[i].Library; allowed != nil {
			ok, known := libraries[lib]
			if !known {
				if ok, err = allowed(lib); err != nil {
					return out, err
				}
				libraries[lib] = ok
			}
			if !ok {
				out = append(out, renewResult(id, loans[i].DueAt, cause(ReasonLibraryNotAllowed, "library", lib)))
				continue
			}
		}
		l, reasons, err := s.renew(ctx, inst, user, blocked, &loans[i])
		if pe, ok := fault.As(err); ok {
			why := fault.Reason{Text: pe.Detail}
			if pe.Kind == fault.Stale {
				why = cause(ReasonLoanChanged, "loan_id", id)
			}
			out = append(out, renewResult(id, loans[i].DueAt, why))
			continue
		}
		if err != nil {
			return out, err
		}
		r := renewResult(id, loans[i].DueAt, reasons...)
		r.Renewed = len(reasons) == 0
		if l != nil {
			r.DueAt = l.DueAt
		} else {
			r.Blocks = blocked
		}
		out = append(out, r)
	}
	return out, nil
}

// renew renews loan for user, or gives the reasons it cannot: first
// those of the blocks that stop renewals (blocked). The error is for
// failures (and a Stale loan).
func (s *Service) renew(ctx context.Context, inst string, user *patron.User, blocked []Block, loan *Loan) (*Loan, []fault.Reason, error) {
	now := s.loanClock()
	var reasons []fault.Reason
	for _, b := range blocked {
		reasons = append(reasons, b.Cause)
	}
	// By id: staff may have changed the item's barcode since the loan.
	var item Item
	if err := s.conn(ctx).Where("institution = ? AND id = ?", inst, loan.ItemID).Take(&item).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, []fault.Reason{cause(ReasonItemGone, "loan_id", loan.ID)}, nil
		}
		return nil, nil, err
	}
	terms, due, err := s.TermsFor(ctx, inst, user, &item, now)
	if pe, ok := fault.As(err); ok && pe.Kind == fault.Refused {
		return nil, append(reasons, pe.Why()...), nil
	} else if err != nil {
		return nil, nil, err
	}
	if others, err := s.othersWaiting(s.conn(ctx), inst, &item, loan.UserID); err != nil {
		return nil, nil, err
	} else if others {
		reasons = append(reasons, cause(ReasonItemRequested, "barcode", item.Barcode))
	}
	if loan.Renewals >= terms.Renewals {
		reasons = append(reasons, cause(ReasonMaxRenewals, "renewals", strconv.Itoa(loan.Renewals), "limit", strconv.Itoa(terms.Renewals)))
	}
	if terms.RenewalPeriod > 0 {
		lib, err := libraryRow(s.conn(ctx), inst, item.Library)
		if err != nil {
			return nil, nil, s.translate(err)
		}
		due, err = dueDate(s.conn(ctx), lib, Terms{LoanPeriod: terms.RenewalPeriod, LoanPeriodUnit: terms.RenewalPeriodUnit}, now)
		if err != nil {
			return nil, nil, s.translate(err)
		}
	}
	if !due.After(loan.DueAt) {
		reasons = append(reasons, cause(ReasonDueDateUnchanged, "due_date", loan.DueAt.Format(time.RFC3339)))
	}
	if len(reasons) > 0 {
		return nil, reasons, nil
	}
	charges := loan.Charges
	if !loan.ChargesSet {
		charges = chargesOf(terms)
	}
	lost := lostAfter(charges, due)
	err = s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		res := tx.Model(&Loan{}).
			Where("id = ? AND version = ? AND status = ? AND renewals < ?", loan.ID, loan.Version, LoanOpen, terms.Renewals).
			Updates(map[string]any{"due_at": due, "renewals": loan.Renewals + 1, "version": loan.Version + 1, "updated_at": now,
				"lost_after": lost})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return stale("loan %s changed while it was being renewed: read it again", loan.ID)
		}
		return s.auditChange(ctx, inst, patron.AuditUpdate, user.PrimaryID, "loans", map[string]any{"loan_id": loan.ID,
			"item_barcode": loan.ItemBarcode, "due_date": change(stamp(loan.DueAt), stamp(due)),
			"renewals": change(loan.Renewals, loan.Renewals+1)})
	})
	if err != nil {
		return nil, nil, s.translate(err)
	}
	out := *loan
	out.DueAt, out.Renewals, out.Version, out.UpdatedAt, out.LostAfter = due, loan.Renewals+1, loan.Version+1, now, lost
	out.Overdue = false
	return &out, nil, nil
}
