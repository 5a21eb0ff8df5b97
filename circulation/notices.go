package circulation

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/patron"
)

// Notice kinds.
const (
	NoticeLoanReceipt      = "loan_receipt"
	NoticeDueSoon          = "due_soon"
	NoticeOverdue          = "overdue"
	NoticeOnHoldShelf      = "on_hold_shelf"
	NoticeRequestCancelled = "request_cancelled"
	NoticeFineCharged      = "fine_charged"
)

// NoticeKinds lists every kind of notice.
var NoticeKinds = []string{NoticeLoanReceipt, NoticeDueSoon, NoticeOverdue, NoticeOnHoldShelf, NoticeRequestCancelled, NoticeFineCharged}

// OptionalNotices are the kinds a patron may opt out of; overdue notices
// and charges are always sent.
var OptionalNotices = []string{NoticeLoanReceipt, NoticeDueSoon, NoticeOnHoldShelf, NoticeRequestCancelled}

// Channels a notice goes by.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

// Notice statuses.
const (
	// NoticePending: waiting for the sender (SendNotices).
	NoticePending = "pending"
	// NoticeSending: claimed by a sender; taken again if it stays so
	// longer than the claim lasts (the sender stopped midway).
	NoticeSending = "sending"
	// NoticeSent: delivered to the channel and archived on the record.
	NoticeSent = "sent"
	// NoticeFailed: the channel refused it every time it was tried.
	NoticeFailed = "failed"
	// NoticeSkipped: not sent: the patron opted out of the kind, or has no
	// address for it.
	NoticeSkipped = "skipped"
)

// Message is one notice to deliver.
type Message struct {
	// Channel is ChannelEmail or ChannelSMS; To the address or number.
	Channel string
	To      string
	// Subject (email only) and Body are the rendered text.
	Subject string
	Body    string
	// Notice is the notice the message comes from.
	Notice *Notice
}

// A Notifier delivers messages of one channel: an email server, an SMS
// gateway (see adapters/notify). It returns an error when the message was
// not accepted; the notice is then tried again on a later run.
type Notifier interface {
	Notify(ctx context.Context, m Message) error
}

// NotifierFunc makes a function a Notifier.
type NotifierFunc func(ctx context.Context, m Message) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, m Message) error { return f(ctx, m) }

