package circulation

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"text/template"

	"github.com/patronkit/patronkit/fault"
)

// The codes of the reasons circulation refuses an action for (the Code
// of a fault.Reason in fault.Error.Causes, RenewResult.Causes and
// Block.Cause). Their named values (Args) are listed with each; every
// value is a string.
const (
	// ReasonAccountInactive: the patron's account is not active
	// (primary_id).
	ReasonAccountInactive = "account_inactive"
	// ReasonAccountExpired: the patron's account has expired
	// (primary_id, expiry_date).
	ReasonAccountExpired = "account_expired"
	// ReasonBlocked: a manual block of the patron's record (primary_id,
	// block_type, description).
	ReasonBlocked = "blocked"
	// ReasonBalanceLimit: the patron owes more than their group's limit
	// (primary_id; owed, the amounts owed with their currencies separated
	// by ", "; limit; total, what they come to at the library's rates,
	// when converted; no_rate, the currencies without a rate, separated by
	// ", ").
	ReasonBalanceLimit = "balance_limit"
	// ReasonOverdueLimit: the patron has more overdue loans than their
	// group's limit (primary_id, overdue, limit).
	ReasonOverdueLimit = "overdue_limit"
	// ReasonNotProxy: the proxy holds no active proxy-for relation naming
	// the patron (proxy, primary_id).
	ReasonNotProxy = "not_proxy"
	// ReasonProxyInactive: the proxy's account is not active (proxy).
	ReasonProxyInactive = "proxy_inactive"
	// ReasonProxyExpired: the proxy's account has expired (proxy,
	// expiry_date).
	ReasonProxyExpired = "proxy_expired"
	// ReasonItemOnHoldShelf: the item is on the hold shelf for another
	// patron (barcode).
	ReasonItemOnHoldShelf = "item_on_hold_shelf"
	// ReasonItemNotAvailable: the item's status does not let it go
	// (barcode, status: one of the Status values).
	ReasonItemNotAvailable = "item_not_available"
	// ReasonItemNoLongerAvailable: the item was lent or changed while it
	// was being lent (barcode).
	ReasonItemNoLongerAvailable = "item_no_longer_available"
	// ReasonMaxLoans: the patron holds the most loans the terms allow
	// (primary_id, limit).
	ReasonMaxLoans = "max_loans"
	// ReasonNoRule: no rule of the terms of use matches (user_group,
	// item_policy, library, material_type).
	ReasonNoRule = "no_rule"
	// ReasonFixedDueDatePassed: the rule's fixed due date has passed
	// (fixed_due_date).
	ReasonFixedDueDatePassed = "fixed_due_date_passed"
	// ReasonNoOpenDay: the library has no open day to be due on (library,
	// from, to).
	ReasonNoOpenDay = "no_open_day"
	// ReasonUnderRule: the reason before it comes from this rule of the
	// terms of use (rule).
	ReasonUnderRule = "under_rule"
	// ReasonNoOpenLoan: the patron has no such open loan (primary_id,
	// loan_id).
	ReasonNoOpenLoan = "no_open_loan"
	// ReasonLibraryNotAllowed: the caller's roles do not allow renewals
	// in the loan's library (library).
	ReasonLibraryNotAllowed = "library_not_allowed"
	// ReasonLoanChanged: the loan changed while it was being renewed
	// (loan_id).
	ReasonLoanChanged = "loan_changed"
	// ReasonItemGone: the loan's item is no longer in the inventory
	// (loan_id).
	ReasonItemGone = "item_gone"
	// ReasonItemRequested: another patron requested the item (barcode).
	ReasonItemRequested = "item_requested"
	// ReasonMaxRenewals: the loan was renewed as often as the terms allow
	// (renewals, limit).
	ReasonMaxRenewals = "max_renewals"
	// ReasonDueDateUnchanged: renewing would not move the due date
	// (due_date, RFC 3339).
	ReasonDueDateUnchanged = "due_date_unchanged"
	// ReasonRequestsNotAllowed: the terms do not allow the patron to
	// request the item (primary_id, barcode).
	ReasonRequestsNotAllowed = "requests_not_allowed"
	// ReasonAlreadyRequested: the patron has an active request for the
	// item or title (primary_id, and barcode or title_id).
	ReasonAlreadyRequested = "already_requested"
	// ReasonAlreadyOnLoan: the patron has the item on loan (primary_id,
	// barcode).
	ReasonAlreadyOnLoan = "already_on_loan"
	// ReasonRequestNotActive: the request is no longer active
	// (request_id, status).
	ReasonRequestNotActive = "request_not_active"
	// ReasonRequestNotWaiting: the request is no longer waiting, so it
	// cannot be changed (request_id, status).
	ReasonRequestNotWaiting = "request_not_waiting"
	// ReasonLoanNotOpen: the loan is no longer open, so its due date
	// cannot be changed (loan_id, status).
	ReasonLoanNotOpen = "loan_not_open"
	// ReasonOwnFee: staff may not waive a fee of their own.
	ReasonOwnFee = "own_fee"
	// ReasonFeeClosed: the fee is closed (fee_id).
	ReasonFeeClosed = "fee_closed"
	// ReasonItemInUse: the item cannot be deleted in its status (status).
	ReasonItemInUse = "item_in_use"
	// ReasonLibraryHasItems: items belong to the library (items, their
	// number).
	ReasonLibraryHasItems = "library_has_items"
)

