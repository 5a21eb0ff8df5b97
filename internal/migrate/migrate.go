// Package migrate runs the versioned schema migrations of every module
// under a database lock, so that two instances starting at once do not both
// migrate.
package migrate

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Table is where applied migrations are recorded.
const Table = "pk_migrations"

const lockName = "patronkit_migrate"

// Run applies the migrations that the database has not seen yet, in order,
// while holding a lock: pg_advisory_lock on PostgreSQL, GET_LOCK on MySQL,
// and on SQLite a process-wide mutex around one transaction.
func Run(ctx context.Context, db *gorm.DB, ms []*gormigrate.Migration) error {
	db = db.WithContext(ctx)
	opts := &gormigrate.Options{TableName: Table, IDColumnName: "id", IDColumnSize: 255}
	run := func(tx *gorm.DB) error { return gormigrate.New(tx, opts, ms).Migrate() }
	switch db.Dialector.Name() {
	case "postgres":
		return db.Connection(func(pinned *gorm.DB) error {
			conn := fresh(pinned)
			if err := conn.Exec("SELECT pg_advisory_lock(hashtext(?))", lockName).Error; err != nil {
				return fmt.Errorf("migrate: lock: %w", err)
			}
			defer fresh(pinned).Exec("SELECT pg_advisory_unlock(hashtext(?))", lockName)
			return run(fresh(pinned))
		})
	case "mysql":
		return db.Connection(func(pinned *gorm.DB) error {
			conn := fresh(pinned)
			var got int
			if err := conn.Raw("SELECT GET_LOCK(?, 120)", lockName).Scan(&got).Error; err != nil {
				return fmt.Errorf("migrate: lock: %w", err)
			}
			if got != 1 {
				return fmt.Errorf("migrate: another instance held the migration lock for 120 s")
			}
			defer fresh(pinned).Exec("SELECT RELEASE_LOCK(?)", lockName)
			return run(fresh(pinned))
		})
	default:
		// SQLite: one process at a time through a mutex, and the whole run
		// in one transaction (SQLite's DDL is transactional) so that another
		// process waits on the database's write lock.
		sqliteMu.Lock()
		defer sqliteMu.Unlock()
		return gormigrate.New(db, &gormigrate.Options{TableName: Table, IDColumnName: "id", IDColumnSize: 255, UseTransaction: true}, ms).Migrate()
	}
}

var sqliteMu sync.Mutex

// fresh starts a new statement chain on the connection that
// gorm.DB.Connection pinned: chaining on the pinned handle itself would carry
// one statement's state into the next.
func fresh(pinned *gorm.DB) *gorm.DB { return pinned.Session(&gorm.Session{NewDB: true}) }
