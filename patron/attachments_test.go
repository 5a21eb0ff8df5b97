package patron_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
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

// binaryFile returns n bytes of every value, zero bytes included, in an
// order fixed by seed.
func binaryFile(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func mustAttach(t *testing.T, f *fixture, inst, primaryID string, a patron.Attachment, content []byte) *patron.Attachment {
	t.Helper()
	out, err := f.svc.AddAttachment(f.ctx, inst, primaryID, a, bytes.NewReader(content))
	if err != nil {
		t.Fatalf("add attachment %s to %s: %v", a.FileName, primaryID, err)
	}
	return out
}

// rows counts the rows of a table, optionally under a condition.
func rows(t *testing.T, db *gorm.DB, table string, where ...any) int64 {
	t.Helper()
	q := db.Table(table)
	if len(where) > 0 {
		q = q.Where(where[0], where[1:]...)
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAttachmentBytesRoundTripOnEveryDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())

		// The content column holds files up to the limit on every
		// dialect: not MySQL's BLOB, which stops at 64 KiB.
		cols, err := db.Migrator().ColumnTypes("pk_user_attachment_contents")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"sqlite": "BLOB", "postgres": "BYTEA", "mysql": "LONGBLOB"}[db.Dialector.Name()]
		found := false
		for _, c := range cols {
			if c.Name() == "content" {
				found = true
				if got := strings.ToUpper(c.DatabaseTypeName()); got != want {
					t.Fatalf("content column is %s on %s, want %s", got, db.Dialector.Name(), want)
				}
			}
		}
		if !found {
			t.Fatalf("no content column among %d", len(cols))
		}

		files := []struct {
			name, ctype, wantType string
			content               []byte
		}{
			{"letter.txt", "Text/Plain; Charset=UTF-8", "text/plain; charset=UTF-8", []byte("Dear Jane,\nyour book is overdue.\n")},
			{"scan.bin", "", "application/octet-stream", binaryFile(1<<20, 1)},
			{"at-the-limit.pdf", "application/pdf", "application/pdf", binaryFile(int(patron.DefaultMaxAttachmentBytes), 2)},
			{"one byte", "application/x-zero", "application/x-zero", []byte{0}},
		}
		for _, file := range files {
			a := mustAttach(t, f, "UNI", "jdoe", patron.Attachment{FileName: file.name, ContentType: file.ctype}, file.content)
			if a.ID == "" || a.Size != int64(len(file.content)) || a.ContentType != file.wantType || a.Kind != patron.AttachmentUpload || a.FileName != file.name {
				t.Fatalf("%s: added as %+v", file.name, a)
			}
			got, content, err := f.svc.AttachmentContent(f.ctx, "UNI", "JDOE", a.ID)
			if err != nil {
				t.Fatalf("%s: %v", file.name, err)
			}
			if !bytes.Equal(content, file.content) {
				t.Fatalf("%s: %d bytes came back, not the %d written (or not the same ones)", file.name, len(content), len(file.content))
			}
			if got.ID != a.ID || got.Size != a.Size || got.ContentType != a.ContentType || !got.CreatedDate.Equal(a.CreatedDate) {
				t.Fatalf("%s: read back as %+v, added as %+v", file.name, got, a)
			}
		}
	})
}

