package circulation_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
	"github.com/patronkit/patronkit/patron"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

type fixture struct {
	svc   *circulation.Service
	clock *clock
	ctx   context.Context
}

func newFixture(t *testing.T, db *gorm.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	if err := migrate.Run(ctx, db, circulation.Migrations()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	c := &clock{now: time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)}
	svc, err := circulation.NewService(db, circulation.Options{Now: c.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, clock: c, ctx: ctx}
}

func (f *fixture) library(t *testing.T, inst string, l circulation.Library) *circulation.Library {
	t.Helper()
	out, err := f.svc.CreateLibrary(f.ctx, inst, &l)
	if err != nil {
		t.Fatalf("create library %s: %v", l.Code, err)
	}
	return out
}

func (f *fixture) item(t *testing.T, inst string, it circulation.Item) *circulation.Item {
	t.Helper()
	out, err := f.svc.CreateItem(f.ctx, inst, &it)
	if err != nil {
		t.Fatalf("create item %s: %v", it.Barcode, err)
	}
	return out
}

func wantKind(t *testing.T, err error, kind fault.Kind) *fault.Error {
	t.Helper()
	pe, ok := fault.As(err)
	if !ok || pe.Kind != kind {
		t.Fatalf("got %v, want a fault.Error of kind %d", err, kind)
	}
	return pe
}

func wantField(t *testing.T, err error, field, code string) {
	t.Helper()
	pe := wantKind(t, err, fault.Invalid)
	for _, f := range pe.Fields {
		if f.Field == field && f.Code == code {
			return
		}
	}
	t.Fatalf("no field error %s %s in %v", field, code, pe.Fields)
}

func TestBarcodesAreUniqueWhateverTheirCase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		f.library(t, "UNI", circulation.Library{Code: "MAIN", Name: "Main Library"})
		first := f.item(t, "UNI", circulation.Item{Barcode: "AB-100", Title: "Moby-Dick", Author: "Melville", Library: "main"})
		if first.Library != "MAIN" || first.Status != circulation.StatusAvailable || first.Version != 1 {
			t.Fatalf("created %+v", first)
		}
		_, err := f.svc.CreateItem(f.ctx, "UNI", &circulation.Item{Barcode: " ab-100 ", Title: "Another", Library: "MAIN"})
		wantKind(t, err, fault.Conflict)

		got, err := f.svc.Item(f.ctx, "UNI", "aB-100")
		if err != nil || got.ID != first.ID || got.Barcode != "AB-100" {
			t.Fatalf("lookup in another case: %+v, %v", got, err)
		}

		second := f.item(t, "UNI", circulation.Item{Barcode: "AB-200", Title: "Emma", Library: "MAIN"})
		_, err = f.svc.ReplaceItem(f.ctx, "UNI", "AB-200", second.Version, &circulation.Item{Barcode: "ab-100", Title: "Emma", Library: "MAIN"})
		wantKind(t, err, fault.Conflict)

		_, err = f.svc.CreateLibrary(f.ctx, "UNI", &circulation.Library{Code: "main", Name: "Again"})
		wantKind(t, err, fault.Conflict)

		// Only case folds: accented barcodes are barcodes of their own on
		// every database.
		f.item(t, "UNI", circulation.Item{Barcode: "CAFÉ-1", Title: "Accented", Library: "MAIN"})
		f.item(t, "UNI", circulation.Item{Barcode: "CAFE-1", Title: "Plain", Library: "MAIN"})
		if got, err := f.svc.Item(f.ctx, "UNI", "café-1"); err != nil || got.Title != "Accented" {
			t.Fatalf("%+v, %v", got, err)
		}

		// Two creates of one barcode in different cases at once: exactly
		// one wins, the other is a Conflict.
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				b := "RACE-1"
				if i%2 == 1 {
					b = "race-1"
				}
				_, errs[i] = f.svc.CreateItem(f.ctx, "UNI", &circulation.Item{Barcode: b, Title: "Race", Library: "MAIN"})
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			} else if !errors.Is(err, fault.ErrConflict) {
				t.Fatalf("a losing create: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d creates of RACE-1 won", won)
		}
	})
}

func TestAnotherInstitutionSeesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		f.library(t, "UNI", circulation.Library{Code: "MAIN", Name: "Main Library", ClosedDates: []circulation.ClosedDate{{Date: "2026-12-25"}}})
		f.item(t, "UNI", circulation.Item{Barcode: "B1", Title: "Moby-Dick", Library: "MAIN"})
		if _, err := f.svc.ReplaceRules(f.ctx, "UNI", 0, []circulation.Rule{{Terms: circulation.Terms{LoanPeriod: 4, LoanPeriodUnit: "weeks"}}}, nil); err != nil {
			t.Fatal(err)
		}

		_, err := f.svc.Library(f.ctx, "OTHER", "MAIN")
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.Item(f.ctx, "OTHER", "B1")
		wantKind(t, err, fault.NotFound)
		libs, err := f.svc.Libraries(f.ctx, "OTHER")
		if err != nil || len(libs) != 0 {
			t.Fatalf("libraries of OTHER: %v, %v", libs, err)
		}
		page, err := f.svc.Items(f.ctx, "OTHER", circulation.ItemQuery{Q: "moby"})
		if err != nil || page.TotalRecordCount != 0 || len(page.Items) != 0 {
			t.Fatalf("items of OTHER: %+v, %v", page, err)
		}
		set, err := f.svc.Rules(f.ctx, "OTHER")
		if err != nil || set.Version != 0 || len(set.Rules) != 0 {
			t.Fatalf("rules of OTHER: %+v, %v", set, err)
		}
		_, err = f.svc.ReplaceItem(f.ctx, "OTHER", "B1", 1, &circulation.Item{Barcode: "B1", Title: "Mine", Library: "MAIN"})
		wantKind(t, err, fault.NotFound)
		wantKind(t, f.svc.DeleteItem(f.ctx, "OTHER", "B1"), fault.NotFound)
		wantKind(t, f.svc.DeleteLibrary(f.ctx, "OTHER", "MAIN"), fault.NotFound)
		_, err = f.svc.NextOpenDay(f.ctx, "OTHER", "MAIN", "2026-12-25")
		wantKind(t, err, fault.NotFound)

		// UNI's library does not exist for OTHER's items...
		_, err = f.svc.CreateItem(f.ctx, "OTHER", &circulation.Item{Barcode: "B1", Title: "Mine", Library: "MAIN"})
		wantField(t, err, "library", "unknown_value")
		// ...and OTHER may use the same codes and barcodes.
		f.library(t, "OTHER", circulation.Library{Code: "MAIN", Name: "Their Main"})
		f.item(t, "OTHER", circulation.Item{Barcode: "b1", Title: "Theirs", Library: "MAIN"})
		// Rules are read from the institution's own list only.
		_, _, err = f.svc.TermsFor(f.ctx, "OTHER", &patron.User{UserGroup: "UNDERGRAD"}, &circulation.Item{Library: "MAIN"}, f.clock.Now())
		wantKind(t, err, fault.Refused)

		got, err := f.svc.Item(f.ctx, "UNI", "B1")
		if err != nil || got.Title != "Moby-Dick" {
			t.Fatalf("UNI's item after OTHER's writes: %+v, %v", got, err)
		}
		if day, err := f.svc.NextOpenDay(f.ctx, "OTHER", "MAIN", "2026-12-25"); err != nil || day != "2026-12-25" {
			t.Fatalf("OTHER's MAIN is open on UNI's closed day: %q, %v", day, err)
		}
	})
}

