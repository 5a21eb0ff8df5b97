package ginapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/circulation"
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

// rolesOf reads a user's roles over the API as who, with their ETag.
func (s *server) rolesOf(who, id string) ([]casbinmodel.UserRole, string) {
	s.t.Helper()
	var body struct {
		UserRoles []casbinmodel.UserRole `json:"user_roles"`
	}
	res := s.do(who, "GET", "/api/users/"+id+"/user_roles", nil).status(http.StatusOK)
	res.json(&body)
	return body.UserRoles, res.Header().Get("ETag")
}

func roleList(roles ...string) map[string]any {
	list := []any{}
	for _, r := range roles {
		role, scope, _ := strings.Cut(r, "@")
		list = append(list, map[string]any{"role_type": role, "scope": scope})
	}
	return map[string]any{"user_roles": list}
}

func rolesString(roles []casbinmodel.UserRole) string {
	var out []string
	for _, r := range roles {
		out = append(out, r.RoleType+"@"+r.Scope+"/"+r.Status)
	}
	return strings.Join(out, " ")
}

// Staff roles are read with the user and over their own route, and
// replaced whole by a user administrator where their roles.assign holds:
// each change is one role rule, audited, and holds at once on every
// instance. Nobody changes their own roles; a refused change changes
// nothing.
func TestStaffRolesAreReadAndAssignedOverTheAPI(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		var mu sync.Mutex
		var audit []string
		cfg := func() *patronkit.Config {
			return &patronkit.Config{Policies: casbinmodel.FromDB(db), Audit: patron.AuditFunc(func(_ context.Context, e patron.AuditEvent) {
				if strings.HasPrefix(e.What, "user_roles") {
					mu.Lock()
					audit = append(audit, e.Actor.ID+" "+e.Action+" "+e.PrimaryID+" "+e.What+" "+e.Details)
					mu.Unlock()
				}
			})}
		}
		one, two := newServer(t, db, cfg()), newServer(t, db, cfg())
		ctx := context.Background()
		for _, code := range []string{"MAIN", "SCIENCE"} {
			if _, err := one.kit.Circulation.CreateLibrary(ctx, "DEMO", &circulation.Library{Code: code, Name: code}); err != nil {
				t.Fatal(err)
			}
		}
		one.grant("DEMO", "librarian", "user-administrator", "*")
		one.grant("DEMO", "mainadmin", "user-administrator", "MAIN")
		one.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")
		one.grant("DEMO", "aud", "auditor", "*")
		for _, id := range []string{"librarian", "clerk"} {
			one.do(admin, "POST", "/api/users", map[string]any{"primary_id": id, "first_name": "S", "last_name": "Taff", "record_type": "STAFF"}).status(http.StatusCreated)
		}
		one.create("DEMO", &patron.User{PrimaryID: "pat", FirstName: "P", LastName: "At"})
		// A new record holds no roles: they are given on their own route.
		newStaff := map[string]any{"primary_id": "new", "first_name": "N", "last_name": "Ew", "record_type": "STAFF"}
		for k, v := range roleList("auditor@*") {
			newStaff[k] = v
		}
		one.do(admin, "POST", "/api/users", newStaff).refused(t, "a new user with roles", http.StatusUnprocessableEntity, "user_roles")
		newStaff["user_roles"] = []any{}
		one.do(admin, "POST", "/api/users", newStaff).status(http.StatusCreated)
		const clerk = "DEMO/clerk/staff"

		roles, first := one.rolesOf(admin, "clerk")
		tag := first
		if len(roles) != 0 || tag == "" {
			t.Fatalf("a new staff user's roles: %v %q", roles, tag)
		}
		one.do(clerk, "GET", "/api/users", nil).status(http.StatusForbidden)

		// A user administrator gives two roles: two rules, two audit events.
		res := one.do(admin, "PUT", "/api/users/clerk/user_roles", roleList("circulation-desk-operator@MAIN", "auditor@*"), "If-Match", tag).status(http.StatusOK)
		var body struct {
			UserRoles []casbinmodel.UserRole `json:"user_roles"`
		}
		res.json(&body)
		if got := rolesString(body.UserRoles); got != "auditor@*/ACTIVE circulation-desk-operator@MAIN/ACTIVE" {
			t.Fatalf("roles after the change: %s", got)
		}
		var rules int64
		db.Table(casbinmodel.RuleTable).Where("ptype = 'g' AND v0 = 'DEMO/clerk'").Count(&rules)
		if rules != 2 || len(audit) != 2 || !strings.HasPrefix(audit[0], "librarian update clerk user_roles {\"user_roles\":{\"added\":[{") {
			t.Fatalf("%d role rules, audit %q", rules, audit)
		}
		// They hold at once, on the other instance too.
		two.do(clerk, "GET", "/api/users", nil).status(http.StatusOK)
		two.do(clerk, "POST", "/api/loans", map[string]any{"primary_id": "pat", "barcode": "NONE"}).refused(t, "a loan by the new desk operator", http.StatusNotFound, "")

		// Read with the user by those who may read roles; not by others.
		var rec map[string]any
		two.do("DEMO/aud/staff", "GET", "/api/users/clerk", nil).status(http.StatusOK).json(&rec)
		if rs, _ := rec["user_roles"].([]any); len(rs) != 2 {
			t.Errorf("the auditor reads the record with roles %v", rec["user_roles"])
		}
		rec = nil
		two.do(deskStaff, "GET", "/api/users/clerk", nil).status(http.StatusOK).json(&rec)
		if _, shown := rec["user_roles"]; shown {
			t.Errorf("the desk, which may not read roles, reads them with the record: %v", rec["user_roles"])
		}
		two.do(deskStaff, "GET", "/api/users/clerk/user_roles", nil).refused(t, "the desk reading roles", http.StatusForbidden, "")

		_, tag = one.rolesOf(admin, "clerk")
		refused := func(name, who string, body any, status int, field string) {
			t.Helper()
			one.do(who, "PUT", "/api/users/clerk/user_roles", body, "If-Match", tag).refused(t, name, status, field)
		}
		refused("a role the policies do not define", admin, roleList("auditor@*", "chief@MAIN"), http.StatusUnprocessableEntity, "user_roles[1].role_type")
		refused("the patron role", admin, roleList("patron@*"), http.StatusUnprocessableEntity, "user_roles[0].role_type")
		refused("a library that does not exist", admin, roleList("auditor@LAW"), http.StatusUnprocessableEntity, "user_roles[0].scope")
		refused("no scope", admin, roleList("auditor@"), http.StatusUnprocessableEntity, "user_roles[0].scope")
		refused("an inactive role", admin, map[string]any{"user_roles": []any{map[string]any{"role_type": "auditor", "scope": "*", "status": "INACTIVE"}}},
			http.StatusUnprocessableEntity, "user_roles[0].status")
		refused("no list", admin, map[string]any{}, http.StatusUnprocessableEntity, "user_roles")
		one.do(admin, "PUT", "/api/users/clerk/user_roles", roleList(), "If-Match", first).refused(t, "a stale tag", http.StatusPreconditionFailed, "")
		one.do(admin, "PUT", "/api/users/clerk/user_roles", roleList()).refused(t, "no tag", http.StatusPreconditionRequired, "")
		refused("a desk operator", deskStaff, roleList(), http.StatusForbidden, "")
		// An administrator at MAIN changes roles at MAIN only.
		refused("an administrator at MAIN taking a role in every library", "DEMO/mainadmin/staff", roleList("circulation-desk-operator@MAIN"), http.StatusForbidden, "")
		refused("an administrator at MAIN giving a role at SCIENCE", "DEMO/mainadmin/staff", roleList("auditor@*", "circulation-desk-operator@MAIN", "auditor@SCIENCE"), http.StatusForbidden, "")
		one.do(admin, "PUT", "/api/users/librarian/user_roles", roleList("auditor@*"), "If-Match", tag).refused(t, "an administrator's own roles", http.StatusForbidden, "")
		one.do(admin, "PUT", "/api/users/pat/user_roles", roleList("auditor@*"), "If-Match", tag).refused(t, "roles of a record that is not STAFF", http.StatusUnprocessableEntity, "user_roles")
		if roles, _ := one.rolesOf(admin, "clerk"); rolesString(roles) != "auditor@*/ACTIVE circulation-desk-operator@MAIN/ACTIVE" || len(audit) != 2 {
			t.Fatalf("refused changes changed the roles: %s, audit %q", rolesString(roles), audit)
		}
		if roles, _ := one.rolesOf(admin, "librarian"); rolesString(roles) != "user-administrator@*/ACTIVE" {
			t.Fatalf("the administrator's own roles became %v", roles)
		}

		// The administrator at MAIN swaps the desk role for the auditor's
		// there; a role held in every library stays.
		res = one.do("DEMO/mainadmin/staff", "PUT", "/api/users/clerk/user_roles", roleList("auditor@*", "auditor@main"), "If-Match", tag).status(http.StatusOK)
		res.json(&body)
		if got := rolesString(body.UserRoles); got != "auditor@*/ACTIVE auditor@MAIN/ACTIVE" || len(audit) != 4 || audit[2] != `mainadmin update clerk user_roles {"user_roles":{"removed":[{"role_type":"circulation-desk-operator","scope":"MAIN"}]}}` {
			t.Fatalf("roles %s, audit %q", got, audit)
		}
		two.do(clerk, "POST", "/api/loans", map[string]any{"primary_id": "pat", "barcode": "NONE"}).refused(t, "a loan once the desk role is gone", http.StatusForbidden, "")

		// Every role taken away.
		one.do(admin, "PUT", "/api/users/clerk/user_roles", roleList(), "If-Match", res.Header().Get("ETag")).status(http.StatusOK)
		db.Table(casbinmodel.RuleTable).Where("ptype = 'g' AND v0 = 'DEMO/clerk'").Count(&rules)
		if rules != 0 || len(audit) != 6 {
			t.Fatalf("%d role rules left, audit %q", rules, audit)
		}
		two.do(clerk, "GET", "/api/users", nil).status(http.StatusForbidden)
	})
}
