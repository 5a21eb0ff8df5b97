package patronkit_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// enrolment is a row of the host's own table, in the same database.
type enrolment struct {
	ID     uint   `gorm:"primaryKey"`
	UserID string `gorm:"size:36;not null"`
	Course string `gorm:"size:64;not null"`
}

func (enrolment) TableName() string { return "host_enrolments" }

// heard records the changes listeners are told of.
type heard struct {
	mu      sync.Mutex
	changes []string
}

func (h *heard) UserChanged(_ context.Context, c patron.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := ""
	if c.After != nil {
		id = c.After.PrimaryID
	} else if c.Before != nil {
		id = c.Before.PrimaryID
	}
	h.changes = append(h.changes, c.Action+" "+id)
}

func (h *heard) told() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.changes)
}

// txKit is a kit over db whose pool has one connection, and a context
// whose deadline ends the test should any call inside a host's
// transaction go to the pool (it would wait for the transaction, which
// holds that connection, forever).
type txKit struct {
	*patronkit.Kit
	db    *gorm.DB
	ctx   context.Context
	heard *heard
}

// library gives UNI of k the library MAIN, its item B1 and the terms of
// use.
func library(ctx context.Context, t *testing.T, k *patronkit.Kit, terms circulation.Terms) {
	t.Helper()
	if _, err := k.Circulation.CreateLibrary(ctx, "UNI", &circulation.Library{Code: "MAIN", Name: "Main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Circulation.CreateItem(ctx, "UNI", &circulation.Item{Barcode: "B1", Title: "Book", Library: "MAIN"}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Circulation.ReplaceRules(ctx, "UNI", 0, []circulation.Rule{{Terms: terms}}, nil); err != nil {
		t.Fatal(err)
	}
}

func newTxKit(t *testing.T, db *gorm.DB, cfg patronkit.Config) *txKit {
	t.Helper()
	h := &heard{}
	cfg.Listeners = append(cfg.Listeners, h)
	cfg.PINCost, cfg.Logger = bcrypt.MinCost, slog.New(slog.DiscardHandler)
	cfg.Now = func() time.Time { return time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC) }
	k, err := patronkit.New(db, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	if err := k.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrator().CreateTable(&enrolment{}); err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	return &txKit{Kit: k, db: db, ctx: ctx, heard: h}
}

func (k *txKit) enrolments(t *testing.T) []string {
	t.Helper()
	var out []string
	if err := k.db.WithContext(k.ctx).Model(&enrolment{}).Order("course").Pluck("course", &out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

func (k *txKit) exists(t *testing.T, primaryID string) bool {
	t.Helper()
	_, err := k.Patrons.Get(k.ctx, "UNI", primaryID)
	if err != nil && !errors.Is(err, fault.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

var errHostFailed = errors.New("the host's own step failed")

func TestAHostCreatesAUserAndItsOwnRowInOneTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		k := newTxKit(t, db, patronkit.Config{})
		for _, commit := range []bool{false, true} {
			err := k.InTx(k.ctx, func(ctx context.Context, tx *gorm.DB) error {
				u, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
				if err != nil {
					return err
				}
				if err := tx.Create(&enrolment{UserID: u.ID, Course: "BIO-101"}).Error; err != nil {
					return err
				}
				// Within the transaction its own writes are read back.
				if got, err := k.Patrons.Get(ctx, "UNI", "jdoe"); err != nil || got.ID != u.ID {
					t.Errorf("read back within the transaction: %+v, %v", got, err)
				}
				if told := k.heard.told(); len(told) != 0 {
					t.Errorf("listeners told %v before the commit", told)
				}
				if !commit {
					return errHostFailed
				}
				return nil
			})
			if !commit {
				if !errors.Is(err, errHostFailed) {
					t.Fatalf("InTx returned %v, want the host's error", err)
				}
				if k.exists(t, "jdoe") || len(k.enrolments(t)) != 0 || len(k.heard.told()) != 0 {
					t.Fatalf("rolled back: user kept %v, enrolments %v, listeners told %v", k.exists(t, "jdoe"), k.enrolments(t), k.heard.told())
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if !k.exists(t, "jdoe") || !slices.Equal(k.enrolments(t), []string{"BIO-101"}) {
				t.Fatalf("committed: user kept %v, enrolments %v", k.exists(t, "jdoe"), k.enrolments(t))
			}
			if told := k.heard.told(); !slices.Equal(told, []string{"created jdoe"}) {
				t.Fatalf("listeners told %v after the commit", told)
			}
		}
	})
}

// A host that opened its transaction itself passes it with WithTx and
// ends it.
func TestAHostsOwnTransactionIsJoined(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		k := newTxKit(t, db, patronkit.Config{})
		for _, commit := range []bool{false, true} {
			tx := db.WithContext(k.ctx).Begin()
			if tx.Error != nil {
				t.Fatal(tx.Error)
			}
			ctx, end := patronkit.WithTx(k.ctx, tx)
			if patronkit.TxFrom(ctx) == nil || patronkit.TxFrom(k.ctx) != nil {
				t.Fatal("TxFrom names the transaction a context carries")
			}
			u, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"})
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Create(&enrolment{UserID: u.ID, Course: "BIO-101"}).Error; err != nil {
				t.Fatal(err)
			}
			if commit {
				err = tx.Commit().Error
			} else {
				err = tx.Rollback().Error
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(k.heard.told()) != 0 {
				t.Fatal("listeners told before the host ended its transaction")
			}
			end(commit)
			if k.exists(t, "jdoe") != commit || len(k.enrolments(t)) != map[bool]int{true: 1}[commit] {
				t.Fatalf("commit %v: user kept %v, enrolments %v", commit, k.exists(t, "jdoe"), k.enrolments(t))
			}
			if want := map[bool][]string{true: {"created jdoe"}}[commit]; !slices.Equal(k.heard.told(), want) {
				t.Fatalf("commit %v: listeners told %v, want %v", commit, k.heard.told(), want)
			}
		}
	})
}

// A service call that fails inside the host's transaction, on a statement
// after it wrote, leaves nothing behind and does not end the transaction,
// even on PostgreSQL (where a failed statement ends a transaction unless
// it is rolled back to a savepoint).
func TestAFailedCallLeavesTheHostsTransactionGoing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		// The host's hook fails on the database for user "stuck": its
		// enrolment's key is taken.
		hook := patron.DeletionHookFunc(func(ctx context.Context, tx *gorm.DB, u *patron.User) error {
			if u.PrimaryID != "stuck" {
				return nil
			}
			return tx.Create(&enrolment{ID: 1, UserID: u.ID, Course: "CHEM-201"}).Error
		})
		k := newTxKit(t, db, patronkit.Config{DeletionHooks: []patron.DeletionHook{hook}})
		err := k.InTx(k.ctx, func(ctx context.Context, tx *gorm.DB) error {
			for _, id := range []string{"stuck", "jdoe"} {
				if _, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: id, FirstName: "F", LastName: "L"}); err != nil {
					return err
				}
			}
			if err := tx.Create(&enrolment{ID: 1, UserID: "x", Course: "BIO-101"}).Error; err != nil {
				return err
			}
			if err := k.Patrons.Delete(ctx, "UNI", "stuck"); err == nil {
				t.Error("the deletion went on past its hook's failure")
			}
			// Its first write (the version of the user's row) was undone.
			if u, err := k.Patrons.Get(ctx, "UNI", "stuck"); err != nil || u.Version != 1 {
				t.Errorf("after the failed deletion: %+v, %v", u, err)
			}
			if _, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "jdoe", FirstName: "J", LastName: "D"}); !errors.Is(err, fault.ErrConflict) {
				t.Errorf("a taken primary_id: %v, want a Conflict", err)
			}
			if _, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "next", FirstName: "N", LastName: "X"}); err != nil {
				return err
			}
			return tx.Create(&enrolment{ID: 2, UserID: "x", Course: "CHEM-201"}).Error
		})
		if err != nil {
			t.Fatal(err)
		}
		if !k.exists(t, "stuck") || !k.exists(t, "jdoe") || !k.exists(t, "next") || !slices.Equal(k.enrolments(t), []string{"BIO-101", "CHEM-201"}) {
			t.Fatalf("kept: stuck %v, jdoe %v, next %v, enrolments %v", k.exists(t, "stuck"), k.exists(t, "jdoe"), k.exists(t, "next"), k.enrolments(t))
		}
		if told := k.heard.told(); !slices.Equal(told, []string{"created stuck", "created jdoe", "created next"}) {
			t.Fatalf("listeners told %v", told)
		}
	})
}

