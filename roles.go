package patronkit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// StaffRoles keeps the roles of staff users as Alma's user record holds
// them (user_roles): each a role of the policies (role_type) in a library
// (scope, or "*" for every library). Every adapter that reads or changes
// roles goes through it, so that the same rules hold everywhere: roles
// belong to STAFF records, a role must be one the policies define and a
// library one the institution has, nobody changes their own roles, and
// each change is one role rule of the enforcer, told to the audit sink.
// Which libraries the caller may change roles in is the adapter's to say
// (the may function of Replace), as for every other action.
type StaffRoles struct {
	patrons     *patron.Service
	circulation *circulation.Service
	access      *casbinmodel.Enforcer
}

// UserRoles are the roles a staff user holds, and the tag of that set of
// roles.
type UserRoles struct {
	// PrimaryID is the user's.
	PrimaryID string
	// Roles are the roles held, by role then scope.
	Roles []casbinmodel.UserRole
	// Tag changes whenever the roles do: Replace takes it back to refuse
	// a change made on roles that changed since they were read.
	Tag string
}

// Of answers the roles of a user (none for a record that is not STAFF
// and was never given any); NotFound when there is no such user.
func (r *StaffRoles) Of(ctx context.Context, inst, primaryID string) (*UserRoles, error) {
	u, err := r.patrons.GetSegments(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	return r.held(ctx, inst, u.PrimaryID)
}

func (r *StaffRoles) held(ctx context.Context, inst, primaryID string) (*UserRoles, error) {
	roles, err := r.access.UserRoles(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	return &UserRoles{PrimaryID: primaryID, Roles: roles, Tag: rolesTag(roles)}, nil
}

// rolesTag is a short digest of a set of roles.
func rolesTag(roles []casbinmodel.UserRole) string {
	h := sha256.New()
	for _, ro := range roles {
		fmt.Fprintf(h, "%s\x00%s\n", ro.RoleType, ro.Scope)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Replace makes roles the roles of a user: the roles it lacks are given,
// the roles it holds that roles leaves out are taken away, each change one
// role rule, audited (AuditUpdate, what "user_roles: ROLE in SCOPE
// given|taken away"). Nothing changes when anything is refused:
//
//   - NotFound: no such user;
//   - Forbidden: the actor in ctx is the user (nobody changes their own
//     roles), or may (asked with each changed role's scope) says no;
//   - Invalid, naming the field (user_roles[i].role_type...): a role given
//     to a record that is not STAFF, a role the policies do not define (or
//     "patron"), a scope that is not a library of the institution nor "*",
//     a status other than ACTIVE (roles are held or not);
//   - Stale: tag is not empty and the roles held are no longer those it
//     was read from.
//
// A role listed twice counts once. Roles held that the list keeps are
// kept as they are, even of a role or library that is gone.
func (r *StaffRoles) Replace(ctx context.Context, inst, primaryID, tag string, roles []casbinmodel.UserRole, may func(scope string) (bool, error)) (*UserRoles, error) {
	u, err := r.patrons.GetSegments(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	if actor, ok := patron.ActorFrom(ctx); ok && !actor.Patron && actor.Institution == inst && strings.EqualFold(actor.ID, u.PrimaryID) {
		return nil, &fault.Error{Kind: fault.Forbidden, Detail: "nobody may change their own roles: another user administrator must"}
	}
	cur, err := r.held(ctx, inst, u.PrimaryID)
	if err != nil {
		return nil, err
	}
	want, err := r.check(ctx, inst, u, cur.Roles, roles)
	if err != nil {
		return nil, err
	}
	if tag != "" && tag != cur.Tag {
		return nil, &fault.Error{Kind: fault.Stale, Detail: "the user's roles changed since they were read: read them again"}
	}
	var added, removed []casbinmodel.UserRole
	for _, ro := range want {
		if !slices.Contains(cur.Roles, ro) {
			added = append(added, ro)
		}
	}
	for _, ro := range cur.Roles {
		if !slices.Contains(want, ro) {
			removed = append(removed, ro)
		}
	}
	for _, ro := range slices.Concat(added, removed) {
		ok, err := may(ro.Scope)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &fault.Error{Kind: fault.Forbidden, Detail: fmt.Sprintf("your roles do not allow roles.assign in library %s, where the role %s would change", ro.Scope, ro.RoleType)}
		}
	}
	// Each change is on the trail, or undone: the policy store keeps
	// roles outside the kit's transactions.
	for _, ro := range removed {
		if err := r.access.RevokeRole(ctx, inst, u.PrimaryID, ro.RoleType, ro.Scope); err != nil {
			return nil, err
		}
		if err := r.patrons.RecordAudit(ctx, inst, patron.AuditUpdate, u.PrimaryID, "user_roles", roleDetails(ro, "removed")); err != nil {
			return nil, errors.Join(err, r.access.AssignRole(ctx, inst, u.PrimaryID, ro.RoleType, ro.Scope))
		}
	}
	for _, ro := range added {
		if err := r.access.AssignRole(ctx, inst, u.PrimaryID, ro.RoleType, ro.Scope); err != nil {
			return nil, err
		}
		if err := r.patrons.RecordAudit(ctx, inst, patron.AuditUpdate, u.PrimaryID, "user_roles", roleDetails(ro, "added")); err != nil {
			return nil, errors.Join(err, r.access.RevokeRole(ctx, inst, u.PrimaryID, ro.RoleType, ro.Scope))
		}
	}
	return r.held(ctx, inst, u.PrimaryID)
}

// check validates the roles sent for u, who holds held, and answers them
// trimmed, with their status, once each.
func (r *StaffRoles) check(ctx context.Context, inst string, u *patron.User, held, roles []casbinmodel.UserRole) ([]casbinmodel.UserRole, error) {
	names, err := r.access.RoleNames(ctx)
	if err != nil {
		return nil, err
	}
	var fields []fault.FieldError
	bad := func(i int, field, code, msg string) {
		fields = append(fields, fault.FieldError{Field: fmt.Sprintf("user_roles[%d].%s", i, field), Code: code, Message: msg})
	}
	var out []casbinmodel.UserRole
	for i, ro := range roles {
		ro.RoleType, ro.Scope = strings.TrimSpace(ro.RoleType), strings.TrimSpace(ro.Scope)
		switch ro.Status = strings.ToUpper(strings.TrimSpace(ro.Status)); ro.Status {
		case "":
			ro.Status = casbinmodel.RoleActive
		case casbinmodel.RoleActive:
		default:
			bad(i, "status", "unknown_value", "must be ACTIVE: to take a role away, leave it out")
		}
		kept := slices.ContainsFunc(held, func(h casbinmodel.UserRole) bool { return h.RoleType == ro.RoleType && h.Scope == ro.Scope })
		switch {
		case ro.RoleType == "":
			bad(i, "role_type", "required", "is required: a role of the policies, one of "+strings.Join(names, ", "))
		case !kept && !slices.Contains(names, ro.RoleType):
			bad(i, "role_type", "unknown_value", "is not a role of the policies: one of "+strings.Join(names, ", "))
		}
		switch {
		case ro.Scope == "":
			bad(i, "scope", "required", `is required: a library's code, or "*" for every library`)
		case ro.Scope == "*" || kept:
		default:
			l, err := r.circulation.Library(ctx, inst, ro.Scope)
			if e, ok := fault.As(err); ok && e.Kind == fault.NotFound {
				bad(i, "scope", "unknown_value", `is not a library of the institution, nor "*" for every library`)
			} else if err != nil {
				return nil, err
			} else {
				ro.Scope = l.Code // as the library writes it
			}
		}
		if !slices.Contains(out, ro) {
			out = append(out, ro)
		}
	}
	if u.RecordType != patron.RecordStaff && slices.ContainsFunc(out, func(ro casbinmodel.UserRole) bool { return !slices.Contains(held, ro) }) {
		fields = append(fields, fault.FieldError{Field: "user_roles", Code: "not_staff",
			Message: "only a STAFF record holds roles: make the record STAFF first"})
	}
	if len(fields) > 0 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the roles are not valid", Fields: fields}
	}
	casbinmodel.SortUserRoles(out)
	return out, nil
}

// roleDetails are the details of a role's change on the audit trail:
// {"user_roles":{"added":[{"role_type":...,"scope":...}]}} (or
// "removed").
func roleDetails(ro casbinmodel.UserRole, how string) string {
	b, _ := json.Marshal(map[string]map[string][]map[string]string{"user_roles": {how: {{"role_type": ro.RoleType, "scope": ro.Scope}}}}) // strings only: cannot fail
	return string(b)
}