func TestAttachmentListsAreNewestFirstAndReadNoContent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())
		if list, err := f.svc.Attachments(f.ctx, "UNI", "jdoe"); err != nil || list == nil || len(list) != 0 {
			t.Fatalf("a user without attachments lists %v (%v), want an empty list", list, err)
		}
		first := mustAttach(t, f, "UNI", "jdoe", patron.Attachment{FileName: "overdue.pdf", ContentType: "application/pdf", Kind: "NOTICE", Description: " First overdue notice "}, []byte("%PDF-1.7 first"))
		f.clock.Advance(time.Hour)
		second := mustAttach(t, f, "UNI", "jdoe", patron.Attachment{FileName: "form.png", ContentType: "image/png"}, []byte("\x89PNG second"))
		third := mustAttach(t, f, "UNI", "jdoe", patron.Attachment{FileName: "same-time.txt", ContentType: "text/plain"}, []byte("third")) // same instant as second

		var statements []string
		var mu sync.Mutex
		if err := db.Callback().Query().After("gorm:query").Register("test:record_queries", func(tx *gorm.DB) {
			mu.Lock()
			defer mu.Unlock()
			statements = append(statements, tx.Statement.SQL.String())
		}); err != nil {
			t.Fatal(err)
		}
		list, err := f.svc.Attachments(f.ctx, "UNI", "jdoe")
		_ = db.Callback().Query().Remove("test:record_queries")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range list {
			ids = append(ids, a.ID)
		}
		if want := []string{third.ID, second.ID, first.ID}; strings.Join(ids, ",") != strings.Join(want, ",") {
			t.Fatalf("list order %v, want newest first %v", ids, want)
		}
		if n := list[2]; n.Kind != patron.AttachmentNotice || n.Description != "First overdue notice" || n.Size != int64(len("%PDF-1.7 first")) || n.FileName != "overdue.pdf" || n.CreatedBy != "staff1" {
			t.Fatalf("listed notice: %+v", n)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(statements) == 0 {
			t.Fatal("no query was recorded")
		}
		for _, sql := range statements {
			if strings.Contains(sql, "pk_user_attachment_contents") {
				t.Fatalf("listing read the contents table: %s", sql)
			}
		}
		j, err := json.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(j), "PDF-1.7") || strings.Contains(string(j), "content\"") {
			t.Fatalf("a listed attachment carries content: %s", j)
		}
	})
}

func TestAttachmentsOverTheLimitOrInvalidWriteNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{MaxAttachmentBytes: 1024})
		mustCreate(t, f, "UNI", jane())
		if got := f.svc.MaxAttachmentBytes(); got != 1024 {
			t.Fatalf("MaxAttachmentBytes %d, want 1024", got)
		}

		_, err := f.svc.AddAttachment(f.ctx, "UNI", "jdoe", patron.Attachment{FileName: "big.bin"}, bytes.NewReader(make([]byte, 1025)))
		e := wantKind(t, err, fault.Invalid)
		wantField(t, e, "content", "too_large")
		if !strings.Contains(e.Detail, "1024 bytes") {
			t.Fatalf("the refusal does not name the limit: %q", e.Detail)
		}
		// A reader that never ends is read no further than the limit.
		_, err = f.svc.AddAttachment(f.ctx, "UNI", "jdoe", patron.Attachment{FileName: "endless.bin"}, endless{})
		wantField(t, wantKind(t, err, fault.Invalid), "content", "too_large")

		cases := []struct {
			name    string
			a       patron.Attachment
			content []byte
			field   string
			code    string
		}{
			{"empty file", patron.Attachment{FileName: "empty.txt"}, nil, "content", "required"},
			{"no file name", patron.Attachment{FileName: "  "}, []byte("x"), "file_name", "required"},
			{"slash in file name", patron.Attachment{FileName: "../etc/passwd"}, []byte("x"), "file_name", "bad_format"},
			{"backslash in file name", patron.Attachment{FileName: `..\boot.ini`}, []byte("x"), "file_name", "bad_format"},
			{"control character in file name", patron.Attachment{FileName: "a\r\nb.txt"}, []byte("x"), "file_name", "bad_format"},
			{"long file name", patron.Attachment{FileName: strings.Repeat("n", 256)}, []byte("x"), "file_name", "too_long"},
			{"no media type", patron.Attachment{FileName: "a.pdf", ContentType: "pdf"}, []byte("x"), "content_type", "bad_format"},
			{"broken media type", patron.Attachment{FileName: "a.pdf", ContentType: "application/pdf; ="}, []byte("x"), "content_type", "bad_format"},
			{"long media type", patron.Attachment{FileName: "a.pdf", ContentType: "application/" + strings.Repeat("x", 120)}, []byte("x"), "content_type", "too_long"},
			{"unknown kind", patron.Attachment{FileName: "a.pdf", Kind: "letter"}, []byte("x"), "kind", "unknown_value"},
			{"long description", patron.Attachment{FileName: "a.pdf", Description: strings.Repeat("d", 256)}, []byte("x"), "description", "too_long"},
		}
		for _, c := range cases {
			_, err := f.svc.AddAttachment(f.ctx, "UNI", "jdoe", c.a, bytes.NewReader(c.content))
			if e, ok := fault.As(err); !ok || e.Kind != fault.Invalid {
				t.Fatalf("%s: want Invalid, got %v", c.name, err)
			} else {
				wantField(t, e, c.field, c.code)
			}
		}
		if _, err := f.svc.AddAttachment(f.ctx, "UNI", "nobody", patron.Attachment{FileName: "a.txt"}, strings.NewReader("x")); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("an attachment for no user: %v", err)
		}
		if n, m := rows(t, db, "pk_user_attachments"), rows(t, db, "pk_user_attachment_contents"); n != 0 || m != 0 {
			t.Fatalf("refused attachments were written: %d rows, %d contents", n, m)
		}

		// Exactly the limit is accepted.
		a := mustAttach(t, f, "UNI", "jdoe", patron.Attachment{FileName: "exact.bin"}, binaryFile(1024, 3))
		if a.Size != 1024 {
			t.Fatalf("size %d", a.Size)
		}
	})
}

