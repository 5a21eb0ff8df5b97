package sis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/go-playground/validator/v10"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dberr"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// Options configures a Service.
type Options struct {
	// Patrons applies the incoming users. Required.
	Patrons *patron.Service
	// Sources are where profiles' files come from, by Name. The upload
	// source (files sent through the API) needs no entry.
	Sources []Source
	// Limits guard against hostile files. Default: see Limits.
	Limits Limits
	// Formats are the file formats runs read, chosen by the profile's
	// format or else by the file's extension. Default: BuiltinFormats();
	// a host adds its own with append(sis.BuiltinFormats(), mine).
	Formats Formats
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger logs runs. Default: slog.Default().
	Logger *slog.Logger
	// BatchSize is how many users are read before they are applied and the
	// run's progress is saved. Default: 200.
	BatchSize int
	// LeaseTTL is how long a run's hold on its profile lasts unless renewed;
	// a crashed instance's runs are taken over after it. Default: 2 minutes.
	LeaseTTL time.Duration
	// Instance names this process in leases. Default: random.
	Instance string
	// TempDir holds uploaded files while their run reads them. Default:
	// os.TempDir().
	TempDir string
}

// Service keeps integration profiles and runs them. Its calls read and
// write within the transaction their context carries, when it carries one
// (patronkit.WithTx, Kit.InTx); a run started within one starts when it
// commits (see StartRun), and then works in transactions of its own, as
// the scheduler's runs do.
type Service struct {
	db        *gorm.DB
	patrons   *patron.Service
	sources   map[string]Source
	limits    Limits
	formats   Formats
	now       func() time.Time
	log       *slog.Logger
	batch     int
	leaseTTL  time.Duration
	instance  string
	tempDir   string
	validate  *validator.Validate
	running   sync.WaitGroup
	mu        sync.Mutex
	finished  map[string]chan struct{}
	closeOnce sync.Once
	stop      chan struct{}
}

// NewService returns a Service over db. It changes none of db's settings.
func NewService(db *gorm.DB, o Options) (*Service, error) {
	if db == nil || o.Patrons == nil {
		return nil, errors.New("sis: NewService needs a database and Options.Patrons")
	}
	if o.Formats == nil {
		o.Formats = BuiltinFormats()
	}
	if err := o.Formats.check(); err != nil {
		return nil, err
	}
	s := &Service{
		db:       db.Session(&gorm.Session{NewDB: true}),
		patrons:  o.Patrons,
		sources:  map[string]Source{},
		limits:   o.Limits.withDefaults(),
		formats:  slices.Clone(o.Formats),
		now:      o.Now,
		log:      o.Logger,
		batch:    o.BatchSize,
		leaseTTL: o.LeaseTTL,
		instance: o.Instance,
		tempDir:  o.TempDir,
		validate: newProfileValidator(),
		finished: map[string]chan struct{}{},
		stop:     make(chan struct{}),
	}
	for _, src := range o.Sources {
		if src == nil || src.Name() == "" || src.Name() == Upload {
			return nil, fmt.Errorf("sis: a source needs a name other than %q", Upload)
		}
		if _, dup := s.sources[src.Name()]; dup {
			return nil, fmt.Errorf("sis: two sources are named %q", src.Name())
		}
		s.sources[src.Name()] = src
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.batch <= 0 {
		s.batch = 200
	}
	if s.leaseTTL <= 0 {
		s.leaseTTL = 2 * time.Minute
	}
	if s.instance == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		s.instance = "instance-" + hex.EncodeToString(b[:])
	}
	return s, nil
}

func (s *Service) sourceNames() []string {
	names := []string{Upload}
	for n := range s.sources {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// conn is what the service reads and writes through: the transaction ctx
// carries (the host's, or one the service opened), or its own database.
func (s *Service) conn(ctx context.Context) *gorm.DB { return txctx.DB(ctx, s.db) }

// inTx runs fn in a transaction: a savepoint of the one ctx carries, or a
// transaction of its own. fn's ctx carries it.
func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context, tx *gorm.DB) error) error {
	return txctx.Transaction(ctx, s.db, fn)
}

// translate maps database errors to the service's own (see dberr.Translate).
func (s *Service) translate(err error) error {
	return dberr.Translate(s.db, err, "the record conflicts with one written at the same time")
}

// Close stops the scheduler and waits for the runs of this process to end.
func (s *Service) Close() {
	s.closeOnce.Do(func() { close(s.stop) })
	s.running.Wait()
}
