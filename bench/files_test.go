//go:build linux

package bench

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
	"golang.org/x/sys/unix"
)

// File benchmark sizes.
const (
	xferBigSize    = 1 << 30 // BenchmarkFileTransfer1GiB's file
	xferSmallCount = 10000   // BenchmarkFolder10k's files…
	xferSmallSize  = 4 << 10 // …of this size each
	xferBufSize    = 64 << 10
)

// BenchmarkFileTransfer1GiB sends a 1 GiB file of random bytes from one
// `lanchat serve` to another (`send --file`, then `accept`, timed from the
// accept's start to its end) and, between the same two namespaces, copies
// the same file over a plain TCP connection: io.Copy from the *os.File to
// the socket (sendfile) and from the socket to a new file (splice), the
// disk work lanchat does. It reports both rates, their ratio, and the peak
// resident memory of the receiving process, which must not grow with the
// file.
func BenchmarkFileTransfer1GiB(b *testing.B) {
	netns.Require(b)
	p := startXferPair(b, "10.85.1.0/24")
	src := filepath.Join(b.TempDir(), "big 1GiB.bin")
	sum := xferWriteRandom(b, src, xferBigSize)
	hwm0 := xferHWM(b, p.b.PID())

	c := xferComparison{rounds: 5}
	for b.Loop() {
		dest := b.TempDir()
		c.run(func() time.Duration {
			dst := filepath.Join(dest, "tcp.bin")
			d, err := xferTCPCopy(p.ha, p.hb, src, dst)
			if err != nil {
				b.Fatal(err)
			}
			os.Remove(dst)
			return d
		}, func() time.Duration {
			got, d := p.accept(b, src, dest)
			if h := xferHash(b, got); h != sum {
				b.Fatalf("received file has SHA-256 %s, want %s", h, sum)
			}
			os.Remove(got)
			return d
		})
	}
	hwm1 := xferHWM(b, p.b.PID())
	c.report(b, "tcp", "MB/s", xferBigSize/1e6)
	b.ReportMetric(float64(hwm1)/(1<<20), "rx-peak-RSS-MiB")
	b.ReportMetric(float64(hwm1-hwm0)/(1<<20), "rx-RSS-growth-MiB")
	b.Logf("receiving lanchat serve: peak RSS %.1f MiB after the transfers, %.1f MiB before",
		float64(hwm1)/(1<<20), float64(hwm0)/(1<<20))
}

// BenchmarkFolder10k sends a folder of 10,000 files of 4 KiB with lanchat
// (`send --file DIR`, `accept`) and, as the baseline, as a tar stream over
// plain TCP between the same namespaces: archive/tar writing the folder into
// the socket, and a tar reader creating the files on the other side with
// their mtimes, as lanchat does.
func BenchmarkFolder10k(b *testing.B) {
	netns.Require(b)
	p := startXferPair(b, "10.86.1.0/24")
	src := filepath.Join(b.TempDir(), "小文件 10k")
	xferWriteFolder(b, src, xferSmallCount, xferSmallSize)

	c := xferComparison{rounds: 9}
	viaTar := func() time.Duration {
		dst := filepath.Join(b.TempDir(), "tar")
		d, err := xferTarCopy(p.ha, p.hb, src, dst)
		if err != nil {
			b.Fatal(err)
		}
		xferWantFiles(b, filepath.Join(dst, filepath.Base(src)))
		os.RemoveAll(dst)
		return d
	}
	viaLanchat := func() time.Duration {
		dst := filepath.Join(b.TempDir(), "lanchat")
		got, d := p.accept(b, src, dst)
		xferWantFiles(b, got)
		os.RemoveAll(dst)
		return d
	}
	for b.Loop() {
		c.run(viaTar, viaLanchat)
	}
	c.report(b, "tar", "files/s", xferSmallCount)
	mb := float64(xferSmallCount) * xferSmallSize / 1e6
	b.ReportMetric(mb/c.median(c.lanchat).Seconds(), "lanchat-MB/s")
	b.ReportMetric(mb/c.median(c.baseline).Seconds(), "tar-MB/s")
}

// xferComparison collects the timings of lanchat copies and baseline ones.
// The disk of a shared machine changes speed by a factor of several from one
// copy to the next, so one copy of each would measure the disk's mood as
// much as lanchat: each iteration makes several of each kind, alternating
// which goes first, and both the medians and the best times are reported.
type xferComparison struct {
	rounds            int
	lanchat, baseline []time.Duration
}

