package sis_test

import (
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron/sis"
)

// An SIS file's users are checked as the API's are: a user with a NUL, a
// control character or bytes that are not UTF-8 in a field, or a
// primary_id that cannot name a URL path segment, is rejected with the
// reason and the run goes on with the others, on every database. Labels
// and names no database can keep are passed over or escaped; the run and
// its report are saved.
func TestSISRunRejectsUsersWithBadTextAndGoesOn(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{Format: "csv"})
		file := "primary_id,first_name,last_name,note_1_text\n" +
			"s1,Ann,A,fine\n" +
			"s2,B\x00b,B,\n" +
			"..,Dot,D,\n" +
			"ME,Me,M,\n" +
			"s3,Cy,C\xffC,\n" +
			"s4,Di,D,\"two\r\nlines\"\n" +
			"s\x005,Ed,E,\n" +
			"s6,Flo,F,bell\x07\n"
		r, err := e.sis.StartRun(e.ctx, "UNI", "SIS", sis.RunOptions{Upload: strings.NewReader(file), UploadName: "users\x00.csv"})
		if err != nil {
			t.Fatal(err)
		}
		r, err = e.sis.Wait(e.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := counts(r); got != "succeeded created=2 updated=0 unchanged=0 rejected=6 failed=0 deactivated=0" {
			t.Fatalf("run: %s %s", got, r.Error)
		}
		rep := e.report(t, r.ID)
		want := []struct{ outcome, reason string }{
			{sis.OutcomeCreated, ""},
			{sis.OutcomeRejected, "first_name holds a NUL character"},
			{sis.OutcomeRejected, `primary_id must not be "." or ".."`},
			{sis.OutcomeRejected, `primary_id "ME" is reserved`},
			{sis.OutcomeRejected, "last_name: is not UTF-8 text"},
			{sis.OutcomeCreated, ""},
			{sis.OutcomeRejected, "primary_id must not contain a slash or control characters"},
			{sis.OutcomeRejected, "user_notes[0].note_text holds the control character U+0007"},
		}
		if len(rep) != len(want) {
			t.Fatalf("report of %d outcomes: %+v", len(rep), rep)
		}
		for i, w := range want {
			if rep[i].Outcome != w.outcome || !strings.Contains(rep[i].Reason, w.reason) {
				t.Errorf("user %d: %s %q, want %s %q", i+1, rep[i].Outcome, rep[i].Reason, w.outcome, w.reason)
			}
		}
		if rep[6].PrimaryID != `s\u00005` || !strings.Contains(rep[0].File, `\u0000`) {
			t.Errorf("a primary_id or file name no database keeps is reported escaped: %q %q", rep[6].PrimaryID, rep[0].File)
		}
		u, err := e.patrons.Get(e.ctx, "UNI", "s4")
		if err != nil || u.Notes[0].NoteText != "two\nlines" {
			t.Fatalf("s4: %+v %v", u, err)
		}
		if _, err := e.patrons.Get(e.ctx, "UNI", "s2"); err == nil {
			t.Fatal("a rejected user was written")
		}

		// JSON: a label whose description holds NUL is passed over; the
		// user loads.
		e.profile(t, sis.Profile{Code: "JS", Format: "json"})
		js := `{"user": [{"primary_id": "j1", "first_name": "J", "last_name": "One", "user_group": {"value": "G", "desc": "Gro\u0000up"}}]}`
		r, err = e.sis.StartRun(e.ctx, "UNI", "JS", sis.RunOptions{Upload: strings.NewReader(js), UploadName: "users.json"})
		if err != nil {
			t.Fatal(err)
		}
		if r, err = e.sis.Wait(e.ctx, r.ID); err != nil || counts(r) != "succeeded created=1 updated=0 unchanged=0 rejected=0 failed=0 deactivated=0" {
			t.Fatalf("JSON run: %s %v", counts(r), err)
		}
		if labels, err := e.patrons.CodeTable(e.ctx, "UNI", "user_group"); err != nil || len(labels) != 0 {
			t.Fatalf("labels %+v %v", labels, err)
		}

		// A profile is text too.
		_, err = e.sis.CreateProfile(e.ctx, "UNI", &sis.Profile{Code: "P2", Source: sis.Upload, Mode: sis.ModeSynchronize, Description: "no\x00pe"})
		if pe, ok := fault.As(err); !ok || pe.Kind != fault.Invalid || len(pe.Fields) != 1 || pe.Fields[0].Field != "description" {
			t.Fatalf("profile with NUL: %v", err)
		}
		if _, err := e.sis.Profile(e.ctx, "UNI", "S\x00IS"); !isNotFound(err) {
			t.Fatalf("profile lookup: %v", err)
		}
	})
}

func isNotFound(err error) bool {
	pe, ok := fault.As(err)
	return ok && pe.Kind == fault.NotFound
}
