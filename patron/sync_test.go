package patron_test

import (
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// syncRule applies users as an SIS profile that synchronizes does.
var syncRule = patron.ExternalApply{Owner: "SIS", Match: patron.MatchOnPrimaryID(), AddUnmatched: true, UpdateMatched: true}

// sisUser is a record as an SIS sends it.
func sisUser(id, first string) *patron.User {
	return &patron.User{
		PrimaryID: id, FirstName: first, LastName: "Sis", UserGroup: "UNDERGRAD", CampusCode: "MAIN", ExpiryDate: "2027-08-31",
		Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "BC-" + id}},
		Emails:      []patron.Email{{EmailAddress: id + "@uni.example", Preferred: true}},
		Notes:       []patron.Note{{NoteType: "REGISTRAR", NoteText: "enrolled", UserViewable: true}},
	}
}

func sync1(t *testing.T, f *fixture, rule patron.ExternalApply, u *patron.User) patron.Applied {
	t.Helper()
	return f.svc.ApplyExternal(f.ctx, "UNI", []*patron.User{u}, rule)[0]
}

func wantEffect(t *testing.T, r patron.Applied, outcome patron.Effect, reasonPart string) {
	t.Helper()
	if r.Effect != outcome || !strings.Contains(r.Reason, reasonPart) {
		t.Fatalf("effect %s (%q), want %s containing %q", r.Effect, r.Reason, outcome, reasonPart)
	}
}

func TestImportAddsOnlyNewUsers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		imp := syncRule
		imp.UpdateMatched = false
		wantEffect(t, sync1(t, f, imp, sisUser("s1", "Ann")), patron.EffectCreated, "")
		wantEffect(t, sync1(t, f, imp, sisUser("s1", "Changed")), patron.EffectRefused, "exists already")
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
		other.Owner = "HR"
		wantEffect(t, sync1(t, f, other, sisUser("s1", "Ann")), patron.EffectCreated, "")
		// The student profile takes over the user the HR profile made.
		wantEffect(t, sync1(t, f, syncRule, sisUser("s1", "Annie")), patron.EffectUpdated, "")
		u, _ := f.svc.Get(f.ctx, "UNI", "s1")
		if u.FirstName != "Annie" || u.ExternalID != "SIS" {
			t.Fatalf("not taken over: %+v", u)
		}
		// An internal user is never matched.
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "local", FirstName: "L", LastName: "L"})
		wantEffect(t, sync1(t, f, syncRule, sisUser("LOCAL", "X")), patron.EffectRefused, `internal user "local"`)
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
		strict.AddUnmatched = false
		wantEffect(t, sync1(t, f, strict, sisUser("s1", "Ann")), patron.EffectRefused, "rejects unmatched")
		if n := countUsers(t, f, "UNI"); n != 0 {
			t.Fatalf("a rejected user was written")
		}
		wantEffect(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.EffectCreated, "")
		wantEffect(t, sync1(t, f, strict, sisUser("s1", "Anna")), patron.EffectUpdated, "")
	})
}

func TestSynchronizeKeepsRetainedFieldsInternalSegmentsAndNotes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		wantEffect(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.EffectCreated, "")
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
		wantEffect(t, r, patron.EffectUpdated, "")
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
		for _, r := range f.svc.ApplyExternal(f.ctx, "UNI", batch(), syncRule) {
			wantEffect(t, r, patron.EffectCreated, "")
		}
		before, _ := f.svc.Get(f.ctx, "UNI", "s2")
		for _, r := range f.svc.ApplyExternal(f.ctx, "UNI", batch(), syncRule) {
			wantEffect(t, r, patron.EffectUnchanged, "")
		}
		after, _ := f.svc.Get(f.ctx, "UNI", "s2")
		if after.Version != before.Version || !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Fatal("an unchanged user was rewritten")
		}
		// A real change is still seen.
		changed := batch()
		changed[1].LastName = "Other"
		rs := f.svc.ApplyExternal(f.ctx, "UNI", changed, syncRule)
		wantEffect(t, rs[0], patron.EffectUnchanged, "")
		wantEffect(t, rs[1], patron.EffectUpdated, "")
	})
}

func TestIncomingCollisionsAndBadRecordsAreRejectedWithTheReason(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		mustCreate(t, f, "UNI", &patron.User{PrimaryID: "holder", FirstName: "H", LastName: "H", Identifiers: []patron.Identifier{{IDType: "BARCODE", Value: "BC-s1"}}})
		wantEffect(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.EffectRefused, "BARCODE")
		noNames := sisUser("s2", "")
		noNames.LastName = ""
		wantEffect(t, sync1(t, f, syncRule, noNames), patron.EffectRefused, "first_name is required")
		badEmail := sisUser("s3", "C")
		badEmail.Emails[0].EmailAddress = "nope"
		wantEffect(t, sync1(t, f, syncRule, badEmail), patron.EffectRefused, "email_address")
		if n := countUsers(t, f, "UNI"); n != 1 {
			t.Fatalf("rejected users were written: %d", n)
		}
	})
}

