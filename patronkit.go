// Package patronkit gives a Gin application a library's patron services:
// patron records kept in step with a campus Student Information System,
// circulation, the patron's own account, and privacy.
//
// A host opens its database, builds a Kit with New, runs Migrate once at
// start (it is locked against a second instance), and mounts the HTTP API
// with adapters/ginapi.Mount under a route group behind its own login (and,
// for clients written for Alma, Alma's users API with adapters/almaapi.Mount,
// behind the API keys of Kit.APIKeys).
//
// Hosts may implement: patron.DeletionGuard, patron.DeletionHook,
// patron.Listener and patron.AuditSink (hooks, with Func adapters),
// sis.Source and sis.Format (SIS files from elsewhere, in other formats),
// circulation.Notifier (notices by another channel) and
// circulation.ItemLookup (the host's catalog), each given in Config, and
// the principal resolver of ginapi. Everything else is implemented here
// and only called by hosts. Package patronkittest helps them test it.
//
// # Your transaction
//
// Every service call joins the transaction its context carries, so that
// what the kit writes commits or rolls back with the host's own writes.
// Kit.InTx opens one on the kit's database and hands the host both the
// context and the transaction:
//
//	err := kit.InTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
//		u, err := kit.Patrons.Create(ctx, "MYUNI", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
//		if err != nil {
//			return err // nothing is kept: neither the user nor the row below
//		}
//		return tx.Create(&Enrolment{UserID: u.ID, Course: "BIO-101"}).Error
//	})
//
// A host that opened the transaction itself passes it with WithTx, and
// calls the function WithTx returns once the transaction has ended.
//
// Each service call runs in a savepoint of the host's transaction: a call
// that fails leaves nothing behind and the transaction goes on (even on
// PostgreSQL, where a failed statement would end it), the host choosing
// to commit what else it did or to roll back. Listeners (patron.Listener)
// are told, and SIS runs started within it begin, once the transaction
// commits; nothing is told or run when it rolls back. Deletion guards and
// hooks act within it. The kit's background work (SIS runs, the jobs of
// Start) uses transactions of its own.
//
// Within the host's transaction every call reads and writes through it,
// never through another connection: on SQLite the transaction holds the
// one writer, which a second connection would wait for. Deadlocks and
// serialization failures inside it are the host's to retry (a service
// retries its own transactions only).
package patronkit

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/account"
	"github.com/patronkit/patronkit/apikeys"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/migrate"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
	"github.com/patronkit/patronkit/privacy"
	"github.com/patronkit/patronkit/sets"
)

// teeAudit gives each audit event to the kit's trail, then to the host's
// sink.
type teeAudit struct {
	trail *privacy.Service
	host  patron.AuditSink
}

func (t teeAudit) Audit(ctx context.Context, e patron.AuditEvent) {
	t.trail.Audit(ctx, e)
	t.host.Audit(ctx, e)
}

// RecordAudit gives the host's sink only the events the trail kept.
func (t teeAudit) RecordAudit(ctx context.Context, e patron.AuditEvent) error {
	if err := t.trail.RecordAudit(ctx, e); err != nil {
		return err
	}
	t.host.Audit(ctx, e)
	return nil
}

// RecordAudits gives the host's sink only the events the trail kept.
func (t teeAudit) RecordAudits(ctx context.Context, es []patron.AuditEvent) error {
	if err := t.trail.RecordAudits(ctx, es); err != nil {
		return err
	}
	for _, e := range es {
		t.host.Audit(ctx, e)
	}
	return nil
}

