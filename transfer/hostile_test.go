package transfer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lanchat/lanchat/ipmsg"
)

// unsafeNames are names a peer could send to escape or confuse the
// destination, each with the reason CheckName gives.
var unsafeNames = []struct{ name, why string }{
	{"", "empty"},
	{".", "names a folder"},
	{"..", "names a folder"},
	{"/etc/passwd", "path separator"},
	{"a/../../b", "path separator"},
	{`..\..\win.ini`, "path separator"},
	{`\\server\share`, "path separator"},
	{"C:", "drive letter"},
	{"c:evil.txt", "drive letter"},
	{"a.txt:stream", "stream name"},
	{"nul\x00.txt", "control character"},
	{"a\nb", "control character"},
	{"bell\a", "control character"},
	{"del\x7f", "control character"},
	{"CON", "device name"},
	{"con.txt", "device name"},
	{"Prn.tar.gz", "device name"},
	{"aux", "device name"},
	{"NUL .txt", "device name"},
	{"COM1", "device name"},
	{"com9.log", "device name"},
	{"LPT1", "device name"},
	{"lpt9.doc", "device name"},
	{"COM¹", "device name"},
	{"CONOUT$", "device name"},
	{"trailing.", "ends with a dot"},
	{"trailing ", "ends with a dot or space"},
	{strings.Repeat("长", 86), "258 bytes, limit 255"},
	{"bad\xffutf8", "not valid UTF-8"},
}

var safeNames = []string{
	"a.txt", "项目 报告 (final).docx", ".bashrc", "..hidden", "a..b", "COM10", "LPT", "console.log",
	"auxiliary", "nul1", " leading space", strings.Repeat("x", 255), "日本語.txt", "emoji 🎉.png",
}

func TestCheckName(t *testing.T) {
	for _, tt := range unsafeNames {
		err := CheckName(tt.name)
		if !errors.Is(err, ErrUnsafeName) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("CheckName(%q) = %v, want ErrUnsafeName: %s", tt.name, err, tt.why)
		}
	}
	for _, name := range safeNames {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
}

func TestNumberedNames(t *testing.T) {
	tests := []struct {
		name string
		k    int
		dir  bool
		want string
	}{
		{"report.pdf", 0, false, "report.pdf"},
		{"report.pdf", 1, false, "report (1).pdf"},
		{"archive.tar.gz", 2, false, "archive.tar (2).gz"},
		{".bashrc", 1, false, ".bashrc (1)"},
		{"v1.2", 1, true, "v1.2 (1)"},
		{"noext", 3, false, "noext (3)"},
	}
	for _, tt := range tests {
		if got := numbered(tt.name, tt.k, tt.dir); got != tt.want {
			t.Errorf("numbered(%q, %d) = %q, want %q", tt.name, tt.k, got, tt.want)
		}
	}
	long := strings.Repeat("长", 85) // 255 bytes
	for _, got := range []string{numbered(long+".txt", 12, false), partName(long, "1-2"), partName(numbered(long, 1, false), "1-2")} {
		if len(got) > maxName || CheckName(got) != nil {
			t.Errorf("derived name %q (%d bytes) is not a safe name", got, len(got))
		}
	}
	if partName(long+"a", "1-2") == partName(long+"b", "1-2") {
		t.Error("two long names share a .part")
	}
}

// TestHostileOfferNames: an offer entry with an unsafe name is refused
// before connecting.
func TestHostileOfferNames(t *testing.T) {
	fake := startFake(t, sendBytes([]byte("x")))
	dest, _ := sandbox(t)
	c := newTestClient(t, ClientConfig{})
	for _, tt := range unsafeNames {
		for _, attr := range []uint32{ipmsg.FileRegular, ipmsg.FileDir} {
			f := ipmsg.File{ID: firstID, Name: tt.name, Size: 1, Attr: attr}
			_, err := c.Fetch(context.Background(), request(fake.addr, 1, f, dest))
			if !errors.Is(err, ErrUnsafeName) {
				t.Errorf("Fetch of %q (attr %d) = %v, want ErrUnsafeName", tt.name, attr, err)
			}
		}
	}
	if got := fake.got(); len(got) != 0 {
		t.Errorf("requests were sent: %q", got)
	}
	if got := tree(t, dest, false); len(got) != 1 {
		t.Errorf("dest = %v, want empty", got)
	}
}

