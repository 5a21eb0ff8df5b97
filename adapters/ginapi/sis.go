package ginapi

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron/sis"
)

// sisRoutes registers the integration profiles, their runs and reports,
// and the restore of SIS fields.
func (a *api) sisRoutes(g *routes) {
	g.GET("/sis/profiles", a.listProfiles)
	g.POST("/sis/profiles", a.createProfile)
	g.GET("/sis/profiles/:code", a.getProfile)
	g.PUT("/sis/profiles/:code", a.replaceProfile)
	g.DELETE("/sis/profiles/:code", a.deleteProfile)
	g.GET("/sis/profiles/:code/runs", a.listRuns)
	g.POST("/sis/profiles/:code/runs", a.startRun)
	g.POST("/sis/profiles/:code/exports", a.exportProfile)
	g.GET("/sis/runs/:run_id", a.getRun)
	g.GET("/sis/runs/:run_id/report", a.runReport)
	g.POST("/users/:primary_id/restore-sis-fields", a.restoreSISFields)
}

func (a *api) listProfiles(c *gin.Context) {
	ps, err := a.kit.SIS.Profiles(a.ctx(c), a.who(c).Institution)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"profiles": ps, "total_record_count": len(ps)})
}

func (a *api) createProfile(c *gin.Context) {
	var in sis.Profile
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	p, err := a.kit.SIS.CreateProfile(a.ctx(c), a.who(c).Institution, &in)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("sis", "profiles", p.Code))
	writeVersioned(c, http.StatusCreated, p.Version, p)
}

func (a *api) getProfile(c *gin.Context) {
	p, err := a.kit.SIS.Profile(a.ctx(c), a.who(c).Institution, c.Param("code"))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, p.Version, p)
}

func (a *api) replaceProfile(c *gin.Context) {
	version, err := ifMatch(c)
	if err != nil {
		fail(c, err)
		return
	}
	var in sis.Profile
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	p, err := a.kit.SIS.ReplaceProfile(a.ctx(c), a.who(c).Institution, c.Param("code"), version, &in)
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, p.Version, p)
}

func (a *api) deleteProfile(c *gin.Context) {
	if err := a.kit.SIS.DeleteProfile(a.ctx(c), a.who(c).Institution, c.Param("code")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (a *api) listRuns(c *gin.Context) {
	limit, err := intParam(c, "limit", 20, 100)
	if err != nil {
		fail(c, err)
		return
	}
	if limit == 0 {
		limit = 20
	}
	if _, err := a.kit.SIS.Profile(a.ctx(c), a.who(c).Institution, c.Param("code")); err != nil {
		fail(c, err)
		return
	}
	runs, err := a.kit.SIS.Runs(a.ctx(c), a.who(c).Institution, c.Param("code"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"runs": runs, "total_record_count": len(runs)})
}

// uploadTypes maps the media type of a raw upload to the extension that
// picks its format.
var uploadTypes = map[string]string{
	"application/xml": ".xml", "text/xml": ".xml",
	"application/zip": ".zip", "application/x-zip-compressed": ".zip",
	"application/json": ".json",
	"text/csv":         ".csv",
}

// startRun starts a run now: from the profile's source, or from a file in
// the body (multipart part "file", or the raw file with its media type).
func (a *api) startRun(c *gin.Context) {
	dry, ok := dryRun(c)
	if !ok {
		return
	}
	o := sis.RunOptions{DryRun: dry}
	if c.Request.ContentLength != 0 && c.Request.Body != nil && c.Request.Body != http.NoBody {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, a.opts.MaxUploadBytes)
		mt, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
		switch {
		case err != nil:
			fail(c, &requestError{status: http.StatusUnsupportedMediaType, slug: "unsupported-media-type", detail: "send the file as multipart/form-data (part \"file\") or with its media type: application/xml, application/zip, application/json or text/csv"})
			return
		case mt == "multipart/form-data":
			part, name, err := filePart(c.Request.Body, params["boundary"])
			if err != nil {
				fail(c, err)
				return
			}
			o.Upload, o.UploadName = part, name
		default:
			ext, ok := uploadTypes[mt]
			if !ok {
				fail(c, &requestError{status: http.StatusUnsupportedMediaType, slug: "unsupported-media-type", detail: fmt.Sprintf("%s is not a file type a profile reads: send application/xml, application/zip, application/json or text/csv", mt)})
				return
			}
			name := c.Query("file_name")
			if name == "" {
				name = "upload" + ext
			}
			o.Upload, o.UploadName = c.Request.Body, name
		}
	}
	run, err := a.kit.SIS.StartRun(a.ctx(c), a.who(c).Institution, c.Param("code"), o)
	if err != nil {
		if tooLarge(err) {
			fail(c, &requestError{status: http.StatusRequestEntityTooLarge, slug: "too-large", detail: fmt.Sprintf("the file is larger than %d bytes", a.opts.MaxUploadBytes)})
			return
		}
		fail(c, err)
		return
	}
	c.Header("Location", a.path("sis", "runs", run.ID))
	c.JSON(http.StatusAccepted, run)
}

// filePart returns the "file" part of a multipart body.
func filePart(body io.Reader, boundary string) (io.Reader, string, error) {
	if boundary == "" {
		return nil, "", badRequest("the multipart body has no boundary")
	}
	mr := multipart.NewReader(body, boundary)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, "", badRequest("the multipart body has no part named \"file\"", fault.FieldError{Field: "file", Code: "required", Message: "is required"})
		}
		if err != nil {
			if tooLarge(err) {
				return nil, "", err
			}
			return nil, "", badRequest("the multipart body cannot be read: " + err.Error())
		}
		if p.FormName() == "file" {
			return p, p.FileName(), nil
		}
	}
}

