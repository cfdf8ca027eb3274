//go:build linux

package netns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// port is IP Messenger's; every topology is private, so tests can share it.
const port = 2425

// limitedBroadcast is 255.255.255.255.
func limitedBroadcast() netip.Addr { return netip.AddrFrom4([4]byte{255, 255, 255, 255}) }

// doer is what Host and Router share through Node.
type doer interface{ Do(func() error) error }

// listen opens a broadcast-capable UDP socket on 0.0.0.0:p inside nd.
func listen(t *testing.T, nd doer, p int) *net.UDPConn {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	var conn *net.UDPConn
	err := nd.Do(func() error {
		pc, err := lc.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(p)).String())
		if err != nil {
			return err
		}
		conn = pc.(*net.UDPConn)
		return nil
	})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func send(t *testing.T, c *net.UDPConn, to netip.Addr, msg string) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort([]byte(msg), netip.AddrPortFrom(to, port)); err != nil {
		t.Fatalf("send %q to %v: %v", msg, to, err)
	}
}

// recv returns the next datagram and its sender, or ok=false after d.
func recv(t *testing.T, c *net.UDPConn, d time.Duration) (msg string, from netip.Addr, ok bool) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, ap, err := c.ReadFromUDPAddrPort(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "", netip.Addr{}, false
	}
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return string(buf[:n]), ap.Addr().Unmap(), true
}

func expect(t *testing.T, c *net.UDPConn, who, want string, from netip.Addr) {
	t.Helper()
	got, src, ok := recv(t, c, 5*time.Second)
	if !ok || got != want || src != from {
		t.Fatalf("%s: got %q from %v (ok=%v), want %q from %v", who, got, src, ok, want, from)
	}
}

func expectNothing(t *testing.T, c *net.UDPConn, who string) {
	t.Helper()
	if got, src, ok := recv(t, c, 300*time.Millisecond); ok {
		t.Fatalf("%s: got %q from %v, want nothing", who, got, src)
	}
}

func TestBroadcastOnSegment(t *testing.T) {
	Require(t)
	t.Parallel()
	n := New(t)
	seg := n.Segment(netip.MustParsePrefix("10.201.1.0/24"))
	a, b, c := seg.AddHost("a"), seg.AddHost("b"), seg.AddHost("c")
	if a.Addr != netip.MustParseAddr("10.201.1.2") || c.Addr != netip.MustParseAddr("10.201.1.4") {
		t.Fatalf("addresses a=%v c=%v, want .2 and .4", a.Addr, c.Addr)
	}
	if got := a.Broadcast(); got != netip.MustParseAddr("10.201.1.255") {
		t.Fatalf("Broadcast() = %v", got)
	}
	out, err := b.Run("ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil || !strings.Contains(out, "10.201.1.3/24 brd 10.201.1.255") {
		t.Fatalf("b's address: %q, %v", out, err)
	}
	src := listen(t, a, 0)
	rb, rc := listen(t, b, port), listen(t, c, port)
	for _, dst := range []netip.Addr{a.Broadcast(), limitedBroadcast()} {
		msg := "hello via " + dst.String()
		send(t, src, dst, msg)
		expect(t, rb, "b", msg, a.Addr)
		expect(t, rc, "c", msg, a.Addr)
	}
}

