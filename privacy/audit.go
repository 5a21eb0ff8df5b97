package privacy

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// Actor kinds of an entry.
const (
	ActorStaff  = "staff"
	ActorPatron = "patron"
	// ActorSystem is a job of the kit's (an SIS run, a circulation job) or
	// a host's own call made with no actor.
	ActorSystem = "system"
)

// Entry is one entry of an institution's audit trail: who (actor, their
// kind, roles and library) did what (Action, one of patron's Audit*
// actions, on the part What of the record of the user Subject), when, and
// by which way in (Via, RequestID). Seq numbers the entries of the
// institution from 1; Hash covers the content and PrevHash, the Hash of
// the entry before.
type Entry struct {
	Institution string `gorm:"primaryKey;size:64"`
	Seq         int64  `gorm:"primaryKey;autoIncrement:false"`
	// AtUS is the time in microseconds since 1970 UTC (see Time).
	AtUS         int64  `gorm:"column:at_us"`
	ActorID      string `gorm:"size:255"`
	ActorKind    string `gorm:"size:16"`
	ActorRoles   string `gorm:"size:1024"` // comma-separated
	ActorLibrary string `gorm:"size:255"`
	Action       string `gorm:"size:16"`
	Subject      string `gorm:"size:255"` // the user's primary_id
	What         string `gorm:"size:255"`
	// Details tell more of a change (the fields changed); secrets are
	// only named, never given.
	Details   string `gorm:"type:text"`
	Via       string `gorm:"size:255"`
	RequestID string `gorm:"size:128"`
	PrevHash  string `gorm:"size:64"`
	Hash      string `gorm:"size:64"`
}

// TableName implements gorm's Tabler.
func (Entry) TableName() string { return "pk_privacy_audit" }

// Time is when the entry's event happened, in UTC.
func (e Entry) Time() time.Time { return time.UnixMicro(e.AtUS).UTC() }

// head is the end of an institution's chain, and the checkpoint it starts
// from once pruned. Writers lock it, so that one at a time extends the
// chain of an institution, on any instance.
type head struct {
	Institution    string `gorm:"primaryKey;size:64"`
	Seq            int64
	Hash           string `gorm:"size:64"`
	Sig            string `gorm:"size:64"`
	CheckpointSeq  int64
	CheckpointHash string `gorm:"size:64"`
	CheckpointAtUS int64  `gorm:"column:checkpoint_at_us"`
	CheckpointSig  string `gorm:"size:64"`
}

func (head) TableName() string { return "pk_privacy_heads" }

// Options configure a Service. Zero fields take the documented defaults.
type Options struct {
	// Now is the clock of Prune. Default: time.Now.
	Now func() time.Time
	// Logger receives the entries that could not be written. Default:
	// slog.Default().
	Logger *slog.Logger
	// Key signs the checkpoints Prune leaves and the head of each chain
	// (HMAC-SHA-256). Without it Prune refuses, and an entry appended at
	// the end together with a forged head is not found. Default: none.
	Key []byte
	// MaxBatch is the most entries of concurrent reads written in one
	// transaction, in one statement (on SQLite, one per 40 entries).
	// Default: 500.
	MaxBatch int
	// AccessLogNames are the institutions whose access logs (AccessLog,
	// a person's personal data) name who acted on a person's data, by
	// primary_id. Default: none, the access log tells their kind, roles
	// and library only.
	AccessLogNames []string
}

