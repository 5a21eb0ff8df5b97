// Package almaapi mounts a drop-in for Ex Libris Alma's users API
// (/almaws/v1/users and what hangs below it) on a Gin route group, so
// that the scripts, identity-management connectors and discovery layers a
// campus wrote against Alma keep working when pointed at patronkit with
// nothing changed but the base URL and the key.
//
// Requests carry an API key (Authorization: apikey KEY, or ?apikey=KEY),
// made by staff over the native API (POST /api-keys of adapters/ginapi,
// kept by the kit's APIKeys): the key acts as its STAFF user, whose roles
// decide every request on the same actions as the native API (users.read,
// users.write, loans.checkout...; casbinmodel/POLICIES.md), and a
// read-only key may only read. Every call made with a key reaches the
// same services as the native API and is on the audit trail with the way
// in naming the Alma API, the route and the key.
//
// Bodies are Alma's XML (rest_user.xsd, rest_users.xsd) or Alma's JSON,
// chosen by Accept or format=json|xml (XML when neither says, as Alma);
// request bodies by Content-Type. Errors are Alma's web_service_result
// (errorsExist, errorList, errorCode, errorMessage, trackingId) with
// Alma's statuses: 400 for a request Alma refuses (an unknown user is
// 401861), 401 for a missing, revoked or expired key or one not allowed
// the call, 500 for the server's own failure. The routes of Alma's users
// API that patronkit has no data for (deposits, purchase requests,
// resource sharing, Leganto notifications...) answer Alma's error for an
// unsupported operation (400, 401873). HEAD answers as GET does (status
// and headers, Content-Length the GET's body's), without the body. A
// method a path does not take answers 405 with Allow, and a path the API
// does not have 404, both in Alma's body (a path deeper than one of the
// API's is left to the host's engine).
package almaapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/apikeys"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/patron"
)

// Options configures Mount. The zero value is valid.
type Options struct {
	// Logger logs one line per request. Default: the kit's logger.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies. Default: 1 MiB.
	MaxBodyBytes int64
}

// api holds what the handlers share.
type api struct {
	kit  *patronkit.Kit
	opts Options
	base string
}

// Mount registers Alma's users API on r (a group such as
// router.Group("/almaws/v1")): the routes patronkit serves, and Alma's
// error for those of Alma's API it does not. It returns an error, never
// panics, when the kit is missing.
func Mount(r *gin.RouterGroup, kit *patronkit.Kit, opts *Options) error {
	if r == nil || kit == nil {
		return errors.New("almaapi: Mount needs a route group and a kit")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = kit.Logger
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	a := &api{kit: kit, opts: o, base: strings.TrimSuffix(r.BasePath(), "/")}
	g := r.Group("", a.begin, a.authenticate)
	served := map[[2]string]bool{}
	var paths []string
	// HEAD answers as GET does, without the body (Gin routes it apart).
	handle := func(method, path string, h ...gin.HandlerFunc) {
		g.Handle(method, path, h...)
		served[[2]string{method, path}] = true
		if method == http.MethodGet {
			g.Handle(http.MethodHead, path, h...)
			served[[2]string{http.MethodHead, path}] = true
		}
	}
	for _, rt := range a.routes() {
		handle(rt.Method, rt.Path, a.authorize(rt), rt.handle)
		paths = append(paths, rt.Path)
	}
	for _, r := range specRoutes {
		if !served[r] {
			handle(r[0], r[1], a.unsupported)
		}
		paths = append(paths, r[1])
	}
	// A method a path does not take: 405 with Allow, in Alma's body.
	slices.Sort(paths)
	for _, p := range slices.Compact(paths) {
		var allow []string
		for _, m := range methods {
			if served[[2]string{m, p}] {
				allow = append(allow, m)
			}
		}
		for _, m := range methods {
			if !served[[2]string{m, p}] {
				g.Handle(m, p, a.notAllowed(allow))
			}
		}
	}
	// Any other path below the mount: Alma's error, not the engine's
	// page; but not a path that starts as one of the API's and goes on
	// (Gin does not go back up its tree to try another branch), which
	// the engine answers. A route of the host there stays the host's.
	for _, p := range []string{"", "/:resource", "/:resource/*rest"} {
		for _, m := range methods {
			func() {
				defer func() {
					if r := recover(); r != nil {
						o.Logger.Warn("almaapi: a route of the host below the mount leaves some requests to the engine", "path", p, "error", r)
					}
				}()
				g.Handle(m, p, a.noResource)
			}()
		}
	}
	return nil
}

// methods are those the API answers for.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}

// notAllowed answers a method that a path of the API does not take.
func (a *api) notAllowed(allow []string) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Allow", strings.Join(allow, ", "))
		a.almaError(c, http.StatusMethodNotAllowed, codeNotSupported, "The operation is not supported: "+c.Request.Method+" is not a method of "+c.FullPath()+"; its methods are "+strings.Join(allow, ", ")+".")
	}
}

