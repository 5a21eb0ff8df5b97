package circulation_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// withRequests gives the loan fixture terms that allow requests
// (undergraduates pick up at the owning library, three days on the hold
// shelf; faculty anywhere, or by personal delivery for 5.00), a library
// SCIENCE and two copies of title T1: T1-MAIN and T1-SCI.
func (f *loanFixture) withRequests(t *testing.T) {
	t.Helper()
	set, err := f.svc.Rules(f.ctx, "UNI")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ReplaceRules(f.ctx, "UNI", set.Version, []circulation.Rule{
		{Name: "Faculty", UserGroup: "FACULTY", Terms: circulation.Terms{FixedDueDate: "2026-12-18", Renewals: 1, RequestsAllowed: true,
			PickupAnyLibrary: true, PersonalDelivery: true, DeliveryFee: 500, Currency: "USD"}},
		{Name: "Undergraduates", UserGroup: "UNDERGRAD", Terms: circulation.Terms{LoanPeriod: 4, LoanPeriodUnit: "weeks",
			Renewals: 2, RenewalPeriod: 2, RenewalPeriodUnit: "weeks", MaxLoans: 3, RequestsAllowed: true, HoldShelfDays: 3}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	f.library(t, "UNI", circulation.Library{Code: "SCIENCE", Name: "Science Library"})
	f.item(t, "UNI", circulation.Item{Barcode: "T1-MAIN", Title: "Cosmos", Library: "MAIN", TitleID: "T1"})
	f.item(t, "UNI", circulation.Item{Barcode: "T1-SCI", Title: "Cosmos", Library: "SCIENCE", TitleID: "T1"})
}

func (f *loanFixture) request(t *testing.T, primaryID string, in circulation.NewRequest) *circulation.Request {
	t.Helper()
	r, err := f.svc.PlaceRequest(f.ctx, "UNI", primaryID, in)
	if err != nil {
		t.Fatalf("%s requests %+v: %v", primaryID, in, err)
	}
	return r
}

func (f *loanFixture) itemStatus(t *testing.T, barcode string) string {
	t.Helper()
	it, err := f.svc.Item(f.ctx, "UNI", barcode)
	if err != nil {
		t.Fatal(err)
	}
	return it.Status
}

func TestRequestsQueueAndTheHoldShelf(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withRequests(t)
		l := f.checkOut(t, "student1", "B1")

		r1 := f.request(t, "faculty1", circulation.NewRequest{Barcode: "b1"})
		if r1.Status != circulation.RequestWaiting || r1.Place != 1 || r1.Level != circulation.RequestItem || r1.Barcode != "B1" ||
			r1.PickupLibrary != "MAIN" || r1.Title != "Book 1" {
			t.Fatalf("first request %+v", r1)
		}
		if q, err := f.svc.Queue(f.ctx, "UNI", "b1"); err != nil || q.Place != 2 || q.Barcode != "B1" {
			t.Fatalf("place before the second request: %+v, %v", q, err)
		}
		f.clock.Set(utc(2026, 9, 1, 10, 0))
		r2 := f.request(t, "student2", circulation.NewRequest{Barcode: "B1", NotNeededAfter: "2026-12-31"})
		if r2.Place != 2 {
			t.Fatalf("second request %+v", r2)
		}

		// The borrower cannot renew what others wait for.
		f.clock.Set(utc(2026, 9, 25, 10, 0))
		_, err := f.svc.Renew(f.ctx, "UNI", l.ID)
		wantReasons(t, err, "item B1 is requested by another patron")

		// The return puts it on the hold shelf for the first in the queue.
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "B1"); err != nil {
			t.Fatal(err)
		}
		if st := f.itemStatus(t, "B1"); st != circulation.StatusOnHoldShelf {
			t.Fatalf("returned item is %s", st)
		}
		held, err := f.svc.Requests(f.ctx, "UNI", "faculty1", true)
		if err != nil || len(held) != 1 || held[0].Status != circulation.RequestOnHoldShelf || held[0].Place != 0 ||
			held[0].HoldUntil == nil || !held[0].HoldUntil.Equal(utc(2026, 10, 2, 10, 0)) {
			t.Fatalf("faculty1's requests %+v, %v", held, err)
		}
		queue, err := f.svc.ItemRequests(f.ctx, "UNI", "B1")
		if err != nil || len(queue) != 2 || queue[0].ID != r1.ID || queue[1].ID != r2.ID || queue[1].Place != 1 {
			t.Fatalf("B1's queue %+v, %v", queue, err)
		}
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student2", "B1", circulation.CheckOutOptions{})
		wantReasons(t, err, "item B1 is on the hold shelf for another patron")

		// Its patron borrows it: the request is fulfilled.
		f.checkOut(t, "faculty1", "B1")
		all, err := f.svc.Requests(f.ctx, "UNI", "faculty1", false)
		if err != nil || len(all) != 1 || all[0].Status != circulation.RequestFulfilled || all[0].ClosedAt == nil {
			t.Fatalf("faculty1's requests %+v, %v", all, err)
		}
		if active, _ := f.svc.Requests(f.ctx, "UNI", "faculty1", true); len(active) != 0 {
			t.Fatalf("active requests %+v", active)
		}
	})
}

