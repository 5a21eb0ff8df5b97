package patronkit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// TestARoleAssignedOnOneInstanceHoldsOnAnother runs two kits on one
// database, as two instances behind a load balancer.
func TestARoleAssignedOnOneInstanceHoldsOnAnother(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		open := func() *patronkit.Kit {
			k, err := patronkit.New(db, &patronkit.Config{Policies: casbinmodel.FromDB(db), PINCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(k.Close)
			if err := k.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			return k
		}
		a, b := open(), open()
		req := casbinmodel.Decision{Institution: "UNI", Subject: "ann", Action: "users.delete"}
		if ok, _ := b.Access.Allow(ctx, req); ok {
			t.Fatal("allowed before any role")
		}
		if err := a.Access.AssignRole(ctx, "UNI", "ann", "user-administrator", "*"); err != nil {
			t.Fatal(err)
		}
		if err := b.RefreshPolicies(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.Access.Allow(ctx, req); !ok || err != nil {
			t.Fatalf("the role assigned on the other instance does not hold here: %v", err)
		}
		if err := a.Access.RevokeRole(ctx, "UNI", "ann", "user-administrator", "*"); err != nil {
			t.Fatal(err)
		}
		if err := b.RefreshPolicies(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, _ := b.Access.Allow(ctx, req); ok {
			t.Fatal("a revoked role still holds on the other instance")
		}
	})
}

func TestNewRefusesBadConfigurationWithoutPanicking(t *testing.T) {
	if _, err := patronkit.New(nil, nil); err == nil {
		t.Fatal("New without a database")
	}
	db := dbtest.Open(t, "sqlite")
	if _, err := patronkit.New(db, &patronkit.Config{PINCost: -1}); err == nil {
		t.Fatal("a negative PIN cost")
	}
	if _, err := patronkit.New(db, &patronkit.Config{PINCost: 99}); err == nil {
		t.Fatal("a PIN cost beyond bcrypt's")
	}
	if _, err := patronkit.New(db, &patronkit.Config{SignInBurst: -1}); err == nil {
		t.Fatal("a negative sign-in burst")
	}
	if _, err := patronkit.New(db, &patronkit.Config{MaxSignInFailures: 10, MaxAccountSignInFailures: 5}); err == nil {
		t.Fatal("an account bar below the source's")
	}
	if _, err := patronkit.New(db, &patronkit.Config{SignInCacheFor: -1}); err != nil {
		t.Fatalf("no sign-in cache: %v", err)
	}
	if _, err := patronkit.New(db, &patronkit.Config{MaxFee: -1}); err == nil {
		t.Fatal("a negative MaxFee")
	}
	if _, err := patronkit.New(db, &patronkit.Config{Currencies: []circulation.Currency{{Code: "ABC"}}}); err == nil {
		t.Fatal("a currency that is not one")
	}
	if _, err := patronkit.New(db, &patronkit.Config{Currencies: []circulation.Currency{{Code: "USD"}, {Code: "EUR"}}}); err == nil {
		t.Fatal("a second currency without a rate")
	}
}

// runs is a log handler that hands over the counts of each run of the
// kit's circulation jobs.
type runs chan map[string]int64

func (r runs) Enabled(context.Context, slog.Level) bool { return true }
func (r runs) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r runs) WithGroup(string) slog.Handler            { return r }
func (r runs) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message == "patronkit: circulation jobs ran" {
		counts := map[string]int64{}
		rec.Attrs(func(a slog.Attr) bool { counts[a.Key] = a.Value.Int64(); return true })
		r <- counts
	}
	return nil
}

// next waits for the next run of the jobs.
func (r runs) next(t *testing.T) map[string]int64 {
	t.Helper()
	select {
	case c := <-r:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the circulation jobs did not run")
		return nil
	}
}

