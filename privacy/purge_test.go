package privacy_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// The clock shows 1 September 2026: a purge date of 1 August is long
// past, one of 25 August is within a grace of 10 days, and 22 August plus
// 10 days is today, not before it.
const (
	longPast    = "2026-08-01"
	withinGrace = "2026-08-25"
	graceToday  = "2026-08-22"
)

func purgeable(date string, more ...func(*patron.User)) func(*patron.User) {
	return func(u *patron.User) {
		u.PurgeDate = date
		for _, f := range more {
			f(u)
		}
	}
}

// hostGuard keeps the users whose primary_id starts with "keep".
var hostGuard = func(c *patronkit.Config) {
	c.DeletionGuards = append(c.DeletionGuards, patron.DeletionGuardFunc(func(ctx context.Context, u *patron.User) ([]string, error) {
		if strings.HasPrefix(u.PrimaryID, "keep") {
			return []string{"the host keeps it"}, nil
		}
		return nil, nil
	}))
}

var purgeOptions = func(c *patronkit.Config) {
	c.Purge = privacy.PurgeOptions{GraceDays: 10, FeeThreshold: map[string]int64{"USD": 500}}
}

// outcomes reads every outcome of a run.
func outcomes(t *testing.T, k *patronkittest.Kit, id string) []privacy.PurgeOutcome {
	t.Helper()
	var all []privacy.PurgeOutcome
	after := int64(0)
	for {
		page, err := k.Purge.Outcomes(context.Background(), id, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
}

func exists(k *patronkittest.Kit, primaryID string) bool {
	_, _, err := k.Patrons.ID(context.Background(), inst, primaryID)
	return err == nil
}

// A purge removes the users past their purge date and its grace, waiving
// a balance within the threshold, and keeps every user a guard objects to
// with every reason; the dry run before it lists the same outcomes and
// changes nothing; the report reads as JSON and CSV; the purged users'
// closed loans stay anonymized and the trail verifies.
func TestPurgeRemovesUsersPastTheirPurgeDateAndKeepsGuardedOnesWithTheirReasons(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := staffCtx()
		gone := patronkittest.User(t, k, inst, purgeable(longPast, func(u *patron.User) { u.PrimaryID, u.LastName = "gone", "Quartz" }))
		it := patronkittest.Item(t, k, inst)
		patronkittest.Loan(t, k, inst, gone, it)
		if _, err := k.Circulation.CheckIn(ctx, inst, it.Barcode); err != nil {
			t.Fatal(err)
		}
		small := patronkittest.User(t, k, inst, purgeable(longPast, func(u *patron.User) { u.PrimaryID = "small" }))
		fee, err := k.Circulation.AddFee(ctx, inst, small.PrimaryID, circulation.NewFee{Amount: 300, Currency: "USD", Description: "Printing"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Circulation.AddFee(ctx, inst, small.PrimaryID, circulation.NewFee{Amount: 200, Currency: "USD", Description: "Copies"}); err != nil {
			t.Fatal(err)
		}
		big := patronkittest.User(t, k, inst, purgeable(longPast, func(u *patron.User) { u.PrimaryID = "big" }))
		if _, err := k.Circulation.AddFee(ctx, inst, big.PrimaryID, circulation.NewFee{Amount: 501, Currency: "USD", Description: "Lost book"}); err != nil {
			t.Fatal(err)
		}
		borrower := patronkittest.User(t, k, inst, purgeable(longPast, func(u *patron.User) { u.PrimaryID = "borrower" }))
		lent := patronkittest.Item(t, k, inst)
		patronkittest.Loan(t, k, inst, borrower, lent)
		waiting := patronkittest.User(t, k, inst, purgeable(longPast, func(u *patron.User) { u.PrimaryID = "waiting" }))
		if _, err := k.Circulation.PlaceRequest(ctx, inst, waiting.PrimaryID, circulation.NewRequest{Barcode: lent.Barcode}); err != nil {
			t.Fatal(err)
		}
		held := patronkittest.User(t, k, inst, purgeable(longPast, func(u *patron.User) { u.PrimaryID = "held" }))
		if _, err := k.LegalHolds.Set(ctx, inst, held.PrimaryID, "court order 12/2026", ""); err != nil {
			t.Fatal(err)
		}
		patronkittest.User(t, k, inst, purgeable(longPast, func(u *patron.User) { u.PrimaryID = "keep-host" }))
		for _, id := range []string{"grace", "today", "nodate"} {
			date := map[string]string{"grace": withinGrace, "today": graceToday}[id]
			patronkittest.User(t, k, inst, purgeable(date, func(u *patron.User) { u.PrimaryID = id }))
		}
		want := map[string][]string{ // kept, with their reasons; nil: purged
			"gone": nil, "small": nil,
			"big":       {"owes 5.01 USD over the threshold 5.00 USD"},
			"borrower":  {"has 1 open loan"},
			"waiting":   {"has 1 active request"},
			"held":      {"a legal hold set by librarian on 2026-09-01: court order 12/2026"},
			"keep-host": {"the host keeps it"},
		}
		check := func(run *privacy.PurgeRun, dry bool) {
			t.Helper()
			if run.Status != privacy.RunDone || run.DryRun != dry || run.Purged != 2 || run.Kept != 5 {
				t.Fatalf("run %+v", run)
			}
			got, err := k.Purge.Run(context.Background(), inst, run.ID)
			if err != nil || got.Status != privacy.RunDone || got.Purged != 2 || got.Kept != 5 || got.Finished == nil {
				t.Fatalf("the saved run %+v, %v", got, err)
			}
			os := outcomes(t, k, run.ID)
			if len(os) != 7 {
				t.Fatalf("%d outcomes: %+v", len(os), os)
			}
			purged, waived := 0, 0
			for i, o := range os {
				if o.Seq != int64(i+1) {
					t.Errorf("outcome %d has seq %d", i, o.Seq)
				}
				if o.Purged {
					purged++
					if dry != !strings.HasPrefix(o.PrimaryID, "erased:") || len(o.Reasons) != 0 {
						t.Errorf("a purged user's outcome %+v", o)
					}
					if o.Waived != nil {
						waived++
						if !reflect.DeepEqual(o.Waived, map[string]int64{"USD": 500}) || dry && o.PrimaryID != "small" {
							t.Errorf("%s waived %v", o.PrimaryID, o.Waived)
						}
					}
					continue
				}
				reasons, ok := want[o.PrimaryID]
				if !ok || reasons == nil || !reflect.DeepEqual(o.Reasons, reasons) || o.Waived != nil {
					t.Errorf("kept %s with %q, want %q", o.PrimaryID, o.Reasons, reasons)
				}
			}
			if purged != 2 || waived != 1 {
				t.Errorf("%d purged, %d with a waiver", purged, waived)
			}
		}

		before := entries(t, k)
		dry, err := k.Purge.Purge(context.Background(), inst, true)
		if err != nil {
			t.Fatal(err)
		}
		check(dry, true)
		if after := entries(t, k); !reflect.DeepEqual(after, before) {
			t.Fatalf("the dry run changed the trail: %d entries, then %d", len(before), len(after))
		}
		for id := range want {
			if !exists(k, id) {
				t.Fatalf("the dry run removed %s", id)
			}
		}
		if f, err := k.Circulation.Fee(ctx, inst, small.PrimaryID, fee.ID); err != nil || f.Status != circulation.FeeOpen {
			t.Fatalf("the dry run waived: %+v, %v", f, err)
		}

		run, err := k.Purge.Purge(context.Background(), inst, false)
		if err != nil {
			t.Fatal(err)
		}
		check(run, false)
		for id, reasons := range want {
			if exists(k, id) != (reasons != nil) {
				t.Errorf("%s exists: %v", id, exists(k, id))
			}
		}
		for _, id := range []string{"grace", "today", "nodate"} {
			if !exists(k, id) {
				t.Errorf("%s was purged", id)
			}
		}
		var waivers []circulation.Transaction
		k.DB.Where("fee_id = ? AND kind = ?", fee.ID, circulation.Waiver).Find(&waivers)
		if len(waivers) != 1 || waivers[0].Reason != privacy.PurgeWaiverReason || waivers[0].Amount != 300 || waivers[0].By != "system:purge" {
			t.Errorf("the waivers %+v", waivers)
		}
		var status string
		k.DB.Table("pk_circ_fees").Select("status").Where("id = ?", fee.ID).Scan(&status)
		if status != circulation.FeeClosed {
			t.Errorf("the waived fee is %s", status)
		}
		for _, table := range []string{"pk_circ_loans", "pk_circ_fees", "pk_privacy_audit", "pk_privacy_purge_outcomes"} {
			if n := rowsNaming(t, k, table, gone.ID, small.ID, "Quartz", `"gone"`, "small"); n != 0 {
				t.Errorf("%d rows of %s still name a purged user", n, table)
			}
		}
		var loans int64
		k.DB.Table("pk_circ_loans").Where("item_id = ? AND user_id IS NULL OR item_id = ? AND user_id = ''", it.ID, it.ID).Count(&loans)
		if loans != 1 {
			t.Errorf("%d anonymized loans of the purged user, want 1", loans)
		}
		if b := verify(t, k); b != nil {
			t.Fatalf("the trail after the purge: %v", b)
		}
		es := entries(t, k)
		erasures := 0
		for _, e := range es {
			if e.What == privacy.ErasureWhat {
				erasures++
			}
		}
		if erasures != 2 {
			t.Errorf("%d erasures on the trail", erasures)
		}

		var buf bytes.Buffer
		if err := k.Purge.WriteCSV(context.Background(), &buf, inst, run.ID); err != nil {
			t.Fatal(err)
		}
		lines, err := csv.NewReader(&buf).ReadAll()
		if err != nil || len(lines) != 8 || !slices.Equal(lines[0], privacy.PurgeCSVHeader) {
			t.Fatalf("the CSV %q, %v", lines, err)
		}
		if !slices.ContainsFunc(lines, func(l []string) bool { return l[2] == "true" && l[3] == "5.00 USD" }) ||
			!slices.ContainsFunc(lines, func(l []string) bool { return l[1] == "big" && l[4] == "owes 5.01 USD over the threshold 5.00 USD" }) {
			t.Errorf("the CSV %q", lines)
		}
		if err := k.Purge.WriteCSV(context.Background(), &buf, "OTHER", run.ID); err == nil {
			t.Error("another institution's run was written")
		}
	}, withKey, hostGuard, purgeOptions)
}

// The record type and user group filters leave the others alone.
func TestPurgeKeepsToItsRecordTypesAndUserGroups(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		mk := func(id, rt, group string) {
			patronkittest.User(t, k, inst, purgeable(longPast, func(u *patron.User) { u.PrimaryID, u.RecordType, u.UserGroup = id, rt, group }))
		}
		mk("pub-ug", "PUBLIC", "UG")
		mk("pub-grad", "PUBLIC", "GRAD")
		mk("staff-ug", "STAFF", "UG")
		p, err := privacy.NewPurger(k.DB, k.Erasure, k.Circulation, privacy.PurgeOptions{RecordTypes: []string{"public"}, UserGroups: []string{"ug"}}, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		run, err := p.Purge(context.Background(), inst, false)
		if err != nil || run.Purged != 1 || run.Kept != 0 {
			t.Fatalf("run %+v, %v", run, err)
		}
		if exists(k, "pub-ug") || !exists(k, "pub-grad") || !exists(k, "staff-ug") {
			t.Error("the filters were not kept")
		}
	}, withKey)
}

// A run cancelled between batches keeps what it did and says so; the next
// run purges the rest, nobody twice.
func TestACancelledPurgeResumesWithoutDoingAnythingTwice(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		for range 5 {
			patronkittest.User(t, k, inst, purgeable(longPast))
		}
		p, err := privacy.NewPurger(k.DB, k.Erasure, k.Circulation, privacy.PurgeOptions{BatchSize: 2}, "one", nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		privacy.SetPurgeAfterBatch(p, cancel)
		first, err := p.Purge(ctx, inst, false)
		if !errors.Is(err, context.Canceled) || first.Status != privacy.RunCancelled || first.Purged != 2 {
			t.Fatalf("the cancelled run %+v, %v", first, err)
		}
		if saved, _ := p.Run(context.Background(), inst, first.ID); saved.Status != privacy.RunCancelled || saved.Purged != 2 {
			t.Fatalf("saved %+v", saved)
		}
		privacy.SetPurgeAfterBatch(p, nil)
		second, err := p.Purge(context.Background(), inst, false)
		if err != nil || second.Status != privacy.RunDone || second.Purged != 3 || second.Kept != 0 {
			t.Fatalf("the next run %+v, %v", second, err)
		}
		var users int64
		k.DB.Table("pk_users").Count(&users)
		erasures := 0
		for _, e := range entries(t, k) {
			if e.What == privacy.ErasureWhat {
				erasures++
			}
		}
		if users != 0 || erasures != 5 {
			t.Errorf("%d users left, %d erasures", users, erasures)
		}
		if b := verify(t, k); b != nil {
			t.Fatal(b)
		}
	}, withKey)
}

