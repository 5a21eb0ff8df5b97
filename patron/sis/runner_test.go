package sis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

type env struct {
	db      *gorm.DB
	clock   *clock
	patrons *patron.Service
	sis     *sis.Service
	ctx     context.Context
	// tmp holds the uploads while their runs read them.
	tmp string
}

func newEnv(t *testing.T, db *gorm.DB, sources ...sis.Source) *env {
	t.Helper()
	ctx := context.Background()
	if err := migrate.Run(ctx, db, append(patron.Migrations(), sis.Migrations()...)); err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Date(2026, 9, 1, 5, 0, 0, 0, time.UTC)}
	patrons, err := patron.NewService(db, patron.Options{Now: c.Now, PINCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	s, err := sis.NewService(db, sis.Options{Patrons: patrons, Sources: sources, Now: c.Now, BatchSize: 2, TempDir: tmp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &env{db: db, clock: c, patrons: patrons, sis: s, ctx: ctx, tmp: tmp}
}

func (e *env) profile(t *testing.T, p sis.Profile) *sis.Profile {
	t.Helper()
	if p.Code == "" {
		p.Code = "SIS"
	}
	if p.Source == "" {
		p.Source = sis.Upload
	}
	if p.Mode == "" {
		p.Mode = sis.ModeSynchronize
	}
	out, err := e.sis.CreateProfile(e.ctx, "UNI", &p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// run uploads an XML file to the profile and waits for the run's end.
func (e *env) run(t *testing.T, code, xml string, dry bool) *sis.Run {
	t.Helper()
	r, err := e.sis.StartRun(e.ctx, "UNI", code, sis.RunOptions{Upload: strings.NewReader(xml), UploadName: "users.xml", DryRun: dry})
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.sis.Wait(e.ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

func (e *env) report(t *testing.T, id string) []sis.Outcome {
	t.Helper()
	var out []sis.Outcome
	if err := e.sis.Report(e.ctx, "UNI", id, func(o sis.Outcome) error { out = append(out, o); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func userXML(id, first, last string) string {
	return fmt.Sprintf(`<user><primary_id>%s</primary_id><first_name>%s</first_name><last_name>%s</last_name>
<user_group desc="Undergraduate">UG</user_group><expiry_date>2027-08-31Z</expiry_date><status>ACTIVE</status>
<contact_info><emails><email preferred="true"><email_address>%s@uni.example</email_address></email></emails></contact_info>
<user_identifiers><user_identifier><id_type>BARCODE</id_type><value>BC-%s</value></user_identifier></user_identifiers></user>`, id, first, last, id, id)
}

func usersXML(users ...string) string {
	return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<users>\n" + strings.Join(users, "\n") + "\n</users>\n"
}

func counts(r *sis.Run) string {
	return fmt.Sprintf("%s created=%d updated=%d unchanged=%d rejected=%d failed=%d deactivated=%d", r.Status, r.Created, r.Updated, r.Unchanged, r.Rejected, r.Failed, r.Deactivated)
}

func TestRunLoadsAFileAndReportsEveryUser(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{})
		file := usersXML(userXML("s1", "Ann", "A"), userXML("s2", "", ""), userXML("s3", "Cy", "C"), userXML("S1", "Again", "A"))
		r := e.run(t, "SIS", file, false)
		if got := counts(r); got != "succeeded created=2 updated=0 unchanged=0 rejected=2 failed=0 deactivated=0" || r.Done != 4 || r.Total != 4 {
			t.Fatalf("run: %s (done %d total %d) %s", got, r.Done, r.Total, r.Error)
		}
		rep := e.report(t, r.ID)
		if len(rep) != 4 {
			t.Fatalf("report has %d outcomes", len(rep))
		}
		if rep[1].Outcome != sis.OutcomeRejected || !strings.Contains(rep[1].Reason, "first_name is required") || rep[1].Ref == "" {
			t.Fatalf("the nameless user: %+v", rep[1])
		}
		if rep[3].Outcome != sis.OutcomeRejected || !strings.Contains(rep[3].Reason, "twice") {
			t.Fatalf("the second s1: %+v", rep[3])
		}
		u, err := e.patrons.Get(e.ctx, "UNI", "s1")
		if err != nil || u.FirstName != "Ann" || !u.IsExternal() || u.ExternalID != "SIS" || u.UserGroup != "UG" {
			t.Fatalf("s1: %+v %v", u, err)
		}
		// The file's desc attributes fill the code table.
		groups, err := e.patrons.CodeTable(e.ctx, "UNI", "user_group")
		if err != nil || len(groups) != 1 || groups[0].Code != "UG" || groups[0].Description != "Undergraduate" {
			t.Fatalf("the user_group code table: %+v %v", groups, err)
		}

		// The same file again changes nothing.
		again := e.run(t, "SIS", file, false)
		if got := counts(again); got != "succeeded created=0 updated=0 unchanged=2 rejected=2 failed=0 deactivated=0" {
			t.Fatalf("second run: %s", got)
		}
	})
}

func TestAFileThatIsNotXMLFailsTheRunAndChangesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{})
		r := e.run(t, "SIS", "%PDF-1.7 this is not a user file", false)
		if r.Status != sis.RunFailed || !strings.Contains(r.Error, "nothing was changed") {
			t.Fatalf("run: %s %q", counts(r), r.Error)
		}
	})
}

func TestDryRunReportsChangesAndWritesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{})
		e.run(t, "SIS", usersXML(userXML("s1", "Ann", "A")), false)
		r := e.run(t, "SIS", usersXML(userXML("s1", "Anna", "A"), userXML("s2", "Bo", "B")), true)
		if got := counts(r); got != "succeeded created=1 updated=1 unchanged=0 rejected=0 failed=0 deactivated=0" || !r.DryRun {
			t.Fatalf("dry run: %s", got)
		}
		rep := e.report(t, r.ID)
		if rep[0].Changes != "first_name" {
			t.Fatalf("changes: %+v", rep[0])
		}
		if u, _ := e.patrons.Get(e.ctx, "UNI", "s1"); u.FirstName != "Ann" {
			t.Fatal("the dry run wrote")
		}
		if _, err := e.patrons.Get(e.ctx, "UNI", "s2"); err == nil {
			t.Fatal("the dry run created a user")
		}
	})
}

