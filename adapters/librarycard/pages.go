package librarycard

import (
	"cmp"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patronkit/patronkit/account"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
)

// DueSoonDays is how many days before its due date the overview counts a
// loan as due soon.
const DueSoonDays = 3

// overviewData is what the overview shows.
type overviewData struct {
	*account.Overview
	DueSoon int
	Blocks  []circulation.Block
	Owes    bool
}

func (c *card) overview(r *request) {
	inst, id := r.who.Institution, r.who.ID
	o, err := c.kit.Account.Overview(r.ctx, inst, id)
	if err != nil {
		c.fail(r.g, err)
		return
	}
	ls, _, err := c.kit.Account.Loans(r.ctx, inst, id, 100, 0)
	if err != nil {
		c.fail(r.g, err)
		return
	}
	soon := c.kit.Now().Add(DueSoonDays * 24 * time.Hour)
	d := overviewData{Overview: o}
	for _, l := range ls {
		if !l.Overdue && l.DueAt.Before(soon) {
			d.DueSoon++
		}
	}
	st, err := c.kit.Account.Standing(r.ctx, inst, id)
	if err != nil {
		c.fail(r.g, err)
		return
	}
	d.Blocks = st.Blocks
	for _, v := range o.Balance {
		d.Owes = d.Owes || v > 0
	}
	r.show(c, http.StatusOK, PageOverview, d)
}

// loanRow is one loan of the loans page, made ready in Go: the page is
// rendered for 100 loans at a time.
type loanRow struct {
	ID, Barcode, Title, Due, Fine string
	// Item is the address of the item's page.
	Item     template.URL
	Overdue  bool
	Renewals int
	// Choose is the text of the loan's box, for screen readers.
	Choose string
	// Result is what the renewal just asked did; Renewed the loan's due
	// date after it.
	Result  *circulation.RenewResult
	Renewed string
	// Cells are the row's cells (td elements) as the default loans.html
	// shows them, made in Go: 100 rows through the template's escapers
	// cost most of the page's time (the default template shows all the
	// rows at once, loansData.Rows). A template of the host's own may
	// use the fields above instead.
	Cells template.HTML
}

// cells writes the row's cells to b, every value escaped.
func (row *loanRow) cells(b *strings.Builder, describedBy bool, overdue, notRenewed string) {
	e := html.EscapeString
	b.WriteString(`<td><label><input type="checkbox" name="loan_id" value="`)
	b.WriteString(e(row.ID))
	b.WriteString(`"`)
	if describedBy {
		b.WriteString(` aria-describedby="loans-error"`)
	}
	b.WriteString(`><span class="sr-only">`)
	b.WriteString(e(row.Choose))
	b.WriteString(`</span></label></td>` + "\n" + `<td><a href="`)
	b.WriteString(e(string(row.Item)))
	b.WriteString(`">`)
	b.WriteString(e(row.Title))
	b.WriteString(`</a> <span class="muted">`)
	b.WriteString(e(row.Barcode))
	b.WriteString(`</span></td>` + "\n" + `<td>`)
	b.WriteString(e(row.Due))
	if row.Overdue {
		b.WriteString(` <strong class="tag danger">`)
		b.WriteString(e(overdue))
		b.WriteString(`</strong>`)
	}
	b.WriteString(`</td>` + "\n" + `<td>`)
	b.WriteString(strconv.Itoa(row.Renewals))
	b.WriteString(`</td>` + "\n" + `<td>`)
	b.WriteString(e(row.Fine))
	b.WriteString(`</td>` + "\n" + `<td>`)
	if res := row.Result; res != nil {
		if res.Renewed {
			b.WriteString(`<span class="tag ok">`)
			b.WriteString(e(row.Renewed))
			b.WriteString(`</span>`)
		} else {
			b.WriteString(`<span class="tag danger">`)
			b.WriteString(e(notRenewed))
			b.WriteString(`</span><ul class="reasons">`)
			for _, r := range res.Reasons {
				b.WriteString(`<li>`)
				b.WriteString(e(r))
				b.WriteString(`</li>`)
			}
			b.WriteString(`</ul>`)
		}
	}
	b.WriteString(`</td>`)
}

