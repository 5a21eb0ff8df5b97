package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/patronkit/patronkit/privacy"
)

// auditVerify is the operator's command: verify that an institution's
// audit trail is whole, from the shell.
//
//	portal audit-verify [-institution DEMO] [-db DSN] [-data DIR]
//
// It prints the trail's state and returns nil when it is whole; when an
// entry was altered, inserted or removed behind the kit's back, it prints
// the first break and returns it (the portal exits 1). It reads the
// portal's existing database only.
func auditVerify(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("audit-verify", flag.ContinueOnError)
	fs.SetOutput(out)
	inst := fs.String("institution", Institution, "institution code")
	dsn, data := storageFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: portal audit-verify [-institution CODE] [-db DSN] [-data DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("audit-verify takes no argument after its flags, not %q", fs.Arg(0))
	}
	where, err := existingDatabase(*dsn, *data, false, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "database: %s\n", where)
	kit, err := openKit(ctx, *dsn, *data, slog.New(slog.DiscardHandler), false, nil)
	if err != nil {
		return err
	}
	defer kit.Close()
	last, err := kit.Privacy.Search(ctx, *inst, privacy.Query{Limit: 1})
	if err != nil {
		return err
	}
	b, err := kit.Privacy.Verify(ctx, *inst)
	if err != nil {
		return err
	}
	if b != nil {
		fmt.Fprintf(out, "audit trail of %s: BROKEN at entry %d (%s): %s\n", *inst, b.Seq, b.Reason, b.Detail)
		return b
	}
	switch {
	case len(last.Entries) == 0:
		fmt.Fprintf(out, "audit trail of %s: no entries\n", *inst)
	default:
		fmt.Fprintf(out, "audit trail of %s: whole, up to entry %d\n", *inst, last.Entries[0].Seq)
	}
	return nil
}
