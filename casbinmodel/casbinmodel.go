// Package casbinmodel holds patronkit's Casbin access model and default
// policies (embedded), and builds the enforcer that decides every access.
//
// Policies name actions of the library ("loans.checkout", "fees.waive"),
// never URLs: every adapter (the HTTP API in adapters/ginapi, and any
// other: a SIP2 server, the Alma users API, the patron's web pages) asks
// the same Enforcer, through Allow, whether a subject may do an action in
// a library, on their own record or another's. Actions lists the
// vocabulary; POLICIES.md, beside this file, is the policy author's guide:
// the actions, the roles shipped and worked examples.
//
// Policies come from one of three places:
//
//   - Default(): the embedded model and policy file, held in memory (role
//     assignments made at run time are lost at exit: for tests and demos);
//   - FromFiles(model, policy): files a policy author edits;
//   - FromDB(db): the embedded model, policy rows in the table
//     pk_casbin_rules (read and written by a small Casbin adapter of
//     patronkit's own over the host's *gorm.DB), seeded with the default
//     policy the first time; role assignments persist. Migrations turn the
//     URL lines of earlier releases into action lines.
//
// Roles belong to a staff user, named by institution and primary_id: the
// kit takes them away when the user is deleted (RemoveRolesWith in the
// deletion's transaction, then RemoveRoles) and moves them when the
// primary_id changes (MoveRoles). With FromDB the roles of a staff user
// are read from the table at every decision about them, so that a role
// revoked or a user deleted through one instance counts at once on every
// instance.
package casbinmodel

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	fileadapter "github.com/casbin/casbin/v2/persist/file-adapter"
	stringadapter "github.com/casbin/casbin/v2/persist/string-adapter"
	"gorm.io/gorm"
)

//go:embed model.conf
var defaultModel string

//go:embed policy.csv
var defaultPolicy string

// DefaultModel returns the text of the embedded model.
func DefaultModel() string { return defaultModel }

// DefaultPolicy returns the text of the embedded default policy file.
func DefaultPolicy() string { return defaultPolicy }

// RuleTable is the table FromDB keeps policy rows in.
const RuleTable = "pk_casbin_rules"

// PatronRole is the subject under which a patron acting on their own
// account is decided.
const PatronRole = "patron"

// Policies says where the model and policies come from. Make one with
// Default, FromFiles or FromDB.
type Policies struct {
	name    string
	model   func() (model.Model, error)
	adapter func() (persist.Adapter, error)
	// seed, when set, fills an empty store with the default policy.
	seed bool
	// db is the database FromDB keeps the rules in.
	db *gorm.DB
}

// IsZero reports whether p was never set (a Config field left empty).
func (p Policies) IsZero() bool { return p.model == nil }

// Default is the embedded model and policy, in memory.
func Default() Policies {
	return Policies{
		name:    "default",
		model:   func() (model.Model, error) { return model.NewModelFromString(defaultModel) },
		adapter: func() (persist.Adapter, error) { return stringadapter.NewAdapter(defaultPolicy), nil },
	}
}

// FromFiles reads the model and the policy from files. An empty modelPath
// takes the embedded model.
func FromFiles(modelPath, policyPath string) Policies {
	return Policies{
		name: "files",
		model: func() (model.Model, error) {
			if modelPath == "" {
				return model.NewModelFromString(defaultModel)
			}
			return model.NewModelFromFile(modelPath)
		},
		adapter: func() (persist.Adapter, error) {
			if _, err := os.Stat(policyPath); err != nil {
				return nil, fmt.Errorf("casbinmodel: policy file: %w", err)
			}
			return fileadapter.NewAdapter(policyPath), nil
		},
	}
}

