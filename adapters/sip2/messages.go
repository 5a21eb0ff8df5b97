package sip2

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bojanz/currency"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/patron"
)

// Supported is the supported-messages field (BX) of SC status: patron
// status, check-out, check-in, block patron, SC status, resend, login,
// patron information, end session, fee paid, item information, renew and
// renew all; not item status update, patron enable nor hold.
const Supported = "YYYYYYYYYYYNNNYY"

// names are the messages' names on the audit trail ("sip2 checkout kiosk1").
var names = map[string]string{
	"93": "login", "99": "sc-status", "23": "patron-status", "63": "patron-information",
	"11": "checkout", "09": "checkin", "29": "renew", "65": "renew-all", "17": "item-information",
	"37": "fee-paid", "01": "block-patron", "35": "end-session",
}

// charset is the connection's character set.
func (c *conn) charset() string {
	if c.settings.Charset == "" {
		return UTF8
	}
	return c.settings.Charset
}

// resend is the answer 96: the message could not be read, send it again.
func (c *conn) resend() []byte {
	r := newResponse("96")
	return r.bytes(c.charset(), -1, c.settings.Checksums == ChecksumsOn)
}

// answer reads one message and answers it; nil answers nothing.
func (c *conn) answer(raw []byte) []byte {
	req, err := parse(raw, c.charset(), c.settings.Checksums != ChecksumsOff)
	switch {
	case errors.Is(err, errBadChecksum), errors.Is(err, errMalformed):
		return c.resend()
	case errors.Is(err, errUnknown):
		return c.unsupported(req)
	case err != nil:
		return c.resend()
	}
	if c.settings.Checksums == ChecksumsOn && !req.checked && req.code != "97" {
		return c.resend()
	}
	if req.code == "97" {
		if c.last == nil {
			return c.resend()
		}
		return c.last
	}
	var resp *response
	if c.account == "" && req.code != "93" && req.code != "99" {
		resp = c.refuse(req, "sign in first (login, 93)")
	} else {
		resp, err = c.safely(req)
		if err != nil {
			c.s.log.Error("sip2: answering a message failed", "command", req.code, "account", c.account, "error", err)
			resp = c.refuse(req, "the library system cannot answer now; please ask at the desk")
		}
	}
	sum := c.settings.Checksums == ChecksumsOn || c.settings.Checksums == ChecksumsAuto && req.checked
	out := resp.bytes(c.charset(), req.seq, sum)
	c.last = out
	return out
}

// unsupported answers a request this server does not carry out: a
// refusal in the response of the protocol for hold (15), item status
// update (19) and patron enable (25), and 96 for any other command.
func (c *conn) unsupported(req *request) []byte {
	var r *response
	switch req.code {
	case "15":
		r = newResponse("16").fixed("0", "N", c.date()).field("AO", c.ao("")).field("AA", "").field("AF", "holds are placed in the library's catalogue, not here")
	case "19":
		r = newResponse("20").fixed("0", c.date()).field("AB", "").field("AF", "item status update is not supported")
	case "25":
		r = newResponse("26").fixed(strings.Repeat(" ", 14), "000", c.date()).field("AO", c.ao("")).field("AA", "").field("AE", "").
			field("BL", "N").field("CQ", "N").field("AF", "patron enable is not supported")
	default:
		return c.resend()
	}
	sum := c.settings.Checksums == ChecksumsOn || c.settings.Checksums == ChecksumsAuto && req.checked
	out := r.bytes(c.charset(), req.seq, sum)
	c.last = out
	return out
}

// date is now as a SIP2 date for the connection.
func (c *conn) date() string { return c.when(c.s.kit.Now()) }

// when is t as a SIP2 date for the connection; a zero t is blank.
func (c *conn) when(t time.Time) string {
	if t.IsZero() {
		return blankDate
	}
	return sipDate(t, c.loc, c.settings.UTC)
}

// ao is the institution id answered: the account's, or what the kiosk
// sent.
func (c *conn) ao(sent string) string {
	if c.settings.Institution != "" {
		return c.settings.Institution
	}
	return sent
}

// refuse is the answer to req that refuses it, with msg on the screen.
func (c *conn) refuse(req *request, msg string) *response {
	return refusal(req, msg, c.date(), c.ao(req.field("AO")))
}

// refusal is the answer to req that refuses it, with msg on the screen,
// dated date, with the institution id ao.
func refusal(req *request, msg, date, ao string) *response {
	aa, ab := req.field("AA"), req.field("AB")
	switch req.code {
	case "93":
		return newResponse("94").fixed("0")
	case "23", "01", "63":
		code := "24"
		if req.code == "63" {
			code = "64"
		}
		r := newResponse(code).fixed(strings.Repeat("Y", 4)+strings.Repeat(" ", 10), "000", date)
		if code == "64" {
			r.fixed(strings.Repeat("0000", 6))
		}
		return r.field("AO", ao).field("AA", aa).field("AE", "").field("BL", "N").field("CQ", "N").field("AF", msg)
	case "11", "29":
		code := "12"
		if req.code == "29" {
			code = "30"
		}
		return newResponse(code).fixed("0", "N", "U", "N", date).field("AO", ao).field("AA", aa).field("AB", ab).
			field("AJ", "").field("AH", "").field("AF", msg)
	case "09":
		return newResponse("10").fixed("0", "Y", "U", "N", date).field("AO", ao).field("AB", ab).field("AQ", "").field("AF", msg)
	case "65":
		return newResponse("66").fixed("0", "0000", "0000", date).field("AO", ao).field("AF", msg)
	case "17":
		return newResponse("18").fixed("01", "00", "01", date).field("AB", ab).field("AJ", "").field("AF", msg)
	case "37":
		return newResponse("38").fixed("N", date).field("AO", ao).field("AA", aa).field("AF", msg)
	case "35":
		return newResponse("36").fixed("N", date).field("AO", ao).field("AA", aa).field("AF", msg)
	case "99":
		return newResponse("98").fixed("N", "N", "N", "N", "N", "N", "030", "003", date, "2.00").
			field("AO", ao).field("AM", "").field("BX", Supported).field("AN", "").field("AF", msg)
	}
	return newResponse("96")
}

