package transfer

import (
	"context"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lanchat/lanchat/ipmsg"
)

// makeTree builds a folder with nested and empty folders, Chinese names, an
// empty file and a file big enough to go by sendfile, all with known mtimes.
func makeTree(t *testing.T, root string) {
	t.Helper()
	mkdir(t, filepath.Join(root, "子目录", "深层"))
	mkdir(t, filepath.Join(root, "空目录"))
	writeRandom(t, filepath.Join(root, "说明 readme.txt"), 1000, 10)
	writeRandom(t, filepath.Join(root, "子目录", "a.txt"), 0, 11)
	writeRandom(t, filepath.Join(root, "子目录", "深层", "数据.bin"), 200<<10, 12)
	for i, p := range []string{"子目录/深层/数据.bin", "子目录/a.txt", "说明 readme.txt", "子目录/深层", "子目录", "空目录", "."} {
		setTime(t, filepath.Join(root, p), 0x65a1b2c3+int64(i))
	}
}

func TestFolderRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		peer ipmsg.Charset // the server's charset for the peer
		opts ipmsg.Command // options on the request
		cs   ipmsg.Charset // the client's charset for the server
	}{
		{"utf-8", ipmsg.UTF8, 0, ipmsg.UTF8},
		{"gbk", ipmsg.GB18030, 0, ipmsg.GB18030},
		{"gbk peer asks UTF8OPT", ipmsg.GB18030, ipmsg.UTF8Opt, ipmsg.GB18030},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "项目")
			makeTree(t, src)
			s, addr := startServer(t, ServerConfig{Charset: func(netip.Addr) ipmsg.Charset { return tt.peer }})
			files := share(t, s, 9, src)
			if f := files[0]; f.Name != "项目" || f.Attr != ipmsg.FileDir || f.Size != 0 {
				t.Fatalf("Share entry = %+v", f)
			}
			// The names on the wire are in the charset asked for.
			line := "1:1:u:h:" + strconv.FormatUint(uint64(ipmsg.GetDirFiles|tt.opts), 10) + ":9:2710:"
			raw, _ := rawRequest(t, addr, loopback, line)
			wire := tt.peer
			if tt.opts.Has(ipmsg.UTF8Opt) {
				wire = ipmsg.UTF8
			}
			if name := ":" + string(wire.Encode("项目")) + ":"; !strings.HasPrefix(string(raw[4:]), name) {
				t.Errorf("stream starts %q, want the name %q", raw[:16], name)
			}
			dest, _ := sandbox(t)
			r := request(addr, 9, files[0], dest)
			r.Header.Command, r.Charset = tt.opts, tt.cs
			var last Progress
			r.Progress = func(p Progress) { last = p }
			path, err := newTestClient(t, ClientConfig{}).Fetch(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			if path != filepath.Join(dest, "项目") {
				t.Errorf("path = %s", path)
			}
			want, got := tree(t, src, true), tree(t, path, true)
			if !maps.Equal(got, want) {
				t.Errorf("received tree\n%v\nwant\n%v", got, want)
			}
			if !last.Final || last.Done != 1000+200<<10 || last.Files != 7 {
				t.Errorf("final progress = %+v, want 205800 bytes in 7 entries", last)
			}
		})
	}
}

// TestFolderStreamVector serves the tree of vector DIR-6 and compares the
// stream byte for byte, then receives the vector.
func TestFolderStreamVector(t *testing.T) {
	vector := dir6(t)
	src := filepath.Join(t.TempDir(), "docs")
	mkdir(t, src)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("hello"), 0o644)
	setTime(t, filepath.Join(src, "a.txt"), 0x65a1b2c3)
	setTime(t, src, 0x65a1b2c3)
	s, addr := startServer(t, ServerConfig{})
	share(t, s, 0x2c, src)
	// iptux's form of the request (vector DIR-1): FILEATTACHOPT, ":0", NUL.
	got, _ := rawRequest(t, addr, loopback, "1_iptux 0.10.0:47:user:host:2097250:2c:2710:0\x00")
	if string(got) != string(vector) {
		t.Errorf("stream\n got %q\nwant %q", got, vector)
	}

	fake := startFake(t, sendBytes(vector))
	dest, _ := sandbox(t)
	path, err := newTestClient(t, ClientConfig{}).Fetch(context.Background(), request(fake.addr, 0x2c, dirFile("docs"), dest))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, path, true), tree(t, src, true); !maps.Equal(got, want) {
		t.Errorf("received %v, want %v", got, want)
	}
}

