package patron_test

import (
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

var syncRule = patron.SyncRule{Profile: "SIS", Mode: patron.ModeSynchronize, MatchBy: patron.MatchPrimaryID, Unmatched: patron.UnmatchedAdd}

// sisUser is a record as an SIS sends it.
func sisUser(id, first string) *patron.User {
	return &patron.User{
		PrimaryID: id, FirstName: first, LastName: "Sis", UserGroup: "UNDERGRAD", CampusCode: "MAIN", ExpiryDate: "2027-08-31",
		Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "BC-" + id}},
		Emails:      []patron.Email{{EmailAddress: id + "@uni.example", Preferred: true}},
		Notes:       []patron.Note{{NoteType: "REGISTRAR", NoteText: "enrolled", UserViewable: true}},
	}
}

func sync1(t *testing.T, f *fixture, rule patron.SyncRule, u *patron.User) patron.SyncResult {
	t.Helper()
	return f.svc.SyncBatch(f.ctx, "UNI", []*patron.User{u}, rule)[0]
}

func wantOutcome(t *testing.T, r patron.SyncResult, outcome, reasonPart string) {
	t.Helper()
	if r.Outcome != outcome || !strings.Contains(r.Reason, reasonPart) {
		t.Fatalf("outcome %s (%q), want %s containing %q", r.Outcome, r.Reason, outcome, reasonPart)
	}
}

func TestImportAddsOnlyNewUsers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		imp := syncRule
		imp.Mode = patron.ModeImport
		wantOutcome(t, sync1(t, f, imp, sisUser("s1", "Ann")), patron.OutcomeCreated, "")
		wantOutcome(t, sync1(t, f, imp, sisUser("s1", "Changed")), patron.OutcomeRejected, "exists already")
		u, _ := f.svc.Get(f.ctx, "UNI", "s1")
		if u.FirstName != "Ann" || !u.IsExternal() || u.ExternalID != "SIS" {
			t.Fatalf("import changed an existing user or made it wrong: %+v", u)
		}
	})
}

func TestSynchronizeMatchesAnyExternalUserNeverAnInternalOne(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		other := syncRule
		other.Profile = "HR"
		wantOutcome(t, sync1(t, f, other, sisUser("s1", "Ann")), patron.OutcomeCreated, "")
		// The student profile takes over the user the HR profile made.
		wantOutcome(t, sync1(t, f, syncRule, sisUser("s1", "Annie")), patron.OutcomeUpdated, "")
		u, _ := f.svc.Get(f.ctx, "UNI", "s1")
		if u.FirstName != "Annie" || u.ExternalID != "SIS" {
			t.Fatalf("not taken over: %+v", u)
		}
		// An internal user is never matched.
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "local", FirstName: "L", LastName: "L"})
		wantOutcome(t, sync1(t, f, syncRule, sisUser("LOCAL", "X")), patron.OutcomeRejected, `internal user "local"`)
		l, _ := f.svc.Get(f.ctx, "UNI", "local")
		if l.FirstName != "L" || l.IsExternal() {
			t.Fatalf("the internal user was touched: %+v", l)
		}
	})
}

func TestUnmatchedUsersAddedOrRejected(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		strict := syncRule
		strict.Unmatched = patron.UnmatchedReject
		wantOutcome(t, sync1(t, f, strict, sisUser("s1", "Ann")), patron.OutcomeRejected, "rejects unmatched")
		if n := countUsers(t, f, "UNI"); n != 0 {
			t.Fatalf("a rejected user was written")
		}
		wantOutcome(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.OutcomeCreated, "")
		wantOutcome(t, sync1(t, f, strict, sisUser("s1", "Anna")), patron.OutcomeUpdated, "")
	})
}

