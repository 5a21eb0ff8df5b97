package almaapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"mime"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/patron"
)

// Alma's codes of the attachment routes.
const (
	codeAttachmentMissing = "60321" // Attachment X not found.
	codeAttachmentContent = "60322" // Attachment content could not be processed.
)

// userAttachment is Alma's user attachment.
type userAttachment struct {
	XMLName      xml.Name `xml:"user_attachment" json:"-"`
	Link         string   `xml:"link,attr,omitempty" json:"link,omitempty"`
	ID           string   `xml:"id" json:"id"`
	FileName     string   `xml:"file_name" json:"file_name"`
	Type         string   `xml:"type" json:"type"`
	MimeType     string   `xml:"mime_type" json:"mime_type"`
	Size         int64    `xml:"size" json:"size"`
	Notes        string   `xml:"notes,omitempty" json:"notes,omitempty"`
	CreatedBy    string   `xml:"created_by,omitempty" json:"created_by,omitempty"`
	CreationDate string   `xml:"creation_date" json:"creation_date"`
	Content      string   `xml:"content,omitempty" json:"content,omitempty"`
}

// userAttachments is Alma's list of a user's attachments.
type userAttachments struct {
	XMLName     xml.Name         `xml:"user_attachments" json:"-"`
	Total       int              `xml:"total_record_count,attr" json:"total_record_count"`
	Attachments []userAttachment `xml:"user_attachment" json:"user_attachment"`
}

func (a *api) attachmentOut(c *gin.Context, pid string, at *patron.Attachment) userAttachment {
	return userAttachment{
		Link: a.link(c, "users", pid, "attachments", at.ID), ID: at.ID, FileName: at.FileName, Type: strings.ToUpper(at.Kind),
		MimeType: at.ContentType, Size: at.Size, Notes: at.Description, CreatedBy: at.CreatedBy, CreationDate: almaTime(at.CreatedDate),
	}
}

// attachmentRoutes are Alma's routes on a user's attachments (and the list
// of them, which Alma's description lacks).
func (a *api) attachmentRoutes() []route {
	return []route{
		{http.MethodGet, "/users/:user_id/attachments", "attachments.read", true, codeAttachmentMissing, a.listAttachments},
		{http.MethodPost, "/users/:user_id/attachments", "attachments.upload", true, codeAttachmentMissing, a.addAttachment},
		{http.MethodGet, "/users/:user_id/attachments/:attachment_id", "attachments.read", true, codeAttachmentMissing, a.getAttachment},
	}
}

func (a *api) listAttachments(c *gin.Context) {
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	ats, err := a.kit.Patrons.Attachments(a.ctx(c), a.inst(c), pid)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := userAttachments{Total: len(ats), Attachments: []userAttachment{}}
	for i := range ats {
		out.Attachments = append(out.Attachments, a.attachmentOut(c, pid, &ats[i]))
	}
	a.answer(c, http.StatusOK, out)
}

// getAttachment answers one attachment; with expand=content its content
// too, in base64.
func (a *api) getAttachment(c *gin.Context) {
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	at, content, err := a.kit.Patrons.AttachmentContent(a.ctx(c), a.inst(c), pid, c.Param("attachment_id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	out := a.attachmentOut(c, pid, at)
	switch strings.ToLower(strings.TrimSpace(c.Query("expand"))) {
	case "", "none":
	case "content":
		out.Content = base64.StdEncoding.EncodeToString(content)
	default:
		a.fail(c, badParameter("expand", "must be none or content"))
		return
	}
	a.answer(c, http.StatusOK, out)
}

// newAttachmentBody is the attachment a client sends: its file name,
// type, notes and content in base64.
type newAttachmentBody struct {
	XMLName  xml.Name `xml:"user_attachment" json:"-"`
	FileName string   `xml:"file_name" json:"file_name"`
	Type     string   `xml:"type" json:"type"`
	MimeType string   `xml:"mime_type" json:"mime_type"`
	Notes    string   `xml:"notes" json:"notes"`
	Content  string   `xml:"content" json:"content"`
}

// addAttachment is Alma's POST of an attachment: an upload of staff,
// its content in base64, its media type given or guessed from its name.
func (a *api) addAttachment(c *gin.Context) {
	limit := a.kit.Patrons.MaxAttachmentBytes()/3*4 + a.opts.MaxBodyBytes
	body, asXML, err := a.bodyUpTo(c, limit)
	if err != nil {
		a.fail(c, err)
		return
	}
	var in newAttachmentBody
	if asXML {
		err = xml.Unmarshal(body, &in)
	} else {
		err = json.Unmarshal(body, &in)
	}
	if err != nil {
		a.fail(c, &requestError{codeAttachmentContent, "Attachment content could not be processed: " + err.Error()})
		return
	}
	content, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(in.Content), ""))
	if err != nil || len(content) == 0 {
		a.fail(c, &requestError{codeAttachmentContent, "Attachment content could not be processed: content must be the file in base64"})
		return
	}
	ct := strings.TrimSpace(in.MimeType)
	if ct == "" {
		ct = mime.TypeByExtension(strings.ToLower(filepath.Ext(in.FileName)))
	}
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	at, err := a.kit.Patrons.AddAttachment(a.ctx(c), a.inst(c), pid,
		patron.Attachment{FileName: strings.TrimSpace(in.FileName), ContentType: ct, Kind: patron.AttachmentUpload, Description: strings.TrimSpace(in.Notes)},
		bytes.NewReader(content))
	if err != nil {
		a.fail(c, err)
		return
	}
	a.answer(c, http.StatusOK, a.attachmentOut(c, pid, at))
}
