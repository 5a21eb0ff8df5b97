package librarycard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// session is what the cookie carries: who signed in with their PIN (none
// before sign-in), the CSRF token of the forms, and the language chosen.
type session struct {
	Institution string `json:"i,omitempty"`
	ID          string `json:"u,omitempty"`
	Patron      bool   `json:"p,omitempty"`
	CSRF        string `json:"c"`
	Lang        string `json:"l,omitempty"`
}

const sessionKey = "librarycard.session"

// maxFormBytes caps a form's body: the largest, the settings, is far
// smaller.
const maxFormBytes = 64 << 10

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// session answers the request's session: the one its cookie carries, or a
// new one without a patron (whose cookie is set with the page).
func (c *card) session(g *gin.Context) *session {
	if s, ok := g.Get(sessionKey); ok {
		return s.(*session)
	}
	s := &session{}
	ck, err := g.Request.Cookie(c.opts.CookieName)
	if err != nil || c.cookie.Decode(c.opts.CookieName, ck.Value, s) != nil || s.CSRF == "" {
		s = &session{CSRF: newToken()}
		c.save(g, s)
	}
	g.Set(sessionKey, s)
	return s
}

// save sets the session's cookie: HttpOnly, SameSite=Lax, Secure on TLS
// (or when the options say TLS ends in front), for the mount's path.
func (c *card) save(g *gin.Context, s *session) {
	v, err := c.cookie.Encode(c.opts.CookieName, s)
	if err != nil {
		c.opts.Logger.Error("librarycard: encoding the session", "error", err)
		return
	}
	g.Set(sessionKey, s)
	http.SetCookie(g.Writer, &http.Cookie{Name: c.opts.CookieName, Value: v, Path: c.path(""), HttpOnly: true,
		Secure: c.opts.SecureCookie || g.Request.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// checkForm guards every form post: the body is capped and parsed, a
// cross-origin post is refused, and the CSRF token sent must be the
// session's (403 otherwise).
func (c *card) checkForm(g *gin.Context) {
	if err := c.origin.Check(g.Request); err != nil {
		c.failPage(g, http.StatusForbidden, "error.csrf")
		return
	}
	g.Request.Body = http.MaxBytesReader(g.Writer, g.Request.Body, maxFormBytes)
	if err := g.Request.ParseForm(); err != nil {
		c.failPage(g, http.StatusBadRequest, "error.form")
		return
	}
	s := c.session(g)
	if subtle.ConstantTimeCompare([]byte(g.Request.PostForm.Get("csrf")), []byte(s.CSRF)) != 1 {
		c.failPage(g, http.StatusForbidden, "error.csrf")
		return
	}
	g.Next()
}

// request is what a page handler knows of the request: who the patron
// is, their session, and the context the services are called with (the
// actor and the way in, for the audit trail).
type request struct {
	g    *gin.Context
	who  ginapi.Who
	sess *session
	// host says the host's own sign-in named the patron.
	host bool
	ctx  context.Context
	lang string
	// libs are the institution's libraries, once a page read them.
	libs *libraries
}

// who resolves the patron of the request: the host's sign-in first (when
// Options.Principal is set), then the PIN session. ok is false when
// nobody is signed in; err is a failure of the host's resolver.
func (c *card) who(g *gin.Context) (w ginapi.Who, host, ok bool, err error) {
	if c.opts.Principal != nil {
		w, err := c.opts.Principal(g)
		switch e, isFault := fault.As(err); {
		case err == nil && w.Institution != "" && w.ID != "":
			return w, true, true, nil
		case err == nil, errors.Is(err, ginapi.ErrNotSignedIn), isFault && (e.Kind == fault.Unauthenticated || e.Kind == fault.Locked):
		default:
			return ginapi.Who{}, false, false, err
		}
	}
	s := c.session(g)
	if s.ID == "" || s.Institution == "" {
		return ginapi.Who{}, false, false, nil
	}
	return ginapi.Who{Institution: s.Institution, ID: s.ID, Patron: s.Patron}, false, true, nil
}

// page wraps a page's handler: the page must be one the theme shows, the
// patron signed in (else the sign-in page, coming back here after), and
// the policies must allow them action on their own account, as they
// decide the API's /me route for the same deed.
func (c *card) page(name, action string, h func(*request)) gin.HandlerFunc {
	return func(g *gin.Context) {
		if !c.theme.shows(name) {
			c.failPage(g, http.StatusNotFound, "error.notfound")
			return
		}
		w, host, ok, err := c.who(g)
		if err != nil {
			c.opts.Logger.Error("librarycard: principal resolver", "error", err)
			c.failPage(g, http.StatusInternalServerError, "error.server")
			return
		}
		if !ok {
			if c.opts.Institution == "" {
				c.failPage(g, http.StatusUnauthorized, "error.signedout")
				return
			}
			next := ""
			if g.Request.Method == http.MethodGet {
				next = "?next=" + url.QueryEscape(g.Request.URL.RequestURI())
			}
			g.Redirect(http.StatusSeeOther, c.path("/signin")+next)
			g.Abort()
			return
		}
		v, err := c.kit.Access.Decide(g.Request.Context(), casbinmodel.Decision{Institution: w.Institution, Subject: w.ID,
			Patron: w.Patron, Action: action, Own: true})
		if err != nil {
			c.serverError(g, err)
			return
		}
		if !v.Allowed {
			c.failPage(g, http.StatusForbidden, "error.forbidden")
			return
		}
		ctx := patron.WithActor(g.Request.Context(), patron.Actor{Institution: w.Institution, ID: w.ID, Patron: w.Patron})
		id := newToken()[:16]
		g.Header("X-Request-ID", id)
		o := patron.Origin{Via: "web " + g.Request.Method + " " + g.FullPath(), RequestID: id}
		if !w.Patron {
			o.Roles, o.Library = v.Roles, v.Library
		}
		ctx = patron.WithOrigin(ctx, o)
		s := c.session(g)
		h(&request{g: g, who: w, sess: s, host: host, ctx: ctx, lang: c.language(g, s)})
	}
}

func (c *card) signInPage(g *gin.Context) {
	if c.opts.Institution == "" {
		c.failPage(g, http.StatusNotFound, "error.notfound")
		return
	}
	s := c.session(g)
	c.render(g, http.StatusOK, "signin", &view{Page: "signin", Lang: c.language(g, s), CSRF: s.CSRF,
		Data: signInData{Next: c.next(g.Query("next"))}})
}

// signInData is what the sign-in page shows.
type signInData struct {
	Next       string
	PrimaryID  string
	Error      string
	RetryAfter int
}

// next is where a sign-in goes on to: a page below the mount, the
// overview otherwise (never another site).
func (c *card) next(n string) string {
	if strings.HasPrefix(n, c.base+"/") && !strings.HasPrefix(n, "//") && !strings.ContainsAny(n, "\\\r\n") {
		return n
	}
	return c.path("")
}

// signIn checks the primary_id and PIN with the patron service's sign-in,
// which keeps its lockout (per client address and per account): a wrong
// PIN answers 401, a lockout 429 with Retry-After, both on the sign-in
// page. A good one starts a new session (new CSRF token) for the patron,
// in their preferred language when the theme has it.
func (c *card) signIn(g *gin.Context) {
	if c.opts.Institution == "" {
		c.failPage(g, http.StatusNotFound, "error.notfound")
		return
	}
	s := c.session(g)
	id, pin := strings.TrimSpace(g.PostForm("primary_id")), g.PostForm("pin")
	lang := c.language(g, s)
	data := signInData{Next: c.next(g.PostForm("next")), PrimaryID: id}
	if id == "" || pin == "" {
		data.Error = "signin.missing"
		c.render(g, http.StatusUnprocessableEntity, "signin", &view{Page: "signin", Lang: lang, CSRF: s.CSRF, Data: data})
		return
	}
	u, err := c.kit.Patrons.SignIn(g.Request.Context(), c.opts.Institution, id, pin, ginapi.ClientSource(g))
	if err != nil {
		e, ok := fault.As(err)
		switch {
		case ok && e.Kind == fault.Locked:
			secs := int((e.RetryAfter + time.Second - 1) / time.Second)
			g.Header("Retry-After", strconv.Itoa(secs))
			data.Error, data.RetryAfter = "signin.locked", (secs+59)/60
			c.render(g, http.StatusTooManyRequests, "signin", &view{Page: "signin", Lang: lang, CSRF: s.CSRF, Data: data})
		case ok && (e.Kind == fault.Unauthenticated || e.Kind == fault.NotFound || e.Kind == fault.Invalid):
			data.Error = "signin.wrong"
			c.render(g, http.StatusUnauthorized, "signin", &view{Page: "signin", Lang: lang, CSRF: s.CSRF, Data: data})
		default:
			c.serverError(g, err)
		}
		return
	}
	ns := &session{Institution: c.opts.Institution, ID: u.PrimaryID, Patron: u.RecordType != patron.RecordStaff, CSRF: newToken(), Lang: s.Lang}
	if l := c.theme.match(u.PreferredLanguage); l != "" {
		ns.Lang = l
	}
	c.save(g, ns)
	g.Redirect(http.StatusSeeOther, data.Next)
}

// signOut ends the PIN session (a new one, without a patron, takes its
// place) and shows the sign-in page; a patron the host signed in goes to
// the host's sign-out.
func (c *card) signOut(g *gin.Context) {
	s := c.session(g)
	c.save(g, &session{CSRF: newToken(), Lang: s.Lang})
	if _, host, ok, _ := c.who(g); ok && host && c.opts.SignOutURL != "" {
		g.Redirect(http.StatusSeeOther, c.opts.SignOutURL)
		return
	}
	if c.opts.Institution == "" {
		g.Redirect(http.StatusSeeOther, c.path(""))
		return
	}
	g.Redirect(http.StatusSeeOther, c.path("/signin")+"?out=1")
}
