package sets_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/sets"
)

// benchUsers is how many users BenchmarkUpdateJob changes:
// PATRONKIT_BENCH_USERS, 100,000 by default.
func benchUsers() int {
	if n, err := strconv.Atoi(os.Getenv("PATRONKIT_BENCH_USERS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// seedUsers adds n UNDERGRAD users, copies of one made through the
// service, in one INSERT ... SELECT over a table of digits.
func seedUsers(b *testing.B, k *patronkittest.Kit, n int) {
	b.Helper()
	tpl := patronkittest.User(b, k, "UNI", func(u *patron.User) { u.PrimaryID, u.UserGroup = "template", "UNDERGRAD" })
	db := k.DB
	for _, q := range []string{"CREATE TABLE bench_digits (d INTEGER NOT NULL)", "INSERT INTO bench_digits (d) VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)"} {
		if err := db.Exec(q).Error; err != nil {
			b.Fatal(err)
		}
	}
	text, concat := "TEXT", func(a, b string) string { return a + " || " + b }
	if db.Dialector.Name() == "mysql" {
		text, concat = "CHAR", func(a, b string) string { return "CONCAT(" + a + ", " + b + ")" }
	}
	num := "CAST(n.n AS " + text + ")"
	nums := " (SELECT a.d + 10*b.d + 100*c.d + 1000*d.d + 10000*e.d + 100000*f.d AS n FROM bench_digits a, bench_digits b, bench_digits c, bench_digits d, bench_digits e, bench_digits f) n"
	cols, err := db.Migrator().ColumnTypes("pk_users")
	if err != nil {
		b.Fatal(err)
	}
	set := map[string]string{"id": concat("'bench-'", num), "primary_id": concat("'bench-user-'", num), "primary_id_key": concat("'bench-user-'", num)}
	var names, exprs string
	for i, c := range cols {
		if i > 0 {
			names, exprs = names+", ", exprs+", "
		}
		names += c.Name()
		if e, ok := set[c.Name()]; ok {
			exprs += e
		} else {
			exprs += "t." + c.Name()
		}
	}
	q := "INSERT INTO pk_users (" + names + ") SELECT " + exprs + " FROM pk_users t," + nums + " WHERE t.id = ? AND n.n < ?"
	if err := db.Exec(q, tpl.ID, n-1).Error; err != nil {
		b.Fatal(q, err)
	}
}

// peakHeap samples the heap in use until stop is called, and returns the
// largest seen.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// BenchmarkUpdateJob changes the user group of every user of a set
// (benchUsers) with an update job, then undoes it, reporting each one's
// seconds and the peak heap in use.
func BenchmarkUpdateJob(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		for range b.N {
			b.StopTimer()
			k := patronkittest.On(b, db)
			n := benchUsers()
			seedUsers(b, k, n)
			ctx := patron.WithActor(context.Background(), patron.Actor{Institution: "UNI", ID: "boss"})
			set, err := k.Sets.Create(ctx, "UNI", sets.New{Name: "Undergraduates", Query: sets.Query{UserGroup: "UNDERGRAD"}})
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			b.StartTimer()
			stop := peakHeap()
			start := time.Now()
			job, err := k.Sets.StartUpdate(ctx, "UNI", set.ID, map[string]string{"user_group": "GRAD"})
			if err != nil {
				b.Fatal(err)
			}
			done, err := k.Sets.Run(ctx, "UNI", job.ID)
			if err != nil || done.Changed != int64(n) {
				b.Fatalf("the job %+v, %v", done, err)
			}
			update := time.Since(start)
			start = time.Now()
			undo, err := k.Sets.StartUndo(ctx, "UNI", job.ID)
			if err != nil {
				b.Fatal(err)
			}
			if done, err = k.Sets.Run(ctx, "UNI", undo.ID); err != nil || done.Changed != int64(n) {
				b.Fatalf("the undo %+v, %v", done, err)
			}
			b.ReportMetric(update.Seconds(), "update-s")
			b.ReportMetric(time.Since(start).Seconds(), "undo-s")
			b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MiB")
		}
	})
}
