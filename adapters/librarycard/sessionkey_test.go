package librarycard_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/adapters/librarycard"
	"github.com/patronkit/patronkit/patronkittest"
)

// instance serves the pages at /card of a new kit on the database of k,
// as another instance of the host's application (or the same one after a
// restart) would, and answers its address.
func instance(t *testing.T, k *patronkittest.Kit, opts *librarycard.Options) string {
	t.Helper()
	kit := patronkittest.On(t, k.DB)
	e := gin.New()
	o := *opts
	o.Institution, o.Logger = Institution, slog.New(slog.NewTextHandler(testWriter{t}, nil))
	if err := librarycard.Mount(e.Group("/card"), kit.Kit, &o); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSessionsHoldOnEveryInstanceAndAfterARestart: without a session key
// in the options, a patron signed in on one instance is signed in on
// another on the same database, and still after a restart (a new mount);
// a mount given a key of its own does not take their session.
func TestSessionsHoldOnEveryInstanceAndAfterARestart(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		v := lib.visitor().signIn("student1", "3333").at("/card/")
		first := lib.srv.URL
		for _, name := range []string{"another instance", "a restart"} {
			lib.srv.URL = instance(t, k, &librarycard.Options{})
			v.get("/card/loans").status(http.StatusOK).at("/card/loans").has(`class="signout"`, "The Origin of Species")
			t.Logf("%s: signed in", name)
		}
		// A sign-out on one ends the session (a new one, without the
		// patron) everywhere: the cookie the browser holds is the new one.
		v.post("/card/signout", nil).at("/card/signin")
		lib.srv.URL = first
		v.get("/card/loans").at("/card/signin")

		// A key of the host's own wins: the stored one does not open it.
		v.signIn("student1", "3333").at("/card/")
		lib.srv.URL = instance(t, k, &librarycard.Options{SessionKey: bytes.Repeat([]byte{7}, 32)})
		v.get("/card/loans").at("/card/signin")
	})
}