// Config configures a Kit. A nil *Config, or any zero field, takes the
// documented default.
type Config struct {
	// Policies decides who may do what: which roles may do which actions
	// of the library (casbinmodel/POLICIES.md). Default:
	// casbinmodel.Default(), the embedded model and policy held in memory.
	// Production hosts use casbinmodel.FromDB(db) or
	// casbinmodel.FromFiles(...).
	Policies casbinmodel.Policies

	// Now is the clock every module reads. Default: time.Now.
	Now func() time.Time

	// Logger receives the kit's logs. Default: slog.Default().
	Logger *slog.Logger

	// PINCost is the bcrypt cost of stored PINs. Default: 10.
	PINCost int

	// MaxSignInFailures wrong PINs for one account from one source (an
	// API client's address) lock the account for that source for Lockout;
	// the owner signing in from elsewhere is not locked out.
	// MaxAccountSignInFailures wrong PINs from all sources together lock
	// the account for everyone for Lockout. A failure is forgotten once
	// Lockout passes without a new one; only existing users' failures are
	// stored. Defaults: 5, 50 (or ten times MaxSignInFailures when that is
	// more) and 15 minutes.
	MaxSignInFailures        int
	MaxAccountSignInFailures int
	Lockout                  time.Duration

	// SignInBurst failed sign-ins may come from one source at once, then
	// one more every SignInRefill; past that the source waits (429 with
	// Retry-After) before any PIN is checked. Successful sign-ins use none.
	// Counted in memory per instance, for the SignInSources sources seen
	// last. Defaults: 20, 3 seconds and 10,000.
	SignInBurst   int
	SignInRefill  time.Duration
	SignInSources int

	// SignInCacheFor is how long a verified credential (an API client's
	// HTTP Basic sign-in) is accepted again without checking its PIN hash;
	// a changed PIN, a deactivation or a deletion still takes effect at
	// once. Each instance keeps at most SignInCacheSize. Defaults: 1
	// minute (negative: no cache) and 10,000.
	SignInCacheFor  time.Duration
	SignInCacheSize int

	// SignInIdentifiers are the identifier types (such as BARCODE) whose
	// value signs its user in as the primary_id does, where no user has
	// the value as primary_id: the API's BasicPIN and the library card
	// pages take a card's barcode. Default: none.
	SignInIdentifiers []string

	// DeletionGuards are asked before a user is deleted, besides the
	// modules' own. Default: none.
	DeletionGuards []patron.DeletionGuard

	// DeletionHooks act inside the transaction that deletes a user, once
	// the guards agreed, besides the kit's own (which takes the user's
	// roles away). Default: none.
	DeletionHooks []patron.DeletionHook

	// Listeners are told of every committed change of a user. Default: none.
	Listeners []patron.Listener

	// Audit receives who read, changed or exported which user, besides
	// the kit's own audit trail (Kit.Privacy), which keeps every event.
	// Default: none.
	Audit patron.AuditSink

	// AuditKey signs the checkpoints the audit trail leaves when its old
	// entries are dropped (AuditRetention, privacy.Service.Prune) and the
	// end of each institution's chain (HMAC-SHA-256). Keep it secret and
	// out of the database: whoever holds it can forge a checkpoint, and
	// without it no entry is ever dropped and an entry appended at the end
	// together with a forged end of chain is not found. Default: none.
	AuditKey []byte

	// AccessLogNames are the institutions whose access logs name who read,
	// changed or exported a person's data, by primary_id: what a patron
	// sees of it (GET /me/access-log, privacy.Service.AccessLog) and the
	// access log of their personal data. Default: none, the access log
	// tells the actor's kind, roles and library only (a job of the kit is
	// always named).
	AccessLogNames []string

	// AuditRetention is how long the audit trail keeps its entries: Start
	// drops older ones once a day (needs AuditKey). Default: 0, forever.
	AuditRetention time.Duration

	// NoAuditTrail keeps nothing on the kit's audit trail: reads, changes
	// and exports are told only to Audit, Kit.Privacy stays empty, and the
	// personal-data access log with it. It exists to measure what the
	// trail costs (examples/circload -audit=false); a library that must
	// show who accessed patron data leaves it false. Default: false.
	NoAuditTrail bool

	// MaxAttachmentBytes is the largest file a user's attachment may hold
	// (a notice sent, a form staff upload). Default: 10 MiB. On MySQL and
	// MariaDB the server's max_allowed_packet must be larger.
	MaxAttachmentBytes int64

	// Sources are where the SIS integration profiles' files come from (a
	// drop folder, SFTP from adapters/sftp, a host's own); profiles name
	// them. Files sent through the API need none. Close closes those that
	// are io.Closers (an SFTP source's connection). Default: none.
	Sources []sis.Source

	// SISLimits guard SIS runs against hostile files. Default: see
	// sis.Limits.
	SISLimits sis.Limits

	// SISFormats are the file formats SIS profiles read, by name or file
	// extension. Default: sis.BuiltinFormats() (xml, zip, json, csv); a
	// host adds its own with append(sis.BuiltinFormats(), mine).
	SISFormats sis.Formats

	// ScheduleEvery is how often Start checks the profiles' schedules.
	// Default: 30 seconds.
	ScheduleEvery time.Duration

	// PolicyRefresh is how often Start re-reads the access policies, so
	// that permissions written to the policy table through one instance
	// hold on the others (with casbinmodel.FromDB; a staff user's roles
	// are read from the table at each decision about them, and need no
	// refresh). Default: 30 seconds; negative: never.
	PolicyRefresh time.Duration

	// CirculationEvery is how often Start runs circulation's jobs: loans
	// overdue longer than their terms allow are declared lost
	// (DeclareOverdueLost), requests not needed any more or not picked up
	// expire (ExpireRequests), due-soon and overdue notices are written
	// (QueueDueNotices) and pending notices sent (SendNotices). Default:
	// 5 minutes; negative: never.
	CirculationEvery time.Duration

	// Email and SMS deliver notices to patrons (adapters/notify has an
	// SMTP and an HTTP gateway Notifier). Notices of a channel without
	// one wait, pending. Default: none.
	Email circulation.Notifier
	SMS   circulation.Notifier
	// NoticeTemplates are the host's notice templates (see
	// circulation.Options.Templates). Default: the built-in English ones.
	// Its {language}/reasons.tmpl hold the texts of refusal reasons per
	// code, over the built-in English and Spanish ones.
	NoticeTemplates fs.FS

	// MaxFee is the largest amount of one fee, in minor units of its
	// currency: a larger manual fee, or terms of use with a larger fine,
	// fine cap, lost-item or delivery fee, are refused (422 naming the
	// field), and an overdue fine stops growing at it. Default:
	// circulation.DefaultMaxFee, 100000000 (1,000,000.00 in a currency of
	// two decimals); at most circulation.MaxFeeLimit.
	MaxFee int64

	// Currencies are the ISO 4217 currencies the institutions accept, the
	// first the one the others' rates are in: fees, terms of use and
	// block limits in another are refused (422 naming the currency). A
	// balance limit counts what a patron owes in every currency, converted
	// at these rates (see circulation.Currency). Default: USD alone.
	Currencies []circulation.Currency
	// DueSoon is how long before its due date a loan gets its due-soon
	// notice (written by the circulation jobs, see CirculationEvery).
	// Default: 2 days.
	DueSoon time.Duration

	// NoticeClaim is how long a sender may hold a notice it is sending
	// before another instance takes it and sends it again (the first one
	// stopped midway; see circulation.Notice). Default: 10 minutes.
	NoticeClaim time.Duration

	// Items is the host's own catalog, for a host whose items are
	// described elsewhere: a barcode circulation does not hold yet (at a
	// check-out, a request, a quote) is looked up there, and the item it
	// answers is added to circulation's items, where its status is kept
	// from then on (see circulation.Options.Items). Default: none; only
	// the items added through the API or the service circulate.
	Items circulation.ItemLookup

	// SISTempDir holds the files uploaded through the API while their SIS
	// run reads them. Default: os.TempDir().
	SISTempDir string

	// SISBatchSize is how many users an SIS run reads before it applies
	// them and saves its progress. Default: 200.
	SISBatchSize int

	// SISLeaseTTL is how long a run's hold on its SIS profile lasts unless
	// renewed (a running run renews it every third of it): another
	// instance takes over a crashed instance's profile after it. Default:
	// 2 minutes.
	SISLeaseTTL time.Duration

	// RetentionRules say how long closed loans, fees, requests, notices
	// and SIS outcomes keep the patron they are about before they are
	// anonymized (privacy.RetentionRule: immediately, after N days or
	// never, per kind, institution, library and user group, the most
	// specific rule winning). Default: none, every record keeps its
	// patron forever. A patron may still choose to keep their loan
	// history forever or never (GET/PATCH /me/settings, loan_history).
	RetentionRules []privacy.RetentionRule
	// LastBorrowerDays keeps the last borrower of each item on its latest
	// loan for that many days after the return, whatever the rules.
	// Default: 0, none.
	LastBorrowerDays int
	// PseudonymKey gives each anonymized record a pseudonym of its patron
	// (HMAC-SHA-256 of their internal id with the key), so that repeat
	// borrowing can be counted; keep it secret. Default: none, no
	// pseudonym.
	PseudonymKey []byte
	// RetentionEvery is how often Start anonymizes what the retention
	// rules and the patrons' choices say is due, in every institution;
	// one instance at a time does it. Default: 1 hour; negative: never
	// (Kit.Retention.Anonymize runs it on demand).
	RetentionEvery time.Duration

	// Purge says which users a purge removes (Kit.Purge): those whose
	// purge date plus Purge.GraceDays has passed, of Purge.RecordTypes
	// and Purge.UserGroups, a balance up to Purge.FeeThreshold per
	// currency waived first. Default: see privacy.PurgeOptions (no
	// grace, every record type and group, any balance keeps the user).
	// Purging needs AuditKey.
	Purge privacy.PurgeOptions
	// PurgeEvery is how often Start purges every institution with the
	// Purge options; one instance at a time does it. Default: 0, never
	// (Kit.Purge.Purge runs it on demand, dry or not).
	PurgeEvery time.Duration

	// Instance names this instance of the host's application where
	// instances share the database: in the leases of the SIS runs, the
	// anonymization runs and the jobs over sets it holds. Default: "instance-" and 12 random hex digits, new at each
	// New.
	Instance string

	// SetJobBatchSize is how many users a job over a set (Kit.Sets: an
	// update of user information, a message) handles at a time, in one
	// transaction; a job is cancelled and resumed between batches.
	// Default: 500.
	SetJobBatchSize int
	// SetJobLeaseTTL is how long a running job's hold on it lasts unless
	// renewed (each batch renews it): another instance resumes a
	// stopped instance's job after it (sets.Service.Resume). Default: 5
	// minutes.
	SetJobLeaseTTL time.Duration
	// SetJobResumeEvery is how often Start looks for jobs over sets whose
	// instance stopped (their lease ran out) and resumes them here, so
	// that a running instance takes over without a restart. Default: 1
	// minute; negative: only when Start is called.
	SetJobResumeEvery time.Duration

	// CodeLabelsCacheFor is how long an instance keeps the code tables'
	// labels in memory (the Alma users API describes the codes of every
	// answer with them): a change through this instance (an SIS load, the
	// code tables' routes) shows at once, one through another instance
	// after this time. Default: 30 seconds
	// (patron.DefaultCodeLabelsCacheFor); negative: no cache.
	CodeLabelsCacheFor time.Duration
}