// Notice is a message to a patron about their loans, requests or fees. It
// is written (rendered from its template, in the patron's preferred
// language, for the channel they chose) in the same transaction as what
// it tells of, and sent later by SendNotices: the notice outbox.
//
// # Once
//
// Each notice has a key (its kind and what it is about: the loan and its
// due date, the request, the fee) unique in its institution, so that
// however often and on however many instances the jobs run, a notice is
// written once. A sender claims a notice with a conditional update before
// sending it, so two senders never send one notice; one that stops between
// sending and recording it leaves the notice claimed, and it is sent again
// once the claim has lasted NoticeClaim: a notice is delivered at least
// once, twice only after such a crash.
type Notice struct {
	ID          string `json:"notice_id" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	UserID      string `json:"-" gorm:"size:36;not null"`
	PrimaryID   string `json:"primary_id" gorm:"size:255;not null"`
	// Kind is one of NoticeKinds, or NoticeMessage; Key what makes it
	// unique.
	Kind string `json:"kind" gorm:"size:32;not null"`
	Key  string `json:"-" gorm:"size:255;not null"`
	// LoanID and DueAt name the loan and due date of a due-soon or
	// overdue notice.
	LoanID string     `json:"loan_id,omitempty" gorm:"size:36"`
	DueAt  *time.Time `json:"-"`
	// Channel, Recipient and Language say how it goes out.
	Channel   string `json:"channel" gorm:"size:8"`
	Recipient string `json:"recipient,omitempty" gorm:"size:255"`
	Language  string `json:"language" gorm:"size:16"`
	Subject   string `json:"subject" gorm:"size:255"`
	Body      string `json:"body" gorm:"size:10000"`
	// Status is one of the Notice statuses; Error the last failure.
	Status   string     `json:"status" gorm:"size:16;not null"`
	Attempts int        `json:"attempts" gorm:"not null"`
	Error    string     `json:"error,omitempty" gorm:"size:1000"`
	Claimed  *time.Time `json:"-"`
	SentAt   *time.Time `json:"sent_date,omitempty"`
	// AttachmentID names the copy archived on the patron's record.
	AttachmentID string    `json:"attachment_id,omitempty" gorm:"size:36"`
	CreatedAt    time.Time `json:"created_date"`
}

// TableName places notices in the pk_ namespace of the host's database.
func (Notice) TableName() string { return "pk_circ_notices" }

// noticePrefs are a patron's notice settings: the kinds they opted out of.
type noticePrefs struct {
	UserID      string `gorm:"primaryKey;size:36"`
	Institution string `gorm:"size:64;not null"`
	OptOuts     string `gorm:"size:255"`
}

func (noticePrefs) TableName() string { return "pk_circ_notice_prefs" }

// noticeData is what templates may use.
type noticeData struct {
	Name, Title, Barcode, Library, DueDate, HoldUntil, Reason, Amount, Description string
	// Subject and Text are what staff wrote of a message (NoticeMessage).
	Subject, Text string
}

//go:embed templates
var builtinTemplates embed.FS

// templates finds and caches the notice templates: the host's first (in
// Options.Templates), then the built-in ones; in the language asked for,
// then English.
type templates struct {
	host  fs.FS
	mu    sync.Mutex
	cache map[string]*template.Template
}

func (t *templates) get(lang, kind string) (*template.Template, string, error) {
	lang = strings.ToLower(strings.TrimSpace(lang))
	if lang == "" || strings.ContainsAny(lang, "/\\.") {
		lang = "en"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range slices.Compact([]string{lang, "en"}) {
		if tpl, ok := t.cache[l+"/"+kind]; ok {
			return tpl, l, nil
		}
		for _, src := range []fs.FS{t.host, builtinTemplates} {
			if src == nil {
				continue
			}
			name := path.Join(l, kind+".tmpl")
			if src == fs.FS(builtinTemplates) {
				name = path.Join("templates", name)
			}
			b, err := fs.ReadFile(src, name)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, "", err
			}
			tpl, err := template.New(kind).Option("missingkey=error").Parse(string(b))
			if err != nil {
				return nil, "", fmt.Errorf("circulation: notice template %s: %w", name, err)
			}
			if t.cache == nil {
				t.cache = map[string]*template.Template{}
			}
			t.cache[l+"/"+kind] = tpl
			return tpl, l, nil
		}
	}
	return nil, "", fmt.Errorf("circulation: no notice template %s", kind)
}

// render writes the subject and body of a notice of kind for channel.
func (t *templates) render(lang, kind, channel string, d noticeData) (subject, body, used string, err error) {
	tpl, used, err := t.get(lang, kind)
	if err != nil {
		return "", "", "", err
	}
	var s, b bytes.Buffer
	if err := tpl.ExecuteTemplate(&s, "subject", d); err != nil {
		return "", "", "", err
	}
	part := "body"
	if channel == ChannelSMS {
		part = "sms"
	}
	if err := tpl.ExecuteTemplate(&b, part, d); err != nil {
		return "", "", "", err
	}
	return strings.TrimSpace(s.String()), strings.TrimSpace(b.String()) + "\n", used, nil
}

// recipient is who a notice goes to, as read within a transaction.
type recipient struct {
	primaryID, name, lang, email, sms string
}

// readRecipient reads, through the patron service, who a notice to the
// patron of internal id userID goes to, within the transaction ctx
// carries. The read is audited as the actor of ctx, or as the notices job.
func (s *Service) readRecipient(ctx context.Context, inst, userID string) (*recipient, error) {
	ps, err := s.patronService()
	if err != nil {
		return nil, err
	}
	ctx = withJobActor(ctx, inst, "notices")
	u, err := ps.GetByID(ctx, inst, userID, patron.KindEmails, patron.KindPhones)
	if err != nil {
		return nil, err
	}
	return recipientOf(u), nil
}

// recipientOf is who a notice to u goes to: their preferred email (or
// first) and their phone marked preferred_sms.
func recipientOf(u *patron.User) *recipient {
	r := &recipient{primaryID: u.PrimaryID, name: strings.TrimSpace(u.FirstName + " " + u.LastName), lang: u.PreferredLanguage}
	if r.name == "" {
		r.name = u.PrimaryID
	}
	for i, e := range u.Emails {
		if i == 0 || e.Preferred {
			r.email = e.EmailAddress
		}
		if e.Preferred {
			break
		}
	}
	for _, p := range u.Phones {
		if p.PreferredSMS {
			r.sms = p.PhoneNumber
			break
		}
	}
	return r
}

// queueNotice writes a notice of kind for the patron userID within tx,
// once per key. The channel is SMS where the patron has a phone marked
// preferred_sms, else email; a notice with no address to go to is written
// as skipped. Opt-outs are read when the notice is sent, so that a patron
// who opts out stops the notices already written too.
func (s *Service) queueNotice(ctx context.Context, tx *gorm.DB, inst, userID, kind, key string, d noticeData, loanID string, dueAt *time.Time) error {
	r, err := s.readRecipient(ctx, inst, userID)
	if errors.Is(err, fault.ErrNotFound) {
		return nil // the patron is gone
	}
	if err != nil {
		return err
	}
	return s.queueNoticeTo(tx, inst, userID, r, kind, key, d, loanID, dueAt)
}

// addressTo sends n by r's preferred channel: SMS to a phone that takes
// it, else email; with neither, n is skipped.
func (n *Notice) addressTo(r *recipient) {
	switch {
	case r.sms != "":
		n.Channel, n.Recipient = ChannelSMS, r.sms
	case r.email != "":
		n.Channel, n.Recipient = ChannelEmail, r.email
	default:
		n.Channel, n.Status, n.Error = ChannelEmail, NoticeSkipped, "no email address or SMS phone"
	}
}

// queueNoticeTo is queueNotice to a recipient already read.
func (s *Service) queueNoticeTo(tx *gorm.DB, inst, userID string, r *recipient, kind, key string, d noticeData, loanID string, dueAt *time.Time) error {
	var err error
	d.Name = r.name
	n := &Notice{ID: keys.NewID(), Institution: inst, UserID: userID, PrimaryID: r.primaryID, Kind: kind, Key: key, LoanID: loanID, DueAt: dueAt,
		Status: NoticePending, CreatedAt: s.loanClock()}
	n.addressTo(r)
	if n.Subject, n.Body, n.Language, err = s.templates.render(r.lang, kind, n.Channel, d); err != nil {
		return err
	}
	return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(n).Error
}

// formatTime writes a time for a notice.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// libraryName is the name of the library code, or the code.
func libraryName(tx *gorm.DB, inst, code string) string {
	var l Library
	if err := tx.Select("name").Where("institution = ? AND code_key = ?", inst, keys.Fold(code)).Take(&l).Error; err == nil && l.Name != "" {
		return l.Name
	}
	return code
}

// QueueDueNotices writes the due-soon notices of open loans due within
// Options.DueSoon, and the overdue notices of loans past their due date,
// each once per loan and due date (a renewal makes a new due date), in
// every institution. It returns how many it wrote. The kit's Start runs
// it periodically.
func (s *Service) QueueDueNotices(ctx context.Context) (int, error) {
	now := s.loanClock()
	n := 0
	for _, k := range []struct {
		kind     string
		from, to time.Time
	}{
		{NoticeDueSoon, now, now.Add(s.dueSoon)},
		{NoticeOverdue, time.Time{}, now},
	} {
		for {
			var due []Loan
			err := s.conn(ctx).Where("status = ? AND due_at > ? AND due_at <= ?", LoanOpen, k.from, k.to).
				Where("NOT EXISTS (SELECT 1 FROM pk_circ_notices n WHERE n.loan_id = pk_circ_loans.id AND n.kind = ? AND n.due_at = pk_circ_loans.due_at)", k.kind).
				Order("due_at, id").Limit(200).Find(&due).Error
			if err != nil {
				return n, err
			}
			for _, l := range due {
				d := noticeData{Barcode: l.ItemBarcode, DueDate: formatTime(l.DueAt)}
				err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
					d.Title, d.Library = loanTitle(tx, &l), libraryName(tx, l.Institution, l.Library)
					if k.kind == NoticeOverdue {
						if t, err := s.loanTerms(ctx, l.Institution, &l, nil, nil); err == nil {
							if fine := s.overdueFine(t, l.DueAt, now); fine > 0 {
								d.Amount = FormatMoney(fine, t.Currency)
							}
						}
					}
					due := l.DueAt
					return s.queueNotice(ctx, tx, l.Institution, l.UserID, k.kind, fmt.Sprintf("%s:%s:%d", k.kind, l.ID, l.DueAt.Unix()), d, l.ID, &due)
				})
				if err != nil {
					return n, err
				}
				n++
			}
			if len(due) < 200 {
				break
			}
		}
	}
	return n, nil
}

// loanTitle is the title of a loan's item.
func loanTitle(tx *gorm.DB, l *Loan) string {
	var it Item
	if err := tx.Select("title").Where("institution = ? AND id = ?", l.Institution, l.ItemID).Take(&it).Error; err == nil {
		return it.Title
	}
	return l.ItemBarcode
}

// SendNotices sends the pending notices of every institution through the
// Notifier of their channel (Options.Email, Options.SMS), archives each
// one sent on the patron's record (an attachment of kind notice), and
// returns how many it sent. A notice the channel refuses is tried again
// on the next run, up to five times; a channel with no Notifier leaves its
// notices pending. Several instances may run it at once (see Notice).
func (s *Service) SendNotices(ctx context.Context) (int, error) {
	sent := 0
	stale := s.loanClock().Add(-s.noticeClaim)
	for {
		var batch []Notice
		if err := s.conn(ctx).Where("status = ? OR (status = ? AND claimed < ?)", NoticePending, NoticeSending, stale).
			Order("created_at, id").Limit(100).Find(&batch).Error; err != nil {
			return sent, err
		}
		done := 0
		for i := range batch {
			ok, err := s.sendNotice(ctx, &batch[i])
			if err != nil {
				return sent, err
			}
			if ok {
				sent++
				done++
			}
		}
		if len(batch) < 100 || done == 0 {
			return sent, nil
		}
	}
}

// maxNoticeAttempts is how often a notice is tried before it fails.
const maxNoticeAttempts = 5

func (s *Service) sendNotice(ctx context.Context, n *Notice) (bool, error) {
	db := s.conn(ctx)
	now := s.loanClock()
	var prefs noticePrefs
	if err := db.Where("user_id = ?", n.UserID).Limit(1).Find(&prefs).Error; err != nil {
		return false, err
	}
	if slices.Contains(strings.Split(prefs.OptOuts, ","), n.Kind) {
		return false, db.Model(&Notice{}).Where("id = ? AND status = ? AND attempts = ?", n.ID, n.Status, n.Attempts).
			Updates(map[string]any{"status": NoticeSkipped, "error": "the patron opted out of " + n.Kind + " notices"}).Error
	}
	notifier := s.email
	if n.Channel == ChannelSMS {
		notifier = s.sms
	}
	if notifier == nil {
		return false, nil
	}
	claim := db.Model(&Notice{}).Where("id = ? AND status = ? AND attempts = ?", n.ID, n.Status, n.Attempts).
		Updates(map[string]any{"status": NoticeSending, "claimed": now, "attempts": n.Attempts + 1})
	if claim.Error != nil {
		return false, claim.Error
	}
	if claim.RowsAffected == 0 {
		return false, nil // another sender took it
	}
	err := notifier.Notify(ctx, Message{Channel: n.Channel, To: n.Recipient, Subject: n.Subject, Body: n.Body, Notice: n})
	if err != nil {
		status := NoticePending
		if n.Attempts+1 >= maxNoticeAttempts {
			status = NoticeFailed
		}
		msg := err.Error()
		if len(msg) > 1000 {
			msg = msg[:1000]
		}
		s.log.Warn("circulation: a notice was not delivered", "notice_id", n.ID, "channel", n.Channel, "attempt", n.Attempts+1, "error", err)
		return false, db.Model(&Notice{}).Where("id = ? AND status = ?", n.ID, NoticeSending).
			Updates(map[string]any{"status": status, "error": msg}).Error
	}
	upd := map[string]any{"status": NoticeSent, "sent_at": s.loanClock(), "error": ""}
	if s.patrons != nil {
		actx := patron.WithActor(patron.WithOrigin(ctx, patron.Origin{Via: "job notices"}), patron.Actor{Institution: n.Institution, ID: "system:notices"})
		name := fmt.Sprintf("%s-%s-%s.txt", n.Kind, now.Format("20060102-150405"), n.ID[len(n.ID)-6:])
		text := n.Body
		if n.Subject != "" {
			text = "Subject: " + n.Subject + "\nTo: " + n.Recipient + " (" + n.Channel + ")\n\n" + n.Body
		}
		a, err := s.patrons.AddAttachment(actx, n.Institution, n.PrimaryID, patron.Attachment{FileName: name,
			ContentType: "text/plain; charset=utf-8", Kind: patron.AttachmentNotice, Description: truncate(n.Subject, 255)}, strings.NewReader(text))
		if err != nil {
			s.log.Error("circulation: a notice sent was not archived", "notice_id", n.ID, "error", err)
		} else {
			upd["attachment_id"] = a.ID
		}
	}
	return true, db.Model(&Notice{}).Where("id = ?", n.ID).Updates(upd).Error
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// Notices returns the notices of the patron primaryID, the newest first.
// The read is on the audit trail ("notices") unless the patron reads
// their own.
func (s *Service) Notices(ctx context.Context, inst, primaryID string) ([]Notice, error) {
	uid, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	out := []Notice{}
	if err := s.conn(ctx).Where("institution = ? AND user_id = ?", inst, uid).Order("created_at DESC, id DESC").Find(&out).Error; err != nil {
		return nil, err
	}
	for i := range out {
		out[i].CreatedAt = out[i].CreatedAt.UTC()
		if out[i].SentAt != nil {
			t := out[i].SentAt.UTC()
			out[i].SentAt = &t
		}
	}
	if err := s.auditRead(ctx, inst, pid, "notices", nil); err != nil {
		return nil, err
	}
	return out, nil
}

// Notice returns the notice id of the patron primaryID. The read is on
// the audit trail ("notices", details: the notice's id) unless the patron
// reads their own.
func (s *Service) Notice(ctx context.Context, inst, primaryID, id string) (*Notice, error) {
	uid, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	var n Notice
	err = s.conn(ctx).Where("institution = ? AND user_id = ? AND id = ?", inst, uid, strings.TrimSpace(id)).Take(&n).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("no notice %s", id)
	}
	if err != nil {
		return nil, err
	}
	if err := s.auditRead(ctx, inst, pid, "notices", map[string]any{"notice_id": n.ID}); err != nil {
		return nil, err
	}
	return &n, nil
}

// NoticeOptOuts returns the kinds of notices the patron primaryID opted
// out of. The read is on the audit trail ("notice settings") unless the
// patron reads their own.
func (s *Service) NoticeOptOuts(ctx context.Context, inst, primaryID string) ([]string, error) {
	uid, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	var p noticePrefs
	if err := s.conn(ctx).Where("user_id = ?", uid).Limit(1).Find(&p).Error; err != nil {
		return nil, err
	}
	out := []string{}
	if p.OptOuts != "" {
		out = strings.Split(p.OptOuts, ",")
	}
	if err := s.auditRead(ctx, inst, pid, "notice settings", nil); err != nil {
		return nil, err
	}
	return out, nil
}

// SetNoticeOptOuts sets the kinds of notices the patron primaryID opts
// out of (OptionalNotices only: Invalid otherwise, naming optouts[i]).
// A change is on the audit trail, in its transaction: an update of
// "notice settings" whose details are {"opt_outs": {"old", "new"}}.
func (s *Service) SetNoticeOptOuts(ctx context.Context, inst, primaryID string, kinds []string) ([]string, error) {
	uid, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	c := &checker{}
	var set []string
	for i, k := range kinds {
		k = strings.ToLower(strings.TrimSpace(k))
		c.oneOf(fmt.Sprintf("notice_opt_outs[%d]", i), k, OptionalNotices...)
		if !slices.Contains(set, k) {
			set = append(set, k)
		}
	}
	if err := c.err("settings"); err != nil {
		return nil, err
	}
	slices.Sort(set)
	if set == nil {
		set = []string{}
	}
	row := noticePrefs{UserID: uid, Institution: inst, OptOuts: strings.Join(set, ",")}
	err = s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		var cur noticePrefs
		if err := tx.Where("user_id = ?", uid).Limit(1).Find(&cur).Error; err != nil {
			return err
		}
		if cur.UserID != "" && cur.OptOuts == row.OptOuts {
			return nil
		}
		if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "user_id"}}, DoUpdates: clause.AssignmentColumns([]string{"opt_outs"})}).
			Create(&row).Error; err != nil {
			return err
		}
		old := []string{}
		if cur.OptOuts != "" {
			old = strings.Split(cur.OptOuts, ",")
		}
		if slices.Equal(old, set) {
			return nil
		}
		return s.auditChange(ctx, inst, patron.AuditUpdate, pid, "notice settings", map[string]any{"opt_outs": change(old, set)})
	})
	if err != nil {
		return nil, s.translate(err)
	}
	return set, nil
}