func TestSynchronizeKeepsRetainedFieldsInternalSegmentsAndNotes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		wantOutcome(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.OutcomeCreated, "")
		u, _ := f.svc.Get(f.ctx, "UNI", "s1")
		// Staff change a retained field, add a library note and an email.
		in := *u
		in.UserGroup = "GRAD"
		in.Notes = append(in.Notes, patron.Note{NoteText: "library note"})
		in.Emails = append(in.Emails, patron.Email{EmailAddress: "desk@added.example", Preferred: false})
		if _, err := f.svc.Replace(f.ctx, "UNI", "s1", u.Version, &in); err != nil {
			t.Fatal(err)
		}
		next := sisUser("s1", "Annette")                // a core field changes
		next.UserGroup = "UNDERGRAD"                    // kept: staff changed it by hand
		next.CampusCode = ""                            // kept: empty in the file
		next.JobCategory = "Assistant"                  // taken: never changed by hand
		next.Emails[0].EmailAddress = "new@uni.example" // External segments swapped
		next.Phones = []patron.Phone{{PhoneNumber: "+1555", Preferred: true, Segment: patron.Segment{SegmentType: patron.SegmentInternal}}}
		r := sync1(t, f, syncRule, next)
		wantOutcome(t, r, patron.OutcomeUpdated, "")
		got, _ := f.svc.Get(f.ctx, "UNI", "s1")
		if got.FirstName != "Annette" || got.UserGroup != "GRAD" || got.CampusCode != "MAIN" || got.JobCategory != "Assistant" {
			t.Fatalf("core merge: %+v", got)
		}
		var ext, internal []string
		for _, e := range got.Emails {
			if e.IsExternal() {
				ext = append(ext, e.EmailAddress)
			} else {
				internal = append(internal, e.EmailAddress)
			}
		}
		if strings.Join(ext, ",") != "new@uni.example" || strings.Join(internal, ",") != "desk@added.example" {
			t.Fatalf("emails: external %v internal %v", ext, internal)
		}
		if len(got.Phones) != 1 || !got.Phones[0].IsExternal() {
			t.Fatalf("an SIS segment marked Internal must count as External: %+v", got.Phones)
		}
		libNotes := 0
		for _, n := range got.Notes {
			if !n.IsExternal() && n.NoteText == "library note" {
				libNotes++
			}
		}
		if libNotes != 1 {
			t.Fatalf("the library note must stay: %+v", got.Notes)
		}
		if !strings.Contains(strings.Join(r.Changes, ","), "first_name") || !strings.Contains(strings.Join(r.Changes, ","), "emails") {
			t.Fatalf("changes: %v", r.Changes)
		}
	})
}

func TestSameFileTwiceChangesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		batch := func() []*patron.User {
			return []*patron.User{sisUser("s1", "A"), sisUser("s2", "B"), sisUser("s3", "C")}
		}
		for _, r := range f.svc.SyncBatch(f.ctx, "UNI", batch(), syncRule) {
			wantOutcome(t, r, patron.OutcomeCreated, "")
		}
		before, _ := f.svc.Get(f.ctx, "UNI", "s2")
		for _, r := range f.svc.SyncBatch(f.ctx, "UNI", batch(), syncRule) {
			wantOutcome(t, r, patron.OutcomeUnchanged, "")
		}
		after, _ := f.svc.Get(f.ctx, "UNI", "s2")
		if after.Version != before.Version || !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Fatal("an unchanged user was rewritten")
		}
		// A real change is still seen.
		changed := batch()
		changed[1].LastName = "Other"
		rs := f.svc.SyncBatch(f.ctx, "UNI", changed, syncRule)
		wantOutcome(t, rs[0], patron.OutcomeUnchanged, "")
		wantOutcome(t, rs[1], patron.OutcomeUpdated, "")
	})
}

func TestIncomingCollisionsAndBadRecordsAreRejectedWithTheReason(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "holder", FirstName: "H", LastName: "H", Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "BC-s1"}}})
		wantOutcome(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.OutcomeRejected, "BARCODE")
		noNames := sisUser("s2", "")
		noNames.LastName = ""
		wantOutcome(t, sync1(t, f, syncRule, noNames), patron.OutcomeRejected, "first_name is required")
		badEmail := sisUser("s3", "C")
		badEmail.Emails[0].EmailAddress = "nope"
		wantOutcome(t, sync1(t, f, syncRule, badEmail), patron.OutcomeRejected, "email_address")
		if n := countUsers(t, f, "UNI"); n != 1 {
			t.Fatalf("rejected users were written: %d", n)
		}
	})
}

