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
	// BatchSize is how many users a run reads, checks and purges at a
	// time, in one transaction; a cancelled run stops between batches
	// and saves its report. Default: 1000.
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
	// SetID names the set of users the run took as its input
	// (Purger.PurgeSet); empty when it looked at every user.
	SetID string `json:"set_id,omitempty" gorm:"size:36;not null;default:''"`
	// Status is RunRunning, RunDone, RunCancelled or RunFailed (Error
	// says why; what it counted was done, and the next run does the
	// rest).
	Status   string `json:"status" gorm:"size:16;not null"`
	Instance string `json:"-" gorm:"size:128;not null"`
	Purged   int64  `json:"purged" gorm:"column:n_purged;not null"`
	Kept     int64  `json:"kept" gorm:"column:n_kept;not null"`
	Error    string `json:"error,omitempty" gorm:"size:2000"`
	// CancelRequested tells that someone asked the run to stop
	// (Purger.Cancel): it stops after the batch it is in.
	CancelRequested bool       `json:"cancel_requested" gorm:"not null;default:false"`
	Started         time.Time  `json:"started_date" gorm:"column:started_at"`
	Finished        *time.Time `json:"finished_date,omitempty" gorm:"column:finished_at"`
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
	sets       SetMembers
	afterBatch func() // tests
}

// SetMembers gives a purge the members of a set of users as its input
// (Purger.PurgeSet). The kit wires its sets (sets.Service.MemberIDs);
// privacy knows nothing else of them.
type SetMembers interface {
	// MemberIDs returns the internal ids of the members of the set
	// setID of inst now, in the order of the ids, after the id after
	// (from the first when empty), at most limit. A set inst does not
	// have is fault.NotFound.
	MemberIDs(ctx context.Context, inst, setID, after string, limit int) ([]string, error)
}

// UseSets gives the purge the sets of users it may take as its input.
func (p *Purger) UseSets(s SetMembers) { p.sets = s }

// errNoSets answers a purge of a set when no sets are wired.
var errNoSets = &fault.Error{Kind: fault.Refused, Detail: "no sets of users are wired to the purge", Reasons: []string{"no_sets"}}

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
		o.BatchSize = 1000
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
// Outcomes). Each batch goes in a transaction of its own (it joins none
// ctx carries), in a few statements whatever its size: the users' rows
// are locked and every deletion guard asked about all of them at once;
// a user's balance within the threshold in every currency is waived
// (PurgeWaiverReason, on the audit trail through circulation); the users
// no guard holds are erased together as Eraser.Erase erases one (their
// closed records anonymized, their record removed, the trail forgetting
// them, a proof recorded for each). A user a guard holds, or whose
// balance is over the threshold, is kept unchanged with every reason.
//
// Dry, it goes through the same steps for each batch in a transaction it
// rolls back, so that it lists exactly the outcomes a run would have
// (every guard asked), and changes nothing but its report.
//
// A run whose ctx ends stops between batches with the status
// RunCancelled and returns ctx's error: what it did stays done, and the
// next run finds the users it purged gone. A run asked to stop (Cancel,
// from any instance) stops so between batches too, and returns no error.
// One run at a time (not dry)
// works on an institution, whichever instance it runs on: a second gets
// ErrPurgeInProgress. The actor ctx carries is the one of the waivers and
// erasures; without one it is the job "system:purge". Purging needs the
// audit key, as erasing does.
func (p *Purger) Purge(ctx context.Context, inst string, dryRun bool) (*PurgeRun, error) {
	return p.PurgeSet(ctx, inst, "", dryRun)
}

