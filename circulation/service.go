// Package circulation keeps what a library lends and on what terms: its
// libraries (with their time zone, pickup locations and the days they are
// closed), its items, the terms of use that say, for a user group and an
// item, how long a loan lasts, how often it may be renewed and what fines
// and fees it may cost, and the loans themselves: check-out (also by a
// proxy), check-in, renewals and the loan history of patrons and items;
// and what patrons owe: overdue fines, lost-item fees and manual fees, with
// their payments and waivers (see Fee).
//
// Every method takes the institution code (inst) whose data it reads or
// writes; nothing is ever shared between institutions. Errors a caller can
// act on are *fault.Error values of the usual kinds (Invalid with field
// errors, NotFound, Conflict, Stale, Refused), so that the HTTP adapter
// answers them as it answers the patron service's.
//
// Every method reads and writes within the transaction its context
// carries, when it carries one (patronkit.WithTx, Kit.InTx), in a
// savepoint of it, and so do the patron service's calls it makes;
// otherwise its writes are in transactions of its own, retried on a
// deadlock. The periodic jobs (DeclareOverdueLost, ExpireRequests,
// QueueDueNotices, SendNotices) work the same way with the context the
// kit's Start gives them, which carries none.
//
// # The audit trail
//
// The service puts on the patron service's audit trail (patron.AuditSink;
// the kit's is the privacy module's) what it does with a patron's
// circulation data, whichever way the call came in:
//
//   - Every read of it by someone other than the patron themself (a staff
//     user, a job, a host's call without an actor), before the data is
//     returned: patron.AuditRead, the subject the patron, What the part
//     read: "loans" (open loans, or one loan), "loan history", "fees"
//     (the list, or one), "balance", "requests" (the list, one, or the
//     patron's place in a queue), "blocks", "notices" (the list, or one),
//     "notice settings" and "account" (the summary). A list naming
//     several patrons (the loans or the requests of an item) gives one
//     event per patron named. When the event cannot be kept the read
//     fails and returns nothing. Reads by the patron themself (the actor
//     is a patron, patron.Actor.Patron, whose id is the subject's
//     primary_id: the account package's calls for the /me routes) are
//     not recorded. The terms of use quoted for a user (Quote, TermsFor)
//     are the library's rules for the user's group, which the caller
//     read on the user's record (itself on the trail): no event.
//   - Every change of it, within the change's own transaction: an event
//     that cannot be kept fails the change, and a change that fails
//     leaves no event. patron.AuditCreate for a loan made, a fee charged
//     and a request placed; patron.AuditUpdate for the rest. What is
//     "loans", "fees", "requests" or "notice settings"; the actor is the
//     one ctx carries, or the job's (system:lost-items,
//     system:request-expiry) when the periodic jobs run without one.
//
// Details are a JSON object: the record concerned by its id (loan_id,
// fee_id, request_id, notice_id) and what identifies it to a person
// (item_barcode), as plain values; on a change, every field changed as
// {"old": ..., "new": ...}, and on a creation the fields set as plain
// values. Times are RFC 3339 in UTC, amounts integer minor units of the
// currency named. No PIN, password or address is ever in them. By change:
//
//   - check-out: loan_id, item_barcode, library, due_date and
//     proxy_primary_id (when a proxy borrowed);
//   - check-in, declared lost, a lost item back: loan_id, item_barcode,
//     status and return_date as {"old", "new"};
//   - renewal (each loan): loan_id, item_barcode, due_date and renewals
//     as {"old", "new"};
//   - fee charged (manual, overdue fine, lost item, delivery): fee_id,
//     type, amount, currency, loan_id and item_barcode (when it has them),
//     and balance, what the patron owes in that currency, {"old", "new"};
//   - payment or waiver (also the system's, of a fee whose cause went
//     away): fee_id, kind, amount, currency, reason (of a waiver), and as
//     {"old", "new"} remaining (of the fee), balance, and status when the
//     fee closed;
//   - request placed: request_id, status, item_barcode or title_id,
//     pickup_library or delivery (true), not_needed_after, fee_id;
//   - request on the hold shelf, fulfilled, cancelled or expired:
//     request_id, item_barcode, status as {"old", "new"}, and hold_until
//     or the reason;
//   - notice settings: opt_outs as {"old", "new"}.
//
// circulation builds on package patron (users and their groups); patron
// never imports circulation.
package circulation

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dberr"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"

	// Due dates are computed in each library's time zone: the zone database
	// is built in, so that hosts without /usr/share/zoneinfo work too.
	_ "time/tzdata"
)

