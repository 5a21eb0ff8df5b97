package privacy

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// PurgeOptions say which users a purge removes. The zero value purges
// every user whose purge date has passed and who owes nothing.
type PurgeOptions struct {
	// GraceDays a user is kept after their purge date: a user is purged
	// once their purge date plus GraceDays is before today (dates in
	// UTC). A user without a purge date is never purged. Default: 0.
	GraceDays int
	// RecordTypes, when given, limit the purge to users of these record
	// types (PUBLIC, STAFF, CONTACT). Default: every record type.
	RecordTypes []string
	// UserGroups, when given, limit the purge to users of these user
	// groups (case ignored). Default: every group.
	UserGroups []string
	// FeeThreshold is, per ISO 4217 currency, the largest balance in
	// minor units a purge waives ("purged: balance within the
	// threshold") before it purges the user; a user who owes more in any
	// currency is kept. Default: 0 in every currency, any balance keeps
	// the user.
	FeeThreshold map[string]int64
	// BatchSize is how many users a run reads at a time; a cancelled run
	// stops between users and saves its report. Default: 200.
	BatchSize int
	// LeaseTTL is how long a run's hold on its institution lasts unless
	// renewed (each batch renews it): another instance takes over a
	// crashed instance's institution after it. Default: 5 minutes.
	LeaseTTL time.Duration
}

// PurgeWaiverReason is the reason of the waivers a purge makes.
const PurgeWaiverReason = "purged: balance within the threshold"

// RunCancelled is the status of a run whose context ended before it was
// done: what it did stays done, and the next run does the rest.
const RunCancelled = "cancelled"