func TestDeactivateMissingAfterACleanRunOnly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{DeactivateMissing: true})
		other := e.profile(t, sis.Profile{Code: "HR"})
		e.run(t, "SIS", usersXML(userXML("a", "A", "A"), userXML("b", "B", "B"), userXML("c", "C", "C")), false)
		e.run(t, other.Code, usersXML(userXML("hr1", "H", "R")), false)

		// A run with a rejected user deactivates nobody.
		r := e.run(t, "SIS", usersXML(userXML("a", "A", "A"), userXML("bad", "", "")), false)
		if r.Deactivated != 0 {
			t.Fatalf("a run with rejections deactivated %d users", r.Deactivated)
		}
		r = e.run(t, "SIS", usersXML(userXML("a", "A", "A"), userXML("b", "B", "B")), false)
		if r.Deactivated != 1 {
			t.Fatalf("deactivated %d, want 1 (c)", r.Deactivated)
		}
		for id, want := range map[string]string{"a": "ACTIVE", "b": "ACTIVE", "c": "INACTIVE", "hr1": "ACTIVE"} {
			if u, _ := e.patrons.Get(e.ctx, "UNI", id); u.Status != want {
				t.Errorf("%s is %s, want %s", id, u.Status, want)
			}
		}
	})
}

func TestExpiryAndPurgeRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{Code: "FIXED", ExpiryRule: sis.RuleFixed, ExpiryDate: "2028-01-31", PurgeRule: sis.RuleRelative, PurgeDays: 30})
		e.run(t, "FIXED", usersXML(userXML("f1", "F", "F")), false)
		u, _ := e.patrons.Get(e.ctx, "UNI", "f1")
		if u.ExpiryDate != "2028-01-31" || u.PurgeDate != "2028-03-01" {
			t.Fatalf("fixed expiry, purge 30 days after: %s %s", u.ExpiryDate, u.PurgeDate)
		}
		e.profile(t, sis.Profile{Code: "FILE"})
		e.run(t, "FILE", usersXML(userXML("f2", "F", "F")), false)
		if u, _ := e.patrons.Get(e.ctx, "UNI", "f2"); u.ExpiryDate != "2027-08-31" {
			t.Fatalf("expiry from the file: %s", u.ExpiryDate)
		}
		// A default purge date: a year after the expiry date, unless the
		// file gives one.
		e.profile(t, sis.Profile{Code: "DEFAULT", PurgeRule: sis.RuleDefault, PurgeDays: 365})
		withPurge := strings.Replace(userXML("d2", "D", "D"), "<status>", "<purge_date>2030-01-15Z</purge_date><status>", 1)
		e.run(t, "DEFAULT", usersXML(userXML("d1", "D", "D"), withPurge), false)
		for id, want := range map[string]string{"d1": "2028-08-30", "d2": "2030-01-15"} {
			if u, _ := e.patrons.Get(e.ctx, "UNI", id); u.PurgeDate != want {
				t.Errorf("%s: purge date %s, want %s", id, u.PurgeDate, want)
			}
		}
	})
}