// Service keeps the audit trail. It is a patron.AuditSink.
type Service struct {
	db       *gorm.DB
	now      func() time.Time
	log      *slog.Logger
	key      []byte
	maxBatch int
	names    map[string]struct{}

	heads   sync.Map // institutions whose chain head is known to exist
	ends    sync.Map // institution → chainEnd, the end this service last wrote
	queue   chan *pending
	pending atomic.Int64 // submitted and not yet written
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

type pending struct {
	e    Entry
	done chan error
}

// NewService returns the audit trail service over db and starts its writer;
// Close stops it.
func NewService(db *gorm.DB, o Options) (*Service, error) {
	if db == nil {
		return nil, errors.New("privacy: NewService needs a *gorm.DB")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBatch < 0 {
		return nil, errors.New("privacy: MaxBatch cannot be negative")
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 500
	}
	s := &Service{db: db, now: o.Now, log: o.Logger, key: slices.Clone(o.Key), maxBatch: o.MaxBatch,
		queue: make(chan *pending, 4*o.MaxBatch), stop: make(chan struct{}), done: make(chan struct{}), names: map[string]struct{}{}}
	for _, inst := range o.AccessLogNames {
		s.names[inst] = struct{}{}
	}
	go s.writer()
	return s, nil
}

// Close stops the writer once the entries it was given are written. Entries
// recorded afterwards are written one by one.
func (s *Service) Close() {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
	})
}

// Audit records e (patron.AuditSink); an entry that cannot be written is
// logged. See Record.
func (s *Service) Audit(ctx context.Context, e patron.AuditEvent) {
	if err := s.Record(ctx, EntryOf(e)); err != nil {
		s.log.Error("privacy: an audit entry could not be written", "institution", e.Institution, "action", e.Action, "subject", e.PrimaryID, "error", err)
	}
}

// RecordAudit records e and tells whether it is kept
// (patron.AuditRecorder): a change whose entry cannot be written fails.
func (s *Service) RecordAudit(ctx context.Context, e patron.AuditEvent) error {
	return s.Record(ctx, EntryOf(e))
}

// RecordAudits records es, all or none (patron.AuditBatchRecorder): within
// a transaction ctx carries in one statement of it, otherwise in one
// transaction of their own.
func (s *Service) RecordAudits(ctx context.Context, es []patron.AuditEvent) error {
	entries := make([]*Entry, len(es))
	for i, e := range es {
		if e.Institution == "" {
			return errors.New("privacy: an audit entry needs an institution")
		}
		en := EntryOf(e)
		entries[i] = &en
	}
	if len(entries) == 0 {
		return nil
	}
	if txctx.In(ctx) {
		return s.append(txctx.DB(ctx, s.db), entries)
	}
	return s.write(ctx, entries)
}

// EntryOf is the entry recording an audit event (without its sequence and
// hashes, which Record gives it).
func EntryOf(e patron.AuditEvent) Entry {
	kind := ActorStaff
	switch {
	case e.Actor.Patron:
		kind = ActorPatron
	case e.Actor.ID == "" || strings.HasPrefix(e.Actor.ID, "system:"):
		kind = ActorSystem
	}
	return Entry{Institution: e.Institution, AtUS: e.At.UnixMicro(), ActorID: e.Actor.ID, ActorKind: kind,
		ActorRoles: strings.Join(e.Origin.Roles, ","), ActorLibrary: e.Origin.Library, Action: e.Action,
		Subject: e.PrimaryID, What: e.What, Details: e.Details, Via: e.Origin.Via, RequestID: e.Origin.RequestID}
}

