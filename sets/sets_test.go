package sets_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
	"github.com/patronkit/patronkit/sets"
)

var staff = patron.WithActor(context.Background(), patron.Actor{Institution: "UNI", ID: "boss"})

func user(t *testing.T, k *patronkittest.Kit, id string, opts ...func(*patron.User)) *patron.User {
	t.Helper()
	return patronkittest.User(t, k, "UNI", append([]func(*patron.User){func(u *patron.User) { u.PrimaryID = id }}, opts...)...)
}

// primaryIDs are the primary_ids of every member of the set, read page
// by page (limit at a time).
func primaryIDs(t *testing.T, k *patronkittest.Kit, inst, id string, limit int) []string {
	t.Helper()
	var out []string
	after := ""
	for {
		p, err := k.Sets.Members(staff, inst, id, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Members) > limit {
			t.Fatalf("a page of %d has %d members", limit, len(p.Members))
		}
		for _, m := range p.Members {
			out = append(out, m.PrimaryID)
		}
		if p.Next == "" {
			if int64(len(out)) != p.TotalRecordCount {
				t.Fatalf("the pages hold %d members, the count says %d", len(out), p.TotalRecordCount)
			}
			return out
		}
		after = p.Next
	}
}

func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	e, ok := fault.As(err)
	if !ok || e.Kind != fault.Invalid {
		t.Fatalf("got %v, want Invalid", err)
	}
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	slices.Sort(out)
	return out
}

// A query set holds the users matching every criterion at the time it is
// used: a user created after the set is in it when they match.
func TestAQuerySetHoldsWhoMatchesWhenUsed(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		grad := func(u *patron.User) {
			u.UserGroup, u.ExpiryDate, u.PurgeDate = "GRAD", "2026-12-31", "2027-06-30"
			u.Statistics = []patron.Statistic{{StatisticCategory: "ARTS"}}
		}
		user(t, k, "a-grad", grad)
		user(t, k, "b-grad-blocked", grad, func(u *patron.User) {
			u.Blocks = []patron.Block{{BlockType: "GENERAL", BlockDescription: "Lost card", BlockStatus: "ACTIVE"}}
		})
		user(t, k, "c-grad-inactive", grad, func(u *patron.User) { u.Status = "INACTIVE" })
		user(t, k, "d-grad-later", grad, func(u *patron.User) { u.ExpiryDate = "2027-01-01" })
		user(t, k, "e-grad-no-expiry", grad, func(u *patron.User) { u.ExpiryDate = "" })
		user(t, k, "f-grad-science", grad, func(u *patron.User) { u.Statistics = []patron.Statistic{{StatisticCategory: "SCIENCE"}} })
		user(t, k, "g-undergrad", grad, func(u *patron.User) { u.UserGroup = "UNDERGRAD" })
		patronkittest.User(t, k, "OTHER", grad)

		no := false
		set, err := k.Sets.Create(staff, "UNI", sets.New{Name: " Graduates leaving ", Query: sets.Query{
			UserGroup: "GRAD", Status: "active", ExpiryFrom: "2026-01-01", ExpiryTo: "2026-12-31", PurgeTo: "2027-12-31",
			StatisticCategory: "ARTS", HasBlock: &no, RecordType: "public", AccountType: "internal"}})
		if err != nil {
			t.Fatal(err)
		}
		if set.Kind != sets.KindQuery || set.Name != "Graduates leaving" || set.CreatedBy != "boss" || set.MemberCount != 1 || set.Query.Status != "ACTIVE" {
			t.Fatalf("made %+v", set)
		}
		user(t, k, "h-grad-new", grad)
		if got := primaryIDs(t, k, "UNI", set.ID, 1); !slices.Equal(got, []string{"a-grad", "h-grad-new"}) {
			t.Errorf("the set holds %v", got)
		}
		again, err := k.Sets.Get(staff, "UNI", set.ID)
		if err != nil || again.MemberCount != 2 || again.Query == nil || *again.Query.HasBlock {
			t.Errorf("read %+v, %v", again, err)
		}

		yes := true
		blocked, err := k.Sets.Create(staff, "UNI", sets.New{Name: "Blocked", Query: sets.Query{HasBlock: &yes}})
		if err != nil || blocked.MemberCount != 1 {
			t.Fatalf("blocked: %+v, %v", blocked, err)
		}
		if _, err := k.Sets.Get(staff, "OTHER", set.ID); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("another institution reads the set: %v", err)
		}
	})
}

