package discovery

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/netutil"
	"github.com/lanchat/lanchat/ipmsg"
)

// Tests run on loopback only: every Service has NoBroadcast set and its
// interface list is replaced by loopback, so nothing leaves the machine.

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// loopbackIfaces is the interface list every test Service sees.
func loopbackIfaces() ([]netutil.Iface, error) {
	return []netutil.Iface{{Name: "lo", Prefix: netip.MustParsePrefix("127.0.0.1/8"), Loopback: true}}, nil
}

// listenUDP binds a UDP socket on ip (a loopback address), any port.
func listenUDP(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func localAddr(c net.PacketConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// counter hands out packet numbers, as the node's counter would.
func counter(start uint64) func() uint64 {
	var n atomic.Uint64
	n.Store(start)
	return func() uint64 { return n.Add(1) }
}

// changeLog collects OnChange calls without ever blocking the Service.
type changeLog struct {
	mu      sync.Mutex
	changes []Change
	notify  chan struct{}
}

func newChangeLog() *changeLog { return &changeLog{notify: make(chan struct{}, 1)} }

func (l *changeLog) add(c Change) {
	l.mu.Lock()
	l.changes = append(l.changes, c)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *changeLog) all() []Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Change(nil), l.changes...)
}

// wait returns the first change matching ok, polling until timeout.
func (l *changeLog) wait(t *testing.T, timeout time.Duration, what string, ok func(Change) bool) Change {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for _, c := range l.all() {
			if ok(c) {
				return c
			}
		}
		select {
		case <-l.notify:
		case <-deadline:
			t.Fatalf("no change %s within %v; got %+v", what, timeout, l.all())
		}
	}
}

// eventually polls ok until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// harness is a Service on a real loopback socket with a reader that feeds
// entry packets to Handle, as the node's receive loop does.
type harness struct {
	svc     *Service
	conn    *net.UDPConn
	addr    netip.AddrPort
	changes *changeLog
	started time.Time

	cancel context.CancelFunc
	runErr chan error
	stop   func() time.Duration // cancels Run and waits; returns how long Run took to return
}

// startService runs a Service on conn. cfg's Conn, NextNo, Logger,
// Interfaces and OnChange are filled in; NoBroadcast is always set.
func startService(t *testing.T, conn *net.UDPConn, cfg Config) *harness {
	t.Helper()
	h := &harness{conn: conn, addr: localAddr(conn), changes: newChangeLog(), runErr: make(chan error, 1)}
	cfg.Conn = conn
	cfg.NoBroadcast = true
	if cfg.NextNo == nil {
		cfg.NextNo = counter(1_700_000_000)
	}
	cfg.Logger = testLogger(t).With("svc", h.addr.String())
	cfg.Interfaces = loopbackIfaces
	cfg.OnChange = h.changes.add
	h.svc = New(cfg)

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, ipmsg.MaxDatagram+1)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			p, err := ipmsg.Parse(buf[:n])
			if err != nil || !p.Command.IsEntry() {
				continue
			}
			h.svc.Handle(p, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
		}
	}()

	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	h.started = time.Now()
	go func() { h.runErr <- h.svc.Run(ctx) }()
	var once sync.Once
	var took time.Duration
	h.stop = func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case err := <-h.runErr:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return within 5s of cancel")
			}
			took = time.Since(start)
		})
		return took
	}
	t.Cleanup(func() {
		h.stop()
		conn.Close()
		<-readerDone
	})
	return h
}

// rawPeer is a UDP socket that plays another IPMsg client, byte by byte.
type rawPeer struct {
	t       *testing.T
	conn    *net.UDPConn
	addr    netip.AddrPort
	version string
	user    string
	host    string
	no      uint64
}

func newRawPeer(t *testing.T, ip string) *rawPeer {
	c := listenUDP(t, ip)
	return &rawPeer{t: t, conn: c, addr: localAddr(c), version: "1", user: "raw", host: "rawhost", no: 5000}
}

// packet builds a datagram from this peer with the next packet number.
func (r *rawPeer) packet(cmd ipmsg.Command, extra string) []byte {
	r.no++
	return ipmsg.Packet{Version: []byte(r.version), No: r.no, User: []byte(r.user), Host: []byte(r.host),
		Command: cmd, Extra: []byte(extra)}.Append(nil)
}

