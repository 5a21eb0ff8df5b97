// Package librarycard serves a patron's "My Library Card" as web pages a
// library or a vendor themes as its own: sign-in, an overview, loans (renew
// all or the ones chosen), requests (cancel), loan history, fines and fees,
// blocks and messages, personal settings, and an item page with the loan
// period the patron would get, their place in the queue and a request form.
//
// The pages are rendered on the server from html/template files embedded in
// the binary; none needs JavaScript. Mount registers them on a Gin route
// group with one call. Every page calls the framework-free account rules
// (package account) on the signed-in patron's own account only, under the
// same Casbin actions as the HTTP API's /me routes (account.read,
// account.loans.renew, account.requests.place, account.requests.cancel,
// account.settings.write, account.history.delete) and with the same audit
// trail.
//
// A patron signs in with their primary_id (or their card's barcode, where
// the kit's Config.SignInIdentifiers names BARCODE) and PIN, guarded by the
// patron service's lockout as the API's sign-in is; or the host signs them in with its own login (SSO)
// through Options.Principal, the same kind of resolver the API takes. The
// session is a cookie, encrypted and authenticated (gorilla/securecookie),
// HttpOnly, SameSite=Lax, Secure on TLS; every form carries a CSRF token,
// and cross-origin form posts are refused.
//
// A host implements nothing here; it may give a Theme (name, logo, colours,
// fonts, footer links, the texts of every label per language, the pages
// shown) and override templates one by one through an fs.FS.
package librarycard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/securecookie"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/internal/ginroutes"
)

// Options configures Mount.
type Options struct {
	// Institution is the code of the institution whose patrons sign in on
	// the sign-in page with their primary_id and PIN. Empty: no sign-in
	// page; Principal must then sign patrons in.
	Institution string
	// Principal, when set, resolves the host's own sign-in (SSO) for each
	// request, as the API's resolver does: a Who with an institution and
	// an id is the patron (or staff user) the pages are for. A zero Who
	// or ErrNotSignedIn falls back to the PIN sign-in when Institution is
	// set. Default: none.
	Principal ginapi.PrincipalFunc
	// SignOutURL is where the sign-out button sends a patron the host
	// signed in through Principal (its own sign-out). Default: none; the
	// button is not shown for such a patron.
	SignOutURL string
	// Theme is the look and the texts of the pages. Default: DefaultTheme().
	Theme *Theme
	// SessionKey authenticates and encrypts the session cookie: at least
	// 32 random bytes, the same on every instance that serves the pages.
	// Default: a random key made once and kept in the kit's database
	// (Kit.SharedKey "librarycard.session"), so that every instance on
	// the database, and each after a restart, takes the others' sessions
	// with no setting; whoever can read the database can read it, and a
	// host that keeps its secrets elsewhere gives its own here.
	SessionKey []byte
	// SessionMaxAge is how long a session lasts after sign-in. Default:
	// 2 hours.
	SessionMaxAge time.Duration
	// CookieName names the session cookie. Default: "patronkit_card".
	CookieName string
	// SecureCookie marks the cookie Secure even when the request did not
	// come over TLS (TLS ends at a proxy in front). Default: false; the
	// cookie is Secure when the request came over TLS.
	SecureCookie bool
	// PageSize is how many loans a page of the loans and the history
	// shows. Default: 100.
	PageSize int
	// Location is the time zone of the dates shown that belong to no
	// library (a fee's, a notice's). A loan's dates are shown in the time
	// zone of the library that lent it, a request's hold-shelf expiry in
	// its pickup library's, an item's due date in its library's
	// (circulation.Library.TimeZone); Location stands in for a library
	// the pages do not know. The pages read the libraries again after a
	// minute. Default: UTC.
	Location *time.Location
	// Logger logs one line per request that failed on the server.
	// Default: the kit's logger.
	Logger *slog.Logger
}

