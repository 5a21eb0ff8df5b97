package notify_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/patronkit/patronkit/adapters/notify"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/smtptest"
)

func TestSMTPDeliversThroughARealServer(t *testing.T) {
	srv := smtptest.Start(t, "library", "s3cret")
	n := &notify.SMTP{Host: srv.Host, Port: srv.Port, Username: "library", Password: "s3cret", From: "Library <library@demo.example>", TLS: "none"}
	msg := circulation.Message{Channel: circulation.ChannelEmail, To: "sam@demo.example", Subject: "Ready for pickup: Café Society", Body: "Dear Sam,\n\nyour book waits for you.\n"}
	if err := n.Notify(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 || got[0].From != "library@demo.example" || len(got[0].To) != 1 || got[0].To[0] != "sam@demo.example" ||
		got[0].Subject != msg.Subject || !strings.Contains(got[0].Body, "your book waits for you.") {
		t.Fatalf("messages %+v", got)
	}

	bad := *n
	bad.Password = "wrong"
	if err := bad.Notify(context.Background(), msg); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	srv.Refuse(true)
	if err := n.Notify(context.Background(), msg); err == nil {
		t.Fatal("a refused message reported no error")
	}
	if err := n.Notify(context.Background(), circulation.Message{To: "not an address"}); err == nil {
		t.Fatal("a bad recipient reported no error")
	}
	if len(srv.Messages()) != 1 {
		t.Fatalf("messages %d", len(srv.Messages()))
	}
}

func TestSMSGoesToTheGateway(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]string
	fail := false
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if fail {
			http.Error(w, "gateway down", http.StatusBadGateway)
			return
		}
		var b map[string]string
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = append(got, b)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer gw.Close()
	g := &notify.SMSGateway{URL: gw.URL, Token: "tok", From: "LIBRARY"}
	if err := g.Notify(context.Background(), circulation.Message{Channel: circulation.ChannelSMS, To: "+15550001", Body: "Your book is ready.\n"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0]["to"] != "+15550001" || got[0]["from"] != "LIBRARY" || got[0]["text"] != "Your book is ready." {
		t.Fatalf("gateway got %+v", got)
	}
	fail = true
	if err := g.Notify(context.Background(), circulation.Message{To: "+15550001", Body: "x"}); err == nil || !strings.Contains(err.Error(), "gateway down") {
		t.Fatalf("a failing gateway: %v", err)
	}
	wrong := &notify.SMSGateway{URL: gw.URL, Token: "other"}
	if err := wrong.Notify(context.Background(), circulation.Message{To: "+1", Body: "x"}); err == nil {
		t.Fatal("a refused token reported no error")
	}
}
