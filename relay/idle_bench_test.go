package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/lanchat/lanchat/relay/store"
)

// BenchmarkRelayIdleClients measures what idle members cost a relay. The
// relay runs in a child process (this test binary again, see TestMain);
// -relay.clients members connect to it over TCP on loopback from this
// process, each with its own libp2p host, connection and open session
// stream, and stay idle. It reports the growth of the child's resident
// memory (VmRSS) per member, from the relay with every member enrolled and
// none connected, beside two baselines from the same run: the same relay
// holding as many libp2p connections that open no session (what libp2p
// itself costs: Noise, yamux and their goroutines), and a trivial Go TCP
// server (a goroutine and a 4 KiB read buffer per connection) holding as
// many bare connections. Run it alone, for example
//
//	go test -run '^$' -bench RelayIdleClients -benchtime 1x ./relay -relay.clients 10000
//
// With LANCHAT_BENCH_HEAP=FILE the relay writes heap and goroutine
// profiles of its state with sessions to FILE and FILE.goroutine (go tool
// pprof -sample_index inuse_space FILE).
func BenchmarkRelayIdleClients(b *testing.B) {
	n := *idleClients
	keys, ids := benchKeys(b, n)
	dir := b.TempDir()
	enrollAll(b, filepath.Join(dir, "store"), ids)
	var perMember, perMemberRaw, perLibp2p, perConn float64
	for b.Loop() {
		perMember, perMemberRaw = idleRelay(b, dir, keys, true)
		perLibp2p, _ = idleRelay(b, dir, keys, false)
		perConn = idleTCP(b, n)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n), "clients")
	b.ReportMetric(perMember, "relay-B/client")
	b.ReportMetric(perMemberRaw, "relay-B/client-before-gc")
	b.ReportMetric(perLibp2p, "libp2p-B/conn")
	b.ReportMetric(perConn, "tcp-B/conn")
	b.Logf("%d idle clients: relay %.1f KiB each (%.1f KiB before returning freed memory; target 40 KB) vs libp2p connection alone %.1f KiB vs bare TCP %.1f KiB",
		n, perMember/1024, perMemberRaw/1024, perLibp2p/1024, perConn/1024)
}

var idleClients = flag.Int("relay.clients", 2000, "members BenchmarkRelayIdleClients connects")

// Environment of the child process.
const (
	childEnv = "LANCHAT_BENCH_CHILD" // "relay" or "tcp"
	dirEnv   = "LANCHAT_BENCH_DIR"   // the relay's data folder
	heapEnv  = "LANCHAT_BENCH_HEAP"  // where the benchmark has the relay write profiles
)

// TestMain runs a benchmark's child process when asked to, and the tests
// otherwise.
func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "relay":
		os.Exit(childMain(serveRelay))
	case "tcp":
		os.Exit(childMain(serveTCP))
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: want relay or tcp\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

// childStats is what a child answers to "stats".
type childStats struct {
	Conns      int    `json:"conns"`  // connections held
	Online     int    `json:"online"` // relay sessions
	Goroutines int    `json:"goroutines"`
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
}

// childMain starts a server with serve, prints "ready ADDR", and answers
// the commands it reads from stdin, one a line, until stdin ends:
//
//	stats        one JSON childStats line
//	gc           collects and returns freed memory to the system; "ok"
//	heap FILE    writes a heap profile; "ok"
//	goroutine FILE  writes a goroutine profile; "ok"
func childMain(serve func(ctx context.Context) (addr string, stats func() childStats, err error)) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, stats, err := serve(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready", addr)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "stats":
			st := stats()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			st.Goroutines, st.HeapInuse, st.StackInuse, st.Sys = runtime.NumGoroutine(), ms.HeapInuse, ms.StackInuse, ms.Sys
			b, _ := json.Marshal(st)
			fmt.Println(string(b))
		case "gc":
			debug.FreeOSMemory()
			fmt.Println("ok")
		case "heap", "goroutine":
			f, err := os.Create(arg)
			if err == nil {
				runtime.GC()
				err = errors.Join(pprof.Lookup(cmd).WriteTo(f, 0), f.Close())
			}
			if err != nil {
				fmt.Println("error", err)
				continue
			}
			fmt.Println("ok")
		default:
			fmt.Println("error unknown command", cmd)
		}
	}
	return 0
}