// A query set that is not valid is refused naming each field, and nothing
// is kept.
func TestAQuerySetNotValidIsRefused(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		_, err := k.Sets.Create(staff, "UNI", sets.New{Name: " ", Query: sets.Query{Status: "GONE", ExpiryFrom: "2026-13-01",
			PurgeFrom: "2027-01-02", PurgeTo: "2027-01-01", RecordType: "X", UserGroup: strings.Repeat("g", 65)}})
		want := []string{"name", "query.expiry_date_from", "query.purge_date_to", "query.record_type", "query.status", "query.user_group"}
		if got := fieldsOf(t, err); !slices.Equal(got, want) {
			t.Errorf("refused the fields %v, want %v", got, want)
		}
		p, err := k.Sets.List(staff, "UNI", "", 0)
		if err != nil || p.TotalRecordCount != 0 {
			t.Errorf("a refused set left %+v, %v", p, err)
		}
		if _, err := k.Sets.List(staff, "UNI", "", 101); !slices.Equal(fieldsOf(t, err), []string{"limit"}) {
			t.Errorf("a page of 101: %v", err)
		}
	})
}

// An itemized set is made from a file of primary_ids or of identifiers of
// a type: blank lines are passed over, case and spaces ignored, a user
// named twice is one member, each line naming no user is reported with
// its number; its members are read in pages, each on the audit trail.
func TestAnItemizedSetFromAFileReportsTheLinesNotFound(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		for _, id := range []string{"ann", "bob", "cy"} {
			user(t, k, id, func(u *patron.User) {
				u.Identifiers = []patron.Identifier{{IDType: "BARCODE", Value: "B-" + strings.ToUpper(id)}}
			})
		}
		patronkittest.User(t, k, "OTHER", func(u *patron.User) { u.PrimaryID = "dora" })

		made, err := k.Sets.CreateFromFile(staff, "UNI", sets.NewItemized{Name: "Card list"},
			strings.NewReader("\uFEFFAnn\n\n  bob \r\nghost\nann\ndora\n"))
		if err != nil {
			t.Fatal(err)
		}
		if made.Kind != sets.KindItemized || made.MemberCount != 2 || made.Query != nil ||
			!slices.Equal(made.NotFound, []sets.Line{{Line: 4, Value: "ghost"}, {Line: 6, Value: "dora"}}) {
			t.Fatalf("made %+v", made)
		}
		if got := primaryIDs(t, k, "UNI", made.ID, 1); !slices.Equal(got, []string{"ann", "bob"}) {
			t.Errorf("the set holds %v", got)
		}
		trail, err := k.Privacy.Search(staff, "UNI", privacy.Query{Subject: "bob", Action: patron.AuditRead})
		if err != nil || len(trail.Entries) != 1 || trail.Entries[0].What != "set members" || trail.Entries[0].ActorID != "boss" {
			t.Errorf("the trail of bob's read as a member: %+v, %v", trail, err)
		}

		byBarcode, err := k.Sets.CreateFromFile(staff, "UNI", sets.NewItemized{Name: "Barcodes", IDType: "BARCODE"},
			strings.NewReader("b-cy\nB-BOB\ncy\n"))
		if err != nil {
			t.Fatal(err)
		}
		if byBarcode.MemberCount != 2 || !slices.Equal(byBarcode.NotFound, []sets.Line{{Line: 3, Value: "cy"}}) {
			t.Errorf("by barcode: %+v", byBarcode)
		}

		for name, c := range map[string]struct {
			in   sets.NewItemized
			file string
			want []string
		}{
			"no name":       {sets.NewItemized{}, "ann\n", []string{"name"}},
			"empty file":    {sets.NewItemized{Name: "x"}, "\n \n", []string{"file"}},
			"nobody found":  {sets.NewItemized{Name: "x"}, "ghost\n", []string{"file"}},
			"a long line":   {sets.NewItemized{Name: "x"}, "ann\n" + strings.Repeat("x", 5000) + "\n", []string{"file"}},
			"a bad id type": {sets.NewItemized{Name: "x", IDType: "BAR\tCODE"}, "ann\n", []string{"id_type"}},
		} {
			_, err := k.Sets.CreateFromFile(staff, "UNI", c.in, strings.NewReader(c.file))
			if got := fieldsOf(t, err); !slices.Equal(got, c.want) {
				t.Errorf("%s: refused %v, want %v", name, got, c.want)
			}
		}
		p, err := k.Sets.List(staff, "UNI", "", 1)
		if err != nil || p.TotalRecordCount != 2 || len(p.Sets) != 1 || p.Sets[0].ID != made.ID || p.Next != made.ID {
			t.Fatalf("the list: %+v, %v", p, err)
		}
		if p, err = k.Sets.List(staff, "UNI", p.Next, 1); err != nil || len(p.Sets) != 1 || p.Sets[0].ID != byBarcode.ID || p.Next != "" || p.Sets[0].MemberCount != 2 {
			t.Fatalf("the second page: %+v, %v", p, err)
		}
	})
}

