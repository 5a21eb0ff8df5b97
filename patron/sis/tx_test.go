package sis_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron/sis"
)

// A run started within the caller's transaction starts when it commits;
// rolled back, it never existed and its upload is gone. The pool has one
// connection: a call that went to it while the transaction holds it would
// wait until the test's deadline.
func TestARunStartedInATransactionStartsWhenItCommits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{})
		sqlDB, err := db.DB()
		if err != nil {
			t.Fatal(err)
		}
		sqlDB.SetMaxOpenConns(1)
		ctx, cancel := context.WithTimeout(e.ctx, 2*time.Minute)
		defer cancel()
		errHost := errors.New("the host's own step failed")
		for _, commit := range []bool{false, true} {
			var id string
			err := txctx.Transaction(ctx, db, func(ctx context.Context, tx *gorm.DB) error {
				r, err := e.sis.StartRun(ctx, "UNI", "SIS", sis.RunOptions{Upload: strings.NewReader(usersXML(userXML("ann", "Ann", "Lee"))), UploadName: "users.xml"})
				if err != nil {
					return err
				}
				id = r.ID
				if got, err := e.sis.GetRun(ctx, "UNI", id); err != nil || got.Status != sis.RunQueued {
					t.Errorf("within the transaction: %+v, %v; want it queued", got, err)
				}
				if !commit {
					return errHost
				}
				return nil
			})
			if !commit {
				if !errors.Is(err, errHost) {
					t.Fatalf("got %v", err)
				}
				if _, err := e.sis.GetRun(ctx, "UNI", id); !errors.Is(err, fault.ErrNotFound) {
					t.Fatalf("a rolled back run: %v, want it NotFound", err)
				}
				if files, err := os.ReadDir(e.tmp); err != nil || len(files) != 0 {
					t.Fatalf("a rolled back run's upload is kept: %v, %v", files, err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			done, err := e.sis.Wait(ctx, id)
			if err != nil || counts(done) != "succeeded created=1 updated=0 unchanged=0 rejected=0 failed=0 deactivated=0" {
				t.Fatalf("the committed run: %s, %v", counts(done), err)
			}
		}
	})
}