// loansData is what the loans page shows.
type loansData struct {
	Loans []loanRow
	// Rows are the rows of Loans (tr elements) as the default loans.html
	// shows them, made in Go as their Cells are.
	Rows       template.HTML
	Total      int64
	Page       int
	Pages      int
	Accruing   map[string]int64
	Results    map[string]circulation.RenewResult
	Renewed    int
	NotRenewed int
	// Error is the message key of a renewal asked wrongly (none chosen).
	Error string
}

// pageOf reads ?page= (from 1); a bad one is the first.
func pageOf(r *request) int {
	p, err := strconv.Atoi(r.g.Query("page"))
	if err != nil || p < 1 {
		return 1
	}
	return p
}

func (c *card) loadLoans(r *request, d *loansData) error {
	size := c.opts.PageSize
	ls, total, err := c.kit.Account.Loans(r.ctx, r.who.Institution, r.who.ID, size, (d.Page-1)*size)
	if err != nil {
		return err
	}
	d.Total, d.Pages = total, int((total+int64(size)-1)/int64(size))
	titles, err := c.titles(r, ls)
	if err != nil {
		return err
	}
	if r.libs, err = c.libraries(r.ctx, r.who.Institution); err != nil {
		return err
	}
	d.Accruing = map[string]int64{}
	choose, renewed := c.theme.text(r.lang, "loans.choose_item"), c.theme.text(r.lang, "loans.renewed")
	overdue, notRenewed := c.theme.text(r.lang, "loans.overdue"), c.theme.text(r.lang, "loans.not_renewed")
	// The rows are written one after the other in one string (Rows),
	// each row's cells a part of it.
	var b strings.Builder
	b.Grow(len(ls) * 700)
	cells := make([][2]int, 0, len(ls))
	d.Loans = make([]loanRow, 0, len(ls))
	for _, l := range ls {
		title := cmp.Or(titles[l.ItemID], l.ItemBarcode) // an item since deleted has none
		loc := c.zone(r.libs, l.Library)                 // the lending library's
		row := loanRow{ID: l.ID, Barcode: l.ItemBarcode, Title: title, Item: template.URL(c.path("/items/" + url.PathEscape(l.ItemBarcode))),
			Due: l.DueAt.In(loc).Format(dateTimeFormat), Overdue: l.Overdue, Renewals: l.Renewals, Choose: fmt.Sprintf(choose, title)}
		if l.AccruedFine > 0 {
			d.Accruing[l.FineCurrency] = circulation.AddOwed(d.Accruing[l.FineCurrency], l.AccruedFine)
			row.Fine = circulation.FormatMoney(l.AccruedFine, l.FineCurrency)
		}
		if res, ok := d.Results[l.ID]; ok {
			res.Reasons = c.reasons(r.lang, res.Reasons, res.Causes)
			row.Result = &res
			row.Renewed = fmt.Sprintf(renewed, res.DueAt.In(loc).Format(dateTimeFormat))
		}
		b.WriteString("<tr")
		if row.Overdue {
			b.WriteString(` class="overdue"`)
		}
		b.WriteString(">\n")
		start := b.Len()
		row.cells(&b, d.Error != "", overdue, notRenewed)
		cells = append(cells, [2]int{start, b.Len()})
		b.WriteString("\n</tr>")
		d.Loans = append(d.Loans, row)
	}
	all := b.String()
	d.Rows = template.HTML(all) // every value in it is escaped
	for i, c := range cells {
		d.Loans[i].Cells = template.HTML(all[c[0]:c[1]])
	}
	return nil
}

