package netns

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// NATKind selects how a NAT router made by [Net.NAT] maps and filters.
//
// Every kind masquerades traffic from its LAN to its WAN and, like a home
// router, drops everything unsolicited from the WAN: forwarded packets and
// packets for the router itself alike, unless conntrack has seen the flow
// leave first. Conntrack keys on the whole 5-tuple, so a reply must come from
// exactly the address and port the inside host sent to: the filtering is
// address-and-port dependent (RFC 4787), whatever the mapping.
type NATKind int

const (
	// NATCone keeps a mapping per inside socket, whatever the destination:
	// masquerade keeps the source port whenever the resulting 5-tuple is
	// unique, which for one inside socket it is for every destination. With
	// the filtering above this is a port-restricted cone, which hole punching
	// gets through.
	NATCone NATKind = iota + 1
	// NATSymmetric gives every destination its own random port
	// (masquerade random,fully-random), so the port a STUN server reports is
	// useless to anyone else and hole punching fails.
	NATSymmetric
	// NATBlockUDP is NATCone that forwards no UDP at all, like a firewall that
	// lets out only TCP: STUN and QUIC fail, TCP works.
	NATBlockUDP
)

func (k NATKind) String() string {
	switch k {
	case NATCone:
		return "cone"
	case NATSymmetric:
		return "symmetric"
	case NATBlockUDP:
		return "block-udp"
	}
	return fmt.Sprintf("NATKind(%d)", int(k))
}

const (
	// natTable is the nftables table holding a NAT router's rules.
	natTable = "lanchat_nat"
	// lanIf and wanIf are a NAT router's legs, in the order NAT attaches them.
	lanIf, wanIf = "eth0", "eth1"
)

// RequireNftables is Require plus the nft command, which NAT needs.
func RequireNftables(t testing.TB) {
	t.Helper()
	Require(t)
	if _, err := lookTool("nft"); err != nil {
		t.Skipf("netns: %v", err)
	}
}

// NAT creates a router joining lan (its eth0) to wan (its eth1) that
// translates as kind says; it fails the test on error. It becomes lan's
// gateway, so lan must not have one yet. On wan it takes an ordinary address
// (see [Host.Public]) and changes no route: wan hosts have no route into lan,
// and the router none beyond its two segments.
//
// For the WAN of a hole-punching test, give the segment a prefix libp2p counts
// as public (not RFC 1918, CGNAT, link-local or documentation space); it
// exists only inside these namespaces, which have no route out.
func (n *Net) NAT(name string, lan, wan *Segment, kind NATKind) *Router {
	n.t.Helper()
	r, err := n.nat(name, lan, wan, kind)
	if err != nil {
		n.t.Fatalf("netns: NAT %q: %v", name, err)
	}
	return r
}

func (n *Net) nat(name string, lan, wan *Segment, kind NATKind) (*Router, error) {
	rules, err := natRules(kind)
	if err != nil {
		return nil, err
	}
	if lan == wan {
		return nil, fmt.Errorf("LAN and WAN are the same segment %v", lan.Prefix)
	}
	nft, err := lookTool("nft")
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if lan.gw != nil {
		return nil, fmt.Errorf("LAN %v already has gateway %s", lan.Prefix, lan.gw.Name)
	}
	r, err := n.newRouter(name, 2)
	if err != nil {
		return nil, err
	}
	// Rules first, so no packet crosses the router untranslated.
	if err := r.nft(nft, rules); err != nil {
		return nil, err
	}
	if err := r.attach(lan, lanIf, true); err != nil {
		return nil, err
	}
	if err := r.attach(wan, wanIf, false); err != nil {
		return nil, err
	}
	r.wan = wan
	return r, nil
}

// natRules is the nftables ruleset for kind.
//
// The input chain matters for hole punching, not only for realism: a packet
// for the router that is dropped there never has its conntrack entry
// confirmed, whereas one that got through (answered by ICMP port unreachable)
// would leave an entry owning the tuple, and the inside host's later packet
// to that peer would then be masqueraded to a different port.
func natRules(kind NATKind) (string, error) {
	var masq, blockUDP string
	switch kind {
	case NATCone:
		masq = "masquerade"
	case NATSymmetric:
		masq = "masquerade random,fully-random"
	case NATBlockUDP:
		masq = "masquerade"
		blockUDP = "meta l4proto udp drop"
	default:
		return "", fmt.Errorf("unknown NAT kind %v", kind)
	}
	return fmt.Sprintf(`table ip %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname %[2]q %[3]s
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		%[4]s
		ct state established,related accept
		iifname %[5]q oifname %[2]q accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname %[2]q ct state established,related accept
		iifname %[2]q drop
	}
}
`, natTable, wanIf, masq, blockUDP, lanIf), nil
}

// nft loads ruleset into the router's namespace.
func (r *Router) nft(nft, ruleset string) error {
	cmd := r.command(context.Background(), nft, "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// WAN is a NAT router's address on its WAN segment, the source its inside
// hosts' traffic appears from; it is the zero Addr for a plain router.
func (r *Router) WAN() netip.Addr {
	if r.wan == nil {
		return netip.Addr{}
	}
	return r.Legs[r.wan]
}

// Public is the address the host's traffic appears from beyond its segment:
// its NAT router's WAN address if its gateway is a NAT, else its own address.
// Only one level of NAT is followed.
func (h *Host) Public() netip.Addr {
	h.net.mu.Lock()
	gw := h.seg.gw
	h.net.mu.Unlock()
	if gw != nil && gw.wan != nil {
		return gw.WAN()
	}
	return h.Addr
}
