package transfer

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanchat/lanchat/ipmsg"
)

func TestFileRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 3 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "数据 file.bin")
			want := writeRandom(t, src, size, uint64(size))
			setTime(t, src, 0x65a1b2c3)
			s, addr := startServer(t, ServerConfig{})
			files := share(t, s, 0x2a, src)
			if f := files[0]; f.ID != firstID || f.Name != "数据 file.bin" || f.Size != uint64(size) ||
				f.MTime != 0x65a1b2c3 || f.Attr != ipmsg.FileRegular {
				t.Fatalf("Share entry = %+v", f)
			}
			dest, _ := sandbox(t)
			var reports []Progress
			r := request(addr, 0x2a, files[0], dest)
			r.Progress = func(p Progress) { reports = append(reports, p) }
			path, err := newTestClient(t, ClientConfig{}).Fetch(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			if path != filepath.Join(dest, "数据 file.bin") {
				t.Errorf("path = %s", path)
			}
			if got := tree(t, dest, true); len(got) != 2 || got["数据 file.bin"] != sum(want)+"@65a1b2c3" {
				t.Errorf("dest = %v, want the file with its hash and mtime", got)
			}
			last := reports[len(reports)-1]
			if !last.Final || last.Done != int64(size) || last.Total != int64(size) {
				t.Errorf("final progress = %+v", last)
			}
		})
	}
}

