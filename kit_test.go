package patronkit_test

import (
	"context"
	"log/slog"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/internal/dbtest"
)

// TestARoleAssignedOnOneInstanceHoldsOnAnother runs two kits on one
// database, as two instances behind a load balancer.
func TestARoleAssignedOnOneInstanceHoldsOnAnother(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		open := func() *patronkit.Kit {
			k, err := patronkit.New(db, &patronkit.Config{Policies: casbinmodel.FromDB(db), PINCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(k.Close)
			if err := k.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			return k
		}
		a, b := open(), open()
		req := casbinmodel.Request{Institution: "UNI", Subject: "ann", Method: "DELETE", Path: "/users/x"}
		if ok, _ := b.Access.Allow(ctx, req); ok {
			t.Fatal("allowed before any role")
		}
		if err := a.Access.AssignRole(ctx, "UNI", "ann", "user-administrator", "*"); err != nil {
			t.Fatal(err)
		}
		if err := b.RefreshPolicies(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.Access.Allow(ctx, req); !ok || err != nil {
			t.Fatalf("the role assigned on the other instance does not hold here: %v", err)
		}
		if err := a.Access.RevokeRole(ctx, "UNI", "ann", "user-administrator", "*"); err != nil {
			t.Fatal(err)
		}
		if err := b.RefreshPolicies(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, _ := b.Access.Allow(ctx, req); ok {
			t.Fatal("a revoked role still holds on the other instance")
		}
	})
}

func TestNewRefusesBadConfigurationWithoutPanicking(t *testing.T) {
	if _, err := patronkit.New(nil, nil); err == nil {
		t.Fatal("New without a database")
	}
	db := dbtest.Open(t, "sqlite")
	if _, err := patronkit.New(db, &patronkit.Config{PINCost: -1}); err == nil {
		t.Fatal("a negative PIN cost")
	}
	if _, err := patronkit.New(db, &patronkit.Config{PINCost: 99}); err == nil {
		t.Fatal("a PIN cost beyond bcrypt's")
	}
}