// safely is dispatch, a panic turned into an error: the kiosk gets a
// refusal and the connection goes on.
func (c *conn) safely(req *request) (resp *response, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.dispatch(req)
}

// dispatch answers a message read.
func (c *conn) dispatch(req *request) (*response, error) {
	switch req.code {
	case "93":
		return c.login(req)
	case "99":
		return c.status(req)
	case "23", "01":
		return c.patronStatus(req)
	case "63":
		return c.patronInformation(req)
	case "11":
		return c.checkOut(req)
	case "09":
		return c.checkIn(req)
	case "29":
		return c.renew(req)
	case "65":
		return c.renewAll(req)
	case "17":
		return c.itemInformation(req)
	case "37":
		return c.feePaid(req)
	case "35":
		return c.endSession(req)
	}
	return c.refuse(req, "not supported"), nil
}

// ctx is the context of the service calls of req: the kiosk's account as
// the actor, and the way in for the audit trail.
func (c *conn) ctx(req *request, v casbinmodel.Verdict) context.Context {
	ctx := patron.WithActor(c.s.ctx, patron.Actor{Institution: c.s.opts.Institution, ID: c.account})
	return patron.WithOrigin(ctx, patron.Origin{Via: "sip2 " + names[req.code] + " " + c.account,
		RequestID: keys.NewID(), Roles: v.Roles, Library: v.Library})
}

// may decides whether the kiosk's account may do action in library
// (the kiosk's own when empty).
func (c *conn) may(action, library string) (casbinmodel.Verdict, error) {
	if library == "" {
		library = c.library
	}
	return c.s.kit.Access.Decide(c.s.ctx, casbinmodel.Decision{Institution: c.s.opts.Institution, Subject: c.account,
		Library: library, Action: action})
}

// notAllowed is the screen message of a refusal by the policies.
func notAllowed(what, library string) string {
	return fmt.Sprintf("this machine may not %s in library %s; please ask at the desk", what, library)
}

// login signs the kiosk in (93): a staff account, its password, and the
// library it stands in.
func (c *conn) login(req *request) (*response, error) {
	id, pw := req.field("CN"), req.field("CO")
	lib := req.field("CP")
	fail := newResponse("94").fixed("0")
	// A connection whose login fails is signed out, whatever it was.
	c.account, c.library, c.settings, c.loc = "", "", c.s.opts.Default, time.UTC
	c.forgetPIN()
	defer func() {
		c.s.log.Info("sip2: a kiosk's login", "account", id, "library", lib, "remote", c.nc.RemoteAddr().String(), "ok", c.account != "")
	}()
	u, err := c.s.kit.Patrons.SignIn(c.s.ctx, c.s.opts.Institution, id, pw, c.src)
	if err != nil {
		if _, ok := fault.As(err); ok {
			return fail, nil
		}
		return nil, err
	}
	if u.RecordType != patron.RecordStaff {
		return fail, nil
	}
	st := c.s.settingsOf(u.PrimaryID)
	if lib == "" {
		lib = st.Library
	}
	if lib == "" {
		return fail, nil
	}
	l, err := c.s.kit.Circulation.Library(c.s.ctx, c.s.opts.Institution, lib)
	if err != nil {
		if _, ok := fault.As(err); ok {
			return fail, nil
		}
		return nil, err
	}
	loc, err := time.LoadLocation(l.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("library %s has time zone %q: %w", l.Code, l.TimeZone, err)
	}
	c.account, c.library, c.settings, c.loc = u.PrimaryID, l.Code, st, loc
	return newResponse("94").fixed("1"), nil
}

// status answers SC status (99): what the kiosk's account may do here.
func (c *conn) status(req *request) (*response, error) {
	if c.account == "" {
		return newResponse("98").fixed("Y", "N", "N", "N", "N", "N", "030", "003", c.date(), "2.00").
			field("AO", c.ao(req.field("AO"))).field("AM", "").field("BX", Supported).field("AN", "").
			field("AF", "sign in first (login, 93)"), nil
	}
	flags := make([]bool, 3)
	for i, a := range []string{"loans.checkin", "loans.checkout", "loans.renew"} {
		v, err := c.may(a, "")
		if err != nil {
			return nil, err
		}
		flags[i] = v.Allowed
	}
	name := c.library
	if l, err := c.s.kit.Circulation.Library(c.s.ctx, c.s.opts.Institution, c.library); err == nil {
		name = l.Name
	}
	r := newResponse("98").yn(true).yn(flags[0]).yn(flags[1]).yn(flags[2]).yn(false).yn(false).
		fixed("030", "003", c.date(), "2.00")
	return r.field("AO", c.ao(req.field("AO"))).field("AM", name).field("BX", Supported).field("AN", c.library), nil
}

