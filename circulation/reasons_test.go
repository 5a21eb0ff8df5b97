package circulation_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// wantCauses checks that err is a refusal whose reasons have codes, in
// order, each with its English text among the reasons, and returns them.
func wantCauses(t *testing.T, err error, codes ...string) []fault.Reason {
	t.Helper()
	pe := wantKind(t, err, fault.Refused)
	return checkCauses(t, pe.Reasons, pe.Causes, codes...)
}

func checkCauses(t *testing.T, texts []string, causes []fault.Reason, codes ...string) []fault.Reason {
	t.Helper()
	var got []string
	for _, c := range causes {
		got = append(got, c.Code)
	}
	if !slices.Equal(got, codes) {
		t.Fatalf("codes %q, want %q (%q)", got, codes, texts)
	}
	if !slices.Equal(fault.Texts(causes), texts) {
		t.Fatalf("the causes' texts %q are not the reasons %q", fault.Texts(causes), texts)
	}
	return causes
}

func wantArgs(t *testing.T, r fault.Reason, want map[string]string) {
	t.Helper()
	if !maps.Equal(r.Args, want) {
		t.Fatalf("args of %s: %v, want %v", r.Code, r.Args, want)
	}
}

func TestEveryRefusalOfALoanHasItsCode(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.user(t, "UNI", patron.User{PrimaryID: "lapsed", UserGroup: "UNDERGRAD", Status: patron.StatusInactive, ExpiryDate: "2026-08-31",
			Blocks: []patron.Block{{BlockType: "GENERAL", BlockDescription: "Unpaid fees"}}})
		f.checkOut(t, "student1", "B1")

		_, err := f.svc.CheckOut(f.ctx, "UNI", "lapsed", "B1", circulation.CheckOutOptions{})
		rs := wantCauses(t, err, circulation.ReasonAccountInactive, circulation.ReasonAccountExpired, circulation.ReasonBlocked,
			circulation.ReasonItemNotAvailable)
		wantArgs(t, rs[0], map[string]string{"primary_id": "lapsed"})
		wantArgs(t, rs[1], map[string]string{"primary_id": "lapsed", "expiry_date": "2026-08-31"})
		wantArgs(t, rs[2], map[string]string{"primary_id": "lapsed", "block_type": "GENERAL", "description": "Unpaid fees"})
		wantArgs(t, rs[3], map[string]string{"barcode": "B1", "status": circulation.StatusOnLoan})
		if rs[3].Text != "item B1 is on loan" {
			t.Fatalf("English text %q", rs[3].Text)
		}
		// The blocks carry the same causes.
		bs := f.wantBlocks(t, "lapsed", circulation.BlockInactive, circulation.BlockExpired, "GENERAL")
		if bs[2].Cause.Code != circulation.ReasonBlocked || bs[2].Cause.Text != bs[2].Description {
			t.Fatalf("block cause %+v", bs[2])
		}

		// The most loans.
		f.checkOut(t, "student1", "B2")
		f.checkOut(t, "student1", "B3")
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student1", "B4", circulation.CheckOutOptions{})
		wantArgs(t, wantCauses(t, err, circulation.ReasonMaxLoans)[0], map[string]string{"primary_id": "student1", "limit": "3"})

		// No rule.
		f.user(t, "UNI", patron.User{PrimaryID: "visitor", UserGroup: "VISITOR"})
		_, err = f.svc.CheckOut(f.ctx, "UNI", "visitor", "B4", circulation.CheckOutOptions{})
		wantArgs(t, wantCauses(t, err, circulation.ReasonNoRule)[0],
			map[string]string{"user_group": "VISITOR", "item_policy": "", "library": "MAIN", "material_type": "BOOK"})

		// A proxy who is not one.
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student2", "B4", circulation.CheckOutOptions{Proxy: "helper"})
		wantArgs(t, wantCauses(t, err, circulation.ReasonNotProxy)[0], map[string]string{"proxy": "helper", "primary_id": "student2"})

		// A missing item.
		it, _ := f.svc.Item(f.ctx, "UNI", "B6")
		it.Status = circulation.StatusMissing
		if _, err := f.svc.ReplaceItem(f.ctx, "UNI", "B6", it.Version, it); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student2", "B6", circulation.CheckOutOptions{})
		wantArgs(t, wantCauses(t, err, circulation.ReasonItemNotAvailable)[0], map[string]string{"barcode": "B6", "status": "missing"})

		// Past the faculty's fixed due date, under its rule.
		f.clock.Set(utc(2027, 1, 4, 9, 0))
		_, err = f.svc.CheckOut(f.ctx, "UNI", "faculty1", "B5", circulation.CheckOutOptions{})
		rs = wantCauses(t, err, circulation.ReasonFixedDueDatePassed, circulation.ReasonUnderRule)
		wantArgs(t, rs[0], map[string]string{"fixed_due_date": "2026-12-18"})
		wantArgs(t, rs[1], map[string]string{"rule": "Faculty: end of semester"})
	})
}