// Kit is patronkit wired over one database: the services of each module and
// the access enforcer. Build it with New.
type Kit struct {
	// Patrons keeps the user records.
	Patrons *patron.Service
	// Access decides every access, on the actions of the policies.
	Access *casbinmodel.Enforcer
	// Roles reads and changes staff users' roles (their user_roles) under
	// the rules every adapter keeps; Access holds them.
	Roles *StaffRoles
	// SIS keeps the integration profiles and runs them.
	SIS *sis.Service
	// Circulation keeps libraries, items, terms of use and loans.
	Circulation *circulation.Service
	// Account answers a patron about their own account ("My Library
	// Card") and carries out what they may do themselves.
	Account *account.Service
	// PersonalData answers everything held about one person, as one
	// document (their right of access).
	PersonalData *privacy.PersonalDataService
	// Privacy keeps the tamper-evident audit trail of who read, changed
	// or exported which user (see privacy.Service).
	Privacy *privacy.Service
	// LegalHolds keeps the legal holds staff set on users; a held user
	// is not deleted (it is one of the deletion guards).
	LegalHolds *privacy.LegalHolds
	// Retention anonymizes closed records once their retention has
	// passed (Config.RetentionRules; see privacy.Retention).
	Retention *privacy.Retention
	// Erasure erases one user now, on request, with a proof of erasure
	// (see privacy.Eraser; it needs AuditKey).
	Erasure *privacy.Eraser
	// Purge removes the users whose purge date has passed
	// (Config.Purge; see privacy.Purger; it needs AuditKey).
	Purge *privacy.Purger
	// APIKeys keeps the keys other applications call the kit with (the
	// Alma users API of adapters/almaapi), each acting as a STAFF user.
	APIKeys *apikeys.Service
	// Sets keeps the sets of users (saved queries and uploaded lists) the
	// jobs over many users take (see sets.Service).
	Sets *sets.Service
	// Logger is the kit's logger.
	Logger *slog.Logger
	// Now is the kit's clock.
	Now func() time.Time

	db               *gorm.DB
	sources          []sis.Source
	scheduleEvery    time.Duration
	policyRefresh    time.Duration
	circulationEvery time.Duration
	auditRetention   time.Duration
	retentionEvery   time.Duration
	purgeEvery       time.Duration
	jobResumeEvery   time.Duration
	stop             chan struct{}
	stopOnce         sync.Once
	background       sync.WaitGroup
	closeMu          sync.Mutex
	onClose          []func()
}

