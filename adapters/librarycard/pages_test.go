package librarycard_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patronkittest"
)

// TestLoansRenewChosenAndAll: the loans page shows due dates, the overdue
// mark and the fine accruing; renewing none chosen is refused next to the
// choice (422) and renews nothing; renewing the chosen loan or all shows
// each loan's outcome, with the reason of each loan not renewed.
func TestLoansRenewChosenAndAll(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		ctx := context.Background()
		v := lib.visitor().signIn("student1", "3333").at("/card/")
		v.get("/card/loans").status(http.StatusOK).has("<title>Loans – My Library Card</title>", "Your loans (2)", "The Origin of Species", "MAIN-1", "Middlemarch", "MAIN-2",
			`<strong class="tag danger">Overdue</strong>`, "Fines accruing on overdue loans", `<input type="checkbox" name="loan_id" value="`+lib.overdue.ID+`">`)
		v.post("/card/loans/renew", url.Values{"scope": {"selected"}}).status(http.StatusUnprocessableEntity).
			has(`id="loans-error"`, "Choose at least one loan to renew", `aria-describedby="loans-error"`)
		if l, _ := k.Circulation.Loan(ctx, Institution, lib.overdue.ID); l.Renewals != 0 {
			t.Fatalf("a refused renewal renewed: %+v", l)
		}
		v.post("/card/loans/renew", url.Values{"scope": {"selected"}, "loan_id": {lib.overdue.ID}}).status(http.StatusOK).
			has("Renewed: 1. Not renewed: 0.", "Renewed, due")
		if l, _ := k.Circulation.Loan(ctx, Institution, lib.overdue.ID); l.Renewals != 1 {
			t.Fatalf("the chosen loan was not renewed: %+v", l)
		}
		v.post("/card/loans/renew", url.Values{"scope": {"all"}}).status(http.StatusOK).
			has("Renewed: 0. Not renewed: 2.", "Not renewed:", "renewing would not move the due date", "item MAIN-2 is requested by another patron")
		if l, _ := k.Circulation.Loan(ctx, Institution, lib.requested.ID); l.Renewals != 0 {
			t.Fatalf("a requested loan was renewed: %+v", l)
		}
		// Another patron's loan named in the form is not theirs to renew.
		f := lib.visitor().signIn("faculty1", "4444")
		f.get("/card/loans").post("/card/loans/renew", url.Values{"scope": {"selected"}, "loan_id": {lib.requested.ID}}).status(http.StatusOK).
			has("Renovados: 0. No renovados: 1.")
		if l, _ := k.Circulation.Loan(ctx, Institution, lib.requested.ID); l.Renewals != 0 {
			t.Fatalf("another patron renewed the loan: %+v", l)
		}
	})
}

// TestRequestsCancel: the requests page shows the status, the place in
// the queue and the pickup library; cancel takes the request away; a
// request of another patron is not found and stays.
func TestRequestsCancel(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		ctx := context.Background()
		f := lib.visitor().signIn("faculty1", "4444")
		f.get("/card/requests?lang=en").has("Your requests (1)", "Middlemarch", "MAIN-2", "Waiting", "<td>1</td>", "<td>MAIN</td>").lacks("Cosmos")
		f.post("/card/requests/"+lib.studentRequest.ID+"/cancel", nil).status(http.StatusNotFound)
		if r, _ := k.Circulation.Request(ctx, Institution, "student1", lib.studentRequest.ID); r.Status != circulation.RequestWaiting {
			t.Fatalf("another patron cancelled the request: %+v", r)
		}
		v := lib.visitor().signIn("student1", "3333")
		v.get("/card/requests").has("Cosmos").post("/card/requests/"+lib.studentRequest.ID+"/cancel", nil).status(http.StatusOK).
			at("/card/requests").has("The request was cancelled.", "You have no requests.")
		if r, _ := k.Circulation.Request(ctx, Institution, "student1", lib.studentRequest.ID); r.Status != circulation.RequestCancelled {
			t.Fatalf("the request was not cancelled: %+v", r)
		}
	})
}

