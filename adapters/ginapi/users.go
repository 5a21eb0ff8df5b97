package ginapi

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/account"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// userRoutes registers the staff routes on users and their segments.
func (a *api) userRoutes(g *routes) {
	g.GET("/users", a.listUsers)
	g.POST("/users", a.createUser)
	g.GET("/users/:primary_id", a.getUser)
	g.PUT("/users/:primary_id", a.replaceUser)
	g.DELETE("/users/:primary_id", a.deleteUser)
	g.GET("/users/:primary_id/overrides", a.listOverrides)
	addSegmentRoute(a, g, patron.KindIdentifiers, a.kit.Patrons.AddIdentifier)
	addSegmentRoute(a, g, patron.KindAddresses, a.kit.Patrons.AddAddress)
	addSegmentRoute(a, g, patron.KindEmails, a.kit.Patrons.AddEmail)
	addSegmentRoute(a, g, patron.KindPhones, a.kit.Patrons.AddPhone)
	addSegmentRoute(a, g, patron.KindNotes, a.kit.Patrons.AddNote)
	addSegmentRoute(a, g, patron.KindBlocks, a.kit.Patrons.AddBlock)
	addSegmentRoute(a, g, patron.KindStatistics, a.kit.Patrons.AddStatistic)
	addSegmentRoute(a, g, patron.KindProxyFor, a.kit.Patrons.AddProxyFor)
	for _, kind := range patron.SegmentKinds {
		g.DELETE("/users/:primary_id/"+kind+"/:segment_id", a.removeSegment(kind))
	}
}

