//go:build linux

package netns

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// wanPrefix looks public (libp2p punches only towards such addresses) but
// exists only inside the test's namespaces.
var wanPrefix = netip.MustParsePrefix("11.201.0.0/24")

// natTopology is a WAN with hosts x and y and one host a behind a NAT of kind.
func natTopology(t *testing.T, kind NATKind) (a, x, y *Host, r *Router) {
	t.Helper()
	n := New(t)
	wan := n.Segment(wanPrefix)
	lan := n.Segment(netip.MustParsePrefix("192.168.201.0/24"))
	x, y = wan.AddHost("x"), wan.AddHost("y")
	a = lan.AddHost("a") // before the router: NAT must route it anyway
	r = n.NAT("r", lan, wan, kind)
	if got := a.Public(); got != r.WAN() || !wan.Prefix.Contains(got) {
		t.Fatalf("a.Public() = %v, want the router's WAN address %v in %v", got, r.WAN(), wan.Prefix)
	}
	if x.Public() != x.Addr {
		t.Fatalf("x.Public() = %v, want its own %v", x.Public(), x.Addr)
	}
	return a, x, y, r
}

// sendTo sends msg from c to an arbitrary address and port.
func sendTo(t *testing.T, c *net.UDPConn, to netip.AddrPort, msg string) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort([]byte(msg), to); err != nil {
		t.Fatalf("send %q to %v: %v", msg, to, err)
	}
}

// recvFrom is recv that also returns the sender's port.
func recvFrom(t *testing.T, c *net.UDPConn) (string, netip.AddrPort) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, ap, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return string(buf[:n]), netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// resolved waits until h has resolved addr's link-layer address. Until then
// h's datagrams to addr wait in its neighbour queue, and one meant to arrive
// unsolicited could leave only after the flow it must not match exists.
func resolved(t *testing.T, h *Host, addr netip.Addr) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		out, err := h.Run("ip", "neigh", "show", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "lladdr") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has not resolved %v: %q", h.Name, addr, out)
		}
	}
}

func localPort(c *net.UDPConn) uint16 { return c.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

func TestConeNAT(t *testing.T) {
	RequireNftables(t)
	t.Parallel()
	a, x, y, r := natTopology(t, NATCone)
	ra := listen(t, a, 0)
	rx, rx2, ry := listen(t, x, port), listen(t, x, port+1), listen(t, y, port)
	pub := netip.AddrPortFrom(r.WAN(), localPort(ra))

	// Unsolicited, to the port a is about to use: dropped, and it must not
	// take that port from a's mapping either.
	sendTo(t, rx, pub, "unsolicited")
	resolved(t, x, r.WAN())
	expectNothing(t, ra, "a before sending")

	sendTo(t, ra, netip.AddrPortFrom(x.Addr, port), "out")
	if msg, from := recvFrom(t, rx); msg != "out" || from != pub {
		t.Fatalf("x got %q from %v, want %q from %v (port kept)", msg, from, "out", pub)
	}
	sendTo(t, rx, pub, "reply")
	expect(t, ra, "a", "reply", x.Addr)

	// Port-restricted: the same mapping, but other senders are filtered.
	sendTo(t, ry, pub, "from y")
	sendTo(t, rx2, pub, "from x's other port")
	resolved(t, y, r.WAN())
	expectNothing(t, ra, "a from unsolicited peers")

	// Endpoint-independent mapping: y sees the same public address and port.
	sendTo(t, ra, netip.AddrPortFrom(y.Addr, port), "out to y")
	if msg, from := recvFrom(t, ry); msg != "out to y" || from != pub {
		t.Fatalf("y got %q from %v, want %q from %v", msg, from, "out to y", pub)
	}
	sendTo(t, ry, pub, "y reply")
	expect(t, ra, "a", "y reply", y.Addr)
}

func TestSymmetricNAT(t *testing.T) {
	RequireNftables(t)
	t.Parallel()
	a, x, y, r := natTopology(t, NATSymmetric)
	ra := listen(t, a, 0)
	rx, ry := listen(t, x, port), listen(t, y, port)

	sendTo(t, ra, netip.AddrPortFrom(x.Addr, port), "to x")
	_, viaX := recvFrom(t, rx)
	sendTo(t, ra, netip.AddrPortFrom(y.Addr, port), "to y")
	_, viaY := recvFrom(t, ry)
	if viaX.Addr() != r.WAN() || viaY.Addr() != r.WAN() {
		t.Fatalf("sources %v and %v, want the router's WAN address %v", viaX, viaY, r.WAN())
	}
	if viaX.Port() == viaY.Port() {
		t.Fatalf("x and y both saw port %d: mapping not per destination", viaX.Port())
	}
	// Each peer can answer on its own mapping, and only there.
	sendTo(t, rx, viaX, "x reply")
	expect(t, ra, "a", "x reply", x.Addr)
	sendTo(t, rx, viaY, "x on y's mapping")
	expectNothing(t, ra, "a from x on y's mapping")
}

func TestNATBlockUDP(t *testing.T) {
	RequireNftables(t)
	t.Parallel()
	a, x, _, r := natTopology(t, NATBlockUDP)
	ra, rx := listen(t, a, 0), listen(t, x, port)
	sendTo(t, ra, netip.AddrPortFrom(x.Addr, port), "udp")
	expectNothing(t, rx, "x over UDP")

	var ln net.Listener
	if err := x.Do(func() (err error) {
		ln, err = net.Listen("tcp4", ":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan netip.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- netip.Addr{}
			return
		}
		c.Close()
		accepted <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	}()
	to := netip.AddrPortFrom(x.Addr, ln.Addr().(*net.TCPAddr).AddrPort().Port())
	if err := a.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp4", to.String())
		if err != nil {
			return err
		}
		return c.Close()
	}); err != nil {
		t.Fatalf("TCP through the NAT: %v", err)
	}
	if got := <-accepted; got != r.WAN() {
		t.Fatalf("x accepted from %v, want %v", got, r.WAN())
	}
}

func TestNATRefusesSecondGateway(t *testing.T) {
	RequireNftables(t)
	t.Parallel()
	n := New(t)
	wan := n.Segment(wanPrefix)
	lan := n.Segment(netip.MustParsePrefix("192.168.201.0/24"))
	n.Router("plain", lan)
	if _, err := n.nat("r", lan, wan, NATCone); err == nil {
		t.Fatal("NAT on a LAN that already has a gateway succeeded")
	}
	if _, err := n.nat("r2", lan, wan, NATKind(99)); err == nil {
		t.Fatal("NAT of an unknown kind succeeded")
	}
}