func TestRouterForwardsUnicastNotBroadcast(t *testing.T) {
	Require(t)
	t.Parallel()
	n := New(t)
	left := n.Segment(netip.MustParsePrefix("10.201.1.0/24"))
	right := n.Segment(netip.MustParsePrefix("10.201.2.0/24"))
	a, peer := left.AddHost("a"), left.AddHost("peer") // before the router: routes added later
	r := n.Router("r", left, right)
	b := right.AddHost("b") // after the router: route added at once
	if got := r.Legs[left]; got != netip.MustParseAddr("10.201.1.1") {
		t.Fatalf("router leg on left = %v, want .1", got)
	}
	ra, rp, rb, rr := listen(t, a, port), listen(t, peer, port), listen(t, b, port), listen(t, r, port)

	send(t, ra, b.Addr, "ping")
	expect(t, rb, "b", "ping", a.Addr)
	send(t, rb, a.Addr, "pong")
	expect(t, ra, "a", "pong", b.Addr)

	for _, dst := range []netip.Addr{a.Broadcast(), limitedBroadcast(), b.Broadcast()} {
		msg := "broadcast to " + dst.String()
		send(t, ra, dst, msg)
		expect(t, rr, "router", msg, a.Addr) // it reached the router...
		expectNothing(t, rb, "b")            // ...which did not forward it
	}
	// The neighbour proves the segment-local broadcasts really went out.
	expect(t, rp, "peer", "broadcast to "+a.Broadcast().String(), a.Addr)
	expect(t, rp, "peer", "broadcast to "+limitedBroadcast().String(), a.Addr)
}

func TestDropInbound(t *testing.T) {
	RequireIptables(t)
	t.Parallel()
	n := New(t)
	seg := n.Segment(netip.MustParsePrefix("10.201.1.0/24"))
	a, b := seg.AddHost("a"), seg.AddHost("b")
	ra, rb := listen(t, a, port), listen(t, b, port)
	send(t, ra, b.Addr, "before")
	expect(t, rb, "b", "before", a.Addr)

	for _, pct := range []int{50, 100} { // the second call must replace the first
		if err := b.DropInbound(pct); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		send(t, ra, b.Addr, "dropped")
	}
	expectNothing(t, rb, "b with 100% loss")

	if err := b.DropInbound(0); err != nil {
		t.Fatal(err)
	}
	send(t, ra, b.Addr, "after")
	expect(t, rb, "b", "after", a.Addr)
	if err := b.DropInbound(101); err == nil {
		t.Fatal("DropInbound(101) succeeded")
	}
}

func TestDoRestoresNamespace(t *testing.T) {
	Require(t)
	t.Parallel()
	own, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	h := New(t).Segment(netip.MustParsePrefix("10.201.1.0/24")).AddHost("a")
	var inside string
	if err := h.Do(func() error {
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside == own {
		t.Fatalf("Do ran in the caller's namespace %s", own)
	}
	if want := errors.New("boom"); !errors.Is(h.Do(func() error { return want }), want) {
		t.Fatal("Do lost fn's error")
	}
}

func TestCleanupRemovesEverything(t *testing.T) {
	Require(t)
	t.Parallel()
	var prefix string
	var cmd *exec.Cmd
	t.Run("topology", func(t *testing.T) {
		n := New(t)
		prefix = n.prefix
		seg := n.Segment(netip.MustParsePrefix("10.201.1.0/24"))
		h := seg.AddHost("a")
		n.Router("r", seg)
		// Deliberately never waited for: cleanup must stop it.
		cmd = h.Command(context.Background(), "sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if comm := commOf(cmd.Process.Pid); comm != "sleep" {
			t.Fatalf("Pid %d runs %q, want the program itself", cmd.Process.Pid, comm)
		}
		if got := len(namespacesWith(t, prefix)); got != 3 {
			t.Fatalf("%d namespaces with prefix %s, want 3", got, prefix)
		}
	})
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err == nil {
			t.Fatal("sleep exited cleanly; want it killed by cleanup")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cleanup left the program running")
	}
	if left := namespacesWith(t, prefix); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}

func namespacesWith(t *testing.T, prefix string) []string {
	t.Helper()
	ip, err := lookTool("ip")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ip, "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	var found []string
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, prefix+"-") {
			found = append(found, strings.Fields(line)[0])
		}
	}
	return found
}

// commOf waits for pid to finish exec'ing away from ip and returns its command name.
func commOf(pid int) string {
	var comm string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if comm = strings.TrimSpace(string(b)); err != nil || comm != "ip" {
			break
		}
	}
	return comm
}
