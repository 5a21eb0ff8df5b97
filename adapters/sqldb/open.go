// Package sqldb opens the databases patronkit runs on from a single DSN
// string: the embedded SQLite file by default, PostgreSQL or MySQL/MariaDB
// in production. Hosts that already hold a *gorm.DB do not need it.
package sqldb

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the database family behind a DSN.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
)

// DialectOf tells which database a DSN points at:
//   - postgres://... or postgresql://... is PostgreSQL;
//   - mysql://user:pass@tcp(host:port)/db?... or a go-sql-driver DSN
//     (user:pass@tcp(host)/db) is MySQL or MariaDB;
//   - anything else is a path to an SQLite file (or ":memory:").
func DialectOf(dsn string) Dialect {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return Postgres
	case strings.HasPrefix(dsn, "mysql://"), strings.Contains(dsn, "@tcp("), strings.Contains(dsn, "@unix("):
		return MySQL
	default:
		return SQLite
	}
}

// Open connects to the database a DSN names (see DialectOf) with the
// settings patronkit needs on each:
//   - SQLite: WAL journal, a busy timeout, foreign keys, and IMMEDIATE
//     transactions so that concurrent read-then-write transactions queue
//     instead of failing with "database is locked";
//   - MySQL: parseTime and UTC, utf8mb4;
//   - PostgreSQL: as given.
//
// On PostgreSQL and MySQL the pool keeps up to 32 connections, open and
// idle (database/sql would keep 2 idle, and open a new connection, with its
// authentication round trips, for most requests under load), each idle
// for at most 5 minutes. A host running many instances against one server
// lowers it through db.DB() to stay under the server's max_connections.
//
// Errors are translated (duplicate keys become gorm.ErrDuplicatedKey) and
// GORM's own logger is silent; patronkit logs through log/slog.
func Open(dsn string) (*gorm.DB, error) {
	cfg := &gorm.Config{
		Logger:         logger.Default.LogMode(logger.Silent),
		TranslateError: true,
		NowFunc:        nowUTC,
	}
	switch DialectOf(dsn) {
	case Postgres:
		return pooled(gorm.Open(postgres.Open(dsn), cfg))
	case MySQL:
		d, err := mysqlDSN(dsn)
		if err != nil {
			return nil, err
		}
		return pooled(gorm.Open(mysql.Open(d), cfg))
	default:
		db, err := gorm.Open(sqlite.Open(sqliteDSN(dsn)), cfg)
		if err != nil {
			return nil, err
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		// A handful of connections: readers proceed in parallel under WAL,
		// writers queue on the IMMEDIATE lock and the busy timeout.
		sqlDB.SetMaxOpenConns(4)
		sqlDB.SetMaxIdleConns(4)
		return db, nil
	}
}

// PoolSize is how many connections Open keeps to a PostgreSQL or MySQL
// server, open and idle.
const PoolSize = 32

func pooled(db *gorm.DB, err error) (*gorm.DB, error) {
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(PoolSize)
	sqlDB.SetMaxIdleConns(PoolSize)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

func sqliteDSN(path string) string {
	if path == "" {
		path = "patronkit.db"
	}
	params := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	if strings.Contains(path, "?") {
		return path + "&" + params
	}
	return path + "?" + params
}

func mysqlDSN(dsn string) (string, error) {
	dsn = strings.TrimPrefix(dsn, "mysql://")
	base, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("sqldb: mysql dsn: %w", err)
	}
	q.Set("parseTime", "true")
	q.Set("loc", "UTC")
	if q.Get("charset") == "" {
		q.Set("charset", "utf8mb4")
	}
	return base + "?" + q.Encode(), nil
}

func nowUTC() time.Time { return time.Now().UTC() }
