// Package dbtest is the database matrix that patronkit's store tests run on:
// SQLite always, PostgreSQL and MySQL/MariaDB when their DSNs are in the
// environment (see PostgresEnv and MySQLEnv; `source .ci/databases.sh` starts
// local servers and exports both).
//
// Every *gorm.DB it hands out is opened with sqldb.Open and points at a new,
// empty database of its own, dropped when the test ends, so tests in
// different packages (which go test runs as parallel processes) and parallel
// tests within one package never see each other's tables:
//   - SQLite: a fresh file in the test's temporary directory;
//   - PostgreSQL: a schema t_<random hex> in the database the DSN names, made
//     the connection's only search_path, dropped with CASCADE afterwards;
//   - MySQL: a database t_<random hex> on the server the DSN names, dropped
//     afterwards (the DSN's user needs CREATE and DROP on any database).
//
// A missing DSN skips that dialect's subtest, or fails it when the
// environment variable CI is "true", so that CI cannot pass without
// exercising every database.
package dbtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/adapters/sqldb"
)

// Environment variables naming the servers to test against.
const (
	// PostgresEnv holds a postgres:// URL to a database that the user owns
	// (or may create schemas in), e.g.
	// postgres://patronkit:patronkit@127.0.0.1:5432/patronkit_test?sslmode=disable.
	PostgresEnv = "PATRONKIT_TEST_POSTGRES_DSN"
	// MySQLEnv holds a go-sql-driver DSN, optionally prefixed with mysql://,
	// e.g. patronkit:patronkit@tcp(127.0.0.1:3306)/patronkit_test; its user
	// must be allowed to create and drop databases. The database it names is
	// not used.
	MySQLEnv = "PATRONKIT_TEST_MYSQL_DSN"
)

// maxOpenConns caps each test's connection pool on the server databases, so
// that parallel tests and packages stay well below max_connections.
const maxOpenConns = 10

// Dialects returns every dialect of the matrix, in the order Each runs them.
func Dialects() []sqldb.Dialect {
	return []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres, sqldb.MySQL}
}

// EnvVar returns the environment variable holding the DSN for dialect, or ""
// for SQLite, which needs none.
func EnvVar(dialect sqldb.Dialect) string {
	switch dialect {
	case sqldb.Postgres:
		return PostgresEnv
	case sqldb.MySQL:
		return MySQLEnv
	default:
		return ""
	}
}

// Available reports whether dialect can be tested here: SQLite always, the
// others when their environment variable is set.
func Available(dialect sqldb.Dialect) bool {
	switch dialect {
	case sqldb.SQLite:
		return true
	case sqldb.Postgres, sqldb.MySQL:
		return os.Getenv(EnvVar(dialect)) != ""
	default:
		return false
	}
}

// Each runs fn once per dialect as subtests named "sqlite", "postgres" and
// "mysql", each with a new, empty database from Open. A dialect whose DSN is
// not set is skipped, or fails when CI is "true". The subtests run one after
// the other; fn may call t.Parallel.
func Each(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	for _, dialect := range Dialects() {
		t.Run(string(dialect), func(t *testing.T) {
			fn(t, Open(t, dialect))
		})
	}
}

// EachB runs fn once per available dialect as sub-benchmarks named like
// Each's subtests. Dialects whose DSN is not set are left out silently, in CI
// too. Every run of fn (the testing package calls it again for each b.N) gets
// a new, empty database from Open; the timer is reset after opening it.
func EachB(b *testing.B, fn func(b *testing.B, db *gorm.DB)) {
	b.Helper()
	for _, dialect := range Dialects() {
		if !Available(dialect) {
			continue
		}
		b.Run(string(dialect), func(b *testing.B) {
			db := Open(b, dialect)
			b.ResetTimer()
			fn(b, db)
		})
	}
}

// Open returns a new, empty database of the given dialect, opened with
// sqldb.Open, which is closed and dropped (schema, database or file) when tb
// and its subtests have finished. If the dialect's DSN is not set, Open skips
// tb, or fails it when the environment variable CI is "true".
func Open(tb testing.TB, dialect sqldb.Dialect) *gorm.DB {
	tb.Helper()
	switch dialect {
	case sqldb.SQLite:
		return openSQLite(tb)
	case sqldb.Postgres:
		return openPostgres(tb, requireDSN(tb, dialect))
	case sqldb.MySQL:
		return openMySQL(tb, requireDSN(tb, dialect))
	default:
		tb.Fatalf("dbtest: unknown dialect %q", dialect)
		return nil
	}
}

// requireDSN returns the DSN for a server dialect, or ends tb: Fatalf in CI,
// Skipf elsewhere.
func requireDSN(tb testing.TB, dialect sqldb.Dialect) string {
	tb.Helper()
	env := EnvVar(dialect)
	dsn := os.Getenv(env)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("dbtest: %s is not set: CI must test %s (source .ci/databases.sh)", env, dialect)
		}
		tb.Skipf("dbtest: %s is not set; skipping %s (`source .ci/databases.sh` starts local servers)", env, dialect)
	}
	if got := sqldb.DialectOf(dsn); got != dialect {
		tb.Fatalf("dbtest: %s does not look like a %s DSN (sqldb.DialectOf says %s)", env, dialect, got)
	}
	return dsn
}

