package patronkittest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
	"github.com/patronkit/patronkit/patronkittest"
)

// A loan built on every database gets its terms, its date from the
// kit's clock, and a receipt the recording notifier keeps.
func TestEachKitLendsAndRecordsTheReceipt(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u := patronkittest.User(t, k, "UNI", func(u *patron.User) {
			u.Emails = []patron.Email{{EmailAddress: "pat@uni.example", Preferred: true}}
		})
		it := patronkittest.Item(t, k, "UNI", func(it *circulation.Item) { it.Title = "Middlemarch" })
		l := patronkittest.Loan(t, k, "UNI", u, it)
		if !l.LoanedAt.Equal(patronkittest.Start) || l.PrimaryID != u.PrimaryID || l.Library != patronkittest.DefaultLibrary {
			t.Fatalf("the loan %+v", l)
		}
		if want := time.Date(2026, 9, 22, 23, 59, 0, 0, time.UTC); !l.DueAt.Equal(want) {
			t.Errorf("due %s, want %s (three weeks, DefaultRule)", l.DueAt, want)
		}
		if n, err := k.Circulation.SendNotices(ctx); err != nil || n != 1 {
			t.Fatalf("sent %d, %v", n, err)
		}
		m := k.Email.Messages()
		if len(m) != 1 || m[0].To != "pat@uni.example" || !strings.Contains(m[0].Subject, "Middlemarch") || m[0].Notice.Kind != circulation.NoticeLoanReceipt {
			t.Fatalf("email %+v", m)
		}
		if len(k.SMS.Messages()) != 0 {
			t.Fatalf("an SMS for a patron without a phone: %+v", k.SMS.Messages())
		}
	})
}

// Builders make up names new in the kit, and honour what the test says.
func TestBuildersMakeNewRecordsUnlessTold(t *testing.T) {
	k := patronkittest.New(t)
	a, b := patronkittest.User(t, k, "UNI"), patronkittest.User(t, k, "UNI")
	if a.PrimaryID == b.PrimaryID || a.FirstName == "" || a.LastName == "" || a.Status != patron.StatusActive {
		t.Fatalf("users %+v and %+v", a, b)
	}
	fac := patronkittest.User(t, k, "UNI", func(u *patron.User) { u.PrimaryID, u.UserGroup = "f1", "FACULTY" })
	if fac.PrimaryID != "f1" || fac.UserGroup != "FACULTY" {
		t.Fatalf("told user %+v", fac)
	}
	x, y := patronkittest.Item(t, k, "UNI"), patronkittest.Item(t, k, "UNI", func(it *circulation.Item) { it.Library = "SCIENCE" })
	if x.Barcode == y.Barcode || x.Library != "MAIN" || y.Library != "SCIENCE" || x.Status != circulation.StatusAvailable {
		t.Fatalf("items %+v and %+v", x, y)
	}
	// The library is made once, and kept.
	if lib := patronkittest.Library(t, k, "UNI", "SCIENCE"); lib.Version != 1 {
		t.Fatalf("library %+v", lib)
	}
	// Terms the test sets are the ones a loan gets.
	patronkittest.Terms(t, k, "UNI", circulation.Rule{Name: "Faculty", UserGroup: "FACULTY", Terms: circulation.Terms{LoanPeriod: 2, LoanPeriodUnit: circulation.Days}})
	if l := patronkittest.Loan(t, k, "UNI", fac, x); !l.DueAt.Equal(time.Date(2026, 9, 3, 23, 59, 0, 0, time.UTC)) {
		t.Fatalf("due %s under the test's terms", l.DueAt)
	}
	// Another institution has none of them.
	if _, err := k.Patrons.Get(context.Background(), "OTHER", "f1"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("another institution: %v", err)
	}
}

