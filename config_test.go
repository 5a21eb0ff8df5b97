package patronkit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// Each test below gives one setting in the Config and watches the module
// behave by it.

func TestNewRefusesNegativeModuleSettings(t *testing.T) {
	db := dbtest.Open(t, sqldb.SQLite)
	for name, cfg := range map[string]patronkit.Config{
		"DueSoon":      {DueSoon: -time.Hour},
		"NoticeClaim":  {NoticeClaim: -time.Minute},
		"SISBatchSize": {SISBatchSize: -1},
		"SISLeaseTTL":  {SISLeaseTTL: -time.Second},
	} {
		if _, err := patronkit.New(db, &cfg); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("a negative %s: %v", name, err)
		}
	}
}

// dueSoonNotices lends an item for three weeks to a patron with an email,
// moves the clock to five days before the due date and answers how many
// due-soon notices the circulation jobs write.
func dueSoonNotices(t *testing.T, k *patronkittest.Kit) int {
	t.Helper()
	u := patronkittest.User(t, k, "UNI", func(u *patron.User) { u.Emails = []patron.Email{{EmailAddress: "pat@uni.example"}} })
	l := patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI"))
	k.Clock.Set(l.DueAt.Add(-5 * 24 * time.Hour))
	if _, err := k.Circulation.QueueDueNotices(context.Background()); err != nil {
		t.Fatal(err)
	}
	ns, err := k.Circulation.Notices(context.Background(), "UNI", u.PrimaryID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range ns {
		if x.Kind == circulation.NoticeDueSoon {
			n++
		}
	}
	return n
}

func TestConfigDueSoonSetsWhenTheDueSoonNoticeIsWritten(t *testing.T) {
	if n := dueSoonNotices(t, patronkittest.New(t)); n != 0 {
		t.Fatalf("%d due-soon notices five days ahead with the default of 2 days", n)
	}
	week := patronkittest.New(t, func(c *patronkit.Config) { c.DueSoon = 7 * 24 * time.Hour })
	if n := dueSoonNotices(t, week); n != 1 {
		t.Fatalf("%d due-soon notices five days ahead with DueSoon a week", n)
	}
}

func TestConfigNoticeClaimSetsWhenAStuckNoticeIsSentAgain(t *testing.T) {
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	// The first sender stops midway: it holds its notice until the end of
	// the test.
	stuck := circulation.NotifierFunc(func(ctx context.Context, m circulation.Message) error {
		calls++
		if calls == 1 {
			close(entered)
			<-release
		}
		return nil
	})
	k := patronkittest.New(t, func(c *patronkit.Config) { c.Email, c.NoticeClaim = stuck, time.Hour })
	u := patronkittest.User(t, k, "UNI", func(u *patron.User) { u.Emails = []patron.Email{{EmailAddress: "pat@uni.example"}} })
	patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI"))
	first := make(chan error, 1)
	go func() {
		_, err := k.Circulation.SendNotices(ctx)
		first <- err
	}()
	t.Cleanup(func() {
		close(release)
		if err := <-first; err != nil {
			t.Error(err)
		}
	})
	<-entered

	k.Clock.Advance(30 * time.Minute) // past the default claim, within the Config's
	if n, err := k.Circulation.SendNotices(ctx); err != nil || n != 0 {
		t.Fatalf("after 30 minutes another sender sent %d (%v): the claim lasts an hour", n, err)
	}
	k.Clock.Advance(31 * time.Minute)
	if n, err := k.Circulation.SendNotices(ctx); err != nil || n != 1 {
		t.Fatalf("after an hour another sender sent %d (%v), want the stuck notice", n, err)
	}
}

func TestConfigItemsIsTheHostsCatalog(t *testing.T) {
	catalog := circulation.ItemLookupFunc(func(_ context.Context, inst, barcode string) (*circulation.Item, error) {
		if strings.EqualFold(barcode, "EXT-1") {
			return &circulation.Item{Barcode: "EXT-1", Title: "From the catalog", Library: "MAIN"}, nil
		}
		return nil, &fault.Error{Kind: fault.NotFound, Detail: "not in the catalog"}
	})
	k := patronkittest.New(t, func(c *patronkit.Config) { c.Items = catalog })
	patronkittest.Library(t, k, "UNI", "MAIN")
	l := patronkittest.Loan(t, k, "UNI", patronkittest.User(t, k, "UNI"), &circulation.Item{Barcode: "ext-1"})
	it, err := k.Circulation.Item(context.Background(), "UNI", "EXT-1")
	if err != nil || it.Title != "From the catalog" || it.Status != circulation.StatusOnLoan || l.ItemBarcode != "EXT-1" {
		t.Fatalf("the catalog's item %+v (%v), lent %+v", it, err, l)
	}
}

// sisUsers is an Alma SIS file with users s1..sN.
func sisUsers(n int) string {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<users>\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "<user><primary_id>s%d</primary_id><first_name>S</first_name><last_name>Student</last_name></user>\n", i)
	}
	b.WriteString("</users>\n")
	return b.String()
}

