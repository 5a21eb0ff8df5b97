package privacy_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

// seedPurgeable adds n users past their purge date, copies of one made
// through the service with an identifier, an email, an address and a
// statistic, in one INSERT ... SELECT per table over a table of digits;
// each has two returned loans and an entry on the audit trail (a read by
// staff), which the purge anonymizes and forgets.
func seedPurgeable(b *testing.B, k *patronkittest.Kit, n int) {
	b.Helper()
	tpl := patronkittest.User(b, k, inst, purgeable(longPast, func(u *patron.User) {
		u.UserGroup = "UNDERGRAD"
		u.Identifiers = []patron.Identifier{{IDType: "BARCODE", Value: "B-TEMPLATE"}}
		u.Emails = []patron.Email{{EmailAddress: "template@example.edu", Preferred: true, EmailTypes: []string{"personal"}}}
		u.Addresses = []patron.Address{{Line1: "1 Main St", City: "Springfield", Preferred: true, AddressTypes: []string{"home"}}}
		u.Statistics = []patron.Statistic{{StatisticCategory: "SCI"}}
	}))
	db := k.DB
	if err := db.Exec("CREATE TABLE bench_digits (d INTEGER NOT NULL)").Error; err != nil {
		b.Fatal(err)
	}
	if err := db.Exec("INSERT INTO bench_digits (d) VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)").Error; err != nil {
		b.Fatal(err)
	}
	text, concat := "TEXT", func(a, b string) string { return a + " || " + b }
	if db.Dialector.Name() == "mysql" {
		text, concat = "CHAR", func(a, b string) string { return "CONCAT(" + a + ", " + b + ")" }
	}
	num := "CAST(n.n AS " + text + ")"
	nums := " (SELECT a.d + 10*b.d + 100*c.d + 1000*d.d + 10000*e.d + 100000*f.d AS n FROM bench_digits a, bench_digits b, bench_digits c, bench_digits d, bench_digits e, bench_digits f) n"
	// copyRows copies the template's rows of table once per number, with
	// the columns of set computed.
	copyRows := func(table, key string, set map[string]string) {
		cols, err := db.Migrator().ColumnTypes(table)
		if err != nil {
			b.Fatal(err)
		}
		var names, exprs []string
		for _, c := range cols {
			names = append(names, c.Name())
			if e, ok := set[c.Name()]; ok {
				exprs = append(exprs, e)
			} else {
				exprs = append(exprs, "t."+c.Name())
			}
		}
		q := "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(exprs, ", ") +
			" FROM " + table + " t," + nums + " WHERE t." + key + " = ? AND n.n < ?"
		if err := db.Exec(q, tpl.ID, n-1).Error; err != nil {
			b.Fatal(q, err)
		}
	}
	user := concat("'bench-'", num)
	copyRows("pk_users", "id", map[string]string{"id": user, "primary_id": concat("'bench-user-'", num), "primary_id_key": concat("'bench-user-'", num)})
	for _, t := range []string{"pk_user_identifiers", "pk_user_emails", "pk_user_addresses", "pk_user_statistics"} {
		set := map[string]string{"id": concat("'"+t+"-'", num), "user_id": user}
		if t == "pk_user_identifiers" {
			set["value"], set["value_key"] = concat("'B-'", num), concat("'b-'", num)
		}
		copyRows(t, "user_id", set)
	}
	at := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for _, l := range []string{"L", "M"} {
		q := "INSERT INTO pk_circ_loans (id, institution, user_id, primary_id, item_id, item_barcode, library, loaned_at, due_at, returned_at, renewals, status, version, updated_at) SELECT " +
			concat("'"+l+"'", num) + ", ?, " + user + ", " + concat("'bench-user-'", num) + ", 'I1', 'B1', 'MAIN', ?, ?, ?, 0, 'complete', 1, ? FROM" + nums + " WHERE n.n < ?"
		if err := db.Exec(q, inst, at, at.AddDate(0, 0, 21), at.AddDate(0, 0, 7), at.AddDate(0, 0, 7), n-1).Error; err != nil {
			b.Fatal(q, err)
		}
	}
	ctx := patron.WithActor(context.Background(), staff)
	for from := 0; from < n-1; from += 1000 {
		var es []patron.AuditEvent
		for i := from; i < min(from+1000, n-1); i++ {
			es = append(es, patron.AuditEvent{Action: patron.AuditRead, PrimaryID: "bench-user-" + strconv.Itoa(i), What: "user"})
		}
		if err := k.Patrons.RecordAuditMany(ctx, inst, es); err != nil {
			b.Fatal(err)
		}
	}
	if db.Dialector.Name() == "postgres" {
		if err := db.Exec("ANALYZE").Error; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPurge purges b.N users past their purge date, each owing
// nothing, with four segments, two returned loans and an entry on the
// audit trail, in one run; it reports the users purged per second and the
// peak heap in use, which stays flat in the number of users (a batch at a
// time). The figure of the README: go
// test -run '^$' -bench Purge -benchtime 2000x ./privacy
func BenchmarkPurge(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		k := patronkittest.On(b, db, withKey)
		seedPurgeable(b, k, b.N)
		var users int64
		db.Table("pk_users").Count(&users)
		if users != int64(b.N) {
			b.Fatalf("%d users seeded, want %d", users, b.N)
		}
		ctx := patron.WithActor(context.Background(), staff)
		peak := watchHeap()
		b.ResetTimer()
		run, err := k.Purge.Purge(ctx, inst, false)
		b.StopTimer()
		heap := peak()
		if err != nil || run.Purged != int64(b.N) {
			b.Fatalf("run %+v, %v", run, err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "users/s")
		b.ReportMetric(heap, "peak-heap-MiB")
	})
}
