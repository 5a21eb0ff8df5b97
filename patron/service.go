package patron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/txctx"
)

// Options configures a Service. The zero value is usable.
type Options struct {
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// PINCost is the bcrypt cost of stored PINs. Default: bcrypt.DefaultCost
	// (10); tests may lower it to bcrypt.MinCost.
	PINCost int
	// MaxSignInFailures is how many wrong PINs for one account from one
	// source (see SignIn) lock that account for that source. Default: 5.
	MaxSignInFailures int
	// MaxAccountSignInFailures is how many wrong PINs for one account from
	// all sources together lock the account for everyone. Default: 50, or
	// ten times MaxSignInFailures when that is more; it cannot be lower
	// than MaxSignInFailures.
	MaxAccountSignInFailures int
	// Lockout is how long a lock holds, and how long a failed sign-in is
	// remembered after the last one. Default: 15 minutes.
	Lockout time.Duration
	// SignInBurst is how many failed sign-ins one source may make at once,
	// and SignInRefill how often it may make one more; past that SignIn
	// answers Locked before checking anything. Kept in memory per
	// instance, for the SignInSources sources seen last. Defaults: 20,
	// 3 seconds and 10,000.
	SignInBurst   int
	SignInRefill  time.Duration
	SignInSources int
	// SignInCacheFor is how long a verified credential is accepted again
	// without checking its PIN hash (a changed PIN, a deactivation or a
	// deletion still takes effect at once); SignInCacheSize is how many
	// such credentials an instance keeps. Defaults: 1 minute (negative:
	// no cache) and 10,000.
	SignInCacheFor  time.Duration
	SignInCacheSize int
	// SignInIdentifiers are the identifier types (BARCODE, UNIV_ID) whose
	// value also signs its user in, where no user has the value as
	// primary_id: a patron types the barcode of their card. An identifier
	// marked INACTIVE does not. Default: none, only the primary_id.
	SignInIdentifiers []string
	// Audit receives an event for every read, change and export of a user.
	// Default: none.
	Audit AuditSink
	// Logger logs failures of listeners and sinks. Default: slog.Default().
	Logger *slog.Logger
	// MaxAttachmentBytes is the largest file, in bytes, that a user's
	// attachment may hold; AddAttachment refuses a longer one. Default:
	// DefaultMaxAttachmentBytes (10 MiB). A file is written to the
	// database in one statement: on MySQL and MariaDB the server's
	// max_allowed_packet (16 MiB by default on MariaDB) must be larger
	// than this limit.
	MaxAttachmentBytes int64
	// CodeLabelsCacheFor is how long an instance answers CodeLabels from
	// memory (the Alma users API describes the codes of every answer with
	// them): SaveLabels through the instance takes effect at once, a
	// change made through another instance after this time. Default:
	// DefaultCodeLabelsCacheFor, 30 seconds; negative: no cache.
	CodeLabelsCacheFor time.Duration
}

// Service keeps the user records of every institution in one database.
// It is safe for concurrent use once its hooks are registered.
type Service struct {
	db        *gorm.DB
	now       func() time.Time
	validate  *validator.Validate
	pinCost   int
	dummyHash string
	signIn    signInGuard
	audit     AuditSink
	log       *slog.Logger
	guards    []DeletionGuard
	hooks     []DeletionHook
	listeners []Listener

	maxAttachment int64
	labels        labelCache
}

