package librarycard_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/adapters/librarycard"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/patronkittest"
)

// vendorTheme is a second brand: its name, logo, colours, font, footer
// links, a label changed, a page left out and a template of its own.
func vendorTheme() *librarycard.Theme {
	return &librarycard.Theme{
		Name:        "Acme Campus Library",
		LogoURL:     "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='40' height='40'%3E%3Crect width='40' height='40' fill='%23fff'/%3E%3C/svg%3E",
		Colors:      map[string]string{"primary": "#4a1d6b", "link": "#5b2a86"},
		Font:        `Georgia, "Times New Roman", serif`,
		FooterLinks: []librarycard.Link{{Label: "Privacy notice", URL: "https://acme.example/privacy"}},
		Messages:    map[string]map[string]string{"en": {"fees.title": "Charges"}},
		Pages:       []string{librarycard.PageOverview, librarycard.PageLoans, librarycard.PageFees},
		Templates:   fstest.MapFS{"fees.html": {Data: []byte(`{{define "content"}}<p class="acme">Pay at the Acme desk: {{.Moneys .Data.Balance}}</p>{{end}}`)}},
	}
}

// TestThemeWhiteLabels: the theme's name, logo, colours, font, footer
// links and texts are on the pages; a page it leaves out answers 404 and
// leaves the menu; a template it overrides replaces the embedded one.
func TestThemeWhiteLabels(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k, func(o *librarycard.Options) { o.Theme = vendorTheme() })
		v := lib.visitor().signIn("student1", "3333")
		v.get("/card/").has("<title>Overview – Acme Campus Library</title>", `<img src="data:image/svg&#43;xml,`, "Privacy notice", `href="https://acme.example/privacy"`,
			`<a href="/card/fees">Charges</a>`).lacks(`href="/card/requests"`, `href="/card/settings"`)
		v.get("/card/fees").status(http.StatusOK).has("<title>Charges – Acme Campus Library</title>", `<p class="acme">Pay at the Acme desk: 2.50 USD</p>`)
		v.get("/card/requests").status(http.StatusNotFound)
		v.get("/card/settings").status(http.StatusNotFound)
		v.get("/card/assets/card.css").status(http.StatusOK).has("--pk-primary:#4a1d6b;", "--pk-link:#5b2a86;", "--pk-font:Georgia", "--pk-ok:#1e6b34;")
		if ct := v.res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
			t.Errorf("stylesheet type %q", ct)
		}
	})
}

// TestMountRefusesWhatItCannotServe: Mount answers an error, never a
// panic, for options it cannot serve.
func TestMountRefusesWhatItCannotServe(t *testing.T) {
	k := patronkittest.New(t)
	g := gin.New().Group("/card")
	bad := map[string]*librarycard.Options{
		"no sign-in":          {},
		"short session key":   {Institution: "UNI", SessionKey: []byte("short")},
		"colour with a brace": {Institution: "UNI", Theme: &librarycard.Theme{Colors: map[string]string{"primary": "red;} body{display:none"}}},
		"unknown page":        {Institution: "UNI", Theme: &librarycard.Theme{Pages: []string{"wallet"}}},
		"broken template":     {Institution: "UNI", Theme: &librarycard.Theme{Templates: fstest.MapFS{"loans.html": {Data: []byte("{{define")}}}},
		"language of no text": {Institution: "UNI", Theme: &librarycard.Theme{DefaultLanguage: "fr"}},
	}
	for name, o := range bad {
		if err := librarycard.Mount(g, k.Kit, o); err == nil {
			t.Errorf("%s: Mount took it", name)
		}
	}
	if err := librarycard.Mount(g, nil, &librarycard.Options{Institution: "UNI"}); err == nil {
		t.Error("Mount took no kit")
	}
}

// TestHostSignIn: a host that signs patrons in itself (its SSO) names
// them through Principal; the pages need no PIN then, and a patron the
// host does not name goes to the PIN sign-in.
func TestHostSignIn(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k, func(o *librarycard.Options) {
			o.Principal = func(c *gin.Context) (ginapi.Who, error) {
				if id := c.GetHeader("X-SSO-User"); id != "" {
					return ginapi.Who{Institution: Institution, ID: id, Patron: true}, nil
				}
				return ginapi.Who{}, ginapi.ErrNotSignedIn
			}
			o.SignOutURL = "/sso/logout"
		})
		v := lib.visitor()
		req, _ := http.NewRequest(http.MethodGet, lib.srv.URL+"/card/loans", nil)
		req.Header.Set("X-SSO-User", "faculty1")
		v.do(req).status(http.StatusOK).at("/card/loans").has("MAIN-3", `action="/card/signout"`).lacks("MAIN-1")
		lib.visitor().get("/card/loans").at("/card/signin")
	})
}

// TestPoliciesDecideThePages: the pages ask the same actions as the /me
// routes: a policy that takes account.settings.write from patrons
// refuses the settings form (403) and leaves the record as it was.
func TestPoliciesDecideThePages(t *testing.T) {
	dir := t.TempDir()
	model, policy := filepath.Join(dir, "model.conf"), filepath.Join(dir, "policy.csv")
	var lines []string
	for _, l := range strings.Split(casbinmodel.DefaultPolicy(), "\n") {
		if !strings.Contains(l, "account.settings.write") {
			lines = append(lines, l)
		}
	}
	if err := os.WriteFile(model, []byte(casbinmodel.DefaultModel()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(policy, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		v := lib.visitor().signIn("student1", "3333")
		v.get("/card/settings").status(http.StatusOK)
		v.post("/card/settings", url.Values{"preferred_language": {"es"}}).status(http.StatusForbidden).has("You may not do this.")
		if u, _ := k.Patrons.Get(t.Context(), Institution, "student1"); u.PreferredLanguage != "en" {
			t.Fatalf("a refused change was stored: %q", u.PreferredLanguage)
		}
	}, func(c *patronkit.Config) { c.Policies = casbinmodel.FromFiles(model, policy) })
}