// serveRelay runs the relay on $LANCHAT_BENCH_DIR, on loopback TCP.
func serveRelay(ctx context.Context) (string, func() childStats, error) {
	s, err := NewServer(ctx, ServerConfig{Dir: os.Getenv(dirEnv), Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return "", nil, err
	}
	go s.Run(ctx) // the process ends with stdin
	stats := func() childStats {
		st, _ := s.Status(ctx)
		return childStats{Conns: st.Conns, Online: st.Online}
	}
	return s.Addrs()[0], stats, nil
}

// serveTCP is the baseline server: it accepts connections on loopback and
// reads each, from a goroutine, into a 4 KiB buffer.
func serveTCP(context.Context) (string, func() childStats, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Add(-1)
				defer c.Close()
				io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, make([]byte, 4096))
			}()
		}
	}()
	return ln.Addr().String(), func() childStats { return childStats{Conns: int(conns.Load())} }, nil
}

// child is a running child process.
type child struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	addr string
}

// startChild runs this test binary as a child of the given kind.
func startChild(b *testing.B, kind string, env ...string) *child {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+kind), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	b.Cleanup(c.stop)
	line := c.line(b)
	addr, ok := strings.CutPrefix(line, "ready ")
	if !ok {
		b.Fatalf("%s child: %q", kind, line)
	}
	c.addr = addr
	return c
}

func (c *child) line(b *testing.B) string {
	b.Helper()
	if !c.out.Scan() {
		b.Fatalf("child ended: %v", c.out.Err())
	}
	return c.out.Text()
}

// do sends a command and returns the answer.
func (c *child) do(b *testing.B, cmd string) string {
	b.Helper()
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		b.Fatal(err)
	}
	ans := c.line(b)
	if strings.HasPrefix(ans, "error") {
		b.Fatalf("child: %s: %s", cmd, ans)
	}
	return ans
}

func (c *child) stats(b *testing.B) childStats {
	b.Helper()
	var st childStats
	if err := json.Unmarshal([]byte(c.do(b, "stats")), &st); err != nil {
		b.Fatal(err)
	}
	return st
}

