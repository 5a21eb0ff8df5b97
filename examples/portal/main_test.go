package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPortalStartsSeedsAndServes runs the portal as a newcomer would, on a
// fresh SQLite file, and talks to it over HTTP.
func TestPortalStartsSeedsAndServes(t *testing.T) {
	data := t.TempDir()
	start := func(ctx context.Context, done chan error) string {
		ready := make(chan string, 1)
		go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-data", data, "-db", ""}, ready) }()
		select {
		case addr := <-ready:
			return "http://" + addr
		case err := <-done:
			t.Fatalf("portal stopped: %v", err)
			return ""
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	base := start(ctx, done)
	if res, err := http.Get(base + "/healthz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("/healthz: %v", err)
	} else {
		res.Body.Close()
	}

	get := func(user, pin, path string, headers ...string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pin)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("librarian", "1111", "/api/openapi.json"); code != 200 || !strings.Contains(body, `"openapi":"3.0.3"`) {
		t.Fatalf("openapi.json: %d %.200s", code, body)
	}
	if code, body := get("librarian", "1111", "/api/users?limit=100"); code != 200 || !strings.Contains(body, `"total_record_count":11`) {
		t.Fatalf("the demo seed: %d %.300s", code, body)
	}
	if code, _ := get("desk", "2222", "/api/users/student1"); code != 200 {
		t.Fatalf("desk reads a patron: %d", code)
	}
	if code, _ := get("student1", "3333", "/api/users/student1"); code != 200 {
		t.Fatalf("student1 reads their record: %d", code)
	}
	if code, _ := get("student1", "3333", "/api/users/faculty1"); code != 403 {
		t.Fatalf("student1 reads faculty1: %d", code)
	}
	if code, _ := get("faculty1", "4444", "/api/users"); code != 403 {
		t.Fatalf("a patron lists users: %d", code)
	}
	if code, body := get("auditor", "9999", "/api/audit/verify"); code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("the auditor verifies the trail: %d %s", code, body)
	}
	if code, _ := get("desk", "2222", "/api/audit/entries"); code != 403 {
		t.Fatalf("the desk searches the trail: %d", code)
	}
	if code, _ := get("", "", "/api/users"); code != 401 {
		t.Fatalf("anonymous: %d", code)
	}
	// Wrong PINs count against the client's own address: naming another
	// one in a header does not escape the lock.
	for i := 0; i < 5; i++ {
		if code, _ := get("grad1", "0000", "/api/users/grad1", "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i)); code != 401 {
			t.Fatalf("wrong PIN %d: %d", i, code)
		}
	}
	if code, _ := get("grad1", "5555", "/api/users/grad1", "X-Forwarded-For", "203.0.113.99"); code != 429 {
		t.Fatalf("after five wrong PINs from one address: %d", code)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	// A restart on the same data keeps the users and the roles, and does
	// not seed twice.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	base = start(ctx2, done)
	if code, body := get("librarian", "1111", "/api/users?limit=100"); code != 200 || !strings.Contains(body, `"total_record_count":11`) {
		t.Fatalf("after a restart: %d %.300s", code, body)
	}
	cancel2()
	<-done
}