// TestStartDeclaresLongOverdueLoansLost runs the kit's background jobs: a
// loan overdue longer than its terms allow becomes lost by itself.
func TestStartDeclaresLongOverdueLoansLost(t *testing.T) {
	ctx := context.Background()
	jobs := make(runs)
	k := patronkittest.New(t, func(c *patronkit.Config) { c.Logger, c.CirculationEvery = slog.New(jobs), 10*time.Millisecond })
	t.Cleanup(func() {
		go func() {
			for range jobs { // let a run under way finish while Close waits
			}
		}()
		k.Close()
		close(jobs)
	})
	patronkittest.Terms(t, k, "UNI", circulation.Rule{Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: circulation.Days,
		LostItemFee: 3000, DaysOverdueUntilLost: 7, Currency: "USD"}})
	u, it := patronkittest.User(t, k, "UNI"), patronkittest.Item(t, k, "UNI")
	patronkittest.Loan(t, k, "UNI", u, it)
	k.Start(ctx)
	if c := jobs.next(t); c["declared_lost"] != 0 {
		t.Fatalf("lost before its time: %v", c)
	}
	if it, _ := k.Circulation.Item(ctx, "UNI", it.Barcode); it.Status != circulation.StatusOnLoan {
		t.Fatalf("lost before its time: %s", it.Status)
	}
	k.Clock.Advance(9 * 24 * time.Hour)
	// A run may have begun before the clock moved: the next ones declare it.
	for deadline := time.Now().Add(10 * time.Second); jobs.next(t)["declared_lost"] == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the loan was never declared lost")
		}
	}
	it, err := k.Circulation.Item(ctx, "UNI", it.Barcode)
	if err != nil || it.Status != circulation.StatusLost {
		t.Fatalf("item %+v, %v", it, err)
	}
	bal, err := k.Circulation.Balance(ctx, "UNI", u.PrimaryID)
	if err != nil || bal["USD"] != 3000 {
		t.Fatalf("balance %v, %v", bal, err)
	}
}

// expiries is a log handler that hands over how many forgotten failed
// sign-ins each run of the kit's expiry deleted.
type expiries chan int64

func (e expiries) Enabled(context.Context, slog.Level) bool { return true }
func (e expiries) WithAttrs([]slog.Attr) slog.Handler       { return e }
func (e expiries) WithGroup(string) slog.Handler            { return e }
func (e expiries) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message == "patronkit: forgotten failed sign-ins deleted" {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "deleted" {
				e <- a.Value.Int64()
			}
			return true
		})
	}
	return nil
}

