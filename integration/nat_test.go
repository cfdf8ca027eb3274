package integration

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/peer"
)

// TestRelayAcrossNATs puts the relay on a public-looking WAN and alice and
// bob on private LANs behind two kinds of NAT: each learns its NAT type
// from the relay's STUN responder, and they chat through the relay.
func TestRelayAcrossNATs(t *testing.T) {
	netns.RequireNftables(t)
	t.Parallel()
	n := netns.New(t)
	wan := n.Segment(netip.MustParsePrefix("11.203.0.0/24"))
	lanA := n.Segment(netip.MustParsePrefix("10.85.1.0/24"))
	lanB := n.Segment(netip.MustParsePrefix("10.85.2.0/24"))
	n.NAT("natA", lanA, wan, netns.NATCone)
	n.NAT("natB", lanB, wan, netns.NATSymmetric)
	rn := &relayNet{ha: lanA.AddHost("a"), hb: lanB.AddHost("b"), hr: wan.AddHost("relay")}
	rn.relay = lantest.StartRelay(t, rn.hr, "")
	a := rn.member(t, rn.ha, "alice")
	b := rn.member(t, rn.hb, "bob")

	for nd, want := range map[*lantest.Node]string{a: "endpoint-independent", b: "symmetric"} {
		eventually(t, 10*time.Second, func() (bool, string) {
			st := status(t, nd).Relay
			return st.NAT == want, fmt.Sprintf("%s's NAT: %+v, want %s", nd.Name, st, want)
		})
	}
	if st := status(t, a).Relay; st.Public != "" && netip.MustParseAddrPort(st.Public).Addr() != rn.ha.Public() {
		t.Errorf("alice's public address %s, want her NAT's %s", st.Public, rn.ha.Public())
	}
	waitContact(t, a, "bob", true)
	sendTo(t, a, "bob", "穿过两层 NAT")
	waitHistory(t, b, "alice", "穿过两层 NAT")
	eventually(t, 10*time.Second, func() (bool, string) {
		for _, m := range history(t, a, "bob", 0) {
			if m.Text == "穿过两层 NAT" && m.Status == peer.Delivered {
				return true, ""
			}
		}
		return false, "alice's message to bob is not reported delivered"
	})
}
