package account_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patronkit/patronkit/account"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

const staffNote = "Staff only: watch this account"

// patronWithNotes is a patron with a note they may see and one for staff
// only.
func patronWithNotes(t *testing.T, k *patronkittest.Kit) *patron.User {
	t.Helper()
	return patronkittest.User(t, k, "UNI", func(u *patron.User) {
		u.Notes = []patron.Note{{NoteType: "CIRCULATION", NoteText: "Your card expires soon", UserViewable: true}, {NoteType: "OTHER", NoteText: staffNote}}
	})
}

// wantField fails unless err is Invalid naming field with code.
func wantField(t *testing.T, err error, field, code string) {
	t.Helper()
	pe, ok := fault.As(err)
	if !ok || pe.Kind != fault.Invalid {
		t.Fatalf("want Invalid naming %s, got %v", field, err)
	}
	if !slices.ContainsFunc(pe.Fields, func(f fault.FieldError) bool { return f.Field == field && f.Code == code }) {
		t.Fatalf("want %s %s among %+v", field, code, pe.Fields)
	}
}

func TestTheOverviewCountsAndShowsOnlyWhatIsThePatrons(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u := patronWithNotes(t, k)
		other := patronkittest.User(t, k, "UNI")
		l := patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI"))
		patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI"))
		lent := patronkittest.Item(t, k, "UNI")
		patronkittest.Loan(t, k, "UNI", other, lent)
		if _, err := k.Account.PlaceRequest(ctx, "UNI", u.PrimaryID, circulation.NewRequest{Barcode: lent.Barcode}); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Circulation.AddFee(ctx, "UNI", u.PrimaryID, circulation.NewFee{Amount: 300, Currency: "USD", Description: "Printing"}); err != nil {
			t.Fatal(err)
		}
		k.Clock.Set(l.DueAt.Add(time.Hour))

		o, err := k.Account.Overview(ctx, "UNI", u.PrimaryID)
		if err != nil {
			t.Fatal(err)
		}
		if o.Loans != 2 || o.OverdueLoans != 2 || o.Requests != 1 || o.OnHoldShelf != 0 || o.Balance["USD"] != 300 || o.User.PrimaryID != u.PrimaryID {
			t.Fatalf("overview %+v", o)
		}
		if len(o.User.Notes) != 1 || o.User.Notes[0].NoteText == staffNote || o.User.Version != u.Version {
			t.Fatalf("the patron sees notes %+v (version %d)", o.User.Notes, o.User.Version)
		}
		// The held item: on the hold shelf once it comes back.
		if _, err := k.Circulation.CheckIn(ctx, "UNI", lent.Barcode); err != nil {
			t.Fatal(err)
		}
		if o, err = k.Account.Overview(ctx, "UNI", u.PrimaryID); err != nil || o.Requests != 1 || o.OnHoldShelf != 1 {
			t.Fatalf("overview with an item held: %+v, %v", o, err)
		}
		if _, err := k.Account.Overview(ctx, "OTHER", u.PrimaryID); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("another institution's patron: %v", err)
		}
	})
}

func TestViewKeepsStaffNotesAndWarningsFromThePatron(t *testing.T) {
	u := &patron.User{PrimaryID: "p", Notes: []patron.Note{{NoteText: "for you", UserViewable: true}, {NoteText: staffNote}},
		Warnings: []string{"no preferred email"}}
	v := account.View(u)
	if len(v.Notes) != 1 || v.Notes[0].NoteText != "for you" || v.Warnings != nil {
		t.Fatalf("view %+v", v)
	}
	if len(u.Notes) != 2 || len(u.Warnings) != 1 {
		t.Fatalf("View changed the record: %+v", u)
	}
}

func TestAPatronRenewsOnlyTheirOwnLoans(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u, other := patronkittest.User(t, k, "UNI"), patronkittest.User(t, k, "UNI")
		mine := patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI"))
		theirs := patronkittest.Loan(t, k, "UNI", other, patronkittest.Item(t, k, "UNI"))
		k.Clock.Advance(7 * 24 * time.Hour)

		res, err := k.Account.Renew(ctx, "UNI", u.PrimaryID, []string{mine.ID, theirs.ID})
		if err != nil || len(res) != 2 {
			t.Fatalf("renew %+v, %v", res, err)
		}
		if !res[0].Renewed || !res[0].DueAt.After(mine.DueAt) {
			t.Errorf("own loan %+v", res[0])
		}
		if res[1].Renewed || len(res[1].Reasons) != 1 || !strings.Contains(res[1].Reasons[0], "no open loan") {
			t.Errorf("another patron's loan %+v", res[1])
		}
		if l, err := k.Circulation.Loan(ctx, "UNI", theirs.ID); err != nil || l.Renewals != 0 || !l.DueAt.Equal(theirs.DueAt) {
			t.Fatalf("another patron's loan changed: %+v, %v", l, err)
		}
		// All: the patron's open loans, and a list even when there are none.
		if res, err = k.Account.Renew(ctx, "UNI", u.PrimaryID, nil); err != nil || len(res) != 1 || res[0].LoanID != mine.ID {
			t.Fatalf("renew all %+v, %v", res, err)
		}
		nobody := patronkittest.User(t, k, "UNI")
		if res, err = k.Account.Renew(ctx, "UNI", nobody.PrimaryID, nil); err != nil || res == nil || len(res) != 0 {
			t.Fatalf("renew all without loans %#v, %v", res, err)
		}
	})
}