// PurgeRun is the report of one purge: how many users it purged and kept
// (or, dry, would), kept once it ends; its outcomes say who and why.
type PurgeRun struct {
	ID          string `json:"id" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	DryRun      bool   `json:"dry_run" gorm:"not null"`
	// Status is RunRunning, RunDone, RunCancelled or RunFailed (Error
	// says why; what it counted was done, and the next run does the
	// rest).
	Status   string     `json:"status" gorm:"size:16;not null"`
	Instance string     `json:"-" gorm:"size:128;not null"`
	Purged   int64      `json:"purged" gorm:"column:n_purged;not null"`
	Kept     int64      `json:"kept" gorm:"column:n_kept;not null"`
	Error    string     `json:"error,omitempty" gorm:"size:2000"`
	Started  time.Time  `json:"started_date" gorm:"column:started_at"`
	Finished *time.Time `json:"finished_date,omitempty" gorm:"column:finished_at"`
}

// TableName places runs in the pk_ namespace.
func (PurgeRun) TableName() string { return "pk_privacy_purge_runs" }

// PurgeOutcome is what a run did with one user, in the order it went
// (Seq from 1). A purged user is named by their tombstone (the name the
// audit trail gives them since), never by their primary_id; a user a dry
// run would purge, or a kept user, by their primary_id.
type PurgeOutcome struct {
	RunID     string `json:"-" gorm:"primaryKey;size:36"`
	Seq       int64  `json:"seq" gorm:"primaryKey;autoIncrement:false"`
	PrimaryID string `json:"primary_id" gorm:"size:255;not null"`
	// Purged tells whether the user was purged (dry: would be).
	Purged bool `json:"purged" gorm:"not null"`
	// Waived is what was waived of the user's balance, per currency, in
	// minor units (dry: would be).
	Waived map[string]int64 `json:"waived,omitempty" gorm:"serializer:json;type:text"`
	// Reasons say why a kept user was kept: every deletion guard's
	// objection, a balance over the threshold.
	Reasons []string `json:"reasons,omitempty" gorm:"serializer:json;type:text"`
}

// TableName places outcomes in the pk_ namespace.
func (PurgeOutcome) TableName() string { return "pk_privacy_purge_outcomes" }

// ErrPurgeInProgress says another purge of the institution holds its
// lease.
var ErrPurgeInProgress = &fault.Error{Kind: fault.Refused, Detail: "another purge of the institution is in progress", Reasons: []string{"run_in_progress"}}

// Purger removes the users whose purge date has passed, as an erasure
// (Eraser.Erase) of each, with the same guards. It is safe for concurrent
// use, and on several instances over one database: a lease lets one purge
// at a time work on an institution.
type Purger struct {
	db         *gorm.DB
	eraser     *Eraser
	circ       *circulation.Service
	o          PurgeOptions
	instance   string
	lease      *lease
	log        *slog.Logger
	afterBatch func() // tests
}

// NewPurger returns a Purger erasing through eraser and waiving through
// circ; instance names this instance in the lease (default: a random
// name).
func NewPurger(db *gorm.DB, eraser *Eraser, circ *circulation.Service, o PurgeOptions, instance string, log *slog.Logger) (*Purger, error) {
	if db == nil || eraser == nil || circ == nil {
		return nil, errors.New("privacy: NewPurger needs a database, the eraser and circulation")
	}
	if o.GraceDays < 0 || o.BatchSize < 0 || o.LeaseTTL < 0 {
		return nil, errors.New("privacy: the purge's GraceDays, BatchSize and LeaseTTL cannot be negative")
	}
	th := make(map[string]int64, len(o.FeeThreshold))
	for c, n := range o.FeeThreshold {
		if n < 0 {
			return nil, fmt.Errorf("privacy: the purge's fee threshold in %s cannot be negative", c)
		}
		th[strings.ToUpper(strings.TrimSpace(c))] = n
	}
	o.FeeThreshold = th
	o.RecordTypes = slices.Clone(o.RecordTypes)
	for i, t := range o.RecordTypes {
		o.RecordTypes[i] = strings.ToUpper(strings.TrimSpace(t))
	}
	o.UserGroups = slices.Clone(o.UserGroups)
	for i, g := range o.UserGroups {
		o.UserGroups[i] = strings.ToLower(strings.TrimSpace(g))
	}
	if o.BatchSize == 0 {
		o.BatchSize = 200
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 5 * time.Minute
	}
	if instance == "" {
		instance = "instance-" + keys.NewID()
	}
	if log == nil {
		log = slog.Default()
	}
	return &Purger{db: db, eraser: eraser, circ: circ, o: o, instance: instance, log: log,
		lease: &lease{table: "pk_privacy_purge_leases", holder: instance, ttl: o.LeaseTTL, now: eraser.now, busy: ErrPurgeInProgress, what: "purge"}}, nil
}

// Institutions lists the institutions that have users with a purge date.
func (p *Purger) Institutions(ctx context.Context) ([]string, error) {
	var out []string
	err := txctx.DB(ctx, p.db).Raw("SELECT DISTINCT institution FROM pk_users WHERE purge_date IS NOT NULL AND purge_date <> ''").Scan(&out).Error
	slices.Sort(out)
	return out, err
}

// Purge purges the users of inst whose purge date (plus the grace) has
// passed, of the record types and user groups of the options, in batches
// of users read by id, and returns the run's report, which it keeps (Run,
// Outcomes). Each user goes in a transaction of their own (it joins none
// ctx carries): a balance within the threshold in every currency is
// waived (PurgeWaiverReason, on the audit trail through circulation) and
// the user erased as Eraser.Erase erases them (their closed records
// anonymized, the trail forgetting them, the proof recorded), or, when a
// deletion guard objects or the balance is over the threshold, nothing
// changes and the user is kept with every reason.
//
// Dry, it goes through the same steps for each user in a transaction it
// rolls back, so that it lists exactly the outcomes a run would have
// (every guard asked), and changes nothing but its report.
//
// A run whose ctx ends stops between users with the status RunCancelled
// and returns ctx's error: what it did stays done, and the next run finds
// the users it purged gone. One run at a time (not dry) works on an
// institution, whichever instance it runs on: a second gets
// ErrPurgeInProgress. The actor ctx carries is the one of the waivers and
// erasures; without one it is the job "system:purge". Purging needs the
// audit key, as erasing does.
func (p *Purger) Purge(ctx context.Context, inst string, dryRun bool) (*PurgeRun, error) {
	ctx = txctx.Without(ctx)
	if len(p.eraser.trail.key) == 0 {
		return nil, errNoAuditKey
	}
	if !dryRun {
		if err := p.lease.acquire(ctx, p.db, inst); err != nil {
			return nil, err
		}
		defer func() {
			if err := p.lease.release(ctx, p.db, inst); err != nil {
				p.log.Error("privacy: releasing the purge lease", "institution", inst, "error", err)
			}
		}()
	}
	now := p.eraser.now().UTC()
	run := &PurgeRun{ID: keys.NewID(), Institution: inst, DryRun: dryRun, Status: RunRunning, Instance: p.instance, Started: now}
	if err := p.db.WithContext(ctx).Create(run).Error; err != nil {
		return nil, err
	}
	err := p.purge(ctx, inst, dryRun, run, now)
	done := p.eraser.now().UTC()
	run.Finished, run.Status = &done, RunDone
	switch {
	case err != nil && ctx.Err() != nil:
		run.Status, err = RunCancelled, ctx.Err()
	case err != nil:
		run.Status, run.Error = RunFailed, err.Error()
	}
	if serr := p.db.WithContext(context.WithoutCancel(ctx)).Select("*").Updates(run).Error; serr != nil && err == nil {
		err = serr
	}
	return run, err
}

// purgeCandidate is a user past their purge date.
type purgeCandidate struct {
	ID        string
	PrimaryID string
}

// purge is the run of Purge.
func (p *Purger) purge(ctx context.Context, inst string, dry bool, run *PurgeRun, now time.Time) error {
	cutoff := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -p.o.GraceDays).Format(time.DateOnly)
	actx := ctx
	if _, ok := patron.ActorFrom(ctx); !ok {
		if _, ok := patron.OriginFrom(ctx); !ok {
			actx = patron.WithOrigin(actx, patron.Origin{Via: "job purge"})
		}
		actx = patron.WithActor(actx, patron.Actor{Institution: inst, ID: "system:purge"})
	}
	after, seq := "", int64(0)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		db := p.db.WithContext(ctx)
		if !dry {
			if err := p.lease.renew(db, inst); err != nil {
				return err
			}
		}
		q := db.Table("pk_users").Select("id, primary_id").
			Where("institution = ? AND purge_date IS NOT NULL AND purge_date <> '' AND purge_date < ? AND id > ?", inst, cutoff, after)
		if len(p.o.RecordTypes) > 0 {
			q = q.Where("record_type IN ?", p.o.RecordTypes)
		}
		if len(p.o.UserGroups) > 0 {
			q = q.Where("LOWER(user_group) IN ?", p.o.UserGroups)
		}
		var batch []purgeCandidate
		if err := q.Order("id").Limit(p.o.BatchSize).Scan(&batch).Error; err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		after = batch[len(batch)-1].ID
		for _, c := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			seq++
			if err := p.one(actx, inst, c, dry, run, seq); err != nil {
				return err
			}
		}
		if err := db.Model(run).Updates(map[string]any{"n_purged": run.Purged, "n_kept": run.Kept}).Error; err != nil {
			return err
		}
		if p.afterBatch != nil {
			p.afterBatch()
		}
	}
}

// errRollBack ends a user's transaction without keeping what it did.
var errRollBack = errors.New("privacy: rolled back")

// one purges (or, dry, tries) the user c, and saves the outcome.
func (p *Purger) one(ctx context.Context, inst string, c purgeCandidate, dry bool, run *PurgeRun, seq int64) error {
	out := &PurgeOutcome{RunID: run.ID, Seq: seq, PrimaryID: c.PrimaryID}
	err := txctx.Transaction(ctx, p.db, func(ctx context.Context, tx *gorm.DB) error {
		out.Waived, out.Reasons, out.Purged = nil, nil, false
		var fees []struct {
			ID       string
			Currency string
			Owed     int64
		}
		if err := tx.Raw("SELECT id, currency, amount - paid - waived AS owed FROM pk_circ_fees WHERE institution = ? AND user_id = ? AND status = ? ORDER BY id",
			inst, c.ID, circulation.FeeOpen).Scan(&fees).Error; err != nil {
			return err
		}
		owed := map[string]int64{}
		for _, f := range fees {
			owed[f.Currency] = circulation.AddOwed(owed[f.Currency], f.Owed)
		}
		currencies := make([]string, 0, len(owed))
		for cur := range owed {
			currencies = append(currencies, cur)
		}
		slices.Sort(currencies)
		var over []string
		for _, cur := range currencies {
			if owed[cur] > p.o.FeeThreshold[cur] {
				over = append(over, "owes "+circulation.FormatMoney(owed[cur], cur)+" over the threshold "+circulation.FormatMoney(p.o.FeeThreshold[cur], cur))
			}
		}
		var waivers []string
		if len(over) == 0 {
			for _, f := range fees {
				if f.Owed <= 0 {
					continue
				}
				fee, err := p.circ.Waive(ctx, inst, c.PrimaryID, f.ID, f.Owed, PurgeWaiverReason)
				if err != nil {
					if fe, ok := fault.As(err); ok && fe.Kind == fault.Refused && len(fe.Reasons) > 0 {
						out.Waived, out.Reasons = nil, fe.Reasons
						return errRollBack
					}
					return err
				}
				for i := len(fee.Transactions) - 1; i >= 0; i-- {
					if x := fee.Transactions[i]; x.Kind == circulation.Waiver && x.Reason == PurgeWaiverReason && x.Amount == f.Owed {
						waivers = append(waivers, x.ID)
						break
					}
				}
				if out.Waived == nil {
					out.Waived = map[string]int64{}
				}
				out.Waived[f.Currency] += f.Owed
			}
		}
		_, tomb, err := p.eraser.erase(ctx, inst, c.PrimaryID)
		if fe, ok := fault.As(err); ok && fe.Kind == fault.Refused && len(fe.Reasons) > 0 {
			// The balance's own objections give way to the threshold's.
			out.Reasons = over
			for _, r := range fe.Reasons {
				balance := false
				for _, cur := range currencies {
					balance = balance || r == "owes "+circulation.FormatMoney(owed[cur], cur)
				}
				if !balance || len(over) == 0 {
					out.Reasons = append(out.Reasons, r)
				}
			}
			out.Waived = nil
			return errRollBack
		}
		if err != nil {
			return err
		}
		if len(over) > 0 { // no guard of circulation's objected
			out.Reasons = over
			return errRollBack
		}
		if len(waivers) > 0 {
			// Anonymizing the closed fees cleared the reasons of their
			// waivers; the purge's own names nobody and stays.
			if err := tx.Exec("UPDATE pk_circ_fee_transactions SET reason = ? WHERE institution = ? AND id IN ?", PurgeWaiverReason, inst, waivers).Error; err != nil {
				return err
			}
		}
		out.Purged = true
		if dry {
			return errRollBack
		}
		out.PrimaryID = tomb
		return tx.Create(out).Error
	})
	switch {
	case errors.Is(err, errRollBack):
	case err != nil:
		return fmt.Errorf("privacy: purging %s: %w", c.PrimaryID, err)
	}
	if out.Purged {
		run.Purged++
	} else {
		run.Kept++
	}
	if out.Purged && !dry {
		return nil // saved with the erasure
	}
	return p.db.WithContext(ctx).Create(out).Error
}

// Run returns the report of one purge of inst (NotFound when there is
// none).
func (p *Purger) Run(ctx context.Context, inst, id string) (*PurgeRun, error) {
	var run PurgeRun
	err := txctx.DB(ctx, p.db).Where("institution = ? AND id = ?", inst, id).Take(&run).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &fault.Error{Kind: fault.NotFound, Detail: "no purge run " + id}
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

// Outcomes returns up to limit outcomes of the run id (1 to 1000; 100
// when 0) after the one of sequence number after, in order.
func (p *Purger) Outcomes(ctx context.Context, id string, after int64, limit int) ([]PurgeOutcome, error) {
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > 1000 || after < 0 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the page is not valid", Fields: []fault.FieldError{{Field: "limit", Code: "out_of_range", Message: "1 to 1000, after 0 or more"}}}
	}
	out := []PurgeOutcome{}
	err := txctx.DB(ctx, p.db).Where("run_id = ? AND seq > ?", id, after).Order("seq").Limit(limit).Find(&out).Error
	return out, err
}

// PurgeCSVHeader is the first line of WriteCSV's document.
var PurgeCSVHeader = []string{"seq", "primary_id", "purged", "waived", "reasons"}

// WriteCSV writes the outcomes of the run id of inst as CSV: the header
// (PurgeCSVHeader), then one line per user, the amounts waived as money
// ("5.00 USD", several joined by "; ") and the reasons joined by "; ". It
// reads the outcomes a page at a time. The run is NotFound when inst has
// none of that id.
func (p *Purger) WriteCSV(ctx context.Context, w io.Writer, inst, id string) error {
	if _, err := p.Run(ctx, inst, id); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(PurgeCSVHeader); err != nil {
		return err
	}
	after := int64(0)
	for {
		page, err := p.Outcomes(ctx, id, after, 1000)
		if err != nil {
			return err
		}
		for _, o := range page {
			curs := make([]string, 0, len(o.Waived))
			for c := range o.Waived {
				curs = append(curs, c)
			}
			slices.Sort(curs)
			waived := make([]string, len(curs))
			for i, c := range curs {
				waived[i] = circulation.FormatMoney(o.Waived[c], c)
			}
			if err := cw.Write([]string{strconv.FormatInt(o.Seq, 10), cell(o.PrimaryID), strconv.FormatBool(o.Purged),
				strings.Join(waived, "; "), cell(strings.Join(o.Reasons, "; "))}); err != nil {
				return err
			}
			after = o.Seq
		}
		if len(page) < 1000 {
			break
		}
	}
	cw.Flush()
	return cw.Error()
}