// PurgeSet is Purge with the members of the set of users setID of inst
// as its input (every user when setID is empty): of them, it purges
// those Purge would (past their purge date, of the options' record types
// and user groups, no guard holding them), read in batches of the set's
// members by id (a query set evaluated batch by batch). The run names
// the set (SetID). An unknown set is NotFound and nothing is run; without
// sets wired (UseSets) it is Refused.
func (p *Purger) PurgeSet(ctx context.Context, inst, setID string, dryRun bool) (*PurgeRun, error) {
	ctx = txctx.Without(ctx)
	if len(p.eraser.trail.key) == 0 {
		return nil, errNoAuditKey
	}
	if setID != "" {
		if p.sets == nil {
			return nil, errNoSets
		}
		if _, err := p.sets.MemberIDs(ctx, inst, setID, "", 1); err != nil {
			return nil, err
		}
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
	run := &PurgeRun{ID: keys.NewID(), Institution: inst, DryRun: dryRun, SetID: setID, Status: RunRunning, Instance: p.instance, Started: now}
	if err := p.db.WithContext(ctx).Create(run).Error; err != nil {
		return nil, err
	}
	err := p.purge(ctx, inst, setID, dryRun, run, now)
	done := p.eraser.now().UTC()
	run.Finished, run.Status = &done, RunDone
	switch {
	case errors.Is(err, errCancelRequested):
		run.Status, err = RunCancelled, nil
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

// purge is the run of PurgeSet.
func (p *Purger) purge(ctx context.Context, inst, setID string, dry bool, run *PurgeRun, now time.Time) error {
	cutoff := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -p.o.GraceDays).Format(time.DateOnly)
	actx := ctx
	if _, ok := patron.ActorFrom(ctx); !ok {
		if _, ok := patron.OriginFrom(ctx); !ok {
			actx = patron.WithOrigin(actx, patron.Origin{Via: "job purge"})
		}
		actx = patron.WithActor(actx, patron.Actor{Institution: inst, ID: "system:purge"})
	}
	after, seq, afterMember := "", int64(0), ""
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
		if setID != "" {
			// The input is the set: its next members by id, and of
			// them those the purge's rules take.
			page, err := p.sets.MemberIDs(ctx, inst, setID, afterMember, p.o.BatchSize)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				return nil
			}
			afterMember = page[len(page)-1]
			q = q.Where("id IN ?", page)
		}
		var batch []purgeCandidate
		if err := q.Order("id").Limit(p.o.BatchSize).Scan(&batch).Error; err != nil {
			return err
		}
		if len(batch) == 0 && setID != "" {
			continue
		}
		if len(batch) == 0 {
			return nil
		}
		after = batch[len(batch)-1].ID
		if err := p.batch(actx, inst, batch, dry, run, &seq); err != nil {
			return err
		}
		if err := db.Model(run).Updates(map[string]any{"n_purged": run.Purged, "n_kept": run.Kept}).Error; err != nil {
			return err
		}
		if p.afterBatch != nil {
			p.afterBatch()
		}
		var asked []bool
		if err := db.Model(run).Where("id = ?", run.ID).Pluck("cancel_requested", &asked).Error; err != nil {
			return err
		}
		if len(asked) == 1 && asked[0] {
			run.CancelRequested = true
			return errCancelRequested
		}
	}
}

// errRollBack ends a transaction without keeping what it did.
var errRollBack = errors.New("privacy: rolled back")

// openFee is a fee of a user the purge may waive.
type openFee struct {
	ID       string
	UserID   string
	Currency string
	Owed     int64
}

// batch purges (or, dry, tries) the users of a batch, in one transaction
// (rolled back when dry), and saves their outcomes, numbered from *seq
// on: their rows locked and every guard asked for all of them at once,
// the balances within the threshold waived user by user (a savepoint
// each), then those whom no guard holds erased together (Eraser).
func (p *Purger) batch(ctx context.Context, inst string, batch []purgeCandidate, dry bool, run *PurgeRun, seq *int64) error {
	ids := make([]string, len(batch))
	for i, c := range batch {
		ids[i] = c.ID
	}
	var outs []*PurgeOutcome
	err := txctx.Transaction(ctx, p.db, func(ctx context.Context, tx *gorm.DB) error {
		outs = outs[:0]
		d, err := p.eraser.patrons.PrepareDeletion(ctx, inst, ids)
		if err != nil {
			return err
		}
		var fees []openFee
		if err := tx.Raw("SELECT id, user_id, currency, amount - paid - waived AS owed FROM pk_circ_fees WHERE institution = ? AND user_id IN ? AND status = ? ORDER BY id",
			inst, ids, circulation.FeeOpen).Scan(&fees).Error; err != nil {
			return err
		}
		feesOf := map[string][]openFee{}
		for _, f := range fees {
			feesOf[f.UserID] = append(feesOf[f.UserID], f)
		}
		var (
			purge  []*patron.User
			of     = map[string]*PurgeOutcome{}
			waived []string // the purge's waivers
		)
		for _, u := range d.Users {
			out := &PurgeOutcome{RunID: run.ID, PrimaryID: u.PrimaryID}
			outs, of[u.ID] = append(outs, out), out
			over, balance := p.overThreshold(feesOf[u.ID])
			for _, r := range d.Reasons[u.ID] {
				if !balance[r] { // the balance's own objections give way to the threshold's
					out.Reasons = append(out.Reasons, r)
				}
			}
			out.Reasons = append(over, out.Reasons...)
			if len(out.Reasons) > 0 {
				continue
			}
			ws, reasons, err := p.waive(ctx, d, u, feesOf[u.ID], out)
			if err != nil {
				return err
			}
			if len(reasons) > 0 {
				out.Reasons = reasons
				continue
			}
			waived = append(waived, ws...)
			purge = append(purge, u)
		}
		done, err := p.eraser.eraseHeld(ctx, tx, inst, d, purge, run.ID)
		if err != nil {
			return err
		}
		if len(waived) > 0 {
			// Anonymizing the closed fees cleared the reasons of their
			// waivers; the purge's own names nobody and stays.
			if err := tx.Exec("UPDATE pk_circ_fee_transactions SET reason = ? WHERE institution = ? AND id IN ?", PurgeWaiverReason, inst, waived).Error; err != nil {
				return err
			}
		}
		for _, u := range purge {
			out := of[u.ID]
			out.Purged = true
			if !dry {
				out.PrimaryID = done[u.ID].tomb
			}
		}
		for _, out := range outs {
			if !out.Purged {
				out.Waived = nil
			}
		}
		if dry {
			return errRollBack
		}
		p.number(outs, seq)
		return tx.CreateInBatches(outs, 200).Error
	})
	switch {
	case errors.Is(err, errRollBack):
		p.number(outs, seq)
		if err := p.db.WithContext(ctx).CreateInBatches(outs, 200).Error; err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("privacy: purging a batch of users: %w", err)
	}
	for _, out := range outs {
		if out.Purged {
			run.Purged++
		} else {
			run.Kept++
		}
	}
	return nil
}