func (c *card) loans(r *request) {
	d := &loansData{Page: pageOf(r)}
	if err := c.loadLoans(r, d); err != nil {
		c.fail(r.g, err)
		return
	}
	r.show(c, http.StatusOK, PageLoans, d)
}

// renew renews every loan (scope=all) or those chosen (loan_id), and shows
// the loans with what became of each: renewed to a new due date, or every
// reason it was not.
func (c *card) renew(r *request) {
	d := &loansData{Page: 1}
	var ids []string
	if r.g.PostForm("scope") != "all" {
		ids = r.g.PostFormArray("loan_id")
		if len(ids) == 0 {
			d.Error = "loans.none_chosen"
			if err := c.loadLoans(r, d); err != nil {
				c.fail(r.g, err)
				return
			}
			r.show(c, http.StatusUnprocessableEntity, PageLoans, d)
			return
		}
	}
	res, err := c.kit.Account.Renew(r.ctx, r.who.Institution, r.who.ID, ids)
	if err != nil {
		c.fail(r.g, err)
		return
	}
	d.Results = map[string]circulation.RenewResult{}
	for _, x := range res {
		d.Results[x.LoanID] = x
		if x.Renewed {
			d.Renewed++
		} else {
			d.NotRenewed++
		}
	}
	if err := c.loadLoans(r, d); err != nil {
		c.fail(r.g, err)
		return
	}
	r.show(c, http.StatusOK, PageLoans, d)
}

// requestsData is what the requests page shows.
type requestsData struct {
	Requests []circulation.Request
	// Done is the message key of what was just done (placed, cancelled).
	Done string
}

func (c *card) requests(r *request) {
	rs, err := c.kit.Account.Requests(r.ctx, r.who.Institution, r.who.ID, true)
	if err != nil {
		c.fail(r.g, err)
		return
	}
	d := requestsData{Requests: rs}
	switch r.g.Query("done") {
	case "placed":
		d.Done = "requests.placed"
	case "cancelled":
		d.Done = "requests.cancelled"
	}
	r.show(c, http.StatusOK, PageRequests, d)
}

func (c *card) cancelRequest(r *request) {
	if _, err := c.kit.Account.CancelRequest(r.ctx, r.who.Institution, r.who.ID, r.g.Param("request_id"), ""); err != nil {
		c.fail(r.g, err)
		return
	}
	r.g.Redirect(http.StatusSeeOther, c.path("/requests")+"?done=cancelled")
}

// titles answers the titles of the loans' items, by item id.
func (c *card) titles(r *request, ls []circulation.Loan) (map[string]string, error) {
	ids := make([]string, 0, len(ls))
	for _, l := range ls {
		ids = append(ids, l.ItemID)
	}
	return c.kit.Circulation.ItemTitles(r.ctx, r.who.Institution, ids)
}

// historyData is what the loan history page shows.
type historyData struct {
	Titles  map[string]string
	Loans   []circulation.Loan
	Total   int64
	Page    int
	Pages   int
	Choice  string
	Deleted *account.HistoryDeleted
	Errors  map[string]string
}

func (c *card) loadHistory(r *request, d *historyData) error {
	size := c.opts.PageSize
	ls, total, err := c.kit.Account.LoanHistory(r.ctx, r.who.Institution, r.who.ID, size, (d.Page-1)*size)
	if err != nil {
		return err
	}
	d.Loans, d.Total, d.Pages = ls, total, int((total+int64(size)-1)/int64(size))
	if d.Titles, err = c.titles(r, ls); err != nil {
		return err
	}
	d.Choice, err = c.kit.Account.HistoryChoice(r.ctx, r.who.Institution, r.who.ID)
	return err
}

func (c *card) history(r *request) {
	d := &historyData{Page: pageOf(r)}
	if err := c.loadHistory(r, d); err != nil {
		c.fail(r.g, err)
		return
	}
	r.show(c, http.StatusOK, PageHistory, d)
}

