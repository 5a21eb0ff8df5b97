package circulation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// CheckIn returns the item with barcode: its open loan is completed and
// the item is available again. It returns the completed loan. An item not
// on loan is NotFound (no open loan).
//
// A loan returned after its due date and grace period is charged an
// overdue fine under the terms of use it was lent on (its Charges):
// OverdueFine for every started day or hour
// since the due date, capped by MaxFine, recorded in the same transaction
// as a fee of type FeeOverdueFine of the loan. The returned loan's
// AccruedFine and FineCurrency say what was charged.
func (s *Service) CheckIn(ctx context.Context, inst, barcode string) (*Loan, error) {
	return s.closeLoan(ctx, inst, barcode, LoanComplete)
}

// DeclareLost closes the open loan of the item with barcode as lost: the
// loan's status becomes LoanLost (ReturnedAt is the date it was closed),
// the item's status StatusLost, and the patron is charged the terms'
// LostItemFee, if any, as a fee of type FeeLostItem of the loan (no
// overdue fine). It returns the closed loan. An item not on loan is
// NotFound.
func (s *Service) DeclareLost(ctx context.Context, inst, barcode string) (*Loan, error) {
	return s.closeLoan(ctx, inst, barcode, LoanLost)
}

// closeLoan ends the open loan of an item as returned (LoanComplete) or
// lost (LoanLost), charging what the loan's terms say.
func (s *Service) closeLoan(ctx context.Context, inst, barcode, status string) (*Loan, error) {
	item, err := s.Item(ctx, inst, barcode)
	if err != nil {
		return nil, err
	}
	l, err := s.closeItemLoan(ctx, inst, item, status)
	if status == LoanComplete && item.Status == StatusLost && errors.Is(err, fault.ErrNotFound) {
		return s.returnLost(ctx, inst, item)
	}
	return l, err
}

// closeItemLoan closes the open loan of item as complete or lost.
func (s *Service) closeItemLoan(ctx context.Context, inst string, item *Item, status string) (*Loan, error) {
	// The terms are read before the transaction (they need the patron
	// service and the catalog); the transaction checks that the loan they
	// were read for is still the item's open loan.
	var terms Terms
	var il itemLoanRow
	err := s.conn(ctx).Where("item_id = ? AND institution = ?", item.ID, inst).Take(&il).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("item %s is not on loan", item.Barcode)
	}
	if err != nil {
		return nil, err
	}
	var pre Loan
	if err := s.conn(ctx).Where("id = ?", il.LoanID).Take(&pre).Error; err == nil {
		if terms, err = s.loanTerms(ctx, inst, &pre, nil, item); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, err
	}
	var loan Loan
	var charged int64
	err = s.retry(ctx, func(ctx context.Context, tx *gorm.DB) error {
		charged = 0
		// Read without a lock; every write below is conditional, and a
		// concurrent check-in makes the second fail and roll back.
		var il itemLoanRow
		err := tx.Where("item_id = ? AND institution = ?", item.ID, inst).Take(&il).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return notFound("item %s is not on loan", item.Barcode)
		}
		if err != nil {
			return err
		}
		if err := tx.Where("id = ? AND status = ?", il.LoanID, LoanOpen).Take(&loan).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return notFound("item %s is not on loan", item.Barcode)
			}
			return err
		}
		if loan.ID != pre.ID {
			return stale("item %s was returned and lent again meanwhile; try again", item.Barcode)
		}
		now := s.loanClock()
		if err := tx.Model(&userLoansRow{}).Where("user_id = ? AND open_loans > 0", loan.UserID).
			Update("open_loans", gorm.Expr("open_loans - 1")).Error; err != nil {
			return err
		}
		res := tx.Where("item_id = ? AND loan_id = ?", item.ID, loan.ID).Delete(&itemLoanRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return notFound("item %s was returned at the same time", item.Barcode)
		}
		res = tx.Model(&Loan{}).Where("id = ? AND version = ?", loan.ID, loan.Version).
			Updates(map[string]any{"status": status, "returned_at": now, "version": loan.Version + 1, "updated_at": now, "lost_after": nil})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return stale("the loan changed while it was being returned; try again")
		}
		if err := s.auditLoanClosed(ctx, &loan, status, nil, now); err != nil {
			return err
		}
		itemStatus := StatusAvailable
		if status == LoanLost {
			itemStatus = StatusLost
		}
		if err := tx.Model(&Item{}).Where("id = ? AND status = ?", item.ID, StatusOnLoan).
			Updates(map[string]any{"status": itemStatus, "version": gorm.Expr("version + 1"), "updated_at": now}).Error; err != nil {
			return err
		}
		if itemStatus == StatusAvailable {
			// Back on the shelf, or on the hold shelf for the first who
			// waits for it.
			if _, err := s.holdForNext(ctx, tx, inst, item, StatusAvailable, now); err != nil {
				return err
			}
		}
		loan.Status, loan.ReturnedAt, loan.Version, loan.UpdatedAt, loan.LostAfter = status, &now, loan.Version+1, now, nil
		if status == LoanLost {
			charged = s.capFee(terms.LostItemFee)
			_, err = s.chargeLoan(ctx, tx, &loan, FeeLostItem, charged, terms.Currency, "Lost item "+loan.ItemBarcode, now)
		} else {
			charged = s.overdueFine(terms, loan.DueAt, now)
			_, err = s.chargeLoan(ctx, tx, &loan, FeeOverdueFine, charged, terms.Currency,
				fmt.Sprintf("Overdue fine for %s, due %s, returned %s", loan.ItemBarcode, loan.DueAt.UTC().Format(time.RFC3339), now.Format(time.RFC3339)), now)
		}
		return err
	})
	if err != nil {
		return nil, s.translate(err)
	}
	if charged > 0 {
		loan.AccruedFine, loan.FineCurrency = charged, terms.Currency
	}
	return &loan, nil
}

// auditLoanClosed records, within its transaction, that loan l (as it
// was) was closed as status (complete or lost) at now: an update of
// "loans" of its patron whose details are the loan's id, its item's
// barcode, and its status and return date ({"old", "new"}; returned was
// the old return date, nil while it was open).
func (s *Service) auditLoanClosed(ctx context.Context, l *Loan, status string, returned *time.Time, now time.Time) error {
	if s.patrons == nil {
		return nil
	}
	pid, err := s.subject(ctx, l.Institution, l.UserID, l.PrimaryID)
	if err != nil {
		return err
	}
	return s.auditChange(ctx, l.Institution, patron.AuditUpdate, pid, "loans", map[string]any{"loan_id": l.ID,
		"item_barcode": l.ItemBarcode, "status": change(l.Status, status), "return_date": change(stampOf(returned), stamp(now))})
}