// onCreated is a listener that hands over the primary_id of each user
// created, holding the change (and the SIS run making it) until the test
// takes it.
type onCreated chan string

func (o onCreated) UserChanged(_ context.Context, c patron.Change) {
	if c.Action == patron.Created {
		o <- c.After.PrimaryID
	}
}

// holdRun is a listener that holds the SIS run making the first user
// created until the test releases it.
type holdRun struct {
	reached, release chan struct{}
	once             sync.Once
}

func (h *holdRun) UserChanged(_ context.Context, c patron.Change) {
	if c.Action == patron.Created {
		h.once.Do(func() {
			close(h.reached)
			<-h.release
		})
	}
}

func TestConfigSISTempDirHoldsTheUploadsWhileTheyAreRead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	hold := &holdRun{reached: make(chan struct{}), release: make(chan struct{})}
	k := patronkittest.New(t, func(c *patronkit.Config) {
		c.SISTempDir, c.Listeners = dir, []patron.Listener{hold}
	})
	if _, err := k.SIS.CreateProfile(ctx, "UNI", &sis.Profile{Code: "REG", Source: sis.Upload, Mode: sis.ModeSynchronize}); err != nil {
		t.Fatal(err)
	}
	r, err := k.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{Upload: strings.NewReader(sisUsers(1)), UploadName: "users.xml"})
	if err != nil {
		t.Fatal(err)
	}
	<-hold.reached // the run is applying the file, and waits
	spooled, _ := filepath.Glob(filepath.Join(dir, "patronkit-sis-*"))
	close(hold.release)
	if r, err = k.SIS.Wait(ctx, r.ID); err != nil || r.Created != 1 {
		t.Fatalf("run %+v, %v", r, err)
	}
	if len(spooled) != 1 {
		t.Fatalf("files in SISTempDir while the run read the upload: %v", spooled)
	}
	if _, err := os.Stat(spooled[0]); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the upload stays in SISTempDir after the run: %v", err)
	}
}

