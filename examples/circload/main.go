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
// With -workload sip2 the check-outs and check-ins come from self-check
// kiosks instead, over SIP2 (adapters/sip2): each client is a kiosk with
// a connection of its own, signed in once as a kiosk account that lets
// patrons through without a PIN (as the desk's token stands for a
// session), sending check-out (11) and check-in (09) messages with
// checksums.
//
// With -workload account it measures the reads of patron records instead:
// -readers patrons, each with -loans open loans (lent through the service
// before measuring), sign in as patrons (a bearer token each) and read
// GET /api/me, and in turn the staff user reads each one's record,
// GET /api/users/{id} (a read the audit trail records before it answers).
// With -audit=false the kit keeps no audit trail
// (patronkit.Config.NoAuditTrail): run both to see what the trail costs.
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
//	go run ./examples/circload -db "$PATRONKIT_TEST_POSTGRES_DSN" -workload sip2
//	go run ./examples/circload -db "$PATRONKIT_TEST_POSTGRES_DSN" -workload account
//	go run ./examples/circload -db "$PATRONKIT_TEST_POSTGRES_DSN" -workload account -audit=false
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sqldb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	interrupted := ctx.Err() != nil // before stop, which ends ctx too
	stop()
	os.Exit(exitCode(err, interrupted, os.Stderr))
}

// exitCode tells what a run's error is, on stderr, and answers the exit
// status: 2 for -h, 1 for a failure or an interruption, 0 otherwise.
func exitCode(err error, interrupted bool, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 2
	case interrupted:
		fmt.Fprintln(stderr, "circload: interrupted")
	default:
		fmt.Fprintln(stderr, "circload:", err)
	}
	return 1
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
	audit        bool
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
	fs.StringVar(&c.workload, "workload", "desk", "desk (check-out and check-in by staff), account (patrons reading GET /me, staff reading their records GET /users/{id}) or sip2 (check-out and check-in by self-check kiosks over SIP2)")
	fs.IntVar(&c.readers, "readers", 10, "account workload: patrons whose accounts are read")
	fs.IntVar(&c.loans, "loans", 100, "account workload: open loans of each of those patrons")
	fs.BoolVar(&c.audit, "audit", true, "keep the audit trail (false: patronkit.Config.NoAuditTrail, to measure its cost)")
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
	if c.workload != "desk" && c.workload != "account" && c.workload != "sip2" {
		return nil, fmt.Errorf("-workload must be desk, account or sip2, not %q", c.workload)
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
	kit, err := patronkit.New(db, &patronkit.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		NoAuditTrail: !cfg.audit})
	if err != nil {
		return err
	}
	defer kit.Close()
	if err := kit.Migrate(ctx); err != nil {
		return err
	}

	opNames = deskOps
	switch cfg.workload {
	case "account":
		opNames = accountOps
	case "sip2":
		opNames = sip2Ops
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
		fmt.Fprintf(out, "account workload: %d patrons with %d open loans each read GET /me, and staff read their records (GET /users/{id}) in turn; audit trail %s\n",
			cfg.readers, cfg.loans, map[bool]string{true: "on", false: "off"}[cfg.audit])
	}

	srv, base, err := serve(kit, inst, ds.staff, readers, cfg.verbose)
	if err != nil {
		return err
	}
	var sip2Addr string
	if cfg.workload == "sip2" {
		if sip2Addr, err = serveSIP2(ctx, kit, inst); err != nil {
			return fmt.Errorf("starting the SIP2 server: %w", err)
		}
		fmt.Fprintf(out, "sip2 workload: each client is a self-check kiosk on a SIP2 connection of its own (signed in once), lending and taking back\n")
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
		readIDs:  readers,
		workload: cfg.workload,
		sip2Addr: sip2Addr,
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
			a, b = "me", "user"
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
