package casbinmodel_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
)

const actionsMigration = "202612020101_casbin_actions"

// earlierRelease makes db a database an earlier release seeded: the
// policy migrations before migrationID ran, and the default policy of
// URLs was written, without the lines drop selects (that release did not
// have them), with the roles given (subject, role, library).
func earlierRelease(t *testing.T, db *gorm.DB, migrationID string, drop func(line []string) bool, roles ...[3]string) {
	t.Helper()
	seededRelease(t, db, migrationID, casbinmodel.LegacyPolicyLines(), drop, roles...)
}

// earlierActionsRelease is earlierRelease for a release whose policy was
// on actions already: its default policy, without the lines drop selects.
func earlierActionsRelease(t *testing.T, db *gorm.DB, migrationID string, drop func(line []string) bool, roles ...[3]string) {
	t.Helper()
	seededRelease(t, db, migrationID, casbinmodel.DefaultPolicyLines(), drop, roles...)
}

func seededRelease(t *testing.T, db *gorm.DB, migrationID string, lines [][]string, drop func(line []string) bool, roles ...[3]string) {
	t.Helper()
	all := casbinmodel.Migrations()
	i := slices.IndexFunc(all, func(m *gormigrate.Migration) bool { return m.ID == migrationID })
	if i < 0 {
		t.Fatalf("no migration %s", migrationID)
	}
	if err := migrate.Run(context.Background(), db, all[:i]); err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if drop == nil || !drop(l) {
			addRow(t, db, "p", l...)
		}
	}
	for _, r := range roles {
		addRow(t, db, "g", r[0], r[1], r[2])
	}
}

func addRow(t *testing.T, db *gorm.DB, ptype string, v ...string) {
	t.Helper()
	row := map[string]any{"ptype": ptype}
	for i := range 6 {
		row[fmt.Sprintf("v%d", i)] = ""
		if i < len(v) {
			row[fmt.Sprintf("v%d", i)] = v[i]
		}
	}
	if err := db.Table(casbinmodel.RuleTable).Create(row).Error; err != nil {
		t.Fatal(err)
	}
}

func deleteRow(t *testing.T, db *gorm.DB, v ...string) {
	t.Helper()
	res := db.Exec("DELETE FROM "+casbinmodel.RuleTable+" WHERE ptype = 'p' AND v0 = ? AND v1 = ? AND v2 = ? AND v3 = ?", v[0], v[1], v[2], v[3])
	if res.Error != nil || res.RowsAffected != 1 {
		t.Fatalf("deleting %v: %v, %d rows", v, res.Error, res.RowsAffected)
	}
}

// upgrade runs every migration, logging into the buffer it returns.
func upgrade(t *testing.T, db *gorm.DB) *bytes.Buffer {
	t.Helper()
	var logs bytes.Buffer
	ctx := migrate.WithLogger(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err := migrate.Run(ctx, db, casbinmodel.Migrations()); err != nil {
		t.Fatal(err)
	}
	return &logs
}

// policyRows are the p rows of the table, as "role, library, action, whose".
func policyRows(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	var rows []struct{ V0, V1, V2, V3 string }
	if err := db.Table(casbinmodel.RuleTable).Where("ptype = 'p'").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, strings.Join([]string{r.V0, r.V1, r.V2, r.V3}, ", "))
	}
	slices.Sort(out)
	return out
}

func joined(lines [][]string) []string {
	var out []string
	for _, l := range lines {
		out = append(out, strings.Join(l, ", "))
	}
	slices.Sort(out)
	return out
}

// The default policy an earlier release seeded on URLs becomes the
// default policy on actions, line for line, with nothing to report.
func TestTheDefaultPolicyOnURLsBecomesTheDefaultOnActions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		earlierRelease(t, db, actionsMigration, nil)
		logs := upgrade(t, db)
		if got, want := policyRows(t, db), joined(casbinmodel.DefaultPolicyLines()); !slices.Equal(got, want) {
			t.Errorf("after the upgrade the policy is\n  %s\nwant the default\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		if logs.Len() > 0 {
			t.Errorf("the default policy's upgrade reported: %s", logs)
		}
	})
}

