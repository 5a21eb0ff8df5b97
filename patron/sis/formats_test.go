package sis_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// tabFormat is a host's own format: one user a line, primary_id, first
// and last name separated by tabs.
type tabFormat struct{}

func (tabFormat) Name() string { return "tab" }

func (tabFormat) Decode(ctx context.Context, r io.Reader, emit func(sis.Record) error) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), "\t")
		rec := sis.Record{Ref: "line " + strconv.Itoa(n)}
		if len(f) != 3 {
			rec.Err = io.ErrUnexpectedEOF
		} else {
			rec.User = &patron.User{PrimaryID: f[0], FirstName: f[1], LastName: f[2]}
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
	return sc.Err()
}

// TestAHostsOwnFormatIsChosenByProfileOrExtension: the formats a service
// reads are configuration, not a registry filled at start: a host's format
// beside the built-in ones is chosen by a profile's format or by the file
// extension, a format no service knows is refused when the profile is
// written, and a list that names a format twice is refused by NewService
// (an error, never a panic).
func TestAHostsOwnFormatIsChosenByProfileOrExtension(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		formats := append(sis.BuiltinFormats(), sis.FileFormat{Name: "tab", Extensions: []string{".tsv"}, Reader: func(sis.Limits) sis.Format { return tabFormat{} }})
		s, err := sis.NewService(db, sis.Options{Patrons: e.patrons, Formats: formats, Now: e.clock.Now, TempDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)

		load := func(profile, file, body string) *sis.Run {
			t.Helper()
			r, err := s.StartRun(e.ctx, "UNI", profile, sis.RunOptions{Upload: strings.NewReader(body), UploadName: file})
			if err != nil {
				t.Fatal(err)
			}
			done, err := s.Wait(e.ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			return done
		}
		if _, err := s.CreateProfile(e.ctx, "UNI", &sis.Profile{Code: "TAB", Source: sis.Upload, Mode: sis.ModeImport, Format: "tab"}); err != nil {
			t.Fatal(err)
		}
		if r := load("TAB", "export.txt", "t1\tTia\tTab\n"); r.Created != 1 {
			t.Fatalf("the profile's own format: %+v", r)
		}
		if _, err := s.CreateProfile(e.ctx, "UNI", &sis.Profile{Code: "ANY", Source: sis.Upload, Mode: sis.ModeImport}); err != nil {
			t.Fatal(err)
		}
		if r := load("ANY", "export.TSV", "t2\tTom\tTab\n"); r.Created != 1 {
			t.Fatalf("chosen by extension: %+v", r)
		}
		if u, err := e.patrons.Get(e.ctx, "UNI", "t2"); err != nil || u.LastName != "Tab" {
			t.Fatalf("t2: %v %v", u, err)
		}

		// The default service does not know it.
		_, err = e.sis.CreateProfile(e.ctx, "UNI", &sis.Profile{Code: "TAB", Source: sis.Upload, Mode: sis.ModeImport, Format: "tab"})
		if pe, ok := fault.As(err); !ok || pe.Kind != fault.Invalid || len(pe.Fields) != 1 || pe.Fields[0].Field != "format" {
			t.Fatalf("a profile naming an unknown format: %v", err)
		}

		for _, bad := range []sis.Formats{
			append(sis.BuiltinFormats(), sis.FileFormat{Name: "xml", Reader: sis.XML}),
			append(sis.BuiltinFormats(), sis.FileFormat{Name: "other", Extensions: []string{"XML"}, Reader: sis.XML}),
			{{Name: "tab"}},
		} {
			if _, err := sis.NewService(db, sis.Options{Patrons: e.patrons, Formats: bad}); err == nil {
				t.Errorf("NewService took %v", bad)
			}
		}
	})
}
