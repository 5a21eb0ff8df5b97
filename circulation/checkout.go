package circulation

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// CheckOutOptions are the choices of a check-out.
type CheckOutOptions struct {
	// Proxy is the primary_id of a user borrowing on the patron's behalf:
	// they must hold a proxy-for relation, not expired, naming the
	// patron. The loan is the patron's and records the proxy.
	Proxy string
}

// CheckOut lends the item with barcode to the patron primaryID and returns
// the loan. The terms of use (TermsFor) give its due date. The check-out is
// Refused, with every reason listed, when the item is not available, the
// patron is inactive, expired (expiry_date before today) or under an active
// manual block, the patron already holds the most loans the terms allow, no
// terms apply, or a proxy (o.Proxy) has no active proxy-for relation naming
// the patron. Unknown users and items are NotFound. See Loan for how
// concurrent check-outs are kept apart. A loan made is on the audit
// trail as its creation ("loans"); a refusal, whose reasons tell of the
// patron's record, as a read of the record ("user").
func (s *Service) CheckOut(ctx context.Context, inst, primaryID, barcode string, o CheckOutOptions) (_ *Loan, err error) {
	ps, err := s.patronService()
	if err != nil {
		return nil, err
	}
	// The blocks, and the contacts the loan receipt goes to; the item
	// meanwhile. The loan made is on the audit trail; a refusal, whose
	// reasons tell of the patron's record, is there as the read of it.
	var user *patron.User
	var item *Item
	if err := both(ctx, func() (err error) {
		user, err = ps.LoadSegments(ctx, inst, primaryID, patron.KindBlocks, patron.KindEmails, patron.KindPhones)
		return err
	}, func() (err error) {
		item, err = s.Item(ctx, inst, barcode)
		return err
	}); err != nil {
		return nil, err
	}
	defer func() {
		if _, ok := fault.As(err); ok {
			if aerr := ps.RecordAudit(ctx, inst, patron.AuditRead, user.PrimaryID, "user", ""); aerr != nil {
				err = aerr
			}
		}
	}()
	now := s.loanClock()
	// The blocks and the patron's open loans (their counter row, which
	// every patron with loans has); meanwhile the terms.
	var bs []Block
	var terms Terms
	var due time.Time
	var termsErr error
	var open []int
	if err := both(ctx, func() (err error) {
		if bs, err = s.blocks(ctx, inst, user); err != nil {
			return err
		}
		return s.conn(ctx).Model(&userLoansRow{}).Where("user_id = ?", user.ID).Limit(1).Pluck("open_loans", &open).Error
	}, func() error {
		terms, due, termsErr = s.TermsFor(ctx, inst, user, item, now)
		if pe, ok := fault.As(termsErr); termsErr != nil && (!ok || pe.Kind != fault.Refused) {
			return termsErr
		}
		return nil
	}); err != nil {
		return nil, err
	}
	blocked, reasons := stopping(bs, ActionLoan)
	proxy := ""
	if p := strings.TrimSpace(o.Proxy); p != "" {
		pu, err := ps.GetSegments(ctx, inst, p, patron.KindProxyFor)
		if err != nil {
			return nil, err
		}
		proxy = pu.PrimaryID
		reasons = append(reasons, s.proxyReasons(pu, user)...)
	}
	var hold *Request
	switch item.Status {
	case StatusAvailable:
	case StatusOnHoldShelf:
		// Held for a request: only its patron borrows it, which fulfils
		// the request.
		if hold, err = s.heldFor(s.conn(ctx), inst, item.ID); err != nil {
			return nil, err
		}
		if hold == nil || hold.UserID != user.ID {
			reasons = append(reasons, cause(ReasonItemOnHoldShelf, "barcode", item.Barcode))
		}
	default:
		reasons = append(reasons, cause(ReasonItemNotAvailable, "barcode", item.Barcode, "status", item.Status))
	}
	if pe, ok := fault.As(termsErr); ok {
		reasons = append(reasons, pe.Why()...)
	} else if terms.MaxLoans > 0 && len(open) > 0 && open[0] >= terms.MaxLoans {
		reasons = append(reasons, maxLoansReason(user.PrimaryID, terms.MaxLoans))
	}
	if len(reasons) > 0 {
		return nil, refusal(fmt.Sprintf("item %s cannot be lent to %s", item.Barcode, user.PrimaryID), reasons, blocked)
	}

	loan := &Loan{ID: keys.NewID(), Institution: inst, UserID: user.ID, PrimaryID: user.PrimaryID,
		ItemID: item.ID, ItemBarcode: item.Barcode, Library: item.Library, LoanedAt: now, DueAt: due,
		ProxyPrimaryID: proxy, Status: LoanOpen, Version: 1, UpdatedAt: now, Charges: chargesOf(terms), ChargesSet: true,
		LostAfter: lostAfter(chargesOf(terms), due)}
	// The patron's counter row exists before any check-out takes from it;
	// created outside the check-out's transaction, so that two first
	// check-outs at once do not fail on its key (within a host's
	// transaction the second waits for the first's to end).
	if len(open) == 0 {
		if err := s.conn(ctx).Clauses(clause.OnConflict{DoNothing: true}).
			Create(&userLoansRow{UserID: user.ID, Institution: inst}).Error; err != nil {
			return nil, s.translate(err)
		}
	}
	err = s.retry(ctx, func(ctx context.Context, tx *gorm.DB) error {
		if err := ps.LockUser(ctx, inst, user.ID); err != nil {
			return err
		}
		upd := tx.Model(&userLoansRow{}).Where("user_id = ?", user.ID)
		if terms.MaxLoans > 0 {
			upd = upd.Where("open_loans < ?", terms.MaxLoans)
		}
		res := upd.Update("open_loans", gorm.Expr("open_loans + 1"))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return refused(fmt.Sprintf("item %s cannot be lent to %s", item.Barcode, user.PrimaryID),
				maxLoansReason(user.PrimaryID, terms.MaxLoans))
		}
		if err := tx.Create(&itemLoanRow{ItemID: item.ID, Institution: inst, LoanID: loan.ID}).Error; err != nil {
			if errors.Is(s.translate(err), fault.ErrConflict) {
				return onLoanAlready(item.Barcode, user.PrimaryID)
			}
			return err
		}
		res = tx.Model(&Item{}).Where("id = ? AND status = ?", item.ID, item.Status).
			Updates(map[string]any{"status": StatusOnLoan, "version": gorm.Expr("version + 1"), "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return refused(fmt.Sprintf("item %s cannot be lent to %s", item.Barcode, user.PrimaryID),
				cause(ReasonItemNoLongerAvailable, "barcode", item.Barcode))
		}
		if hold != nil {
			res = tx.Model(&Request{}).Where("id = ? AND version = ? AND status = ?", hold.ID, hold.Version, RequestOnHoldShelf).
				Updates(map[string]any{"status": RequestFulfilled, "closed_at": now, "version": hold.Version + 1, "updated_at": now})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return stale("the request item %s was held for changed meanwhile; try again", item.Barcode)
			}
			if err := s.auditRequestChange(ctx, hold, map[string]any{"status": change(RequestOnHoldShelf, RequestFulfilled)}); err != nil {
				return err
			}
		}
		if err := tx.Create(loan).Error; err != nil {
			return err
		}
		if err := s.queueNoticeTo(tx, inst, user.ID, recipientOf(user), NoticeLoanReceipt, "loan_receipt:"+loan.ID,
			noticeData{Title: item.Title, Barcode: item.Barcode, Library: item.Library, DueDate: formatTime(due)}, loan.ID, nil); err != nil {
			return err
		}
		// Last: the trail's entry holds the institution's trail until the
		// commit, which comes at once.
		return s.auditChange(ctx, inst, patron.AuditCreate, user.PrimaryID, "loans", loanCreated(loan))
	})
	if err != nil {
		return nil, s.translate(err)
	}
	return loan, nil
}

