package privacy

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/txctx"
)

// Forgotten is what the details of a forgotten entry say in place of what
// they held (the fields changed, with their old and new values).
const Forgotten = "[forgotten]"

// ErrForgetNeedsKey is Forget's answer when the service has no key
// (Options.Key, patronkit.Config.AuditKey): without it the kit cannot
// take a user's name off the trail and keep the trail verifiable, so a
// purge or an erasure that must forget the user cannot be done.
var ErrForgetNeedsKey = errors.New("privacy: forgetting a user on the audit trail needs the audit key")

// redaction is the signed record that an entry of the trail was forgotten:
// the hash the entry was written with (the chain's, which stays in the
// entry's hash column and in the next entry's prev_hash) and the hash of
// its content as Forget left it, signed with the key together with the
// institution and sequence number.
type redaction struct {
	Institution  string `gorm:"primaryKey;size:64"`
	Seq          int64  `gorm:"primaryKey;autoIncrement:false"`
	Hash         string `gorm:"size:64"`
	RedactedHash string `gorm:"size:64"`
	AtUS         int64  `gorm:"column:at_us"`
	Sig          string `gorm:"size:64"`
}

func (redaction) TableName() string { return "pk_privacy_redactions" }

// Tombstone is a replacement for Forget that names no one: "erased:"
// followed by 32 random hexadecimal digits, different every time. Give a
// pseudonym instead (a keyed hash of the user) where the entries of one
// forgotten user must still be told apart from those of another.
func Tombstone() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "erased:" + hex.EncodeToString(b[:])
}

// forgetBatch is how many entries Forget reads and changes at a time.
const forgetBatch = 500