func TestAHostsCirculationCallsCommitWithIt(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		k := newTxKit(t, db, patronkit.Config{})
		ctx := k.ctx
		library(ctx, t, k.Kit, circulation.Terms{LoanPeriod: 14, LoanPeriodUnit: circulation.Days, MaxLoans: 5, Currency: "USD"})
		for _, commit := range []bool{false, true} {
			err := k.InTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
				// A patron created in the transaction borrows in it.
				u, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe",
					Emails: []patron.Email{{EmailAddress: "jane@example.edu"}}})
				if err != nil {
					return err
				}
				if _, err := k.Circulation.CheckOut(ctx, "UNI", "jdoe", "B1", circulation.CheckOutOptions{}); err != nil {
					return err
				}
				if _, err := k.Circulation.AddFee(ctx, "UNI", "jdoe", circulation.NewFee{Amount: 500, Currency: "USD", Description: "Card"}); err != nil {
					return err
				}
				if bal, err := k.Circulation.Balance(ctx, "UNI", "jdoe"); err != nil || bal["USD"] != 500 {
					t.Errorf("balance within the transaction: %v, %v", bal, err)
				}
				if err := tx.Create(&enrolment{UserID: u.ID, Course: "BIO-101"}).Error; err != nil {
					return err
				}
				if !commit {
					return errHostFailed
				}
				return nil
			})
			it, ierr := k.Circulation.Item(ctx, "UNI", "B1")
			if ierr != nil {
				t.Fatal(ierr)
			}
			var notices int64
			if err := db.WithContext(ctx).Model(&circulation.Notice{}).Count(&notices).Error; err != nil {
				t.Fatal(err)
			}
			if !commit {
				if !errors.Is(err, errHostFailed) {
					t.Fatalf("InTx returned %v", err)
				}
				if k.exists(t, "jdoe") || it.Status != circulation.StatusAvailable || len(k.enrolments(t)) != 0 || notices != 0 {
					t.Fatalf("rolled back: user kept %v, item %s, enrolments %v, notices %d", k.exists(t, "jdoe"), it.Status, k.enrolments(t), notices)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			loans, err := k.Circulation.Loans(ctx, "UNI", "jdoe", true)
			if err != nil || len(loans) != 1 || it.Status != circulation.StatusOnLoan {
				t.Fatalf("committed: loans %v (%v), item %s", loans, err, it.Status)
			}
			if bal, err := k.Circulation.Balance(ctx, "UNI", "jdoe"); err != nil || bal["USD"] != 500 {
				t.Fatalf("committed: balance %v, %v", bal, err)
			}
			// The loan receipt and the fee's notice were written with them.
			if notices != 2 || len(k.enrolments(t)) != 1 {
				t.Fatalf("committed: notices %d, enrolments %v", notices, k.enrolments(t))
			}
		}
	})
}

