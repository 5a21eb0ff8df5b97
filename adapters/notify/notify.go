// Package notify delivers patronkit's notices (circulation.Notice): by
// email through an SMTP server, and by SMS through an HTTP gateway. Each
// is a circulation.Notifier; the kit takes them in Config.Email and
// Config.SMS.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/patronkit/patronkit/circulation"
)

// SMTP sends notices by email through an SMTP server.
type SMTP struct {
	// Host and Port name the server; Port defaults to 587.
	Host string
	Port int
	// Username and Password, when set, sign in with SMTP AUTH PLAIN
	// (only over TLS, unless the server is on loopback).
	Username string
	Password string
	// From is the sender's address, e.g. "Library <library@example.edu>".
	From string
	// TLS is the STARTTLS policy: "mandatory" (the default),
	// "opportunistic", or "none" (plain SMTP, for a relay on the same
	// host or in tests).
	TLS string
	// Timeout bounds one delivery. Default: 30 seconds.
	Timeout time.Duration
}

var _ circulation.Notifier = (*SMTP)(nil)

// Notify sends m as a plain-text email to m.To.
func (s *SMTP) Notify(ctx context.Context, m circulation.Message) error {
	if s.Host == "" || s.From == "" {
		return errors.New("notify: SMTP needs a Host and a From address")
	}
	msg := mail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return fmt.Errorf("notify: sender %q: %w", s.From, err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("notify: recipient %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(mail.TypeTextPlain, m.Body)

	port, timeout := s.Port, s.Timeout
	if port == 0 {
		port = 587
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	policy := mail.TLSMandatory
	switch strings.ToLower(s.TLS) {
	case "opportunistic":
		policy = mail.TLSOpportunistic
	case "none":
		policy = mail.NoTLS
	}
	opts := []mail.Option{mail.WithPort(port), mail.WithTLSPortPolicy(policy), mail.WithTimeout(timeout)}
	if s.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(s.Username), mail.WithPassword(s.Password))
	}
	c, err := mail.NewClient(s.Host, opts...)
	if err != nil {
		return fmt.Errorf("notify: SMTP client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("notify: sending to %s: %w", m.To, err)
	}
	return nil
}

// SMSGateway sends notices as text messages through an HTTP gateway: one
// POST of a JSON body {"to": number, "from": From, "text": body} to URL
// per message, with Token as a bearer token when set. Any 2xx answer
// means accepted. Most SMS providers take such a request, or one a small
// proxy turns it into.
type SMSGateway struct {
	URL   string
	Token string
	From  string
	// Client is the HTTP client. Default: one with a 30-second timeout.
	Client *http.Client
}

var _ circulation.Notifier = (*SMSGateway)(nil)

// smsBody is what the gateway receives.
type smsBody struct {
	To   string `json:"to"`
	From string `json:"from,omitempty"`
	Text string `json:"text"`
}

// Notify posts m to the gateway.
func (g *SMSGateway) Notify(ctx context.Context, m circulation.Message) error {
	if g.URL == "" {
		return errors.New("notify: SMSGateway needs a URL")
	}
	b, err := json.Marshal(smsBody{To: m.To, From: g.From, Text: strings.TrimSpace(m.Body)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("notify: SMS gateway: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if g.Token != "" {
		req.Header.Set("Authorization", "Bearer "+g.Token)
	}
	c := g.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	res, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("notify: SMS gateway: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("notify: SMS gateway answered %s: %s", res.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
