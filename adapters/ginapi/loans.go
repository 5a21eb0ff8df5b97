package ginapi

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
)

// loanRoutes registers the staff routes on loans: check-out, renewals,
// returns, and the loans of a user and of an item.
func (a *api) loanRoutes(g *routes) {
	g.POST("/loans", a.checkOut)
	g.POST("/loans/:loan_id/renew", a.renewLoan)
	g.POST("/users/:primary_id/loans/renew", a.renewUserLoans)
	g.POST("/returns", a.checkIn)
	g.GET("/users/:primary_id/loans", a.userLoans)
	g.GET("/items/:barcode/loans", a.itemLoans)
	g.GET("/loans/:loan_id", a.getLoan)
	g.POST("/items/:barcode/lost", a.declareLost)
	g.GET("/users/:primary_id/blocks", a.userBlocks)
}

// checkOutBody is the body of POST /loans.
type checkOutBody struct {
	PrimaryID string `json:"primary_id"`
	Barcode   string `json:"barcode"`
	Proxy     string `json:"proxy"`
}

// required answers the fields of a body that are missing, as a validation
// error, or nil.
func required(detail string, fields map[string]string) error {
	var missing []fault.FieldError
	for _, name := range []string{"primary_id", "barcode"} {
		if v, ok := fields[name]; ok && strings.TrimSpace(v) == "" {
			missing = append(missing, fault.FieldError{Field: name, Code: "required", Message: "is required"})
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &fault.Error{Kind: fault.Invalid, Detail: detail, Fields: missing}
}

func (a *api) checkOut(c *gin.Context) {
	var in checkOutBody
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	if err := required("the check-out is not valid", map[string]string{"primary_id": in.PrimaryID, "barcode": in.Barcode}); err != nil {
		fail(c, err)
		return
	}
	if everywhere, err := a.permits(c, "*"); err != nil || !everywhere {
		// A role held in some libraries only: the item's must be one.
		if err != nil {
			fail(c, err)
			return
		}
		if !a.allowItem(c, in.Barcode) {
			return
		}
	}
	l, err := a.kit.Circulation.CheckOut(a.ctx(c), a.who(c).Institution, in.PrimaryID, in.Barcode, circulation.CheckOutOptions{Proxy: in.Proxy})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("loans", l.ID))
	writeVersioned(c, http.StatusCreated, l.Version, l)
}

func (a *api) renewLoan(c *gin.Context) {
	ctx, inst := a.ctx(c), a.who(c).Institution
	l, err := a.kit.Circulation.Loan(ctx, inst, c.Param("loan_id"))
	if err != nil {
		fail(c, err)
		return
	}
	if !a.allowIn(c, l.Library) {
		return
	}
	l, err = a.kit.Circulation.Renew(ctx, inst, l.ID)
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, l.Version, l)
}

// renewBody is the body of POST /users/{primary_id}/loans/renew: the loans
// to renew, or none named for all the user's open loans.
type renewBody struct {
	LoanIDs *[]string `json:"loan_ids"`
}

// ids are the loans named, trimmed; nil for all.
func (b renewBody) ids() []string {
	if b.LoanIDs == nil {
		return nil
	}
	ids := make([]string, 0, len(*b.LoanIDs))
	for _, id := range *b.LoanIDs {
		ids = append(ids, strings.TrimSpace(id))
	}
	return ids
}

// renewResults is what POST /users/{primary_id}/loans/renew answers.
type renewResults struct {
	Results []circulation.RenewResult `json:"results"`
}

func (a *api) renewUserLoans(c *gin.Context) {
	var in renewBody
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	res, err := a.renewInLibraries(c, in.ids())
	if err != nil {
		fail(c, err)
		return
	}
	if res == nil {
		res = []circulation.RenewResult{}
	}
	c.JSON(http.StatusOK, renewResults{Results: res})
}

// checkInBody is the body of POST /returns.
type checkInBody struct {
	Barcode string `json:"barcode"`
}

func (a *api) checkIn(c *gin.Context) {
	var in checkInBody
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	if err := required("the return is not valid", map[string]string{"barcode": in.Barcode}); err != nil {
		fail(c, err)
		return
	}
	l, err := a.kit.Circulation.CheckIn(a.ctx(c), a.who(c).Institution, in.Barcode)
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, l.Version, l)
}

// loanList is what the routes that list loans answer.
type loanList struct {
	Loans []circulation.Loan `json:"loans"`
	Total int                `json:"total_record_count"`
}

func (a *api) userLoans(c *gin.Context) {
	status, err := choice(c, "status", circulation.LoanOpen, circulation.LoanComplete)
	if err != nil {
		fail(c, err)
		return
	}
	open := status == circulation.LoanOpen
	limit, offset, err := loanPage(c)
	if err != nil {
		fail(c, err)
		return
	}
	ls, total, err := a.kit.Circulation.LoansPage(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), open, limit, offset)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, loanList{Loans: ls, Total: int(total)})
}

// loanPage reads the limit (0..1000, default 100; 0 answers only the
// number of loans) and offset of a list of loans.
func loanPage(c *gin.Context) (limit, offset int, err error) {
	return pageParamsOf(c, 100, 1000)
}

func (a *api) itemLoans(c *gin.Context) {
	limit, offset, err := loanPage(c)
	if err != nil {
		fail(c, err)
		return
	}
	ls, total, err := a.kit.Circulation.ItemLoansPage(a.ctx(c), a.who(c).Institution, c.Param("barcode"), limit, offset)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, loanList{Loans: ls, Total: int(total)})
}

func (a *api) getLoan(c *gin.Context) {
	l, err := a.kit.Circulation.Loan(a.ctx(c), a.who(c).Institution, c.Param("loan_id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, l.Version, l)
}

func (a *api) declareLost(c *gin.Context) {
	if !a.allowItem(c, c.Param("barcode")) {
		return
	}
	l, err := a.kit.Circulation.DeclareLost(a.ctx(c), a.who(c).Institution, c.Param("barcode"))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, l.Version, l)
}

// blockList is what GET /users/{primary_id}/blocks answers.
type blockList struct {
	Blocks []circulation.Block `json:"blocks"`
}

func (a *api) userBlocks(c *gin.Context) {
	bs, err := a.kit.Circulation.Blocks(a.ctx(c), a.who(c).Institution, c.Param("primary_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, blockList{Blocks: bs})
}

// renewInLibraries renews the loans ids (nil: all) of the route's user,
// those of libraries where the principal's roles allow renewals: a loan
// of another library is answered as not renewed, with that reason.
func (a *api) renewInLibraries(c *gin.Context, ids []string) ([]circulation.RenewResult, error) {
	return a.kit.Circulation.RenewManyIn(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), ids,
		func(lib string) (bool, error) { return a.permits(c, lib) })
}