// TestStartDeletesForgottenSignInFailures: failed sign-ins older than
// Lockout leave the database once the kit runs.
func TestStartDeletesForgottenSignInFailures(t *testing.T) {
	ctx := context.Background()
	runs := make(expiries, 4)
	k := patronkittest.New(t, func(c *patronkit.Config) { c.Logger, c.Lockout = slog.New(runs), time.Minute })
	u := patronkittest.User(t, k, "UNI", func(u *patron.User) { u.PINNumber = "1234" })
	if _, err := k.Patrons.SignIn(ctx, "UNI", u.PrimaryID, "0000", "192.0.2.1"); !errors.Is(err, fault.ErrUnauthenticated) {
		t.Fatalf("wrong PIN: %v", err)
	}
	count := func() int64 {
		var n int64
		if err := k.DB.Model(&patron.SignInFailures{}).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("%d failure rows, want the source's and the account's", n)
	}
	k.Clock.Advance(2 * time.Minute)
	k.Start(ctx)
	select {
	case n := <-runs:
		if n != 2 {
			t.Fatalf("deleted %d rows, want 2", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the expiry did not run")
	}
	if n := count(); n != 0 {
		t.Fatalf("%d failure rows left", n)
	}
}

// A database upgraded from a release whose deletions left roles behind
// loses the roles of users that no longer exist; the roles of users that
// do, and the rules between roles, stay.
func TestRolesOfUsersDeletedBeforeTheUpgradeGo(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		// Every migration but the one under test (the privacy tables, which
		// came later, too: the kit below records its changes there).
		all := patronkit.Migrations()
		before := slices.DeleteFunc(slices.Clone(all), func(m *gormigrate.Migration) bool { return m.ID == "202611280102_roles_of_deleted_users" })
		if len(before) != len(all)-1 {
			t.Fatal("no migration 202611280102_roles_of_deleted_users")
		}
		earlier, err := patronkit.New(db, &patronkit.Config{Policies: casbinmodel.FromDB(db), PINCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(earlier.Close)
		if err := migrate.Run(ctx, db, before); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"stays", "gone"} {
			if _, err := earlier.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: id, FirstName: "S", LastName: "S", RecordType: patron.RecordStaff}); err != nil {
				t.Fatal(err)
			}
		}
		for _, g := range [][3]string{{"stays", "auditor", "*"}, {"gone", "auditor", "MAIN"}, {"gone", "user-manager", "SCIENCE"}} {
			if err := earlier.Access.AssignRole(ctx, "UNI", g[0], g[1], g[2]); err != nil {
				t.Fatal(err)
			}
		}
		// The earlier release deleted users and left their roles.
		if err := db.Exec("DELETE FROM pk_users WHERE primary_id = 'gone'").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Table(casbinmodel.RuleTable).Create(map[string]any{"ptype": "g", "v0": "auditor", "v1": "reader", "v2": "*"}).Error; err != nil {
			t.Fatal(err)
		}

		upgraded, err := patronkit.New(db, &patronkit.Config{Policies: casbinmodel.FromDB(db), PINCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(upgraded.Close)
		if err := upgraded.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := upgraded.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "gone", FirstName: "N", LastName: "N"}); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]int{"stays": 1, "gone": 0} {
			if roles, err := upgraded.Access.Roles(ctx, "UNI", id); err != nil || len(roles) != want {
				t.Errorf("roles of %s after the upgrade: %v %v, want %d", id, roles, err, want)
			}
		}
		var between int64
		db.Table(casbinmodel.RuleTable).Where("ptype = 'g' AND v0 = 'auditor'").Count(&between)
		if between != 1 {
			t.Error("the rule between roles went")
		}
	})
}

// A host's deletion hooks, given in the Config, act in the deletion.
func TestAHostsDeletionHookActsInTheDeletion(t *testing.T) {
	var deleted []string
	hook := patron.DeletionHookFunc(func(ctx context.Context, tx *gorm.DB, u *patron.User) error {
		deleted = append(deleted, u.PrimaryID)
		return nil
	})
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		deleted = nil
		u := patronkittest.User(t, k, "UNI")
		if err := k.Patrons.Delete(context.Background(), "UNI", u.PrimaryID); err != nil || len(deleted) != 1 || deleted[0] != u.PrimaryID {
			t.Fatalf("the host's hook heard %v (%v)", deleted, err)
		}
	}, func(c *patronkit.Config) { c.DeletionHooks = []patron.DeletionHook{hook} })
}

// A policy line of an earlier release that no action stands for is
// reported through the kit's logger when Migrate upgrades the database.
func TestMigrateReportsPolicyLinesItDropsToTheKitsLogger(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		all := patronkit.Migrations()
		i := slices.IndexFunc(all, func(m *gormigrate.Migration) bool { return m.ID == "202612020101_casbin_actions" })
		if err := migrate.Run(ctx, db, all[:i]); err != nil {
			t.Fatal(err)
		}
		for _, r := range [][]string{{"auditor", "*", "/users", "^(GET)$"}, {"auditor", "*", "/reports", "^(GET)$"}} {
			row := map[string]any{"ptype": "p", "v0": r[0], "v1": r[1], "v2": r[2], "v3": r[3], "v4": "", "v5": ""}
			if err := db.Table(casbinmodel.RuleTable).Create(row).Error; err != nil {
				t.Fatal(err)
			}
		}
		var logs bytes.Buffer
		k, err := patronkit.New(db, &patronkit.Config{Policies: casbinmodel.FromDB(db), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(k.Close)
		if err := k.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "path=/reports") || strings.Contains(logs.String(), "path=/users ") {
			t.Fatalf("the kit's log: %s", logs.String())
		}
		if err := k.Access.AssignRole(ctx, "UNI", "ann", "auditor", "*"); err != nil {
			t.Fatal(err)
		}
		if ok, err := k.Access.Allow(ctx, casbinmodel.Decision{Institution: "UNI", Subject: "ann", Action: "users.read"}); !ok || err != nil {
			t.Fatalf("the line carried over does not hold: %v", err)
		}
	})
}