// Options configures a Service. The zero value is usable.
type Options struct {
	// Now is the clock, read for the dates records are written. Default:
	// time.Now.
	Now func() time.Time
	// Logger logs what goes wrong outside a caller's request. Default:
	// slog.Default().
	Logger *slog.Logger
	// Patrons is the patron service whose users borrow: check-outs and
	// renewals read their group, status, expiry, blocks and proxy
	// relations from it. Required for loans (CheckOut, Renew, RenewMany);
	// the other methods do without. Notices sent are archived on its
	// records.
	Patrons *patron.Service
	// Email and SMS deliver notices by email and by SMS (see
	// adapters/notify); notices of a channel without one wait, pending.
	Email Notifier
	SMS   Notifier
	// Templates holds the host's notice templates, {language}/{kind}.tmpl
	// (e.g. es/due_soon.tmpl), each defining "subject", "body" and "sms";
	// they take precedence over the built-in English ones. Its
	// {language}/reasons.tmpl are the texts of refusal reasons, one
	// template per reason code (see ReasonText): they replace the
	// built-in ones (English and Spanish) code by code, or add a
	// language. Default: none.
	Templates fs.FS
	// DueSoon is how long before its due date a loan gets its due-soon
	// notice. Default: 2 days.
	DueSoon time.Duration
	// NoticeClaim is how long a sender may hold a notice before another
	// takes it (see Notice). Default: 10 minutes.
	NoticeClaim time.Duration
	// MaxFee is the largest amount of one fee, in minor units of its
	// currency: a manual fee above it is refused (Invalid, naming
	// amount), and so are terms of use whose fine per day or hour, fine
	// cap, lost-item fee or delivery fee is above it; an overdue fine
	// stops growing at it. Default: DefaultMaxFee (1,000,000.00 in a
	// currency of two decimals); at most MaxFeeLimit.
	MaxFee int64
	// Currencies are the currencies the institutions accept, each an ISO
	// 4217 code; the first is the one the others' rates are in (see
	// Currency). A fee, terms of use or a block limit in another currency
	// is refused (Invalid, naming its currency). Default: USD alone.
	Currencies []Currency
	// Items is the host's catalog, for a host whose items are described
	// elsewhere: a barcode the item table does not hold yet is asked of
	// it, and the item it answers is added to the table (see Item).
	// Default: none; only the items added here circulate.
	Items ItemLookup
}

// Service keeps the libraries, items and terms of use of every institution
// in one database (tables named pk_circ_...). It is safe for concurrent use.
type Service struct {
	db          *gorm.DB
	now         func() time.Time
	log         *slog.Logger
	patrons     *patron.Service
	email, sms  Notifier
	templates   *templates
	reasons     *reasonCatalog
	dueSoon     time.Duration
	noticeClaim time.Duration
	maxFee      int64
	currencies  currencies
	items       ItemLookup
}

// NewService returns a Service over db. It works on a session of db and
// never changes the host's settings. The tables must exist: run
// Migrations first (the kit's Migrate does).
func NewService(db *gorm.DB, o Options) (*Service, error) {
	if db == nil {
		return nil, errors.New("circulation: NewService needs a database")
	}
	if o.MaxFee < 0 || o.MaxFee > MaxFeeLimit {
		return nil, fmt.Errorf("circulation: MaxFee %d is not between 0 (the default) and %d", o.MaxFee, MaxFeeLimit)
	}
	cs, err := newCurrencies(o.Currencies)
	if err != nil {
		return nil, err
	}
	s := &Service{db: db.Session(&gorm.Session{NewDB: true}), now: o.Now, log: o.Logger, patrons: o.Patrons,
		email: o.Email, sms: o.SMS, templates: &templates{host: o.Templates}, reasons: &reasonCatalog{host: o.Templates}, dueSoon: o.DueSoon, noticeClaim: o.NoticeClaim,
		maxFee: o.MaxFee, currencies: cs, items: o.Items}
	if s.maxFee == 0 {
		s.maxFee = DefaultMaxFee
	}
	if s.dueSoon <= 0 {
		s.dueSoon = 48 * time.Hour
	}
	if s.noticeClaim <= 0 {
		s.noticeClaim = 10 * time.Minute
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.reasons.log = s.log
	return s, nil
}

func (s *Service) clock() time.Time { return s.now().UTC() }

// conn is what the service reads and writes through: the transaction ctx
// carries (the host's, or one the service opened), or its own database.
func (s *Service) conn(ctx context.Context) *gorm.DB { return txctx.DB(ctx, s.db) }

// inTx runs fn in a transaction: a savepoint of the one ctx carries, or a
// transaction of its own. fn's ctx carries it, so that the patron service
// called with it reads and writes in it too.
func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context, tx *gorm.DB) error) error {
	return txctx.Transaction(ctx, s.db, fn)
}