// patronCheck is what a message learnt of its patron.
type patronCheck struct {
	user *patron.User
	// pin tells whether the PIN (AD) is right, or an empty one passes.
	pin bool
	// msg says why the patron is not let through, for the screen.
	msg string
}

// findPatron reads the patron AA names (a primary_id, or a barcode
// identifier) and checks the PIN AD: a wrong one counts toward the
// lockout of the patron's sign-ins, with the kiosk's address as the
// source. An empty AD is a wrong PIN (not counted) unless the account's
// settings let it through (EmptyPIN). The PIN the connection checked
// right last, for the same patron, passes without a new check within the
// patron session (Options.PatronSession).
//
// With full false the answer holds the patron's primary_id only, read
// without the record (a check-out or a payment needs no more, and the
// service it calls reads what it needs).
func (c *conn) findPatron(ctx context.Context, req *request, full bool) (patronCheck, error) {
	aa, ad := req.field("AA"), req.field("AD")
	inst := c.s.opts.Institution
	var u *patron.User
	var err error
	if full {
		u, err = c.s.kit.Patrons.Get(ctx, inst, aa)
	} else {
		var spelled string
		if _, spelled, err = c.s.kit.Patrons.ID(ctx, inst, aa); err == nil {
			u = &patron.User{PrimaryID: spelled}
		}
	}
	if errors.Is(err, fault.ErrNotFound) {
		u, err = c.s.kit.Patrons.GetByIdentifier(ctx, inst, "BARCODE", aa)
	}
	if errors.Is(err, fault.ErrNotFound) || errors.Is(err, fault.ErrInvalid) {
		return patronCheck{msg: "patron " + aa + " is not known"}, nil
	}
	if err != nil {
		return patronCheck{}, err
	}
	pc := patronCheck{user: u}
	switch {
	case ad == "":
		pc.pin = c.settings.EmptyPIN
		if !pc.pin {
			pc.msg = "please enter your PIN"
		}
	case c.pinVerified(u.PrimaryID, ad):
		pc.pin = true
	default:
		c.forgetPIN()
		_, err := c.s.kit.Patrons.SignIn(ctx, inst, u.PrimaryID, ad, c.src)
		if e, ok := fault.As(err); ok {
			pc.msg = "wrong PIN"
			if e.Kind == fault.Locked {
				pc.msg = "too many wrong PINs: please try again later or ask at the desk"
			}
		} else if err != nil {
			return patronCheck{}, err
		} else {
			pc.pin = true
			c.rememberPIN(u.PrimaryID, ad)
		}
	}
	return pc, nil
}

// language is the SIP2 language code of a patron's preferred language.
func language(pref string) string {
	codes := map[string]string{"en": "001", "fr": "002", "de": "003", "it": "004", "nl": "005", "sv": "006",
		"fi": "007", "es": "008", "da": "009", "pt": "010", "no": "013", "nb": "013", "ja": "016", "ko": "018"}
	p, _, _ := strings.Cut(strings.ToLower(pref), "-")
	if c, ok := codes[p]; ok {
		return c
	}
	return "000"
}

// personalName is the patron's name as kiosks show it.
func personalName(u *patron.User) string {
	return strings.TrimSpace(strings.Join(slices.DeleteFunc([]string{u.FirstName, u.MiddleName, u.LastName}, func(s string) bool { return s == "" }), " "))
}

// standing is the patron status field (14 positions) of a patron with
// these blocks.
func standing(bs []circulation.Block) string {
	st := []byte(strings.Repeat(" ", 14))
	for _, b := range bs {
		for _, s := range b.Stops {
			switch s {
			case circulation.ActionLoan:
				st[0] = 'Y'
			case circulation.ActionRenew:
				st[1] = 'Y'
			case circulation.ActionRequest:
				st[2], st[3] = 'Y', 'Y'
			}
		}
		switch b.Type {
		case circulation.BlockMaxOverdue:
			st[6] = 'Y'
		case circulation.BlockMaxBalance:
			st[10] = 'Y'
		}
		if strings.Contains(strings.ToUpper(b.Description), "LOST_CARD") {
			st[4] = 'Y'
		}
	}
	return string(st)
}

// owed is what a patron owes, as an amount and a currency: in the
// account's currency when they owe some, else the first they owe.
func (c *conn) owed(balance map[string]int64) (amount, cur string) {
	cur = c.settings.Currency
	if _, ok := balance[cur]; !ok || cur == "" {
		codes := make([]string, 0, len(balance))
		for k, v := range balance {
			if v != 0 {
				codes = append(codes, k)
			}
		}
		slices.Sort(codes)
		if len(codes) > 0 {
			cur = codes[0]
		}
	}
	if cur == "" {
		cur = "USD"
	}
	return money(balance[cur], cur), cur
}

// money writes minor units of cur as a decimal amount ("12.50").
func money(minor int64, cur string) string {
	a, err := currency.NewAmountFromInt64(minor, cur)
	if err != nil {
		return strconv.FormatInt(minor, 10)
	}
	return a.Number()
}