// Record appends e to its institution's trail, and returns once it is
// committed or with the reason it is not:
//
//   - within a transaction ctx carries (a change, a host's InTx), it is
//     written through that transaction and commits or rolls back with it;
//     the transaction holds the institution's chain head until it ends,
//     and every other writer of that institution's trail waits for it;
//   - otherwise it is written together with the entries of the calls
//     waiting at the same moment, in one statement and one commit.
func (s *Service) Record(ctx context.Context, e Entry) error {
	if e.Institution == "" {
		return errors.New("privacy: an audit entry needs an institution")
	}
	if txctx.In(ctx) {
		return s.append(txctx.DB(ctx, s.db), []*Entry{&e})
	}
	p := &pending{e: e, done: make(chan error, 1)}
	s.pending.Add(1)
	select {
	case s.queue <- p:
	case <-s.stop:
		s.pending.Add(-1)
		return s.write(context.WithoutCancel(ctx), []*Entry{&e})
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writer writes the queued entries, each batch in one transaction.
func (s *Service) writer() {
	defer close(s.done)
	for {
		var first *pending
		select {
		case first = <-s.queue:
		case <-s.stop:
			for {
				select {
				case p := <-s.queue:
					s.flush([]*pending{p})
				default:
					return
				}
			}
		}
		batch := []*pending{first}
	more:
		for len(batch) < s.maxBatch {
			select {
			case p := <-s.queue:
				batch = append(batch, p)
			default:
				break more
			}
		}
		s.flush(batch)
	}
}

func (s *Service) flush(batch []*pending) {
	es := make([]*Entry, len(batch))
	for i, p := range batch {
		es[i] = &p.e
	}
	err := s.write(context.Background(), es)
	for _, p := range batch {
		p.done <- err
		s.pending.Add(-1)
	}
}

// write appends es in a transaction of its own, retried once on a
// deadlock or a busy database.
func (s *Service) write(ctx context.Context, es []*Entry) error {
	if s.db.Dialector.Name() == "postgres" && s.appendFromEnd(ctx, es) {
		return nil
	}
	var err error
	for range 3 {
		err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return s.append(tx, es) })
		if err == nil {
			for _, e := range es { // in order: the last of each institution is its end
				s.ends.Store(e.Institution, chainEnd{e.Seq, e.Hash})
			}
			return nil
		}
	}
	return err
}

// chainEnd is the end of an institution's chain as this service last
// wrote it.
type chainEnd struct {
	seq  int64
	hash string
}

// appendFromEnd writes es, entries of one institution, on PostgreSQL in
// one statement of its own (one round trip, one commit): it extends the
// chain from the end this service last wrote, and moves the head only if
// it is still there, inserting the entries only then. It reports false,
// having written nothing, when it cannot: entries of several
// institutions, no end known, or another writer (an instance, a change's
// transaction) moved the head since; the caller then locks the head.
func (s *Service) appendFromEnd(ctx context.Context, es []*Entry) bool {
	inst := es[0].Institution
	for _, e := range es {
		if e.Institution != inst {
			return false
		}
	}
	v, ok := s.ends.Load(inst)
	if !ok {
		return false
	}
	end := v.(chainEnd)
	seq, hash := end.seq, end.hash
	for _, e := range es {
		clip(e)
		seq++
		e.Seq, e.PrevHash = seq, hash
		e.Hash = entryHash(e.PrevHash, e)
		hash = e.Hash
	}
	var q strings.Builder
	q.WriteString("WITH moved AS (UPDATE pk_privacy_heads SET seq = ?, hash = ?, sig = ? WHERE institution = ? AND seq = ? AND hash = ? RETURNING 1) " +
		"INSERT INTO pk_privacy_audit (" + entryColumns + ") SELECT * FROM (VALUES ")
	// The values of a VALUES list have no column to take their types
	// from: they are cast.
	args := valueRows(&q, es, "(?::text,?::bigint,?::bigint,?::text,?::text,?::text,?::text,?::text,?::text,?::text,?::text,?::text,?::text,?::text,?::text)",
		[]any{seq, hash, s.sign("head", inst, seq, hash, 0), inst, end.seq, end.hash})
	q.WriteString(") AS entries WHERE EXISTS (SELECT 1 FROM moved)")
	res := s.db.WithContext(ctx).Session(&gorm.Session{NewDB: true}).Exec(q.String(), args...)
	if res.Error != nil || res.RowsAffected != int64(len(es)) {
		s.ends.Delete(inst)
		return false
	}
	s.ends.Store(inst, chainEnd{seq, hash})
	return true
}

