package privacy

import (
	"context"
	"errors"
	"time"

	"github.com/patronkit/patronkit/account"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// PersonalDataOptions configures a PersonalDataService.
type PersonalDataOptions struct {
	// Patrons keeps the user records and their attachments. Required.
	Patrons *patron.Service
	// Circulation keeps their loans, fees, requests and notices. Required.
	Circulation *circulation.Service
	// Account answers the settings a patron keeps themselves. Required.
	Account *account.Service
	// Roles answers the roles a staff user holds; nil: none are listed.
	Roles func(ctx context.Context, inst, primaryID string) ([]casbinmodel.UserRole, error)
	// SIS keeps the SIS runs and their outcome per user. Required.
	SIS *sis.Service
	// Trail is the audit trail the access log is read from; nil: the
	// access log is empty.
	Trail *Service
	// Now stamps the documents. Default: time.Now.
	Now func() time.Time
}

// PersonalDataService answers everything the library holds about one
// person, as one document (their right of access). It is safe for
// concurrent use.
type PersonalDataService struct {
	o PersonalDataOptions
}

// NewPersonalDataService returns a PersonalDataService over the services
// of o.
func NewPersonalDataService(o PersonalDataOptions) (*PersonalDataService, error) {
	if o.Patrons == nil || o.Circulation == nil || o.Account == nil || o.SIS == nil {
		return nil, errors.New("privacy: NewPersonalDataService needs Options.Patrons, Options.Circulation, Options.Account and Options.SIS")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &PersonalDataService{o: o}, nil
}

// PersonalDataDocument is everything the library holds about one person.
// It names nobody else but by primary_id: the users a person may borrow
// for (their proxy_for_users), the proxy who borrowed on their behalf, the
// staff who charged or waived a fee. Every list is empty, never nil, when
// there is nothing to list.
type PersonalDataDocument struct {
	// GeneratedAt is when the document was put together (UTC).
	GeneratedAt time.Time `json:"generated_at"`
	// User is the person's record with every segment, as staff see it
	// (notes for staff and warnings included; OwnPersonalData: as the
	// patron sees it); never the PIN.
	User *patron.User `json:"user"`
	// Roles are the roles a staff user holds (user_roles).
	Roles []casbinmodel.UserRole `json:"roles"`
	// Settings are what the person keeps themselves: preferred contacts,
	// SMS, language and the notices they opted out of.
	Settings *account.Settings `json:"settings"`
	// Loans are the open loans; LoanHistory the returned and lost ones
	// not yet anonymized, the latest first.
	Loans       []circulation.Loan `json:"loans"`
	LoanHistory []circulation.Loan `json:"loan_history"`
	// Fees are every fee, open or closed, the newest first, each with
	// its payments and waivers.
	Fees []circulation.Fee `json:"fees"`
	// Requests are every hold request, active or closed.
	Requests []circulation.Request `json:"requests"`
	// Notices are the notices written to the person, with their texts,
	// the newest first.
	Notices []circulation.Notice `json:"notices"`
	// Attachments are the files kept with the record, listed (not their
	// content).
	Attachments []PersonalAttachment `json:"attachments"`
	// SISRuns are the SIS runs that read a record of the person, and
	// what each did with it, the latest first.
	SISRuns []PersonalSISRun `json:"sis_runs"`
	// AccessLog is who else read, changed or exported the person's data,
	// the newest first, all of it (Service.AccessLog); empty without
	// PersonalDataOptions.Trail.
	AccessLog []AccessLogEntry `json:"access_log"`
}

// PersonalAttachment is one file kept with a person's record, listed.
type PersonalAttachment struct {
	ID          string    `json:"id"`
	FileName    string    `json:"file_name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	Kind        string    `json:"kind"`
	Description string    `json:"description,omitempty"`
	CreatedDate time.Time `json:"created_date"`
	// NoticeID names the notice this file is the archived copy of, if
	// any.
	NoticeID string `json:"notice_id,omitempty"`
	// Link is where the file is downloaded, a path relative to the API's
	// root; the adapter fills it (empty when the reader has no route to
	// the file).
	Link string `json:"link,omitempty"`
}

// PersonalSISRun is an SIS run that read a record of the person, and what
// it did with it.
type PersonalSISRun struct {
	RunID   string    `json:"run_id"`
	Profile string    `json:"profile"`
	Date    time.Time `json:"date"`
	DryRun  bool      `json:"dry_run"`
	// Outcome is what the run did with the record (created, updated,
	// unchanged, rejected, failed...); Reason why it rejected it or
	// failed; Changes the fields and segment lists it changed.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	Changes string `json:"changes,omitempty"`
}

// AccessLogEntry is one access to a person's data by someone else: who
// (their kind, roles and library, and their primary_id only where the
// institution names them, Options.AccessLogNames) did what to which part
// of it, when. The audit trail writes them (Service.AccessLog).
type AccessLogEntry struct {
	At time.Time `json:"date"`
	// Actor is who acted, by primary_id: only where the institution's
	// access log names them; a job of the kit ("system:sis") always.
	Actor string `json:"actor,omitempty"`
	// ActorKind is staff, patron or system (ActorStaff...).
	ActorKind string `json:"actor_kind"`
	// Roles are the roles the actor held, each as "role@library" ("@*"
	// for every library), and Library the library they allowed the
	// access in, when the way in named them.
	Roles   []string `json:"roles"`
	Library string   `json:"library,omitempty"`
	// Action is one of patron's Audit* actions (read, update, export...);
	// What the part of the data concerned (user, attachments...).
	Action string `json:"action"`
	What   string `json:"what"`
}

// PersonalData answers everything held about the user primaryID of
// institution inst, as staff see it; NotFound when there is no such user.
// The export is told to the audit sink as an export (patron.AuditExport)
// of the user.
func (s *PersonalDataService) PersonalData(ctx context.Context, inst, primaryID string) (*PersonalDataDocument, error) {
	return s.personalData(ctx, inst, primaryID, false)
}

// OwnPersonalData is PersonalData as the patron primaryID downloads their
// own: what the library holds about them, under the rules of their own
// account (package account): of the record's notes only those meant for
// them (user_viewable), none of the warnings for staff, and of a notice
// what a channel answered only when it was skipped.
func (s *PersonalDataService) OwnPersonalData(ctx context.Context, inst, primaryID string) (*PersonalDataDocument, error) {
	return s.personalData(ctx, inst, primaryID, true)
}

func (s *PersonalDataService) personalData(ctx context.Context, inst, primaryID string, own bool) (*PersonalDataDocument, error) {
	u, err := s.o.Patrons.Get(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	if own {
		u = account.View(u)
	}
	pid := u.PrimaryID
	doc := &PersonalDataDocument{GeneratedAt: s.o.Now().UTC(), User: u, Roles: []casbinmodel.UserRole{},
		AccessLog: []AccessLogEntry{}}
	if s.o.Roles != nil {
		if doc.Roles, err = s.o.Roles(ctx, inst, pid); err != nil {
			return nil, err
		}
	}
	if doc.Settings, err = s.o.Account.Settings(ctx, inst, pid); err != nil {
		return nil, err
	}
	if doc.Loans, err = s.o.Circulation.Loans(ctx, inst, pid, true); err != nil {
		return nil, err
	}
	if doc.LoanHistory, err = s.o.Circulation.Loans(ctx, inst, pid, false); err != nil {
		return nil, err
	}
	if doc.Fees, err = s.o.Circulation.Fees(ctx, inst, pid, false); err != nil {
		return nil, err
	}
	if doc.Requests, err = s.o.Circulation.Requests(ctx, inst, pid, false); err != nil {
		return nil, err
	}
	notices := s.o.Circulation.Notices
	if own {
		notices = s.o.Account.Notices
	}
	if doc.Notices, err = notices(ctx, inst, pid); err != nil {
		return nil, err
	}
	atts, err := s.o.Patrons.Attachments(ctx, inst, pid)
	if err != nil {
		return nil, err
	}
	noticeOf := map[string]string{}
	for _, n := range doc.Notices {
		if n.AttachmentID != "" {
			noticeOf[n.AttachmentID] = n.ID
		}
	}
	doc.Attachments = make([]PersonalAttachment, 0, len(atts))
	for _, a := range atts {
		doc.Attachments = append(doc.Attachments, PersonalAttachment{ID: a.ID, FileName: a.FileName, ContentType: a.ContentType,
			Size: a.Size, Kind: a.Kind, Description: a.Description, CreatedDate: a.CreatedDate, NoticeID: noticeOf[a.ID]})
	}
	if doc.SISRuns, err = s.sisRuns(ctx, inst, pid); err != nil {
		return nil, err
	}
	if s.o.Trail != nil {
		if doc.AccessLog, err = s.o.Trail.FullAccessLog(ctx, inst, pid); err != nil {
			return nil, err
		}
	}
	doc.Loans, doc.LoanHistory, doc.Fees = nonNil(doc.Loans), nonNil(doc.LoanHistory), nonNil(doc.Fees)
	doc.Requests, doc.Notices, doc.Roles = nonNil(doc.Requests), nonNil(doc.Notices), nonNil(doc.Roles)
	for i := range doc.Fees {
		doc.Fees[i].Transactions = nonNil(doc.Fees[i].Transactions)
	}
	// On the trail before the document leaves.
	if err := s.o.Patrons.RecordAudit(ctx, inst, patron.AuditExport, pid, "personal data", ""); err != nil {
		return nil, err
	}
	return doc, nil
}

// sisRuns answers the runs of inst that read a record of primaryID (any
// case), the latest first.
func (s *PersonalDataService) sisRuns(ctx context.Context, inst, primaryID string) ([]PersonalSISRun, error) {
	rows, err := s.o.SIS.OutcomesOf(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	out := make([]PersonalSISRun, 0, len(rows))
	for _, r := range rows {
		out = append(out, PersonalSISRun{RunID: r.RunID, Profile: r.Profile, Date: r.Date, DryRun: r.DryRun,
			Outcome: r.Outcome, Reason: r.Reason, Changes: r.Changes})
	}
	return out, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
