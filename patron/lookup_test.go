package patron_test

import (
	"context"
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// Modules that keep rows about users find them by internal id, and hold
// them while they write.
func TestModulesFindAndHoldUsersByInternalID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		u, err := f.svc.Create(f.ctx, "UNI", jane())
		if err != nil {
			t.Fatal(err)
		}
		id, spelled, err := f.svc.ID(f.ctx, "UNI", " JDOE ")
		if err != nil || id != u.ID || spelled != "jdoe" {
			t.Fatalf("ID: %q %q %v", id, spelled, err)
		}
		got, err := f.svc.GetByID(f.ctx, "UNI", u.ID, patron.KindEmails)
		if err != nil || got.PrimaryID != "jdoe" || len(got.Emails) != 2 || len(got.Identifiers) != 0 {
			t.Fatalf("GetByID: %+v, %v", got, err)
		}
		for _, err := range []error{
			func() error { _, _, err := f.svc.ID(f.ctx, "OTHER", "jdoe"); return err }(),
			func() error { _, _, err := f.svc.ID(f.ctx, "UNI", "bad\x00id"); return err }(),
			func() error { _, err := f.svc.GetByID(f.ctx, "OTHER", u.ID); return err }(),
			f.svc.LockUser(f.ctx, "OTHER", u.ID),
		} {
			if !errors.Is(err, fault.ErrNotFound) {
				t.Errorf("another institution's user, or none: %v, want NotFound", err)
			}
		}
		// Held in a transaction, the user is found; deleted, it is not.
		if err := txctx.Transaction(f.ctx, db, func(ctx context.Context, _ *gorm.DB) error {
			return f.svc.LockUser(ctx, "UNI", u.ID)
		}); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Delete(f.ctx, "UNI", "jdoe"); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.LockUser(f.ctx, "UNI", u.ID); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("a deleted user: %v, want NotFound", err)
		}
	})
}

// Alma's all_unique lookup: the user holding an identifier of a value,
// whatever its type, in the institution; none when users of several
// types hold it.
func TestAUserIsFoundByAnIdentifierOfAnyType(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		for _, u := range []*patron.User{
			{PrimaryID: "a", FirstName: "A", LastName: "A", Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "B-1"}, {IDType: "UNIV_ID", Value: "shared"}}},
			{PrimaryID: "b", FirstName: "B", LastName: "B", Identifiers: []patron.Identifier{{IDType: "LIBRARY_ID", Value: "SHARED"}}},
		} {
			if _, err := f.svc.Create(f.ctx, "UNI", u); err != nil {
				t.Fatal(err)
			}
		}
		if u, err := f.svc.GetByAnyIdentifier(f.ctx, "UNI", " b-1 "); err != nil || u.PrimaryID != "a" {
			t.Errorf("by B-1: %+v, %v", u, err)
		}
		for _, v := range []string{"shared", "none", "bad\x00"} {
			if _, err := f.svc.GetByAnyIdentifier(f.ctx, "UNI", v); !errors.Is(err, fault.ErrNotFound) {
				t.Errorf("%q: %v, want NotFound", v, err)
			}
		}
		if _, err := f.svc.GetByAnyIdentifier(f.ctx, "OTHER", "B-1"); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("another institution: %v, want NotFound", err)
		}
	})
}
