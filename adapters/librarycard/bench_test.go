package librarycard_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/adapters/librarycard"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

// borrowers gives inst n patrons ("reader-1"..., PIN 1234), each with
// loans open loans of items of their own, and serves the pages at /card
// behind a middleware that adds each request's server time to times.
func borrowers(tb testing.TB, k *patronkittest.Kit, n, loans int, times *serverTimes) *httptest.Server {
	tb.Helper()
	ctx := context.Background()
	patronkittest.Terms(tb, k, Institution, patronkittest.DefaultRule)
	patronkittest.Library(tb, k, Institution, "MAIN")
	var items []circulation.Item
	for p := range n {
		for i := range loans {
			items = append(items, circulation.Item{Barcode: fmt.Sprintf("R%d-%03d", p+1, i), Title: fmt.Sprintf("Work number %d of reader %d", i, p+1),
				Author: "Benchmark Author", Library: "MAIN"})
		}
	}
	if rep, err := k.Circulation.LoadItems(ctx, Institution, items); err != nil || len(rep.Rejected) > 0 {
		tb.Fatalf("loading items: %v %+v", err, rep.Rejected)
	}
	for p := range n {
		u := patronkittest.User(tb, k, Institution, func(u *patron.User) { u.PrimaryID, u.PINNumber = fmt.Sprintf("reader-%d", p+1), "1234" })
		for i := range loans {
			if _, err := k.Circulation.CheckOut(ctx, Institution, u.PrimaryID, fmt.Sprintf("R%d-%03d", p+1, i), circulation.CheckOutOptions{}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	gin.SetMode(gin.TestMode)
	e := gin.New()
	if times != nil {
		e.Use(times.measure)
	}
	if err := librarycard.Mount(e.Group("/card"), k.Kit, &librarycard.Options{Institution: Institution}); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(e)
	tb.Cleanup(srv.Close)
	return srv
}

// serverTimes keeps the server time of the loans pages served.
type serverTimes struct {
	mu  sync.Mutex
	all []time.Duration
}

func (s *serverTimes) measure(c *gin.Context) {
	start := time.Now()
	c.Next()
	if c.Request.URL.Path == "/card/loans" && c.Writer.Status() == http.StatusOK {
		s.mu.Lock()
		s.all = append(s.all, time.Since(start))
		s.mu.Unlock()
	}
}

func (s *serverTimes) percentile(p int) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.Sort(s.all)
	return s.all[(len(s.all)-1)*p/100]
}

var csrfOf = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signedIn answers an HTTP client signed in as id.
func signedIn(tb testing.TB, base, id string) *http.Client {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Get(base + "/card/signin")
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfOf.FindSubmatch(b)
	if m == nil {
		tb.Fatalf("no sign-in form: %.300s", b)
	}
	res, err = c.PostForm(base+"/card/signin", url.Values{"csrf": {string(m[1])}, "primary_id": {id}, "pin": {"1234"}})
	if err != nil {
		tb.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/card/" {
		tb.Fatalf("signing %s in: %d at %s", id, res.StatusCode, res.Request.URL.Path)
	}
	return c
}

// TestLoansPageOfAHundredLoans: the loans page of a patron with 100 loans
// shows them all and weighs under 100 KB (the stylesheet, 5 KB, comes
// once and is cached; there are no images but the theme's logo, and no
// script).
func TestLoansPageOfAHundredLoans(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		srv := borrowers(t, k, 1, 100, nil)
		c := signedIn(t, srv.URL, "reader-1")
		res, err := c.Get(srv.URL + "/card/loans")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if rows := strings.Count(string(b), `name="loan_id"`); rows != 100 {
			t.Fatalf("the page shows %d loans, want 100", rows)
		}
		if len(b) >= 100<<10 {
			t.Fatalf("the page weighs %d bytes, want under 100 KB", len(b))
		}
		if strings.Contains(string(b), "<script") {
			t.Fatal("the page holds a script")
		}
		css, err := c.Get(srv.URL + "/card/assets/card.css")
		if err != nil {
			t.Fatal(err)
		}
		cb, _ := io.ReadAll(css.Body)
		css.Body.Close()
		t.Logf("loans page %d bytes, stylesheet %d bytes", len(b), len(cb))
		if len(b)+len(cb) >= 100<<10 {
			t.Fatalf("page and stylesheet weigh %d bytes, want under 100 KB", len(b)+len(cb))
		}
	})
}

// BenchmarkLoansPage puts the loans page under the load of 75 paced
// clients (each pausing 1 s ±20% between pages, as examples/circload's
// paced shape does), each signed in as one of 15 patrons with 100 open
// loans, for PATRONKIT_BENCH_DURATION (default 20s), and reports the
// server time of the page (p50, p95, p99) and its weight.
func BenchmarkLoansPage(b *testing.B) {
	dur := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("PATRONKIT_BENCH_DURATION")); err == nil {
		dur = d
	}
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		const clients, patrons = 75, 15
		times := &serverTimes{}
		k := patronkittest.On(b, db)
		srv := borrowers(b, k, patrons, 100, times)
		cs := make([]*http.Client, clients)
		for i := range cs {
			cs[i] = signedIn(b, srv.URL, fmt.Sprintf("reader-%d", i%patrons+1))
		}
		var weight, errs int64
		var mu sync.Mutex
		b.ResetTimer()
		end := time.Now().Add(dur)
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() {
				time.Sleep(time.Duration(rand.Int64N(int64(time.Second)))) // spread the clients' starts
				for time.Now().Before(end) {
					res, err := c.Get(srv.URL + "/card/loans")
					if err == nil {
						n, _ := io.Copy(io.Discard, res.Body)
						res.Body.Close()
						mu.Lock()
						weight = n
						if res.StatusCode != http.StatusOK {
							errs++
						}
						mu.Unlock()
					}
					time.Sleep(time.Duration(float64(time.Second) * (0.8 + 0.4*rand.Float64())))
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		if errs > 0 || len(times.all) == 0 {
			b.Fatalf("%d pages failed, %d served", errs, len(times.all))
		}
		b.ReportMetric(float64(len(times.all)), "pages")
		b.ReportMetric(float64(times.percentile(50).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(times.percentile(95).Microseconds())/1000, "p95-ms")
		b.ReportMetric(float64(times.percentile(99).Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(weight)/1024, "page-KB")
	})
}
