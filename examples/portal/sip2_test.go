package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestPortalServesSIP2 starts the portal with -sip2 and signs the demo
// kiosk in, as README.md says: it lends student1 a book at MAIN.
func TestPortalServesSIP2(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 2)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-data", data, "-db", "", "-sip2", "127.0.0.1:0"}, ready)
	}()
	var addrs []string
	for len(addrs) < 2 {
		select {
		case a := <-ready:
			addrs = append(addrs, a)
		case err := <-done:
			t.Fatalf("portal stopped: %v", err)
		}
	}
	nc, err := net.Dial("tcp", addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	say := func(msg string) string {
		t.Helper()
		sum := 0
		msg += "AY0AZ"
		for _, c := range []byte(msg) {
			sum += int(c)
		}
		fmt.Fprintf(nc, "%s%04X\r", msg, (-sum)&0xFFFF)
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, err := r.ReadString('\r')
		if err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
		return line
	}
	if got := say("9300CNkiosk|CO6001|CPMAIN|"); !strings.HasPrefix(got, "941") {
		t.Fatalf("the demo kiosk's login: %q", got)
	}
	date := "20260901    120000"
	if got := say("11YN" + date + date + "AODEMO|AAstudent1|ABMAIN-0010|AC|AD3333|"); !strings.HasPrefix(got, "121") {
		t.Fatalf("check-out at the kiosk: %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("the kiosk's connection after the portal stopped: %v", err)
	}
}