// Two instances over one database purging at once: one works, the other
// is told a purge is in progress; every user is purged once.
func TestTwoInstancesPurgeOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		batches := func(c *patronkit.Config) { c.Purge.BatchSize = 2 }
		k1 := patronkittest.On(t, db, withKey, batches, func(c *patronkit.Config) { c.Instance = "one" })
		k2 := patronkittest.On(t, db, withKey, batches, func(c *patronkit.Config) { c.Instance = "two" })
		for range 5 {
			patronkittest.User(t, k1, inst, purgeable(longPast))
		}
		var second *privacy.PurgeRun
		var secondErr error
		calls := 0
		privacy.SetPurgeAfterBatch(k1.Purge, func() {
			calls++
			if calls == 1 {
				second, secondErr = k2.Purge.Purge(context.Background(), inst, false)
			}
		})
		first, err := k1.Purge.Purge(context.Background(), inst, false)
		if err != nil || first.Purged != 5 {
			t.Fatalf("the first %+v, %v", first, err)
		}
		if !errors.Is(secondErr, privacy.ErrPurgeInProgress) || second != nil {
			t.Errorf("the second instance's run %+v, %v", second, secondErr)
		}
		again, err := k2.Purge.Purge(context.Background(), inst, false)
		if err != nil || again.Purged != 0 || again.Kept != 0 {
			t.Errorf("the second afterwards %+v, %v", again, err)
		}
	})
}

