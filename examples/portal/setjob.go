package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/sets"
)

// setActor is who the set and job commands act as, on the audit trail.
const setActor = "system:portal"

// setCmd is the operator's command that makes a set of users from a file
// of identifiers, one a line, and prints its id, its count and the lines
// that named nobody:
//
//	portal set [-name NAME] [-id-type primary_id|TYPE] [-init] [-db DSN] [-data DIR] FILE
//
// Like sis-run, it works on the portal's existing database only, unless
// -init asks it to create and seed one.
func setCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("set", flag.ContinueOnError)
	fs.SetOutput(out)
	name := fs.String("name", "", "the set's name (default: the file's name)")
	idType := fs.String("id-type", sets.IDTypePrimaryID, "what the lines are: primary_id or an identifier type (BARCODE...)")
	inst := fs.String("institution", Institution, "institution code")
	initDB := fs.Bool("init", false, "create and seed the database when there is none yet")
	dsn, data := storageFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: portal set [-name NAME] [-id-type TYPE] [-init] [-db DSN] [-data DIR] FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("set needs exactly one FILE after its flags")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	if *name == "" {
		*name = f.Name()
	}
	kit, err := commandKit(ctx, out, *dsn, *data, *initDB)
	if err != nil {
		return err
	}
	defer kit.Close()
	ctx = patron.WithActor(ctx, patron.Actor{Institution: *inst, ID: setActor})
	made, err := kit.Sets.CreateFromFile(ctx, *inst, sets.NewItemized{Name: *name, IDType: *idType}, f)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "set\t%s\t\n", made.ID)
	fmt.Fprintf(tw, "name\t%s\t\n", made.Name)
	fmt.Fprintf(tw, "members\t%d\t\n", made.MemberCount)
	fmt.Fprintf(tw, "not found\t%d\t\n", len(made.NotFound))
	for _, l := range made.NotFound {
		fmt.Fprintf(tw, "  line %d\t%s\t\n", l.Line, l.Value)
	}
	return tw.Flush()
}

// commandKit opens the kit of a command on the portal's existing
// database (see existingDatabase), saying which.
func commandKit(ctx context.Context, out io.Writer, dsn, data string, initDB bool) (*patronkit.Kit, error) {
	where, err := existingDatabase(dsn, data, initDB, true)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "database: %s\n", where)
	return openKit(ctx, dsn, data, slog.New(slog.DiscardHandler), true, nil)
}

// list is a flag that may be given several times.
type list []string

