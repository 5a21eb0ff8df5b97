package privacy

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/account"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/tally"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// The kinds of records a retention rule applies to.
const (
	// RetainLoans are returned loans (a loan declared lost stays as it is:
	// the item may still come back and the patron be charged). A loan
	// that carried a fee counts from the day the fee closed, and stays
	// as long as a fee of it is open or still names the patron: the
	// fee's loan_id would otherwise name the borrower of an anonymized
	// loan (and its pseudonym). Keep fees no longer than loans to have
	// loans go by their own rule.
	RetainLoans = "loans"
	// RetainFees are closed fees (paid or waived in full), with their
	// payments and waivers.
	RetainFees = "fees"
	// RetainRequests are fulfilled, cancelled and expired requests.
	RetainRequests = "requests"
	// RetainNotices are the notices written to patrons, once sent, failed
	// or skipped (the archived copy on the user record stays there, and
	// goes with the record).
	RetainNotices = "notices"
	// RetainSISOutcomes are what each SIS run did with each record,
	// counted from the end of the run.
	RetainSISOutcomes = "sis_outcomes"
)

// RetentionKinds lists the kinds of records.
var RetentionKinds = []string{RetainLoans, RetainFees, RetainRequests, RetainNotices, RetainSISOutcomes}

// runOrder is the order a run treats the kinds in: fees before loans, so
// that a fee anonymized lets its loan go in the same run.
var runOrder = []string{RetainFees, RetainLoans, RetainRequests, RetainNotices, RetainSISOutcomes}

// When a rule anonymizes.
const (
	// KeepForever never anonymizes: the records keep their borrower, as
	// before retention existed. The default.
	KeepForever = "never"
	// AnonymizeImmediately anonymizes a record at the next run once it is
	// closed.
	AnonymizeImmediately = "immediately"
	// AnonymizeAfterDays anonymizes a record Days days after it closed.
	AnonymizeAfterDays = "after_days"
)

// RetentionRule says how long one kind of record keeps the patron it is
// about once it is closed. Institution, Library and UserGroup narrow it
// (empty: any); for a record the most specific rule applies, in this
// order: a rule naming the institution before one for every institution,
// then within each one naming both the library and the user group, one
// naming the library, one naming the user group, one naming neither; among
// rules equally specific the first given wins. Without a rule a record is
// kept forever.
//
// The library of a loan is its item's library; of a fee, its loan's (a
// fee without a loan has none); of a request, its pickup library; of a
// notice, its loan's. The user group is the patron's at the run. SIS
// outcomes have neither: only rules naming neither apply to them.
type RetentionRule struct {
	Kind        string `json:"kind"`
	Institution string `json:"institution,omitempty"`
	Library     string `json:"library,omitempty"`
	UserGroup   string `json:"user_group,omitempty"`
	// Anonymize is KeepForever (empty means it too),
	// AnonymizeImmediately or AnonymizeAfterDays.
	Anonymize string `json:"anonymize"`
	// Days counts from the day the record closed (AnonymizeAfterDays).
	Days int `json:"days,omitempty"`
}

// Validate refuses a rule that names an unknown kind or mode, or a
// negative number of days.
func (r RetentionRule) Validate() error {
	if !slices.Contains(RetentionKinds, r.Kind) {
		return fmt.Errorf("privacy: retention rule of unknown kind %q (one of %s)", r.Kind, strings.Join(RetentionKinds, ", "))
	}
	switch r.Anonymize {
	case "", KeepForever, AnonymizeImmediately:
	case AnonymizeAfterDays:
		if r.Days <= 0 {
			return fmt.Errorf("privacy: retention rule for %s: %s needs Days > 0", r.Kind, AnonymizeAfterDays)
		}
	default:
		return fmt.Errorf("privacy: retention rule for %s: Anonymize is %q, %q or %q, not %q", r.Kind, KeepForever, AnonymizeImmediately, AnonymizeAfterDays, r.Anonymize)
	}
	if r.Kind == RetainSISOutcomes && (r.Library != "" || r.UserGroup != "") {
		return fmt.Errorf("privacy: SIS outcomes have no library nor user group; their retention rule names neither")
	}
	return nil
}

func (r RetentionRule) specificity() int {
	n := 0
	if r.Institution != "" {
		n += 4
	}
	if r.Library != "" {
		n += 2
	}
	if r.UserGroup != "" {
		n++
	}
	return n
}

// keeps tells whether the rule never anonymizes; otherwise cutoff is the
// latest closing time a record may have to be anonymized at now.
func (r RetentionRule) cutoff(now time.Time) (time.Time, bool) {
	switch r.Anonymize {
	case AnonymizeImmediately:
		return now, true
	case AnonymizeAfterDays:
		return now.AddDate(0, 0, -r.Days), true
	}
	return time.Time{}, false
}

// The patron's own choice about their loan history (HistoryChoice).
const (
	// HistoryLibraryRule follows the library's retention rule: the
	// default.
	HistoryLibraryRule = account.HistoryLibraryRule
	// HistoryForever keeps the patron's returned loans with their name
	// whatever the library's rule (and the last-borrower window).
	HistoryForever = account.HistoryForever
	// HistoryNever anonymizes the patron's loans as soon as they are
	// returned and their fees closed, at the next run, whatever the
	// library's rule and the last-borrower window; no staff user can keep
	// them.
	HistoryNever = account.HistoryNever
)

