package privacy_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// sampleTrail records, in UNI, one entry an hour from patronkittest.Start
// (seq 1 to 7), and one in OTHER:
//
//	1 desk      staff  read   alice  http GET /api/users/:primary_id
//	2 desk      staff  update alice  http PUT /api/users/:primary_id
//	3 system:sis system update bob   sis run R1
//	4 alice     patron read   alice  http GET /api/me
//	5 librarian staff  export bob    http GET /api/users/:primary_id/personal-data
//	6 desk      staff  read   bob    http GET /api/users/:primary_id
//	7 desk      staff  read   carol  httpX odd (what "=cmd")
func sampleTrail(t *testing.T, k *patronkittest.Kit) {
	t.Helper()
	at := func(h int) int64 { return patronkittest.Start.Add(time.Duration(h) * time.Hour).UnixMicro() }
	desk := func(e privacy.Entry) privacy.Entry {
		e.ActorID, e.ActorKind, e.ActorRoles, e.ActorLibrary = "desk", privacy.ActorStaff, "circulation-desk-operator", "MAIN"
		return e
	}
	for _, e := range []privacy.Entry{
		desk(privacy.Entry{AtUS: at(0), Action: patron.AuditRead, Subject: "alice", What: "user", Via: "http GET /api/users/:primary_id"}),
		desk(privacy.Entry{AtUS: at(1), Action: patron.AuditUpdate, Subject: "alice", What: "user", Via: "http PUT /api/users/:primary_id"}),
		{AtUS: at(2), ActorID: "system:sis", ActorKind: privacy.ActorSystem, Action: patron.AuditUpdate, Subject: "bob", What: "user", Via: "sis run R1"},
		{AtUS: at(3), ActorID: "alice", ActorKind: privacy.ActorPatron, Action: patron.AuditRead, Subject: "alice", What: "user", Via: "http GET /api/me"},
		{AtUS: at(4), ActorID: "librarian", ActorKind: privacy.ActorStaff, ActorRoles: "auditor,user-administrator", ActorLibrary: "*",
			Action: patron.AuditExport, Subject: "bob", What: "personal data", Via: "http GET /api/users/:primary_id/personal-data"},
		desk(privacy.Entry{AtUS: at(5), Action: patron.AuditRead, Subject: "bob", What: "user", Via: "http GET /api/users/:primary_id"}),
		desk(privacy.Entry{AtUS: at(6), Action: patron.AuditRead, Subject: "carol", What: "=cmd", Via: "httpX odd"}),
	} {
		e.Institution = inst
		if err := k.Privacy.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.Privacy.Record(context.Background(), desk(privacy.Entry{Institution: "OTHER", AtUS: at(0), Action: patron.AuditRead, Subject: "alice", What: "user", Via: "http GET /api/users/:primary_id"})); err != nil {
		t.Fatal(err)
	}
}

func seqs(es []privacy.Entry) []int64 {
	out := []int64{}
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestSearchFiltersTheTrailNewestFirst(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		sampleTrail(t, k)
		at := func(h int) time.Time { return patronkittest.Start.Add(time.Duration(h) * time.Hour) }
		for _, c := range []struct {
			name string
			q    privacy.Query
			want []int64
		}{
			{"everything", privacy.Query{}, []int64{7, 6, 5, 4, 3, 2, 1}},
			{"subject", privacy.Query{Subject: "alice"}, []int64{4, 2, 1}},
			{"subject in another case", privacy.Query{Subject: "Alice"}, []int64{4, 2, 1}},
			{"actor", privacy.Query{Actor: "desk"}, []int64{7, 6, 2, 1}},
			{"actor in another case", privacy.Query{Actor: "DESK"}, []int64{7, 6, 2, 1}},
			{"action", privacy.Query{Action: patron.AuditUpdate}, []int64{3, 2}},
			{"via http", privacy.Query{Via: "http"}, []int64{7, 6, 5, 4, 2, 1}},
			{"via http GET", privacy.Query{Via: "http GET"}, []int64{6, 5, 4, 1}},
			{"via sis", privacy.Query{Via: "sis"}, []int64{3}},
			{"via with a wildcard of LIKE", privacy.Query{Via: "http_"}, []int64{}},
			{"via with a percent", privacy.Query{Via: "%"}, []int64{}},
			{"from", privacy.Query{From: at(5)}, []int64{7, 6}},
			{"to", privacy.Query{To: at(2)}, []int64{2, 1}},
			{"from and to", privacy.Query{From: at(1), To: at(3)}, []int64{3, 2}},
			{"all together", privacy.Query{Actor: "desk", Subject: "alice", Action: patron.AuditRead, Via: "http", From: at(0), To: at(1)}, []int64{1}},
			{"nobody", privacy.Query{Subject: "nobody"}, []int64{}},
		} {
			p, err := k.Privacy.Search(context.Background(), inst, c.q)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := seqs(p.Entries); !slices.Equal(got, c.want) || p.More || p.Next != 0 {
				t.Errorf("%s: %v (more %v, next %d), want %v", c.name, got, p.More, p.Next, c.want)
			}
		}
		p, err := k.Privacy.Search(context.Background(), "OTHER", privacy.Query{})
		if err != nil || len(p.Entries) != 1 || p.Entries[0].Institution != "OTHER" {
			t.Fatalf("OTHER's trail: %+v, %v", p, err)
		}
	})
}

