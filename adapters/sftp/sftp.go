// Package sftp is an SIS source over a folder on an SFTP server, where a
// campus Student Information System drops its export files: patron/sis
// runs read them through it like any other Source. It is the only package
// of patronkit that needs an SSH client, so hosts that do not use it do not
// build one.
package sftp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"sync"
	"time"

	sftpclient "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/patronkit/patronkit/patron/sis"
)

// Config says how to reach the folder on an SFTP server that an SIS
// drops its export files into: the server, the account the library was
// given, how to be sure it is the right server, and the folders.
type Config struct {
	// Addr is the server, host:port. The port defaults to 22.
	Addr string
	// User is the account name on the server.
	User string

	// Password signs in with a password. It is also the answer to a
	// server's keyboard-interactive password prompt. Give Password,
	// PrivateKey or both; with both, the key is tried first.
	Password string
	// PrivateKey signs in with a key pair: the private key file's content,
	// in PEM (OpenSSH, PKCS#1, PKCS#8 or SEC 1). The public half must be in
	// the account's authorized keys on the server.
	PrivateKey []byte
	// PrivateKeyPassphrase decrypts PrivateKey when it is encrypted.
	PrivateKeyPassphrase string

	// HostKey is the server's public host key, as its administrator gives
	// it (parse a "ssh-ed25519 AAAA..." line with
	// ssh.ParseAuthorizedKey). A connection to a server that does not hold
	// this key is refused: it is not the campus server, or its key changed.
	//
	// The server must be identified by exactly one of HostKey, KnownHosts
	// and InsecureIgnoreHostKey.
	HostKey ssh.PublicKey
	// KnownHosts is the path of an OpenSSH known_hosts file that lists the
	// server's host key under Addr, as written by ssh or ssh-keyscan.
	KnownHosts string
	// InsecureIgnoreHostKey connects without checking the server's host
	// key, so that anyone who can intercept the connection can pose as the
	// server, read the password and feed the library forged patron files.
	// For tests only; it must be set explicitly.
	InsecureIgnoreHostKey bool

	// Dir is the folder the SIS drops files into. A relative path is taken
	// from the account's login folder; empty is the login folder itself.
	Dir string
	// ProcessedDir is where Done moves a file read without error.
	// Default: Dir/processed. A relative path is taken from the login
	// folder, like Dir.
	ProcessedDir string
	// FailedDir is where Done moves a file that failed. Default:
	// Dir/failed. A relative path is taken from the login folder.
	FailedDir string

	// Timeout bounds connecting: reaching the server, the SSH handshake and
	// signing in. Default: 30 seconds. Each operation is also bounded by the
	// context it is given.
	Timeout time.Duration
}

