package transfer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanchat/lanchat/ipmsg"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// testHeader is the header every test request carries.
var testHeader = ipmsg.Packet{No: 7, User: []byte("alice"), Host: []byte("pc")}

// logBuf collects log lines for tests that check why something was
// refused, and copies them to the test output.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.out.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func testLogger(t testing.TB) (*slog.Logger, *logBuf) {
	lb := &logBuf{out: t.Output()}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// startServer runs a Server on a loopback port until the test ends, and
// checks that Serve returns when asked to.
func startServer(t testing.TB, cfg ServerConfig) (*Server, netip.AddrPort) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger, _ = testLogger(t)
	}
	s := NewServer(cfg)
	return s, serveOn(t, s)
}

func serveOn(t testing.TB, s *Server) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func newTestClient(t testing.TB, cfg ClientConfig) *Client {
	if cfg.Logger == nil {
		cfg.Logger, _ = testLogger(t)
	}
	return NewClient(cfg)
}

func request(from netip.AddrPort, offer uint64, f ipmsg.File, dest string) Request {
	return Request{From: from, Header: testHeader, Offer: offer, File: f, Charset: ipmsg.UTF8, DestDir: dest}
}

// share offers paths to loopback and fails the test on error.
func share(t testing.TB, s *Server, offer uint64, paths ...string) []ipmsg.File {
	t.Helper()
	files, err := s.Share(offer, loopback, paths)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// writeRandom writes n random bytes (seeded, so runs repeat) to path.
func writeRandom(t testing.TB, path string, n int, seed uint64) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// writeSparse makes a file of n zero bytes without writing them: for tests
// that need more data than the socket buffers hold (up to 4 MiB sending and
// 32 MiB receiving on Linux) but not its content.
func writeSparse(t testing.TB, path string, n int64) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, n); err != nil {
		t.Fatal(err)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func mkdir(t testing.TB, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func setTime(t testing.TB, path string, unix int64) {
	t.Helper()
	if err := os.Chtimes(path, time.Unix(unix, 0), time.Unix(unix, 0)); err != nil {
		t.Fatal(err)
	}
}

// tree describes a folder: relative path → "dir" or the content's hash,
// followed by "@mtime" when withTimes.
func tree(t testing.TB, dir string, withTimes bool) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := "dir"
		if d.Type()&fs.ModeSymlink != 0 {
			v = "link"
		} else if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v = sum(b)
		}
		if withTimes {
			fi, _ := os.Lstat(p)
			v += "@" + strconv.FormatInt(fi.ModTime().Unix(), 16)
		}
		m[filepath.ToSlash(rel)] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sandbox makes parent/dest for a download and parent/outside with a
// file in it, and checks at the end of the test that the download wrote
// nothing beside dest and left outside alone.
func sandbox(t *testing.T) (dest, outside string) {
	parent := t.TempDir()
	dest, outside = filepath.Join(parent, "dest"), filepath.Join(parent, "outside")
	mkdir(t, dest)
	mkdir(t, outside)
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkSandbox(t, parent) })
	return dest, outside
}

func checkSandbox(t *testing.T, parent string) {
	got := tree(t, parent, false)
	for p, v := range got {
		switch {
		case p == "." || p == "dest" || p == "outside" || strings.HasPrefix(p, "dest/"):
		case p == "outside/keep" && v == sum([]byte("keep")):
		default:
			t.Errorf("written outside the destination: %s (%s)", p, v)
		}
	}
	if _, ok := got["outside/keep"]; !ok {
		t.Error("outside/keep is gone")
	}
}

// fakeSender is a scripted sender: it reads one request per connection,
// records it, and answers with respond.
type fakeSender struct {
	addr     netip.AddrPort
	mu       sync.Mutex
	requests []string
}

func startFake(t *testing.T, respond func(c net.Conn, req ipmsg.FileRequest)) *fakeSender {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSender{addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); f.serve(c, respond) })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return f
}

func (f *fakeSender) serve(c net.Conn, respond func(net.Conn, ipmsg.FileRequest)) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	p, req, err := ipmsg.ReadFileRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, string(p.Append(nil)))
	f.mu.Unlock()
	respond(c, req)
}

func (f *fakeSender) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// sendBytes answers every request with b and closes.
func sendBytes(b []byte) func(net.Conn, ipmsg.FileRequest) {
	return func(c net.Conn, _ ipmsg.FileRequest) { c.Write(b) }
}

// rawRequest sends line to addr from local (if valid) and returns all the
// server sent before closing.
func rawRequest(t *testing.T, addr netip.AddrPort, local netip.Addr, line string) ([]byte, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

// dirStream builds a folder stream from headers and contents.
type dirStream []byte

func (s dirStream) dir(name string, mtime int64) dirStream {
	return ipmsg.AppendDirHeader(s, ipmsg.DirHeader{Name: name, Attr: ipmsg.FileDir, MTime: mtime, CTime: mtime}, ipmsg.UTF8)
}

func (s dirStream) file(name, content string) dirStream {
	h := ipmsg.DirHeader{Name: name, Size: uint64(len(content)), Attr: ipmsg.FileRegular, MTime: 0x65a1b2c3}
	return append(ipmsg.AppendDirHeader(s, h, ipmsg.UTF8), content...)
}

func (s dirStream) up() dirStream {
	return ipmsg.AppendDirHeader(s, ipmsg.DirHeader{Name: ".", Attr: ipmsg.FileRetParent}, ipmsg.UTF8)
}

// raw appends a header with the name as given, bypassing AppendDirHeader's
// ':' replacement, as a hostile sender would.
func (s dirStream) raw(name string, size int, attr uint32, content string) dirStream {
	body := ":" + name + ":" + strconv.FormatInt(int64(size), 16) + ":" + strconv.FormatUint(uint64(attr), 16) + ":"
	return append(append(s, hex4(len(body)+4)+body...), content...)
}

func hex4(n int) string { return fmt.Sprintf("%04x", n) }

func dirFile(name string) ipmsg.File {
	return ipmsg.File{ID: firstID, Name: name, Attr: ipmsg.FileDir}
}

// isKind fails the test unless err wraps want.
func isKind(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

// partPath is where a download of f into dest is written until complete.
func partPath(dest string, f ipmsg.File) string {
	return filepath.Join(dest, partName(f.Name, partTag(f)))
}
