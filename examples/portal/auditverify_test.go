package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/privacy"
)

// TestAuditVerifySaysWhetherTheTrailIsWhole checks the operator's command:
// it refuses a data directory where no portal ran, says the seeded trail
// is whole, and once an entry is changed behind the kit's back prints the
// first break and fails (the portal exits 1).
func TestAuditVerifySaysWhetherTheTrailIsWhole(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	var out bytes.Buffer
	if err := auditVerify(ctx, []string{"-data", data}, &out); err == nil || !strings.Contains(err.Error(), "no portal database at") || strings.Contains(err.Error(), "-init") {
		t.Fatalf("audit-verify without a database: %v", err)
	}
	kit, err := openKit(ctx, "", data, slog.New(slog.DiscardHandler), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	kit.Close()

	out.Reset()
	if err := auditVerify(ctx, []string{"-data", data}, &out); err != nil {
		t.Fatalf("audit-verify of the seeded trail: %v\n%s", err, out.String())
	}
	if !regexp.MustCompile(`audit trail of DEMO: whole, up to entry \d+`).MatchString(out.String()) ||
		!strings.Contains(out.String(), "database: "+filepath.Join(data, "patronkit.db")) {
		t.Fatalf("audit-verify printed:\n%s", out.String())
	}
	out.Reset()
	if err := auditVerify(ctx, []string{"-data", data, "-institution", "ELSEWHERE"}, &out); err != nil || !strings.Contains(out.String(), "audit trail of ELSEWHERE: no entries") {
		t.Fatalf("audit-verify of an institution without a trail: %v\n%s", err, out.String())
	}
	if err := auditVerify(ctx, []string{"-data", data, "extra"}, &out); err == nil {
		t.Fatal("audit-verify took an argument")
	}

	db, err := sqldb.Open(filepath.Join(data, "patronkit.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("UPDATE pk_privacy_audit SET what = 'something else' WHERE institution = 'DEMO' AND seq = 2").Error; err != nil {
		t.Fatal(err)
	}
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
	out.Reset()
	err = auditVerify(ctx, []string{"-data", data}, &out)
	var b *privacy.Break
	if !errors.As(err, &b) || b.Seq != 2 || b.Reason != privacy.Altered {
		t.Fatalf("audit-verify of a tampered trail: %v", err)
	}
	if !strings.Contains(out.String(), "audit trail of DEMO: BROKEN at entry 2 (altered)") {
		t.Fatalf("audit-verify printed:\n%s", out.String())
	}
	// As the portal runs it: an error, so exit status 1.
	if err := run(ctx, []string{"audit-verify", "-data", data}, nil); !errors.As(err, &b) {
		t.Fatalf("portal audit-verify: %v", err)
	}
}