func TestConfigSISLeaseTTLAndInstanceHoldAProfile(t *testing.T) {
	ctx := context.Background()
	srcA, srcB := patronkittest.NewSource("registrar"), patronkittest.NewSource("registrar")
	srcA.Add("users.xml", sisUsers(2))
	srcB.Add("users.xml", sisUsers(2))
	srcA.Hold()
	a := patronkittest.New(t, func(c *patronkit.Config) {
		c.Sources, c.SISLeaseTTL, c.Instance = []sis.Source{srcA}, time.Hour, "desk-a"
	})
	t.Cleanup(srcA.Release) // before a closes, waiting for its run
	b := patronkittest.On(t, a.DB, func(c *patronkit.Config) { c.Sources, c.Now = []sis.Source{srcB}, a.Clock.Now })
	if _, err := a.SIS.CreateProfile(ctx, "UNI", &sis.Profile{Code: "REG", Source: "registrar", Mode: sis.ModeSynchronize}); err != nil {
		t.Fatal(err)
	}
	held, err := a.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var lease struct {
		Holder    string
		ExpiresAt time.Time
	}
	if err := a.DB.Table("pk_sis_leases").Select("holder, expires_at").Where("institution = ? AND profile = ?", "UNI", "REG").Take(&lease).Error; err != nil {
		t.Fatal(err)
	}
	if lease.Holder != "desk-a/"+held.ID || !lease.ExpiresAt.Equal(patronkittest.Start.Add(time.Hour)) {
		t.Fatalf("the lease %+v, want held by desk-a/%s until %s", lease, held.ID, patronkittest.Start.Add(time.Hour))
	}

	// Instance a stops answering: b waits out the hour a's lease lasts.
	a.Clock.Advance(30 * time.Minute)
	if _, err := b.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{}); !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("the profile taken over within its lease: %v", err)
	}
	a.Clock.Advance(31 * time.Minute)
	r, err := b.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{})
	if err != nil {
		t.Fatalf("the profile is not taken over once the lease ran out: %v", err)
	}
	if r, err = b.SIS.Wait(ctx, r.ID); err != nil || r.Status != sis.RunSucceeded || r.Created != 2 {
		t.Fatalf("the run that took over %+v, %v", r, err)
	}
	if gone, err := b.SIS.GetRun(ctx, "UNI", held.ID); err != nil || gone.Status != sis.RunFailed {
		t.Fatalf("the run of the instance that stopped %+v, %v", gone, err)
	}
}

// trickle is a source of one file, users.xml, that hands out the file up
// to the end of its second user, then the rest only once the test opens
// the gate.
type trickle struct {
	content string
	gate    chan struct{}
}

func (tr *trickle) Name() string { return "trickle" }
func (tr *trickle) List(context.Context) ([]sis.File, error) {
	return []sis.File{{Name: "users.xml", Size: int64(len(tr.content))}}, nil
}
func (tr *trickle) Done(context.Context, string, bool) error { return nil }
func (tr *trickle) Open(context.Context, string) (io.ReadCloser, error) {
	cut := strings.Index(tr.content, "<primary_id>s3<")
	cut = strings.LastIndex(tr.content[:cut], "<user>")
	return io.NopCloser(io.MultiReader(strings.NewReader(tr.content[:cut]), gated{tr.gate, strings.NewReader(tr.content[cut:])})), nil
}

type gated struct {
	gate <-chan struct{}
	r    io.Reader
}

func (g gated) Read(p []byte) (int, error) {
	<-g.gate
	return g.r.Read(p)
}

func TestConfigSISBatchSizeAppliesUsersInBatches(t *testing.T) {
	ctx := context.Background()
	src := &trickle{content: sisUsers(4), gate: make(chan struct{})}
	created := make(onCreated, 4)
	k := patronkittest.New(t, func(c *patronkit.Config) {
		c.Sources, c.SISBatchSize, c.Listeners = []sis.Source{src}, 2, []patron.Listener{created}
	})
	if _, err := k.SIS.CreateProfile(ctx, "UNI", &sis.Profile{Code: "REG", Source: src.Name(), Mode: sis.ModeSynchronize}); err != nil {
		t.Fatal(err)
	}
	r, err := k.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The first batch, s1 and s2, is written while the rest of the file
	// has not come.
	for _, want := range []string{"s1", "s2"} {
		select {
		case id := <-created:
			if id != want {
				t.Fatalf("created %s, want %s", id, want)
			}
		case <-time.After(10 * time.Second):
			close(src.gate)
			t.Fatalf("%s was not written before the rest of the file came: batches are not of 2", want)
		}
	}
	close(src.gate)
	if r, err = k.SIS.Wait(ctx, r.ID); err != nil || r.Created != 4 {
		t.Fatalf("run %+v, %v", r, err)
	}
}

