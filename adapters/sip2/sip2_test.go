package sip2_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sip2"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

const inst = "UNI"

// fixture is a kit with two libraries (MAIN in New York time, SCIENCE
// in UTC), terms of use, a kiosk account that works at MAIN as a
// circulation desk, one that may only read (an auditor), a patron with
// a PIN, and a SIP2 server on a loopback port.
type fixture struct {
	k      *patronkittest.Kit
	srv    *sip2.Server
	addr   string
	patron *patron.User
}

const (
	kioskID  = "kiosk1"
	kioskPW  = "4321"
	readerID = "kiosk-reader"
	patronPW = "1234"
)

func setup(t *testing.T, k *patronkittest.Kit, change ...func(*sip2.Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	for _, l := range []circulation.Library{{Code: "MAIN", Name: "Main Library", TimeZone: "America/New_York"}, {Code: "SCIENCE", Name: "Science Library", TimeZone: "UTC"}} {
		if _, err := k.Circulation.CreateLibrary(ctx, inst, &l); err != nil {
			t.Fatal(err)
		}
	}
	patronkittest.Terms(t, k, inst, circulation.Rule{Name: "everyone", Terms: circulation.Terms{
		LoanPeriod: 3, LoanPeriodUnit: circulation.Weeks, Renewals: 1, RequestsAllowed: true, PickupAnyLibrary: true, MaxLoans: 5,
	}})
	for _, s := range []struct{ id, role string }{{kioskID, "circulation-desk-operator"}, {readerID, "auditor"}} {
		patronkittest.User(t, k, inst, func(u *patron.User) {
			u.PrimaryID, u.RecordType, u.PINNumber, u.UserGroup = s.id, patron.RecordStaff, kioskPW, "STAFF"
		})
		if err := k.Access.AssignRole(ctx, inst, s.id, s.role, "MAIN"); err != nil {
			t.Fatal(err)
		}
	}
	p := patronkittest.User(t, k, inst, func(u *patron.User) {
		u.PrimaryID, u.FirstName, u.LastName, u.PINNumber = "alice", "Alice", "Reader", patronPW
		u.UserGroup, u.BirthDate, u.PreferredLanguage, u.CampusCode = "UNDERGRAD", "2004-02-29", "es", "MAIN"
		u.Identifiers = []patron.Identifier{{IDType: "BARCODE", Value: "2100001"}}
	})
	opts := &sip2.Options{Institution: inst}
	for _, c := range change {
		c(opts)
	}
	srv, err := sip2.Listen(k.Kit, "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{k: k, srv: srv, addr: srv.Addr().String(), patron: p}
}

// item creates an item of library lib.
func (f *fixture) item(t *testing.T, lib string, opts ...func(*circulation.Item)) *circulation.Item {
	t.Helper()
	return patronkittest.Item(t, f.k, inst, append([]func(*circulation.Item){func(it *circulation.Item) { it.Library = lib }}, opts...)...)
}

// signedIn is a kiosk signed in as id at MAIN.
func (f *fixture) signedIn(t *testing.T, id string) *kiosk {
	t.Helper()
	k := dial(t, f.addr)
	if rp := k.send(login(id, kioskPW, "MAIN")); rp.code != "94" || rp.fixed != "1" {
		t.Fatalf("login: %q", rp.raw)
	}
	return k
}

// entries are the audit trail's entries whose way in starts with via.
func (f *fixture) entries(t *testing.T, via string) []string {
	t.Helper()
	es, err := f.k.Privacy.Entries(context.Background(), inst, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if strings.HasPrefix(e.Via, via) {
			out = append(out, e.ActorID+" "+e.Action+" "+e.Subject+" "+e.What+" "+e.ActorLibrary)
		}
	}
	return out
}

func TestAPatronsVisit(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k)
		ctx := context.Background()
		book := f.item(t, "MAIN", func(it *circulation.Item) { it.MaterialType = "BOOK"; it.Title = "A Study in Scarlet" })
		other := patronkittest.User(t, k, inst)

		ks := f.signedIn(t, kioskID)
		st := ks.send(scStatus())
		if st.code != "98" || st.fixed[:3] != "YYY" || st.f("BX") != "YYYYYYYYYYYNNNYY" || st.f("AN") != "MAIN" || st.f("AM") != "Main Library" {
			t.Fatalf("SC status: %q", st.raw)
		}
		if !strings.HasSuffix(st.fixed, "2.00") {
			t.Errorf("SC status protocol version: %q", st.fixed)
		}

		// The patron signs in with the barcode on their card.
		pi := ks.send(patronInfo(inst, "2100001", patronPW, -1, 0, 0))
		if pi.code != "64" || pi.f("BL") != "Y" || pi.f("CQ") != "Y" || pi.f("AE") != "Alice Reader" || pi.f("AA") != "alice" {
			t.Fatalf("patron information: %q", pi.raw)
		}
		if pi.fixed[14:17] != "008" || pi.f("PB") != "20040229" || pi.f("PC") != "UNDERGRAD" || pi.f("AQ") != "MAIN" || pi.f("BH") != "USD" || pi.f("BV") != "0.00" {
			t.Errorf("patron information extras: %q", pi.raw)
		}

		// Borrows: due in three weeks, at the end of the day in New York.
		co := ks.send(checkout(inst, "alice", patronPW, book.Barcode))
		if co.code != "12" || co.fixed[0] != '1' || co.fixed[1] != 'N' || co.f("AJ") != "A Study in Scarlet" || co.f("CK") != "001" {
			t.Fatalf("check-out: %q", co.raw)
		}
		loans, err := k.Circulation.Loans(ctx, inst, "alice", true)
		if err != nil || len(loans) != 1 {
			t.Fatalf("loans: %v %v", loans, err)
		}
		ny, _ := timeIn("America/New_York")
		want := loans[0].DueAt.In(ny).Format("20060102") + "    " + loans[0].DueAt.In(ny).Format("150405")
		if co.f("AH") != want {
			t.Errorf("due date %q, want %q (local time, blank zone)", co.f("AH"), want)
		}

		// Renews, a week later.
		k.Clock.Set(patronkittest.Start.Add(7 * 24 * time.Hour))
		rn := ks.send(renew(inst, "alice", patronPW, book.Barcode))
		if rn.code != "30" || rn.fixed[:2] != "1Y" || rn.f("AH") == co.f("AH") {
			t.Fatalf("renew: %q", rn.raw)
		}
		// Someone asks for the book, to pick it up at SCIENCE.
		if _, err := k.Circulation.PlaceRequest(ctx, inst, other.PrimaryID, circulation.NewRequest{Barcode: book.Barcode, PickupLibrary: "SCIENCE"}); err != nil {
			t.Fatal(err)
		}
		ii := ks.send(itemInfo(inst, book.Barcode))
		if ii.code != "18" || ii.fixed[:2] != "04" || ii.f("CF") != "1" || ii.f("AH") != rn.f("AH") || ii.f("AJ") != "A Study in Scarlet" || ii.f("BG") != "MAIN" {
			t.Fatalf("item information: %q", ii.raw)
		}
		// Returns it: the alert, and where it goes.
		ci := ks.send(checkin(inst, book.Barcode))
		if ci.code != "10" || ci.fixed[0] != '1' || ci.fixed[3] != 'Y' || ci.f("CV") != "02" || ci.f("CT") != "SCIENCE" || !strings.Contains(ci.f("AF"), "hold shelf") {
			t.Fatalf("check-in: %q", ci.raw)
		}
		if it, _ := k.Circulation.Item(ctx, inst, book.Barcode); it.Status != circulation.StatusOnHoldShelf {
			t.Errorf("item status %q after the return", it.Status)
		}
		// Pays a fee.
		fee, err := k.Circulation.AddFee(ctx, inst, "alice", circulation.NewFee{Amount: 1250, Currency: "USD", Description: "Replacement card"})
		if err != nil {
			t.Fatal(err)
		}
		ps := ks.send(patronStatus(inst, "alice", patronPW))
		if ps.code != "24" || ps.f("BV") != "12.50" || ps.f("BH") != "USD" || ps.f("BL") != "Y" || ps.f("CQ") != "Y" {
			t.Fatalf("patron status: %q", ps.raw)
		}
		fp := ks.send(feePaid(inst, "alice", patronPW, "12.50", "USD", ""))
		if fp.code != "38" || fp.fixed[0] != 'Y' || fp.f("BK") != fee.ID {
			t.Fatalf("fee paid: %q", fp.raw)
		}
		if bal, _ := k.Circulation.Balance(ctx, inst, "alice"); bal["USD"] != 0 {
			t.Errorf("balance after paying: %v", bal)
		}
		es := ks.send(endSession(inst, "alice"))
		if es.code != "36" || es.fixed[0] != 'Y' {
			t.Fatalf("end session: %q", es.raw)
		}
		// Every message checks its own PIN: none, nothing lent.
		if co := ks.send(checkout(inst, "alice", "", book.Barcode)); co.fixed[0] != '0' || co.f("AF") != "please enter your PIN" {
			t.Errorf("check-out without a PIN: %q", co.raw)
		}

		// On the audit trail: the kiosk's account, by SIP2, in MAIN.
		got := f.entries(t, "sip2 checkout kiosk1")
		if !contains(got, "kiosk1 create alice loans MAIN") {
			t.Errorf("audit of the check-out: %q", got)
		}
		if got := f.entries(t, "sip2 fee-paid kiosk1"); len(got) == 0 {
			t.Errorf("no audit of the payment")
		}
		if got := f.entries(t, "sip2 checkin kiosk1"); len(got) == 0 {
			t.Errorf("no audit of the return")
		}
	})
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

