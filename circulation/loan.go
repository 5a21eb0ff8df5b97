package circulation

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
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

// refused is a refusal of detail for reasons, with their codes and texts.
func refused(detail string, reasons ...fault.Reason) *fault.Error {
	return fault.Refuse(detail, reasons...)
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
	id, _, err := s.userOf(ctx, inst, primaryID)
	return id, err
}

// userOf returns the internal id of the patron primaryID (any case) and
// their primary_id as the record spells it.
func (s *Service) userOf(ctx context.Context, inst, primaryID string) (id, spelled string, err error) {
	ps, err := s.patronService()
	if err != nil {
		return "", "", err
	}
	return ps.ID(ctx, inst, primaryID)
}

// Loans returns the patron primaryID's open loans by due date, each with
// its Overdue flag and AccruedFine computed from the clock, or (open
// false) their returned and lost loans, the latest first. The read is on
// the audit trail ("loans" or "loan history") unless the patron reads
// their own.
func (s *Service) Loans(ctx context.Context, inst, primaryID string, open bool) ([]Loan, error) {
	out, _, err := s.LoansPage(ctx, inst, primaryID, open, -1, 0)
	return out, err
}

// LoansPage is Loans a page at a time: at most limit loans (-1: all; 0:
// none, only their number) after skipping offset, and the number of loans
// in all pages.
func (s *Service) LoansPage(ctx context.Context, inst, primaryID string, open bool, limit, offset int) ([]Loan, int64, error) {
	out, total, pid, err := s.loansPage(ctx, inst, primaryID, open, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	what := "loans"
	if !open {
		what = "loan history"
	}
	if err := s.auditRead(ctx, inst, pid, what, nil); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// loansPage is LoansPage unrecorded, with the patron's primary_id as
// their record spells it.
func (s *Service) loansPage(ctx context.Context, inst, primaryID string, open bool, limit, offset int) ([]Loan, int64, string, error) {
	id, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, 0, "", err
	}
	q := s.conn(ctx).Model(&Loan{}).Where("institution = ? AND user_id = ?", inst, id)
	if open {
		q = q.Where("status = ?", LoanOpen)
	} else {
		q = q.Where("status IN ?", []string{LoanComplete, LoanLost})
	}
	order := "returned_at DESC, id DESC"
	if open {
		order = "due_at, id"
	}
	out, total, err := s.loanPage(q, order, limit, offset)
	if err != nil || !open {
		return out, total, pid, err
	}
	var user *patron.User
	now := s.loanClock()
	for i := range out {
		if !out[i].Overdue {
			continue
		}
		if !out[i].ChargesSet && user == nil && s.patrons != nil {
			if user, err = s.loanUser(ctx, s.patrons, inst, &out[i]); err != nil {
				return nil, 0, "", err
			}
		}
		t, err := s.loanTerms(ctx, inst, &out[i], user, nil)
		if err != nil {
			return nil, 0, "", err
		}
		if fine := s.overdueFine(t, out[i].DueAt, now); fine > 0 {
			out[i].AccruedFine, out[i].FineCurrency = fine, t.Currency
		}
	}
	return out, total, pid, nil
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

// loanPage reads one page of q's loans in order and the number of loans
// in all pages. It asks for one loan more than a page holds: when there is
// none, the page is the last and the loans need no count (one query
// instead of two for most patrons).
func (s *Service) loanPage(q *gorm.DB, order string, limit, offset int) ([]Loan, int64, error) {
	if limit <= 0 { // every loan, or none but their number
		total, err := countPage(q, limit, offset)
		if err != nil {
			return nil, 0, err
		}
		out, err := s.finishLoans(page(q.Session(&gorm.Session{}).Order(order), limit, offset), 0)
		return out, max(total, int64(len(out))), err
	}
	out, err := s.finishLoans(page(q.Session(&gorm.Session{}).Order(order), limit+1, offset), min(limit+1, maxLoansRoom))
	if err != nil {
		return nil, 0, err
	}
	if len(out) <= limit && (len(out) > 0 || offset == 0) {
		return out, int64(offset + len(out)), nil
	}
	total, err := countPage(q, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	out = out[:min(len(out), limit)]
	return out, max(total, int64(len(out))), nil
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
// the latest first. The read is on the audit trail: one "loans" event
// per patron the loans name (details: the item's barcode and their
// loans' ids), but the actor's own.
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
	out, err := s.finishLoans(page(q.Order("loaned_at DESC, id DESC"), limit, offset), 0)
	if err != nil {
		return nil, 0, err
	}
	if err := s.auditLoans(ctx, inst, "loans", out, map[string]any{"item_barcode": item.Barcode}); err != nil {
		return nil, 0, err
	}
	return out, max(total, int64(len(out))), nil
}

// auditLoans records a read of what of the patrons loans name: one event
// per patron, its details d and their loans' ids (loan_id for one,
// loan_ids for several).
func (s *Service) auditLoans(ctx context.Context, inst, what string, loans []Loan, d map[string]any) error {
	return auditRows(ctx, s, inst, what, "loan", loans, func(l Loan) (string, string, string) { return l.UserID, l.PrimaryID, l.ID }, d)
}

// Loan returns the loan id, open or closed, with its Overdue flag. The
// read is on the audit trail ("loans", details: the loan's id and item
// barcode) unless its patron reads their own.
func (s *Service) Loan(ctx context.Context, inst, id string) (*Loan, error) {
	out, err := s.finishLoans(s.conn(ctx).Where("institution = ? AND id = ?", inst, strings.TrimSpace(id)), 1)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, notFound("no loan %s", id)
	}
	if err := s.auditLoans(ctx, inst, "loans", out, map[string]any{"item_barcode": out[0].ItemBarcode}); err != nil {
		return nil, err
	}
	return &out[0], nil
}

// maxLoansRoom caps the room finishLoans makes ahead for a page's loans,
// whatever the limit asked.
const maxLoansRoom = 128

// finishLoans reads q's loans, with room made ahead for size of them
// (read into a slice that grows as it goes, 100 loans cost several
// copies), and sets their Overdue flags and times in UTC.
func (s *Service) finishLoans(q *gorm.DB, size int) ([]Loan, error) {
	out := make([]Loan, 0, size)
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
