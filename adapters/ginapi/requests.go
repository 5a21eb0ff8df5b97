package ginapi

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
)

// requestRoutes registers the staff routes on hold requests: a user's
// requests, placing and cancelling one, and an item's queue.
func (a *api) requestRoutes(g *routes) {
	g.GET("/users/:primary_id/requests", a.userRequests)
	g.POST("/users/:primary_id/requests", a.placeRequest)
	g.GET("/users/:primary_id/requests/:request_id", a.getRequest)
	g.DELETE("/users/:primary_id/requests/:request_id", a.cancelRequest)
	g.GET("/items/:barcode/requests", a.itemRequests)
}

// requestList is what the routes that list requests answer.
type requestList struct {
	Requests []circulation.Request `json:"requests"`
	Total    int                   `json:"total_record_count"`
}

func (a *api) listRequests(c *gin.Context, primaryID string) {
	status, err := choice(c, "status", "active", "all")
	if err != nil {
		fail(c, err)
		return
	}
	active := status == "active"
	rs, err := a.kit.Circulation.Requests(a.ctx(c), a.who(c).Institution, primaryID, active)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, requestList{Requests: rs, Total: len(rs)})
}

func (a *api) userRequests(c *gin.Context) { a.listRequests(c, c.Param("primary_id")) }

func (a *api) createRequest(c *gin.Context, primaryID string, location func(r *circulation.Request) string) {
	var in circulation.NewRequest
	if err := decodeJSON(c, a.opts.MaxBodyBytes, &in); err != nil {
		fail(c, err)
		return
	}
	if !a.who(c).Patron { // staff, where their roles hold (see cancelRequest); a patron places their own
		libs, err := a.kit.Circulation.NewRequestLibraries(a.ctx(c), a.who(c).Institution, in)
		if err != nil {
			fail(c, err)
			return
		}
		if libs != nil && !a.allowInAny(c, libs) {
			return
		}
	}
	r, err := a.kit.Circulation.PlaceRequest(a.ctx(c), a.who(c).Institution, primaryID, in)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", location(r))
	writeVersioned(c, http.StatusCreated, r.Version, r)
}

func (a *api) placeRequest(c *gin.Context) {
	a.createRequest(c, c.Param("primary_id"), func(r *circulation.Request) string {
		return a.path("users", r.PrimaryID, "requests", r.ID)
	})
}

func (a *api) getRequest(c *gin.Context) {
	r, err := a.kit.Circulation.Request(a.ctx(c), a.who(c).Institution, c.Param("primary_id"), c.Param("request_id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, r.Version, r)
}

// cancel cancels a request of primaryID for the reason in ?reason= (def
// when none is given and def is not empty).
func (a *api) cancel(c *gin.Context, primaryID, def string) {
	reason := strings.TrimSpace(c.Query("reason"))
	if reason == "" {
		reason = def
	}
	r, err := a.kit.Circulation.CancelRequest(a.ctx(c), a.who(c).Institution, primaryID, c.Param("request_id"), reason)
	if err != nil {
		fail(c, err)
		return
	}
	writeVersioned(c, http.StatusOK, r.Version, r)
}

// cancelRequest cancels a request of a user for staff whose roles hold in
// a library the request concerns (circulation.RequestLibraries: its
// pickup library or the library of its item), as loans are lent and
// renewed only by staff of the item's library.
func (a *api) cancelRequest(c *gin.Context) {
	ctx, inst := a.ctx(c), a.who(c).Institution
	r, err := a.kit.Circulation.Request(ctx, inst, c.Param("primary_id"), c.Param("request_id"))
	if err != nil {
		fail(c, err)
		return
	}
	libs, err := a.kit.Circulation.RequestLibraries(ctx, inst, r)
	if err != nil {
		fail(c, err)
		return
	}
	if !a.allowInAny(c, libs) {
		return
	}
	a.cancel(c, c.Param("primary_id"), "")
}

func (a *api) itemRequests(c *gin.Context) {
	rs, err := a.kit.Circulation.ItemRequests(a.ctx(c), a.who(c).Institution, c.Param("barcode"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, requestList{Requests: rs, Total: len(rs)})
}