// A deletion in the host's transaction runs its guards and hooks within it,
// and is undone whole with it: the roles the kit's hook took away too.
func TestAHostsDeletionRollsBackWithItsHooks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		var guarded []int64
		guard := patron.DeletionGuardFunc(func(ctx context.Context, u *patron.User) ([]string, error) {
			// The host's guard reads through the transaction: it sees the
			// row the host wrote in it.
			var n int64
			if err := patronkit.TxFrom(ctx).Model(&enrolment{}).Where("user_id = ?", u.ID).Count(&n).Error; err != nil {
				return nil, err
			}
			guarded = append(guarded, n)
			return nil, nil
		})
		hook := patron.DeletionHookFunc(func(ctx context.Context, tx *gorm.DB, u *patron.User) error {
			return tx.Where("user_id = ?", u.ID).Delete(&enrolment{}).Error
		})
		k := newTxKit(t, db, patronkit.Config{Policies: casbinmodel.FromDB(db), DeletionGuards: []patron.DeletionGuard{guard},
			DeletionHooks: []patron.DeletionHook{hook}})
		ctx := k.ctx
		u, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "boss", FirstName: "B", LastName: "S", RecordType: patron.RecordStaff})
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Access.AssignRole(ctx, "UNI", "boss", "user-administrator", "*"); err != nil {
			t.Fatal(err)
		}
		k.heard.changes = nil
		for _, commit := range []bool{false, true} {
			err := k.InTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
				if err := tx.Create(&enrolment{UserID: u.ID, Course: "BIO-101"}).Error; err != nil {
					return err
				}
				if err := k.Patrons.Delete(ctx, "UNI", "boss"); err != nil {
					return err
				}
				if !commit {
					return errHostFailed
				}
				return nil
			})
			if !slices.Equal(guarded, []int64{1}) {
				t.Fatalf("the guard counted %v enrolments, want the one the transaction wrote", guarded)
			}
			guarded = nil
			roles, rerr := k.Access.Roles(ctx, "UNI", "boss")
			if rerr != nil {
				t.Fatal(rerr)
			}
			if !commit {
				if !errors.Is(err, errHostFailed) {
					t.Fatalf("InTx returned %v", err)
				}
				if !k.exists(t, "boss") || len(roles) != 1 || len(k.heard.told()) != 0 {
					t.Fatalf("rolled back: user kept %v, roles %v, listeners told %v", k.exists(t, "boss"), roles, k.heard.told())
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.exists(t, "boss") || len(roles) != 0 || len(k.enrolments(t)) != 0 {
				t.Fatalf("committed: user kept %v, roles %v, enrolments %v", k.exists(t, "boss"), roles, k.enrolments(t))
			}
			if told := k.heard.told(); !slices.Equal(told, []string{"deleted boss"}) {
				t.Fatalf("listeners told %v", told)
			}
		}
	})
}

