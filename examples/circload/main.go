// Command circload puts the circulation desk under load through the real
// HTTP stack and measures it: check-outs (POST /api/loans) and check-ins
// (POST /api/returns), each timed on its own, from net/http clients over a
// loopback TCP socket to a Gin engine with the API mounted by ginapi.Mount.
//
// It seeds an institution of its own, named LOAD plus the time of the run,
// so that repeated runs on one database never meet each other's data: one
// library (LOAD-LIB, UTC), one catch-all rule of the terms of use (three
// weeks, two renewals, a small overdue fine), -patrons active UNDERGRAD
// patrons, -items items, and one staff user who is circulation desk
// operator in every library.
//
// Staff sign in with a bearer token the command makes at start: its
// principal resolver compares the Authorization header with it (in
// constant time) and answers the staff user. That stands for a host's
// session lookup; ginapi.BasicPIN is not used, since its sign-in work (a
// bcrypt hash, failure counts, a short cache) would be measured, not
// circulation.
//
// Every virtual client owns items and patrons no other client touches, so
// that every check-out should succeed: it lends its next item to its next
// patron until it holds -hold loans open, then alternates between taking
// back its oldest loan and lending again. Any answer other than 201 (check-
// out) or 200 (check-in) counts as an error; errors are counted, the first
// few printed, and make the command exit non-zero.
//
// With -workload account it measures the patron's own account instead:
// -readers patrons, each with -loans open loans (lent through the service
// before measuring), sign in as patrons (a bearer token each) and read
// GET /api/me and GET /api/me/loans in turn.
//
// Two shapes of load (-shape paced, open or both):
//
//   - paced: -clients clients, each pausing -pause (±20%) between
//     operations, for -duration: the latency of a busy desk;
//   - open: steps of clients that do not pause (-steps), each for
//     -step-duration, to find the highest throughput at which the 95th
//     percentile of both operations stays within -p95.
//
// For each phase it prints the count and latency percentiles of each
// operation, the throughput, the load average at its end, how busy the
// whole machine's CPUs were (from /proc/stat) and the CPU time of this
// process (clients and server): the rest of the machine's busy time is
// mostly the database server's. Outside Linux those read "n/a".
//
// Usage:
//
//	go run ./examples/circload                                       # embedded SQLite
//	go run ./examples/circload -db "$PATRONKIT_TEST_POSTGRES_DSN"
//	go run ./examples/circload -shape open -steps 1,2,4,8 -step-duration 10s
//	go run ./examples/circload -shape paced -cpuprofile circload.prof
//	go run ./examples/circload -db "$PATRONKIT_TEST_POSTGRES_DSN" -workload account
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/errgroup"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "circload: interrupted")
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "circload:", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	dsn          string
	patrons      int
	items        int
	clients      int
	pause        time.Duration
	duration     time.Duration
	shape        string
	steps        []int
	stepDuration time.Duration
	p95          time.Duration
	hold         int
	cpuProfile   string
	verbose      bool
	workload     string
	readers      int
	loans        int
}

