package natcheck

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/lanchat/lanchat/internal/netns"
)

// TestProbeThroughNATs runs Probe from hosts behind each kind of NAT router,
// and on the WAN itself, against a STUN server on the WAN with two ports.
func TestProbeThroughNATs(t *testing.T) {
	netns.RequireNftables(t)
	t.Parallel()
	n := netns.New(t)
	// Looks public, as the relay's address would; exists only in these namespaces.
	wan := n.Segment(netip.MustParsePrefix("11.202.0.0/24"))
	stunHost := wan.AddHost("stun")
	servers := serveIn(t, stunHost, 3478, 3479)

	behind := func(i int, kind netns.NATKind) *netns.Host {
		lan := n.Segment(netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 24))
		n.NAT("r"+kind.String(), lan, wan, kind)
		return lan.AddHost("h" + kind.String())
	}
	for _, c := range []struct {
		name string
		host *netns.Host
		want Mapping
	}{
		{"wan", wan.AddHost("direct"), None},
		{"cone", behind(1, netns.NATCone), EndpointIndependent},
		{"symmetric", behind(2, netns.NATSymmetric), Symmetric},
		{"block-udp", behind(3, netns.NATBlockUDP), Blocked},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var res Result
			err := c.host.Do(func() (err error) {
				res, err = Probe(context.Background(), servers)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v public=%v local=%v: %v", res.Mapping, res.Public, res.Local, res)
			if res.Mapping != c.want {
				t.Fatalf("Mapping = %v, want %v", res.Mapping, c.want)
			}
			if res.Local.Addr() != c.host.Addr {
				t.Errorf("Local = %v, want the host's own address %v", res.Local, c.host.Addr)
			}
			switch c.want {
			case None:
				if res.Public != res.Local {
					t.Errorf("Public = %v, want Local %v", res.Public, res.Local)
				}
			case EndpointIndependent:
				// Masquerade keeps the port when it can.
				if want := netip.AddrPortFrom(c.host.Public(), res.Local.Port()); res.Public != want {
					t.Errorf("Public = %v, want %v", res.Public, want)
				}
			case Symmetric:
				if res.Public.Addr() != c.host.Public() {
					t.Errorf("Public = %v, want on %v", res.Public, c.host.Public())
				}
			case Blocked:
				if res.Public.IsValid() {
					t.Errorf("Public = %v, want none", res.Public)
				}
			}
		})
	}
}

// serveIn runs Serve inside h on the given ports until the test ends and
// returns the server addresses.
func serveIn(t *testing.T, h *netns.Host, ports ...uint16) []string {
	t.Helper()
	conns := make([]net.PacketConn, 0, len(ports))
	addrs := make([]string, 0, len(ports))
	err := h.Do(func() error {
		for _, p := range ports {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(h.Addr, p)))
			if err != nil {
				return err
			}
			conns = append(conns, c)
			addrs = append(addrs, c.LocalAddr().String())
		}
		return nil
	})
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, conns...)
	return addrs
}