func TestMatchOnAnIdentifierType(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		byBarcode := syncRule
		byBarcode.Match = patron.MatchOnIdentifier("BARCODE")
		wantEffect(t, sync1(t, f, byBarcode, sisUser("s1", "Ann")), patron.EffectCreated, "")
		renamed := sisUser("s1-new", "Ann")
		renamed.Identifiers[0].Value = "BC-s1"
		wantEffect(t, sync1(t, f, byBarcode, renamed), patron.EffectUpdated, "")
		if _, err := f.svc.Get(f.ctx, "UNI", "s1-new"); err != nil {
			t.Fatalf("the primary id follows the SIS when matching on a barcode: %v", err)
		}
		noBarcode := sisUser("s9", "X")
		noBarcode.Identifiers = nil
		wantEffect(t, sync1(t, f, byBarcode, noBarcode), patron.EffectRefused, "no identifier of type BARCODE")
	})
}

func TestDryRunWritesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		wantEffect(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.EffectCreated, "")
		dry := syncRule
		dry.DryRun = true
		rs := f.svc.ApplyExternal(f.ctx, "UNI", []*patron.User{sisUser("s1", "Changed"), sisUser("s2", "New")}, dry)
		wantEffect(t, rs[0], patron.EffectUpdated, "")
		wantEffect(t, rs[1], patron.EffectCreated, "")
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
		wantEffect(t, sync1(t, f, syncRule, first), patron.EffectCreated, "")
		if _, err := f.svc.AddEmail(f.ctx, "UNI", "s1", patron.Email{EmailAddress: "mine@home.example", Preferred: true}); err != nil {
			t.Fatal(err)
		}
		wantEffect(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.EffectUpdated, "")
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
		wantEffect(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.EffectCreated, "")
		u, _ := f.svc.Get(f.ctx, "UNI", "s1")
		in := *u
		in.UserGroup, in.CampusCode = "GRAD", "NORTH"
		if _, err := f.svc.Replace(f.ctx, "UNI", "s1", u.Version, &in); err != nil {
			t.Fatal(err)
		}
		wantEffect(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.EffectUnchanged, "")
		if _, err := f.svc.RestoreSISFields(f.ctx, "UNI", "s1", []string{"first_name"}); err == nil {
			t.Fatal("first_name is not a retained field")
		}
		restored, err := f.svc.RestoreSISFields(f.ctx, "UNI", "s1", []string{"user_group"})
		if err != nil || strings.Join(restored, ",") != "user_group" {
			t.Fatalf("restore: %v %v", restored, err)
		}
		r := sync1(t, f, syncRule, sisUser("s1", "Ann"))
		wantEffect(t, r, patron.EffectUpdated, "")
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
		wantEffect(t, sync1(t, f, syncRule, sisUser("s1", "Ann")), patron.EffectCreated, "")
		wantEffect(t, sync1(t, f, syncRule, sisUser("s2", "Bo")), patron.EffectCreated, "")
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
		dryOut := f.svc.ApplyExternal(f.ctx, "UNI", batch(), dry)
		if n := countUsers(t, f, "UNI"); n != 2 {
			t.Fatalf("the dry run wrote: %d users", n)
		}
		realOut := f.svc.ApplyExternal(f.ctx, "UNI", batch(), syncRule)
		want := []patron.Effect{patron.EffectUpdated, patron.EffectRefused, patron.EffectUpdated, patron.EffectCreated, patron.EffectUpdated, patron.EffectCreated}
		for i := range want {
			d, r := dryOut[i], realOut[i]
			if d.Effect != r.Effect || d.Reason != r.Reason || strings.Join(d.Changes, ",") != strings.Join(r.Changes, ",") {
				t.Errorf("user %d: the dry run said %+v, the batch %+v", i+1, d, r)
			}
			if r.Effect != want[i] {
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
func TestAnExternalLoadAppliesEachUserOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		for _, rule := range []patron.ExternalApply{func() patron.ExternalApply { r := syncRule; r.DryRun = true; return r }(), syncRule} {
			load := f.svc.NewExternalLoad("UNI", rule)
			first := load.Apply(f.ctx, []*patron.User{withBarcodes(sisUser("s1", "Ann"), "BC-1")})
			second := load.Apply(f.ctx, []*patron.User{withBarcodes(sisUser("S1", "Again"), "BC-2"), withBarcodes(sisUser("s2", "Bo"), "bc-1")})
			wantEffect(t, first[0], patron.EffectCreated, "")
			wantEffect(t, second[0], patron.EffectRefused, "an earlier user of the load")
			wantEffect(t, second[1], patron.EffectRefused, "BARCODE")
		}
		if n := countUsers(t, f, "UNI"); n != 1 {
			t.Fatalf("%d users, want s1 alone", n)
		}
	})
}

// A match key is the folded primary_id, or the folded value of the first
// identifier of its type; what a user lacks gives no key.
func TestMatchKeyOfAUser(t *testing.T) {
	u := &patron.User{PrimaryID: " Jane.Doe ", Identifiers: []patron.Identifier{{IDType: "UNIV_ID", Value: "U-1"}, {IDType: " BARCODE ", Value: " BC-9 "}, {IDType: "BARCODE", Value: "BC-10"}}}
	for _, c := range []struct {
		key        patron.MatchKey
		want, name string
	}{
		{patron.MatchOnPrimaryID(), "jane.doe", "primary_id"},
		{patron.MatchKey{}, "jane.doe", "primary_id"},
		{patron.MatchOnIdentifier("BARCODE"), "bc-9", "identifier BARCODE"},
		{patron.MatchOnIdentifier("LIBRARY_ID"), "", "identifier LIBRARY_ID"},
	} {
		if got := c.key.Of(u); got != c.want || c.key.String() != c.name {
			t.Errorf("%+v: key %q named %q, want %q named %q", c.key, got, c.key, c.want, c.name)
		}
	}
}
