package librarycard_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/patronkit/patronkit/adapters/librarycard"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patronkittest"
)

// TestDatesInEachLibrarysTimeZone: on one page, a loan's due date is
// shown in the time zone of the library that lent it and a request's
// hold-shelf expiry in its pickup library's, New York's and Madrid's side
// by side; the item page's due date is in the item's library's. A
// library's new time zone shows within a minute.
func TestDatesInEachLibrarysTimeZone(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		ctx := context.Background()
		zones := map[string]*time.Location{}
		for code, tz := range map[string]string{"NYC": "America/New_York", "MAD": "Europe/Madrid"} {
			l, err := k.Circulation.CreateLibrary(ctx, Institution, &circulation.Library{Code: code, Name: code + " Library", TimeZone: tz})
			if err != nil {
				t.Fatal(err)
			}
			if zones[code], err = l.Location(); err != nil {
				t.Fatal(err)
			}
		}
		items := map[string]*circulation.Item{}
		for _, b := range []string{"NYC-1", "MAD-1", "NYC-2", "MAD-2", "MAD-3"} {
			items[b] = patronkittest.Item(t, k, Institution, func(it *circulation.Item) { it.Barcode, it.Title, it.Library = b, "Book "+b, b[:3] })
		}
		// The student borrows one book of each; the faculty two others,
		// which the student requests (picked up where they belong).
		loans := map[string]*circulation.Loan{}
		for _, b := range []string{"NYC-1", "MAD-1"} {
			loans[b] = patronkittest.Loan(t, k, Institution, lib.student, items[b])
		}
		for _, b := range []string{"NYC-2", "MAD-2"} {
			patronkittest.Loan(t, k, Institution, lib.faculty, items[b])
			if _, err := k.Circulation.PlaceRequest(ctx, Institution, "student1", circulation.NewRequest{Barcode: b, PickupLibrary: b[:3]}); err != nil {
				t.Fatal(err)
			}
			if _, err := k.Circulation.CheckIn(ctx, Institution, b); err != nil {
				t.Fatal(err)
			}
		}
		rs, err := k.Circulation.Requests(ctx, Institution, "student1", true)
		if err != nil {
			t.Fatal(err)
		}
		holds := map[string]time.Time{}
		for _, r := range rs {
			if r.HoldUntil != nil {
				holds[r.PickupLibrary] = *r.HoldUntil
			}
		}
		if len(holds) != 2 {
			t.Fatalf("want requests on the hold shelves of NYC and MAD: %+v", rs)
		}
		at := func(code string, tm time.Time) string { return tm.In(zones[code]).Format("2006-01-02 15:04 MST") }
		if at("NYC", loans["NYC-1"].DueAt)[:16] == at("MAD", loans["NYC-1"].DueAt)[:16] {
			t.Fatal("the zones show the same time")
		}

		v := lib.visitor().signIn("student1", "3333")
		v.get("/card/loans").status(http.StatusOK).has(
			"<td>"+at("NYC", loans["NYC-1"].DueAt)+"</td>", "<td>"+at("MAD", loans["MAD-1"].DueAt)+"</td>",
			"<td>"+lib.requested.DueAt.UTC().Format("2006-01-02 15:04")+" UTC</td>") // MAIN keeps UTC
		v.get("/card/requests").status(http.StatusOK).has("<td>"+at("NYC", holds["NYC"])+"</td>", "<td>"+at("MAD", holds["MAD"])+"</td>")
		v.get("/card/items/MAD-3").status(http.StatusOK)
		q, err := k.Account.Terms(ctx, Institution, "student1", "MAD-3")
		if err != nil {
			t.Fatal(err)
		}
		v.has(at("MAD", q.DueAt))

		// A library's new time zone shows within a minute.
		nyc, err := k.Circulation.Library(ctx, Institution, "NYC")
		if err != nil {
			t.Fatal(err)
		}
		nyc.TimeZone = "Asia/Tokyo"
		if _, err := k.Circulation.ReplaceLibrary(ctx, Institution, "NYC", nyc.Version, nyc); err != nil {
			t.Fatal(err)
		}
		k.Clock.Advance(time.Minute)
		tokyo, _ := time.LoadLocation("Asia/Tokyo")
		v.get("/card/loans").has("<td>" + loans["NYC-1"].DueAt.In(tokyo).Format("2006-01-02 15:04 MST") + "</td>")
	})
}

// TestDatesOfNoLibraryInTheMountsZone: a date that belongs to no library
// (a fee's) is shown in Options.Location, while the loans keep their
// libraries' zones.
func TestDatesOfNoLibraryInTheMountsZone(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		honolulu, err := time.LoadLocation("Pacific/Honolulu")
		if err != nil {
			t.Fatal(err)
		}
		lib := newLibrary(t, k, func(o *librarycard.Options) { o.Location = honolulu })
		v := lib.visitor().signIn("student1", "3333")
		v.get("/card/fees").status(http.StatusOK).has("<td>" + patronkittest.Start.In(honolulu).Format("2006-01-02") + "</td>").
			lacks("<td>" + patronkittest.Start.Format("2006-01-02") + "</td>")
		v.get("/card/loans").has("<td>" + lib.requested.DueAt.UTC().Format("2006-01-02 15:04") + " UTC</td>")
	})
}
