package circulation_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
)

// Every text field of circulation's records refuses NUL, control
// characters other than tab and line feed (carriage returns too in
// reasons) and bytes that are not UTF-8, naming the field, on every
// database; lookups by such keys find nothing. Nothing is written.
func TestCirculationTextRefusesControlCharactersOnEveryDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		ctx := f.staff("librarian")

		_, err := f.svc.CreateLibrary(ctx, "UNI", &circulation.Library{Code: "SCI", Name: "Science\x00Library"})
		wantField(t, err, "name", "bad_format")
		_, err = f.svc.CreateLibrary(ctx, "UNI", &circulation.Library{Code: "SCI", Name: "Science", ClosedDates: []circulation.ClosedDate{{Date: "2026-12-25", Note: "Christ\x1bmas"}}})
		wantField(t, err, "closed_dates[0].note", "bad_format")
		_, err = f.svc.CreateLibrary(ctx, "UNI", &circulation.Library{Code: "..", Name: "Dots"})
		wantField(t, err, "code", "bad_format")
		if libs, _ := f.svc.Libraries(f.ctx, "UNI"); len(libs) != 1 {
			t.Fatalf("refused libraries were written: %d", len(libs))
		}

		_, err = f.svc.CreateItem(ctx, "UNI", &circulation.Item{Barcode: "C1", Title: "Moby\x00Dick", Library: "MAIN"})
		wantField(t, err, "title", "bad_format")
		_, err = f.svc.CreateItem(ctx, "UNI", &circulation.Item{Barcode: "C1", Title: "Emma", Library: "MAIN", Location: "ST\xffACKS"})
		wantField(t, err, "location", "bad_format")
		_, err = f.svc.CreateItem(ctx, "UNI", &circulation.Item{Barcode: "..", Title: "Dots", Library: "MAIN"})
		wantField(t, err, "barcode", "bad_format")
		if _, err := f.svc.Item(f.ctx, "UNI", "C1"); !errorsIsNotFound(err) {
			t.Fatalf("a refused item was written: %v", err)
		}

		rules, err := f.svc.Rules(f.ctx, "UNI")
		if err != nil {
			t.Fatal(err)
		}
		bad := append([]circulation.Rule(nil), rules.Rules...)
		bad[1].Name = "Under\x01graduates"
		_, err = f.svc.ReplaceRules(ctx, "UNI", rules.Version, bad, nil)
		wantField(t, err, "rules[1].name", "bad_format")

		_, err = f.svc.AddFee(ctx, "UNI", "student1", circulation.NewFee{Amount: 100, Currency: "USD", Description: "Lost\x00card"})
		wantField(t, err, "description", "bad_format")
		fee, err := f.svc.AddFee(ctx, "UNI", "student1", circulation.NewFee{Amount: 100, Currency: "USD", Description: "Lost card"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Waive(ctx, "UNI", "student1", fee.ID, 50, "goodwill\x00")
		wantField(t, err, "reason", "bad_format")
		// A reason may take several lines.
		if _, err := f.svc.Waive(ctx, "UNI", "student1", fee.ID, 50, "goodwill\r\nsecond line"); err != nil {
			t.Fatalf("a reason of two lines: %v", err)
		}

		_, err = f.svc.PlaceRequest(ctx, "UNI", "student1", circulation.NewRequest{Barcode: "B1", PickupLibrary: "MA\x00IN"})
		wantField(t, err, "pickup_library", "bad_format")
		_, err = f.svc.PlaceRequest(ctx, "UNI", "student1", circulation.NewRequest{TitleID: "T\x00"})
		wantField(t, err, "title_id", "bad_format")

		// Lookups by keys no record can hold: not found, never a database
		// error.
		for name, lookup := range map[string]func() error{
			"item":    func() error { _, err := f.svc.Item(f.ctx, "UNI", "B\x001"); return err },
			"library": func() error { _, err := f.svc.Library(f.ctx, "UNI", "MA\x00IN"); return err },
			"check-out": func() error {
				_, err := f.svc.CheckOut(ctx, "UNI", "student1", "B\x001", circulation.CheckOutOptions{})
				return err
			},
			"check-out user": func() error {
				_, err := f.svc.CheckOut(ctx, "UNI", "stu\x00dent1", "B1", circulation.CheckOutOptions{})
				return err
			},
			"check-in": func() error { _, err := f.svc.CheckIn(ctx, "UNI", "\xffB1"); return err },
			"fees":     func() error { _, err := f.svc.Fees(f.ctx, "UNI", "student1\x00", true); return err },
			"fee": func() error {
				_, err := f.svc.AddFee(ctx, "UNI", "student1\x00", circulation.NewFee{Amount: 1, Currency: "USD", Description: "x"})
				return err
			},
			"loans": func() error { _, err := f.svc.Loans(f.ctx, "UNI", "\x00", true); return err },
		} {
			if !errorsIsNotFound(lookup()) {
				t.Errorf("%s: %v, want NotFound", name, lookup())
			}
		}
	})
}

func errorsIsNotFound(err error) bool {
	e, ok := fault.As(err)
	return ok && e.Kind == fault.NotFound
}