func TestCSVLoadRejectsBadRowsAndLoadsTheRest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		f.library(t, "UNI", circulation.Library{Code: "MAIN", Name: "Main Library"})
		f.library(t, "UNI", circulation.Library{Code: "SCIENCE", Name: "Science Library"})
		old := f.item(t, "UNI", circulation.Item{Barcode: "OLD-1", Title: "Old title", Author: "Someone", Library: "MAIN", Location: "STACKS", Status: circulation.StatusMissing})
		kept := f.item(t, "UNI", circulation.Item{Barcode: "KEEP-1", Title: "Kept", Library: "MAIN", Location: "REF"})

		csvText := "barcode,title,author,library,location,item_policy,material_type\n" +
			"N-1,Moby-Dick,Melville,MAIN,STACKS,REGULAR,BOOK\n" + // line 2
			"N-2,Bad library,Nobody,NOWHERE,STACKS,REGULAR,BOOK\n" + // line 3: rejected
			"\"N-3\",\"Emma, a novel\",Austen,science,,,BOOK\n" + // line 4
			"old-1,New title,,MAIN,,SHORT,DVD\n" + // line 5: updated whole
			"N-4,Too few fields\n" + // line 6: rejected
			"keep-1,Kept changed,,NOWHERE,,,\n" + // line 7: rejected, the item unchanged
			",No barcode,,MAIN,,,\n" // line 8: rejected
		rep, err := f.svc.LoadItemsCSV(f.ctx, "UNI", strings.NewReader(csvText))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Created != 2 || rep.Updated != 1 || len(rep.Rejected) != 4 {
			t.Fatalf("report: %+v", rep)
		}
		wantLines := []int{3, 6, 7, 8}
		for i, r := range rep.Rejected {
			if r.Line != wantLines[i] || r.Reason == "" {
				t.Errorf("rejection %d: %+v, want line %d", i, r, wantLines[i])
			}
		}
		if r := rep.Rejected[0]; r.Barcode != "N-2" || len(r.Fields) != 1 || r.Fields[0].Field != "library" || r.Fields[0].Code != "unknown_value" {
			t.Errorf("bad library row: %+v", r)
		}
		if r := rep.Rejected[3]; len(r.Fields) != 1 || r.Fields[0].Code != "required" {
			t.Errorf("row without barcode: %+v", r)
		}

		for _, b := range []string{"N-2", "N-4"} {
			_, err := f.svc.Item(f.ctx, "UNI", b)
			wantKind(t, err, fault.NotFound)
		}
		n3, err := f.svc.Item(f.ctx, "UNI", "n-3")
		if err != nil || n3.Title != "Emma, a novel" || n3.Library != "SCIENCE" || n3.Status != circulation.StatusAvailable {
			t.Fatalf("N-3: %+v, %v", n3, err)
		}
		up, err := f.svc.Item(f.ctx, "UNI", "OLD-1")
		if err != nil {
			t.Fatal(err)
		}
		if up.ID != old.ID || up.Barcode != "old-1" || up.Title != "New title" || up.Author != "" || up.Location != "" ||
			up.ItemPolicy != "SHORT" || up.MaterialType != "DVD" || up.Status != circulation.StatusMissing || up.Version != 2 {
			t.Fatalf("OLD-1 not replaced whole (status kept): %+v", up)
		}
		still, err := f.svc.Item(f.ctx, "UNI", "KEEP-1")
		if err != nil || still.Title != kept.Title || still.Library != "MAIN" || still.Location != "REF" || still.Version != kept.Version {
			t.Fatalf("a rejected update wrote something: %+v, %v", still, err)
		}
		page, err := f.svc.Items(f.ctx, "UNI", circulation.ItemQuery{Limit: 100})
		if err != nil || page.TotalRecordCount != 4 {
			t.Fatalf("items after the load: %d, %v", page.TotalRecordCount, err)
		}
	})
}

func TestCSVHeaderIsChecked(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		f.library(t, "UNI", circulation.Library{Code: "MAIN", Name: "Main Library"})
		for _, text := range []string{
			"",
			"barcode,title,shelf,library\nX,Y,Z,MAIN\n",
			"barcode,author,library\nX,Y,MAIN\n",
		} {
			_, err := f.svc.LoadItemsCSV(f.ctx, "UNI", strings.NewReader(text))
			wantField(t, err, "file", "bad_format")
		}
		// Columns in another order, optional ones left out.
		rep, err := f.svc.LoadItemsCSV(f.ctx, "UNI", strings.NewReader("\ufefflibrary,Title,barcode\nMAIN,Emma,E-1\n"))
		if err != nil || rep.Created != 1 || len(rep.Rejected) != 0 {
			t.Fatalf("%+v, %v", rep, err)
		}
		page, err := f.svc.Items(f.ctx, "UNI", circulation.ItemQuery{Q: "e-1"})
		if err != nil || page.TotalRecordCount != 1 || len(page.Items) != 1 || page.Items[0].Title != "Emma" {
			t.Fatalf("%+v, %v", page, err)
		}
	})
}

