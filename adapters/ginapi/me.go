package ginapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// meRoutes registers the patron's own account, "My Library Card": every
// route acts on the principal's own record and nothing else, whatever the
// request says.
func (a *api) meRoutes(g *routes) {
	g.GET("/me", a.me)
	g.GET("/me/loans", a.myLoans)
	g.POST("/me/loans/renew", a.renewMyLoans)
	g.GET("/me/loans/history", a.myLoanHistory)
	g.GET("/me/requests", a.myRequests)
	g.POST("/me/requests", a.placeMyRequest)
	g.GET("/me/requests/:request_id", a.getMyRequest)
	g.DELETE("/me/requests/:request_id", a.cancelMyRequest)
	g.GET("/me/items/:barcode/queue", a.myQueuePlace)
	g.GET("/me/items/:barcode/terms", a.myTerms)
	g.GET("/me/fees", a.myFees)
	g.GET("/me/blocks", a.myBlocks)
	g.GET("/me/notices", a.myNoticeList)
	g.GET("/me/notices/:notice_id", a.myNotice)
	g.GET("/me/settings", a.mySettings)
	g.PATCH("/me/settings", a.changeMySettings)
}

// self is the primary_id of the principal, whose account the /me routes
// read and change.
func (a *api) self(c *gin.Context) string { return a.who(c).ID }

// meAnswer is what GET /me answers: the patron's record as they may see
// it, and their circulation at a glance.
type meAnswer struct {
	User         *patron.User `json:"user"`
	Loans        int          `json:"loans"`
	OverdueLoans int          `json:"overdue_loans"`
	Requests     int          `json:"requests"`
	OnHoldShelf  int          `json:"on_hold_shelf"`
	Balance      []Money      `json:"balance"`
}

func (a *api) me(c *gin.Context) {
	ctx, inst := a.ctx(c), a.who(c).Institution
	u, err := a.kit.Patrons.Get(ctx, inst, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	acc, err := a.kit.Circulation.Account(ctx, inst, u.PrimaryID)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", strconv.Quote(strconv.Itoa(u.Version)))
	c.JSON(http.StatusOK, meAnswer{User: patronView(u), Loans: acc.Loans, OverdueLoans: acc.OverdueLoans, Requests: acc.Requests,
		OnHoldShelf: acc.OnHoldShelf, Balance: moneyOf(acc.Balance)})
}

func (a *api) pagedLoans(c *gin.Context, open bool) {
	limit, offset, err := loanPage(c)
	if err != nil {
		fail(c, err)
		return
	}
	ls, total, err := a.kit.Circulation.LoansPage(a.ctx(c), a.who(c).Institution, a.self(c), open, limit, offset)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, loanList{Loans: ls, Total: int(total)})
}

func (a *api) myLoans(c *gin.Context)       { a.pagedLoans(c, true) }
func (a *api) myLoanHistory(c *gin.Context) { a.pagedLoans(c, false) }

func (a *api) renewMyLoans(c *gin.Context) {
	var in renewBody
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	res, err := a.kit.Circulation.RenewMany(a.ctx(c), a.who(c).Institution, a.self(c), in.ids())
	if err != nil {
		fail(c, err)
		return
	}
	if res == nil {
		res = []circulation.RenewResult{}
	}
	c.JSON(http.StatusOK, renewResults{Results: res})
}

func (a *api) myRequests(c *gin.Context) { a.listRequests(c, a.self(c)) }

func (a *api) placeMyRequest(c *gin.Context) {
	a.createRequest(c, a.self(c), func(r *circulation.Request) string { return a.path("me", "requests", r.ID) })
}

