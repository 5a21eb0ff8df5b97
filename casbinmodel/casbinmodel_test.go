package casbinmodel_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
)

func allow(t *testing.T, e *casbinmodel.Enforcer, r casbinmodel.Decision) bool {
	t.Helper()
	ok, err := e.Allow(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestRolesAreScopedToLibraries(t *testing.T) {
	ctx := context.Background()
	e, err := casbinmodel.NewEnforcer(casbinmodel.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.AssignRole(ctx, "UNI", "desk", "circulation-desk-operator", "MAIN"); err != nil {
		t.Fatal(err)
	}
	if err := e.AssignRole(ctx, "UNI", "boss", "user-administrator", "*"); err != nil {
		t.Fatal(err)
	}
	req := func(inst, sub, lib, action string) casbinmodel.Decision {
		return casbinmodel.Decision{Institution: inst, Subject: sub, Library: lib, Action: action}
	}
	patron := func(sub, action string, own bool) casbinmodel.Decision {
		return casbinmodel.Decision{Institution: "UNI", Subject: sub, Patron: true, Action: action, Own: own}
	}
	cases := []struct {
		r    casbinmodel.Decision
		want bool
	}{
		{req("UNI", "desk", "MAIN", "users.read"), true},
		{req("UNI", "desk", "SCIENCE", "users.read"), false}, // the role holds at MAIN only
		{req("UNI", "desk", "*", "users.read"), false},       // nor in every library
		{req("UNI", "desk", "", "users.read"), true},         // institution-wide: a role anywhere counts
		{req("UNI", "desk", "", "users.delete"), false},
		{req("UNI", "desk", "", "users.overrides.read"), false},
		{req("UNI", "boss", "SCIENCE", "users.delete"), true},
		{req("UNI", "boss", "*", "users.delete"), true},
		{req("UNI", "boss", "", "users.notes"), true},
		{req("UNI", "boss", "", "loans.checkout"), false},   // not a user administrator's
		{req("OTHER", "desk", "MAIN", "users.read"), false}, // roles belong to one institution
		{req("UNI", "nobody", "", "users.read"), false},
		{patron("s1", "users.read", true), true}, // their own record
		{patron("s1", "users.read", false), false},
		{patron("s1", "users.write", true), false},
		{patron("s1", "account.loans.renew", true), true},
		{patron("s1", "loans.renew", true), false}, // the staff action, not the account's
		{patron("s1", "code_tables.read", false), true},
	}
	for _, c := range cases {
		if got := allow(t, e, c.r); got != c.want {
			t.Errorf("%+v: got %v want %v", c.r, got, c.want)
		}
	}
	// Revoking takes effect at once (the decision cache is dropped).
	if err := e.RevokeRole(ctx, "UNI", "boss", "user-administrator", "*"); err != nil {
		t.Fatal(err)
	}
	if allow(t, e, req("UNI", "boss", "", "users.delete")) {
		t.Fatal("a revoked role still decides")
	}
}

// A verdict names where the action was allowed and the roles the subject
// holds: those that hold in the library decided on, or all of them with
// their libraries for what concerns the whole institution.
func TestAVerdictNamesItsLibraryAndTheRolesHeld(t *testing.T) {
	ctx := context.Background()
	e, err := casbinmodel.NewEnforcer(casbinmodel.Default())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{{"circulation-desk-operator", "MAIN"}, {"auditor", "WEST"}, {"user-manager", "*"}} {
		if err := e.AssignRole(ctx, "UNI", "desk", r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		d    casbinmodel.Decision
		want string
	}{
		{casbinmodel.Decision{Institution: "UNI", Subject: "desk", Library: "MAIN", Action: "loans.checkout"}, "true MAIN [circulation-desk-operator@MAIN user-manager@*]"},
		{casbinmodel.Decision{Institution: "UNI", Subject: "desk", Library: "WEST", Action: "loans.checkout"}, "false  [auditor@WEST user-manager@*]"},
		{casbinmodel.Decision{Institution: "UNI", Subject: "desk", Action: "users.read"}, "true * [auditor@WEST circulation-desk-operator@MAIN user-manager@*]"},
		{casbinmodel.Decision{Institution: "UNI", Subject: "desk", Action: "loans.checkout"}, "true MAIN [auditor@WEST circulation-desk-operator@MAIN user-manager@*]"},
		{casbinmodel.Decision{Institution: "UNI", Subject: "s1", Patron: true, Own: true, Action: "users.read"}, "true * []"},
	} {
		v, err := e.Decide(ctx, c.d)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(v.Allowed, " ", v.Library, " ", v.Roles); got != c.want {
			t.Errorf("%+v: %s, want %s", c.d, got, c.want)
		}
	}
}

func TestPoliciesFromTheDatabasePersist(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		if err := migrate.Run(ctx, db, casbinmodel.Migrations()); err != nil {
			t.Fatal(err)
		}
		first, _ := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
		if err := first.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := first.AssignRole(ctx, "UNI", "ann", "auditor", "*"); err != nil {
			t.Fatal(err)
		}
		var rows int64
		db.Table(casbinmodel.RuleTable).Where("ptype = 'p'").Count(&rows)
		if rows < 20 {
			t.Fatalf("the default policy was not seeded: %d rows", rows)
		}
		// A second instance (or a restart) reads the same policies and roles,
		// and does not seed twice.
		second, _ := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
		if !allow(t, second, casbinmodel.Decision{Institution: "UNI", Subject: "ann", Action: "users.read"}) {
			t.Fatal("the role assigned by the first instance is not seen")
		}
		roles, err := second.Roles(ctx, "UNI", "ann")
		if err != nil || len(roles) != 1 || roles[0] != [2]string{"auditor", "*"} {
			t.Fatalf("roles %v %v", roles, err)
		}
		var again int64
		db.Table(casbinmodel.RuleTable).Where("ptype = 'p'").Count(&again)
		if again != rows {
			t.Fatalf("seeded twice: %d then %d rows", rows, again)
		}
	})
}

func TestPoliciesFromFiles(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.csv")
	os.WriteFile(policy, []byte("p, reader, *, users.read, *\ng, UNI/rita, reader, *\n"), 0o600)
	e, _ := casbinmodel.NewEnforcer(casbinmodel.FromFiles("", policy))
	if !allow(t, e, casbinmodel.Decision{Institution: "UNI", Subject: "rita", Action: "users.read"}) {
		t.Fatal("the file's role is not applied")
	}
	if allow(t, e, casbinmodel.Decision{Institution: "UNI", Subject: "rita", Action: "users.create"}) {
		t.Fatal("the file grants only users.read")
	}
	missing, _ := casbinmodel.NewEnforcer(casbinmodel.FromFiles("", filepath.Join(dir, "nope.csv")))
	if _, err := missing.Allow(context.Background(), casbinmodel.Decision{Action: "users.read"}); err == nil {
		t.Fatal("a missing policy file must be an error, not an empty policy")
	}
	if _, err := casbinmodel.NewEnforcer(casbinmodel.Policies{}); err == nil {
		t.Fatal("empty Policies must be refused")
	}
}

// Every role of a staff user goes at once, in every library and whatever
// the case the primary_id was written in; with FromDB the rows go, and
// another instance that read the policies before stops honouring them at
// its next decision, with no refresh. Rules between roles stay.
func TestRemovingAStaffUsersRolesCountsOnEveryInstance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		if err := migrate.Run(ctx, db, casbinmodel.Migrations()); err != nil {
			t.Fatal(err)
		}
		first, _ := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
		for _, g := range [][3]string{{"boss", "user-administrator", "MAIN"}, {"boss", "auditor", "SCIENCE"}, {"Boss", "auditor", "*"}, {"bob", "auditor", "*"}} {
			if err := first.AssignRole(ctx, "UNI", g[0], g[1], g[2]); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Table(casbinmodel.RuleTable).Create(map[string]any{"ptype": "g", "v0": "auditor", "v1": "reader", "v2": "*"}).Error; err != nil {
			t.Fatal(err)
		}
		second, _ := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
		del := casbinmodel.Decision{Institution: "UNI", Subject: "boss", Library: "MAIN", Action: "users.delete"}
		read := casbinmodel.Decision{Institution: "UNI", Subject: "boss", Action: "users.read"}
		if !allow(t, second, del) || !allow(t, second, read) {
			t.Fatal("the roles are not seen before their removal")
		}

		if err := first.RemoveRoles(ctx, "UNI", "BOSS"); err != nil {
			t.Fatal(err)
		}
		var left []string
		db.Table(casbinmodel.RuleTable).Where("ptype = 'g'").Pluck("v0", &left)
		if slices.Sort(left); strings.Join(left, ",") != "UNI/bob,auditor" {
			t.Fatalf("grouping rows left: %v", left)
		}
		for name, e := range map[string]*casbinmodel.Enforcer{"the instance that removed them": first, "another instance": second} {
			if allow(t, e, del) || allow(t, e, read) {
				t.Errorf("%s still honours the removed roles", name)
			}
			if roles, err := e.Roles(ctx, "UNI", "boss"); err != nil || len(roles) != 0 {
				t.Errorf("%s: roles %v %v", name, roles, err)
			}
			if !allow(t, e, casbinmodel.Decision{Institution: "UNI", Subject: "bob", Action: "users.read"}) {
				t.Errorf("%s: another user's role went too", name)
			}
		}
		// Roles given again after the removal hold on the other instance
		// at once too.
		if err := first.AssignRole(ctx, "UNI", "boss", "auditor", "*"); err != nil {
			t.Fatal(err)
		}
		if !allow(t, second, read) {
			t.Fatal("a role given again is not seen by another instance")
		}
	})
}

