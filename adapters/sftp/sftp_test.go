package sftp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sftpclient "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/adapters/sqldb"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron/sis"
)

const (
	testSFTPUser     = "sis-feed"
	testSFTPPassword = "correct horse"
)

// sftpTestServer is an SSH server on loopback that serves the sftp
// subsystem over a temporary folder, for one user who may sign in with a
// password or a key.
type sftpTestServer struct {
	addr    string
	root    string        // the folder served; the user's login folder
	hostKey ssh.PublicKey // the server's ed25519 key (it also holds an ECDSA one)
	userKey []byte        // PEM private key the server accepts

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup

	// dropAfter, when not 0, is an SFTP request type: the next connection
	// that asks for one has it carried out, and is dropped instead of
	// answered.
	dropAfter atomic.Uint32
}

func newSFTPTestServer(t *testing.T) *sftpTestServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	userPub, userPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(userPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	userSSHPub, err := ssh.NewPublicKey(userPub)
	if err != nil {
		t.Fatal(err)
	}

	config := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			if c.User() == testSFTPUser && string(password) == testSFTPPassword {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == testSFTPUser && bytes.Equal(key.Marshal(), userSSHPub.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	config.AddHostKey(hostSigner)
	// A second host key, of a type clients prefer to ed25519, as servers
	// commonly hold several: a client that trusts the ed25519 key must ask
	// for it.
	ecdsaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaSigner, err := ssh.NewSignerFromKey(ecdsaKey)
	if err != nil {
		t.Fatal(err)
	}
	config.AddHostKey(ecdsaSigner)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sftpTestServer{
		addr:    ln.Addr().String(),
		root:    t.TempDir(),
		hostKey: hostSigner.PublicKey(),
		userKey: pem.EncodeToMemory(block),
	}
	s.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(nc, config) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.dropConnections()
		s.wg.Wait()
	})
	return s
}

// dropConnections cuts every connection, as a server restart or an idle
// timeout would.
func (s *sftpTestServer) dropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *sftpTestServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *sftpTestServer) serve(nc net.Conn, config *ssh.ServerConfig) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, config)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, requests, err := nch.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() {
			defer ch.Close()
			for req := range requests {
				// The subsystem request's payload is the name, SSH-string
				// encoded.
				if req.Type != "subsystem" || len(req.Payload) < 4 || string(req.Payload[4:]) != "sftp" {
					req.Reply(false, nil)
					continue
				}
				req.Reply(true, nil)
				go ssh.DiscardRequests(requests)
				server, err := sftpclient.NewServer(&answerDropper{ReadWriteCloser: ch, srv: s, nc: nc}, sftpclient.WithServerWorkingDirectory(s.root))
				if err != nil {
					return
				}
				server.Serve()
				server.Close()
				return
			}
		})
	}
}

// answerDropper is an SFTP session's stream as the server sees it. It
// follows the requests that come in, and when one is of the type the
// server's dropAfter names, the connection is dropped at the server's next
// answer: the request was carried out, and the client never hears of it.
type answerDropper struct {
	io.ReadWriteCloser
	srv *sftpTestServer
	nc  net.Conn

	mu    sync.Mutex
	head  []byte // the length and type of the request coming in
	skip  uint32 // what is left of the request coming in
	armed bool
}

func (d *answerDropper) Read(p []byte) (int, error) {
	n, err := d.ReadWriteCloser.Read(p)
	d.mu.Lock()
	defer d.mu.Unlock()
	for b := p[:n]; len(b) > 0; {
		if d.skip > 0 {
			k := min(uint32(len(b)), d.skip)
			d.skip -= k
			b = b[k:]
			continue
		}
		d.head = append(d.head, b[0])
		b = b[1:]
		if len(d.head) == 5 {
			if typ := uint32(d.head[4]); typ != 0 && d.srv.dropAfter.CompareAndSwap(typ, 0) {
				d.armed = true
			}
			d.skip = max(binary.BigEndian.Uint32(d.head), 1) - 1
			d.head = d.head[:0]
		}
	}
	return n, err
}