// noResource answers a path that is not one of Alma's users API.
func (a *api) noResource(c *gin.Context) {
	a.almaError(c, http.StatusNotFound, codeNotSupported, "The operation is not supported: this API has no resource at "+c.Request.URL.Path+".")
}

const (
	requestIDKey = "almaapi.request_id"
	keyKey       = "almaapi.key"
	verdictKey   = "almaapi.verdict"
)

// begin gives the request its id (Alma's trackingId of an error), logs
// it when it ends, and turns a panic into Alma's general error.
func (a *api) begin(c *gin.Context) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	c.Set(requestIDKey, id)
	c.Header("X-Request-ID", id)
	if c.Request.Method == http.MethodHead {
		c.Writer = &headWriter{ResponseWriter: c.Writer}
	}
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			a.opts.Logger.Error("almaapi: handler panicked", "request_id", id, "panic", r)
			a.almaError(c, http.StatusInternalServerError, codeGeneral, "General Error: An error has occurred while processing the request.")
		}
		attrs := []any{"request_id", id, "method", c.Request.Method, "route", c.FullPath(), "status", c.Writer.Status(),
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000}
		if k := a.key(c); k != nil {
			attrs = append(attrs, "institution", k.Institution, "principal", k.StaffID, "api_key", k.ID)
		}
		if len(c.Errors) > 0 {
			attrs = append(attrs, "error", c.Errors.Last().Error())
		}
		level := slog.LevelInfo
		if c.Writer.Status() >= 500 {
			level = slog.LevelError
		}
		a.opts.Logger.Log(c.Request.Context(), level, "patronkit alma api request", attrs...)
	}()
	c.Next()
}

// unauthorizedMessage is Alma's message for a key it does not take.
const unauthorizedMessage = "API-key not defined or not configured to allow this API."

// authenticate finds the request's key: Authorization: apikey KEY, or
// ?apikey=KEY. None, an unknown one, a revoked or expired one answer
// Alma's 401.
func (a *api) authenticate(c *gin.Context) {
	secret := c.Query("apikey")
	if h := strings.TrimSpace(c.GetHeader("Authorization")); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "apikey") {
			secret = strings.TrimSpace(rest)
		}
	}
	if secret == "" {
		a.almaError(c, http.StatusUnauthorized, codeUnauthorized, unauthorizedMessage)
		return
	}
	k, err := a.kit.APIKeys.Authenticate(c.Request.Context(), secret)
	switch {
	case errors.Is(err, apikeys.ErrUnknown), errors.Is(err, apikeys.ErrRevoked), errors.Is(err, apikeys.ErrExpired):
		_ = c.Error(err)
		a.almaError(c, http.StatusUnauthorized, codeUnauthorized, unauthorizedMessage)
		return
	case err != nil:
		a.fail(c, err)
		return
	}
	c.Set(keyKey, k)
	c.Next()
}

// key is the request's key (nil before authenticate).
func (a *api) key(c *gin.Context) *apikeys.Key {
	k, _ := c.Get(keyKey)
	key, _ := k.(*apikeys.Key)
	return key
}