// patronInfo is what 23, 01 and 63 tell of a patron.
type patronInfo struct {
	check    patronCheck
	blocks   []circulation.Block
	balance  map[string]int64
	verdict  casbinmodel.Verdict
	refusal  string
	requests []circulation.Request
	loans    []circulation.Loan
	fees     []circulation.Fee
	// limits are the patron's limits, for 64 (nil: not sent).
	limits *circulation.Limits
}

// patronOf reads what a patron message answers, after asking the
// policies for each action the reads need.
func (c *conn) patronOf(req *request, actions ...string) (patronInfo, context.Context, error) {
	var pi patronInfo
	for _, a := range actions {
		v, err := c.may(a, "")
		if err != nil {
			return pi, nil, err
		}
		if !v.Allowed {
			pi.refusal = notAllowed("read patrons' accounts", c.library)
			return pi, nil, nil
		}
		if a == actions[0] {
			pi.verdict = v
		}
	}
	ctx := c.ctx(req, pi.verdict)
	check, err := c.findPatron(ctx, req, true)
	if err != nil || check.user == nil {
		pi.check = check
		return pi, ctx, err
	}
	pi.check = check
	inst := c.s.opts.Institution
	if pi.blocks, err = c.s.kit.Circulation.BlocksOf(ctx, inst, check.user); err != nil {
		return pi, ctx, err
	}
	if pi.balance, err = c.s.kit.Circulation.Balance(ctx, inst, check.user.PrimaryID); err != nil {
		return pi, ctx, err
	}
	return pi, ctx, nil
}

// patronStatus answers patron status (23), and block patron (01) once
// the block is set.
func (c *conn) patronStatus(req *request) (*response, error) {
	actions := []string{"users.read", "blocks.read", "fees.read"}
	if req.code == "01" {
		actions = append(actions, "users.blocks")
	}
	pi, ctx, err := c.patronOf(req, actions...)
	if err != nil {
		return nil, err
	}
	if pi.refusal != "" {
		return c.refuse(req, pi.refusal), nil
	}
	if req.code == "01" && pi.check.user != nil {
		note := req.field("AL")
		if len(note) > 2000 {
			note = note[:2000]
		}
		desc := "Blocked by self-check machine " + c.account
		if req.fixedAt(0, 1) == "Y" {
			desc += "; the card was retained"
		}
		if len(desc) > 255 {
			desc = desc[:255]
		}
		if _, err := c.s.kit.Patrons.AddBlock(ctx, c.s.opts.Institution, pi.check.user.PrimaryID,
			patron.Block{BlockType: "GENERAL", BlockDescription: desc, BlockNote: strings.ToValidUTF8(note, "?")}); err != nil {
			if _, ok := fault.As(err); !ok {
				return nil, err
			}
		}
		if pi, _, err = c.patronOf(req, actions...); err != nil {
			return nil, err
		}
	}
	return c.patronHead(req, "24", pi).opt("AF", c.statusMessage(pi)), nil
}

// patronHead starts a 24 or 64 answer: status, language, date (and for
// 64 the counts, which the caller writes), then what both carry.
func (c *conn) patronHead(req *request, code string, pi patronInfo, counts ...int) *response {
	u := pi.check.user
	st, lang, name, aa := strings.Repeat(" ", 14), "000", "", req.field("AA")
	if u != nil {
		st, lang, name, aa = standing(pi.blocks), language(u.PreferredLanguage), personalName(u), u.PrimaryID
	}
	r := newResponse(code).fixed(st, lang, c.date())
	for _, n := range counts {
		r.fixed(fmt.Sprintf("%04d", min(n, 9999)))
	}
	r.field("AO", c.ao(req.field("AO"))).field("AA", aa).field("AE", name)
	lim := pi.limits
	if lim != nil {
		// No hold items limit (BZ): the terms of use set none.
		if lim.MaxOverdueLoans != nil {
			r.field("CA", fmt.Sprintf("%04d", min(*lim.MaxOverdueLoans, 9999)))
		}
		if lim.MaxLoans != nil {
			r.field("CB", fmt.Sprintf("%04d", min(*lim.MaxLoans, 9999)))
		}
	}
	r.field("BL", yn(u != nil)).field("CQ", yn(pi.check.pin))
	if u != nil {
		amount, cur := c.owed(pi.balance)
		r.field("BH", cur).field("BV", amount)
		if lim != nil && lim.MaxBalance != nil && lim.Currency == cur {
			r.field("CC", money(*lim.MaxBalance, cur))
		}
		if u.BirthDate != "" {
			r.field("PB", strings.ReplaceAll(u.BirthDate, "-", ""))
		}
		r.field("PC", u.UserGroup)
	}
	return r
}

func yn(ok bool) string {
	if ok {
		return "Y"
	}
	return "N"
}

