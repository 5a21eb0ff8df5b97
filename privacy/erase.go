package privacy

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
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
//     (Retention.AnonymizeUser), and their loan history choice goes;
//   - their record goes with its segments, attachments, PIN and sign-in
//     state (patron.Service.DeleteCounted), once every deletion guard
//     agreed: open loans, active requests, a balance, a legal hold, the
//     host's own; an objection is Refused with every reason, and nothing
//     changes;
//   - their entries on the audit trail lose their name, a tombstone in
//     its place (Service.Forget), and an entry records the SHA-256 of the
//     report (Service.RecordErasure);
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
	id, spelled, err := e.patrons.ID(ctx, inst, primaryID)
	if err != nil {
		return nil, "", err
	}
	if len(e.trail.key) == 0 {
		return nil, "", errNoAuditKey
	}
	var proof *ErasureProof
	tomb := Tombstone()
	err = txctx.Transaction(ctx, e.db, func(ctx context.Context, tx *gorm.DB) error {
		counts, err := e.retention.AnonymizeUser(ctx, inst, id)
		if err != nil {
			return err
		}
		removed, err := e.patrons.DeleteCounted(ctx, inst, spelled)
		if err != nil {
			return err
		}
		res := tx.Where("institution = ? AND user_id = ?", inst, id).Delete(&historyChoice{})
		if res.Error != nil {
			return res.Error
		}
		removed = append(removed, patron.RemovedRows{Table: historyChoice{}.TableName(), Rows: res.RowsAffected})
		forgotten, err := e.trail.Forget(ctx, inst, spelled, tomb)
		if err != nil {
			return err
		}
		report := ErasureReport{Institution: inst, Subject: tomb, At: e.now().UTC(), Forgotten: forgotten}
		for _, r := range removed {
			report.Tables = append(report.Tables, ErasureCount{Table: r.Table, Removed: r.Rows})
		}
		for _, t := range anonymizedTables {
			report.Tables = append(report.Tables, ErasureCount{Table: t.table, Anonymized: t.n(counts)})
		}
		// The reports of earlier purges (a dry run's, a kept user's)
		// name them by the tombstone from now on.
		res = tx.Exec("UPDATE pk_privacy_purge_outcomes SET primary_id = ? WHERE LOWER(primary_id) = LOWER(?) AND run_id IN (SELECT id FROM pk_privacy_purge_runs WHERE institution = ?)",
			tomb, spelled, inst)
		if res.Error != nil {
			return res.Error
		}
		report.Tables = append(report.Tables, ErasureCount{Table: PurgeOutcome{}.TableName(), Anonymized: res.RowsAffected})
		proof, err = e.trail.RecordErasure(ctx, inst, tomb, report)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return proof, tomb, nil
}