// What a policy author changed in a policy on URLs is kept: a line added
// for a route becomes that route's action (the whole action, which is
// reported), a line taken away takes its action away, a line on the
// patron's own record stays on their own; a line that names no route,
// or does not compile, is reported and dropped. Roles stay as they were.
func TestAPolicyAuthorsURLLinesBecomeActions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		earlierRelease(t, db, actionsMigration, nil,
			[3]string{"UNI/aud", "auditor", "*"}, [3]string{"UNI/desk", "circulation-desk-operator", "MAIN"}, [3]string{"UNI/boss", "user-administrator", "*"})
		addRow(t, db, "p", "auditor", "*", "/users/:id/user_notes", "^(POST)$")               // an extra route of an action
		addRow(t, db, "p", "circulation-desk-operator", "*", "/users/:id/emails", "^(POST)$") // part of an action
		addRow(t, db, "p", "patron", "*", "/users/:self/loans", "^(GET)$")                    // the patron's own loans
		addRow(t, db, "p", "auditor", "*", "/reports/:id", "^(GET)$")                         // no route
		addRow(t, db, "p", "auditor", "*", "/users/(", "^(GET)$")                             // no expression
		deleteRow(t, db, "circulation-desk-operator", "*", "/users/:id/fees/:fee/pay", "^(POST)$")

		logs := upgrade(t, db).String()

		want := joined(casbinmodel.DefaultPolicyLines())
		want = slices.DeleteFunc(want, func(l string) bool { return l == "circulation-desk-operator, *, fees.pay, *" })
		want = append(want, "auditor, *, users.notes, *", "circulation-desk-operator, *, users.contacts, *", "patron, *, loans.read, own")
		slices.Sort(want)
		if got := policyRows(t, db); !slices.Equal(got, want) {
			t.Errorf("after the upgrade the policy is\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		for _, says := range []string{
			`path=/reports/:id`, `path=/users/(`, "dropped",
			`action=users.contacts`, `POST /users/:primary_id/addresses`,
		} {
			if !strings.Contains(logs, says) {
				t.Errorf("the upgrade's log does not say %q:\n%s", says, logs)
			}
		}

		e, _ := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
		for _, c := range []struct {
			d    casbinmodel.Decision
			want bool
		}{
			{casbinmodel.Decision{Institution: "UNI", Subject: "aud", Action: "users.notes"}, true},
			{casbinmodel.Decision{Institution: "UNI", Subject: "aud", Action: "users.write"}, false},
			{casbinmodel.Decision{Institution: "UNI", Subject: "desk", Action: "fees.pay"}, false},
			{casbinmodel.Decision{Institution: "UNI", Subject: "desk", Action: "fees.charge"}, true},
			{casbinmodel.Decision{Institution: "UNI", Subject: "desk", Library: "MAIN", Action: "loans.checkout"}, true},
			{casbinmodel.Decision{Institution: "UNI", Subject: "desk", Library: "SCIENCE", Action: "loans.checkout"}, false},
			{casbinmodel.Decision{Institution: "UNI", Subject: "boss", Action: "roles.assign"}, true},
			{casbinmodel.Decision{Institution: "UNI", Subject: "aud", Action: "roles.read"}, true},
			{casbinmodel.Decision{Institution: "UNI", Subject: "s1", Patron: true, Action: "loans.read", Own: true}, true},
			{casbinmodel.Decision{Institution: "UNI", Subject: "s1", Patron: true, Action: "loans.read"}, false},
		} {
			if ok, err := e.Allow(ctx, c.d); err != nil || ok != c.want {
				t.Errorf("%+v: allowed %v (%v), want %v", c.d, ok, err, c.want)
			}
		}
		// Nothing more to do on a second start.
		before := policyRows(t, db)
		if again := upgrade(t, db); again.Len() > 0 || !slices.Equal(policyRows(t, db), before) {
			t.Errorf("a second upgrade changed something: %s", again)
		}
	})
}