// patronInformation answers patron information (63): the status, the
// counts of the summary, and the items of the list the summary asks for,
// from BP to BQ; with the right PIN, the patron's limits where the terms
// of use set them (circulation.LimitsOf): overdue items (CA), charged
// items (CB) and fees (CC, when in the currency of BH). There is no hold
// items limit (BZ) in the terms, so none is sent.
func (c *conn) patronInformation(req *request) (*response, error) {
	pi, ctx, err := c.patronOf(req, "users.read", "blocks.read", "fees.read", "loans.read", "requests.read")
	if err != nil {
		return nil, err
	}
	if pi.refusal != "" {
		return c.refuse(req, pi.refusal), nil
	}
	u := pi.check.user
	var onShelf, waiting, overdue []string
	var charged, fines []string
	if u != nil && pi.check.pin {
		inst := c.s.opts.Institution
		loans, err := c.s.kit.Circulation.Loans(ctx, inst, u.PrimaryID, true)
		if err != nil {
			return nil, err
		}
		for _, l := range loans {
			charged = append(charged, l.ItemBarcode)
			if l.Overdue {
				overdue = append(overdue, l.ItemBarcode)
			}
		}
		reqs, err := c.s.kit.Circulation.Requests(ctx, inst, u.PrimaryID, true)
		if err != nil {
			return nil, err
		}
		for _, rq := range reqs {
			label := rq.Barcode
			if label == "" {
				label = rq.Title
			}
			if rq.Status == circulation.RequestOnHoldShelf {
				onShelf = append(onShelf, label)
			} else {
				waiting = append(waiting, label)
			}
		}
		fees, err := c.s.kit.Circulation.Fees(ctx, inst, u.PrimaryID, true)
		if err != nil {
			return nil, err
		}
		for _, f := range fees {
			fines = append(fines, strings.TrimSpace(f.ID+" "+money(f.Remaining(), f.Currency)+" "+f.Currency+" "+f.Description))
		}
		lim, err := c.s.kit.Circulation.LimitsOf(ctx, inst, u)
		if err != nil {
			return nil, err
		}
		pi.limits = &lim
	}
	r := c.patronHead(req, "64", pi, len(onShelf), len(overdue), len(charged), len(fines), 0, len(waiting))
	if u == nil {
		return r.opt("AF", pi.check.msg), nil
	}
	summary := req.fixedAt(21, 10)
	lists := []struct {
		id    string
		items []string
	}{{"AS", onShelf}, {"AT", overdue}, {"AU", charged}, {"AV", fines}, {"BU", nil}, {"CD", waiting}}
	if i := strings.IndexByte(summary, 'Y'); i >= 0 && i < len(lists) && pi.check.pin {
		from, to := itemRange(req.field("BP"), req.field("BQ"), len(lists[i].items))
		for _, it := range lists[i].items[from:to] {
			r.field(lists[i].id, it)
		}
	}
	home := u.RSLibrary
	if home == "" {
		home = u.CampusCode
	}
	r.opt("AQ", home)
	for _, e := range u.Emails {
		if e.Preferred {
			r.field("BE", e.EmailAddress)
		}
	}
	for _, p := range u.Phones {
		if p.Preferred {
			r.field("BF", p.PhoneNumber)
		}
	}
	return r.opt("AF", pi.check.msg), nil
}

// itemRange is the slice [from, to) of n items that BP (first, from 1)
// and BQ (last) name; both empty is every item.
func itemRange(bp, bq string, n int) (from, to int) {
	start, err := strconv.Atoi(strings.TrimSpace(bp))
	if err != nil || start < 1 {
		start = 1
	}
	end, err := strconv.Atoi(strings.TrimSpace(bq))
	if err != nil || end > n {
		end = n
	}
	if start > end {
		return 0, 0
	}
	return start - 1, end
}

// refused is the screen message of a service's refusal: every reason.
func refused(err error) (string, bool) {
	e, ok := fault.As(err)
	if !ok {
		return "", false
	}
	if len(e.Reasons) > 0 {
		return strings.Join(e.Reasons, "; "), true
	}
	msg := e.Detail
	for _, f := range e.Fields {
		msg += "; " + f.Field + ": " + f.Message
	}
	return msg, true
}

// mediaType is the SIP2 media type (CK) of an item's material type.
func mediaType(material string) string {
	switch strings.ToUpper(material) {
	case "BOOK":
		return "001"
	case "MAGAZINE", "JOURNAL", "SERIAL":
		return "002"
	case "AUDIO", "AUDIOBOOK", "CASSETTE":
		return "004"
	case "VIDEO", "VHS":
		return "005"
	case "DVD", "CD", "CDROM", "BLURAY":
		return "006"
	}
	return "000"
}

// magnetic tells whether an item's medium is magnetic or optical (Y), a
// book (N), or unknown (U).
func magnetic(material string) string {
	switch mediaType(material) {
	case "001", "002":
		return "N"
	case "000":
		return "U"
	}
	return "Y"
}

// loanAnswer is a 12 or 30 answer for a loan made or renewed.
func (c *conn) loanAnswer(req *request, code string, renewed bool, u *patron.User, it *circulation.Item, l *circulation.Loan, msg string) *response {
	return newResponse(code).fixed("1").yn(renewed).fixed(magnetic(it.MaterialType), "Y", c.date()).
		field("AO", c.ao(req.field("AO"))).field("AA", u.PrimaryID).field("AB", it.Barcode).field("AJ", it.Title).
		field("AH", c.when(l.DueAt)).field("CK", mediaType(it.MaterialType)).field("BK", l.ID).opt("AF", msg)
}

// itemFor reads the item AB names; a refusal's message when there is none.
func (c *conn) itemFor(ctx context.Context, barcode string) (*circulation.Item, string, error) {
	it, err := c.s.kit.Circulation.Item(ctx, c.s.opts.Institution, barcode)
	if errors.Is(err, fault.ErrNotFound) || errors.Is(err, fault.ErrInvalid) {
		return nil, "item " + barcode + " is not known", nil
	}
	return it, "", err
}

