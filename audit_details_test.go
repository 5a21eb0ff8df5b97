package patronkit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// trail is the institution's audit trail after entry after.
func trail(t *testing.T, k *patronkittest.Kit, inst string, after int64) []privacy.Entry {
	t.Helper()
	es, err := k.Privacy.Entries(context.Background(), inst, after, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// lastSeq is the sequence number of the institution's last entry (0 for
// none).
func lastSeq(t *testing.T, k *patronkittest.Kit, inst string) int64 {
	t.Helper()
	es := trail(t, k, inst, 0)
	if len(es) == 0 {
		return 0
	}
	return es[len(es)-1].Seq
}

// refuseEntriesOf makes the database refuse every audit entry about the
// user subject, as a full disk or a broken trail would, with a trigger.
func refuseEntriesOf(t *testing.T, k *patronkittest.Kit, subject string) {
	t.Helper()
	var qs []string
	switch k.DB.Dialector.Name() {
	case "sqlite":
		qs = []string{"CREATE TRIGGER refuse_entry BEFORE INSERT ON pk_privacy_audit WHEN NEW.subject = '" + subject + "' BEGIN SELECT RAISE(ABORT, 'entry refused'); END"}
	case "postgres":
		qs = []string{
			"CREATE FUNCTION refuse_entry() RETURNS trigger AS $$ BEGIN IF NEW.subject = '" + subject + "' THEN RAISE EXCEPTION 'entry refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
			"CREATE TRIGGER refuse_entry BEFORE INSERT ON pk_privacy_audit FOR EACH ROW EXECUTE FUNCTION refuse_entry()",
		}
	default:
		qs = []string{"CREATE TRIGGER refuse_entry BEFORE INSERT ON pk_privacy_audit FOR EACH ROW BEGIN IF NEW.subject = '" + subject + "' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'entry refused'; END IF; END"}
	}
	for _, q := range qs {
		if err := k.DB.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
}

func detailsOf(t *testing.T, es []privacy.Entry, action, subject string) []string {
	t.Helper()
	var out []string
	for _, e := range es {
		if e.Action == action && e.Subject == subject {
			out = append(out, e.Details)
		}
	}
	return out
}

// An update's entry names exactly the fields it changed, with their old
// and new values; a creation gives the new values, a segment added or
// removed is named with its content, and a deletion gives the old values.
func TestAChangesEntryNamesTheFieldsItChangedWithOldAndNewValues(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := patron.WithActor(context.Background(), patron.Actor{Institution: "UNI", ID: "librarian"})
		u, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe", UserGroup: "UG"})
		if err != nil {
			t.Fatal(err)
		}
		u.LastName, u.UserGroup, u.MiddleName = "Roe", "GRAD", "Q."
		if u, err = k.Patrons.Replace(ctx, "UNI", "jdoe", u.Version, u); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Patrons.AddEmail(ctx, "UNI", "jdoe", patron.Email{EmailAddress: "jane@uni.example", Preferred: true}); err != nil {
			t.Fatal(err)
		}
		got, err := k.Patrons.Get(ctx, "UNI", "jdoe")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Patrons.RemoveSegment(ctx, "UNI", "jdoe", patron.KindEmails, got.Emails[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := k.Patrons.Delete(ctx, "UNI", "jdoe"); err != nil {
			t.Fatal(err)
		}
		es := trail(t, k, "UNI", 0)
		email := `{"email_address":"jane@uni.example","preferred":true,"segment_type":"Internal"}`
		for _, c := range []struct{ action, want string }{
			{patron.AuditCreate, `{"account_type":{"new":"INTERNAL"},"first_name":{"new":"Jane"},"last_name":{"new":"Doe"},"primary_id":{"new":"jdoe"},"record_type":{"new":"PUBLIC"},"status":{"new":"ACTIVE"},"user_group":{"new":"UG"}}`},
			{patron.AuditUpdate, `{"last_name":{"new":"Roe","old":"Doe"},"middle_name":{"new":"Q."},"user_group":{"new":"GRAD","old":"UG"}}`},
			{patron.AuditUpdate, `{"emails":{"added":[` + email + `]}}`},
			{patron.AuditUpdate, `{"emails":{"removed":[` + email + `]}}`},
			{patron.AuditDelete, `{"account_type":{"old":"INTERNAL"},"first_name":{"old":"Jane"},"last_name":{"old":"Roe"},"middle_name":{"old":"Q."},"primary_id":{"old":"jdoe"},"record_type":{"old":"PUBLIC"},"status":{"old":"ACTIVE"},"user_group":{"old":"GRAD"}}`},
		} {
			ds := detailsOf(t, es, c.action, "jdoe")
			if len(ds) == 0 {
				t.Fatalf("no %s entry left for %s", c.action, c.want)
			}
			if ds[0] != c.want {
				t.Fatalf("%s entry details\n%s\nwant\n%s", c.action, ds[0], c.want)
			}
			for i, e := range es {
				if e.Action == c.action && e.Subject == "jdoe" {
					es = append(es[:i:i], es[i+1:]...)
					break
				}
			}
		}
		if b, err := k.Privacy.Verify(context.Background(), "UNI"); err != nil || b != nil {
			t.Fatalf("the trail does not verify: %v, %v", b, err)
		}
	})
}

// A PIN set or changed is named as changed: neither the PIN nor its hash
// is in the entry.
func TestAPINChangeIsNamedAsChangedNeverGiven(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := patron.WithActor(context.Background(), patron.Actor{Institution: "UNI", ID: "librarian"})
		u, err := k.Patrons.Create(ctx, "UNI", &patron.User{PrimaryID: "jdoe", FirstName: "Jane", LastName: "Doe", PINNumber: "1357"})
		if err != nil {
			t.Fatal(err)
		}
		var hash string
		if err := k.DB.Table("pk_users").Where("primary_id = ?", "jdoe").Pluck("pin_hash", &hash).Error; err != nil || hash == "" {
			t.Fatalf("pin_hash %q, %v", hash, err)
		}
		u.PINNumber = "8642"
		if _, err := k.Patrons.Replace(ctx, "UNI", "jdoe", u.Version, u); err != nil {
			t.Fatal(err)
		}
		es := trail(t, k, "UNI", 0)
		if ds := detailsOf(t, es, patron.AuditUpdate, "jdoe"); len(ds) != 1 || ds[0] != `{"pin_number":"changed"}` {
			t.Fatalf("update details %q", ds)
		}
		created := detailsOf(t, es, patron.AuditCreate, "jdoe")
		if len(created) != 1 || !strings.Contains(created[0], `"pin_number":"changed"`) {
			t.Fatalf("create details %q", created)
		}
		for _, e := range es {
			for _, secret := range []string{"1357", "8642", hash, "$2a$"} {
				if strings.Contains(e.Details, secret) {
					t.Fatalf("an entry gives away %q: %s", secret, e.Details)
				}
			}
		}
	})
}

// sisFileOf is an Alma SIS file with a user per primary_id, last names as
// given (primary_id=last_name, or just primary_id for "Student").
func sisFileOf(users ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<users>\n")
	for _, u := range users {
		id, last, ok := strings.Cut(u, "=")
		if !ok {
			last = "Student"
		}
		fmt.Fprintf(&b, "<user><primary_id>%s</primary_id><first_name>S</first_name><last_name>%s</last_name><user_group>UNDERGRAD</user_group>"+
			"<contact_info><emails><email preferred=\"true\"><email_address>%s@uni.example</email_address></email></emails></contact_info></user>\n", id, last, id)
	}
	b.WriteString("</users>\n")
	return b.String()
}

// An SIS run's users are on the trail, created with their values and
// updated with the fields changed, committed with them: a user whose entry
// cannot be written fails, like any user the database does not take, and
// is neither applied nor on the trail.
func TestSISRunEntriesCommitWithTheirUsers(t *testing.T) {
	var src *patronkittest.Source // the current kit's
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		if _, err := k.SIS.CreateProfile(ctx, "UNI", &sis.Profile{Code: "REG", Source: src.Name(), Mode: sis.ModeSynchronize}); err != nil {
			t.Fatal(err)
		}
		run := func() *sis.Run {
			t.Helper()
			r, err := k.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r, err = k.SIS.Wait(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			return r
		}
		refuseEntriesOf(t, k, "s2")
		src.Add("monday.xml", sisFileOf("s1", "s2", "s3"))
		if r := run(); r.Created != 2 || r.Failed != 1 {
			t.Fatalf("first run %+v", r)
		}
		if _, _, err := k.Patrons.ID(ctx, "UNI", "s2"); err == nil {
			t.Fatal("the user whose entry could not be written was created")
		}
		es := trail(t, k, "UNI", 0)
		for _, id := range []string{"s1", "s3"} {
			ds := detailsOf(t, es, patron.AuditCreate, id)
			if len(ds) != 1 || !strings.Contains(ds[0], `"last_name":{"new":"Student"}`) || !strings.Contains(ds[0], `"email_address":"`+id+`@uni.example"`) {
				t.Fatalf("creation entries of %s: %q", id, ds)
			}
		}
		for _, e := range es {
			if e.Subject == "s2" {
				t.Fatalf("an entry of the failed user: %+v", e)
			}
		}
		after := lastSeq(t, k, "UNI")
		src.Add("tuesday.xml", sisFileOf("s1=Changed", "s3", "s2"))
		r := run()
		if r.Updated != 1 || r.Unchanged != 1 || r.Failed != 1 {
			t.Fatalf("second run %+v", r)
		}
		es = trail(t, k, "UNI", after)
		if len(es) != 1 || es[0].Action != patron.AuditUpdate || es[0].Subject != "s1" ||
			es[0].Details != `{"last_name":{"new":"Changed","old":"Student"}}` || es[0].ActorKind != privacy.ActorSystem ||
			es[0].ActorID != "system:sis" || es[0].Via != "sis run of profile REG" || es[0].RequestID != r.ID {
			t.Fatalf("entries of the second run: %+v", es)
		}

		// An export is on the trail, user by user, before it leaves.
		after = lastSeq(t, k, "UNI")
		var out bytes.Buffer
		if err := k.SIS.Export(ctx, "UNI", "REG", sis.ExportUsers, &out); err != nil {
			t.Fatal(err)
		}
		es = trail(t, k, "UNI", after)
		if len(es) != 2 || es[0].Action != patron.AuditExport || es[1].Action != patron.AuditExport ||
			!slices.Contains([]string{es[0].Subject + es[1].Subject, es[1].Subject + es[0].Subject}, "s1s3") {
			t.Fatalf("entries of the export: %+v", es)
		}
		if err := k.DB.Exec("ALTER TABLE pk_privacy_audit DROP COLUMN details").Error; err != nil {
			t.Fatal(err)
		}
		out.Reset()
		if err := k.SIS.Export(ctx, "UNI", "REG", sis.ExportUsers, &out); err == nil || strings.Contains(out.String(), "s1") {
			t.Fatalf("an export without its entries: %v %q", err, out.String())
		}
	}, func(c *patronkit.Config) {
		src = patronkittest.NewSource("registrar")
		c.Sources = []sis.Source{src}
	})
}

