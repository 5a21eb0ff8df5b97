package sis_test

import (
	"errors"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/migrate"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
)

// with adds elements to a user of userXML, after its names.
func with(user, elements string) string {
	return strings.Replace(user, "</last_name>", "</last_name>"+elements, 1)
}

// A profile makes no staff records unless it allows them (allow_staff):
// an incoming STAFF user is rejected with the reason, so is one that would
// make an existing user STAFF or that matches a STAFF record, and the rest
// of the run goes on. A profile that allows them creates and updates them.
func TestOnlyAProfileThatAllowsStaffMakesStaffRecords(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.profile(t, sis.Profile{DeactivateMissing: true})
		// A staff record the SIS profile matches (registered by hand as
		// the profile's).
		if _, err := e.patrons.Create(e.ctx, "UNI", &patron.User{PrimaryID: "lib1", FirstName: "L", LastName: "Ib", RecordType: patron.RecordStaff,
			AccountType: patron.AccountExternal, ExternalID: "SIS", PINNumber: "1111", Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "BC-lib1"}}}); err != nil {
			t.Fatal(err)
		}

		r := e.run(t, "SIS", usersXML(
			userXML("s1", "Sam", "S"),
			with(userXML("boss", "Bo", "Ss"), "<record_type>STAFF</record_type><pin_number>9999</pin_number>"),
			with(userXML("lib1", "L", "Ib"), "<record_type>PUBLIC</record_type><pin_number>9999</pin_number>"),
		), false)
		if got := counts(r); got != "succeeded created=1 updated=0 unchanged=0 rejected=2 failed=0 deactivated=0" {
			t.Fatalf("run: %s %s", got, r.Error)
		}
		rep := e.report(t, r.ID)
		if rep[1].Outcome != sis.OutcomeRejected || !strings.Contains(rep[1].Reason, "STAFF") || !strings.Contains(rep[1].Reason, "allow_staff") {
			t.Errorf("the STAFF user: %+v", rep[1])
		}
		if rep[2].Outcome != sis.OutcomeRejected || !strings.Contains(rep[2].Reason, "staff record") {
			t.Errorf("the user matching a staff record: %+v", rep[2])
		}
		if _, err := e.patrons.Get(e.ctx, "UNI", "boss"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("the STAFF user was created: %v", err)
		}
		if _, err := e.patrons.SignIn(e.ctx, "UNI", "lib1", "1111", "127.0.0.1"); err != nil {
			t.Fatalf("the staff record's PIN changed: %v", err)
		}

		// s1 is not made STAFF, and lib1, missing from a clean run, stays
		// active: the profile does not touch staff records.
		r = e.run(t, "SIS", usersXML(with(userXML("s1", "Sam", "S"), "<record_type>STAFF</record_type>")), false)
		if got := counts(r); got != "succeeded created=0 updated=0 unchanged=0 rejected=1 failed=0 deactivated=0" {
			t.Fatalf("making s1 STAFF: %s", got)
		}
		r = e.run(t, "SIS", usersXML(userXML("s1", "Sam", "S")), false)
		if got := counts(r); got != "succeeded created=0 updated=0 unchanged=1 rejected=0 failed=0 deactivated=0" {
			t.Fatalf("a clean run: %s", got)
		}
		for id, want := range map[string]string{"s1": patron.RecordPublic, "lib1": patron.RecordStaff} {
			u, err := e.patrons.Get(e.ctx, "UNI", id)
			if err != nil || u.RecordType != want || u.Status != patron.StatusActive || u.Version != 1 {
				t.Fatalf("%s: %+v %v", id, u, err)
			}
		}
		// Matching on an identifier finds the staff record too.
		e.profile(t, sis.Profile{Code: "CARDS", MatchBy: "BARCODE"})
		r = e.run(t, "CARDS", usersXML(strings.Replace(userXML("someone", "S", "O"), "BC-someone", "BC-lib1", 1)), false)
		if rep := e.report(t, r.ID); r.Rejected != 1 || !strings.Contains(rep[0].Reason, "staff record") {
			t.Fatalf("a match on a staff record's barcode: %s %+v", counts(r), rep)
		}

		// A profile that allows staff creates and updates them.
		e.profile(t, sis.Profile{Code: "HR", AllowStaff: true})
		r = e.run(t, "HR", usersXML(
			with(userXML("boss", "Bo", "Ss"), "<record_type>STAFF</record_type><pin_number>9999</pin_number>"),
			with(userXML("lib1", "Libby", "Ib"), "<record_type>STAFF</record_type>"),
		), false)
		if got := counts(r); got != "succeeded created=1 updated=1 unchanged=0 rejected=0 failed=0 deactivated=0" {
			t.Fatalf("a profile that allows staff: %s %+v", got, e.report(t, r.ID))
		}
		if u, err := e.patrons.SignIn(e.ctx, "UNI", "boss", "9999", "127.0.0.1"); err != nil || u.RecordType != patron.RecordStaff {
			t.Fatalf("boss: %+v %v", u, err)
		}
		if u, _ := e.patrons.Get(e.ctx, "UNI", "lib1"); u.FirstName != "Libby" {
			t.Fatalf("lib1 was not updated: %+v", u)
		}
	})
}

