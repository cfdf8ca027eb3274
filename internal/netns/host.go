package netns

import (
	"fmt"
	"net"
	"net/netip"
)

// Host is a namespace with one interface, eth0, plugged into a segment.
type Host struct {
	Node
	Addr   netip.Addr
	Prefix netip.Prefix // the segment's prefix, not Addr with a length

	seg *Segment
}

// ListenTCP opens a TCP listener on the host's address (port 0: any free
// one) inside its namespace; the socket stays there.
func (h *Host) ListenTCP(port uint16) (*net.TCPListener, error) {
	var ln *net.TCPListener
	err := h.Do(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(h.Addr, port)))
		return err
	})
	return ln, err
}

// DialTCP connects to to from inside the host's namespace.
func (h *Host) DialTCP(to netip.AddrPort) (*net.TCPConn, error) {
	var c *net.TCPConn
	err := h.Do(func() (err error) {
		c, err = net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(to))
		return err
	})
	return c, err
}

// Broadcast is the directed broadcast address of the host's segment.
func (h *Host) Broadcast() netip.Addr { return h.seg.Broadcast() }

// AddHost creates a host namespace on the segment with the next free address
// and a broadcast address set; it fails the test on error. If the segment has
// a router, the host's default route points at it.
//
// Every host also gets a route for 255.255.255.255 out of eth0: without any
// matching route Linux refuses limited broadcast from an unbound socket
// (ENETUNREACH), while a real LAN host always has one through its default
// gateway. Delete it with Run to reproduce an isolated, gateway-less LAN.
func (s *Segment) AddHost(name string) *Host {
	t := s.net.t
	t.Helper()
	h, err := s.addHost(name)
	if err != nil {
		t.Fatalf("netns: add host %q: %v", name, err)
	}
	return h
}

func (s *Segment) addHost(name string) (*Host, error) {
	n := s.net
	n.mu.Lock()
	defer n.mu.Unlock()
	addr, err := s.alloc()
	if err != nil {
		return nil, err
	}
	ns, err := n.addNS(name)
	if err != nil {
		return nil, err
	}
	if err := s.plug(ns, hostIf, addr); err != nil {
		return nil, err
	}
	if err := n.run("-n", ns, "route", "add", "255.255.255.255/32", "dev", hostIf); err != nil {
		return nil, err
	}
	h := &Host{Node: Node{Name: name, NS: ns, net: n}, Addr: addr, Prefix: s.Prefix, seg: s}
	if s.gw != nil {
		if err := h.routeVia(s.gw.Legs[s]); err != nil {
			return nil, err
		}
	}
	s.hosts = append(s.hosts, h)
	return h, nil
}

// routeVia sets the host's default route; the caller holds net.mu.
func (h *Host) routeVia(gw netip.Addr) error {
	if err := h.net.run("-n", h.NS, "route", "add", "default", "via", gw.String(), "dev", hostIf); err != nil {
		return fmt.Errorf("default route for %s: %w", h.Name, err)
	}
	return nil
}