func TestSearchPagesWithACursor(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		sampleTrail(t, k)
		var got [][]int64
		q := privacy.Query{Limit: 3}
		for range 5 {
			p, err := k.Privacy.Search(context.Background(), inst, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, seqs(p.Entries))
			if !p.More {
				break
			}
			q.Before = p.Next
			// An entry appended meanwhile does not move the pages.
			patronkittest.User(t, k, inst)
		}
		if fmt.Sprint(got) != "[[7 6 5] [4 3 2] [1]]" {
			t.Fatalf("pages %v", got)
		}
		// The filters hold across pages.
		p, err := k.Privacy.Search(context.Background(), inst, privacy.Query{Actor: "desk", Limit: 2})
		if err != nil || fmt.Sprint(seqs(p.Entries)) != "[7 6]" || !p.More || p.Next != 6 {
			t.Fatalf("first page of desk's: %+v, %v", p, err)
		}
		p, err = k.Privacy.Search(context.Background(), inst, privacy.Query{Actor: "desk", Limit: 2, Before: p.Next})
		if err != nil || fmt.Sprint(seqs(p.Entries)) != "[2 1]" || p.More {
			t.Fatalf("second page of desk's: %+v, %v", p, err)
		}
	})
}

func TestASearchOutOfRangeIsRefusedNamingTheField(t *testing.T) {
	k := patronkittest.New(t)
	sampleTrail(t, k)
	for _, c := range []struct {
		q     privacy.Query
		field string
	}{
		{privacy.Query{Limit: privacy.MaxSearchLimit + 1}, "limit"},
		{privacy.Query{Limit: -1}, "limit"},
		{privacy.Query{Before: -1}, "cursor"},
		{privacy.Query{From: patronkittest.Start, To: patronkittest.Start}, "to"},
		{privacy.Query{From: patronkittest.Start, To: patronkittest.Start.Add(-time.Hour)}, "to"},
	} {
		_, err := k.Privacy.Search(context.Background(), inst, c.q)
		e, ok := fault.As(err)
		if !ok || e.Kind != fault.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != c.field {
			t.Errorf("%+v: %v, want Invalid naming %s", c.q, err, c.field)
		}
		var out bytes.Buffer
		if _, err := k.Privacy.WriteCSV(context.Background(), &out, inst, c.q); c.field != "limit" && (err == nil || out.Len() > 0) {
			t.Errorf("WriteCSV %+v: %v, wrote %q", c.q, err, out.String())
		}
	}
}

func TestWriteCSVWritesEveryMatchInBatches(t *testing.T) {
	privacy.SetCSVBatch(t, 2)
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		sampleTrail(t, k)
		var out bytes.Buffer
		n, err := k.Privacy.WriteCSV(context.Background(), &out, inst, privacy.Query{Actor: "desk", Limit: 1})
		if err != nil || n != 4 {
			t.Fatalf("WriteCSV = %d, %v", n, err)
		}
		rows, err := csv.NewReader(&out).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 5 || !slices.Equal(rows[0], privacy.CSVHeader) {
			t.Fatalf("rows %q", rows)
		}
		var got []string
		for _, r := range rows[1:] {
			got = append(got, r[0]+" "+r[2]+" "+r[4]+" "+r[5]+" "+r[6]+" "+r[7]+" "+r[8])
		}
		want := []string{
			"7 desk circulation-desk-operator MAIN read carol '=cmd",
			"6 desk circulation-desk-operator MAIN read bob user",
			"2 desk circulation-desk-operator MAIN update alice user",
			"1 desk circulation-desk-operator MAIN read alice user",
		}
		if !slices.Equal(got, want) {
			t.Fatalf("rows\n%q\nwant\n%q", got, want)
		}
		if rows[4][1] != "2026-09-01T09:00:00.000000Z" || len(rows[4][12]) != 64 {
			t.Errorf("date and hash of the first entry: %q", rows[4])
		}
		out.Reset()
		if n, err := k.Privacy.WriteCSV(context.Background(), &out, inst, privacy.Query{Subject: "nobody"}); err != nil || n != 0 ||
			strings.TrimSpace(out.String()) != strings.Join(privacy.CSVHeader, ",") {
			t.Fatalf("an empty export: %d, %v, %q", n, err, out.String())
		}
	})
}