// A database seeded by a release before some routes existed gets their
// permissions from the migrations of the releases that added them, as
// actions now, once; a role they were not for does not get them.
func TestADatabaseSeededEarlierGetsTheLaterDefaultPermissions(t *testing.T) {
	type decision struct {
		d    casbinmodel.Decision
		want bool
	}
	d := func(sub, lib, action string, want bool) decision {
		return decision{casbinmodel.Decision{Institution: "UNI", Subject: sub, Library: lib, Action: action}, want}
	}
	roles := [][3]string{
		{"UNI/boss", "user-administrator", "*"}, {"UNI/manager", "user-manager", "*"}, {"UNI/desk", "circulation-desk-operator", "MAIN"},
		{"UNI/fulfil", "fulfillment-administrator", "*"}, {"UNI/audit", "auditor", "*"},
	}
	for _, c := range []struct {
		migration string
		missing   func(l []string) bool // the lines the earlier release lacked
		actions   []string              // whose lines the upgrade must hold exactly as the default
		decisions []decision
	}{{
		migration: "202611270103_casbin_sis_policies",
		missing: func(l []string) bool {
			return strings.HasPrefix(l[2], "/sis/") || strings.HasSuffix(l[2], "/restore-sis-fields") || strings.HasPrefix(l[2], "/code-tables")
		},
		actions:   []string{"sis.profiles.read", "sis.profiles.write", "sis.run", "sis.export", "sis.reports.read", "users.overrides.restore", "code_tables.read"},
		decisions: []decision{d("boss", "", "sis.profiles.write", true), d("manager", "", "sis.run", true), d("manager", "", "sis.profiles.write", false), d("audit", "", "sis.run", false)},
	}, {
		migration: "202611270104_casbin_circulation_policies",
		missing: func(l []string) bool {
			return strings.HasPrefix(l[2], "/libraries") || strings.HasPrefix(l[2], "/items") || l[2] == "/terms-of-use" || strings.HasSuffix(l[2], "/terms")
		},
		actions:   []string{"libraries.read", "libraries.write", "items.read", "items.write", "terms.read", "terms.write"},
		decisions: []decision{d("fulfil", "*", "items.write", true), d("desk", "", "terms.read", true), d("desk", "", "terms.write", false)},
	}, {
		migration: "202611270105_casbin_loan_policies",
		missing:   func(l []string) bool { return strings.Contains(l[2], "/loans") || l[2] == "/returns" },
		actions:   []string{"loans.read", "loans.checkout", "loans.checkin", "loans.renew"},
		decisions: []decision{d("desk", "MAIN", "loans.checkout", true), d("desk", "MAIN", "loans.renew", true), d("desk", "", "loans.checkin", true), d("audit", "", "loans.read", true), d("audit", "", "loans.checkout", false)},
	}, {
		migration: "202611270106_casbin_fee_block_policies",
		missing: func(l []string) bool {
			return l[2] == "/loans/:loan" || strings.HasSuffix(l[2], "/lost") || strings.HasSuffix(l[2], "/blocks") || strings.Contains(l[2], "/fees")
		},
		actions:   []string{"loans.lost", "blocks.read", "fees.read", "fees.charge", "fees.pay", "fees.waive"},
		decisions: []decision{d("fulfil", "", "fees.waive", true), d("desk", "", "fees.pay", true), d("desk", "", "fees.waive", false), d("desk", "MAIN", "loans.lost", true)},
	}, {
		migration: "202611270107_casbin_request_me_policies",
		missing:   func(l []string) bool { return strings.Contains(l[2], "/requests") || strings.HasPrefix(l[2], "/me") },
		actions:   []string{"requests.read", "requests.place", "requests.cancel", "account.read", "account.loans.renew", "account.requests.place", "account.requests.cancel", "account.settings.write"},
		decisions: []decision{d("desk", "MAIN", "requests.place", true), d("audit", "", "requests.cancel", false),
			{casbinmodel.Decision{Institution: "UNI", Subject: "s1", Patron: true, Action: "account.requests.place", Own: true}, true}},
	}, {
		migration: "202611280101_casbin_staff_record_policy",
		missing:   func(l []string) bool { return l[2] == "/users/:id/staff" },
		actions:   []string{"users.staff"},
		decisions: []decision{d("boss", "", "users.staff", true), d("manager", "", "users.staff", false), d("desk", "", "users.staff", false)},
	}} {
		t.Run(c.migration, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
				earlierRelease(t, db, c.migration, c.missing, roles...)
				upgrade(t, db)
				rows := policyRows(t, db)
				for _, action := range c.actions {
					pick := func(l string) bool { return strings.Split(l, ", ")[2] != action }
					got := slices.DeleteFunc(slices.Clone(rows), pick)
					want := slices.DeleteFunc(joined(casbinmodel.DefaultPolicyLines()), pick)
					if len(want) == 0 || !slices.Equal(got, want) {
						t.Errorf("lines of %s after the upgrade: %v, want %v", action, got, want)
					}
				}
				e, _ := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
				for _, x := range c.decisions {
					if ok, err := e.Allow(context.Background(), x.d); err != nil || ok != x.want {
						t.Errorf("%+v: allowed %v (%v), want %v", x.d, ok, err, x.want)
					}
				}
			})
		})
	}
}