func TestAPatronsRequests(t *testing.T) {
	ctx := context.Background()
	k := patronkittest.New(t)
	u, borrower := patronkittest.User(t, k, "UNI"), patronkittest.User(t, k, "UNI")
	it := patronkittest.Item(t, k, "UNI")
	patronkittest.Loan(t, k, "UNI", borrower, it)

	// The place first: an unknown patron is not found, whatever the item.
	if _, err := k.Account.QueuePlace(ctx, "UNI", "nobody", "NO-SUCH-ITEM"); !errors.Is(err, fault.ErrNotFound) || !strings.Contains(err.Error(), "user") {
		t.Fatalf("an unknown patron's place: %v", err)
	}
	q, err := k.Account.QueuePlace(ctx, "UNI", u.PrimaryID, it.Barcode)
	if err != nil || !q.RequestNeeded || q.Place != 1 {
		t.Fatalf("place %+v, %v", q, err)
	}
	r, err := k.Account.PlaceRequest(ctx, "UNI", u.PrimaryID, circulation.NewRequest{Barcode: it.Barcode})
	if err != nil || r.Place != 1 {
		t.Fatalf("request %+v, %v", r, err)
	}
	if rs, err := k.Account.Requests(ctx, "UNI", u.PrimaryID, true); err != nil || len(rs) != 1 || rs[0].ID != r.ID {
		t.Fatalf("my requests %+v, %v", rs, err)
	}
	if _, err := k.Account.Request(ctx, "UNI", borrower.PrimaryID, r.ID); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("another patron reads the request: %v", err)
	}
	if _, err := k.Account.CancelRequest(ctx, "UNI", borrower.PrimaryID, r.ID, ""); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("another patron cancels the request: %v", err)
	}
	// Cancelled without a reason: the patron's.
	ctx = patron.WithActor(ctx, patron.Actor{Institution: "UNI", ID: u.PrimaryID, Patron: true})
	c, err := k.Account.CancelRequest(ctx, "UNI", u.PrimaryID, r.ID, "  ")
	if err != nil || c.Status != circulation.RequestCancelled || c.CloseReason != account.CancelledByPatron || c.ClosedBy != u.PrimaryID {
		t.Fatalf("cancelled %+v, %v", c, err)
	}
	r, _ = k.Account.PlaceRequest(ctx, "UNI", u.PrimaryID, circulation.NewRequest{Barcode: it.Barcode})
	if c, err = k.Account.CancelRequest(ctx, "UNI", u.PrimaryID, r.ID, "Found it elsewhere"); err != nil || c.CloseReason != "Found it elsewhere" {
		t.Fatalf("cancelled with a reason %+v, %v", c, err)
	}
}

func TestTermsFindThePatronFirst(t *testing.T) {
	ctx := context.Background()
	k := patronkittest.New(t)
	u := patronkittest.User(t, k, "UNI", func(u *patron.User) { u.UserGroup = "FACULTY" })
	it := patronkittest.Item(t, k, "UNI")
	patronkittest.Terms(t, k, "UNI", circulation.Rule{Name: "Faculty", UserGroup: "FACULTY", Terms: circulation.Terms{FixedDueDate: "2026-12-18"}})
	q, err := k.Account.Terms(ctx, "UNI", u.PrimaryID, " "+strings.ToLower(it.Barcode)+" ")
	if err != nil || q.Rule != "Faculty" || !q.DueAt.Equal(time.Date(2026, 12, 18, 23, 59, 0, 0, time.UTC)) {
		t.Fatalf("terms %+v, %v", q, err)
	}
	if _, err := k.Account.Terms(ctx, "UNI", "nobody", ""); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("an unknown patron without a barcode: %v", err)
	}
	_, err = k.Account.Terms(ctx, "UNI", u.PrimaryID, " ")
	wantField(t, err, "barcode", "required")
	if _, err := k.Account.Terms(ctx, "UNI", u.PrimaryID, "NO-SUCH-ITEM"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("an unknown item: %v", err)
	}
	student := patronkittest.User(t, k, "UNI")
	if _, err := k.Account.Terms(ctx, "UNI", student.PrimaryID, it.Barcode); !errors.Is(err, fault.ErrRefused) {
		t.Fatalf("no rule for the patron: %v", err)
	}
}