// A user's access log lists what others did with their data, never what
// they did themselves, and names the staff only where the institution
// says so.
func TestTheAccessLogShowsOthersByRoleAndLibrary(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named=%v", named), func(t *testing.T) {
			opt := func(c *patronkit.Config) {}
			if named {
				opt = func(c *patronkit.Config) { c.AccessLogNames = []string{inst} }
			}
			patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
				sampleTrail(t, k)
				// alice herself, spelled otherwise by the host.
				if err := k.Privacy.Record(context.Background(), privacy.Entry{Institution: inst, AtUS: 1, ActorID: "ALICE", ActorKind: privacy.ActorPatron,
					Action: patron.AuditExport, Subject: "alice", What: "personal data"}); err != nil {
					t.Fatal(err)
				}
				p, err := k.Privacy.AccessLog(context.Background(), inst, "alice", 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range p.Entries {
					got = append(got, fmt.Sprintf("%s %s %s %v %s %s %s", e.At.Format(time.RFC3339), e.Actor, e.ActorKind, e.Roles, e.Library, e.Action, e.What))
				}
				actor := ""
				if named {
					actor = "desk"
				}
				want := []string{
					"2026-09-01T10:00:00Z " + actor + " staff [circulation-desk-operator] MAIN update user",
					"2026-09-01T09:00:00Z " + actor + " staff [circulation-desk-operator] MAIN read user",
				}
				if !slices.Equal(got, want) || p.More {
					t.Fatalf("alice's access log\n%q\nwant\n%q", got, want)
				}
				// bob's: a job is named whatever the setting; pages.
				p, err = k.Privacy.AccessLog(context.Background(), inst, "bob", 0, 2)
				if err != nil || len(p.Entries) != 2 || !p.More || p.Entries[1].Action != patron.AuditExport {
					t.Fatalf("bob's first page %+v, %v", p, err)
				}
				if (p.Entries[1].Actor == "librarian") != named || !slices.Equal(p.Entries[1].Roles, []string{"auditor", "user-administrator"}) {
					t.Errorf("the export of bob's data: %+v", p.Entries[1])
				}
				p, err = k.Privacy.AccessLog(context.Background(), inst, "bob", p.Next, 2)
				if err != nil || len(p.Entries) != 1 || p.More || p.Entries[0].Actor != "system:sis" || p.Entries[0].ActorKind != privacy.ActorSystem {
					t.Fatalf("bob's second page %+v, %v", p, err)
				}
				if _, err := k.Privacy.AccessLog(context.Background(), inst, "bob", 0, privacy.MaxSearchLimit+1); !errors.Is(err, fault.ErrInvalid) {
					t.Errorf("a page too long: %v", err)
				}
			}, opt)
		})
	}
}

// The personal data hold the whole access log, read a page at a time.
func TestPersonalDataHoldTheWholeAccessLog(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		u := patronkittest.User(t, k, inst) // created by no actor: a system entry
		const reads = privacy.MaxSearchLimit + 5
		for i := range reads {
			o := patron.Origin{Via: "test", Roles: []string{"auditor"}, Library: "*", RequestID: fmt.Sprint(i)}
			if err := k.Privacy.Record(context.Background(), privacy.EntryOf(patron.AuditEvent{At: k.Clock.Now(), Institution: inst, Actor: staff,
				Action: patron.AuditRead, PrimaryID: u.PrimaryID, What: "user", Origin: o})); err != nil {
				t.Fatal(err)
			}
		}
		self := patron.WithActor(context.Background(), patron.Actor{Institution: inst, ID: u.PrimaryID, Patron: true})
		doc, err := k.PersonalData.OwnPersonalData(self, inst, u.PrimaryID)
		if err != nil {
			t.Fatal(err)
		}
		if len(doc.AccessLog) != reads+1 {
			t.Fatalf("%d entries in the access log, want %d", len(doc.AccessLog), reads+1)
		}
		first, last := doc.AccessLog[0], doc.AccessLog[len(doc.AccessLog)-1]
		if first.Action != patron.AuditRead || first.Actor != "" || first.ActorKind != privacy.ActorStaff || !slices.Equal(first.Roles, []string{"auditor"}) || first.Library != "*" {
			t.Errorf("the newest entry %+v", first)
		}
		if last.Action != patron.AuditCreate || last.ActorKind != privacy.ActorSystem {
			t.Errorf("the oldest entry %+v", last)
		}
		// Her own download is on the trail, not in her access log.
		doc, err = k.PersonalData.OwnPersonalData(self, inst, u.PrimaryID)
		if err != nil || len(doc.AccessLog) != reads+1 {
			t.Fatalf("the second download: %d entries, %v", len(doc.AccessLog), err)
		}
	})
}
