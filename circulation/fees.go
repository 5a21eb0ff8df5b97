package circulation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/patron"
)

// Fee types.
const (
	// FeeOverdueFine is charged when an overdue loan is returned.
	FeeOverdueFine = "overdue_fine"
	// FeeLostItem is charged when an item on loan is declared lost.
	FeeLostItem = "lost_item"
	// FeeManual is a fee that staff added by hand.
	FeeManual = "manual"
)

// Fee statuses.
const (
	// FeeOpen: something remains to be paid.
	FeeOpen = "open"
	// FeeClosed: the fee was paid or waived in full.
	FeeClosed = "closed"
)

// Kinds of Transaction.
const (
	// Payment: money received.
	Payment = "payment"
	// Waiver: money forgiven, with a reason.
	Waiver = "waiver"
)

// Fee is an amount a patron owes: an overdue fine or a lost-item fee of a
// loan, or a manual fee. Amounts are integer minor units (cents) of
// Currency, and no fee is more than Options.MaxFee (what terms of use would
// charge beyond it is charged at it). What remains is Amount minus Paid
// minus Waived; a fee closes when nothing remains.
//
// # Locking
//
// Payments and waivers take from a fee with one conditional statement,
// UPDATE ... SET paid = paid + x WHERE amount - paid - waived >= x, and
// record their Transaction in the same database transaction; no row
// changed means the fee does not owe that much (any more). The
// statement's row lock serializes the payments of one fee on PostgreSQL
// and MySQL, SQLite lets one writer in at a time, so concurrent payments
// never pay more than a fee owes.
type Fee struct {
	// ID (a UUIDv7) identifies the fee.
	ID          string `json:"fee_id" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	// UserID is the patron's internal id, PrimaryID their primary_id when
	// the fee was charged.
	UserID    string `json:"-" gorm:"size:36;not null"`
	PrimaryID string `json:"primary_id" gorm:"size:255;not null"`
	// Type is FeeOverdueFine, FeeLostItem, FeeManual or FeeDelivery.
	Type string `json:"type" gorm:"size:16;not null"`
	// LoanID and Barcode name the loan and item the fee is for, if any.
	LoanID  string `json:"loan_id,omitempty" gorm:"size:36"`
	Barcode string `json:"barcode,omitempty" gorm:"size:255"`
	// Description says what the fee is for.
	Description string `json:"description" gorm:"size:1000"`
	// Amount is what was charged; Paid and Waived what was paid and
	// waived of it so far. All in minor units of Currency.
	Amount int64 `json:"amount" gorm:"not null"`
	Paid   int64 `json:"paid" gorm:"not null"`
	Waived int64 `json:"waived" gorm:"not null"`
	// Currency is the ISO 4217 code of the amounts.
	Currency string `json:"currency" gorm:"size:3;not null"`
	// Status is FeeOpen or FeeClosed.
	Status string `json:"status" gorm:"size:16;not null"`
	// CreatedBy is the actor who charged the fee (empty when the system
	// did, e.g. an overdue fine on return).
	CreatedBy string    `json:"created_by,omitempty" gorm:"size:255"`
	CreatedAt time.Time `json:"created_date"`
	UpdatedAt time.Time `json:"updated_date"`
	// Version counts the changes of the fee.
	Version int `json:"version" gorm:"not null"`
	// Transactions are the fee's payments and waivers, oldest first;
	// filled by Fees.
	Transactions []Transaction `json:"transactions" gorm:"-"`
}

// TableName places fees in the pk_ namespace of the host's database.
func (Fee) TableName() string { return "pk_circ_fees" }

// Remaining is what is left to pay of the fee.
func (f *Fee) Remaining() int64 { return f.Amount - f.Paid - f.Waived }

// Transaction is a payment or a waiver of part or all of a fee.
type Transaction struct {
	// ID (a UUIDv7) identifies the transaction.
	ID          string `json:"transaction_id" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	// FeeID names the fee.
	FeeID string `json:"fee_id" gorm:"size:36;not null"`
	// Kind is Payment or Waiver.
	Kind string `json:"kind" gorm:"size:16;not null"`
	// Amount is in minor units of the fee's currency.
	Amount int64 `json:"amount" gorm:"not null"`
	// Reason says why a waiver was granted.
	Reason string `json:"reason,omitempty" gorm:"size:1000"`
	// By is the actor who took the payment or granted the waiver.
	By string `json:"by,omitempty" gorm:"column:actor;size:255"`
	// Method, Comment and ExternalID tell more of a payment, when the
	// desk or another system gave them (PayWith): how it was paid (CASH,
	// CREDIT_CARD, ONLINE...), a note, and the payment system's own id
	// of the transaction.
	Method     string `json:"method,omitempty" gorm:"size:64"`
	Comment    string `json:"comment,omitempty" gorm:"size:1000"`
	ExternalID string `json:"external_transaction_id,omitempty" gorm:"size:255"`
	// At is when it happened (UTC).
	At time.Time `json:"date"`
}