// deleteHistory anonymizes the patron's history once they confirmed it
// (the confirm box; without it 422, the box's error beside it).
func (c *card) deleteHistory(r *request) {
	d := &historyData{Page: 1}
	status := http.StatusOK
	if r.g.PostForm("confirm") != "yes" {
		d.Errors, status = map[string]string{"confirm": "history.confirm_required"}, http.StatusUnprocessableEntity
	} else {
		del, err := c.kit.Account.DeleteHistory(r.ctx, r.who.Institution, r.who.ID)
		if err != nil {
			c.fail(r.g, err)
			return
		}
		d.Deleted = del
	}
	if err := c.loadHistory(r, d); err != nil {
		c.fail(r.g, err)
		return
	}
	r.show(c, status, PageHistory, d)
}

func (c *card) fees(r *request) {
	f, err := c.kit.Account.Fees(r.ctx, r.who.Institution, r.who.ID)
	if err != nil {
		c.fail(r.g, err)
		return
	}
	r.show(c, http.StatusOK, PageFees, f)
}

func (c *card) messages(r *request) {
	st, err := c.kit.Account.Standing(r.ctx, r.who.Institution, r.who.ID)
	if err != nil {
		c.fail(r.g, err)
		return
	}
	// Each block says why in the page's language.
	for i, b := range st.Blocks {
		if b.Cause.Code != "" {
			st.Blocks[i].Description = c.kit.Circulation.ReasonText(r.lang, b.Cause)
		}
	}
	r.show(c, http.StatusOK, PageMessages, st)
}

// settingsData is what the settings page shows: the settings, the
// languages offered, and the errors of a change next to their fields.
type settingsData struct {
	*account.Settings
	Languages []langLink
	Errors    map[string]string
	Saved     bool
}

func (c *card) settingsView(r *request, s *account.Settings) *settingsData {
	d := &settingsData{Settings: s, Errors: map[string]string{}}
	for _, l := range c.theme.langs {
		d.Languages = append(d.Languages, langLink{Tag: l, Label: c.theme.text(l, "language.name"), Current: l == s.PreferredLanguage})
	}
	if s.PreferredLanguage != "" && !slices.Contains(c.theme.langs, s.PreferredLanguage) {
		d.Languages = append(d.Languages, langLink{Tag: s.PreferredLanguage, Label: s.PreferredLanguage, Current: true})
	}
	return d
}

func (c *card) settings(r *request) {
	s, err := c.kit.Account.Settings(r.ctx, r.who.Institution, r.who.ID)
	if err != nil {
		c.fail(r.g, err)
		return
	}
	d := c.settingsView(r, s)
	d.Saved = r.g.Query("done") == "saved"
	r.show(c, http.StatusOK, PageSettings, d)
}