func TestEveryRefusalOfARenewalHasItsCode(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.withRequests(t)
		l := f.checkOut(t, "student1", "B1")
		other := f.checkOut(t, "student1", "B2")

		// Too early to move the due date.
		f.clock.Set(utc(2026, 9, 2, 10, 0))
		_, err := f.svc.Renew(f.ctx, "UNI", l.ID)
		wantArgs(t, wantCauses(t, err, circulation.ReasonDueDateUnchanged)[0], map[string]string{"due_date": "2026-09-29T23:59:00Z"})

		// As often as the terms allow.
		for _, at := range []int{20, 22} {
			f.clock.Set(utc(2026, 9, at, 10, 0))
			if _, err := f.svc.Renew(f.ctx, "UNI", l.ID); err != nil {
				t.Fatal(err)
			}
		}
		f.clock.Set(utc(2026, 9, 23, 10, 0))
		_, err = f.svc.Renew(f.ctx, "UNI", l.ID)
		wantArgs(t, wantCauses(t, err, circulation.ReasonMaxRenewals)[0], map[string]string{"renewals": "2", "limit": "2"})

		// Requested by another patron; a loan that is not the patron's; a
		// library the caller may not renew in.
		f.request(t, "student2", circulation.NewRequest{Barcode: "B2"})
		res, err := f.svc.RenewManyIn(f.ctx, "UNI", "student1", []string{other.ID, "no-such-loan"}, nil)
		if err != nil || len(res) != 2 || res[0].Renewed || res[1].Renewed {
			t.Fatalf("%+v, %v", res, err)
		}
		wantArgs(t, checkCauses(t, res[0].Reasons, res[0].Causes, circulation.ReasonItemRequested)[0], map[string]string{"barcode": "B2"})
		wantArgs(t, checkCauses(t, res[1].Reasons, res[1].Causes, circulation.ReasonNoOpenLoan)[0],
			map[string]string{"primary_id": "student1", "loan_id": "no-such-loan"})
		res, err = f.svc.RenewManyIn(f.ctx, "UNI", "student1", []string{other.ID}, func(string) (bool, error) { return false, nil })
		if err != nil || len(res) != 1 {
			t.Fatalf("%+v, %v", res, err)
		}
		wantArgs(t, checkCauses(t, res[0].Reasons, res[0].Causes, circulation.ReasonLibraryNotAllowed)[0], map[string]string{"library": "MAIN"})
	})
}

func TestEveryBlockAndRequestRefusalHasItsCode(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixtureWith(t, db, circulation.Options{Currencies: euroToo})
		f.withRequests(t)
		f.withLimits(t, circulation.BlockLimit{UserGroup: "UNDERGRAD", MaxBalance: ptr(int64(1000)), Currency: "USD", MaxOverdueLoans: ptr(0)})

		// Owing more than the limit, in two currencies.
		if _, err := f.svc.AddFee(f.ctx, "UNI", "student2", circulation.NewFee{Amount: 500, Currency: "USD", Description: "Damages"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.AddFee(f.ctx, "UNI", "student2", circulation.NewFee{Amount: 500, Currency: "EUR", Description: "Damages"}); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.PlaceRequest(f.ctx, "UNI", "student2", circulation.NewRequest{Barcode: "B2"})
		wantArgs(t, wantCauses(t, err, circulation.ReasonBalanceLimit)[0], map[string]string{"primary_id": "student2",
			"owed": "5.00 USD, 5.00 EUR", "limit": "10.00 USD", "total": "10.50 USD"})

		// An overdue loan past the limit of none.
		f.checkOut(t, "student1", "B1")
		f.clock.Set(utc(2026, 10, 1, 9, 0))
		_, err = f.svc.CheckOut(f.ctx, "UNI", "student1", "B3", circulation.CheckOutOptions{})
		wantArgs(t, wantCauses(t, err, circulation.ReasonOverdueLimit)[0], map[string]string{"primary_id": "student1", "overdue": "1", "limit": "0"})

		// A request for what the patron has, or asked for already.
		f.checkOut(t, "faculty1", "B4")
		_, err = f.svc.PlaceRequest(f.ctx, "UNI", "faculty1", circulation.NewRequest{Barcode: "B4"})
		wantArgs(t, wantCauses(t, err, circulation.ReasonAlreadyOnLoan)[0], map[string]string{"primary_id": "faculty1", "barcode": "B4"})
		r := f.request(t, "faculty1", circulation.NewRequest{TitleID: "T1", PickupLibrary: "MAIN"})
		_, err = f.svc.PlaceRequest(f.ctx, "UNI", "faculty1", circulation.NewRequest{TitleID: "T1", PickupLibrary: "MAIN"})
		wantArgs(t, wantCauses(t, err, circulation.ReasonAlreadyRequested)[0], map[string]string{"primary_id": "faculty1", "title_id": "T1"})

		// A request no longer active.
		if _, err := f.svc.CancelRequest(f.ctx, "UNI", "faculty1", r.ID, "not needed"); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.CancelRequest(f.ctx, "UNI", "faculty1", r.ID, "again")
		wantArgs(t, wantCauses(t, err, circulation.ReasonRequestNotActive)[0], map[string]string{"request_id": r.ID, "status": circulation.RequestCancelled})
	})
}