// Forget takes the user primaryID off inst's trail and returns how many
// entries it changed: every entry whose subject is that user (in any
// case), and every entry the user made as a patron, names replacement in
// their place (a pseudonym, or a Tombstone), and its details, which may
// hold the user's data (old and new values of their fields), are replaced
// by Forgotten. The rest stays: the time, the action, what part of the
// record, the actor's kind, roles and library, the way in and request id,
// and members of staff and jobs that acted (the trail keeps who of the
// library did what, even on a forgotten user).
//
// It works within the transaction ctx carries (a purge's, an erasure's),
// or in one of its own: all the user's entries are forgotten, or none.
// It holds the head of inst's chain until that transaction ends.
//
// The chain stays verifiable. An entry's hash is the chain's (the next
// entry's prev_hash covers it), so a forgotten entry keeps the hash it was
// written with, and Forget records beside it a redaction signed with the
// key (HMAC-SHA-256 over the institution, the sequence number, that hash
// and the hash of the forgotten content). Verify accepts an entry whose
// content does not match its hash only with a valid redaction for exactly
// that content, and goes on along the chain from the hash it was written
// with: whoever changes a forgotten entry afterwards, or "forgets" an
// entry without the key (changing its subject, copying a redaction from
// another entry), is found. Entries written by every version of the kit
// are forgotten alike, since nothing of how they were hashed changes.
// This needs the key: without it Forget refuses with ErrForgetNeedsKey and
// the kit cannot take names off its trail.
//
// What the hash an entry keeps cannot hide: someone holding a forgotten
// entry who guesses all of what it held (its subject, and its details if
// it had any) can check the guess against that hash. A forgotten entry
// names no one, but it is pseudonymous rather than anonymous towards who
// already knows whom to look for.
//
// An entry whose content does not match its hash (altered behind the
// kit's back) is not forgotten: Forget answers the Break and changes
// nothing, so that it never signs what the kit did not write. A
// replacement that is empty, longer than 255 characters, not UTF-8 text,
// or the user's own primary_id is Invalid.
func (s *Service) Forget(ctx context.Context, inst, primaryID, replacement string) (int64, error) {
	if len(s.key) == 0 {
		return 0, ErrForgetNeedsKey
	}
	var fields []fault.FieldError
	if inst == "" || primaryID == "" {
		fields = append(fields, fault.FieldError{Field: "primary_id", Code: "required", Message: "the institution and the user are needed"})
	}
	switch {
	case replacement == "" || !utf8.ValidString(replacement) || strings.ContainsFunc(replacement, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		fields = append(fields, fault.FieldError{Field: "replacement", Code: "bad_format", Message: "must be text without control characters"})
	case utf8.RuneCountInString(replacement) > 255:
		fields = append(fields, fault.FieldError{Field: "replacement", Code: "too_long", Message: "must be at most 255 characters"})
	case strings.ToLower(replacement) == strings.ToLower(primaryID):
		fields = append(fields, fault.FieldError{Field: "replacement", Code: "out_of_range", Message: "must not be the user's primary_id"})
	}
	if len(fields) > 0 {
		return 0, &fault.Error{Kind: fault.Invalid, Detail: "the user cannot be forgotten so", Fields: fields}
	}
	var n int64
	err := txctx.Transaction(ctx, s.db, func(ctx context.Context, tx *gorm.DB) error {
		var err error
		n, err = s.forget(tx, inst, primaryID, replacement)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (s *Service) forget(tx *gorm.DB, inst, primaryID, replacement string) (int64, error) {
	who := strings.ToLower(primaryID)
	n, err := s.forgetMany(tx, inst, map[string]string{who: replacement})
	return n[who], err
}

// forgetMany is Forget for several users at once through tx: by, keyed
// by primary_id in lower case, names who the trail names in each one's
// place. It reads the trail once for all of them and answers how many
// entries it forgot of each.
func (s *Service) forgetMany(tx *gorm.DB, inst string, by map[string]string) (map[string]int64, error) {
	db := func() *gorm.DB { return tx.Session(&gorm.Session{NewDB: true}) }
	total := make(map[string]int64, len(by))
	h, err := takeHead(db(), inst) // one at a time with writers and Prune
	if err != nil || h == nil || len(by) == 0 {
		return total, err
	}
	whos := make([]string, 0, len(by))
	for w := range by {
		whos = append(whos, w)
	}
	slices.Sort(whos)
	subject, actor := "LOWER(subject) IN ?", "LOWER(actor_id) IN ?"
	if tx.Dialector.Name() == "mysql" { // its collation ignores case, and keeps the indexes in use
		subject, actor = "subject IN ?", "actor_id IN ?"
	}
	at := s.now().UnixMicro()
	// A few users at a time, every entry about or by them at once,
	// through the indexes by user and by actor: ordered by sequence
	// number and limited, the planner would rather walk the whole trail.
	for part := range slices.Chunk(whos, forgetUsers) {
		var about, byThem []Entry
		if err := db().Where("institution = ? AND seq <= ? AND "+subject, inst, h.Seq, part).Find(&about).Error; err != nil {
			return nil, err
		}
		if err := db().Where("institution = ? AND seq <= ? AND actor_kind = ? AND "+actor, inst, h.Seq, ActorPatron, part).Find(&byThem).Error; err != nil {
			return nil, err
		}
		es := append(about, byThem...)
		slices.SortFunc(es, func(a, b Entry) int { return cmp.Compare(a.Seq, b.Seq) })
		es = slices.CompactFunc(es, func(a, b Entry) bool { return a.Seq == b.Seq })
		for batch := range slices.Chunk(es, forgetBatch) {
			if err := s.forgetBatch(db, inst, batch, by, total, at); err != nil {
				return nil, err
			}
		}
	}
	return total, nil
}

// forgetUsers is how many users forgetMany reads the entries of at once.
const forgetUsers = 500

// forgetBatch forgets the entries es (as read, before any change) that
// are about or by one of the users of by (see forgetMany), counting them
// per user in total (an entry about one and by another counts for both).
func (s *Service) forgetBatch(db func() *gorm.DB, inst string, es []Entry, by map[string]string, total map[string]int64, at int64) error {
	// The redactions of the entries forgotten before (whose content no
	// longer matches their hash), to check them by.
	var seqs []int64
	for i := range es {
		if entryHash(es[i].PrevHash, &es[i]) != es[i].Hash {
			seqs = append(seqs, es[i].Seq)
		}
	}
	known := map[int64]redaction{}
	if len(seqs) > 0 {
		var rs []redaction
		if err := db().Where("institution = ? AND seq IN ?", inst, seqs).Find(&rs).Error; err != nil {
			return err
		}
		for _, r := range rs {
			known[r.Seq] = r
		}
	}
	var subjects, actors, details []int64
	subjectTo, actorTo := map[string]string{}, map[string]string{}
	out := make([]redaction, 0, len(es))
	for i := range es {
		e := es[i]
		subject, actor := strings.ToLower(e.Subject), ""
		if e.ActorKind == ActorPatron {
			actor = strings.ToLower(e.ActorID)
		}
		subjectRepl, isSubject := by[subject]
		actorRepl, isActor := by[actor]
		if !isSubject && !isActor { // the database's collation matched another spelling
			continue
		}
		if b := s.checkEntry(&e, known); b != nil {
			return b
		}
		if isSubject {
			e.Subject = subjectRepl
			subjects = append(subjects, e.Seq)
			subjectTo[subject] = subjectRepl
			total[subject]++
		}
		if isActor {
			e.ActorID = actorRepl
			actors = append(actors, e.Seq)
			actorTo[actor] = actorRepl
			if !isSubject || actor != subject {
				total[actor]++
			}
		}
		if e.Details != "" && e.Details != Forgotten {
			e.Details = Forgotten
			details = append(details, e.Seq)
		}
		r := redaction{Institution: inst, Seq: e.Seq, Hash: e.Hash, RedactedHash: entryHash(e.PrevHash, &e), AtUS: at}
		r.Sig = s.signRedaction(r)
		out = append(out, r)
	}
	for _, u := range []struct {
		col  string
		to   map[string]string
		seqs []int64
	}{{"subject", subjectTo, subjects}, {"actor_id", actorTo, actors}, {"details", nil, details}} {
		if len(u.seqs) == 0 {
			continue
		}
		// Each name becomes its own replacement: one statement whatever
		// the number of users.
		set, args := "?", []any{Forgotten}
		if u.to != nil {
			var b strings.Builder
			args = args[:0]
			b.WriteString("CASE LOWER(" + u.col + ")")
			for from, to := range u.to {
				b.WriteString(" WHEN ? THEN ?")
				args = append(args, from, to)
			}
			b.WriteString(" ELSE " + u.col + " END")
			set = b.String()
		}
		args = append(args, inst, u.seqs)
		if err := db().Exec("UPDATE "+Entry{}.TableName()+" SET "+u.col+" = "+set+" WHERE institution = ? AND seq IN ?", args...).Error; err != nil {
			return err
		}
	}
	if len(out) == 0 {
		return nil
	}
	return db().Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "institution"}, {Name: "seq"}},
		DoUpdates: clause.AssignmentColumns([]string{"hash", "redacted_hash", "at_us", "sig"}),
	}).CreateInBatches(out, sqliteRows).Error
}

