// Command sisbench measures SIS loads: it writes realistic Alma user XML for
// N users (several identifiers, addresses, emails, phones, notes and
// statistics each), then runs a synchronize profile over it three times and
// prints, per phase, users per second and the process's peak memory:
//
//   - first load: every user is created;
//   - unchanged re-run: the same file, every user unchanged;
//   - 10% changed: one user in ten has a new last name and email.
//
// Usage:
//
//	go run ./examples/sisbench -n 10000                       # embedded SQLite
//	go run ./examples/sisbench -n 100000 -db "$PATRONKIT_TEST_POSTGRES_DSN"
//
// The database must be empty of the institution BENCH (a fresh SQLite file is
// made when -db is not given).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/patron/sis"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sisbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sisbench", flag.ContinueOnError)
	n := fs.Int("n", 10000, "number of users")
	dsn := fs.String("db", "", "Postgres or MySQL DSN (default: a new SQLite file)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the loads to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	dir, err := os.MkdirTemp("", "sisbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *dsn == "" {
		*dsn = filepath.Join(dir, "bench.db")
	}
	db, err := sqldb.Open(*dsn)
	if err != nil {
		return err
	}
	kit, err := patronkit.New(db, &patronkit.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer kit.Close()
	if err := kit.Migrate(ctx); err != nil {
		return err
	}
	const inst = "BENCH"
	if _, err := kit.SIS.CreateProfile(ctx, inst, &sis.Profile{Code: "BENCH", Source: sis.Upload, Mode: sis.ModeSynchronize}); err != nil {
		return fmt.Errorf("profile (is the database empty of institution %s?): %w", inst, err)
	}
	first := filepath.Join(dir, "users.xml")
	changed := filepath.Join(dir, "users-10pct.xml")
	if err := writeUsers(first, *n, 0); err != nil {
		return err
	}
	if err := writeUsers(changed, *n, 10); err != nil {
		return err
	}
	info, _ := os.Stat(first)
	fmt.Fprintf(out, "sisbench: %d users, %s of XML, database %s, %d CPUs\n", *n, size(info.Size()), sqldb.DialectOf(*dsn), runtime.NumCPU())

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tseconds\tusers/s\tpeak RSS\tcreated\tupdated\tunchanged\trejected\tfailed")
	for _, phase := range []struct{ name, file string }{{"first load", first}, {"unchanged re-run", first}, {"10% changed", changed}} {
		resetPeak()
		f, err := os.Open(phase.file)
		if err != nil {
			return err
		}
		start := time.Now()
		r, err := kit.SIS.StartRun(ctx, inst, "BENCH", sis.RunOptions{Upload: f, UploadName: "users.xml"})
		f.Close()
		if err != nil {
			return err
		}
		if r, err = kit.SIS.Wait(ctx, r.ID); err != nil {
			return err
		}
		took := time.Since(start)
		if r.Status != sis.RunSucceeded {
			return fmt.Errorf("%s: run %s: %s", phase.name, r.Status, r.Error)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%s\t%d\t%d\t%d\t%d\t%d\n", phase.name, took.Seconds(), float64(*n)/took.Seconds(), size(peakRSS()),
			r.Created, r.Updated, r.Unchanged, r.Rejected, r.Failed)
	}
	return tw.Flush()
}

// writeUsers writes n users as Alma SIS XML; pct percent of them (every
// 100/pct-th) get a changed last name and email.
func writeUsers(path string, n, pct int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, `<?xml version="1.0" encoding="UTF-8"?>`)
	fmt.Fprintln(w, "<users>")
	for i := 0; i < n; i++ {
		last, mail := "Lastname"+strconv.Itoa(i%977), "user"+strconv.Itoa(i)
		if pct > 0 && i%(100/pct) == 0 {
			last, mail = last+"-Changed", mail+".new"
		}
		fmt.Fprintf(w, `  <user>
    <record_type desc="Public">PUBLIC</record_type>
    <primary_id>U%07d@campus.example</primary_id>
    <first_name>First%d</first_name>
    <last_name>%s</last_name>
    <user_group desc="Undergraduate">UG%d</user_group>
    <campus_code desc="Main campus">MAIN</campus_code>
    <preferred_language desc="English">en</preferred_language>
    <expiry_date>2027-08-31Z</expiry_date>
    <account_type desc="External">EXTERNAL</account_type>
    <status desc="Active">ACTIVE</status>
    <contact_info>
      <addresses>
        <address preferred="true" segment_type="External"><line1>%d College Road</line1><city>Springfield</city><postal_code>%05d</postal_code><address_types><address_type desc="Home">home</address_type></address_types></address>
        <address preferred="false" segment_type="External"><line1>Hall %d, room %d</line1><city>Springfield</city><address_types><address_type desc="School">school</address_type></address_types></address>
      </addresses>
      <emails>
        <email preferred="true" segment_type="External"><email_address>%s@campus.example</email_address><email_types><email_type desc="School">school</email_type></email_types></email>
        <email preferred="false" segment_type="External"><email_address>%s@home.example</email_address><email_types><email_type desc="Personal">personal</email_type></email_types></email>
      </emails>
      <phones>
        <phone preferred="true" preferred_sms="true" segment_type="External"><phone_number>+1555%07d</phone_number><phone_types><phone_type desc="Mobile">mobile</phone_type></phone_types></phone>
      </phones>
    </contact_info>
    <user_identifiers>
      <user_identifier segment_type="External"><id_type desc="Barcode">BARCODE</id_type><value>B%08d</value></user_identifier>
      <user_identifier segment_type="External"><id_type desc="University ID">UNIV_ID</id_type><value>ID-%d</value></user_identifier>
    </user_identifiers>
    <user_notes>
      <user_note segment_type="External"><note_type desc="Registrar">REGISTRAR</note_type><note_text>Enrolled in programme %d</note_text><user_viewable>true</user_viewable></user_note>
    </user_notes>
    <user_statistics>
      <user_statistic segment_type="External"><statistic_category desc="Year">YEAR%d</statistic_category><category_type desc="Level">LEVEL</category_type></user_statistic>
      <user_statistic segment_type="External"><statistic_category desc="Faculty">FAC%d</statistic_category><category_type desc="Faculty">FACULTY</category_type></user_statistic>
    </user_statistics>
  </user>
`, i, i, last, i%4, i, i%100000, i%50, i%400, mail, mail, i, i, i, i%40, i%4+1, i%12)
	}
	fmt.Fprintln(w, "</users>")
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// resetPeak resets the kernel's record of the peak resident set, so that
// each phase reports its own peak.
func resetPeak() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	runtime.GC()
}

// peakRSS is the process's peak resident set in bytes (VmHWM), or 0 where
// /proc is not there.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func size(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
}
