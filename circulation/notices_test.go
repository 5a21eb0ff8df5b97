package circulation_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/adapters/notify"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/smtptest"
	"github.com/patronkit/patronkit/patron"
)

// noticeFixture is the loan fixture with a real SMTP server and an SMS
// gateway on loopback, and senders (services) that use them; student1
// reads email in Spanish, faculty1 takes SMS, student2 has no address.
type noticeFixture struct {
	*loanFixture
	smtp *smtptest.Server
	sms  *smsGateway
}

type smsGateway struct {
	mu   sync.Mutex
	got  []map[string]string
	fail bool
}

func (g *smsGateway) texts() []map[string]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.got)
}

var spanish = fstest.MapFS{"es/loan_receipt.tmpl": {Data: []byte(
	`{{define "subject"}}Préstamo: {{.Title}}{{end}}{{define "sms"}}Préstamo: {{.Title}}{{end}}{{define "body"}}Hola {{.Name}}: {{.Title}} vence el {{.DueDate}}.{{end}}`)}}

func newNoticeFixture(t *testing.T, db *gorm.DB) *noticeFixture {
	t.Helper()
	f := &noticeFixture{loanFixture: newLoanFixture(t, db), smtp: smtptest.Start(t, "", ""), sms: &smsGateway{}}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.sms.mu.Lock()
		defer f.sms.mu.Unlock()
		if f.sms.fail {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		var b map[string]string
		_ = json.NewDecoder(r.Body).Decode(&b)
		f.sms.got = append(f.sms.got, b)
	}))
	t.Cleanup(gw.Close)
	if _, err := f.patrons.AddEmail(f.ctx, "UNI", "student1", patron.Email{EmailAddress: "sam@uni.example", Preferred: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.patrons.AddPhone(f.ctx, "UNI", "faculty1", patron.Phone{PhoneNumber: "+15550001", PreferredSMS: true}); err != nil {
		t.Fatal(err)
	}
	u, err := f.patrons.Get(f.ctx, "UNI", "student1")
	if err != nil {
		t.Fatal(err)
	}
	u.PreferredLanguage = "es"
	if _, err := f.patrons.Replace(f.ctx, "UNI", "student1", u.Version, u); err != nil {
		t.Fatal(err)
	}
	f.svc = f.sender(t, db, gw.URL)
	return f
}

// sender is a service (an instance) that sends through the fixture's
// SMTP server and gateway.
func (f *noticeFixture) sender(t *testing.T, db *gorm.DB, gateway string) *circulation.Service {
	t.Helper()
	s, err := circulation.NewService(db, circulation.Options{Now: f.clock.Now, Logger: slog.New(slog.DiscardHandler), Patrons: f.patrons,
		Email:     &notify.SMTP{Host: f.smtp.Host, Port: f.smtp.Port, From: "library@uni.example", TLS: "none"},
		SMS:       &notify.SMSGateway{URL: gateway},
		Templates: spanish})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *noticeFixture) send(t *testing.T, want int) {
	t.Helper()
	n, err := f.svc.SendNotices(f.ctx)
	if err != nil || n != want {
		t.Fatalf("sent %d notices, want %d: %v", n, want, err)
	}
}

func TestNoticesGoOutOnceByTheChannelThePatronChose(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newNoticeFixture(t, db)
		l := f.checkOut(t, "student1", "B1")
		f.checkOut(t, "faculty1", "B2")
		f.checkOut(t, "student2", "B3")
		f.send(t, 2)
		f.send(t, 0)

		mail := f.smtp.Messages()
		if len(mail) != 1 || mail[0].To[0] != "sam@uni.example" || mail[0].Subject != "Préstamo: Book 1" || !strings.Contains(mail[0].Body, "Hola Pat Ron: Book 1 vence el") {
			t.Fatalf("email %+v", mail)
		}
		texts := f.sms.texts()
		if len(texts) != 1 || texts[0]["to"] != "+15550001" || !strings.Contains(texts[0]["text"], `you borrowed "Book 2" (B2)`) {
			t.Fatalf("texts %+v", texts)
		}
		ns, err := f.svc.Notices(f.ctx, "UNI", "student2")
		if err != nil || len(ns) != 1 || ns[0].Status != circulation.NoticeSkipped || ns[0].Error != "no email address or SMS phone" {
			t.Fatalf("student2's notices %+v, %v", ns, err)
		}

		// Archived on the record as it was sent.
		ns, _ = f.svc.Notices(f.ctx, "UNI", "student1")
		if len(ns) != 1 || ns[0].Status != circulation.NoticeSent || ns[0].Language != "es" || ns[0].AttachmentID == "" {
			t.Fatalf("student1's notices %+v", ns)
		}
		a, body, err := f.patrons.AttachmentContent(f.ctx, "UNI", "student1", ns[0].AttachmentID)
		if err != nil || a.Kind != patron.AttachmentNotice || !strings.Contains(string(body), "Subject: Préstamo: Book 1") {
			t.Fatalf("archived %+v %q, %v", a, body, err)
		}

		// Due soon, then overdue: each once per due date, whoever runs the
		// jobs how often.
		f.clock.Set(l.DueAt.Add(-24 * time.Hour))
		for range 2 {
			if _, err := f.svc.QueueDueNotices(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		f.send(t, 1) // student1's; student2 has no address, faculty1 is due in December
		if mail = f.smtp.Messages(); len(mail) != 2 || mail[1].Subject != "Due soon: Book 1" {
			t.Fatalf("email %+v", mail)
		}
		f.clock.Set(l.DueAt.Add(3 * 24 * time.Hour))
		for range 2 {
			if _, err := f.svc.QueueDueNotices(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		f.send(t, 1)
		if mail = f.smtp.Messages(); len(mail) != 3 || mail[2].Subject != "Overdue: Book 1" {
			t.Fatalf("email %+v", mail)
		}
		f.send(t, 0)
	})
}

func TestPatronsOptOutOfOptionalNotices(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newNoticeFixture(t, db)
		_, err := f.svc.SetNoticeOptOuts(f.ctx, "UNI", "student1", []string{"due_soon", "overdue"})
		wantField(t, err, "notice_opt_outs[1]", "unknown_value")
		got, err := f.svc.SetNoticeOptOuts(f.ctx, "UNI", "student1", []string{"loan_receipt", " DUE_SOON ", "loan_receipt"})
		if err != nil || !slices.Equal(got, []string{"due_soon", "loan_receipt"}) {
			t.Fatalf("opt-outs %v, %v", got, err)
		}
		if got, _ := f.svc.NoticeOptOuts(f.ctx, "UNI", "student1"); !slices.Equal(got, []string{"due_soon", "loan_receipt"}) {
			t.Fatalf("opt-outs read back %v", got)
		}
		l := f.checkOut(t, "student1", "B1")
		f.clock.Set(l.DueAt.Add(-time.Hour))
		if _, err := f.svc.QueueDueNotices(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.send(t, 0)
		ns, _ := f.svc.Notices(f.ctx, "UNI", "student1")
		if len(ns) != 2 || ns[0].Status != circulation.NoticeSkipped || ns[1].Status != circulation.NoticeSkipped {
			t.Fatalf("notices %+v", ns)
		}
		if got, err := f.svc.SetNoticeOptOuts(f.ctx, "UNI", "student1", nil); err != nil || len(got) != 0 {
			t.Fatalf("opting in again: %v, %v", got, err)
		}
	})
}

// A channel that refuses keeps the notice pending, tried again on later
// runs, until it fails; a sender that stops between claiming and sending
// leaves the notice to be taken again once its claim has lasted.
func TestNoticesAreTriedAgainAndNeverSentTwiceAtOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newNoticeFixture(t, db)
		f.smtp.Refuse(true)
		f.checkOut(t, "student1", "B1")
		for range 4 {
			f.send(t, 0)
		}
		ns, _ := f.svc.Notices(f.ctx, "UNI", "student1")
		if ns[0].Status != circulation.NoticePending || ns[0].Attempts != 4 || !strings.Contains(ns[0].Error, "refused for the test") {
			t.Fatalf("after four refusals %+v", ns[0])
		}
		f.send(t, 0)
		ns, _ = f.svc.Notices(f.ctx, "UNI", "student1")
		if ns[0].Status != circulation.NoticeFailed || ns[0].Attempts != 5 {
			t.Fatalf("after five refusals %+v", ns[0])
		}
		f.smtp.Refuse(false)

		// Eight notices, two senders at once: each sent once.
		for range 8 {
			if _, err := f.svc.AddFee(f.ctx, "UNI", "student1", circulation.NewFee{Amount: 100, Currency: "USD", Description: "Printing"}); err != nil {
				t.Fatal(err)
			}
		}
		other := f.sender(t, db, "http://127.0.0.1:1")
		var wg sync.WaitGroup
		counts := make([]int, 2)
		for i, s := range []*circulation.Service{f.svc, other} {
			wg.Go(func() {
				n, err := s.SendNotices(f.ctx)
				if err != nil {
					t.Errorf("sender %d: %v", i, err)
				}
				counts[i] = n
			})
		}
		wg.Wait()
		if counts[0]+counts[1] != 8 || len(f.smtp.Messages()) != 8 {
			t.Fatalf("sent %v, the server took %d", counts, len(f.smtp.Messages()))
		}

		// A sender stopped after claiming a notice: taken again after the
		// claim (10 minutes).
		f.checkOut(t, "faculty1", "B9")
		if err := db.Model(&circulation.Notice{}).Where("status = ?", circulation.NoticePending).
			Updates(map[string]any{"status": circulation.NoticeSending, "claimed": f.clock.Now(), "attempts": 1}).Error; err != nil {
			t.Fatal(err)
		}
		f.send(t, 0)
		f.clock.Set(f.clock.Now().Add(11 * time.Minute))
		f.send(t, 1)
		if texts := f.sms.texts(); len(texts) != 1 {
			t.Fatalf("texts %+v", texts)
		}
	})
}

