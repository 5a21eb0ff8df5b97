package circulation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
)

// DeclareOverdueLost declares lost, as DeclareLost does, every open loan
// (of every institution) whose LostAfter has passed: its terms give the
// days overdue until lost. It returns how many loans it declared lost.
// Several instances may run it at once: a loan that another closed first
// is skipped. The kit's Start runs it periodically.
func (s *Service) DeclareOverdueLost(ctx context.Context) (int, error) {
	now := s.loanClock()
	db := s.conn(ctx)
	n := 0
	for {
		var due []Loan
		if err := db.Select("id", "institution", "item_id").Where("status = ? AND lost_after <= ?", LoanOpen, now).
			Order("lost_after, id").Limit(200).Find(&due).Error; err != nil {
			return n, err
		}
		done := 0
		for _, l := range due {
			var item Item
			err := db.Where("institution = ? AND id = ?", l.Institution, l.ItemID).Take(&item).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				s.log.Warn("circulation: an overdue loan's item is gone; it is not declared lost", "loan_id", l.ID)
				continue
			}
			if err != nil {
				return n, err
			}
			_, err = s.closeItemLoan(withJobActor(ctx, l.Institution, "lost-items"), l.Institution, &item, LoanLost)
			if pe, ok := fault.As(err); ok && (pe.Kind == fault.NotFound || pe.Kind == fault.Stale) {
				// Returned or declared lost meanwhile, here or elsewhere.
				continue
			}
			if err != nil {
				return n, err
			}
			n++
			done++
		}
		if len(due) < 200 || done == 0 {
			return n, nil
		}
	}
}

// returnLost takes back an item that was declared lost: its last loan,
// closed as lost, is completed (returned now), the item is available
// again, and what remains of the loan's lost-item fee is waived. The
// patron is charged the overdue fine of the time from the due date to the
// day the item was declared lost (the lost-item fee stood for the time
// after); what was paid of the lost-item fee stays paid.
func (s *Service) returnLost(ctx context.Context, inst string, item *Item) (*Loan, error) {
	var loan Loan
	err := s.conn(ctx).Where("institution = ? AND item_id = ? AND status = ?", inst, item.ID, LoanLost).
		Order("returned_at DESC, id DESC").Take(&loan).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("item %s is not on loan", item.Barcode)
	}
	if err != nil {
		return nil, err
	}
	terms, err := s.loanTerms(ctx, inst, &loan, nil, item)
	if err != nil {
		return nil, err
	}
	lostAt := loan.UpdatedAt
	if loan.ReturnedAt != nil {
		lostAt = *loan.ReturnedAt
	}
	var fine int64
	err = s.retry(ctx, func(ctx context.Context, tx *gorm.DB) error {
		now := s.loanClock()
		res := tx.Model(&Item{}).Where("id = ? AND status = ?", item.ID, StatusLost).
			Updates(map[string]any{"status": StatusAvailable, "version": gorm.Expr("version + 1"), "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return notFound("item %s is not lost any more", item.Barcode)
		}
		res = tx.Model(&Loan{}).Where("id = ? AND version = ? AND status = ?", loan.ID, loan.Version, LoanLost).
			Updates(map[string]any{"status": LoanComplete, "returned_at": now, "version": loan.Version + 1, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return stale("the loan of item %s changed while it was being returned; try again", item.Barcode)
		}
		if err := s.auditLoanClosed(ctx, &loan, LoanComplete, loan.ReturnedAt, now); err != nil {
			return err
		}
		loan.Status, loan.ReturnedAt, loan.Version, loan.UpdatedAt = LoanComplete, &now, loan.Version+1, now
		var fees []Fee
		if err := tx.Where("institution = ? AND loan_id = ? AND type = ? AND status = ?", inst, loan.ID, FeeLostItem, FeeOpen).
			Find(&fees).Error; err != nil {
			return err
		}
		if err := s.waiveRest(ctx, tx, fees, fmt.Sprintf("item %s came back", item.Barcode), now); err != nil {
			return err
		}
		if _, err := s.holdForNext(ctx, tx, inst, item, StatusAvailable, now); err != nil {
			return err
		}
		fine = s.overdueFine(terms, loan.DueAt, lostAt)
		_, err := s.chargeLoan(ctx, tx, &loan, FeeOverdueFine, fine, terms.Currency,
			fmt.Sprintf("Overdue fine for %s, due %s, declared lost %s", loan.ItemBarcode, loan.DueAt.UTC().Format(time.RFC3339), lostAt.UTC().Format(time.RFC3339)), now)
		return err
	})
	if err != nil {
		return nil, s.translate(err)
	}
	if fine > 0 {
		loan.AccruedFine, loan.FineCurrency = fine, terms.Currency
	}
	return &loan, nil
}