// lending is what check-out, renew and check-in act on: the context of
// the service calls (the kiosk's account, its roles), the patron (nil for
// a check-in) and the item.
type lending struct {
	ctx  context.Context
	user *patron.User
	item *circulation.Item
}

// lend decides whether the kiosk's account may do action (what it is,
// for the screen) in its library, then, when withPatron, reads the
// patron AA names and checks their PIN, then reads the item AB names.
// When a step refuses, refusal is the answer to send.
func (c *conn) lend(req *request, action, what string, withPatron bool) (l lending, refusal *response, err error) {
	v, err := c.may(action, "")
	if err != nil {
		return l, nil, err
	}
	if !v.Allowed {
		return l, c.refuse(req, notAllowed(what, c.library)), nil
	}
	l.ctx = c.ctx(req, v)
	// The item is read while the patron is.
	type itemRead struct {
		it  *circulation.Item
		msg string
		err error
	}
	read := make(chan itemRead, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				read <- itemRead{err: fmt.Errorf("panic: %v", p)}
			}
		}()
		it, msg, err := c.itemFor(l.ctx, req.field("AB"))
		read <- itemRead{it, msg, err}
	}()
	if withPatron {
		pc, err := c.findPatron(l.ctx, req, false)
		if err != nil {
			<-read
			return l, nil, err
		}
		if pc.user == nil || !pc.pin {
			<-read
			return l, c.refuse(req, pc.msg), nil
		}
		l.user = pc.user
	}
	r := <-read
	it, msg, err := r.it, r.msg, r.err
	if err != nil {
		return l, nil, err
	}
	if it == nil {
		return l, c.refuse(req, msg), nil
	}
	l.item = it
	return l, nil, nil
}

// checkOut lends an item (11). An item the patron already has is renewed
// when the kiosk's renewal policy (the first fixed field) allows it.
func (c *conn) checkOut(req *request) (*response, error) {
	ln, no, err := c.lend(req, "loans.checkout", "lend items", true)
	if no != nil || err != nil {
		return no, err
	}
	ctx, u, it := ln.ctx, ln.user, ln.item
	if it.Library != c.library {
		iv, err := c.may("loans.checkout", it.Library)
		if err != nil {
			return nil, err
		}
		if !iv.Allowed {
			return c.refuse(req, notAllowed("lend items", it.Library)), nil
		}
	}
	inst := c.s.opts.Institution
	l, err := c.s.kit.Circulation.CheckOut(ctx, inst, u.PrimaryID, it.Barcode, circulation.CheckOutOptions{})
	if err != nil {
		if it.Status == circulation.StatusOnLoan && req.fixedAt(0, 1) == "Y" {
			if own, _ := c.openLoan(ctx, u.PrimaryID, it.Barcode); own != nil {
				return c.renewLoan(req, ctx, u, it, own, "12")
			}
		}
		if msg, ok := c.refusedTo(ctx, u, err); ok {
			return c.refuse(req, msg), nil
		}
		return nil, err
	}
	return c.loanAnswer(req, "12", false, u, it, l, ""), nil
}

// openLoan is the patron's open loan of the item, or nil.
func (c *conn) openLoan(ctx context.Context, primaryID, barcode string) (*circulation.Loan, error) {
	loans, err := c.s.kit.Circulation.Loans(ctx, c.s.opts.Institution, primaryID, true)
	if err != nil {
		return nil, err
	}
	for _, l := range loans {
		if keys.Fold(l.ItemBarcode) == keys.Fold(barcode) {
			return &l, nil
		}
	}
	return nil, nil
}

// renewLoan renews loan l of the patron, where the policies allow it in
// the loan's library, and answers code (12 or 30).
func (c *conn) renewLoan(req *request, ctx context.Context, u *patron.User, it *circulation.Item, l *circulation.Loan, code string) (*response, error) {
	fail := func(msg string) *response {
		r := c.refuse(req, msg)
		if code == "12" {
			r = c.refuse(&request{code: "11", fields: req.fields}, msg)
		}
		return r
	}
	for _, lib := range []string{c.library, l.Library} {
		v, err := c.may("loans.renew", lib)
		if err != nil {
			return nil, err
		}
		if !v.Allowed {
			return fail(notAllowed("renew loans", lib)), nil
		}
	}
	nl, err := c.s.kit.Circulation.Renew(ctx, c.s.opts.Institution, l.ID)
	if err != nil {
		if msg, ok := c.refusedTo(ctx, u, err); ok {
			return fail(msg), nil
		}
		return nil, err
	}
	return c.loanAnswer(req, code, true, u, it, nl, ""), nil
}