func (a *api) listUsers(c *gin.Context) {
	limit, offset, err := pageParams(c)
	if err != nil {
		fail(c, err)
		return
	}
	page, err := a.kit.Patrons.List(a.ctx(c), a.who(c).Institution, patron.Query{
		Q:           c.Query("q"),
		UserGroup:   c.Query("user_group"),
		Status:      c.Query("status"),
		AccountType: c.Query("account_type"),
		RecordType:  c.Query("record_type"),
		Limit:       limit,
		Offset:      offset,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (a *api) createUser(c *gin.Context) {
	var in userBody
	if err := decodeUser(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	if !checkSentRoles(c, in.UserRoles, nil) {
		return
	}
	if isStaff(in.RecordType) && !a.allowStaffRecord(c, in.PrimaryID, "create a STAFF record") {
		return
	}
	u, err := a.kit.Patrons.Create(a.ctx(c), a.who(c).Institution, &in.User)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", a.path("users", u.PrimaryID))
	a.writeUser(c, http.StatusCreated, u)
}

func (a *api) getUser(c *gin.Context) {
	inst := a.who(c).Institution
	var u *patron.User
	var err error
	if idType := c.Query("user_id_type"); idType != "" && !strings.EqualFold(idType, "all_unique") {
		u, err = a.kit.Patrons.GetByIdentifier(a.ctx(c), inst, idType, c.Param("primary_id"))
	} else {
		u, err = a.kit.Patrons.Get(a.ctx(c), inst, c.Param("primary_id"))
	}
	if err != nil {
		fail(c, err)
		return
	}
	a.writeUser(c, http.StatusOK, u)
}

func (a *api) replaceUser(c *gin.Context) {
	version, err := ifMatch(c)
	if err != nil {
		fail(c, err)
		return
	}
	var in userBody
	if err := decodeUser(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	if in.UserRoles != nil {
		held, err := a.kit.Roles.Of(a.ctx(c), a.who(c).Institution, c.Param("primary_id"))
		if err != nil {
			fail(c, err)
			return
		}
		if !checkSentRoles(c, in.UserRoles, held.Roles) {
			return
		}
	}
	if !a.allowReplace(c, version, &in.User) {
		return
	}
	u, err := a.kit.Patrons.Replace(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), version, &in.User)
	if err != nil {
		fail(c, err)
		return
	}
	a.writeUser(c, http.StatusOK, u)
}

// isStaff tells whether a record_type sent is STAFF.
func isStaff(recordType string) bool {
	return strings.EqualFold(strings.TrimSpace(recordType), patron.RecordStaff)
}

// allowReplace answers 403 and returns false when a replacement touches
// what makes a staff member and the principal's roles do not allow it
// (allowStaffRecord): making the record STAFF, making a STAFF record
// something else, setting a STAFF record's PIN, or changing a STAFF
// record's primary_id (roles are held by primary_id: taking one that was
// given roles would take them too). The record is read at the version the
// replacement names; if it changed since, the replacement itself answers
// 412.
func (a *api) allowReplace(c *gin.Context, version int, in *patron.User) bool {
	sent, id := strings.TrimSpace(in.RecordType), strings.TrimSpace(in.PrimaryID)
	if sent == "" && in.PINNumber == "" && (id == "" || id == c.Param("primary_id")) {
		return true // neither the record type, the PIN nor the primary_id changes
	}
	if ok, err := a.permitsStaffRecord(c, c.Param("primary_id")); err != nil || ok {
		if err != nil {
			fail(c, err)
		}
		return err == nil
	}
	cur, err := a.kit.Patrons.Get(a.ctx(c), a.who(c).Institution, c.Param("primary_id"))
	if err != nil {
		fail(c, err)
		return false
	}
	if cur.Version != version {
		return true // stale: Replace refuses it
	}
	was := cur.RecordType == patron.RecordStaff
	var what string
	switch {
	case !was && isStaff(sent):
		what = "make a record STAFF"
	case was && sent != "" && !isStaff(sent):
		what = "make a STAFF record " + strings.ToUpper(sent)
	case was && in.PINNumber != "":
		what = "set the PIN of a STAFF record"
	case was && id != "" && id != cur.PrimaryID:
		what = "change the primary_id of a STAFF record"
	default:
		return true
	}
	a.refuseStaffRecord(c, what)
	return false
}

// allowStaffRecord asks the enforcer whether the principal may create or
// change staff records (the action users.staff), on top of the route's own
// action: a STAFF record signs in as staff and holds roles, so that making
// one is a user administrator's action, not a desk's. It answers 403
// saying what was refused (what) and returns false when not.
func (a *api) allowStaffRecord(c *gin.Context, primaryID, what string) bool {
	ok, err := a.permitsStaffRecord(c, primaryID)
	if err != nil {
		fail(c, err)
		return false
	}
	if !ok {
		a.refuseStaffRecord(c, what)
	}
	return ok
}

func (a *api) permitsStaffRecord(c *gin.Context, primaryID string) (bool, error) {
	return a.ask(c, "users.staff", "", strings.EqualFold(strings.TrimSpace(primaryID), a.who(c).ID))
}

func (a *api) refuseStaffRecord(c *gin.Context, what string) {
	problem(c, http.StatusForbidden, "forbidden", "your roles do not allow you to "+what+
		": a STAFF record signs in as staff and holds roles, so that only a user administrator may create one, make a record STAFF or not, set its PIN or change its primary_id")
}

func (a *api) deleteUser(c *gin.Context) {
	if err := a.kit.Patrons.Delete(a.ctx(c), a.who(c).Institution, c.Param("primary_id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (a *api) listOverrides(c *gin.Context) {
	out, err := a.kit.Patrons.Overrides(a.ctx(c), a.who(c).Institution, c.Param("primary_id"))
	if err != nil {
		fail(c, err)
		return
	}
	if out == nil {
		out = []patron.FieldOverride{}
	}
	c.JSON(http.StatusOK, gin.H{"overrides": out, "total_record_count": len(out)})
}

// addSegmentRoute registers POST /users/{primary_id}/{kind}: add one
// Internal segment, answer the whole record.
func addSegmentRoute[T any](a *api, g *routes, kind string, add func(ctx context.Context, inst, primaryID string, x T) (*patron.User, error)) {
	g.POST("/users/:primary_id/"+kind, func(c *gin.Context) {
		var x T
		if err := decodeJSON(c, a.opts.MaxBodyBytes, &x); err != nil {
			fail(c, err)
			return
		}
		u, err := add(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), x)
		if err != nil {
			fail(c, err)
			return
		}
		a.writeUser(c, http.StatusCreated, u)
	})
}

func (a *api) removeSegment(kind string) gin.HandlerFunc {
	return func(c *gin.Context) {
		_, err := a.kit.Patrons.RemoveSegment(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), kind, c.Param("segment_id"))
		if err != nil {
			fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

// writeUser answers a user record with its version as ETag, and a STAFF
// record's roles for staff who may read them (user_roles). A patron sees
// only their own record (whatever lookup found it), without staff notes.
func (a *api) writeUser(c *gin.Context, status int, u *patron.User) {
	who := a.who(c)
	if who.Patron {
		if !strings.EqualFold(u.PrimaryID, who.ID) {
			problem(c, http.StatusNotFound, "not-found", "no such user")
			return
		}
		c.Header("ETag", strconv.Quote(strconv.Itoa(u.Version)))
		c.JSON(status, patronView(u))
		return
	}
	out, err := a.withRoles(c, u)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", strconv.Quote(strconv.Itoa(u.Version)))
	c.JSON(status, out)
}

// patronView is what a patron may see of their own record: no notes for
// staff only, no warnings meant for staff.
func patronView(u *patron.User) *patron.User { return account.View(u) }

// ifMatch reads the version an update is based on from If-Match: 428 when
// missing, 400 when not a version this API wrote.
func ifMatch(c *gin.Context) (int, error) {
	h := strings.TrimSpace(c.GetHeader("If-Match"))
	if h == "" {
		return 0, &requestError{status: http.StatusPreconditionRequired, slug: "precondition-required", detail: "send If-Match with the version (ETag) of the record you read"}
	}
	h = strings.TrimPrefix(h, "W/")
	if unq, err := strconv.Unquote(h); err == nil {
		h = unq
	}
	v, err := strconv.Atoi(h)
	if err != nil || v < 1 {
		return 0, badRequest("If-Match must be the ETag of the record, e.g. \"3\"")
	}
	return v, nil
}

// intParam reads a whole-number query parameter between 0 and max.
func intParam(c *gin.Context, name string, def, max int) (int, error) {
	s, ok := c.GetQuery(name)
	if !ok || s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max {
		msg := fmt.Sprintf("must be a whole number from 0 to %d", max)
		return 0, badRequest(name+" "+msg, fault.FieldError{Field: name, Code: "out_of_range", Message: msg})
	}
	return n, nil
}

// choice reads the query parameter name, one of values (any case; the
// first when absent): 400 naming it otherwise.
func choice(c *gin.Context, name string, values ...string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(c.Query(name)))
	if v == "" {
		return values[0], nil
	}
	if slices.Contains(values, v) {
		return v, nil
	}
	msg := "must be " + strings.Join(values, " or ")
	return "", badRequest(name+" "+msg+" (default "+values[0]+")", fault.FieldError{Field: name, Code: "unknown_value", Message: msg})
}

// pageParams reads a list's limit (1..100, default 10) and offset.
func pageParams(c *gin.Context) (limit, offset int, err error) {
	return pageParamsOf(c, 10, 100)
}

// pageParamsOf reads a list's limit (1..max, default def) and offset.
func pageParamsOf(c *gin.Context, def, max int) (limit, offset int, err error) {
	if limit, err = intParam(c, "limit", def, max); err != nil {
		return 0, 0, err
	}
	offset, err = intParam(c, "offset", 0, math.MaxInt32)
	return limit, offset, err
}