// endless is a reader of zero bytes without end.
type endless struct{}

func (endless) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestAttachmentsStayWithTheirUserAndInstitution(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "other", FirstName: "O", LastName: "Ther"})
		mustCreate(t, f, "COLLEGE", jane()) // the same primary_id in another institution
		secret := []byte("registration form of UNI's jdoe")
		a := mustAttach(t, f, "UNI", "jdoe", patron.Attachment{FileName: "form.pdf", ContentType: "application/pdf"}, secret)

		// Another institution: its jdoe has nothing; its staff cannot read
		// or remove UNI's attachment by id.
		if list, err := f.svc.Attachments(f.ctx, "COLLEGE", "jdoe"); err != nil || len(list) != 0 {
			t.Fatalf("COLLEGE's jdoe lists %v (%v)", list, err)
		}
		if _, err := f.svc.Attachments(f.ctx, "COLLEGE", "other"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("COLLEGE lists the attachments of UNI's other: %v", err)
		}
		// A refusal reads the same whether the id exists elsewhere or not
		// at all: it reveals nothing.
		const unknown = "01900000-0000-7000-8000-000000000000"
		detail := func(err error) string {
			t.Helper()
			e := wantKind(t, err, fault.NotFound)
			return strings.ReplaceAll(strings.ReplaceAll(e.Detail, a.ID, "ID"), unknown, "ID")
		}
		for _, who := range []struct{ inst, user string }{{"COLLEGE", "jdoe"}, {"UNI", "other"}} {
			_, content, err := f.svc.AttachmentContent(f.ctx, who.inst, who.user, a.ID)
			if content != nil {
				t.Fatalf("%s/%s read the content", who.inst, who.user)
			}
			_, _, err2 := f.svc.AttachmentContent(f.ctx, who.inst, who.user, unknown)
			if d1, d2 := detail(err), detail(err2); d1 != d2 {
				t.Fatalf("%s/%s: the refusal of a held id (%q) differs from that of an unknown one (%q)", who.inst, who.user, d1, d2)
			}
			err = f.svc.RemoveAttachment(f.ctx, who.inst, who.user, a.ID)
			err2 = f.svc.RemoveAttachment(f.ctx, who.inst, who.user, unknown)
			if d1, d2 := detail(err), detail(err2); d1 != d2 {
				t.Fatalf("%s/%s: the refusal of a held id (%q) differs from that of an unknown one (%q)", who.inst, who.user, d1, d2)
			}
		}
		if _, _, err := f.svc.AttachmentContent(f.ctx, "COLLEGE", "nobody", a.ID); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("no user: %v", err)
		}

		// Nothing was removed by the refused attempts.
		_, content, err := f.svc.AttachmentContent(f.ctx, "UNI", "jdoe", a.ID)
		if err != nil || !bytes.Equal(content, secret) {
			t.Fatalf("UNI's attachment after the refusals: %q, %v", content, err)
		}

		// The owner's staff remove it, content and all.
		if err := f.svc.RemoveAttachment(f.ctx, "UNI", "jdoe", a.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RemoveAttachment(f.ctx, "UNI", "jdoe", a.ID); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("removing twice: %v", err)
		}
		if _, _, err := f.svc.AttachmentContent(f.ctx, "UNI", "jdoe", a.ID); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("a removed attachment reads: %v", err)
		}
		if n := rows(t, db, "pk_user_attachment_contents"); n != 0 {
			t.Fatalf("the content of a removed attachment is kept: %d rows", n)
		}
	})
}