// New wires a Kit over db. It validates cfg and returns an error, never
// panics; it does not touch the database (see Migrate) and changes none of
// db's settings.
func New(db *gorm.DB, cfg *Config) (*Kit, error) {
	if db == nil {
		return nil, errors.New("patronkit: New needs a *gorm.DB")
	}
	if cfg == nil {
		cfg = &Config{}
	}
	c := *cfg
	if c.Policies.IsZero() {
		c.Policies = casbinmodel.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxSignInFailures < 0 || c.MaxAccountSignInFailures < 0 || c.Lockout < 0 || c.PINCost < 0 ||
		c.SignInBurst < 0 || c.SignInRefill < 0 || c.SignInSources < 0 || c.SignInCacheSize < 0 {
		return nil, errors.New("patronkit: PINCost and the sign-in limits cannot be negative (only SignInCacheFor may be, to turn the cache off)")
	}
	if c.MaxAttachmentBytes < 0 {
		return nil, errors.New("patronkit: MaxAttachmentBytes cannot be negative")
	}
	if c.DueSoon < 0 || c.NoticeClaim < 0 || c.SISBatchSize < 0 || c.SISLeaseTTL < 0 {
		return nil, errors.New("patronkit: DueSoon, NoticeClaim, SISBatchSize and SISLeaseTTL cannot be negative")
	}
	if c.AuditRetention < 0 {
		return nil, errors.New("patronkit: AuditRetention cannot be negative")
	}
	if c.AuditRetention > 0 && len(c.AuditKey) == 0 {
		return nil, errors.New("patronkit: AuditRetention needs AuditKey, to sign the checkpoints of the audit trail")
	}
	db = db.Session(&gorm.Session{NewDB: true})
	trail, err := privacy.NewService(db, privacy.Options{Now: c.Now, Logger: c.Logger, Key: c.AuditKey, AccessLogNames: c.AccessLogNames})
	if err != nil {
		return nil, err
	}
	var sink patron.AuditSink = trail
	switch {
	case c.NoAuditTrail:
		sink = c.Audit
	case c.Audit != nil:
		sink = teeAudit{trail, c.Audit}
	}
	patrons, err := patron.NewService(db, patron.Options{
		Now:                      c.Now,
		PINCost:                  c.PINCost,
		MaxSignInFailures:        c.MaxSignInFailures,
		MaxAccountSignInFailures: c.MaxAccountSignInFailures,
		Lockout:                  c.Lockout,
		SignInBurst:              c.SignInBurst,
		SignInRefill:             c.SignInRefill,
		SignInSources:            c.SignInSources,
		SignInCacheFor:           c.SignInCacheFor,
		SignInCacheSize:          c.SignInCacheSize,
		SignInIdentifiers:        c.SignInIdentifiers,
		Audit:                    sink,
		Logger:                   c.Logger,

		MaxAttachmentBytes: c.MaxAttachmentBytes,
		CodeLabelsCacheFor: c.CodeLabelsCacheFor,
	})
	if err != nil {
		return nil, err
	}
	for _, g := range c.DeletionGuards {
		patrons.AddDeletionGuard(g)
	}
	for _, h := range c.DeletionHooks {
		patrons.AddDeletionHook(h)
	}
	for _, l := range c.Listeners {
		patrons.AddListener(l)
	}
	access, err := casbinmodel.NewEnforcer(c.Policies)
	if err != nil {
		return nil, err
	}
	loads, err := sis.NewService(db, sis.Options{Patrons: patrons, Sources: c.Sources, Limits: c.SISLimits, Formats: c.SISFormats, Now: c.Now, Logger: c.Logger,
		TempDir: c.SISTempDir, BatchSize: c.SISBatchSize, LeaseTTL: c.SISLeaseTTL, Instance: c.Instance})
	if err != nil {
		return nil, err
	}
	circ, err := circulation.NewService(db, circulation.Options{Patrons: patrons, Now: c.Now, Logger: c.Logger,
		Email: c.Email, SMS: c.SMS, Templates: c.NoticeTemplates, MaxFee: c.MaxFee, Currencies: c.Currencies,
		DueSoon: c.DueSoon, NoticeClaim: c.NoticeClaim, Items: c.Items})
	if err != nil {
		return nil, err
	}

	retention, err := privacy.NewRetention(db, privacy.RetentionOptions{Rules: c.RetentionRules, LastBorrowerDays: c.LastBorrowerDays,
		PseudonymKey: c.PseudonymKey, Patrons: patrons, Now: c.Now, Logger: c.Logger, Instance: c.Instance})
	if err != nil {
		return nil, err
	}
	own, err := account.NewService(account.Options{Patrons: patrons, Circulation: circ, Now: c.Now, DB: db, History: retention})
	if err != nil {
		return nil, err
	}
	// A user with open loans cannot be deleted, nor one on legal hold.
	patrons.AddDeletionGuard(circ.DeletionGuard())
	holds, err := privacy.NewLegalHolds(db, patrons, c.Now)
	if err != nil {
		return nil, err
	}
	patrons.AddDeletionGuard(holds)
	rolesGoWithUsers(patrons, access, c.Logger)
	roles := &StaffRoles{patrons: patrons, circulation: circ, access: access}
	pdata, err := privacy.NewPersonalDataService(privacy.PersonalDataOptions{Patrons: patrons, Circulation: circ, Account: own,
		Roles: access.UserRoles, SIS: loads, Trail: trail, Now: c.Now})
	if err != nil {
		return nil, err
	}
	erasure, err := privacy.NewEraser(db, patrons, trail, retention, c.Now)
	if err != nil {
		return nil, err
	}
	purger, err := privacy.NewPurger(db, erasure, circ, c.Purge, c.Instance, c.Logger)
	if err != nil {
		return nil, err
	}
	if c.PurgeEvery > 0 && len(c.AuditKey) == 0 {
		return nil, errors.New("patronkit: PurgeEvery needs AuditKey, so that the audit trail can forget the purged users")
	}
	keyring, err := apikeys.NewService(db, patrons, c.Now)
	if err != nil {
		return nil, err
	}
	userSets, err := sets.NewService(db, patrons, sets.Options{Now: c.Now, Instance: c.Instance, BatchSize: c.SetJobBatchSize, LeaseTTL: c.SetJobLeaseTTL, Currency: circ.Currency(), Messenger: setMessenger{circ}})
	if err != nil {
		return nil, err
	}
	patrons.AddDeletionHook(userSets.DeletionHook())
	purger.UseSets(userSets)
	return &Kit{jobResumeEvery: c.SetJobResumeEvery, Sets: userSets, APIKeys: keyring, Purge: purger, purgeEvery: c.PurgeEvery, Erasure: erasure, Retention: retention, retentionEvery: c.RetentionEvery, Patrons: patrons, Access: access, Roles: roles, SIS: loads, Circulation: circ, Account: own, PersonalData: pdata, Privacy: trail, LegalHolds: holds, Logger: c.Logger, Now: c.Now, db: db, scheduleEvery: c.ScheduleEvery, policyRefresh: c.PolicyRefresh, circulationEvery: c.CirculationEvery, auditRetention: c.AuditRetention, stop: make(chan struct{}), sources: slices.Clone(c.Sources)}, nil
}

// Start begins the kit's background work until ctx ends or Close: the SIS
// profiles' scheduled runs, the periodic re-reading of the access
// policies, circulation's jobs, and the deletion of forgotten failed
// sign-ins (patron.Service.ExpireSignInFailures) at once and every 5
// minutes, and, with AuditRetention, the dropping of old audit entries at
// once and every day, and the anonymization of closed records whose
// retention has passed every RetentionEvery (privacy.Retention), and,
// with PurgeEvery, the purge of the users past their purge date every
// PurgeEvery (privacy.Purger). Each job works in transactions of its own, whatever ctx
// carries. Call it once per instance, after Migrate.
func (k *Kit) Start(ctx context.Context) {
	ctx = txctx.Without(ctx) // the jobs' transactions are their own
	k.SIS.Start(ctx, k.scheduleEvery)
	// The jobs over sets that a stopped instance left, or that started
	// and were not run, go on from where they stopped.
	k.Sets.ResumeInBackground(ctx, func(err error) { k.Logger.Error("patronkit: resuming the jobs over sets", "error", err) })
	// And those whose instance stops later, once their lease runs out.
	k.every(ctx, k.jobResumeEvery, time.Minute, func() { k.resumeSetJobs(ctx) })
	expire := func() {
		n, err := k.Patrons.ExpireSignInFailures(ctx)
		if err != nil {
			k.Logger.Error("patronkit: deleting forgotten failed sign-ins", "error", err)
		}
		level := slog.LevelDebug
		if n > 0 {
			level = slog.LevelInfo
		}
		k.Logger.Log(ctx, level, "patronkit: forgotten failed sign-ins deleted", "deleted", n)
	}
	k.background.Add(1)
	go func() {
		defer k.background.Done()
		expire()
	}()
	k.every(ctx, 0, 5*time.Minute, expire)
	if k.auditRetention > 0 {
		prune := func() {
			insts, err := k.Privacy.Institutions(ctx)
			if err != nil {
				k.Logger.Error("patronkit: listing the audit trails", "error", err)
			}
			for _, inst := range insts {
				n, err := k.Privacy.Prune(ctx, inst, k.Now().Add(-k.auditRetention))
				if err != nil {
					k.Logger.Error("patronkit: dropping old audit entries", "institution", inst, "error", err)
				}
				k.Logger.Debug("patronkit: old audit entries dropped", "institution", inst, "dropped", n)
			}
		}
		k.background.Add(1)
		go func() {
			defer k.background.Done()
			prune()
		}()
		k.every(ctx, 0, 24*time.Hour, prune)
	}
	k.every(ctx, k.policyRefresh, 30*time.Second, func() {
		if err := k.RefreshPolicies(ctx); err != nil {
			k.Logger.Error("patronkit: re-reading the access policies", "error", err)
		}
	})
	k.every(ctx, k.retentionEvery, time.Hour, func() { k.anonymize(ctx) })
	if k.purgeEvery > 0 {
		k.every(ctx, k.purgeEvery, 0, func() { k.purge(ctx) })
	}
	k.every(ctx, k.circulationEvery, 5*time.Minute, func() {
		level, counts := slog.LevelDebug, []any{}
		for _, job := range []struct {
			name string
			run  func(context.Context) (int, error)
		}{
			{"declared_lost", k.Circulation.DeclareOverdueLost},
			{"expired_requests", k.Circulation.ExpireRequests},
			{"queued_notices", k.Circulation.QueueDueNotices},
			{"sent_notices", k.Circulation.SendNotices},
		} {
			n, err := job.run(ctx)
			if err != nil {
				k.Logger.Error("patronkit: a circulation job failed", "job", job.name, "error", err, "done", n)
			}
			if n > 0 {
				level = slog.LevelInfo
			}
			counts = append(counts, job.name, n)
		}
		k.Logger.Log(ctx, level, "patronkit: circulation jobs ran", counts...)
	})
}

// resumeSetJobs resumes here the jobs over sets no instance holds (their
// instance stopped and their lease ran out), until they end or Close.
func (k *Kit) resumeSetJobs(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-k.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	n, err := k.Sets.Resume(ctx)
	if err != nil && ctx.Err() == nil {
		k.Logger.Error("patronkit: resuming the jobs over sets", "error", err, "resumed", n)
		return
	}
	level := slog.LevelDebug
	if n > 0 {
		level = slog.LevelInfo
	}
	k.Logger.Log(ctx, level, "patronkit: jobs over sets resumed", "resumed", n)
}

// anonymize runs the anonymization of every institution, once: an
// institution another instance is anonymizing is left to it.
func (k *Kit) anonymize(ctx context.Context) {
	insts, err := k.Retention.Institutions(ctx)
	if err != nil {
		k.Logger.Error("patronkit: listing the institutions to anonymize", "error", err)
	}
	for _, inst := range insts {
		run, err := k.Retention.Anonymize(ctx, inst, false)
		switch {
		case errors.Is(err, privacy.ErrRunInProgress):
			k.Logger.Debug("patronkit: another instance is anonymizing", "institution", inst)
		case err != nil:
			k.Logger.Error("patronkit: anonymizing closed records", "institution", inst, "error", err)
		default:
			k.Logger.Debug("patronkit: closed records anonymized", "institution", inst, "run_id", run.ID, "loans", run.Counts.Loans, "fees", run.Counts.Fees)
		}
	}
}

// purge purges every institution, once: an institution another instance
// is purging is left to it.
func (k *Kit) purge(ctx context.Context) {
	insts, err := k.Purge.Institutions(ctx)
	if err != nil {
		k.Logger.Error("patronkit: listing the institutions to purge", "error", err)
	}
	for _, inst := range insts {
		run, err := k.Purge.Purge(ctx, inst, false)
		switch {
		case errors.Is(err, privacy.ErrPurgeInProgress):
			k.Logger.Debug("patronkit: another instance is purging", "institution", inst)
		case err != nil:
			k.Logger.Error("patronkit: purging users", "institution", inst, "error", err)
		default:
			k.Logger.Info("patronkit: users purged", "institution", inst, "run_id", run.ID, "purged", run.Purged, "kept", run.Kept)
		}
	}
}

// every runs job every d (def when d is 0; never when d is negative) until
// ctx ends or Close is called.
func (k *Kit) every(ctx context.Context, d, def time.Duration, job func()) {
	if d == 0 {
		d = def
	}
	if d < 0 {
		return
	}
	k.background.Add(1)
	go func() {
		defer k.background.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-k.stop:
				return
			case <-t.C:
				job()
			}
		}
	}()
}

