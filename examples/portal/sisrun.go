package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// sisRun is the operator's command: run a profile on a file from the shell,
// with a progress bar while it runs and a summary table at the end.
//
//	portal sis-run [-profile SIS] [-dry-run] [-init] [-db DSN] [-data DIR] FILE
//
// It loads into the portal's existing database (the SQLite file under
// -data, or -db) and refuses to start when there is none there, unless
// -init asks it to create and seed one: a mistyped -data would otherwise
// load the file into a new database no portal reads.
func sisRun(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sis-run", flag.ContinueOnError)
	fs.SetOutput(out)
	profile := fs.String("profile", "SIS", "integration profile code")
	dry := fs.Bool("dry-run", false, "compute every outcome, write nothing")
	inst := fs.String("institution", Institution, "institution code")
	initDB := fs.Bool("init", false, "create and seed the database when there is none yet")
	dsn, data := storageFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: portal sis-run [-profile CODE] [-dry-run] [-init] [-db DSN] [-data DIR] FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("sis-run needs exactly one FILE after its flags")
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	where, err := existingDatabase(*dsn, *data, *initDB, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "database: %s\n", where)
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
			if err := summary(out, r); err != nil {
				return err
			}
			return rejections(ctx, out, kit.SIS, *inst, r)
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
	return nil
}

// rejections prints each user the run rejected or failed, with the reason,
// and where the whole report is.
func rejections(ctx context.Context, w io.Writer, runs *sis.Service, inst string, r *sis.Run) error {
	if r.Rejected+r.Failed == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nnot loaded:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	err := runs.Report(ctx, inst, r.ID, func(o sis.Outcome) error {
		if o.Outcome != sis.OutcomeRejected && o.Outcome != sis.OutcomeFailed {
			return nil
		}
		who := o.PrimaryID
		if who == "" {
			who = o.Ref
		}
		_, err := fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", who, o.Outcome, o.Reason)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "the whole report: GET /api/sis/runs/%s/report on the portal (as a user administrator)\n", r.ID)
	return nil
}

// existingDatabase says which database a command (sis-run, audit-verify)
// works on, and refuses one that the portal never set up unless create is
// true; canInit says the command takes -init, for the hint.
func existingDatabase(dsn, data string, create, canInit bool) (string, error) {
	hint := "start the portal on it first (go run ./examples/portal -data DIR or -db DSN), or name the right one with -data or -db"
	if canInit {
		hint = "start the portal on it first (go run ./examples/portal -data DIR or -db DSN), name the right one with -data or -db, or pass -init to create and seed it"
	}
	if dsn == "" {
		path := filepath.Join(data, "patronkit.db")
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(path); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
			if !create {
				return "", fmt.Errorf("no portal database at %s: %s", abs, hint)
			}
			return abs + " (SQLite, new)", nil
		}
		return abs + " (SQLite)", nil
	}
	db, err := sqldb.Open(dsn)
	if err != nil {
		return "", fmt.Errorf("open database: %w", err)
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	where := redactDSN(dsn) + " (" + string(sqldb.DialectOf(dsn)) + ")"
	if !db.Migrator().HasTable(&patron.User{}) && !create {
		return "", fmt.Errorf("no portal tables in %s: %s", where, hint)
	}
	return where, nil
}

// redactDSN hides the password of a DSN.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil && u.Scheme != "" {
		return u.Redacted()
	}
	// A go-sql-driver DSN: user:password@tcp(host)/db.
	if at := strings.Index(dsn, "@"); at > 0 {
		if colon := strings.Index(dsn[:at], ":"); colon >= 0 {
			return dsn[:colon+1] + "xxxxx" + dsn[at:]
		}
	}
	return dsn
}
