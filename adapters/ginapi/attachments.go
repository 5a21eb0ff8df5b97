package ginapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// uploadSlack is what an upload's body may hold besides the file: the
// multipart boundaries and headers, and the kind and description fields.
const uploadSlack = 64 << 10

// maxUploadField caps the kind and description fields of an upload; a
// longer value is cut there, still too long for the service, which says so.
const maxUploadField = 4 << 10

// attachmentRoutes registers the staff routes on the files kept with a
// user's record.
func (a *api) attachmentRoutes(g *routes) {
	g.GET("/users/:primary_id/attachments", a.staffOnly, a.listAttachments)
	g.POST("/users/:primary_id/attachments", a.staffOnly, a.addAttachment)
	g.GET("/users/:primary_id/attachments/:attachment_id", a.staffOnly, a.getAttachment)
	g.DELETE("/users/:primary_id/attachments/:attachment_id", a.staffOnly, a.removeAttachment)
}

// staffOnly refuses patrons whatever the policies say: attachments hold
// staff uploads a patron is not meant to see.
func (a *api) staffOnly(c *gin.Context) {
	if a.who(c).Patron {
		problem(c, http.StatusForbidden, "forbidden", "attachments are for staff only")
		return
	}
	c.Next()
}

func (a *api) listAttachments(c *gin.Context) {
	out, err := a.kit.Patrons.Attachments(a.ctx(c), a.who(c).Institution, c.Param("primary_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"attachments": out, "total_record_count": len(out)})
}

func (a *api) addAttachment(c *gin.Context) {
	limit := a.kit.Patrons.MaxAttachmentBytes()
	in, content, err := readUpload(c, limit)
	if err != nil {
		fail(c, err)
		return
	}
	primaryID := c.Param("primary_id")
	out, err := a.kit.Patrons.AddAttachment(a.ctx(c), a.who(c).Institution, primaryID, in, bytes.NewReader(content))
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("users", primaryID, "attachments", out.ID))
	c.JSON(http.StatusCreated, out)
}

// getAttachment answers the file itself, as a download: the browser saves
// it under its name and never renders it in the API's origin.
func (a *api) getAttachment(c *gin.Context) {
	att, content, err := a.kit.Patrons.AttachmentContent(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), c.Param("attachment_id"))
	if err != nil {
		fail(c, err)
		return
	}
	download(c, att, content)
}

// download answers a file as a download.
func download(c *gin.Context, att *patron.Attachment, content []byte) {
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": att.FileName})
	if disposition == "" {
		disposition = "attachment"
	}
	c.Header("Content-Disposition", disposition)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Content-Security-Policy", "default-src 'none'; sandbox")
	c.Header("Content-Length", strconv.Itoa(len(content)))
	c.Data(http.StatusOK, att.ContentType, content)
}

func (a *api) removeAttachment(c *gin.Context) {
	if err := a.kit.Patrons.RemoveAttachment(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), c.Param("attachment_id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// readUpload reads a multipart/form-data body: one file part named file
// (its name and Content-Type describe the file) and optional kind and
// description fields. The body may be no larger than limit plus
// uploadSlack, and the file no larger than limit (413 either way); any
// other part, a second file, or no file at all is a 400.
func readUpload(c *gin.Context, limit int64) (patron.Attachment, []byte, error) {
	var in patron.Attachment
	mt, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return in, nil, &requestError{status: http.StatusUnsupportedMediaType, slug: "unsupported-media-type", detail: "the body must be multipart/form-data with the file in a part named file"}
	}
	tooLarge := &requestError{status: http.StatusRequestEntityTooLarge, slug: "too-large", detail: fmt.Sprintf("the file is larger than the limit of %d bytes", limit)}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, limit+uploadSlack)
	mr := multipart.NewReader(body, params["boundary"])
	var content []byte
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return in, nil, uploadError(err, tooLarge)
		}
		name := part.FormName()
		if name == "" {
			return in, nil, badRequest("a part has no name: its Content-Disposition must be form-data with the name file, kind or description")
		}
		if seen[name] {
			return in, nil, badRequest("the body has more than one part named "+strconv.Quote(name), fault.FieldError{Field: name, Code: "duplicate", Message: "is sent more than once"})
		}
		seen[name] = true
		switch name {
		case "file":
			content, err = io.ReadAll(io.LimitReader(part, limit+1))
			if err != nil {
				return in, nil, uploadError(err, tooLarge)
			}
			if int64(len(content)) > limit {
				return in, nil, tooLarge
			}
			in.FileName = part.FileName()
			in.ContentType = part.Header.Get("Content-Type")
		case "kind", "description":
			v, err := io.ReadAll(io.LimitReader(part, maxUploadField+1))
			if err != nil {
				return in, nil, uploadError(err, tooLarge)
			}
			if name == "kind" {
				in.Kind = string(v)
			} else {
				in.Description = string(v)
			}
		default:
			return in, nil, badRequest("the body has a part this API does not know", fault.FieldError{Field: name, Code: "unknown_field", Message: "is not a part of an upload: send file, and optionally kind and description"})
		}
	}
	if !seen["file"] {
		return in, nil, badRequest("the body has no file: send it in a part named file", fault.FieldError{Field: "file", Code: "required", Message: "is required"})
	}
	return in, content, nil
}

// uploadError classifies a failure to read an upload: past the body's
// limit is a 413, anything else a malformed body.
func uploadError(err error, tooLarge *requestError) error {
	var big *http.MaxBytesError
	if errors.As(err, &big) {
		return tooLarge
	}
	return badRequest("the body is not well-formed multipart/form-data: " + err.Error())
}
