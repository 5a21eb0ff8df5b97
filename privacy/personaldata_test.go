package privacy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// auditLog records the audit events of a kit.
type auditLog struct {
	mu     sync.Mutex
	events []patron.AuditEvent
}

func (a *auditLog) Audit(_ context.Context, e patron.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

func (a *auditLog) last() patron.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.events[len(a.events)-1]
}

// Two patrons are the subject of this test: alice, with something of every
// kind held about her, and bob, whom she may borrow for and who has loans,
// a fee and a request of his own.
type twoPatrons struct {
	alice, bob       *patron.User
	aliceLoan        *circulation.Loan
	aliceFee         *circulation.Fee
	aliceRequest     *circulation.Request
	aliceAttachment  *patron.Attachment
	bobLoan, bobPast *circulation.Loan
	bobFee           *circulation.Fee
	bobRequest       *circulation.Request
	runID            string
}

func sisUsers(ids ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<users>\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "<user><primary_id>%s</primary_id><first_name>S</first_name><last_name>Student</last_name></user>\n", id)
	}
	b.WriteString("</users>\n")
	return b.String()
}

// seed makes alice and bob in institution UNI of k.
func seed(t *testing.T, k *patronkittest.Kit, src *patronkittest.Source) twoPatrons {
	t.Helper()
	ctx := context.Background()
	var p twoPatrons
	p.bob = patronkittest.User(t, k, "UNI", func(u *patron.User) {
		u.PrimaryID, u.FirstName, u.LastName = "bob-borrower", "Bartholomew", "Quixley"
		u.Emails = []patron.Email{{EmailAddress: "bart@quixley.example", Preferred: true}}
	})
	p.alice = patronkittest.User(t, k, "UNI", func(u *patron.User) {
		u.PrimaryID, u.FirstName, u.LastName = "alice-reader", "Alicia", "Marchbanks"
		u.Emails = []patron.Email{{EmailAddress: "alicia@marchbanks.example", Preferred: true}}
		u.Notes = []patron.Note{{NoteType: "CIRCULATION", NoteText: "Staff only: prefers large print"},
			{NoteType: "CIRCULATION", NoteText: "Your card expires soon", UserViewable: true}}
		u.ProxyFor = []patron.ProxyFor{{PrimaryID: p.bob.PrimaryID}}
	})
	item := func(title string) *circulation.Item {
		return patronkittest.Item(t, k, "UNI", func(it *circulation.Item) { it.Title = title })
	}
	p.aliceLoan = patronkittest.Loan(t, k, "UNI", p.alice, item("Middlemarch"))
	past := patronkittest.Loan(t, k, "UNI", p.alice, item("Persuasion"))
	if _, err := k.Circulation.CheckIn(ctx, "UNI", past.ItemBarcode); err != nil {
		t.Fatal(err)
	}
	p.bobLoan = patronkittest.Loan(t, k, "UNI", p.bob, item("Bleak House"))
	p.bobPast = patronkittest.Loan(t, k, "UNI", p.bob, item("Zanzibar Quarterly"))
	if _, err := k.Circulation.CheckIn(ctx, "UNI", p.bobPast.ItemBarcode); err != nil {
		t.Fatal(err)
	}
	var err error
	if p.aliceFee, err = k.Circulation.AddFee(ctx, "UNI", p.alice.PrimaryID, circulation.NewFee{Amount: 500, Currency: "USD", Description: "Damaged cover"}); err != nil {
		t.Fatal(err)
	}
	if _, err = k.Circulation.Pay(ctx, "UNI", p.alice.PrimaryID, p.aliceFee.ID, 200); err != nil {
		t.Fatal(err)
	}
	if p.bobFee, err = k.Circulation.AddFee(ctx, "UNI", p.bob.PrimaryID, circulation.NewFee{Amount: 700, Currency: "USD", Description: "Zebra stripes on pages"}); err != nil {
		t.Fatal(err)
	}
	if p.aliceRequest, err = k.Circulation.PlaceRequest(ctx, "UNI", p.alice.PrimaryID,
		circulation.NewRequest{Barcode: p.bobLoan.ItemBarcode, PickupLibrary: patronkittest.DefaultLibrary}); err != nil {
		t.Fatal(err)
	}
	if p.bobRequest, err = k.Circulation.PlaceRequest(ctx, "UNI", p.bob.PrimaryID,
		circulation.NewRequest{Barcode: p.aliceLoan.ItemBarcode, PickupLibrary: patronkittest.DefaultLibrary}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Circulation.SendNotices(ctx); err != nil {
		t.Fatal(err)
	}
	if p.aliceAttachment, err = k.Patrons.AddAttachment(ctx, "UNI", p.alice.PrimaryID,
		patron.Attachment{FileName: "id-card.pdf", ContentType: "application/pdf"}, strings.NewReader("%PDF-1.4")); err != nil {
		t.Fatal(err)
	}
	if _, err := k.SIS.CreateProfile(ctx, "UNI", &sis.Profile{Code: "REG", Source: src.Name(), Mode: sis.ModeSynchronize}); err != nil {
		t.Fatal(err)
	}
	src.Add(fmt.Sprintf("%s.xml", t.Name()), sisUsers(p.alice.PrimaryID, p.bob.PrimaryID, "carol-other"))
	r, err := k.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = k.SIS.Wait(ctx, r.ID); err != nil || r.Status != sis.RunSucceeded {
		t.Fatalf("the SIS run %+v, %v", r, err)
	}
	p.runID = r.ID
	return p
}

func withSource(src *patronkittest.Source, audit *auditLog) patronkittest.Option {
	return func(c *patronkit.Config) {
		c.Sources = []sis.Source{src}
		c.Audit = audit
	}
}

// The personal data of a patron hold every section of what is held about
// them, and nothing of the patron they may borrow for but the primary_id
// of the proxy relation.
func TestPersonalDataHoldTheirDataAndNothingOfAnother(t *testing.T) {
	src := patronkittest.NewSource("registrar")
	audit := &auditLog{}
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		p := seed(t, k, src)
		k.Clock.Advance(time.Hour)
		doc, err := k.PersonalData.PersonalData(context.Background(), "UNI", "ALICE-READER")
		if err != nil {
			t.Fatal(err)
		}
		if !doc.GeneratedAt.Equal(patronkittest.Start.Add(time.Hour)) {
			t.Errorf("generated at %s", doc.GeneratedAt)
		}
		if doc.User.PrimaryID != p.alice.PrimaryID || len(doc.User.Notes) != 2 || len(doc.User.Emails) != 1 ||
			len(doc.User.ProxyFor) != 1 || doc.User.ProxyFor[0].PrimaryID != p.bob.PrimaryID {
			t.Errorf("the user %+v", doc.User)
		}
		if len(doc.Loans) != 1 || doc.Loans[0].ID != p.aliceLoan.ID {
			t.Errorf("loans %+v", doc.Loans)
		}
		if len(doc.LoanHistory) != 1 || doc.LoanHistory[0].ReturnedAt == nil {
			t.Errorf("loan history %+v", doc.LoanHistory)
		}
		if len(doc.Fees) != 1 || doc.Fees[0].ID != p.aliceFee.ID || len(doc.Fees[0].Transactions) != 1 || doc.Fees[0].Transactions[0].Amount != 200 {
			t.Errorf("fees %+v", doc.Fees)
		}
		if len(doc.Requests) != 1 || doc.Requests[0].ID != p.aliceRequest.ID {
			t.Errorf("requests %+v", doc.Requests)
		}
		sent := slices.IndexFunc(doc.Notices, func(n circulation.Notice) bool {
			return n.Status == circulation.NoticeSent && strings.Contains(n.Body, "Middlemarch")
		})
		if sent < 0 {
			t.Errorf("no sent notice with its text about Middlemarch: %+v", doc.Notices)
		}
		var upload, notice bool
		for _, a := range doc.Attachments {
			upload = upload || (a.ID == p.aliceAttachment.ID && a.FileName == "id-card.pdf" && a.Size == 8 && a.Kind == "upload" && a.NoticeID == "")
			notice = notice || (a.Kind == "notice" && a.NoticeID != "")
		}
		if !upload || !notice {
			t.Errorf("attachments %+v", doc.Attachments)
		}
		if len(doc.SISRuns) != 1 || doc.SISRuns[0].RunID != p.runID || doc.SISRuns[0].Profile != "REG" || doc.SISRuns[0].Outcome == "" {
			t.Errorf("SIS runs %+v", doc.SISRuns)
		}
		if doc.Settings == nil || len(doc.Settings.Emails) != 1 || doc.Settings.Emails[0].Value != "alicia@marchbanks.example" {
			t.Errorf("settings %+v", doc.Settings)
		}
		if doc.Roles == nil || len(doc.Roles) != 0 || doc.AccessLog == nil {
			t.Errorf("roles %+v, access log %+v", doc.Roles, doc.AccessLog)
		}

		body, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, other := range []string{"Bartholomew", "Quixley", "bart@quixley", "Zanzibar", "Zebra stripes", "carol-other",
			p.bobLoan.ID, p.bobPast.ID, p.bobFee.ID, p.bobRequest.ID, p.bobPast.ItemBarcode, "pin", "$2a$"} {
			if strings.Contains(string(body), other) {
				t.Errorf("the personal data of %s hold %q", p.alice.PrimaryID, other)
			}
		}
		if t.Failed() {
			t.Logf("the document: %s", body)
		}
		if n := strings.Count(string(body), p.bob.PrimaryID); n != 1 {
			t.Errorf("bob's primary_id appears %d times, want once (the proxy relation):\n%s", n, body)
		}

		last := audit.last()
		if last.Action != patron.AuditExport || last.PrimaryID != p.alice.PrimaryID {
			t.Errorf("the last audit event %+v, want an export of %s", last, p.alice.PrimaryID)
		}

		// Her own download: the same, but for the notes meant for staff.
		own, err := k.PersonalData.OwnPersonalData(context.Background(), "UNI", p.alice.PrimaryID)
		if err != nil {
			t.Fatal(err)
		}
		if len(own.User.Notes) != 1 || own.User.Notes[0].NoteText != "Your card expires soon" || len(own.Loans) != 1 || len(own.LoanHistory) != 1 ||
			len(own.Fees) != 1 || len(own.Requests) != 1 || len(own.Notices) != len(doc.Notices) || len(own.Attachments) != len(doc.Attachments) ||
			len(own.SISRuns) != 1 || len(own.User.ProxyFor) != 1 {
			t.Errorf("her own personal data: %+v", own)
		}
		if last := audit.last(); last.Action != patron.AuditExport || last.PrimaryID != p.alice.PrimaryID {
			t.Errorf("the last audit event %+v, want an export of %s", last, p.alice.PrimaryID)
		}
	}, withSource(src, audit))
}

// Nobody's personal data are answered for a user who does not exist.
func TestPersonalDataOfNobodyIsNotFound(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		if _, err := k.PersonalData.PersonalData(context.Background(), "UNI", "nobody"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("got %v, want NotFound", err)
		}
	})
}

func TestNewPersonalDataServiceNeedsItsServices(t *testing.T) {
	if _, err := privacy.NewPersonalDataService(privacy.PersonalDataOptions{}); err == nil {
		t.Fatal("no error without services")
	}
}