// The clock moves the kit: a loan falls overdue and accrues its fine.
func TestTheClockMovesTheKit(t *testing.T) {
	k := patronkittest.New(t)
	patronkittest.Terms(t, k, "UNI", circulation.Rule{Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: circulation.Days,
		OverdueFine: 25, OverdueFineUnit: circulation.PerDay, Currency: "USD"}})
	u := patronkittest.User(t, k, "UNI")
	l := patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI"))
	if now := k.Clock.Advance(72 * time.Hour); !now.Equal(patronkittest.Start.Add(72 * time.Hour)) {
		t.Fatalf("advanced to %s", now)
	}
	ls, err := k.Circulation.Loans(context.Background(), "UNI", u.PrimaryID, true)
	if err != nil || len(ls) != 1 || ls[0].ID != l.ID || !ls[0].Overdue || ls[0].AccruedFine != 50 {
		t.Fatalf("loans two days after the due date: %+v, %v", ls, err)
	}
}

// A channel that refuses leaves the notice for a later run.
func TestARefusingNotifierLeavesNoticesPending(t *testing.T) {
	ctx := context.Background()
	k := patronkittest.New(t)
	u := patronkittest.User(t, k, "UNI", func(u *patron.User) { u.Emails = []patron.Email{{EmailAddress: "pat@uni.example"}} })
	patronkittest.Loan(t, k, "UNI", u, patronkittest.Item(t, k, "UNI"))
	k.Email.Refuse(errors.New("mail server down"))
	if n, err := k.Circulation.SendNotices(ctx); err != nil || n != 0 || len(k.Email.Messages()) != 0 {
		t.Fatalf("sent %d (%v) while refused: %+v", n, err, k.Email.Messages())
	}
	k.Email.Refuse(nil)
	if n, err := k.Circulation.SendNotices(ctx); err != nil || n != 1 || len(k.Email.Messages()) != 1 {
		t.Fatalf("sent %d (%v) once accepted: %+v", n, err, k.Email.Messages())
	}
	k.Email.Reset()
	if len(k.Email.Messages()) != 0 {
		t.Fatal("Reset kept the messages")
	}
}

// sisFile is an Alma SIS file with a user per primary_id (a blank one
// has no last name, and is rejected).
func sisFile(ids ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<users>\n")
	for _, id := range ids {
		last := "Student"
		if strings.HasPrefix(id, "nameless") {
			last = ""
		}
		fmt.Fprintf(&b, "<user><primary_id>%s</primary_id><first_name>S</first_name><last_name>%s</last_name><user_group>UNDERGRAD</user_group></user>\n", id, last)
	}
	b.WriteString("</users>\n")
	return b.String()
}

// An SIS profile reads the in-memory source's files, once each.
func TestTheSourceFeedsSISRuns(t *testing.T) {
	ctx := context.Background()
	src := patronkittest.NewSource("registrar")
	k := patronkittest.New(t, func(c *patronkit.Config) { c.Sources = []sis.Source{src} })
	if _, err := k.SIS.CreateProfile(ctx, "UNI", &sis.Profile{Code: "REG", Source: src.Name(), Mode: sis.ModeSynchronize}); err != nil {
		t.Fatal(err)
	}
	src.Add("monday.xml", sisFile("s1", "s2"))
	src.Add("tuesday.xml", sisFile("s3", "nameless1"))
	run := func() *sis.Run {
		t.Helper()
		r, err := k.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r, err = k.SIS.Wait(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := run(); r.Status != sis.RunSucceeded || r.Created != 3 || r.Rejected != 1 || r.Files != "monday.xml,tuesday.xml" {
		t.Fatalf("first run %+v", r)
	}
	if marked, ok := src.Marked("monday.xml"); !marked || !ok {
		t.Fatalf("monday.xml marked %v, ok %v", marked, ok)
	}
	if r := run(); r.Created != 0 || r.Files != "" {
		t.Fatalf("a second run read the files again: %+v", r)
	}

	// Held, a run stays in progress and keeps the profile.
	src.Add("wednesday.xml", sisFile("s4"))
	src.Hold()
	r, err := k.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{}); !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("a second run while one is held: %v", err)
	}
	src.Release()
	if r, err = k.SIS.Wait(ctx, r.ID); err != nil || r.Created != 1 {
		t.Fatalf("the released run %+v, %v", r, err)
	}
}
