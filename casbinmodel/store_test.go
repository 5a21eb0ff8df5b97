package casbinmodel_test

import (
	"context"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
)

// TestRolesInTheDatabaseAreAssignedAndRevokedOneByOne checks the rule
// store under FromDB: a revoked role leaves the other roles of the user
// (in other libraries too) and every other user's alone, instances that
// assign the same role at once keep one row, and what one instance
// changes another reads after a reload.
func TestRolesInTheDatabaseAreAssignedAndRevokedOneByOne(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		if err := migrate.Run(ctx, db, casbinmodel.Migrations()); err != nil {
			t.Fatal(err)
		}
		a, _ := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
		b, _ := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
		if err := a.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.Load(ctx); err != nil {
			t.Fatal(err)
		}
		// Both instances give ann the same role at the same moment.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, e := range []*casbinmodel.Enforcer{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = e.AssignRole(ctx, "UNI", "ann", "circulation-desk-operator", "MAIN")
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("assigning one role twice: %v", errs)
		}
		for _, r := range [][3]string{{"ann", "circulation-desk-operator", "SCIENCE"}, {"bob", "circulation-desk-operator", "MAIN"}} {
			if err := a.AssignRole(ctx, "UNI", r[0], r[1], r[2]); err != nil {
				t.Fatal(err)
			}
		}
		var n int64
		db.Table(casbinmodel.RuleTable).Where("ptype = 'g' AND v0 = ?", casbinmodel.StaffSubject("UNI", "ann")).Count(&n)
		if n != 2 {
			t.Fatalf("ann holds %d role rows, want 2 (MAIN once, SCIENCE)", n)
		}

		if err := a.RevokeRole(ctx, "UNI", "ann", "circulation-desk-operator", "MAIN"); err != nil {
			t.Fatal(err)
		}
		if err := b.Load(ctx); err != nil {
			t.Fatal(err)
		}
		lends := func(e *casbinmodel.Enforcer, who, lib string) bool {
			return allow(t, e, casbinmodel.Decision{Institution: "UNI", Subject: who, Library: lib, Action: "loans.checkout"})
		}
		if lends(b, "ann", "MAIN") || !lends(b, "ann", "SCIENCE") || !lends(b, "bob", "MAIN") {
			t.Fatalf("after revoking ann at MAIN: ann MAIN %v, ann SCIENCE %v, bob MAIN %v",
				lends(b, "ann", "MAIN"), lends(b, "ann", "SCIENCE"), lends(b, "bob", "MAIN"))
		}
		roles, err := b.Roles(ctx, "UNI", "ann")
		if err != nil || len(roles) != 1 || roles[0] != [2]string{"circulation-desk-operator", "SCIENCE"} {
			t.Fatalf("ann's roles read by another instance: %v %v", roles, err)
		}
	})
}
