// Package ginapi mounts patronkit's HTTP API into a Gin application: the
// staff API and the patron's own routes, under a route group the host
// chooses, behind the host's own login.
//
// Every route is decided by Casbin (the kit's Access enforcer) on the
// action of the library the route table maps it to (Routes: users.read,
// loans.checkout...; casbinmodel/POLICIES.md lists them), logs one line
// through log/slog with a request id (also in the X-Request-ID header and
// every problem body), and answers errors as RFC 9457 problem details.
// The routes are described in the OpenAPI 3 document served at
// /openapi.json below the mount. Every GET route takes HEAD too, and every
// other request below the mount is answered by the API as well: 404 for a
// path it does not have, 405 with Allow for a method a path does not
// take, 204 with Allow for OPTIONS.
//
// A host implements one thing here: the principal resolver of Options,
// which maps its session to a Who.
package ginapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit"
)

// Who is the principal of a request: a staff user, or a patron acting on
// their own account, of one institution.
type Who struct {
	// Institution is the code of the institution (tenant) the principal
	// belongs to; nothing outside it is ever read or written.
	Institution string
	// ID is the principal's primary_id.
	ID string
	// Patron is true for a patron acting on their own account; false for a
	// staff user, whose roles the policies hold.
	Patron bool
}

// ErrNotSignedIn is what a PrincipalFunc wraps to say the request carries no
// valid sign-in.
var ErrNotSignedIn = errors.New("not signed in")

// PrincipalFunc maps a request to its principal. A request that is not
// signed in returns a zero Who, or an error wrapping ErrNotSignedIn (401);
// a *fault.Error of kind Unauthenticated answers 401 and one of kind Locked
// 429 with Retry-After. Any other error is a failure of the resolver (its
// session store is down, say) and answers 500.
type PrincipalFunc func(c *gin.Context) (Who, error)

// Options configures Mount.
type Options struct {
	// Principal resolves who makes each request. Required.
	Principal PrincipalFunc
	// Logger logs one line per request. Default: the kit's logger.
	Logger *slog.Logger
	// MaxUploadBytes caps an SIS file sent to start a run. Default: 1 GiB.
	MaxUploadBytes int64
	// MaxBodyBytes caps JSON request bodies. Default: 1 MiB. File uploads
	// are capped by the kit's attachment limit instead
	// (patronkit.Config.MaxAttachmentBytes).
	MaxBodyBytes int64
}

// api holds what the handlers share.
type api struct {
	kit     *patronkit.Kit
	opts    Options
	base    string
	openAPI []byte
	routes  *routes
}

// Mount registers every route of the API on r (a group such as
// router.Group("/library", hostLogin)), and routes that answer what no
// route of the API takes below r (404, 405, OPTIONS); a route the host
// registered below r stays the host's. It returns an error, never panics,
// when the options are incomplete.
func Mount(r *gin.RouterGroup, kit *patronkit.Kit, opts *Options) error {
	if r == nil || kit == nil || opts == nil || opts.Principal == nil {
		return errors.New("ginapi: Mount needs a route group, a kit and Options with a Principal")
	}
	o := *opts
	if o.Logger == nil {
		o.Logger = kit.Logger
	}
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = 1 << 30
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	a := &api{kit: kit, opts: o, base: r.BasePath()}
	doc, err := openAPIDocument(a.base)
	if err != nil {
		return err
	}
	a.openAPI = doc
	signedIn := r.Group("", a.requestID, a.logRequests, a.recoverProblems, a.authenticate)
	g := newRoutes(signedIn.Group(""), func(rt Route) []gin.HandlerFunc { return []gin.HandlerFunc{a.authorize(rt), a.checkPathText} })
	a.routes = g
	g.GET("/openapi.json", a.serveOpenAPI)
	a.userRoutes(g)
	a.roleRoutes(g)
	a.sisRoutes(g)
	a.codeTableRoutes(g)
	a.attachmentRoutes(g)
	a.circulationRoutes(g)
	a.loanRoutes(g)
	a.feeRoutes(g)
	a.requestRoutes(g)
	a.meRoutes(g)
	a.personalDataRoutes(g)
	a.legalHoldRoutes(g)
	a.auditRoutes(g)
	a.retentionRoutes(g)
	a.purgeRoutes(g)
	a.apiKeyRoutes(g)
	a.setRoutes(g)
	if len(g.missing) > 0 {
		return fmt.Errorf("ginapi: routes without an action in the route table: %s", strings.Join(g.missing, ", "))
	}
	// Every other request below the mount: 404, 405 or OPTIONS, after
	// authentication and without authorization (see unmatched).
	for _, err := range g.fallbacks(signedIn, a.unmatched) {
		o.Logger.Warn("ginapi: a route of the host below the mount leaves some requests to the engine's NoRoute", "error", err)
	}
	return nil
}

const (
	requestIDKey = "patronkit.request_id"
	whoKey       = "patronkit.who"
	unmatchedKey = "patronkit.unmatched"
	routeKey     = "patronkit.route"
	verdictKey   = "patronkit.verdict"
)

func (a *api) who(c *gin.Context) Who {
	w, _ := c.Get(whoKey)
	who, _ := w.(Who)
	return who
}

// ctx returns the request's context carrying the actor, and the way in
// with a staff principal's roles, for the services.
func (a *api) ctx(c *gin.Context) context.Context {
	return originContext(actorContext(c.Request.Context(), a.who(c)), c)
}

// path is the URL path of a resource below the mount, each part escaped.
func (a *api) path(parts ...string) string {
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(a.base, "/"))
	for _, p := range parts {
		b.WriteString("/")
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

func (a *api) serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", a.openAPI)
}