// A profile gives users the record type STAFF by default only where it
// allows staff records.
func TestAProfileDefaultingToStaffMustAllowStaff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		_, err := e.sis.CreateProfile(e.ctx, "UNI", &sis.Profile{Code: "HR", Source: sis.Upload, Mode: sis.ModeSynchronize, RecordType: "staff"})
		var pe *fault.Error
		if !errors.As(err, &pe) || pe.Kind != fault.Invalid || len(pe.Fields) != 1 || pe.Fields[0].Field != "record_type" {
			t.Fatalf("a STAFF default without allow_staff: %v", err)
		}
		p := e.profile(t, sis.Profile{Code: "HR", RecordType: patron.RecordStaff, AllowStaff: true})
		if p, err = e.sis.Profile(e.ctx, "UNI", p.Code); err != nil || !p.AllowStaff {
			t.Fatalf("allow_staff was not kept: %+v %v", p, err)
		}
		p.AllowStaff = false
		if _, err := e.sis.ReplaceProfile(e.ctx, "UNI", p.Code, p.Version, p); !errors.As(err, &pe) || pe.Kind != fault.Invalid {
			t.Fatalf("taking allow_staff from a STAFF default: %v", err)
		}
	})
}

// A profile that already made its users STAFF by default keeps doing so
// after the upgrade; the others do not allow staff records.
func TestProfilesDefaultingToStaffAllowStaffAfterTheUpgrade(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ms := append(patron.Migrations(), sis.Migrations()...)
		i := len(ms) - 1
		if ms[i].ID != "202611280103_sis_profiles_allow_staff" {
			t.Fatalf("the last migration is %s", ms[i].ID)
		}
		if err := migrate.Run(t.Context(), db, ms[:i]); err != nil {
			t.Fatal(err)
		}
		for code, rt := range map[string]string{"HR": "STAFF", "SIS": "", "GUESTS": "CONTACT"} {
			if err := db.Exec("INSERT INTO pk_sis_profiles (institution, code, source, mode, match_by, unmatched, record_type, expiry_rule, purge_rule, version, deactivate_missing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				"UNI", code, sis.Upload, "synchronize", "primary_id", "add", rt, "file", "none", 1, false).Error; err != nil {
				t.Fatal(err)
			}
		}
		e := newEnv(t, db)
		for code, want := range map[string]bool{"HR": true, "SIS": false, "GUESTS": false} {
			if p, err := e.sis.Profile(e.ctx, "UNI", code); err != nil || p.AllowStaff != want {
				t.Errorf("%s after the upgrade: %+v %v", code, p, err)
			}
		}
	})
}