// changeSettings changes the settings the form changed (a field left as
// it was is not sent to the service). A refused value shows the settings
// page again (422) with the error next to its field, and nothing changes.
func (c *card) changeSettings(r *request) {
	inst, id := r.who.Institution, r.who.ID
	cur, err := c.kit.Account.Settings(r.ctx, inst, id)
	if err != nil {
		c.fail(r.g, err)
		return
	}
	f := r.g.Request.PostForm
	var in account.SettingsChange
	pick := func(name string, list []account.Contact, into **string) {
		if v, ok := f[name]; ok && len(v) > 0 {
			for _, ct := range list {
				if ct.ID == v[0] && ct.Preferred {
					return
				}
			}
			*into = &v[0]
		}
	}
	pick("preferred_email", cur.Emails, &in.PreferredEmail)
	pick("preferred_phone", cur.Phones, &in.PreferredPhone)
	pick("preferred_address", cur.Addresses, &in.PreferredAddress)
	if sms := f.Get("sms") == "on"; sms != cur.SMS {
		in.SMS = &sms
	}
	if l, ok := f["preferred_language"]; ok && len(l) > 0 && l[0] != cur.PreferredLanguage {
		in.PreferredLanguage = &l[0]
	}
	if _, ok := f["notices_shown"]; ok {
		outs := f["notice_opt_outs"]
		if outs == nil {
			outs = []string{}
		}
		if !sameSet(outs, cur.NoticeOptOuts) {
			in.NoticeOptOuts = &outs
		}
	}
	if h, ok := f["loan_history"]; ok && len(h) > 0 && h[0] != cur.LoanHistory {
		in.LoanHistory = &h[0]
	}
	s, err := c.kit.Account.ChangeSettings(r.ctx, inst, id, in)
	if e, ok := fault.As(err); ok && e.Kind == fault.Invalid && len(e.Fields) > 0 {
		d := c.settingsView(r, cur)
		for _, fe := range e.Fields {
			name, _, _ := strings.Cut(fe.Field, "[")
			d.Errors[name] = fieldMessage(c, r.lang, name, fe)
		}
		r.show(c, http.StatusUnprocessableEntity, PageSettings, d)
		return
	}
	if err != nil {
		c.fail(r.g, err)
		return
	}
	if l := c.theme.match(s.PreferredLanguage); in.PreferredLanguage != nil && l != "" && l != r.sess.Lang {
		r.sess.Lang = l
		c.save(r.g, r.sess)
	}
	r.g.Redirect(http.StatusSeeOther, c.path("/settings")+"?done=saved")
}

