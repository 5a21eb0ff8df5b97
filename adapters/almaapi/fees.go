package almaapi

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"math/big"
	"net/http"
	"strings"

	"github.com/bojanz/currency"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
)

// Alma's codes of the fee routes.
const (
	codeFeeMissing = "401665" // Fine not found.
	codeFeeType    = "4019992"
)

// almaFee is Alma's fee.
type almaFee struct {
	XMLName            xml.Name `xml:"fee" json:"-"`
	Link               string   `xml:"link,attr,omitempty" json:"link,omitempty"`
	ID                 string   `xml:"id" json:"id"`
	Type               code     `xml:"type" json:"type"`
	Status             code     `xml:"status" json:"status"`
	UserPrimaryID      code     `xml:"user_primary_id" json:"user_primary_id"`
	Balance            float64  `xml:"balance" json:"balance"`
	RemainingVATAmount float64  `xml:"remaining_vat_amount" json:"remaining_vat_amount"`
	OriginalAmount     float64  `xml:"original_amount" json:"original_amount"`
	OriginalVATAmount  float64  `xml:"original_vat_amount" json:"original_vat_amount"`
	CreationTime       string   `xml:"creation_time" json:"creation_time"`
	StatusTime         string   `xml:"status_time" json:"status_time"`
	Comment            string   `xml:"comment,omitempty" json:"comment,omitempty"`
	Barcode            string   `xml:"barcode,omitempty" json:"barcode,omitempty"`
	Currency           string   `xml:"-" json:"-"`
}

// almaFees is Alma's fees.
type almaFees struct {
	XMLName  xml.Name  `xml:"fees" json:"-"`
	Total    int       `xml:"total_record_count,attr" json:"total_record_count"`
	TotalSum float64   `xml:"total_sum,attr" json:"total_sum"`
	Currency string    `xml:"currency,attr" json:"currency"`
	Fees     []almaFee `xml:"fee" json:"fee"`
}

// feeTypes are Alma's codes of patronkit's kinds of fee.
var feeTypes = map[string]code{
	circulation.FeeOverdueFine: {"OVERDUEFINE", "Overdue fine"},
	circulation.FeeLostItem:    {"LOSTITEMREPLACEMENTFEE", "Lost item replacement fee"},
	circulation.FeeManual:      {"OTHER", "Other"},
	circulation.FeeDelivery:    {"DOCUMENTDELIVERYFEE", "Document delivery fee"},
}

// major is an amount of minor units of cur in major units, as Alma
// writes amounts.
func major(minor int64, cur string) float64 {
	d, ok := currency.GetDigits(cur)
	if !ok {
		d = 2
	}
	f, _ := new(big.Rat).SetFrac(big.NewInt(minor), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d)), nil)).Float64()
	return f
}

// minor reads an amount in major units of cur (12.50) as minor units;
// one with more decimals than cur has, or not a number, is an error
// naming the parameter.
func minor(name, s, cur string) (int64, error) {
	s = strings.TrimSpace(s)
	a, err := currency.NewAmount(s, cur)
	if err == nil {
		var n int64
		if n, err = a.Int64(); err == nil {
			if back, _ := currency.NewAmountFromInt64(n, cur); back.Equal(a) && n > 0 {
				return n, nil
			}
		}
	}
	return 0, badParameter(name, "must be an amount more than 0 in "+cur+", with at most its decimals")
}

func (a *api) feeOut(c *gin.Context, pid string, f *circulation.Fee) almaFee {
	out := almaFee{
		Link: a.link(c, "users", pid, "fees", f.ID), ID: f.ID, Type: feeTypes[f.Type], Status: code{"ACTIVE", "Active"},
		UserPrimaryID: code{Value: pid}, Balance: major(f.Remaining(), f.Currency), OriginalAmount: major(f.Amount, f.Currency),
		CreationTime: almaTime(f.CreatedAt), StatusTime: almaTime(f.UpdatedAt), Comment: f.Description, Barcode: f.Barcode, Currency: f.Currency,
	}
	if out.Type.Value == "" {
		out.Type = code{Value: strings.ToUpper(f.Type)}
	}
	if f.Status != circulation.FeeOpen {
		out.Status = code{"CLOSED", "Closed"}
	}
	return out
}

// feesOut is a user's fees as Alma's list, with their balance.
func (a *api) feesOut(c *gin.Context, pid string, fs []circulation.Fee) almaFees {
	out := almaFees{Total: len(fs), Currency: a.kit.Circulation.Currency(), Fees: []almaFee{}}
	for i := range fs {
		f := a.feeOut(c, pid, &fs[i])
		out.Fees = append(out.Fees, f)
		if f.Currency == out.Currency {
			out.TotalSum += f.Balance
		}
	}
	return out
}