// TableName places transactions in the pk_ namespace of the host's
// database.
func (Transaction) TableName() string { return "pk_circ_fee_transactions" }

// NewFee is a manual fee that staff charge with AddFee.
type NewFee struct {
	// Amount in minor units of Currency; more than 0, at most
	// Options.MaxFee.
	Amount int64 `json:"amount"`
	// Currency is an ISO 4217 code (e.g. USD) of a currency the library
	// accepts (Options.Currencies).
	Currency string `json:"currency"`
	// Description says what the fee is for; required.
	Description string `json:"description"`
	// Barcode optionally names an item the fee is about.
	Barcode string `json:"barcode,omitempty"`
}

// Fees returns the fees of the patron primaryID, the newest first, each
// with its transactions: the open ones (open true) or all of them. The
// read is on the audit trail ("fees") unless the patron reads their own.
func (s *Service) Fees(ctx context.Context, inst, primaryID string, open bool) ([]Fee, error) {
	uid, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	db := s.conn(ctx)
	q := db.Where("institution = ? AND user_id = ?", inst, uid)
	if open {
		q = q.Where("status = ?", FeeOpen)
	}
	out := []Fee{}
	if err := q.Order("created_at DESC, id DESC").Find(&out).Error; err != nil {
		return nil, err
	}
	ps := make([]*Fee, len(out))
	for i := range out {
		out[i].CreatedAt, out[i].UpdatedAt = out[i].CreatedAt.UTC(), out[i].UpdatedAt.UTC()
		ps[i] = &out[i]
	}
	if err := s.withTransactions(db, inst, ps); err != nil {
		return nil, err
	}
	if err := s.auditRead(ctx, inst, pid, "fees", nil); err != nil {
		return nil, err
	}
	return out, nil
}

// Balance returns what the patron primaryID owes, per currency: the sum of
// what remains of their open fees (amounts minus payments and waivers). A
// patron who owes nothing gets an empty map. The sums are made here, not
// by the database, and cannot fail: no fee is more than Options.MaxFee, so
// no real balance comes near the largest int64, and one that would (fees
// stored before that limit) stops at it. The read is on the audit trail
// ("balance") unless the patron reads their own.
func (s *Service) Balance(ctx context.Context, inst, primaryID string) (map[string]int64, error) {
	uid, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	out, err := s.balance(s.conn(ctx), inst, uid)
	if err != nil {
		return nil, err
	}
	if err := s.auditRead(ctx, inst, pid, "balance", nil); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) balance(db *gorm.DB, inst, userID string) (map[string]int64, error) {
	owed, err := s.balances(db, inst, []string{userID})
	if owed[userID] == nil {
		return map[string]int64{}, err
	}
	return owed[userID], err
}