// dir6 reads vector DIR-6 from the codec's vector file.
func dir6(t testing.TB) []byte {
	text, err := os.ReadFile("../ipmsg/testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(text)) {
		if q, ok := strings.CutPrefix(strings.TrimSpace(line), "DIR-6 "); ok {
			b, err := strconv.Unquote(q)
			if err != nil {
				t.Fatal(err)
			}
			return []byte(b)
		}
	}
	t.Fatal("no DIR-6 in ../ipmsg/testdata/vectors.txt")
	return nil
}

func TestFolderNeverOverwrite(t *testing.T) {
	stream := dirStream(nil).dir("docs", 0).file("a.txt", "new").up()
	fake := startFake(t, sendBytes(stream))
	dest, _ := sandbox(t)
	mkdir(t, filepath.Join(dest, "docs"))
	os.WriteFile(filepath.Join(dest, "docs", "a.txt"), []byte("old"), 0o644)
	c := newTestClient(t, ClientConfig{})
	path, err := c.Fetch(context.Background(), request(fake.addr, 1, dirFile("docs"), dest))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "docs (1)" {
		t.Errorf("path = %s, want docs (1)", path)
	}
	got := tree(t, dest, false)
	if got["docs/a.txt"] != sum([]byte("old")) || got["docs (1)/a.txt"] != sum([]byte("new")) {
		t.Errorf("dest = %v", got)
	}
}

// TestFolderDuplicateNames: a stream may repeat a name (or differ only in
// case on a case-insensitive disk); the second gets a number.
func TestFolderDuplicateNames(t *testing.T) {
	stream := dirStream(nil).dir("d", 0).file("a.txt", "1").file("a.txt", "2").dir("s", 0).up().dir("s", 0).up().up()
	fake := startFake(t, sendBytes(stream))
	dest, _ := sandbox(t)
	if _, err := newTestClient(t, ClientConfig{}).Fetch(context.Background(), request(fake.addr, 1, dirFile("d"), dest)); err != nil {
		t.Fatal(err)
	}
	got := tree(t, filepath.Join(dest, "d"), false)
	want := map[string]string{".": "dir", "a.txt": sum([]byte("1")), "a (1).txt": sum([]byte("2")), "s": "dir", "s (1)": "dir"}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestFolderCancel: a folder fetch canceled by either side fails and
// leaves nothing behind, since folder streams cannot resume.
func TestFolderCancel(t *testing.T) {
	src := filepath.Join(t.TempDir(), "many")
	mkdir(t, src)
	for i := range 16 {
		writeSparse(t, filepath.Join(src, "f"+strconv.Itoa(i)), 4<<20)
	}
	for _, by := range []string{"receiver", "sender"} {
		t.Run(by, func(t *testing.T) {
			s, addr := startServer(t, ServerConfig{})
			files := share(t, s, 1, src)
			dest, _ := sandbox(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := request(addr, 1, files[0], dest)
			r.Progress = func(Progress) { // the first report comes with the top folder made
				if by == "receiver" {
					cancel()
				} else {
					s.Cancel(1)
				}
			}
			_, err := newTestClient(t, ClientConfig{}).Fetch(ctx, r)
			if by == "receiver" {
				isKind(t, err, context.Canceled)
			} else {
				isKind(t, err, ErrIncomplete)
			}
			if got := tree(t, dest, false); len(got) != 1 {
				t.Errorf("dest = %v, want empty", got)
			}
		})
	}
}
