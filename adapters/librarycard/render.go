package librarycard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
)

//go:embed templates/*.html
var templateFiles embed.FS

// pageTemplates are the templates of the pages, each rendered inside
// layout.html.
var pageTemplates = []string{"signin", "overview", "loans", "requests", "history", "fees", "messages", "settings", "items", "error"}

// pageSet holds every page's template, parsed once.
type pageSet struct {
	byName map[string]*template.Template
}

// loadPages parses the templates: each page with the layout, the
// theme's file in place of the embedded one where it has one.
func loadPages(th *theme) (*pageSet, error) {
	read := func(name string) (string, error) {
		if th.Templates != nil {
			b, err := fs.ReadFile(th.Templates, name)
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("librarycard: theme template %s: %w", name, err)
			}
		}
		b, err := templateFiles.ReadFile("templates/" + name)
		return string(b), err
	}
	layout, err := read("layout.html")
	if err != nil {
		return nil, err
	}
	ps := &pageSet{byName: map[string]*template.Template{}}
	for _, p := range pageTemplates {
		src, err := read(p + ".html")
		if err != nil {
			return nil, err
		}
		t, err := template.New("layout.html").Parse(layout)
		if err == nil {
			_, err = t.New(p + ".html").Parse(src)
		}
		if err != nil {
			return nil, fmt.Errorf("librarycard: template %s: %w", p, err)
		}
		ps.byName[p] = t
	}
	return ps, nil
}

// view is what every template receives: the page, the patron's language
// and form token, the theme, and the page's own data.
type view struct {
	// Page names the page (one of Pages, "signin" or "error"); its title
	// is the message "<page>.title".
	Page string
	Lang string
	CSRF string
	// Status is the HTTP status of the answer.
	Status int
	// Name is the signed-in patron's name, for the header.
	Name string
	// Data is the page's own.
	Data any

	card     *card
	signedIn bool
	host     bool
	path     string
	// inst and ctx are the signed-in patron's institution and the
	// request's context, for the libraries' time zones; libs are those
	// read.
	inst string
	ctx  context.Context
	libs *libraries
}

// T answers the text of a message in the page's language; with args, the
// message is a fmt format.
func (v *view) T(key string, args ...any) string {
	s := v.card.theme.text(v.Lang, key)
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// Theme answers the theme.
func (v *view) Theme() *Theme { return v.card.theme.Theme }

// Logo answers the address of the theme's logo, checked by Mount.
func (v *view) Logo() template.URL { return template.URL(v.card.theme.LogoURL) }

// URL answers the address of a page below the mount ("" for the overview).
func (v *view) URL(p string) string { return v.card.path(p) }

// SignedIn tells whether a patron is signed in.
func (v *view) SignedIn() bool { return v.signedIn }

// CanSignOut tells whether the sign-out button is shown: for a PIN
// session, or the host's when it names its sign-out.
func (v *view) CanSignOut() bool { return v.signedIn && (!v.host || v.card.opts.SignOutURL != "") }

// navItem is an entry of the menu.
type navItem struct {
	Label   string
	URL     string
	Current bool
}

// Nav answers the menu: the pages the theme shows.
func (v *view) Nav() []navItem {
	var out []navItem
	for _, p := range Pages {
		if p == PageItems || !v.card.theme.shows(p) {
			continue
		}
		u := "/" + p
		if p == PageOverview {
			u = ""
		}
		out = append(out, navItem{Label: v.T(p + ".title"), URL: v.card.path(u), Current: v.Page == p})
	}
	return out
}

// langLink is a link to the page in another language.
type langLink struct {
	Tag, Label, URL string
	Current         bool
}

// Languages answers links to this page in each language of the theme.
func (v *view) Languages() []langLink {
	var out []langLink
	for _, l := range v.card.theme.langs {
		out = append(out, langLink{Tag: l, Label: v.card.theme.text(l, "language.name"), URL: v.path + "?lang=" + l, Current: l == v.Lang})
	}
	return out
}

// Date shows the day of a time in the mount's time zone
// (Options.Location).
func (v *view) Date(t time.Time) string { return t.In(v.card.opts.Location).Format(dateFormat) }

// DateTime shows a time with its hour and time zone, in the mount's.
func (v *view) DateTime(t time.Time) string {
	return t.In(v.card.opts.Location).Format(dateTimeFormat)
}

// DateAt shows the day of a time in the time zone of the library code
// (the mount's when the library names none).
func (v *view) DateAt(library string, t time.Time) string {
	return t.In(v.zone(library)).Format(dateFormat)
}

// DateTimeAt shows a time with its hour and time zone, in the time zone
// of the library code (the mount's when the library names none).
func (v *view) DateTimeAt(library string, t time.Time) string {
	return t.In(v.zone(library)).Format(dateTimeFormat)
}

// zone answers the time zone of a library of the signed-in patron's
// institution; the libraries are read once per page at most.
func (v *view) zone(library string) *time.Location {
	if v.libs == nil && v.inst != "" {
		l, err := v.card.libraries(v.ctx, v.inst)
		if err != nil {
			v.card.opts.Logger.Error("librarycard: reading the libraries", "error", err)
			l = &libraries{}
		}
		v.libs = l
	}
	return v.card.zone(v.libs, library)
}

// Money shows an amount in minor units of a currency.
func (v *view) Money(amount int64, currency string) string {
	return circulation.FormatMoney(amount, currency)
}

// Moneys shows amounts per currency, joined.
func (v *view) Moneys(m map[string]int64) string {
	var parts []string
	for _, cur := range sortedKeys(m) {
		parts = append(parts, circulation.FormatMoney(m[cur], cur))
	}
	if len(parts) == 0 {
		return v.T("money.none")
	}
	return strings.Join(parts, ", ")
}

// Has tells whether list holds s.
func (v *view) Has(list []string, s string) bool { return slices.Contains(list, s) }

// render writes a page.
func (c *card) render(g *gin.Context, status int, name string, v *view) {
	v.card, v.Status = c, status
	if v.Lang == "" {
		v.Lang = c.language(g, c.session(g))
	}
	if v.CSRF == "" {
		v.CSRF = c.session(g).CSRF
	}
	v.path = g.Request.URL.Path
	if !v.signedIn {
		if _, host, ok, err := c.who(g); err == nil && ok {
			v.signedIn, v.host = true, host
		}
	}
	b := pageBuffers.Get().(*bytes.Buffer)
	defer putPageBuffer(b)
	b.Reset()
	if err := c.pages.byName[name].ExecuteTemplate(b, "layout.html", v); err != nil {
		c.opts.Logger.Error("librarycard: rendering a page", "page", name, "error", err)
		g.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("the page could not be shown"))
		g.Abort()
		return
	}
	g.Data(status, "text/html; charset=utf-8", b.Bytes())
	g.Abort()
}