// Circulation's guard sees a loan made in the host's transaction.
func TestAHostCannotDeleteAPatronItLentToInTheSameTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		k := newTxKit(t, db, patronkit.Config{})
		ctx := k.ctx
		library(ctx, t, k.Kit, circulation.Terms{LoanPeriod: 14, LoanPeriodUnit: circulation.Days, Currency: "USD"})
		if _, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"}); err != nil {
			t.Fatal(err)
		}
		err := k.InTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
			if _, err := k.Circulation.CheckOut(ctx, "UNI", "jdoe", "B1", circulation.CheckOutOptions{}); err != nil {
				return err
			}
			err := k.Patrons.Delete(ctx, "UNI", "jdoe")
			if e, ok := fault.As(err); !ok || e.Kind != fault.Refused || !slices.Contains(e.Reasons, "has 1 open loan") {
				t.Errorf("deleting a patron with a loan of the same transaction: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if loans, err := k.Circulation.Loans(ctx, "UNI", "jdoe", true); err != nil || len(loans) != 1 {
			t.Fatalf("loans %v, %v", loans, err)
		}
	})
}

// A host's transaction that read before it deletes a patron still sees a
// loan committed meanwhile by another request: on MySQL its plain reads
// would see the snapshot of its first read.
func TestAHostsDeletionSeesALoanCommittedSinceItsFirstRead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		k, err := patronkit.New(db, &patronkit.Config{PINCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(k.Close)
		if err := k.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		library(ctx, t, k, circulation.Terms{LoanPeriod: 14, LoanPeriodUnit: circulation.Days, Currency: "USD"})
		if _, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe"}); err != nil {
			t.Fatal(err)
		}
		checkOut := func() {
			if _, err := k.Circulation.CheckOut(ctx, "UNI", "jdoe", "B1", circulation.CheckOutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		sqlite := db.Dialector.Name() == "sqlite"
		if sqlite {
			// The host's transaction holds the one writer: no check-out
			// commits while it is open.
			checkOut()
		}
		err = k.InTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
			// A first read that the audit trail does not record: a read
			// of a patron's loans puts its entry on the trail through the
			// transaction, which then holds the institution's trail, and
			// the other request's check-out would wait for it.
			if _, err := k.Circulation.Item(ctx, "UNI", "B1"); err != nil {
				return err
			}
			if !sqlite {
				checkOut() // another request, committed while the host's transaction is open
			}
			return k.Patrons.Delete(ctx, "UNI", "jdoe")
		})
		if e, ok := fault.As(err); !ok || e.Kind != fault.Refused || !slices.Contains(e.Reasons, "has 1 open loan") {
			t.Fatalf("deleting a patron who borrowed meanwhile: %v", err)
		}
	})
}
