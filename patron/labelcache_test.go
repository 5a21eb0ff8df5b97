package patron_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// An instance answers the code labels from memory for CodeLabelsCacheFor
// (30 seconds by default): its own changes show at once, another
// instance's once that time has passed, a change rolled back never; with
// a negative time every read goes to the database.
func TestCodeLabelsAreCachedUntilChangedHereOrTheirTimeIsUp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		other := func(o patron.Options) *patron.Service {
			o.Now, o.PINCost = f.clock.Now, bcrypt.MinCost
			s, err := patron.NewService(db, o)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		elsewhere, uncached := other(patron.Options{}), other(patron.Options{CodeLabelsCacheFor: -1})
		save := func(s *patron.Service, ctx context.Context, desc string) {
			t.Helper()
			if err := s.SaveLabels(ctx, "UNI", []patron.CodeLabel{{CodeTable: "user_group", Code: "UG", Description: desc}}); err != nil {
				t.Fatal(err)
			}
		}
		label := func(s *patron.Service, ctx context.Context) string {
			t.Helper()
			ls, err := s.CodeLabels(ctx, "UNI")
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) != 1 {
				t.Fatalf("labels %+v", ls)
			}
			return ls[0].Description
		}

		save(f.svc, f.ctx, "Undergraduate")
		if got := label(f.svc, f.ctx); got != "Undergraduate" {
			t.Fatalf("after saving here: %q", got)
		}
		ls, _ := f.svc.CodeLabels(f.ctx, "UNI")
		ls[0].Description = "changed by a caller"
		save(elsewhere, f.ctx, "Undergrad")
		if got := label(f.svc, f.ctx); got != "Undergraduate" {
			t.Errorf("another instance's change within the time: %q, want the cached label", got)
		}
		if got := label(uncached, f.ctx); got != "Undergrad" {
			t.Errorf("without a cache: %q", got)
		}
		f.clock.Advance(patron.DefaultCodeLabelsCacheFor + time.Second)
		if got := label(f.svc, f.ctx); got != "Undergrad" {
			t.Errorf("another instance's change after the time: %q", got)
		}

		save(f.svc, f.ctx, "UG students")
		if got := label(f.svc, f.ctx); got != "UG students" {
			t.Errorf("a change here: %q", got)
		}
		rolledBack := errors.New("rolled back")
		err := txctx.Transaction(f.ctx, db, func(ctx context.Context, _ *gorm.DB) error {
			save(f.svc, ctx, "never committed")
			if got := label(f.svc, ctx); got != "never committed" {
				t.Errorf("within the transaction that wrote it: %q", got)
			}
			return rolledBack
		})
		if !errors.Is(err, rolledBack) {
			t.Fatal(err)
		}
		if got := label(f.svc, f.ctx); got != "UG students" {
			t.Errorf("after a rollback: %q", got)
		}
	})
}
