package patron_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

func TestReplaceSwapsSegmentsAndChecksTheVersion(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		u := mustCreate(t, f, "UNI", jane())

		in := *u
		in.FirstName = "Janet"
		in.Emails = []patron.Email{{EmailAddress: "janet@new.example", Preferred: true}}
		in.Notes = nil
		in.Phones = nil
		got, err := f.svc.Replace(f.ctx, "UNI", "jdoe", 1, &in)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 2 || got.FirstName != "Janet" || len(got.Emails) != 1 || got.Emails[0].EmailAddress != "janet@new.example" || len(got.Notes) != 0 || len(got.Phones) != 0 {
			t.Fatalf("replace did not swap the lists: %+v", got)
		}
		if len(got.Identifiers) != 1 || got.PINHash != u.PINHash {
			t.Fatal("lists sent whole must be kept, and the PIN kept when none is sent")
		}

		// A stale version changes nothing.
		stale := *got
		stale.LastName = "Stale"
		_, err = f.svc.Replace(f.ctx, "UNI", "jdoe", 1, &stale)
		wantKind(t, err, fault.Stale)
		now, _ := f.svc.Get(f.ctx, "UNI", "jdoe")
		if now.LastName != "Doe" || now.Version != 2 {
			t.Fatalf("a stale update wrote: %+v", now)
		}

		// An invalid replacement changes nothing either.
		bad := *now
		bad.Emails = append(bad.Emails, patron.Email{EmailAddress: "x@y.example", Preferred: true})
		_, err = f.svc.Replace(f.ctx, "UNI", "jdoe", 2, &bad)
		wantField(t, wantKind(t, err, fault.Invalid), "emails[1].preferred", "one_preferred")

		// Renaming the primary id onto another user's is a conflict.
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "taken", FirstName: "T", LastName: "T"})
		ren := *now
		ren.PrimaryID = "TAKEN"
		_, err = f.svc.Replace(f.ctx, "UNI", "jdoe", 2, &ren)
		wantKind(t, err, fault.Conflict)

		// Authorship of notes cannot be written by clients, and a round trip
		// keeps it; enumerations left out keep their stored values.
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "staffer", FirstName: "S", LastName: "S", RecordType: "STAFF", Status: "INACTIVE",
			Notes: []patron.Note{{NoteText: "n", CreatedBy: "forged", CreatedDate: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), Origin: "external"}}})
		st, _ := f.svc.Get(f.ctx, "UNI", "staffer")
		if n := st.Notes[0]; n.CreatedBy != "staff1" || n.CreatedDate.Year() != 2026 || n.Origin != patron.OriginLibrary {
			t.Fatalf("forged authorship kept: %+v", n)
		}
		f.clock.Advance(time.Hour)
		rt := *st
		rt.RecordType, rt.Status = "", ""
		rt.Notes = []patron.Note{{Segment: patron.Segment{ID: st.Notes[0].ID}, NoteText: "n edited", CreatedBy: "forged"}}
		st2, err := f.svc.Replace(patron.WithActor(f.ctx, patron.Actor{ID: "staff2"}), "UNI", "staffer", st.Version, &rt)
		if err != nil {
			t.Fatal(err)
		}
		if n := st2.Notes[0]; n.ID != st.Notes[0].ID || n.CreatedBy != "staff1" || !n.CreatedDate.Equal(st.Notes[0].CreatedDate) || n.NoteText != "n edited" {
			t.Fatalf("a note sent back must keep its id and authorship: %+v vs %+v", n, st.Notes[0])
		}
		if st2.RecordType != patron.RecordStaff || st2.Status != patron.StatusInactive {
			t.Fatalf("omitted enumerations were reset: %s %s", st2.RecordType, st2.Status)
		}

		if _, err := f.svc.Replace(f.ctx, "UNI", "nobody", 1, &ren); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("replace of a missing user: %v", err)
		}
	})
}

// markExternal turns a user and all its segments into what a synchronize
// would have written.
func markExternal(t *testing.T, db *gorm.DB, primaryID string) {
	t.Helper()
	var u patron.User
	if err := db.Where("primary_id = ?", primaryID).Take(&u).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Model(&u).Updates(map[string]any{"account_type": patron.AccountExternal, "external_id": "SIS"}).Error; err != nil {
		t.Fatal(err)
	}
	for _, m := range []any{&patron.Identifier{}, &patron.Email{}, &patron.Phone{}, &patron.Address{}, &patron.Note{}, &patron.Block{}, &patron.Statistic{}} {
		if err := db.Model(m).Where("user_id = ?", u.ID).Update("segment_type", patron.SegmentExternal).Error; err != nil {
			t.Fatal(err)
		}
	}
}