func TestATitleRequestTakesTheFirstCopyBack(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withRequests(t)
		f.checkOut(t, "student1", "T1-MAIN")
		f.checkOut(t, "student2", "T1-SCI")
		r := f.request(t, "faculty1", circulation.NewRequest{TitleID: "T1", PickupLibrary: "science"})
		if r.Level != circulation.RequestTitle || r.Barcode != "" || r.TitleID != "T1" || r.PickupLibrary != "SCIENCE" || r.Place != 1 {
			t.Fatalf("title request %+v", r)
		}
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "T1-SCI"); err != nil {
			t.Fatal(err)
		}
		got, err := f.svc.Request(f.ctx, "UNI", "faculty1", r.ID)
		if err != nil || got.Status != circulation.RequestOnHoldShelf || got.Barcode != "T1-SCI" {
			t.Fatalf("title request after a return %+v, %v", got, err)
		}
		if st := f.itemStatus(t, "T1-SCI"); st != circulation.StatusOnHoldShelf {
			t.Fatalf("T1-SCI is %s", st)
		}
		// The other copy comes back to the shelf: nobody else waits.
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "T1-MAIN"); err != nil {
			t.Fatal(err)
		}
		if st := f.itemStatus(t, "T1-MAIN"); st != circulation.StatusAvailable {
			t.Fatalf("T1-MAIN is %s", st)
		}
		// A copy on the shelf is held at once.
		now := f.request(t, "student2", circulation.NewRequest{TitleID: "T1"})
		if now.Status != circulation.RequestOnHoldShelf || now.Barcode != "T1-MAIN" {
			t.Fatalf("request of a title on the shelf %+v", now)
		}
	})
}

func TestRequestOptionsAndRefusals(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withRequests(t)
		fac, err := f.patrons.AddAddress(f.ctx, "UNI", "faculty1", patron.Address{Line1: "1 College Road", City: "Springfield", PostalCode: "01101"})
		if err != nil {
			t.Fatal(err)
		}
		f.checkOut(t, "student2", "B2")

		for _, c := range []struct {
			who   string
			in    circulation.NewRequest
			field string
		}{
			{"student1", circulation.NewRequest{}, "barcode"},
			{"student1", circulation.NewRequest{Barcode: "B2", TitleID: "T1"}, "barcode"},
			{"student1", circulation.NewRequest{Barcode: "B2", NotNeededAfter: "2026-08-31"}, "not_needed_after"},
			{"student1", circulation.NewRequest{Barcode: "B2", NotNeededAfter: "31/12/2026"}, "not_needed_after"},
			{"student1", circulation.NewRequest{Barcode: "B2", PickupLibrary: "SCIENCE"}, "pickup_library"},
			{"student1", circulation.NewRequest{Barcode: "B2", PickupLibrary: "MOON"}, "pickup_library"},
			{"student1", circulation.NewRequest{Barcode: "B2", DeliveryAddressID: fac.Addresses[0].ID}, "delivery_address_id"},
			{"faculty1", circulation.NewRequest{Barcode: "B2", DeliveryAddressID: "no-such-address"}, "delivery_address_id"},
			{"faculty1", circulation.NewRequest{Barcode: "B2", DeliveryAddressID: fac.Addresses[0].ID, PickupLibrary: "MAIN"}, "delivery_address_id"},
		} {
			_, err := f.svc.PlaceRequest(f.ctx, "UNI", c.who, c.in)
			pe := wantKind(t, err, fault.Invalid)
			if !slices.ContainsFunc(pe.Fields, func(fe fault.FieldError) bool { return fe.Field == c.field }) {
				t.Errorf("%s %+v: fields %+v, want %s", c.who, c.in, pe.Fields, c.field)
			}
		}
		_, err = f.svc.PlaceRequest(f.ctx, "UNI", "student1", circulation.NewRequest{Barcode: "NOPE"})
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.PlaceRequest(f.ctx, "UNI", "student1", circulation.NewRequest{TitleID: "NOPE"})
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.PlaceRequest(f.ctx, "UNI", "student2", circulation.NewRequest{Barcode: "B2"})
		wantReasons(t, err, "student2 has item B2 on loan")
		if rs, _ := f.svc.Requests(f.ctx, "UNI", "student1", false); len(rs) != 0 {
			t.Fatalf("refused requests were written: %+v", rs)
		}

		// Faculty: personal delivery, with its fee; a second request for
		// the same item is refused.
		r := f.request(t, "faculty1", circulation.NewRequest{Barcode: "B2", DeliveryAddressID: fac.Addresses[0].ID})
		if r.DeliveryAddress != "1 College Road, 01101 Springfield" || r.PickupLibrary != "" || r.FeeID == "" {
			t.Fatalf("delivery request %+v", r)
		}
		f.wantBalance(t, "faculty1", map[string]int64{"USD": 500})
		_, err = f.svc.PlaceRequest(f.ctx, "UNI", "faculty1", circulation.NewRequest{Barcode: "B2"})
		wantReasons(t, err, "faculty1 already has an active request for item B2")

		// A block that stops requests.
		f.user(t, "UNI", patron.User{PrimaryID: "blocked", UserGroup: "UNDERGRAD", Blocks: []patron.Block{{BlockType: "GENERAL", BlockDescription: "Card lost"}}})
		_, err = f.svc.PlaceRequest(f.ctx, "UNI", "blocked", circulation.NewRequest{Barcode: "B2"})
		wantBlocked(t, err, "GENERAL")

		// Cancelled by the patron: the delivery fee is waived.
		_, err = f.svc.CancelRequest(f.ctx, "UNI", "faculty1", r.ID, " ")
		wantField(t, err, "reason", "required")
		c, err := f.svc.CancelRequest(f.staff("faculty1"), "UNI", "faculty1", r.ID, "Found it elsewhere")
		if err != nil || c.Status != circulation.RequestCancelled || c.CloseReason != "Found it elsewhere" || c.ClosedBy != "faculty1" {
			t.Fatalf("cancelled %+v, %v", c, err)
		}
		f.wantBalance(t, "faculty1", map[string]int64{})
		_, err = f.svc.CancelRequest(f.ctx, "UNI", "faculty1", r.ID, "again")
		wantKind(t, err, fault.Refused)
		_, err = f.svc.CancelRequest(f.ctx, "UNI", "student2", r.ID, "not mine")
		wantKind(t, err, fault.NotFound)
	})
}