// ApplyExternal creates the new users of a batch together, their entries
// with them, in one call to the trail: all are there when it returns, and
// none when the batch is written inside a host's transaction that rolls
// back.
func TestBulkCreatedUsersAreOnTheTrailWithThem(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		rule := patron.ExternalApply{Owner: "SIS", AddUnmatched: true, UpdateMatched: true}
		batch := func(prefix string) []*patron.User {
			var in []*patron.User
			for i := range 30 {
				in = append(in, &patron.User{PrimaryID: fmt.Sprintf("%s%02d", prefix, i), FirstName: "B", LastName: "Ulk"})
			}
			return in
		}
		refused := errors.New("the host changes its mind")
		err := k.InTx(ctx, func(ctx context.Context, _ *gorm.DB) error {
			for _, a := range k.Patrons.ApplyExternal(ctx, "UNI", batch("r"), rule) {
				if a.Effect != patron.EffectCreated {
					t.Errorf("in the host's transaction: %+v", a)
				}
			}
			return refused
		})
		if !errors.Is(err, refused) {
			t.Fatal(err)
		}
		if es := trail(t, k, "UNI", 0); len(es) != 0 {
			t.Fatalf("%d entries of users rolled back", len(es))
		}
		for _, a := range k.Patrons.ApplyExternal(ctx, "UNI", batch("b"), rule) {
			if a.Effect != patron.EffectCreated {
				t.Fatalf("%+v", a)
			}
		}
		es := trail(t, k, "UNI", 0)
		if len(es) != 30 {
			t.Fatalf("%d entries for 30 users", len(es))
		}
		for i, e := range es {
			if e.Action != patron.AuditCreate || e.Subject != fmt.Sprintf("b%02d", i) || !strings.Contains(e.Details, `"last_name":{"new":"Ulk"}`) {
				t.Fatalf("entry %d: %+v", i, e)
			}
		}
	})
}