// card holds what the handlers share.
type card struct {
	kit    *patronkit.Kit
	opts   Options
	base   string
	theme  *theme
	pages  *pageSet
	cookie *securecookie.SecureCookie
	origin *http.CrossOriginProtection
	css    []byte
	// table holds the pages' routes, for the answers to the others.
	table *ginroutes.Table
	// libs keeps the libraries' names and time zones.
	libs libraryCache
}

// Mount registers the pages on r (a group such as router.Group("/card")):
// the overview at r's own path, the other pages below it. It returns an
// error, never panics, when the options or the theme are not usable. It
// reads (or, the first time, stores) the session key kept in the
// database unless Options.SessionKey gives one: the kit must be migrated.
func Mount(r *gin.RouterGroup, kit *patronkit.Kit, opts *Options) error {
	if r == nil || kit == nil || opts == nil {
		return errors.New("librarycard: Mount needs a route group, a kit and Options")
	}
	o := *opts
	if o.Institution == "" && o.Principal == nil {
		return errors.New("librarycard: Mount needs Options.Institution (PIN sign-in) or Options.Principal (the host's sign-in)")
	}
	if o.Theme == nil {
		o.Theme = DefaultTheme()
	}
	if len(o.SessionKey) == 0 {
		key, err := kit.SharedKey(context.Background(), sessionKeyName, 32)
		if err != nil {
			return fmt.Errorf("librarycard: the session key kept in the database (Migrate the kit first, or give Options.SessionKey): %w", err)
		}
		o.SessionKey = key
	}
	if len(o.SessionKey) < 32 {
		return errors.New("librarycard: Options.SessionKey must hold at least 32 bytes")
	}
	if o.SessionMaxAge <= 0 {
		o.SessionMaxAge = 2 * time.Hour
	}
	if o.CookieName == "" {
		o.CookieName = "patronkit_card"
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Logger == nil {
		o.Logger = kit.Logger
	}
	th, err := o.Theme.compile()
	if err != nil {
		return err
	}
	ps, err := loadPages(th)
	if err != nil {
		return err
	}
	sc := securecookie.New(derive(o.SessionKey, "hash"), derive(o.SessionKey, "block"))
	sc.MaxAge(int(o.SessionMaxAge / time.Second))
	sc.SetSerializer(securecookie.JSONEncoder{})
	c := &card{kit: kit, opts: o, base: strings.TrimSuffix(r.BasePath(), "/"), theme: th, pages: ps, cookie: sc,
		origin: http.NewCrossOriginProtection(), css: th.stylesheet()}
	c.routes(r.Group("", c.headers, c.recoverPages))
	return nil
}

// sessionKeyName names the session key of the pages kept in the kit's
// database (Kit.SharedKey).
const sessionKeyName = "librarycard.session"

// derive makes a key of 32 bytes for one use from the session key.
func derive(key []byte, use string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("patronkit librarycard " + use))
	return m.Sum(nil)
}

