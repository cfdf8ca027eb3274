package netns

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Segment is an L2 segment: a bridge in a switch namespace of its own, so
// nothing is ever added to the root namespace.
//
// Addresses: the first router attached gets .1 (the conventional gateway);
// hosts, and any further routers, get .2, .3, ... in order of creation.
type Segment struct {
	Prefix netip.Prefix // masked IPv4 prefix, e.g. 10.201.1.0/24
	NS     string       // the switch namespace, e.g. for `ip netns exec NS tcpdump -i br0`

	net     *Net
	next    netip.Addr // next address for a host or a later router
	gwTaken bool       // whether .1 has gone to a router
	gw      *Router    // the first router attached: every host's default gateway
	hosts   []*Host
	ports   int // bridge ports made so far, to name the next one
}

// Segment creates a segment for prefix (IPv4, /30 or wider); it fails the test on error.
func (n *Net) Segment(prefix netip.Prefix) *Segment {
	n.t.Helper()
	s, err := n.segment(prefix)
	if err != nil {
		n.t.Fatalf("netns: segment %v: %v", prefix, err)
	}
	return s
}

func (n *Net) segment(prefix netip.Prefix) (*Segment, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() || prefix.Bits() > 30 {
		return nil, fmt.Errorf("need an IPv4 prefix of /30 or wider, got %v", prefix)
	}
	prefix = prefix.Masked()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.switches++
	ns, err := n.addNS(fmt.Sprintf("sw%d", n.switches))
	if err != nil {
		return nil, err
	}
	// forward_delay 0 lets ports forward as soon as they are up, so hosts can talk immediately.
	if err := n.run("-n", ns, "link", "add", bridgeName, "type", "bridge", "forward_delay", "0"); err != nil {
		return nil, err
	}
	if err := n.run("-n", ns, "link", "set", bridgeName, "up"); err != nil {
		return nil, err
	}
	first := prefix.Addr().Next()
	return &Segment{Prefix: prefix, NS: ns, net: n, next: first.Next()}, nil
}

// Broadcast is the segment's directed broadcast address.
func (s *Segment) Broadcast() netip.Addr { return broadcast(s.Prefix) }

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (uint32(1)<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// alloc hands out the next host address; the caller holds net.mu.
func (s *Segment) alloc() (netip.Addr, error) {
	a := s.next
	if !s.Prefix.Contains(a) || a == s.Broadcast() {
		return netip.Addr{}, fmt.Errorf("segment %v has no free address", s.Prefix)
	}
	s.next = a.Next()
	return a, nil
}

// allocRouter gives the first router .1 and later ones ordinary addresses; the caller holds net.mu.
func (s *Segment) allocRouter() (netip.Addr, error) {
	if s.gwTaken {
		return s.alloc()
	}
	s.gwTaken = true
	return s.Prefix.Addr().Next(), nil
}

// plug joins namespace ns to the bridge with a veth whose inside end is ifname
// and gives it addr. The veth is created directly in ns with its peer directly
// in the switch namespace, so it never appears in the root namespace.
func (s *Segment) plug(ns, ifname string, addr netip.Addr) error {
	s.ports++
	port := fmt.Sprintf("p%d", s.ports)
	cidr := netip.PrefixFrom(addr, s.Prefix.Bits()).String()
	steps := [][]string{
		{"-n", ns, "link", "add", ifname, "type", "veth", "peer", "name", port, "netns", s.NS},
		{"-n", s.NS, "link", "set", port, "master", bridgeName, "up"},
		{"-n", ns, "addr", "add", cidr, "brd", "+", "dev", ifname},
		{"-n", ns, "link", "set", ifname, "up"},
	}
	for _, args := range steps {
		if err := s.net.run(args...); err != nil {
			return err
		}
	}
	return nil
}
