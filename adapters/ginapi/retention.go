package ginapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/privacy"
)

// retentionRoutes registers the anonymization of closed records: the
// retention rules of the institution, a run on demand (dry or not) and its
// report, and the patron's "delete my history now".
func (a *api) retentionRoutes(g *routes) {
	g.GET("/privacy/retention", a.retentionRules)
	g.POST("/privacy/anonymization-runs", a.anonymizeNow)
	g.GET("/privacy/anonymization-runs/:run_id", a.anonymizationRun)
	g.POST("/me/loans/history/delete", a.deleteMyHistory)
}

// retentionAnswer is what GET /privacy/retention answers.
type retentionAnswer struct {
	Rules            []privacy.RetentionRule `json:"rules"`
	LastBorrowerDays int                     `json:"last_borrower_days"`
}

func (a *api) retentionRules(c *gin.Context) {
	c.JSON(http.StatusOK, retentionAnswer{Rules: a.kit.Retention.Rules(a.who(c).Institution), LastBorrowerDays: a.kit.Retention.LastBorrowerDays()})
}

// anonymizeNow runs the anonymization of the institution now, or dry
// (dry_run=true), and answers its report (201, Location the report).
func (a *api) anonymizeNow(c *gin.Context) {
	dry := false
	if v, ok := c.GetQuery("dry_run"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(c, badRequest("dry_run must be true or false", fault.FieldError{Field: "dry_run", Code: "bad_format", Message: "must be true or false"}))
			return
		}
		dry = b
	}
	run, err := a.kit.Retention.Anonymize(a.ctx(c), a.who(c).Institution, dry)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("privacy", "anonymization-runs", run.ID))
	c.JSON(http.StatusCreated, run)
}

func (a *api) anonymizationRun(c *gin.Context) {
	run, err := a.kit.Retention.Run(a.ctx(c), a.who(c).Institution, c.Param("run_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, run)
}

// deleteMyHistory anonymizes the patron's closed loans, fees, requests and
// notices now, and answers how many of each.
func (a *api) deleteMyHistory(c *gin.Context) {
	d, err := a.kit.Account.DeleteHistory(a.ctx(c), a.who(c).Institution, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, d)
}
