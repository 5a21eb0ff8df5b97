// Package account holds the rules of a patron's own account, "My Library
// Card": what a patron sees of their record and their circulation, what
// they may do themselves (renew their loans, place and cancel their
// requests) and what they may change of their settings (which of their
// contacts is preferred, SMS, language, the notices they opt out of).
//
// It knows no web framework: the HTTP adapter (adapters/ginapi, the /me
// routes) calls it, and so will the patron's web pages and SIP2. Every
// method acts on the account of the patron primaryID of institution inst
// and nothing else, whatever else the caller names: a loan, request or
// notice of another patron is not found. Errors are the *fault.Error
// values of the modules below (NotFound, Invalid with field errors,
// Refused with reasons...).
//
// Who the patron is, is the caller's to know (the adapter's sign-in); who
// may use this package is the access policy's.
package account

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// Options configures a Service.
type Options struct {
	// Patrons keeps the patrons' records. Required.
	Patrons *patron.Service
	// Circulation keeps their loans, requests, fees, blocks and notices.
	// Required.
	Circulation *circulation.Service
	// Now is the clock the terms of use are quoted at. Default: time.Now.
	Now func() time.Time
	// DB is the database of the patron and circulation services: a change
	// of settings writes the record and the notice opt-outs in one
	// transaction on it (or in the transaction the context carries).
	// Required.
	DB *gorm.DB
	// History keeps the patron's choice about their loan history and
	// deletes it on request (the kit wires privacy.Retention). Default:
	// none; the settings show HistoryLibraryRule and refuse a change.
	History LoanHistory
}

// The patron's choices about their loan history (Settings.LoanHistory),
// as privacy.Retention keeps them.
const (
	// HistoryLibraryRule follows the library's retention rules.
	HistoryLibraryRule = "library_rule"
	// HistoryForever keeps their returned loans with their name.
	HistoryForever = "forever"
	// HistoryNever anonymizes their loans once returned and their fees
	// closed, at the next anonymization run; no staff user can keep them.
	HistoryNever = "never"
)

// HistoryChoices lists the choices a patron may make about their loan
// history.
var HistoryChoices = []string{HistoryLibraryRule, HistoryForever, HistoryNever}

// LoanHistory keeps each patron's choice about their loan history and
// anonymizes their history on request. Only the patron's own account
// changes the choice: staff have no call for it.
type LoanHistory interface {
	// HistoryChoice answers the choice of the user (by internal id),
	// HistoryLibraryRule when they made none.
	HistoryChoice(ctx context.Context, inst, userID string) (string, error)
	// SetHistoryChoice stores it, in the transaction ctx carries.
	SetHistoryChoice(ctx context.Context, inst, userID, choice string) error
	// DeleteHistory anonymizes every closed loan, fee, request and
	// notice of the user now (a returned loan with a fee still open is
	// kept) and answers how many of each.
	DeleteHistory(ctx context.Context, inst, userID string) (HistoryDeleted, error)
}

// HistoryDeleted counts what "delete my history now" anonymized.
type HistoryDeleted struct {
	Loans    int64 `json:"loans"`
	Fees     int64 `json:"fees"`
	Requests int64 `json:"requests"`
	Notices  int64 `json:"notices"`
}

// Service answers a patron about their own account and carries out what
// they may do themselves. It is safe for concurrent use.
type Service struct {
	db      *gorm.DB
	patrons *patron.Service
	circ    *circulation.Service
	now     func() time.Time
	history LoanHistory
}