func parseFlags(args []string) (*config, error) {
	var c config
	fs := flag.NewFlagSet("circload", flag.ContinueOnError)
	fs.StringVar(&c.dsn, "db", "", "Postgres or MySQL DSN (default: a new SQLite file in a temporary directory)")
	fs.IntVar(&c.patrons, "patrons", 1000, "number of patrons to seed")
	fs.IntVar(&c.items, "items", 5000, "number of items to seed")
	fs.IntVar(&c.clients, "clients", 75, "clients of the paced shape")
	fs.DurationVar(&c.pause, "pause", time.Second, "pause of a paced client between operations (±20%)")
	fs.DurationVar(&c.duration, "duration", time.Minute, "length of the paced shape")
	fs.StringVar(&c.shape, "shape", "both", "paced, open or both")
	steps := fs.String("steps", "1,2,4,8,16,32,64", "clients of each step of the open shape, comma separated")
	fs.DurationVar(&c.stepDuration, "step-duration", 15*time.Second, "length of each step of the open shape")
	fs.DurationVar(&c.p95, "p95", 50*time.Millisecond, "the 95th percentile both operations must stay within (open shape)")
	fs.IntVar(&c.hold, "hold", 2, "loans each client keeps open before it takes one back")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured phases to this file")
	fs.BoolVar(&c.verbose, "v", false, "log every request to stderr")
	fs.StringVar(&c.workload, "workload", "desk", "desk (check-out and check-in by staff) or account (patrons reading GET /me and GET /me/loans)")
	fs.IntVar(&c.readers, "readers", 10, "account workload: patrons whose accounts are read")
	fs.IntVar(&c.loans, "loans", 100, "account workload: open loans of each of those patrons")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	switch c.shape {
	case "paced", "open", "both":
	default:
		return nil, fmt.Errorf("-shape is %q: use paced, open or both", c.shape)
	}
	for _, s := range strings.Split(*steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-steps: %q is not a number of clients", s)
		}
		c.steps = append(c.steps, n)
	}
	if c.workload != "desk" && c.workload != "account" {
		return nil, fmt.Errorf("-workload must be desk or account, not %q", c.workload)
	}
	if c.workload == "account" && (c.readers < 1 || c.loans < 0 || c.readers > c.patrons || c.readers*c.loans > c.items) {
		return nil, fmt.Errorf("-readers (1..-patrons) patrons with -loans loans each need -readers × -loans items at most -items")
	}
	if c.hold < 1 {
		return nil, errors.New("-hold must be at least 1")
	}
	if c.pause < 0 || c.duration <= 0 || c.stepDuration <= 0 {
		return nil, errors.New("-pause cannot be negative, -duration and -step-duration must be positive")
	}
	// Each client needs a patron of its own and more items than it holds
	// loans, so that its next item is always on the shelf.
	most := 0
	if c.shape != "open" {
		most = c.clients
	}
	if c.shape != "paced" {
		most = max(most, slices.Max(c.steps))
	}
	if most < 1 {
		return nil, errors.New("-clients must be at least 1")
	}
	if c.patrons < most || c.items < most*(c.hold+1) {
		return nil, fmt.Errorf("%d clients need at least %d patrons and %d items (each its own patrons and -hold+1 items)", most, most, most*(c.hold+1))
	}
	return &c, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "circload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if cfg.dsn == "" {
		cfg.dsn = filepath.Join(dir, "circload.db")
	}
	db, err := sqldb.Open(cfg.dsn)
	if err != nil {
		return err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	kit, err := patronkit.New(db, &patronkit.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer kit.Close()
	if err := kit.Migrate(ctx); err != nil {
		return err
	}

	opNames = deskOps
	if cfg.workload == "account" {
		opNames = accountOps
	}
	inst := "LOAD" + time.Now().UTC().Format("20060102T150405") + "-" + randomHex(2)
	start := time.Now()
	ds, err := seed(ctx, kit, inst, cfg.patrons, cfg.items)
	if err != nil {
		return fmt.Errorf("seeding %s: %w", inst, err)
	}
	var readers []string
	if cfg.workload == "account" {
		readers = ds.patrons[:cfg.readers]
		if err := lend(ctx, kit, inst, readers, ds.barcodes, cfg.loans); err != nil {
			return fmt.Errorf("lending to the readers: %w", err)
		}
	}
	fmt.Fprintf(out, "circload: database %s, institution %s, %d patrons and %d items seeded in %.1fs, %d CPUs, load average %s\n",
		sqldb.DialectOf(cfg.dsn), inst, cfg.patrons, cfg.items, time.Since(start).Seconds(), runtime.NumCPU(), loadDelta{loadavg: readLoad().loadavg}.loadAvg())
	if cfg.workload == "account" {
		fmt.Fprintf(out, "account workload: %d patrons with %d open loans each read GET /me and GET /me/loans in turn\n", cfg.readers, cfg.loans)
	}

	srv, base, err := serve(kit, inst, ds.staff, readers, cfg.verbose)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.server.Shutdown(sctx)
	}()

	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	most := cfg.clients
	for _, n := range cfg.steps {
		most = max(most, n)
	}
	d := &driver{
		base:     base,
		token:    srv.token,
		readers:  srv.readers,
		workload: cfg.workload,
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConns:        most + 8,
			MaxIdleConnsPerHost: most + 8,
			IdleConnTimeout:     time.Minute,
		}, Timeout: time.Minute},
		barcodes: ds.barcodes,
		patrons:  ds.patrons,
		hold:     cfg.hold,
	}
	defer d.http.CloseIdleConnections()

	var failed int
	if cfg.shape != "open" {
		fmt.Fprintf(out, "\npaced: %d clients, each pausing %s ±20%% between operations, for %s\n", cfg.clients, cfg.pause, cfg.duration)
		res := d.phase(ctx, cfg.clients, cfg.pause, cfg.duration)
		printPhase(out, res)
		failed += res.errors()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if cfg.shape != "paced" {
		fmt.Fprintf(out, "\nopen: clients that do not pause, %s per step; target: p95 <= %s ms for both operations\n", cfg.stepDuration, ms(cfg.p95))
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		a, b := "out", "in"
		if cfg.workload == "account" {
			a, b = "me", "loans"
		}
		fmt.Fprintf(tw, "clients\tops/s\t%[1]s n\t%[1]s p50\t%[1]s p95\t%[1]s p99\t%[2]s n\t%[2]s p50\t%[2]s p95\t%[2]s p99\terrors\tload avg\tCPU busy\tcircload CPU\t\n", a, b)
		var best *phaseResult
		var results []*phaseResult
		for _, n := range cfg.steps {
			res := d.phase(ctx, n, 0, cfg.stepDuration)
			results = append(results, res)
			failed += res.errors()
			o, i := res.ops[opOut], res.ops[opIn]
			fmt.Fprintf(tw, "%d\t%.0f\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", n, res.throughput(),
				o.count(), ms(o.pct(50)), ms(o.pct(95)), ms(o.pct(99)), i.count(), ms(i.pct(50)), ms(i.pct(95)), ms(i.pct(99)),
				res.errors(), res.load.loadAvg1(), res.load.busy(), res.load.process())
			if ctx.Err() != nil {
				break
			}
			if res.errors() == 0 && o.count() > 0 && i.count() > 0 && o.pct(95) <= cfg.p95 && i.pct(95) <= cfg.p95 &&
				(best == nil || res.throughput() > best.throughput()) {
				best = res
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		printErrors(out, results...)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintln(out, "(latencies in ms; load avg: 1-minute load average at the end of the step; CPU busy: the whole machine; circload CPU: this process, clients and server, as a share of the whole machine)")
		if best != nil {
			fmt.Fprintf(out, "best step: %s, %.0f ops/s, %s p95 %s ms, %s p95 %s ms (target p95 <= %s ms)\n",
				plural(best.clients, "client"), best.throughput(), opNames[opOut], ms(best.ops[opOut].pct(95)), opNames[opIn], ms(best.ops[opIn].pct(95)), ms(cfg.p95))
		} else {
			fmt.Fprintf(out, "best step: none kept both p95 within %s ms without errors\n", ms(cfg.p95))
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d operations failed", failed)
	}
	return nil
}

// seeded is what seed made.
type seeded struct {
	staff    string
	patrons  []string
	barcodes []string
}

const (
	libraryCode = "LOAD-LIB"
	syncProfile = "CIRCLOAD"
	batchSize   = 500
)

var titles = []struct{ title, author string }{
	{"The Structure of Scientific Revolutions", "Thomas S. Kuhn"},
	{"Introduction to Algorithms", "Cormen, Leiserson, Rivest, Stein"},
	{"A Brief History of Time", "Stephen Hawking"},
	{"The Origin of Species", "Charles Darwin"},
	{"Middlemarch", "George Eliot"},
	{"The Selfish Gene", "Richard Dawkins"},
	{"Silent Spring", "Rachel Carson"},
}

// seed fills the institution: a library, its terms of use, the staff user
// and its role, the patrons (through the bulk path of integration
// profiles) and the items (LoadItems, a few loads at once).
func seed(ctx context.Context, kit *patronkit.Kit, inst string, nPatrons, nItems int) (*seeded, error) {
	ctx = patron.WithActor(ctx, patron.Actor{Institution: inst, ID: "system:circload"})
	c := kit.Circulation
	if _, err := c.CreateLibrary(ctx, inst, &circulation.Library{Code: libraryCode, Name: "Load Test Library", TimeZone: "UTC"}); err != nil {
		return nil, err
	}
	if _, err := c.ReplaceRules(ctx, inst, 0, []circulation.Rule{{Name: "Everyone: three weeks", Terms: circulation.Terms{
		LoanPeriod: 3, LoanPeriodUnit: circulation.Weeks, Renewals: 2,
		OverdueFine: 25, OverdueFineUnit: circulation.PerDay, MaxFine: 1000, Currency: "USD", MaxLoans: 500,
	}}}, nil); err != nil {
		return nil, err
	}
	out := &seeded{staff: "load-desk"}
	staff := &patron.User{PrimaryID: out.staff, FirstName: "Desk", LastName: "Operator", RecordType: patron.RecordStaff, UserGroup: "STAFF", Status: patron.StatusActive}
	if _, err := kit.Patrons.Create(ctx, inst, staff); err != nil {
		return nil, err
	}
	if err := kit.Access.AssignRole(ctx, inst, out.staff, "circulation-desk-operator", "*"); err != nil {
		return nil, err
	}

	for i := range nPatrons {
		out.patrons = append(out.patrons, fmt.Sprintf("load-p%06d", i+1))
	}
	for from := 0; from < nPatrons; from += batchSize {
		batch := make([]*patron.User, 0, batchSize)
		for i := from; i < min(from+batchSize, nPatrons); i++ {
			batch = append(batch, &patron.User{
				PrimaryID: out.patrons[i], FirstName: "Patron", LastName: fmt.Sprintf("Number %d", i+1),
				UserGroup: "UNDERGRAD", Status: patron.StatusActive, ExpiryDate: "2099-12-31",
				Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: fmt.Sprintf("LP%07d", i+1)}},
				Emails:      []patron.Email{{EmailAddress: fmt.Sprintf("patron%d@load.example", i+1), Preferred: true, EmailTypes: patron.Codes{"school"}}},
			})
		}
		for _, r := range kit.Patrons.SyncBatch(ctx, inst, batch, patron.SyncRule{Profile: syncProfile, Mode: patron.ModeImport, MatchBy: patron.MatchPrimaryID}) {
			if r.Outcome != patron.OutcomeCreated {
				return nil, fmt.Errorf("patron %s: %s %s", r.PrimaryID, r.Outcome, r.Reason)
			}
		}
	}

	items := make([]circulation.Item, nItems)
	for i := range items {
		w := titles[i%len(titles)]
		items[i] = circulation.Item{Barcode: fmt.Sprintf("LOAD-%07d", i+1), Title: w.title, Author: w.author,
			Library: libraryCode, Location: "STACKS", ItemPolicy: "REGULAR", MaterialType: "BOOK"}
		out.barcodes = append(out.barcodes, items[i].Barcode)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for from := 0; from < nItems; from += batchSize {
		chunk := items[from:min(from+batchSize, nItems)]
		g.Go(func() error {
			rep, err := c.LoadItems(gctx, inst, chunk)
			if err != nil {
				return err
			}
			if len(rep.Rejected) > 0 {
				return fmt.Errorf("item %s rejected: %s", rep.Rejected[0].Barcode, rep.Rejected[0].Reason)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// server is the HTTP server the clients call, the staff user's token and
// the tokens of the readers (patrons), in their order.
type server struct {
	server  *http.Server
	token   string
	readers []string
}

// serve mounts the API under /api on a Gin engine and serves it on a
// loopback port of the system's choosing. It returns the API's base URL.
func serve(kit *patronkit.Kit, inst, staff string, readers []string, verbose bool) (*server, string, error) {
	gin.SetMode(gin.ReleaseMode)
	token := randomHex(32)
	// The host's session lookup: a bearer token for the staff user, and
	// one for each reader, who signs in as a patron.
	sessions := map[string]string{}
	var tokens []string
	for _, r := range readers {
		t := randomHex(32)
		sessions[t] = r
		tokens = append(tokens, t)
	}
	principal := func(c *gin.Context) (ginapi.Who, error) {
		got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok {
			return ginapi.Who{}, ginapi.ErrNotSignedIn
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
			return ginapi.Who{Institution: inst, ID: staff}, nil
		}
		if p, ok := sessions[got]; ok {
			return ginapi.Who{Institution: inst, ID: p, Patron: true}, nil
		}
		return ginapi.Who{}, ginapi.ErrNotSignedIn
	}
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	router := gin.New()
	if err := ginapi.Mount(router.Group("/api"), kit, &ginapi.Options{Principal: principal, Logger: logger}); err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	s := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "circload: server:", err)
		}
	}()
	return &server{server: s, token: token, readers: tokens}, "http://" + ln.Addr().String() + "/api", nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// The operations measured.
const (
	opOut = iota // check-out: POST /loans
	opIn         // check-in: POST /returns
	nOps
)

// opNames name the operations of the workload running: run sets them.
var opNames [nOps]string

var (
	deskOps    = [nOps]string{"check-out", "check-in"}
	accountOps = [nOps]string{"GET /me", "GET /me/loans"}
)

// driver runs phases of load against the API.
type driver struct {
	base     string
	token    string
	readers  []string // the readers' tokens (account workload)
	workload string
	http     *http.Client
	barcodes []string
	patrons  []string
	hold     int
}

// opStats are the latencies of one operation in a phase.
type opStats struct {
	samples []time.Duration // sorted once the phase is over
	errors  int
}

func (s *opStats) count() int { return len(s.samples) }

// pct is the p-th percentile (nearest rank) of the samples.
func (s *opStats) pct(p float64) time.Duration {
	n := len(s.samples)
	if n == 0 {
		return 0
	}
	i := int(float64(n)*p/100+0.999999999) - 1
	return s.samples[min(max(i, 0), n-1)]
}

// failure is one failed operation, as printed.
type failure struct {
	op     string
	target string
	status int
	body   string
}

// phaseResult is what one phase measured.
type phaseResult struct {
	clients  int
	elapsed  time.Duration
	ops      [nOps]*opStats
	failures []failure // the first few
	load     loadDelta
}

func (r *phaseResult) errors() int { return r.ops[opOut].errors + r.ops[opIn].errors }

// throughput counts every operation answered, failed or not, per second.
func (r *phaseResult) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	n := r.ops[opOut].count() + r.ops[opIn].count() + r.errors()
	return float64(n) / r.elapsed.Seconds()
}

const keepFailures = 5

// phase runs n clients for length, each pausing pause (±20%) between
// operations, then takes back every loan still open (not measured).
func (d *driver) phase(ctx context.Context, n int, pause, length time.Duration) *phaseResult {
	res := &phaseResult{clients: n}
	for i := range res.ops {
		res.ops[i] = &opStats{}
	}
	var mu sync.Mutex
	record := func(f failure) {
		mu.Lock()
		defer mu.Unlock()
		if len(res.failures) < keepFailures {
			res.failures = append(res.failures, f)
		}
	}
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = &client{d: d, record: record, token: d.token}
		if d.workload == "account" {
			clients[i].token = d.readers[i%len(d.readers)]
		}
		for j := range res.ops {
			clients[i].ops[j] = &opStats{}
		}
		// Every client its own share: patron i, i+n, ...; item i, i+n, ...
		for j := i; j < len(d.patrons); j += n {
			clients[i].patrons = append(clients[i].patrons, d.patrons[j])
		}
		for j := i; j < len(d.barcodes); j += n {
			clients[i].items = append(clients[i].items, d.barcodes[j])
		}
	}
	before := readLoad()
	start := time.Now()
	deadline := start.Add(length)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.loop(ctx, pause, deadline) })
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.load = readLoad().since(before, res.elapsed)
	// Take back what is still out, so that the next phase finds every
	// item on the shelf: failures count, times do not.
	if ctx.Err() == nil {
		for _, c := range clients {
			wg.Go(func() { c.drain(ctx) })
		}
		wg.Wait()
	}
	for _, c := range clients {
		for j, s := range c.ops {
			res.ops[j].samples = append(res.ops[j].samples, s.samples...)
			res.ops[j].errors += s.errors
		}
	}
	for _, s := range res.ops {
		slices.Sort(s.samples)
	}
	return res
}

// client is one virtual desk: its own items and patrons, its open loans.
type client struct {
	d          *driver
	record     func(failure)
	items      []string
	patrons    []string
	nextItem   int
	nextPatron int
	open       []string // barcodes on loan, oldest first
	stuck      []string // barcodes whose check-in failed
	ops        [nOps]*opStats
	token      string // who the client signs in as
	reads      int    // account workload: reads so far
}

// step runs one operation of the workload and records its time.
func (c *client) step(ctx context.Context) {
	if c.d.workload == "account" {
		op, path := opOut, "/me"
		if c.reads%2 == 1 {
			op, path = opIn, "/me/loans"
		}
		c.reads++
		if took, ok := c.do(ctx, op, http.MethodGet, path, nil, http.StatusOK); ok {
			c.ops[op].samples = append(c.ops[op].samples, took)
		}
		return
	}
	if len(c.open) < c.d.hold {
		item, who := c.items[c.nextItem%len(c.items)], c.patrons[c.nextPatron%len(c.patrons)]
		c.nextItem++
		c.nextPatron++
		took, ok := c.do(ctx, opOut, http.MethodPost, "/loans", map[string]string{"primary_id": who, "barcode": item}, http.StatusCreated)
		if ok {
			c.ops[opOut].samples = append(c.ops[opOut].samples, took)
			c.open = append(c.open, item)
		}
		return
	}
	item := c.open[0]
	took, ok := c.do(ctx, opIn, http.MethodPost, "/returns", map[string]string{"barcode": item}, http.StatusOK)
	c.open = c.open[1:]
	if ok {
		c.ops[opIn].samples = append(c.ops[opIn].samples, took)
	} else {
		c.stuck = append(c.stuck, item) // the drain tries again
	}
}

func (c *client) loop(ctx context.Context, pause time.Duration, deadline time.Time) {
	if pause > 0 && !sleep(ctx, time.Duration(mrand.Int64N(int64(pause))+1)) {
		return // start at a random point of the first pause
	}
	for ctx.Err() == nil && time.Now().Before(deadline) {
		c.step(ctx)
		if pause > 0 {
			jitter := time.Duration(float64(pause) * (0.8 + 0.4*mrand.Float64()))
			if !sleep(ctx, jitter) {
				return
			}
		}
	}
}

// drain takes back the client's open loans.
func (c *client) drain(ctx context.Context) {
	for _, item := range slices.Concat(c.stuck, c.open) {
		c.do(ctx, opIn, http.MethodPost, "/returns", map[string]string{"barcode": item}, http.StatusOK)
	}
	c.open, c.stuck = nil, nil
}

// do sends one operation and times it until the whole answer is read. It
// reports false, and counts an error, when the answer is not want; an
// operation cut short by the end of ctx counts as nothing.
func (c *client) do(ctx context.Context, op int, method, path string, body map[string]string, want int) (time.Duration, bool) {
	var rd io.Reader
	b := []byte(path)
	if body != nil {
		b, _ = json.Marshal(body) // a map of strings: cannot fail
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.d.base+path, rd)
	if err != nil {
		c.fail(op, string(b), 0, err.Error())
		return 0, false
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	start := time.Now()
	resp, err := c.d.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.fail(op, string(b), 0, err.Error())
		}
		return 0, false
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		if ctx.Err() == nil {
			c.fail(op, string(b), resp.StatusCode, "reading the answer: "+err.Error())
		}
		return 0, false
	}
	if resp.StatusCode != want {
		c.fail(op, string(b), resp.StatusCode, string(got))
		return 0, false
	}
	return took, true
}