// RefreshPolicies re-reads the access policies now: permissions written
// to the policy table through another instance take effect here. Start
// calls it every PolicyRefresh.
func (k *Kit) RefreshPolicies(ctx context.Context) error {
	return k.Access.Load(ctx)
}

// OnClose registers fn to run when Close is called, first of all, the
// last registered first: an adapter serving the kit (a SIP2 server) stops
// taking new work there and finishes what it holds.
func (k *Kit) OnClose(fn func()) {
	k.closeMu.Lock()
	defer k.closeMu.Unlock()
	k.onClose = append(k.onClose, fn)
}

// Close stops the adapters registered with OnClose and the background
// work, and waits for running jobs to end.
func (k *Kit) Close() {
	k.closeMu.Lock()
	fns := k.onClose
	k.onClose = nil
	k.closeMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	k.stopOnce.Do(func() { close(k.stop) })
	k.background.Wait()
	k.SIS.Close()
	k.Sets.Close()
	k.Privacy.Close()
	for _, src := range k.sources {
		if c, ok := src.(io.Closer); ok {
			if err := c.Close(); err != nil {
				k.Logger.Error("patronkit: closing an SIS source", "source", src.Name(), "error", err)
			}
		}
	}
}

// rolesGoWithUsers ties a staff user's roles to their user record:
//
//   - a deleted user's roles (every library) are deleted in the deletion's
//     transaction (FromDB), then dropped from this instance's enforcer;
//     the other instances read a staff user's roles from the table at
//     each decision, so none honours them afterwards, and a user created
//     later on the primary_id starts with none;
//   - a user whose primary_id changes takes their roles along, so that
//     none stay behind on the old one.
//
// Roles given to a primary_id before its user is created (a new staff
// member the SIS has not sent yet) are theirs once the record comes. The
// patron module knows nothing of roles: this is wired here, through its
// hooks.
func rolesGoWithUsers(patrons *patron.Service, access *casbinmodel.Enforcer, log *slog.Logger) {
	patrons.AddDeletionHook(rolesHook{access})
	patrons.AddListener(patron.ListenerFunc(func(ctx context.Context, c patron.Change) {
		var err error
		switch {
		case c.Action == patron.Deleted && c.Before != nil:
			err = access.ForgetRoles(ctx, c.Institution, c.Before.PrimaryID)
		case c.Action == patron.Updated && c.Before != nil && c.After != nil && c.Before.PrimaryID != c.After.PrimaryID:
			err = access.MoveRoles(ctx, c.Institution, c.Before.PrimaryID, c.After.PrimaryID)
		}
		if err != nil {
			log.Error("patronkit: updating the roles of a user", "institution", c.Institution, "action", c.Action, "error", err)
		}
	}))
}

