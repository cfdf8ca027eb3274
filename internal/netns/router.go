package netns

import (
	"fmt"
	"net/netip"
	"os"
)

// Router is a namespace with one leg (eth0, eth1, ...) per segment and IPv4
// forwarding on. It knows only its directly attached segments: there is no
// routing between routers. Like any Linux router it does not forward
// broadcasts, directed or limited.
type Router struct {
	Node
	Legs map[*Segment]netip.Addr

	wan *Segment // the outside segment of a NAT router; nil for a plain router
}

// Router creates a router joining segs; it fails the test on error. The first
// router on a segment becomes its gateway: every host already on it, or added
// later, gets a default route via the router's leg there. Later routers on
// the same segment change no host's routes.
func (n *Net) Router(name string, segs ...*Segment) *Router {
	n.t.Helper()
	r, err := n.router(name, segs)
	if err != nil {
		n.t.Fatalf("netns: router %q: %v", name, err)
	}
	return r
}

func (n *Net) router(name string, segs []*Segment) (*Router, error) {
	if len(segs) == 0 {
		return nil, fmt.Errorf("router needs at least one segment")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	r, err := n.newRouter(name, len(segs))
	if err != nil {
		return nil, err
	}
	for i, s := range segs {
		if err := r.attach(s, fmt.Sprintf("eth%d", i), true); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// newRouter creates a forwarding namespace without legs; the caller holds n.mu.
func (n *Net) newRouter(name string, legs int) (*Router, error) {
	ns, err := n.addNS(name)
	if err != nil {
		return nil, err
	}
	r := &Router{Node: Node{Name: name, NS: ns, net: n}, Legs: make(map[*Segment]netip.Addr, legs)}
	if err := r.Do(func() error { return sysctl("net/ipv4/ip_forward", "1") }); err != nil {
		return nil, err
	}
	return r, nil
}

// attach adds a leg on s. With gateway set, the leg may take .1 and, if s
// had no gateway yet, s's hosts route through it; without, it takes an
// ordinary address and changes no routes. The caller holds net.mu.
func (r *Router) attach(s *Segment, ifname string, gateway bool) error {
	if s.net != r.net {
		return fmt.Errorf("segment %v belongs to another Net", s.Prefix)
	}
	if _, dup := r.Legs[s]; dup {
		return fmt.Errorf("segment %v given twice", s.Prefix)
	}
	alloc := s.alloc
	if gateway {
		alloc = s.allocRouter
	}
	addr, err := alloc()
	if err != nil {
		return err
	}
	if err := s.plug(r.NS, ifname, addr); err != nil {
		return err
	}
	r.Legs[s] = addr
	if !gateway || s.gw != nil {
		return nil
	}
	s.gw = r
	for _, h := range s.hosts {
		if err := h.routeVia(addr); err != nil {
			return err
		}
	}
	return nil
}

// sysctl writes a network sysctl. /proc/sys/net resolves against the calling
// thread's namespace, so inside Do it changes only that namespace and needs no
// sysctl binary.
func sysctl(key, val string) error {
	if err := os.WriteFile("/proc/sys/"+key, []byte(val), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, val, err)
	}
	return nil
}
