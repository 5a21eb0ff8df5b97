package privacy

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/tally"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// Eraser erases one user now, on request: the right to erasure. It is
// safe for concurrent use.
type Eraser struct {
	db        *gorm.DB
	patrons   *patron.Service
	trail     *Service
	retention *Retention
	now       func() time.Time
}

// NewEraser returns an Eraser over the kit's services; now stamps the
// reports (default time.Now).
func NewEraser(db *gorm.DB, patrons *patron.Service, trail *Service, retention *Retention, now func() time.Time) (*Eraser, error) {
	if db == nil || patrons == nil || trail == nil || retention == nil {
		return nil, errors.New("privacy: NewEraser needs a database, the patron service, the audit trail and the retention")
	}
	if now == nil {
		now = time.Now
	}
	return &Eraser{db: db, patrons: patrons, trail: trail, retention: retention, now: now}, nil
}

// anonymizedTables name the tables of Counts, in a report.
var anonymizedTables = []struct {
	table string
	n     func(Counts) int64
}{
	{"pk_circ_loans", func(c Counts) int64 { return c.Loans }},
	{"pk_circ_fees", func(c Counts) int64 { return c.Fees }},
	{"pk_circ_requests", func(c Counts) int64 { return c.Requests }},
	{"pk_circ_notices", func(c Counts) int64 { return c.Notices }},
	{"pk_sis_outcomes", func(c Counts) int64 { return c.SISOutcomes }},
}

// Erase erases the user primaryID of inst, in one transaction (the one
// ctx carries, or its own), and returns the proof of erasure:
//
//   - their closed loans, fees, requests and notices and their SIS
//     outcomes are anonymized whatever the retention rules
//     (Retention.AnonymizeUser; the counts are in the report rather
//     than an entry of their own), and their loan history choice goes;
//   - their record goes with its segments, attachments, PIN and sign-in
//     state (patron.Service.DeleteCounted), once every deletion guard
//     agreed: open loans, active requests, a balance, a legal hold, the
//     host's own; an objection is Refused with every reason, and nothing
//     changes;
//   - their entries on the audit trail lose their name, a tombstone in
//     its place (Service.Forget), and an entry records the deletion with
//     the SHA-256 of the report (Service.RecordErasure), under the
//     tombstone;
//   - the reports of earlier purges that named them (a dry run's, one
//     that kept them) name them by the tombstone instead.
//
// The report counts, per table, the rows removed and anonymized. Erasing
// needs the audit key (Config.AuditKey): without it the trail cannot
// forget, and Erase refuses before changing anything.
func (e *Eraser) Erase(ctx context.Context, inst, primaryID string) (*ErasureProof, error) {
	proof, _, err := e.erase(ctx, inst, primaryID)
	return proof, err
}

// errNoAuditKey refuses an erasure without the audit key.
var errNoAuditKey = &fault.Error{Kind: fault.Refused, Detail: "erasing a user needs the audit key (Config.AuditKey), so that the audit trail can forget their name"}