func (r *rawPeer) sendTo(to netip.AddrPort, b []byte) {
	r.t.Helper()
	if _, err := r.conn.WriteToUDPAddrPort(b, to); err != nil {
		r.t.Fatal(err)
	}
}

// collect reads datagrams until the deadline and returns the parsed ones.
func (r *rawPeer) collect(until time.Time) []ipmsg.Packet {
	r.t.Helper()
	var out []ipmsg.Packet
	buf := make([]byte, ipmsg.MaxDatagram+1)
	r.conn.SetReadDeadline(until)
	for {
		n, _, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return out
			}
			r.t.Fatal(err)
		}
		p, err := ipmsg.Parse(buf[:n])
		if err != nil {
			r.t.Fatalf("peer sent a malformed datagram %q: %v", buf[:n], err)
		}
		out = append(out, p.Clone())
	}
}

// waitMode reads until a packet of the mode arrives.
func (r *rawPeer) waitMode(mode ipmsg.Command, timeout time.Duration) (ipmsg.Packet, bool) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, ipmsg.MaxDatagram+1)
	r.conn.SetReadDeadline(deadline)
	for {
		n, _, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return ipmsg.Packet{}, false
		}
		if p, err := ipmsg.Parse(buf[:n]); err == nil && p.Command.Mode() == mode {
			return p.Clone(), true
		}
	}
}

func countMode(ps []ipmsg.Packet, mode ipmsg.Command) int {
	n := 0
	for _, p := range ps {
		if p.Command.Mode() == mode {
			n++
		}
	}
	return n
}

// memConn is a PacketConn that records what is written to it, for tests
// under synctest where no real socket may block the bubble. It embeds the
// interface and overrides the methods the Service calls.
type memConn struct {
	net.PacketConn
	local netip.AddrPort

	mu     sync.Mutex
	writes []written
}

type written struct {
	to  netip.AddrPort
	pkt ipmsg.Packet
}

func newMemConn(local string) *memConn { return &memConn{local: netip.MustParseAddrPort(local)} }

func (c *memConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.local) }

func (c *memConn) WriteTo(b []byte, to net.Addr) (int, error) {
	p, err := ipmsg.Parse(b)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.writes = append(c.writes, written{to.(*net.UDPAddr).AddrPort(), p.Clone()})
	c.mu.Unlock()
	return len(b), nil
}

// take returns and forgets what was written so far.
func (c *memConn) take() []written {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

// entry builds an entry-type packet as another client would send it.
func entry(version string, no uint64, user, host string, cmd ipmsg.Command, extra string) ipmsg.Packet {
	b := ipmsg.Packet{Version: []byte(version), No: no, User: []byte(user), Host: []byte(host),
		Command: cmd, Extra: []byte(extra)}.Append(nil)
	p, err := ipmsg.Parse(b)
	if err != nil {
		panic(err)
	}
	return p
}

// checkRoster verifies the roster's indexes agree: every address belongs to
// exactly one peer, which lists it, and every peer's addresses map back.
func checkRoster(t *testing.T, r *Roster) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	owner := map[netip.AddrPort]string{}
	for key, p := range r.peers {
		if key != p.Key {
			t.Errorf("peer %q stored under %q", p.Key, key)
		}
		if len(p.Addrs) == 0 {
			t.Errorf("peer %q has no address", key)
		}
		for _, a := range p.Addrs {
			if other, dup := owner[a]; dup {
				t.Errorf("address %v belongs to both %q and %q", a, other, key)
			}
			owner[a] = key
			if r.byAdr[a] != key {
				t.Errorf("address %v of %q is indexed to %q", a, key, r.byAdr[a])
			}
		}
		if !containsAddr(p.Addrs, p.Addr) {
			t.Errorf("peer %q: Addr %v not among Addrs %v", key, p.Addr, p.Addrs)
		}
	}
	for a, key := range r.byAdr {
		if owner[a] != key {
			t.Errorf("index maps %v to %q, which does not list it", a, key)
		}
	}
}

func containsAddr(as []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}
