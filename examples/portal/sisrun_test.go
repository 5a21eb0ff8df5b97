package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSISRunLoadsIntoThePortalsDatabaseOnly checks the operator's command:
// it refuses a data directory where no portal ever ran (a mistyped -data
// would otherwise load into a database nobody reads), says which database
// it loads into, and lists the users it rejected with their reasons.
func TestSISRunLoadsIntoThePortalsDatabaseOnly(t *testing.T) {
	ctx := context.Background()
	sample, err := filepath.Abs("sample/users.xml")
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "typo")
	var out bytes.Buffer
	err = sisRun(ctx, []string{"-data", data, sample}, &out)
	if err == nil || !strings.Contains(err.Error(), "no portal database at") || !strings.Contains(err.Error(), "-init") {
		t.Fatalf("sis-run without a database: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("the refused run created %s: %v", data, err)
	}

	out.Reset()
	if err := sisRun(ctx, []string{"-init", "-data", data, sample}, &out); err != nil {
		t.Fatalf("sis-run -init: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		regexp.QuoteMeta("database: " + filepath.Join(data, "patronkit.db")),
		`created\s+2\b`, `updated\s+1\b`, `rejected\s+1\b`,
		"not loaded:", `sis-broken\s+rejected\s+last_name is required`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("sis-run printed no %q:\n%s", want, got)
		}
	}

	// The database exists now: a second run needs no -init, and finds
	// the users of the first unchanged.
	out.Reset()
	if err := sisRun(ctx, []string{"-data", data, sample}, &out); err != nil {
		t.Fatalf("second sis-run: %v\n%s", err, out.String())
	}
	if !regexp.MustCompile(`unchanged\s+3\b`).MatchString(out.String()) {
		t.Errorf("second sis-run:\n%s", out.String())
	}
}

// TestPortalRefusesUnknownArguments: an unknown subcommand, and the flags
// after it, are not silently ignored.
func TestPortalRefusesUnknownArguments(t *testing.T) {
	data := t.TempDir()
	err := run(context.Background(), []string{"-data", data, "foo", "-addr", "127.0.0.1:9000"}, nil)
	if err == nil || !strings.Contains(err.Error(), `unknown argument "foo"`) {
		t.Fatalf("portal foo: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "patronkit.db")); !os.IsNotExist(err) {
		t.Fatalf("the refused command opened a database: %v", err)
	}
	if err := sisRun(context.Background(), []string{"-data", data}, &bytes.Buffer{}); err == nil {
		t.Fatal("sis-run without a file ran")
	}
}