func TestExternalUsersKeepWhatTheSISOwns(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())
		markExternal(t, db, "jdoe")
		u, err := f.svc.Get(f.ctx, "UNI", "jdoe")
		if err != nil {
			t.Fatal(err)
		}

		// Core fields the SIS owns cannot be changed by hand.
		in := *u
		in.FirstName, in.ExpiryDate = "Changed", "2040-01-01"
		_, err = f.svc.Replace(f.ctx, "UNI", "jdoe", u.Version, &in)
		e := wantKind(t, err, fault.Invalid)
		wantField(t, e, "first_name", "managed_by_sis")
		wantField(t, e, "expiry_date", "managed_by_sis")

		// Nor can External entries.
		in = *u
		in.Emails = []patron.Email{u.Emails[0], u.Emails[1]}
		in.Emails[1].EmailAddress = "hijack@evil.example"
		_, err = f.svc.Replace(f.ctx, "UNI", "jdoe", u.Version, &in)
		wantField(t, wantKind(t, err, fault.Invalid), "emails[1]", "managed_by_sis")

		// Retained fields and Internal entries can; left-out External entries stay.
		in = *u
		in.UserGroup, in.CampusCode, in.PINNumber = "GRAD", "NORTH", "9876"
		in.Emails = []patron.Email{{EmailAddress: "desk-added@uni.example"}}
		in.Notes = nil
		got, err := f.svc.Replace(f.ctx, "UNI", "jdoe", u.Version, &in)
		if err != nil {
			t.Fatal(err)
		}
		if got.UserGroup != "GRAD" || got.CampusCode != "NORTH" || got.FirstName != "Jane" {
			t.Fatalf("retained fields not saved: %+v", got)
		}
		if len(got.Emails) != 3 || len(got.Notes) != 2 {
			t.Fatalf("External entries must stay and the Internal one be added: %+v %+v", got.Emails, got.Notes)
		}
		internal := 0
		for _, e := range got.Emails {
			if e.SegmentType == patron.SegmentInternal {
				internal++
				if e.EmailAddress != "desk-added@uni.example" {
					t.Fatalf("wrong Internal email %+v", e)
				}
			}
		}
		if internal != 1 {
			t.Fatalf("want one Internal email, got %d", internal)
		}
		if _, err := f.svc.SignIn(f.ctx, "UNI", "jdoe", "9876", "192.0.2.1"); err != nil {
			t.Fatalf("the new PIN must work: %v", err)
		}

		// Every manual change of a retained field is remembered, with who.
		ov, err := f.svc.Overrides(f.ctx, "UNI", "jdoe")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, o := range ov {
			names = append(names, o.Field)
			if o.ChangedBy != "staff1" || o.ChangedAt.IsZero() {
				t.Fatalf("provenance without author or time: %+v", o)
			}
		}
		if strings.Join(names, ",") != "campus_code,pin_number,user_group" {
			t.Fatalf("provenance: %v", names)
		}

		// An internal user cannot be made external by hand.
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "local", FirstName: "L", LastName: "L"})
		loc, _ := f.svc.Get(f.ctx, "UNI", "local")
		loc.AccountType, loc.ExternalID = patron.AccountExternal, "SIS"
		_, err = f.svc.Replace(f.ctx, "UNI", "local", loc.Version, loc)
		wantField(t, wantKind(t, err, fault.Invalid), "account_type", "managed_by_sis")
	})
}

func TestFastRegistrationCreatesAnExternalUser(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		u := mustCreate(t, f, "UNI", &patron.User{PrimaryID: "new1", FirstName: "N", LastName: "New", AccountType: "external", ExternalID: "SIS", UserGroup: "UNDERGRAD"})
		if !u.IsExternal() || u.ExternalID != "SIS" {
			t.Fatalf("fast registration must give an External user of the profile: %+v", u)
		}
	})
}

func TestOneSegmentAtATime(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", jane())
		markExternal(t, db, "jdoe")

		u, err := f.svc.AddNote(f.ctx, "UNI", "jdoe", patron.Note{NoteText: "Left an umbrella", NoteType: "CIRC"})
		if err != nil {
			t.Fatal(err)
		}
		var added patron.Note
		for _, n := range u.Notes {
			if n.NoteText == "Left an umbrella" {
				added = n
			}
		}
		if added.SegmentType != patron.SegmentInternal || added.CreatedBy != "staff1" {
			t.Fatalf("added note: %+v", added)
		}
		if _, err := f.svc.AddBlock(f.ctx, "UNI", "jdoe", patron.Block{BlockType: "GENERAL", BlockDescription: "FINES"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.AddIdentifier(f.ctx, "UNI", "jdoe", patron.Identifier{IDType: "UNIV_ID", Value: "U-1"}); err != nil {
			t.Fatal(err)
		}
		// A second preferred email breaks the record's rule.
		_, err = f.svc.AddEmail(f.ctx, "UNI", "jdoe", patron.Email{EmailAddress: "two@uni.example", Preferred: true})
		wantKind(t, err, fault.Invalid)

		// Internal entries go; External ones belong to the SIS.
		if _, err := f.svc.RemoveSegment(f.ctx, "UNI", "jdoe", patron.KindNotes, added.ID); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.RemoveSegment(f.ctx, "UNI", "jdoe", patron.KindEmails, u.Emails[0].ID)
		wantKind(t, err, fault.Refused)
		_, err = f.svc.RemoveSegment(f.ctx, "UNI", "jdoe", patron.KindEmails, "no-such-id")
		wantKind(t, err, fault.NotFound)

		got, _ := f.svc.Get(f.ctx, "UNI", "jdoe")
		if len(got.Notes) != 2 || len(got.Blocks) != 2 || len(got.Identifiers) != 2 || len(got.Emails) != 2 || got.Version != 5 {
			t.Fatalf("after the edits: notes %d blocks %d ids %d emails %d version %d", len(got.Notes), len(got.Blocks), len(got.Identifiers), len(got.Emails), got.Version)
		}
	})
}