// A purged member of staff takes their roles along, in every library,
// whether purged alone or in a batch with others: nobody who later gets
// their primary_id inherits them.
func TestPurgedStaffLoseTheirRoles(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		for _, id := range []string{"old-desk", "old-admin", "plain"} {
			patronkittest.User(t, k, inst, purgeable(longPast, func(u *patron.User) { u.PrimaryID = id }))
		}
		for _, r := range [][3]string{{"old-desk", "circulation-desk-operator", "MAIN"}, {"old-admin", "user-administrator", "*"}, {"old-admin", "auditor", "*"}} {
			if err := k.Access.AssignRole(ctx, inst, r[0], r[1], r[2]); err != nil {
				t.Fatal(err)
			}
		}
		run, err := k.Purge.Purge(ctx, inst, false)
		if err != nil || run.Purged != 3 {
			t.Fatalf("run %+v, %v", run, err)
		}
		for _, id := range []string{"old-desk", "old-admin"} {
			if roles, err := k.Access.Roles(ctx, inst, id); err != nil || len(roles) != 0 {
				t.Errorf("%s still has %v (%v)", id, roles, err)
			}
		}
		var stored int64
		k.DB.Table(casbinmodel.RuleTable).Where("ptype = 'g' AND LOWER(v0) LIKE ?", "%/old-%").Count(&stored)
		if stored != 0 {
			t.Errorf("%d stored roles left", stored)
		}
		patronkittest.User(t, k, inst, func(u *patron.User) { u.PrimaryID = "old-admin" })
		if ok, err := k.Access.Allow(ctx, casbinmodel.Decision{Institution: inst, Subject: "old-admin", Action: "users.read"}); ok || err != nil {
			t.Fatalf("the new old-admin may read users (%v)", err)
		}
	}, withKey)
}