func TestRequestsExpire(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withRequests(t)
		f.checkOut(t, "faculty1", "B3")
		soon := f.request(t, "student1", circulation.NewRequest{Barcode: "B3", NotNeededAfter: "2026-09-10"})
		f.clock.Set(utc(2026, 9, 2, 9, 0))
		later := f.request(t, "student2", circulation.NewRequest{Barcode: "B3"})
		if later.Place != 2 {
			t.Fatalf("second request %+v", later)
		}
		f.clock.Set(utc(2026, 9, 11, 0, 5))
		if n, err := f.svc.ExpireRequests(f.ctx); err != nil || n != 1 {
			t.Fatalf("expired %d, %v", n, err)
		}
		got, _ := f.svc.Request(f.ctx, "UNI", "student1", soon.ID)
		if got.Status != circulation.RequestExpired || got.CloseReason != "not needed after 2026-09-10" {
			t.Fatalf("expired request %+v", got)
		}
		if got, _ = f.svc.Request(f.ctx, "UNI", "student2", later.ID); got.Place != 1 {
			t.Fatalf("the next request %+v", got)
		}

		// Held for student2 and not picked up: back on the shelf.
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "B3"); err != nil {
			t.Fatal(err)
		}
		f.clock.Set(utc(2026, 9, 14, 0, 6))
		if n, err := f.svc.ExpireRequests(f.ctx); err != nil || n != 1 {
			t.Fatalf("expired %d, %v", n, err)
		}
		if got, _ = f.svc.Request(f.ctx, "UNI", "student2", later.ID); got.Status != circulation.RequestExpired ||
			!strings.HasPrefix(got.CloseReason, "not picked up by") {
			t.Fatalf("expired hold %+v", got)
		}
		if st := f.itemStatus(t, "B3"); st != circulation.StatusAvailable {
			t.Fatalf("B3 is %s", st)
		}
		if n, err := f.svc.ExpireRequests(f.ctx); err != nil || n != 0 {
			t.Fatalf("expired %d more, %v", n, err)
		}
	})
}