// append extends the chains of es's institutions through tx: each head is
// locked (created when missing), es get their sequence numbers and hashes,
// and are inserted in one statement (per 40 entries on SQLite; on
// PostgreSQL the same statement moves the head).
func (s *Service) append(tx *gorm.DB, es []*Entry) error {
	insts := map[string]*head{}
	for _, e := range es {
		insts[e.Institution] = nil
	}
	names := make([]string, 0, len(insts))
	for n := range insts {
		names = append(names, n)
	}
	slices.Sort(names) // one order of locks for every writer
	for _, n := range names {
		h, err := s.lockHead(tx, n)
		if err != nil {
			return err
		}
		insts[n] = h
	}
	for _, e := range es {
		h := insts[e.Institution]
		clip(e)
		h.Seq++
		e.Seq, e.PrevHash = h.Seq, h.Hash
		e.Hash = entryHash(e.PrevHash, e)
		h.Hash = e.Hash
	}
	rows := s.maxBatch
	switch tx.Dialector.Name() {
	case "sqlite":
		rows = min(rows, sqliteRows)
	case "postgres":
		if len(names) == 1 && len(es) <= rows {
			// One round trip: the entries and the new head together.
			n := names[0]
			h := insts[n]
			q, args := insertValues(es)
			return tx.Session(&gorm.Session{NewDB: true}).Exec("WITH entries AS ("+q+") UPDATE pk_privacy_heads SET seq = ?, hash = ?, sig = ? WHERE institution = ?",
				append(args, h.Seq, h.Hash, s.sign("head", n, h.Seq, h.Hash, 0), n)...).Error
		}
	}
	for chunk := range slices.Chunk(es, rows) {
		q, args := insertValues(chunk)
		if err := tx.Session(&gorm.Session{NewDB: true}).Exec(q, args...).Error; err != nil {
			return err
		}
	}
	for _, n := range names {
		h := insts[n]
		res := tx.Session(&gorm.Session{NewDB: true}).Model(&head{}).Where("institution = ?", n).
			Updates(map[string]any{"seq": h.Seq, "hash": h.Hash, "sig": s.sign("head", n, h.Seq, h.Hash, 0)})
		if res.Error != nil {
			return res.Error
		}
	}
	return nil
}

// entryColumns are the columns of an entry, in the order of insert's
// values.
const entryColumns = "institution, seq, at_us, actor_id, actor_kind, actor_roles, actor_library, action, subject, what, details, via, request_id, prev_hash, hash"

// insertValues is the statement that inserts es, and its arguments.
func insertValues(es []*Entry) (string, []any) {
	var q strings.Builder
	q.WriteString("INSERT INTO pk_privacy_audit (" + entryColumns + ") VALUES ")
	args := valueRows(&q, es, "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", make([]any, 0, 15*len(es)))
	return q.String(), args
}

// valueRows writes a row of placeholders per entry to q, separated by
// commas, and appends the entries' values, in entryColumns' order, to
// args.
func valueRows(q *strings.Builder, es []*Entry, row string, args []any) []any {
	for i, e := range es {
		if i > 0 {
			q.WriteString(",")
		}
		q.WriteString(row)
		args = append(args, e.Institution, e.Seq, e.AtUS, e.ActorID, e.ActorKind, e.ActorRoles, e.ActorLibrary,
			e.Action, e.Subject, e.What, e.Details, e.Via, e.RequestID, e.PrevHash, e.Hash)
	}
	return args
}

// sqliteRows is the most entries one statement inserts on SQLite, whose
// driver binds the parameters of a statement in a time that grows with
// their square.
const sqliteRows = 40

// lockHead returns the head of inst's chain, locked until tx ends. A head
// is created the first time its institution records an entry, and never
// deleted: once one is found to exist already, the service locks it
// without trying to create it first.
func (s *Service) lockHead(tx *gorm.DB, inst string) (*head, error) {
	db := tx.Session(&gorm.Session{NewDB: true})
	if _, ok := s.heads.Load(inst); ok {
		if h, err := takeHead(db, inst); err != nil || h != nil {
			return h, err
		}
	}
	res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&head{Institution: inst, Sig: s.sign("head", inst, 0, "", 0)})
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 { // it was there, committed: not one this transaction may roll back
		s.heads.Store(inst, true)
	}
	h, err := takeHead(db, inst)
	if err == nil && h == nil {
		err = fmt.Errorf("privacy: the head of the audit trail of %s is missing", inst)
	}
	return h, err
}

