package patronkit_test

import (
	"context"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

// A role given is on the audit trail with what changed; one whose entry
// cannot be written is taken back, and the call fails.
func TestARoleChangeIsOnTheTrailOrUndone(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		k := patronkittest.On(t, db, func(c *patronkit.Config) { c.Policies = casbinmodel.FromDB(db) })
		ctx := context.Background()
		if _, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "clerk", FirstName: "C", LastName: "Lerk", RecordType: patron.RecordStaff}); err != nil {
			t.Fatal(err)
		}
		anywhere := func(string) (bool, error) { return true, nil }
		held, err := k.Roles.Of(ctx, "UNI", "clerk")
		if err != nil {
			t.Fatal(err)
		}
		if held, err = k.Roles.Replace(ctx, "UNI", "clerk", held.Tag, []casbinmodel.UserRole{{RoleType: "auditor", Scope: "*"}}, anywhere); err != nil {
			t.Fatal(err)
		}
		es, err := k.Privacy.Entries(ctx, "UNI", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		last := es[len(es)-1]
		if last.Action != patron.AuditUpdate || last.Subject != "clerk" || last.What != "user_roles" ||
			last.Details != `{"user_roles":{"added":[{"role_type":"auditor","scope":"*"}]}}` {
			t.Fatalf("the role's entry: %+v", last)
		}
		// Entries can no longer be written.
		if err := db.Exec("ALTER TABLE pk_privacy_audit DROP COLUMN details").Error; err != nil {
			t.Fatal(err)
		}
		if _, err := k.Roles.Replace(ctx, "UNI", "clerk", held.Tag, []casbinmodel.UserRole{{RoleType: "user-manager", Scope: "MAIN"}}, anywhere); err == nil {
			t.Fatal("roles changed without their entries")
		}
		pairs, err := k.Access.Roles(ctx, "UNI", "clerk")
		if err != nil || len(pairs) != 1 || pairs[0] != [2]string{"auditor", "*"} {
			t.Fatalf("roles after the refused change: %v, %v", pairs, err)
		}
	})
}