// run makes c.rounds copies of each kind. Each function returns the time of
// its copy; its checks and clean-up are not counted. Dirty pages are written
// out before every copy, so none pays for the previous one's writeback.
func (c *xferComparison) run(baseline, lanchat func() time.Duration) {
	for range c.rounds {
		first, second := &c.baseline, &c.lanchat
		f1, f2 := baseline, lanchat
		if len(c.lanchat)%2 == 1 {
			first, second, f1, f2 = second, first, f2, f1
		}
		xferSync()
		*first = append(*first, f1())
		xferSync()
		*second = append(*second, f2())
	}
}

// report gives the rates of work units per second for both kinds, by
// median and by best time, and their ratios (lanchat / baseline).
func (c *xferComparison) report(b *testing.B, baseline, unit string, work float64) {
	lm, bm := work/c.median(c.lanchat).Seconds(), work/c.median(c.baseline).Seconds()
	lb, bb := work/slices.Min(c.lanchat).Seconds(), work/slices.Min(c.baseline).Seconds()
	b.ReportMetric(lm, "lanchat-"+unit)
	b.ReportMetric(bm, baseline+"-"+unit)
	b.ReportMetric(lm/bm, "ratio")
	b.ReportMetric(lb/bb, "best-ratio")
	b.Logf("median of %d: lanchat %.0f %s vs %s %.0f %s, ratio %.2f; best: lanchat %.0f vs %s %.0f, ratio %.2f",
		len(c.lanchat), lm, unit, baseline, bm, unit, lm/bm, lb, baseline, bb, lb/bb)
	b.Logf("lanchat %v", xferRounded(c.lanchat))
	b.Logf("%s %v", baseline, xferRounded(c.baseline))
}

func (c *xferComparison) median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func xferRounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// xferPair is a sending and a receiving `lanchat serve` on one segment.
type xferPair struct {
	ha, hb *netns.Host
	a, b   *lantest.Node
	mu     sync.Mutex
	offers map[string]string // offer message ID by text, as bob's events show them
	seq    int
}

func startXferPair(tb testing.TB, prefix string) *xferPair {
	tb.Helper()
	seg := netns.New(tb).Segment(netip.MustParsePrefix(prefix))
	p := &xferPair{ha: seg.AddHost("a"), hb: seg.AddHost("b"), offers: map[string]string{}}
	p.a = lantest.StartAs(tb, p.ha, "a", "alice", "--downloads", tb.TempDir())
	p.b = lantest.StartAs(tb, p.hb, "b", "bob", "--downloads", tb.TempDir())
	go func() {
		for e := range p.b.Events() {
			if m, ok := e.Message(); ok && len(m.Files) > 0 {
				p.mu.Lock()
				p.offers[m.Text] = m.ID
				p.mu.Unlock()
			}
		}
	}()
	p.a.WaitPeers(5*time.Second, "bob")
	p.b.WaitPeers(5*time.Second, "alice")
	return p
}

// offer has alice offer path to bob and returns the offer's ID at bob.
func (p *xferPair) offer(tb testing.TB, path string) string {
	tb.Helper()
	p.seq++
	text := "bench offer " + strconv.Itoa(p.seq)
	out, err := p.a.CLI("send", "--file", path, "bob", text)
	if err != nil || out != "delivered to bob\n" {
		tb.Fatalf("send --file: %v %q", err, out)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		id := p.offers[text]
		p.mu.Unlock()
		if id != "" {
			return id
		}
	}
	tb.Fatalf("bob's events show no offer %q", text)
	return ""
}

// accept has alice offer src and bob accept it into dest, and returns
// where bob saved it and how long the accept took.
func (p *xferPair) accept(tb testing.TB, src, dest string) (string, time.Duration) {
	tb.Helper()
	id := p.offer(tb, src)
	start := time.Now()
	out, err := p.b.CLI("accept", "--to", dest, id)
	d := time.Since(start)
	if err != nil {
		tb.Fatalf("accept: %v", err)
	}
	got := filepath.Join(dest, filepath.Base(src))
	if !strings.HasPrefix(out, filepath.Base(src)+" done → "+got) {
		tb.Fatalf("accept printed %q, want %s done", out, got)
	}
	return got, d
}

// xferPipe runs one TCP connection from from's namespace to to's: recv
// serves the accepted side, send the dialled one. It returns the time from
// the start of send to the end of both.
func xferPipe(from, to *netns.Host, send, recv func(*net.TCPConn) error) (time.Duration, error) {
	ln, err := to.ListenTCP(0)
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- recv(c)
	}()
	start := time.Now()
	c, err := from.DialTCP(ln.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		return 0, err
	}
	err = send(c)
	c.Close()
	if err = errors.Join(err, <-done); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// xferTCPCopy copies the file src in from's namespace over one TCP
