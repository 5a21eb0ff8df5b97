package dbtest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/adapters/sqldb"
)

type dbtestProbe struct {
	ID   uint `gorm:"primaryKey"`
	Name string
}

func dialectOf(db *gorm.DB) sqldb.Dialect { return sqldb.Dialect(db.Dialector.Name()) }

// location names where db keeps its tables: the SQLite file, the PostgreSQL
// schema or the MySQL database.
func location(t *testing.T, db *gorm.DB) string {
	t.Helper()
	var name string
	var err error
	switch dialectOf(db) {
	case sqldb.SQLite:
		err = db.Raw("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&name).Error
	case sqldb.Postgres:
		err = db.Raw("SELECT current_schema()").Scan(&name).Error
	case sqldb.MySQL:
		err = db.Raw("SELECT DATABASE()").Scan(&name).Error
	}
	if err != nil || name == "" {
		t.Fatalf("location: %q, %v", name, err)
	}
	return name
}

// exists tells whether the location of a database opened earlier is still
// there, as seen from db.
func exists(t *testing.T, db *gorm.DB, loc string) bool {
	t.Helper()
	var n int64
	var err error
	switch dialectOf(db) {
	case sqldb.SQLite:
		_, statErr := os.Stat(loc)
		return statErr == nil
	case sqldb.Postgres:
		err = db.Raw("SELECT count(*) FROM pg_namespace WHERE nspname = ?", loc).Scan(&n).Error
	case sqldb.MySQL:
		err = db.Raw("SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", loc).Scan(&n).Error
	}
	if err != nil {
		t.Fatalf("exists %s: %v", loc, err)
	}
	return n > 0
}

func TestIsolation(t *testing.T) {
	Each(t, func(t *testing.T, db *gorm.DB) {
		if err := db.AutoMigrate(&dbtestProbe{}); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		if err := db.Create(&dbtestProbe{Name: "first"}).Error; err != nil {
			t.Fatalf("insert: %v", err)
		}

		other := Open(t, dialectOf(db))
		if location(t, other) == location(t, db) {
			t.Fatalf("two Opens share %s", location(t, db))
		}
		if other.Migrator().HasTable(&dbtestProbe{}) {
			t.Fatalf("table created in one Open is visible in another")
		}
		// The same table can be made again, empty, without a clash.
		if err := other.AutoMigrate(&dbtestProbe{}); err != nil {
			t.Fatalf("migrate other: %v", err)
		}
		var n int64
		if err := other.Model(&dbtestProbe{}).Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("other has %d rows (%v), want 0", n, err)
		}
		if err := db.Model(&dbtestProbe{}).Count(&n).Error; err != nil || n != 1 {
			t.Fatalf("first has %d rows (%v), want 1", n, err)
		}
	})
}

func TestServerDatabasesAreOwnSchemaOrDatabase(t *testing.T) {
	Each(t, func(t *testing.T, db *gorm.DB) {
		loc := location(t, db)
		switch dialectOf(db) {
		case sqldb.Postgres, sqldb.MySQL:
			if !strings.HasPrefix(loc, "t_") {
				t.Fatalf("tables land in %q, want a t_ schema or database of their own", loc)
			}
		}
		if dialectOf(db) == sqldb.Postgres {
			// search_path holds the test schema only: nothing reaches public.
			var path string
			if err := db.Raw("SHOW search_path").Scan(&path).Error; err != nil {
				t.Fatal(err)
			}
			if strings.Trim(path, `"`) != loc {
				t.Fatalf("search_path = %q, want %q", path, loc)
			}
		}
	})
}

func TestCleanupDropsDatabase(t *testing.T) {
	Each(t, func(t *testing.T, db *gorm.DB) {
		var loc string
		t.Run("child", func(t *testing.T) {
			child := Open(t, dialectOf(db))
			if err := child.AutoMigrate(&dbtestProbe{}); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			loc = location(t, child)
			if !exists(t, db, loc) {
				t.Fatalf("%s not found while in use", loc)
			}
		})
		if exists(t, db, loc) {
			t.Fatalf("%s still exists after its test ended", loc)
		}
	})
}

// recorder stands in for a testing.TB to watch Open end a test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingDSN(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		for _, dialect := range []sqldb.Dialect{sqldb.Postgres, sqldb.MySQL} {
			t.Run(fmt.Sprintf("%s/CI=%s", dialect, ci), func(t *testing.T) {
				t.Setenv("CI", ci)
				t.Setenv(EnvVar(dialect), "")
				r := &recorder{TB: t}
				done := make(chan struct{})
				go func() {
					defer close(done)
					Open(r, dialect)
				}()
				<-done
				env := EnvVar(dialect)
				if ci == "true" {
					if r.skipped != "" || !strings.Contains(r.failed, env) {
						t.Fatalf("CI: failed %q, skipped %q; want a failure naming %s", r.failed, r.skipped, env)
					}
				} else if r.failed != "" || !strings.Contains(r.skipped, env) {
					t.Fatalf("failed %q, skipped %q; want a skip naming %s", r.failed, r.skipped, env)
				}
			})
		}
	}
}

func TestWithMySQLDatabase(t *testing.T) {
	for _, c := range []struct{ in, name, want string }{
		{"u:p@tcp(127.0.0.1:3306)/patronkit_test", "t_1", "u:p@tcp(127.0.0.1:3306)/t_1"},
		{"u:p@tcp(127.0.0.1:3306)/patronkit_test?tls=false&x=1", "t_1", "u:p@tcp(127.0.0.1:3306)/t_1?tls=false&x=1"},
		{"mysql://u:p@tcp(h:1)/db", "", "mysql://u:p@tcp(h:1)/"},
		{"u:p/q@tcp(h:1)/", "t_2", "u:p/q@tcp(h:1)/t_2"},
	} {
		got, err := withMySQLDatabase(c.in, c.name)
		if err != nil || got != c.want {
			t.Errorf("withMySQLDatabase(%q, %q) = %q, %v; want %q", c.in, c.name, got, err, c.want)
		}
	}
	if _, err := withMySQLDatabase("u:p@tcp(h:1)", "x"); err == nil {
		t.Errorf("DSN without /dbname accepted")
	}
}

func TestWithSearchPath(t *testing.T) {
	got, err := withSearchPath("postgres://u:p@127.0.0.1:5432/db?sslmode=disable&search_path=public", "t_ab")
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://u:p@127.0.0.1:5432/db?search_path=t_ab&sslmode=disable"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func BenchmarkEachB(b *testing.B) {
	EachB(b, func(b *testing.B, db *gorm.DB) {
		for b.Loop() {
			if err := db.Exec("SELECT 1").Error; err != nil {
				b.Fatal(err)
			}
		}
	})
}