// rolesHook deletes the stored roles of the users being deleted, in
// their transaction: one statement for a batch (patron.BatchDeletionHook).
type rolesHook struct{ access *casbinmodel.Enforcer }

func (h rolesHook) UserDeleting(ctx context.Context, tx *gorm.DB, u *patron.User) error {
	return h.access.RemoveRolesWith(tx, u.Institution, u.PrimaryID)
}

func (h rolesHook) UsersDeleting(ctx context.Context, tx *gorm.DB, users []*patron.User) error {
	byInst := map[string][]string{}
	for _, u := range users {
		byInst[u.Institution] = append(byInst[u.Institution], u.PrimaryID)
	}
	for inst, ids := range byInst {
		if err := h.access.RemoveRolesWith(tx, inst, ids...); err != nil {
			return err
		}
	}
	return nil
}

// InTx runs fn in a transaction on the kit's database and commits it when
// fn returns nil, or rolls it back and returns fn's error. fn's ctx
// carries the transaction: every service call made with it joins it (see
// the package doc, "Your transaction"), and the host writes its own rows
// through tx. Listeners are told of the changes once it has committed.
// Within a transaction ctx already carries (WithTx, or another InTx), it
// runs in a savepoint of that one.
func (k *Kit) InTx(ctx context.Context, fn func(ctx context.Context, tx *gorm.DB) error) error {
	return txctx.Transaction(ctx, k.db, fn)
}