// TestRequestLine checks the request bytes against IP Messenger's form
// (protocol §6.3, vector FILE-15): command exactly 96 or 98, hex
// arguments, trailing ':'.
func TestRequestLine(t *testing.T) {
	fake := startFake(t, sendBytes([]byte("abc")))
	dest, _ := sandbox(t)
	c := newTestClient(t, ClientConfig{})
	f := ipmsg.File{ID: 10000, Name: "a.txt", Size: 3, Attr: ipmsg.FileRegular}
	if _, err := c.Fetch(context.Background(), request(fake.addr, 0x6553f1a4, f, dest)); err != nil {
		t.Fatal(err)
	}
	fake2 := startFake(t, sendBytes(dirStream(nil).dir("d", 0).up()))
	r := request(fake2.addr, 0x6553f1a4, dirFile("d"), dest)
	r.Header.Command = ipmsg.UTF8Opt
	if _, err := c.Fetch(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got := append(fake.got(), fake2.got()...)
	want := []string{"1:7:alice:pc:96:6553f1a4:2710:0:", "1:7:alice:pc:8388706:6553f1a4:2710:"}
	if !slices.Equal(got, want) {
		t.Errorf("requests:\n got %q\nwant %q", got, want)
	}
}

func TestNeverOverwrite(t *testing.T) {
	src := filepath.Join(t.TempDir(), "report.pdf")
	want := writeRandom(t, src, 1000, 1)
	s, addr := startServer(t, ServerConfig{})
	files := share(t, s, 1, src)
	dest, _ := sandbox(t)
	if err := os.WriteFile(filepath.Join(dest, "report.pdf"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, ClientConfig{})
	var paths []string
	for range 2 {
		path, err := c.Fetch(context.Background(), request(addr, 1, files[0], dest))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Base(path))
	}
	if want := []string{"report (1).pdf", "report (2).pdf"}; !slices.Equal(paths, want) {
		t.Errorf("saved as %q, want %q", paths, want)
	}
	got := tree(t, dest, false)
	if got["report.pdf"] != sum([]byte("mine")) || got["report (1).pdf"] != sum(want) || got["report (2).pdf"] != sum(want) {
		t.Errorf("dest = %v", got)
	}
}

// TestConcurrentSameName fetches one offer twice at once into one folder:
// each download needs its own .part.
func TestConcurrentSameName(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big.bin")
	want := writeRandom(t, src, 8<<20, 2)
	s, addr := startServer(t, ServerConfig{})
	files := share(t, s, 1, src)
	dest, _ := sandbox(t)
	c := newTestClient(t, ClientConfig{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := c.Fetch(context.Background(), request(addr, 1, files[0], dest)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := tree(t, dest, false)
	if len(got) != 3 || got["big.bin"] != sum(want) || got["big (1).bin"] != sum(want) {
		t.Errorf("dest = %v", got)
	}
}

// TestResume continues a .part from a sender that honours offsets.
func TestResume(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.bin")
	want := writeRandom(t, src, 1<<20, 3)
	var uploads []Upload
	var mu sync.Mutex
	s, addr := startServer(t, ServerConfig{OnUpload: func(u Upload) { mu.Lock(); uploads = append(uploads, u); mu.Unlock() }})
	files := share(t, s, 1, src)
	dest, _ := sandbox(t)
	if err := os.WriteFile(partPath(dest, files[0]), want[:300000], 0o644); err != nil {
		t.Fatal(err)
	}
	r := request(addr, 1, files[0], dest)
	r.Resume = true
	if _, err := newTestClient(t, ClientConfig{}).Fetch(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dest, false); len(got) != 2 || got["a.bin"] != sum(want) {
		t.Errorf("dest = %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if first := uploads[0]; first.Done < 300000 || uploads[len(uploads)-1].Err != nil {
		t.Errorf("server reports %+v ... %+v, want a start at offset 300000 and success", first, uploads[len(uploads)-1])
	}
}

// TestResumeOnlySameFile: a .part left by another file of the same name
// (a new version, offered later) is not continued: it would splice the old
// file's head onto the new one's tail and call it done.
func TestResumeOnlySameFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.bin")
	old := writeRandom(t, src, 1<<20, 6)
	s, addr := startServer(t, ServerConfig{})
	oldFile := share(t, s, 1, src)[0]
	dest, _ := sandbox(t)
	if err := os.WriteFile(partPath(dest, oldFile), old[:300000], 0o644); err != nil {
		t.Fatal(err)
	}
	want := writeRandom(t, src, 1<<20, 7)
	os.Chtimes(src, time.Unix(oldFile.MTime+60, 0), time.Unix(oldFile.MTime+60, 0))
	r := request(addr, 2, share(t, s, 2, src)[0], dest)
	r.Resume = true
	if _, err := newTestClient(t, ClientConfig{}).Fetch(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dest, false); got["a.bin"] != sum(want) {
		t.Errorf("dest = %v: a.bin is not the new file", got)
	}
}

// TestRestartWithoutResume: without Resume an old .part (here garbage) is
// started again from 0.
func TestRestartWithoutResume(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.bin")
	want := writeRandom(t, src, 100000, 4)
	s, addr := startServer(t, ServerConfig{})
	files := share(t, s, 1, src)
	dest, _ := sandbox(t)
	if err := os.WriteFile(partPath(dest, files[0]), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := newTestClient(t, ClientConfig{}).Fetch(context.Background(), request(addr, 1, files[0], dest)); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dest, false); len(got) != 2 || got["a.bin"] != sum(want) {
		t.Errorf("dest = %v", got)
	}
}

// TestCutThenRefetch: a sender closes after n bytes; the .part stays, and
// fetching again, resuming or not, completes the same file.
func TestCutThenRefetch(t *testing.T) {
	for _, resume := range []bool{false, true} {
		t.Run(map[bool]string{false: "restart", true: "resume"}[resume], func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "a.bin")
			want := writeRandom(t, src, 2<<20, 5)
			cut := startFake(t, sendBytes(want[:700000]))
			s, addr := startServer(t, ServerConfig{})
			files := share(t, s, 1, src)
			dest, _ := sandbox(t)
			c := newTestClient(t, ClientConfig{})
			r := request(cut.addr, 1, files[0], dest)
			r.Resume = resume
			_, err := c.Fetch(context.Background(), r)
			isKind(t, err, ErrIncomplete)
			if fi, err := os.Stat(partPath(dest, files[0])); err != nil || fi.Size() != 700000 {
				t.Fatalf("after the cut: .part %v, %v; want 700000 bytes", fi, err)
			}
			r.From = addr
			if _, err := c.Fetch(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if got := tree(t, dest, false); len(got) != 2 || got["a.bin"] != sum(want) {
				t.Errorf("dest = %v", got)
			}
		})
	}
}

func TestSenderSendsWrongAmount(t *testing.T) {
	content := []byte("0123456789")
	f := ipmsg.File{ID: firstID, Name: "a.txt", Size: 10, Attr: ipmsg.FileRegular}
	t.Run("fewer", func(t *testing.T) {
		fake := startFake(t, sendBytes(content[:9]))
		dest, _ := sandbox(t)
		_, err := newTestClient(t, ClientConfig{}).Fetch(context.Background(), request(fake.addr, 1, f, dest))
		isKind(t, err, ErrIncomplete)
		if !strings.Contains(err.Error(), "after 9 of 10 bytes") {
			t.Errorf("err = %v, want the byte counts", err)
		}
		if got := tree(t, dest, false); len(got) != 2 || got[filepath.Base(partPath(dest, f))] != sum(content[:9]) {
			t.Errorf("dest = %v, want the .part kept", got)
		}
	})
	t.Run("more", func(t *testing.T) {
		fake := startFake(t, sendBytes(append(content, '!')))
		dest, _ := sandbox(t)
		_, err := newTestClient(t, ClientConfig{}).Fetch(context.Background(), request(fake.addr, 1, f, dest))
		isKind(t, err, ErrOversize)
		if got := tree(t, dest, false); len(got) != 1 {
			t.Errorf("dest = %v, want empty", got)
		}
	})
}

// TestFileChangedSinceOffer: a grown file is sent as offered; a shrunk one
// is refused before any byte goes out.
func TestFileChangedSinceOffer(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(src, []byte("hello"), 0o644)
	errs := make(chan error, 4)
	s, addr := startServer(t, ServerConfig{OnUpload: func(u Upload) {
		if u.Final {
			errs <- u.Err
		}
	}})
	files := share(t, s, 1, src)
	dest, _ := sandbox(t)
	c := newTestClient(t, ClientConfig{})
	os.WriteFile(src, []byte("hello, world"), 0o644)
	if path, err := c.Fetch(context.Background(), request(addr, 1, files[0], dest)); err != nil {
		t.Fatal(err)
	} else if b, _ := os.ReadFile(path); string(b) != "hello" {
		t.Errorf("got %q, want the 5 offered bytes", b)
	}
	if err := <-errs; err != nil {
		t.Errorf("upload error %v", err)
	}
	os.WriteFile(src, []byte("hi"), 0o644)
	_, err := c.Fetch(context.Background(), request(addr, 1, files[0], dest))
	isKind(t, err, ErrIncomplete)
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "shrank from 5 to 2 bytes") {
		t.Errorf("upload error %v, want a shrink", err)
	}
}

// TestGetDirFilesOnFile: IP Messenger may ask for a regular file with
// GETDIRFILES; the answer is that file's record alone (protocol §6.4).
func TestGetDirFilesOnFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(src, []byte("hello"), 0o644)
	setTime(t, src, 0x65a1b2c3)
	s, addr := startServer(t, ServerConfig{})
	share(t, s, 0x10, src)
	got, _ := rawRequest(t, addr, loopback, "1:1:u:h:98:10:2710:")
	if want := "002f:a.txt:000000005:1:14=65a1b2c3:16=65a1b2c3:hello"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCancelByReceiver(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big.bin")
	writeSparse(t, src, 64<<20)
	errs := make(chan error, 1)
	s, addr := startServer(t, ServerConfig{OnUpload: func(u Upload) {
		if u.Final {
			errs <- u.Err
		}
	}})
	files := share(t, s, 1, src)
	dest, _ := sandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := request(addr, 1, files[0], dest)
	r.Progress = func(Progress) { cancel() }
	_, err := newTestClient(t, ClientConfig{}).Fetch(ctx, r)
	isKind(t, err, context.Canceled)
	if err := <-errs; err == nil {
		t.Error("the server saw no error")
	}
	if fi, err := os.Stat(partPath(dest, files[0])); err != nil || fi.Size() >= 64<<20 {
		t.Errorf(".part = %v, %v; want a partial file kept", fi, err)
	}
}

func TestCancelBySender(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big.bin")
	writeSparse(t, src, 64<<20)
	errs := make(chan error, 1)
	s, addr := startServer(t, ServerConfig{OnUpload: func(u Upload) {
		if u.Final {
			errs <- u.Err
		}
	}})
	files := share(t, s, 1, src)
	dest, _ := sandbox(t)
	var once sync.Once
	r := request(addr, 1, files[0], dest)
	r.Progress = func(Progress) {
		once.Do(func() {
			s.Cancel(1)
			if err := <-errs; err == nil {
				t.Error("the server saw no error")
			}
		})
	}
	_, err := newTestClient(t, ClientConfig{}).Fetch(context.Background(), r)
	isKind(t, err, ErrIncomplete)
	// The offer is gone: fetching again is refused.
	_, err = newTestClient(t, ClientConfig{}).Fetch(context.Background(), request(addr, 1, files[0], dest))
	isKind(t, err, ErrIncomplete)
}

func TestDialFailure(t *testing.T) {
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	dest, _ := sandbox(t)
	f := ipmsg.File{ID: firstID, Name: "a.txt", Size: 1, Attr: ipmsg.FileRegular}
	_, err := newTestClient(t, ClientConfig{DialTimeout: time.Second}).Fetch(context.Background(), request(addr, 1, f, dest))
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v", err)
	}
	if got := tree(t, dest, false); len(got) != 1 {
		t.Errorf("dest = %v, want nothing created", got)
	}
	if errors.Is(err, ErrIncomplete) {
		t.Error("a failed dial is not an incomplete transfer")
	}
}

// TestServeStops: canceling Serve's context ends it promptly even while a
// connection is stuck writing to a peer that does not read.
func TestServeStops(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big.bin")
	writeSparse(t, src, 64<<20)
	s := NewServer(ServerConfig{})
	share(t, s, 1, src)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("1:1:u:h:96:1:2710:0:"))
	c.Read(make([]byte, 1)) // the transfer has started; now read no more
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener is still open")
	}
}