// TestFeesAndMessages: the fees page shows the open fees, the balance and
// the fines accruing; the blocks and messages page the blocks with what
// they stop and the notes meant for the patron, never those for staff.
func TestFeesAndMessages(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		v := lib.visitor().signIn("student1", "3333")
		v.get("/card/fees").status(http.StatusOK).has("Open fees (1)", "Replacement card", "2.50 USD", "Accruing on overdue loans", "1.75 USD")
		v.get("/card/messages").status(http.StatusOK).has("Welcome to the library, Sam.", "There are no blocks on your account.").lacks("Staff only")
		ctx := context.Background()
		if _, err := k.Patrons.AddBlock(ctx, Institution, "student1", blockOf("Unpaid bill")); err != nil {
			t.Fatal(err)
		}
		v.get("/card/messages").has("Unpaid bill", "It stops: borrowing, renewing, requesting")
		// The latest notices sent, with their texts.
		if _, err := k.Circulation.QueueDueNotices(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Circulation.SendNotices(ctx); err != nil {
			t.Fatal(err)
		}
		ns, err := k.Account.Notices(ctx, Institution, "student1")
		if err != nil {
			t.Fatal(err)
		}
		sent := 0
		for _, n := range ns {
			if n.Status == circulation.NoticeSent {
				sent++
				v.get("/card/messages").has(html.EscapeString(n.Subject), html.EscapeString(strings.TrimSpace(strings.SplitN(n.Body, "\n", 2)[0])))
			}
		}
		if sent == 0 {
			t.Fatalf("no notice was sent to show: %+v", ns)
		}
		v.get("/card/").has("Blocks on your account: 1")
	})
}

// TestSettingsChangeAndFieldErrors: a change of language is saved and the
// pages follow it; opt-outs are stored; SMS without a phone is refused
// next to its field (422) and changes nothing.
func TestSettingsChangeAndFieldErrors(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		ctx := context.Background()
		v := lib.visitor().signIn("student1", "3333")
		v.get("/card/settings").status(http.StatusOK).has(`<label for="preferred_language">Language</label>`, "sam@example.edu", "1 College Road, Springfield")
		form := url.Values{"preferred_language": {"en"}, "notices_shown": {"1"}, "sms": {"on"}, "notice_opt_outs": {"due_soon"}, "loan_history": {"library_rule"}}
		v.post("/card/settings", form).status(http.StatusUnprocessableEntity).
			has(`id="sms-error"`, "Text messages need a preferred phone.", `aria-describedby="sms-error"`)
		if outs, _ := k.Circulation.NoticeOptOuts(ctx, Institution, "student1"); len(outs) != 0 {
			t.Fatalf("a refused change stored opt-outs: %v", outs)
		}
		form.Del("sms")
		form.Set("preferred_language", "es")
		v.post("/card/settings", form).status(http.StatusOK).at("/card/settings").has(`<html lang="es">`, "Su configuración se guardó.")
		if outs, _ := k.Circulation.NoticeOptOuts(ctx, Institution, "student1"); len(outs) != 1 || outs[0] != "due_soon" {
			t.Fatalf("opt-outs stored: %v", outs)
		}
		if u, _ := k.Patrons.Get(ctx, Institution, "student1"); u.PreferredLanguage != "es" {
			t.Fatalf("language stored: %q", u.PreferredLanguage)
		}
		// A field the form does not have (the patron's name) is not read.
		v.post("/card/settings", url.Values{"first_name": {"Mallory"}}).status(http.StatusOK)
		if u, _ := k.Patrons.Get(ctx, Institution, "student1"); u.FirstName != "Sam" {
			t.Fatalf("the name changed: %q", u.FirstName)
		}
	})
}

