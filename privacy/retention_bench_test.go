package privacy_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// benchLoans is how many closed loans BenchmarkAnonymize anonymizes:
// PATRONKIT_BENCH_ANONYMIZE_LOANS, default 1,000,000. Fees, their payments
// and requests are a tenth of it each; the loans' patrons 10,000.
func benchLoans(b *testing.B) int {
	if v := os.Getenv("PATRONKIT_BENCH_ANONYMIZE_LOANS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 || n%1000 != 0 {
			b.Fatalf("PATRONKIT_BENCH_ANONYMIZE_LOANS=%q: a multiple of 1000", v)
		}
		return n
	}
	return 1_000_000
}

// BenchmarkAnonymize anonymizes every closed loan, fee and request of a
// database seeded set-based (INSERT ... SELECT) with benchLoans loans,
// under rules that anonymize them all at once; it reports the records
// anonymized per second and the peak heap in use during the run, which
// stays flat in the number of records (a batch at a time).
//
//	go test -run '^$' -bench BenchmarkAnonymize -benchtime 1x ./privacy
func BenchmarkAnonymize(b *testing.B) {
	n := benchLoans(b)
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		k := patronkittest.On(b, db, allImmediately, func(c *patronkit.Config) { c.RetentionEvery = -1 })
		for range b.N {
			b.StopTimer()
			seedBench(b, db, n)
			peak := watchHeap()
			b.StartTimer()
			start := time.Now()
			run, err := k.Retention.Anonymize(context.Background(), "UNI", false)
			took := time.Since(start)
			b.StopTimer()
			heap := peak()
			if err != nil {
				b.Fatal(err)
			}
			if want := (privacy.Counts{Loans: int64(n), Fees: int64(n / 10), Requests: int64(n / 10)}); run.Counts != want {
				b.Fatalf("anonymized %+v, want %+v", run.Counts, want)
			}
			b.ReportMetric(float64(run.Counts.Total())/took.Seconds(), "records/s")
			b.ReportMetric(heap, "peak-heap-MiB")
			b.StartTimer()
		}
	})
}

