package casbinmodel_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/casbinmodel"
)

func readPoliciesDoc(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("POLICIES.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(doc)
}

// section is the text of POLICIES.md under a "## " heading.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("POLICIES.md has no section %q", heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// firstColumn lists the `names` that start the rows of the tables of text.
func firstColumn(text string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// POLICIES.md lists every action, once, and nothing else; and every role
// the default policy defines.
func TestPOLICIESListsEveryActionAndRole(t *testing.T) {
	doc := readPoliciesDoc(t)
	var want []string
	for _, a := range casbinmodel.Actions() {
		if a.Description == "" || !regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)+$`).MatchString(a.Name) {
			t.Errorf("action %+v: a name of dotted lower-case words and a description are required", a)
		}
		want = append(want, a.Name)
	}
	if got := firstColumn(section(t, doc, "Actions")); !slices.Equal(got, want) {
		t.Errorf("POLICIES.md lists the actions\n  %v\nwant, in this order,\n  %v", got, want)
	}
	e, _ := casbinmodel.NewEnforcer(casbinmodel.Default())
	roles, err := e.RoleNames(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	roles = append([]string{casbinmodel.PatronRole}, roles...)
	got := firstColumn(section(t, doc, "Roles shipped"))
	slices.Sort(got)
	slices.Sort(roles)
	if !slices.Equal(got, roles) {
		t.Errorf("POLICIES.md lists the roles %v; the default policy defines %v", got, roles)
	}
}

// The default policy names actions only, each one known, never a URL.
func TestTheDefaultPolicyNamesKnownActions(t *testing.T) {
	lines := casbinmodel.DefaultPolicyLines()
	if len(lines) < 100 {
		t.Fatalf("the default policy has %d lines", len(lines))
	}
	for _, l := range lines {
		if len(l) != 4 || !casbinmodel.IsAction(l[2]) || (l[3] != "*" && l[3] != "own") {
			t.Errorf("default policy line %v: want (role, library, a known action, * or own)", l)
		}
	}
	if strings.Contains(casbinmodel.DefaultPolicy(), ", /") {
		t.Error("the default policy names a URL")
	}
}

// exampleDecision is a decision POLICIES.md says an example makes.
type exampleDecision struct {
	sub, library, action string
	want                 bool
}

// The worked examples of POLICIES.md, loaded through FromFiles as the
// page says (added to a copy of the default policy), decide as it says.
func TestTheWorkedExamplesOfPOLICIES(t *testing.T) {
	blocks := regexp.MustCompile("(?s)```csv\n(.*?)```").FindAllStringSubmatch(section(t, readPoliciesDoc(t), "Worked examples"), -1)
	examples := []struct {
		name      string
		decisions []exampleDecision
	}{{
		name: "a read-only auditor",
		decisions: []exampleDecision{
			{"ann", "", "users.read", true}, {"ann", "", "loans.read", true}, {"ann", "", "fees.read", true},
			{"ann", "", "sis.reports.read", true}, {"ann", "", "roles.read", true}, {"ann", "SCIENCE", "loans.read", true},
			{"ann", "", "users.write", false}, {"ann", "", "fees.waive", false}, {"ann", "MAIN", "loans.checkout", false},
			{"ann", "", "roles.assign", false}, {"ann", "", "users.delete", false},
		},
	}, {
		name: "a desk that may waive fees up to its library",
		decisions: []exampleDecision{
			{"dana", "MAIN", "fees.waive", true}, {"dana", "MAIN", "fees.pay", true}, {"dana", "", "fees.waive", true},
			{"dana", "SCIENCE", "fees.waive", false}, {"dana", "*", "fees.waive", false}, {"dana", "MAIN", "users.delete", false},
		},
	}, {
		name: "a self-check kiosk",
		decisions: []exampleDecision{
			{"kiosk-main-1", "MAIN", "loans.checkout", true}, {"kiosk-main-1", "MAIN", "loans.checkin", true}, {"kiosk-main-1", "MAIN", "loans.renew", true},
			{"kiosk-main-1", "SCIENCE", "loans.checkout", false}, {"kiosk-main-1", "SCIENCE", "loans.checkin", false}, {"kiosk-main-1", "SCIENCE", "loans.renew", false},
			{"kiosk-main-1", "", "users.read", false}, {"kiosk-main-1", "MAIN", "fees.pay", false}, {"kiosk-main-1", "MAIN", "loans.read", false},
		},
	}}
	if len(blocks) != len(examples) {
		t.Fatalf("POLICIES.md has %d csv examples, want %d", len(blocks), len(examples))
	}
	for i, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "policy.csv")
			if err := os.WriteFile(path, []byte(casbinmodel.DefaultPolicy()+"\n"+blocks[i][1]), 0o600); err != nil {
				t.Fatal(err)
			}
			e, err := casbinmodel.NewEnforcer(casbinmodel.FromFiles("", path))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ex.decisions {
				got := allow(t, e, casbinmodel.Decision{Institution: "UNI", Subject: d.sub, Library: d.library, Action: d.action})
				if got != d.want {
					t.Errorf("%s %s in %q: %v, want %v", d.sub, d.action, d.library, got, d.want)
				}
			}
		})
	}
}

// Lines grant patterns of actions: "*.read" is every read and never a
// write, "loans.*" every loan action, "fees.{pay,waive}" two; whose "own"
// and "other" split one's own record from others'.
func TestPolicyLinesGrantPatternsOfActions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.csv")
	os.WriteFile(path, []byte(`p, reader, *, *.read, *
p, lender, *, loans.*, *
p, cashier, *, "fees.{pay,waive}", *
p, self-service, *, users.write, own
p, others-only, *, users.write, other
g, UNI/r, reader, *
g, UNI/l, lender, *
g, UNI/c, cashier, *
g, UNI/s, self-service, *
g, UNI/o, others-only, *
`), 0o600)
	e, _ := casbinmodel.NewEnforcer(casbinmodel.FromFiles("", path))
	for _, c := range []struct {
		sub, action string
		own, want   bool
	}{
		{"r", "users.read", false, true}, {"r", "users.overrides.read", false, true}, {"r", "users.write", false, false}, {"r", "roles.assign", false, false},
		{"l", "loans.checkout", false, true}, {"l", "loans.renew", false, true}, {"l", "fees.pay", false, false},
		{"c", "fees.pay", false, true}, {"c", "fees.waive", false, true}, {"c", "fees.charge", false, false},
		{"s", "users.write", true, true}, {"s", "users.write", false, false},
		{"o", "users.write", false, true}, {"o", "users.write", true, false},
	} {
		if got := allow(t, e, casbinmodel.Decision{Institution: "UNI", Subject: c.sub, Action: c.action, Own: c.own}); got != c.want {
			t.Errorf("%s %s (own %v): %v, want %v", c.sub, c.action, c.own, got, c.want)
		}
	}
}

// A policy that is not on actions does not load, and says which line is
// wrong: an earlier release's URL line among them. An adapter asking an
// action that does not exist gets an error, not a refusal.
func TestPoliciesNotOnActionsDoNotLoad(t *testing.T) {
	for line, says := range map[string][]string{
		"p, auditor, *, /users/:id, ^(GET)$":   {"names a URL", "auditor, *, /users/:id, ^(GET)$"},
		"p, auditor, *, users.[read, *":        {"malformed pattern", "auditor, *, users.[read, *"},
		"p, auditor, *, users.read, everybody": {"whose", "auditor, *, users.read, everybody"},
		"p, auditor, *, users.read":            {"expected 4", "auditor * users.read"},
	} {
		path := filepath.Join(t.TempDir(), "policy.csv")
		os.WriteFile(path, []byte(line+"\n"), 0o600)
		e, _ := casbinmodel.NewEnforcer(casbinmodel.FromFiles("", path))
		err := e.Load(context.Background())
		if err == nil || !strings.Contains(err.Error(), says[0]) || !strings.Contains(err.Error(), says[1]) {
			t.Errorf("%q: %v, want an error naming the line and saying %q", line, err, says[0])
		}
	}
	e, _ := casbinmodel.NewEnforcer(casbinmodel.Default())
	if _, err := e.Allow(context.Background(), casbinmodel.Decision{Institution: "UNI", Subject: "x", Action: "loans.chekout"}); err == nil {
		t.Error("an action that does not exist must be an error")
	}
}
