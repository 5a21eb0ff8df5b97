package txctx_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/txctx"
)

type row struct {
	ID string `gorm:"primaryKey;size:36"`
}

func (row) TableName() string { return "pk_txctx_rows" }

// onePool gives db a single connection, so that anything that would go
// to the pool while a transaction holds it waits: the test's deadline
// ends the wait and fails the test instead of hanging it.
func onePool(t *testing.T, db *gorm.DB) context.Context {
	t.Helper()
	if err := db.Migrator().CreateTable(&row{}); err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func ids(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	var out []string
	if err := db.Model(&row{}).Order("id").Pluck("id", &out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

var errNo = errors.New("no")

func TestATransactionCommitsOrRollsBackWhatItsContextWrote(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := onePool(t, db)
		var told []string
		write := func(ctx context.Context, id string) error {
			if err := txctx.DB(ctx, db).Create(&row{ID: id}).Error; err != nil {
				return err
			}
			txctx.AfterCommit(ctx, func() { told = append(told, id) })
			return nil
		}
		if err := txctx.Transaction(ctx, db, func(ctx context.Context, tx *gorm.DB) error {
			if err := write(ctx, "a"); err != nil {
				return err
			}
			if len(told) != 0 {
				t.Error("after-commit work ran before the commit")
			}
			// Read through the context: the transaction's own write.
			var n int64
			if err := txctx.DB(ctx, db).Model(&row{}).Count(&n).Error; err != nil || n != 1 {
				t.Errorf("inside the transaction: %d rows, %v", n, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if got := ids(t, db); !slices.Equal(got, []string{"a"}) || !slices.Equal(told, []string{"a"}) {
			t.Fatalf("committed: rows %v, told %v", got, told)
		}
		err := txctx.Transaction(ctx, db, func(ctx context.Context, tx *gorm.DB) error {
			if err := write(ctx, "b"); err != nil {
				return err
			}
			return errNo
		})
		if !errors.Is(err, errNo) {
			t.Fatalf("got %v", err)
		}
		if got := ids(t, db); !slices.Equal(got, []string{"a"}) || !slices.Equal(told, []string{"a"}) {
			t.Fatalf("rolled back: rows %v, told %v", got, told)
		}
		// Without a transaction, a write is its own and is told at once;
		// there is nothing to roll back.
		txctx.AfterRollback(ctx, func() { told = append(told, "undone") })
		if err := write(ctx, "c"); err != nil || !slices.Equal(told, []string{"a", "c"}) {
			t.Fatalf("alone: %v, told %v", err, told)
		}
	})
}

func TestAFailedSavepointLeavesTheOuterTransactionGoing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := onePool(t, db)
		var told []string
		err := txctx.Transaction(ctx, db, func(ctx context.Context, tx *gorm.DB) error {
			if err := tx.Create(&row{ID: "a"}).Error; err != nil {
				return err
			}
			txctx.AfterCommit(ctx, func() { told = append(told, "a") })
			// A nested call that fails on the database itself (the key
			// of a): on PostgreSQL the error would abort the whole
			// transaction, were it not rolled back to its savepoint.
			err := txctx.Transaction(ctx, db, func(ctx context.Context, tx *gorm.DB) error {
				txctx.AfterCommit(ctx, func() { told = append(told, "failed") })
				txctx.AfterRollback(ctx, func() { told = append(told, "undone") })
				if err := tx.Create(&row{ID: "x"}).Error; err != nil {
					return err
				}
				return tx.Create(&row{ID: "a"}).Error
			})
			if err == nil {
				t.Error("a second row a was written")
			}
			if !slices.Equal(told, []string{"undone"}) {
				t.Errorf("a failed savepoint: told %v, want its rollback work at once", told)
			}
			told = nil
			// A nested call that succeeds is committed with the outer one.
			if err := txctx.Transaction(ctx, db, func(ctx context.Context, tx *gorm.DB) error {
				txctx.AfterCommit(ctx, func() { told = append(told, "b") })
				txctx.AfterRollback(ctx, func() { told = append(told, "b undone") })
				return txctx.DB(ctx, db).Create(&row{ID: "b"}).Error
			}); err != nil {
				return err
			}
			if len(told) != 0 {
				t.Error("a savepoint's work ran before the commit")
			}
			return tx.Create(&row{ID: "c"}).Error
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(t, db); !slices.Equal(got, []string{"a", "b", "c"}) || !slices.Equal(told, []string{"a", "b"}) {
			t.Fatalf("rows %v, told %v; want a, b, c told a, b", got, told)
		}
	})
}

func TestACallersTransactionIsJoinedAndEndedByTheCaller(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := onePool(t, db)
		for _, commit := range []bool{true, false} {
			var told []string
			tx := db.WithContext(ctx).Begin()
			if tx.Error != nil {
				t.Fatal(tx.Error)
			}
			tctx, end := txctx.With(ctx, tx)
			if !txctx.In(tctx) || txctx.In(txctx.Without(tctx)) || txctx.In(ctx) {
				t.Fatal("In tells whether a context carries a transaction")
			}
			id := "rolled-back"
			if commit {
				id = "committed"
			}
			if err := txctx.Transaction(tctx, db, func(ctx context.Context, _ *gorm.DB) error {
				txctx.AfterCommit(ctx, func() { told = append(told, id) })
				return txctx.DB(ctx, db).Create(&row{ID: id}).Error
			}); err != nil {
				t.Fatal(err)
			}
			txctx.AfterCommit(tctx, func() { told = append(told, "caller") })
			txctx.AfterRollback(tctx, func() { told = append(told, "undone") })
			if len(told) != 0 {
				t.Fatal("work ran before the caller ended the transaction")
			}
			if commit {
				err := tx.Commit().Error
				end(err == nil)
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if err := tx.Rollback().Error; err != nil {
					t.Fatal(err)
				}
				end(false)
			}
			end(true) // only the first call counts
			want := []string{"undone"}
			if commit {
				want = []string{id, "caller"}
			}
			if !slices.Equal(told, want) {
				t.Fatalf("commit %v: told %v, want %v", commit, told, want)
			}
		}
		if got := ids(t, db); !slices.Equal(got, []string{"committed"}) {
			t.Fatalf("rows %v", got)
		}
	})
}

func TestAPanicRollsBackAndRunsTheRollbackWork(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := onePool(t, db)
		var told []string
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Errorf("recovered %v, want the panic to go on", r)
				}
			}()
			_ = txctx.Transaction(ctx, db, func(ctx context.Context, tx *gorm.DB) error {
				txctx.AfterCommit(ctx, func() { told = append(told, "committed") })
				txctx.AfterRollback(ctx, func() { told = append(told, "undone") })
				if err := tx.Create(&row{ID: "a"}).Error; err != nil {
					return err
				}
				panic("boom")
			})
		}()
		if got := ids(t, db); len(got) != 0 || !slices.Equal(told, []string{"undone"}) {
			t.Fatalf("rows %v, told %v", got, told)
		}
	})
}

func TestNoTransactionIsNoneCarried(t *testing.T) {
	ctx, end := txctx.With(context.Background(), nil)
	if txctx.In(ctx) {
		t.Fatal("a nil transaction is carried")
	}
	end(true)
}