func TestLoadItemsFromAList(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		f.library(t, "UNI", circulation.Library{Code: "MAIN", Name: "Main Library"})
		rep, err := f.svc.LoadItems(f.ctx, "UNI", []circulation.Item{
			{Barcode: "A", Title: "One", Library: "MAIN"},
			{Barcode: "B", Title: "Two", Library: "MAIN", Status: "borrowed"},
			{Barcode: "a", Title: "One again", Library: "MAIN", Status: "lost"},
		})
		if err != nil || rep.Created != 1 || rep.Updated != 1 || len(rep.Rejected) != 1 {
			t.Fatalf("%+v, %v", rep, err)
		}
		if r := rep.Rejected[0]; r.Line != 2 || r.Fields[0].Field != "status" || r.Fields[0].Code != "unknown_value" {
			t.Fatalf("%+v", r)
		}
		got, err := f.svc.Item(f.ctx, "UNI", "A")
		if err != nil || got.Title != "One again" || got.Status != circulation.StatusLost {
			t.Fatalf("%+v, %v", got, err)
		}
	})
}

func TestItemsListAndVersions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		f.library(t, "UNI", circulation.Library{Code: "MAIN", Name: "Main Library"})
		f.library(t, "UNI", circulation.Library{Code: "SCIENCE", Name: "Science Library"})
		f.item(t, "UNI", circulation.Item{Barcode: "M-1", Title: "Moby-Dick", Author: "Herman Melville", Library: "MAIN"})
		f.item(t, "UNI", circulation.Item{Barcode: "E-1", Title: "Emma", Author: "Jane Austen", Library: "MAIN"})
		p := f.item(t, "UNI", circulation.Item{Barcode: "P-1", Title: "Pride and Prejudice", Author: "Jane Austen", Library: "SCIENCE"})
		f.item(t, "UNI", circulation.Item{Barcode: "X_1", Title: "100% Pure", Library: "SCIENCE"})

		cases := []struct {
			q    circulation.ItemQuery
			want []string
		}{
			{circulation.ItemQuery{Q: "austen"}, []string{"E-1", "P-1"}},
			{circulation.ItemQuery{Q: "JANE pride"}, []string{"P-1"}},
			{circulation.ItemQuery{Q: "m-1"}, []string{"M-1"}},
			{circulation.ItemQuery{Q: "100%"}, []string{"X_1"}},
			{circulation.ItemQuery{Q: "_"}, []string{"X_1"}},
			{circulation.ItemQuery{Library: "science"}, []string{"X_1", "P-1"}},
			{circulation.ItemQuery{Limit: 2, Offset: 1}, []string{"E-1", "M-1"}},
		}
		for _, c := range cases {
			page, err := f.svc.Items(f.ctx, "UNI", c.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range page.Items {
				got = append(got, it.Barcode)
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("%+v: got %v, want %v", c.q, got, c.want)
			}
		}
		_, err := f.svc.Items(f.ctx, "UNI", circulation.ItemQuery{Limit: 101})
		wantField(t, err, "limit", "out_of_range")

		f.clock.Set(f.clock.Now().Add(time.Hour))
		up, err := f.svc.ReplaceItem(f.ctx, "UNI", "p-1", p.Version, &circulation.Item{Title: "Pride and Prejudice", Library: "MAIN", Status: circulation.StatusInTransit})
		if err != nil || up.Version != 2 || up.Barcode != "P-1" || up.Status != circulation.StatusInTransit || !up.UpdatedAt.Equal(f.clock.Now()) {
			t.Fatalf("%+v, %v", up, err)
		}
		_, err = f.svc.ReplaceItem(f.ctx, "UNI", "P-1", p.Version, &circulation.Item{Title: "Stale", Library: "MAIN"})
		wantKind(t, err, fault.Stale)
		wantKind(t, f.svc.DeleteItem(f.ctx, "UNI", "P-1"), fault.Refused)
		wantKind(t, f.svc.DeleteLibrary(f.ctx, "UNI", "SCIENCE"), fault.Refused)
		if err := f.svc.DeleteItem(f.ctx, "UNI", "X_1"); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.DeleteLibrary(f.ctx, "UNI", "SCIENCE"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLibrariesAreValidatedAndVersioned(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		_, err := f.svc.CreateLibrary(f.ctx, "UNI", &circulation.Library{
			Code: strings.Repeat("X", 65), TimeZone: "Mars/Olympus", PickupLocations: patron.Codes{"DESK", "back door"},
			ClosedDates: []circulation.ClosedDate{{Date: "2026-13-01"}, {Date: "2026-12-25"}, {Date: "2026-12-25"}},
		})
		for _, fe := range [][2]string{
			{"code", "too_long"}, {"name", "required"}, {"time_zone", "unknown_value"},
			{"pickup_locations[1]", "bad_format"}, {"closed_dates[0].date", "bad_format"}, {"closed_dates[2].date", "duplicate"},
		} {
			wantField(t, err, fe[0], fe[1])
		}

		l := f.library(t, "UNI", circulation.Library{Code: "MAIN", Name: "Main", PickupLocations: patron.Codes{"DESK", "LOCKERS"}})
		if l.TimeZone != "UTC" || l.Version != 1 {
			t.Fatalf("%+v", l)
		}
		up, err := f.svc.ReplaceLibrary(f.ctx, "UNI", "main", 1, &circulation.Library{Name: "Main Library", TimeZone: "Europe/Paris",
			PickupLocations: patron.Codes{"DESK"}, ClosedDates: []circulation.ClosedDate{{Date: "2026-12-26", Note: "Boxing Day"}, {Date: "2026-12-25", Note: "Christmas"}}})
		if err != nil || up.Version != 2 || up.Code != "MAIN" {
			t.Fatalf("%+v, %v", up, err)
		}
		got, err := f.svc.Library(f.ctx, "UNI", "Main")
		if err != nil || got.Name != "Main Library" || got.TimeZone != "Europe/Paris" || strings.Join(got.PickupLocations, ",") != "DESK" ||
			len(got.ClosedDates) != 2 || got.ClosedDates[0] != (circulation.ClosedDate{Date: "2026-12-25", Note: "Christmas"}) {
			t.Fatalf("%+v, %v", got, err)
		}
		_, err = f.svc.ReplaceLibrary(f.ctx, "UNI", "MAIN", 1, &circulation.Library{Name: "Stale"})
		wantKind(t, err, fault.Stale)
		_, err = f.svc.ReplaceLibrary(f.ctx, "UNI", "MAIN", 2, &circulation.Library{Code: "OTHER", Name: "Renamed"})
		wantField(t, err, "code", "read_only")
		_, err = f.svc.NextOpenDay(f.ctx, "UNI", "MAIN", "25/12/2026")
		wantField(t, err, "date", "bad_format")
	})
}

