package sip2_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sip2"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

func TestClientChecksumVectors(t *testing.T) {
	for msg, want := range map[string]string{"990 402.00AY1AZ": "FCB4", "941AY0AZ": "FDFD"} {
		if got := sipSum([]byte(msg)); got != want {
			t.Errorf("sipSum(%q) = %s, want %s", msg, got, want)
		}
	}
}

func TestFramingAndErrors(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k, func(o *sip2.Options) { o.MaxMessageBytes = 4096 })
		ks := f.signedIn(t, kioskID)
		other := f.signedIn(t, kioskID)

		// Sequence numbers wrap 0-9, each answer echoing the request's.
		for i := range 13 {
			want := ks.seq
			rp := ks.send(scStatus())
			if rp.code != "98" || !rp.sum || rp.seq != string(rune('0'+want)) {
				t.Fatalf("message %d (AY%d): %q seq %q", i, want, rp.raw, rp.seq)
			}
		}
		// A bad checksum: 96; then 97 asks for the last answer again.
		last := ks.send(patronStatus(inst, "alice", patronPW))
		bad := ks.frame(scStatus())
		bad[len(bad)-2] ^= 1
		ks.writeRaw(bad)
		if rp := ks.read(); rp.code != "96" {
			t.Fatalf("bad checksum: %q", rp.raw)
		}
		ks.sums = false
		if rp := ks.send("97"); rp.raw != last.raw {
			t.Errorf("resend: %q, want %q", rp.raw, last.raw)
		}
		ks.sums = true
		// Unknown commands, truncated messages and garbage: 96, the
		// connection serving on; hold (15) is refused in its own answer.
		for _, m := range [][]byte{[]byte("XY\r"), []byte("55whatever|\r"), []byte("2300\r"), []byte("23001" + sipNow() + "AOUNI|AAal\x00ice|AD1234|\r"), {0xff, 0xfe, 0x00, 0x01, '\r'}, []byte("\r")} {
			ks.writeRaw(m)
			if rp := ks.read(); rp.code != "96" {
				t.Errorf("%q: %q", m, rp.raw)
			}
		}
		if rp := ks.send("15+" + sipNow() + "AO" + inst + "|AAalice|"); rp.code != "16" || rp.fixed[0] != '0' || rp.f("AF") == "" {
			t.Errorf("hold: %q", rp.raw)
		}
		// A 1 MiB line is dropped and answered 96.
		ks.writeRaw(append(bytes.Repeat([]byte("A"), 1<<20), '\r'))
		if rp := ks.read(); rp.code != "96" {
			t.Errorf("1 MiB line: %q", rp.raw)
		}
		// CR LF is accepted.
		m := ks.frame(scStatus())
		ks.writeRaw(append(m, '\n'))
		if rp := ks.read(); rp.code != "98" {
			t.Errorf("CR LF: %q", rp.raw)
		}
		ks.seq++
		// A slow client sends half a message; another kiosk is served
		// meanwhile; then the rest arrives.
		half := ks.frame(patronStatus(inst, "alice", patronPW))
		ks.writeRaw(half[:10])
		if rp := other.send(scStatus()); rp.code != "98" {
			t.Errorf("the other kiosk: %q", rp.raw)
		}
		ks.writeRaw(half[10:])
		if rp := ks.read(); rp.code != "24" || rp.f("CQ") != "Y" {
			t.Errorf("the slow message: %q", rp.raw)
		}
		// A client that leaves mid-message.
		gone := dial(t, f.addr)
		gone.writeRaw([]byte("9300CNkio"))
		gone.nc.Close()
		if rp := other.send(scStatus()); rp.code != "98" {
			t.Errorf("after a client left: %q", rp.raw)
		}
		// Without checksums, answers carry none.
		other.sums = false
		if rp := other.send(scStatus()); rp.code != "98" || rp.sum {
			t.Errorf("a message without a checksum: %q (sum %v)", rp.raw, rp.sum)
		}
	})
}

