package patron_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

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
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	svc   *patron.Service
	db    *gorm.DB
	clock *clock
	ctx   context.Context
}

func newFixture(t *testing.T, db *gorm.DB, opts patron.Options) *fixture {
	t.Helper()
	ctx := patron.WithActor(context.Background(), patron.Actor{Institution: "UNI", ID: "staff1"})
	if err := migrate.Run(ctx, db, patron.Migrations()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	c := &clock{now: time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)}
	opts.Now = c.Now
	opts.PINCost = bcrypt.MinCost
	svc, err := patron.NewService(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, db: db, clock: c, ctx: ctx}
}

func jane() *patron.User {
	return &patron.User{
		PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe", UserGroup: "UNDERGRAD", PINNumber: "1234",
		Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "B-100"}},
		Emails: []patron.Email{
			{EmailAddress: "jane@uni.example", Preferred: true, EmailTypes: patron.Codes{"school", "personal"}},
			{EmailAddress: "jane@home.example"},
		},
		Phones:    []patron.Phone{{PhoneNumber: "+4712345678", PreferredSMS: true}},
		Addresses: []patron.Address{{Line1: "1 Main St", City: "Oslo", Preferred: true}},
		Notes: []patron.Note{
			{NoteText: "Shown to the patron", UserViewable: true},
			{NoteText: "Staff only"},
		},
		Blocks:     []patron.Block{{BlockType: "GENERAL", BlockDescription: "LOST_CARD"}},
		Statistics: []patron.Statistic{{StatisticCategory: "FIRSTYEAR"}},
	}
}

func mustCreate(t *testing.T, f *fixture, inst string, u *patron.User) *patron.User {
	t.Helper()
	out, err := f.svc.Create(f.ctx, inst, u)
	if err != nil {
		t.Fatalf("create %s: %v", u.PrimaryID, err)
	}
	return out
}

func wantKind(t *testing.T, err error, kind fault.Kind) *fault.Error {
	t.Helper()
	e, ok := fault.As(err)
	if !ok || e.Kind != kind {
		t.Fatalf("want an error of kind %d, got %v", kind, err)
	}
	return e
}

func wantField(t *testing.T, e *fault.Error, field, code string) {
	t.Helper()
	for _, f := range e.Fields {
		if f.Field == field && (code == "" || f.Code == code) {
			return
		}
	}
	t.Fatalf("no error for field %s (%s) among %+v", field, code, e.Fields)
}

func countUsers(t *testing.T, f *fixture, inst string) int64 {
	t.Helper()
	p, err := f.svc.List(f.ctx, inst, patron.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return p.TotalRecordCount
}

func TestCreateAndGet(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		created := mustCreate(t, f, "UNI", jane())
		if created.Version != 1 || created.AccountType != patron.AccountInternal || created.RecordType != patron.RecordPublic || created.Status != patron.StatusActive {
			t.Fatalf("defaults not filled: %+v", created)
		}
		got, err := f.svc.Get(f.ctx, "UNI", "JDOE") // primary ids match whatever their case
		if err != nil {
			t.Fatal(err)
		}
		if got.PrimaryID != "jdoe" || got.FirstName != "Jane" || len(got.Emails) != 2 || len(got.Notes) != 2 || len(got.Identifiers) != 1 {
			t.Fatalf("record not read back whole: %+v", got)
		}
		if got.Emails[0].EmailAddress != "jane@uni.example" || strings.Join(got.Emails[0].EmailTypes, ",") != "school,personal" {
			t.Fatalf("segments lost their order or codes: %+v", got.Emails)
		}
		for _, seg := range []patron.Segment{got.Emails[0].Segment, got.Notes[1].Segment, got.Blocks[0].Segment} {
			if seg.SegmentType != patron.SegmentInternal || seg.ID == "" {
				t.Fatalf("segment added by staff must be Internal with an id: %+v", seg)
			}
		}
		if got.Notes[0].CreatedBy != "staff1" || got.Notes[0].Origin != patron.OriginLibrary || got.Blocks[0].BlockStatus != patron.StatusActive {
			t.Fatalf("notes and blocks not stamped: %+v %+v", got.Notes[0], got.Blocks[0])
		}
		if got.PINNumber != "" || got.PINHash == "" || strings.Contains(got.PINHash, "1234") {
			t.Fatal("the PIN must be kept only as a hash")
		}
		// contacts with none preferred: the phone has only preferred_sms
		if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "phone") {
			t.Fatalf("want one warning about phones, got %q", got.Warnings)
		}
	})
}