// fieldMessage is the text shown next to a refused field: the theme's
// "error.<field>.<code>" when it has one, else the service's message.
func fieldMessage(c *card, lang, field string, fe fault.FieldError) string {
	key := "error." + field + "." + fe.Code
	if t := c.theme.text(lang, key); t != key {
		return t
	}
	return fe.Message
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// findItem takes the barcode of the search form to the item's page.
func (c *card) findItem(r *request) {
	b := strings.TrimSpace(r.g.Query("barcode"))
	if b == "" {
		c.failPage(r.g, http.StatusUnprocessableEntity, "items.barcode_required")
		return
	}
	r.g.Redirect(http.StatusSeeOther, c.path("/items/"+url.PathEscape(b)))
}

// pickupOption is a choice of the request form: a library to pick the
// item up at, or one of the patron's addresses to deliver it to.
type pickupOption struct {
	Value, Label string
	Delivery     bool
	Chosen       bool
}

// itemData is what the item page shows.
type itemData struct {
	Item *circulation.Item
	// Quote is the loan this patron would get; NoLoan the reasons there
	// is none.
	Quote  *circulation.Quote
	NoLoan []string
	Queue  *circulation.QueuePlace
	// CanRequest says the form is shown: a request is needed and the
	// terms allow one.
	CanRequest  bool
	Options     []pickupOption
	DeliveryFee string
	Errors      map[string]string
}

// itemView reads what the item page shows of the item with barcode for
// the patron: the terms of use they would borrow it on, the queue, and the
// pickup libraries and delivery the terms offer them.
func (c *card) itemView(r *request, barcode string) (*itemData, error) {
	inst, id := r.who.Institution, r.who.ID
	it, err := c.kit.Circulation.Item(r.ctx, inst, barcode)
	if err != nil {
		return nil, err
	}
	d := &itemData{Item: it, Errors: map[string]string{}}
	q, err := c.kit.Account.Terms(r.ctx, inst, id, it.Barcode)
	if e, ok := fault.As(err); ok && e.Kind == fault.Refused {
		// The reasons in the page's language, under its heading; the
		// detail (in English) when there are none.
		if d.NoLoan = c.reasons(r.lang, e.Reasons, e.Causes); len(d.NoLoan) == 0 {
			d.NoLoan = []string{e.Detail}
		}
	} else if err != nil {
		return nil, err
	} else {
		d.Quote = q
	}
	if d.Queue, err = c.kit.Account.QueuePlace(r.ctx, inst, id, it.Barcode); err != nil {
		return nil, err
	}
	if d.Quote == nil || !d.Quote.Terms.RequestsAllowed || !d.Queue.RequestNeeded {
		return d, nil
	}
	d.CanRequest = true
	all, err := c.libraries(r.ctx, inst)
	if err != nil {
		return nil, err
	}
	libs := []string{it.Library}
	if d.Quote.Terms.PickupAnyLibrary {
		libs = all.codes
	}
	names := all.names
	for _, l := range libs {
		label := names[l]
		if label == "" {
			label = l
		}
		d.Options = append(d.Options, pickupOption{Value: "library:" + l, Label: label, Chosen: l == it.Library})
	}
	if d.Quote.Terms.PersonalDelivery {
		s, err := c.kit.Account.Settings(r.ctx, inst, id)
		if err != nil {
			return nil, err
		}
		d.DeliveryFee = circulation.FormatMoney(d.Quote.Terms.DeliveryFee, d.Quote.Terms.Currency)
		for _, a := range s.Addresses {
			d.Options = append(d.Options, pickupOption{Value: "delivery:" + a.ID, Label: a.Value, Delivery: true})
		}
	}
	return d, nil
}

func (c *card) item(r *request) {
	d, err := c.itemView(r, r.g.Param("barcode"))
	if err != nil {
		c.fail(r.g, err)
		return
	}
	r.show(c, http.StatusOK, PageItems, d)
}

// placeRequest places the request the item page's form asks for: only a
// pickup library or delivery the form offered is taken (422 otherwise,
// the error next to the choice), and the service's own refusals (a
// block, the terms) show on the item page.
func (c *card) placeRequest(r *request) {
	d, err := c.itemView(r, r.g.Param("barcode"))
	if err != nil {
		c.fail(r.g, err)
		return
	}
	if !d.CanRequest {
		d.Errors["request"] = c.theme.text(r.lang, "items.cannot_request")
		r.show(c, http.StatusUnprocessableEntity, PageItems, d)
		return
	}
	choice := r.g.PostForm("pickup")
	in := circulation.NewRequest{Barcode: d.Item.Barcode, NotNeededAfter: strings.TrimSpace(r.g.PostForm("not_needed_after"))}
	ok := false
	for i := range d.Options {
		o := &d.Options[i]
		o.Chosen = o.Value == choice
		if o.Chosen {
			ok = true
			kind, v, _ := strings.Cut(o.Value, ":")
			if kind == "library" {
				in.PickupLibrary = v
			} else {
				in.DeliveryAddressID = v
			}
		}
	}
	if !ok {
		d.Errors["pickup"] = c.theme.text(r.lang, "items.pickup_required")
		r.show(c, http.StatusUnprocessableEntity, PageItems, d)
		return
	}
	_, err = c.kit.Account.PlaceRequest(r.ctx, r.who.Institution, r.who.ID, in)
	var be *circulation.BlockedError
	if e, isFault := fault.As(err); isFault && (e.Kind == fault.Invalid || e.Kind == fault.Refused) {
		for _, fe := range e.Fields {
			name := fe.Field
			switch name {
			case "pickup_library", "delivery_address_id":
				name = "pickup"
			}
			d.Errors[name] = fieldMessage(c, r.lang, name, fe)
		}
		if len(e.Fields) == 0 || errors.As(err, &be) {
			// The page's own words, then the reasons in its language; the
			// detail (in English) when there are none.
			why := c.reasons(r.lang, e.Reasons, e.Causes)
			if len(why) == 0 {
				why = []string{e.Detail}
			}
			d.Errors["request"] = strings.Join(append([]string{c.theme.text(r.lang, "items.cannot_request")}, why...), " ")
		}
		r.show(c, http.StatusUnprocessableEntity, PageItems, d)
		return
	}
	if err != nil {
		c.fail(r.g, err)
		return
	}
	r.g.Redirect(http.StatusSeeOther, c.path("/requests")+"?done=placed")
}
