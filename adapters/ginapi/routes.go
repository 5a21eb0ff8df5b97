package ginapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/internal/ginroutes"
)

// routes registers the API's routes on the mount's route group and keeps
// their table, so that every request below the mount gets an answer of the
// API, as problem details with a request id: a route that takes GET takes
// HEAD too (net/http sends the headers without the body); a path that no
// route has answers 404; a path that routes have, but not for the
// request's method, answers 405 with an Allow header; OPTIONS answers 204
// with Allow. Gin sends a request that no route of a group takes to the
// engine's NoRoute handler, which a mount cannot set: the table is what
// lets the mount answer those requests itself (see fallbacks).
//
// Each route is registered behind its access check (see routeTable): the
// handlers of guard, given the route's entry of the table. A route the
// table lacks is not registered; missing names them, and Mount fails.
type routes struct {
	g     *gin.RouterGroup
	guard func(Route) []gin.HandlerFunc
	// table holds, per method, the patterns registered.
	table ginroutes.Table
	// missing are the routes registered without an entry in routeTable.
	missing []string
}

func newRoutes(g *gin.RouterGroup, guard func(Route) []gin.HandlerFunc) *routes {
	return &routes{g: g, guard: guard}
}

// GET registers a GET route, and HEAD on the same handlers.
func (r *routes) GET(path string, h ...gin.HandlerFunc) {
	r.handle(http.MethodGet, path, h)
	r.handle(http.MethodHead, path, h)
}

// POST registers a POST route.
func (r *routes) POST(path string, h ...gin.HandlerFunc) { r.handle(http.MethodPost, path, h) }

// PUT registers a PUT route.
func (r *routes) PUT(path string, h ...gin.HandlerFunc) { r.handle(http.MethodPut, path, h) }

// PATCH registers a PATCH route.
func (r *routes) PATCH(path string, h ...gin.HandlerFunc) { r.handle(http.MethodPatch, path, h) }

// DELETE registers a DELETE route.
func (r *routes) DELETE(path string, h ...gin.HandlerFunc) { r.handle(http.MethodDelete, path, h) }

func (r *routes) handle(method, path string, h []gin.HandlerFunc) {
	rt, ok := routeOf(method, path)
	if !ok {
		if method != http.MethodHead {
			r.missing = append(r.missing, method+" "+path)
		}
		return
	}
	r.g.Handle(method, path, slices.Concat(r.guard(rt), h)...)
	r.table.Add(method, path)
}

// fallbacks registers on g, for every method, routes to h that take every
// path below the mount that the method's routes do not take, without
// taking any path they do take (see ginroutes.Table.Fallbacks). A
// fallback that would conflict with a route of the host below the same
// path is left out and reported.
func (r *routes) fallbacks(g *gin.RouterGroup, h ...gin.HandlerFunc) []error {
	return r.table.Fallbacks(g, h...)
}

// allowed lists the methods whose routes take path (below the mount),
// in a stable order, with HEAD where GET and OPTIONS when any.
func (r *routes) allowed(path string) []string { return r.table.Allowed(path) }

// unmatched answers a request that no route of the API takes: 204 with
// Allow for OPTIONS on a path the API has, 405 with Allow for another
// method there, 404 elsewhere. It comes after authentication (a request
// that is not signed in is 401, as anywhere below the mount) and before no
// authorization: what the API's paths and methods are is no secret (the
// OpenAPI document says it), and a role cannot make a missing route exist.
func (a *api) unmatched(c *gin.Context) {
	c.Set(unmatchedKey, true)
	path := a.routePath(c)
	allow := a.routes.allowed(path)
	switch {
	case len(allow) > 0 && c.Request.Method == http.MethodOptions:
		c.Header("Allow", strings.Join(allow, ", "))
		c.AbortWithStatus(http.StatusNoContent)
	case len(allow) == 0 || slices.Contains(allow, c.Request.Method):
		// The second: a route of the method has the path's shape, yet
		// Gin did not take it (a host engine that routes on the escaped
		// path, say): nothing here to offer but a 404.
		problem(c, http.StatusNotFound, "not-found", fmt.Sprintf("the API has no resource at %s", c.Request.URL.Path))
	default:
		c.Header("Allow", strings.Join(allow, ", "))
		problem(c, http.StatusMethodNotAllowed, "method-not-allowed",
			fmt.Sprintf("%s is not a method of %s; its methods are %s", c.Request.Method, c.Request.URL.Path, strings.Join(allow, ", ")))
	}
}