func TestCreateRefusesInvalidRecordsAndWritesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		cases := []struct {
			name  string
			edit  func(u *patron.User)
			field string
			code  string
		}{
			{"no first name", func(u *patron.User) { u.FirstName = " " }, "first_name", "required"},
			{"no last name", func(u *patron.User) { u.LastName = "" }, "last_name", "required"},
			{"no primary id", func(u *patron.User) { u.PrimaryID = "" }, "primary_id", "required"},
			{"slash in primary id", func(u *patron.User) { u.PrimaryID = "a/b" }, "primary_id", "bad_format"},
			{"bad email", func(u *patron.User) { u.Emails[1].EmailAddress = "not-an-email" }, "emails[1].email_address", "bad_format"},
			{"bad date", func(u *patron.User) { u.ExpiryDate = "31/12/2030" }, "expiry_date", "bad_format"},
			{"two preferred emails", func(u *patron.User) { u.Emails[1].Preferred = true }, "emails[1].preferred", "one_preferred"},
			{"long note", func(u *patron.User) { u.Notes[0].NoteText = strings.Repeat("x", 2001) }, "user_notes[0].note_text", "too_long"},
			{"unknown account type", func(u *patron.User) { u.AccountType = "GUEST" }, "account_type", "unknown_value"},
			{"unknown record type", func(u *patron.User) { u.RecordType = "ROBOT" }, "record_type", "unknown_value"},
			{"unknown status", func(u *patron.User) { u.Status = "ASLEEP" }, "status", "unknown_value"},
			{"unknown segment type", func(u *patron.User) { u.Emails[0].SegmentType = "Borrowed" }, "emails[0].segment_type", "unknown_value"},
			{"external entry by hand", func(u *patron.User) { u.Emails[0].SegmentType = patron.SegmentExternal }, "emails[0].segment_type", "managed_by_sis"},
			{"same identifier twice", func(u *patron.User) {
				u.Identifiers = append(u.Identifiers, patron.Identifier{IDType: "BARCODE", Value: "b-100"})
			}, "user_identifiers[1].value", "duplicate"},
			{"external without profile", func(u *patron.User) { u.AccountType = patron.AccountExternal }, "external_id", "required"},
		}
		for _, tc := range cases {
			u := jane()
			tc.edit(u)
			_, err := f.svc.Create(f.ctx, "UNI", u)
			if e, ok := fault.As(err); !ok || e.Kind != fault.Invalid {
				t.Fatalf("%s: want Invalid, got %v", tc.name, err)
			} else {
				wantField(t, e, tc.field, tc.code)
			}
		}
		if n := countUsers(t, f, "UNI"); n != 0 {
			t.Fatalf("refused records were written: %d users", n)
		}
	})
}

func TestPrimaryIDsAndIdentifiersAreUniquePerInstitution(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())

		dup := jane()
		dup.PrimaryID = "JDoe"
		dup.Identifiers = nil
		_, err := f.svc.Create(f.ctx, "UNI", dup)
		if e := wantKind(t, err, fault.Conflict); !strings.Contains(e.Detail, "primary_id") {
			t.Fatalf("conflict must name the primary_id: %v", e)
		}

		other := jane()
		other.PrimaryID = "other"
		other.Identifiers[0].Value = "b-100 " // same barcode, other case and blanks
		_, err = f.svc.Create(f.ctx, "UNI", other)
		if e := wantKind(t, err, fault.Conflict); !strings.Contains(e.Detail, "BARCODE") {
			t.Fatalf("conflict must name the identifier: %v", e)
		}
		if n := countUsers(t, f, "UNI"); n != 1 {
			t.Fatalf("want 1 user after the refusals, got %d", n)
		}

		// Only case folds: an accent makes another primary id and another
		// identifier, on every database.
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "josé", FirstName: "J", LastName: "A"})
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "jose", FirstName: "J", LastName: "B"})
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "cafe1", FirstName: "C", LastName: "C", Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "CAFÉ-1"}}})
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "cafe2", FirstName: "C", LastName: "C", Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "cafe-1"}}})
		if u, err := f.svc.Get(f.ctx, "UNI", "JOSÉ"); err != nil || u.LastName != "A" {
			t.Fatalf("josé: %+v %v", u, err)
		}

		// The same value under another id type is another identifier.
		other.Identifiers[0].IDType = "UNIV_ID"
		mustCreate(t, f, "UNI", other)

		// Another institution has its own namespace, and sees nothing of UNI.
		mustCreate(t, f, "COLLEGE", jane())
		if _, err := f.svc.Get(f.ctx, "COLLEGE", "other"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("COLLEGE must not read UNI's users: %v", err)
		}
		if n := countUsers(t, f, "COLLEGE"); n != 1 {
			t.Fatalf("COLLEGE lists %d users", n)
		}
	})
}