// TestLoanHistoryChoiceAndDelete: the history page shows the returned
// loans and the patron's choice; "delete my history" needs its box
// ticked (422 next to it, nothing deleted), then anonymizes the history.
func TestLoanHistoryChoiceAndDelete(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		ctx := context.Background()
		v := lib.visitor().signIn("student1", "3333")
		v.get("/card/history").status(http.StatusOK).has("Your past loans (1)", "Silent Spring", "MAIN-4", "as the library&#39;s rules say")
		v.post("/card/history/delete", nil).status(http.StatusUnprocessableEntity).has(`id="confirm-error"`, "Tick the box to confirm.")
		if _, n, _ := k.Account.LoanHistory(ctx, Institution, "student1", 0, 0); n != 1 {
			t.Fatalf("history without confirmation: %d loans left, want 1", n)
		}
		v.post("/card/history/delete", url.Values{"confirm": {"yes"}}).status(http.StatusOK).has("Removed your name from 1 loans", "You have no past loans.")
		if _, n, _ := k.Account.LoanHistory(ctx, Institution, "student1", 0, 0); n != 0 {
			t.Fatalf("history after deletion: %d loans left", n)
		}
		v.get("/card/settings").post("/card/settings", url.Values{"loan_history": {"never"}}).status(http.StatusOK).has("Your settings were saved.")
		v.get("/card/history").has("remove my name once returned")
	})
}

// TestItemPageQuoteQueueAndRequest: the item page shows the loan period
// the patron would get (undergraduates four weeks, faculty to the end of
// semester), their place in the queue, and a request form offering only
// the pickup libraries and delivery their terms allow, with the fee; a
// pickup the form did not offer is refused next to the choice.
func TestItemPageQuoteQueueAndRequest(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		ctx := context.Background()
		v := lib.visitor().signIn("student1", "3333")
		v.get("/card/items?barcode=MAIN-2").status(http.StatusOK).at("/card/items/MAIN-2").has("<title>Middlemarch – Item – My Library Card</title>", "You have it on loan.")
		v.get("/card/items/MAIN-5").has("You may borrow it for 4 weeks.", "It is on the shelf: no request is needed.").lacks("Place the request")
		v.get("/card/items/MAIN-3").has("You are number 1 of 1 in the queue.")
		v.get("/card/items/NOPE").status(http.StatusNotFound)
		f := lib.visitor().signIn("faculty1", "4444")
		f.get("/card/items/MAIN-1?lang=en").has("You may borrow it until "+semesterEnd+".", "A request now would be number 1 in the queue (0 before you).",
			"Pick up at Main Library", "Pick up at Science Library", "Deliver to 9 Faculty Row, Springfield (fee 5.00 USD)")
		v.get("/card/items/MAIN-6").has("You may borrow it for 4 weeks.")
		lib.k.Clock.Advance(0)
		if _, err := k.Circulation.CheckOut(ctx, Institution, "faculty1", "MAIN-6", circulation.CheckOutOptions{}); err != nil {
			t.Fatal(err)
		}
		v.get("/card/items/MAIN-6").has("Pick up at Main Library").lacks("Science Library", "Deliver to")
		v.post("/card/items/MAIN-6/request", url.Values{"pickup": {"library:SCIENCE"}}).status(http.StatusUnprocessableEntity).has(`id="pickup-error"`, "Choose where to get it.")
		if rs, _ := k.Circulation.ItemRequests(ctx, Institution, "MAIN-6"); len(rs) != 0 {
			t.Fatalf("a refused request was placed: %+v", rs)
		}
		v.post("/card/items/MAIN-6/request", url.Values{"pickup": {"library:MAIN"}, "not_needed_after": {"2020-01-01"}}).status(http.StatusUnprocessableEntity).
			has(`id="not_needed_after-error"`, `aria-describedby="not_needed_after-error"`)
		v.post("/card/items/MAIN-6/request", url.Values{"pickup": {"library:MAIN"}}).status(http.StatusOK).at("/card/requests").has("The request was placed.", "A Brief History of Time")
		if rs, _ := k.Circulation.ItemRequests(ctx, Institution, "MAIN-6"); len(rs) != 1 || rs[0].PrimaryID != "student1" || rs[0].PickupLibrary != "MAIN" {
			t.Fatalf("requests of MAIN-6: %+v", rs)
		}
		f.get("/card/items/MAIN-1").post("/card/items/MAIN-1/request", url.Values{"pickup": {f.deliveryChoice()}}).status(http.StatusOK).at("/card/requests")
		fees, _ := k.Circulation.Fees(ctx, Institution, "faculty1", true)
		if len(fees) != 1 || fees[0].Amount != 500 || fees[0].Type != circulation.FeeDelivery {
			t.Fatalf("delivery fee: %+v", fees)
		}
	})
}