// FromDB keeps policy rows in the database (table pk_casbin_rules, created
// by Migrations), seeded with the default policy when the table is empty.
func FromDB(db *gorm.DB) Policies {
	return Policies{
		name:  "database",
		model: func() (model.Model, error) { return model.NewModelFromString(defaultModel) },
		adapter: func() (persist.Adapter, error) {
			if db == nil {
				return nil, errors.New("casbinmodel: FromDB needs a database")
			}
			return &ruleStore{db: db.Session(&gorm.Session{NewDB: true})}, nil
		},
		seed: true,
		db:   db,
	}
}

// Decision is one question put to the enforcer: may this subject do this
// action, in this library, on this record? Adapters fill it from what they
// know of the principal and of what the deed concerns.
type Decision struct {
	// Institution and Subject (a primary_id) name who asks. A staff
	// subject is decided by the roles it holds in the institution.
	Institution string
	Subject     string
	// Patron is true when the subject is a patron acting on their own
	// account: decided under the role "patron" (PatronRole), which holds
	// in every library.
	Patron bool
	// Library is the code of the library the action concerns: the
	// subject's roles must hold there (or in every library, "*"). "*"
	// asks for roles held in every library; empty is for what belongs to
	// the whole institution (a user record), where a role held in any
	// library counts.
	Library string
	// Action is one of Actions, e.g. "loans.renew".
	Action string
	// Own is true when the action concerns the subject's own record or
	// account (a patron reading their own record; a staff user acting on
	// their own). Policy lines with whose "own" hold only then, and those
	// with whose "other" only otherwise.
	Own bool
}

// Enforcer decides access. It loads its policies on first use (or on
// Load) and is safe for concurrent use.
type Enforcer struct {
	policies Policies
	mu       sync.Mutex
	e        *casbin.SyncedCachedEnforcer
}

// NewEnforcer returns an enforcer over p; nothing is read until Load or the
// first decision.
func NewEnforcer(p Policies) (*Enforcer, error) {
	if p.model == nil {
		return nil, errors.New("casbinmodel: empty Policies: use Default, FromFiles or FromDB")
	}
	return &Enforcer{policies: p}, nil
}

// Load reads (or re-reads) the model and policies now. With FromDB, an
// empty policy table is first seeded with the default policy. A policy
// line that is not (role, library, action, whose) with a well-formed
// action pattern and whose "*", "own" or "other" is an error that names
// it: a policy on URLs of an earlier release among them (FromDB tables
// are migrated; files must be rewritten, see POLICIES.md).
func (en *Enforcer) Load(ctx context.Context) error {
	en.mu.Lock()
	defer en.mu.Unlock()
	m, err := en.policies.model()
	if err != nil {
		return fmt.Errorf("casbinmodel: model: %w", err)
	}
	a, err := en.policies.adapter()
	if err != nil {
		return fmt.Errorf("casbinmodel: policies: %w", err)
	}
	e, err := casbin.NewSyncedCachedEnforcer(m, a)
	if err != nil {
		return fmt.Errorf("casbinmodel: %s policies: %w", en.policies.name, err)
	}
	if !en.policies.seed {
		e.EnableAutoSave(false)
	}
	if en.policies.seed {
		held, err := e.GetPolicy()
		if err != nil {
			return err
		}
		if len(held) == 0 {
			if err := seed(e); err != nil {
				return err
			}
		}
	}
	held, err := e.GetPolicy()
	if err != nil {
		return err
	}
	for _, line := range held {
		if err := checkLine(line); err != nil {
			return fmt.Errorf("casbinmodel: %s policies: the line \"p, %s\" %w", en.policies.name, strings.Join(line, ", "), err)
		}
	}
	en.e = e
	return nil
}

// checkLine tells what is wrong with a p line, if anything.
func checkLine(line []string) error {
	switch {
	case len(line) != 4:
		return errors.New("is not (role, library, action, whose)")
	case isURLRule(line[2]):
		return errors.New("names a URL: policies name actions (see Actions and POLICIES.md)")
	case line[2] == "" || !doublestar.ValidatePattern(line[2]):
		return errors.New("names no action, or a malformed pattern of actions")
	case line[3] != WhoseAny && line[3] != WhoseOwn && line[3] != WhoseOther:
		return errors.New(`says whose records neither "*", "own" nor "other"`)
	}
	return nil
}

