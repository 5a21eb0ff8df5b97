package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sip2"
	"github.com/patronkit/patronkit/patron"
)

// sip2Ops name the operations of the SIP2 workload.
var sip2Ops = [nOps]string{"SIP2 check-out", "SIP2 check-in"}

// The load kiosk's account: a staff user with a password, circulation
// desk operator in every library.
const (
	kioskAccount  = "load-kiosk"
	kioskPassword = "load-kiosk-password"
)

// serveSIP2 starts the SIP2 server on a loopback port with the load
// kiosk's account, which lets patrons through without a PIN
// (Settings.EmptyPIN): as the desk's bearer token stands for a host's
// session, so that circulation is measured, not PIN hashing. Kit.Close
// stops it.
func serveSIP2(ctx context.Context, kit *patronkit.Kit, inst string) (string, error) {
	ctx = patron.WithActor(ctx, patron.Actor{Institution: inst, ID: "system:circload"})
	u := &patron.User{PrimaryID: kioskAccount, FirstName: "Self-check", LastName: "Kiosk", RecordType: patron.RecordStaff,
		UserGroup: "STAFF", Status: patron.StatusActive, PINNumber: kioskPassword}
	if _, err := kit.Patrons.Create(ctx, inst, u); err != nil {
		return "", err
	}
	if err := kit.Access.AssignRole(ctx, inst, kioskAccount, "circulation-desk-operator", "*"); err != nil {
		return "", err
	}
	srv, err := sip2.Listen(kit, "127.0.0.1:0", &sip2.Options{Institution: inst,
		Accounts: map[string]sip2.Settings{kioskAccount: {EmptyPIN: true}}})
	if err != nil {
		return "", err
	}
	return srv.Addr().String(), nil
}

// kioskConn is one client's SIP2 connection, signed in.
type kioskConn struct {
	nc  net.Conn
	r   *bufio.Reader
	seq int
}

// sipDate is now as a SIP2 date, local time.
func sipDate() string {
	now := time.Now()
	return now.Format("20060102") + "    " + now.Format("150405")
}

// roundTrip sends msg with its sequence number and checksum and reads the
// answer (checked).
func (k *kioskConn) roundTrip(ctx context.Context, msg string) (string, error) {
	msg += fmt.Sprintf("AY%dAZ", k.seq)
	k.seq = (k.seq + 1) % 10
	sum := 0
	for _, c := range []byte(msg) {
		sum += int(c)
	}
	msg += fmt.Sprintf("%04X\r", (-sum)&0xFFFF)
	deadline := time.Now().Add(time.Minute)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	k.nc.SetDeadline(deadline)
	if _, err := k.nc.Write([]byte(msg)); err != nil {
		return "", err
	}
	line, err := k.r.ReadString('\r')
	return strings.TrimSuffix(line, "\r"), err
}

// kiosk is the client's SIP2 connection, dialled and signed in at the
// first use (not measured).
func (c *client) kiosk(ctx context.Context) (*kioskConn, error) {
	if c.sip != nil {
		return c.sip, nil
	}
	nc, err := net.Dial("tcp", c.d.sip2Addr)
	if err != nil {
		return nil, err
	}
	k := &kioskConn{nc: nc, r: bufio.NewReader(nc)}
	got, err := k.roundTrip(ctx, "9300CN"+kioskAccount+"|CO"+kioskPassword+"|CP"+libraryCode+"|")
	if err != nil || !strings.HasPrefix(got, "941") {
		nc.Close()
		return nil, fmt.Errorf("kiosk login: %q %v", got, err)
	}
	c.sip = k
	return k, nil
}

// sipDo runs one SIP2 operation (a check-out of item to who, or a
// check-in of item) and times it; an answer that is not ok counts as an
// error.
func (c *client) sipDo(ctx context.Context, op int, item, who string) (time.Duration, bool) {
	k, err := c.kiosk(ctx)
	if err != nil {
		c.fail(op, item, 0, err.Error())
		return 0, false
	}
	msg, want := "09N"+sipDate()+sipDate()+"AP"+libraryCode+"|AO|AB"+item+"|AC|", "101"
	if op == opOut {
		msg, want = "11NN"+sipDate()+strings.Repeat(" ", 18)+"AO|AA"+who+"|AB"+item+"|AC|AD|", "121"
	}
	start := time.Now()
	got, err := k.roundTrip(ctx, msg)
	took := time.Since(start)
	if err != nil {
		if ctx.Err() == nil {
			c.fail(op, item, 0, err.Error())
		}
		k.nc.Close()
		c.sip = nil
		return 0, false
	}
	if !strings.HasPrefix(got, want) {
		c.fail(op, item, 0, got)
		return 0, false
	}
	return took, true
}