// TestSecondPatronSeesNoneOfTheFirst: each patron's pages show their own
// account only.
func TestSecondPatronSeesNoneOfTheFirst(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		f := lib.visitor().signIn("faculty1", "4444")
		for _, p := range []string{"/card/", "/card/loans", "/card/requests", "/card/history", "/card/fees", "/card/messages", "/card/settings"} {
			f.get(p).status(http.StatusOK).lacks("student1", "Sam", "MAIN-1<", "MAIN-4", "Replacement card", "sam@example.edu", "College Road", "Welcome to the library", lib.studentRequest.ID)
		}
	})
}

// TestAuditTrailOfThePages: what a patron changes through the pages is on
// the audit trail as theirs, with the page's way in and request id; what
// they only read of their own account is not.
func TestAuditTrailOfThePages(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		ctx := context.Background()
		before, err := k.Privacy.Entries(ctx, Institution, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		v := lib.visitor().signIn("student1", "3333")
		for _, p := range []string{"/card/", "/card/loans", "/card/requests", "/card/history", "/card/fees", "/card/messages", "/card/items/MAIN-5", "/card/settings"} {
			v.get(p).status(http.StatusOK)
		}
		v.post("/card/settings", url.Values{"preferred_language": {"es"}}).status(http.StatusOK)
		reqID := v.res.Request.Response.Header.Get("X-Request-ID")
		after, err := k.Privacy.Entries(ctx, Institution, int64(len(before)), 10000)
		if err != nil {
			t.Fatal(err)
		}
		changed := false
		for _, e := range after {
			if e.Action == "read" {
				t.Errorf("a patron's read of their own account is on the trail: %+v", e)
			}
			if e.ActorID == "student1" && e.Subject == "student1" && e.Via == "web POST /card/settings" && e.RequestID == reqID && reqID != "" {
				changed = true
			}
		}
		if !changed {
			t.Fatalf("the change of settings is not on the trail as the patron's, by the page (request %q): %+v", reqID, after)
		}
	})
}

// TestLoansPageEscapesWhatItShows: a title or barcode holding markup is
// shown as text on the loans page, never as markup.
func TestLoansPageEscapesWhatItShows(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		it := patronkittest.Item(t, k, Institution, func(it *circulation.Item) {
			it.Barcode, it.Title = `X"<b>1`, `<script>alert("t")</script> & co`
		})
		patronkittest.Loan(t, k, Institution, lib.student, it)
		v := lib.visitor().signIn("student1", "3333")
		v.get("/card/loans").status(http.StatusOK).
			has(`&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt; &amp; co`, `X&#34;&lt;b&gt;1`, `href="/card/items/X%22%3Cb%3E1"`).
			lacks(`<script>`, `<b>1`)
	})
}

// TestOverviewAlertsAndHoldShelf: the overview warns of a loan due within
// three days and of an item ready to pick up; the requests page shows
// until when it waits on the hold shelf.
func TestOverviewAlertsAndHoldShelf(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		lib := newLibrary(t, k)
		ctx := context.Background()
		v := lib.visitor().signIn("student1", "3333")
		v.get("/card/").lacks("Loans due within three days", "Ready to pick up")
		k.Clock.Set(lib.requested.DueAt.Add(-48 * time.Hour))
		if _, err := k.Circulation.CheckIn(ctx, Institution, "MAIN-3"); err != nil {
			t.Fatal(err)
		}
		r, err := k.Circulation.Request(ctx, Institution, "student1", lib.studentRequest.ID)
		if err != nil || r.Status != circulation.RequestOnHoldShelf || r.HoldUntil == nil {
			t.Fatalf("the request is not on the hold shelf: %+v %v", r, err)
		}
		v.get("/card/").has("Loans due within three days: 1", "Ready to pick up: 1")
		v.get("/card/requests").has("Ready to pick up", r.HoldUntil.UTC().Format("2006-01-02 15:04"))
	})
}
