package patron_test

import (
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// Every text field refuses NUL, control characters other than tab and
// line feed (carriage return too in notes) and bytes that are not UTF-8,
// naming the field, on every database: PostgreSQL cannot store NUL, and
// the others must not keep what it refuses.
func TestTextFieldsRefuseControlCharactersOnEveryDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		cases := []struct {
			name  string
			edit  func(u *patron.User)
			field string
		}{
			{"NUL in a name", func(u *patron.User) { u.FirstName = "Ja\x00ne" }, "first_name"},
			{"NUL in a note", func(u *patron.User) { u.Notes[1].NoteText = "staff\x00only" }, "user_notes[1].note_text"},
			{"escape in a city", func(u *patron.User) { u.Addresses[0].City = "Oslo\x1b[31m" }, "addresses[0].city"},
			{"carriage return in a name", func(u *patron.User) { u.LastName = "Doe\rX" }, "last_name"},
			{"DEL in a code", func(u *patron.User) { u.UserGroup = "UNDER\x7fGRAD" }, "user_group"},
			{"C1 control in a block note", func(u *patron.User) { u.Blocks[0].BlockNote = "a\u0085b" }, "user_blocks[0].block_note"},
			{"control in a code list", func(u *patron.User) { u.Emails[0].EmailTypes = patron.Codes{"school", "per\x02sonal"} }, "emails[0].email_types[1]"},
			{"not UTF-8", func(u *patron.User) { u.MiddleName = "M\xffarie" }, "middle_name"},
			{"NUL in an identifier", func(u *patron.User) { u.Identifiers[0].Value = "B\x00100" }, "user_identifiers[0].value"},
			{"NUL in a PIN", func(u *patron.User) { u.PINNumber = "12\x0034" }, "pin_number"},
		}
		for _, tc := range cases {
			u := jane()
			tc.edit(u)
			_, err := f.svc.Create(f.ctx, "UNI", u)
			e, ok := fault.As(err)
			if !ok || e.Kind != fault.Invalid {
				t.Fatalf("%s: want Invalid, got %v", tc.name, err)
			}
			wantField(t, e, tc.field, "bad_format")
		}
		if n := countUsers(t, f, "UNI"); n != 0 {
			t.Fatalf("refused records were written: %d users", n)
		}

		// Tabs and line feeds anywhere, carriage returns in notes: stored
		// and read back as sent.
		u := jane()
		u.JobDescription = "Reader\tLibrarian\nNights"
		u.Notes[0].NoteText = "first line\r\nsecond line"
		u.Blocks[0].BlockNote = "why\r\nand how"
		mustCreate(t, f, "UNI", u)
		got, err := f.svc.Get(f.ctx, "UNI", "jdoe")
		if err != nil {
			t.Fatal(err)
		}
		if got.JobDescription != u.JobDescription || got.Notes[0].NoteText != u.Notes[0].NoteText || got.Blocks[0].BlockNote != u.Blocks[0].BlockNote {
			t.Fatalf("allowed control characters not kept: %q %q %q", got.JobDescription, got.Notes[0].NoteText, got.Blocks[0].BlockNote)
		}

		// A change is checked as a creation is, and changes nothing.
		_, err = f.svc.AddNote(f.ctx, "UNI", "jdoe", patron.Note{NoteText: "bad\x00note"})
		wantField(t, wantKind(t, err, fault.Invalid), "user_notes[2].note_text", "bad_format")
		if got, _ := f.svc.Get(f.ctx, "UNI", "jdoe"); len(got.Notes) != 2 || got.Version != 1 {
			t.Fatalf("a refused note changed the user: %d notes, version %d", len(got.Notes), got.Version)
		}
	})
}