func TestRefusalsReachTheScreen(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k)
		ctx := context.Background()
		ks := f.signedIn(t, kioskID)
		lent := f.item(t, "MAIN")
		sci := f.item(t, "SCIENCE")
		bob := patronkittest.User(t, k, inst, func(u *patron.User) { u.PINNumber = "9999" })
		patronkittest.Loan(t, k, inst, bob, lent)

		free := f.item(t, "MAIN")
		for _, c := range []struct {
			name, msg, want string
		}{
			{"no PIN", checkout(inst, "alice", "", free.Barcode), "please enter your PIN"},
			{"a wrong PIN", checkout(inst, "alice", "0000", free.Barcode), "wrong PIN"},
			{"on loan to another", checkout(inst, "alice", patronPW, lent.Barcode), "el ejemplar " + lent.Barcode + " está prestado"},
			{"an unknown item", checkout(inst, "alice", patronPW, "NO-SUCH"), "item NO-SUCH is not known"},
			{"an unknown patron", checkout(inst, "nobody", patronPW, free.Barcode), "patron nobody is not known"},
			{"another library's item", checkout(inst, "alice", patronPW, sci.Barcode), "may not lend items in library SCIENCE"},
			{"a return of an item not lent", checkin(inst, free.Barcode), "is not on loan"},
			{"a renewal of an item not lent", renew(inst, "alice", patronPW, free.Barcode), "not on loan to you"},
			{"too much paid", feePaid(inst, "alice", patronPW, "5.00", "USD", ""), "more than the 0.00 USD owed"},
			{"an amount that is none", feePaid(inst, "alice", patronPW, "1.234", "USD", ""), "is not an amount of USD"},
		} {
			rp := ks.send(c.msg)
			if (rp.code == "12" || rp.code == "10" || rp.code == "30") && rp.fixed[0] != '0' || rp.code == "38" && rp.fixed[0] != 'N' {
				t.Errorf("%s: not refused: %q", c.name, rp.raw)
			}
			if !strings.Contains(rp.f("AF"), c.want) {
				t.Errorf("%s: AF %q, want it to say %q", c.name, rp.f("AF"), c.want)
			}
		}

		// A manual block stops borrowing, with its reason.
		if _, err := k.Patrons.AddBlock(ctx, inst, "alice", patron.Block{BlockType: "GENERAL", BlockDescription: "Library card reported stolen"}); err != nil {
			t.Fatal(err)
		}
		rp := ks.send(checkout(inst, "alice", patronPW, free.Barcode))
		if rp.fixed[0] != '0' || !strings.Contains(rp.f("AF"), "Library card reported stolen") {
			t.Errorf("blocked patron: %q", rp.raw)
		}
		if ps := ks.send(patronStatus(inst, "alice", patronPW)); ps.fixed[0] != 'Y' || ps.fixed[1] != 'Y' {
			t.Errorf("blocked patron's status: %q", ps.raw)
		}

		// The hold shelf: an item held for bob is not lent to alice.
		held := f.item(t, "MAIN")
		carol := patronkittest.User(t, k, inst, func(u *patron.User) { u.PINNumber = "5555" })
		patronkittest.Loan(t, k, inst, carol, held)
		if _, err := k.Circulation.PlaceRequest(ctx, inst, bob.PrimaryID, circulation.NewRequest{Barcode: held.Barcode}); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Circulation.CheckIn(ctx, inst, held.Barcode); err != nil {
			t.Fatal(err)
		}
		if rp := ks.send(checkout(inst, carol.PrimaryID, "5555", held.Barcode)); rp.fixed[0] != '0' || !strings.Contains(rp.f("AF"), "on the hold shelf for another patron") {
			t.Errorf("item on the hold shelf: %q", rp.raw)
		}
		// No renewals left.
		k.Clock.Set(patronkittest.Start.Add(7 * 24 * time.Hour))
		if rp := ks.send(renew(inst, bob.PrimaryID, "9999", lent.Barcode)); rp.fixed[0] != '1' {
			t.Fatalf("first renewal: %q", rp.raw)
		}
		if rp := ks.send(renew(inst, bob.PrimaryID, "9999", lent.Barcode)); rp.code != "30" || rp.fixed[0] != '0' || !strings.Contains(rp.f("AF"), "renew") {
			t.Errorf("a renewal past the limit: %q", rp.raw)
		}

		// The most loans the terms allow.
		dave := patronkittest.User(t, k, inst, func(u *patron.User) { u.PINNumber = "7531" })
		for range 5 {
			patronkittest.Loan(t, k, inst, dave, f.item(t, "MAIN"))
		}
		if rp := ks.send(checkout(inst, dave.PrimaryID, "7531", free.Barcode)); rp.fixed[0] != '0' || !strings.Contains(rp.f("AF"), "already has 5 loans") {
			t.Errorf("a patron at the loan limit: %q", rp.raw)
		}

		// A kiosk whose account may not lend nor take back.
		ro := f.signedIn(t, readerID)
		if st := ro.send(scStatus()); st.fixed[:4] != "YNNN" {
			t.Errorf("SC status of a kiosk that may not lend: %q", st.raw)
		}
		for _, m := range []string{checkout(inst, bob.PrimaryID, "9999", free.Barcode), checkin(inst, lent.Barcode), renew(inst, bob.PrimaryID, "9999", lent.Barcode),
			feePaid(inst, bob.PrimaryID, "9999", "1.00", "USD", ""), renewAll(inst, bob.PrimaryID, "9999")} {
			rp := ro.send(m)
			if !strings.Contains(rp.f("AF"), "this machine may not") {
				t.Errorf("kiosk that may not: %q", rp.raw)
			}
		}
		if it, _ := k.Circulation.Item(ctx, inst, free.Barcode); it.Status != circulation.StatusAvailable {
			t.Errorf("the refused check-out changed the item: %s", it.Status)
		}
		// Nothing before the login.
		anon := dial(t, f.addr)
		if rp := anon.send(checkout(inst, "alice", patronPW, free.Barcode)); rp.code != "12" || rp.fixed[0] != '0' || !strings.Contains(rp.f("AF"), "sign in") {
			t.Errorf("check-out before the login: %q", rp.raw)
		}
	})
}