func TestProfilesAreValidated(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		bad := []sis.Profile{
			{Code: "a b", Source: sis.Upload, Mode: "synchronize"},
			{Code: "X", Source: sis.Upload, Mode: "merge"},
			{Code: "X", Source: "ftp", Mode: "import"},
			{Code: "X", Source: sis.Upload, Mode: "import", Schedule: "every day"},
			{Code: "X", Source: sis.Upload, Mode: "import", Schedule: "0 6 * * *", TimeZone: "Mars/Olympus"},
			{Code: "X", Source: sis.Upload, Mode: "import", ExpiryRule: sis.RuleFixed},
		}
		for _, p := range bad {
			_, err := e.sis.CreateProfile(e.ctx, "UNI", &p)
			if pe, ok := fault.As(err); !ok || pe.Kind != fault.Invalid || len(pe.Fields) == 0 {
				t.Errorf("%+v: want a validation error naming fields, got %v", p, err)
			}
		}
		p := e.profile(t, sis.Profile{Schedule: "0 6,18 * * *", TimeZone: "Europe/Oslo"})
		if _, err := e.sis.CreateProfile(e.ctx, "UNI", p); err == nil {
			t.Fatal("a second profile with the same code")
		}
		p.Description = "students"
		if _, err := e.sis.ReplaceProfile(e.ctx, "UNI", "SIS", p.Version+1, p); err == nil {
			t.Fatal("a stale replace was taken")
		}
		if got, err := e.sis.ReplaceProfile(e.ctx, "UNI", "SIS", p.Version, p); err != nil || got.Version != 2 {
			t.Fatalf("replace: %v", err)
		}
		if _, err := e.sis.Profile(e.ctx, "OTHER", "SIS"); err == nil {
			t.Fatal("another institution reads the profile")
		}
	})
}

// gate is a source whose one file cannot be read until the test opens the
// gate: it holds a run in progress.
type gate struct {
	open chan struct{}
	body string
	mu   sync.Mutex
	done bool
}

func (g *gate) Name() string { return "gate" }
func (g *gate) List(context.Context) ([]sis.File, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return nil, nil
	}
	return []sis.File{{Name: "users.xml", Size: int64(len(g.body))}}, nil
}
func (g *gate) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	return io.NopCloser(strings.NewReader(g.body)), nil
}
func (g *gate) Done(ctx context.Context, name string, ok bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done = true
	return nil
}

func TestTwoInstancesNeverRunOneProfileAtOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		g := &gate{open: make(chan struct{}), body: usersXML(userXML("s1", "A", "A"))}
		first := newEnv(t, db, g)
		first.profile(t, sis.Profile{Source: "gate"})
		second, err := sis.NewService(db, sis.Options{Patrons: first.patrons, Sources: []sis.Source{g}, Now: first.clock.Now, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer second.Close()

		r, err := first.sis.StartRun(first.ctx, "UNI", "SIS", sis.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = second.StartRun(first.ctx, "UNI", "SIS", sis.RunOptions{})
		if pe, ok := fault.As(err); !ok || pe.Kind != fault.Conflict {
			t.Fatalf("the second instance started a run of a running profile: %v", err)
		}
		close(g.open)
		done, _ := first.sis.Wait(first.ctx, r.ID)
		if done.Status != sis.RunSucceeded || done.Created != 1 {
			t.Fatalf("run: %s", counts(done))
		}
		// Ended: the other instance may run it now.
		r2, err := second.StartRun(first.ctx, "UNI", "SIS", sis.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		second.Wait(first.ctx, r2.ID)
	})
}

func TestACrashedInstancesLeaseIsTakenOver(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{})
		// An instance died holding the lease.
		if err := db.Exec("INSERT INTO pk_sis_leases (institution, profile, holder, expires_at) VALUES (?, ?, ?, ?)",
			"UNI", "SIS", "dead-instance", e.clock.Now().Add(time.Minute)).Error; err != nil {
			t.Fatal(err)
		}
		_, err := e.sis.StartRun(e.ctx, "UNI", "SIS", sis.RunOptions{Upload: strings.NewReader(usersXML()), UploadName: "u.xml"})
		if pe, ok := fault.As(err); !ok || pe.Kind != fault.Conflict {
			t.Fatalf("a live lease must hold: %v", err)
		}
		e.clock.Set(e.clock.Now().Add(3 * time.Minute))
		r := e.run(t, "SIS", usersXML(userXML("s1", "A", "A")), false)
		if r.Status != sis.RunSucceeded {
			t.Fatalf("the expired lease was not taken over: %s %s", counts(r), r.Error)
		}
	})
}

