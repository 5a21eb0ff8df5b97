// Package sip2 serves self-check kiosks, sorters and other machines that
// speak 3M's Standard Interchange Protocol 2.00 (SIP2) over TCP: a kiosk
// signs in as a staff account, then lends, takes back and renews items,
// answers patrons about their account and takes fee payments, through the
// same circulation, patron and account services as the HTTP API.
//
// What a kiosk may do is decided by the kit's access policies on the same
// actions as the HTTP API (loans.checkout, fees.pay...), by the roles its
// staff account holds in the library its login names (CP, or
// Settings.Library): a kiosk whose account may not lend gets a refusal
// with a screen message. Lending and renewing also need the roles in the
// item's library, as at the desk. Everything a kiosk does is on the audit
// trail with the way in "sip2 <command> <account>" and the account as the
// actor. Wrong kiosk passwords and wrong patron PINs count toward the same
// lockout as HTTP sign-ins (patron.Service.SignIn), the kiosk's address
// being the source.
//
// Each account chooses its character set (UTF-8, CP850, ISO-8859-1),
// whether messages carry checksums, whether dates are in the library's
// local time or UTC, the institution id (AO) answered, and whether an
// empty patron PIN passes (Settings). A Server is started with Listen or
// Serve and stopped with Shutdown, or with Kit.Close when it was given
// the kit (Listen registers it).
package sip2

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/internal/keys"
)

// Checksums says whether an account's messages carry error detection
// (the sequence number AY and the checksum AZ).
type Checksums string

const (
	// ChecksumsAuto checks a message's checksum when it has one and
	// answers with one when the message had one. The default.
	ChecksumsAuto Checksums = ""
	// ChecksumsOn requires a checksum on every message (one without is
	// answered 96) and sends one on every answer.
	ChecksumsOn Checksums = "on"
	// ChecksumsOff ignores AY and AZ and never sends them.
	ChecksumsOff Checksums = "off"
)

// Settings are what a kiosk's account chooses about the protocol.
type Settings struct {
	// Checksums: ChecksumsAuto (default), ChecksumsOn or ChecksumsOff.
	Checksums Checksums
	// Charset is UTF8 (default), CP850 or Latin1: what the kiosk sends
	// and reads. Checksums are over the bytes in it.
	Charset string
	// UTC sends dates in UTC (zone "   Z"); by default they are in the
	// local time of the kiosk's library, with a blank zone, which most
	// kiosks expect.
	UTC bool
	// Institution is the institution id (AO) answered; by default the
	// one the kiosk sent.
	Institution string
	// Library is the kiosk's library when its login names none (CP);
	// when both are given, CP wins.
	Library string
	// EmptyPIN lets a patron whose PIN the kiosk does not send (an empty
	// AD) through, for kiosks without a PIN pad. Default: an empty AD is
	// a wrong PIN (CQ N), though it is not counted toward the lockout.
	EmptyPIN bool
	// Currency is the currency (BH) of the amounts of a fee payment that
	// names none; by default the patron's first currency owed, or USD.
	Currency string
}

// Options configures a Server.
type Options struct {
	// Institution is the code of the institution whose patrons, items
	// and staff accounts the server serves. Required.
	Institution string
	// Default are the settings of an account not in Accounts, and those
	// a connection uses until it signs in.
	Default Settings
	// Accounts are the settings of kiosk accounts, by primary_id
	// (whatever its case).
	Accounts map[string]Settings
	// IdleTimeout closes a connection that sends nothing for that long.
	// Kiosks poll with SC status every five to seven minutes; the
	// default, 15 minutes, leaves them room.
	IdleTimeout time.Duration
	// TLS, when set, serves over TLS with it.
	TLS *tls.Config
	// MaxMessageBytes is the longest message read: a longer one is
	// dropped and answered 96. Default: 64 KiB.
	MaxMessageBytes int
	// ShutdownTimeout is how long Kit.Close lets the connections finish
	// the message they are answering. Default: 10 seconds.
	ShutdownTimeout time.Duration
	// Logger receives the server's logs. Default: the kit's logger.
	Logger *slog.Logger
	// PatronSession is how long a connection takes again, for the same
	// patron, a PIN it checked right (kiosks send the PIN with every
	// message of a patron's visit) without checking it anew. A wrong
	// PIN, another patron, an end session (35) or a new login end it, so
	// every wrong PIN still counts toward the lockout. Default: 3
	// minutes; negative: every message checks its PIN.
	PatronSession time.Duration
}