// TestHostileFolderNames: a folder stream naming a file or folder unsafely
// fails, and what was made of the folder is removed.
func TestHostileFolderNames(t *testing.T) {
	dest, _ := sandbox(t)
	c := newTestClient(t, ClientConfig{})
	for _, tt := range unsafeNames {
		if !utf8.ValidString(tt.name) {
			continue // the codec decodes invalid UTF-8 as GB18030, which gives a valid name
		}
		streams := map[string]dirStream{
			"file":   dirStream(nil).dir("top", 0).file("ok.txt", "ok").raw(tt.name, 3, ipmsg.FileRegular, "bad").up(),
			"folder": dirStream(nil).dir("top", 0).raw(tt.name, 0, ipmsg.FileDir, "").file("in.txt", "x").up().up(),
			"top":    dirStream(nil).raw(tt.name, 0, ipmsg.FileDir, "").up(),
		}
		for kind, stream := range streams {
			fake := startFake(t, sendBytes(stream))
			_, err := c.Fetch(context.Background(), request(fake.addr, 1, dirFile("top"), dest))
			// A name with a ':' can be parsed as a different header (names
			// are not escaped), which is a malformed stream instead.
			if !errors.Is(err, ErrUnsafeName) && !errors.Is(err, ErrBadStream) {
				t.Errorf("%s named %q: err = %v, want ErrUnsafeName", kind, tt.name, err)
			}
		}
	}
	if got := tree(t, dest, false); len(got) != 1 {
		t.Errorf("dest = %v, want empty", got)
	}
}

func TestHostileStreams(t *testing.T) {
	ok := dirStream(nil).dir("top", 0)
	tests := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"climbs above its folder", ok.up().up(), ErrBadStream},
		{"climbs far above", ok.up().up().up().dir("etc", 0).file("passwd", "x"), ErrBadStream},
		{"goes on after the end", ok.up().file("late.txt", "x"), ErrBadStream},
		{"starts with a file", dirStream(nil).file("a.txt", "x"), ErrBadStream},
		{"starts with a retparent", dirStream(nil).up(), ErrBadStream},
		{"empty", nil, ErrIncomplete},
		{"ends inside a folder", ok.dir("sub", 0).up(), ErrIncomplete},
		{"ends inside a file", ok.raw("a.txt", 10, ipmsg.FileRegular, "short"), ErrIncomplete},
		{"garbage header", append(ok, "zzzz:junk"...), ErrBadStream},
		{"header too long", append(ok, "ffff:"...), ErrBadStream},
		{"too many entries", ok.file("1", "").file("2", "").file("3", "").up(), ErrTooLarge},
		{"too many bytes", ok.file("big", strings.Repeat("x", 101)).up(), ErrTooLarge},
		{"huge size", append(ok, rawHeader(":big:ffffffffffffffff:1:")...), ErrTooLarge},
		{"huge skipped size", append(ok, rawHeader(":link:ffffffffffffffff:4:")...), ErrTooLarge},
		{"skipped record", ok.raw("link", 3, ipmsg.FileSymlink, "abc").up(), nil},
		{"too deep", ok.dir("1", 0).dir("2", 0).dir("3", 0).up().up().up().up(), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := startFake(t, sendBytes(tt.stream))
			dest, _ := sandbox(t)
			c := newTestClient(t, ClientConfig{MaxFolderEntries: 3, MaxFolderBytes: 100, MaxFolderDepth: 3})
			_, err := c.Fetch(context.Background(), request(fake.addr, 1, dirFile("top"), dest))
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			isKind(t, err, tt.want)
			if got := tree(t, dest, false); len(got) != 1 {
				t.Errorf("dest = %v, want the partial folder removed", got)
			}
		})
	}
}