// seedBench empties the circulation tables and fills them, set-based, with
// n closed loans of 10,000 patrons (20 loans per item), n/10 closed fees
// on loans with their payments, and n/10 fulfilled requests.
func seedBench(b *testing.B, db *gorm.DB, n int) {
	b.Helper()
	d := db.Dialector.Name()
	pad := func(x string) string {
		switch d {
		case "postgres":
			return "lpad((" + x + ")::text, 12, '0')"
		case "mysql":
			return "LPAD(" + x + ", 12, '0')"
		}
		return "printf('%012d', " + x + ")"
	}
	cat := func(parts ...string) string {
		if d == "mysql" {
			return "CONCAT(" + strings.Join(parts, ", ") + ")"
		}
		return strings.Join(parts, " || ")
	}
	at := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	// n: a.n * 1000 + b.n, from 0 to 999,999 (more: c).
	nums := "pk_bench_nums"
	num := "(a.n * 1000 + b.n + c.n * 1000000)"
	from := " FROM pk_bench_nums a CROSS JOIN pk_bench_nums b CROSS JOIN pk_bench_nums c WHERE c.n < ? AND " + num + " < ?"
	stmts := []struct {
		q    string
		args []any
	}{
		{"DROP TABLE IF EXISTS " + nums, nil},
		{"CREATE TABLE " + nums + " (n INT PRIMARY KEY)", nil},
		{"DELETE FROM pk_privacy_anonymized", nil},
		{"DELETE FROM pk_circ_fee_transactions", nil},
		{"DELETE FROM pk_circ_fees", nil},
		{"DELETE FROM pk_circ_requests", nil},
		{"DELETE FROM pk_circ_loans", nil},
		{"DELETE FROM pk_users WHERE primary_id LIKE 'bench-%'", nil},
	}
	for _, s := range stmts {
		if err := db.Exec(s.q, s.args...).Error; err != nil {
			b.Fatal(s.q, err)
		}
	}
	vals := make([]string, 1000)
	for i := range vals {
		vals[i] = "(" + strconv.Itoa(i) + ")"
	}
	if err := db.Exec("INSERT INTO " + nums + " (n) VALUES " + strings.Join(vals, ", ")).Error; err != nil {
		b.Fatal(err)
	}
	cs := (n + 999_999) / 1_000_000
	user := cat("'U'", pad(num+" % 10000"))
	for _, s := range []struct {
		q    string
		args []any
	}{
		{"INSERT INTO pk_users (id, institution, primary_id, primary_id_key, account_type, record_type, first_name, last_name, user_group, job_category, status, version, created_at, updated_at) SELECT " +
			cat("'U'", pad(num)) + ", 'UNI', " + cat("'bench-'", pad(num)) + ", " + cat("'bench-'", pad(num)) +
			", 'INTERNAL', 'PUBLIC', 'Bench', " + cat("'Patron '", pad(num)) + ", 'UNDERGRAD', 'Student', 'ACTIVE', 1, ?, ?" + from,
			[]any{at, at, 1, 10000}},
		{"INSERT INTO pk_circ_loans (id, institution, user_id, primary_id, item_id, item_barcode, library, loaned_at, due_at, returned_at, renewals, status, version, updated_at) SELECT " +
			cat("'L'", pad(num)) + ", 'UNI', " + user + ", " + cat("'bench-'", pad(num+" % 10000")) + ", " + cat("'I'", pad(num+" % 50000")) + ", " +
			cat("'B'", pad(num+" % 50000")) + ", 'MAIN', ?, ?, ?, 0, 'complete', 1, ?" + from,
			[]any{at, at.AddDate(0, 0, 21), at.AddDate(0, 0, 7), at.AddDate(0, 0, 7), cs, n}},
		{"INSERT INTO pk_circ_fees (id, institution, user_id, primary_id, type, loan_id, barcode, description, amount, paid, waived, currency, status, created_by, created_at, updated_at, version) SELECT " +
			cat("'F'", pad(num)) + ", 'UNI', " + cat("'U'", pad("("+num+" * 10) % 10000")) + ", 'bench', 'overdue_fine', " + cat("'L'", pad(num+" * 10")) +
			", '', 'Overdue fine', 100, 100, 0, 'USD', 'closed', '', ?, ?, 1" + from,
			[]any{at.AddDate(0, 0, 7), at.AddDate(0, 0, 8), cs, n / 10}},
		{"INSERT INTO pk_circ_fee_transactions (id, institution, fee_id, kind, amount, reason, actor, at) SELECT " +
			cat("'T'", pad(num)) + ", 'UNI', " + cat("'F'", pad(num)) + ", 'payment', 100, '', 'desk', ?" + from,
			[]any{at.AddDate(0, 0, 8), cs, n / 10}},
		{"INSERT INTO pk_circ_requests (id, institution, user_id, primary_id, level, item_id, barcode, title_id, title, pickup_library, delivery_address, not_needed_after, hold_shelf_days, status, fee_id, placed_at, closed_at, close_reason, closed_by, version, updated_at) SELECT " +
			cat("'R'", pad(num)) + ", 'UNI', " + user + ", 'bench', 'item', " + cat("'I'", pad(num+" % 50000")) + ", '', '', '', 'MAIN', '', '', 0, 'fulfilled', '', ?, ?, '', '', 1, ?" + from,
			[]any{at, at.AddDate(0, 0, 2), at.AddDate(0, 0, 2), cs, n / 10}},
	} {
		if err := db.Exec(s.q, s.args...).Error; err != nil {
			b.Fatal(s.q, err)
		}
	}
	if d == "postgres" {
		if err := db.Exec("ANALYZE").Error; err != nil {
			b.Fatal(err)
		}
	}
	var got int64
	if err := db.Raw("SELECT COUNT(*) FROM pk_circ_loans").Scan(&got).Error; err != nil || got != int64(n) {
		b.Fatalf("seeded %d loans (%v), want %d", got, err, n)
	}
}

// watchHeap samples the heap in use every 20 ms, after a collection, until
// the function it returns is called, which answers the peak in MiB.
func watchHeap() func() float64 {
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	return func() float64 {
		close(stop)
		wg.Wait()
		return float64(peak.Load()) / (1 << 20)
	}
}