// A list read leaves one entry per user listed before the page is
// returned; a list whose entries cannot be written fails and hands out
// nobody. So do the reads of attachments.
func TestListAndAttachmentReadsAreRecordedBeforeTheyLeave(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := patron.WithActor(context.Background(), patron.Actor{Institution: "UNI", ID: "librarian"})
		for _, id := range []string{"ann", "bob", "cy"} {
			patronkittest.User(t, k, "UNI", func(u *patron.User) { u.PrimaryID, u.LastName = id, "Lister" })
		}
		att, err := k.Patrons.AddAttachment(ctx, "UNI", "bob", patron.Attachment{FileName: "form.pdf"}, bytes.NewReader([]byte("%PDF")))
		if err != nil {
			t.Fatal(err)
		}
		after := lastSeq(t, k, "UNI")
		page, err := k.Patrons.List(ctx, "UNI", patron.Query{Q: "lister"})
		if err != nil || len(page.Users) != 3 {
			t.Fatalf("list: %+v, %v", page, err)
		}
		es := trail(t, k, "UNI", after)
		var got []string
		for _, e := range es {
			got = append(got, e.Action+" "+e.Subject+" "+e.What+" "+e.ActorID)
		}
		if want := []string{"read ann user list librarian", "read bob user list librarian", "read cy user list librarian"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("entries of the list %q, want %q", got, want)
		}

		refuseEntriesOf(t, k, "bob")
		if page, err := k.Patrons.List(ctx, "UNI", patron.Query{Q: "lister"}); err == nil || len(page.Users) != 0 {
			t.Fatalf("a list whose entries could not be written: %+v, %v", page, err)
		}
		if page, err := k.Patrons.List(ctx, "UNI", patron.Query{Q: "ann"}); err != nil || len(page.Users) != 1 {
			t.Fatalf("a list of others: %+v, %v", page, err)
		}
		if list, err := k.Patrons.Attachments(ctx, "UNI", "bob"); err == nil || list != nil {
			t.Fatalf("attachments listed without their entry: %+v, %v", list, err)
		}
		if a, data, err := k.Patrons.AttachmentContent(ctx, "UNI", "bob", att.ID); err == nil || a != nil || data != nil {
			t.Fatalf("an attachment read without its entry: %v", err)
		}
	})
}