// translate maps database errors to the service's own (see dberr.Translate).
func (s *Service) translate(err error) error {
	return dberr.Translate(s.db, err, "the record conflicts with one written at the same time (a code or barcode is taken)")
}

func notFound(format string, args ...any) *fault.Error {
	return &fault.Error{Kind: fault.NotFound, Detail: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *fault.Error {
	return &fault.Error{Kind: fault.Conflict, Detail: fmt.Sprintf(format, args...)}
}

func stale(format string, args ...any) *fault.Error {
	return &fault.Error{Kind: fault.Stale, Detail: fmt.Sprintf(format, args...)}
}

// checker gathers the field errors of one record, with the stable codes the
// patron records use: required, too_long, unknown_value, bad_format,
// out_of_range.
type checker struct {
	prefix string
	fields []fault.FieldError
}

func (c *checker) add(field, code, format string, args ...any) {
	c.fields = append(c.fields, fault.FieldError{Field: c.prefix + field, Code: code, Message: fmt.Sprintf(format, args...)})
}

// text checks a trimmed string of one line: present when required, at
// most max characters, and text as patron.TextError says (no control
// character but tab and line feed, valid UTF-8).
func (c *checker) text(field, v string, required bool, max int) {
	c.textOf(field, v, required, max, false)
}

// note is text that may take several lines: carriage returns allowed.
func (c *checker) note(field, v string, required bool, max int) {
	c.textOf(field, v, required, max, true)
}

func (c *checker) textOf(field, v string, required bool, max int, multiLine bool) {
	switch {
	case v == "" && required:
		c.add(field, "required", "is required")
	case len([]rune(v)) > max:
		c.add(field, "too_long", "is longer than %d characters", max)
	}
	if e := patron.TextError(c.prefix+field, v, multiLine); e != nil {
		c.once(*e)
	}
}

// once adds a field error unless the same one is there already (a field
// checked by its own check and by record).
func (c *checker) once(f fault.FieldError) {
	if !slices.Contains(c.fields, f) {
		c.fields = append(c.fields, f)
	}
}

// record checks every string field of a record by the text rule
// (patron.TextErrors), so that a field no other check names is checked
// too.
func (c *checker) record(v any) {
	for _, f := range patron.TextErrors(strings.TrimSuffix(c.prefix, "."), v) {
		c.once(f)
	}
}

// code checks a code: letters, digits, '-', '_' and '.', at most max; not
// "." or "..", which cannot name a code in a URL path.
func (c *checker) code(field, v string, required bool, max int) {
	c.text(field, v, required, max)
	if strings.ContainsFunc(v, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) {
		c.add(field, "bad_format", "may hold only letters, digits, '-', '_' and '.'")
	} else if v == "." || v == ".." {
		c.add(field, "bad_format", `must not be "." or "..": a URL cannot name it`)
	}
}

// date checks a civil date written YYYY-MM-DD.
func (c *checker) date(field, v string, required bool) {
	if v == "" {
		if required {
			c.add(field, "required", "is required")
		}
		return
	}
	if _, err := time.Parse(time.DateOnly, v); err != nil {
		c.add(field, "bad_format", "is not a date written YYYY-MM-DD")
	}
}

func (c *checker) oneOf(field, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	c.add(field, "unknown_value", "must be one of: %s", strings.Join(allowed, ", "))
}

func (c *checker) min(field string, v, min int64) {
	if v < min {
		c.add(field, "out_of_range", "is less than %d", min)
	}
}

// fee checks an amount of money in minor units of currency: at least min
// and at most max, the largest fee.
func (c *checker) fee(field string, v, min, max int64, currency string) {
	switch {
	case v < min && min == 1:
		c.add(field, "out_of_range", "must be more than 0")
	case v < min:
		c.add(field, "out_of_range", "is less than %d", min)
	case v > max && isCurrency(currency):
		c.add(field, "out_of_range", "is more than %s, the largest fee the library charges", FormatMoney(max, currency))
	case v > max:
		c.add(field, "out_of_range", "is more than %d minor units, the largest fee the library charges", max)
	}
}

func (c *checker) err(what string) error {
	if len(c.fields) == 0 {
		return nil
	}
	return &fault.Error{Kind: fault.Invalid, Detail: "the " + what + " is not valid", Fields: c.fields}
}

func trim(ps ...*string) {
	for _, p := range ps {
		*p = strings.TrimSpace(*p)
	}
}

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