// checkEntry is nil when e holds what the kit wrote, or what a signed
// redaction of it left; otherwise the Break Verify would report.
func (s *Service) checkEntry(e *Entry, known map[int64]redaction) *Break {
	got := entryHash(e.PrevHash, e)
	if got == e.Hash {
		return nil
	}
	if r, ok := known[e.Seq]; ok && s.redactionHolds(r, e, got) {
		return nil
	}
	return &Break{Institution: e.Institution, Seq: e.Seq, Reason: Altered, Detail: "its content does not match its hash"}
}

// redactionHolds tells whether r, signed with the key, is the redaction of
// e whose content hashes to got.
func (s *Service) redactionHolds(r redaction, e *Entry, got string) bool {
	return len(s.key) > 0 && r.Hash == e.Hash && r.RedactedHash == got && s.signed(r.Sig, "redaction", r.Institution, r.Seq, r.Hash+":"+r.RedactedHash, r.AtUS)
}

func (s *Service) signRedaction(r redaction) string {
	return s.sign("redaction", r.Institution, r.Seq, r.Hash+":"+r.RedactedHash, r.AtUS)
}

// redactionsOf reads the redactions of inst's entries from seq from to to.
func redactionsOf(db *gorm.DB, inst string, from, to int64) (map[int64]redaction, error) {
	var rs []redaction
	if err := db.Where("institution = ? AND seq >= ? AND seq <= ?", inst, from, to).Find(&rs).Error; err != nil {
		return nil, fmt.Errorf("privacy: reading the forgotten entries: %w", err)
	}
	m := make(map[int64]redaction, len(rs))
	for _, r := range rs {
		m[r.Seq] = r
	}
	return m, nil
}