// Freezing a query set makes an itemized set of its members now, which
// keeps them when they no longer match; an itemized set cannot be frozen;
// a deleted set is gone, its users stay.
func TestAFrozenSetKeepsItsMembers(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		for _, id := range []string{"ann", "bob"} {
			user(t, k, id, func(u *patron.User) { u.UserGroup = "GRAD" })
		}
		user(t, k, "cy", func(u *patron.User) { u.UserGroup = "STAFF" })
		q, err := k.Sets.Create(staff, "UNI", sets.New{Name: "Grads", Query: sets.Query{UserGroup: "GRAD"}})
		if err != nil {
			t.Fatal(err)
		}
		frozen, err := k.Sets.Freeze(staff, "UNI", q.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if frozen.Kind != sets.KindItemized || frozen.FrozenFrom != q.ID || frozen.MemberCount != 2 || frozen.Name != "Grads (2026-09-01)" {
			t.Fatalf("frozen %+v", frozen)
		}
		if err := k.Patrons.Delete(staff, "UNI", "bob"); err != nil {
			t.Fatal(err)
		}
		user(t, k, "dan", func(u *patron.User) { u.UserGroup = "GRAD" })
		if got := primaryIDs(t, k, "UNI", frozen.ID, 10); !slices.Equal(got, []string{"ann"}) {
			t.Errorf("the frozen set holds %v", got)
		}
		if got := primaryIDs(t, k, "UNI", q.ID, 10); !slices.Equal(got, []string{"ann", "dan"}) {
			t.Errorf("the query set holds %v", got)
		}
		if _, err := k.Sets.Freeze(staff, "UNI", frozen.ID, "again"); !errors.Is(err, fault.ErrRefused) {
			t.Errorf("freezing an itemized set: %v", err)
		}
		if _, err := k.Sets.Freeze(staff, "OTHER", q.ID, ""); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("freezing another institution's set: %v", err)
		}
		if err := k.Sets.Delete(staff, "OTHER", frozen.ID); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("another institution deletes the set: %v", err)
		}
		if err := k.Sets.Delete(staff, "UNI", frozen.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Sets.Members(staff, "UNI", frozen.ID, "", 0); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("a deleted set's members: %v", err)
		}
		var n int64
		if err := k.DB.Table("pk_set_members").Count(&n).Error; err != nil || n != 0 {
			t.Errorf("the deleted set left %d members (%v)", n, err)
		}
		if _, err := k.Patrons.Get(staff, "UNI", "ann"); err != nil {
			t.Errorf("deleting a set touched its users: %v", err)
		}
	})
}