func (l *list) String() string     { return strings.Join(*l, ", ") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// jobCmd is the operator's command that runs a job over a set: it prints
// the preview (the count, and a sample of what each would get), then,
// unless -preview, runs the job with a progress line and prints its
// counts and its report (CSV).
//
//	portal job -set SET_ID [-field NAME=VALUE]... [-add-block TYPE=DESCRIPTION]... [-remove-block TYPE]...
//	           [-add-note TEXT]... [-remove-note TEXT]... [-add-statistic CATEGORY]... [-remove-statistic CATEGORY]...
//	           [-preview] [-sample N] [-db DSN] [-data DIR]
//	portal job -set SET_ID -notify -text TEXT [-subject SUBJECT] [-template NAME] [-preview] ...
//
// Without -notify it updates user information (a field given an empty
// value is cleared); with it, it sends the message to every member
// through the notice outbox (the portal sends them).
func jobCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("job", flag.ContinueOnError)
	fs.SetOutput(out)
	setID := fs.String("set", "", "the set's id (portal set prints it)")
	inst := fs.String("institution", Institution, "institution code")
	preview := fs.Bool("preview", false, "print the preview only; run nothing")
	sample := fs.Int("sample", 10, "how many members the preview shows (1..100)")
	notify := fs.Bool("notify", false, "send a message to every member instead of updating them")
	subject := fs.String("subject", "", "the message's subject (-notify)")
	text := fs.String("text", "", "the message (-notify)")
	template := fs.String("template", "", "the notice template of the message (-notify; default: message)")
	var fields, addBlocks, removeBlocks, addNotes, removeNotes, addStats, removeStats list
	fs.Var(&fields, "field", "a field to set, NAME=VALUE (empty VALUE clears it); repeatable")
	fs.Var(&addBlocks, "add-block", "a block to add, TYPE=DESCRIPTION; repeatable")
	fs.Var(&removeBlocks, "remove-block", "a block type to remove; repeatable")
	fs.Var(&addNotes, "add-note", "a note to add; repeatable")
	fs.Var(&removeNotes, "remove-note", "a note's text to remove; repeatable")
	fs.Var(&addStats, "add-statistic", "a statistical category to add; repeatable")
	fs.Var(&removeStats, "remove-statistic", "a statistical category to remove; repeatable")
	dsn, data := storageFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: portal job -set SET_ID [-field NAME=VALUE]... [-add-block TYPE=DESCRIPTION]... [-preview] [-db DSN] [-data DIR]\n       portal job -set SET_ID -notify -text TEXT [-subject SUBJECT] [-template NAME] [-preview]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *setID == "" {
		fs.Usage()
		return errors.New("job needs -set and no other argument")
	}
	change := patron.BatchChange{Fields: map[string]string{}}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("-field %q: write NAME=VALUE", f)
		}
		change.Fields[k] = v
	}
	for _, b := range addBlocks {
		typ, desc, _ := strings.Cut(b, "=")
		change.AddBlocks = append(change.AddBlocks, patron.BatchBlock{BlockType: typ, BlockDescription: desc})
	}
	for _, n := range addNotes {
		change.AddNotes = append(change.AddNotes, patron.BatchNote{NoteText: n})
	}
	for _, n := range removeNotes {
		change.RemoveNotes = append(change.RemoveNotes, patron.BatchNote{NoteText: n})
	}
	for _, c := range addStats {
		change.AddStatistics = append(change.AddStatistics, patron.BatchStatistic{StatisticCategory: c})
	}
	change.RemoveBlocks, change.RemoveStatistics = removeBlocks, removeStats
	msg := sets.Message{Template: *template, Subject: *subject, Text: *text}
	if *notify && (len(change.Fields) > 0 || len(addBlocks)+len(removeBlocks)+len(addNotes)+len(removeNotes)+len(addStats)+len(removeStats) > 0) {
		return errors.New("-notify sends a message only: no -field, -add-... or -remove-...")
	}

	kit, err := commandKit(ctx, out, *dsn, *data, false)
	if err != nil {
		return err
	}
	defer kit.Close()
	ctx = patron.WithActor(ctx, patron.Actor{Institution: *inst, ID: setActor})
	set, err := kit.Sets.Get(ctx, *inst, *setID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "set: %s (%d members)\n", set.Name, set.MemberCount)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if *notify {
		p, err := kit.Sets.PreviewNotify(ctx, *inst, set.ID, msg, *sample)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "preview: a message to %d users\n", p.Total)
		for _, m := range p.Sample {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t\n", m.PrimaryID, m.Channel, m.Status, firstLine(m.Subject+" "+m.Body))
		}
	} else {
		p, err := kit.Sets.PreviewChange(ctx, *inst, set.ID, change, *sample)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "preview: %d users\n", p.Total)
		for _, o := range p.Sample {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", o.PrimaryID, o.Outcome, describe(o))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if *preview {
		return nil
	}

	var job *sets.Job
	if *notify {
		job, err = kit.Sets.StartNotify(ctx, *inst, set.ID, msg)
	} else {
		job, err = kit.Sets.StartChange(ctx, *inst, set.ID, change)
	}
	if err != nil {
		return err
	}
	var runErr error
	kit.Sets.Launch(ctx, *inst, job.ID, func(err error) { runErr = err })
	done := make(chan struct{})
	go func() {
		kit.Sets.Wait()
		close(done)
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-tick.C:
		}
		if j, err := kit.Sets.Job(ctx, *inst, job.ID); err == nil {
			jobProgress(out, j)
		}
	}
	fmt.Fprintln(out)
	if runErr != nil {
		return runErr
	}
	j, err := kit.Sets.Job(ctx, *inst, job.ID)
	if err != nil {
		return err
	}
	changed := "changed"
	if j.Kind == sets.JobNotify {
		changed = "queued"
	}
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "job\t%s\t\n", j.ID)
	fmt.Fprintf(tw, "status\t%s\t\n", j.Status)
	for _, row := range []struct {
		name string
		n    int64
	}{{changed, j.Changed}, {"unchanged", j.Unchanged}, {"refused", j.Refused}, {"total", j.Total}} {
		fmt.Fprintf(tw, "%s\t%d\t\n", row.name, row.n)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nreport:")
	return kit.Sets.WriteCSV(ctx, out, *inst, j.ID)
}

// jobProgress draws one line: a bar of the members done, and the counts.
func jobProgress(w io.Writer, j *sets.Job) {
	const width = 30
	frac := 1.0
	if j.Total > 0 {
		frac = min(float64(j.Done)/float64(j.Total), 1)
	}
	n := int(frac * width)
	fmt.Fprintf(w, "\r[%s%s] %3.0f%%  %d/%d users", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, j.Done, j.Total)
}

// describe says in one line what a preview shows of a user's change.
func describe(o patron.BatchOutcome) string {
	parts := patron.DescribeChanges(o.Changes, o.Segments)
	for _, r := range o.Reasons {
		parts = append(parts, "refused "+r.Field+": "+r.Message)
	}
	return strings.Join(parts, "; ")
}

// firstLine is the first line of s, at most 60 characters.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60]) + "…"
	}
	return s
}