func TestAPatronWithRequestsCannotBeDeleted(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withRequests(t)
		f.patrons.AddDeletionGuard(f.svc.DeletionGuard())
		f.checkOut(t, "faculty1", "B4")
		r := f.request(t, "student1", circulation.NewRequest{Barcode: "B4"})
		err := f.patrons.Delete(f.ctx, "UNI", "student1")
		wantReasons(t, err, "has 1 active request")
		if _, err := f.svc.CancelRequest(f.ctx, "UNI", "student1", r.ID, "no longer needed"); err != nil {
			t.Fatal(err)
		}
		if err := f.patrons.Delete(f.ctx, "UNI", "student1"); err != nil {
			t.Fatal(err)
		}
	})
}

// Requests placed at once for an item on the shelf: one is held, the
// others wait in the order they were placed.
func TestConcurrentRequestsForOneItem(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withRequests(t)
		users := []string{"student1", "student2", "faculty1"}
		var wg sync.WaitGroup
		for _, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := f.svc.PlaceRequest(f.ctx, "UNI", u, circulation.NewRequest{Barcode: "B5"}); err != nil {
					t.Errorf("%s: %v", u, err)
				}
			}()
		}
		wg.Wait()
		queue, err := f.svc.ItemRequests(f.ctx, "UNI", "B5")
		if err != nil || len(queue) != 3 {
			t.Fatalf("queue %+v, %v", queue, err)
		}
		if queue[0].Status != circulation.RequestOnHoldShelf || queue[1].Place != 1 || queue[2].Place != 2 {
			t.Fatalf("queue %+v", queue)
		}
		if !queue[1].PlacedAt.Before(queue[2].PlacedAt) && !(queue[1].PlacedAt.Equal(queue[2].PlacedAt) && queue[1].ID < queue[2].ID) {
			t.Fatalf("the queue is not in the order placed: %+v", queue)
		}
	})
}

// The libraries a request concerns: its pickup library and the library of
// its item; for a title request not yet served, of every item of the
// title; for a personal delivery, the item's only.
func TestTheLibrariesARequestConcerns(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withRequests(t)
		fac, err := f.patrons.AddAddress(f.ctx, "UNI", "faculty1", patron.Address{Line1: "1 College Road", City: "Springfield", PostalCode: "01101"})
		if err != nil {
			t.Fatal(err)
		}
		f.checkOut(t, "student1", "T1-MAIN")
		f.checkOut(t, "student2", "T1-SCI")
		libs := func(r *circulation.Request) string {
			t.Helper()
			got, err := f.svc.RequestLibraries(f.ctx, "UNI", r)
			if err != nil {
				t.Fatal(err)
			}
			return strings.Join(got, " ")
		}
		newLibs := func(in circulation.NewRequest) string {
			t.Helper()
			got, err := f.svc.NewRequestLibraries(f.ctx, "UNI", in)
			if err != nil {
				t.Fatal(err)
			}
			return strings.Join(got, " ")
		}
		for _, c := range []struct {
			in   circulation.NewRequest
			want string
		}{
			{circulation.NewRequest{Barcode: "t1-sci", PickupLibrary: "main"}, "MAIN SCIENCE"},
			{circulation.NewRequest{Barcode: "T1-SCI"}, "SCIENCE"},
			{circulation.NewRequest{TitleID: "T1", PickupLibrary: "SCIENCE"}, "SCIENCE MAIN"},
			{circulation.NewRequest{TitleID: "T1"}, "MAIN SCIENCE"},
			{circulation.NewRequest{Barcode: "T1-SCI", PickupLibrary: "MOON"}, "MOON SCIENCE"},
			{circulation.NewRequest{}, ""},
		} {
			if got := newLibs(c.in); got != c.want {
				t.Errorf("a new request %+v concerns %q, want %q", c.in, got, c.want)
			}
		}
		if _, err := f.svc.NewRequestLibraries(f.ctx, "UNI", circulation.NewRequest{Barcode: "NOPE"}); err == nil {
			t.Error("an unknown item concerns some library")
		}

		title := f.request(t, "faculty1", circulation.NewRequest{TitleID: "T1", PickupLibrary: "SCIENCE"})
		if got := libs(title); title.Status != circulation.RequestWaiting || got != "SCIENCE MAIN" {
			t.Errorf("a waiting title request concerns %q (%s)", got, title.Status)
		}
		delivery := f.request(t, "faculty1", circulation.NewRequest{Barcode: "B3", DeliveryAddressID: fac.Addresses[0].ID})
		if got := libs(delivery); got != "MAIN" {
			t.Errorf("a personal delivery concerns %q", got)
		}
		// Once an item is held for the title request, its library counts.
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "T1-MAIN"); err != nil {
			t.Fatal(err)
		}
		held, err := f.svc.Request(f.ctx, "UNI", "faculty1", title.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := libs(held); held.Status != circulation.RequestOnHoldShelf || got != "SCIENCE MAIN" {
			t.Errorf("a held title request concerns %q (%s)", got, held.Status)
		}
	})
}
