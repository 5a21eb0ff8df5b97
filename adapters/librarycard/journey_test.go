package librarycard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patronkittest"
)

// TestPatronJourneyInABrowser drives the pages in Chromium as a patron
// would, with axe-core on every page and state shown (the error page of a
// path no page has among them): sign in with the
// keyboard only (the focus visible on each control), renew a loan, place
// a request and cancel it, change a setting (and see a refused one
// explained beside its field), delete the history; then a second patron
// signs in elsewhere and sees none of the first one's data.
func TestPatronJourneyInABrowser(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		if _, err := k.Circulation.CheckOut(context.Background(), Institution, "faculty1", "MAIN-6", circulation.CheckOutOptions{}); err != nil {
			t.Fatal(err)
		}
		b := newTab(t, lib.srv.URL)

		// A path no page has: the error page, themed, in the page's
		// language, with the way back.
		b.open("/card/nothing-here").wait("/card/nothing-here", "There is nothing here.").accessible()
		if title, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.title + " | " + document.documentElement.lang`)); title != "Page not found – My Library Card | en" {
			t.Fatalf("the page of a path no page has: %q", title)
		}

		// Sign-in, by keyboard alone.
		b.open("/card/loans").wait("/card/signin", "PIN").accessible()
		b.tabTo("primary_id", 3).key("student1").tabTo("pin", 1).key("0000\r").wait("/card/signin", "not right").accessible()
		b.tabTo("pin", 4).key("3333\r").wait("/card/loans", "Your loans (2)").accessible()

		// Overview and the pages only read.
		b.open("/card/").wait("/card/", "Overdue loans: 1").accessible()
		b.open("/card/fees").wait("/card/fees", "Replacement card").accessible()
		b.open("/card/messages").wait("/card/messages", "Welcome to the library").accessible()
		b.open("/card/items/MAIN-5").wait("/card/items/MAIN-5", "4 weeks").accessible()
		b.open("/card/items/NOPE").wait("/card/items/NOPE", "There is nothing here.").accessible()
		b.open("/card/items/").wait("/card/items/", "Back to my account").accessible()

		// Renew the overdue loan, chosen.
		b.open("/card/loans").wait("/card/loans", "Your loans (2)")
		b.do(chromedp.Click(chromedp.CSS(`input[value="`+lib.overdue.ID+`"]`)), chromedp.Click(chromedp.CSS(`button[value="selected"]`)))
		b.wait("/card/loans/renew", "Renewed: 1. Not renewed: 0.").accessible()
		b.do(chromedp.Click(chromedp.CSS(`button[value="selected"]`))).wait("/card/loans/renew", "Choose at least one loan").accessible()

		// Place a request and cancel it.
		b.open("/card/items/MAIN-6").wait("/card/items/MAIN-6", "Place the request").accessible()
		b.do(chromedp.Click(chromedp.CSS(`form[action$="/request"] button[type=submit]`))).wait("/card/requests", "The request was placed.").accessible()
		if !strings.Contains(b.text(), "A Brief History of Time") {
			t.Fatal("the request placed is not listed")
		}
		b.do(chromedp.Click(chromedp.CSS(`tbody tr:last-child button`))).wait("/card/requests", "The request was cancelled.").accessible()
		if rs, _ := k.Circulation.ItemRequests(context.Background(), Institution, "MAIN-6"); len(rs) != 0 {
			t.Fatalf("the request cancelled still waits: %+v", rs)
		}

		// Settings: SMS without a phone is refused beside its field; the
		// language changes.
		b.open("/card/settings").wait("/card/settings", "Language").accessible()
		b.do(chromedp.Click(chromedp.CSS(`#sms`)), chromedp.Click(chromedp.CSS(`form.settings button[type=submit]`)))
		b.wait("/card/settings", "Text messages need a preferred phone.").accessible()
		b.do(chromedp.SetValue(chromedp.CSS(`#preferred_language`), "es"), chromedp.Click(chromedp.CSS(`form.settings button[type=submit]`)))
		b.wait("/card/settings", "Su configuración se guardó.").accessible()
		if lang, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "es" {
			t.Fatalf("page language %q after choosing Spanish", lang)
		}

		// History: the box must be ticked; then it is deleted.
		b.open("/card/history").wait("/card/history", "MAIN-4").accessible()
		b.do(chromedp.Click(chromedp.CSS(`form[action$="/history/delete"] button`))).wait("/card/history/delete", "Marque la casilla").accessible()
		b.do(chromedp.Click(chromedp.CSS(`#confirm`)), chromedp.Click(chromedp.CSS(`form[action$="/history/delete"] button`)))
		b.wait("/card/history/delete", "Se quitó su nombre de 1 préstamos").accessible()

		// Sign out.
		b.do(chromedp.Click(chromedp.CSS(`form.signout button`))).wait("/card/signin", "PIN").accessible()

		// The second patron, in a browser of their own.
		f := newTab(t, lib.srv.URL)
		f.open("/card/signin").wait("/card/signin", "PIN")
		f.do(chromedp.SendKeys(chromedp.CSS(`#primary_id`), "faculty1"), chromedp.SendKeys(chromedp.CSS(`#pin`), "4444\r"))
		f.wait("/card/", "Frances").accessible()
		for _, p := range []string{"/card/loans", "/card/requests", "/card/history", "/card/fees", "/card/messages", "/card/settings", "/card/items/MAIN-1"} {
			f.open(p).wait(p, "").accessible()
			txt := f.text()
			for _, secret := range []string{"Sam", "student1", "Replacement card", "sam@example.edu", "College Road", "Welcome to the library"} {
				if strings.Contains(txt, secret) {
					t.Errorf("%s shows the second patron %q of the first", p, secret)
				}
			}
		}
	})
}

// TestAxeFindsViolations: the accessibility check can fail: on a page
// without a language, a title or a label for its field, axe-core reports
// each.
func TestAxeFindsViolations(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!DOCTYPE html><html><body><form><input name="pin"></form></body></html>`))
	}))
	defer srv.Close()
	b := newTab(t, srv.URL)
	b.open("/")
	var ids []string
	for _, v := range b.violations() {
		ids = append(ids, v.ID)
	}
	for _, want := range []string{"html-has-lang", "document-title", "label"} {
		if !slices.Contains(ids, want) {
			t.Errorf("axe-core did not report %s: %v", want, ids)
		}
	}
}
