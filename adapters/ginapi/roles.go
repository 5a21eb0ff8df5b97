package ginapi

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// roleRoutes registers the routes on a staff user's roles, Alma's
// user_roles of the user record: read them, and replace them all (swap-all,
// as Alma's PUT of a user does), through the kit's StaffRoles.
func (a *api) roleRoutes(g *routes) {
	g.GET("/users/:primary_id/user_roles", a.getUserRoles)
	g.PUT("/users/:primary_id/user_roles", a.replaceUserRoles)
}

// userRolesBody is what the roles routes answer, and the body of PUT.
type userRolesBody struct {
	UserRoles *[]casbinmodel.UserRole `json:"user_roles"`
}

func writeRoles(c *gin.Context, tag string, roles []casbinmodel.UserRole) {
	if roles == nil {
		roles = []casbinmodel.UserRole{}
	}
	c.Header("ETag", strconv.Quote(tag))
	c.JSON(http.StatusOK, userRolesBody{UserRoles: &roles})
}

func (a *api) getUserRoles(c *gin.Context) {
	r, err := a.kit.Roles.Of(a.ctx(c), a.who(c).Institution, c.Param("primary_id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeRoles(c, r.Tag, r.Roles)
}

// replaceUserRoles makes the list sent the user's roles. If-Match names
// the roles read (their ETag); each role given or taken away must be in a
// library where the principal holds roles.assign ("*" in all of them).
func (a *api) replaceUserRoles(c *gin.Context) {
	tag, err := ifMatchTag(c)
	if err != nil {
		fail(c, err)
		return
	}
	var in userRolesBody
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	if in.UserRoles == nil {
		// Whether the user exists is said first, as on every route.
		if _, err := a.kit.Roles.Of(a.ctx(c), a.who(c).Institution, c.Param("primary_id")); err != nil {
			fail(c, err)
			return
		}
		fail(c, &fault.Error{Kind: fault.Invalid, Detail: "the roles are not valid",
			Fields: []fault.FieldError{{Field: "user_roles", Code: "required", Message: "is required (an empty list takes every role away)"}}})
		return
	}
	r, err := a.kit.Roles.Replace(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), tag, *in.UserRoles,
		func(scope string) (bool, error) { return a.permits(c, scope) })
	if err != nil {
		fail(c, err)
		return
	}
	writeRoles(c, r.Tag, r.Roles)
}

// ifMatchTag reads If-Match as an opaque tag: 428 when missing.
func ifMatchTag(c *gin.Context) (string, error) {
	h := strings.TrimPrefix(strings.TrimSpace(c.GetHeader("If-Match")), "W/")
	if unq, err := strconv.Unquote(h); err == nil {
		h = unq
	}
	if h == "" {
		return "", &requestError{status: http.StatusPreconditionRequired, slug: "precondition-required", detail: "send If-Match with the ETag of the roles you read (GET /users/{primary_id}/user_roles)"}
	}
	return h, nil
}

// userAnswer is a user record as the API answers it: with the roles of a
// STAFF record (user_roles) for a principal that may read them.
type userAnswer struct {
	*patron.User
	UserRoles *[]casbinmodel.UserRole `json:"user_roles,omitempty"`
}

// withRoles answers u with its roles when it is a STAFF record and the
// principal may read roles (roles.read).
func (a *api) withRoles(c *gin.Context, u *patron.User) (userAnswer, error) {
	out := userAnswer{User: u}
	if a.who(c).Patron || u.RecordType != patron.RecordStaff {
		return out, nil
	}
	ok, err := a.ask(c, "roles.read", "", strings.EqualFold(u.PrimaryID, a.who(c).ID))
	if err != nil || !ok {
		return out, err
	}
	roles, err := a.kit.Access.UserRoles(c.Request.Context(), a.who(c).Institution, u.PrimaryID)
	if err != nil {
		return out, err
	}
	out.UserRoles = &roles
	return out, nil
}

// userBody is the body of POST /users and PUT /users/{primary_id}: a user
// record, and the user_roles a record read may carry. Roles are changed
// with PUT /users/{primary_id}/user_roles: here they must be those the
// user holds (none for a new user), so that a record read can be sent
// back.
type userBody struct {
	patron.User
	UserRoles *[]casbinmodel.UserRole `json:"user_roles"`
}

// decodeUser reads a userBody (see decodeJSON). Decoding errors name the
// fields of the record as the record names them (emails, not User.emails).
func decodeUser(c *gin.Context, limit int64, in *userBody) error {
	err := decodeJSON(c, limit, in)
	var fields []fault.FieldError
	var re *requestError
	if errors.As(err, &re) {
		fields = re.fields
	} else if fe, ok := fault.As(err); ok {
		fields = fe.Fields
	}
	for i := range fields {
		fields[i].Field = strings.TrimPrefix(fields[i].Field, "User.")
	}
	return err
}

// checkSentRoles answers 422 and returns false when the roles sent with a
// user record are not those held (held: nil for a new user).
func checkSentRoles(c *gin.Context, sent *[]casbinmodel.UserRole, held []casbinmodel.UserRole) bool {
	if sent == nil {
		return true
	}
	var norm []casbinmodel.UserRole
	for _, ro := range *sent {
		ro = casbinmodel.UserRole{RoleType: strings.TrimSpace(ro.RoleType), Scope: strings.TrimSpace(ro.Scope), Status: strings.ToUpper(strings.TrimSpace(ro.Status))}
		if ro.Status == "" {
			ro.Status = casbinmodel.RoleActive
		}
		if !slices.Contains(norm, ro) {
			norm = append(norm, ro)
		}
	}
	casbinmodel.SortUserRoles(norm)
	if slices.Equal(norm, held) {
		return true
	}
	fail(c, &fault.Error{Kind: fault.Invalid, Detail: "the user record is not valid",
		Fields: []fault.FieldError{{Field: "user_roles", Code: "read_only",
			Message: "change roles with PUT /users/{primary_id}/user_roles; a record sent here may carry only the roles the user holds"}}})
	return false
}