// TestSymlinksInDest: links already in the destination are never written
// through, whether they carry the offered name, its .part or a folder's.
func TestSymlinksInDest(t *testing.T) {
	dest, outside := sandbox(t)
	target := filepath.Join(outside, "keep")
	f := ipmsg.File{ID: firstID, Name: "a.txt", Size: 5, Attr: ipmsg.FileRegular}
	for _, name := range []string{"a.txt", partName("a (1).txt", partTag(f)), "docs"} {
		if err := os.Symlink(target, filepath.Join(dest, name)); err != nil {
			t.Skipf("no symlinks: %v", err)
		}
	}
	os.Symlink(outside, filepath.Join(dest, partName("a (2).txt", partTag(f))))
	c := newTestClient(t, ClientConfig{})
	fake := startFake(t, sendBytes([]byte("hello")))
	r := request(fake.addr, 1, f, dest)
	r.Resume = true
	path, err := c.Fetch(context.Background(), r)
	if err != nil || filepath.Base(path) != "a (3).txt" {
		t.Errorf("Fetch = %s, %v; want a (3).txt", path, err)
	}
	fake2 := startFake(t, sendBytes(dirStream(nil).dir("docs", 0).file("x", "y").up()))
	path, err = c.Fetch(context.Background(), request(fake2.addr, 1, dirFile("docs"), dest))
	if err != nil || filepath.Base(path) != "docs (1)" {
		t.Errorf("Fetch = %s, %v; want docs (1)", path, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the link target now holds %q", b)
	}
}

// TestServerRefuses: requests that may not be served are closed unanswered,
// logged with the reason, and the server goes on serving.
func TestServerRefuses(t *testing.T) {
	other := netip.MustParseAddr("127.0.0.2")
	if c, err := (&net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(other, 0))}).Dial("tcp4", "127.0.0.1:9"); err != nil &&
		strings.Contains(err.Error(), "assign requested address") {
		t.Skip("127.0.0.2 is not usable here")
	} else if c != nil {
		c.Close()
	}
	log, logs := testLogger(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("hello"), 0o644)
	s, addr := startServer(t, ServerConfig{Logger: log, RequestTimeout: 200 * time.Millisecond})
	share(t, s, 0x10, filepath.Join(src, "a.txt"), src)
	tests := []struct {
		name, line string
		from       netip.Addr
		why        string
	}{
		{"unknown offer", "1:1:u:h:96:11:2710:0:", loopback, "no offer 17"},
		{"unknown id", "1:1:u:h:96:10:2712:0:", loopback, "has no file 0x2712"},
		{"id below the first", "1:1:u:h:96:10:0:0:", loopback, "has no file 0x0"},
		{"another peer's offer", "1:1:u:h:96:10:2710:0:", other, "was made to 127.0.0.1"},
		{"not a file request", "1:1:u:h:32:hello\x00", loopback, "command SENDMSG"},
		{"malformed", "garbage:x:u:h:96:", loopback, "packet number"},
		{"bad argument", "1:1:u:h:96:10:xyz:0:", loopback, "xyz"},
		{"unfinished", "1:1:u:h:96:10:", loopback, "i/o timeout"},
		{"folder as file", "1:1:u:h:96:10:2711:0:", loopback, "GETFILEDATA for folder"},
		{"offset past the end", "1:1:u:h:96:10:2710:6:", loopback, "offset 6 beyond"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := rawRequest(t, addr, tt.from, tt.line)
			if len(got) != 0 {
				t.Errorf("served %q", got)
			}
			if !strings.Contains(logs.String(), tt.why) {
				t.Errorf("log lacks %q", tt.why)
			}
		})
	}
	if got, _ := rawRequest(t, addr, loopback, "1:1:u:h:96:10:2710:1:"); string(got) != "ello" {
		t.Errorf("after the refusals, a good request got %q", got)
	}
	// The decimal digits of the ID, as iptux accepts (vector FILE-4).
	if got, _ := rawRequest(t, addr, loopback, "1:1:u:h:96:10:10000:0:"); string(got) != "hello" {
		t.Errorf("decimal ID got %q", got)
	}
}

