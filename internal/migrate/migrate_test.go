package migrate_test

import (
	"context"
	"sync"
	"testing"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
)

// TestInstancesStartingTogetherMigrateOnce starts several instances at once
// on one database: the lock lets one apply each migration and the others
// find it applied.
func TestInstancesStartingTogetherMigrateOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		var mu sync.Mutex
		applied := 0
		ms := []*gormigrate.Migration{{
			ID: "0001_things",
			Migrate: func(tx *gorm.DB) error {
				mu.Lock()
				applied++
				mu.Unlock()
				// Not idempotent on purpose: a second run would fail.
				return tx.Exec("CREATE TABLE things (id INTEGER PRIMARY KEY)").Error
			},
		}}
		const instances = 4
		errs := make(chan error, instances)
		var wg sync.WaitGroup
		for i := 0; i < instances; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- migrate.Run(context.Background(), db, ms)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("an instance failed to migrate: %v", err)
			}
		}
		if applied != 1 {
			t.Fatalf("the migration ran %d times", applied)
		}
		// A restart finds nothing to do.
		if err := migrate.Run(context.Background(), db, ms); err != nil || applied != 1 {
			t.Fatalf("rerun: %v, applied %d times", err, applied)
		}
	})
}