// pageBuffers hold the pages while they are rendered, for the next ones:
// a page of 100 loans is some 40 KB.
var pageBuffers = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 64<<10)) }}

// putPageBuffer keeps a buffer for the next page, unless a page far
// larger than most made it grow.
func putPageBuffer(b *bytes.Buffer) {
	if b.Cap() <= 256<<10 {
		pageBuffers.Put(b)
	}
}

// show renders a page of a signed-in patron.
func (r *request) show(c *card, status int, name string, data any) {
	c.render(r.g, status, name, &view{Page: name, Lang: r.lang, CSRF: r.sess.CSRF, Data: data, signedIn: true, host: r.host,
		inst: r.who.Institution, ctx: r.ctx, libs: r.libs})
}

// errorData is what the error page shows.
type errorData struct {
	// Title is the message key of the page's title and heading; empty:
	// "error.title".
	Title   string
	Message string
	Detail  string
	Reasons []string
}

// failPage answers the error page with a message key.
func (c *card) failPage(g *gin.Context, status int, key string) {
	c.render(g, status, "error", &view{Page: "error", Data: errorData{Message: key}})
}

// serverError logs a failure of the server and answers the error page
// without its detail.
func (c *card) serverError(g *gin.Context, err error) {
	c.opts.Logger.Error("librarycard: a page failed", "path", g.Request.URL.Path, "error", err)
	c.failPage(g, http.StatusInternalServerError, "error.server")
}

// fail answers what a service's error calls for: a *fault.Error as a
// 4xx page with its detail and reasons, anything else as a 500.
func (c *card) fail(g *gin.Context, err error) {
	e, ok := fault.As(err)
	if !ok {
		c.serverError(g, err)
		return
	}
	status, key := http.StatusUnprocessableEntity, "error.refused"
	switch e.Kind {
	case fault.NotFound:
		status, key = http.StatusNotFound, "error.notfound"
	case fault.Conflict, fault.Stale:
		status, key = http.StatusConflict, "error.conflict"
	case fault.Forbidden:
		status, key = http.StatusForbidden, "error.forbidden"
	case fault.Locked:
		status, key = http.StatusTooManyRequests, "error.refused"
		g.Header("Retry-After", strconv.Itoa(int(e.RetryAfter/time.Second)+1))
	}
	c.render(g, status, "error", &view{Page: "error", Data: errorData{Message: key, Detail: e.Detail, Reasons: e.Reasons}})
}

// language answers the language of the pages for the request: one chosen
// with ?lang= (kept in the session), the session's, the browser's, or the
// theme's default.
func (c *card) language(g *gin.Context, s *session) string {
	if l := g.Query("lang"); l != "" && slices.Contains(c.theme.langs, l) {
		if s.Lang != l {
			s.Lang = l
			c.save(g, s)
		}
		return l
	}
	if s.Lang != "" && slices.Contains(c.theme.langs, s.Lang) {
		return s.Lang
	}
	if l := c.theme.match(g.GetHeader("Accept-Language")); l != "" {
		return l
	}
	return c.theme.DefaultLanguage
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Seq answers 1 to n, for the page links.
func (v *view) Seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// Shows tells whether the theme shows a page (one of Pages).
func (v *view) Shows(page string) bool { return v.card.theme.shows(page) }