func TestAuditRetentionNeedsTheKeyAndDropsOldEntries(t *testing.T) {
	db := dbtest.Open(t, sqldb.SQLite)
	for cfg, want := range map[*patronkit.Config]string{
		{AuditRetention: -time.Hour}:                      "AuditRetention",
		{AuditRetention: time.Hour}:                       "AuditKey",
		{AuditRetention: time.Hour, AuditKey: []byte("")}: "AuditKey",
	} {
		if _, err := patronkit.New(db, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("AuditRetention %v: %v", cfg.AuditRetention, err)
		}
	}
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u := patronkittest.User(t, k, "UNI") // entry 1
		k.Clock.Advance(48 * time.Hour)
		if _, err := k.Patrons.Get(ctx, "UNI", u.PrimaryID); err != nil { // entry 2
			t.Fatal(err)
		}
		k.Start(ctx)
		deadline := time.Now().Add(time.Minute)
		for {
			es, err := k.Privacy.Entries(ctx, "UNI", 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) == 1 && es[0].Seq == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("entries kept: %+v", es)
			}
			runtime.Gosched()
		}
		if b, err := k.Privacy.Verify(ctx, "UNI"); err != nil || b != nil {
			t.Fatalf("Verify after the retention: %v %v", b, err)
		}
	}, func(c *patronkit.Config) {
		c.AuditRetention = 24 * time.Hour
		c.AuditKey = []byte("the library's secret")
	})
}

func TestNoAuditTrailKeepsNothingButTellsTheHostsSink(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u := patronkittest.User(t, k, "UNI")
		if _, err := k.Patrons.Get(ctx, "UNI", u.PrimaryID); err != nil {
			t.Fatal(err)
		}
		es, err := k.Privacy.Entries(ctx, "UNI", 0, 10)
		if err != nil || len(es) != 0 {
			t.Fatalf("entries on the trail: %+v %v", es, err)
		}
	}, func(c *patronkit.Config) {
		c.NoAuditTrail = true
	})
	var told []string
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		told = nil
		u := patronkittest.User(t, k, "UNI")
		if _, err := k.Patrons.Get(context.Background(), "UNI", u.PrimaryID); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(told, []string{patron.AuditCreate, patron.AuditRead}) {
			t.Fatalf("the host's sink was told %v", told)
		}
	}, func(c *patronkit.Config) {
		c.NoAuditTrail = true
		c.Audit = patron.AuditFunc(func(_ context.Context, e patron.AuditEvent) { told = append(told, e.Action) })
	})
}

// The purge needs the audit key to run on its own, refuses negative
// options, and Start runs it every PurgeEvery.
func TestStartPurgesEveryPurgeEvery(t *testing.T) {
	db := dbtest.Open(t, sqldb.SQLite)
	for cfg, want := range map[*patronkit.Config]string{
		{PurgeEvery: time.Hour}:                                                  "AuditKey",
		{Purge: privacy.PurgeOptions{GraceDays: -1}}:                             "GraceDays",
		{Purge: privacy.PurgeOptions{FeeThreshold: map[string]int64{"USD": -1}}}: "threshold",
	} {
		if _, err := patronkit.New(db, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v", cfg.Purge, err)
		}
	}
	// A listener hears of each deletion once it is committed.
	deleted := make(chan string, 4)
	k := patronkittest.New(t, func(c *patronkit.Config) {
		c.AuditKey, c.PurgeEvery = []byte("a key"), 10*time.Millisecond
		c.Listeners = []patron.Listener{patron.ListenerFunc(func(_ context.Context, ch patron.Change) {
			if ch.Action == patron.Deleted {
				deleted <- ch.Before.PrimaryID
			}
		})}
	})
	gone := patronkittest.User(t, k, "UNI", func(u *patron.User) { u.PurgeDate = "2026-08-01" })
	kept := patronkittest.User(t, k, "UNI", func(u *patron.User) { u.PurgeDate = "2026-09-01" })
	ctx := context.Background()
	k.Start(ctx)
	select {
	case id := <-deleted:
		if id != gone.PrimaryID {
			t.Fatalf("Start purged %s, want %s", id, gone.PrimaryID)
		}
	case <-time.After(time.Minute):
		t.Fatal("Start did not purge")
	}
	if _, _, err := k.Patrons.ID(ctx, "UNI", kept.PrimaryID); err != nil {
		t.Fatalf("a user purged on their purge date: %v", err)
	}
}
