// Command portal is patronkit's demo server: the SDK mounted under /api of
// a Gin app, on the embedded SQLite database by default.
//
//	go run ./examples/portal                 # SQLite file under ./patronkit-data, demo data
//	go run ./examples/portal -db 'postgres://user:pass@127.0.0.1/patronkit'
//	go run ./examples/portal -seed=false -addr 127.0.0.1:9000
//	go run ./examples/portal -sip2 127.0.0.1:6001   # also serve self-check kiosks over SIP2
//	go run ./examples/portal -card-theme vendor   # the patron's pages at /card in a second brand
//	go run ./examples/portal sis-run -profile SIS examples/portal/sample/users.xml   # load a file from the shell
//	go run ./examples/portal audit-verify -institution DEMO   # verify the audit trail; exit status 1 when broken
//
// API clients sign in with HTTP Basic: primary_id and PIN (see README.md
// for the demo accounts).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/almaapi"
	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/adapters/sip2"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/patron/sis"
	"github.com/patronkit/patronkit/privacy"
)

// Institution is the code of the demo institution.
const Institution = "DEMO"

// DropFolder is the name of the demo's SIS drop folder source.
const DropFolder = "dropfolder"

func main() {
	if err := run(context.Background(), os.Args[1:], nil); err != nil {
		fmt.Fprintln(os.Stderr, "portal:", err)
		os.Exit(1)
	}
}

