package circulation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// Loan statuses.
const (
	// LoanOpen: the item is out with the patron.
	LoanOpen = "open"
	// LoanComplete: the item came back; the loan stays as history.
	LoanComplete = "complete"
	// LoanLost: the item was declared lost (DeclareLost); the loan stays
	// as history.
	LoanLost = "lost"
)

// Loan is an item lent to a patron, open until the item is checked in and
// kept afterwards as the patron's and the item's loan history.
//
// # Locking
//
// Two facts must hold however many check-outs run at once, on SQLite,
// PostgreSQL and MySQL alike, without a partial unique index (MySQL has
// none) or SELECT ... FOR UPDATE (SQLite drops it):
//
//   - An item is never on loan twice. Every open loan holds a row in
//     pk_circ_item_loans whose primary key is the item's id, inserted by
//     the check-out's transaction and deleted by the check-in's; a second
//     check-out of the item fails on that key (after waiting for the first
//     to commit) and is Refused.
//   - A patron never holds more loans than the terms allow. Every patron
//     with loans has a counter row in pk_circ_user_loans, and a check-out
//     takes a loan from it with one conditional statement, UPDATE ... SET
//     open_loans = open_loans + 1 WHERE open_loans < max, and is Refused
//     when no row changed. The statement's row lock serializes one
//     patron's check-outs on PostgreSQL and MySQL (whose UPDATE reads the
//     latest committed row); SQLite lets one writer in at a time.
//
// Check-out and check-in take their locks in one order (the patron's
// counter, the item's row in pk_circ_item_loans, the item) so that they do
// not deadlock each other; a deadlock or serialization failure the
// database reports anyway is retried a few times.
//
// On a host's own SQLite *gorm.DB opened without _txlock=immediate
// (adapters/sqldb sets it), transactions start deferred: the statements
// above stay atomic, so the limits still hold, but concurrent check-outs
// may fail with "database is locked" instead of waiting their turn.
type Loan struct {
	// ID (a UUIDv7) identifies the loan.
	ID          string `json:"loan_id" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	// UserID is the patron's internal id, PrimaryID their primary_id when
	// the loan was made.
	UserID    string `json:"-" gorm:"size:36;not null"`
	PrimaryID string `json:"primary_id" gorm:"size:255;not null"`
	// ItemID and ItemBarcode name the item lent; Library is the code of
	// the library it belongs to.
	ItemID      string `json:"item_id" gorm:"size:36;not null"`
	ItemBarcode string `json:"item_barcode" gorm:"size:255;not null"`
	Library     string `json:"library" gorm:"size:64;not null"`
	// LoanedAt, DueAt and ReturnedAt (nil while the loan is open) are in
	// UTC.
	LoanedAt   time.Time  `json:"loan_date"`
	DueAt      time.Time  `json:"due_date"`
	ReturnedAt *time.Time `json:"return_date,omitempty"`
	// Renewals counts the renewals so far.
	Renewals int `json:"renewals" gorm:"not null"`
	// ProxyPrimaryID is the primary_id of the proxy who borrowed on the
	// patron's behalf, or empty.
	ProxyPrimaryID string `json:"proxy_primary_id,omitempty" gorm:"size:255"`
	// Status is LoanOpen, LoanComplete or LoanLost.
	Status string `json:"loan_status" gorm:"size:16;not null"`
	// Overdue is computed when open loans are read: the due date has
	// passed.
	Overdue bool `json:"overdue" gorm:"-"`
	// AccruedFine is computed when a patron's open loans are read (Loans):
	// the overdue fine the loan would be charged if it were returned now.
	// On the loan CheckIn returns, it is the fine charged, and on the one
	// DeclareLost returns, the lost-item fee. FineCurrency is its
	// currency. Neither is stored.
	AccruedFine  int64  `json:"accrued_fine,omitempty" gorm:"-"`
	FineCurrency string `json:"fine_currency,omitempty" gorm:"-"`
	// Version counts the changes of the loan (renewals, the return).
	Version   int       `json:"version" gorm:"not null"`
	UpdatedAt time.Time `json:"updated_date"`
	// Charges are the fine and fee terms of the loan, copied from its
	// terms of use at check-out, so that a later change of the rules does
	// not change what the loan costs. ChargesSet is false for loans made
	// before the copy existed; their charges are read from the rules.
	Charges    Charges `json:"-" gorm:"embedded;embeddedPrefix:charge_"`
	ChargesSet bool    `json:"-" gorm:"column:charges_set;not null;default:false"`
	// LostAfter is when the open loan is declared lost by itself
	// (DeclareOverdueLost): its due date plus the terms' days overdue
	// until lost; nil when the terms never make it lost.
	LostAfter *time.Time `json:"lost_after,omitempty"`
}

// lostAfter is when a loan due at due under c becomes lost by itself.
func lostAfter(c Charges, due time.Time) *time.Time {
	if c.DaysOverdueUntilLost <= 0 {
		return nil
	}
	t := due.Add(time.Duration(c.DaysOverdueUntilLost) * 24 * time.Hour)
	return &t
}

// Charges are what a loan may cost: the fine and fee fields of its Terms.
type Charges struct {
	// OverdueFine per OverdueFineUnit once GracePeriod (in
	// GracePeriodUnit) has passed, capped by MaxFine; see Terms.
	OverdueFine     int64  `gorm:"not null;default:0"`
	OverdueFineUnit string `gorm:"size:16;not null;default:''"`
	GracePeriod     int    `gorm:"not null;default:0"`
	GracePeriodUnit string `gorm:"size:16;not null;default:''"`
	MaxFine         int64  `gorm:"not null;default:0"`
	// LostItemFee is charged when the item is declared lost, by itself
	// DaysOverdueUntilLost days after the due date (0: never by itself).
	LostItemFee          int64 `gorm:"not null;default:0"`
	DaysOverdueUntilLost int   `gorm:"not null;default:0"`
	// Currency is the ISO 4217 code of the amounts.
	Currency string `gorm:"size:3;not null;default:''"`
}

func chargesOf(t Terms) Charges {
	return Charges{OverdueFine: t.OverdueFine, OverdueFineUnit: t.OverdueFineUnit, GracePeriod: t.GracePeriod,
		GracePeriodUnit: t.GracePeriodUnit, MaxFine: t.MaxFine, LostItemFee: t.LostItemFee,
		DaysOverdueUntilLost: t.DaysOverdueUntilLost, Currency: t.Currency}
}

func (c Charges) terms() Terms {
	return Terms{OverdueFine: c.OverdueFine, OverdueFineUnit: c.OverdueFineUnit, GracePeriod: c.GracePeriod,
		GracePeriodUnit: c.GracePeriodUnit, MaxFine: c.MaxFine, LostItemFee: c.LostItemFee,
		DaysOverdueUntilLost: c.DaysOverdueUntilLost, Currency: c.Currency}
}

// TableName places loans in the pk_ namespace of the host's database.
func (Loan) TableName() string { return "pk_circ_loans" }

// itemLoanRow exists while an item is on loan: its primary key makes a
// second loan of the item impossible on every database.
type itemLoanRow struct {
	ItemID      string `gorm:"primaryKey;size:36"`
	Institution string `gorm:"size:64;not null"`
	LoanID      string `gorm:"size:36;not null"`
}

func (itemLoanRow) TableName() string { return "pk_circ_item_loans" }

// userLoansRow counts a patron's open loans; check-outs take from it with
// a conditional update.
type userLoansRow struct {
	UserID      string `gorm:"primaryKey;size:36"`
	Institution string `gorm:"size:64;not null"`
	OpenLoans   int    `gorm:"not null"`
}

func (userLoansRow) TableName() string { return "pk_circ_user_loans" }

// CheckOutOptions are the choices of a check-out.
type CheckOutOptions struct {
	// Proxy is the primary_id of a user borrowing on the patron's behalf:
	// they must hold a proxy-for relation, not expired, naming the
	// patron. The loan is the patron's and records the proxy.
	Proxy string
}

func refused(detail string, reasons []string) *fault.Error {
	return &fault.Error{Kind: fault.Refused, Detail: detail, Reasons: reasons}
}

// patrons returns the patron service, or an error saying it is missing.
func (s *Service) patronService() (*patron.Service, error) {
	if s.patrons == nil {
		return nil, errors.New("circulation: loans need Options.Patrons")
	}
	return s.patrons, nil
}

// today is the civil date of the clock, in UTC, that expiry dates of
// accounts, blocks and proxy relations are compared with.
func (s *Service) today() string { return s.clock().Format(time.DateOnly) }

// loanClock is the clock for the dates of loans, to the millisecond: what
// MySQL's DATETIME(3) keeps, so that a loan returned by a call equals the
// loan read back.
func (s *Service) loanClock() time.Time { return s.clock().Truncate(time.Millisecond) }

// CheckOut lends the item with barcode to the patron primaryID and returns
// the loan. The terms of use (TermsFor) give its due date. The check-out is
// Refused, with every reason listed, when the item is not available, the
// patron is inactive, expired (expiry_date before today) or under an active
// manual block, the patron already holds the most loans the terms allow, no
// terms apply, or a proxy (o.Proxy) has no active proxy-for relation naming
// the patron. Unknown users and items are NotFound. See Loan for how
// concurrent check-outs are kept apart.
func (s *Service) CheckOut(ctx context.Context, inst, primaryID, barcode string, o CheckOutOptions) (*Loan, error) {
	ps, err := s.patronService()
	if err != nil {
		return nil, err
	}
	// The blocks, and the contacts the loan receipt goes to.
	user, err := ps.GetSegments(ctx, inst, primaryID, patron.KindBlocks, patron.KindEmails, patron.KindPhones)
	if err != nil {
		return nil, err
	}
	item, err := s.Item(ctx, inst, barcode)
	if err != nil {
		return nil, err
	}
	now := s.loanClock()
	bs, err := s.blocks(ctx, inst, user)
	if err != nil {
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
			reasons = append(reasons, fmt.Sprintf("item %s is on the hold shelf for another patron", item.Barcode))
		}
	default:
		reasons = append(reasons, fmt.Sprintf("item %s is %s", item.Barcode, strings.ReplaceAll(item.Status, "_", " ")))
	}
	terms, due, err := s.TermsFor(ctx, inst, user, item, now)
	if pe, ok := fault.As(err); ok && pe.Kind == fault.Refused {
		reasons = append(reasons, pe.Reasons...)
	} else if err != nil {
		return nil, err
	}
	if err == nil && terms.MaxLoans > 0 {
		var n int64
		if err := s.conn(ctx).Model(&Loan{}).Where("institution = ? AND user_id = ? AND status = ?", inst, user.ID, LoanOpen).Count(&n).Error; err != nil {
			return nil, err
		}
		if n >= int64(terms.MaxLoans) {
			reasons = append(reasons, maxLoansReason(user.PrimaryID, terms.MaxLoans))
		}
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
	if err := s.conn(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&userLoansRow{UserID: user.ID, Institution: inst}).Error; err != nil {
		return nil, s.translate(err)
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
				[]string{maxLoansReason(user.PrimaryID, terms.MaxLoans)})
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
				[]string{fmt.Sprintf("item %s is no longer available", item.Barcode)})
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
		}
		if err := tx.Create(loan).Error; err != nil {
			return err
		}
		return s.queueNoticeTo(tx, inst, user.ID, recipientOf(user), NoticeLoanReceipt, "loan_receipt:"+loan.ID,
			noticeData{Title: item.Title, Barcode: item.Barcode, Library: item.Library, DueDate: formatTime(due)}, loan.ID, nil)
	})
	if err != nil {
		return nil, s.translate(err)
	}
	return loan, nil
}

func maxLoansReason(primaryID string, max int) string {
	return fmt.Sprintf("%s already has %d loans, the most the terms of use allow", primaryID, max)
}

func onLoanAlready(barcode, primaryID string) *fault.Error {
	return refused(fmt.Sprintf("item %s cannot be lent to %s", barcode, primaryID),
		[]string{fmt.Sprintf("item %s is on loan", barcode)})
}

// proxyReasons lists why proxy may not borrow for sponsor.
func (s *Service) proxyReasons(proxy, sponsor *patron.User) []string {
	today := s.today()
	var reasons []string
	ok := false
	for _, p := range proxy.ProxyFor {
		if keys.Fold(p.PrimaryID) == keys.Fold(sponsor.PrimaryID) && (p.ExpiryDate == "" || p.ExpiryDate >= today) {
			ok = true
		}
	}
	if !ok {
		reasons = append(reasons, fmt.Sprintf("%s is not an active proxy for %s", proxy.PrimaryID, sponsor.PrimaryID))
	}
	if proxy.Status != "" && proxy.Status != patron.StatusActive {
		reasons = append(reasons, fmt.Sprintf("the account of proxy %s is inactive", proxy.PrimaryID))
	}
	if proxy.ExpiryDate != "" && proxy.ExpiryDate < today {
		reasons = append(reasons, fmt.Sprintf("the account of proxy %s expired on %s", proxy.PrimaryID, proxy.ExpiryDate))
	}
	return reasons
}

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

// loanTerms returns the fine and fee terms of a loan: its Charges, or for
// a loan made before they were copied, those TermsFor gives its patron
// (user, read when nil) and item as of the loan date. A loan whose
// patron, item or rule no longer exists has none (zero Terms): nothing is
// charged.
func (s *Service) loanTerms(ctx context.Context, inst string, l *Loan, user *patron.User, item *Item) (Terms, error) {
	if l.ChargesSet {
		return l.Charges.terms(), nil
	}
	if s.patrons == nil {
		return Terms{}, nil
	}
	var err error
	if user == nil {
		if user, err = s.loanUser(ctx, s.patrons, inst, l); err != nil {
			return Terms{}, ignoreGone(err)
		}
	}
	if item == nil {
		if item, err = s.Item(ctx, inst, l.ItemBarcode); err != nil {
			return Terms{}, ignoreGone(err)
		}
	}
	t, _, err := s.TermsFor(ctx, inst, user, item, l.LoanedAt)
	return t, ignoreGone(err)
}

// ignoreGone drops NotFound and Refused errors (no such record, no rule).
func ignoreGone(err error) error {
	if pe, ok := fault.As(err); ok && (pe.Kind == fault.NotFound || pe.Kind == fault.Refused) {
		return nil
	}
	return err
}

// RenewResult is the outcome of renewing one loan.
type RenewResult struct {
	// LoanID names the loan, as the caller did.
	LoanID string `json:"loan_id"`
	// Renewed tells whether the loan was renewed; when not, Reasons lists
	// every reason.
	Renewed bool     `json:"renewed"`
	Reasons []string `json:"reasons,omitempty"`
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
			out = append(out, RenewResult{LoanID: id, Reasons: []string{fmt.Sprintf("%s has no open loan %s", user.PrimaryID, id)}})
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
				out = append(out, RenewResult{LoanID: id, DueAt: loans[i].DueAt, Reasons: []string{"your roles do not allow renewals in library " + lib}})
				continue
			}
		}
		l, reasons, err := s.renew(ctx, inst, user, blocked, &loans[i])
		if pe, ok := fault.As(err); ok {
			out = append(out, RenewResult{LoanID: id, DueAt: loans[i].DueAt, Reasons: []string{pe.Detail}})
			continue
		}
		if err != nil {
			return out, err
		}
		r := RenewResult{LoanID: id, Renewed: len(reasons) == 0, Reasons: reasons, DueAt: loans[i].DueAt}
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
func (s *Service) renew(ctx context.Context, inst string, user *patron.User, blocked []Block, loan *Loan) (*Loan, []string, error) {
	now := s.loanClock()
	var reasons []string
	for _, b := range blocked {
		reasons = append(reasons, b.Description)
	}
	// By id: staff may have changed the item's barcode since the loan.
	var item Item
	if err := s.conn(ctx).Where("institution = ? AND id = ?", inst, loan.ItemID).Take(&item).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, []string{fmt.Sprintf("the item of loan %s is no longer in the inventory", loan.ID)}, nil
		}
		return nil, nil, err
	}
	terms, due, err := s.TermsFor(ctx, inst, user, &item, now)
	if pe, ok := fault.As(err); ok && pe.Kind == fault.Refused {
		return nil, append(reasons, pe.Reasons...), nil
	} else if err != nil {
		return nil, nil, err
	}
	if others, err := s.othersWaiting(s.conn(ctx), inst, &item, loan.UserID); err != nil {
		return nil, nil, err
	} else if others {
		reasons = append(reasons, fmt.Sprintf("item %s is requested by another patron", item.Barcode))
	}
	if loan.Renewals >= terms.Renewals {
		reasons = append(reasons, fmt.Sprintf("the loan was renewed %d times, the most the terms of use allow (%d)", loan.Renewals, terms.Renewals))
	}
	if terms.RenewalPeriod > 0 {
		lib, err := loadLibrary(s.conn(ctx), inst, item.Library)
		if err != nil {
			return nil, nil, s.translate(err)
		}
		due, err = dueDate(s.conn(ctx), lib, Terms{LoanPeriod: terms.RenewalPeriod, LoanPeriodUnit: terms.RenewalPeriodUnit}, now)
		if err != nil {
			return nil, nil, s.translate(err)
		}
	}
	if !due.After(loan.DueAt) {
		reasons = append(reasons, fmt.Sprintf("renewing would not move the due date %s", loan.DueAt.Format(time.RFC3339)))
	}
	if len(reasons) > 0 {
		return nil, reasons, nil
	}
	charges := loan.Charges
	if !loan.ChargesSet {
		charges = chargesOf(terms)
	}
	lost := lostAfter(charges, due)
	res := s.conn(ctx).Model(&Loan{}).
		Where("id = ? AND version = ? AND status = ? AND renewals < ?", loan.ID, loan.Version, LoanOpen, terms.Renewals).
		Updates(map[string]any{"due_at": due, "renewals": loan.Renewals + 1, "version": loan.Version + 1, "updated_at": now,
			"lost_after": lost})
	if res.Error != nil {
		return nil, nil, s.translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, nil, stale("loan %s changed while it was being renewed: read it again", loan.ID)
	}
	out := *loan
	out.DueAt, out.Renewals, out.Version, out.UpdatedAt, out.LostAfter = due, loan.Renewals+1, loan.Version+1, now, lost
	out.Overdue = false
	return &out, nil, nil
}

func (s *Service) openLoan(ctx context.Context, inst, id string) (*Loan, error) {
	var l Loan
	err := s.conn(ctx).Where("institution = ? AND id = ?", inst, strings.TrimSpace(id)).Take(&l).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("no loan %s", id)
	}
	if err != nil {
		return nil, err
	}
	if l.Status != LoanOpen {
		return nil, notFound("loan %s was returned", id)
	}
	return &l, nil
}

// loanUser reads the patron of a loan, with their blocks, by internal id:
// their primary_id may have changed since the loan was made.
func (s *Service) loanUser(ctx context.Context, ps *patron.Service, inst string, l *Loan) (*patron.User, error) {
	u, err := ps.GetByID(ctx, inst, l.UserID, patron.KindBlocks)
	if errors.Is(err, fault.ErrNotFound) {
		return nil, notFound("the patron of loan %s no longer exists", l.ID)
	}
	return u, err
}

// userID returns the internal id of the patron primaryID (any case).
func (s *Service) userID(ctx context.Context, inst, primaryID string) (string, error) {
	ps, err := s.patronService()
	if err != nil {
		return "", err
	}
	id, _, err := ps.ID(ctx, inst, primaryID)
	return id, err
}

// Loans returns the patron primaryID's open loans by due date, each with
// its Overdue flag and AccruedFine computed from the clock, or (open
// false) their returned and lost loans, the latest first.
func (s *Service) Loans(ctx context.Context, inst, primaryID string, open bool) ([]Loan, error) {
	out, _, err := s.LoansPage(ctx, inst, primaryID, open, -1, 0)
	return out, err
}

// LoansPage is Loans a page at a time: at most limit loans (-1: all; 0:
// none, only their number) after skipping offset, and the number of loans
// in all pages.
func (s *Service) LoansPage(ctx context.Context, inst, primaryID string, open bool, limit, offset int) ([]Loan, int64, error) {
	id, err := s.userID(ctx, inst, primaryID)
	if err != nil {
		return nil, 0, err
	}
	q := s.conn(ctx).Model(&Loan{}).Where("institution = ? AND user_id = ?", inst, id)
	if open {
		q = q.Where("status = ?", LoanOpen)
	} else {
		q = q.Where("status IN ?", []string{LoanComplete, LoanLost})
	}
	total, err := countPage(q, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	if open {
		q = q.Order("due_at, id")
	} else {
		q = q.Order("returned_at DESC, id DESC")
	}
	out, err := s.finishLoans(page(q, limit, offset))
	total = max(total, int64(len(out)))
	if err != nil || !open {
		return out, total, err
	}
	var user *patron.User
	now := s.loanClock()
	for i := range out {
		if !out[i].Overdue {
			continue
		}
		if !out[i].ChargesSet && user == nil && s.patrons != nil {
			if user, err = s.loanUser(ctx, s.patrons, inst, &out[i]); err != nil {
				return nil, 0, err
			}
		}
		t, err := s.loanTerms(ctx, inst, &out[i], user, nil)
		if err != nil {
			return nil, 0, err
		}
		if fine := s.overdueFine(t, out[i].DueAt, now); fine > 0 {
			out[i].AccruedFine, out[i].FineCurrency = fine, t.Currency
		}
	}
	return out, total, nil
}

// countPage counts the rows of q when a page of them is asked for, and
// returns -1 when all are (their number is then the length of the list).
func countPage(q *gorm.DB, limit, offset int) (int64, error) {
	if limit < 0 && offset <= 0 {
		return -1, nil
	}
	var n int64
	err := q.Session(&gorm.Session{}).Count(&n).Error
	return n, err
}

// page limits q to one page.
func page(q *gorm.DB, limit, offset int) *gorm.DB {
	if limit >= 0 {
		q = q.Limit(limit)
	}
	if offset > 0 {
		q = q.Offset(offset)
	}
	return q
}

// ItemLoans returns every loan of the item with barcode, open or returned,
// the latest first.
func (s *Service) ItemLoans(ctx context.Context, inst, barcode string) ([]Loan, error) {
	out, _, err := s.ItemLoansPage(ctx, inst, barcode, -1, 0)
	return out, err
}

// ItemLoansPage is ItemLoans a page at a time, as LoansPage pages.
func (s *Service) ItemLoansPage(ctx context.Context, inst, barcode string, limit, offset int) ([]Loan, int64, error) {
	item, err := s.Item(ctx, inst, barcode)
	if err != nil {
		return nil, 0, err
	}
	q := s.conn(ctx).Model(&Loan{}).Where("institution = ? AND item_id = ?", inst, item.ID)
	total, err := countPage(q, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	out, err := s.finishLoans(page(q.Order("loaned_at DESC, id DESC"), limit, offset))
	return out, max(total, int64(len(out))), err
}

// Loan returns the loan id, open or closed, with its Overdue flag.
func (s *Service) Loan(ctx context.Context, inst, id string) (*Loan, error) {
	out, err := s.finishLoans(s.conn(ctx).Where("institution = ? AND id = ?", inst, strings.TrimSpace(id)))
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, notFound("no loan %s", id)
	}
	return &out[0], nil
}

func (s *Service) finishLoans(q *gorm.DB) ([]Loan, error) {
	out := []Loan{}
	if err := q.Find(&out).Error; err != nil {
		return nil, err
	}
	now := s.loanClock()
	for i := range out {
		out[i].Overdue = out[i].Status == LoanOpen && now.After(out[i].DueAt)
		out[i].LoanedAt, out[i].DueAt, out[i].UpdatedAt = out[i].LoanedAt.UTC(), out[i].DueAt.UTC(), out[i].UpdatedAt.UTC()
		if r := out[i].ReturnedAt; r != nil {
			u := r.UTC()
			out[i].ReturnedAt = &u
		}
		if r := out[i].LostAfter; r != nil {
			u := r.UTC()
			out[i].LostAfter = &u
		}
	}
	return out, nil
}

// DeletionGuard objects to deleting a patron who has open loans ("has N
// open loans") or owes money ("owes 12.50 USD", one reason per currency).
// Register it with the patron service's AddDeletionGuard.
func (s *Service) DeletionGuard() patron.DeletionGuard {
	return patron.DeletionGuardFunc(func(ctx context.Context, u *patron.User) ([]string, error) {
		db := latest(s.conn(ctx))
		var reasons []string
		for _, q := range []struct {
			what  string
			count *gorm.DB
		}{
			{"open loan", db.Model(&Loan{}).Where("institution = ? AND user_id = ? AND status = ?", u.Institution, u.ID, LoanOpen)},
			{"active request", db.Model(&Request{}).Where("institution = ? AND user_id = ? AND status IN ?", u.Institution, u.ID, activeRequests)},
		} {
			var n int64
			if err := q.count.Count(&n).Error; err != nil {
				return nil, err
			}
			switch {
			case n == 1:
				reasons = append(reasons, "has 1 "+q.what)
			case n > 1:
				reasons = append(reasons, fmt.Sprintf("has %d %ss", n, q.what))
			}
		}
		owed, err := s.balance(db, u.Institution, u.ID)
		if err != nil {
			return nil, err
		}
		currencies := make([]string, 0, len(owed))
		for c := range owed {
			currencies = append(currencies, c)
		}
		slices.Sort(currencies)
		for _, c := range currencies {
			if owed[c] > 0 {
				reasons = append(reasons, "owes "+FormatMoney(owed[c], c))
			}
		}
		return reasons, nil
	})
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

// retry runs fn in a transaction, again (up to five times in all) when the
// database reports a deadlock or a serialization failure. Within a
// transaction ctx carries, fn runs once in a savepoint of it: a deadlock
// ends that whole transaction on MySQL, so it is its owner's to retry.
func (s *Service) retry(ctx context.Context, fn func(ctx context.Context, tx *gorm.DB) error) error {
	if txctx.In(ctx) {
		return s.inTx(ctx, fn)
	}
	var err error
	for range 5 {
		err = s.inTx(ctx, fn)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// transient tells whether err is a deadlock or serialization failure that
// a new attempt may not meet: PostgreSQL's SQLSTATE 40P01 and 40001,
// MySQL's error 1213.
func transient(err error) bool {
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		switch st.SQLState() {
		case "40P01", "40001":
			return true
		}
	}
	return strings.Contains(err.Error(), "Error 1213")
}