// balances is balance for several users at once, by user id; a user who
// owes nothing is left out.
func (s *Service) balances(db *gorm.DB, inst string, userIDs []string) (map[string]map[string]int64, error) {
	// One row per open fee: a SUM would overflow in SQLite and not fit an
	// int64 from PostgreSQL or MySQL past the largest int64.
	var rows []struct {
		UserID   string
		Currency string
		Owed     int64
	}
	if err := db.Model(&Fee{}).Select("user_id, currency, amount - paid - waived AS owed").
		Where("institution = ? AND user_id IN ? AND status = ?", inst, userIDs, FeeOpen).
		Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := map[string]map[string]int64{}
	for _, r := range rows {
		if out[r.UserID] == nil {
			out[r.UserID] = map[string]int64{}
		}
		out[r.UserID][r.Currency] = AddOwed(out[r.UserID][r.Currency], r.Owed)
	}
	for id, m := range out {
		for c, v := range m {
			if v == 0 {
				delete(m, c)
			}
		}
		if len(m) == 0 {
			delete(out, id)
		}
	}
	return out, nil
}

// AddFee charges the patron primaryID a manual fee. It is Invalid unless
// the amount is more than 0 and at most Options.MaxFee, the currency is an
// ISO 4217 code of Options.Currencies and there is a description, each
// refusal naming its field. The actor of ctx (patron.ActorFrom) is
// recorded as CreatedBy.
func (s *Service) AddFee(ctx context.Context, inst, primaryID string, in NewFee) (*Fee, error) {
	// The patron first: someone else's patron is NotFound, whatever the
	// fee says.
	ps, err := s.patronService()
	if err != nil {
		return nil, err
	}
	uid, pid, err := ps.ID(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	trim(&in.Currency, &in.Description, &in.Barcode)
	in.Currency = strings.ToUpper(in.Currency)
	c := &checker{}
	c.record(in)
	c.fee("amount", in.Amount, 1, s.maxFee, in.Currency)
	s.currencies.check(c, "currency", in.Currency)
	c.text("description", in.Description, true, 1000)
	c.text("barcode", in.Barcode, false, 255)
	if err := c.err("fee"); err != nil {
		return nil, err
	}
	a, _ := patron.ActorFrom(ctx)
	now := s.loanClock()
	f := &Fee{ID: keys.NewID(), Institution: inst, UserID: uid, PrimaryID: pid, Type: FeeManual, Barcode: in.Barcode,
		Description: in.Description, Amount: in.Amount, Currency: in.Currency, Status: FeeOpen, CreatedBy: a.ID,
		CreatedAt: now, UpdatedAt: now, Version: 1, Transactions: []Transaction{}}
	if err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		if err := ps.LockUser(ctx, inst, uid); err != nil {
			return err
		}
		return s.charge(ctx, tx, f)
	}); err != nil {
		return nil, s.translate(err)
	}
	return f, nil
}

// Pay records a payment of amount (minor units) on the fee feeID of the
// patron primaryID and returns the fee. A partial payment leaves the fee
// open; one that pays what remains closes it. Paying more than remains,
// or 0 or less, is Invalid (naming amount: what remains bounds every
// payment, so none can overflow, and a fee stored larger than MaxFee can
// still be paid or waived whole); a closed fee is Refused; an unknown fee (or
// one of another patron) is NotFound. See Fee for how concurrent payments
// are kept apart.
func (s *Service) Pay(ctx context.Context, inst, primaryID, feeID string, amount int64) (*Fee, error) {
	return s.take(ctx, inst, primaryID, feeID, Payment, amount, "", PaymentDetails{})
}

// PaymentDetails tell more of a payment (see Transaction): each is
// optional; Method is at most 64 characters, Comment 1000 and ExternalID
// 255, or the payment is Invalid naming the field (method, comment,
// external_transaction_id).
type PaymentDetails struct {
	Method, Comment, ExternalID string
}

