package circulation_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
)

// A waiting request's pickup library and not-needed-after date change
// under the rules of placing one: a library owning the item (or an item
// of the title), any library where the terms allow; a date not in the
// past, or none. A request on the hold shelf is Refused, unknown values
// Invalid, an unknown request NotFound, and a refusal changes nothing.
func TestAWaitingRequestsPickupAndDateChangeUnderThePlacingRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withRequests(t)
		f.checkOut(t, "student2", "B1")
		f.checkOut(t, "student2", "T1-SCI")
		f.checkOut(t, "faculty1", "T1-MAIN")
		fac := f.request(t, "faculty1", circulation.NewRequest{Barcode: "B1"})
		stu := f.request(t, "student1", circulation.NewRequest{Barcode: "B1"})
		title := f.request(t, "student1", circulation.NewRequest{TitleID: "T1"})
		change := func(pid, id string, ch circulation.RequestChange) (*circulation.Request, error) {
			return f.svc.UpdateRequest(f.ctx, "UNI", pid, id, ch)
		}
		stored := func(pid, id string) *circulation.Request {
			t.Helper()
			r, err := f.svc.Request(f.ctx, "UNI", pid, id)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}

		r, err := change("faculty1", fac.ID, circulation.RequestChange{PickupLibrary: ptr("science"), NotNeededAfter: ptr("2026-12-31")})
		if err != nil || r.PickupLibrary != "SCIENCE" || r.NotNeededAfter != "2026-12-31" || r.Version != fac.Version+1 || r.Place != 1 {
			t.Fatalf("faculty pick up anywhere: %+v, %v", r, err)
		}
		if s := stored("faculty1", fac.ID); s.PickupLibrary != "SCIENCE" || s.NotNeededAfter != "2026-12-31" {
			t.Errorf("stored: %+v", s)
		}
		if r, err := change("faculty1", fac.ID, circulation.RequestChange{NotNeededAfter: ptr("")}); err != nil || r.NotNeededAfter != "" || r.PickupLibrary != "SCIENCE" {
			t.Errorf("the date taken away: %+v, %v", r, err)
		}
		if r, err := change("faculty1", fac.ID, circulation.RequestChange{}); err != nil || r.Version != fac.Version+2 {
			t.Errorf("no change: %+v, %v", r, err)
		}

		// Undergraduates pick up where the item is; a title's items are
		// at MAIN and SCIENCE.
		e := wantKind(t, second(change("student1", stu.ID, circulation.RequestChange{PickupLibrary: ptr("SCIENCE")})), fault.Invalid)
		if e.Fields[0].Field != "pickup_library" {
			t.Errorf("%+v", e.Fields)
		}
		if r, err := change("student1", title.ID, circulation.RequestChange{PickupLibrary: ptr("SCIENCE")}); err != nil || r.PickupLibrary != "SCIENCE" {
			t.Errorf("a title request picked up at a library owning a copy: %+v, %v", r, err)
		}
		wantKind(t, second(change("student1", stu.ID, circulation.RequestChange{PickupLibrary: ptr("NOWHERE")})), fault.Invalid)
		wantKind(t, second(change("student1", stu.ID, circulation.RequestChange{PickupLibrary: ptr("")})), fault.Invalid)
		wantKind(t, second(change("student1", stu.ID, circulation.RequestChange{NotNeededAfter: ptr("2026-08-31")})), fault.Invalid)
		wantKind(t, second(change("student1", stu.ID, circulation.RequestChange{NotNeededAfter: ptr("31.12.2026")})), fault.Invalid)
		wantKind(t, second(change("student1", "no-such-request", circulation.RequestChange{NotNeededAfter: ptr("2026-12-31")})), fault.NotFound)
		if s := stored("student1", stu.ID); s.PickupLibrary != "MAIN" || s.NotNeededAfter != "" || s.Version != stu.Version {
			t.Errorf("after the refusals: %+v", s)
		}

		// On the hold shelf the item waits where it is.
		held := f.request(t, "student1", circulation.NewRequest{Barcode: "B2"})
		if held.Status != circulation.RequestOnHoldShelf {
			t.Fatalf("the request of an item on the shelf: %+v", held)
		}
		wantKind(t, second(change("student1", held.ID, circulation.RequestChange{NotNeededAfter: ptr("2026-12-31")})), fault.Refused)
	})
}

func second[T any](_ T, err error) error { return err }
