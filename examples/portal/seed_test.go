package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
)

// TestTheDemoSeedGivesEachGroupItsTerms checks what README promises: an
// undergraduate borrows for four weeks, faculty to the end of semester.
func TestTheDemoSeedGivesEachGroupItsTerms(t *testing.T) {
	ctx := context.Background()
	kit, err := openKit(ctx, "", t.TempDir(), slog.New(slog.DiscardHandler), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kit.Close()
	if page, _ := kit.Circulation.Items(ctx, Institution, circulation.ItemQuery{Limit: 1}); page.TotalRecordCount != 300 {
		t.Fatalf("the seed has %d items, want 300", page.TotalRecordCount)
	}
	item, err := kit.Circulation.Item(ctx, Institution, "MAIN-0001")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	student, _ := kit.Patrons.Get(ctx, Institution, "student1")
	_, due, err := kit.Circulation.TermsFor(ctx, Institution, student, item, now)
	if err != nil {
		t.Fatal(err)
	}
	if days := due.Sub(now).Hours() / 24; days < 27 || days > 29 {
		t.Fatalf("student1 is due in %.1f days, want four weeks", days)
	}
	faculty, _ := kit.Patrons.Get(ctx, Institution, "faculty1")
	_, due, err = kit.Circulation.TermsFor(ctx, Institution, faculty, item, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := due.Format(time.DateOnly); got != semesterEnd(now) {
		t.Fatalf("faculty1 is due %s, want the end of semester %s", got, semesterEnd(now))
	}
}

// TestADemoLoanStopsTheDeletionOfItsBorrower checks the wiring of the kit:
// check-out works and the loan guards the user.
func TestADemoLoanStopsTheDeletionOfItsBorrower(t *testing.T) {
	ctx := context.Background()
	kit, err := openKit(ctx, "", t.TempDir(), slog.New(slog.DiscardHandler), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kit.Close()
	if _, err := kit.Circulation.CheckOut(ctx, Institution, "student1", "MAIN-0002", circulation.CheckOutOptions{}); err != nil {
		t.Fatal(err)
	}
	err = kit.Patrons.Delete(ctx, Institution, "student1")
	if e, ok := fault.As(err); !ok || e.Kind != fault.Refused || len(e.Reasons) == 0 {
		t.Fatalf("deleting a borrower: %v", err)
	}
}

// TestDemoNoticesGoToTheOutboxInThePatronsLanguage: without an SMTP
// server, the demo writes notices to files; faculty1 reads Spanish.
func TestDemoNoticesGoToTheOutboxInThePatronsLanguage(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	kit, err := openKit(ctx, "", data, slog.New(slog.DiscardHandler), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kit.Close()
	for _, who := range []string{"faculty1", "student1"} {
		if _, err := kit.Circulation.CheckOut(ctx, Institution, who, map[string]string{"faculty1": "MAIN-0003", "student1": "MAIN-0004"}[who], circulation.CheckOutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := kit.Circulation.SendNotices(ctx); err != nil || n != 2 {
		t.Fatalf("sent %d, %v", n, err)
	}
	files, err := filepath.Glob(filepath.Join(data, "outbox", "*.txt"))
	if err != nil || len(files) != 2 {
		t.Fatalf("outbox %v, %v", files, err)
	}
	var all string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all += string(b)
	}
	if !strings.Contains(all, "To: frances.faculty@demo.example (email)\nSubject: Recibo de préstamo: ") ||
		!strings.Contains(all, "Subject: Loan receipt: ") {
		t.Fatalf("the outbox holds:\n%s", all)
	}
}
