package integration

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/relay"
)

// TestPunchOverTCP puts erin behind a NAT that forwards no UDP at all, as a
// hotel or office firewall may, and alice behind a cone NAT. erin reaches
// the relay over TCP, alice over QUIC, so alice's public TCP mapping is
// something only the relay's STUN over TCP tells her. erin's NAT check says
// UDP is blocked; hole punching then offers and dials TCP addresses only,
// and a message between them makes the path direct: a TCP connection
// opened simultaneously through both NATs, between the mappings STUN over
// TCP reported.
func TestPunchOverTCP(t *testing.T) {
	netns.RequireNftables(t)
	t.Parallel()
	nn := startNATNet(t, "11.206.0.0/24", "10.89", []natMember{{"alice", netns.NATCone}, {"erin", netns.NATBlockUDP}})
	alice, erin := nn.nodes["alice"], nn.nodes["erin"]
	publicTCP := map[string]netip.AddrPort{}
	for _, m := range []struct{ name, nat string }{{"alice", "endpoint-independent"}, {"erin", "blocked"}} {
		ap, err := netip.ParseAddrPort(waitNAT(t, nn.nodes[m.name], m.nat).PublicTCP)
		if err != nil || ap.Addr() != nn.hosts[m.name].Public() {
			t.Fatalf("%s's public TCP address %v (%v), want on her NAT's %s", m.name, ap, err, nn.hosts[m.name].Public())
		}
		publicTCP[m.name] = ap
	}

	start := time.Now()
	waitContact(t, alice, "erin", true)
	if out, err := alice.CLI("send", "erin", "alice 经 TCP 打洞到 erin"); err != nil || out != "delivered to erin\n" {
		t.Fatalf("alice → erin: %v, printed %q", err, out)
	}
	waitHistory(t, erin, "alice", "alice 经 TCP 打洞到 erin")
	eventually(t, 30*time.Second, func() (bool, string) {
		ct := contact(t, erin, "alice")
		return ct.Path == relay.PathDirect, fmt.Sprintf("erin reaches alice by %q (%s), want direct", ct.Path, ct.PathNote)
	})
	t.Logf("direct %v after alice's message", since(start))
	if ct := contact(t, alice, "erin"); ct.Path != relay.PathDirect {
		t.Errorf("alice reaches erin by %q, want direct", ct.Path)
	}
	// The direct connection is TCP (erin's NAT passes nothing else),
	// between the two public TCP mappings.
	if got := tcpPeers(t, nn.hosts["erin"]); !slices.Contains(got, publicTCP["alice"]) {
		t.Errorf("erin's TCP connections go to %v, none to alice's public TCP address %v", got, publicTCP["alice"])
	}

	if out, err := erin.CLI("send", "alice", "erin 直连回复"); err != nil || out != "delivered to alice\n" {
		t.Fatalf("erin → alice: %v, printed %q", err, out)
	}
	waitHistory(t, alice, "erin", "erin 直连回复")
	if ct := contact(t, erin, "alice"); ct.Path != relay.PathDirect {
		t.Errorf("after erin's reply, erin reaches alice by %q, want direct", ct.Path)
	}
}

// tcpPeers lists the remote ends of h's established IPv4 TCP connections,
// from /proc inside its namespace.
func tcpPeers(t *testing.T, h *netns.Host) []netip.AddrPort {
	t.Helper()
	var data []byte
	err := h.Do(func() (err error) {
		data, err = os.ReadFile("/proc/thread-self/net/tcp") // this thread's namespace
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.AddrPort
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "01" { // TCP_ESTABLISHED
			continue
		}
		if ap, ok := procAddr(f[2]); ok {
			out = append(out, ap)
		}
	}
	return out
}

// procAddr parses an address of /proc/net/tcp, such as "0100007F:1F90":
// the IPv4 address as a hex word in host (here little-endian) order, then
// the port in hex.
func procAddr(s string) (netip.AddrPort, bool) {
	ipHex, portHex, _ := strings.Cut(s, ":")
	ip, err := strconv.ParseUint(ipHex, 16, 32)
	if err != nil || len(ipHex) != 8 {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(ip))
	return netip.AddrPortFrom(netip.AddrFrom4(b), uint16(port)), true
}