// reasonSamples are a reason of every code circulation gives, with its
// named values.
var reasonSamples = map[string]map[string]string{
	circulation.ReasonAccountInactive:       {"primary_id": "jdoe"},
	circulation.ReasonAccountExpired:        {"primary_id": "jdoe", "expiry_date": "2026-08-31"},
	circulation.ReasonBlocked:               {"primary_id": "jdoe", "block_type": "GENERAL", "description": "Card lost"},
	circulation.ReasonBalanceLimit:          {"primary_id": "jdoe", "owed": "5.00 USD, 5.00 EUR", "limit": "10.00 USD", "total": "10.50 USD"},
	circulation.ReasonOverdueLimit:          {"primary_id": "jdoe", "overdue": "2", "limit": "1"},
	circulation.ReasonNotProxy:              {"proxy": "helper", "primary_id": "jdoe"},
	circulation.ReasonProxyInactive:         {"proxy": "helper"},
	circulation.ReasonProxyExpired:          {"proxy": "helper", "expiry_date": "2026-08-31"},
	circulation.ReasonItemOnHoldShelf:       {"barcode": "B1"},
	circulation.ReasonItemNotAvailable:      {"barcode": "B1", "status": "on_loan"},
	circulation.ReasonItemNoLongerAvailable: {"barcode": "B1"},
	circulation.ReasonMaxLoans:              {"primary_id": "jdoe", "limit": "3"},
	circulation.ReasonNoRule:                {"user_group": "VISITOR", "item_policy": "", "library": "MAIN", "material_type": "BOOK"},
	circulation.ReasonFixedDueDatePassed:    {"fixed_due_date": "2026-12-18"},
	circulation.ReasonNoOpenDay:             {"library": "MAIN", "from": "2026-09-01", "to": "2027-09-01"},
	circulation.ReasonUnderRule:             {"rule": "Faculty"},
	circulation.ReasonNoOpenLoan:            {"primary_id": "jdoe", "loan_id": "L1"},
	circulation.ReasonLibraryNotAllowed:     {"library": "MAIN"},
	circulation.ReasonLoanChanged:           {"loan_id": "L1"},
	circulation.ReasonItemGone:              {"loan_id": "L1"},
	circulation.ReasonItemRequested:         {"barcode": "B1"},
	circulation.ReasonMaxRenewals:           {"renewals": "2", "limit": "2"},
	circulation.ReasonDueDateUnchanged:      {"due_date": "2026-09-29T23:59:00Z"},
	circulation.ReasonRequestsNotAllowed:    {"primary_id": "jdoe", "barcode": "B1"},
	circulation.ReasonAlreadyRequested:      {"primary_id": "jdoe", "barcode": "B1"},
	circulation.ReasonAlreadyOnLoan:         {"primary_id": "jdoe", "barcode": "B1"},
	circulation.ReasonRequestNotActive:      {"request_id": "R1", "status": "cancelled"},
	circulation.ReasonRequestNotWaiting:     {"request_id": "R1", "status": "on_hold_shelf"},
	circulation.ReasonLoanNotOpen:           {"loan_id": "L1", "status": "returned"},
	circulation.ReasonOwnFee:                {},
	circulation.ReasonFeeClosed:             {"fee_id": "F1"},
	circulation.ReasonItemInUse:             {"status": "on_loan"},
	circulation.ReasonLibraryHasItems:       {"items": "3"},
}