func (d *answerDropper) Write(p []byte) (int, error) {
	d.mu.Lock()
	armed := d.armed
	d.mu.Unlock()
	if armed {
		d.nc.Close()
		return 0, net.ErrClosed
	}
	return d.ReadWriteCloser.Write(p)
}

// resettableConn is the client's side of a connection that a test resets
// as a server does, at the moment the client has not noticed yet: its
// writes fail with "connection reset by peer" while its reads still wait.
type resettableConn struct {
	net.Conn
	reset atomic.Bool
}

func (c *resettableConn) Write(p []byte) (int, error) {
	if c.reset.Load() {
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", syscall.ECONNRESET)}
	}
	return c.Conn.Write(p)
}

// resettable makes src's connections resettable; the function returned
// resets those made so far.
func resettable(src *Source) (reset func()) {
	var mu sync.Mutex
	var conns []*resettableConn
	src.dialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := &resettableConn{Conn: nc}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		return c, nil
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.reset.Store(true)
		}
	}
}

// put writes a file on the server with a modification time.
func (s *sftpTestServer) put(t *testing.T, name, content string, mod time.Time) {
	t.Helper()
	p := filepath.Join(s.root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func (s *sftpTestServer) config() Config {
	return Config{
		Addr:    s.addr,
		User:    testSFTPUser,
		HostKey: s.hostKey,
		Dir:     "inbox",
		Timeout: 10 * time.Second,
	}
}

func newSFTP(t *testing.T, cfg Config) *Source {
	t.Helper()
	src, err := New("campus-sftp", cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func TestSFTPListOpenDoneWithPasswordAndWithKey(t *testing.T) {
	srv := newSFTPTestServer(t)
	withPassword := srv.config()
	withPassword.Password = testSFTPPassword
	withKey := srv.config()
	withKey.PrivateKey = srv.userKey
	withBoth := srv.config()
	withBoth.Password = testSFTPPassword
	withBoth.PrivateKey = srv.userKey

	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"password", withPassword}, {"key", withKey}, {"both", withBoth}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			base := time.Now().Add(-time.Hour).Truncate(time.Second)
			srv.put(t, "inbox/b.xml", "bee", base)
			srv.put(t, "inbox/a.xml", "ay", base) // same time as b: by name
			srv.put(t, "inbox/old.csv", "old", base.Add(-time.Minute))
			srv.put(t, "inbox/new.zip", "new", base.Add(time.Minute))
			// Still being written, hidden, or in a subfolder.
			srv.put(t, "inbox/c.xml.part", "partial", base.Add(-time.Hour))
			srv.put(t, "inbox/d.xml.tmp", "partial", base.Add(-time.Hour))
			srv.put(t, "inbox/.e.xml", "hidden", base.Add(-time.Hour))
			srv.put(t, "inbox/sub/f.xml", "nested", base.Add(-time.Hour))

			src := newSFTP(t, tc.cfg)
			if src.Name() != "campus-sftp" {
				t.Errorf("Name = %q", src.Name())
			}
			files, err := src.List(ctx)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var names []string
			for _, f := range files {
				names = append(names, f.Name)
			}
			if want := []string{"old.csv", "a.xml", "b.xml", "new.zip"}; !slices.Equal(names, want) {
				t.Fatalf("List = %v, want %v", names, want)
			}
			if files[2].Size != 3 || !files[2].ModTime.Equal(base) {
				t.Errorf("b.xml listed as %+v, want size 3 and %v", files[2], base)
			}
			if got := readSourceFile(t, src, "b.xml"); got != "bee" {
				t.Errorf("Open b.xml read %q", got)
			}

			for _, name := range []string{"old.csv", "a.xml", "new.zip"} {
				if err := src.Done(ctx, name, true); err != nil {
					t.Fatalf("Done %s: %v", name, err)
				}
			}
			if err := src.Done(ctx, "b.xml", false); err != nil {
				t.Fatalf("Done b.xml: %v", err)
			}
			if names := listedSourceNames(t, src); len(names) != 0 {
				t.Errorf("after Done List = %v", names)
			}
			for p, want := range map[string]string{
				"inbox/processed/a.xml": "ay", "inbox/processed/old.csv": "old",
				"inbox/processed/new.zip": "new", "inbox/failed/b.xml": "bee",
			} {
				b, err := os.ReadFile(filepath.Join(srv.root, p))
				if err != nil || string(b) != want {
					t.Errorf("%s = %q, %v; want %q", p, b, err, want)
				}
			}
			// Left for the next test: clear the folder.
			if err := os.RemoveAll(filepath.Join(srv.root, "inbox")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSFTPDoneNeverOverwritesAndSpotsATakenFile(t *testing.T) {
	srv := newSFTPTestServer(t)
	cfg := srv.config()
	cfg.Password = testSFTPPassword
	cfg.ProcessedDir = "archive/ok"
	cfg.FailedDir = "archive/bad"
	a := newSFTP(t, cfg)
	b := newSFTP(t, cfg)
	ctx := context.Background()

	for _, content := range []string{"first", "second", "third"} {
		srv.put(t, "inbox/users.xml", content, time.Now())
		if err := a.Done(ctx, "users.xml", true); err != nil {
			t.Fatalf("Done (%s): %v", content, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(srv.root, "archive/ok"))
	if err != nil {
		t.Fatal(err)
	}
	contents := map[string]bool{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(srv.root, "archive/ok", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		contents[string(data)] = true
		if !strings.HasPrefix(e.Name(), "users") || filepath.Ext(e.Name()) != ".xml" {
			t.Errorf("moved aside as %s", e.Name())
		}
	}
	if len(entries) != 3 || !contents["first"] || !contents["second"] || !contents["third"] {
		t.Errorf("archive/ok holds %d files with %v, want first, second and third", len(entries), contents)
	}

	// Another instance already moved the file.
	srv.put(t, "inbox/people.csv", "p", time.Now())
	if err := a.Done(ctx, "people.csv", false); err != nil {
		t.Fatal(err)
	}
	if err := b.Done(ctx, "people.csv", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Done = %v, want an fs.ErrNotExist", err)
	}
	if data, err := os.ReadFile(filepath.Join(srv.root, "archive/bad/people.csv")); err != nil || string(data) != "p" {
		t.Errorf("archive/bad/people.csv = %q, %v", data, err)
	}
}

func TestSFTPRefusesBadNames(t *testing.T) {
	srv := newSFTPTestServer(t)
	srv.put(t, "secret.xml", "outside the folder", time.Now())
	srv.put(t, "inbox/.hidden", "h", time.Now())
	srv.put(t, "inbox/half.xml.part", "p", time.Now())
	srv.put(t, "inbox/sub/x.xml", "x", time.Now())
	cfg := srv.config()
	cfg.Password = testSFTPPassword
	src := newSFTP(t, cfg)
	ctx := context.Background()
	for _, name := range []string{"", ".", "..", "../secret.xml", "sub/x.xml", "/etc/passwd", ".hidden", "half.xml.part"} {
		if rc, err := src.Open(ctx, name); !errors.Is(err, fs.ErrInvalid) {
			if err == nil {
				rc.Close()
			}
			t.Errorf("Open(%q) = %v, want an fs.ErrInvalid", name, err)
		}
		if err := src.Done(ctx, name, true); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Done(%q) = %v, want an fs.ErrInvalid", name, err)
		}
	}
	if _, err := src.Open(ctx, "sub"); err == nil {
		t.Error("Open of a subfolder allowed")
	}
	if err := src.Done(ctx, "sub", true); err == nil {
		t.Error("Done of a subfolder allowed")
	}
	if _, err := src.Open(ctx, "missing.xml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file = %v, want an fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(srv.root, "secret.xml")); err != nil {
		t.Errorf("the file outside the folder was moved: %v", err)
	}
}

func TestSFTPRefusesWrongPasswordAndWrongHost(t *testing.T) {
	srv := newSFTPTestServer(t)
	srv.put(t, "inbox/users.xml", "u", time.Now())
	ctx := context.Background()

	wrong := srv.config()
	wrong.Password = "incorrect horse"
	if _, err := newSFTP(t, wrong).List(ctx); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("List with a wrong password = %v", err)
	}

	otherPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := ssh.NewPublicKey(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	impostor := srv.config()
	impostor.Password = testSFTPPassword
	impostor.HostKey = otherKey
	if _, err := newSFTP(t, impostor).List(ctx); err == nil || !strings.Contains(err.Error(), "host key") {
		t.Errorf("List from a server with another host key = %v", err)
	}

	// A known hosts file: the right key, another key, no entry.
	dir := t.TempDir()
	for _, tc := range []struct {
		name, line string
		ok         bool
	}{
		{"right", knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, srv.hostKey), true},
		{"other", knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, otherKey), false},
		{"none", knownhosts.Line([]string{"sftpclient.example.edu"}, srv.hostKey), false},
	} {
		file := filepath.Join(dir, tc.name)
		if err := os.WriteFile(file, []byte(tc.line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := srv.config()
		cfg.Password = testSFTPPassword
		cfg.HostKey = nil
		cfg.KnownHosts = file
		names, err := newSFTP(t, cfg).List(ctx)
		if tc.ok && (err != nil || len(names) != 1) {
			t.Errorf("known hosts %s: List = %v, %v", tc.name, names, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "host key")) {
			t.Errorf("known hosts %s: List = %v, want a host key error", tc.name, err)
		}
	}

	// Skipping the check must be asked for, and then works.
	insecure := srv.config()
	insecure.Password = testSFTPPassword
	insecure.HostKey = nil
	if _, err := New("campus-sftp", insecure); err == nil {
		t.Error("SFTP without any host key check = nil error")
	}
	insecure.InsecureIgnoreHostKey = true
	if names := listedSourceNames(t, newSFTP(t, insecure)); !slices.Equal(names, []string{"users.xml"}) {
		t.Errorf("List with InsecureIgnoreHostKey = %v", names)
	}
}

func TestConfigurationErrors(t *testing.T) {
	ok := Config{Addr: "sftpclient.example.edu", User: "lib", Password: "pw", InsecureIgnoreHostKey: true}
	if _, err := New("x", ok); err != nil {
		t.Fatalf("a good configuration: %v", err)
	}
	key, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Config){
		"no addr":       func(c *Config) { c.Addr = "" },
		"no user":       func(c *Config) { c.User = "" },
		"no auth":       func(c *Config) { c.Password = "" },
		"bad key":       func(c *Config) { c.PrivateKey = []byte("not a key") },
		"two checks":    func(c *Config) { c.HostKey = hostKey },
		"no check":      func(c *Config) { c.InsecureIgnoreHostKey = false },
		"missing hosts": func(c *Config) { c.InsecureIgnoreHostKey, c.KnownHosts = false, "/nonexistent/known_hosts" },
	} {
		cfg := ok
		change(&cfg)
		if _, err := New("x", cfg); err == nil {
			t.Errorf("%s: SFTP = nil error", name)
		}
	}
	if _, err := New("", ok); err == nil {
		t.Error("SFTP without a name = nil error")
	}
}

func TestSFTPStreamsALargeFile(t *testing.T) {
	srv := newSFTPTestServer(t)
	const size = 20 << 20
	if err := os.MkdirAll(filepath.Join(srv.root, "inbox"), 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(srv.root, "inbox", "big.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	rng := mathrand.NewChaCha8([32]byte{1, 2, 3})
	if _, err := io.CopyN(io.MultiWriter(f, want), rng, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := srv.config()
	cfg.PrivateKey = srv.userKey
	src := newSFTP(t, cfg)
	ctx := context.Background()
	files, err := src.List(ctx)
	if err != nil || len(files) != 1 || files[0].Size != size {
		t.Fatalf("List = %v, %v", files, err)
	}
	rc, err := src.Open(ctx, "big.xml")
	if err != nil {
		t.Fatal(err)
	}
	// Read as a decoder would, a few KiB at a time, hashing as it goes.
	got := sha256.New()
	n, err := io.CopyBuffer(got, struct{ io.Reader }{rc}, make([]byte, 4<<10))
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("read %d bytes, hash equal %v", n, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	if err := src.Done(ctx, "big.xml", true); err != nil {
		t.Fatal(err)
	}
}

func TestSFTPKeepsOneConnectionAndReconnects(t *testing.T) {
	srv := newSFTPTestServer(t)
	srv.put(t, "inbox/a.xml", "a", time.Now().Add(-time.Minute))
	srv.put(t, "inbox/b.xml", "b", time.Now())
	cfg := srv.config()
	cfg.Password = testSFTPPassword
	src := newSFTP(t, cfg)
	ctx := context.Background()

	for range 3 {
		listedSourceNames(t, src)
	}
	if got := readSourceFile(t, src, "a.xml"); got != "a" {
		t.Errorf("read %q", got)
	}
	if n := srv.connections(); n != 1 {
		t.Errorf("%d connections for four operations, want 1", n)
	}

	// The server drops the connection (a restart, an idle timeout): the
	// next operations connect again.
	srv.dropConnections()
	if names := listedSourceNames(t, src); !slices.Equal(names, []string{"a.xml", "b.xml"}) {
		t.Errorf("List after the drop = %v", names)
	}
	srv.dropConnections()
	if got := readSourceFile(t, src, "b.xml"); got != "b" {
		t.Errorf("read after the drop %q", got)
	}
	srv.dropConnections()
	if err := src.Done(ctx, "a.xml", true); err != nil {
		t.Errorf("Done after the drop: %v", err)
	}

	// A read in progress when the connection drops fails, and is not taken
	// for the end of the file: the file is far larger than what is read
	// ahead, so the rest can only come over the dropped connection.
	srv.put(t, "inbox/c.xml", strings.Repeat("c", 8<<20), time.Now())
	rc, err := src.Open(ctx, "c.xml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	srv.dropConnections()
	if _, err := io.ReadAll(rc); err == nil {
		t.Error("a read on a dropped connection succeeded")
	}
	rc.Close()
	if err := src.Done(ctx, "c.xml", false); err != nil {
		t.Fatal(err)
	}

	// A cancelled context ends the operation; the source goes on.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := src.List(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context = %v", err)
	}
	if names := listedSourceNames(t, src); !slices.Equal(names, []string{"b.xml"}) {
		t.Errorf("List = %v", names)
	}

	// After Close, operations fail.
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.List(ctx); err == nil {
		t.Error("List after Close = nil error")
	}
}

func TestSFTPRetriesOnANewConnectionWhenTheServerResetTheKeptOne(t *testing.T) {
	srv := newSFTPTestServer(t)
	srv.put(t, "inbox/a.xml", "a", time.Now().Add(-time.Minute))
	srv.put(t, "inbox/b.xml", "b", time.Now())
	cfg := srv.config()
	cfg.Password = testSFTPPassword
	src := newSFTP(t, cfg)
	reset := resettable(src)
	ctx := context.Background()
	listedSourceNames(t, src)

	// Each time, the server has reset the kept connection and the client
	// has not noticed yet: the operation's first request fails to be sent.
	reset()
	if names := listedSourceNames(t, src); !slices.Equal(names, []string{"a.xml", "b.xml"}) {
		t.Errorf("List after a reset = %v", names)
	}
	reset()
	if got := readSourceFile(t, src, "a.xml"); got != "a" {
		t.Errorf("Open after a reset read %q", got)
	}
	reset()
	if err := src.Done(ctx, "a.xml", true); err != nil {
		t.Errorf("Done after a reset: %v", err)
	}
	// Open, then the reset, then the first read: the file is read from its
	// start on a new connection.
	rc, err := src.Open(ctx, "b.xml")
	if err != nil {
		t.Fatal(err)
	}
	reset()
	if got, err := io.ReadAll(rc); err != nil || string(got) != "b" {
		t.Errorf("first read after a reset = %q, %v", got, err)
	}
	rc.Close()
	if n := srv.connections(); n != 5 {
		t.Errorf("%d connections, want 5: the first and one per reset", n)
	}
	if data, err := os.ReadFile(filepath.Join(srv.root, "inbox/processed/a.xml")); err != nil || string(data) != "a" {
		t.Errorf("processed/a.xml = %q, %v", data, err)
	}

	// A read that broke after part of the file was read fails.
	srv.put(t, "inbox/c.xml", strings.Repeat("c", 8<<20), time.Now())
	rc, err = src.Open(ctx, "c.xml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	reset()
	if _, err := io.ReadAll(rc); err == nil || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("a read on a reset connection = %v, want the reset", err)
	}
	rc.Close()
}

func TestSFTPDoneWhoseRenameWasCarriedOutUnansweredSucceeds(t *testing.T) {
	srv := newSFTPTestServer(t)
	cfg := srv.config()
	cfg.Password = testSFTPPassword
	src := newSFTP(t, cfg)
	ctx := context.Background()
	srv.put(t, "inbox/users.xml", "u", time.Now())
	listedSourceNames(t, src)

	// The server renames the file, then the connection drops before the
	// answer: Done asks again on a new connection and finds it done.
	srv.dropAfter.Store(18) // SSH_FXP_RENAME
	if err := src.Done(ctx, "users.xml", true); err != nil {
		t.Fatalf("Done: %v", err)
	}
	if srv.dropAfter.Load() != 0 {
		t.Fatal("the server was not asked to rename")
	}
	entries, err := os.ReadDir(filepath.Join(srv.root, "inbox/processed"))
	if err != nil || len(entries) != 1 || entries[0].Name() != "users.xml" {
		t.Fatalf("processed holds %v, %v; want users.xml alone", entries, err)
	}
	if names := listedSourceNames(t, src); len(names) != 0 {
		t.Errorf("List = %v", names)
	}

}

// readSourceFile reads a whole file through src.
func readSourceFile(t *testing.T, src sis.Source, name string) string {
	t.Helper()
	rc, err := src.Open(context.Background(), name)
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

// listedSourceNames lists src's files by name.
func listedSourceNames(t *testing.T, src sis.Source) []string {
	t.Helper()
	files, err := src.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	names := []string{}
	for _, f := range files {
		names = append(names, f.Name)
	}
	return names
}

// TestKitCloseClosesTheSFTPSource: a host that gives the kit an SFTP
// source has its connection closed with the kit.
func TestKitCloseClosesTheSFTPSource(t *testing.T) {
	srv := newSFTPTestServer(t)
	cfg := srv.config()
	cfg.Password = testSFTPPassword
	src := newSFTP(t, cfg)
	srv.put(t, "inbox/a.xml", "a", time.Now())
	kit, err := patronkit.New(dbtest.Open(t, sqldb.SQLite), &patronkit.Config{Sources: []sis.Source{src}})
	if err != nil {
		t.Fatal(err)
	}
	if names := listedSourceNames(t, src); !slices.Equal(names, []string{"a.xml"}) {
		t.Fatalf("List = %v", names)
	}
	if srv.connections() != 1 {
		t.Fatalf("%d connections, want 1", srv.connections())
	}
	kit.Close()
	if _, err := src.List(context.Background()); err == nil {
		t.Fatal("the source still lists after Kit.Close")
	}
}