// PayWith is Pay, with the payment's details kept on its transaction.
func (s *Service) PayWith(ctx context.Context, inst, primaryID, feeID string, amount int64, d PaymentDetails) (*Fee, error) {
	return s.take(ctx, inst, primaryID, feeID, Payment, amount, "", d)
}

// Waive forgives amount (minor units) of the fee feeID of the patron
// primaryID, for reason (required), and returns the fee; a waiver of what
// remains closes it. A staff user cannot waive a fee of their own: when
// the actor of ctx (patron.ActorFrom) is the fee's patron, the waiver is
// Refused. Amounts are checked as Pay checks them.
func (s *Service) Waive(ctx context.Context, inst, primaryID, feeID string, amount int64, reason string) (*Fee, error) {
	return s.take(ctx, inst, primaryID, feeID, Waiver, amount, strings.TrimSpace(reason), PaymentDetails{})
}

// take records a payment or a waiver.
func (s *Service) take(ctx context.Context, inst, primaryID, feeID, kind string, amount int64, reason string, d PaymentDetails) (*Fee, error) {
	// The fee first: someone else's fee is NotFound, whatever the amount.
	uid, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	fee, err := s.fee(s.conn(ctx), inst, uid, feeID)
	if err != nil {
		return nil, err
	}
	c := &checker{}
	if amount <= 0 {
		c.add("amount", "out_of_range", "must be more than 0")
	}
	if kind == Waiver {
		c.note("reason", reason, true, 1000)
	}
	d.Method, d.Comment, d.ExternalID = strings.TrimSpace(d.Method), strings.TrimSpace(d.Comment), strings.TrimSpace(d.ExternalID)
	c.note("method", d.Method, false, 64)
	c.note("comment", d.Comment, false, 1000)
	c.note("external_transaction_id", d.ExternalID, false, 255)
	if err := c.err(kind); err != nil {
		return nil, err
	}
	a, _ := patron.ActorFrom(ctx)
	if kind == Waiver && a.ID != "" && (a.Institution == "" || a.Institution == inst) &&
		(a.ID == fee.UserID || keys.Fold(a.ID) == keys.Fold(fee.PrimaryID) || keys.Fold(a.ID) == keys.Fold(primaryID)) {
		return nil, refused(fmt.Sprintf("fee %s cannot be waived", fee.ID), cause(ReasonOwnFee))
	}
	col := "paid"
	if kind == Waiver {
		col = "waived"
	}
	now := s.loanClock()
	err = s.retry(ctx, func(ctx context.Context, tx *gorm.DB) error {
		// status is assigned first: MySQL evaluates SET left to right, so
		// it must see paid and waived before they change.
		res := tx.Exec("UPDATE pk_circ_fees SET status = CASE WHEN amount - paid - waived = ? THEN ? ELSE status END, "+
			col+" = "+col+" + ?, version = version + 1, updated_at = ? "+
			"WHERE institution = ? AND id = ? AND status = ? AND amount - paid - waived >= ?",
			amount, FeeClosed, amount, now, inst, fee.ID, FeeOpen, amount)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			cur, err := s.fee(tx, inst, uid, fee.ID)
			if err != nil {
				return err
			}
			if cur.Status != FeeOpen {
				return refused(fmt.Sprintf("fee %s cannot take a %s", fee.ID, kind), cause(ReasonFeeClosed, "fee_id", fee.ID))
			}
			return &fault.Error{Kind: fault.Invalid, Detail: "the " + kind + " is not valid",
				Fields: []fault.FieldError{{Field: "amount", Code: "out_of_range",
					Message: fmt.Sprintf("is more than the %s that remains", FormatMoney(cur.Remaining(), cur.Currency))}}}
		}
		if err := tx.Create(&Transaction{ID: keys.NewID(), Institution: inst, FeeID: fee.ID, Kind: kind, Amount: amount,
			Reason: reason, By: a.ID, At: now, Method: d.Method, Comment: d.Comment, ExternalID: d.ExternalID}).Error; err != nil {
			return err
		}
		cur, err := s.fee(tx, inst, uid, fee.ID)
		if err != nil {
			return err
		}
		return s.auditTaken(ctx, tx, pid, cur, kind, amount, reason)
	})
	if err != nil {
		return nil, s.translate(err)
	}
	f, err := s.fee(s.conn(ctx), inst, uid, fee.ID)
	if err != nil {
		return nil, err
	}
	return f, s.withTransactions(s.conn(ctx), inst, []*Fee{f})
}