// rss is the child's resident memory in bytes.
func (c *child) rss(b *testing.B) int64 {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for l := range strings.Lines(string(st)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// stop ends the child by closing its stdin, and kills it if it lingers.
func (c *child) stop() {
	if c.in == nil {
		return
	}
	c.in.Close()
	c.in = nil
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// settle polls until f's value stays the same for a second, or 2 minutes pass.
func settle(f func() int64) {
	last := f()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		v := f()
		if v == last {
			return
		}
		last = v
	}
}

// measure is the child's RSS once it is quiet, and again after it returned
// freed memory to the system.
func (c *child) measure(b *testing.B) (raw, freed int64) {
	b.Helper()
	settle(func() int64 { return c.rss(b) >> 20 })
	raw = c.rss(b)
	c.do(b, "gc")
	return raw, c.rss(b)
}

// benchKeys makes n member identities.
func benchKeys(b *testing.B, n int) ([]crypto.PrivKey, []string) {
	b.Helper()
	keys, ids := make([]crypto.PrivKey, n), make([]string, n)
	for i := range n {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			b.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			b.Fatal(err)
		}
		keys[i], ids[i] = k, id.String()
	}
	return keys, ids
}

// enrollAll makes every id a member of the relay whose store is in dir, by
// invite, as joining does.
func enrollAll(b *testing.B, dir string, ids []string) {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	err = parallel(16, len(ids), func(i int) error {
		secret, err := st.CreateInvite(ctx, time.Hour, "")
		if err != nil {
			return err
		}
		if _, err := st.RedeemInvite(ctx, secret, ids[i], fmt.Sprintf("member%05d", i)); err != nil {
			return err
		}
		p := benchProfile(i)
		return st.SetProfile(ctx, ids[i], p.Key, p.Nick, p.Group)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// benchProfile is member i's profile, the same at enrolment and at every
// connection, as a real member's is.
func benchProfile(i int) Profile {
	return Profile{Key: fmt.Sprintf("member%05d@pc%05d", i, i), Nick: fmt.Sprintf("member%05d", i), Group: "bench"}
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// idleRelay connects every key to a relay child, with a session or only a
// connection, and returns its memory per member, after and before it
// returned freed memory to the system.
func idleRelay(b *testing.B, dir string, keys []crypto.PrivKey, session bool) (perMember, perMemberRaw float64) {
	b.Helper()
	c := startChild(b, "relay", dirEnv+"="+dir)
	defer c.stop()
	info, err := AddrInfo([]string{c.addr})
	if err != nil {
		b.Fatal(err)
	}
	raw0, rss0 := c.measure(b)
	st0 := c.stats(b)

	var received atomic.Int64 // bytes the members read, to see when presence updates stop
	var lost atomic.Int64     // sessions the relay ended
	members := make([]*idleMember, len(keys))
	defer func() {
		parallel(8, len(members), func(i int) error {
			if members[i] != nil {
				members[i].close()
			}
			return nil
		})
	}()
	start := time.Now()
	// Few at a time: every member that comes gets the whole directory and
	// every other one hears of it, so a stampede only starves handshakes.
	err = parallel(8, len(keys), func(i int) error {
		m, err := connectIdle(keys[i], benchProfile(i), info, session, &received, &lost)
		members[i] = m
		if err != nil {
			return fmt.Errorf("member %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	connected := time.Since(start)
	want := func(st childStats) int { return st.Online }
	if !session {
		want = func(st childStats) int { return st.Conns }
	}
	for deadline := time.Now().Add(2 * time.Minute); want(c.stats(b)) < len(keys); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d members connected", want(c.stats(b)), len(keys))
		}
	}
	settle(received.Load)
	quiet := time.Since(start)
	raw1, rss1 := c.measure(b)
	st1 := c.stats(b)
	if p := os.Getenv(heapEnv); p != "" && session {
		c.do(b, "heap "+p)
		c.do(b, "goroutine "+p+".goroutine")
	}
	if l := lost.Load(); l > 0 {
		b.Errorf("the relay ended %d of %d sessions", l, len(keys))
	}
	n := float64(len(keys))
	what := "relay, members with sessions"
	if !session {
		what = "relay, connections without sessions"
	}
	b.Logf("%s: %d connected in %v, quiet after %v; members read %d MiB (welcome and presence)",
		what, len(keys), connected.Round(time.Millisecond), quiet.Round(time.Millisecond), received.Load()>>20)
	b.Logf("%s: RSS %d → %d MiB (%d → %d MiB before returning freed memory); per member: Go heap %.1f KiB, stacks %.1f KiB, %.1f goroutines",
		what, rss0>>20, rss1>>20, raw0>>20, raw1>>20, float64(st1.HeapInuse-st0.HeapInuse)/n/1024,
		float64(st1.StackInuse-st0.StackInuse)/n/1024, float64(st1.Goroutines-st0.Goroutines)/n)
	return float64(rss1-rss0) / n, float64(raw1-raw0) / n
}

// idleMember is a member's host with its session stream open, reading
// (and discarding) what the relay sends.
type idleMember struct {
	h       host.Host
	str     network.Stream
	done    chan struct{}
	closing atomic.Bool
}

// connectIdle connects one member: a libp2p host with only the TCP
// transport, no listener and no resource limits (the relay's side is what
// is measured), which says hello and reads the welcome if session is set.
func connectIdle(key crypto.PrivKey, prof Profile, relay peer.AddrInfo, session bool, received, lost *atomic.Int64) (*idleMember, error) {
	h, err := libp2p.New(libp2p.Identity(key), security, libp2p.NoTransports, libp2p.Transport(tcp.NewTCPTransport),
		libp2p.NoListenAddrs, libp2p.ResourceManager(&network.NullResourceManager{}), libp2p.DisableMetrics(),
		libp2p.DisableRelay())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := &idleMember{h: h, done: make(chan struct{})}
	if err := h.Connect(ctx, relay); err != nil {
		h.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if !session {
		close(m.done)
		return m, nil
	}
	if m.str, err = h.NewStream(ctx, relay.ID, ProtoSession); err != nil {
		h.Close()
		return nil, fmt.Errorf("session stream: %w", err)
	}
	if err := WriteFrame(m.str, Frame{T: "hello", V: Version, Profile: &prof}); err != nil {
		h.Close()
		return nil, err
	}
	r := bufio.NewReader(m.str)
	f, err := ReadFrame(r)
	if err == nil && f.T != "welcome" {
		err = remoteError(f)
	}
	if err != nil {
		h.Close()
		return nil, err
	}
	go func() {
		defer close(m.done)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			received.Add(int64(n))
			if err != nil {
				break
			}
		}
		if !m.closing.Load() { // the relay ended the session
			lost.Add(1)
		}
	}()
	return m, nil
}

func (m *idleMember) close() {
	m.closing.Store(true)
	m.h.Close()
	<-m.done
}

// idleTCP holds n bare connections to a TCP child and returns its memory
// per connection.
func idleTCP(b *testing.B, n int) float64 {
	b.Helper()
	c := startChild(b, "tcp")
	defer c.stop()
	_, rss0 := c.measure(b)
	conns := make([]net.Conn, n)
	defer func() {
		for _, cn := range conns {
			if cn != nil {
				cn.Close()
			}
		}
	}()
	err := parallel(32, n, func(i int) (err error) {
		conns[i], err = net.Dial("tcp", c.addr)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); c.stats(b).Conns < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d connections accepted", c.stats(b).Conns, n)
		}
	}
	_, rss1 := c.measure(b)
	return float64(rss1-rss0) / float64(n)
}