// termsFixture sets the libraries, items and rules of the terms tests: a
// UTC library, one in New York, and rules in which order matters.
func termsFixture(t *testing.T, db *gorm.DB) *fixture {
	t.Helper()
	f := newFixture(t, db)
	f.library(t, "UNI", circulation.Library{Code: "MAIN", Name: "Main Library"})
	f.library(t, "UNI", circulation.Library{Code: "NYC", Name: "New York Branch", TimeZone: "America/New_York"})
	rules := []circulation.Rule{
		{Name: "Faculty: end of semester", UserGroup: "FACULTY", Terms: circulation.Terms{FixedDueDate: "2026-12-18", Renewals: 1}},
		{Name: "Undergraduate DVDs", UserGroup: "UNDERGRAD", MaterialType: "DVD", Library: "*", Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: "weeks"}},
		{Name: "Undergraduates", UserGroup: "UNDERGRAD", ItemPolicy: "*", Terms: circulation.Terms{
			LoanPeriod: 4, LoanPeriodUnit: "weeks", Renewals: 2, RenewalPeriod: 2, RenewalPeriodUnit: "weeks",
			OverdueFine: 25, OverdueFineUnit: "day", GracePeriod: 1, GracePeriodUnit: "days", MaxFine: 1000,
			LostItemFee: 5000, DaysOverdueUntilLost: 60, Currency: "usd", MaxLoans: 15, RequestsAllowed: true}},
		{Name: "Reserve", ItemPolicy: "RESERVE", Terms: circulation.Terms{LoanPeriod: 2, LoanPeriodUnit: "hours", OverdueFine: 100, OverdueFineUnit: "hour", Currency: "USD"}},
	}
	if _, err := f.svc.ReplaceRules(f.ctx, "UNI", 0, rules, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func utc(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, time.UTC)
}

