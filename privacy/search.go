package privacy

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/txctx"
)

// Page sizes of Search.
const (
	// DefaultSearchLimit is the page size of a Query without a Limit.
	DefaultSearchLimit = 50
	// MaxSearchLimit is the largest page a Query may ask for.
	MaxSearchLimit = 1000
)

// Query selects entries of one institution's trail, for Search and
// WriteCSV. Every field left empty does not filter; the filters given
// must all hold.
type Query struct {
	// Subject is the primary_id of the user the entries concern, as the
	// trail records it (the spelling of the record at the time), in any
	// case.
	Subject string
	// Actor is the primary_id of who acted (or the job, "system:sis"),
	// in any case.
	Actor string
	// Action is one of patron's Audit* actions (read, update, export...).
	Action string
	// Via is the start of the way in: "http" for every request of the
	// HTTP API, "http GET /api/users/:primary_id" for one route, "sis" for
	// the SIS runs. Case matters.
	Via string
	// From and To bound the time of the entries: From included, To not.
	From, To time.Time
	// Before is the cursor of a page: only entries numbered below it
	// (Page.Next of the page before); 0 starts from the newest.
	Before int64
	// Limit is the most entries of one page: 1 to MaxSearchLimit, 0 for
	// DefaultSearchLimit. WriteCSV ignores it.
	Limit int
}

// Page is one page of a search: its entries, the newest first (by
// sequence number, the order in which the trail kept them), and whether
// more follow.
type Page struct {
	Entries []Entry
	// More tells that older entries match too; Next is then the Before
	// of the query of the next page (0 otherwise).
	More bool
	Next int64
}

// Validate refuses, as Invalid naming the field (limit, cursor, to), a
// query no search answers: a Limit out of range, a negative cursor
// (Before), a time range that ends before it starts.
func (q Query) Validate() error {
	var fields []fault.FieldError
	if q.Limit < 0 || q.Limit > MaxSearchLimit {
		fields = append(fields, fault.FieldError{Field: "limit", Code: "out_of_range", Message: fmt.Sprintf("must be from 1 to %d", MaxSearchLimit)})
	}
	if q.Before < 0 {
		fields = append(fields, fault.FieldError{Field: "cursor", Code: "out_of_range", Message: "must be the next cursor of a page"})
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		fields = append(fields, fault.FieldError{Field: "to", Code: "out_of_range", Message: "must come after from"})
	}
	if len(fields) > 0 {
		return &fault.Error{Kind: fault.Invalid, Detail: "the search of the audit trail is refused", Fields: fields}
	}
	return nil
}

// where is the query of inst's entries q selects, cursor included,
// newest first.
func (s *Service) where(ctx context.Context, inst string, q Query) *gorm.DB {
	db := txctx.DB(ctx, s.db).Model(&Entry{}).Where("institution = ?", inst)
	// Primary ids are the same whatever their case; MySQL's collation
	// ignores it, the others match in lower case (on indexes of those).
	subject, actor := "LOWER(subject) = ?", "LOWER(actor_id) = ?"
	if db.Dialector.Name() == "mysql" {
		subject, actor = "subject = ?", "actor_id = ?"
	}
	if q.Subject != "" {
		db = db.Where(subject, strings.ToLower(q.Subject))
	}
	if q.Actor != "" {
		db = db.Where(actor, strings.ToLower(q.Actor))
	}
	if q.Action != "" {
		db = db.Where("action = ?", q.Action)
	}
	if q.Via != "" {
		db = db.Where("via LIKE ? ESCAPE '!'", likePrefix(q.Via))
	}
	if !q.From.IsZero() {
		db = db.Where("at_us >= ?", q.From.UnixMicro())
	}
	if !q.To.IsZero() {
		db = db.Where("at_us < ?", q.To.UnixMicro())
	}
	if q.Before > 0 {
		db = db.Where("seq < ?", q.Before)
	}
	return db.Order("seq DESC")
}

// likePrefix is the LIKE pattern of the values starting with p, escaped
// with '!'.
func likePrefix(p string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return r.Replace(p) + "%"
}

// Search answers one page of the entries of inst's trail that q selects,
// the newest first. A query out of range is Invalid, naming the field.
// It reads through the transaction ctx carries, if any.
func (s *Service) Search(ctx context.Context, inst string, q Query) (*Page, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultSearchLimit
	}
	var es []Entry
	if err := s.where(ctx, inst, q).Limit(limit + 1).Find(&es).Error; err != nil {
		return nil, err
	}
	p := &Page{Entries: es}
	if len(es) > limit {
		p.Entries, p.More, p.Next = es[:limit], true, es[limit-1].Seq
	}
	if p.Entries == nil {
		p.Entries = []Entry{}
	}
	return p, nil
}

