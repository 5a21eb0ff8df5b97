package librarycard_test

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests drive the pages in Debian's Chromium (the package
// chromium-headless-shell, or chromium; PATRONKIT_CHROMIUM names another
// binary) and check every page with axe-core, vendored in testdata
// (axe-core 4.14.1, MPL-2.0, testdata/axe.LICENSE). A missing browser
// fails the tests: .ci/run installs it.

//go:embed testdata/axe.min.js
var axeSource string

// wcagTags are the axe-core tags of WCAG 2.1 A and AA.
var wcagTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserCancel context.CancelFunc = func() {}
	browserErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	browserCancel()
	os.Exit(code)
}

// chromiumPath finds the browser.
func chromiumPath() (string, error) {
	if p := os.Getenv("PATRONKIT_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium-headless-shell", "chromium", "/usr/lib/chromium/chromium-headless-shell", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found: install Debian's chromium-headless-shell (apt-get install -y chromium-headless-shell) or name the binary in PATRONKIT_CHROMIUM")
}

// startBrowser starts the one browser of the test binary.
func startBrowser() {
	path, err := chromiumPath()
	if err != nil {
		browserErr = err
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1100, 800), chromedp.Flag("lang", "en-US"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		browserErr = fmt.Errorf("starting %s: %w", path, err)
		return
	}
	browserCtx = ctx
	browserCancel = func() { cancel(); cancelAlloc() }
}

// tab is a browser tab of its own cookies (a new browser context): one
// visitor.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func newTab(t *testing.T, base string) *tab {
	t.Helper()
	browserOnce.Do(startBrowser)
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTime := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelTime)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1100, 800)); err != nil {
		t.Fatal(err)
	}
	return &tab{t: t, ctx: ctx, base: base}
}

// do runs actions, failing the test on an error.
func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) *tab {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v (at %s)", err, b.path())
	}
	return b
}

// open navigates to a path of the server.
func (b *tab) open(path string) *tab {
	b.t.Helper()
	return b.do(chromedp.Navigate(b.base + path))
}

// path is the path of the page shown.
func (b *tab) path() string {
	p, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.pathname`))
	return p
}

// wait waits for a page at path, loaded, that holds text.
func (b *tab) wait(path, text string) *tab {
	b.t.Helper()
	js := fmt.Sprintf(`location.pathname === %q && document.readyState === "complete" && document.body.innerText.includes(%q)`, path, text)
	var err error
	for range 20 { // a navigation under way ends a poll: poll the new page
		if _, err = chromedp.Run(b.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(15*time.Second))); err == nil ||
			!strings.Contains(err.Error(), "navigated or closed") && !strings.Contains(err.Error(), "context") {
			break
		}
	}
	if err != nil {
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		b.t.Fatalf("browser: no page %s with %q: %v; at %s:\n%.2000s", path, text, err, b.path(), body)
	}
	return b
}

// text is the page's text.
func (b *tab) text() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// axeViolation is one rule axe-core found broken, with the elements.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// accessible runs axe-core on the page shown and fails the test on any
// violation of WCAG 2.1 A or AA.
func (b *tab) accessible() *tab {
	b.t.Helper()
	for _, v := range b.violations() {
		b.t.Errorf("%s: WCAG violation %s (%s): %s\n  %s", b.path(), v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n  "))
	}
	return b
}

// violations runs axe-core on the page shown and answers the rules of
// WCAG 2.1 A and AA it breaks.
func (b *tab) violations() []axeViolation {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
		b.t.Fatalf("loading axe-core: %v", err)
	}
	tags, _ := json.Marshal(wcagTags)
	js := fmt.Sprintf(`axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations"]}).then(r => r.violations.map(v => ({
		id: v.id, impact: v.impact || "", help: v.help, nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary)})))`, tags)
	vs, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]axeViolation](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("running axe-core on %s: %v", b.path(), err)
	}
	return vs
}

// key presses keys (chromedp's kb names: "\t" Tab, "\r" Enter).
func (b *tab) key(keys string) *tab {
	b.t.Helper()
	return b.do(chromedp.KeyEvent(keys))
}

// focused answers the id (or the text) of the element that has the focus,
// and whether its focus is visible (an outline is drawn).
func (b *tab) focused() (string, bool) {
	b.t.Helper()
	type f struct {
		Name    string `json:"name"`
		Outline bool   `json:"outline"`
	}
	r, err := chromedp.Run(b.ctx, chromedp.Evaluate[f](`(() => { const e = document.activeElement; const s = getComputedStyle(e);
		return {name: e.id || e.textContent.trim(), outline: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2}; })()`))
	if err != nil {
		b.t.Fatal(err)
	}
	return r.Name, r.Outline
}

// tabTo presses Tab until the element named has the focus (at most n
// times), and fails unless its focus is visible.
func (b *tab) tabTo(name string, n int) *tab {
	b.t.Helper()
	for range n {
		b.key("\t")
		if got, visible := b.focused(); got == name {
			if !visible {
				b.t.Errorf("%s: the focus on %s is not visible", b.path(), name)
			}
			return b
		}
	}
	got, _ := b.focused()
	b.t.Fatalf("%s: %d Tabs do not reach %s (the focus is on %q)", b.path(), n, name, got)
	return b
}