// HistoryChoices lists the choices a patron may make.
var HistoryChoices = account.HistoryChoices

// RetentionOptions configures a Retention.
type RetentionOptions struct {
	// Rules are the retention rules (see RetentionRule). Default: none,
	// every record is kept forever.
	Rules []RetentionRule
	// LastBorrowerDays keeps the last borrower of each item on its latest
	// loan for that many days after the return (for damage claims), even
	// where a rule would anonymize it sooner; a patron who chose
	// HistoryNever is not kept. Default: 0, none.
	LastBorrowerDays int
	// PseudonymKey, when set, gives each anonymized record a pseudonym of
	// its patron: HMAC-SHA-256 of the patron's internal id with this key,
	// so that repeat borrowing can still be counted. Without the key the
	// pseudonym cannot be computed again from a user. Keep it secret.
	// Default: none, no pseudonym.
	PseudonymKey []byte
	// Patrons records each run on the audit trail. Required.
	Patrons *patron.Service
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives the runs' logs. Default: slog.Default().
	Logger *slog.Logger
	// Instance names this instance in the lease that lets one instance at
	// a time anonymize an institution's records. Default: a random name.
	Instance string
	// BatchSize is how many records a run reads, and anonymizes in one
	// transaction, at a time. Default: 5000.
	BatchSize int
	// LeaseTTL is how long a run's hold on its institution lasts unless
	// renewed (each batch renews it). Default: 5 minutes.
	LeaseTTL time.Duration
}

// Retention anonymizes closed loans, fees, requests, notices and SIS
// outcomes once their retention has passed: the record stays, for
// statistics, without anything that names its patron (see Anonymized).
// It is safe for concurrent use, and on several instances over one
// database: a lease lets one run at a time work on an institution.
type Retention struct {
	db         *gorm.DB
	o          RetentionOptions
	lease      *lease
	afterBatch func(kind string) // tests
}

// Counts are how many records of each kind a run anonymized (or, dry,
// would anonymize).
type Counts struct {
	Loans       int64 `json:"loans"`
	Fees        int64 `json:"fees"`
	Requests    int64 `json:"requests"`
	Notices     int64 `json:"notices"`
	SISOutcomes int64 `json:"sis_outcomes"`
}

func (c *Counts) add(kind string, n int64) {
	switch kind {
	case RetainLoans:
		c.Loans += n
	case RetainFees:
		c.Fees += n
	case RetainRequests:
		c.Requests += n
	case RetainNotices:
		c.Notices += n
	case RetainSISOutcomes:
		c.SISOutcomes += n
	}
}

// Total is the sum of the counts.
func (c Counts) Total() int64 { return c.Loans + c.Fees + c.Requests + c.Notices + c.SISOutcomes }

// Statuses of an AnonymizationRun.
const (
	RunRunning = "running"
	RunDone    = "done"
	RunFailed  = "failed"
)

