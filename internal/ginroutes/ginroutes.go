// Package ginroutes keeps the table of the routes an adapter registers on
// a Gin route group, so that the adapter answers every request below its
// mount itself: Gin sends a request that no route of a group takes to the
// engine's NoRoute handler, which a mount cannot set. Fallbacks registers
// the routes that take what the adapter's routes do not; Allowed tells
// the methods a path has (for 405 and OPTIONS).
package ginroutes

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// Table holds, per method, the patterns an adapter registered, split in
// segments (":name" for a parameter). The zero Table is empty and ready.
type Table struct {
	byMethod map[string][][]string
}

// Add records that method has a route at path (below the mount).
func (t *Table) Add(method, path string) {
	if t.byMethod == nil {
		t.byMethod = map[string][][]string{}
	}
	t.byMethod[method] = append(t.byMethod[method], segments(path))
}

func segments(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}

// methods are the methods Gin keeps a route tree for (those of
// RouterGroup.Any); a request of any other method that no route takes goes
// to the engine's NoRoute handler.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace}

// Param and Rest name the segments the fallback routes take; an
// adapter's own routes must not use them.
const (
	Param = "unmatched"
	Rest  = "unmatched_rest"
)

// Fallbacks registers on g, for every method, routes to h that take every
// path below the mount that the method's routes do not take, without
// taking any path they do take. Gin tries a static segment before a
// parameter, but does not reliably go back up the tree to try another
// branch when a deeper segment fails; so the fallbacks complete each
// branch of the method's own tree: a route where a branch ends without
// one, and a parameter (and below it a catch-all) where a branch has no
// parameter. Below a static segment whose branch has a parameter beside
// it (POST /items/bulk beside /items/:barcode/lost) nothing is added, so
// that the parameter keeps taking the paths the static one does not (an
// item whose barcode is "bulk"). A fallback that would conflict with a
// route of the host below the same path is left out and reported.
func (t *Table) Fallbacks(g *gin.RouterGroup, h ...gin.HandlerFunc) []error {
	var errs []error
	add := func(method string, segs []string) {
		path := "/" + strings.Join(segs, "/")
		if len(segs) == 0 && g.BasePath() != "/" {
			add1(g, method, "", h, &errs) // the mount's own path, without a slash
		}
		add1(g, method, path, h, &errs)
	}
	for _, method := range methods {
		root := &trieNode{}
		for _, p := range t.byMethod[method] {
			root.insert(p)
		}
		var walk func(n *trieNode, prefix []string)
		walk = func(n *trieNode, prefix []string) {
			if !n.route {
				add(method, prefix)
			}
			if n.param == nil {
				add(method, append(slices.Clip(prefix), ":"+Param))
				add(method, append(slices.Clip(prefix), ":"+Param, "*"+Rest))
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
			*errs = append(*errs, fmt.Errorf("no fallback route %s %s: %v", method, path, p))
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

// Allowed lists the methods whose routes take path (below the mount), in
// a stable order, and OPTIONS when any. Empty
// segments (a trailing slash, two slashes) match no route, as in Gin.
func (t *Table) Allowed(path string) []string {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var out []string
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if slices.ContainsFunc(t.byMethod[method], func(p []string) bool { return matches(p, segs) }) {
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