func openSQLite(tb testing.TB) *gorm.DB {
	tb.Helper()
	// TempDir registers its removal first, so it runs after the close below.
	path := filepath.Join(tb.TempDir(), "patronkit.db")
	db, err := sqldb.Open(path)
	if err != nil {
		tb.Fatalf("dbtest: open sqlite %s: %v", path, err)
	}
	closeOnCleanup(tb, db)
	return db
}

func openPostgres(tb testing.TB, dsn string) *gorm.DB {
	tb.Helper()
	schema := uniqueName()
	testDSN, err := withSearchPath(dsn, schema)
	if err != nil {
		tb.Fatalf("dbtest: %s: %v", PostgresEnv, err)
	}
	if err := adminExec(dsn, `CREATE SCHEMA "`+schema+`"`); err != nil {
		tb.Fatalf("dbtest: postgres (%s): create schema %s: %v", PostgresEnv, schema, err)
	}
	// Cleanups run last-registered first: the pool is closed before the drop.
	tb.Cleanup(func() {
		if err := adminExec(dsn, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`); err != nil {
			tb.Errorf("dbtest: postgres: drop schema %s: %v", schema, err)
		}
	})
	return openPool(tb, sqldb.Postgres, testDSN)
}

func openMySQL(tb testing.TB, dsn string) *gorm.DB {
	tb.Helper()
	name := uniqueName()
	adminDSN, err := withMySQLDatabase(dsn, "")
	if err != nil {
		tb.Fatalf("dbtest: %s: %v", MySQLEnv, err)
	}
	testDSN, err := withMySQLDatabase(dsn, name)
	if err != nil {
		tb.Fatalf("dbtest: %s: %v", MySQLEnv, err)
	}
	// The server's default collation for utf8mb4 is kept, as production
	// databases get it too.
	if err := adminExec(adminDSN, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		tb.Fatalf("dbtest: mysql (%s): create database %s: %v", MySQLEnv, name, err)
	}
	tb.Cleanup(func() {
		if err := adminExec(adminDSN, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			tb.Errorf("dbtest: mysql: drop database %s: %v", name, err)
		}
	})
	return openPool(tb, sqldb.MySQL, testDSN)
}

// openPool opens the test's own pool on a server database and closes it on
// cleanup.
func openPool(tb testing.TB, dialect sqldb.Dialect, dsn string) *gorm.DB {
	tb.Helper()
	db, err := sqldb.Open(dsn)
	if err != nil {
		tb.Fatalf("dbtest: open %s (%s): %v", dialect, EnvVar(dialect), err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		tb.Fatalf("dbtest: %s: %v", dialect, err)
	}
	sqlDB.SetMaxOpenConns(maxOpenConns)
	closeOnCleanup(tb, db)
	return db
}

func closeOnCleanup(tb testing.TB, db *gorm.DB) {
	tb.Cleanup(func() {
		sqlDB, err := db.DB()
		if err != nil {
			tb.Errorf("dbtest: close: %v", err)
			return
		}
		// A test may have closed the pool itself; closing twice is harmless.
		_ = sqlDB.Close()
	})
}

// adminExec runs one statement on a short-lived single connection.
func adminExec(dsn, stmt string) error {
	db, err := sqldb.Open(dsn)
	if err != nil {
		return err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	sqlDB.SetMaxOpenConns(1)
	return db.Exec(stmt).Error
}

// uniqueName returns t_ followed by 16 random hex digits: a valid unquoted,
// lower-case identifier on every dialect.
func uniqueName() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return "t_" + hex.EncodeToString(b[:])
}

// withSearchPath sets the search_path run-time parameter of a postgres://
// URL, so that unqualified tables are created in and read from schema only.
func withSearchPath(dsn, schema string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		// url.Error repeats the URL, password included: keep only the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", fmt.Errorf("not a postgres:// URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// withMySQLDatabase replaces the database name of a go-sql-driver DSN
// ([mysql://]user:pass@tcp(host:port)/dbname?params), keeping the prefix
// and parameters. An empty name connects without a default database.
func withMySQLDatabase(dsn, name string) (string, error) {
	prefix := ""
	if strings.HasPrefix(dsn, "mysql://") {
		prefix, dsn = "mysql://", strings.TrimPrefix(dsn, "mysql://")
	}
	base, query, hasQuery := strings.Cut(dsn, "?")
	slash := strings.LastIndex(base, "/")
	if slash < 0 {
		return "", fmt.Errorf("no /dbname in MySQL DSN")
	}
	out := prefix + base[:slash+1] + name
	if hasQuery {
		out += "?" + query
	}
	return out, nil
}

// countSeq names each counter CountStatements registers, so that two on
// one database do not replace each other.
var countSeq atomic.Int64

// CountStatements counts the SQL statements db runs from now on (queries,
// inserts, updates, deletes, row and raw statements), for tests that hold
// a piece of work to a number of round trips.
func CountStatements(tb testing.TB, db *gorm.DB) *atomic.Int64 {
	tb.Helper()
	var n atomic.Int64
	inc := func(*gorm.DB) { n.Add(1) }
	name := fmt.Sprintf("dbtest:count:%d", countSeq.Add(1))
	cb := db.Callback()
	for _, err := range []error{
		cb.Query().Before("gorm:query").Register(name, inc),
		cb.Create().Before("gorm:create").Register(name, inc),
		cb.Update().Before("gorm:update").Register(name, inc),
		cb.Delete().Before("gorm:delete").Register(name, inc),
		cb.Row().Before("gorm:row").Register(name, inc),
		cb.Raw().Before("gorm:raw").Register(name, inc),
	} {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return &n
}
