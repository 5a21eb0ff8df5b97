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

// The operator's set and job commands: set makes a set of users from a
// file (naming the lines not found), job previews an update over it,
// runs it with a progress line and prints its counts and report, and
// sends a message to the set; both refuse a data directory where no
// portal ran.
func TestSetAndJobCommandsRunAJobOverAFileOfUsers(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	file := filepath.Join(data, "leaving.txt")
	if err := os.WriteFile(file, []byte("student1\ngrad1\nsis-student\nghost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := setCmd(ctx, []string{"-data", filepath.Join(data, "typo"), file}, &out); err == nil || !strings.Contains(err.Error(), "no portal database at") {
		t.Fatalf("set without a database: %v", err)
	}
	if err := jobCmd(ctx, []string{"-data", filepath.Join(data, "typo"), "-set", "x"}, &out); err == nil || !strings.Contains(err.Error(), "no portal database at") {
		t.Fatalf("job without a database: %v", err)
	}

	out.Reset()
	if err := setCmd(ctx, []string{"-init", "-data", data, "-name", "Leaving", file}, &out); err != nil {
		t.Fatalf("set: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{`members\s+3\b`, `not found\s+1\b`, `line 4\s+ghost`} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("set printed no %q:\n%s", want, got)
		}
	}
	m := regexp.MustCompile(`(?m)^set\s+(\S+)`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no set id in\n%s", got)
	}
	id := m[1]

	out.Reset()
	err := jobCmd(ctx, []string{"-data", data, "-set", id, "-preview", "-field", "expiry_date=2030-06-30", "-add-block", "GENERAL=Leaving"}, &out)
	if err != nil {
		t.Fatalf("job -preview: %v\n%s", err, out.String())
	}
	got = out.String()
	for _, want := range []string{`preview: 3 users`, `grad1\s+changed\s+expiry_date: 2029-09-30 -> 2030-06-30; user_blocks: \+ GENERAL: Leaving`,
		`sis-student\s+changed\s+user_blocks: \+ GENERAL: Leaving; refused expiry_date`} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("job -preview printed no %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "report:") {
		t.Errorf("job -preview ran the job:\n%s", got)
	}

	out.Reset()
	if err := jobCmd(ctx, []string{"-data", data, "-set", id, "-field", "expiry_date=2030-06-30", "-add-block", "GENERAL=Leaving"}, &out); err != nil {
		t.Fatalf("job: %v\n%s", err, out.String())
	}
	got = out.String()
	for _, want := range []string{`\] 100%  3/3 users`, `status\s+done`, `changed\s+3\b`, `refused\s+0\b`, "report:\nseq,primary_id,outcome,changes,reasons\n",
		`,grad1,changed,expiry_date: 2029-09-30 -> 2030-06-30; user_blocks: \+ GENERAL: Leaving,`} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("job printed no %q:\n%s", want, got)
		}
	}

	out.Reset()
	if err := jobCmd(ctx, []string{"-data", data, "-set", id, "-notify", "-subject", "Goodbye", "-text", "Return your card."}, &out); err != nil {
		t.Fatalf("job -notify: %v\n%s", err, out.String())
	}
	got = out.String()
	for _, want := range []string{`preview: a message to 3 users`, `student1\s+sms\s+pending\s+Goodbye`, `queued\s+3\b`, `,student1,queued,notice: sms pending,`} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("job -notify printed no %q:\n%s", want, got)
		}
	}
	if err := jobCmd(ctx, []string{"-data", data, "-set", id, "-notify", "-field", "x=y", "-text", "t"}, &out); err == nil {
		t.Error("job -notify with a field ran")
	}
	if err := jobCmd(ctx, []string{"-data", data, "-set", "nothing", "-field", "campus_code=X"}, &out); err == nil {
		t.Error("job on no set ran")
	}
}
