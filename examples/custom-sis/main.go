// Command custom-sis shows a Source of a host's own: the campus publishes
// its users as Alma user JSON at an HTTPS endpoint instead of dropping
// files, and a small type adapts it to patronkit's sis.Source.
//
//	go run ./examples/custom-sis
//
// It starts a stand-in campus endpoint on loopback, wires the kit with the
// source, runs the profile once and prints the outcome of every user.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/patron/sis"
)

// campusAPI is a Source over a campus endpoint that serves the day's users
// as Alma JSON. Each day's export is one file; a file marked done is not
// offered again.
type campusAPI struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu   sync.Mutex
	done map[string]bool
}

func (c *campusAPI) Name() string { return "campus-api" }

// List offers today's export unless it was loaded already.
func (c *campusAPI) List(ctx context.Context) ([]sis.File, error) {
	name := "users-" + c.now().Format("2006-01-02") + ".json"
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done[name] {
		return nil, nil
	}
	return []sis.File{{Name: name, ModTime: c.now()}}, nil
}

// Open streams the export; the run reads it as it arrives.
func (c *campusAPI) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, fmt.Errorf("campus endpoint answered %s", res.Status)
	}
	return res.Body, nil
}

// Done remembers the export; a real source would tell the campus system.
func (c *campusAPI) Done(ctx context.Context, name string, ok bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done[name] = ok
	return nil
}

// campusExport is what the stand-in endpoint serves: Alma's list shape.
const campusExport = `{"user": [
  {"primary_id": "ada@campus.example", "first_name": "Ada", "last_name": "Lovelace",
   "user_group": {"value": "GRAD", "desc": "Graduate"}, "expiry_date": "2027-06-30Z",
   "contact_info": {"email": [{"email_address": "ada@campus.example", "preferred": true}]},
   "user_identifier": [{"id_type": {"value": "BARCODE"}, "value": "B100"}]},
  {"primary_id": "alan@campus.example", "first_name": "Alan", "last_name": "Turing",
   "user_group": {"value": "FACULTY", "desc": "Faculty"}},
  {"primary_id": "nameless@campus.example", "first_name": "", "last_name": ""}
], "total_record_count": 3}`

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "custom-sis:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, campusExport)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	dir, err := os.MkdirTemp("", "custom-sis")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := sqldb.Open(filepath.Join(dir, "library.db"))
	if err != nil {
		return err
	}
	source := &campusAPI{url: "http://" + ln.Addr().String() + "/users", client: &http.Client{Timeout: time.Minute}, now: time.Now, done: map[string]bool{}}
	kit, err := patronkit.New(db, &patronkit.Config{Sources: []sis.Source{source}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer kit.Close()
	if err := kit.Migrate(ctx); err != nil {
		return err
	}
	if _, err := kit.SIS.CreateProfile(ctx, "CAMPUS", &sis.Profile{
		Code: "STUDENTS", Source: source.Name(), Format: "json", Mode: sis.ModeSynchronize,
		ExpiryRule: sis.RuleRelative, ExpiryDays: 365,
	}); err != nil {
		return err
	}
	run, err := kit.SIS.StartRun(ctx, "CAMPUS", "STUDENTS", sis.RunOptions{})
	if err != nil {
		return err
	}
	if run, err = kit.SIS.Wait(ctx, run.ID); err != nil {
		return err
	}
	fmt.Fprintf(out, "run %s: created %d, rejected %d\n", run.Status, run.Created, run.Rejected)
	return kit.SIS.Report(ctx, "CAMPUS", run.ID, func(o sis.Outcome) error {
		fmt.Fprintf(out, "  %-26s %-9s %s\n", o.PrimaryID, o.Outcome, o.Reason)
		return nil
	})
}