func (a *api) getMyRequest(c *gin.Context) {
	r, err := a.kit.Circulation.Request(a.ctx(c), a.who(c).Institution, a.self(c), c.Param("request_id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, r.Version, r)
}

func (a *api) cancelMyRequest(c *gin.Context) { a.cancel(c, a.self(c), "cancelled by the patron") }

func (a *api) myQueuePlace(c *gin.Context) {
	ctx, inst := a.ctx(c), a.who(c).Institution
	// The patron first, as every /me route reads them.
	if _, err := a.kit.Patrons.GetSegments(ctx, inst, a.self(c)); err != nil {
		fail(c, err)
		return
	}
	q, err := a.kit.Circulation.QueueFor(ctx, inst, a.self(c), c.Param("barcode"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, q)
}

func (a *api) myTerms(c *gin.Context) { a.quote(c, a.self(c), c.Param("barcode")) }

// myFeesAnswer is what GET /me/fees answers: open fees, what the patron
// owes, and the fines accruing on overdue loans (charged when they come
// back).
type myFeesAnswer struct {
	Fees     []circulation.Fee `json:"fees"`
	Balance  []Money           `json:"balance"`
	Accruing []Money           `json:"accruing"`
}

func (a *api) myFees(c *gin.Context) {
	ctx, inst, id := a.ctx(c), a.who(c).Institution, a.self(c)
	fees, err := a.kit.Circulation.Fees(ctx, inst, id, true)
	if err != nil {
		fail(c, err)
		return
	}
	bal, err := a.kit.Circulation.Balance(ctx, inst, id)
	if err != nil {
		fail(c, err)
		return
	}
	loans, err := a.kit.Circulation.Loans(ctx, inst, id, true)
	if err != nil {
		fail(c, err)
		return
	}
	accruing := map[string]int64{}
	for _, l := range loans {
		if l.AccruedFine > 0 {
			accruing[l.FineCurrency] = addOwed(accruing[l.FineCurrency], l.AccruedFine)
		}
	}
	c.JSON(http.StatusOK, myFeesAnswer{Fees: fees, Balance: moneyOf(bal), Accruing: moneyOf(accruing)})
}

// myBlocksAnswer is what GET /me/blocks answers: the blocks, and the
// library's messages to the patron (the notes they may see).
type myBlocksAnswer struct {
	Blocks   []circulation.Block `json:"blocks"`
	Messages []patron.Note       `json:"messages"`
	// Notices are the latest notices sent to the patron (at most 10).
	Notices []circulation.Notice `json:"notices"`
}

func (a *api) myBlocks(c *gin.Context) {
	ctx, inst := a.ctx(c), a.who(c).Institution
	u, err := a.kit.Patrons.GetSegments(ctx, inst, a.self(c), patron.KindNotes, patron.KindBlocks)
	if err != nil {
		fail(c, err)
		return
	}
	bs, err := a.kit.Circulation.BlocksOf(ctx, inst, u)
	if err != nil {
		fail(c, err)
		return
	}
	msgs := []patron.Note{}
	for _, n := range u.Notes {
		if n.UserViewable {
			msgs = append(msgs, n)
		}
	}
	all, err := a.kit.Circulation.Notices(ctx, inst, u.PrimaryID)
	if err != nil {
		fail(c, err)
		return
	}
	sent := []circulation.Notice{}
	for _, n := range all {
		if n.Status == circulation.NoticeSent && len(sent) < 10 {
			sent = append(sent, n)
		}
	}
	c.JSON(http.StatusOK, myBlocksAnswer{Blocks: bs, Messages: msgs, Notices: forPatron(sent)})
}

// quote answers the terms of use the user primaryID would get for the
// item with barcode now, the due date such a loan would have, and the
// rule that gives them.
func (a *api) quote(c *gin.Context, primaryID, barcode string) {
	ctx, inst := a.ctx(c), a.who(c).Institution
	// The user first: another institution's request finds no one (404)
	// whatever the item.
	u, err := a.kit.Patrons.Get(ctx, inst, primaryID)
	if err != nil {
		fail(c, err)
		return
	}
	barcode = strings.TrimSpace(barcode)
	if barcode == "" {
		fail(c, badRequest("barcode is required: the item the terms are for", fault.FieldError{Field: "barcode", Code: "required", Message: "is required"}))
		return
	}
	it, err := a.kit.Circulation.Item(ctx, inst, barcode)
	if err != nil {
		fail(c, err)
		return
	}
	q, err := a.kit.Circulation.Quote(ctx, inst, u, it, a.kit.Now())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, q)
}

// myNotices lists the notices written to the patron, the newest first.
type myNotices struct {
	Notices []circulation.Notice `json:"notices"`
}

func (a *api) myNoticeList(c *gin.Context) {
	ns, err := a.kit.Circulation.Notices(a.ctx(c), a.who(c).Institution, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, myNotices{Notices: forPatron(ns)})
}

// forPatron drops what a channel answered when it refused a notice: for
// staff, not for the patron.
func forPatron(ns []circulation.Notice) []circulation.Notice {
	for i := range ns {
		if ns[i].Status != circulation.NoticeSkipped {
			ns[i].Error = ""
		}
	}
	return ns
}

// myNotice downloads a notice sent to the patron, as it was archived.
func (a *api) myNotice(c *gin.Context) {
	ctx, inst, me := a.ctx(c), a.who(c).Institution, a.self(c)
	n, err := a.kit.Circulation.Notice(ctx, inst, me, c.Param("notice_id"))
	if err == nil && n.AttachmentID == "" {
		err = &fault.Error{Kind: fault.NotFound, Detail: "notice " + n.ID + " was not sent"}
	}
	if err != nil {
		fail(c, err)
		return
	}
	att, body, err := a.kit.Patrons.AttachmentContent(ctx, inst, me, n.AttachmentID)
	if err != nil {
		fail(c, err)
		return
	}
	download(c, att, body)
}

// Contact is one of the patron's email addresses, phones or addresses, as
// the settings show it.
type Contact struct {
	ID           string `json:"id"`
	Value        string `json:"value"`
	Preferred    bool   `json:"preferred"`
	PreferredSMS bool   `json:"preferred_sms,omitempty"`
}

// mySettings is what GET /me/settings answers: what a patron may change.
type mySettings struct {
	Emails            []Contact `json:"emails"`
	Phones            []Contact `json:"phones"`
	Addresses         []Contact `json:"addresses"`
	SMS               bool      `json:"sms"`
	PreferredLanguage string    `json:"preferred_language"`
	NoticeOptOuts     []string  `json:"notice_opt_outs"`
	// OptionalNotices are the kinds of notices a patron may opt out of.
	OptionalNotices []string `json:"optional_notices"`
}

// settingsPatch is the body of PATCH /me/settings: each field present is
// changed. The preferred contacts are named by id.
type settingsPatch struct {
	PreferredEmail    *string   `json:"preferred_email"`
	PreferredPhone    *string   `json:"preferred_phone"`
	PreferredAddress  *string   `json:"preferred_address"`
	SMS               *bool     `json:"sms"`
	PreferredLanguage *string   `json:"preferred_language"`
	NoticeOptOuts     *[]string `json:"notice_opt_outs"`
}

var settingsFields = []string{"preferred_email", "preferred_phone", "preferred_address", "sms", "preferred_language", "notice_opt_outs"}

func (a *api) settingsOf(c *gin.Context, u *patron.User) (*mySettings, error) {
	out := &mySettings{Emails: []Contact{}, Phones: []Contact{}, Addresses: []Contact{}, PreferredLanguage: u.PreferredLanguage,
		OptionalNotices: circulation.OptionalNotices}
	for _, e := range u.Emails {
		out.Emails = append(out.Emails, Contact{ID: e.ID, Value: e.EmailAddress, Preferred: e.Preferred})
	}
	for _, p := range u.Phones {
		out.Phones = append(out.Phones, Contact{ID: p.ID, Value: p.PhoneNumber, Preferred: p.Preferred, PreferredSMS: p.PreferredSMS})
		out.SMS = out.SMS || p.PreferredSMS
	}
	for _, ad := range u.Addresses {
		v := strings.Join(slices.DeleteFunc([]string{ad.Line1, ad.Line2, ad.City, ad.PostalCode, ad.Country}, func(s string) bool { return s == "" }), ", ")
		out.Addresses = append(out.Addresses, Contact{ID: ad.ID, Value: v, Preferred: ad.Preferred})
	}
	var err error
	out.NoticeOptOuts, err = a.kit.Circulation.NoticeOptOuts(a.ctx(c), a.who(c).Institution, u.PrimaryID)
	return out, err
}

func (a *api) mySettings(c *gin.Context) {
	u, err := a.kit.Patrons.Get(a.ctx(c), a.who(c).Institution, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	s, err := a.settingsOf(c, u)
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, u.Version, s)
}

// changeMySettings changes what a patron may change of their record:
// which of their own email addresses, phones and addresses is preferred,
// whether notices come by SMS (to their preferred phone), their language,
// and the notices they opt out of. Any other field is refused (422, each
// named, "read_only"), and nothing changes.
func (a *api) changeMySettings(c *gin.Context) {
	var raw map[string]json.RawMessage
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &raw); err != nil {
		fail(c, err)
		return
	}
	var refused []fault.FieldError
	for k := range raw {
		if !slices.Contains(settingsFields, k) {
			refused = append(refused, fault.FieldError{Field: k, Code: "read_only", Message: "a patron cannot change it here; the library can"})
		}
	}
	if len(refused) > 0 {
		slices.SortFunc(refused, func(x, y fault.FieldError) int { return strings.Compare(x.Field, y.Field) })
		fail(c, &fault.Error{Kind: fault.Invalid, Detail: "only your contact preferences, language and notices can be changed here", Fields: refused})
		return
	}
	b, _ := json.Marshal(raw) // raw came from JSON: cannot fail
	var in settingsPatch
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&in); err != nil {
		fail(c, jsonError(err, a.opts.MaxBodyBytes))
		return
	}
	ctx, inst := a.ctx(c), a.who(c).Institution
	u, err := a.kit.Patrons.Get(ctx, inst, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	var bad []fault.FieldError
	choose := func(field string, id *string, n int, idOf func(int) string, set func(int, bool)) {
		if id == nil {
			return
		}
		found := -1
		for i := range n {
			if idOf(i) == *id {
				found = i
			}
		}
		if found < 0 {
			bad = append(bad, fault.FieldError{Field: field, Code: "unknown_value", Message: "is not the id of one of yours"})
			return
		}
		for i := range n {
			set(i, i == found)
		}
	}
	choose("preferred_email", in.PreferredEmail, len(u.Emails), func(i int) string { return u.Emails[i].ID }, func(i int, v bool) { u.Emails[i].Preferred = v })
	sms := slices.ContainsFunc(u.Phones, func(p patron.Phone) bool { return p.PreferredSMS })
	choose("preferred_phone", in.PreferredPhone, len(u.Phones), func(i int) string { return u.Phones[i].ID }, func(i int, v bool) {
		u.Phones[i].Preferred = v
		u.Phones[i].PreferredSMS = sms && v // SMS follows the preferred phone
	})
	choose("preferred_address", in.PreferredAddress, len(u.Addresses), func(i int) string { return u.Addresses[i].ID }, func(i int, v bool) { u.Addresses[i].Preferred = v })
	if in.SMS != nil {
		pref := slices.IndexFunc(u.Phones, func(p patron.Phone) bool { return p.Preferred })
		if *in.SMS && pref < 0 {
			bad = append(bad, fault.FieldError{Field: "sms", Code: "unknown_value", Message: "needs a preferred phone"})
		}
		for i := range u.Phones {
			u.Phones[i].PreferredSMS = *in.SMS && i == pref
		}
	}
	if in.PreferredLanguage != nil {
		u.PreferredLanguage = strings.TrimSpace(*in.PreferredLanguage)
	}
	if len(bad) > 0 {
		fail(c, &fault.Error{Kind: fault.Invalid, Detail: "the settings are not valid", Fields: bad})
		return
	}
	if in.NoticeOptOuts != nil {
		// Checked before the record changes, so that a bad kind changes
		// nothing.
		for i, k := range *in.NoticeOptOuts {
			if !slices.Contains(circulation.OptionalNotices, strings.ToLower(strings.TrimSpace(k))) {
				bad = append(bad, fault.FieldError{Field: "notice_opt_outs[" + strconv.Itoa(i) + "]", Code: "unknown_value",
					Message: "must be one of: " + strings.Join(circulation.OptionalNotices, ", ")})
			}
		}
		if len(bad) > 0 {
			fail(c, &fault.Error{Kind: fault.Invalid, Detail: "the settings are not valid", Fields: bad})
			return
		}
	}
	if in.PreferredEmail != nil || in.PreferredPhone != nil || in.PreferredAddress != nil || in.SMS != nil || in.PreferredLanguage != nil {
		if u, err = a.kit.Patrons.Replace(ctx, inst, u.PrimaryID, u.Version, u); err != nil {
			fail(c, err)
			return
		}
	}
	if in.NoticeOptOuts != nil {
		if _, err := a.kit.Circulation.SetNoticeOptOuts(ctx, inst, u.PrimaryID, *in.NoticeOptOuts); err != nil {
			fail(c, err)
			return
		}
	}
	s, err := a.settingsOf(c, u)
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, u.Version, s)
}
