package main

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/patronkit/patronkit/circulation"
)

// cardPortal is the demo portal with the patron's pages at /card in a
// theme, served for a test; student1 has three loans.
func cardPortal(t *testing.T, theme string) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	kit, err := openKit(ctx, "", t.TempDir(), slog.New(slog.DiscardHandler), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kit.Close)
	for _, b := range []string{"MAIN-0001", "MAIN-0012", "SCI-0005"} {
		if _, err := kit.Circulation.CheckOut(ctx, Institution, "student1", b, circulation.CheckOutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Router(kit, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := mountCard(r, kit, slog.New(slog.DiscardHandler), theme); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

// TestCardPagesInBothThemes: the demo serves the patron's pages at /card
// in the default theme and, with -card-theme vendor, in the second brand;
// a demo patron signs in with their PIN (and their primary_id, or in the
// vendor theme the barcode of their card) and sees their loans.
func TestCardPagesInBothThemes(t *testing.T) {
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	for theme, name := range map[string]string{CardDefault: "My Library Card", CardVendor: "Northwind University Libraries"} {
		srv := cardPortal(t, theme)
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		res, err := c.Get(srv.URL + "/card/loans")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := csrf.FindSubmatch(b)
		if res.Request.URL.Path != "/card/signin" || m == nil || !bytes.Contains(b, []byte(name)) {
			t.Fatalf("%s: /card/loans without sign-in: %s %.500s", theme, res.Request.URL.Path, b)
		}
		id := map[string]string{CardDefault: "student1", CardVendor: "S0001"}[theme]
		res, err = c.PostForm(srv.URL+"/card/signin", url.Values{"csrf": {string(m[1])}, "primary_id": {id}, "pin": {"3333"}, "next": {"/card/loans"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("MAIN-0012")) || !bytes.Contains(b, []byte("<title>Loans – "+name+"</title>")) {
			t.Fatalf("%s: the loans of student1: %d %.1000s", theme, res.StatusCode, b)
		}
	}
	if _, err := cardTheme("neon"); err == nil {
		t.Error("an unknown theme was taken")
	}
}

// TestCardScreenshots signs student1 in through Chromium in each theme,
// checks the sign-in and loans pages with axe-core (the theme's colours
// must keep WCAG 2.1 AA contrast) and takes the loans page's picture; with
// PATRONKIT_SCREENSHOTS=1 it writes them as README's docs/card-default.png
// and docs/card-vendor.png.
func TestCardScreenshots(t *testing.T) {
	path, err := chromium()
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("lang", "en-US"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	axe, err := os.ReadFile(filepath.Join("..", "..", "adapters", "librarycard", "testdata", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	accessible := func(ctx context.Context, theme string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](string(axe))); err != nil {
			t.Fatal(err)
		}
		vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}).
			then(r => r.violations.map(v => v.id + ": " + v.nodes.map(n => n.target.join(" ")).join(", ")))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			t.Errorf("%s theme: WCAG violation %s", theme, v)
		}
	}
	for theme, name := range map[string]string{CardDefault: "My Library Card", CardVendor: "Northwind University Libraries"} {
		srv := cardPortal(t, theme)
		ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		ctx, cancelTime := context.WithTimeout(ctx, time.Minute)
		err := chromedp.Do(ctx, chromedp.EmulateViewport(960, 640), chromedp.Navigate(srv.URL+"/card/signin?next=/card/loans"))
		if err != nil {
			t.Fatalf("%s: %v", theme, err)
		}
		accessible(ctx, theme)
		err = chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#primary_id"), "student1"), chromedp.SendKeys(chromedp.CSS("#pin"), "3333\r"),
			chromedp.WaitVisible(chromedp.CSS("table")))
		if err != nil {
			t.Fatalf("%s: signing in: %v", theme, err)
		}
		title, err := chromedp.Run(ctx, chromedp.Title())
		if err != nil || title != "Loans – "+name {
			t.Fatalf("%s: page title %q: %v", theme, title, err)
		}
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		accessible(ctx, theme)
		cancelTime()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil || img.Bounds().Dx() != 960 || img.Bounds().Dy() != 640 {
			t.Fatalf("%s: the screenshot is not a 960x640 PNG: %v", theme, err)
		}
		if os.Getenv("PATRONKIT_SCREENSHOTS") == "1" {
			if err := os.WriteFile(filepath.Join("..", "..", "docs", "card-"+theme+".png"), shot, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// chromium finds Debian's Chromium (the headless shell, or the browser),
// or the binary PATRONKIT_CHROMIUM names.
func chromium() (string, error) {
	if p := os.Getenv("PATRONKIT_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium-headless-shell", "chromium", "/usr/lib/chromium/chromium-headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found: install Debian's chromium-headless-shell (apt-get install -y chromium-headless-shell) or name the binary in PATRONKIT_CHROMIUM")
}
