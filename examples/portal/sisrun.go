package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// sisRun is the operator's command: run a profile on a file from the shell,
// with a progress bar while it runs and a summary table at the end.
//
//	portal sis-run [-profile SIS] [-dry-run] [-db DSN] [-data DIR] FILE
func sisRun(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sis-run", flag.ContinueOnError)
	profile := fs.String("profile", "SIS", "integration profile code")
	dry := fs.Bool("dry-run", false, "compute every outcome, write nothing")
	inst := fs.String("institution", Institution, "institution code")
	dsn, data := storageFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: portal sis-run [-profile CODE] [-dry-run] FILE")
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	kit, err := openKit(ctx, *dsn, *data, slog.New(slog.DiscardHandler), true, nil)
	if err != nil {
		return err
	}
	defer kit.Close()
	ctx = patron.WithActor(ctx, patron.Actor{Institution: *inst, ID: "system:sis-run"})
	run, err := kit.SIS.StartRun(ctx, *inst, *profile, sis.RunOptions{Upload: f, UploadName: filepath.Base(path), DryRun: *dry})
	if err != nil {
		return err
	}
	done := make(chan *sis.Run, 1)
	go func() {
		r, _ := kit.SIS.Wait(ctx, run.ID)
		done <- r
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			progress(out, r)
			fmt.Fprintln(out)
			return summary(out, r)
		case <-tick.C:
			if r, err := kit.SIS.GetRun(ctx, *inst, run.ID); err == nil {
				progress(out, r)
			}
		}
	}
}

// progress draws one line: a bar of the bytes read, and the users so far.
func progress(w io.Writer, r *sis.Run) {
	const width = 30
	frac := 0.0
	if r.BytesTotal > 0 {
		frac = min(float64(r.BytesRead)/float64(r.BytesTotal), 1)
	}
	if r.Status == sis.RunSucceeded || r.Status == sis.RunFailed {
		frac = 1
	}
	n := int(frac * width)
	fmt.Fprintf(w, "\r[%s%s] %3.0f%%  %d users", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, r.Done)
}

// summary prints the run's counts as a table; a failed run is an error.
func summary(w io.Writer, r *sis.Run) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s\t\n", r.ID)
	fmt.Fprintf(tw, "status\t%s\t\n", r.Status)
	if r.DryRun {
		fmt.Fprintf(tw, "dry run\tnothing written\t\n")
	}
	for _, row := range []struct {
		name string
		n    int
	}{{"created", r.Created}, {"updated", r.Updated}, {"unchanged", r.Unchanged}, {"rejected", r.Rejected}, {"failed", r.Failed}, {"deactivated", r.Deactivated}, {"total", r.Total}} {
		fmt.Fprintf(tw, "%s\t%d\t\n", row.name, row.n)
	}
	if r.StartedAt != nil && r.FinishedAt != nil {
		fmt.Fprintf(tw, "took\t%s\t\n", r.FinishedAt.Sub(*r.StartedAt).Round(time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Status == sis.RunFailed {
		return fmt.Errorf("the run failed: %s", r.Error)
	}
	if r.Rejected > 0 {
		fmt.Fprintf(w, "rejected users and their reasons: GET /api/sis/runs/%s/report\n", r.ID)
	}
	return nil
}