func TestEveryReasonIsSaidInEnglishAndSpanish(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		for code, args := range reasonSamples {
			r := fault.Reason{Code: code, Args: args, Text: "own text"}
			en, es := f.svc.ReasonText("en", r), f.svc.ReasonText("es", r)
			if en == "own text" || en == "" || strings.Contains(en, "<no value>") {
				t.Errorf("%s has no English text: %q", code, en)
			}
			if es == en || es == "" || strings.Contains(es, "<no value>") {
				t.Errorf("%s has no Spanish text: %q", code, es)
			}
		}
	})
}

func TestAReasonIsSaidInThePatronsLanguage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newLoanFixture(t, db)
		f.checkOut(t, "student1", "B1")
		f.checkOut(t, "student1", "B2")
		f.checkOut(t, "student1", "B3")
		_, err := f.svc.CheckOut(f.ctx, "UNI", "student1", "B4", circulation.CheckOutOptions{})
		r := wantCauses(t, err, circulation.ReasonMaxLoans)[0]
		for lang, want := range map[string]string{
			"es":    "student1 ya tiene 3 préstamos, el máximo que permiten las condiciones de uso",
			"ES-mx": "student1 ya tiene 3 préstamos, el máximo que permiten las condiciones de uso",
			"":      "student1 already has 3 loans, the most the terms of use allow",
			"fr":    "student1 already has 3 loans, the most the terms of use allow",
			"../es": "student1 already has 3 loans, the most the terms of use allow",
		} {
			if got := f.svc.ReasonText(lang, r); got != want {
				t.Errorf("in %q: %q, want %q", lang, got, want)
			}
		}
		// A reason without a code, or with one the catalog does not know,
		// is its own text.
		for _, r := range []fault.Reason{{Text: "itemized"}, {Code: "no_such_code", Text: "something else"}} {
			if got := f.svc.ReasonText("es", r); got != r.Text {
				t.Errorf("%+v in Spanish: %q", r, got)
			}
		}
		if got := f.svc.ReasonTexts("es", []fault.Reason{r, {Text: "itemized"}}); len(got) != 2 || !strings.HasPrefix(got[0], "student1 ya tiene") || got[1] != "itemized" {
			t.Errorf("ReasonTexts: %q", got)
		}
	})
}

func TestAHostsReasonTextsReplaceTheBuiltInOnesOneByOne(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		host := fstest.MapFS{
			"es/reasons.tmpl": {Data: []byte(`{{define "max_loans"}}Ya tienes {{.limit}} libros en préstamo.{{end}}`)},
			"fr/reasons.tmpl": {Data: []byte(`{{define "max_loans"}}{{.primary_id}} a déjà {{.limit}} prêts{{end}}`)},
			// Broken: said in English.
			"de/reasons.tmpl": {Data: []byte(`{{define "max_loans"}}{{.limit`)},
		}
		f := newLoanFixtureWith(t, db, circulation.Options{Templates: host})
		for _, b := range []string{"B1", "B2", "B3"} {
			f.checkOut(t, "student1", b)
		}
		_, err := f.svc.CheckOut(f.ctx, "UNI", "student1", "B4", circulation.CheckOutOptions{})
		r := wantCauses(t, err, circulation.ReasonMaxLoans)[0]
		if r.Text != "student1 already has 3 loans, the most the terms of use allow" {
			t.Fatalf("the English text follows the built-in catalog: %q", r.Text)
		}
		for lang, want := range map[string]string{
			"es": "Ya tienes 3 libros en préstamo.",
			"fr": "student1 a déjà 3 prêts",
			"en": r.Text,
			"de": r.Text,
		} {
			if got := f.svc.ReasonText(lang, r); got != want {
				t.Errorf("in %q: %q, want %q", lang, got, want)
			}
		}
		// The codes the host left alone keep the built-in texts; a
		// language the host added falls back to English for them.
		other := fault.Reason{Code: circulation.ReasonItemRequested, Args: map[string]string{"barcode": "B1"}, Text: "x"}
		if got := f.svc.ReasonText("es", other); got != "otro usuario ha solicitado el ejemplar B1" {
			t.Errorf("a built-in Spanish text: %q", got)
		}
		if got := f.svc.ReasonText("fr", other); got != "item B1 is requested by another patron" {
			t.Errorf("French falls back to English: %q", got)
		}
	})
}