func TestFirstMatchingRuleWins(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := termsFixture(t, db)
		at := utc(2026, 9, 1, 9, 0)
		book := &circulation.Item{Barcode: "B", Library: "MAIN", ItemPolicy: "REGULAR", MaterialType: "BOOK"}
		dvd := &circulation.Item{Barcode: "D", Library: "MAIN", ItemPolicy: "REGULAR", MaterialType: "dvd"}
		reserve := &circulation.Item{Barcode: "R", Library: "MAIN", ItemPolicy: "RESERVE", MaterialType: "BOOK"}
		cases := []struct {
			group string
			item  *circulation.Item
			due   time.Time
			loan  string
		}{
			{"UNDERGRAD", book, utc(2026, 9, 29, 23, 59), "4 weeks"},
			{"undergrad", dvd, utc(2026, 9, 8, 23, 59), "1 weeks"},
			{"FACULTY", book, utc(2026, 12, 18, 23, 59), "2026-12-18"},
			{"FACULTY", reserve, utc(2026, 12, 18, 23, 59), "2026-12-18"},
			{"GRAD", reserve, utc(2026, 9, 1, 11, 0), "2 hours"},
		}
		for _, c := range cases {
			terms, due, err := f.svc.TermsFor(f.ctx, "UNI", &patron.User{UserGroup: c.group}, c.item, at)
			if err != nil {
				t.Fatalf("%s %s: %v", c.group, c.item.Barcode, err)
			}
			loan := terms.FixedDueDate
			if loan == "" {
				loan = strconv.Itoa(terms.LoanPeriod) + " " + terms.LoanPeriodUnit
			}
			if loan != c.loan || !due.Equal(c.due) || due.Location() != time.UTC {
				t.Errorf("%s %s: %s due %v, want %s due %v", c.group, c.item.Barcode, loan, due, c.loan, c.due)
			}
		}
		terms, _, err := f.svc.TermsFor(f.ctx, "UNI", &patron.User{UserGroup: "UNDERGRAD"}, book, at)
		if err != nil || terms.Currency != "USD" || terms.OverdueFine != 25 || terms.MaxLoans != 15 || !terms.RequestsAllowed || terms.Renewals != 2 {
			t.Fatalf("%+v, %v", terms, err)
		}
	})
}

func TestNoMatchingRuleIsRefused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := termsFixture(t, db)
		_, _, err := f.svc.TermsFor(f.ctx, "UNI", &patron.User{UserGroup: "GRAD"},
			&circulation.Item{Library: "MAIN", ItemPolicy: "REGULAR", MaterialType: "BOOK"}, f.clock.Now())
		pe := wantKind(t, err, fault.Refused)
		if !errors.Is(err, fault.ErrRefused) || len(pe.Reasons) != 1 ||
			!strings.Contains(pe.Reasons[0], `user_group "GRAD"`) || !strings.Contains(pe.Reasons[0], `item_policy "REGULAR"`) ||
			!strings.Contains(pe.Reasons[0], `library "MAIN"`) || !strings.Contains(pe.Reasons[0], `material_type "BOOK"`) {
			t.Fatalf("%v", err)
		}
		// After the end of semester, the fixed due date has passed.
		_, _, err = f.svc.TermsFor(f.ctx, "UNI", &patron.User{UserGroup: "FACULTY"}, &circulation.Item{Library: "MAIN"}, utc(2026, 12, 19, 0, 0))
		pe = wantKind(t, err, fault.Refused)
		if !strings.Contains(pe.Error(), "2026-12-18") || !strings.Contains(pe.Error(), "Faculty: end of semester") {
			t.Fatalf("%v", err)
		}
	})
}

