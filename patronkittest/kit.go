// Package patronkittest helps a host test its own code against patronkit:
// a Kit wired over a fresh database (an embedded SQLite file, or the
// PostgreSQL and MySQL servers named in the environment), migrated and
// closed with the test; a Clock the test sets; a Notifier that records the
// notices the kit sends; an in-memory SIS Source; and builders of
// libraries, terms of use, users, items and loans.
//
//	func TestOverdueLetters(t *testing.T) {
//		k := patronkittest.New(t)
//		u := patronkittest.User(t, k, "UNI")
//		l := patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI"))
//		k.Clock.Set(l.DueAt.Add(24 * time.Hour))
//		... the host's code ...
//		k.Circulation.QueueDueNotices(ctx)
//		k.Circulation.SendNotices(ctx)
//		msgs := k.Email.Messages()
//	}
//
// Each runs a test on every database available: SQLite always, PostgreSQL
// when PATRONKIT_TEST_POSTGRES_DSN holds a postgres:// URL of a database
// the user may create schemas in, MySQL or MariaDB when
// PATRONKIT_TEST_MYSQL_DSN holds a DSN whose user may create and drop
// databases. Every Kit gets a schema or database of its own, dropped when
// the test ends, so tests may run in parallel.
package patronkittest

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/internal/dbtest"
)

// Start is the time a Kit's Clock shows until the test sets it: 1
// September 2026, 09:00 UTC, a Tuesday.
var Start = time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)

// Kit is a patronkit.Kit over a database of the test's own, with the
// test's clock and recording notifiers. Use it as the Kit it embeds: its
// services (Patrons, Circulation, Account, SIS, Access) are the real ones.
type Kit struct {
	*patronkit.Kit
	// DB is the kit's database, for what a test checks in the tables.
	DB *gorm.DB
	// Clock is the kit's clock, at Start until the test moves it.
	Clock *Clock
	// Email and SMS record the notices the kit sends by each channel
	// (kit.Circulation.SendNotices sends those pending).
	Email *Notifier
	SMS   *Notifier

	seq atomic.Int64
}

// Option changes the Config a Kit is built with, after the test kit's
// own settings (see New): e.g. func(c *patronkit.Config) { c.MaxFee = 5000 }.
type Option func(*patronkit.Config)

// New returns a Kit over a new SQLite database in the test's temporary
// directory, migrated, and closed when the test ends. The Config has the
// test kit's settings, then the options' changes: the Clock as Now; the
// Email and SMS Notifiers; the cheapest PIN hashing; the logs discarded;
// the background jobs off (the test calls them: kit.Circulation's
// QueueDueNotices, SendNotices...); the policies in memory, the default.
func New(t testing.TB, opts ...Option) *Kit {
	t.Helper()
	return On(t, dbtest.Open(t, sqldb.SQLite), opts...)
}

// On is New over db, a database the test opened (it must be empty, or
// hold an earlier patronkit schema: Migrate brings it up to date).
func On(t testing.TB, db *gorm.DB, opts ...Option) *Kit {
	t.Helper()
	k := &Kit{DB: db, Clock: NewClock(Start), Email: &Notifier{}, SMS: &Notifier{}}
	cfg := &patronkit.Config{
		Now:              k.Clock.Now,
		Email:            k.Email,
		SMS:              k.SMS,
		PINCost:          bcrypt.MinCost,
		Logger:           slog.New(slog.DiscardHandler),
		PolicyRefresh:    -1,
		CirculationEvery: -1,
		RetentionEvery:   -1,
	}
	for _, o := range opts {
		o(cfg)
	}
	kit, err := patronkit.New(db, cfg)
	if err != nil {
		t.Fatalf("patronkittest: %v", err)
	}
	t.Cleanup(kit.Close)
	if err := kit.Migrate(context.Background()); err != nil {
		t.Fatalf("patronkittest: migrating: %v", err)
	}
	k.Kit = kit
	return k
}

// Each runs fn as a subtest on every database available (see the package
// documentation), named "sqlite", "postgres" and "mysql", each with a Kit
// of its own built as New builds it. A database whose DSN is not in the
// environment is left out.
func Each(t *testing.T, fn func(t *testing.T, k *Kit), opts ...Option) {
	t.Helper()
	for _, d := range dbtest.Dialects() {
		if !dbtest.Available(d) {
			continue
		}
		t.Run(string(d), func(t *testing.T) {
			fn(t, On(t, dbtest.Open(t, d), opts...))
		})
	}
}

// next returns a number new in this kit, for the names builders make up.
func (k *Kit) next() int64 { return k.seq.Add(1) }