// Fee returns the fee feeID of the patron primaryID, with its
// transactions. A fee of another patron is NotFound. The read is on the
// audit trail ("fees", details: the fee's id) unless the patron reads
// their own.
func (s *Service) Fee(ctx context.Context, inst, primaryID, feeID string) (*Fee, error) {
	uid, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	f, err := s.fee(s.conn(ctx), inst, uid, feeID)
	if err != nil {
		return nil, err
	}
	if err := s.withTransactions(s.conn(ctx), inst, []*Fee{f}); err != nil {
		return nil, err
	}
	if err := s.auditRead(ctx, inst, pid, "fees", map[string]any{"fee_id": f.ID}); err != nil {
		return nil, err
	}
	return f, nil
}

// withTransactions fills the Transactions of fees.
func (s *Service) withTransactions(db *gorm.DB, inst string, fees []*Fee) error {
	if len(fees) == 0 {
		return nil
	}
	ids := make([]string, len(fees))
	byID := make(map[string]*Fee, len(fees))
	for i, f := range fees {
		ids[i] = f.ID
		byID[f.ID] = f
		f.Transactions = []Transaction{}
	}
	var txs []Transaction
	if err := db.Where("institution = ? AND fee_id IN ?", inst, ids).Order("at, id").Find(&txs).Error; err != nil {
		return err
	}
	for _, t := range txs {
		t.At = t.At.UTC()
		f := byID[t.FeeID]
		f.Transactions = append(f.Transactions, t)
	}
	return nil
}

// fee reads one fee of the patron with internal id uid.
func (s *Service) fee(db *gorm.DB, inst, uid, feeID string) (*Fee, error) {
	var f Fee
	err := db.Where("institution = ? AND user_id = ? AND id = ?", inst, uid, strings.TrimSpace(feeID)).Take(&f).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("no fee %s", feeID)
	}
	if err != nil {
		return nil, err
	}
	f.CreatedAt, f.UpdatedAt = f.CreatedAt.UTC(), f.UpdatedAt.UTC()
	return &f, nil
}

// auditTaken records, within tx, a payment or waiver (kind) of amount
// taken from fee f (as it is after it) of the patron pid: an update of
// "fees" whose details are the fee's id, the kind, amount, currency and
// reason of a waiver, and as {"old", "new"} what remains of the fee, its
// status when it closed and the patron's balance in its currency.
func (s *Service) auditTaken(ctx context.Context, tx *gorm.DB, pid string, f *Fee, kind string, amount int64, reason string) error {
	if s.patrons == nil {
		return nil
	}
	owed, err := s.balance(tx, f.Institution, f.UserID)
	if err != nil {
		return err
	}
	d := map[string]any{"fee_id": f.ID, "kind": kind, "amount": amount, "currency": f.Currency,
		"remaining": change(AddOwed(f.Remaining(), amount), f.Remaining()),
		"balance":   change(AddOwed(owed[f.Currency], amount), owed[f.Currency])}
	if reason != "" {
		d["reason"] = reason
	}
	if f.Status != FeeOpen {
		d["status"] = change(FeeOpen, f.Status)
	}
	return s.auditChange(ctx, f.Institution, patron.AuditUpdate, pid, "fees", d)
}

