package sets_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
	"github.com/patronkit/patronkit/sets"
)

// segmentsOf are the blocks, notes and statistics of the user, each as
// "type:value" sorted.
func segmentsOf(t *testing.T, k *patronkittest.Kit, id string) []string {
	t.Helper()
	u, err := k.Patrons.Get(staff, "UNI", id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range u.Blocks {
		out = append(out, "block:"+b.BlockType+"/"+b.SegmentType)
	}
	for _, n := range u.Notes {
		out = append(out, "note:"+n.NoteText)
	}
	for _, st := range u.Statistics {
		out = append(out, "stat:"+st.StatisticCategory+"/"+st.SegmentType)
	}
	slices.Sort(out)
	return out
}

// An update job adds and removes blocks, notes and statistics: the
// preview shows them per user, the run writes them (each user's change on
// the audit trail, the report naming each), an external user keeps what
// came from the SIS (named in the reasons) and their SIS-managed field,
// while the rest of the change applies to them; the undo takes away what
// the job added and puts back what it removed, unless the user changed
// since.
func TestAnUpdateJobAddsAndRemovesBlocksNotesAndStatistics(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		for _, id := range []string{"ann", "bob"} {
			user(t, k, id, func(u *patron.User) {
				u.UserGroup, u.ExpiryDate = "GRAD", "2026-12-31"
				u.Blocks = []patron.Block{{BlockType: "LIBRARY", BlockDescription: "Overdue books", BlockStatus: "ACTIVE"}}
				u.Notes = []patron.Note{{NoteType: "CIRCULATION", NoteText: "Moved"}}
				u.Statistics = []patron.Statistic{{StatisticCategory: "OLD"}}
			})
		}
		eveU := user(t, k, "eve", func(u *patron.User) {
			u.UserGroup, u.ExpiryDate, u.AccountType, u.ExternalID = "GRAD", "2026-12-31", patron.AccountExternal, "SIS"
			u.Blocks = []patron.Block{{BlockType: "LIBRARY", BlockDescription: "From the SIS", BlockStatus: "ACTIVE"}}
			u.Statistics = []patron.Statistic{{StatisticCategory: "OLD"}}
		})
		// What an SIS load stores: eve's block and statistic came from it.
		for _, table := range []string{"pk_user_blocks", "pk_user_statistics"} {
			if err := k.DB.Exec("UPDATE "+table+" SET segment_type = ? WHERE user_id = ?", patron.SegmentExternal, eveU.ID).Error; err != nil {
				t.Fatal(err)
			}
		}
		if got := segmentsOf(t, k, "eve"); !slices.Equal(got, []string{"block:LIBRARY/External", "stat:OLD/External"}) {
			t.Fatalf("eve starts with %v", got)
		}
		set, err := k.Sets.Create(staff, "UNI", sets.New{Name: "Grads", Query: sets.Query{UserGroup: "GRAD"}})
		if err != nil {
			t.Fatal(err)
		}
		change := patron.BatchChange{Fields: map[string]string{"user_group": "ALUMNI", "expiry_date": "2027-06-30"}, BatchSegments: patron.BatchSegments{
			AddBlocks:        []patron.BatchBlock{{BlockType: "GRADUATION", BlockDescription: "Return your card"}},
			RemoveBlocks:     []string{"LIBRARY"},
			AddNotes:         []patron.BatchNote{{NoteText: " Graduated in 2026 "}},
			RemoveNotes:      []patron.BatchNote{{NoteText: "Moved"}},
			AddStatistics:    []patron.BatchStatistic{{StatisticCategory: "ALUMNI"}},
			RemoveStatistics: []string{"OLD"},
		}}

		bad := change
		bad.BatchSegments = patron.BatchSegments{AddBlocks: []patron.BatchBlock{{BlockType: "X"}}, RemoveStatistics: []string{" "}, AddNotes: []patron.BatchNote{{NoteText: strings.Repeat("n", 2001)}}}
		_, err = k.Sets.StartChange(staff, "UNI", set.ID, bad)
		if got := fieldsOf(t, err); !slices.Equal(got, []string{"add_blocks[0].block_description", "add_notes[0].note_text", "remove_statistics[0]"}) {
			t.Errorf("a change not valid: %v", got)
		}

		p, err := k.Sets.PreviewChange(staff, "UNI", set.ID, change, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Sample) != 3 || len(p.Sample[0].Segments) != 6 || p.Sample[0].Outcome != patron.BatchChanged {
			t.Fatalf("the preview %+v", p)
		}
		eve := p.Sample[2]
		var reasons []string
		for _, r := range eve.Reasons {
			reasons = append(reasons, r.Field)
		}
		slices.Sort(reasons)
		if eve.Outcome != patron.BatchChanged || len(eve.Segments) != 3 || !slices.Equal(reasons, []string{"expiry_date", "remove_blocks", "remove_statistics"}) {
			t.Errorf("eve's preview %+v", eve)
		}
		if got := segmentsOf(t, k, "ann"); len(got) != 3 || got[0] != "block:LIBRARY/Internal" {
			t.Errorf("the preview changed ann: %v", got)
		}

		job, err := k.Sets.StartChange(staff, "UNI", set.ID, change)
		if err != nil {
			t.Fatal(err)
		}
		if job.Segments == nil || len(job.Segments.AddBlocks) != 1 {
			t.Fatalf("the job %+v", job)
		}
		if job, err = k.Sets.Run(context.Background(), "UNI", job.ID); err != nil || job.Changed != 3 {
			t.Fatalf("ran %+v, %v", job, err)
		}
		if got := segmentsOf(t, k, "ann"); !slices.Equal(got, []string{"block:GRADUATION/Internal", "note:Graduated in 2026", "stat:ALUMNI/Internal"}) {
			t.Errorf("ann after the job: %v", got)
		}
		if got := segmentsOf(t, k, "eve"); !slices.Equal(got, []string{"block:GRADUATION/Internal", "block:LIBRARY/External", "note:Graduated in 2026", "stat:ALUMNI/Internal", "stat:OLD/External"}) {
			t.Errorf("eve after the job: %v", got)
		}
		if u, _ := k.Patrons.Get(staff, "UNI", "eve"); u.UserGroup != "ALUMNI" || u.ExpiryDate != "2026-12-31" || u.Version != 2 {
			t.Errorf("eve's fields after the job: %q %q v%d", u.UserGroup, u.ExpiryDate, u.Version)
		}
		trail, err := k.Privacy.Search(staff, "UNI", privacy.Query{Subject: "ann", Action: patron.AuditUpdate})
		if err != nil || len(trail.Entries) != 1 || !strings.Contains(trail.Entries[0].Details, "user_blocks") || !strings.Contains(trail.Entries[0].Details, "user_statistics") {
			t.Errorf("ann's trail: %+v, %v", trail, err)
		}
		var csv bytes.Buffer
		if err := k.Sets.WriteCSV(staff, &csv, "UNI", job.ID); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(csv.String(), "user_blocks: - LIBRARY: Overdue books; user_blocks: + GRADUATION: Return your card") {
			t.Errorf("the report:\n%s", csv.String())
		}

		// bob changes since: the undo leaves him as he is.
		bob, err := k.Patrons.Get(staff, "UNI", "bob")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Patrons.RemoveSegment(staff, "UNI", "bob", patron.KindStatistics, bob.Statistics[0].ID); err != nil {
			t.Fatal(err)
		}
		undo, err := k.Sets.StartUndo(staff, "UNI", job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if undo, err = k.Sets.Run(context.Background(), "UNI", undo.ID); err != nil || undo.Changed != 2 || undo.Refused != 1 {
			t.Fatalf("the undo %+v, %v", undo, err)
		}
		if got := segmentsOf(t, k, "ann"); !slices.Equal(got, []string{"block:LIBRARY/Internal", "note:Moved", "stat:OLD/Internal"}) {
			t.Errorf("ann after the undo: %v", got)
		}
		if got := segmentsOf(t, k, "eve"); !slices.Equal(got, []string{"block:LIBRARY/External", "stat:OLD/External"}) {
			t.Errorf("eve after the undo: %v", got)
		}
		if got := segmentsOf(t, k, "bob"); !slices.Equal(got, []string{"block:GRADUATION/Internal", "note:Graduated in 2026"}) {
			t.Errorf("bob, changed since, after the undo: %v", got)
		}
		if u, _ := k.Patrons.Get(staff, "UNI", "ann"); u.UserGroup != "GRAD" || u.ExpiryDate != "2026-12-31" {
			t.Errorf("ann's fields after the undo: %q %q", u.UserGroup, u.ExpiryDate)
		}
	})
}