func alice(t *testing.T, k *patronkittest.Kit) *patron.User {
	t.Helper()
	u, err := k.Patrons.Get(context.Background(), inst, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSignInFailuresCountTowardTheLockout(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k)
		ctx := context.Background()
		// A failed login signs a connection out.
		again := f.signedIn(t, readerID)
		if rp := again.send(login(readerID, "wrong", "MAIN")); rp.fixed != "0" {
			t.Fatalf("a wrong password: %q", rp.raw)
		}
		if rp := again.send(patronStatus(inst, "alice", patronPW)); rp.f("BL") != "N" || !strings.Contains(rp.f("AF"), "sign in first") {
			t.Errorf("patron status after a failed login: %q", rp.raw)
		}
		ks := dial(t, f.addr)
		for range 5 {
			if rp := ks.send(login(kioskID, "wrong", "MAIN")); rp.fixed != "0" {
				t.Fatalf("login with a wrong password: %q", rp.raw)
			}
		}
		// Locked for the kiosk's address, like an HTTP client's.
		if rp := ks.send(login(kioskID, kioskPW, "MAIN")); rp.fixed != "0" {
			t.Errorf("login after five wrong passwords: %q", rp.raw)
		}
		if _, err := k.Patrons.SignIn(ctx, inst, kioskID, kioskPW, "127.0.0.1"); err == nil {
			t.Errorf("the kiosk account is not locked for its address")
		}
		// Not a staff account; an unknown library.
		if rp := ks.send(login("alice", patronPW, "MAIN")); rp.fixed != "0" {
			t.Errorf("a patron's login: %q", rp.raw)
		}
		// Wrong patron PINs lock the patron at this address.
		kk := f.signedIn(t, readerID)
		for range 5 {
			if rp := kk.send(patronStatus(inst, "alice", "0000")); rp.f("CQ") != "N" || rp.f("BL") != "Y" {
				t.Fatalf("wrong PIN: %q", rp.raw)
			}
		}
		rp := kk.send(patronStatus(inst, "alice", patronPW))
		if rp.f("CQ") != "N" || !strings.Contains(rp.f("AF"), "too many wrong PINs") {
			t.Errorf("right PIN after five wrong ones: %q", rp.raw)
		}
		if got := f.entries(t, ""); len(got) == 0 {
			t.Fatal("no audit entries")
		}
		// An unknown patron: BL and CQ both N, explicitly.
		if rp := kk.send(patronStatus(inst, "nobody", "1")); rp.f("BL") != "N" || rp.f("CQ") != "N" || !rp.has("BL") || !rp.has("CQ") {
			t.Errorf("unknown patron: %q", rp.raw)
		}
		if rp := kk.send(login(readerID, kioskPW, "NOWHERE")); rp.fixed != "0" {
			t.Errorf("login at an unknown library: %q", rp.raw)
		}
	})
}