func (c *client) fail(op int, target string, status int, body string) {
	c.ops[op].errors++
	c.record(failure{op: opNames[op], target: target, status: status, body: strings.TrimSpace(body)})
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// printPhase prints the table of one phase of the paced shape.
func printPhase(out io.Writer, res *phaseResult) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tcount\terrors\tp50 ms\tp95 ms\tp99 ms\tmax ms\t")
	for op, s := range res.ops {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t\n", opNames[op], s.count(), s.errors, ms(s.pct(50)), ms(s.pct(95)), ms(s.pct(99)), ms(s.pct(100)))
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "throughput %.1f ops/s over %.1fs; load average at the end %s; machine CPU busy %s; circload process %s\n",
		res.throughput(), res.elapsed.Seconds(), res.load.loadAvg(), res.load.busy(), res.load.processLong())
	printErrors(out, res)
}

// printErrors prints the first failures of the phases.
func printErrors(out io.Writer, results ...*phaseResult) {
	for _, r := range results {
		for _, f := range r.failures {
			body := f.body
			if len(body) > 500 {
				body = body[:500] + "..."
			}
			fmt.Fprintf(out, "error (%d clients): %s %s: status %d: %s\n", r.clients, f.op, f.target, f.status, body)
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// ms writes a duration in milliseconds.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

// loadSample is the state of the machine and the process at one moment.
type loadSample struct {
	ok            bool // false where the machine's figures cannot be read
	busy, total   uint64
	loadavg       string
	processCPU    time.Duration
	processCPUErr bool
}

// loadDelta is the machine and the process over a phase.
type loadDelta struct {
	ok         bool
	busyPct    float64
	loadavg    string
	processCPU time.Duration
	processOK  bool
	elapsed    time.Duration
}

func (s loadSample) since(before loadSample, elapsed time.Duration) loadDelta {
	d := loadDelta{ok: s.ok && before.ok && s.total > before.total, loadavg: s.loadavg, elapsed: elapsed,
		processOK: !s.processCPUErr && !before.processCPUErr, processCPU: s.processCPU - before.processCPU}
	if d.ok {
		d.busyPct = 100 * float64(s.busy-before.busy) / float64(s.total-before.total)
	}
	return d
}

func (d loadDelta) loadAvg() string {
	if d.loadavg == "" {
		return "n/a"
	}
	return d.loadavg
}

func (d loadDelta) loadAvg1() string {
	if d.loadavg == "" {
		return "n/a"
	}
	return strings.Fields(d.loadavg)[0]
}

func (d loadDelta) busy() string {
	if !d.ok {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", d.busyPct)
}

// share is the process's CPU time as a share of all the machine's CPUs
// over the phase: the scale of busy.
func (d loadDelta) share() float64 {
	return 100 * d.processCPU.Seconds() / (d.elapsed.Seconds() * float64(runtime.NumCPU()))
}

func (d loadDelta) process() string {
	if !d.processOK || d.elapsed <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", d.share())
}

func (d loadDelta) processLong() string {
	if !d.processOK || d.elapsed <= 0 {
		return "CPU n/a"
	}
	s := fmt.Sprintf("%.1f CPU s (%.0f%% of the machine)", d.processCPU.Seconds(), d.share())
	if d.ok {
		s += fmt.Sprintf("; the rest, mostly the database server: %.0f%%", max(d.busyPct-d.share(), 0))
	}
	return s
}

// lend checks out n items to each reader, through the service (seeding,
// not measured).
func lend(ctx context.Context, kit *patronkit.Kit, inst string, readers, barcodes []string, n int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, r := range readers {
		mine := barcodes[i*n : (i+1)*n]
		g.Go(func() error {
			for _, b := range mine {
				if _, err := kit.Circulation.CheckOut(gctx, inst, r, b, circulation.CheckOutOptions{}); err != nil {
					return fmt.Errorf("%s to %s: %w", b, r, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}
