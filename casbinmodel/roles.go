package casbinmodel

import (
	"cmp"
	"context"
	"slices"
	"strings"
)

// RoleActive is the status of a role a staff user holds. Roles are held
// or not: one taken away is no longer listed.
const RoleActive = "ACTIVE"

// UserRole is a role a staff user holds, as Alma's user record names it
// (a user_role of user_roles): RoleType is the role's name in the policy
// ("circulation-desk-operator"), Scope the code of the library where it
// holds or "*" for every library, Status RoleActive.
type UserRole struct {
	RoleType string `json:"role_type"`
	Scope    string `json:"scope"`
	Status   string `json:"status"`
}

// UserRoles lists the roles of a staff user, by role then scope.
func (en *Enforcer) UserRoles(ctx context.Context, institution, primaryID string) ([]UserRole, error) {
	held, err := en.Roles(ctx, institution, primaryID)
	if err != nil {
		return nil, err
	}
	out := make([]UserRole, 0, len(held))
	for _, r := range held {
		out = append(out, UserRole{RoleType: r[0], Scope: r[1], Status: RoleActive})
	}
	SortUserRoles(out)
	return out, nil
}

// SortUserRoles orders roles by role, then scope.
func SortUserRoles(roles []UserRole) {
	slices.SortFunc(roles, func(a, b UserRole) int {
		return cmp.Or(strings.Compare(a.RoleType, b.RoleType), strings.Compare(a.Scope, b.Scope))
	})
}

// RoleNames lists the roles the policies define, sorted: the roles policy
// lines grant actions to, and those role lines name between roles (g,
// senior-desk, circulation-desk-operator, *). The patron role and staff
// subjects ("INSTITUTION/primary_id") are not roles one can be given.
func (en *Enforcer) RoleNames(ctx context.Context) ([]string, error) {
	e, err := en.enforcer(ctx)
	if err != nil {
		return nil, err
	}
	lines, err := e.GetPolicy()
	if err != nil {
		return nil, err
	}
	groups, err := e.GetGroupingPolicy()
	if err != nil {
		return nil, err
	}
	var names []string
	add := func(name string) {
		if name != "" && name != PatronRole && !strings.Contains(name, "/") && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	for _, l := range lines {
		add(l[0])
	}
	for _, g := range groups {
		if len(g) >= 2 && !strings.Contains(g[0], "/") { // between roles, not a role given
			add(g[0])
			add(g[1])
		}
	}
	slices.Sort(names)
	return names, nil
}
