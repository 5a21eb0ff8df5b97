package ginapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
)

// meRoutes registers the patron's own account, "My Library Card": every
// route acts on the principal's own record and nothing else, whatever the
// request says.
func (a *api) meRoutes(g *gin.RouterGroup) {
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

// queueAnswer is what GET /me/items/{barcode}/queue answers.
type queueAnswer struct {
	Barcode string `json:"barcode"`
	Place   int    `json:"place_in_queue"`
}

func (a *api) myQueuePlace(c *gin.Context) {
	ctx, inst := a.ctx(c), a.who(c).Institution
	// The patron first, as every /me route reads them.
	if _, err := a.kit.Patrons.Get(ctx, inst, a.self(c)); err != nil {
		fail(c, err)
		return
	}
	it, err := a.kit.Circulation.Item(ctx, inst, c.Param("barcode"))
	if err != nil {
		fail(c, err)
		return
	}
	n, err := a.kit.Circulation.QueuePlace(ctx, inst, it.Barcode)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, queueAnswer{Barcode: it.Barcode, Place: n})
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
			accruing[l.FineCurrency] += l.AccruedFine
		}
	}
	c.JSON(http.StatusOK, myFeesAnswer{Fees: fees, Balance: moneyOf(bal), Accruing: moneyOf(accruing)})
}

// myBlocksAnswer is what GET /me/blocks answers: the blocks, and the
// library's messages to the patron (the notes they may see).
type myBlocksAnswer struct {
	Blocks   []circulation.Block `json:"blocks"`
	Messages []patron.Note       `json:"messages"`
}

func (a *api) myBlocks(c *gin.Context) {
	ctx, inst := a.ctx(c), a.who(c).Institution
	u, err := a.kit.Patrons.Get(ctx, inst, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	bs, err := a.kit.Circulation.Blocks(ctx, inst, u.PrimaryID)
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
	c.JSON(http.StatusOK, myBlocksAnswer{Blocks: bs, Messages: msgs})
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
		fail(c, badRequest("barcode is required: the item the terms are for", patron.FieldError{Field: "barcode", Code: "required", Message: "is required"}))
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
