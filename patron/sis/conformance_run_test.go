package sis_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/conformance"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron/sis"
)

// TestConformanceFilesLoadAsAlmaWould runs every user file of the shared
// conformance folder through a synchronize profile, as it is, and checks
// the outcome Alma would give.
func TestConformanceFilesLoadAsAlmaWould(t *testing.T) {
	dir := conformance.AlmaDir(t)
	want := map[string]struct {
		created, rejected int
		reason            string // a rejection's reason contains it
	}{
		"mit_student_patrons.xml":        {1, 1, "first_name is required"},
		"mit_staff_patrons.xml":          {1, 1, "first_name is required"},
		"ucb_sis_expected_xml_3.xml":     {2, 0, ""},
		"exlibris_doc_example_user.xml":  {1, 0, ""},
		"exlibris_doc_example_user.json": {1, 0, ""},
		"uio_user_response.json":         {1, 0, ""},
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		seen := 0
		for _, entry := range entries {
			ext := filepath.Ext(entry.Name())
			if ext != ".xml" && ext != ".json" {
				continue
			}
			w, ok := want[entry.Name()]
			if !ok {
				t.Errorf("%s: a conformance file this test does not know", entry.Name())
				continue
			}
			seen++
			// Each file in an institution of its own: two files hold the
			// same Ex Libris example user.
			inst := strings.ToUpper(strings.NewReplacer(".", "-", "_", "-").Replace(entry.Name()))
			const code = "SIS"
			if _, err := e.sis.CreateProfile(e.ctx, inst, &sis.Profile{Code: code, Source: sis.Upload, Mode: sis.ModeSynchronize}); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(filepath.Join(dir, entry.Name()))
			if err != nil {
				t.Fatal(err)
			}
			r, err := e.sis.StartRun(e.ctx, inst, code, sis.RunOptions{Upload: f, UploadName: entry.Name()})
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			r, _ = e.sis.Wait(e.ctx, r.ID)
			var rep []sis.Outcome
			if err := e.sis.Report(e.ctx, inst, r.ID, func(o sis.Outcome) error { rep = append(rep, o); return nil }); err != nil {
				t.Fatal(err)
			}
			if r.Status != sis.RunSucceeded || r.Created != w.created || r.Rejected != w.rejected || r.Failed != 0 {
				t.Errorf("%s: %s %q; report %+v", entry.Name(), counts(r), r.Error, rep)
				continue
			}
			for _, o := range rep {
				if o.Outcome == sis.OutcomeRejected && !strings.Contains(o.Reason, w.reason) {
					t.Errorf("%s: %s rejected for %q, want a reason with %q", entry.Name(), o.Ref, o.Reason, w.reason)
				}
			}
		}
		if seen != len(want) {
			t.Errorf("read %d conformance files, want %d", seen, len(want))
		}
		// Spot checks of what was loaded.
		u, err := e.patrons.Get(e.ctx, "MIT-STUDENT-PATRONS-XML", "STUDENT_KRB_NAME@MIT.EDU")
		if err != nil || u.FirstName != "Jane" || u.UserGroup != "32" || u.ExpiryDate != "2023-09-01" || !u.IsExternal() {
			t.Fatalf("MIT's first student: %+v %v", u, err)
		}
		for _, seg := range u.Phones {
			if !seg.IsExternal() {
				t.Fatal("SIS segments must be External")
			}
		}
	})
}
