package ginapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
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
	// table holds, per method, the patterns registered, split in segments
	// (":name" for a parameter).
	table map[string][][]string
	// missing are the routes registered without an entry in routeTable.
	missing []string
}

func newRoutes(g *gin.RouterGroup, guard func(Route) []gin.HandlerFunc) *routes {
	return &routes{g: g, guard: guard, table: map[string][][]string{}}
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
	r.table[method] = append(r.table[method], segments(path))
}

func segments(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}

// fallbackMethods are the methods Gin keeps a route tree for (those of
// RouterGroup.Any); a request of any other method that no route takes goes
// to the engine's NoRoute handler.
var fallbackMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace}

// fallbackParam and fallbackRest name the segments the fallback routes
// take; they appear in no route of the API.
const (
	fallbackParam = "unmatched"
	fallbackRest  = "unmatched_rest"
)

// fallbacks registers on g, for every method, routes to h that take every path
// below the mount that the method's routes do not take, without taking any
// path they do take. Gin tries a static segment before a parameter, but
// does not reliably go back up the tree to try another branch when a
// deeper segment fails; so the fallbacks complete each branch of the
// method's own tree: a route where a branch ends without one, and a
// parameter (and below it a catch-all) where a branch has no parameter.
// Below a static segment whose branch has a parameter beside it (POST
// /items/bulk beside /items/:barcode/lost) nothing is added, so that the
// parameter keeps taking the paths the static one does not (an item whose
// barcode is "bulk"). A fallback that would conflict with a route of the
// host below the same path is left out.
func (r *routes) fallbacks(g *gin.RouterGroup, h ...gin.HandlerFunc) []error {
	var errs []error
	add := func(method string, segs []string) {
		path := "/" + strings.Join(segs, "/")
		if len(segs) == 0 && g.BasePath() != "/" {
			add1(g, method, "", h, &errs) // the mount's own path, without a slash
		}
		add1(g, method, path, h, &errs)
	}
	for _, method := range fallbackMethods {
		root := &trieNode{}
		for _, p := range r.table[method] {
			root.insert(p)
		}
		var walk func(n *trieNode, prefix []string)
		walk = func(n *trieNode, prefix []string) {
			if !n.route {
				add(method, prefix)
			}
			if n.param == nil {
				add(method, append(slices.Clip(prefix), ":"+fallbackParam))
				add(method, append(slices.Clip(prefix), ":"+fallbackParam, "*"+fallbackRest))
			} else {
				walk(n.param, append(slices.Clip(prefix), n.paramName))
			}
			for _, seg := range n.staticOrder {
				if n.param == nil {
					walk(n.static[seg], append(slices.Clip(prefix), seg))
				}
			}
		}
		walk(root, nil)
	}
	return errs
}

// add1 registers one fallback route; a conflict with a route of the host
// is reported, not a panic.
func add1(g *gin.RouterGroup, method, path string, h []gin.HandlerFunc, errs *[]error) {
	defer func() {
		if p := recover(); p != nil {
			*errs = append(*errs, fmt.Errorf("ginapi: no fallback route %s %s: %v", method, path, p))
		}
	}()
	g.Handle(method, path, h...)
}

// trieNode is one segment of a method's route patterns.
type trieNode struct {
	route       bool // a pattern ends here
	static      map[string]*trieNode
	staticOrder []string
	param       *trieNode
	paramName   string
}

func (n *trieNode) insert(segs []string) {
	for _, s := range segs {
		if strings.HasPrefix(s, ":") {
			if n.param == nil {
				n.param, n.paramName = &trieNode{}, s
			}
			n = n.param
			continue
		}
		if n.static == nil {
			n.static = map[string]*trieNode{}
		}
		if n.static[s] == nil {
			n.static[s] = &trieNode{}
			n.staticOrder = append(n.staticOrder, s)
		}
		n = n.static[s]
	}
	n.route = true
}

// allowed lists the methods whose routes take path (below the mount),
// in a stable order, with HEAD where GET and OPTIONS when any. Empty
// segments (a trailing slash, two slashes) match no route, as in Gin.
func (r *routes) allowed(path string) []string {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var out []string
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if slices.ContainsFunc(r.table[method], func(p []string) bool { return matches(p, segs) }) {
			out = append(out, method)
		}
	}
	if len(out) > 0 {
		out = append(out, http.MethodOptions)
	}
	return out
}

func matches(pattern, segs []string) bool {
	if len(pattern) != len(segs) {
		return false
	}
	for i, p := range pattern {
		if strings.HasPrefix(p, ":") {
			if segs[i] == "" {
				return false
			}
		} else if p != segs[i] {
			return false
		}
	}
	return true
}

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