// Lookups by a key that no record can hold find nothing, on PostgreSQL too
// (which cannot compare NUL): never a database error.
func TestLookupsByUnstorableKeysFindNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())
		_, err := f.svc.Get(f.ctx, "UNI", "jd\x00oe")
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.GetSegments(f.ctx, "UNI", "\xff", patron.KindBlocks)
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.GetByIdentifier(f.ctx, "UNI", "BARCODE", "B-\x00100")
		wantKind(t, err, fault.NotFound)
		err = f.svc.Delete(f.ctx, "UNI", "jdoe\x00")
		wantKind(t, err, fault.NotFound)
		_, err = f.svc.List(f.ctx, "UNI", patron.Query{Q: "ja\x00", Limit: 10})
		wantField(t, wantKind(t, err, fault.Invalid), "q", "bad_format")
		_, err = f.svc.SignIn(f.ctx, "UNI", "jdoe\x00", "1234", "127.0.0.1")
		wantKind(t, err, fault.Unauthenticated)

		// Code labels that break the rule are passed over; the others are
		// saved.
		err = f.svc.SaveLabels(f.ctx, "UNI", []patron.CodeLabel{
			{CodeTable: "user_group", Code: "UG", Description: "Under\x00graduate"},
			{CodeTable: "user_group", Code: "GR", Description: "Graduate"},
		})
		if err != nil {
			t.Fatal(err)
		}
		labels, err := f.svc.CodeTable(f.ctx, "UNI", "user_group")
		if err != nil || len(labels) != 1 || labels[0].Code != "GR" {
			t.Fatalf("labels %+v, %v", labels, err)
		}
	})
}

// A new primary_id is one segment of a URL path: no ".", "..", reserved
// name or slash. Users that hold one already (stored before this rule)
// are read, changed and deleted as before.
func TestPrimaryIDsMustNameAPathSegment(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		for _, id := range []string{".", "..", " .. ", "me", "ME", "a/b", "a\x00b", "tab\there"} {
			u := jane()
			u.PrimaryID = id
			_, err := f.svc.Create(f.ctx, "UNI", u)
			wantField(t, wantKind(t, err, fault.Invalid), "primary_id", "bad_format")
		}
		for i, id := range []string{"...", "a.b", "50%", "me2", "o'brien", "a b", "ünï"} {
			u := jane()
			u.PrimaryID = id
			u.Identifiers = nil
			if _, err := f.svc.Create(f.ctx, "UNI", u); err != nil {
				t.Fatalf("%d %q: %v", i, id, err)
			}
		}
		// An SIS record is checked alike: rejected with the reason, the
		// rest of the batch goes on.
		res := f.svc.ApplyExternal(f.ctx, "UNI", []*patron.User{sisUser("..", "Dots"), sisUser("ok1", "N\x00ul"), sisUser("ok2", "Fine")}, syncRule)
		wantEffect(t, res[0], patron.EffectRefused, "primary_id")
		wantEffect(t, res[1], patron.EffectRefused, "first_name holds a NUL character")
		wantEffect(t, res[2], patron.EffectCreated, "")

		// A user an earlier release let in as "me".
		mustCreate(t, f, "UNI", jane())
		if err := db.Exec("UPDATE pk_users SET primary_id = 'me', primary_id_key = 'me' WHERE primary_id_key = 'jdoe'").Error; err != nil {
			t.Fatal(err)
		}
		u, err := f.svc.Get(f.ctx, "UNI", "me")
		if err != nil {
			t.Fatal(err)
		}
		u.FirstName = "Janet"
		if _, err := f.svc.Replace(f.ctx, "UNI", "me", u.Version, u); err != nil {
			t.Fatalf("a held primary_id must not stop a change: %v", err)
		}
		if _, err := f.svc.AddNote(f.ctx, "UNI", "me", patron.Note{NoteText: "still here"}); err != nil {
			t.Fatal(err)
		}
		u, _ = f.svc.Get(f.ctx, "UNI", "me")
		u.PrimaryID = "."
		_, err = f.svc.Replace(f.ctx, "UNI", "me", u.Version, u)
		wantField(t, wantKind(t, err, fault.Invalid), "primary_id", "bad_format")
		if err := f.svc.Delete(f.ctx, "UNI", "me"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTextErrorNamesTheCharacter(t *testing.T) {
	if e := patron.TextError("x", "a\x00", false); e == nil || !strings.Contains(e.Message, "NUL") {
		t.Fatalf("%+v", e)
	}
	if e := patron.TextError("x", "a\x1b", false); e == nil || !strings.Contains(e.Message, "U+001B") {
		t.Fatalf("%+v", e)
	}
	if e := patron.TextError("x", "a\r\n", true); e != nil {
		t.Fatalf("a carriage return in a multi-line field: %+v", e)
	}
}