// A run asked to stop, from anywhere, stops after its batch: what it did
// stays done and the next run does the rest; an ended run cannot be
// cancelled.
func TestAPurgeAskedToStopStopsBetweenBatches(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		for range 5 {
			patronkittest.User(t, k, inst, purgeable(longPast))
		}
		p, err := privacy.NewPurger(k.DB, k.Erasure, k.Circulation, privacy.PurgeOptions{BatchSize: 2}, "one", nil)
		if err != nil {
			t.Fatal(err)
		}
		var asked *privacy.PurgeRun
		privacy.SetPurgeAfterBatch(p, func() {
			if asked != nil {
				return
			}
			var ids []string
			k.DB.Model(&privacy.PurgeRun{}).Where("status = ?", privacy.RunRunning).Pluck("id", &ids)
			if len(ids) != 1 {
				t.Errorf("running runs: %v", ids)
				return
			}
			// Another instance's purger asks.
			if asked, err = k.Purge.Cancel(ctx, inst, ids[0]); err != nil || !asked.CancelRequested || asked.Status != privacy.RunRunning {
				t.Errorf("cancel: %+v, %v", asked, err)
			}
		})
		run, err := p.Purge(ctx, inst, false)
		if err != nil || run.Status != privacy.RunCancelled || run.Purged != 2 || !run.CancelRequested {
			t.Fatalf("the run asked to stop: %+v, %v", run, err)
		}
		if _, err := k.Purge.Cancel(ctx, inst, run.ID); !errors.Is(err, privacy.ErrRunEnded) {
			t.Fatalf("cancelling an ended run: %v", err)
		}
		if _, err := k.Purge.Cancel(ctx, "OTHER", run.ID); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("another institution's run: %v", err)
		}
		privacy.SetPurgeAfterBatch(p, nil)
		next, err := p.Purge(ctx, inst, false)
		if err != nil || next.Status != privacy.RunDone || next.Purged != 3 {
			t.Fatalf("the next run %+v, %v", next, err)
		}
	}, withKey)
}