// routes registers every page. Each page names the action of the
// library the API's /me route for the same deed is decided on. Every
// other request below the mount gets the error page too: 404 for a path
// no page has, 405 (with Allow) for a method a page does not take.
func (c *card) routes(grp *gin.RouterGroup) {
	g := &router{g: grp}
	g.GET("/assets/card.css", c.stylesheet)
	g.GET("/signin", c.signInPage)
	g.POST("/signin", c.checkForm, c.signIn)
	g.POST("/signout", c.checkForm, c.signOut)

	g.GET("", c.page(PageOverview, "account.read", c.overview))
	g.GET("/", c.page(PageOverview, "account.read", c.overview))
	g.GET("/loans", c.page(PageLoans, "account.read", c.loans))
	g.POST("/loans/renew", c.checkForm, c.page(PageLoans, "account.loans.renew", c.renew))
	g.GET("/requests", c.page(PageRequests, "account.read", c.requests))
	g.POST("/requests/:request_id/cancel", c.checkForm, c.page(PageRequests, "account.requests.cancel", c.cancelRequest))
	g.GET("/history", c.page(PageHistory, "account.read", c.history))
	g.POST("/history/delete", c.checkForm, c.page(PageHistory, "account.history.delete", c.deleteHistory))
	g.GET("/fees", c.page(PageFees, "account.read", c.fees))
	g.GET("/messages", c.page(PageMessages, "account.read", c.messages))
	g.GET("/settings", c.page(PageSettings, "account.read", c.settings))
	g.POST("/settings", c.checkForm, c.page(PageSettings, "account.settings.write", c.changeSettings))
	g.GET("/items", c.page(PageItems, "account.read", c.findItem))
	g.GET("/items/:barcode", c.page(PageItems, "account.read", c.item))
	g.POST("/items/:barcode/request", c.checkForm, c.page(PageItems, "account.requests.place", c.placeRequest))
	// A page of a parameter, with the parameter left empty
	// (/items/): Gin would redirect it to the page above.
	g.g.GET("/items/", c.unmatched)
	g.g.HEAD("/items/", c.unmatched)
	c.table = &g.table
	for _, err := range g.table.Fallbacks(grp, c.unmatched) {
		c.opts.Logger.Warn("librarycard: a route of the host below the mount leaves some requests to the engine's NoRoute", "error", err)
	}
}

// router registers the pages' routes and keeps their table: a GET route
// takes HEAD too.
type router struct {
	g     *gin.RouterGroup
	table ginroutes.Table
}

func (r *router) GET(path string, h ...gin.HandlerFunc) {
	r.g.GET(path, h...)
	r.g.HEAD(path, h...)
	r.table.Add(http.MethodGet, path)
	r.table.Add(http.MethodHead, path)
}

func (r *router) POST(path string, h ...gin.HandlerFunc) {
	r.g.POST(path, h...)
	r.table.Add(http.MethodPost, path)
}

// unmatched answers a request below the mount that no page takes with
// the error page: 405 with Allow on a path a page has for other methods
// (204 with Allow for OPTIONS), 404 elsewhere.
func (c *card) unmatched(g *gin.Context) {
	allow := c.table.Allowed(strings.TrimPrefix(g.Request.URL.Path, c.base))
	switch {
	case len(allow) > 0 && g.Request.Method == http.MethodOptions:
		g.Header("Allow", strings.Join(allow, ", "))
		g.AbortWithStatus(http.StatusNoContent)
	case len(allow) == 0 || slices.Contains(allow, g.Request.Method):
		c.render(g, http.StatusNotFound, "error", &view{Page: "error", Data: errorData{Title: "error.notfound.title", Message: "error.notfound"}})
	default:
		g.Header("Allow", strings.Join(allow, ", "))
		c.render(g, http.StatusMethodNotAllowed, "error", &view{Page: "error", Data: errorData{Title: "error.notallowed.title", Message: "error.notallowed"}})
	}
}

// path is the URL of a page below the mount.
func (c *card) path(p string) string {
	if p == "" {
		return c.base + "/"
	}
	return c.base + p
}

// headers sets what every answer of the pages carries: no caching of a
// patron's pages, a content security policy that lets in nothing but the
// pages' own stylesheet and images, and no framing.
func (c *card) headers(g *gin.Context) {
	h := g.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data: https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	g.Next()
}

// recoverPages answers a panic with the error page; the log has it.
func (c *card) recoverPages(g *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			c.opts.Logger.Error("librarycard: page panicked", "path", g.Request.URL.Path, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.failPage(g, http.StatusInternalServerError, "error.server")
		}
	}()
	g.Next()
}

func (c *card) stylesheet(g *gin.Context) {
	g.Header("Cache-Control", "public, max-age=3600")
	g.Data(http.StatusOK, "text/css; charset=utf-8", c.css)
}