// csvBatch is how many entries WriteCSV reads at a time.
var csvBatch = 500

// CSVHeader names the columns of WriteCSV, in order.
var CSVHeader = []string{"seq", "date", "actor_id", "actor_kind", "actor_roles", "actor_library", "action", "subject", "what", "details", "via", "request_id", "hash"}

// WriteCSV writes every entry of inst's trail that q selects (from
// q.Before on, whatever q.Limit), the newest first, as CSV with a header
// line (CSVHeader), reading and writing csvBatch entries at a time, and
// returns how many it wrote. Dates are RFC 3339 in UTC, to the
// microsecond. A text cell that starts with =, +, -, @, a tab or a
// carriage return is written after a single quote, so that a spreadsheet
// does not take it for a formula. A query out of range is Invalid and
// writes nothing.
func (s *Service) WriteCSV(ctx context.Context, w io.Writer, inst string, q Query) (int, error) {
	q.Limit = 0
	if err := q.Validate(); err != nil {
		return 0, err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return 0, err
	}
	n := 0
	for {
		var es []Entry
		if err := s.where(ctx, inst, q).Limit(csvBatch).Find(&es).Error; err != nil {
			return n, err
		}
		for _, e := range es {
			row := []string{strconv.FormatInt(e.Seq, 10), e.Time().Format("2006-01-02T15:04:05.000000Z07:00")}
			for _, f := range []string{e.ActorID, e.ActorKind, e.ActorRoles, e.ActorLibrary, e.Action, e.Subject, e.What, e.Details, e.Via, e.RequestID, e.Hash} {
				row = append(row, cell(f))
			}
			if err := cw.Write(row); err != nil {
				return n, err
			}
			n++
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return n, err
		}
		if len(es) < csvBatch {
			return n, nil
		}
		q.Before = es[len(es)-1].Seq
	}
}

// cell guards a text cell against being read as a formula.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// AccessLogPage is one page of a user's access log, the newest first.
type AccessLogPage struct {
	Entries []AccessLogEntry `json:"entries"`
	// More tells that older entries follow; Next is then the cursor
	// (before) of the next page, 0 otherwise.
	More bool  `json:"more"`
	Next int64 `json:"next_cursor,omitempty"`
}

// AccessLog answers one page of the access log of the user primaryID of
// inst, the newest first: the entries of the trail whose subject is that
// user (as the trail spells them, see Query.Subject) and whose actor is
// someone else, a member of staff or a job; never the user's own reads
// and changes. before is the cursor (0 for the newest), limit the page
// size (0 for DefaultSearchLimit, at most MaxSearchLimit). Who acted is
// named (their primary_id) only for the institutions of
// Options.AccessLogNames; otherwise by their kind, roles and library
// only. A job is always named ("system:sis").
func (s *Service) AccessLog(ctx context.Context, inst, primaryID string, before int64, limit int) (*AccessLogPage, error) {
	q := Query{Subject: primaryID, Before: before, Limit: limit}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = DefaultSearchLimit
	}
	var es []Entry
	err := s.where(ctx, inst, q).Where("LOWER(actor_id) <> ?", strings.ToLower(primaryID)).Limit(limit + 1).Find(&es).Error
	if err != nil {
		return nil, err
	}
	p := &AccessLogPage{Entries: make([]AccessLogEntry, 0, min(len(es), limit))}
	if len(es) > limit {
		es, p.More, p.Next = es[:limit], true, es[limit-1].Seq
	}
	named := s.namesActors(inst)
	for _, e := range es {
		a := AccessLogEntry{At: e.Time(), ActorKind: e.ActorKind, Roles: splitRoles(e.ActorRoles), Library: e.ActorLibrary,
			Action: e.Action, What: e.What}
		if named || e.ActorKind == ActorSystem {
			a.Actor = e.ActorID
		}
		p.Entries = append(p.Entries, a)
	}
	return p, nil
}

// FullAccessLog is the whole access log of a user (see AccessLog), the
// newest first, read a page at a time.
func (s *Service) FullAccessLog(ctx context.Context, inst, primaryID string) ([]AccessLogEntry, error) {
	out := []AccessLogEntry{}
	var before int64
	for {
		p, err := s.AccessLog(ctx, inst, primaryID, before, MaxSearchLimit)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Entries...)
		if !p.More {
			return out, nil
		}
		before = p.Next
	}
}

func (s *Service) namesActors(inst string) bool {
	_, ok := s.names[inst]
	return ok
}

func splitRoles(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}
