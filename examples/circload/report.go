package main

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

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