// number gives outs their sequence numbers, after *seq.
func (p *Purger) number(outs []*PurgeOutcome, seq *int64) {
	for _, out := range outs {
		*seq++
		out.Seq = *seq
	}
}

// overThreshold answers, for a user's open fees, the reasons their
// balance is over the threshold (none when it is within it in every
// currency), and the balance's own objections as the circulation guard
// words them.
func (p *Purger) overThreshold(fees []openFee) ([]string, map[string]bool) {
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
	balance := map[string]bool{}
	for _, cur := range currencies {
		balance["owes "+circulation.FormatMoney(owed[cur], cur)] = true
		if owed[cur] > p.o.FeeThreshold[cur] {
			over = append(over, "owes "+circulation.FormatMoney(owed[cur], cur)+" over the threshold "+circulation.FormatMoney(p.o.FeeThreshold[cur], cur))
		}
	}
	return over, balance
}

// waive waives what the user u of the deletion d owes of fees (within the
// threshold) through circulation, in a savepoint, and asks the guards
// about u again: it answers the waivers' transaction ids and fills
// out.Waived, or, when circulation refuses or a guard still objects, the
// reasons, and nothing waived.
func (p *Purger) waive(ctx context.Context, d *patron.Deletion, u *patron.User, fees []openFee, out *PurgeOutcome) ([]string, []string, error) {
	if !slices.ContainsFunc(fees, func(f openFee) bool { return f.Owed > 0 }) {
		return nil, nil, nil
	}
	var waivers, reasons []string
	err := txctx.Transaction(ctx, p.db, func(ctx context.Context, tx *gorm.DB) error {
		waivers, out.Waived = nil, nil
		for _, f := range fees {
			if f.Owed <= 0 {
				continue
			}
			fee, err := p.circ.Waive(ctx, u.Institution, u.PrimaryID, f.ID, f.Owed, PurgeWaiverReason)
			if err != nil {
				if fe, ok := fault.As(err); ok && fe.Kind == fault.Refused && len(fe.Reasons) > 0 {
					reasons = fe.Reasons
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
		if err := d.Ask(ctx, u.ID); err != nil {
			return err
		}
		if reasons = d.Reasons[u.ID]; len(reasons) > 0 {
			return errRollBack
		}
		return nil
	})
	if errors.Is(err, errRollBack) {
		out.Waived = nil
		return nil, reasons, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return waivers, nil, nil
}

// errCancelRequested stops a run that was asked to stop.
var errCancelRequested = errors.New("privacy: the purge was asked to stop")

// ErrRunEnded refuses to cancel a run that is no longer running.
var ErrRunEnded = &fault.Error{Kind: fault.Refused, Detail: "the run has ended", Reasons: []string{"run_ended"}}

// Cancel asks the running purge id of inst to stop, whichever instance
// runs it: it stops after the batch it is in, with the status
// RunCancelled, what it did staying done; the next run does the rest.
// It answers the run's report as it stands. A run that has ended is
// refused (ErrRunEnded); an unknown one is NotFound.
func (p *Purger) Cancel(ctx context.Context, inst, id string) (*PurgeRun, error) {
	res := txctx.DB(ctx, p.db).Model(&PurgeRun{}).Where("institution = ? AND id = ? AND status = ?", inst, id, RunRunning).
		Update("cancel_requested", true)
	if res.Error != nil {
		return nil, res.Error
	}
	run, err := p.Run(ctx, inst, id)
	if err != nil {
		return nil, err
	}
	if res.RowsAffected == 0 && run.Status != RunRunning {
		return nil, ErrRunEnded
	}
	return run, nil
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
