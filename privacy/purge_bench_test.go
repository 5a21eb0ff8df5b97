package privacy_test

import (
	"context"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

// seedPurgeable adds n users past their purge date, copies of one made
// through the service, in one INSERT ... SELECT over a table of digits.
func seedPurgeable(b *testing.B, k *patronkittest.Kit, n int) {
	b.Helper()
	tpl := patronkittest.User(b, k, inst, purgeable(longPast))
	db := k.DB
	if err := db.Exec("CREATE TABLE bench_digits (d INTEGER NOT NULL)").Error; err != nil {
		b.Fatal(err)
	}
	if err := db.Exec("INSERT INTO bench_digits (d) VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)").Error; err != nil {
		b.Fatal(err)
	}
	cols, err := db.Migrator().ColumnTypes("pk_users")
	if err != nil {
		b.Fatal(err)
	}
	text, concat := "TEXT", func(a, b string) string { return a + " || " + b }
	if db.Dialector.Name() == "mysql" {
		text, concat = "CHAR", func(a, b string) string { return "CONCAT(" + a + ", " + b + ")" }
	}
	num := "CAST(n.n AS " + text + ")"
	var names, exprs []string
	for _, c := range cols {
		names = append(names, c.Name())
		switch c.Name() {
		case "id":
			exprs = append(exprs, concat("'bench-'", num))
		case "primary_id", "primary_id_key":
			exprs = append(exprs, concat("'bench-user-'", num))
		default:
			exprs = append(exprs, "u."+c.Name())
		}
	}
	q := "INSERT INTO pk_users (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(exprs, ", ") +
		" FROM pk_users u, (SELECT a.d + 10*b.d + 100*c.d + 1000*d.d + 10000*e.d + 100000*f.d AS n FROM bench_digits a, bench_digits b, bench_digits c, bench_digits d, bench_digits e, bench_digits f) n" +
		" WHERE u.id = ? AND n.n < ?"
	if err := db.Exec(q, tpl.ID, n-1).Error; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPurge purges b.N users past their purge date, each owing
// nothing and with no records, in one run. The figure of the README: go
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
		b.ResetTimer()
		run, err := k.Purge.Purge(ctx, inst, false)
		if err != nil || run.Purged != int64(b.N) {
			b.Fatalf("run %+v, %v", run, err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "users/s")
	})
}