// NewService returns a Service over db. It works on a session of db and
// never changes the host's settings.
func NewService(db *gorm.DB, opts Options) (*Service, error) {
	if db == nil {
		return nil, errors.New("patron: NewService needs a database")
	}
	s := &Service{
		db:       db.Session(&gorm.Session{NewDB: true}),
		now:      opts.Now,
		validate: newValidator(),
		pinCost:  opts.PINCost,
		audit:    opts.Audit,
		log:      opts.Logger,

		maxAttachment: opts.MaxAttachmentBytes,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.pinCost == 0 {
		s.pinCost = bcrypt.DefaultCost
	}
	if s.pinCost < bcrypt.MinCost || s.pinCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("patron: PINCost %d is outside bcrypt's %d..%d", s.pinCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if err := s.signIn.configure(opts); err != nil {
		return nil, err
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxAttachment < 0 {
		return nil, fmt.Errorf("patron: MaxAttachmentBytes %d is negative", s.maxAttachment)
	}
	if s.maxAttachment == 0 {
		s.maxAttachment = DefaultMaxAttachmentBytes
	}
	s.labels.ttl = opts.CodeLabelsCacheFor
	if s.labels.ttl == 0 {
		s.labels.ttl = DefaultCodeLabelsCacheFor
	}
	h, err := bcrypt.GenerateFromPassword([]byte("no PIN is set"), s.pinCost)
	if err != nil {
		return nil, err
	}
	s.dummyHash = string(h)
	return s, nil
}

// AddDeletionGuard registers a guard asked before every deletion. Register
// guards while wiring, before the service is used.
func (s *Service) AddDeletionGuard(g DeletionGuard) { s.guards = append(s.guards, g) }

// AddDeletionHook registers a hook that acts inside every deletion's
// transaction. Register hooks while wiring, before the service is used.
func (s *Service) AddDeletionHook(h DeletionHook) { s.hooks = append(s.hooks, h) }

// AddListener registers a listener told of every committed change. Register
// listeners while wiring, before the service is used.
func (s *Service) AddListener(l Listener) { s.listeners = append(s.listeners, l) }

// SetAuditSink replaces the sink that receives audit events.
func (s *Service) SetAuditSink(a AuditSink) { s.audit = a }

func (s *Service) clock() time.Time { return s.now().UTC() }

// conn is what the service reads and writes through: the transaction ctx
// carries (the host's, or one the service opened), or its own database.
func (s *Service) conn(ctx context.Context) *gorm.DB { return txctx.DB(ctx, s.db) }

// inTx runs fn in a transaction: a savepoint of the one ctx carries, or a
// transaction of its own. fn's ctx carries it.
func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context, tx *gorm.DB) error) error {
	return txctx.Transaction(ctx, s.db, fn)
}

// parallel tells whether reads of ctx may use two connections at once:
// not within a transaction, which holds one.
func parallel(ctx context.Context) bool { return !txctx.In(ctx) }

// Create adds a user to an institution. Segments added by staff are
// Internal. An EXTERNAL account_type with an external_id is a fast
// registration: the named integration profile takes the user over at its
// next synchronize.
func (s *Service) Create(ctx context.Context, inst string, in *User) (*User, error) {
	u := *in
	u.Institution = inst
	if err := s.normalizeNew(ctx, &u); err != nil {
		return nil, err
	}
	if err := s.validateUser(&u, ""); err != nil {
		return nil, err
	}
	if u.PINNumber != "" {
		h, err := s.hashPIN(u.PINNumber)
		if err != nil {
			return nil, err
		}
		u.PINHash, u.PINNumber = h, ""
	}
	now := s.clock()
	u.ID = keys.NewID()
	u.Version = 1
	u.CreatedAt, u.UpdatedAt = now, now
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		if err := checkPrimaryIDFree(tx, inst, u.PrimaryIDKey, ""); err != nil {
			return err
		}
		if err := checkIdentifiersFree(tx, inst, u.Identifiers, ""); err != nil {
			return err
		}
		if err := tx.Omit(segmentAssociations...).Create(&u).Error; err != nil {
			return err
		}
		if err := insertSegments(tx, &u, "", nil); err != nil {
			return err
		}
		return s.recordChange(ctx, inst, AuditCreate, nil, &u) // commits with the user
	})
	if err != nil {
		return nil, s.translate(err)
	}
	out := s.finishRead(&u)
	s.changed(ctx, Change{Institution: inst, Action: Created, After: out})
	return out, nil
}

// Get returns a user by primary_id (any case).
func (s *Service) Get(ctx context.Context, inst, primaryID string) (*User, error) {
	u, err := loadWhere(s.conn(ctx), parallel(ctx), "institution = ? AND primary_id_key = ?", inst, keys.Fold(primaryID))
	return s.readUser(ctx, inst, u, err)
}

// GetSegments returns a user by primary_id (any case) with only the
// segment lists of kinds (SegmentKinds) read: a lighter read for callers
// that need a few, such as a check-out (blocks, proxy relations, contacts).
// The other lists are empty, and the warnings are of the lists read.
func (s *Service) GetSegments(ctx context.Context, inst, primaryID string, kinds ...string) (*User, error) {
	u, err := loadKinds(s.conn(ctx), parallel(ctx), kinds, "institution = ? AND primary_id_key = ?", inst, keys.Fold(primaryID))
	return s.readUser(ctx, inst, u, err)
}