// reasonsFile is the name of the catalog of reason texts in each
// language's folder of the templates.
const reasonsFile = "reasons.tmpl"

// reasonFuncs are the functions the catalog's templates may call besides
// text/template's: words ("on_loan" to "on loan") and list (a list
// separated by ", " said with a last conjunction: list "a, b, c" "and" is
// "a, b and c").
var reasonFuncs = template.FuncMap{
	"words": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"list": func(s, and string) string {
		xs := strings.Split(s, ", ")
		if len(xs) < 2 {
			return s
		}
		return strings.Join(xs[:len(xs)-1], ", ") + " " + and + " " + xs[len(xs)-1]
	},
}

// reasonCatalog finds and caches the texts of refusal reasons per
// language: {language}/reasons.tmpl of the built-in templates (English
// and Spanish), with the host's file of the same name on top, whose
// definitions replace the built-in ones code by code (a host's file for a
// language circulation does not ship adds it). Each code is a template
// named after it, over the reason's Args.
type reasonCatalog struct {
	host fs.FS
	// log tells of a host's file that cannot be read or parsed: its
	// language is then said in English (nil: not told).
	log   *slog.Logger
	mu    sync.Mutex
	cache map[string]*template.Template
}

// builtinReasons is the catalog without a host's templates, which writes
// the English texts of the reasons circulation gives.
var builtinReasons = &reasonCatalog{}

// language returns the catalog of lang, nil when there is none or it
// cannot be read (which is logged, once).
func (c *reasonCatalog) language(lang string) *template.Template {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.cache[lang]; ok {
		return t
	}
	if c.cache == nil {
		c.cache = map[string]*template.Template{}
	}
	t, err := c.load(lang)
	if err != nil {
		if c.log != nil {
			c.log.Error("circulation: the texts of refusal reasons cannot be read; English is said instead", "language", lang, "error", err)
		}
		t = nil
	}
	c.cache[lang] = t
	return t
}

// load reads the built-in file of lang, then the host's over it.
func (c *reasonCatalog) load(lang string) (*template.Template, error) {
	var t *template.Template
	for _, src := range []fs.FS{builtinTemplates, c.host} {
		if src == nil {
			continue
		}
		name := path.Join(lang, reasonsFile)
		if src == fs.FS(builtinTemplates) {
			name = path.Join("templates", name)
		}
		b, err := fs.ReadFile(src, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if t == nil {
			t = template.New(reasonsFile).Option("missingkey=zero").Funcs(reasonFuncs)
		}
		if _, err := t.Parse(string(b)); err != nil {
			return nil, fmt.Errorf("circulation: reason texts %s: %w", name, err)
		}
	}
	return t, nil
}

// text writes r in lang, then in English; "" when neither has its code.
func (c *reasonCatalog) text(lang string, r fault.Reason) string {
	if r.Code == "" {
		return ""
	}
	lang = strings.ToLower(strings.TrimSpace(lang))
	if lang == "" || strings.ContainsAny(lang, "/\\.") {
		lang = "en"
	}
	langs := []string{lang}
	if base, _, ok := strings.Cut(lang, "-"); ok {
		langs = append(langs, base)
	}
	for _, l := range slices.Compact(append(langs, "en")) {
		t := c.language(l)
		if t == nil || t.Lookup(r.Code) == nil {
			continue
		}
		var b strings.Builder
		if err := t.ExecuteTemplate(&b, r.Code, r.Args); err != nil {
			continue
		}
		if s := strings.TrimSpace(b.String()); s != "" {
			return s
		}
	}
	return ""
}

// ReasonText says the reason r of a refusal in the language lang (a
// patron's preferred language, e.g. "es" or "es-MX"): from the host's
// templates (Options.Templates, {language}/reasons.tmpl) or the built-in
// ones, in that language, else in English, else r's own Text (a reason
// without a code, or a code the templates do not know).
func (s *Service) ReasonText(lang string, r fault.Reason) string {
	if t := s.reasons.text(lang, r); t != "" {
		return t
	}
	return r.Text
}

// ReasonTexts is ReasonText of each reason.
func (s *Service) ReasonTexts(lang string, rs []fault.Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = s.ReasonText(lang, r)
	}
	return out
}

// cause is the reason code with args (name, value, name, value...), its
// Text the built-in English one.
func cause(code string, args ...string) fault.Reason {
	r := fault.Reason{Code: code}
	if len(args) > 0 {
		r.Args = make(map[string]string, len(args)/2)
		for i := 0; i+1 < len(args); i += 2 {
			r.Args[args[i]] = args[i+1]
		}
	}
	r.Text = builtinReasons.text("en", r)
	if r.Text == "" {
		// Every code circulation gives has its English text (a test
		// checks it); this is for safety only.
		r.Text = strings.ReplaceAll(code, "_", " ")
	}
	return r
}
