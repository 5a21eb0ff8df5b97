package circulation

import (
	"context"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/patron"
)

// NoticeMessage is the kind of the notices that carry a message staff
// send to many patrons at once (a notify job over a set of users). A
// patron cannot opt out of them.
const NoticeMessage = "message"

// StaffMessage is a message staff send to patrons through the notice
// outbox, rendered for each from a notice template.
type StaffMessage struct {
	// Template names the notice template, {language}/{Template}.tmpl in
	// Options.Templates (its "subject", "body" and "sms" parts may use
	// .Name, the patron's name, and .Subject and .Text below). Default:
	// "message", the built-in one: the subject, and the text after
	// "Dear <name>".
	Template string `json:"template,omitempty"`
	// Subject is the subject of the email (one line, at most 255
	// characters).
	Subject string `json:"subject,omitempty"`
	// Text is the message (at most 5000 characters); required with the
	// built-in template.
	Text string `json:"text,omitempty"`
}

// templateName is what a template's name looks like.
var templateName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// CheckMessage refuses, as Invalid naming each field (template, subject,
// text), a message that cannot be sent: a template name not valid or
// naming no template (in English or the built-in ones), one that does
// not render, a subject on more than one line or too long, a text too
// long or, with the built-in template, missing. It trims m and fills the
// default template.
func (s *Service) CheckMessage(m *StaffMessage) error {
	var bad []fault.FieldError
	m.Template, m.Subject = strings.TrimSpace(m.Template), strings.TrimSpace(m.Subject)
	m.Text = strings.TrimSpace(m.Text)
	if m.Template == "" {
		m.Template = NoticeMessage
	}
	if e := patron.TextError("subject", m.Subject, false); e != nil {
		bad = append(bad, *e)
	} else if strings.ContainsAny(m.Subject, "\r\n") {
		bad = append(bad, fault.FieldError{Field: "subject", Code: "bad_format", Message: "must be one line"})
	} else if utf8.RuneCountInString(m.Subject) > 255 {
		bad = append(bad, fault.FieldError{Field: "subject", Code: "too_long", Message: "must be at most 255 characters"})
	}
	switch e := patron.TextError("text", m.Text, true); {
	case e != nil:
		bad = append(bad, *e)
	case utf8.RuneCountInString(m.Text) > 5000:
		bad = append(bad, fault.FieldError{Field: "text", Code: "too_long", Message: "must be at most 5000 characters"})
	case m.Text == "" && m.Template == NoticeMessage:
		bad = append(bad, fault.FieldError{Field: "text", Code: "required", Message: "is required with the built-in template"})
	}
	if !templateName.MatchString(m.Template) {
		bad = append(bad, fault.FieldError{Field: "template", Code: "invalid", Message: "must be a template's name: lower-case letters, digits, '_' or '-', at most 64"})
	} else {
		for _, channel := range []string{ChannelEmail, ChannelSMS} {
			if _, _, _, err := s.templates.render("en", m.Template, channel, noticeData{Name: "A. Patron", Subject: m.Subject, Text: m.Text}); err != nil {
				bad = append(bad, fault.FieldError{Field: "template", Code: "unknown_value", Message: "names no notice template that renders: " + truncate(err.Error(), 300)})
				break
			}
		}
	}
	if len(bad) > 0 {
		return &fault.Error{Kind: fault.Invalid, Detail: "the message is not valid", Fields: bad}
	}
	return nil
}

// QueueMessage writes in the notice outbox a notice of kind NoticeMessage
// carrying m (checked by CheckMessage) to the patron of internal id
// userID of inst, once per key (a second call with the key writes
// nothing and answers the first notice's rendering), within the
// transaction ctx carries: rendered in the patron's preferred language,
// by their channel (SMS where they have a phone marked preferred_sms,
// else email; skipped, with the reason in Error, when they have neither).
// SendNotices sends it and archives it on their record. The read of the
// patron's contacts is on the audit trail as the actor of ctx. With dry,
// nothing is written: the notice is only rendered (what a preview
// shows). A patron who no longer exists is NotFound.
func (s *Service) QueueMessage(ctx context.Context, inst, userID, key string, m StaffMessage, dry bool) (*Notice, error) {
	if err := s.CheckMessage(&m); err != nil {
		return nil, err
	}
	r, err := s.readRecipient(ctx, inst, userID)
	if err != nil {
		return nil, err
	}
	n := &Notice{ID: keys.NewID(), Institution: inst, UserID: userID, PrimaryID: r.primaryID, Kind: NoticeMessage, Key: key,
		Status: NoticePending, CreatedAt: s.loanClock()}
	n.addressTo(r)
	if n.Subject, n.Body, n.Language, err = s.templates.render(r.lang, m.Template, n.Channel, noticeData{Name: r.name, Subject: m.Subject, Text: m.Text}); err != nil {
		return nil, err
	}
	n.Subject = truncate(n.Subject, 255)
	if dry {
		return n, nil
	}
	// The key column is quoted by gorm (it is a reserved word in MySQL).
	db := s.conn(ctx).WithContext(ctx)
	var first []Notice
	if err := db.Where(&Notice{Institution: inst, Key: key}).Limit(1).Find(&first).Error; err != nil {
		return nil, err
	}
	if len(first) > 0 {
		return &first[0], nil
	}
	if err := db.Create(n).Error; err != nil {
		return nil, err
	}
	return n, nil
}
