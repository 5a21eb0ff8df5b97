package ginapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
)

// feeRoutes registers the staff routes on what patrons owe: their fees,
// manual fees, payments and waivers.
func (a *api) feeRoutes(g *routes) {
	g.GET("/users/:primary_id/fees", a.userFees)
	g.POST("/users/:primary_id/fees", a.addFee)
	g.GET("/users/:primary_id/fees/:fee_id", a.getFee)
	g.POST("/users/:primary_id/fees/:fee_id/pay", a.payFee)
	g.POST("/users/:primary_id/fees/:fee_id/waive", a.waiveFee)
}

// Money is an amount in minor units of a currency, with its display form.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Display  string `json:"display"`
}

// moneyOf lists a per-currency map by currency code.
func moneyOf(m map[string]int64) []Money {
	out := make([]Money, 0, len(m))
	for c, v := range m {
		out = append(out, Money{Amount: v, Currency: c, Display: circulation.FormatMoney(v, c)})
	}
	slices.SortFunc(out, func(x, y Money) int { return strings.Compare(x.Currency, y.Currency) })
	return out
}

// feeList is what GET /users/{primary_id}/fees answers: the fees and what
// the patron owes in all, per currency.
type feeList struct {
	Fees    []circulation.Fee `json:"fees"`
	Total   int               `json:"total_record_count"`
	Balance []Money           `json:"balance"`
}

func (a *api) userFees(c *gin.Context) {
	status, err := choice(c, "status", circulation.FeeOpen, "all")
	if err != nil {
		fail(c, err)
		return
	}
	open := status == circulation.FeeOpen
	ctx, inst, id := a.ctx(c), a.who(c).Institution, c.Param("primary_id")
	fees, err := a.kit.Circulation.Fees(ctx, inst, id, open)
	if err != nil {
		fail(c, err)
		return
	}
	bal, err := a.kit.Circulation.Balance(ctx, inst, id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, feeList{Fees: fees, Total: len(fees), Balance: moneyOf(bal)})
}

func (a *api) addFee(c *gin.Context) {
	var in circulation.NewFee
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	id := c.Param("primary_id")
	f, err := a.kit.Circulation.AddFee(a.ctx(c), a.who(c).Institution, id, in)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("users", f.PrimaryID, "fees", f.ID))
	writeVersioned(c, http.StatusCreated, f.Version, f)
}

func (a *api) getFee(c *gin.Context) {
	f, err := a.kit.Circulation.Fee(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), c.Param("fee_id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, f.Version, f)
}

// paymentBody is the body of POST .../pay and .../waive: the amount in
// minor units of the fee's currency, and for a waiver its reason.
type paymentBody struct {
	Amount *int64 `json:"amount"`
	Reason string `json:"reason"`
}

func (a *api) payFee(c *gin.Context)   { a.takeFee(c, circulation.Payment) }
func (a *api) waiveFee(c *gin.Context) { a.takeFee(c, circulation.Waiver) }

func (a *api) takeFee(c *gin.Context, kind string) {
	var in paymentBody
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	ctx, inst, id, feeID := a.ctx(c), a.who(c).Institution, c.Param("primary_id"), c.Param("fee_id")
	if in.Amount == nil {
		// An unknown fee answers 404 before the body is judged.
		if _, err := a.kit.Circulation.Fee(ctx, inst, id, feeID); err != nil {
			fail(c, err)
			return
		}
		fail(c, &fault.Error{Kind: fault.Invalid, Detail: "the " + kind + " is not valid",
			Fields: []fault.FieldError{{Field: "amount", Code: "required", Message: "is required (minor units of the fee's currency)"}}})
		return
	}
	var f *circulation.Fee
	var err error
	if kind == circulation.Waiver {
		f, err = a.kit.Circulation.Waive(ctx, inst, id, feeID, *in.Amount, in.Reason)
	} else {
		if strings.TrimSpace(in.Reason) != "" {
			fail(c, &fault.Error{Kind: fault.Invalid, Detail: "the payment is not valid",
				Fields: []fault.FieldError{{Field: "reason", Code: "unknown_value", Message: "is for waivers only"}}})
			return
		}
		f, err = a.kit.Circulation.Pay(ctx, inst, id, feeID, *in.Amount)
	}
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, f.Version, f)
}