// checkIn takes an item back (09). An item someone asked for goes to the
// hold shelf: the answer's alert is set, with the pickup library (CT).
func (c *conn) checkIn(req *request) (*response, error) {
	ln, no, err := c.lend(req, "loans.checkin", "take items back", false)
	if no != nil || err != nil {
		return no, err
	}
	ctx, it := ln.ctx, ln.item
	inst := c.s.opts.Institution
	l, err := c.s.kit.Circulation.CheckIn(ctx, inst, it.Barcode)
	if err != nil {
		if errors.Is(err, fault.ErrNotFound) {
			return c.refuse(req, "item "+it.Barcode+" is not on loan"), nil
		}
		if msg, ok := refused(err); ok {
			return c.refuse(req, msg), nil
		}
		return nil, err
	}
	after, err := c.s.kit.Circulation.Item(ctx, inst, it.Barcode)
	if err != nil {
		return nil, err
	}
	alert, alertType, dest := false, "", ""
	var msgs []string
	if after.Status == circulation.StatusOnHoldShelf {
		reqs, err := c.s.kit.Circulation.ItemRequests(ctx, inst, it.Barcode)
		if err != nil {
			return nil, err
		}
		for _, rq := range reqs {
			if rq.Status == circulation.RequestOnHoldShelf {
				dest = rq.PickupLibrary
			}
		}
		alert, alertType = true, "01"
		if dest != "" && keys.Fold(dest) != keys.Fold(c.library) {
			alertType = "02"
		}
		where := dest
		if where == "" {
			where = "delivery"
		}
		msgs = append(msgs, "requested: put it on the hold shelf for "+where)
	}
	if l.AccruedFine > 0 {
		msgs = append(msgs, "an overdue fine of "+money(l.AccruedFine, l.FineCurrency)+" "+l.FineCurrency+" was charged")
	}
	r := newResponse("10").fixed("1", "Y", magnetic(it.MaterialType)).yn(alert).fixed(c.date()).
		field("AO", c.ao(req.field("AO"))).field("AB", it.Barcode).field("AQ", it.Library).field("AJ", it.Title).
		field("AA", l.PrimaryID).field("CK", mediaType(it.MaterialType))
	if alert {
		r.field("CV", alertType).opt("CT", dest)
	}
	return r.opt("AF", strings.Join(msgs, "; ")), nil
}

// renew renews the patron's loan of an item (29).
func (c *conn) renew(req *request) (*response, error) {
	ln, no, err := c.lend(req, "loans.renew", "renew loans", true)
	if no != nil || err != nil {
		return no, err
	}
	ctx, u, it := ln.ctx, ln.user, ln.item
	l, err := c.openLoan(ctx, u.PrimaryID, it.Barcode)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return c.refuse(req, "item "+it.Barcode+" is not on loan to you"), nil
	}
	return c.renewLoan(req, ctx, u, it, l, "30")
}

// renewAll renews every loan of the patron it may (65): those of the
// libraries where the kiosk's account may renew.
func (c *conn) renewAll(req *request) (*response, error) {
	v, err := c.may("loans.renew", "")
	if err != nil {
		return nil, err
	}
	if !v.Allowed {
		return c.refuse(req, notAllowed("renew loans", c.library)), nil
	}
	ctx := c.ctx(req, v)
	pc, err := c.findPatron(ctx, req, false)
	if err != nil {
		return nil, err
	}
	if pc.user == nil || !pc.pin {
		return c.refuse(req, pc.msg), nil
	}
	inst := c.s.opts.Institution
	loans, err := c.s.kit.Circulation.Loans(ctx, inst, pc.user.PrimaryID, true)
	if err != nil {
		return nil, err
	}
	barcodes := map[string]string{}
	for _, l := range loans {
		barcodes[l.ID] = l.ItemBarcode
	}
	res, err := c.s.kit.Circulation.RenewManyIn(ctx, inst, pc.user.PrimaryID, nil, func(lib string) (bool, error) {
		v, err := c.may("loans.renew", lib)
		return v.Allowed, err
	})
	if err != nil {
		if msg, ok := c.refusedTo(ctx, pc.user, err); ok {
			return c.refuse(req, msg), nil
		}
		return nil, err
	}
	var ok, not []string
	var reasons []string
	for _, r := range res {
		if r.Renewed {
			ok = append(ok, barcodes[r.LoanID])
		} else {
			not = append(not, barcodes[r.LoanID])
			reasons = append(reasons, barcodes[r.LoanID]+": "+c.renewedNot(ctx, pc.user, r))
		}
	}
	r := newResponse("66").fixed("1", fmt.Sprintf("%04d", min(len(ok), 9999)), fmt.Sprintf("%04d", min(len(not), 9999)), c.date()).
		field("AO", c.ao(req.field("AO")))
	for _, b := range ok {
		r.field("BM", b)
	}
	for _, b := range not {
		r.field("BN", b)
	}
	return r.opt("AF", strings.Join(reasons, "; ")), nil
}

// circulationStatus is the SIP2 circulation status of an item's status.
func circulationStatus(status string) string {
	switch status {
	case circulation.StatusAvailable:
		return "03"
	case circulation.StatusOnLoan:
		return "04"
	case circulation.StatusOnHoldShelf:
		return "08"
	case circulation.StatusInTransit:
		return "10"
	case circulation.StatusLost:
		return "12"
	case circulation.StatusMissing:
		return "13"
	}
	return "01"
}