// A removal through a transaction commits with it, or not at all.
func TestRemovingRolesInATransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		if err := migrate.Run(ctx, db, casbinmodel.Migrations()); err != nil {
			t.Fatal(err)
		}
		e, _ := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
		if err := e.AssignRole(ctx, "UNI", "boss", "auditor", "MAIN"); err != nil {
			t.Fatal(err)
		}
		read := casbinmodel.Decision{Institution: "UNI", Subject: "boss", Action: "users.read"}
		rollback := errors.New("roll back")
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := e.RemoveRolesWith(tx, "UNI", "boss"); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) || !allow(t, e, read) {
			t.Fatalf("a rolled back removal took the role: %v", err)
		}
		if err := db.Transaction(func(tx *gorm.DB) error { return e.RemoveRolesWith(tx, "UNI", "boss") }); err != nil {
			t.Fatal(err)
		}
		if allow(t, e, read) {
			t.Fatal("a committed removal left the role")
		}
		// Policies held in memory have no table: nothing to do there.
		mem, _ := casbinmodel.NewEnforcer(casbinmodel.Default())
		if err := mem.RemoveRolesWith(db, "UNI", "boss"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMovingRolesToANewPrimaryID(t *testing.T) {
	ctx := context.Background()
	e, _ := casbinmodel.NewEnforcer(casbinmodel.Default())
	for _, lib := range []string{"MAIN", "SCIENCE"} {
		if err := e.AssignRole(ctx, "UNI", "jdoe", "auditor", lib); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.AssignRole(ctx, "UNI", "jsmith", "auditor", "MAIN"); err != nil {
		t.Fatal(err)
	}
	if err := e.MoveRoles(ctx, "UNI", "jdoe", "jsmith"); err != nil {
		t.Fatal(err)
	}
	if roles, _ := e.Roles(ctx, "UNI", "jdoe"); len(roles) != 0 {
		t.Fatalf("roles left on the old primary_id: %v", roles)
	}
	if roles, _ := e.Roles(ctx, "UNI", "jsmith"); len(roles) != 2 {
		t.Fatalf("roles of the new primary_id: %v", roles)
	}
	// A change of case only.
	if err := e.MoveRoles(ctx, "UNI", "jsmith", "JSmith"); err != nil {
		t.Fatal(err)
	}
	if roles, _ := e.Roles(ctx, "UNI", "JSmith"); len(roles) != 2 {
		t.Fatalf("roles after a change of case: %v", roles)
	}
	if roles, _ := e.Roles(ctx, "UNI", "jsmith"); len(roles) != 0 {
		t.Fatalf("roles left on the old spelling: %v", roles)
	}
}

// The roles one may be given are those the policies define: the roles
// policy lines grant actions to and those role lines name between roles;
// not the patron role, not a role merely given to someone.
func TestRoleNamesAreTheRolesThePoliciesDefine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.csv")
	os.WriteFile(path, []byte(`p, patron, *, users.read, own
p, reader, *, users.read, *
g, senior-reader, reader, *
g, UNI/ann, reader, MAIN
g, UNI/bob, typo-role, *
`), 0o600)
	e, _ := casbinmodel.NewEnforcer(casbinmodel.FromFiles("", path))
	names, err := e.RoleNames(context.Background())
	if err != nil || strings.Join(names, " ") != "reader senior-reader" {
		t.Fatalf("role names %v %v", names, err)
	}
}