// New returns an SIS source (a sis.Source) named name over a folder on an
// SFTP server, with the same rules as sis.DropFolder: List offers the regular files directly in Dir, oldest first,
// leaving out subfolders, dot files and names ending in .part or .tmp; Open
// streams a file from the server as it is read (it is never held whole in
// memory); Done renames a file into ProcessedDir or FailedDir, creating
// them, never overwriting a file already there (the file moved in gets a
// timestamp before its extension). When two instances share the folder,
// only one moves a file, and the other's Done returns an error that matches
// fs.ErrNotExist (errors.Is). Names given to Open and Done must be names
// List offers; anything else is refused with an error that matches
// fs.ErrInvalid.
//
// New checks the configuration but does not connect: the first operation
// does. The source keeps that one connection for the operations that
// follow, and for reads in progress. When the connection breaks (the server
// closed an idle connection, the network dropped it, a context was
// cancelled during an operation), the next operation connects again. An
// operation that finds the kept connection broken, whatever the error it
// meets (the connection lost, reset by the server, a write that failed),
// retries once on a new connection: List; Open, and the first read of a
// file opened (the file is read again from its start); and Done, which
// first looks whether a rename asked on the broken connection was carried
// out. A read that broke after part of the file was read is not retried:
// it fails. Cancelling the context of an operation, or of an Open whose
// file is still being read, closes the connection, which ends the other
// reads on it.
//
// The Source returned is safe for concurrent use and is an io.Closer: close
// it when the host shuts down to release the connection. Operations after
// Close fail.
func New(name string, cfg Config) (*Source, error) {
	if name == "" {
		return nil, errors.New("sftp: an SFTP source needs a name")
	}
	fail := func(format string, a ...any) (*Source, error) {
		return nil, fmt.Errorf("sftp: source %s: "+format, append([]any{name}, a...)...)
	}
	if cfg.Addr == "" {
		return fail("no server address (Addr)")
	}
	addr := cfg.Addr
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fail("server address %q: %w", cfg.Addr, err)
		}
	}
	if cfg.User == "" {
		return fail("no user name (User)")
	}

	var auth []ssh.AuthMethod
	if len(cfg.PrivateKey) > 0 {
		var signer ssh.Signer
		var err error
		if cfg.PrivateKeyPassphrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(cfg.PrivateKey, []byte(cfg.PrivateKeyPassphrase))
		} else {
			signer, err = ssh.ParsePrivateKey(cfg.PrivateKey)
		}
		if err != nil {
			return fail("private key: %w", err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if cfg.Password != "" {
		password := cfg.Password
		auth = append(auth,
			ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = password
				}
				return answers, nil
			}))
	}
	if len(auth) == 0 {
		return fail("no Password and no PrivateKey to sign in with")
	}

	checks := 0
	for _, set := range []bool{cfg.HostKey != nil, cfg.KnownHosts != "", cfg.InsecureIgnoreHostKey} {
		if set {
			checks++
		}
	}
	if checks != 1 {
		return fail("set exactly one of HostKey, KnownHosts and InsecureIgnoreHostKey to say how the server is recognized")
	}
	var hostKeyCallback ssh.HostKeyCallback
	var hostKeyAlgorithms []string
	switch {
	case cfg.HostKey != nil:
		hostKeyCallback = ssh.FixedHostKey(cfg.HostKey)
		hostKeyAlgorithms = keyAlgorithms(cfg.HostKey)
	case cfg.KnownHosts != "":
		cb, err := knownhosts.New(cfg.KnownHosts)
		if err != nil {
			return fail("known hosts: %w", err)
		}
		hostKeyCallback = cb
	default:
		hostKeyCallback = ssh.InsecureIgnoreHostKey()
	}
	check := hostKeyCallback
	hostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		if err := check(host, remote, key); err != nil {
			return fmt.Errorf("host key check failed, the server is not the one configured: %w", err)
		}
		return nil
	}

	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	dir := cfg.Dir
	if dir == "" {
		dir = "."
	}
	dir = path.Clean(dir)
	processed := cfg.ProcessedDir
	if processed == "" {
		processed = path.Join(dir, "processed")
	}
	failed := cfg.FailedDir
	if failed == "" {
		failed = path.Join(dir, "failed")
	}
	return &Source{
		name:      name,
		addr:      addr,
		dir:       dir,
		processed: path.Clean(processed),
		failed:    path.Clean(failed),
		timeout:   timeout,
		config: ssh.ClientConfig{
			User:              cfg.User,
			Auth:              auth,
			HostKeyCallback:   hostKeyCallback,
			HostKeyAlgorithms: hostKeyAlgorithms,
		},
	}, nil
}

// keyAlgorithms lists the signature algorithms a host key of this type
// signs with, so that the handshake asks the server for that key and not
// another one it also holds.
func keyAlgorithms(k ssh.PublicKey) []string {
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{k.Type()}
}

// Source is an SIS source over a folder on an SFTP server; New makes one.
type Source struct {
	name      string
	addr      string // host:port
	dir       string
	processed string
	failed    string
	timeout   time.Duration
	config    ssh.ClientConfig // a copy is used per connection
	// dialContext reaches the server; nil is a net.Dialer's.
	dialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex // guards conn and closed, and serializes connecting
	conn   *sftpConn  // the kept connection, nil when there is none
	closed bool
}

// sftpConn is one SSH connection and the SFTP session on it.
type sftpConn struct {
	ssh    *ssh.Client
	client *sftpclient.Client
	dead   chan struct{} // closed when the SSH connection has ended
	once   sync.Once
}

// close ends the connection. The SSH connection goes first, so that
// closing the SFTP session does not wait on a server that stopped
// answering.
func (c *sftpConn) close() {
	c.once.Do(func() {
		c.ssh.Close()
		c.client.Close()
	})
}

// broken reports whether err, from an operation on c, means that c can no
// longer be used: any error that is not the server's answer to a request.
// The connection's end is not always known yet when an operation fails on
// it (a write to a connection the server reset fails before the reader
// sees the reset), so the error decides, not only the connection's state.
func (c *sftpConn) broken(err error) bool {
	select {
	case <-c.dead:
		return true
	default:
	}
	return !serverAnswer(err)
}

// serverAnswer reports whether err is an answer of the server (a status
// such as "no such file" or "permission denied") or a refusal of this
// source's own checks, which leave the connection as it was.
func serverAnswer(err error) bool {
	var status *sftpclient.StatusError
	return errors.As(err, &status) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) ||
		errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrInvalid)
}

func (s *Source) Name() string { return s.name }

// Close closes the kept connection, ending reads in progress. Operations
// after Close fail.
func (s *Source) Close() error {
	s.mu.Lock()
	c := s.conn
	s.conn, s.closed = nil, true
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
	return nil
}

