// Package sets keeps an institution's sets of users, as Alma's sets of
// records: the input of the jobs staff run over many users at once.
//
// A set is either a saved query (a Query: user group, status, record type,
// account type, SIS profile, campus, expiry and purge date ranges,
// statistical category, an active block, a balance over an amount, a
// last activity before a day), evaluated each time the set is
// used, so that its members are whoever matches then; or an itemized set,
// a list of users uploaded as a file of identifiers (primary_id or an
// identifier type, one a line), whose lines naming no user are reported
// with their line numbers. A query set can be frozen into an itemized set
// of the users it matches now.
//
// Members are read in pages ordered by primary_id (keyset: the page after
// a primary_id), each read on the audit trail like a list of users; a
// member is a user of the institution that exists when the set is read (a
// deleted user leaves an itemized set).
//
// Jobs run over a set's members, previewed first, then in batches in the
// background with progress, cancel, resume and a report: the update of
// user information (fields set or cleared; blocks, notes and statistics
// added or removed; undone by an undo job), and the notify job (a message
// to every member through the notice outbox, given by a Messenger). Other
// modules take a set as their input through MemberIDs (the privacy purge).
//
// The HTTP adapter (adapters/ginapi) lets staff with the action sets.read
// list and read sets, with sets.manage create, freeze and delete them, and
// with sets.jobs run jobs over them.
package sets

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// Kinds of set.
const (
	// KindQuery is a saved query, evaluated when the set is used.
	KindQuery = "query"
	// KindItemized is a fixed list of users.
	KindItemized = "itemized"
)

// IDTypePrimaryID names, as the identifier type of an upload, the users'
// primary_id rather than one of their identifiers.
const IDTypePrimaryID = "primary_id"

// Set is a set of users as staff see it.
type Set struct {
	// ID names the set (UUID).
	ID          string `json:"id" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	// Name says what the set is ("Graduates of 2026").
	Name        string `json:"name" gorm:"size:255;not null"`
	Description string `json:"description,omitempty" gorm:"size:2000"`
	// Kind is KindQuery or KindItemized.
	Kind string `json:"kind" gorm:"size:16;not null"`
	// Query is the saved query of a query set; nil for an itemized set.
	Query *Query `json:"query,omitempty" gorm:"serializer:json;type:text"`
	// FrozenFrom is, for an itemized set frozen from a query set, the id
	// of that set.
	FrozenFrom string `json:"frozen_from,omitempty" gorm:"size:36"`
	// CreatedBy is the primary_id of who made the set.
	CreatedBy string    `json:"created_by" gorm:"size:255;not null"`
	CreatedAt time.Time `json:"created_date" gorm:"not null"`
	// MemberCount is how many users the set holds when it is read
	// (evaluated then for a query set); not kept.
	MemberCount int64 `json:"member_count" gorm:"-"`
}

// TableName places sets in the pk_ namespace.
func (Set) TableName() string { return "pk_sets" }

// member is one user of an itemized set.
type member struct {
	SetID  string `gorm:"primaryKey;size:36"`
	UserID string `gorm:"primaryKey;size:36"`
}

func (member) TableName() string { return "pk_set_members" }

// Query selects the users of a query set: every criterion given must hold
// (empty fields do not filter; a query of none holds every user of the
// institution). Codes are compared as written (user groups, campus,
// statistical categories), status and types whatever their case; dates
// are YYYY-MM-DD and both ends of a range are included.
type Query struct {
	UserGroup   string `json:"user_group,omitempty"`
	Status      string `json:"status,omitempty"`
	RecordType  string `json:"record_type,omitempty"`
	AccountType string `json:"account_type,omitempty"`
	// ExternalID is the code of the SIS integration profile that owns the
	// users (external users only).
	ExternalID string `json:"external_id,omitempty"`
	CampusCode string `json:"campus_code,omitempty"`
	ExpiryFrom string `json:"expiry_date_from,omitempty"`
	ExpiryTo   string `json:"expiry_date_to,omitempty"`
	PurgeFrom  string `json:"purge_date_from,omitempty"`
	PurgeTo    string `json:"purge_date_to,omitempty"`
	// StatisticCategory holds the users with a statistic of this
	// category.
	StatisticCategory string `json:"statistic_category,omitempty"`
	// HasBlock, when given, holds the users with (true) or without
	// (false) an active manual block.
	HasBlock *bool `json:"has_block,omitempty"`
	// BalanceOver, when given, holds the users whose open fees leave
	// more than this to pay, in minor units (cents) of the institution's
	// currency (Options.Currency; the kit's first of Config.Currencies):
	// what remains of each open fee charged in that currency, summed.
	// Fees in another currency are not counted (they are never
	// converted here). At least 0: 0 holds whoever owes anything.
	BalanceOver *int64 `json:"balance_over,omitempty"`
	// ActivityBefore (YYYY-MM-DD, a day in UTC) holds the users whose
	// last activity is before that day. A user's last activity is the
	// latest of what is stored of them: a loan (its loan date), a return
	// (its return date), a request placed, and a change of their record
	// (its updated_date, which an SIS load, staff or the patron's own
	// settings move). Successful sign-ins are not stored, so they do not
	// count; nor do loans and requests anonymized already (they no
	// longer name the user).
	ActivityBefore string `json:"last_activity_before,omitempty"`
}

// New is a query set to make.
type New struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Query       Query  `json:"query"`
}

// NewItemized is an itemized set to make from a file of identifiers.
type NewItemized struct {
	Name        string
	Description string
	// IDType is what the lines of the file are: IDTypePrimaryID (the
	// default) or an identifier type (BARCODE, UNIV_ID...).
	IDType string
}

// Line is a line of an uploaded file that names no user of the
// institution: its number (from 1) and its text.
type Line struct {
	Line  int    `json:"line"`
	Value string `json:"value"`
}

// Made is an itemized set just made, with the lines of its file that
// named no user.
type Made struct {
	Set
	NotFound []Line `json:"not_found"`
}

// Member is a user of a set as a page of members shows them.
type Member struct {
	PrimaryID   string `json:"primary_id"`
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	UserGroup   string `json:"user_group,omitempty"`
	Status      string `json:"status"`
	AccountType string `json:"account_type"`
	RecordType  string `json:"record_type"`
	ExpiryDate  string `json:"expiry_date,omitempty"`
}

// Members is a page of a set's members, with their count.
type Members struct {
	Members          []Member `json:"members"`
	TotalRecordCount int64    `json:"total_record_count"`
	// Next is the primary_id to ask the next page after; empty on the
	// last page.
	Next string `json:"next,omitempty"`
}

// Page is a page of an institution's sets.
type Page struct {
	Sets             []Set  `json:"sets"`
	TotalRecordCount int64  `json:"total_record_count"`
	Next             string `json:"next,omitempty"`
}

// Service keeps the sets of users and runs the jobs over them. It is safe
// for concurrent use, and on several instances over one database: a
// lease lets one instance at a time run a job.
type Service struct {
	db      *gorm.DB
	patrons *patron.Service
	now     func() time.Time
	o       Options

	stop    context.Context // ends when the service closes
	closing context.CancelFunc
	running sync.WaitGroup
	active  sync.Map // ids of the jobs this instance runs now
}

// NewService returns the sets kept in db, of the users of patrons, and
// their jobs, as o says.
func NewService(db *gorm.DB, patrons *patron.Service, o Options) (*Service, error) {
	if db == nil || patrons == nil {
		return nil, errors.New("sets: NewService needs a *gorm.DB and the patron service")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Instance == "" {
		o.Instance = "sets-" + keys.NewID()
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 5 * time.Minute
	}
	if o.Currency == "" {
		o.Currency = "USD"
	}
	stop, closing := context.WithCancel(context.Background())
	return &Service{db: db, patrons: patrons, now: o.Now, o: o, stop: stop, closing: closing}, nil
}

func (s *Service) conn(ctx context.Context) *gorm.DB { return txctx.DB(ctx, s.db).WithContext(ctx) }

// errNoSet is the answer for a set id the institution has no set of.
var errNoSet = &fault.Error{Kind: fault.NotFound, Detail: "no set has this id"}

// Create makes a query set of inst, by the actor ctx carries. A missing or
// too long name, or a criterion that is not valid, is Invalid naming the
// field (query.status, query.expiry_date_from...).
func (s *Service) Create(ctx context.Context, inst string, in New) (*Set, error) {
	set, bad := s.newSet(ctx, inst, in.Name, in.Description, KindQuery)
	q := in.Query
	bad = append(bad, q.normalize()...)
	if len(bad) > 0 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the set is not valid", Fields: bad}
	}
	set.Query = &q
	if err := s.conn(ctx).Create(set).Error; err != nil {
		return nil, err
	}
	return s.counted(ctx, set)
}

// newSet is a set of kind to make, and what is wrong with its name and
// description.
func (s *Service) newSet(ctx context.Context, inst, name, description, kind string) (*Set, []fault.FieldError) {
	var bad []fault.FieldError
	name = strings.TrimSpace(name)
	switch {
	case name == "" || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		bad = append(bad, fault.FieldError{Field: "name", Code: "required", Message: "must be text on one line, not empty"})
	case utf8.RuneCountInString(name) > 255:
		bad = append(bad, fault.FieldError{Field: "name", Code: "too_long", Message: "must be at most 255 characters"})
	}
	description = strings.TrimSpace(description)
	if e := patron.TextError("description", description, true); e != nil {
		bad = append(bad, *e)
	} else if utf8.RuneCountInString(description) > 2000 {
		bad = append(bad, fault.FieldError{Field: "description", Code: "too_long", Message: "must be at most 2000 characters"})
	}
	actor, _ := patron.ActorFrom(ctx)
	return &Set{ID: keys.NewID(), Institution: inst, Name: name, Description: description, Kind: kind,
		CreatedBy: actor.ID, CreatedAt: s.now().UTC().Truncate(time.Second)}, bad
}

// normalize trims q and upper-cases its codes of a closed list; it
// returns what is not valid, each field named query.<json name>.
func (q *Query) normalize() []fault.FieldError {
	var bad []fault.FieldError
	closed := []struct {
		name string
		v    *string
		ok   []string
	}{
		{"status", &q.Status, []string{patron.StatusActive, patron.StatusInactive}},
		{"record_type", &q.RecordType, []string{patron.RecordPublic, patron.RecordStaff, patron.RecordContact}},
		{"account_type", &q.AccountType, []string{patron.AccountInternal, patron.AccountExternal}},
	}
	for _, f := range closed {
		*f.v = strings.ToUpper(strings.TrimSpace(*f.v))
		if *f.v != "" && !slices.Contains(f.ok, *f.v) {
			bad = append(bad, fault.FieldError{Field: "query." + f.name, Code: "unknown_value", Message: "must be one of " + strings.Join(f.ok, ", ")})
		}
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"user_group", &q.UserGroup}, {"external_id", &q.ExternalID}, {"campus_code", &q.CampusCode}, {"statistic_category", &q.StatisticCategory}} {
		*f.v = strings.TrimSpace(*f.v)
		if e := patron.TextError("query."+f.name, *f.v, false); e != nil {
			bad = append(bad, *e)
		} else if utf8.RuneCountInString(*f.v) > 64 {
			bad = append(bad, fault.FieldError{Field: "query." + f.name, Code: "too_long", Message: "must be at most 64 characters"})
		}
	}
	for _, r := range []struct {
		from, to   string
		fromV, toV *string
	}{{"expiry_date_from", "expiry_date_to", &q.ExpiryFrom, &q.ExpiryTo}, {"purge_date_from", "purge_date_to", &q.PurgeFrom, &q.PurgeTo}} {
		ok := true
		for _, d := range []struct {
			name string
			v    *string
		}{{r.from, r.fromV}, {r.to, r.toV}} {
			*d.v = strings.TrimSpace(*d.v)
			if _, err := time.Parse(time.DateOnly, *d.v); *d.v != "" && err != nil {
				bad = append(bad, fault.FieldError{Field: "query." + d.name, Code: "invalid_date", Message: "must be a date written YYYY-MM-DD"})
				ok = false
			}
		}
		if ok && *r.fromV != "" && *r.toV != "" && *r.fromV > *r.toV {
			bad = append(bad, fault.FieldError{Field: "query." + r.to, Code: "out_of_range", Message: "must not be before " + r.from})
		}
	}
	if q.BalanceOver != nil && *q.BalanceOver < 0 {
		bad = append(bad, fault.FieldError{Field: "query.balance_over", Code: "out_of_range", Message: "must be an amount in minor units, at least 0"})
	}
	q.ActivityBefore = strings.TrimSpace(q.ActivityBefore)
	if _, err := time.Parse(time.DateOnly, q.ActivityBefore); q.ActivityBefore != "" && err != nil {
		bad = append(bad, fault.FieldError{Field: "query.last_activity_before", Code: "invalid_date", Message: "must be a date written YYYY-MM-DD"})
	}
	return bad
}

// where is the condition on pk_users of the members of set.
func (s *Service) where(set *Set) (string, []any) {
	conds := []string{"pk_users.institution = ?"}
	args := []any{set.Institution}
	if set.Kind == KindItemized {
		conds = append(conds, "pk_users.id IN (SELECT m.user_id FROM pk_set_members m WHERE m.set_id = ?)")
		args = append(args, set.ID)
		return strings.Join(conds, " AND "), args
	}
	q := set.Query
	if q == nil {
		q = &Query{}
	}
	for _, f := range []struct{ col, v string }{
		{"user_group", q.UserGroup}, {"status", q.Status}, {"record_type", q.RecordType}, {"account_type", q.AccountType},
		{"external_id", q.ExternalID}, {"campus_code", q.CampusCode},
	} {
		if f.v != "" {
			conds = append(conds, "pk_users."+f.col+" = ?")
			args = append(args, f.v)
		}
	}
	// Dates are YYYY-MM-DD text: their order is the order of the text;
	// a user without the date is in no range.
	for _, f := range []struct{ col, op, v string }{
		{"expiry_date", ">=", q.ExpiryFrom}, {"expiry_date", "<=", q.ExpiryTo},
		{"purge_date", ">=", q.PurgeFrom}, {"purge_date", "<=", q.PurgeTo},
	} {
		if f.v != "" {
			conds = append(conds, "pk_users."+f.col+" "+f.op+" ? AND pk_users."+f.col+" <> ''")
			args = append(args, f.v)
		}
	}
	if q.StatisticCategory != "" {
		conds = append(conds, "EXISTS (SELECT 1 FROM pk_user_statistics st WHERE st.user_id = pk_users.id AND st.statistic_category = ?)")
		args = append(args, q.StatisticCategory)
	}
	if q.HasBlock != nil {
		c := "EXISTS (SELECT 1 FROM pk_user_blocks b WHERE b.user_id = pk_users.id AND b.block_status = ?)"
		if !*q.HasBlock {
			c = "NOT " + c
		}
		conds = append(conds, c)
		args = append(args, patron.StatusActive)
	}
	if q.BalanceOver != nil {
		// The fees table is circulation's (the kit wires both); a sum of
		// open fees stays far below the largest int64 (each is at most
		// circulation's MaxFee).
		conds = append(conds, "(SELECT COALESCE(SUM(f.amount - f.paid - f.waived), 0) FROM pk_circ_fees f "+
			"WHERE f.institution = pk_users.institution AND f.user_id = pk_users.id AND f.status = 'open' AND f.currency = ?) > ?")
		args = append(args, s.o.Currency, *q.BalanceOver)
	}
	if q.ActivityBefore != "" {
		day, _ := time.Parse(time.DateOnly, q.ActivityBefore) // checked by normalize
		conds = append(conds, "pk_users.updated_at < ?",
			"NOT EXISTS (SELECT 1 FROM pk_circ_loans l WHERE l.institution = pk_users.institution AND l.user_id = pk_users.id AND (l.loaned_at >= ? OR l.returned_at >= ?))",
			"NOT EXISTS (SELECT 1 FROM pk_circ_requests r WHERE r.institution = pk_users.institution AND r.user_id = pk_users.id AND r.placed_at >= ?)")
		args = append(args, day, day, day, day)
	}
	return strings.Join(conds, " AND "), args
}

// users is pk_users narrowed to the members of set.
func (s *Service) users(ctx context.Context, set *Set) *gorm.DB {
	cond, args := s.where(set)
	return s.conn(ctx).Table("pk_users").Where(cond, args...)
}

// counted is set with its member count now.
func (s *Service) counted(ctx context.Context, set *Set) (*Set, error) {
	if err := s.users(ctx, set).Count(&set.MemberCount).Error; err != nil {
		return nil, err
	}
	set.CreatedAt = set.CreatedAt.UTC()
	return set, nil
}

// Get returns the set id of inst with its member count (a query set
// evaluated now). An unknown id is NotFound.
func (s *Service) Get(ctx context.Context, inst, id string) (*Set, error) {
	set, err := s.load(ctx, inst, id)
	if err != nil {
		return nil, err
	}
	return s.counted(ctx, set)
}

func (s *Service) load(ctx context.Context, inst, id string) (*Set, error) {
	var found []Set
	if err := s.conn(ctx).Where("institution = ? AND id = ?", inst, id).Limit(1).Find(&found).Error; err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, errNoSet
	}
	return &found[0], nil
}

// List returns a page of inst's sets, oldest first, after the set id
// after (from the start when empty), at most limit (default 20, at most
// 100), each with its member count.
func (s *Service) List(ctx context.Context, inst, after string, limit int) (*Page, error) {
	if limit == 0 {
		limit = 20
	}
	if limit < 1 || limit > 100 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the page is not valid", Fields: []fault.FieldError{{Field: "limit", Code: "out_of_range", Message: "must be 1..100"}}}
	}
	p := &Page{Sets: []Set{}}
	if err := s.conn(ctx).Model(&Set{}).Where("institution = ?", inst).Count(&p.TotalRecordCount).Error; err != nil {
		return nil, err
	}
	db := s.conn(ctx).Where("institution = ?", inst)
	if after != "" {
		db = db.Where("id > ?", after)
	}
	if err := db.Order("id").Limit(limit + 1).Find(&p.Sets).Error; err != nil {
		return nil, err
	}
	if len(p.Sets) > limit {
		p.Sets = p.Sets[:limit]
		p.Next = p.Sets[limit-1].ID
	}
	for i := range p.Sets {
		if _, err := s.counted(ctx, &p.Sets[i]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Members returns a page of the members of the set id of inst, ordered by
// primary_id (case ignored), after the primary_id after (from the start
// when empty), at most limit (default 20, at most 100), with the count
// of all. Each member listed is on the audit trail (read, "set members")
// before the page is returned; when the entries cannot be written,
// Members fails.
func (s *Service) Members(ctx context.Context, inst, id, after string, limit int) (*Members, error) {
	if limit == 0 {
		limit = 20
	}
	if limit < 1 || limit > 100 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the page is not valid", Fields: []fault.FieldError{{Field: "limit", Code: "out_of_range", Message: "must be 1..100"}}}
	}
	set, err := s.load(ctx, inst, id)
	if err != nil {
		return nil, err
	}
	out := &Members{Members: []Member{}}
	if err := s.users(ctx, set).Count(&out.TotalRecordCount).Error; err != nil {
		return nil, err
	}
	db := s.users(ctx, set)
	if after != "" {
		db = db.Where("pk_users.primary_id_key > ?", keys.Fold(after))
	}
	if err := db.Select("primary_id, first_name, last_name, user_group, status, account_type, record_type, expiry_date").
		Order("pk_users.primary_id_key").Limit(limit + 1).Scan(&out.Members).Error; err != nil {
		return nil, err
	}
	if len(out.Members) > limit {
		out.Members = out.Members[:limit]
		out.Next = out.Members[limit-1].PrimaryID
	}
	es := make([]patron.AuditEvent, len(out.Members))
	for i, m := range out.Members {
		es[i] = patron.AuditEvent{Action: patron.AuditRead, PrimaryID: m.PrimaryID, What: "set members"}
	}
	if err := s.patrons.RecordAuditMany(ctx, inst, es); err != nil {
		return nil, err
	}
	return out, nil
}

// Delete deletes the set id of inst (its users stay as they are). An
// unknown id is NotFound.
func (s *Service) Delete(ctx context.Context, inst, id string) error {
	return txctx.Transaction(ctx, s.db, func(ctx context.Context, tx *gorm.DB) error {
		res := tx.Where("institution = ? AND id = ?", inst, id).Delete(&Set{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errNoSet
		}
		return tx.Where("set_id = ?", id).Delete(&member{}).Error
	})
}

// uuidText is what a set id looks like (keys.NewID).
var uuidText = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Freeze makes an itemized set of the users the query set id of inst
// holds now, named name (the query set's name and the day when empty),
// in one statement of the database. An unknown id is NotFound; an
// itemized set is Refused (reason "itemized").
func (s *Service) Freeze(ctx context.Context, inst, id, name string) (*Set, error) {
	var out *Set
	err := txctx.Transaction(ctx, s.db, func(ctx context.Context, tx *gorm.DB) error {
		from, err := s.load(ctx, inst, id)
		if err != nil {
			return err
		}
		if from.Kind != KindQuery {
			return &fault.Error{Kind: fault.Refused, Detail: "only a query set can be frozen; this set is itemized already", Reasons: []string{"itemized"}}
		}
		if strings.TrimSpace(name) == "" {
			name = from.Name + " (" + s.now().UTC().Format(time.DateOnly) + ")"
			if utf8.RuneCountInString(name) > 255 {
				name = string([]rune(name)[:255])
			}
		}
		set, bad := s.newSet(ctx, inst, name, from.Description, KindItemized)
		if len(bad) > 0 {
			return &fault.Error{Kind: fault.Invalid, Detail: "the set is not valid", Fields: bad}
		}
		set.FrozenFrom = from.ID
		if err := tx.Create(set).Error; err != nil {
			return err
		}
		if !uuidText.MatchString(set.ID) {
			return fmt.Errorf("sets: a set id %q is not a UUID", set.ID)
		}
		// The new id is a UUID made here, written into the statement so
		// that every database takes it as text.
		cond, args := s.where(from)
		if err := tx.Exec("INSERT INTO pk_set_members (set_id, user_id) SELECT '"+set.ID+"', pk_users.id FROM pk_users WHERE "+cond, args...).Error; err != nil {
			return err
		}
		out, err = s.counted(ctx, set)
		return err
	})
	return out, err
}

// codeText is what an identifier type looks like.
var codeText = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// lookupChunk is how many lines of a file are looked up at a time.
const lookupChunk = 500

// maxLine is the longest line of a file of identifiers.
const maxLine = 4096

// CreateFromFile makes an itemized set of inst of the users named by the
// lines of r, one identifier of in.IDType a line (blank lines and
// surrounding spaces ignored, case ignored, a user named twice counted
// once), in one transaction; the lines naming no user are answered with
// their numbers. A missing name, a file naming no one at all (empty, or
// no line found) or a line longer than 4096 bytes is Invalid, and nothing
// is made.
func (s *Service) CreateFromFile(ctx context.Context, inst string, in NewItemized, r io.Reader) (*Made, error) {
	set, bad := s.newSet(ctx, inst, in.Name, in.Description, KindItemized)
	idType := strings.TrimSpace(in.IDType)
	if idType == "" {
		idType = IDTypePrimaryID
	}
	if !codeText.MatchString(idType) {
		bad = append(bad, fault.FieldError{Field: "id_type", Code: "invalid", Message: "must be primary_id or an identifier type: letters, digits, '_', '-' or '.', at most 64"})
	}
	if len(bad) > 0 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the set is not valid", Fields: bad}
	}
	made := &Made{NotFound: []Line{}}
	err := txctx.Transaction(ctx, s.db, func(ctx context.Context, tx *gorm.DB) error {
		if err := tx.Create(set).Error; err != nil {
			return err
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, maxLine), maxLine)
		var chunk []Line
		n, lines := 0, 0
		flush := func() error {
			found, err := s.flush(tx, inst, idType, set.ID, chunk, func(l Line) { made.NotFound = append(made.NotFound, l) })
			if err != nil {
				return err
			}
			n += found
			chunk = chunk[:0]
			return nil
		}
		lineNo := 0
		for sc.Scan() {
			lineNo++
			v := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\uFEFF"))
			if v == "" {
				continue
			}
			lines++
			if !utf8.ValidString(v) || len(v) > 255 {
				made.NotFound = append(made.NotFound, Line{Line: lineNo, Value: strings.ToValidUTF8(v, "?")})
				continue
			}
			chunk = append(chunk, Line{Line: lineNo, Value: v})
			if len(chunk) == lookupChunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return &fault.Error{Kind: fault.Invalid, Detail: "the file is not a list of identifiers", Fields: []fault.FieldError{{Field: "file", Code: "too_long", Message: fmt.Sprintf("line %d is longer than %d bytes", lineNo+1, maxLine)}}}
			}
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		if lines == 0 {
			return &fault.Error{Kind: fault.Invalid, Detail: "the file names no one", Fields: []fault.FieldError{{Field: "file", Code: "required", Message: "must have an identifier on at least one line"}}}
		}
		if n == 0 {
			return &fault.Error{Kind: fault.Invalid, Detail: "no line of the file names a user of the institution", Fields: []fault.FieldError{{Field: "file", Code: "not_found", Message: "no line names a user"}}}
		}
		counted, err := s.counted(ctx, set)
		if err != nil {
			return err
		}
		made.Set = *counted
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(made.NotFound, func(a, b Line) int { return a.Line - b.Line })
	return made, nil
}

// flush looks the lines of chunk up and adds the users found to the set
// id, and gives the lines naming no user to notFound. It returns how
// many lines named a user.
func (s *Service) flush(tx *gorm.DB, inst, idType, id string, chunk []Line, notFound func(Line)) (int, error) {
	if len(chunk) == 0 {
		return 0, nil
	}
	vals := make([]string, len(chunk))
	for i, l := range chunk {
		vals[i] = keys.Fold(l.Value)
	}
	type hit struct {
		UserID    string
		LookupKey string
	}
	var hits []hit
	var q *gorm.DB
	if idType == IDTypePrimaryID {
		q = tx.Table("pk_users").Select("id AS user_id, primary_id_key AS lookup_key").Where("institution = ? AND primary_id_key IN ?", inst, vals)
	} else {
		q = tx.Table("pk_user_identifiers").Select("user_id, value_key AS lookup_key").Where("institution = ? AND id_type = ? AND value_key IN ?", inst, idType, vals)
	}
	if err := q.Scan(&hits).Error; err != nil {
		return 0, err
	}
	byKey := make(map[string]string, len(hits))
	for _, h := range hits {
		byKey[h.LookupKey] = h.UserID
	}
	rows := make([]member, 0, len(hits))
	seen := map[string]bool{}
	found := 0
	for i, l := range chunk {
		uid, ok := byKey[vals[i]]
		if !ok {
			notFound(l)
			continue
		}
		found++
		if !seen[uid] {
			seen[uid] = true
			rows = append(rows, member{SetID: id, UserID: uid})
		}
	}
	if len(rows) > 0 {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error; err != nil {
			return 0, err
		}
	}
	return found, nil
}

// Migrations creates the tables of sets.
func Migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{{
		ID: "202612060501_sets",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Migrator().CreateTable(&setV1{}, &memberV1{}); err != nil {
				return err
			}
			return tx.Exec("CREATE INDEX pk_sets_inst ON pk_sets (institution, id)").Error
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable(&memberV1{}, &setV1{}) },
	}, {
		// The jobs over sets: each job, the users it works on (fixed when
		// it starts) and what it did to each.
		ID: "202612060503_set_jobs",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Migrator().CreateTable(&jobV1{}, &jobItemV1{}, &jobOutcomeV1{}); err != nil {
				return err
			}
			for _, q := range []string{
				"CREATE INDEX pk_set_jobs_status ON pk_set_jobs (status, lease_until)",
				"CREATE INDEX pk_set_jobs_undo ON pk_set_jobs (institution, undo_of)",
				"CREATE INDEX pk_set_job_outcomes_user ON pk_set_job_outcomes (job_id, user_id)",
			} {
				if err := tx.Exec(q).Error; err != nil {
					return err
				}
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable(&jobOutcomeV1{}, &jobItemV1{}, &jobV1{}) },
	}, {
		// A user deleted (erased, purged) leaves the sets and the jobs'
		// outcomes (DeletionHook): indexes by user find their rows.
		ID: "202612060504_sets_by_user",
		Migrate: func(tx *gorm.DB) error {
			for _, q := range []string{
				"CREATE INDEX pk_set_members_user ON pk_set_members (user_id)",
				"CREATE INDEX pk_set_job_outcomes_by_user ON pk_set_job_outcomes (user_id)",
			} {
				if err := tx.Exec(q).Error; err != nil {
					return err
				}
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			for _, x := range [][2]string{{"pk_set_members", "pk_set_members_user"}, {"pk_set_job_outcomes", "pk_set_job_outcomes_by_user"}} {
				if err := tx.Migrator().DropIndex(x[0], x[1]); err != nil {
					return err
				}
			}
			return nil
		},
	}, {
		// An update job adds and removes blocks, notes and statistics:
		// the job keeps which, each outcome what it added or removed.
		ID: "202612070501_set_job_segments",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Migrator().AddColumn(&jobV2{}, "Segments"); err != nil {
				return err
			}
			return tx.Migrator().AddColumn(&jobOutcomeV2{}, "Segments")
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Migrator().DropColumn(&jobOutcomeV2{}, "Segments"); err != nil {
				return err
			}
			return tx.Migrator().DropColumn(&jobV2{}, "Segments")
		},
	}, {
		// A notify job keeps its message, each outcome the notice
		// written.
		ID: "202612070502_set_job_messages",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Migrator().AddColumn(&jobV3{}, "Message"); err != nil {
				return err
			}
			return tx.Migrator().AddColumn(&jobOutcomeV3{}, "Notice")
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Migrator().DropColumn(&jobOutcomeV3{}, "Notice"); err != nil {
				return err
			}
			return tx.Migrator().DropColumn(&jobV3{}, "Message")
		},
	}}
}

type jobV3 struct {
	Message string `gorm:"type:text"`
}

func (jobV3) TableName() string { return "pk_set_jobs" }

type jobOutcomeV3 struct {
	Notice string `gorm:"type:text"`
}

func (jobOutcomeV3) TableName() string { return "pk_set_job_outcomes" }

type jobV2 struct {
	Segments string `gorm:"type:text"`
}

func (jobV2) TableName() string { return "pk_set_jobs" }

type jobOutcomeV2 struct {
	Segments string `gorm:"type:text"`
}

func (jobOutcomeV2) TableName() string { return "pk_set_job_outcomes" }

type setV1 struct {
	ID          string    `gorm:"primaryKey;size:36"`
	Institution string    `gorm:"size:64;not null"`
	Name        string    `gorm:"size:255;not null"`
	Description string    `gorm:"size:2000"`
	Kind        string    `gorm:"size:16;not null"`
	Query       string    `gorm:"type:text"`
	FrozenFrom  string    `gorm:"size:36"`
	CreatedBy   string    `gorm:"size:255;not null"`
	CreatedAt   time.Time `gorm:"not null"`
}

func (setV1) TableName() string { return "pk_sets" }

type memberV1 struct {
	SetID  string `gorm:"primaryKey;size:36"`
	UserID string `gorm:"primaryKey;size:36"`
}

func (memberV1) TableName() string { return "pk_set_members" }

type jobV1 struct {
	ID              string    `gorm:"primaryKey;size:36"`
	Institution     string    `gorm:"size:64;not null"`
	SetID           string    `gorm:"size:36;not null"`
	Kind            string    `gorm:"size:16;not null"`
	UndoOf          string    `gorm:"size:36;not null;default:''"`
	Fields          string    `gorm:"type:text"`
	Status          string    `gorm:"size:16;not null"`
	Total           int64     `gorm:"not null"`
	Done            int64     `gorm:"not null"`
	Changed         int64     `gorm:"column:n_changed;not null"`
	Unchanged       int64     `gorm:"column:n_unchanged;not null"`
	Refused         int64     `gorm:"column:n_refused;not null"`
	CancelRequested bool      `gorm:"not null;default:false"`
	Cursor          string    `gorm:"size:36;not null"`
	Holder          string    `gorm:"size:128;not null"`
	LeaseUntil      time.Time `gorm:"not null"`
	CreatedBy       string    `gorm:"size:255;not null"`
	CreatedAt       time.Time `gorm:"not null"`
	FinishedAt      *time.Time
}

func (jobV1) TableName() string { return "pk_set_jobs" }

type jobItemV1 struct {
	JobID  string `gorm:"primaryKey;size:36"`
	UserID string `gorm:"primaryKey;size:36"`
}

func (jobItemV1) TableName() string { return "pk_set_job_items" }

type jobOutcomeV1 struct {
	JobID     string `gorm:"primaryKey;size:36"`
	Seq       int64  `gorm:"primaryKey;autoIncrement:false"`
	UserID    string `gorm:"size:36;not null"`
	Version   int    `gorm:"column:version_after;not null"`
	PrimaryID string `gorm:"size:255;not null"`
	Outcome   string `gorm:"size:16;not null"`
	Changes   string `gorm:"type:text"`
	Reasons   string `gorm:"type:text"`
}

func (jobOutcomeV1) TableName() string { return "pk_set_job_outcomes" }

// MemberIDs returns the internal ids of the members of the set id of inst
// now (a query set evaluated here), in the order of the ids, after the id
// after (from the first when empty), at most limit (at least 1): the input
// of a job of another module over the set, such as the privacy purge
// (privacy.SetMembers). No entry is written on the audit trail (only
// internal ids are read). An unknown id is NotFound.
func (s *Service) MemberIDs(ctx context.Context, inst, id, after string, limit int) ([]string, error) {
	if limit < 1 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the page is not valid", Fields: []fault.FieldError{{Field: "limit", Code: "out_of_range", Message: "must be at least 1"}}}
	}
	set, err := s.load(ctx, inst, id)
	if err != nil {
		return nil, err
	}
	out := []string{}
	err = s.users(ctx, set).Where("pk_users.id > ?", after).Order("pk_users.id").Limit(limit).Pluck("pk_users.id", &out).Error
	return out, err
}