// feeRoutes are Alma's routes on a user's fees.
func (a *api) feeRoutes() []route {
	return []route{
		{http.MethodGet, "/users/:user_id/fees", "fees.read", true, codeFeeMissing, a.listFees},
		{http.MethodPost, "/users/:user_id/fees", "fees.charge", true, codeFeeMissing, a.chargeFee},
		{http.MethodGet, "/users/:user_id/fees/:fee_id", "fees.read", true, codeFeeMissing, a.getFee},
		{http.MethodPost, "/users/:user_id/fees/:fee_id", "fees.pay", true, codeFeeMissing, a.feeOp},
		{http.MethodPost, "/users/:user_id/fees/all", "fees.pay", true, codeFeeMissing, a.feeOp},
	}
}

func (a *api) listFees(c *gin.Context) {
	open := true
	switch strings.ToUpper(strings.TrimSpace(c.Query("status"))) {
	case "", "ACTIVE":
	case "ALL", "CLOSED":
		open = false
	default:
		a.fail(c, badParameter("status", "must be ACTIVE, CLOSED or ALL"))
		return
	}
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	fs, err := a.kit.Circulation.Fees(a.ctx(c), a.inst(c), pid, open)
	if err != nil {
		a.fail(c, err)
		return
	}
	if strings.EqualFold(c.Query("status"), "CLOSED") {
		var closed []circulation.Fee
		for _, f := range fs {
			if f.Status != circulation.FeeOpen {
				closed = append(closed, f)
			}
		}
		fs = closed
	}
	a.answer(c, http.StatusOK, a.feesOut(c, pid, fs))
}