// run starts the portal and serves until ctx ends. When ready is not nil it
// receives the address listened on once requests are accepted, then, with
// -sip2, the SIP2 server's. The
// subcommand sis-run loads a file through a profile instead (see sisRun),
// audit-verify verifies the audit trail (see auditVerify), set makes a
// set of users from a file (see setCmd) and job runs a job over one (see
// jobCmd).
func run(ctx context.Context, args []string, ready chan<- string) error {
	if len(args) > 0 && args[0] == "sis-run" {
		return sisRun(ctx, args[1:], os.Stdout)
	}
	if len(args) > 0 && args[0] == "audit-verify" {
		return auditVerify(ctx, args[1:], os.Stdout)
	}
	if len(args) > 0 && args[0] == "set" {
		return setCmd(ctx, args[1:], os.Stdout)
	}
	if len(args) > 0 && args[0] == "job" {
		return jobCmd(ctx, args[1:], os.Stdout)
	}
	fs := flag.NewFlagSet("portal", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	seedDemo := fs.Bool("seed", true, "seed the demo institution when the database has no users")
	dsn, data := storageFlags(fs)
	ch := channelFlags(fs)
	sip2Addr := fs.String("sip2", "", "also serve self-check kiosks over SIP2 on this address (e.g. 127.0.0.1:6001)")
	card := fs.String("card-theme", CardDefault, "theme of the patron's pages at /card: default or vendor")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: portal [flags]              serve the demo portal\n       portal sis-run [flags] FILE     load an SIS file (portal sis-run -h)\n       portal audit-verify [flags]     verify the audit trail (portal audit-verify -h)\n       portal set [flags] FILE         make a set of users from a file (portal set -h)\n       portal job -set ID [flags]      preview and run a job over a set (portal job -h)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		// Flag parsing stops at the first word that is not a flag: an
		// unknown subcommand, and every flag after it, would be ignored.
		fs.Usage()
		return fmt.Errorf("unknown argument %q", fs.Arg(0))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	kit, err := openKit(ctx, *dsn, *data, log, *seedDemo, ch)
	if err != nil {
		return err
	}
	defer kit.Close()
	kit.Start(ctx)

	r, err := Router(kit, log)
	if err != nil {
		return err
	}
	if err := mountCard(r, kit, log, *card); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("patronkit portal on http://%s (API under /api, document at /api/openapi.json, patron pages at /card)\n", ln.Addr())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	if *sip2Addr != "" {
		// Kit.Close (deferred above) shuts it down.
		kiosks, err := sip2.Listen(kit, *sip2Addr, &sip2.Options{Institution: Institution, Logger: log})
		if err != nil {
			ln.Close()
			return fmt.Errorf("sip2: %w", err)
		}
		fmt.Printf("SIP2 for self-check kiosks on %s (institution %s)\n", kiosks.Addr(), Institution)
		if ready != nil {
			ready <- kiosks.Addr().String()
		}
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// storageFlags declares the flags that say where the portal keeps its data.
func storageFlags(fs *flag.FlagSet) (dsn, data *string) {
	dsn = fs.String("db", os.Getenv("PATRONKIT_DB"), "Postgres or MySQL DSN (default: env PATRONKIT_DB, else the SQLite file under -data)")
	data = fs.String("data", "patronkit-data", "data directory (SQLite file, SIS drop folder)")
	return dsn, data
}

// openKit opens the database, wires the kit with the SIS drop folder under
// data, migrates, and seeds the demo when asked and the database is empty.
func openKit(ctx context.Context, dsn, data string, log *slog.Logger, seedDemo bool, ch *channels) (*patronkit.Kit, error) {
	drop := filepath.Join(data, "sis-drop")
	if err := os.MkdirAll(drop, 0o750); err != nil {
		return nil, err
	}
	if dsn == "" {
		dsn = filepath.Join(data, "patronkit.db")
	}
	db, err := sqldb.Open(dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	folder, err := sis.DropFolder(DropFolder, drop)
	if err != nil {
		return nil, err
	}
	email, sms, err := ch.notifiers(data)
	if err != nil {
		return nil, err
	}
	key, err := auditKey(data)
	if err != nil {
		return nil, err
	}
	kit, err := patronkit.New(db, &patronkit.Config{
		Policies: casbinmodel.FromDB(db),
		Logger:   log,
		Sources:  []sis.Source{folder},
		// Notices: email and SMS (or files under data/outbox), Spanish
		// beside English, sent every half minute.
		Email:            email,
		SMS:              sms,
		NoticeTemplates:  noticeTemplates(),
		CirculationEvery: 30 * time.Second,
		// Retention: closed records lose their patron after a while
		// (README, "Retention"); the last borrower of an item stays two
		// weeks.
		RetentionRules:   demoRetention,
		LastBorrowerDays: 14,
		// The audit key signs the trail's checkpoints and lets it forget
		// an erased user; the demo keeps one in its data folder.
		AuditKey: key,
		// Patrons sign in with their card's barcode too.
		SignInIdentifiers: []string{"BARCODE"},
	})
	if err != nil {
		return nil, err
	}
	if err := kit.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if seedDemo {
		seeded, err := Seed(ctx, kit, Institution)
		if err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		if seeded {
			log.Info("seeded the demo institution", "institution", Institution, "sis_drop_folder", drop)
		}
	}
	return kit, nil
}

// Router builds the portal's Gin engine: /healthz, the SDK under /api
// with HTTP Basic sign-in by primary_id and PIN, and Alma's users API
// under /almaws/v1 with API keys.
func Router(kit *patronkit.Kit, log *slog.Logger) (*gin.Engine, error) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Clients reach the portal directly: their address is the peer's,
	// never one a header names (sign-in counts failures per address).
	if err := r.SetTrustedProxies(nil); err != nil {
		return nil, err
	}
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	err := ginapi.Mount(r.Group("/api"), kit, &ginapi.Options{
		Principal: ginapi.BasicPIN(kit.Patrons, Institution),
		Logger:    log,
	})
	if err != nil {
		return nil, err
	}
	// Alma's users API, for the scripts and connectors written for Alma,
	// with the API keys staff make under /api/api-keys.
	return r, almaapi.Mount(r.Group("/almaws/v1"), kit, &almaapi.Options{Logger: log})
}

// demoRetention are the demo's retention rules: loans a year after they
// closed (undergraduates' loans at SCIENCE after 30 days), fees two years,
// requests and SIS outcomes 90 days, notices 180 days.
var demoRetention = []privacy.RetentionRule{
	{Kind: privacy.RetainLoans, Anonymize: privacy.AnonymizeAfterDays, Days: 365},
	{Kind: privacy.RetainLoans, Library: "SCIENCE", UserGroup: "UNDERGRAD", Anonymize: privacy.AnonymizeAfterDays, Days: 30},
	{Kind: privacy.RetainFees, Anonymize: privacy.AnonymizeAfterDays, Days: 730},
	{Kind: privacy.RetainRequests, Anonymize: privacy.AnonymizeAfterDays, Days: 90},
	{Kind: privacy.RetainNotices, Anonymize: privacy.AnonymizeAfterDays, Days: 180},
	{Kind: privacy.RetainSISOutcomes, Anonymize: privacy.AnonymizeAfterDays, Days: 90},
}

// auditKey is the demo's audit key: PATRONKIT_AUDIT_KEY when set, else
// the one kept in data/audit.key, made (32 random bytes, hex, readable by
// the owner only) the first time.
func auditKey(data string) ([]byte, error) {
	if k := os.Getenv("PATRONKIT_AUDIT_KEY"); k != "" {
		return []byte(k), nil
	}
	path := filepath.Join(data, "audit.key")
	if b, err := os.ReadFile(path); err == nil {
		return bytes.TrimSpace(b), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	key := []byte(hex.EncodeToString(raw))
	if err := os.WriteFile(path, append(key, '\n'), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}