// NewService returns a Service over the patron and circulation services.
func NewService(o Options) (*Service, error) {
	if o.Patrons == nil || o.Circulation == nil || o.DB == nil {
		return nil, errors.New("account: NewService needs Options.Patrons, Options.Circulation and Options.DB")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{db: o.DB, patrons: o.Patrons, circ: o.Circulation, now: o.Now, history: o.History}, nil
}

// View is what a patron may see of their own record: the notes meant for
// them (user_viewable) and none for staff only, and no warnings meant for
// staff. u is not changed.
func View(u *patron.User) *patron.User {
	v := *u
	v.Notes = nil
	for _, n := range u.Notes {
		if n.UserViewable {
			v.Notes = append(v.Notes, n)
		}
	}
	v.Warnings = nil
	return &v
}

// Overview is the patron's account at a glance: their record as they may
// see it (View) and the counts of their circulation.
type Overview struct {
	// User is the patron's record as View shows it; its Version is the
	// record's.
	User *patron.User
	// Loans counts the open loans, OverdueLoans those of them overdue.
	Loans        int
	OverdueLoans int
	// Requests counts the active requests (waiting or on the hold shelf),
	// OnHoldShelf those ready to pick up.
	Requests    int
	OnHoldShelf int
	// Balance is what the patron owes, in minor units per currency.
	Balance map[string]int64
	// LoanHistory is the patron's choice about their loan history (one
	// of HistoryChoices).
	LoanHistory string
}

// Overview answers the patron's account at a glance.
func (s *Service) Overview(ctx context.Context, inst, primaryID string) (*Overview, error) {
	u, err := s.patrons.Get(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	acc, err := s.circ.Account(ctx, inst, u.PrimaryID)
	if err != nil {
		return nil, err
	}
	choice, err := s.historyChoice(ctx, inst, u.ID)
	if err != nil {
		return nil, err
	}
	return &Overview{User: View(u), Loans: acc.Loans, OverdueLoans: acc.OverdueLoans, Requests: acc.Requests,
		OnHoldShelf: acc.OnHoldShelf, Balance: acc.Balance, LoanHistory: choice}, nil
}

// HistoryChoice answers the patron's choice about their loan history
// (one of HistoryChoices), as Overview does, reading nothing else of
// their account.
func (s *Service) HistoryChoice(ctx context.Context, inst, primaryID string) (string, error) {
	id, _, err := s.patrons.ID(ctx, inst, primaryID)
	if err != nil {
		return "", err
	}
	return s.historyChoice(ctx, inst, id)
}

func (s *Service) historyChoice(ctx context.Context, inst, userID string) (string, error) {
	if s.history == nil {
		return HistoryLibraryRule, nil
	}
	return s.history.HistoryChoice(ctx, inst, userID)
}

// DeleteHistory anonymizes the patron's closed loans, fees, requests and
// notices now ("delete my history"): they stay for the library's
// statistics without the patron's name. A returned loan with a fee still
// open is kept until the fee closes. Refused when the kit keeps no
// history choices (Options.History).
func (s *Service) DeleteHistory(ctx context.Context, inst, primaryID string) (*HistoryDeleted, error) {
	u, err := s.patrons.Get(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	if s.history == nil {
		return nil, &fault.Error{Kind: fault.Refused, Detail: "the loan history cannot be deleted here", Reasons: []string{"no_history_service"}}
	}
	d, err := s.history.DeleteHistory(ctx, inst, u.ID)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Terms answers the terms of use the patron would get for the item with
// barcode if they borrowed it now, the due date such a loan would have,
// and the rule that gives them. The patron is looked up first: an unknown
// one is NotFound whatever the item; then a blank barcode is Invalid
// (barcode, required), an unknown item NotFound, and terms that refuse
// the loan (no rule matches, a fixed due date has passed) Refused.
func (s *Service) Terms(ctx context.Context, inst, primaryID, barcode string) (*circulation.Quote, error) {
	u, err := s.patrons.Get(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	barcode = strings.TrimSpace(barcode)
	if barcode == "" {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "barcode is required: the item the terms are for",
			Fields: []fault.FieldError{{Field: "barcode", Code: "required", Message: "is required"}}}
	}
	it, err := s.circ.Item(ctx, inst, barcode)
	if err != nil {
		return nil, err
	}
	q, err := s.circ.Quote(ctx, inst, u, it, s.now())
	if err != nil {
		return nil, err
	}
	return &q, nil
}