func TestConcurrentCreatesOfOnePrimaryID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		const n = 6
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := jane()
				u.Identifiers = nil
				_, err := f.svc.Create(f.ctx, "UNI", u)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			if err == nil {
				ok++
				continue
			}
			wantKind(t, err, fault.Conflict)
		}
		if ok != 1 || countUsers(t, f, "UNI") != 1 {
			t.Fatalf("want exactly one winner, got %d", ok)
		}
	})
}

func TestGetByIdentifier(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())
		u, err := f.svc.GetByIdentifier(f.ctx, "UNI", "BARCODE", "b-100")
		if err != nil || u.PrimaryID != "jdoe" {
			t.Fatalf("lookup by barcode: %v %v", u, err)
		}
		if _, err := f.svc.GetByIdentifier(f.ctx, "UNI", "UNIV_ID", "B-100"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("another id type must not match: %v", err)
		}
		if _, err := f.svc.GetByIdentifier(f.ctx, "OTHER", "BARCODE", "B-100"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("another institution must not match: %v", err)
		}
	})
}

func TestGetSegmentsReadsOnlyTheListsAsked(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		if _, err := f.svc.Create(f.ctx, "UNI", jane()); err != nil {
			t.Fatal(err)
		}
		full, err := f.svc.Get(f.ctx, "UNI", "jdoe")
		if err != nil {
			t.Fatal(err)
		}
		u, err := f.svc.GetSegments(f.ctx, "UNI", "JDOE", patron.KindEmails, patron.KindBlocks)
		if err != nil {
			t.Fatal(err)
		}
		if u.PrimaryID != "jdoe" || u.Version != full.Version || len(u.Emails) != len(full.Emails) || len(u.Blocks) != len(full.Blocks) ||
			len(u.Emails) == 0 || len(u.Identifiers) != 0 || len(u.Addresses) != 0 || len(u.Notes) != 0 || u.PINNumber != "" {
			t.Fatalf("partial read %+v", u)
		}
		if _, err := f.svc.GetSegments(f.ctx, "UNI", "nobody"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
	})
}

// DeleteCounted tells how many rows of each table deleting a user
// removed: segments, provenance, sign-in failures, the record, its files.
func TestDeleteCountedTellsTheRowsOfEachTable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())
		mustAttach(t, f, "UNI", "jdoe", patron.Attachment{FileName: "form.pdf"}, []byte("%PDF-1.4"))
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "0000", "192.0.2.1"); err == nil {
			t.Fatal("a wrong PIN signed in")
		}
		removed, err := f.svc.DeleteCounted(f.ctx, "UNI", "jdoe")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, r := range removed {
			got[r.Table] += r.Rows
		}
		want := map[string]int64{"pk_user_identifiers": 1, "pk_user_addresses": 1, "pk_user_emails": 2, "pk_user_phones": 1, "pk_user_notes": 2,
			"pk_user_blocks": 1, "pk_user_statistics": 1, "pk_user_proxies": 0, "pk_user_field_overrides": 0, "pk_signin_failures": 2,
			"pk_users": 1, "pk_user_attachment_contents": 1, "pk_user_attachments": 1}
		if !maps.Equal(got, want) {
			t.Fatalf("removed %v, want %v", got, want)
		}
		var left int64
		if err := db.Table("pk_signin_failures").Count(&left).Error; err != nil || left != 0 {
			t.Fatalf("sign-in failures left: %d, %v", left, err)
		}
	})
}
