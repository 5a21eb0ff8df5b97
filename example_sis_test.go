package patronkit_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/patron/sis"
)

// registrarFeed is a host's own SIS source: the registrar's system hands
// over each day's users as Alma user JSON (here a string stands in for
// its API; examples/custom-sis fetches it over HTTP). A file marked done
// is not offered again.
type registrarFeed struct {
	today string
	done  map[string]bool
}

// Name is the code SIS profiles name the source by.
func (f *registrarFeed) Name() string { return "registrar" }

// List offers today's export unless it was read already.
func (f *registrarFeed) List(ctx context.Context) ([]sis.File, error) {
	name := "users-" + f.today + ".json"
	if f.done[name] {
		return nil, nil
	}
	return []sis.File{{Name: name}}, nil
}

// Open reads the export.
func (f *registrarFeed) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(`{"user": [
	  {"primary_id": "ada@campus.example", "first_name": "Ada", "last_name": "Lovelace", "user_group": {"value": "GRAD"}},
	  {"primary_id": "nameless@campus.example"}
	]}`)), nil
}

// Done remembers the file, read (ok) or not.
func (f *registrarFeed) Done(ctx context.Context, name string, ok bool) error {
	f.done[name] = true
	return nil
}

// A host plugs in an SIS source of its own: the kit takes it in
// Config.Sources, and a profile names it.
func Example_customSISSource() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "patronkit-example")
	defer os.RemoveAll(dir)
	db, err := sqldb.Open(filepath.Join(dir, "library.db"))
	if err != nil {
		log.Fatal(err)
	}
	feed := &registrarFeed{today: "2026-09-01", done: map[string]bool{}}
	kit, err := patronkit.New(db, &patronkit.Config{Sources: []sis.Source{feed}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer kit.Close()
	if err := kit.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := kit.SIS.CreateProfile(ctx, "MYUNI", &sis.Profile{Code: "STUDENTS", Source: feed.Name(), Format: "json", Mode: sis.ModeSynchronize}); err != nil {
		log.Fatal(err)
	}
	run, err := kit.SIS.StartRun(ctx, "MYUNI", "STUDENTS", sis.RunOptions{}) // or on the profile's schedule, after kit.Start
	if err != nil {
		log.Fatal(err)
	}
	if run, err = kit.SIS.Wait(ctx, run.ID); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %s: created %d, rejected %d\n", run.Files, run.Status, run.Created, run.Rejected)
	_ = kit.SIS.Report(ctx, "MYUNI", run.ID, func(o sis.Outcome) error {
		fmt.Println(strings.TrimSpace(o.PrimaryID + " " + o.Outcome + " " + o.Reason))
		return nil
	})
	// Output:
	// users-2026-09-01.json succeeded: created 1, rejected 1
	// ada@campus.example created
	// nameless@campus.example rejected first_name is required; last_name is required
}
