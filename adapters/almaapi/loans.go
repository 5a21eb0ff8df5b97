package almaapi

import (
	"encoding/xml"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
)

// Alma's codes of the loan routes.
const (
	codeLoanMissing   = "401823" // Loan ID XXX does not exist.
	codeCannotRenew   = "401822" // Cannot renew loan: Loan ID XXX.
	codeWrongDesk     = "401153" // Item cannot be loaned from this circulation desk.
	codeNotLoanable   = "401651" // Item is not loanable.
	codeNoDueDate     = "401824" // Due date is not in loan object.
	codeDueInPast     = "401681" // Due date cannot be in the past.
	defaultCircDesk   = "DEFAULT_CIRC_DESK"
	almaTimeLayout    = "2006-01-02T15:04:05Z"
	loanStatusActive  = "ACTIVE"
	loanStatusDone    = "COMPLETE"
	processNormal     = "NORMAL"
	processRenewed    = "RENEW"
	processLost       = "LOST"
	defaultLoansLimit = 10
)

// code is a code field of Alma's: {"value", "desc"} in JSON, the value
// with a desc attribute in XML.
type code struct {
	Value string `xml:",chardata" json:"value"`
	Desc  string `xml:"desc,attr,omitempty" json:"desc"`
}

// itemLoan is Alma's item_loan.
type itemLoan struct {
	XMLName       xml.Name `xml:"item_loan" json:"-"`
	Link          string   `xml:"link,attr,omitempty" json:"link,omitempty"`
	LoanID        string   `xml:"loan_id" json:"loan_id"`
	CircDesk      code     `xml:"circ_desk" json:"circ_desk"`
	Library       code     `xml:"library" json:"library"`
	UserID        string   `xml:"user_id" json:"user_id"`
	ItemBarcode   string   `xml:"item_barcode" json:"item_barcode"`
	DueDate       string   `xml:"due_date" json:"due_date"`
	LoanStatus    string   `xml:"loan_status" json:"loan_status"`
	LoanDate      string   `xml:"loan_date" json:"loan_date"`
	ReturnDate    string   `xml:"return_date,omitempty" json:"return_date,omitempty"`
	ProcessStatus string   `xml:"process_status" json:"process_status"`
	Title         string   `xml:"title,omitempty" json:"title,omitempty"`
	Author        string   `xml:"author,omitempty" json:"author,omitempty"`
	MMSID         string   `xml:"mms_id,omitempty" json:"mms_id,omitempty"`
	ItemPolicy    code     `xml:"item_policy" json:"item_policy"`
	Renewable     bool     `xml:"renewable" json:"renewable"`
}

// itemLoans is Alma's item_loans.
type itemLoans struct {
	XMLName xml.Name   `xml:"item_loans" json:"-"`
	Total   int64      `xml:"total_record_count,attr" json:"total_record_count"`
	Loans   []itemLoan `xml:"item_loan" json:"item_loan"`
}

func almaTime(t time.Time) string { return t.UTC().Format(almaTimeLayout) }

// loanOut is a loan as Alma writes it, with its item's title and the
// library's name when they are known.
func (a *api) loanOut(c *gin.Context, l *circulation.Loan, libs map[string]string) itemLoan {
	out := itemLoan{
		Link: a.link(c, "users", l.PrimaryID, "loans", l.ID), LoanID: l.ID, CircDesk: code{Value: defaultCircDesk},
		Library: code{l.Library, libs[l.Library]}, UserID: l.PrimaryID, ItemBarcode: l.ItemBarcode,
		DueDate: almaTime(l.DueAt), LoanStatus: loanStatusActive, LoanDate: almaTime(l.LoanedAt), ProcessStatus: processNormal,
		Renewable: l.Status == circulation.LoanOpen,
	}
	switch {
	case l.Status == circulation.LoanComplete:
		out.LoanStatus, out.Renewable = loanStatusDone, false
	case l.Status == circulation.LoanLost:
		out.ProcessStatus, out.Renewable = processLost, false
	case l.Renewals > 0:
		out.ProcessStatus = processRenewed
	}
	if l.ReturnedAt != nil {
		out.ReturnDate = almaTime(*l.ReturnedAt)
	}
	if it, err := a.kit.Circulation.Item(c.Request.Context(), a.inst(c), l.ItemBarcode); err == nil {
		out.Title, out.Author, out.MMSID, out.ItemPolicy = it.Title, it.Author, it.TitleID, code{Value: it.ItemPolicy}
	}
	return out
}