func TestAccountSettings(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		for _, id := range []string{"kiosk-850", "kiosk-latin1", "kiosk-utc"} {
			patronkittest.User(t, k, inst, func(u *patron.User) {
				u.PrimaryID, u.RecordType, u.PINNumber = id, patron.RecordStaff, kioskPW
			})
			if err := k.Access.AssignRole(context.Background(), inst, id, "circulation-desk-operator", "*"); err != nil {
				t.Fatal(err)
			}
		}
		f := setup(t, k, func(o *sip2.Options) {
			o.Accounts = map[string]sip2.Settings{
				"KIOSK-850":    {Charset: sip2.CP850, Checksums: sip2.ChecksumsOn},
				"kiosk-latin1": {Charset: sip2.Latin1, Checksums: sip2.ChecksumsOff},
				"kiosk-utc":    {UTC: true, Institution: "UNI-MAIN", Library: "SCIENCE", EmptyPIN: true},
			}
		})
		søren := patronkittest.User(t, k, inst, func(u *patron.User) {
			u.PrimaryID, u.FirstName, u.LastName, u.PINNumber = "søren", "Søren Åge", "Kierkegård-Müller", "8642"
		})
		book := f.item(t, "MAIN", func(it *circulation.Item) { it.Title = "Enten – Eller: Æstetik" })

		for _, c := range []struct {
			id string
			cm *charmap.Charmap
		}{{"kiosk-850", charmap.CodePage850}, {"kiosk-latin1", charmap.ISO8859_1}} {
			ks := dial(t, f.addr)
			if rp := ks.send(login(c.id, kioskPW, "MAIN")); rp.fixed != "1" {
				t.Fatalf("%s login: %q", c.id, rp.raw)
			}
			ks.charset = c.cm
			rp := ks.send(patronInfo(inst, søren.PrimaryID, "8642", -1, 0, 0))
			if rp.f("AE") != "Søren Åge Kierkegård-Müller" || rp.f("AA") != "søren" || rp.f("CQ") != "Y" {
				t.Errorf("%s: patron information %q", c.id, rp.raw)
			}
			co := ks.send(checkout(inst, søren.PrimaryID, "8642", book.Barcode))
			// The dash has no place in either set: "?".
			if co.fixed[0] != '1' || co.f("AJ") != "Enten ? Eller: Æstetik" {
				t.Errorf("%s: check-out %q", c.id, co.raw)
			}
			if rp := ks.send(checkin(inst, book.Barcode)); rp.fixed[0] != '1' {
				t.Errorf("%s: check-in %q", c.id, rp.raw)
			}
			switch c.id {
			case "kiosk-850":
				// Checksums required: a message without is answered 96.
				ks.sums = false
				if rp := ks.send(scStatus()); rp.code != "96" {
					t.Errorf("CP850 kiosk without a checksum: %q", rp.raw)
				}
			case "kiosk-latin1":
				// Checksums off: a wrong one is ignored, none sent.
				m := ks.frame(scStatus())
				m[len(m)-2] ^= 1
				ks.writeRaw(m)
				if rp := ks.read(); rp.code != "98" || rp.sum {
					t.Errorf("Latin-1 kiosk, checksums off: %q", rp.raw)
				}
			}
		}

		// UTC dates, the account's AO, its library, no PIN asked.
		ks := dial(t, f.addr)
		if rp := ks.send(login("kiosk-utc", kioskPW, "")); rp.fixed != "1" {
			t.Fatalf("login: %q", rp.raw)
		}
		st := ks.send(scStatus())
		if st.f("AN") != "SCIENCE" || st.f("AO") != "UNI-MAIN" || st.fixed[12:16] != "2026" || st.fixed[20:24] != "   Z" {
			t.Errorf("SC status: %q", st.raw)
		}
		if rp := ks.send(checkout("OTHER", "nobody", "", book.Barcode)); rp.fixed[0] != '0' || rp.f("AO") != "UNI-MAIN" {
			t.Errorf("a refusal's AO: %q", rp.raw)
		}
		co := ks.send(checkout("OTHER", søren.PrimaryID, "", book.Barcode))
		if co.fixed[0] != '1' || co.f("AO") != "UNI-MAIN" || !strings.Contains(co.f("AH"), "   Z") {
			t.Errorf("check-out without a PIN: %q", co.raw)
		}
	})
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k, func(o *sip2.Options) { o.IdleTimeout = 200 * time.Millisecond })
		ks := f.signedIn(t, kioskID)
		ks.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := ks.r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("an idle connection: %v, want EOF", err)
		}
	})
}

func TestShutdownWithKitClose(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		f := setup(t, k)
		ks := f.signedIn(t, kioskID)
		k.Close()
		ks.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := ks.r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("a connection after Close: %v, want EOF", err)
		}
		if nc, err := net.DialTimeout("tcp", f.addr, 5*time.Second); err == nil {
			nc.Close()
			t.Errorf("the server still accepts connections after Close")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := f.srv.Serve(ln); !errors.Is(err, sip2.ErrServerClosed) {
			t.Errorf("Serve after Shutdown: %v", err)
		}
	})
}

func TestTLS(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		cert, pool := selfSigned(t)
		f := setup(t, k, func(o *sip2.Options) { o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}} })
		ks := dialTLS(t, f.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if rp := ks.send(login(kioskID, kioskPW, "MAIN")); rp.fixed != "1" {
			t.Fatalf("login over TLS: %q", rp.raw)
		}
		if rp := ks.send(patronStatus(inst, "alice", patronPW)); rp.f("CQ") != "Y" {
			t.Errorf("patron status over TLS: %q", rp.raw)
		}
		// A plain connection is not served.
		plain := dial(t, f.addr)
		plain.writeRaw(plain.frame(login(kioskID, kioskPW, "MAIN")))
		plain.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		if line, err := plain.r.ReadString('\r'); err == nil {
			t.Errorf("a plain connection was answered: %q", line)
		}
	})
}

// selfSigned makes a certificate for 127.0.0.1 and the pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sip2 test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// Shutdown lets a connection finish the message it is answering (here,
// an item the host's catalog is slow to describe), closes the idle ones
// at once, and returns once all are closed.
func TestShutdownFinishesTheMessageInFlight(t *testing.T) {
	var started, release chan struct{}
	slowCatalog := func(c *patronkit.Config) {
		c.Items = circulation.ItemLookupFunc(func(ctx context.Context, inst, barcode string) (*circulation.Item, error) {
			if barcode != "SLOW-1" {
				return nil, &fault.Error{Kind: fault.NotFound, Detail: "no such item"}
			}
			close(started)
			<-release
			return &circulation.Item{Barcode: "SLOW-1", Title: "Slowly described", Library: "MAIN"}, nil
		})
	}
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		started, release = make(chan struct{}), make(chan struct{})
		f := setup(t, k)
		busy := f.signedIn(t, kioskID)
		idle := f.signedIn(t, kioskID)
		busy.writeRaw(busy.frame(itemInfo(inst, "SLOW-1")))
		<-started
		done := make(chan error, 1)
		go func() { done <- f.srv.Shutdown(context.Background()) }()
		idle.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := idle.r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("the idle connection at shutdown: %v, want EOF", err)
		}
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned (%v) before the message in flight was answered", err)
		default:
		}
		close(release)
		if rp := busy.read(); rp.code != "18" || rp.f("AJ") != "Slowly described" {
			t.Errorf("the message in flight: %q", rp.raw)
		}
		busy.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := busy.r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("the busy connection after its answer: %v, want EOF", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}, slowCatalog)
}