func TestPatronInformationSummary(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k)
		ctx := context.Background()
		a := alice(t, k)
		var items []*circulation.Item
		for range 3 {
			it := f.item(t, "MAIN")
			items = append(items, it)
			patronkittest.Loan(t, k, inst, a, it)
		}
		// One overdue, one waiting request, one on the shelf, one fee.
		k.Clock.Set(patronkittest.Start.Add(22 * 24 * time.Hour))
		lentOut := f.item(t, "SCIENCE")
		bob := patronkittest.User(t, k, inst)
		patronkittest.Loan(t, k, inst, bob, lentOut)
		if _, err := k.Circulation.PlaceRequest(ctx, inst, "alice", circulation.NewRequest{Barcode: lentOut.Barcode}); err != nil {
			t.Fatal(err)
		}
		shelf := f.item(t, "MAIN")
		if _, err := k.Circulation.PlaceRequest(ctx, inst, "alice", circulation.NewRequest{Barcode: shelf.Barcode}); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Circulation.AddFee(ctx, inst, "alice", circulation.NewFee{Amount: 300, Currency: "USD", Description: "Printing"}); err != nil {
			t.Fatal(err)
		}
		ks := f.signedIn(t, kioskID)
		rp := ks.send(patronInfo(inst, "alice", patronPW, 2, 2, 3))
		counts := rp.fixed[35:]
		if counts != "000100030003000100000001" {
			t.Errorf("counts %q (hold, overdue, charged, fine, recall, unavailable)", counts)
		}
		if got := rp.fields["AU"]; len(got) != 2 || got[0] != items[1].Barcode || got[1] != items[2].Barcode {
			t.Errorf("charged items 2-3: %q", got)
		}
		if rp.f("BV") != "3.00" {
			t.Errorf("fee amount %q", rp.f("BV"))
		}
		if got := ks.send(patronInfo(inst, "alice", patronPW, 0, 0, 0)).fields["AS"]; len(got) != 1 || got[0] != shelf.Barcode {
			t.Errorf("hold items: %q", got)
		}
		if got := ks.send(patronInfo(inst, "alice", patronPW, 5, 0, 0)).fields["CD"]; len(got) != 1 || got[0] != lentOut.Barcode {
			t.Errorf("unavailable holds: %q", got)
		}
		if got := ks.send(patronInfo(inst, "alice", patronPW, 3, 0, 0)).fields["AV"]; len(got) != 1 || !strings.Contains(got[0], "3.00 USD Printing") {
			t.Errorf("fine items: %q", got)
		}
		// A wrong PIN tells no lists.
		if rp := ks.send(patronInfo(inst, "alice", "0000", 2, 0, 0)); rp.has("AU") || rp.f("CQ") != "N" {
			t.Errorf("lists with a wrong PIN: %q", rp.raw)
		}

		// Renew all: the three loans (one renewal each), then none.
		ra := ks.send(renewAll(inst, "alice", patronPW))
		if ra.code != "66" || ra.fixed[:9] != "100030000" || len(ra.fields["BM"]) != 3 {
			t.Fatalf("renew all: %q", ra.raw)
		}
		ra = ks.send(renewAll(inst, "alice", patronPW))
		if ra.fixed[:9] != "100000003" || len(ra.fields["BN"]) != 3 || ra.f("AF") == "" {
			t.Errorf("renew all again: %q", ra.raw)
		}

		// Block patron: a block on the record, and the status says so.
		bp := ks.send(blockPatron(inst, "alice", "Card kept by the machine"))
		if bp.code != "24" || bp.fixed[0] != 'Y' {
			t.Fatalf("block patron: %q", bp.raw)
		}
		u, err := k.Patrons.Get(ctx, inst, "alice")
		if err != nil || len(u.Blocks) != 1 || u.Blocks[0].BlockNote != "Card kept by the machine" || !strings.Contains(u.Blocks[0].BlockDescription, kioskID) {
			t.Errorf("blocks after 01: %+v %v", u.Blocks, err)
		}
	})
}

func TestManyKiosksAtOnce(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k)
		const n = 12
		type visit struct {
			pid  string
			item string
		}
		visits := make([]visit, n)
		for i := range visits {
			u := patronkittest.User(t, k, inst, func(u *patron.User) { u.PINNumber = "2468" })
			visits[i] = visit{u.PrimaryID, f.item(t, "MAIN").Barcode}
		}
		kiosks := make([]*kiosk, n)
		for i := range kiosks {
			kiosks[i] = f.signedIn(t, kioskID)
		}
		var wg sync.WaitGroup
		errs := make(chan string, 8*n)
		for i, ks := range kiosks {
			wg.Add(1)
			ks.fatal = func(format string, args ...any) {
				errs <- fmt.Sprintf(format, args...)
				runtime.Goexit()
			}
			go func() {
				defer wg.Done()
				v := visits[i]
				for round := range 3 {
					if rp := ks.send(checkout(inst, v.pid, "2468", v.item)); rp.fixed[0] != '1' {
						errs <- "check-out " + v.item + ": " + rp.raw
						return
					}
					if rp := ks.send(checkin(inst, v.item)); rp.fixed[0] != '1' {
						errs <- "check-in " + v.item + ": " + rp.raw
						return
					}
					_ = round
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})
}

func timeIn(name string) (*time.Location, error) { return time.LoadLocation(name) }

func TestCheckOutOfAnItemOnLoanToThePatronRenewsIt(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k)
		ks := f.signedIn(t, kioskID)
		it := f.item(t, "MAIN")
		first := ks.send(checkout(inst, "alice", patronPW, it.Barcode))
		if first.fixed[:2] != "1N" {
			t.Fatalf("check-out: %q", first.raw)
		}
		k.Clock.Set(patronkittest.Start.Add(7 * 24 * time.Hour))
		// The kiosk's renewal policy N: refused, the item being on loan
		// (said in alice's Spanish).
		noRenew := "11NN" + strings.TrimPrefix(checkout(inst, "alice", patronPW, it.Barcode), "11YN")
		if rp := ks.send(noRenew); rp.fixed[0] != '0' || !strings.Contains(rp.f("AF"), "está prestado") {
			t.Errorf("check-out again, renewal policy N: %q", rp.raw)
		}
		// Y: renewed, and the answer says so.
		rp := ks.send(checkout(inst, "alice", patronPW, it.Barcode))
		if rp.code != "12" || rp.fixed[:2] != "1Y" || rp.f("AH") <= first.f("AH") {
			t.Errorf("check-out again, renewal policy Y: %q (first due %q)", rp.raw, first.f("AH"))
		}
		loans, err := k.Circulation.Loans(context.Background(), inst, "alice", true)
		if err != nil || len(loans) != 1 || loans[0].Renewals != 1 {
			t.Errorf("loans after the renewal: %+v %v", loans, err)
		}
	})
}

// The self-check role of casbinmodel/POLICIES.md lends, takes back and
// renews in its library, and reads no patron accounts.
func TestTheSelfCheckRoleOfThePolicies(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy.csv")
	lines := casbinmodel.DefaultPolicy() + "\np, self-check, *, loans.checkout, *\np, self-check, *, loans.checkin, *\np, self-check, *, loans.renew, *\n"
	if err := os.WriteFile(policy, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k)
		patronkittest.User(t, k, inst, func(u *patron.User) {
			u.PrimaryID, u.RecordType, u.PINNumber = "kiosk-main-1", patron.RecordStaff, kioskPW
		})
		if err := k.Access.AssignRole(context.Background(), inst, "kiosk-main-1", "self-check", "MAIN"); err != nil {
			t.Fatal(err)
		}
		ks := f.signedIn(t, "kiosk-main-1")
		if st := ks.send(scStatus()); st.fixed[:4] != "YYYY" {
			t.Errorf("SC status: %q", st.raw)
		}
		it := f.item(t, "MAIN")
		if rp := ks.send(checkout(inst, "alice", patronPW, it.Barcode)); rp.fixed[0] != '1' {
			t.Errorf("check-out: %q", rp.raw)
		}
		if rp := ks.send(patronInfo(inst, "alice", patronPW, 2, 0, 0)); rp.f("BL") != "N" || rp.has("AU") || !strings.Contains(rp.f("AF"), "may not read patrons' accounts") {
			t.Errorf("patron information: %q", rp.raw)
		}
		if rp := ks.send(feePaid(inst, "alice", patronPW, "1.00", "USD", "")); rp.fixed[0] != 'N' || !strings.Contains(rp.f("AF"), "may not take payments") {
			t.Errorf("fee paid: %q", rp.raw)
		}
		if rp := ks.send(checkin(inst, it.Barcode)); rp.fixed[0] != '1' {
			t.Errorf("check-in: %q", rp.raw)
		}
		sci := f.item(t, "SCIENCE")
		if rp := ks.send(checkout(inst, "alice", patronPW, sci.Barcode)); rp.fixed[0] != '0' || !strings.Contains(rp.f("AF"), "SCIENCE") {
			t.Errorf("check-out of a SCIENCE item: %q", rp.raw)
		}
	}, func(c *patronkit.Config) { c.Policies = casbinmodel.FromFiles("", policy) })
}

func TestPatronInformationLimits(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k)
		ctx := context.Background()
		ks := f.signedIn(t, kioskID)
		terms := func(rules []circulation.Rule, limits []circulation.BlockLimit) {
			t.Helper()
			cur, err := k.Circulation.Rules(ctx, inst)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.Circulation.ReplaceRules(ctx, inst, cur.Version, rules, limits); err != nil {
				t.Fatal(err)
			}
		}
		everyone := circulation.Terms{LoanPeriod: 3, LoanPeriodUnit: circulation.Weeks, MaxLoans: 5}

		// The terms' most loans; no overdue, fee nor hold limit set.
		rp := ks.send(patronInfo(inst, "alice", patronPW, -1, 0, 0))
		if rp.f("CB") != "0005" || rp.has("CA") || rp.has("CC") || rp.has("BZ") {
			t.Errorf("limits of the fixture's terms: %q", rp.raw)
		}
		// Not with a wrong PIN.
		if rp := ks.send(patronInfo(inst, "alice", "0000", -1, 0, 0)); rp.has("CB") {
			t.Errorf("limits with a wrong PIN: %q", rp.raw)
		}

		// Another group's rule and limits do not count; alice's group's do.
		balance, overdue, gradOverdue := int64(1000), 2, 9
		grad, dvd := everyone, everyone
		grad.MaxLoans = 50
		terms([]circulation.Rule{
			{UserGroup: "GRAD", Terms: grad},
			{UserGroup: "UNDERGRAD", MaterialType: "DVD", Terms: dvd},
			{Terms: everyone},
			{UserGroup: "UNDERGRAD", Terms: grad}, // never reached: the catch-all comes first
		}, []circulation.BlockLimit{
			{UserGroup: "GRAD", MaxOverdueLoans: &gradOverdue},
			{UserGroup: "UNDERGRAD", MaxOverdueLoans: &overdue, MaxBalance: &balance, Currency: "USD"},
			{MaxOverdueLoans: &gradOverdue},
		})
		rp = ks.send(patronInfo(inst, "alice", patronPW, -1, 0, 0))
		if rp.f("CB") != "0005" || rp.f("CA") != "0002" || rp.f("CC") != "10.00" || rp.f("BH") != "USD" || rp.has("BZ") {
			t.Errorf("limits of alice's group: %q", rp.raw)
		}
		if rp.code != "64" || rp.f("BL") != "Y" || rp.f("CQ") != "Y" {
			t.Errorf("patron information with limits: %q", rp.raw)
		}

		// Most loans depending on the item: no charged items limit; a
		// rule without one: none either.
		dvd.MaxLoans = 2
		terms([]circulation.Rule{{UserGroup: "UNDERGRAD", MaterialType: "DVD", Terms: dvd}, {Terms: everyone}}, nil)
		if rp := ks.send(patronInfo(inst, "alice", patronPW, -1, 0, 0)); rp.has("CB") || rp.has("CA") || rp.has("CC") {
			t.Errorf("limits that depend on the item: %q", rp.raw)
		}
		unlimited := everyone
		unlimited.MaxLoans = 0
		terms([]circulation.Rule{{Terms: unlimited}}, nil)
		if rp := ks.send(patronInfo(inst, "alice", patronPW, -1, 0, 0)); rp.has("CB") {
			t.Errorf("terms without a most loans: %q", rp.raw)
		}
		// The patron status (24) carries no limits.
		if rp := ks.send(patronStatus(inst, "alice", patronPW)); rp.has("CB") || rp.has("CA") || rp.has("CC") {
			t.Errorf("patron status: %q", rp.raw)
		}
	})
}
