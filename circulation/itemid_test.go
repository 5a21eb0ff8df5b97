package circulation_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
)

// An item is found by its internal id, the item_id its loans name, after
// its barcode changed too; another institution's id, or none, is NotFound.
func TestAnItemIsFoundByTheIDItsLoansName(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		l := f.checkOut(t, "student1", "B3")
		it, err := f.svc.ItemByID(f.ctx, "UNI", l.ItemID)
		if err != nil || it.Barcode != "B3" || it.ID != l.ItemID {
			t.Fatalf("by id: %+v, %v", it, err)
		}
		it.Barcode = "B3-NEW"
		if _, err := f.svc.ReplaceItem(f.ctx, "UNI", "B3", it.Version, it); err != nil {
			t.Fatal(err)
		}
		if it, err := f.svc.ItemByID(f.ctx, "UNI", " "+l.ItemID+" "); err != nil || it.Barcode != "B3-NEW" {
			t.Errorf("after the barcode changed: %+v, %v", it, err)
		}
		for _, id := range []string{"", "nothing", "\x00"} {
			_, err := f.svc.ItemByID(f.ctx, "UNI", id)
			wantKind(t, err, fault.NotFound)
		}
		_, err = f.svc.ItemByID(f.ctx, "OTHER", l.ItemID)
		wantKind(t, err, fault.NotFound)
	})
}