// authorize refuses a read-only key anything but GET (and the few
// operations Alma lets it call, readOnlyAllowed), and asks the
// enforcer whether the key's staff user may do the route's action
// (a role held in any library counts; the routes that concern one
// library ask again there). Refusals are Alma's 401.
func (a *api) authorize(rt route) gin.HandlerFunc {
	return func(c *gin.Context) {
		k := a.key(c)
		if k.ReadOnly && rt.Method != http.MethodGet && !readOnlyAllowed[[2]string{rt.Method, rt.Path}] {
			a.almaError(c, http.StatusUnauthorized, codeUnauthorized, unauthorizedMessage+" The key is read-only.")
			return
		}
		c.Set(routeKey, rt)
		ok, err := a.decide(c, rt.Action, "")
		if err != nil {
			a.fail(c, err)
			return
		}
		if !ok {
			a.almaError(c, http.StatusUnauthorized, codeUnauthorized, unauthorizedMessage+" The roles of the key's user do not allow "+rt.Action+".")
			return
		}
		c.Next()
	}
}

const routeKey = "almaapi.route"

// decide asks the enforcer whether the key's user may do action in
// library ("" for any), on their own record when the route names them.
func (a *api) decide(c *gin.Context, action, library string) (bool, error) {
	k := a.key(c)
	rt, _ := c.Get(routeKey)
	r, _ := rt.(route)
	own := r.Named && strings.EqualFold(c.Param("user_id"), k.StaffID)
	v, err := a.kit.Access.Decide(c.Request.Context(), casbinmodel.Decision{
		Institution: k.Institution, Subject: k.StaffID, Library: library, Action: action, Own: own,
	})
	if err == nil && v.Allowed {
		c.Set(verdictKey, v)
	}
	return v.Allowed, err
}

// allowIn asks again for the route's action in library: it answers
// Alma's 401 and returns false when the roles do not hold there.
func (a *api) allowIn(c *gin.Context, library string) bool {
	rt, _ := c.Get(routeKey)
	action := rt.(route).Action
	ok, err := a.decide(c, action, library)
	if err != nil {
		a.fail(c, err)
		return false
	}
	if !ok {
		a.almaError(c, http.StatusUnauthorized, codeUnauthorized, unauthorizedMessage+" The roles of the key's user do not allow "+action+" in library "+library+".")
	}
	return ok
}

// inst is the institution of the request's key.
func (a *api) inst(c *gin.Context) string { return a.key(c).Institution }

// ctx is the request's context for the services: the key's staff user
// as the actor, and the way in naming the Alma API, the route and the key
// (with the roles of the decision) for the audit trail.
func (a *api) ctx(c *gin.Context) context.Context {
	k := a.key(c)
	ctx := patron.WithActor(c.Request.Context(), patron.Actor{Institution: k.Institution, ID: k.StaffID})
	name := []rune(k.Name)
	if len(name) > 48 {
		name = append(name[:47], '…')
	}
	o := patron.Origin{Via: "alma-api " + c.Request.Method + " " + c.FullPath() + " key " + k.ID + " (" + string(name) + ")", RequestID: c.GetString(requestIDKey)}
	if v, ok := c.Get(verdictKey); ok {
		v := v.(casbinmodel.Verdict)
		o.Roles, o.Library = v.Roles, v.Library
	}
	return patron.WithOrigin(ctx, o)
}

// link is the URL of a resource of the API, for Alma's link fields.
func (a *api) link(c *gin.Context, parts ...string) string {
	scheme := "http"
	if c.Request.TLS != nil || strings.EqualFold(c.GetHeader("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	var b strings.Builder
	b.WriteString(scheme + "://" + c.Request.Host + a.base)
	for _, p := range parts {
		b.WriteString("/")
		b.WriteString(pathEscape(p))
	}
	return b.String()
}

// headWriter answers a HEAD request: the status and headers its GET
// would have, the body's length in Content-Length, and no body.
type headWriter struct {
	gin.ResponseWriter
}

func (w *headWriter) Write(b []byte) (int, error) {
	if !w.Written() {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	}
	w.WriteHeaderNow()
	return len(b), nil
}

func (w *headWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }
