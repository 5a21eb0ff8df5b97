package patron_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

func TestDeleteAsksEveryGuardAndListsEveryReason(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "free", FirstName: "F", LastName: "Free", Emails: []patron.Email{{EmailAddress: "f@x.example"}}})
		f.svc.AddDeletionGuard(patron.DeletionGuardFunc(func(ctx context.Context, u *patron.User) ([]string, error) {
			if u.PrimaryID == "jdoe" {
				return []string{"has 2 loans"}, nil
			}
			return nil, nil
		}))
		f.svc.AddDeletionGuard(patron.DeletionGuardFunc(func(ctx context.Context, u *patron.User) ([]string, error) {
			if u.PrimaryID == "jdoe" {
				return []string{"owes 12.00 EUR"}, nil
			}
			return nil, nil
		}))
		err := f.svc.Delete(f.ctx, "UNI", "jdoe")
		e := wantKind(t, err, fault.Refused)
		if strings.Join(e.Reasons, "|") != "has 2 loans|owes 12.00 EUR" {
			t.Fatalf("reasons: %q", e.Reasons)
		}
		if _, err := f.svc.Get(f.ctx, "UNI", "jdoe"); err != nil {
			t.Fatalf("a refused delete removed the user: %v", err)
		}

		if err := f.svc.Delete(f.ctx, "UNI", "free"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Get(f.ctx, "UNI", "free"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("deleted user still there: %v", err)
		}
		var left int64
		db.Model(&patron.Email{}).Where("email_address = ?", "f@x.example").Count(&left)
		if left != 0 {
			t.Fatal("the deleted user's segments were left behind")
		}
		// The primary id is free again.
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "free", FirstName: "F", LastName: "Again"})
	})
}

func TestListenersAndAuditHearEveryChangeAndRead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		var mu sync.Mutex
		var events []string
		var changes []string
		f := newFixture(t, db, patron.Options{Audit: patron.AuditFunc(func(_ context.Context, e patron.AuditEvent) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e.Actor.ID+" "+e.Action+" "+e.PrimaryID)
		})})
		f.svc.AddListener(patron.ListenerFunc(func(_ context.Context, c patron.Change) {
			mu.Lock()
			defer mu.Unlock()
			s := c.Action
			if c.Before != nil {
				s += " " + c.Before.FirstName
			}
			if c.After != nil {
				s += " -> " + c.After.FirstName
			}
			changes = append(changes, s)
		}))
		u := mustCreate(t, f, "UNI", jane())
		if _, err := f.svc.Get(f.ctx, "UNI", "jdoe"); err != nil {
			t.Fatal(err)
		}
		in := *u
		in.FirstName = "Janet"
		if _, err := f.svc.Replace(f.ctx, "UNI", "jdoe", 1, &in); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.List(f.ctx, "UNI", patron.Query{}); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Delete(f.ctx, "UNI", "jdoe"); err != nil {
			t.Fatal(err)
		}
		want := "staff1 create jdoe|staff1 read jdoe|staff1 update jdoe|staff1 read jdoe|staff1 delete jdoe"
		if got := strings.Join(events, "|"); got != want {
			t.Fatalf("audit events\n got %s\nwant %s", got, want)
		}
		if got := strings.Join(changes, "|"); got != "created -> Jane|updated Jane -> Janet|deleted Janet" {
			t.Fatalf("changes: %s", got)
		}
	})
}

func TestSignInLocksAfterRepeatedFailures(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{MaxSignInFailures: 3, Lockout: 10 * time.Minute})
		mustCreate(t, f, "UNI", jane())
		if u, err := f.svc.SignIn(f.ctx, "UNI", "JDOE", "1234", "192.0.2.1"); err != nil || u.PrimaryID != "jdoe" {
			t.Fatalf("good PIN refused: %v", err)
		}
		for i := 0; i < 3; i++ {
			_, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "0000", "192.0.2.1")
			wantKind(t, err, fault.Unauthenticated)
		}
		// Locked now, even with the right PIN; the count is in the database,
		// so a new service (a restart, another instance) sees it too.
		again, err := patron.NewService(db, patron.Options{Now: f.clock.Now, PINCost: 4, MaxSignInFailures: 3, Lockout: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		_, err = again.SignIn(f.ctx, "UNI", "jdoe", "1234", "192.0.2.1")
		if e := wantKind(t, err, fault.Locked); e.RetryAfter != 10*time.Minute {
			t.Fatalf("retry after %v", e.RetryAfter)
		}
		f.clock.Advance(9 * time.Minute)
		_, err = f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", "192.0.2.1")
		if e := wantKind(t, err, fault.Locked); e.RetryAfter != time.Minute {
			t.Fatalf("retry after %v", e.RetryAfter)
		}
		f.clock.Advance(time.Minute + time.Second)
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", "192.0.2.1"); err != nil {
			t.Fatalf("lock did not end: %v", err)
		}
		// A success resets the count: two more failures do not lock.
		for i := 0; i < 2; i++ {
			f.svc.SignIn(f.ctx, "UNI", "jdoe", "0000", "192.0.2.1")
		}
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "1234", "192.0.2.1"); err != nil {
			t.Fatalf("locked too early: %v", err)
		}
		// Unknown users and users without a PIN never sign in.
		_, err = f.svc.SignIn(f.ctx, "UNI", "nobody", "1234", "192.0.2.1")
		wantKind(t, err, fault.Unauthenticated)
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "nopin", FirstName: "N", LastName: "P"})
		_, err = f.svc.SignIn(f.ctx, "UNI", "nopin", "", "192.0.2.1")
		wantKind(t, err, fault.Unauthenticated)
		// Inactive users neither.
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "gone", FirstName: "G", LastName: "G", Status: "inactive", PINNumber: "5555"})
		_, err = f.svc.SignIn(f.ctx, "UNI", "gone", "5555", "192.0.2.1")
		wantKind(t, err, fault.Unauthenticated)
	})
}

func TestListSearchesFiltersAndPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "bsmith", FirstName: "Bob", LastName: "Smith", UserGroup: "FACULTY", Emails: []patron.Email{{EmailAddress: "bob@faculty.example", Preferred: true}}})
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "asmith", FirstName: "Alice", LastName: "Smith", UserGroup: "FACULTY", Status: "INACTIVE"})
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "x100%", FirstName: "Per", LastName: "Cent"})
		mustCreate(t, f, "OTHER", &patron.User{PrimaryID: "osmith", FirstName: "Olga", LastName: "Smith"})

		ids := func(q patron.Query) string {
			t.Helper()
			p, err := f.svc.List(f.ctx, "UNI", q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, u := range p.Users {
				out = append(out, u.PrimaryID)
			}
			return strings.Join(out, ",")
		}
		cases := []struct {
			q    patron.Query
			want string
		}{
			{patron.Query{}, "x100%,jdoe,asmith,bsmith"},
			{patron.Query{Q: "smith"}, "asmith,bsmith"},
			{patron.Query{Q: "alice SMITH"}, "asmith"},
			{patron.Query{Q: "b-100"}, "jdoe"},             // identifier
			{patron.Query{Q: "faculty.example"}, "bsmith"}, // email
			{patron.Query{Q: "%"}, "x100%"},                // literal, not a wildcard
			{patron.Query{Q: "_"}, ""},
			{patron.Query{UserGroup: "FACULTY", Status: "active"}, "bsmith"},
			{patron.Query{Limit: 2, Offset: 1}, "jdoe,asmith"},
		}
		for _, c := range cases {
			if got := ids(c.q); got != c.want {
				t.Errorf("%+v: got %q want %q", c.q, got, c.want)
			}
		}
		p, _ := f.svc.List(f.ctx, "UNI", patron.Query{Limit: 1})
		if p.TotalRecordCount != 4 || len(p.Users) != 1 {
			t.Fatalf("total %d, page %d", p.TotalRecordCount, len(p.Users))
		}
		_, err := f.svc.List(f.ctx, "UNI", patron.Query{Limit: 1000})
		wantKind(t, err, fault.Invalid)
	})
}

// A deletion hook writes in the deletion's transaction: its writes commit
// with the deletion, and its error cancels the deletion. A deletion a
// guard refuses does not reach it.
func TestDeletionHooksActInTheDeletionsTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		for _, id := range []string{"keep", "fail", "go"} {
			mustCreate(t, f, "UNI", &patron.User{PrimaryID: id, FirstName: "F", LastName: "L"})
		}
		f.svc.AddDeletionGuard(patron.DeletionGuardFunc(func(ctx context.Context, u *patron.User) ([]string, error) {
			if u.PrimaryID == "keep" {
				return []string{"kept"}, nil
			}
			return nil, nil
		}))
		var reached []string
		f.svc.AddDeletionHook(patron.DeletionHookFunc(func(ctx context.Context, tx *gorm.DB, u *patron.User) error {
			reached = append(reached, u.PrimaryID)
			// What the hook writes: the user's first name changed.
			if err := tx.Model(&patron.User{}).Where("id = ?", u.ID).Update("first_name", "Written").Error; err != nil {
				return err
			}
			if u.PrimaryID == "fail" {
				return errors.New("the hook failed")
			}
			return nil
		}))
		wantKind(t, f.svc.Delete(f.ctx, "UNI", "keep"), fault.Refused)
		if err := f.svc.Delete(f.ctx, "UNI", "fail"); err == nil || !strings.Contains(err.Error(), "the hook failed") {
			t.Fatalf("a failing hook: %v", err)
		}
		if u, err := f.svc.Get(f.ctx, "UNI", "fail"); err != nil || u.FirstName != "F" {
			t.Fatalf("a failing hook let the deletion or its write through: %+v %v", u, err)
		}
		if err := f.svc.Delete(f.ctx, "UNI", "go"); err != nil {
			t.Fatal(err)
		}
		if strings.Join(reached, ",") != "fail,go" {
			t.Fatalf("hooks reached for %v", reached)
		}
	})
}