// capFee is amount, or MaxFee when it is more: what terms of use written
// before that limit (or with a higher one) are charged.
func (s *Service) capFee(amount int64) int64 { return min(amount, s.maxFee) }

// chargeLoan records a fee of type typ for a loan within tx; nothing when
// amount is 0.
func (s *Service) chargeLoan(ctx context.Context, tx *gorm.DB, l *Loan, typ string, amount int64, currency, description string, at time.Time) (*Fee, error) {
	if amount <= 0 {
		return nil, nil
	}
	// Charged to the patron as they are named now.
	pid, err := s.subject(ctx, l.Institution, l.UserID, l.PrimaryID)
	if err != nil {
		return nil, err
	}
	f := &Fee{ID: keys.NewID(), Institution: l.Institution, UserID: l.UserID, PrimaryID: pid, Type: typ, LoanID: l.ID,
		Barcode: l.ItemBarcode, Description: description, Amount: amount, Currency: currency, Status: FeeOpen,
		CreatedAt: at, UpdatedAt: at, Version: 1}
	return f, s.charge(ctx, tx, f)
}

// charge records a fee within tx, with the notice that tells the patron,
// on the audit trail: a creation of "fees" of the patron f.PrimaryID
// whose details are the fee's id, type, amount and currency, its loan and
// item when it has them, and the patron's balance in that currency
// ({"old", "new"}). No fee is more than MaxFee.
func (s *Service) charge(ctx context.Context, tx *gorm.DB, f *Fee) error {
	f.Amount = s.capFee(f.Amount)
	owed, err := s.balance(tx, f.Institution, f.UserID)
	if err != nil {
		return err
	}
	if err := tx.Create(f).Error; err != nil {
		return err
	}
	d := map[string]any{"fee_id": f.ID, "type": f.Type, "amount": f.Amount, "currency": f.Currency,
		"balance": change(owed[f.Currency], AddOwed(owed[f.Currency], f.Amount))}
	if f.LoanID != "" {
		d["loan_id"] = f.LoanID
	}
	if f.Barcode != "" {
		d["item_barcode"] = f.Barcode
	}
	if err := s.auditChange(ctx, f.Institution, patron.AuditCreate, f.PrimaryID, "fees", d); err != nil {
		return err
	}
	return s.queueNotice(ctx, tx, f.Institution, f.UserID, NoticeFineCharged, "fine_charged:"+f.ID,
		noticeData{Amount: FormatMoney(f.Amount, f.Currency), Description: f.Description, Barcode: f.Barcode}, f.LoanID, nil)
}

// overdueFine is the fine under t for a loan due at due and returned (or
// looked at) at at: nothing within the grace period; after it, OverdueFine
// for every started day or hour since the due date, capped by MaxFine and
// by Options.MaxFee, without ever overflowing.
func (s *Service) overdueFine(t Terms, due, at time.Time) int64 {
	if t.OverdueFine <= 0 || !at.After(due) {
		return 0
	}
	late := at.Sub(due)
	if late <= period(t.GracePeriod, t.GracePeriodUnit) {
		return 0
	}
	unit := 24 * time.Hour
	if t.OverdueFineUnit == PerHour {
		unit = time.Hour
	}
	n := int64((late + unit - 1) / unit)
	limit := s.maxFee
	if t.MaxFine > 0 && t.MaxFine < limit {
		limit = t.MaxFine
	}
	if n > limit/t.OverdueFine {
		return limit
	}
	return n * t.OverdueFine
}

// period is n units (minutes, hours, days, weeks) as a duration.
func period(n int, unit string) time.Duration {
	switch unit {
	case Minutes:
		return time.Duration(n) * time.Minute
	case Hours:
		return time.Duration(n) * time.Hour
	case Weeks:
		return time.Duration(n) * 7 * 24 * time.Hour
	default:
		return time.Duration(n) * 24 * time.Hour
	}
}