// LoadSegments is GetSegments without the read on the audit trail: for a
// module that reads a record to act on it and hands none of it to its
// caller, such as a check-out reading the patron's blocks and contacts.
// The module records what it does instead (a check-out its loan), and
// records the read itself (RecordAudit) when some of the record does leave
// (the reasons of a refusal).
func (s *Service) LoadSegments(ctx context.Context, inst, primaryID string, kinds ...string) (*User, error) {
	u, err := loadKinds(s.conn(ctx), parallel(ctx), kinds, "institution = ? AND primary_id_key = ?", inst, keys.Fold(primaryID))
	if err != nil {
		return nil, s.translate(err)
	}
	return s.finishRead(u), nil
}

// GetByIdentifier returns the user holding an identifier of a type (a
// BARCODE, say), as Alma's user_id_type lookup does.
func (s *Service) GetByIdentifier(ctx context.Context, inst, idType, value string) (*User, error) {
	if !Findable(idType, value) {
		return nil, notFound("no user with %s %q", idType, value)
	}
	var id Identifier
	err := s.conn(ctx).
		Where("institution = ? AND id_type = ? AND value_key = ?", inst, idType, keys.Fold(value)).
		Take(&id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("no user with %s %q", idType, value)
	}
	if err != nil {
		return nil, err
	}
	u, err := loadWhere(s.conn(ctx), parallel(ctx), "institution = ? AND id = ?", inst, id.UserID)
	return s.readUser(ctx, inst, u, err)
}

// GetByAnyIdentifier returns the user holding an identifier of value,
// whatever its type, as Alma's all_unique lookup does after the
// primary_id. None, or identifiers of several users with that value (of
// different types), is NotFound.
func (s *Service) GetByAnyIdentifier(ctx context.Context, inst, value string) (*User, error) {
	if !Findable(value) {
		return nil, notFound("no user with an identifier %q", value)
	}
	var ids []Identifier
	err := s.conn(ctx).Where("institution = ? AND value_key = ?", inst, keys.Fold(value)).Limit(2).Find(&ids).Error
	if err != nil {
		return nil, err
	}
	if len(ids) != 1 && !(len(ids) == 2 && ids[0].UserID == ids[1].UserID) {
		return nil, notFound("no user with an identifier %q", value)
	}
	u, err := loadWhere(s.conn(ctx), parallel(ctx), "institution = ? AND id = ?", inst, ids[0].UserID)
	return s.readUser(ctx, inst, u, err)
}

// GetByID is GetSegments for a user named by internal id: for modules
// that keep rows about users (circulation's loans, whose patron may have
// changed primary_id since). An id no user of inst holds is NotFound.
func (s *Service) GetByID(ctx context.Context, inst, id string, kinds ...string) (*User, error) {
	u, err := loadKinds(s.conn(ctx), parallel(ctx), kinds, "institution = ? AND id = ?", inst, id)
	return s.readUser(ctx, inst, u, err)
}

// ID returns the internal id of the user primaryID (any case), which
// modules keep in their rows about the user, and the primary_id as the
// record spells it; an unknown user is NotFound. It reads nothing else of
// the record and is not audited.
func (s *Service) ID(ctx context.Context, inst, primaryID string) (id, spelled string, err error) {
	if !Findable(primaryID) {
		return "", "", notFound("no such user")
	}
	u, err := findUser(s.conn(ctx), inst, primaryID)
	if err != nil {
		return "", "", err
	}
	return u.ID, u.PrimaryID, nil
}

// LockUser holds the row of the user of internal id id with a share lock
// until the transaction ctx carries ends, and is NotFound when the user is
// gone. A module writing rows about a user that must not outlive them (a
// loan, a fee, a request) calls it in its transaction first: a deletion
// of the user at the same time waits for that transaction's commit and
// then sees the rows (see DeletionGuard), or went first and the user is
// NotFound. SQLite lets one writer in at a time, which orders the two as
// well. Without a transaction in ctx it only tells whether the user
// exists.
func (s *Service) LockUser(ctx context.Context, inst, id string) error {
	db := s.conn(ctx)
	q := "SELECT id FROM " + User{}.TableName() + " WHERE institution = ? AND id = ?"
	switch db.Dialector.Name() {
	case "postgres":
		q += " FOR SHARE"
	case "mysql":
		q += " LOCK IN SHARE MODE"
	}
	var ids []string
	if err := db.Raw(q, inst, id).Scan(&ids).Error; err != nil {
		return err
	}
	if len(ids) == 0 {
		return notFound("the user was deleted meanwhile")
	}
	return nil
}