// loanCreated is the details of a check-out on the audit trail: the
// loan's id, its item's barcode and library, its due date, and the proxy
// who borrowed for the patron, if any.
func loanCreated(l *Loan) map[string]any {
	d := map[string]any{"loan_id": l.ID, "item_barcode": l.ItemBarcode, "library": l.Library, "due_date": stamp(l.DueAt)}
	if l.ProxyPrimaryID != "" {
		d["proxy_primary_id"] = l.ProxyPrimaryID
	}
	return d
}

// both runs a and b, at once unless ctx carries a transaction (whose one
// connection runs one statement at a time), and returns a's error, else
// b's.
func both(ctx context.Context, a, b func() error) error {
	if txctx.In(ctx) {
		if err := a(); err != nil {
			return err
		}
		return b()
	}
	done := make(chan error, 1)
	go func() { done <- a() }()
	errB := b()
	if err := <-done; err != nil {
		return err
	}
	return errB
}

// maxLoansReason is ReasonMaxLoans: the patron holds max loans.
func maxLoansReason(primaryID string, max int) fault.Reason {
	return cause(ReasonMaxLoans, "primary_id", primaryID, "limit", strconv.Itoa(max))
}

func onLoanAlready(barcode, primaryID string) *fault.Error {
	return refused(fmt.Sprintf("item %s cannot be lent to %s", barcode, primaryID),
		cause(ReasonItemNotAvailable, "barcode", barcode, "status", StatusOnLoan))
}

// proxyReasons lists why proxy may not borrow for sponsor.
func (s *Service) proxyReasons(proxy, sponsor *patron.User) []fault.Reason {
	today := s.today()
	var reasons []fault.Reason
	ok := false
	for _, p := range proxy.ProxyFor {
		if keys.Fold(p.PrimaryID) == keys.Fold(sponsor.PrimaryID) && (p.ExpiryDate == "" || p.ExpiryDate >= today) {
			ok = true
		}
	}
	if !ok {
		reasons = append(reasons, cause(ReasonNotProxy, "proxy", proxy.PrimaryID, "primary_id", sponsor.PrimaryID))
	}
	if proxy.Status != "" && proxy.Status != patron.StatusActive {
		reasons = append(reasons, cause(ReasonProxyInactive, "proxy", proxy.PrimaryID))
	}
	if proxy.ExpiryDate != "" && proxy.ExpiryDate < today {
		reasons = append(reasons, cause(ReasonProxyExpired, "proxy", proxy.PrimaryID, "expiry_date", proxy.ExpiryDate))
	}
	return reasons
}