func TestFeesAddUpWhatIsAccruing(t *testing.T) {
	ctx := context.Background()
	k := patronkittest.New(t)
	patronkittest.Terms(t, k, "UNI",
		circulation.Rule{ItemPolicy: "DVD", Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: circulation.Days, OverdueFine: 100, OverdueFineUnit: circulation.PerDay, Currency: "USD"}},
		circulation.Rule{Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: circulation.Days, OverdueFine: 25, OverdueFineUnit: circulation.PerDay, Currency: "USD"}})
	u := patronkittest.User(t, k, "UNI")
	patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI"))
	patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI", func(it *circulation.Item) { it.ItemPolicy = "DVD" }))
	if _, err := k.Circulation.AddFee(ctx, "UNI", u.PrimaryID, circulation.NewFee{Amount: 300, Currency: "USD", Description: "Printing"}); err != nil {
		t.Fatal(err)
	}
	k.Clock.Advance(72 * time.Hour) // two days overdue
	f, err := k.Account.Fees(ctx, "UNI", u.PrimaryID)
	if err != nil || len(f.Fees) != 1 || f.Balance["USD"] != 300 || f.Accruing["USD"] != 250 || len(f.Accruing) != 1 {
		t.Fatalf("fees %+v, %v", f, err)
	}
}

func TestStandingShowsMessagesAndTheLatestNoticesSent(t *testing.T) {
	ctx := context.Background()
	k := patronkittest.New(t)
	u := patronkittest.User(t, k, "UNI", func(u *patron.User) {
		u.Emails = []patron.Email{{EmailAddress: "pat@uni.example", Preferred: true}}
		u.Notes = []patron.Note{{NoteText: "Your card expires soon", UserViewable: true}, {NoteText: staffNote}}
	})
	blocked := patronkittest.User(t, k, "UNI", func(u *patron.User) {
		u.Blocks = []patron.Block{{BlockType: "GENERAL", BlockDescription: "Card reported lost"}}
	})
	st, err := k.Account.Standing(ctx, "UNI", u.PrimaryID)
	if err != nil || len(st.Blocks) != 0 || len(st.Messages) != 1 || st.Messages[0].NoteText != "Your card expires soon" || st.Notices == nil || len(st.Notices) != 0 {
		t.Fatalf("standing %+v, %v", st, err)
	}
	if st, err = k.Account.Standing(ctx, "UNI", blocked.PrimaryID); err != nil || len(st.Blocks) != 1 || !strings.Contains(st.Blocks[0].Description, "Card reported lost") ||
		st.Messages == nil || len(st.Messages) != 0 {
		t.Fatalf("a blocked patron's standing %+v, %v", st, err)
	}
	// Twelve receipts, sent; one more the mail server refuses.
	for range 12 {
		patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI"))
		k.Clock.Advance(time.Minute)
	}
	if n, err := k.Circulation.SendNotices(ctx); err != nil || n != 12 {
		t.Fatalf("sent %d, %v", n, err)
	}
	patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI"))
	k.Email.Refuse(errors.New("550 relay denied for 10.1.2.3"))
	if _, err := k.Circulation.SendNotices(ctx); err != nil {
		t.Fatal(err)
	}
	st, err = k.Account.Standing(ctx, "UNI", u.PrimaryID)
	if err != nil || len(st.Notices) != account.LatestNotices {
		t.Fatalf("standing %d notices, %v", len(st.Notices), err)
	}
	for _, n := range st.Notices {
		if n.Status != circulation.NoticeSent {
			t.Fatalf("a notice not sent among the latest sent: %+v", n)
		}
	}
	// Every notice, the refused one without what the server answered.
	all, err := k.Account.Notices(ctx, "UNI", u.PrimaryID)
	if err != nil || len(all) != 13 || all[0].Status != circulation.NoticePending || all[0].Error != "" {
		t.Fatalf("notices %d, the newest %+v, %v", len(all), all[0], err)
	}
	if staff, _ := k.Circulation.Notices(ctx, "UNI", u.PrimaryID); !strings.Contains(staff[0].Error, "relay denied") {
		t.Fatalf("staff see the channel's answer: %+v", staff[0])
	}

	// A notice sent downloads as archived; one not sent, or another
	// patron's, is not found.
	att, body, err := k.Account.NoticeFile(ctx, "UNI", u.PrimaryID, all[1].ID)
	if err != nil || att.Kind != patron.AttachmentNotice || !strings.Contains(string(body), "pat@uni.example") {
		t.Fatalf("notice file %+v %q, %v", att, body, err)
	}
	if _, _, err := k.Account.NoticeFile(ctx, "UNI", u.PrimaryID, all[0].ID); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("a notice not sent: %v", err)
	}
	other := patronkittest.User(t, k, "UNI")
	if _, _, err := k.Account.NoticeFile(ctx, "UNI", other.PrimaryID, all[1].ID); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("another patron's notice: %v", err)
	}
}
