package ginapi_test

import (
	"context"
	"net/http"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// A staff user's roles, in every library, go when the user is deleted: on
// every instance at once, and a user created later with the same
// primary_id (by a desk operator, who may create users) starts with none.
// A deletion that is refused keeps them.
func TestADeletedStaffUsersRolesGoWithThem(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		refuse := true
		guard := patron.DeletionGuardFunc(func(ctx context.Context, u *patron.User) ([]string, error) {
			if refuse {
				return []string{"the test says no"}, nil
			}
			return nil, nil
		})
		cfg := func() *patronkit.Config {
			return &patronkit.Config{Policies: casbinmodel.FromDB(db), DeletionGuards: []patron.DeletionGuard{guard}}
		}
		one := newServer(t, db, cfg())
		two := newServer(t, db, cfg()) // a second instance on the same database
		one.grant("DEMO", "librarian", "user-administrator", "*")
		one.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")

		one.do(admin, "POST", "/api/users", map[string]any{"primary_id": "boss", "first_name": "B", "last_name": "Oss", "record_type": "STAFF"}).
			status(http.StatusCreated)
		one.grant("DEMO", "boss", "user-administrator", "MAIN")
		one.grant("DEMO", "boss", "fulfillment-administrator", "SCIENCE")
		one.grant("DEMO", "BOSS", "auditor", "*") // the primary_id as a host may spell it
		if err := two.kit.RefreshPolicies(context.Background()); err != nil {
			t.Fatal(err)
		}
		const boss, bossUpper = "DEMO/boss/staff", "DEMO/BOSS/staff"
		// What the roles allowed, through both instances.
		allowedBefore := func(s *server) {
			t.Helper()
			s.do(boss, "GET", "/api/users/boss", nil).status(http.StatusOK)
			s.do(boss, "DELETE", "/api/users/nobody", nil).status(http.StatusNotFound)
			s.do(boss, "GET", "/api/items", nil).status(http.StatusOK)
			s.do(bossUpper, "GET", "/api/users", nil).status(http.StatusOK)
		}
		allowedBefore(one)
		allowedBefore(two)

		one.do(admin, "DELETE", "/api/users/boss", nil).refused(t, "a deletion a guard refuses", http.StatusConflict, "")
		if roles, err := two.kit.Access.Roles(context.Background(), "DEMO", "boss"); err != nil || len(roles) != 2 {
			t.Fatalf("a refused deletion took roles: %v %v", roles, err)
		}
		refuse = false
		one.do(admin, "DELETE", "/api/users/boss", nil).status(http.StatusNoContent)

		var rows int64
		db.Table(casbinmodel.RuleTable).Where("ptype = 'g' AND LOWER(v0) = 'demo/boss'").Count(&rows)
		if rows != 0 {
			t.Fatalf("%d role rows of the deleted user are left", rows)
		}
		// A desk operator creates a user with the departed primary_id,
		// through the instance that did not delete it.
		two.do(deskStaff, "POST", "/api/users", map[string]any{"primary_id": "boss", "first_name": "New", "last_name": "Comer"}).
			status(http.StatusCreated)
		for name, s := range map[string]*server{"the deleting instance": one, "the other instance": two} {
			for _, who := range []string{boss, bossUpper} {
				for _, rt := range [][2]string{{"GET", "/api/users"}, {"GET", "/api/users/boss"}, {"DELETE", "/api/users/nobody"}, {"GET", "/api/items"}} {
					if res := s.do(who, rt[0], rt[1], nil); res.Code != http.StatusForbidden {
						t.Errorf("%s: %s %s as the new %s: status %d, want 403", name, rt[0], rt[1], who, res.Code)
					}
				}
			}
			for _, id := range []string{"boss", "BOSS"} {
				if roles, err := s.kit.Access.Roles(context.Background(), "DEMO", id); err != nil || len(roles) != 0 {
					t.Errorf("%s: the new %s has roles %v %v", name, id, roles, err)
				}
			}
		}
		// Other users keep theirs.
		one.do(deskStaff, "GET", "/api/users", nil).status(http.StatusOK)
	})
}

// A user's roles follow a change of their primary_id: none stay behind
// for whoever takes the old one.
func TestAStaffUsersRolesFollowTheirPrimaryID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newServer(t, db, &patronkit.Config{Policies: casbinmodel.FromDB(db)})
		s.grant("DEMO", "librarian", "user-administrator", "*")
		s.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")
		s.do(admin, "POST", "/api/users", map[string]any{"primary_id": "lead", "first_name": "L", "last_name": "Ead", "record_type": "STAFF"}).
			status(http.StatusCreated)
		s.grant("DEMO", "lead", "auditor", "SCIENCE")
		s.do(admin, "PUT", "/api/users/lead", map[string]any{"primary_id": "lead2", "first_name": "L", "last_name": "Ead", "record_type": "STAFF"},
			"If-Match", `"1"`).status(http.StatusOK)
		s.do("DEMO/lead2/staff", "GET", "/api/users", nil).status(http.StatusOK)
		s.do("DEMO/lead/staff", "GET", "/api/users", nil).status(http.StatusForbidden)
		s.do(deskStaff, "POST", "/api/users", map[string]any{"primary_id": "lead", "first_name": "N", "last_name": "Ew"}).
			status(http.StatusCreated)
		s.do("DEMO/lead/staff", "GET", "/api/users", nil).status(http.StatusForbidden)
	})
}