// Delete removes a user, with their segments and attachments, after asking
// every deletion guard; when any objects, nothing is deleted and the
// Refused error lists every reason. The deletion hooks act in the same
// transaction.
func (s *Service) Delete(ctx context.Context, inst, primaryID string) error {
	_, err := s.DeleteCounted(ctx, inst, primaryID)
	return err
}

// RemovedRows is how many rows of one table deleting a user removed.
type RemovedRows struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// DeleteCounted is Delete, answering how many rows of each table of the
// record it removed, in the order it removed them (the user's row last
// but for the attachments): for a proof of erasure. What the deletion
// hooks remove is theirs to count.
func (s *Service) DeleteCounted(ctx context.Context, inst, primaryID string) ([]RemovedRows, error) {
	u, err := loadUser(s.conn(ctx), inst, primaryID)
	if err != nil {
		return nil, s.translate(err)
	}
	var removed []RemovedRows
	err = s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		d, err := s.PrepareDeletion(ctx, inst, []string{u.ID})
		if err != nil {
			return err
		}
		if len(d.Users) == 0 {
			return notFound("the user was deleted meanwhile")
		}
		rs, err := d.Delete(ctx, u.ID)
		removed = rs[u.ID]
		return err
	})
	if err != nil {
		return nil, s.translate(err)
	}
	return removed, nil
}

// readUser hands a caller the user a read loaded, once the read is on
// the audit trail (before the data leaves), or the read's error.
func (s *Service) readUser(ctx context.Context, inst string, u *User, err error) (*User, error) {
	if err != nil {
		return nil, s.translate(err)
	}
	out := s.finishRead(u)
	if err := s.record(ctx, inst, AuditRead, out.PrimaryID, "user"); err != nil {
		return nil, err
	}
	return out, nil
}

// finishRead prepares a loaded record for a caller: warnings computed, no
// PIN material.
func (s *Service) finishRead(u *User) *User {
	u.PINNumber = ""
	u.Warnings = Warnings(u)
	return u
}

// changed tells the listeners of c once it is committed: at once after
// the service's own transaction, or when the transaction ctx carries
// commits (see Listener).
func (s *Service) changed(ctx context.Context, c Change) {
	if len(s.listeners) == 0 {
		return
	}
	c.Actor = actorOf(ctx)
	txctx.AfterCommit(ctx, func() {
		ctx := txctx.Without(ctx)
		for _, l := range s.listeners {
			l.UserChanged(ctx, c)
		}
	})
}

func (s *Service) emit(ctx context.Context, inst, action, primaryID, what string) {
	if s.audit == nil {
		return
	}
	if e := s.event(ctx, inst, action, primaryID, what); !ownRead(e) {
		s.audit.Audit(ctx, e)
	}
}

// record is emit for a change, within its transaction, or a read whose
// data must not leave unrecorded (a record, attachments): a sink that
// tells it could not keep the event (AuditRecorder) fails the call.
func (s *Service) record(ctx context.Context, inst, action, primaryID, what string) error {
	if s.audit == nil {
		return nil
	}
	return s.keep(ctx, s.event(ctx, inst, action, primaryID, what))
}

// recordChange records the change of a user record from before to after
// (nil before: a creation; nil after: a deletion), with the fields it
// changed as its details (ChangeDetails), within the change's
// transaction.
func (s *Service) recordChange(ctx context.Context, inst, action string, before, after *User) error {
	if s.audit == nil {
		return nil
	}
	return s.keep(ctx, s.changeEvent(ctx, inst, action, before, after))
}

// changeEvent is the event of recordChange.
func (s *Service) changeEvent(ctx context.Context, inst, action string, before, after *User) AuditEvent {
	subject := after
	if subject == nil {
		subject = before
	}
	e := s.event(ctx, inst, action, subject.PrimaryID, "user")
	e.Details = ChangeDetails(before, after)
	return e
}