func TestClosedDaysMoveTheDueDate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := termsFixture(t, db)
		lib, err := f.svc.Library(f.ctx, "UNI", "MAIN")
		if err != nil {
			t.Fatal(err)
		}
		// The 4-week due date (29 September) and the day after are closed,
		// and so is the end of semester.
		lib.ClosedDates = []circulation.ClosedDate{{Date: "2026-09-29", Note: "Inventory"}, {Date: "2026-09-30", Note: "Inventory"}, {Date: "2026-12-18"}}
		if _, err := f.svc.ReplaceLibrary(f.ctx, "UNI", "MAIN", lib.Version, lib); err != nil {
			t.Fatal(err)
		}
		book := &circulation.Item{Library: "MAIN", MaterialType: "BOOK"}
		_, due, err := f.svc.TermsFor(f.ctx, "UNI", &patron.User{UserGroup: "UNDERGRAD"}, book, utc(2026, 9, 1, 9, 0))
		if err != nil || !due.Equal(utc(2026, 10, 1, 23, 59)) {
			t.Fatalf("due %v, %v; want 2026-10-01 23:59 UTC", due, err)
		}
		_, due, err = f.svc.TermsFor(f.ctx, "UNI", &patron.User{UserGroup: "FACULTY"}, book, utc(2026, 9, 1, 9, 0))
		if err != nil || !due.Equal(utc(2026, 12, 19, 23, 59)) {
			t.Fatalf("fixed due %v, %v; want 2026-12-19 23:59 UTC", due, err)
		}
		// A 2-hour loan from 23:00 on the 28th ends on the closed 29th: it
		// is due at the end of the next open day.
		_, due, err = f.svc.TermsFor(f.ctx, "UNI", &patron.User{UserGroup: "GRAD"}, &circulation.Item{Library: "MAIN", ItemPolicy: "RESERVE"}, utc(2026, 9, 28, 23, 0))
		if err != nil || !due.Equal(utc(2026, 10, 1, 23, 59)) {
			t.Fatalf("hourly due %v, %v", due, err)
		}
		for date, want := range map[string]string{"2026-09-29": "2026-10-01", "2026-09-30": "2026-10-01", "2026-09-28": "2026-09-28"} {
			if got, err := f.svc.NextOpenDay(f.ctx, "UNI", "main", date); err != nil || got != want {
				t.Errorf("NextOpenDay(%s) = %q, %v; want %s", date, got, err, want)
			}
		}
	})
}

func TestDueDatesEndAt2359InTheLibrarysTimeZone(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := termsFixture(t, db)
		ny, _ := time.LoadLocation("America/New_York")
		book := &circulation.Item{Library: "NYC", MaterialType: "BOOK"}
		// 02:00 UTC on 1 September is still 31 August in New York: four
		// weeks from there end on 28 September at 23:59 EDT (UTC-4).
		_, due, err := f.svc.TermsFor(f.ctx, "UNI", &patron.User{UserGroup: "UNDERGRAD"}, book, utc(2026, 9, 1, 2, 0))
		if err != nil || !due.Equal(utc(2026, 9, 29, 3, 59)) || due.Location() != time.UTC {
			t.Fatalf("due %v, %v; want 2026-09-29 03:59 UTC", due, err)
		}
		if local := due.In(ny); local.Hour() != 23 || local.Minute() != 59 || local.Day() != 28 {
			t.Fatalf("local due %v", local)
		}
		// The end of semester falls after the end of daylight saving time:
		// 23:59 EST (UTC-5).
		_, due, err = f.svc.TermsFor(f.ctx, "UNI", &patron.User{UserGroup: "FACULTY"}, book, utc(2026, 9, 1, 2, 0))
		if err != nil || !due.Equal(utc(2026, 12, 19, 4, 59)) {
			t.Fatalf("fixed due %v, %v; want 2026-12-19 04:59 UTC", due, err)
		}
	})
}