// itemInformation answers item information (17).
func (c *conn) itemInformation(req *request) (*response, error) {
	v, err := c.may("items.read", "")
	if err != nil {
		return nil, err
	}
	if !v.Allowed {
		return c.refuse(req, notAllowed("read items", c.library)), nil
	}
	ctx := c.ctx(req, v)
	it, msg, err := c.itemFor(ctx, req.field("AB"))
	if err != nil || it == nil {
		return c.refuse(req, msg), err
	}
	inst := c.s.opts.Institution
	r := newResponse("18").fixed(circulationStatus(it.Status), "00", "01", c.date())
	queue, pickup := 0, ""
	if rv, err := c.may("requests.read", ""); err != nil {
		return nil, err
	} else if rv.Allowed {
		reqs, err := c.s.kit.Circulation.ItemRequests(ctx, inst, it.Barcode)
		if err != nil {
			return nil, err
		}
		for _, rq := range reqs {
			switch rq.Status {
			case circulation.RequestWaiting:
				queue++
			case circulation.RequestOnHoldShelf:
				if rq.HoldUntil != nil {
					pickup = c.when(*rq.HoldUntil)
				}
			}
		}
	}
	r.field("CF", strconv.Itoa(queue))
	if it.Status == circulation.StatusOnLoan {
		if lv, err := c.may("loans.read", ""); err != nil {
			return nil, err
		} else if lv.Allowed {
			loans, _, err := c.s.kit.Circulation.ItemLoansPage(ctx, inst, it.Barcode, 1, 0)
			if err != nil {
				return nil, err
			}
			if len(loans) > 0 && loans[0].Status == circulation.LoanOpen {
				r.field("AH", c.when(loans[0].DueAt))
			}
		}
	}
	location := it.Library
	if it.Location != "" {
		location += " " + it.Location
	}
	r.opt("CM", pickup).field("AB", it.Barcode).field("AJ", it.Title).field("BG", it.Library).
		field("CK", mediaType(it.MaterialType)).field("AQ", it.Library).field("AP", location)
	return r, nil
}

// feePaid records a payment (37): of the fee CG names, or of the
// patron's open fees in the payment's currency, the oldest first. A
// payment larger than what is owed is refused whole.
func (c *conn) feePaid(req *request) (*response, error) {
	v, err := c.may("fees.pay", "")
	if err != nil {
		return nil, err
	}
	if !v.Allowed {
		return c.refuse(req, notAllowed("take payments", c.library)), nil
	}
	ctx := c.ctx(req, v)
	pc, err := c.findPatron(ctx, req, false)
	if err != nil {
		return nil, err
	}
	if pc.user == nil || !pc.pin {
		return c.refuse(req, pc.msg), nil
	}
	inst, pid := c.s.opts.Institution, pc.user.PrimaryID
	cur := strings.ToUpper(strings.TrimSpace(req.fixedAt(22, 3)))
	if cur == "" {
		cur = c.settings.Currency
	}
	feeID := req.field("CG")
	fees, err := c.s.kit.Circulation.Fees(ctx, inst, pid, true)
	if err != nil {
		return nil, err
	}
	if cur == "" {
		for _, f := range fees {
			if feeID == "" || f.ID == feeID {
				cur = f.Currency
				break
			}
		}
	}
	if cur == "" {
		cur = "USD"
	}
	amount, ok := minorUnits(req.field("BV"), cur)
	if !ok {
		return c.refuse(req, fmt.Sprintf("the amount %q is not an amount of %s", req.field("BV"), cur)), nil
	}
	var due []circulation.Fee
	var total int64
	for _, f := range fees {
		if f.Currency == cur && (feeID == "" || f.ID == feeID) {
			due = append(due, f)
			total += f.Remaining()
		}
	}
	if feeID != "" && len(due) == 0 {
		return c.refuse(req, "no open fee "+feeID+" in "+cur), nil
	}
	if amount > total {
		return c.refuse(req, fmt.Sprintf("the payment %s %s is more than the %s %s owed", money(amount, cur), cur, money(total, cur), cur)), nil
	}
	slices.SortStableFunc(due, func(a, b circulation.Fee) int { return a.CreatedAt.Compare(b.CreatedAt) })
	var paid []string
	err = c.s.kit.InTx(ctx, func(ctx context.Context, _ *gorm.DB) error {
		left := amount
		for _, f := range due {
			if left == 0 {
				break
			}
			n := min(left, f.Remaining())
			if _, err := c.s.kit.Circulation.Pay(ctx, inst, pid, f.ID, n); err != nil {
				return err
			}
			paid = append(paid, f.ID)
			left -= n
		}
		return nil
	})
	if err != nil {
		if msg, ok := refused(err); ok {
			return c.refuse(req, msg), nil
		}
		return nil, err
	}
	return newResponse("38").fixed("Y", c.date()).field("AO", c.ao(req.field("AO"))).field("AA", pid).
		opt("BK", strings.Join(paid, ",")).field("AF", "paid "+money(amount, cur)+" "+cur), nil
}

// minorUnits reads a decimal amount of cur ("12.50") in minor units; it
// must be positive and have no more decimals than cur.
func minorUnits(s, cur string) (int64, bool) {
	a, err := currency.NewAmount(strings.TrimSpace(s), cur)
	if err != nil || !a.IsPositive() || !a.Round().Equal(a) {
		return 0, false
	}
	n, err := a.Int64()
	return n, err == nil
}

// endSession ends the patron's session (35): the PIN the connection
// checked is forgotten, and the next message checks its own.
func (c *conn) endSession(req *request) (*response, error) {
	c.forgetPIN()
	return newResponse("36").fixed("Y", c.date()).field("AO", c.ao(req.field("AO"))).field("AA", req.field("AA")), nil
}
