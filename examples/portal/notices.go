package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/patronkit/patronkit/adapters/notify"
	"github.com/patronkit/patronkit/circulation"
)

// spanishTemplates are the demo's second language for notices: Spanish,
// beside the built-in English.
//
//go:embed templates
var spanishTemplates embed.FS

// noticeTemplates are the demo's notice templates, {language}/{kind}.tmpl.
func noticeTemplates() fs.FS {
	sub, err := fs.Sub(spanishTemplates, "templates")
	if err != nil {
		panic(err) // the embedded directory is there: cannot happen
	}
	return sub
}

// channels are the notice channels the flags configure.
type channels struct {
	smtp, from, tls, smsURL *string
}

func channelFlags(fs *flag.FlagSet) *channels {
	return &channels{
		smtp:   fs.String("smtp", "", "SMTP server (host:port) for email notices; user and password from PATRONKIT_SMTP_USER and PATRONKIT_SMTP_PASSWORD (default: notices are written to files under -data/outbox)"),
		from:   fs.String("smtp-from", "Demo Library <library@demo.example>", "sender of email notices"),
		tls:    fs.String("smtp-tls", "mandatory", "STARTTLS: mandatory, opportunistic or none"),
		smsURL: fs.String("sms-url", "", "SMS gateway URL for SMS notices; bearer token from PATRONKIT_SMS_TOKEN (default: written to files under -data/outbox)"),
	}
}

// notifiers builds the email and SMS notifiers: the servers the flags
// name, or else the outbox folder under data, where each notice is a file
// a newcomer can read.
func (ch *channels) notifiers(data string) (email, sms circulation.Notifier, err error) {
	outbox := filepath.Join(data, "outbox")
	email, sms = folder(outbox), folder(outbox)
	if ch == nil {
		return email, sms, nil
	}
	if *ch.smtp != "" {
		host, port, err := net.SplitHostPort(*ch.smtp)
		if err != nil {
			return nil, nil, fmt.Errorf("-smtp %q: %w", *ch.smtp, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, nil, fmt.Errorf("-smtp %q: bad port", *ch.smtp)
		}
		email = &notify.SMTP{Host: host, Port: p, From: *ch.from, TLS: *ch.tls,
			Username: os.Getenv("PATRONKIT_SMTP_USER"), Password: os.Getenv("PATRONKIT_SMTP_PASSWORD")}
	}
	if *ch.smsURL != "" {
		sms = &notify.SMSGateway{URL: *ch.smsURL, Token: os.Getenv("PATRONKIT_SMS_TOKEN"), From: "DEMO LIB"}
	}
	return email, sms, nil
}

// folder is a notifier that writes each message to a file in dir.
func folder(dir string) circulation.Notifier {
	return circulation.NotifierFunc(func(_ context.Context, m circulation.Message) error {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
		name := fmt.Sprintf("%s-%s-%s.txt", time.Now().UTC().Format("20060102-150405"), m.Channel, m.Notice.ID)
		text := fmt.Sprintf("To: %s (%s)\nSubject: %s\n\n%s", m.To, m.Channel, m.Subject, strings.TrimLeft(m.Body, "\n"))
		return os.WriteFile(filepath.Join(dir, name), []byte(text), 0o640)
	})
}
