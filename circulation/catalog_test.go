package circulation_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
)

// hostCatalog is a host's catalog of UNI: EXT-1 and EXT-2 are books of
// MAIN, EXT-BAD is in a library UNI does not have, EXT-ODD answers
// another item. It counts the questions.
type hostCatalog struct{ asked atomic.Int64 }

func (h *hostCatalog) Item(_ context.Context, inst, barcode string) (*circulation.Item, error) {
	h.asked.Add(1)
	if inst == "UNI" {
		switch strings.ToUpper(barcode) { // barcodes are any case

		case "EXT-1", "EXT-2":
			return &circulation.Item{Barcode: strings.ToUpper(barcode), Title: "From the catalog", Library: "MAIN", MaterialType: "BOOK"}, nil
		case "EXT-BAD":
			return &circulation.Item{Barcode: "EXT-BAD", Title: "Nowhere", Library: "NOWHERE"}, nil
		case "EXT-ODD":
			return &circulation.Item{Barcode: "B1", Title: "Another", Library: "MAIN"}, nil
		}
	}
	return nil, &fault.Error{Kind: fault.NotFound, Detail: "not in the catalog"}
}

func TestAnItemOfTheHostsCatalogCirculatesFromItsFirstUse(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		catalog := &hostCatalog{}
		f := newLoanFixtureWith(t, db, circulation.Options{Items: catalog})

		l := f.checkOut(t, "student1", "ext-1")
		if l.ItemBarcode != "EXT-1" || l.Library != "MAIN" {
			t.Fatalf("the loan %+v", l)
		}
		it, err := f.svc.Item(f.ctx, "UNI", "EXT-1")
		if err != nil || it.Title != "From the catalog" || it.Status != circulation.StatusOnLoan {
			t.Fatalf("the item %+v, %v", it, err)
		}
		if n := catalog.asked.Load(); n != 1 {
			t.Fatalf("the catalog was asked %d times, want once: the item is held from its first use", n)
		}
		// Items of the table are not asked of the catalog.
		f.checkOut(t, "student2", "B1")
		if n := catalog.asked.Load(); n != 1 {
			t.Fatalf("the catalog was asked about an item of the table (%d)", n)
		}

		// Not in the catalog either: not found, as before.
		if _, err := f.svc.CheckOut(f.ctx, "UNI", "student1", "NOPE", circulation.CheckOutOptions{}); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("an item nobody has: %v", err)
		}
		// Another institution gets nothing of UNI's catalog or table.
		if _, err := f.svc.Item(f.ctx, "OTHER", "EXT-1"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("another institution: %v", err)
		}
		// What the catalog gets wrong is its error, not the caller's, and
		// nothing is added.
		for _, bc := range []string{"EXT-BAD", "EXT-ODD"} {
			_, err := f.svc.Item(f.ctx, "UNI", bc)
			if _, isFault := fault.As(err); err == nil || isFault {
				t.Errorf("%s: %v, want an error of the catalog", bc, err)
			}
		}
		if page, err := f.svc.Items(f.ctx, "UNI", circulation.ItemQuery{Limit: 100}); err != nil || page.TotalRecordCount != 10 {
			t.Fatalf("items %+v, %v: B1..B9 and EXT-1 only", page, err)
		}

		// Asked for at once the first time: one item, the same for all.
		var wg sync.WaitGroup
		ids := make([]string, 4)
		errs := make([]error, 4)
		for i := range ids {
			wg.Go(func() {
				it, err := f.svc.Item(f.ctx, "UNI", "EXT-2")
				errs[i] = err
				if err == nil {
					ids[i] = it.ID
				}
			})
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Fatalf("concurrent first uses: %v, %v", ids, errs)
			}
		}
	})
}
