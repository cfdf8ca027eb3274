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
	ns, err := n.addNS(name)
	if err != nil {
		return nil, err
	}
	r := &Router{Node: Node{Name: name, NS: ns, net: n}, Legs: make(map[*Segment]netip.Addr, len(segs))}
	if err := r.Do(func() error { return sysctl("net/ipv4/ip_forward", "1") }); err != nil {
		return nil, err
	}
	for i, s := range segs {
		if err := r.attach(s, fmt.Sprintf("eth%d", i)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// attach adds a leg on s and, if s had no gateway yet, routes its hosts through it; the caller holds net.mu.
func (r *Router) attach(s *Segment, ifname string) error {
	if s.net != r.net {
		return fmt.Errorf("segment %v belongs to another Net", s.Prefix)
	}
	if _, dup := r.Legs[s]; dup {
		return fmt.Errorf("segment %v given twice", s.Prefix)
	}
	addr, err := s.allocRouter()
	if err != nil {
		return err
	}
	if err := s.plug(r.NS, ifname, addr); err != nil {
		return err
	}
	r.Legs[s] = addr
	if s.gw != nil {
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