func (a *api) getFee(c *gin.Context) {
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	f, err := a.kit.Circulation.Fee(a.ctx(c), a.inst(c), pid, c.Param("fee_id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	a.answer(c, http.StatusOK, a.feeOut(c, pid, f))
}

// newFeeBody is the fee a client sends to charge one.
type newFeeBody struct {
	XMLName        xml.Name `xml:"fee" json:"-"`
	Type           code     `xml:"type" json:"type"`
	OriginalAmount string   `xml:"original_amount" json:"-"`
	Amount         any      `xml:"-" json:"original_amount"`
	Comment        string   `xml:"comment" json:"comment"`
	Barcode        code     `xml:"barcode" json:"barcode"`
}

// chargeFee is Alma's POST /users/{user_id}/fees: a manual fee of
// original_amount in the library's currency, its comment the
// description.
func (a *api) chargeFee(c *gin.Context) {
	body, asXML, err := a.body(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	var in newFeeBody
	if asXML {
		err = xml.Unmarshal(body, &in)
	} else {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		err = dec.Decode(&in)
		switch v := in.Amount.(type) {
		case json.Number:
			in.OriginalAmount = v.String()
		case string:
			in.OriginalAmount = v
		}
	}
	if err != nil {
		a.fail(c, &requestError{codeInvalidXML, "No valid fee was given: " + err.Error()})
		return
	}
	if t := strings.ToUpper(strings.TrimSpace(in.Type.Value)); t == "" {
		a.fail(c, &requestError{"4019991", "User fine/fee type is required."})
		return
	} else if t != "OTHER" {
		a.fail(c, &requestError{codeFeeType, "User fine/fee type invalid entry: only OTHER (a manual fee) may be charged here, not " + t + "."})
		return
	}
	if strings.TrimSpace(in.OriginalAmount) == "" {
		a.fail(c, &requestError{"4019994", "User fine/fee original amount is required."})
		return
	}
	cur := a.kit.Circulation.Currency()
	amount, err := minor("original_amount", in.OriginalAmount, cur)
	if err != nil {
		a.fail(c, err)
		return
	}
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	desc := strings.TrimSpace(in.Comment)
	if desc == "" {
		desc = "Other"
	}
	f, err := a.kit.Circulation.AddFee(a.ctx(c), a.inst(c), pid, circulation.NewFee{Amount: amount, Currency: cur, Description: desc, Barcode: strings.TrimSpace(in.Barcode.Value)})
	if err != nil {
		a.fail(c, err)
		return
	}
	a.answer(c, http.StatusOK, a.feeOut(c, pid, f))
}

// feeOp is Alma's POST .../fees/{fee_id}?op=pay|waive (amount, method,
// reason, comment, external_transaction_id), and POST .../fees/all?op=pay,
// which pays the user's open fees, the oldest first, up to amount (ALL:
// all of them). A waiver asks for fees.waive besides fees.pay's route.
func (a *api) feeOp(c *gin.Context) {
	op := strings.ToLower(strings.TrimSpace(c.Query("op")))
	if op != "pay" && op != "waive" {
		a.fail(c, badParameter("op", "must be pay or waive"))
		return
	}
	all := strings.HasSuffix(c.FullPath(), "/fees/all")
	if all && op != "pay" {
		a.fail(c, badParameter("op", "all fees may only be paid (op=pay)"))
		return
	}
	if op == "waive" {
		if ok, err := a.decide(c, "fees.waive", ""); err != nil || !ok {
			if err != nil {
				a.fail(c, err)
			} else {
				a.almaError(c, http.StatusUnauthorized, codeUnauthorized, unauthorizedMessage+" The roles of the key's user do not allow fees.waive.")
			}
			return
		}
	}
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	ctx, inst := a.ctx(c), a.inst(c)
	d := circulation.PaymentDetails{Method: c.Query("method"), Comment: c.Query("comment"), ExternalID: c.Query("external_transaction_id")}
	amountParam := strings.TrimSpace(c.Query("amount"))
	if amountParam == "" {
		a.fail(c, &requestError{codeMandatory, "Mandatory field is missing: amount"})
		return
	}
	if all {
		a.payAll(c, pid, amountParam, d)
		return
	}
	f, err := a.kit.Circulation.Fee(ctx, inst, pid, c.Param("fee_id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	amount := f.Remaining()
	if !strings.EqualFold(amountParam, "ALL") {
		if amount, err = minor("amount", amountParam, f.Currency); err != nil {
			a.fail(c, err)
			return
		}
	}
	if op == "pay" {
		f, err = a.kit.Circulation.PayWith(ctx, inst, pid, f.ID, amount, d)
	} else {
		reason := strings.TrimSpace(c.Query("reason"))
		if reason == "" {
			reason = "OTHER"
		}
		if d.Comment != "" {
			reason += ": " + strings.TrimSpace(d.Comment)
		}
		f, err = a.kit.Circulation.Waive(ctx, inst, pid, f.ID, amount, reason)
	}
	if err != nil {
		a.failFee(c, err)
		return
	}
	a.answer(c, http.StatusOK, a.feeOut(c, pid, f))
}

// failFee answers a payment or waiver refused (a closed fee, too much)
// with Alma's code for a parameter that is not valid.
func (a *api) failFee(c *gin.Context, err error) {
	if e, ok := fault.As(err); ok && e.Kind == fault.Refused {
		a.almaError(c, http.StatusBadRequest, codeParameter, strings.Join(append([]string{e.Detail}, e.Reasons...), "; "))
		return
	}
	a.fail(c, err)
}

// payAll pays the user's open fees in the library's currency, the oldest
// first, up to amount (ALL: every one), and answers the fees left.
func (a *api) payAll(c *gin.Context, pid, amountParam string, d circulation.PaymentDetails) {
	ctx, inst := a.ctx(c), a.inst(c)
	cur := a.kit.Circulation.Currency()
	fs, err := a.kit.Circulation.Fees(ctx, inst, pid, true)
	if err != nil {
		a.fail(c, err)
		return
	}
	var owed int64
	for _, f := range fs {
		if f.Currency == cur {
			owed += f.Remaining()
		}
	}
	left := owed
	if !strings.EqualFold(amountParam, "ALL") {
		if left, err = minor("amount", amountParam, cur); err != nil {
			a.fail(c, err)
			return
		}
		if left > owed {
			a.fail(c, badParameter("amount", "is more than the user owes"))
			return
		}
	}
	// One transaction: every fee paid, or none.
	err = a.kit.InTx(ctx, func(ctx context.Context, _ *gorm.DB) error {
		for i := len(fs) - 1; i >= 0 && left > 0; i-- { // Fees lists the newest first
			f := fs[i]
			if f.Currency != cur {
				continue
			}
			pay := min(left, f.Remaining())
			if _, err := a.kit.Circulation.PayWith(ctx, inst, pid, f.ID, pay, d); err != nil {
				return err
			}
			left -= pay
		}
		return nil
	})
	if err != nil {
		a.failFee(c, err)
		return
	}
	fs, err = a.kit.Circulation.Fees(ctx, inst, pid, true)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.answer(c, http.StatusOK, a.feesOut(c, pid, fs))
}