// The users a clean full load did not find are made inactive with an
// entry each, and staff handing a field back to the SIS is an entry naming
// the overrides dropped.
func TestDeactivatedUsersAndRestoredFieldsAreOnTheTrail(t *testing.T) {
	var src *patronkittest.Source // the current kit's
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		if _, err := k.SIS.CreateProfile(ctx, "UNI", &sis.Profile{Code: "REG", Source: src.Name(), Mode: sis.ModeSynchronize, DeactivateMissing: true}); err != nil {
			t.Fatal(err)
		}
		run := func() *sis.Run {
			t.Helper()
			r, err := k.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r, err = k.SIS.Wait(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			return r
		}
		src.Add("monday.xml", sisFileOf("s1", "s2", "s3"))
		if r := run(); r.Created != 3 {
			t.Fatalf("first run %+v", r)
		}
		after := lastSeq(t, k, "UNI")
		src.Add("tuesday.xml", sisFileOf("s1"))
		if r := run(); r.Deactivated != 2 {
			t.Fatalf("second run %+v", r)
		}
		var got []string
		for _, e := range trail(t, k, "UNI", after) {
			got = append(got, e.Action+" "+e.Subject+" "+e.Details)
		}
		want := []string{`update s2 {"status":{"new":"INACTIVE","old":"ACTIVE"}}`, `update s3 {"status":{"new":"INACTIVE","old":"ACTIVE"}}`}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("entries %q, want %q", got, want)
		}

		staff := patron.WithActor(ctx, patron.Actor{Institution: "UNI", ID: "librarian"})
		u, err := k.Patrons.Get(staff, "UNI", "s1")
		if err != nil {
			t.Fatal(err)
		}
		u.UserGroup, u.CampusCode = "GRAD", "NORTH"
		if _, err := k.Patrons.Replace(staff, "UNI", "s1", u.Version, u); err != nil {
			t.Fatal(err)
		}
		after = lastSeq(t, k, "UNI")
		if _, err := k.Patrons.RestoreSISFields(staff, "UNI", "s1", nil); err != nil {
			t.Fatal(err)
		}
		es := trail(t, k, "UNI", after)
		if len(es) != 1 || es[0].What != "field provenance" || es[0].Details != `{"overrides":{"removed":["campus_code","user_group"]}}` {
			t.Fatalf("entries of the restore: %+v", es)
		}
	}, func(c *patronkit.Config) {
		src = patronkittest.NewSource("registrar")
		c.Sources = []sis.Source{src}
	})
}