func TestReplaceRulesNeedsTheCurrentVersion(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		weeks := func(n int) []circulation.Rule {
			return []circulation.Rule{{UserGroup: "UNDERGRAD", Terms: circulation.Terms{LoanPeriod: n, LoanPeriodUnit: "weeks"}}}
		}
		set, err := f.svc.ReplaceRules(f.ctx, "UNI", 0, weeks(4), nil)
		if err != nil || set.Version != 1 {
			t.Fatalf("%+v, %v", set, err)
		}
		_, err = f.svc.ReplaceRules(f.ctx, "UNI", 0, weeks(5), nil)
		wantKind(t, err, fault.Stale)
		f.clock.Set(f.clock.Now().Add(time.Hour))
		if set, err = f.svc.ReplaceRules(f.ctx, "UNI", 1, append(weeks(3), weeks(6)...), nil); err != nil || set.Version != 2 {
			t.Fatalf("%+v, %v", set, err)
		}
		_, err = f.svc.ReplaceRules(f.ctx, "UNI", 1, weeks(7), nil)
		wantKind(t, err, fault.Stale)
		_, err = f.svc.ReplaceRules(f.ctx, "UNI", 5, weeks(7), nil)
		wantKind(t, err, fault.Stale)

		got, err := f.svc.Rules(f.ctx, "UNI")
		if err != nil || got.Version != 2 || len(got.Rules) != 2 || got.Rules[0].Terms.LoanPeriod != 3 || got.Rules[1].Terms.LoanPeriod != 6 ||
			!got.UpdatedAt.Equal(f.clock.Now()) {
			t.Fatalf("%+v, %v", got, err)
		}
		// An empty list is a list too.
		if set, err = f.svc.ReplaceRules(f.ctx, "UNI", 2, nil, nil); err != nil || set.Version != 3 {
			t.Fatalf("%+v, %v", set, err)
		}
	})
}

func TestRulesAreValidated(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		_, err := f.svc.ReplaceRules(f.ctx, "UNI", 0, []circulation.Rule{
			{Terms: circulation.Terms{LoanPeriod: 4, LoanPeriodUnit: "fortnights"}},
			{Terms: circulation.Terms{}},
			{Terms: circulation.Terms{FixedDueDate: "18/12/2026"}},
			{Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: "days", OverdueFine: 10, Currency: "dollars", Renewals: -1}},
			{Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: "days", LostItemFee: 10}},
			{UserGroup: strings.Repeat("G", 65), Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: "days", FixedDueDate: "2026-12-18"}},
			{Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: "days", RenewalPeriodUnit: "weeks", GracePeriodUnit: "days", OverdueFineUnit: "day"}},
		}, nil)

		for _, fe := range [][2]string{
			{"rules[0].terms.loan_period_unit", "unknown_value"},
			{"rules[1].terms.loan_period", "required"},
			{"rules[2].terms.fixed_due_date", "bad_format"},
			{"rules[3].terms.overdue_fine_unit", "unknown_value"},
			{"rules[3].terms.currency", "bad_format"},
			{"rules[3].terms.renewals", "out_of_range"},
			{"rules[4].terms.currency", "required"},
			{"rules[5].user_group", "too_long"},
			{"rules[5].terms.fixed_due_date", "bad_format"},
			{"rules[6].terms.renewal_period_unit", "bad_format"},
			{"rules[6].terms.grace_period_unit", "bad_format"},
			{"rules[6].terms.overdue_fine_unit", "bad_format"},
		} {
			wantField(t, err, fe[0], fe[1])
		}
		set, err := f.svc.Rules(f.ctx, "UNI")
		if err != nil || set.Version != 0 {
			t.Fatalf("an invalid list was written: %+v, %v", set, err)
		}
	})
}

func TestAHostsOwnCatalogIsAnItemLookup(t *testing.T) {
	var lookup circulation.ItemLookup = circulation.ItemLookupFunc(func(_ context.Context, inst, barcode string) (*circulation.Item, error) {
		if inst == "UNI" && barcode == "EXT-1" {
			return &circulation.Item{Barcode: barcode, Title: "From elsewhere", Library: "MAIN"}, nil
		}
		return nil, &fault.Error{Kind: fault.NotFound, Detail: "no such item"}
	})
	it, err := lookup.Item(context.Background(), "UNI", "EXT-1")
	if err != nil || it.Title != "From elsewhere" {
		t.Fatalf("%+v, %v", it, err)
	}
	if _, err := lookup.Item(context.Background(), "OTHER", "EXT-1"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("%v", err)
	}
}