// connection returns the kept connection, connecting first when there is
// none or it has ended. fresh says it was made by this call.
func (s *Source) connection(ctx context.Context) (c *sftpConn, fresh bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, errors.New("the source is closed")
	}
	if s.conn != nil {
		select {
		case <-s.conn.dead:
			s.conn.close()
			s.conn = nil
		default:
			return s.conn, false, nil
		}
	}
	c, err = s.dial(ctx)
	if err != nil {
		return nil, false, err
	}
	s.conn = c
	return c, true, nil
}

// discard drops c, when it is the kept connection, and closes it.
func (s *Source) discard(c *sftpConn) {
	s.mu.Lock()
	if s.conn == c {
		s.conn = nil
	}
	s.mu.Unlock()
	c.close()
}

// dial connects and signs in, within the timeout and ctx.
func (s *Source) dial(ctx context.Context) (*sftpConn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	config := s.config
	c, err := s.dialWith(ctx, &config)
	var keyErr *knownhosts.KeyError
	if errors.As(err, &keyErr) && len(keyErr.Want) > 0 && config.HostKeyAlgorithms == nil {
		// The known hosts file holds a key for the server, but of another
		// type than the one the server showed first (servers hold several).
		// Ask for the types listed; a server holding none of those keys is
		// refused again.
		for _, k := range keyErr.Want {
			config.HostKeyAlgorithms = append(config.HostKeyAlgorithms, keyAlgorithms(k.Key)...)
		}
		c, err = s.dialWith(ctx, &config)
	}
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	if errors.As(err, &keyErr) && len(keyErr.Want) == 0 {
		return nil, fmt.Errorf("connect to %s: the known hosts file has no key for it: %w", s.addr, err)
	}
	return nil, fmt.Errorf("connect to %s: %w", s.addr, err)
}

func (s *Source) dialWith(ctx context.Context, config *ssh.ClientConfig) (*sftpConn, error) {
	dialContext := s.dialContext
	if dialContext == nil {
		var d net.Dialer
		dialContext = d.DialContext
	}
	nc, err := dialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	// The handshake and the SFTP start honour ctx: its end closes the
	// socket under them.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, s.addr, config)
	if err != nil {
		stop()
		nc.Close()
		return nil, err
	}
	sshClient := ssh.NewClient(sc, chans, reqs)
	client, err := sftpclient.NewClient(sshClient)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		sshClient.Close()
		if client != nil {
			client.Close()
		}
		return nil, fmt.Errorf("start SFTP: %w", err)
	}
	c := &sftpConn{ssh: sshClient, client: client, dead: make(chan struct{})}
	go func() {
		sshClient.Wait()
		close(c.dead)
	}()
	return c, nil
}

// do runs op on the kept connection. When the connection turns out broken,
// it is dropped; if it was not made for this call and retry says op may run
// again, op runs once more on a new connection. ctx ending during op
// closes the connection.
func (s *Source) do(ctx context.Context, op func(*sftpConn) error, retry func() bool) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, fresh, err := s.connection(ctx)
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, c.close)
		err = op(c)
		cancelled := !stop()
		if err == nil {
			return nil
		}
		if cancelled {
			s.discard(c)
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		if !c.broken(err) {
			return err
		}
		s.discard(c)
		if fresh || attempt > 0 || !retry() {
			return err
		}
	}
}

func sftpAlwaysRetry() bool { return true }