func TestSchedulesStartOneRunPerDueTimeAcrossInstances(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		g := &gate{open: make(chan struct{}), body: usersXML(userXML("s1", "A", "A"))}
		close(g.open)
		e := newEnv(t, db, g)
		e.profile(t, sis.Profile{Source: "gate", Schedule: "0 6,18 * * *", TimeZone: "UTC"})
		second, err := sis.NewService(db, sis.Options{Patrons: e.patrons, Sources: []sis.Source{g}, Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer second.Close()

		if runs, err := e.sis.RunDue(e.ctx); err != nil || len(runs) != 0 {
			t.Fatalf("05:00: %d runs, %v", len(runs), err)
		}
		e.clock.Set(time.Date(2026, 9, 1, 6, 0, 30, 0, time.UTC))
		a, err := e.sis.RunDue(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := second.RunDue(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(a)+len(b) != 1 {
			t.Fatalf("06:00 started %d runs across two instances, want 1", len(a)+len(b))
		}
		for _, r := range a {
			e.sis.Wait(e.ctx, r.ID)
		}
		if again, _ := e.sis.RunDue(e.ctx); len(again) != 0 {
			t.Fatal("the same due time started twice")
		}
		e.clock.Set(time.Date(2026, 9, 1, 18, 1, 0, 0, time.UTC))
		evening, _ := e.sis.RunDue(e.ctx)
		if len(evening) != 1 || evening[0].Trigger != sis.TriggerSchedule {
			t.Fatalf("18:00: %+v", evening)
		}
		e.sis.Wait(e.ctx, evening[0].ID)
	})
}

// TestARunTakenOverStaysFailed: an instance thought stopped (its lease ran
// out while its run hung) whose run then goes on cannot write that run
// back to running or succeeded: the instance that took the profile over
// marked it failed, and that stands.
func TestARunTakenOverStaysFailed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		g := &gate{open: make(chan struct{}), body: usersXML(userXML("s1", "A", "A"))}
		first := newEnv(t, db, g)
		first.profile(t, sis.Profile{Source: "gate"})
		second, err := sis.NewService(db, sis.Options{Patrons: first.patrons, Now: first.clock.Now, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer second.Close()
		hung, err := first.sis.StartRun(first.ctx, "UNI", "SIS", sis.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		first.clock.Set(first.clock.Now().Add(time.Hour))
		took, err := second.StartRun(first.ctx, "UNI", "SIS", sis.RunOptions{Upload: strings.NewReader(usersXML(userXML("s2", "B", "B"))), UploadName: "u.xml"})
		if err != nil {
			t.Fatalf("the expired lease was not taken over: %v", err)
		}
		if r, _ := second.Wait(first.ctx, took.ID); r.Status != sis.RunSucceeded {
			t.Fatalf("the run that took over: %s %s", counts(r), r.Error)
		}
		close(g.open) // the hung run goes on, and ends
		first.sis.Wait(first.ctx, hung.ID)
		r, err := first.sis.GetRun(first.ctx, "UNI", hung.ID)
		if err != nil || r.Status != sis.RunFailed || !strings.Contains(r.Error, "stopped") {
			t.Fatalf("the run taken over: %+v, %v", r, err)
		}
	})
}

// TestARunThatLosesItsLeaseStops: when another instance takes the profile
// over (this one was thought stopped: its lease ran out by the other's
// clock), the run here stops at its next renewal, before it writes any
// user, instead of going on beside the run that took over.
func TestARunThatLosesItsLeaseStops(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		g := &gate{open: make(chan struct{}), body: usersXML(userXML("s1", "A", "A"))}
		e := newEnv(t, db, g)
		e.profile(t, sis.Profile{Source: "gate"})
		// This instance's clock stands still; the other's is an hour on,
		// so every renewal here writes an expiry the other sees as past.
		slow, err := sis.NewService(db, sis.Options{Patrons: e.patrons, Sources: []sis.Source{g}, Now: e.clock.Now, LeaseTTL: 90 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		later := func() time.Time { return e.clock.Now().Add(time.Hour) }
		other, err := sis.NewService(db, sis.Options{Patrons: e.patrons, Now: later, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()

		stuck, err := slow.StartRun(e.ctx, "UNI", "SIS", sis.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		took, err := other.StartRun(e.ctx, "UNI", "SIS", sis.RunOptions{Upload: strings.NewReader(usersXML(userXML("s2", "B", "B"))), UploadName: "u.xml"})
		if err != nil {
			t.Fatalf("the other instance did not take the profile over: %v", err)
		}
		other.Wait(e.ctx, took.ID)
		// The gate stays shut: only losing the lease ends the stuck run.
		wctx, cancel := context.WithTimeout(e.ctx, time.Minute)
		defer cancel()
		if _, err := slow.Wait(wctx, stuck.ID); err != nil {
			close(g.open) // let it end, so that the service closes
			t.Fatalf("the run that lost its lease goes on: %v", err)
		}
		r, err := slow.GetRun(e.ctx, "UNI", stuck.ID)
		if err != nil || r.Status != sis.RunFailed {
			t.Fatalf("the run that lost its lease: %+v, %v", r, err)
		}
		if _, err := e.patrons.Get(e.ctx, "UNI", "s1"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("the run that lost its lease wrote its user: %v", err)
		}
	})
}