// exportProfile writes the profile's users, or their blocks, as Alma user
// XML (?what=users|blocks).
func (a *api) exportProfile(c *gin.Context) {
	inst, code, what := a.who(c).Institution, c.Param("code"), c.DefaultQuery("what", sis.ExportUsers)
	if what != sis.ExportUsers && what != sis.ExportBlocks {
		fail(c, badRequest("what must be users or blocks", fault.FieldError{Field: "what", Code: "unknown_value", Message: "must be one of: users, blocks"}))
		return
	}
	if _, err := a.kit.SIS.Profile(a.ctx(c), inst, code); err != nil {
		fail(c, err)
		return
	}
	c.Header("Content-Type", "application/xml; charset=utf-8")
	c.Header("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": code + "-" + what + ".xml"}))
	c.Status(http.StatusOK)
	if err := a.kit.SIS.Export(a.ctx(c), inst, code, what, c.Writer); err != nil {
		_ = c.Error(err) // the body has begun: the log says what broke
	}
}

func (a *api) getRun(c *gin.Context) {
	r, err := a.kit.SIS.GetRun(a.ctx(c), a.who(c).Institution, c.Param("run_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

// runReport streams every user's outcome: JSON, or CSV when the client
// asks for text/csv. The answer starts with the first outcome the SIS
// service gives (once its page is on the audit trail): a report that
// fails before is answered with a problem, not with an empty report.
func (a *api) runReport(c *gin.Context) {
	inst, id := a.who(c).Institution, c.Param("run_id")
	if _, err := a.kit.SIS.GetRun(a.ctx(c), inst, id); err != nil {
		fail(c, err)
		return
	}
	started := false
	if acceptsCSV(c.GetHeader("Accept")) {
		w := csv.NewWriter(c.Writer)
		start := func() {
			if !started {
				started = true
				c.Header("Content-Type", "text/csv; charset=utf-8")
				c.Header("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": "run-" + id + ".csv"}))
				c.Status(http.StatusOK)
				_ = w.Write([]string{"seq", "file", "ref", "primary_id", "outcome", "reason", "changes"})
			}
		}
		err := a.kit.SIS.Report(a.ctx(c), inst, id, func(o sis.Outcome) error {
			start()
			return w.Write([]string{strconv.Itoa(o.Seq), cell(o.File), cell(o.Ref), cell(o.PrimaryID), o.Outcome, cell(o.Reason), o.Changes})
		})
		if err != nil && !started {
			fail(c, err)
			return
		}
		start()
		w.Flush()
		if err != nil {
			_ = c.Error(err)
		}
		return
	}
	enc := json.NewEncoder(c.Writer)
	start := func() {
		if !started {
			started = true
			c.Header("Content-Type", "application/json; charset=utf-8")
			c.Status(http.StatusOK)
			io.WriteString(c.Writer, `{"run_id":`+strconv.Quote(id)+`,"outcomes":[`)
		}
	}
	n := 0
	err := a.kit.SIS.Report(a.ctx(c), inst, id, func(o sis.Outcome) error {
		start()
		if n > 0 {
			io.WriteString(c.Writer, ",")
		}
		n++
		return enc.Encode(o)
	})
	if err != nil && !started {
		fail(c, err)
		return
	}
	start()
	io.WriteString(c.Writer, `],"total_record_count":`+strconv.Itoa(n)+"}")
	if err != nil {
		_ = c.Error(err)
	}
}

func (a *api) restoreSISFields(c *gin.Context) {
	var in struct {
		Fields []string `json:"fields"`
	}
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	restored, err := a.kit.Patrons.RestoreSISFields(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), in.Fields)
	if err != nil {
		fail(c, err)
		return
	}
	if restored == nil {
		restored = []string{}
	}
	c.JSON(http.StatusOK, gin.H{"restored": restored})
}

// writeVersioned answers a versioned resource with its version as ETag.
func writeVersioned(c *gin.Context, status, version int, v any) {
	c.Header("ETag", strconv.Quote(strconv.Itoa(version)))
	c.JSON(status, v)
}

// tooLarge reports whether err is a body over its size limit.
func tooLarge(err error) bool {
	var big *http.MaxBytesError
	return errors.As(err, &big)
}

// acceptsCSV reports whether an Accept header asks for text/csv (with a
// quality above zero).
func acceptsCSV(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != "text/csv" {
			continue
		}
		if q, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(q, 64); err != nil || v <= 0 {
				continue
			}
		}
		return true
	}
	return false
}

// cell keeps a value from an SIS file from being read as a formula by a
// spreadsheet that opens the report.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
