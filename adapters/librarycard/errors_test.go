package librarycard_test

import (
	"net/http"
	"testing"

	"github.com/patronkit/patronkit/patronkittest"
)

// send sends a request of method without a body.
func (v *visitor) send(method, path string) *visitor {
	v.t.Helper()
	req, _ := http.NewRequest(method, v.lib.srv.URL+path, nil)
	return v.do(req)
}

// TestUnknownPathsAnswerTheThemedErrorPage: a path below the mount that
// no page has answers 404 with the error page in the theme's layout and
// the visitor's language, with a link back (the sign-in before signing
// in, the overview after); a method a page does not take answers 405 with
// Allow; OPTIONS answers the methods. A path outside the mount is the
// host's.
func TestUnknownPathsAnswerTheThemedErrorPage(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		v := lib.visitor()
		for _, p := range []string{"/card/nothing-here", "/card/items/", "/card/loans/extra", "/card/assets/other.css", "/card/requests/R1/cancel/more"} {
			v.get(p).status(http.StatusNotFound).at(p).has(`<html lang="en">`, "<title>Page not found – My Library Card</title>",
				`<link rel="stylesheet" href="/card/assets/card.css">`, "There is nothing here.", `<a href="/card/signin">Sign in</a>`)
		}
		v.signIn("student1", "3333").at("/card/")
		v.get("/card/nothing-here?lang=es").status(http.StatusNotFound).has(`<html lang="es">`, "<title>Página no encontrada – My Library Card</title>",
			"Aquí no hay nada.", `<a href="/card/">Volver a mi cuenta</a>`, `<nav class="menu" aria-label="Mi cuenta">`)
		v.get("/card/items/").status(http.StatusNotFound).has(`<html lang="es">`, "Página no encontrada")

		v.get("/card/?lang=en")
		v.send(http.MethodPost, "/card/loans").status(http.StatusMethodNotAllowed).has(`<html lang="en">`, "<title>Not possible here – My Library Card</title>",
			"This page cannot be used this way.", `<a href="/card/">Back to my account</a>`)
		if a := v.res.Header.Get("Allow"); a != "GET, HEAD, OPTIONS" {
			t.Errorf("POST /card/loans: Allow %q", a)
		}
		v.send(http.MethodDelete, "/card/settings").status(http.StatusMethodNotAllowed)
		if a := v.res.Header.Get("Allow"); a != "GET, HEAD, POST, OPTIONS" {
			t.Errorf("DELETE /card/settings: Allow %q", a)
		}
		v.send(http.MethodOptions, "/card/items/MAIN-1").status(http.StatusNoContent)
		if a := v.res.Header.Get("Allow"); a != "GET, HEAD, OPTIONS" {
			t.Errorf("OPTIONS /card/items/MAIN-1: Allow %q", a)
		}
		v.send(http.MethodHead, "/card/loans").status(http.StatusOK)
		v.get("/elsewhere").status(http.StatusNotFound).lacks("My Library Card")
	})
}