// jobLog is a log handler that hands over the attributes of the records
// of one message.
type jobLog struct {
	msg string
	ch  chan map[string]int64
}

func (j jobLog) Enabled(context.Context, slog.Level) bool { return true }
func (j jobLog) WithAttrs([]slog.Attr) slog.Handler       { return j }
func (j jobLog) WithGroup(string) slog.Handler            { return j }
func (j jobLog) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message != j.msg {
		return nil
	}
	m := map[string]int64{}
	rec.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindInt64 {
			m[a.Key] = a.Value.Int64()
		}
		return true
	})
	select {
	case j.ch <- m:
	default: // a run nobody waits for
	}
	return nil
}

// wait hands over the next record of the message with key above 0.
func (j jobLog) wait(t *testing.T, key string) map[string]int64 {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-j.ch:
			if m[key] > 0 {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q with %s", j.msg, key)
			return nil
		}
	}
}

// Start anonymizes what the retention rules say is due, every
// RetentionEvery, by itself.
func TestStartAnonymizesWhatIsDue(t *testing.T) {
	ctx := context.Background()
	log := jobLog{msg: "patronkit: closed records anonymized", ch: make(chan map[string]int64, 1)}
	k := patronkittest.New(t, func(c *patronkit.Config) {
		c.Logger, c.RetentionEvery = slog.New(log), 10*time.Millisecond
		c.RetentionRules = []privacy.RetentionRule{{Kind: privacy.RetainLoans, Anonymize: privacy.AnonymizeImmediately}}
	})
	t.Cleanup(k.Close)
	u, it := patronkittest.User(t, k, "UNI"), patronkittest.Item(t, k, "UNI")
	l := patronkittest.Loan(t, k, "UNI", u, it)
	if _, err := k.Circulation.CheckIn(ctx, "UNI", it.Barcode); err != nil {
		t.Fatal(err)
	}
	k.Start(ctx)
	if m := log.wait(t, "loans"); m["loans"] != 1 {
		t.Fatalf("anonymized %v", m)
	}
	var holder string
	if err := k.DB.Raw("SELECT user_id FROM pk_circ_loans WHERE id = ?", l.ID).Scan(&holder).Error; err != nil || holder != "" {
		t.Fatalf("the loan still names %q (%v)", holder, err)
	}
}

// Start purges the users past their purge date every PurgeEvery, by
// itself.
func TestStartPurgesUsersPastTheirPurgeDate(t *testing.T) {
	ctx := context.Background()
	log := jobLog{msg: "patronkit: users purged", ch: make(chan map[string]int64, 1)}
	k := patronkittest.New(t, func(c *patronkit.Config) {
		c.Logger, c.PurgeEvery, c.AuditKey = slog.New(log), 10*time.Millisecond, []byte("the library's key")
	})
	t.Cleanup(k.Close)
	patronkittest.User(t, k, "UNI", func(u *patron.User) { u.PrimaryID, u.PurgeDate = "gone", "2000-01-01" })
	patronkittest.User(t, k, "UNI", func(u *patron.User) { u.PrimaryID = "stays" })
	k.Start(ctx)
	if m := log.wait(t, "purged"); m["purged"] != 1 {
		t.Fatalf("purged %v", m)
	}
	if _, _, err := k.Patrons.ID(ctx, "UNI", "gone"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("gone: %v", err)
	}
	if _, _, err := k.Patrons.ID(ctx, "UNI", "stays"); err != nil {
		t.Fatalf("stays: %v", err)
	}
}