func TestMatchOnAnIdentifierType(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		byBarcode := syncRule
		byBarcode.MatchBy = "BARCODE"
		wantOutcome(t, sync1(t, f, byBarcode, sisUser("s1", "Ann")), patron.OutcomeCreated, "")
		renamed := sisUser("s1-new", "Ann")
		renamed.Identifiers[0].Value = "BC-s1"
		wantOutcome(t, sync1(t, f, byBarcode, renamed), patron.OutcomeUpdated, "")
		if _, err := f.svc.Get(f.ctx, "UNI", "s1-new"); err != nil {
			t.Fatalf("the primary id follows the SIS when matching on a barcode: %v", err)
		}
		noBarcode := sisUser("s9", "X")
		noBarcode.Identifiers = nil
		wantOutcome(t, sync1(t, f, byBarcode, noBarcode), patron.OutcomeRejected, "no identifier of type BARCODE")
	})
}

func TestDryRunWritesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		wantOutcome(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.OutcomeCreated, "")
		dry := syncRule
		dry.DryRun = true
		rs := f.svc.SyncBatch(f.ctx, "UNI", []*patron.User{sisUser("s1", "Changed"), sisUser("s2", "New")}, dry)
		wantOutcome(t, rs[0], patron.OutcomeUpdated, "")
		wantOutcome(t, rs[1], patron.OutcomeCreated, "")
		if strings.Join(rs[0].Changes, ",") != "first_name" {
			t.Fatalf("dry-run changes: %v", rs[0].Changes)
		}
		u, _ := f.svc.Get(f.ctx, "UNI", "s1")
		if u.FirstName != "Ann" || countUsers(t, f, "UNI") != 1 {
			t.Fatal("a dry run wrote")
		}
	})
}

func TestTheSISsPreferredContactWins(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		first := sisUser("s1", "Ann")
		first.Emails[0].Preferred = false
		wantOutcome(t, sync1(t, f, syncRule, first), patron.OutcomeCreated, "")
		if _, err := f.svc.AddEmail(f.ctx, "UNI", "s1", patron.Email{EmailAddress: "mine@home.example", Preferred: true}); err != nil {
			t.Fatal(err)
		}
		wantOutcome(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.OutcomeUpdated, "")
		u, _ := f.svc.Get(f.ctx, "UNI", "s1")
		for _, e := range u.Emails {
			if e.Preferred != e.IsExternal() {
				t.Fatalf("want only the SIS's email preferred: %+v", u.Emails)
			}
		}
	})
}

func TestRestoredFieldsComeFromTheSISAgain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		wantOutcome(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.OutcomeCreated, "")
		u, _ := f.svc.Get(f.ctx, "UNI", "s1")
		in := *u
		in.UserGroup, in.CampusCode = "GRAD", "NORTH"
		if _, err := f.svc.Replace(f.ctx, "UNI", "s1", u.Version, &in); err != nil {
			t.Fatal(err)
		}
		wantOutcome(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.OutcomeUnchanged, "")
		if _, err := f.svc.RestoreSISFields(f.ctx, "UNI", "s1", []string{"first_name"}); err == nil {
			t.Fatal("first_name is not a retained field")
		}
		restored, err := f.svc.RestoreSISFields(f.ctx, "UNI", "s1", []string{"user_group"})
		if err != nil || strings.Join(restored, ",") != "user_group" {
			t.Fatalf("restore: %v %v", restored, err)
		}
		r := sync1(t, f, syncRule, sisUser("s1", "Ann"))
		wantOutcome(t, r, patron.OutcomeUpdated, "")
		got, _ := f.svc.Get(f.ctx, "UNI", "s1")
		if got.UserGroup != "UNDERGRAD" || got.CampusCode != "NORTH" {
			t.Fatalf("after restore: group %s campus %s", got.UserGroup, got.CampusCode)
		}
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "local", FirstName: "L", LastName: "L"})
		_, err = f.svc.RestoreSISFields(f.ctx, "UNI", "local", nil)
		wantKind(t, err, fault.Refused)
	})
}