// A database whose policy on actions was seeded before a later action
// gets its default lines, once: the policy upgraded is the default, each
// role may do what the default lets it, and a line a policy author removes
// afterwards stays removed.
func TestADatabaseSeededOnActionsGetsTheLaterPermissions(t *testing.T) {
	type decision struct {
		d    casbinmodel.Decision
		want bool
	}
	d := func(sub, action string, want bool) decision {
		return decision{casbinmodel.Decision{Institution: "UNI", Subject: sub, Action: action}, want}
	}
	own := func(action string, want bool) decision {
		return decision{casbinmodel.Decision{Institution: "UNI", Subject: "s1", Patron: true, Action: action, Own: true}, want}
	}
	other := func(action string, want bool) decision {
		return decision{casbinmodel.Decision{Institution: "UNI", Subject: "s1", Patron: true, Action: action}, want}
	}
	roles := [][3]string{{"UNI/audit", "auditor", "*"}, {"UNI/boss", "user-administrator", "*"}, {"UNI/desk", "circulation-desk-operator", "*"},
		{"UNI/fulfil", "fulfillment-administrator", "*"}}
	for _, c := range []struct {
		migration string
		missing   func(l []string) bool // the lines the earlier release lacked
		decisions []decision
		removed   []string // a line the policy author removes, which must not come back
	}{{
		migration: "202612040101_casbin_personal_data_policies",
		missing:   func(l []string) bool { return strings.HasSuffix(l[2], ".personal_data") },
		decisions: []decision{d("audit", "users.personal_data", true), d("boss", "users.personal_data", true), d("desk", "users.personal_data", false),
			own("account.personal_data", true), other("users.personal_data", false)},
		removed: []string{"auditor", "*", "users.personal_data", "*"},
	}, {
		migration: "202612050102_casbin_audit_policies",
		missing:   func(l []string) bool { return strings.HasPrefix(l[2], "audit.") || l[2] == "account.access_log" },
		decisions: []decision{d("audit", "audit.read", true), d("audit", "audit.verify", true), d("boss", "audit.read", false), d("desk", "audit.read", false),
			d("desk", "audit.verify", false), own("account.access_log", true), other("audit.read", false)},
		removed: []string{"auditor", "*", "audit.verify", "*"},
	}, {
		migration: "202612050202_casbin_retention_policies",
		missing:   func(l []string) bool { return l[2] == "privacy.anonymize" || l[2] == "account.history.delete" },
		decisions: []decision{d("boss", "privacy.anonymize", true), d("desk", "privacy.anonymize", false), own("account.history.delete", true), other("account.history.delete", false)},
	}, {
		migration: "202612050302_casbin_legal_hold_policies",
		missing:   func(l []string) bool { return strings.HasPrefix(l[2], "users.legal_hold") },
		decisions: []decision{d("boss", "users.legal_hold", true), d("boss", "users.legal_hold.read", true), d("audit", "users.legal_hold.read", true),
			d("audit", "users.legal_hold", false), d("desk", "users.legal_hold", false), d("desk", "users.legal_hold.read", false), own("users.legal_hold.read", false)},
		removed: []string{"auditor", "*", "users.legal_hold.read", "*"},
	}, {
		migration: "202612050402_casbin_erasure_policies",
		missing:   func(l []string) bool { return l[2] == "users.erase" },
		decisions: []decision{d("boss", "users.erase", true), d("desk", "users.erase", false)},
	}, {
		migration: "202612050502_casbin_purge_policies",
		missing:   func(l []string) bool { return l[2] == "privacy.purge" },
		decisions: []decision{d("boss", "privacy.purge", true), d("desk", "privacy.purge", false)},
	}, {
		migration: "202612060102_casbin_api_key_policies",
		missing:   func(l []string) bool { return l[2] == "api_keys.manage" },
		decisions: []decision{d("boss", "api_keys.manage", true), d("desk", "api_keys.manage", false), d("audit", "api_keys.manage", false)},
	}, {
		migration: "202612060502_casbin_set_policies",
		missing:   func(l []string) bool { return strings.HasPrefix(l[2], "sets.") },
		decisions: []decision{d("boss", "sets.read", true), d("boss", "sets.manage", true), d("desk", "sets.read", false),
			d("desk", "sets.manage", false), d("audit", "sets.read", false), other("sets.read", false),
			d("boss", "sets.jobs", true), d("desk", "sets.jobs", false)},
		removed: []string{"user-administrator", "*", "sets.read", "*"},
	}, {
		migration: "202612070301_casbin_due_date_policies",
		missing:   func(l []string) bool { return l[2] == "loans.due_date" },
		decisions: []decision{d("fulfil", "loans.due_date", true), d("desk", "loans.due_date", false), d("boss", "loans.due_date", false)},
		removed:   []string{"fulfillment-administrator", "*", "loans.due_date", "*"},
	}} {
		t.Run(c.migration, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
				earlierActionsRelease(t, db, c.migration, c.missing, roles...)
				upgrade(t, db)
				if got, want := policyRows(t, db), joined(casbinmodel.DefaultPolicyLines()); !slices.Equal(got, want) {
					t.Errorf("after the upgrade the policy is\n  %s\nwant the default\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
				e, err := casbinmodel.NewEnforcer(casbinmodel.FromDB(db))
				if err != nil {
					t.Fatal(err)
				}
				for _, x := range c.decisions {
					if ok, err := e.Allow(context.Background(), x.d); err != nil || ok != x.want {
						t.Errorf("%+v: allowed %v (%v), want %v", x.d, ok, err, x.want)
					}
				}
				if c.removed == nil {
					return
				}
				deleteRow(t, db, c.removed...)
				upgrade(t, db)
				if slices.Contains(policyRows(t, db), strings.Join(c.removed, ", ")) {
					t.Error("a line the policy author removed came back")
				}
			})
		})
	}
}