// seed adds the default policy lines one batch at a time (AddPolicies, not
// SavePolicy, which clears the table outside its transaction). A second
// instance seeding at the same moment loses on the unique index; it then
// reads what the first wrote.
func seed(e *casbin.SyncedCachedEnforcer) error {
	if _, err := e.AddPolicies(defaultRules()); err != nil {
		if lerr := e.LoadPolicy(); lerr != nil {
			return fmt.Errorf("casbinmodel: seeding the default policy: %w", err)
		}
		if held, _ := e.GetPolicy(); len(held) == 0 {
			return fmt.Errorf("casbinmodel: seeding the default policy: %w", err)
		}
	}
	return nil
}

// defaultRules are the p lines of the default policy, without the "p".
func defaultRules() [][]string { return policyLines(defaultPolicy) }

// policyLines are the p lines of a policy file, without the "p".
func policyLines(policy string) [][]string {
	var rules [][]string
	for _, line := range strings.Split(policy, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		if parts[0] == "p" {
			rules = append(rules, parts[1:])
		}
	}
	return rules
}

func (en *Enforcer) enforcer(ctx context.Context) (*casbin.SyncedCachedEnforcer, error) {
	en.mu.Lock()
	e := en.e
	en.mu.Unlock()
	if e != nil {
		return e, nil
	}
	if err := en.Load(ctx); err != nil {
		return nil, err
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	return en.e, nil
}

// StaffSubject is the Casbin subject of a staff user of an institution.
func StaffSubject(institution, primaryID string) string {
	return institution + "/" + primaryID
}

// Allow decides d: whether its subject may do its action in its library,
// on their own record or another's. An action that is not one of Actions
// is an error (a mistake of the adapter, not a refusal).
func (en *Enforcer) Allow(ctx context.Context, d Decision) (bool, error) {
	v, err := en.Decide(ctx, d)
	return v.Allowed, err
}

// Verdict is a decision (see Decide) with what it was made on, for the
// audit trail to name.
type Verdict struct {
	// Allowed tells whether the subject may do the action.
	Allowed bool
	// Library is where the action was allowed: the decision's library,
	// or, for a decision of the whole institution, the library of the
	// role that allowed it ("*" for a role held in every library).
	// Empty when refused.
	Library string
	// Roles are the roles a staff subject holds, as "role@library"
	// ("@*" for every library), sorted: for a decision in a library,
	// those that hold there; for one of the whole institution, all of
	// them. Empty for a patron.
	Roles []string
}

// Decide is Allow, telling where the action was allowed and with which
// roles the subject holds: it reads them once, for the decision and the
// verdict alike.
func (en *Enforcer) Decide(ctx context.Context, d Decision) (Verdict, error) {
	if !IsAction(d.Action) {
		return Verdict{}, fmt.Errorf("casbinmodel: %q is not an action (see Actions)", d.Action)
	}
	e, err := en.enforcer(ctx)
	if err != nil {
		return Verdict{}, err
	}
	whose := WhoseOther
	if d.Own {
		whose = WhoseOwn
	}
	sub := StaffSubject(d.Institution, d.Subject)
	var v Verdict
	if d.Patron {
		sub = PatronRole
	} else {
		if err := en.syncRoles(ctx, e, sub); err != nil {
			return Verdict{}, err
		}
		held, err := e.GetFilteredGroupingPolicy(0, sub)
		if err != nil {
			return Verdict{}, err
		}
		for _, r := range held {
			if len(r) >= 3 && (d.Library == "" || r[2] == d.Library || r[2] == "*") {
				v.Roles = append(v.Roles, r[1]+"@"+r[2])
			}
		}
		slices.Sort(v.Roles)
	}
	if d.Library != "" {
		ok, err := e.Enforce(sub, d.Library, d.Action, whose)
		if err != nil || !ok {
			return Verdict{Roles: v.Roles}, err
		}
		v.Allowed, v.Library = true, d.Library
		return v, nil
	}
	// What belongs to the whole institution: a role in any library counts.
	domains := []string{"*"}
	if !d.Patron {
		ds, err := e.GetDomainsForUser(sub)
		if err != nil {
			return Verdict{}, err
		}
		slices.Sort(ds) // the same verdict every time
		domains = append(domains, ds...)
	}
	for _, dom := range domains {
		ok, err := e.Enforce(sub, dom, d.Action, whose)
		if err != nil {
			return Verdict{}, err
		}
		if ok {
			v.Allowed, v.Library = true, dom
			return v, nil
		}
	}
	return v, nil
}

// AssignRole gives a staff user a role in a library ("*" for all). With
// FromDB the assignment is saved; otherwise it lasts until the process ends.
func (en *Enforcer) AssignRole(ctx context.Context, institution, primaryID, role, library string) error {
	e, err := en.enforcer(ctx)
	if err != nil {
		return err
	}
	if _, err := e.AddGroupingPolicy(StaffSubject(institution, primaryID), role, library); err != nil {
		return err
	}
	e.InvalidateCache()
	return nil
}

// RevokeRole takes a role in a library away from a staff user.
func (en *Enforcer) RevokeRole(ctx context.Context, institution, primaryID, role, library string) error {
	e, err := en.enforcer(ctx)
	if err != nil {
		return err
	}
	if _, err := e.RemoveGroupingPolicy(StaffSubject(institution, primaryID), role, library); err != nil {
		return err
	}
	e.InvalidateCache()
	return nil
}

// Roles lists the roles of a staff user as [role, library] pairs.
func (en *Enforcer) Roles(ctx context.Context, institution, primaryID string) ([][2]string, error) {
	e, err := en.enforcer(ctx)
	if err != nil {
		return nil, err
	}
	sub := StaffSubject(institution, primaryID)
	if err := en.syncRoles(ctx, e, sub); err != nil {
		return nil, err
	}
	rules, err := e.GetFilteredGroupingPolicy(0, sub)
	if err != nil {
		return nil, err
	}
	out := make([][2]string, 0, len(rules))
	for _, r := range rules {
		out = append(out, [2]string{r[1], r[2]})
	}
	return out, nil
}

// RemoveRoles takes every role of a staff user away, in every library:
// those of the primary_id written in any case, as primary ids are. With
// FromDB the rows are deleted. The kit calls it when a user is deleted.
func (en *Enforcer) RemoveRoles(ctx context.Context, institution, primaryID string) error {
	if db := en.policies.db; db != nil {
		if err := en.RemoveRolesWith(db.WithContext(ctx), institution, primaryID); err != nil {
			return err
		}
	}
	return en.ForgetRoles(ctx, institution, primaryID)
}

// ForgetRoles takes the roles of a staff user out of this enforcer's
// memory (and out of the table, when it still holds some), once their
// stored rows went with RemoveRolesWith in the transaction that deleted
// the user: the kit calls it when that transaction has committed. A user
// without roles costs no query.
func (en *Enforcer) ForgetRoles(ctx context.Context, institution, primaryID string) error {
	e, err := en.enforcer(ctx)
	if err != nil {
		return err
	}
	held, err := heldSubjects(e, StaffSubject(institution, primaryID))
	if err != nil {
		return err
	}
	for _, h := range held {
		if _, err := e.RemoveFilteredGroupingPolicy(0, h); err != nil {
			return err
		}
	}
	if len(held) > 0 {
		e.InvalidateCache()
	}
	return nil
}

// RemoveRolesWith deletes the stored roles of staff users (each
// primary_id in any case, in every library) through tx, a transaction on
// the database FromDB keeps the rules in, so that they go in the same
// commit as what else tx writes: the kit passes the transaction that
// deletes the users. Every enforcer sees it at its next decision about
// them. It does nothing when the policies are not kept in a database.
func (en *Enforcer) RemoveRolesWith(tx *gorm.DB, institution string, primaryIDs ...string) error {
	if en.policies.db == nil || tx == nil || len(primaryIDs) == 0 {
		return nil
	}
	subs := make([]string, len(primaryIDs))
	for i, p := range primaryIDs {
		subs[i] = strings.ToLower(StaffSubject(institution, p))
	}
	return tx.Table(RuleTable).Where("ptype = ? AND LOWER(v0) IN ?", "g", subs).Delete(&rule{}).Error
}

// MoveRoles gives the roles of a staff user's former primary_id (in any
// case) to their new one: the kit calls it when a user's primary_id
// changes, so that the roles stay with the user and none stay behind for
// whoever takes the old primary_id.
func (en *Enforcer) MoveRoles(ctx context.Context, institution, from, to string) error {
	e, err := en.enforcer(ctx)
	if err != nil {
		return err
	}
	old, target := StaffSubject(institution, from), StaffSubject(institution, to)
	if err := en.syncRoles(ctx, e, old); err != nil {
		return err
	}
	held, err := heldSubjects(e, old)
	if err != nil {
		return err
	}
	var moved [][]string
	for _, h := range held {
		if h == target {
			continue
		}
		rules, err := e.GetFilteredGroupingPolicy(0, h)
		if err != nil {
			return err
		}
		for _, r := range rules {
			m := []string{target, r[1], r[2]}
			has, err := e.HasGroupingPolicy(m)
			if err != nil {
				return err
			}
			if !has && !slices.ContainsFunc(moved, func(x []string) bool { return slices.Equal(x, m) }) {
				moved = append(moved, m)
			}
		}
		if _, err := e.RemoveFilteredGroupingPolicy(0, h); err != nil {
			return err
		}
	}
	if len(moved) > 0 {
		if _, err := e.AddGroupingPolicies(moved); err != nil {
			return err
		}
	}
	e.InvalidateCache()
	return nil
}

// heldSubjects are the staff subjects of the grouping rules e holds that
// are sub whatever their case.
func heldSubjects(e *casbin.SyncedCachedEnforcer, sub string) ([]string, error) {
	rules, err := e.GetGroupingPolicy()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rules {
		if len(r) > 0 && strings.EqualFold(r[0], sub) && !slices.Contains(out, r[0]) {
			out = append(out, r[0])
		}
	}
	return out, nil
}

// syncRoles makes e hold the roles of the staff subject sub that the
// policy table holds (FromDB): when they differ (a role assigned or
// revoked, a user deleted through another instance) the policies are read
// again. Other policies stay as read until the next Load.
func (en *Enforcer) syncRoles(ctx context.Context, e *casbin.SyncedCachedEnforcer, sub string) error {
	if en.policies.db == nil {
		return nil
	}
	var rows []rule
	if err := en.policies.db.WithContext(ctx).Table(RuleTable).Where("ptype = ? AND v0 = ?", "g", sub).Find(&rows).Error; err != nil {
		return fmt.Errorf("casbinmodel: reading the roles of %s: %w", sub, err)
	}
	stored := map[[2]string]bool{}
	for _, r := range rows {
		if r.V0 == sub { // MySQL compares without case
			stored[[2]string{r.V1, r.V2}] = true
		}
	}
	held, err := e.GetFilteredGroupingPolicy(0, sub)
	if err != nil {
		return err
	}
	same := len(held) == len(stored)
	for _, r := range held {
		same = same && len(r) >= 3 && stored[[2]string{r[1], r[2]}]
	}
	if same {
		return nil
	}
	if err := e.LoadPolicy(); err != nil {
		return fmt.Errorf("casbinmodel: reading the policies again: %w", err)
	}
	// A decision made while the policies were being read may have been
	// kept in the cache.
	return e.InvalidateCache()
}