// Each event writes its notice: a request on the hold shelf, a request
// cancelled, a fee charged.
func TestEventsWriteTheirNotices(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newNoticeFixture(t, db)
		f.withRequests(t)
		f.checkOut(t, "faculty1", "B1")
		r := f.request(t, "student1", circulation.NewRequest{Barcode: "B1"})
		other := f.request(t, "student1", circulation.NewRequest{Barcode: "B2"}) // on the shelf: held at once
		if _, err := f.svc.CheckIn(f.ctx, "UNI", "B1"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.CancelRequest(f.ctx, "UNI", "student1", other.ID, "changed my mind"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.AddFee(f.staff("librarian"), "UNI", "student1", circulation.NewFee{Amount: 250, Currency: "USD", Description: "Printing"}); err != nil {
			t.Fatal(err)
		}
		ns, err := f.svc.Notices(f.ctx, "UNI", "student1")
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, n := range ns {
			kinds = append(kinds, n.Kind)
		}
		slices.Sort(kinds)
		want := []string{"fine_charged", "on_hold_shelf", "on_hold_shelf", "request_cancelled"}
		if !slices.Equal(kinds, want) {
			t.Fatalf("notices %q, want %q", kinds, want)
		}
		f.send(t, 5) // and faculty1's loan receipt, by SMS
		var subjects []string
		for _, m := range f.smtp.Messages() {
			subjects = append(subjects, m.Subject)
		}
		slices.Sort(subjects)
		if !slices.Equal(subjects, []string{"Charge on your account: 2.50 USD", "Ready for pickup: Book 1", "Ready for pickup: Book 2", "Request cancelled: Book 2"}) {
			t.Fatalf("subjects %q", subjects)
		}
		_ = r
	})
}