// WithTx returns a context carrying tx, a transaction the host opened on
// the kit's database (the *gorm.DB given to New) and ends itself: every
// service call made with the context reads and writes through tx. The
// host calls end once tx has ended, end(true) after the commit, which
// tells the listeners of the changes made through the context and starts
// the SIS runs started with it, end(false) after a rollback, which drops
// them. Kit.InTx does all this itself. A nil tx gives ctx as it is.
func WithTx(ctx context.Context, tx *gorm.DB) (_ context.Context, end func(committed bool)) {
	return txctx.With(ctx, tx)
}

// TxFrom returns the transaction ctx carries (InTx, WithTx, or the one a
// service opened when it calls a hook), or nil: a host's deletion guard
// or audit sink reads and writes through it, so as to see what the
// transaction wrote and to commit with it.
func TxFrom(ctx context.Context) *gorm.DB {
	if !txctx.In(ctx) {
		return nil
	}
	return txctx.DB(ctx, nil)
}

// Migrations lists every module's schema migrations in the order they run.
func Migrations() []*gormigrate.Migration {
	return slices.Concat(patron.Migrations(), casbinmodel.Migrations(), sis.Migrations(), circulation.Migrations(), kitMigrations(), privacy.Migrations(), apikeys.Migrations(), sets.Migrations(), sharedKeyMigrations())
}

