package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

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
	accountOps = [nOps]string{"GET /me", "GET /users/{id}"}
)

// driver runs phases of load against the API.
type driver struct {
	base     string
	token    string
	readers  []string // the readers' tokens (account workload)
	readIDs  []string // the readers' primary_ids, in the same order
	workload string
	sip2Addr string // sip2 workload: the SIP2 server
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
			clients[i].reader = d.readIDs[i%len(d.readIDs)]
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
	var wg sync.WaitGroup
	if d.workload == "sip2" {
		// The kiosks sign in before the phase begins (not measured); one
		// that cannot tells at its first operation.
		for _, c := range clients {
			wg.Go(func() { _, _ = c.kiosk(ctx) })
		}
		wg.Wait()
	}
	before := readLoad()
	start := time.Now()
	deadline := start.Add(length)
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
	token      string     // who the client signs in as
	reader     string     // account workload: the primary_id of the patron it signs in as
	reads      int        // account workload: reads so far
	sip        *kioskConn // sip2 workload: the client's connection
}

// step runs one operation of the workload and records its time.
func (c *client) step(ctx context.Context) {
	if c.d.workload == "account" {
		// The patron reads their account; then a desk reads the
		// patron's record, which the audit trail records.
		op, token, path := opOut, c.token, "/me"
		if c.reads%2 == 1 {
			op, token, path = opIn, c.d.token, "/users/"+c.reader
		}
		c.reads++
		if took, ok := c.doAs(ctx, token, op, http.MethodGet, path, nil, http.StatusOK); ok {
			c.ops[op].samples = append(c.ops[op].samples, took)
		}
		return
	}
	if len(c.open) < c.d.hold {
		item, who := c.items[c.nextItem%len(c.items)], c.patrons[c.nextPatron%len(c.patrons)]
		c.nextItem++
		c.nextPatron++
		var took time.Duration
		var ok bool
		if c.d.workload == "sip2" {
			took, ok = c.sipDo(ctx, opOut, item, who)
		} else {
			took, ok = c.do(ctx, opOut, http.MethodPost, "/loans", map[string]string{"primary_id": who, "barcode": item}, http.StatusCreated)
		}
		if ok {
			c.ops[opOut].samples = append(c.ops[opOut].samples, took)
			c.open = append(c.open, item)
		}
		return
	}
	item := c.open[0]
	took, ok := c.checkIn(ctx, item)
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
		c.checkIn(ctx, item)
	}
	c.open, c.stuck = nil, nil
	if c.sip != nil {
		c.sip.nc.Close()
		c.sip = nil
	}
}

// checkIn takes item back, by the workload's way in.
func (c *client) checkIn(ctx context.Context, item string) (time.Duration, bool) {
	if c.d.workload == "sip2" {
		return c.sipDo(ctx, opIn, item, "")
	}
	return c.do(ctx, opIn, http.MethodPost, "/returns", map[string]string{"barcode": item}, http.StatusOK)
}

// do sends one operation and times it until the whole answer is read. It
// reports false, and counts an error, when the answer is not want; an
// operation cut short by the end of ctx counts as nothing.
func (c *client) do(ctx context.Context, op int, method, path string, body map[string]string, want int) (time.Duration, bool) {
	return c.doAs(ctx, c.token, op, method, path, body, want)
}

// doAs is do signed in with token.
func (c *client) doAs(ctx context.Context, token string, op int, method, path string, body map[string]string, want int) (time.Duration, bool) {
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
	req.Header.Set("Authorization", "Bearer "+token)
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