// takeHead reads and locks inst's head; nil when there is none.
func takeHead(db *gorm.DB, inst string) (*head, error) {
	q := db.Where("institution = ?", inst)
	if db.Dialector.Name() != "sqlite" { // SQLite lets one writer in already
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var hs []head
	if err := q.Limit(1).Find(&hs).Error; err != nil || len(hs) == 0 {
		return nil, err
	}
	return &hs[0], nil
}

// limits are the column sizes, in characters, an entry is clipped to.
var limits = []struct {
	f func(*Entry) *string
	n int
}{
	{func(e *Entry) *string { return &e.ActorID }, 255},
	{func(e *Entry) *string { return &e.ActorRoles }, 1024},
	{func(e *Entry) *string { return &e.ActorLibrary }, 255},
	{func(e *Entry) *string { return &e.Action }, 16},
	{func(e *Entry) *string { return &e.Subject }, 255},
	{func(e *Entry) *string { return &e.What }, 255},
	{func(e *Entry) *string { return &e.Via }, 255},
	{func(e *Entry) *string { return &e.RequestID }, 128},
}

// clip makes the entry's text fit its columns, as valid UTF-8, so that
// what is stored is what was hashed.
func clip(e *Entry) {
	for _, l := range limits {
		p := l.f(e)
		*p = strings.ToValidUTF8(*p, "\uFFFD")
		if utf8.RuneCountInString(*p) > l.n {
			*p = string([]rune(*p)[:l.n])
		}
	}
	e.Details = strings.ToValidUTF8(e.Details, "\uFFFD")
}

// entryHash is the hex SHA-256 of prev and of e's content, each field
// length-prefixed.
func entryHash(prev string, e *Entry) string {
	h := sha256.New()
	w := fieldWriter{h: h}
	w.str("patronkit-audit-v1")
	w.str(prev)
	w.str(e.Institution)
	w.num(e.Seq)
	w.num(e.AtUS)
	for _, f := range []string{e.ActorID, e.ActorKind, e.ActorRoles, e.ActorLibrary, e.Action, e.Subject, e.What, e.Details, e.Via, e.RequestID} {
		w.str(f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type fieldWriter struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
}

func (w *fieldWriter) str(s string) {
	n := binary.PutUvarint(w.buf[:], uint64(len(s)))
	w.h.Write(w.buf[:n])
	io.WriteString(w.h, s)
}

func (w *fieldWriter) num(v int64) {
	binary.BigEndian.PutUint64(w.buf[:8], uint64(v))
	w.h.Write(w.buf[:8])
}

// sign is the HMAC of a head or checkpoint under the key, "" without one.
func (s *Service) sign(kind, inst string, seq int64, hash string, at int64) string {
	if len(s.key) == 0 {
		return ""
	}
	m := hmac.New(sha256.New, s.key)
	w := fieldWriter{h: m}
	w.str(kind)
	w.str(inst)
	w.num(seq)
	w.str(hash)
	w.num(at)
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Service) signed(sig, kind, inst string, seq int64, hash string, at int64) bool {
	want := s.sign(kind, inst, seq, hash, at)
	return hmac.Equal([]byte(sig), []byte(want))
}

// Reasons Verify gives for a broken chain.
const (
	// Altered: the entry's content, or its link to the entry before, is
	// not what was written.
	Altered = "altered"
	// Inserted: an entry the kit did not write (beyond the end of the
	// chain, or before its checkpoint).
	Inserted = "inserted"
	// Removed: entries are missing at Seq (a gap, or the end of the
	// chain).
	Removed = "removed"
)

// Break is the first place an institution's chain is broken.
type Break struct {
	Institution string
	// Seq is the entry concerned; for Removed, the first one missing.
	Seq    int64
	Reason string // Altered, Inserted or Removed
	Detail string
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit trail of %s %s at entry %d: %s", b.Institution, b.Reason, b.Seq, b.Detail)
}

// verifyBatch is how many entries Verify reads at a time.
const verifyBatch = 5000

// Verify walks the chain of inst, from its checkpoint when it was pruned,
// and returns the first entry altered, inserted or removed, or nil when
// the chain is whole. A checkpoint, and with a key the head, whose
// signature does not hold is a Break too. It reads in batches, without
// holding the chain: entries appended meanwhile are checked up to the head
// read first.
func (s *Service) Verify(ctx context.Context, inst string) (*Break, error) {
	db := s.db.WithContext(txctx.Without(ctx))
	var heads []head
	if err := db.Where("institution = ?", inst).Limit(1).Find(&heads).Error; err != nil {
		return nil, err
	}
	var h head
	if len(heads) > 0 {
		h = heads[0]
	}
	if len(s.key) > 0 && len(heads) > 0 && !s.signed(h.Sig, "head", inst, h.Seq, h.Hash, 0) {
		return &Break{Institution: inst, Seq: h.Seq, Reason: Altered, Detail: "the end of the chain is not the one the kit signed"}, nil
	}
	expect, prev := int64(1), ""
	if h.CheckpointSeq > 0 || h.CheckpointSig != "" {
		if len(s.key) == 0 {
			return nil, errors.New("privacy: the trail was pruned; its checkpoint cannot be checked without the key")
		}
		if !s.signed(h.CheckpointSig, "checkpoint", inst, h.CheckpointSeq, h.CheckpointHash, h.CheckpointAtUS) {
			return &Break{Institution: inst, Seq: h.CheckpointSeq, Reason: Altered, Detail: "the checkpoint is not one the kit signed"}, nil
		}
		expect, prev = h.CheckpointSeq+1, h.CheckpointHash
	}
	var below []int64
	if err := db.Model(&Entry{}).Where("institution = ? AND seq < ?", inst, expect).Order("seq").Limit(1).Pluck("seq", &below).Error; err != nil {
		return nil, err
	}
	if len(below) > 0 {
		return &Break{Institution: inst, Seq: below[0], Reason: Inserted, Detail: "an entry before the checkpoint"}, nil
	}
	last := expect - 1
	for {
		var es []Entry
		if err := db.Where("institution = ? AND seq > ? AND seq <= ?", inst, last, h.Seq).Order("seq").Limit(verifyBatch).Find(&es).Error; err != nil {
			return nil, err
		}
		var forgotten map[int64]redaction // read when an entry of the batch does not match its hash
		for i := range es {
			e := &es[i]
			if e.Seq > expect {
				return &Break{Institution: inst, Seq: expect, Reason: Removed, Detail: fmt.Sprintf("entries %d to %d are missing", expect, e.Seq-1)}, nil
			}
			if got := entryHash(e.PrevHash, e); got != e.Hash {
				// A forgotten entry keeps the hash it was written
				// with, the chain's, beside a redaction signed for
				// what it holds now (see Forget).
				if forgotten == nil {
					var err error
					if forgotten, err = redactionsOf(db, inst, e.Seq, es[len(es)-1].Seq); err != nil {
						return nil, err
					}
				}
				r, ok := forgotten[e.Seq]
				if ok && len(s.key) == 0 {
					return nil, errors.New("privacy: the trail has forgotten entries; they cannot be checked without the key")
				}
				if !ok || !s.redactionHolds(r, e, got) {
					return &Break{Institution: inst, Seq: e.Seq, Reason: Altered, Detail: "its content does not match its hash"}, nil
				}
			}
			switch {
			case e.PrevHash != prev:
				return &Break{Institution: inst, Seq: e.Seq, Reason: Altered, Detail: "it does not follow the entry before"}, nil
			}
			prev, expect, last = e.Hash, e.Seq+1, e.Seq
		}
		if len(es) < verifyBatch {
			break
		}
	}
	if expect <= h.Seq {
		return &Break{Institution: inst, Seq: expect, Reason: Removed, Detail: fmt.Sprintf("entries %d to %d are missing", expect, h.Seq)}, nil
	}
	if prev != h.Hash {
		return &Break{Institution: inst, Seq: h.Seq, Reason: Altered, Detail: "the last entry is not the end of the chain"}, nil
	}
	// An entry beyond the end of the chain was not written by the kit.
	// The last entry is read before the end: an entry written meanwhile
	// moved the end with it.
	var lastSeq []int64
	if err := db.Model(&Entry{}).Where("institution = ?", inst).Order("seq DESC").Limit(1).Pluck("seq", &lastSeq).Error; err != nil {
		return nil, err
	}
	var now []head
	if err := db.Where("institution = ?", inst).Limit(1).Find(&now).Error; err != nil {
		return nil, err
	}
	end := h.Seq
	if len(now) > 0 {
		end = max(end, now[0].Seq)
	}
	if len(lastSeq) > 0 && lastSeq[0] > end {
		var beyond []int64
		if err := db.Model(&Entry{}).Where("institution = ? AND seq > ?", inst, end).Order("seq").Limit(1).Pluck("seq", &beyond).Error; err != nil {
			return nil, err
		}
		if len(beyond) > 0 {
			return &Break{Institution: inst, Seq: beyond[0], Reason: Inserted, Detail: "an entry beyond the end of the chain"}, nil
		}
	}
	return nil, nil
}

// Prune drops the entries of inst's trail older than before, after
// verifying the whole chain (a broken chain is returned as the error,
// and nothing is dropped), and leaves a checkpoint: the sequence number
// and hash of the last entry dropped, signed with the key, from which
// Verify goes on. It needs the key of Options: a checkpoint anyone could
// write would let anyone drop the start of the trail. It returns how many
// entries it dropped.
func (s *Service) Prune(ctx context.Context, inst string, before time.Time) (int64, error) {
	if len(s.key) == 0 {
		return 0, errors.New("privacy: pruning the audit trail needs the checkpoint key")
	}
	ctx = txctx.Without(ctx)
	if b, err := s.Verify(ctx, inst); err != nil {
		return 0, err
	} else if b != nil {
		return 0, b
	}
	var dropped int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		h, err := s.lockHead(tx, inst)
		if err != nil {
			return err
		}
		var last []Entry
		err = tx.Session(&gorm.Session{NewDB: true}).Where("institution = ? AND seq <= ? AND at_us < ?", inst, h.Seq, before.UnixMicro()).
			Order("seq DESC").Limit(1).Find(&last).Error
		if err != nil || len(last) == 0 {
			return err
		}
		cp := last[0]
		res := tx.Session(&gorm.Session{NewDB: true}).Where("institution = ? AND seq <= ?", inst, cp.Seq).Delete(&Entry{})
		if res.Error != nil {
			return res.Error
		}
		dropped = res.RowsAffected
		if err := tx.Session(&gorm.Session{NewDB: true}).Where("institution = ? AND seq <= ?", inst, cp.Seq).Delete(&redaction{}).Error; err != nil {
			return err
		}
		// A forgotten entry's hash is the one it was written with:
		// the chain goes on from it.
		return tx.Session(&gorm.Session{NewDB: true}).Model(&head{}).Where("institution = ?", inst).Updates(map[string]any{
			"checkpoint_seq": cp.Seq, "checkpoint_hash": cp.Hash, "checkpoint_at_us": cp.AtUS,
			"checkpoint_sig": s.sign("checkpoint", inst, cp.Seq, cp.Hash, cp.AtUS),
		}).Error
	})
	return dropped, err
}

// Institutions lists the institutions that have a trail.
func (s *Service) Institutions(ctx context.Context) ([]string, error) {
	var names []string
	err := s.db.WithContext(txctx.Without(ctx)).Model(&head{}).Order("institution").Pluck("institution", &names).Error
	return names, err
}

// Entries returns up to limit entries of inst's trail after sequence
// number after, in order: for readers of the trail.
func (s *Service) Entries(ctx context.Context, inst string, after int64, limit int) ([]Entry, error) {
	var es []Entry
	err := txctx.DB(ctx, s.db).Where("institution = ? AND seq > ?", inst, after).Order("seq").Limit(limit).Find(&es).Error
	return es, err
}
