package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRun runs the command with tiny numbers on SQLite (both shapes) and
// checks that both operations were measured without errors and that
// the best step is named.
func TestRun(t *testing.T) {
	tiny := []string{"-patrons", "20", "-items", "60", "-clients", "3", "-pause", "10ms", "-duration", "2s",
		"-steps", "1,2", "-step-duration", "1s", "-p95", "10s"}
	var out bytes.Buffer
	if err := run(context.Background(), tiny, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Log("\n" + text)
	for _, op := range []string{"check-out", "check-in"} {
		m := regexp.MustCompile(`(?m)^\s*` + op + `\s+(\d+)\s+(\d+)\s`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no paced row for %s", op)
		}
		if n, _ := strconv.Atoi(m[1]); n == 0 {
			t.Errorf("paced: no %s measured", op)
		}
		if m[2] != "0" {
			t.Errorf("paced: %s had %s errors", op, m[2])
		}
	}
	// clients, ops/s, check-outs, p50, p95, p99, check-ins, p50, p95, p99, errors
	rows := regexp.MustCompile(`(?m)^\s*(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+\S+\s+(\d+)\s`).FindAllStringSubmatch(text, -1)
	if len(rows) != 2 {
		t.Fatalf("want 2 rows of open steps, got %d", len(rows))
	}
	for _, r := range rows {
		if r[3] == "0" || r[4] == "0" {
			t.Errorf("step of %s clients: check-outs %s, check-ins %s", r[1], r[3], r[4])
		}
		if r[5] != "0" {
			t.Errorf("step of %s clients: %s errors", r[1], r[5])
		}
	}
	if !regexp.MustCompile(`(?m)^best step: \d+ clients?, \d+ ops/s`).MatchString(text) {
		t.Error("no line naming the best step")
	}
	if strings.Contains(text, "error (") {
		t.Error("failures were printed")
	}
}

// TestSIP2Workload lends and takes back through self-check kiosks over
// SIP2, both shapes, without errors.
func TestSIP2Workload(t *testing.T) {
	args := []string{"-workload", "sip2", "-patrons", "20", "-items", "60", "-clients", "3", "-pause", "10ms", "-duration", "2s",
		"-steps", "1,2", "-step-duration", "1s", "-p95", "10s"}
	var out bytes.Buffer
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Log("\n" + text)
	for _, op := range []string{"SIP2 check-out", "SIP2 check-in"} {
		m := regexp.MustCompile(`(?m)^\s*` + op + `\s+(\d+)\s+(\d+)\s`).FindStringSubmatch(text)
		if m == nil || m[1] == "0" || m[2] != "0" {
			t.Errorf("paced %s: %q", op, m)
		}
	}
	if !regexp.MustCompile(`(?m)^best step: \d+ clients?, \d+ ops/s, SIP2 check-out p95`).MatchString(text) {
		t.Error("no best step of the SIP2 workload")
	}
}

// TestAccountWorkload reads the accounts and records of patrons with
// loans, with the audit trail and without.
func TestAccountWorkload(t *testing.T) {
	for _, audit := range []string{"true", "false"} {
		var out bytes.Buffer
		args := []string{"-workload", "account", "-readers", "2", "-loans", "5", "-patrons", "4", "-items", "20", "-shape", "open",
			"-steps", "1,2", "-step-duration", "1s", "-p95", "10s", "-audit=" + audit}
		if err := run(context.Background(), args, &out); err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		text := out.String()
		t.Log("\n" + text)
		trail := map[string]string{"true": "audit trail on", "false": "audit trail off"}[audit]
		if !strings.Contains(text, "2 patrons with 5 open loans each") || !strings.Contains(text, trail) ||
			!regexp.MustCompile(`(?m)^best step: \d+ clients?, \d+ ops/s, GET /me p95 [0-9.]+ ms, GET /users/\{id\} p95`).MatchString(text) {
			t.Errorf("-audit=%s: the account workload was not measured", audit)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-shape", "closed"},
		{"-steps", "1,x"},
		{"-clients", "10", "-patrons", "5"},
		{"-clients", "10", "-items", "20"},
		{"-hold", "0"},
		{"-workload", "browse"},
		{"-workload", "account", "-readers", "10", "-loans", "600"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// A failure is told as it is, not as an interruption.
func TestExitCode(t *testing.T) {
	var out bytes.Buffer
	if code := exitCode(errors.New("connecting: refused"), false, &out); code != 1 || out.String() != "circload: connecting: refused\n" {
		t.Errorf("a failure: %d %q", code, out.String())
	}
	out.Reset()
	if code := exitCode(context.Canceled, true, &out); code != 1 || out.String() != "circload: interrupted\n" {
		t.Errorf("an interruption: %d %q", code, out.String())
	}
	if code := exitCode(nil, false, &out); code != 0 {
		t.Errorf("success: %d", code)
	}
}
