package ginapi

import (
	"fmt"
	"math"
	"mime"
	"net/http"
	"reflect"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/sets"
)

// setRoutes registers the sets of users: make one (a saved query, or a
// list of identifiers uploaded as a file), list them, read one with its
// count and its members in pages, freeze a query set into an itemized
// one, delete one.
func (a *api) setRoutes(g *routes) {
	g.POST("/sets", a.createSet)
	g.GET("/sets", a.listSets)
	g.GET("/sets/:set_id", a.getSet)
	g.GET("/sets/:set_id/members", a.setMembers)
	g.POST("/sets/:set_id/freeze", a.freezeSet)
	g.DELETE("/sets/:set_id", a.deleteSet)
	g.POST("/sets/:set_id/preview", a.previewSetJob)
	g.POST("/sets/:set_id/jobs", a.startSetJob)
	g.GET("/jobs/:job_id", a.getSetJob)
	g.GET("/jobs/:job_id/outcomes", a.setJobOutcomes)
	g.POST("/jobs/:job_id/cancel", a.cancelSetJob)
	g.POST("/jobs/:job_id/undo", a.undoSetJob)
}

// undoSetJob starts the undo of an ended update job and runs it in the
// background (202, Location the undo).
func (a *api) undoSetJob(c *gin.Context) {
	inst := a.who(c).Institution
	job, err := a.kit.Sets.StartUndo(a.ctx(c), inst, c.Param("job_id"))
	if err != nil {
		fail(c, err)
		return
	}
	a.kit.Sets.Launch(a.ctx(c), inst, job.ID, func(err error) {
		a.opts.Logger.Error("ginapi: undoing a job over a set", "job", job.ID, "error", err)
	})
	c.Header("Location", a.path("jobs", job.ID))
	c.JSON(http.StatusAccepted, job)
}

// updateBody is the body of a preview and of a job: the fields to set
// (JSON name to value, "" or null to clear), and the blocks, notes and
// statistics to add or remove.
type updateBody struct {
	Kind   string             `json:"kind,omitempty"`
	Fields map[string]*string `json:"fields"`
	Sample int                `json:"sample,omitempty"`
	patron.BatchSegments
	// Message is what a notify job sends.
	Message *sets.Message `json:"message,omitempty"`
}

// change is the body's change of each member.
func (b updateBody) change() patron.BatchChange {
	return patron.BatchChange{Fields: b.fields(), BatchSegments: b.BatchSegments}
}

// fields are the body's fields, null read as "" (clear).
func (b updateBody) fields() map[string]string {
	out := make(map[string]string, len(b.Fields))
	for k, v := range b.Fields {
		if v != nil {
			out[k] = *v
		} else {
			out[k] = ""
		}
	}
	return out
}

// readUpdate decodes the body of a preview or a job; a kind other than
// update or notify is 422 naming it, and so is a message in an update or
// a change in a notify job.
func (a *api) readUpdate(c *gin.Context) (updateBody, bool) {
	var in updateBody
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return in, false
	}
	if in.Kind == "" {
		in.Kind = sets.JobUpdate
	}
	var bad *fault.FieldError
	switch {
	case in.Kind != sets.JobUpdate && in.Kind != sets.JobNotify:
		bad = &fault.FieldError{Field: "kind", Code: "unknown_value", Message: "must be update or notify"}
	case in.Kind == sets.JobUpdate && in.Message != nil:
		bad = &fault.FieldError{Field: "message", Code: "not_allowed", Message: "an update takes fields and segments; a message is for kind notify"}
	case in.Kind == sets.JobNotify && (in.Fields != nil || !reflect.ValueOf(in.BatchSegments).IsZero()):
		bad = &fault.FieldError{Field: "fields", Code: "not_allowed", Message: "a notify job takes a message only"}
	case in.Kind == sets.JobNotify && in.Message == nil:
		bad = &fault.FieldError{Field: "message", Code: "required", Message: "is required for kind notify"}
	}
	if bad != nil {
		fail(c, &fault.Error{Kind: fault.Invalid, Detail: "the job is not valid", Fields: []fault.FieldError{*bad}})
		return in, false
	}
	return in, true
}

