package circulation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// ChangeDueDate sets the due date of the open loan loanID to due, as
// staff do by hand (a loan extended for a patron in hospital, brought
// forward for a recall), and returns the loan. Unlike Renew it follows no
// terms of use and counts no renewal; the day it becomes lost by itself
// moves with it. The change is on the audit trail ("loans": the loan's
// id, its item's barcode and the due date's old and new values).
//
// A due date that is not after now is Invalid (field due_date); a loan
// returned or lost is Refused; an unknown loan is NotFound.
func (s *Service) ChangeDueDate(ctx context.Context, inst, loanID string, due time.Time) (*Loan, error) {
	var loan Loan
	err := s.conn(ctx).Where("institution = ? AND id = ?", inst, strings.TrimSpace(loanID)).Take(&loan).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("no loan %s", loanID)
	}
	if err != nil {
		return nil, err
	}
	now := s.loanClock()
	if !due.After(now) {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the due date is not valid",
			Fields: []fault.FieldError{{Field: "due_date", Code: "out_of_range", Message: "must be later than now (" + now.UTC().Format(time.RFC3339) + ")"}}}
	}
	if loan.Status != LoanOpen {
		return nil, refused(fmt.Sprintf("the due date of loan %s cannot be changed", loan.ID), cause(ReasonLoanNotOpen, "loan_id", loan.ID, "status", loan.Status))
	}
	due = due.UTC()
	var lost *time.Time
	if loan.LostAfter != nil {
		t := loan.LostAfter.Add(due.Sub(loan.DueAt)).UTC()
		lost = &t
	}
	err = s.retry(ctx, func(ctx context.Context, tx *gorm.DB) error {
		res := tx.Model(&Loan{}).Where("id = ? AND version = ? AND status = ?", loan.ID, loan.Version, LoanOpen).
			Updates(map[string]any{"due_at": due, "version": loan.Version + 1, "updated_at": now, "lost_after": lost})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return stale("loan %s changed meanwhile: read it again", loan.ID)
		}
		if s.patrons == nil {
			return nil
		}
		pid, err := s.subject(ctx, inst, loan.UserID, loan.PrimaryID)
		if err != nil {
			return err
		}
		return s.auditChange(ctx, inst, patron.AuditUpdate, pid, "loans", map[string]any{"loan_id": loan.ID,
			"item_barcode": loan.ItemBarcode, "due_date": change(stamp(loan.DueAt), stamp(due))})
	})
	if err != nil {
		return nil, s.translate(err)
	}
	loan.DueAt, loan.Version, loan.UpdatedAt, loan.LostAfter = due, loan.Version+1, now, lost
	loan.LoanedAt = loan.LoanedAt.UTC()
	return &loan, nil
}
