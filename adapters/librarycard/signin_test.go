package librarycard_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/librarycard"
	"github.com/patronkit/patronkit/patronkittest"
)

// TestSignInOverviewAndSignOut: a visitor is sent to the sign-in page and
// back to where they were going; a wrong PIN is refused on the page; the
// overview shows the patron's name, card expiry, alerts and counts; the
// cookie is HttpOnly and SameSite=Lax; signing out ends the session.
func TestSignInOverviewAndSignOut(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		v := lib.visitor()
		v.get("/card/loans").status(http.StatusOK).at("/card/signin").has(`<html lang="en">`, "<title>Sign in – My Library Card</title>", `name="next" value="/card/loans"`)
		v.post("/card/signin", url.Values{"primary_id": {"student1"}, "pin": {"0000"}, "next": {"/card/loans"}}).
			status(http.StatusUnauthorized).has("The user ID or the PIN is not right.", `value="student1"`, `aria-invalid="true"`)
		v.post("/card/signin", url.Values{"primary_id": {"student1"}, "pin": {"3333"}, "next": {"/card/loans"}}).status(http.StatusOK).at("/card/loans")
		ck := v.res.Request.Response // the redirect that set the session
		if ck == nil {
			t.Fatal("the sign-in did not redirect")
		}
		set := ck.Header.Get("Set-Cookie")
		for _, want := range []string{"patronkit_card=", "Path=/card/", "HttpOnly", "SameSite=Lax"} {
			if !strings.Contains(set, want) {
				t.Errorf("session cookie %q lacks %s", set, want)
			}
		}
		if strings.Contains(set, "Secure") {
			t.Errorf("session cookie %q is Secure on plain HTTP", set)
		}
		v.get("/card/").status(http.StatusOK).has("<title>Overview – My Library Card</title>", "Hello, Sam Student.", "2027-08-31",
			"Overdue loans: 1", "You owe 2.50 USD", `<span class="n">2</span> loans`, `<span class="n">1</span> requests`, `aria-current="page">Overview`)
		v.post("/card/signout", nil).status(http.StatusOK).at("/card/signin")
		v.get("/card/").at("/card/signin")
	})
}

// TestSignInLockout: wrong PINs lock the sign-in as the patron service's
// lockout says, with 429 and Retry-After on the sign-in page, even for the
// right PIN.
func TestSignInLockout(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		v := lib.visitor()
		v.get("/card/signin")
		for range 12 {
			v.post("/card/signin", url.Values{"primary_id": {"student1"}, "pin": {"0000"}})
			if v.res.StatusCode == http.StatusTooManyRequests {
				break
			}
			v.status(http.StatusUnauthorized)
		}
		v.post("/card/signin", url.Values{"primary_id": {"student1"}, "pin": {"3333"}}).status(http.StatusTooManyRequests).has("Too many tries.")
		if v.res.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After on the locked sign-in")
		}
	})
}

// TestFormsNeedTheirToken: a form posted without the session's CSRF token,
// or from another site, is refused (403) and changes nothing.
func TestFormsNeedTheirToken(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		v := lib.visitor().signIn("student1", "3333")
		v.post("/card/requests/"+lib.studentRequest.ID+"/cancel", url.Values{"csrf": {"forged"}}).status(http.StatusForbidden).has("This form has expired.")
		v.get("/card/requests")
		v.post("/card/requests/"+lib.studentRequest.ID+"/cancel", nil, "Sec-Fetch-Site", "cross-site").status(http.StatusForbidden)
		v.get("/card/requests").has("Cosmos", "Cancel")
		other := lib.visitor()
		other.get("/card/signin")
		other.post("/card/signin", url.Values{"primary_id": {"student1"}, "pin": {"3333"}, "csrf": {"not-the-session-token"}}).status(http.StatusForbidden)
	})
}

// TestSessionCookieIsSecureOnTLS: over TLS, or when the host says TLS
// ends in front of it, the session cookie is Secure.
func TestSessionCookieIsSecureOnTLS(t *testing.T) {
	k := patronkittest.New(t)
	for name, o := range map[string]*librarycard.Options{
		"tls":            {Institution: Institution},
		"tls in a proxy": {Institution: Institution, SecureCookie: true},
	} {
		e := gin.New()
		if err := librarycard.Mount(e.Group("/card"), k.Kit, o); err != nil {
			t.Fatal(err)
		}
		var srv *httptest.Server
		if o.SecureCookie {
			srv = httptest.NewServer(e)
		} else {
			srv = httptest.NewTLSServer(e)
		}
		res, err := srv.Client().Get(srv.URL + "/card/signin")
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if set := res.Header.Get("Set-Cookie"); !strings.Contains(set, "; Secure") || !strings.Contains(set, "HttpOnly") {
			t.Errorf("%s: session cookie %q", name, set)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: content security policy %q", name, csp)
		}
	}
}

// TestSignInWithTheCardsBarcode: where the kit lets identifiers sign in
// (Config.SignInIdentifiers), a patron signs in with their card's barcode
// and PIN.
func TestSignInWithTheCardsBarcode(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		lib.visitor().signIn("S-2001", "3333").status(http.StatusOK).at("/card/").has("Hello, Sam Student.")
		lib.visitor().signIn("S-2001", "0000").status(http.StatusUnauthorized)
	}, func(c *patronkit.Config) { c.SignInIdentifiers = []string{"BARCODE"} })
}