// keepMany gives es to the sink in one call when it keeps several events
// at once (AuditBatchRecorder), else one by one; it returns the sink's
// error when it tells.
func (s *Service) keepMany(ctx context.Context, es []AuditEvent) error {
	es = slices.DeleteFunc(es, ownRead)
	if len(es) == 0 || s.audit == nil {
		return nil
	}
	if r, ok := s.audit.(AuditBatchRecorder); ok {
		return r.RecordAudits(ctx, es)
	}
	for _, e := range es {
		if err := s.keep(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// keep gives e to the sink, and returns the sink's error when it tells.
func (s *Service) keep(ctx context.Context, e AuditEvent) error {
	if ownRead(e) {
		return nil
	}
	if r, ok := s.audit.(AuditRecorder); ok {
		return r.RecordAudit(ctx, e)
	}
	s.audit.Audit(ctx, e)
	return nil
}

func (s *Service) event(ctx context.Context, inst, action, primaryID, what string) AuditEvent {
	o, _ := OriginFrom(ctx)
	return AuditEvent{At: s.clock(), Institution: inst, Actor: actorOf(ctx), Action: action, PrimaryID: primaryID, What: what, Origin: o}
}

// normalizeNew trims and fills the defaults of a record created by staff:
// an INTERNAL, PUBLIC, ACTIVE user unless the record says otherwise.
func (s *Service) normalizeNew(ctx context.Context, u *User) error {
	normalizeCore(u)
	keepUnsent(u, &User{AccountType: AccountInternal, RecordType: RecordPublic, Status: StatusActive})
	var fields []fault.FieldError
	eachSegment(u, func(path string, seg *Segment) { fields = append(fields, internalOnly(path, seg)...) })
	if len(fields) > 0 {
		return invalid(fields...)
	}
	s.stampSegments(ctx, u, nil)
	return nil
}

// stampSegments sets who wrote each note and block and when: a segment
// already held (cur, nil on creation) keeps its stored author, date and
// origin whatever the client sent; a new one is the actor's, now, from the
// library. Clients cannot write authorship.
func (s *Service) stampSegments(ctx context.Context, u, cur *User) {
	now := s.clock()
	by := actorOf(ctx).ID
	heldNotes := map[string]Note{}
	heldBlocks := map[string]Block{}
	if cur != nil {
		for _, n := range cur.Notes {
			heldNotes[n.ID] = n
		}
		for _, b := range cur.Blocks {
			heldBlocks[b.ID] = b
		}
	}
	for i := range u.Notes {
		n := &u.Notes[i]
		if old, ok := heldNotes[n.ID]; ok && n.ID != "" {
			n.CreatedBy, n.CreatedDate, n.Origin = old.CreatedBy, old.CreatedDate, old.Origin
			continue
		}
		n.CreatedBy, n.CreatedDate, n.Origin = by, now, OriginLibrary
	}
	for i := range u.Blocks {
		b := &u.Blocks[i]
		if b.BlockStatus == "" {
			b.BlockStatus = StatusActive
		}
		if old, ok := heldBlocks[b.ID]; ok && b.ID != "" {
			b.CreatedBy, b.CreatedDate = old.CreatedBy, old.CreatedDate
			continue
		}
		b.CreatedBy, b.CreatedDate = by, now
	}
}

// normalizeCore trims fields, upper-cases enumerations and derives the
// keys that uniqueness is checked on.
func normalizeCore(u *User) {
	trim := func(ps ...*string) {
		for _, p := range ps {
			*p = strings.TrimSpace(*p)
		}
	}
	trim(&u.PrimaryID, &u.FirstName, &u.MiddleName, &u.LastName, &u.UserTitle, &u.Gender,
		&u.UserGroup, &u.CampusCode, &u.JobCategory, &u.JobDescription, &u.PreferredLanguage,
		&u.RSLibrary, &u.ExternalID, &u.BirthDate, &u.ExpiryDate, &u.PurgeDate)
	u.AccountType = strings.ToUpper(strings.TrimSpace(u.AccountType))
	u.RecordType = strings.ToUpper(strings.TrimSpace(u.RecordType))
	u.Status = strings.ToUpper(strings.TrimSpace(u.Status))
	u.PrimaryIDKey = keys.Fold(u.PrimaryID)
	for i := range u.Identifiers {
		id := &u.Identifiers[i]
		trim(&id.IDType, &id.Value)
		id.Institution = u.Institution
		id.ValueKey = keys.Fold(id.Value)
		id.Status = strings.ToUpper(id.Status)
		if id.Status == "" {
			id.Status = StatusActive
		}
	}
	for i := range u.Emails {
		trim(&u.Emails[i].EmailAddress)
	}
	for i := range u.Blocks {
		u.Blocks[i].BlockStatus = strings.ToUpper(strings.TrimSpace(u.Blocks[i].BlockStatus))
	}
	for i := range u.ProxyFor {
		trim(&u.ProxyFor[i].PrimaryID)
	}
}