func TestDeletingAUserDeletesTheirAttachments(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "other", FirstName: "O", LastName: "Ther"})
		mustAttach(t, f, "UNI", "jdoe", patron.Attachment{FileName: "a.txt"}, []byte("a"))
		mustAttach(t, f, "UNI", "jdoe", patron.Attachment{FileName: "b.pdf", Kind: patron.AttachmentNotice}, binaryFile(70<<10, 4))
		kept := mustAttach(t, f, "UNI", "other", patron.Attachment{FileName: "c.txt"}, []byte("c"))

		if err := f.svc.Delete(f.ctx, "UNI", "jdoe"); err != nil {
			t.Fatal(err)
		}
		if n, m := rows(t, db, "pk_user_attachments"), rows(t, db, "pk_user_attachment_contents"); n != 1 || m != 1 {
			t.Fatalf("after deleting jdoe: %d attachments, %d contents; want only other's", n, m)
		}
		if n := rows(t, db, "pk_user_attachment_contents", "attachment_id = ?", kept.ID); n != 1 {
			t.Fatal("another user's attachment went with jdoe")
		}
		// A new user of the same primary_id starts without attachments.
		mustCreate(t, f, "UNI", jane())
		if list, err := f.svc.Attachments(f.ctx, "UNI", "jdoe"); err != nil || len(list) != 0 {
			t.Fatalf("a new jdoe inherits %v (%v)", list, err)
		}
	})
}

func TestAttachmentsAddedWhileTheUserIsDeletedAreNotLeftBehind(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		for round := range 3 {
			mustCreate(t, f, "UNI", jane())
			var wg sync.WaitGroup
			for i := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := f.svc.AddAttachment(f.ctx, "UNI", "jdoe", patron.Attachment{FileName: fmt.Sprintf("r%d-%d.txt", round, i)}, strings.NewReader("x"))
					if err != nil && !errors.Is(err, fault.ErrNotFound) {
						t.Errorf("add: %v", err)
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f.svc.Delete(f.ctx, "UNI", "jdoe"); err != nil {
					t.Errorf("delete: %v", err)
				}
			}()
			wg.Wait()
			if n, m := rows(t, db, "pk_user_attachments"), rows(t, db, "pk_user_attachment_contents"); n != 0 || m != 0 {
				t.Fatalf("round %d: %d attachments and %d contents outlived their user", round, n, m)
			}
		}
	})
}