func (s *Source) List(ctx context.Context) ([]sis.File, error) {
	var infos []os.FileInfo
	err := s.do(ctx, func(c *sftpConn) (err error) {
		infos, err = c.client.ReadDirContext(ctx, s.dir)
		return err
	}, sftpAlwaysRetry)
	if err != nil {
		return nil, fmt.Errorf("sis: sftp source %s: list %s: %w", s.name, s.dir, err)
	}
	files := []sis.File{}
	for _, fi := range infos {
		if !fi.Mode().IsRegular() || sis.CheckFileName(fi.Name()) != nil {
			continue
		}
		files = append(files, sis.File{Name: fi.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	sis.SortFiles(files)
	return files, nil
}

// sftpReadBuffer is how much of a file Open asks the server for at a time:
// enough for several requests in flight, so that reading is not one round
// trip per small read, and little enough to keep memory flat.
const sftpReadBuffer = 512 << 10

func (s *Source) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := sis.CheckFileName(name); err != nil {
		return nil, fmt.Errorf("sis: sftp source %s: %w", s.name, err)
	}
	r := &sftpReader{source: s, name: name, ctx: ctx}
	if err := r.open(); err != nil {
		return nil, fmt.Errorf("sis: sftp source %s: open %s: %w", s.name, name, err)
	}
	return r, nil
}

// sftpReader streams a remote file.
type sftpReader struct {
	source *Source
	name   string
	ctx    context.Context
	conn   *sftpConn
	file   *sftpclient.File
	buf    *bufio.Reader
	stop   func() bool // stops closing the connection when ctx ends
	// read counts the bytes given to the caller; reopened says the file
	// was opened again after a broken connection.
	read     int64
	reopened bool
}

// open opens the file on the kept connection (see Source.do), and
// closes that connection when ctx ends while the file is read.
func (r *sftpReader) open() error {
	s := r.source
	p := path.Join(s.dir, r.name)
	return s.do(r.ctx, func(c *sftpConn) error {
		fi, err := c.client.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a file: %w", r.name, fs.ErrInvalid)
		}
		f, err := c.client.Open(p)
		if err != nil {
			return err
		}
		r.conn, r.file, r.buf = c, f, bufio.NewReaderSize(f, sftpReadBuffer)
		r.stop = context.AfterFunc(r.ctx, c.close)
		return nil
	}, sftpAlwaysRetry)
}

func (r *sftpReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.buf.Read(p)
	r.read += int64(n)
	if err == nil || err == io.EOF {
		return n, err
	}
	if r.ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", r.ctx.Err(), err)
	}
	if r.ctx.Err() != nil || r.conn.broken(err) {
		r.source.discard(r.conn)
		if r.ctx.Err() == nil && r.read == 0 && !r.reopened {
			// Nothing was read yet: read the file from its start on a new
			// connection.
			r.reopened = true
			r.stop()
			r.file.Close()
			oerr := r.open()
			if oerr == nil {
				return r.Read(p)
			}
			err = oerr
		}
	}
	return n, fmt.Errorf("sis: sftp source %s: read %s: %w", r.source.name, r.name, err)
}

func (r *sftpReader) Close() error {
	r.stop()
	return r.file.Close()
}

func (s *Source) Done(ctx context.Context, name string, ok bool) error {
	if err := sis.CheckFileName(name); err != nil {
		return fmt.Errorf("sis: sftp source %s: %w", s.name, err)
	}
	from := path.Join(s.dir, name)
	aside := s.failed
	if ok {
		aside = s.processed
	}
	// asked and moving say that a rename to aside/asked was asked, of the
	// file that moving describes, on a connection that broke before the
	// answer came: the retry looks whether it was carried out.
	var asked string
	var moving os.FileInfo
	gone := false
	err := s.do(ctx, func(conn *sftpConn) error {
		c := conn.client
		gone = false
		fi, err := c.Lstat(from)
		if errors.Is(err, fs.ErrNotExist) && asked != "" {
			at, aerr := c.Lstat(path.Join(aside, asked))
			if aerr == nil && sameFile(at, moving) {
				return nil // the rename asked before was carried out
			}
			if aerr != nil && !errors.Is(aerr, fs.ErrNotExist) {
				return aerr
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			gone = true
			return err
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a file: %w", name, fs.ErrInvalid)
		}
		if err := c.MkdirAll(aside); err != nil {
			return fmt.Errorf("create %s: %w", aside, err)
		}
		taken := func(n string) (bool, error) {
			_, err := c.Lstat(path.Join(aside, n))
			if errors.Is(err, fs.ErrNotExist) {
				return false, nil
			}
			return err == nil, err
		}
		// A server that follows the SFTP protocol refuses to rename onto an
		// existing file; one that does not (it overwrites) is guarded by
		// looking first. When the name is taken in between, try another.
		for range 3 {
			to, err := sis.AsideName(name, time.Now(), taken)
			if err != nil {
				return err
			}
			asked, moving = to, fi
			err = c.Rename(from, path.Join(aside, to))
			if err == nil {
				return nil
			}
			if conn.broken(err) {
				return err
			}
			asked = ""
			if _, serr := c.Lstat(from); errors.Is(serr, fs.ErrNotExist) {
				gone = true
				return serr
			}
			if t, terr := taken(to); terr != nil || !t {
				return fmt.Errorf("move to %s: %w", aside, err)
			}
		}
		return fmt.Errorf("move to %s: the names are taken: %w", aside, fs.ErrExist)
	}, sftpAlwaysRetry)
	if gone {
		return fmt.Errorf("sis: sftp source %s: %s is no longer in %s (another instance may have taken it): %w",
			s.name, name, s.dir, fs.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("sis: sftp source %s: done %s: %w", s.name, name, err)
	}
	return nil
}

// sameFile reports whether a and b describe the same file, before and
// after a rename: a rename keeps its size and modification time.
func sameFile(a, b os.FileInfo) bool {
	return a.Mode().IsRegular() && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
