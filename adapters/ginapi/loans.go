package ginapi

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
)

// loanRoutes registers the staff routes on loans: check-out, renewals,
// returns, and the loans of a user and of an item.
func (a *api) loanRoutes(g *gin.RouterGroup) {
	g.POST("/loans", a.checkOut)
	g.POST("/loans/:loan_id/renew", a.renewLoan)
	g.POST("/users/:primary_id/loans/renew", a.renewUserLoans)
	g.POST("/returns", a.checkIn)
	g.GET("/users/:primary_id/loans", a.userLoans)
	g.GET("/items/:barcode/loans", a.itemLoans)
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
	var missing []patron.FieldError
	for _, name := range []string{"primary_id", "barcode"} {
		if v, ok := fields[name]; ok && strings.TrimSpace(v) == "" {
			missing = append(missing, patron.FieldError{Field: name, Code: "required", Message: "is required"})
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &patron.Error{Kind: patron.Invalid, Detail: detail, Fields: missing}
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
	l, err := a.kit.Circulation.CheckOut(a.ctx(c), a.who(c).Institution, in.PrimaryID, in.Barcode, circulation.CheckOutOptions{Proxy: in.Proxy})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("loans", l.ID))
	writeVersioned(c, http.StatusCreated, l.Version, l)
}

func (a *api) renewLoan(c *gin.Context) {
	l, err := a.kit.Circulation.Renew(a.ctx(c), a.who(c).Institution, c.Param("loan_id"))
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
	var ids []string
	if in.LoanIDs != nil {
		ids = make([]string, 0, len(*in.LoanIDs))
		for _, id := range *in.LoanIDs {
			ids = append(ids, strings.TrimSpace(id))
		}
	}
	res, err := a.kit.Circulation.RenewMany(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), ids)
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
	var open bool
	switch strings.ToLower(strings.TrimSpace(c.Query("status"))) {
	case "", circulation.LoanOpen:
		open = true
	case circulation.LoanComplete:
	default:
		fail(c, badRequest("status must be open (the default) or complete", patron.FieldError{Field: "status", Code: "invalid", Message: "must be open or complete"}))
		return
	}
	ls, err := a.kit.Circulation.Loans(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), open)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, loanList{Loans: ls, Total: len(ls)})
}

func (a *api) itemLoans(c *gin.Context) {
	ls, err := a.kit.Circulation.ItemLoans(a.ctx(c), a.who(c).Institution, c.Param("barcode"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, loanList{Loans: ls, Total: len(ls)})
}