func withBarcodes(u *patron.User, barcodes ...string) *patron.User {
	u.Identifiers = nil
	for _, b := range barcodes {
		u.Identifiers = append(u.Identifiers, patron.Identifier{IDType: "BARCODE", Value: b})
	}
	return u
}

// A dry run of a batch gives the outcomes the batch gives, user by user,
// the batch's own conflicts included, even for a user given twice.
func TestADryRunBatchGivesTheOutcomesOfTheBatch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		wantOutcome(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.OutcomeCreated, "")
		wantOutcome(t, sync1(t, f, syncRule, sisUser("s2", "Bo")), patron.OutcomeCreated, "")
		batch := func() []*patron.User {
			return []*patron.User{
				withBarcodes(sisUser("s1", "Ann"), "BC-s1", "BC-z"),
				withBarcodes(sisUser("z", "Zed"), "bc-z"),        // s1 took it
				withBarcodes(sisUser("s2", "Bo"), "BC-s2-new"),   // gives BC-s2 up
				withBarcodes(sisUser("n", "Nu"), "BC-S2"),        // takes it
				withBarcodes(sisUser("s1", "Annie"), "BC-s1"),    // s1 again
				withBarcodes(sisUser("m", "Mu"), "BC-m", "bc-z"), // s1 gave it up
			}
		}
		dry := syncRule
		dry.DryRun = true
		dryOut := f.svc.SyncBatch(f.ctx, "UNI", batch(), dry)
		if n := countUsers(t, f, "UNI"); n != 2 {
			t.Fatalf("the dry run wrote: %d users", n)
		}
		realOut := f.svc.SyncBatch(f.ctx, "UNI", batch(), syncRule)
		want := []string{patron.OutcomeUpdated, patron.OutcomeRejected, patron.OutcomeUpdated, patron.OutcomeCreated, patron.OutcomeUpdated, patron.OutcomeCreated}
		for i := range want {
			d, r := dryOut[i], realOut[i]
			if d.Outcome != r.Outcome || d.Reason != r.Reason || strings.Join(d.Changes, ",") != strings.Join(r.Changes, ",") {
				t.Errorf("user %d: the dry run said %+v, the batch %+v", i+1, d, r)
			}
			if r.Outcome != want[i] {
				t.Errorf("user %d: %+v, want %s", i+1, r, want[i])
			}
		}
		if u, err := f.svc.Get(f.ctx, "UNI", "m"); err != nil || len(u.Identifiers) != 2 {
			t.Fatalf("m: %+v, %v", u, err)
		}
	})
}

// A load applies its batches each after the one before, and each user
// once.
func TestASyncLoadAppliesEachUserOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		for _, rule := range []patron.SyncRule{func() patron.SyncRule { r := syncRule; r.DryRun = true; return r }(), syncRule} {
			load := f.svc.NewSyncLoad("UNI", rule)
			first := load.Apply(f.ctx, []*patron.User{withBarcodes(sisUser("s1", "Ann"), "BC-1")})
			second := load.Apply(f.ctx, []*patron.User{withBarcodes(sisUser("S1", "Again"), "BC-2"), withBarcodes(sisUser("s2", "Bo"), "bc-1")})
			wantOutcome(t, first[0], patron.OutcomeCreated, "")
			wantOutcome(t, second[0], patron.OutcomeRejected, "an earlier user of the load")
			wantOutcome(t, second[1], patron.OutcomeRejected, "BARCODE")
		}
		if n := countUsers(t, f, "UNI"); n != 1 {
			t.Fatalf("%d users, want s1 alone", n)
		}
	})
}