// AnonymizationRun is the report of one run: what it anonymized (or
// would, dry), kept once it ends.
type AnonymizationRun struct {
	ID          string `json:"id" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	DryRun      bool   `json:"dry_run" gorm:"not null"`
	// Status is RunRunning, RunDone or RunFailed (Error says why; what it
	// counted was done, and the next run does the rest).
	Status   string     `json:"status" gorm:"size:16;not null"`
	Instance string     `json:"-" gorm:"size:128;not null"`
	Counts   Counts     `json:"counts" gorm:"embedded;embeddedPrefix:n_"`
	Error    string     `json:"error,omitempty" gorm:"size:2000"`
	Started  time.Time  `json:"started_date" gorm:"column:started_at"`
	Finished *time.Time `json:"finished_date,omitempty" gorm:"column:finished_at"`
}

// TableName places runs in the pk_ namespace.
func (AnonymizationRun) TableName() string { return "pk_privacy_anonymization_runs" }

// Anonymized is what an anonymized record keeps of its patron, for
// statistics: a snapshot of the patron's user group, job category, record
// type, account type and statistical categories taken when the record was
// anonymized (the patron as they were then; empty when the user was
// already gone), and the pseudonym (empty without
// RetentionOptions.PseudonymKey). The record itself keeps its library,
// item and dates, and loses the patron's id, primary_id, contact data and
// the texts written to them.
type Anonymized struct {
	Kind                string    `json:"kind" gorm:"primaryKey;size:16"`
	RecordID            string    `json:"record_id" gorm:"primaryKey;size:36"`
	Institution         string    `json:"-" gorm:"size:64;not null"`
	UserGroup           string    `json:"user_group,omitempty" gorm:"size:64"`
	JobCategory         string    `json:"job_category,omitempty" gorm:"size:255"`
	RecordType          string    `json:"record_type,omitempty" gorm:"size:16"`
	AccountType         string    `json:"account_type,omitempty" gorm:"size:16"`
	StatisticCategories string    `json:"statistic_categories,omitempty" gorm:"size:1000"`
	Pseudonym           string    `json:"pseudonym,omitempty" gorm:"size:64"`
	AnonymizedAt        time.Time `json:"anonymized_date"`
}

// TableName places the snapshots in the pk_ namespace.
func (Anonymized) TableName() string { return "pk_privacy_anonymized" }

type historyChoice struct {
	Institution string `gorm:"primaryKey;size:64"`
	UserID      string `gorm:"primaryKey;size:36"`
	Choice      string `gorm:"size:16;not null"`
	UpdatedAt   time.Time
}

func (historyChoice) TableName() string { return "pk_privacy_history_choices" }

// ErrRunInProgress says another run holds the institution's lease.
var ErrRunInProgress = &fault.Error{Kind: fault.Refused, Detail: "another anonymization run of the institution is in progress", Reasons: []string{"run_in_progress"}}

// NewRetention returns a Retention over db.
func NewRetention(db *gorm.DB, o RetentionOptions) (*Retention, error) {
	if o.Patrons == nil {
		return nil, errors.New("privacy: NewRetention needs RetentionOptions.Patrons")
	}
	for _, r := range o.Rules {
		if err := r.Validate(); err != nil {
			return nil, err
		}
	}
	if o.LastBorrowerDays < 0 || o.BatchSize < 0 || o.LeaseTTL < 0 {
		return nil, errors.New("privacy: LastBorrowerDays, BatchSize and LeaseTTL cannot be negative")
	}
	o.Rules = slices.Clone(o.Rules)
	slices.SortStableFunc(o.Rules, func(a, b RetentionRule) int { return b.specificity() - a.specificity() })
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Instance == "" {
		o.Instance = "instance-" + keys.NewID()
	}
	if o.BatchSize == 0 {
		o.BatchSize = 5000
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 5 * time.Minute
	}
	return &Retention{db: db, o: o, lease: &lease{table: "pk_privacy_retention_leases", holder: o.Instance, ttl: o.LeaseTTL, now: o.Now,
		busy: ErrRunInProgress, what: "anonymization run"}}, nil
}

// Rules returns the retention rules that apply to inst, the most specific
// first (the order they are tried in).
func (r *Retention) Rules(inst string) []RetentionRule {
	out := []RetentionRule{}
	for _, x := range r.o.Rules {
		if x.Institution == "" || x.Institution == inst {
			out = append(out, x)
		}
	}
	return out
}

// LastBorrowerDays is the last-borrower window (RetentionOptions).
func (r *Retention) LastBorrowerDays() int { return r.o.LastBorrowerDays }

// rule is the rule of a record of kind in inst, at library, of a patron
// of group.
func (r *Retention) rule(rules []RetentionRule, kind, library, group string) RetentionRule {
	for _, x := range rules {
		if x.Kind == kind && (x.Library == "" || strings.EqualFold(x.Library, library)) && (x.UserGroup == "" || strings.EqualFold(x.UserGroup, group)) {
			return x
		}
	}
	return RetentionRule{Kind: kind, Anonymize: KeepForever}
}

// HistoryChoice answers the patron's choice about their loan history
// (HistoryLibraryRule when they made none).
func (r *Retention) HistoryChoice(ctx context.Context, inst, userID string) (string, error) {
	var c historyChoice
	err := txctx.DB(ctx, r.db).Where("institution = ? AND user_id = ?", inst, userID).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return HistoryLibraryRule, nil
	}
	if err != nil {
		return "", err
	}
	return c.Choice, nil
}

// SetHistoryChoice stores the patron's choice about their loan history,
// one of HistoryChoices (Invalid otherwise, naming loan_history). Only the
// patron makes it (their account); staff have no call for it.
func (r *Retention) SetHistoryChoice(ctx context.Context, inst, userID, choice string) error {
	if !slices.Contains(HistoryChoices, choice) {
		return &fault.Error{Kind: fault.Invalid, Detail: "unknown loan history choice", Fields: []fault.FieldError{{Field: "loan_history", Code: "invalid",
			Message: "one of " + strings.Join(HistoryChoices, ", ")}}}
	}
	return txctx.Transaction(ctx, r.db, func(ctx context.Context, tx *gorm.DB) error {
		if err := tx.Where("institution = ? AND user_id = ?", inst, userID).Delete(&historyChoice{}).Error; err != nil {
			return err
		}
		if choice == HistoryLibraryRule {
			return nil
		}
		return tx.Create(&historyChoice{Institution: inst, UserID: userID, Choice: choice, UpdatedAt: r.o.Now().UTC()}).Error
	})
}

// Run returns the report of one run of inst (NotFound when there is
// none).
func (r *Retention) Run(ctx context.Context, inst, id string) (*AnonymizationRun, error) {
	var run AnonymizationRun
	err := txctx.DB(ctx, r.db).Where("institution = ? AND id = ?", inst, id).Take(&run).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &fault.Error{Kind: fault.NotFound, Detail: "no anonymization run " + id}
	}
	if err != nil {
		return nil, err
	}
	run.Started = run.Started.UTC()
	if run.Finished != nil {
		f := run.Finished.UTC()
		run.Finished = &f
	}
	return &run, nil
}

// Institutions lists the institutions a run may find records of: those
// with libraries, SIS profiles or a patron's history choice.
func (r *Retention) Institutions(ctx context.Context) ([]string, error) {
	var out []string
	err := txctx.DB(ctx, r.db).Raw("SELECT institution FROM pk_circ_libraries UNION SELECT institution FROM pk_sis_profiles UNION SELECT institution FROM pk_privacy_history_choices").
		Scan(&out).Error
	slices.Sort(out)
	return slices.Compact(out), err
}

// Anonymize anonymizes the records of inst whose retention has passed, by
// the rules and the patrons' choices, in batches of BatchSize records, each
// its own transaction (it joins none ctx carries), and returns the run's
// report, which it keeps (Run). Dry, it counts what it would anonymize and
// changes nothing but the report. A run that stops (an error, a cancelled
// ctx, a crash) leaves what it did done and the rest to the next run. One
// run at a time works on an institution, whichever instance it runs on: a
// second gets ErrRunInProgress (a dry run needs no lease). Each run that
// is not dry is recorded on the audit trail (action update, what
// anonymization, the counts in its details).
func (r *Retention) Anonymize(ctx context.Context, inst string, dryRun bool) (*AnonymizationRun, error) {
	ctx = txctx.Without(ctx)
	if !dryRun {
		if err := r.lease.acquire(ctx, r.db, inst); err != nil {
			return nil, err
		}
		defer func() {
			if err := r.lease.release(ctx, r.db, inst); err != nil {
				r.o.Logger.Error("privacy: releasing the anonymization lease", "institution", inst, "error", err)
			}
		}()
	}
	run := &AnonymizationRun{ID: keys.NewID(), Institution: inst, DryRun: dryRun, Status: RunRunning, Instance: r.o.Instance, Started: r.o.Now().UTC()}
	if err := r.db.WithContext(ctx).Create(run).Error; err != nil {
		return nil, err
	}
	err := r.anonymize(ctx, inst, dryRun, run)
	done := r.o.Now().UTC()
	run.Finished, run.Status = &done, RunDone
	if err != nil {
		run.Status, run.Error = RunFailed, err.Error()
	}
	bg := context.WithoutCancel(ctx)
	if serr := r.db.WithContext(bg).Select("*").Updates(run).Error; serr != nil && err == nil {
		err = serr
	}
	if !dryRun && run.Counts.Total() > 0 {
		details, _ := json.Marshal(map[string]any{"run_id": run.ID, "counts": run.Counts, "status": run.Status})
		actx := withJob(bg, inst)
		if aerr := r.o.Patrons.RecordAudit(actx, inst, "update", "", "anonymization", string(details)); aerr != nil {
			r.o.Logger.Error("privacy: recording an anonymization run on the trail", "institution", inst, "error", aerr)
		}
	}
	if err != nil {
		return run, err
	}
	return run, nil
}

// withJob names the anonymization job as the actor when ctx names none.
func withJob(ctx context.Context, inst string) context.Context {
	if _, ok := patron.ActorFrom(ctx); ok {
		return ctx
	}
	if _, ok := patron.OriginFrom(ctx); !ok {
		ctx = patron.WithOrigin(ctx, patron.Origin{Via: "job anonymization"})
	}
	return patron.WithActor(ctx, patron.Actor{Institution: inst, ID: "system:anonymization"})
}

// candidate is a closed record that may be anonymized.
type candidate struct {
	ID          string
	UserID      string
	Library     string
	Closed      *time.Time
	Sent        *time.Time
	UserGroup   *string
	JobCategory *string
	RecordType  *string
	AccountType *string
}

func (c *candidate) closed() time.Time {
	if c.Sent != nil {
		return *c.Sent
	}
	if c.Closed != nil {
		return *c.Closed
	}
	return time.Time{}
}

// scope is what a pass over a kind anonymizes: by the rules (userIDs
// empty), or every closed record of some users.
type scope struct {
	inst    string
	userIDs []string
	dry     bool
	now     time.Time
	rules   []RetentionRule
}

// sqliteNoIndex finds the terms of the records' own columns in a
// candidates query.
var sqliteNoIndex = regexp.MustCompile(`(WHERE|AND) x\.(institution|status|returned_at|updated_at|closed_at|created_at|user_id)\b`)

// candidates reads the next batch of kind's closed records not yet
// anonymized, after id after, closed at or before upTo.
func (r *Retention) candidates(db *gorm.DB, kind string, sc *scope, after string, upTo time.Time) ([]candidate, error) {
	var q string
	user := ""
	args := []any{sc.inst}
	users := " LEFT JOIN pk_users u ON u.id = x.user_id"
	cols := ", u.user_group, u.job_category, u.record_type, u.account_type"
	switch kind {
	case RetainLoans:
		q = "SELECT x.id, x.user_id, x.library, x.returned_at AS closed" + cols + " FROM pk_circ_loans x" + users +
			" WHERE x.institution = ? AND x.status = ? AND x.returned_at <= ?"
		args = append(args, circulation.LoanComplete, upTo)
	case RetainFees:
		q = "SELECT x.id, x.user_id, l.library, x.updated_at AS closed" + cols + " FROM pk_circ_fees x LEFT JOIN pk_circ_loans l ON l.id = x.loan_id" + users +
			" WHERE x.institution = ? AND x.status = ? AND x.updated_at <= ?"
		args = append(args, circulation.FeeClosed, upTo)
	case RetainRequests:
		q = "SELECT x.id, x.user_id, x.pickup_library AS library, x.closed_at AS closed" + cols + " FROM pk_circ_requests x" + users +
			" WHERE x.institution = ? AND x.status IN ? AND x.closed_at <= ?"
		args = append(args, []string{circulation.RequestFulfilled, circulation.RequestCancelled, circulation.RequestExpired}, upTo)
	case RetainNotices:
		q = "SELECT x.id, x.user_id, l.library, x.created_at AS closed, x.sent_at AS sent" + cols + " FROM pk_circ_notices x LEFT JOIN pk_circ_loans l ON l.id = x.loan_id" + users +
			" WHERE x.institution = ? AND x.status IN ? AND x.created_at <= ?"
		args = append(args, []string{circulation.NoticeSent, circulation.NoticeFailed, circulation.NoticeSkipped}, upTo)
	}
	if len(sc.userIDs) > 0 {
		user = " AND x.user_id IN ?"
		args = append(args, sc.userIDs)
	} else {
		user = " AND x.user_id <> ''"
	}
	args = append(args, after)
	q += user + " AND x.id > ?"
	if len(sc.userIDs) == 0 && db.Dialector.Name() == "sqlite" {
		// A pass over every record reads them in the order of their ids:
		// SQLite, without statistics, would rather take an index of
		// another column and sort what it finds, for each batch; the
		// unary plus keeps those columns out of its choice.
		q = sqliteNoIndex.ReplaceAllString(q, "$1 +x.$2")
	}
	var out []candidate
	if len(sc.userIDs) > 0 {
		// Every record of a few users at once, found through the
		// index by user: ordered by id and limited, the planner would
		// rather walk every record in the order of their ids.
		err := db.Raw(q, args...).Scan(&out).Error
		slices.SortFunc(out, func(a, b candidate) int { return strings.Compare(a.ID, b.ID) })
		return out, err
	}
	err := db.Raw(q+" ORDER BY x.id LIMIT ?", append(args, r.o.BatchSize)...).Scan(&out).Error
	return out, err
}

// AnonymizeUser anonymizes every closed loan, fee, request and notice of
// one user and their SIS outcomes now, whatever the rules, in the
// transaction ctx carries (a savepoint of it) or one of its own: a purge
// or an erasure of the user calls it within its own transaction, a
// patron's "delete my history now" through the account. A returned loan
// with a fee still open is kept, as a lost loan is. It records the counts
// on the audit trail, about the user, and returns them.
func (r *Retention) AnonymizeUser(ctx context.Context, inst, userID string) (Counts, error) {
	var counts Counts
	err := txctx.Transaction(ctx, r.db, func(ctx context.Context, tx *gorm.DB) error {
		var users []userRef
		if err := tx.Raw("SELECT id, primary_id FROM pk_users WHERE institution = ? AND id = ?", inst, userID).Scan(&users).Error; err != nil {
			return err
		}
		if len(users) == 0 {
			users = []userRef{{ID: userID}}
		}
		per, err := r.anonymizeUsers(ctx, tx, inst, users, true)
		counts = per[userID]
		return err
	})
	return counts, err
}

// userRef names a user by internal id and primary_id.
type userRef struct {
	ID        string
	PrimaryID string
}

// anonymizeUsers is AnonymizeUser for a batch of users, through tx (the
// transaction ctx carries), in a few statements per kind whatever their
// number; it answers the counts per user id and, when record, records
// them on the trail, one entry per user whose primary_id is known and who
// had anything anonymized (an erasure records them in its report
// instead).
func (r *Retention) anonymizeUsers(ctx context.Context, tx *gorm.DB, inst string, users []userRef, record bool) (map[string]Counts, error) {
	per := make(map[string]Counts, len(users))
	if len(users) == 0 {
		return per, nil
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	// A few users at a time, all their closed records at once (see
	// candidates): as many rows in memory as they have records.
	for part := range slices.Chunk(ids, userChunk) {
		if err := r.anonymizeUserRecords(tx, inst, part, per); err != nil {
			return nil, err
		}
	}
	byPrimaryID := map[string]string{}
	var named []string
	for _, u := range users {
		if u.PrimaryID != "" {
			byPrimaryID[u.PrimaryID] = u.ID
			named = append(named, u.PrimaryID)
		}
	}
	if len(named) > 0 {
		outcomes, err := tally.By(tx, "SELECT primary_id AS k, COUNT(*) AS n FROM pk_sis_outcomes WHERE run_id IN (SELECT id FROM pk_sis_runs WHERE institution = ?) AND primary_id IN ? GROUP BY primary_id", inst, named)
		if err != nil {
			return nil, err
		}
		if len(outcomes) > 0 {
			if err := tx.Exec("UPDATE pk_sis_outcomes SET primary_id = '', ref = '', reason = '', changes = '' WHERE run_id IN (SELECT id FROM pk_sis_runs WHERE institution = ?) AND primary_id IN ?", inst, named).Error; err != nil {
				return nil, err
			}
		}
		for pid, n := range outcomes {
			if id, ok := byPrimaryID[pid]; ok {
				c := per[id]
				c.SISOutcomes += n
				per[id] = c
			}
		}
	}
	var es []patron.AuditEvent
	for _, u := range users {
		if c := per[u.ID]; record && c.Total() > 0 && u.PrimaryID != "" {
			details, _ := json.Marshal(map[string]any{"counts": c})
			es = append(es, patron.AuditEvent{Action: "update", PrimaryID: u.PrimaryID, What: "anonymization", Details: string(details)})
		}
	}
	return per, r.o.Patrons.RecordAuditMany(ctx, inst, es)
}

// userChunk is how many users anonymizeUsers reads the records of at
// once.
const userChunk = 500

// anonymizeUserRecords anonymizes the closed records of the users ids
// (kind by kind, fees before loans), adding the counts to per.
func (r *Retention) anonymizeUserRecords(tx *gorm.DB, inst string, ids []string, per map[string]Counts) error {
	sc := &scope{inst: inst, userIDs: ids, now: r.o.Now().UTC()}
	for _, kind := range runOrder[:4] {
		after := ""
		for {
			batch, err := r.candidates(tx, kind, sc, after, sc.now)
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				break
			}
			after = batch[len(batch)-1].ID
			keep := map[string]bool{}
			if kind == RetainLoans {
				if keep, err = r.loansWithNamedFees(tx, inst, batch); err != nil {
					return err
				}
			}
			var cs []*candidate
			for i := range batch {
				if !keep[batch[i].ID] {
					cs = append(cs, &batch[i])
				}
			}
			if _, err := r.write(tx, inst, kind, cs, sc.now); err != nil {
				return err
			}
			for _, c := range cs {
				n := per[c.UserID]
				n.add(kind, 1)
				per[c.UserID] = n
			}
		}
	}
	return nil
}

// DeleteHistory is AnonymizeUser for a patron's "delete my history now"
// (account.LoanHistory).
func (r *Retention) DeleteHistory(ctx context.Context, inst, userID string) (account.HistoryDeleted, error) {
	c, err := r.AnonymizeUser(ctx, inst, userID)
	return account.HistoryDeleted{Loans: c.Loans, Fees: c.Fees, Requests: c.Requests, Notices: c.Notices}, err
}

var _ account.LoanHistory = (*Retention)(nil)

// loansWithNamedFees answers which loans of the batch have a fee still
// open, or still naming the patron (see due).
func (r *Retention) loansWithNamedFees(db *gorm.DB, inst string, batch []candidate) (map[string]bool, error) {
	ids := make([]string, len(batch))
	for i, c := range batch {
		ids[i] = c.ID
	}
	var open []string
	err := db.Raw("SELECT DISTINCT loan_id FROM pk_circ_fees WHERE institution = ? AND loan_id IN ? AND (status = ? OR user_id <> '')", inst, ids, circulation.FeeOpen).Scan(&open).Error
	m := make(map[string]bool, len(open))
	for _, id := range open {
		m[id] = true
	}
	return m, err
}

// anonymize is the run of Anonymize.
func (r *Retention) anonymize(ctx context.Context, inst string, dry bool, run *AnonymizationRun) error {
	sc := &scope{inst: inst, dry: dry, now: r.o.Now().UTC(), rules: r.Rules(inst)}
	db := r.db.WithContext(ctx)
	var nevers int64
	if err := db.Model(&historyChoice{}).Where("institution = ? AND choice = ?", inst, HistoryNever).Count(&nevers).Error; err != nil {
		return err
	}
	for _, kind := range runOrder {
		upTo, any := time.Time{}, false
		for _, x := range sc.rules {
			if c, ok := x.cutoff(sc.now); ok && x.Kind == kind {
				any = true
				if c.After(upTo) {
					upTo = c
				}
			}
		}
		if kind == RetainLoans && nevers > 0 {
			upTo, any = sc.now, true
		}
		if !any {
			continue
		}
		var err error
		if kind == RetainSISOutcomes {
			err = r.anonymizeOutcomes(ctx, sc, upTo, run)
		} else {
			err = r.anonymizeKind(ctx, kind, sc, upTo, run)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// anonymizeKind passes over kind's closed records, a batch at a time:
// one reader picks the batches due, in the order of their ids, and hands
// them to writers (two on PostgreSQL and MySQL, whose row locks let
// batches of different records commit side by side; one on SQLite, which
// has one writer), each batch in a transaction of its own.
func (r *Retention) anonymizeKind(ctx context.Context, kind string, sc *scope, upTo time.Time, run *AnonymizationRun) error {
	writers := 2
	if r.db.Dialector.Name() == "sqlite" || sc.dry {
		writers = 0
	}
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan []*candidate, writers)
	var mu sync.Mutex
	record := func(n int64) {
		mu.Lock()
		defer mu.Unlock()
		run.Counts.add(kind, n)
	}
	writeBatch := func(due []*candidate) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		// A batch begun is finished, whatever happens to ctx meanwhile:
		// a cancelled run stops between batches, and its report counts
		// what it did. The report's count grows in the batch's own
		// transaction (the writers wait for each other only there).
		var n int64
		err := r.db.WithContext(context.WithoutCancel(gctx)).Transaction(func(tx *gorm.DB) error {
			var err error
			if n, err = r.write(tx, sc.inst, kind, due, sc.now); err != nil {
				return err
			}
			return tx.Exec("UPDATE pk_privacy_anonymization_runs SET n_"+kind+" = n_"+kind+" + ? WHERE id = ?", n, run.ID).Error
		})
		if err != nil {
			return err
		}
		record(n)
		if r.afterBatch != nil {
			r.afterBatch(kind)
		}
		return nil
	}
	for range writers {
		g.Go(func() error {
			for due := range batches {
				if err := writeBatch(due); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(batches)
		after := ""
		db := r.db.WithContext(gctx)
		for {
			if err := gctx.Err(); err != nil {
				return err
			}
			batch, err := r.candidates(db, kind, sc, after, upTo)
			if err != nil || len(batch) == 0 {
				return err
			}
			after = batch[len(batch)-1].ID
			due, err := r.due(db, kind, sc, batch)
			if err != nil {
				return err
			}
			switch {
			case sc.dry:
				record(int64(len(due)))
				if r.afterBatch != nil {
					r.afterBatch(kind)
				}
			case len(due) == 0:
			default:
				// The lease is renewed for each batch: a run that lost it
				// stops before it writes another.
				if err := r.lease.renew(db, sc.inst); err != nil {
					return err
				}
				if writers == 0 {
					if err := writeBatch(due); err != nil {
						return err
					}
				} else {
					select {
					case batches <- due:
					case <-gctx.Done():
						return gctx.Err()
					}
				}
			}
			if len(batch) < r.o.BatchSize {
				return nil
			}
		}
	})
	err := g.Wait()
	if cerr := ctx.Err(); cerr != nil {
		// A query cut short by the cancellation fails with the driver's
		// own error (a bad connection): the cause is the cancellation.
		return cerr
	}
	return err
}

// due picks the records of the batch whose retention has passed.
func (r *Retention) due(db *gorm.DB, kind string, sc *scope, batch []candidate) ([]*candidate, error) {
	ids := make([]string, len(batch))
	users := make([]string, 0, len(batch))
	for i, c := range batch {
		ids[i] = c.ID
		users = append(users, c.UserID)
	}
	closed := map[string]time.Time{}
	keep := map[string]bool{}
	choice := map[string]string{}
	latest := map[string]bool{}
	if kind == RetainLoans {
		var fees []struct {
			LoanID    string
			Status    string
			UserID    string
			UpdatedAt time.Time
		}
		if err := db.Raw("SELECT loan_id, status, user_id, updated_at FROM pk_circ_fees WHERE institution = ? AND loan_id IN ?", sc.inst, ids).Scan(&fees).Error; err != nil {
			return nil, err
		}
		for _, f := range fees {
			// A fee open, or still naming the patron, keeps its loan:
			// its loan_id would name the borrower of the anonymized loan.
			if f.Status != circulation.FeeClosed || f.UserID != "" {
				keep[f.LoanID] = true
			} else if f.UpdatedAt.After(closed[f.LoanID]) {
				closed[f.LoanID] = f.UpdatedAt
			}
		}
		slices.Sort(users)
		users = slices.Compact(users)
		var cs []historyChoice
		if err := db.Where("institution = ? AND user_id IN ?", sc.inst, users).Find(&cs).Error; err != nil {
			return nil, err
		}
		for _, c := range cs {
			choice[c.UserID] = c.Choice
		}
		if r.o.LastBorrowerDays > 0 {
			var ls []string
			if err := db.Raw("SELECT l.id FROM pk_circ_loans l WHERE l.id IN ? AND NOT EXISTS (SELECT 1 FROM pk_circ_loans m WHERE m.institution = l.institution AND m.item_id = l.item_id AND m.loaned_at > l.loaned_at)", ids).
				Scan(&ls).Error; err != nil {
				return nil, err
			}
			for _, id := range ls {
				latest[id] = true
			}
		}
	}
	var out []*candidate
	for i := range batch {
		c := &batch[i]
		if keep[c.ID] {
			continue
		}
		at := c.closed()
		if t, ok := closed[c.ID]; ok && t.After(at) {
			at = t
		}
		switch choice[c.UserID] {
		case HistoryNever:
			out = append(out, c)
			continue
		case HistoryForever:
			continue
		}
		group := ""
		if c.UserGroup != nil {
			group = *c.UserGroup
		}
		cut, ok := r.rule(sc.rules, kind, c.Library, group).cutoff(sc.now)
		if !ok || at.After(cut) {
			continue
		}
		if latest[c.ID] && at.After(sc.now.AddDate(0, 0, -r.o.LastBorrowerDays)) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// pseudonym is the keyed hash of a user's internal id, or empty.
func (r *Retention) pseudonym(userID string) string {
	if len(r.o.PseudonymKey) == 0 || userID == "" {
		return ""
	}
	m := hmac.New(sha256.New, r.o.PseudonymKey)
	m.Write([]byte(userID))
	return hex.EncodeToString(m.Sum(nil))
}

// write anonymizes the records cs of kind through tx: a snapshot of their
// patron is kept (Anonymized), and what names the patron is cleared, in
// a few statements whatever the number of records. It returns how many it
// anonymized.
func (r *Retention) write(tx *gorm.DB, inst, kind string, cs []*candidate, now time.Time) (int64, error) {
	if len(cs) == 0 {
		return 0, nil
	}
	ids := make([]string, len(cs))
	users := make([]string, 0, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
		users = append(users, c.UserID)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	var stats []struct {
		UserID            string
		StatisticCategory string
	}
	if err := tx.Raw("SELECT user_id, statistic_category FROM pk_user_statistics WHERE user_id IN ? ORDER BY user_id, statistic_category", users).Scan(&stats).Error; err != nil {
		return 0, err
	}
	cats := map[string][]string{}
	for _, s := range stats {
		cats[s.UserID] = append(cats[s.UserID], s.StatisticCategory)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	rows := make([]Anonymized, len(cs))
	for i, c := range cs {
		rows[i] = Anonymized{Kind: kind, RecordID: c.ID, Institution: inst, UserGroup: str(c.UserGroup), JobCategory: str(c.JobCategory),
			RecordType: str(c.RecordType), AccountType: str(c.AccountType), StatisticCategories: strings.Join(cats[c.UserID], ","),
			Pseudonym: r.pseudonym(c.UserID), AnonymizedAt: now}
	}
	// On SQLite the unary plus keeps the planner on the ids' index (see
	// candidates).
	where := " WHERE institution = ? AND id IN ? AND user_id <> ''"
	if tx.Dialector.Name() == "sqlite" {
		where = " WHERE +institution = ? AND id IN ? AND +user_id <> ''"
	}
	var res *gorm.DB
	switch kind {
	case RetainLoans:
		res = tx.Exec("UPDATE pk_circ_loans SET user_id = '', primary_id = '', proxy_primary_id = ''"+where, inst, ids)
	case RetainFees:
		// A payment's method stays, for statistics; its comment and
		// receipt number may name the patron.
		if err := tx.Exec("UPDATE pk_circ_fee_transactions SET reason = '', comment = '', external_id = '' WHERE institution = ? AND fee_id IN ?", inst, ids).Error; err != nil {
			return 0, err
		}
		res = tx.Exec("UPDATE pk_circ_fees SET user_id = '', primary_id = ''"+where, inst, ids)
	case RetainRequests:
		// closed_by first: MySQL assigns from left to right.
		res = tx.Exec("UPDATE pk_circ_requests SET closed_by = CASE WHEN closed_by = primary_id THEN '' ELSE closed_by END, user_id = '', primary_id = '', delivery_address = ''"+where, inst, ids)
	case RetainNotices:
		res = tx.Exec("UPDATE pk_circ_notices SET user_id = '', primary_id = '', recipient = '', subject = '', body = '', error = '', attachment_id = ''"+where, inst, ids)
	default:
		return 0, fmt.Errorf("privacy: no records of kind %q", kind)
	}
	if res.Error != nil {
		return 0, res.Error
	}
	if res.RowsAffected != int64(len(ids)) {
		return 0, fmt.Errorf("privacy: %d of %d %s were anonymized meanwhile by someone else", int64(len(ids))-res.RowsAffected, len(ids), kind)
	}
	if err := tx.CreateInBatches(rows, 1000).Error; err != nil {
		return 0, err
	}
	return res.RowsAffected, nil
}

// anonymizeOutcomes clears the primary_id, reference, reason and changes
// of the outcomes of the runs of the institution that ended before the
// rule's cutoff, a batch of runs at a time.
func (r *Retention) anonymizeOutcomes(ctx context.Context, sc *scope, upTo time.Time, run *AnonymizationRun) error {
	after := ""
	db := r.db.WithContext(ctx)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var runs []string
		if err := db.Raw("SELECT id FROM pk_sis_runs WHERE institution = ? AND finished_at <= ? AND id > ? ORDER BY id LIMIT ?", sc.inst, upTo, after, 100).Scan(&runs).Error; err != nil {
			return err
		}
		if len(runs) == 0 {
			return nil
		}
		after = runs[len(runs)-1]
		if sc.dry {
			var n int64
			if err := db.Raw("SELECT COUNT(*) FROM pk_sis_outcomes WHERE run_id IN ? AND primary_id <> ''", runs).Scan(&n).Error; err != nil {
				return err
			}
			run.Counts.add(RetainSISOutcomes, n)
		} else if err := db.Transaction(func(tx *gorm.DB) error {
			if err := r.lease.renew(tx, sc.inst); err != nil {
				return err
			}
			res := tx.Exec("UPDATE pk_sis_outcomes SET primary_id = '', ref = '', reason = '', changes = '' WHERE run_id IN ? AND primary_id <> ''", runs)
			if res.Error != nil {
				return res.Error
			}
			run.Counts.add(RetainSISOutcomes, res.RowsAffected)
			return tx.Model(run).Select("n_sis_outcomes").Updates(run).Error
		}); err != nil {
			return err
		}
		if r.afterBatch != nil {
			r.afterBatch(RetainSISOutcomes)
		}
		if len(runs) < 100 {
			return nil
		}
	}
}