// Server answers SIP2 connections for a kit. It is safe for concurrent
// use; each connection is served by a goroutine of its own.
type Server struct {
	kit  *patronkit.Kit
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*conn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup

	// pinKey keys the MACs of the PINs connections checked (verified).
	pinKey []byte
}

// New returns a server for kit. It checks opts and serves nothing until
// Serve or Listen.
func New(kit *patronkit.Kit, opts *Options) (*Server, error) {
	if kit == nil || opts == nil || strings.TrimSpace(opts.Institution) == "" {
		return nil, errors.New("sip2: New needs a kit and Options with an Institution")
	}
	o := *opts
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 15 * time.Minute
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 64 << 10
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.PatronSession == 0 {
		o.PatronSession = 3 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = kit.Logger
	}
	accounts := map[string]Settings{}
	for id, s := range o.Accounts {
		accounts[keys.Fold(id)] = s
	}
	o.Accounts = accounts
	for id, s := range o.Accounts {
		if err := s.check(); err != nil {
			return nil, fmt.Errorf("sip2: the settings of account %s: %w", id, err)
		}
	}
	if err := o.Default.check(); err != nil {
		return nil, fmt.Errorf("sip2: the default settings: %w", err)
	}
	pinKey := make([]byte, 32)
	if _, err := rand.Read(pinKey); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{kit: kit, opts: o, log: o.Logger, ctx: ctx, cancel: cancel, conns: map[*conn]struct{}{}, pinKey: pinKey}, nil
}

func (s Settings) check() error {
	switch s.Charset {
	case "", UTF8, CP850, Latin1:
	default:
		return fmt.Errorf("charset %q is not one of %s, %s, %s", s.Charset, UTF8, CP850, Latin1)
	}
	switch s.Checksums {
	case ChecksumsAuto, ChecksumsOn, ChecksumsOff:
	default:
		return fmt.Errorf("checksums %q is not on, off or empty", s.Checksums)
	}
	return nil
}

// settingsOf are the settings of the account primaryID.
func (s *Server) settingsOf(primaryID string) Settings {
	if st, ok := s.opts.Accounts[keys.Fold(primaryID)]; ok {
		return st
	}
	return s.opts.Default
}

// Listen starts a server for kit on addr (host:port) and returns it once
// it accepts connections; Kit.Close shuts it down (see Shutdown).
func Listen(kit *patronkit.Kit, addr string, opts *Options) (*Server, error) {
	s, err := New(kit, opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	kit.OnClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			s.log.Warn("sip2: connections closed before they finished", "error", err)
		}
	})
	ln, err = s.listen(ln)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := s.serve(ln); err != nil && !errors.Is(err, ErrServerClosed) {
			s.log.Error("sip2: serving stopped", "error", err)
		}
	}()
	return s, nil
}

// Addr is the address the server listens on, once it serves.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// ErrServerClosed is what Serve returns once Shutdown was called.
var ErrServerClosed = errors.New("sip2: server closed")

// Serve accepts connections on ln (wrapped in TLS when Options.TLS is
// set) and serves each in a goroutine until Shutdown; then it returns
// ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if ln == nil {
		return errors.New("sip2: Serve needs a listener")
	}
	ln, err := s.listen(ln)
	if err != nil {
		return err
	}
	return s.serve(ln)
}

// listen takes ln as the server's listener, in TLS when asked.
func (s *Server) listen(ln net.Listener) (net.Listener, error) {
	if s.opts.TLS != nil {
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		ln.Close()
		return nil, ErrServerClosed
	}
	s.ln = ln
	return ln, nil
}