// libraryNames are the names of the institution's libraries, by code.
func (a *api) libraryNames(c *gin.Context) map[string]string {
	out := map[string]string{}
	libs, err := a.kit.Circulation.Libraries(c.Request.Context(), a.inst(c))
	if err == nil {
		for _, l := range libs {
			out[l.Code] = l.Name
		}
	}
	return out
}

// loanRoutes are Alma's routes on a user's loans.
func (a *api) loanRoutes() []route {
	return []route{
		{http.MethodGet, "/users/:user_id/loans", "loans.read", true, "", a.listLoans},
		{http.MethodPost, "/users/:user_id/loans", "loans.checkout", true, "", a.checkOut},
		{http.MethodGet, "/users/:user_id/loans/:loan_id", "loans.read", true, codeLoanMissing, a.getLoan},
		{http.MethodPost, "/users/:user_id/loans/:loan_id", "loans.renew", true, codeLoanMissing, a.renewLoan},
		{http.MethodPut, "/users/:user_id/loans/:loan_id", "loans.due_date", true, codeLoanMissing, a.changeDueDate},
	}
}

func (a *api) listLoans(c *gin.Context) {
	open := true
	switch strings.ToLower(strings.TrimSpace(c.Query("loan_status"))) {
	case "", "active":
	case "complete":
		open = false
	default:
		a.fail(c, badParameter("loan_status", "must be Active or Complete"))
		return
	}
	limit, offset, err := limitOffset(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	ls, total, err := a.kit.Circulation.LoansPage(a.ctx(c), a.inst(c), pid, open, limit, offset)
	if err != nil {
		a.fail(c, err)
		return
	}
	libs := a.libraryNames(c)
	out := itemLoans{Total: total, Loans: []itemLoan{}}
	for i := range ls {
		out.Loans = append(out.Loans, a.loanOut(c, &ls[i], libs))
	}
	a.answer(c, http.StatusOK, out)
}

// checkOutBody is the item_loan a check-out sends: the library and circ
// desk lending the item.
type checkOutBody struct {
	XMLName  xml.Name `xml:"item_loan" json:"-"`
	CircDesk code     `xml:"circ_desk" json:"circ_desk"`
	Library  code     `xml:"library" json:"library"`
}

// checkOut is Alma's POST /users/{user_id}/loans?item_barcode=... (or
// item_pid=, the item's internal id, the item_id of its loans): the item
// is lent by its library (the body's library, when given, must be
// it), in which the key's user's roles must allow loans.checkout.
func (a *api) checkOut(c *gin.Context) {
	barcode := strings.TrimSpace(c.Query("item_barcode"))
	if barcode == "" && strings.TrimSpace(c.Query("item_pid")) == "" {
		a.fail(c, &requestError{codeMandatory, "Mandatory field is missing: item_barcode or item_pid"})
		return
	}
	var in checkOutBody
	if !a.decode(c, &in, "item_loan", true) {
		return
	}
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	it, err := a.item(c, barcode)
	if err != nil {
		a.failItem(c, err)
		return
	}
	barcode = it.Barcode
	if lib := strings.TrimSpace(in.Library.Value); lib != "" && !strings.EqualFold(lib, it.Library) {
		a.almaError(c, http.StatusBadRequest, codeWrongDesk, "Item cannot be loaned from this circulation desk: the item belongs to library "+it.Library+", not "+lib+".")
		return
	}
	if !a.allowIn(c, it.Library) {
		return
	}
	l, err := a.kit.Circulation.CheckOut(a.ctx(c), a.inst(c), pid, barcode, circulation.CheckOutOptions{})
	if e, ok := fault.As(err); ok && e.Kind == fault.Refused {
		a.almaError(c, http.StatusBadRequest, codeNotLoanable, "Item is not loanable: "+strings.Join(append([]string{e.Detail}, e.Reasons...), "; "))
		return
	}
	if err != nil {
		a.failItem(c, err)
		return
	}
	a.answer(c, http.StatusOK, a.loanOut(c, l, a.libraryNames(c)))
}

// item is the item a check-out or a request names: by item_barcode, or
// else by item_pid, the item's internal id (the item_id its loans name).
func (a *api) item(c *gin.Context, barcode string) (*circulation.Item, error) {
	if barcode != "" {
		return a.kit.Circulation.Item(a.ctx(c), a.inst(c), barcode)
	}
	return a.kit.Circulation.ItemByID(a.ctx(c), a.inst(c), c.Query("item_pid"))
}

// failItem answers an item that is not there as Alma does (401651),
// other errors as fail.
func (a *api) failItem(c *gin.Context, err error) {
	if e, ok := fault.As(err); ok && e.Kind == fault.NotFound && strings.Contains(strings.ToLower(e.Detail), "item") {
		a.almaError(c, http.StatusBadRequest, codeNotLoanable, "Item is not loanable: "+e.Detail)
		return
	}
	a.fail(c, err)
}

// userLoan reads the loan the path names, which must be the user's.
func (a *api) userLoan(c *gin.Context) (*circulation.Loan, bool) {
	who, ok := a.pathUser(c)
	if !ok {
		return nil, false
	}
	l, err := a.kit.Circulation.Loan(a.ctx(c), a.inst(c), c.Param("loan_id"))
	if e, ok := fault.As(err); err != nil && (!ok || e.Kind != fault.NotFound) {
		a.fail(c, err)
		return nil, false
	}
	if err != nil || l.UserID != who.ID {
		a.almaError(c, http.StatusBadRequest, codeLoanMissing, "Loan ID "+c.Param("loan_id")+" does not exist.")
		return nil, false
	}
	return l, true
}

func (a *api) getLoan(c *gin.Context) {
	l, ok := a.userLoan(c)
	if !ok {
		return
	}
	a.answer(c, http.StatusOK, a.loanOut(c, l, a.libraryNames(c)))
}

// renewLoan is Alma's POST .../loans/{loan_id}?op=renew, in the loan's
// library.
func (a *api) renewLoan(c *gin.Context) {
	if op := strings.ToLower(c.Query("op")); op != "renew" {
		a.fail(c, badParameter("op", "must be renew"))
		return
	}
	l, ok := a.userLoan(c)
	if !ok || !a.allowIn(c, l.Library) {
		return
	}
	l, err := a.kit.Circulation.Renew(a.ctx(c), a.inst(c), l.ID)
	if e, ok := fault.As(err); ok && (e.Kind == fault.Refused || e.Kind == fault.Invalid) {
		a.almaError(c, http.StatusBadRequest, codeCannotRenew, "Cannot renew loan: Loan ID "+c.Param("loan_id")+": "+strings.Join(append([]string{e.Detail}, e.Reasons...), "; "))
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	a.answer(c, http.StatusOK, a.loanOut(c, l, a.libraryNames(c)))
}

// dueDateBody is the item_loan a client sends to change a due date.
type dueDateBody struct {
	XMLName xml.Name `xml:"item_loan" json:"-"`
	DueDate string   `xml:"due_date" json:"due_date"`
}

// changeDueDate is Alma's PUT .../loans/{loan_id}: the loan's due_date
// (an instant, as Alma writes it: 2026-10-01T22:59:00Z) set to the
// body's, in the loan's library; notify_user is accepted (no notice is
// sent for the change). A due date missing (401824) or not after now
// (401681), or a closed loan (401652), is refused with Alma's error.
func (a *api) changeDueDate(c *gin.Context) {
	if err := boolParam(c, "notify_user"); err != nil {
		a.fail(c, err)
		return
	}
	var in dueDateBody
	if !a.decode(c, &in, "item_loan", false) {
		return
	}
	if strings.TrimSpace(in.DueDate) == "" {
		a.fail(c, &requestError{codeNoDueDate, "Due date is not in loan object."})
		return
	}
	due, err := time.Parse(time.RFC3339, strings.TrimSpace(in.DueDate))
	if err != nil {
		a.fail(c, badParameter("due_date", "must be a date and time such as 2026-10-01T22:59:00Z"))
		return
	}
	l, ok := a.userLoan(c)
	if !ok || !a.allowIn(c, l.Library) {
		return
	}
	l, err = a.kit.Circulation.ChangeDueDate(a.ctx(c), a.inst(c), l.ID, due)
	if e, ok := fault.As(err); ok && e.Kind == fault.Invalid {
		a.almaError(c, http.StatusBadRequest, codeDueInPast, "Due date cannot be in the past: "+in.DueDate+".")
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	a.answer(c, http.StatusOK, a.loanOut(c, l, a.libraryNames(c)))
}