// erase is Erase, which also answers who the trail names in the user's
// place (the tombstone).
func (e *Eraser) erase(ctx context.Context, inst, primaryID string) (*ErasureProof, string, error) {
	id, _, err := e.patrons.ID(ctx, inst, primaryID)
	if err != nil {
		return nil, "", err
	}
	if len(e.trail.key) == 0 {
		return nil, "", errNoAuditKey
	}
	var done erasedUser
	err = txctx.Transaction(ctx, e.db, func(ctx context.Context, tx *gorm.DB) error {
		d, err := e.patrons.PrepareDeletion(ctx, inst, []string{id})
		if err != nil {
			return err
		}
		if len(d.Users) == 0 {
			return &fault.Error{Kind: fault.NotFound, Detail: "the user was deleted meanwhile"}
		}
		if err := d.Refusal(id); err != nil {
			return err
		}
		out, err := e.eraseHeld(ctx, tx, inst, d, d.Users, "")
		done = out[id]
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return done.proof, done.tomb, nil
}

// erasedUser is what erasing a user left: who the trail names in their
// place, and the proof.
type erasedUser struct {
	tomb  string
	proof *ErasureProof
}

// eraseHeld erases users, held by the deletion d without objection, in
// the transaction ctx carries (tx), in a few statements whatever their
// number, and answers each one's tombstone and proof by user id. A purge
// names its own run (purgeRun), whose outcomes cannot name them yet.
func (e *Eraser) eraseHeld(ctx context.Context, tx *gorm.DB, inst string, d *patron.Deletion, users []*patron.User, purgeRun string) (map[string]erasedUser, error) {
	refs := make([]userRef, len(users))
	ids := make([]string, len(users))
	tombs := make(map[string]string, len(users)) // by primary_id in lower case
	for i, u := range users {
		refs[i], ids[i] = userRef{ID: u.ID, PrimaryID: u.PrimaryID}, u.ID
		tombs[strings.ToLower(u.PrimaryID)] = Tombstone()
	}
	counts, err := e.retention.anonymizeUsers(ctx, tx, inst, refs, false)
	if err != nil {
		return nil, err
	}
	// The proof of erasure records each deletion, under the tombstone:
	// an entry naming the user, to be forgotten at once, would be
	// written for nothing.
	d.Unrecorded = true
	removed, err := d.Delete(ctx, ids...)
	if err != nil {
		return nil, err
	}
	choices, err := tally.By(tx, "SELECT user_id AS k, COUNT(*) AS n FROM "+historyChoice{}.TableName()+" WHERE institution = ? AND user_id IN ? GROUP BY user_id", inst, ids)
	if err != nil {
		return nil, err
	}
	if len(choices) > 0 {
		if err := tx.Where("institution = ? AND user_id IN ?", inst, ids).Delete(&historyChoice{}).Error; err != nil {
			return nil, err
		}
	}
	forgotten, err := e.trail.forgetMany(tx, inst, tombs)
	if err != nil {
		return nil, err
	}
	// The reports of earlier purges (a dry run's, a kept user's) name
	// them by their tombstones from now on.
	renamed, err := e.renameOutcomes(tx, inst, tombs, purgeRun)
	if err != nil {
		return nil, err
	}
	at := e.now().UTC()
	us := make([]erased, len(users))
	for i, u := range users {
		who := strings.ToLower(u.PrimaryID)
		report := ErasureReport{Institution: inst, Subject: tombs[who], At: at, Forgotten: forgotten[who]}
		for _, r := range removed[u.ID] {
			report.Tables = append(report.Tables, ErasureCount{Table: r.Table, Removed: r.Rows})
		}
		report.Tables = append(report.Tables, ErasureCount{Table: historyChoice{}.TableName(), Removed: choices[u.ID]})
		for _, t := range anonymizedTables {
			report.Tables = append(report.Tables, ErasureCount{Table: t.table, Anonymized: t.n(counts[u.ID])})
		}
		report.Tables = append(report.Tables, ErasureCount{Table: PurgeOutcome{}.TableName(), Anonymized: renamed[who]})
		us[i] = erased{replacement: tombs[who], report: report}
	}
	proofs, err := e.trail.recordErasures(ctx, inst, us)
	if err != nil {
		return nil, err
	}
	out := make(map[string]erasedUser, len(users))
	for i, u := range users {
		out[u.ID] = erasedUser{tomb: us[i].replacement, proof: proofs[i]}
	}
	return out, nil
}

// renameOutcomes gives the outcomes of inst's purges but the run except
// that name the users of tombs (by primary_id in lower case) their
// tombstones instead, in one statement, and answers how many of each.
func (e *Eraser) renameOutcomes(tx *gorm.DB, inst string, tombs map[string]string, except string) (map[string]int64, error) {
	var earlier []string
	if err := tx.Raw("SELECT id FROM pk_privacy_purge_runs WHERE institution = ? AND id <> ?", inst, except).Scan(&earlier).Error; err != nil || len(earlier) == 0 {
		return map[string]int64{}, err
	}
	whos := make([]string, 0, len(tombs))
	for w := range tombs {
		whos = append(whos, w)
	}
	const runs = "run_id IN ?"
	key := "LOWER(primary_id)" // as indexed; MySQL's collation ignores case
	if tx.Dialector.Name() == "mysql" {
		key = "primary_id"
	}
	n, err := tally.By(tx, "SELECT LOWER(primary_id) AS k, COUNT(*) AS n FROM "+PurgeOutcome{}.TableName()+" WHERE "+key+" IN ? AND "+runs+" GROUP BY LOWER(primary_id)", whos, earlier)
	if err != nil || len(n) == 0 {
		return n, err
	}
	var b strings.Builder
	var args []any
	b.WriteString("CASE LOWER(primary_id)")
	for w := range n {
		b.WriteString(" WHEN ? THEN ?")
		args = append(args, w, tombs[w])
	}
	b.WriteString(" ELSE primary_id END")
	args = append(args, whos, earlier)
	return n, tx.Exec("UPDATE "+PurgeOutcome{}.TableName()+" SET primary_id = "+b.String()+" WHERE "+key+" IN ? AND "+runs, args...).Error
}