// rawHeader prefixes a header body with its length.
func rawHeader(body string) string { return hex4(len(body)+4) + body }

func TestServerServesOnlyTheOfferedPeer(t *testing.T) {
	other := netip.MustParseAddr("127.0.0.2")
	src := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(src, []byte("hello"), 0o644)
	s, addr := startServer(t, ServerConfig{})
	files, err := s.Share(1, other, []string{src})
	if err != nil {
		t.Fatal(err)
	}
	dest, _ := sandbox(t)
	_, err = newTestClient(t, ClientConfig{}).Fetch(context.Background(), request(addr, 1, files[0], dest))
	isKind(t, err, ErrIncomplete)
	path, err := newTestClient(t, ClientConfig{LocalAddr: other}).Fetch(context.Background(), request(addr, 1, files[0], dest))
	if err != nil {
		t.Skipf("cannot fetch from 127.0.0.2: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "hello" {
		t.Errorf("got %q", b)
	}
}

func TestMaxConns(t *testing.T) {
	log, logs := testLogger(t)
	_, addr := startServer(t, ServerConfig{Logger: log, MaxConns: 1, RequestTimeout: 5 * time.Second})
	hold, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	hold.Write([]byte("1:1:u:h:96:")) // unfinished: holds the only slot
	start := time.Now()
	for !strings.Contains(logs.String(), "too many connections") {
		if time.Since(start) > 3*time.Second {
			t.Fatal("a second connection was not refused")
		}
		got, _ := rawRequest(t, addr, netip.Addr{}, "1:1:u:h:96:1:2710:0:")
		if len(got) != 0 {
			t.Fatalf("served %q", got)
		}
	}
}

func TestReleaseAndCancel(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(src, []byte("hello"), 0o644)
	s, addr := startServer(t, ServerConfig{})
	share(t, s, 1, src)
	share(t, s, 2, src)
	if _, err := s.Share(1, loopback, []string{src}); err == nil {
		t.Error("the same offer number was shared twice")
	}
	s.Release(1, netip.MustParseAddr("10.0.0.9")) // not the peer it was offered to
	if got, _ := rawRequest(t, addr, loopback, "1:1:u:h:96:1:2710:0:"); string(got) != "hello" {
		t.Errorf("after a stranger's release: %q", got)
	}
	s.Release(1, loopback)
	s.Cancel(2)
	for _, line := range []string{"1:1:u:h:96:1:2710:0:", "1:1:u:h:96:2:2710:0:"} {
		if got, _ := rawRequest(t, addr, loopback, line); len(got) != 0 {
			t.Errorf("%s after release/cancel: %q", line, got)
		}
	}
}

func TestShareErrors(t *testing.T) {
	s := NewServer(ServerConfig{})
	dir := t.TempDir()
	if err := syscallMkfifo(filepath.Join(dir, "fifo")); err == nil {
		if _, err := s.Share(1, loopback, []string{filepath.Join(dir, "fifo")}); err == nil || !strings.Contains(err.Error(), "neither") {
			t.Errorf("sharing a FIFO: %v", err)
		}
	}
	for _, paths := range [][]string{nil, {filepath.Join(dir, "missing")}, {"/"}} {
		if _, err := s.Share(2, loopback, paths); err == nil {
			t.Errorf("Share(%q) succeeded", paths)
		}
	}
}