// kitMigrations are the changes that span modules.
func kitMigrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{{
		// Roles left behind by users deleted before a deletion took them
		// away: a staff subject (INSTITUTION/primary_id) with no user
		// record loses its roles, so that nobody who takes the primary_id
		// inherits them. Roles given ahead of a record that is still to
		// come cannot be told from those and go too, once. Rules between
		// roles stay.
		ID: "202611280102_roles_of_deleted_users",
		Migrate: func(tx *gorm.DB) error {
			var rows []struct {
				ID uint
				V0 string
			}
			if err := tx.Table(casbinmodel.RuleTable).Select("id, v0").Where("ptype = ?", "g").Scan(&rows).Error; err != nil {
				return err
			}
			for _, r := range rows {
				inst, id, ok := strings.Cut(r.V0, "/")
				if !ok {
					continue
				}
				var n int64
				if err := tx.Table("pk_users").Where("institution = ? AND primary_id_key = ?", inst, strings.ToLower(strings.TrimSpace(id))).Count(&n).Error; err != nil {
					return err
				}
				if n == 0 {
					if err := tx.Exec("DELETE FROM "+casbinmodel.RuleTable+" WHERE id = ?", r.ID).Error; err != nil {
						return err
					}
				}
			}
			return nil
		},
	}}
}

// Migrate brings the schema up to date under a database lock (safe when
// several instances start at once), then loads the access policies. What
// a migration tells the operator (a policy line on a URL of an earlier
// release that no action stands for, say) goes to the kit's Logger.
func (k *Kit) Migrate(ctx context.Context) error {
	if err := migrate.Run(migrate.WithLogger(ctx, k.Logger), k.db, Migrations()); err != nil {
		return err
	}
	return k.Access.Load(ctx)
}
