package casbinmodel_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
)

func allow(t *testing.T, e *casbinmodel.Enforcer, r casbinmodel.Request) bool {
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
	req := func(inst, sub, lib, method, path string) casbinmodel.Request {
		return casbinmodel.Request{Institution: inst, Subject: sub, Library: lib, Method: method, Path: path}
	}
	cases := []struct {
		r    casbinmodel.Request
		want bool
	}{
		{req("UNI", "desk", "MAIN", "GET", "/users"), true},
		{req("UNI", "desk", "SCIENCE", "GET", "/users"), false}, // the role holds at MAIN only
		{req("UNI", "desk", "", "GET", "/users"), true},         // institution-wide: a role anywhere counts
		{req("UNI", "desk", "", "DELETE", "/users/x"), false},
		{req("UNI", "desk", "", "GET", "/users/x/overrides"), false},
		{req("UNI", "boss", "SCIENCE", "DELETE", "/users/x"), true},
		{req("UNI", "boss", "", "POST", "/users/x/user_notes"), true},
		{req("UNI", "boss", "", "POST", "/users/x/loans"), false}, // not a segment kind
		{req("OTHER", "desk", "MAIN", "GET", "/users"), false},    // roles belong to one institution
		{req("UNI", "nobody", "", "GET", "/users"), false},
		{casbinmodel.Request{Institution: "UNI", Subject: "s1", Patron: true, Method: "GET", Path: "/users/s1"}, true},
		{casbinmodel.Request{Institution: "UNI", Subject: "s1", Patron: true, Method: "GET", Path: "/users/s2"}, false},
		{casbinmodel.Request{Institution: "UNI", Subject: "S1", Patron: true, Method: "GET", Path: "/users/s1"}, true},
		{casbinmodel.Request{Institution: "UNI", Subject: "s1", Patron: true, Method: "PUT", Path: "/users/s1"}, false},
		{casbinmodel.Request{Institution: "UNI", Subject: "s1", Patron: true, Method: "GET", Path: "/users"}, false},
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
	if allow(t, e, req("UNI", "boss", "", "DELETE", "/users/x")) {
		t.Fatal("a revoked role still decides")
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
		if !allow(t, second, casbinmodel.Request{Institution: "UNI", Subject: "ann", Method: "GET", Path: "/users"}) {
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
	os.WriteFile(policy, []byte("p, reader, *, /users, ^(GET)$\ng, UNI/rita, reader, *\n"), 0o600)
	e, _ := casbinmodel.NewEnforcer(casbinmodel.FromFiles("", policy))
	if !allow(t, e, casbinmodel.Request{Institution: "UNI", Subject: "rita", Method: "GET", Path: "/users"}) {
		t.Fatal("the file's role is not applied")
	}
	if allow(t, e, casbinmodel.Request{Institution: "UNI", Subject: "rita", Method: "POST", Path: "/users"}) {
		t.Fatal("the file grants only GET")
	}
	missing, _ := casbinmodel.NewEnforcer(casbinmodel.FromFiles("", filepath.Join(dir, "nope.csv")))
	if _, err := missing.Allow(context.Background(), casbinmodel.Request{}); err == nil {
		t.Fatal("a missing policy file must be an error, not an empty policy")
	}
	if _, err := casbinmodel.NewEnforcer(casbinmodel.Policies{}); err == nil {
		t.Fatal("empty Policies must be refused")
	}
}

func TestADatabaseSeededEarlierGetsTheNewDefaultPermissions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		all := casbinmodel.Migrations()
		if err := migrate.Run(ctx, db, all[:1]); err != nil {
			t.Fatal(err)
		}
		// An earlier release seeded the policy without the SIS lines.
		first, _ := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
		if err := first.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("DELETE FROM " + casbinmodel.RuleTable + " WHERE v2 LIKE '/sis/%'").Error; err != nil {
			t.Fatal(err)
		}
		if err := first.AssignRole(ctx, "UNI", "boss", "user-administrator", "*"); err != nil {
			t.Fatal(err)
		}
		req := casbinmodel.Request{Institution: "UNI", Subject: "boss", Method: "GET", Path: "/sis/profiles"}
		if err := first.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if allow(t, first, req) {
			t.Fatal("the earlier policy already allows the SIS routes")
		}
		// Upgrading adds them.
		if err := migrate.Run(ctx, db, all); err != nil {
			t.Fatal(err)
		}
		upgraded, _ := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
		if !allow(t, upgraded, req) {
			t.Fatal("the upgrade did not add the SIS permissions")
		}
	})
}