// previewSetJob answers what a job would do to the set: the count, and
// for a sample the change of each, field by field, or (notify) the
// message each would get, rendered. Nothing is written.
func (a *api) previewSetJob(c *gin.Context) {
	in, ok := a.readUpdate(c)
	if !ok {
		return
	}
	var p any
	var err error
	if in.Kind == sets.JobNotify {
		p, err = a.kit.Sets.PreviewNotify(a.ctx(c), a.who(c).Institution, c.Param("set_id"), *in.Message, in.Sample)
	} else {
		p, err = a.kit.Sets.PreviewChange(a.ctx(c), a.who(c).Institution, c.Param("set_id"), in.change(), in.Sample)
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// startSetJob starts an update or a notify job over the set's members now
// and runs it in the background (202, Location the job).
func (a *api) startSetJob(c *gin.Context) {
	in, ok := a.readUpdate(c)
	if !ok {
		return
	}
	inst := a.who(c).Institution
	var job *sets.Job
	var err error
	if in.Kind == sets.JobNotify {
		job, err = a.kit.Sets.StartNotify(a.ctx(c), inst, c.Param("set_id"), *in.Message)
	} else {
		job, err = a.kit.Sets.StartChange(a.ctx(c), inst, c.Param("set_id"), in.change())
	}
	if err != nil {
		fail(c, err)
		return
	}
	a.kit.Sets.Launch(a.ctx(c), inst, job.ID, func(err error) {
		a.opts.Logger.Error("ginapi: running a job over a set", "job", job.ID, "error", err)
	})
	c.Header("Location", a.path("jobs", job.ID))
	c.JSON(http.StatusAccepted, job)
}

func (a *api) getSetJob(c *gin.Context) {
	job, err := a.kit.Sets.Job(a.ctx(c), a.who(c).Institution, c.Param("job_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, job)
}

// setJobOutcomes answers a page of what a job did to each member, after
// the sequence number after; or the whole of them as CSV (Accept:
// text/csv or format=csv).
func (a *api) setJobOutcomes(c *gin.Context) {
	inst, id := a.who(c).Institution, c.Param("job_id")
	format := c.Query("format")
	if format != "" && format != "json" && format != "csv" {
		fail(c, badRequest("format must be json or csv", fault.FieldError{Field: "format", Code: "unknown_value", Message: "must be json or csv"}))
		return
	}
	if format == "csv" || (format == "" && c.NegotiateFormat(gin.MIMEJSON, "text/csv") == "text/csv") {
		if _, err := a.kit.Sets.Job(a.ctx(c), inst, id); err != nil {
			fail(c, err)
			return
		}
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Status(http.StatusOK)
		if err := a.kit.Sets.WriteCSV(a.ctx(c), c.Writer, inst, id); err != nil {
			a.opts.Logger.Error("ginapi: writing a job's outcomes", "request_id", c.GetString(requestIDKey), "error", err)
		}
		return
	}
	limit, err := intParam(c, "limit", 100, 1000)
	if err != nil {
		fail(c, err)
		return
	}
	after, err := intParam(c, "after", 0, math.MaxInt)
	if err != nil {
		fail(c, err)
		return
	}
	os, err := a.kit.Sets.Outcomes(a.ctx(c), a.who(c).Institution, c.Param("job_id"), int64(after), limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"outcomes": os})
}

// cancelSetJob asks a running job to stop after its batch (202).
func (a *api) cancelSetJob(c *gin.Context) {
	job, err := a.kit.Sets.Cancel(a.ctx(c), a.who(c).Institution, c.Param("job_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, job)
}

// createSet makes a query set from a JSON body, or an itemized set from a
// file of identifiers sent as text/csv (one a line), with name,
// description and id_type in the query string (201, Location the set).
func (a *api) createSet(c *gin.Context) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil {
		mt = ""
	}
	inst := a.who(c).Institution
	switch mt {
	case gin.MIMEJSON:
		var in sets.New
		if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
			fail(c, err)
			return
		}
		set, err := a.kit.Sets.Create(a.ctx(c), inst, in)
		if err != nil {
			fail(c, err)
			return
		}
		c.Header("Location", a.path("sets", set.ID))
		c.JSON(http.StatusCreated, set)
	case "text/csv":
		file := http.MaxBytesReader(c.Writer, c.Request.Body, a.opts.MaxUploadBytes)
		in := sets.NewItemized{Name: c.Query("name"), Description: c.Query("description"), IDType: c.Query("id_type")}
		made, err := a.kit.Sets.CreateFromFile(a.ctx(c), inst, in, file)
		if err != nil {
			a.failUpload(c, err)
			return
		}
		c.Header("Location", a.path("sets", made.ID))
		c.JSON(http.StatusCreated, made)
	default:
		fail(c, &requestError{status: http.StatusUnsupportedMediaType, slug: "unsupported-media-type",
			detail: "send a query set as application/json, or a file of identifiers, one a line, as text/csv"})
	}
}

// failUpload answers a failure of an upload: 413 past MaxUploadBytes.
func (a *api) failUpload(c *gin.Context, err error) {
	if tooLarge(err) {
		fail(c, &requestError{status: http.StatusRequestEntityTooLarge, slug: "too-large", detail: fmt.Sprintf("the file is larger than %d bytes", a.opts.MaxUploadBytes)})
		return
	}
	fail(c, err)
}

func (a *api) listSets(c *gin.Context) {
	limit, err := intParam(c, "limit", 20, 100)
	if err != nil {
		fail(c, err)
		return
	}
	p, err := a.kit.Sets.List(a.ctx(c), a.who(c).Institution, c.Query("after"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (a *api) getSet(c *gin.Context) {
	set, err := a.kit.Sets.Get(a.ctx(c), a.who(c).Institution, c.Param("set_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, set)
}

// setMembers answers a page of a set's members, by primary_id after the
// one given (after), with their count.
func (a *api) setMembers(c *gin.Context) {
	limit, err := intParam(c, "limit", 20, 100)
	if err != nil {
		fail(c, err)
		return
	}
	p, err := a.kit.Sets.Members(a.ctx(c), a.who(c).Institution, c.Param("set_id"), c.Query("after"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// freezeSet makes an itemized set of a query set's members now (201,
// Location the new set); the body, optional, names it: {"name": "..."}.
func (a *api) freezeSet(c *gin.Context) {
	var in struct {
		Name string `json:"name"`
	}
	if c.Request.ContentLength != 0 && c.Request.Body != nil && c.Request.Body != http.NoBody {
		if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
			fail(c, err)
			return
		}
	}
	set, err := a.kit.Sets.Freeze(a.ctx(c), a.who(c).Institution, c.Param("set_id"), in.Name)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("sets", set.ID))
	c.JSON(http.StatusCreated, set)
}

func (a *api) deleteSet(c *gin.Context) {
	if err := a.kit.Sets.Delete(a.ctx(c), a.who(c).Institution, c.Param("set_id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