func TestAttachmentAuthorshipIsTheServers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		var mu sync.Mutex
		var events []string
		f := newFixture(t, db, patron.Options{Audit: patron.AuditFunc(func(_ context.Context, e patron.AuditEvent) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e.Actor.ID+" "+e.Action+" "+e.PrimaryID+" "+e.What)
		})})
		mustCreate(t, f, "UNI", jane())
		other := mustCreate(t, f, "UNI", &patron.User{PrimaryID: "other", FirstName: "O", LastName: "Ther"})
		held := mustAttach(t, f, "UNI", "other", patron.Attachment{FileName: "held.txt"}, []byte("held"))
		mu.Lock()
		events = nil
		mu.Unlock()

		forged := patron.Attachment{
			ID: held.ID, UserID: other.ID, FileName: "form.pdf", Size: 1 << 30,
			CreatedBy: "forged", CreatedDate: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC),
		}
		ctx := patron.WithActor(context.Background(), patron.Actor{Institution: "UNI", ID: "staff2"})
		a, err := f.svc.AddAttachment(ctx, "UNI", "JDOE", forged, strings.NewReader("signed"))
		if err != nil {
			t.Fatal(err)
		}
		if a.ID == held.ID || a.Size != 6 || a.CreatedBy != "staff2" || !a.CreatedDate.Equal(f.clock.Now()) {
			t.Fatalf("the caller's id, size or authorship was kept: %+v", a)
		}
		got, _, err := f.svc.AttachmentContent(f.ctx, "UNI", "jdoe", a.ID)
		if err != nil || got.CreatedBy != "staff2" || !got.CreatedDate.Equal(f.clock.Now()) || got.Size != 6 {
			t.Fatalf("stored as %+v (%v)", got, err)
		}
		// The attachment went to jdoe, not to the user the caller named.
		if list, _ := f.svc.Attachments(f.ctx, "UNI", "other"); len(list) != 1 || list[0].ID != held.ID {
			t.Fatalf("other's attachments: %+v", list)
		}
		_, content, err := f.svc.AttachmentContent(f.ctx, "UNI", "other", held.ID)
		if err != nil || string(content) != "held" {
			t.Fatalf("the held attachment was overwritten: %q %v", content, err)
		}
		// Without an actor nobody is named.
		anon, err := f.svc.AddAttachment(context.Background(), "UNI", "jdoe", patron.Attachment{FileName: "x.txt", CreatedBy: "forged"}, strings.NewReader("x"))
		if err != nil || anon.CreatedBy != "" {
			t.Fatalf("without an actor: %+v %v", anon, err)
		}
		if err := f.svc.RemoveAttachment(f.ctx, "UNI", "jdoe", anon.ID); err != nil {
			t.Fatal(err)
		}

		mu.Lock()
		defer mu.Unlock()
		want := "staff2 update jdoe attachments|staff1 read jdoe attachments|staff1 read other attachments|staff1 read other attachments|" +
			" update jdoe attachments|staff1 update jdoe attachments"
		if got := strings.Join(events, "|"); got != want {
			t.Fatalf("audit events\n got %s\nwant %s", got, want)
		}
	})
}

func TestAttachmentMigrationUpgradesADatabaseMadeBeforeIt(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		all := patron.Migrations()
		if len(all) < 2 || all[1].ID != "202611270003_patron_attachments" {
			t.Fatalf("the attachment migration is not the second of the patron migrations")
		}
		// A database of the release before attachments, with a user in it.
		if err := migrate.Run(ctx, db, all[:1]); err != nil {
			t.Fatal(err)
		}
		if db.Migrator().HasTable("pk_user_attachments") {
			t.Fatal("the first migration already made the attachment tables")
		}
		old, err := patron.NewService(db, patron.Options{PINCost: bcrypt.MinCost})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := old.Create(ctx, "UNI", jane()); err != nil {
			t.Fatal(err)
		}
		// Upgrading adds the tables, and the user can have attachments.
		f := newFixture(t, db, patron.Options{})
		a := mustAttach(t, f, "UNI", "jdoe", patron.Attachment{FileName: "after-upgrade.bin"}, binaryFile(100<<10, 5))
		if _, content, err := f.svc.AttachmentContent(f.ctx, "UNI", "jdoe", a.ID); err != nil || len(content) != 100<<10 {
			t.Fatalf("after the upgrade: %d bytes, %v", len(content), err)
		}
		var applied []string
		if err := db.Table(migrate.Table).Order("id").Pluck("id", &applied).Error; err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(strings.Join(applied, ","), "202611270001_patron_users,202611270003_patron_attachments") {
			t.Fatalf("migrations recorded: %v", applied)
		}
	})
}