// connection into a new file dst written in to's namespace, and returns
// the time from dialling to the received file's close.
func xferTCPCopy(from, to *netns.Host, src, dst string) (time.Duration, error) {
	d, err := xferPipe(from, to, func(c *net.TCPConn) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(c, f) // sendfile(2)
		return err
	}, func(c *net.TCPConn) error {
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, c) // splice(2)
		return errors.Join(err, f.Close())
	})
	if err != nil {
		return 0, fmt.Errorf("tcp copy: %w", err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Size() != xferBigSize {
		return 0, fmt.Errorf("tcp copy: %s is %v (%v), want %d bytes", dst, fi, err, xferBigSize)
	}
	return d, nil
}

// xferTarCopy streams the folder src from from's namespace as a tar over
// one TCP connection and unpacks it into dst (created) in to's namespace,
// keeping mtimes; it returns the time from dialling to the last file's
// close.
func xferTarCopy(from, to *netns.Host, src, dst string) (time.Duration, error) {
	d, err := xferPipe(from, to, func(c *net.TCPConn) error { return xferTar(c, src) },
		func(c *net.TCPConn) error { return xferUntar(bufio.NewReaderSize(c, xferBufSize), dst) })
	if err != nil {
		return 0, fmt.Errorf("tar copy: %w", err)
	}
	return d, nil
}

// xferTar writes the folder src, under its own name, as a tar stream.
func xferTar(w io.Writer, src string) error {
	bw := bufio.NewWriterSize(w, xferBufSize)
	tw := tar.NewWriter(bw)
	buf := make([]byte, xferBufSize)
	parent := filepath.Dir(src)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(parent, p)
		h.Name = filepath.ToSlash(rel)
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.CopyBuffer(xferWriter{tw}, xferReader{f}, buf)
		return errors.Join(err, f.Close())
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// xferUntar creates what a tar stream holds under dst, as tar -x would:
// plain paths, no os.Root, since the stream is our own.
func xferUntar(r io.Reader, dst string) error {
	if err := os.MkdirAll(dst, 0o777); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	buf := make([]byte, xferBufSize)
	var dirs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dst, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(p, 0o777); err != nil {
				return err
			}
			dirs = append(dirs, h)
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
			if err != nil {
				return err
			}
			_, err = io.CopyBuffer(xferWriter{f}, xferReader{tr}, buf)
			if err = errors.Join(err, f.Close()); err != nil {
				return err
			}
			if err := os.Chtimes(p, time.Time{}, h.ModTime); err != nil {
				return err
			}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- { // after their contents, as lanchat does
		p := filepath.Join(dst, filepath.FromSlash(dirs[i].Name))
		if err := os.Chtimes(p, time.Time{}, dirs[i].ModTime); err != nil {
			return err
		}
	}
	return nil
}

// xferReader and xferWriter hide ReadFrom and WriteTo, so that io.CopyBuffer
// uses the buffer it is given, as lanchat does, instead of allocating 32 KiB
// per file: with 10,000 files the garbage would cost the baseline more than
// the copying.
type (
	xferReader struct{ r io.Reader }
	xferWriter struct{ w io.Writer }
)

func (x xferReader) Read(p []byte) (int, error)  { return x.r.Read(p) }
func (x xferWriter) Write(p []byte) (int, error) { return x.w.Write(p) }

// xferWriteRandom writes size random bytes to path and returns their SHA-256.
func xferWriteRandom(tb testing.TB, path string, size int64) string {
	tb.Helper()
	var seed [32]byte
	rand.Read(seed[:])
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.New()
	_, err = io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(mrand.NewChaCha8(seed), size), make([]byte, 1<<20))
	if err = errors.Join(err, f.Close()); err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// xferWriteFolder makes dir with n random files of size bytes each.
func xferWriteFolder(tb testing.TB, dir string, n, size int) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	var seed [32]byte
	rand.Read(seed[:])
	rng := mrand.NewChaCha8(seed)
	buf := make([]byte, size)
	for i := range n {
		rng.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("文件-%05d.dat", i)), buf, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// xferWantFiles checks dir holds the benchmark's folder: every file, each
// of the right size.
func xferWantFiles(tb testing.TB, dir string) {
	tb.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	if len(es) != xferSmallCount {
		tb.Fatalf("%s holds %d entries, want %d", dir, len(es), xferSmallCount)
	}
	for _, e := range es[:10] {
		if fi, err := e.Info(); err != nil || fi.Size() != xferSmallSize {
			tb.Fatalf("%s/%s: %v %v", dir, e.Name(), fi, err)
		}
	}
}

func xferHash(tb testing.TB, path string) string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// xferSync writes dirty pages out, so each timed copy starts with the same
// clean page cache rather than paying for the previous one's writeback.
func xferSync() { unix.Sync() }

// xferHWM is the peak resident set size of process pid (VmHWM), in bytes.
func xferHWM(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		tb.Fatal(err)
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 10, 64)
			if err != nil {
				tb.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
