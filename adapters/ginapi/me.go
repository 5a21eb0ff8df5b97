package ginapi

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/account"
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
	// LoanHistory is the patron's choice about their loan history
	// (library_rule, forever or never; PATCH /me/settings changes it).
	LoanHistory string `json:"loan_history"`
}

func (a *api) me(c *gin.Context) {
	o, err := a.kit.Account.Overview(a.ctx(c), a.who(c).Institution, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, o.User.Version, meAnswer{User: o.User, Loans: o.Loans, OverdueLoans: o.OverdueLoans, Requests: o.Requests,
		OnHoldShelf: o.OnHoldShelf, Balance: moneyOf(o.Balance), LoanHistory: o.LoanHistory})
}

func (a *api) pagedLoans(c *gin.Context, page func(ctx context.Context, inst, primaryID string, limit, offset int) ([]circulation.Loan, int64, error)) {
	limit, offset, err := loanPage(c)
	if err != nil {
		fail(c, err)
		return
	}
	ls, total, err := page(a.ctx(c), a.who(c).Institution, a.self(c), limit, offset)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, loanList{Loans: ls, Total: int(total)})
}

func (a *api) myLoans(c *gin.Context)       { a.pagedLoans(c, a.kit.Account.Loans) }
func (a *api) myLoanHistory(c *gin.Context) { a.pagedLoans(c, a.kit.Account.LoanHistory) }

func (a *api) renewMyLoans(c *gin.Context) {
	var in renewBody
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	res, err := a.kit.Account.Renew(a.ctx(c), a.who(c).Institution, a.self(c), in.ids())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, renewResults{Results: res})
}

func (a *api) myRequests(c *gin.Context) {
	status, err := choice(c, "status", "active", "all")
	if err != nil {
		fail(c, err)
		return
	}
	rs, err := a.kit.Account.Requests(a.ctx(c), a.who(c).Institution, a.self(c), status == "active")
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, requestList{Requests: rs, Total: len(rs)})
}

func (a *api) placeMyRequest(c *gin.Context) {
	var in circulation.NewRequest
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	r, err := a.kit.Account.PlaceRequest(a.ctx(c), a.who(c).Institution, a.self(c), in)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("me", "requests", r.ID))
	writeVersioned(c, http.StatusCreated, r.Version, r)
}

func (a *api) getMyRequest(c *gin.Context) {
	r, err := a.kit.Account.Request(a.ctx(c), a.who(c).Institution, a.self(c), c.Param("request_id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, r.Version, r)
}

func (a *api) cancelMyRequest(c *gin.Context) {
	r, err := a.kit.Account.CancelRequest(a.ctx(c), a.who(c).Institution, a.self(c), c.Param("request_id"), c.Query("reason"))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, r.Version, r)
}

func (a *api) myQueuePlace(c *gin.Context) {
	q, err := a.kit.Account.QueuePlace(a.ctx(c), a.who(c).Institution, a.self(c), c.Param("barcode"))
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
	f, err := a.kit.Account.Fees(a.ctx(c), a.who(c).Institution, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, myFeesAnswer{Fees: f.Fees, Balance: moneyOf(f.Balance), Accruing: moneyOf(f.Accruing)})
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
	st, err := a.kit.Account.Standing(a.ctx(c), a.who(c).Institution, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, myBlocksAnswer{Blocks: st.Blocks, Messages: st.Messages, Notices: st.Notices})
}

// quote answers the terms of use the user primaryID would get for the
// item with barcode now, the due date such a loan would have, and the
// rule that gives them (account.Service.Terms).
func (a *api) quote(c *gin.Context, primaryID, barcode string) {
	q, err := a.kit.Account.Terms(a.ctx(c), a.who(c).Institution, primaryID, barcode)
	if pe, ok := fault.As(err); ok && pe.Kind == fault.Invalid && strings.TrimSpace(barcode) == "" {
		// A parameter the request lacks: a malformed request.
		err = badRequest(pe.Detail, pe.Fields...)
	}
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
	ns, err := a.kit.Account.Notices(a.ctx(c), a.who(c).Institution, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, myNotices{Notices: ns})
}

// myNotice downloads a notice sent to the patron, as it was archived.
func (a *api) myNotice(c *gin.Context) {
	att, body, err := a.kit.Account.NoticeFile(a.ctx(c), a.who(c).Institution, a.self(c), c.Param("notice_id"))
	if err != nil {
		fail(c, err)
		return
	}
	download(c, att, body)
}

// Contact is one of the patron's email addresses, phones or addresses, as
// the settings show it.
type Contact = account.Contact

func (a *api) mySettings(c *gin.Context) {
	s, err := a.kit.Account.Settings(a.ctx(c), a.who(c).Institution, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, s.Version, s)
}

// changeMySettings changes what a patron may change of their record (see
// account.Service.ChangeSettings). A field a patron may not change is
// refused (422, each named, "read_only"), and nothing changes.
func (a *api) changeMySettings(c *gin.Context) {
	var raw map[string]json.RawMessage
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &raw); err != nil {
		fail(c, err)
		return
	}
	if err := account.CheckFields(slices.Collect(maps.Keys(raw))); err != nil {
		fail(c, err)
		return
	}
	b, _ := json.Marshal(raw) // raw came from JSON: cannot fail
	var in account.SettingsChange
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&in); err != nil {
		fail(c, jsonError(err, a.opts.MaxBodyBytes))
		return
	}
	s, err := a.kit.Account.ChangeSettings(a.ctx(c), a.who(c).Institution, a.self(c), in)
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, s.Version, s)
}