// serve accepts connections on ln until Shutdown.
func (s *Server) serve(ln net.Listener) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			c.serve()
		}()
	}
}

// Shutdown stops accepting connections, lets each connection finish the
// message it is answering and closes it, and waits for them until ctx
// ends; then it closes those left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.wake()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// source is the sign-in source of a connection: the peer's address, an
// IPv6 one cut to its /64 network, as the HTTP API counts its clients.
func source(addr net.Addr) string {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return "sip2 " + addr.String()
	}
	a := ap.Addr().Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// conn is one kiosk's connection.
type conn struct {
	s   *Server
	nc  net.Conn
	src string

	// What the connection signed in as (93), and settings.
	account  string
	library  string
	settings Settings
	loc      *time.Location
	// last is the last answer sent, for 97.
	last []byte
	// verified is the patron whose PIN the connection checked right
	// last, until the patron session ends.
	verified verifiedPIN
}

// verifiedPIN is a patron's PIN a connection checked right: the patron,
// a MAC of the PIN (never the PIN), and when it stops counting.
type verifiedPIN struct {
	patron string
	mac    []byte
	until  time.Time
}

// pinMAC is the MAC of a patron's PIN under the server's key.
func (c *conn) pinMAC(primaryID, pin string) []byte {
	m := hmac.New(sha256.New, c.s.pinKey)
	m.Write([]byte(keys.Fold(primaryID)))
	m.Write([]byte{0})
	m.Write([]byte(pin))
	return m.Sum(nil)
}

// pinVerified tells whether pin is the PIN of the patron primaryID the
// connection checked right within the patron session.
func (c *conn) pinVerified(primaryID, pin string) bool {
	v := c.verified
	return v.mac != nil && keys.Fold(v.patron) == keys.Fold(primaryID) && c.s.kit.Now().Before(v.until) &&
		hmac.Equal(v.mac, c.pinMAC(primaryID, pin))
}

// rememberPIN keeps the patron's PIN checked right for the patron
// session; forgetPIN ends it.
func (c *conn) rememberPIN(primaryID, pin string) {
	if c.s.opts.PatronSession < 0 {
		return
	}
	c.verified = verifiedPIN{patron: primaryID, mac: c.pinMAC(primaryID, pin), until: c.s.kit.Now().Add(c.s.opts.PatronSession)}
}

func (c *conn) forgetPIN() { c.verified = verifiedPIN{} }

func (s *Server) newConn(nc net.Conn) *conn {
	return &conn{s: s, nc: nc, src: source(nc.RemoteAddr()), settings: s.opts.Default, loc: time.UTC}
}

// wake makes an idle connection's read return, so that it closes.
func (c *conn) wake() {
	c.nc.SetReadDeadline(time.Now())
}

// serve reads messages and answers each until the kiosk goes, the
// connection stays idle too long, or the server shuts down.
func (c *conn) serve() {
	defer c.nc.Close()
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("sip2: a connection failed", "panic", p, "remote", c.nc.RemoteAddr().String())
		}
	}()
	r := bufio.NewReaderSize(c.nc, 4096)
	max := c.s.opts.MaxMessageBytes
	buf := make([]byte, 0, 512)
	for {
		if c.s.closing.Load() {
			return
		}
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout))
		if c.s.closing.Load() {
			return
		}
		buf = buf[:0]
		tooLong := false
		for {
			chunk, err := r.ReadSlice('\r')
			if len(buf)+len(chunk) > max+1 {
				tooLong = true
				buf = buf[:0]
			} else if !tooLong {
				buf = append(buf, chunk...)
			}
			if err == nil {
				break
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			return // gone, idle, or shutting down
		}
		msg := strings.TrimRight(strings.TrimLeft(string(buf), "\n"), "\r\n")
		var out []byte
		if tooLong {
			out = c.resend()
		} else {
			out = c.answer([]byte(msg))
		}
		if out != nil {
			c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.IdleTimeout))
			if _, err := c.nc.Write(out); err != nil {
				return
			}
		}
	}
}
