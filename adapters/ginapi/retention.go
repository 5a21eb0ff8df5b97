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
	dry, ok := dryRun(c)
	if !ok {
		return
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

// purgeRoutes registers the purge of users past their purge date: a run
// now (dry or not), its report and its outcomes (JSON pages or CSV).
func (a *api) purgeRoutes(g *routes) {
	g.POST("/privacy/purge-runs", a.purgeNow)
	g.GET("/privacy/purge-runs/:run_id", a.purgeRun)
	g.GET("/privacy/purge-runs/:run_id/outcomes", a.purgeOutcomes)
	g.POST("/privacy/purge-runs/:run_id/cancel", a.cancelPurge)
}

// cancelPurge asks a running purge to stop after its batch (202, the
// report as it stands).
func (a *api) cancelPurge(c *gin.Context) {
	run, err := a.kit.Purge.Cancel(a.ctx(c), a.who(c).Institution, c.Param("run_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, run)
}

// purgeNow purges the institution's users past their purge date now, or
// dry (dry_run=true), of them only the members of a set when set_id names
// one, and answers the run's report (201, Location the report).
func (a *api) purgeNow(c *gin.Context) {
	dry, ok := dryRun(c)
	if !ok {
		return
	}
	run, err := a.kit.Purge.PurgeSet(a.ctx(c), a.who(c).Institution, c.Query("set_id"), dry)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("privacy", "purge-runs", run.ID))
	c.JSON(http.StatusCreated, run)
}

func (a *api) purgeRun(c *gin.Context) {
	run, err := a.kit.Purge.Run(a.ctx(c), a.who(c).Institution, c.Param("run_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, run)
}

// purgeOutcomes answers a run's outcomes: a page of JSON (after, limit),
// or the whole of them as CSV (Accept: text/csv or format=csv).
func (a *api) purgeOutcomes(c *gin.Context) {
	inst, id := a.who(c).Institution, c.Param("run_id")
	format := c.Query("format")
	if format != "" && format != "json" && format != "csv" {
		fail(c, badRequest("format must be json or csv", fault.FieldError{Field: "format", Code: "unknown_value", Message: "must be json or csv"}))
		return
	}
	if format == "csv" || (format == "" && c.NegotiateFormat(gin.MIMEJSON, "text/csv") == "text/csv") {
		if _, err := a.kit.Purge.Run(a.ctx(c), inst, id); err != nil {
			fail(c, err)
			return
		}
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Status(http.StatusOK)
		if err := a.kit.Purge.WriteCSV(a.ctx(c), c.Writer, inst, id); err != nil {
			a.opts.Logger.Error("ginapi: writing a purge's outcomes", "request_id", c.GetString(requestIDKey), "error", err)
		}
		return
	}
	var after int64
	limit := 0
	for _, p := range []struct {
		name string
		to   func(int64)
	}{
		{"after", func(v int64) { after = v }},
		{"limit", func(v int64) { limit = int(v) }},
	} {
		if v, ok := c.GetQuery(p.name); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				fail(c, badRequest(p.name+" must be a number", fault.FieldError{Field: p.name, Code: "bad_format", Message: "must be a number"}))
				return
			}
			if n < 0 || n > 1000000000 {
				fail(c, &fault.Error{Kind: fault.Invalid, Detail: p.name + " is out of range", Fields: []fault.FieldError{{Field: p.name, Code: "out_of_range", Message: "must be 0 or more (limit: 1 to 1000)"}}})
				return
			}
			p.to(n)
		}
	}
	if _, err := a.kit.Purge.Run(a.ctx(c), inst, id); err != nil {
		fail(c, err)
		return
	}
	out, err := a.kit.Purge.Outcomes(a.ctx(c), id, after, limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"outcomes": out})
}
