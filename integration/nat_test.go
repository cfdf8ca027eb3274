package integration

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/peer"
	"github.com/lanchat/lanchat/relay"
)

// TestAcrossNATs puts the relay on a public-looking WAN and four members
// on private LANs, each behind its own NAT router: alice and carol behind
// endpoint-independent (cone) NATs, bob and dave behind symmetric ones.
// Each learns its NAT type from the relay's STUN responder. Then, pair by
// pair, a message goes from one to the other and is delivered at once: the
// relay introduces them, and hole punching makes alice↔carol direct, while
// alice↔bob and bob↔dave stay on a circuit through the relay (punching is
// not even tried from behind a symmetric NAT).
func TestAcrossNATs(t *testing.T) {
	netns.RequireNftables(t)
	t.Parallel()
	nn := startNATNet(t, "11.203.0.0/24", "10.85", []natMember{
		{"alice", netns.NATCone}, {"bob", netns.NATSymmetric}, {"carol", netns.NATCone}, {"dave", netns.NATSymmetric}})
	hr, relayNode, nodes := nn.relayHost, nn.relay, nn.nodes
	wantNAT := map[string]string{"alice": "endpoint-independent", "bob": "symmetric", "carol": "endpoint-independent", "dave": "symmetric"}
	for name, nd := range nodes {
		if st := waitNAT(t, nd, wantNAT[name]); netip.MustParseAddrPort(st.Public).Addr() != nn.hosts[name].Public() {
			t.Errorf("%s's public address %s, want her NAT's %s", name, st.Public, nn.hosts[name].Public())
		}
	}

	for _, pair := range []struct {
		from, to string
		path     string
	}{
		{"alice", "carol", relay.PathDirect},
		{"carol", "alice", relay.PathDirect},
		{"alice", "bob", relay.PathRelayed},
		{"dave", "bob", relay.PathRelayed},
	} {
		from, to := nodes[pair.from], nodes[pair.to]
		waitContact(t, from, pair.to, true)
		text := fmt.Sprintf("%s 穿过 NAT 到 %s", pair.from, pair.to)
		out, err := from.CLI("send", pair.to, text)
		if want := "delivered to " + pair.to + "\n"; err != nil || out != want {
			t.Errorf("%s → %s: %v, printed %q, want %q", pair.from, pair.to, err, out, want)
			continue
		}
		waitHistory(t, to, pair.from, text)
		// Hole punching runs beside the first message; the path settles
		// within seconds.
		eventually(t, 15*time.Second, func() (bool, string) {
			ct := contact(t, from, pair.to)
			return ct.Path == pair.path, fmt.Sprintf("%s reaches %s by %q (%s), want %q", pair.from, pair.to, ct.Path, ct.PathNote, pair.path)
		})
		if ct := contact(t, from, pair.to); pair.path == relay.PathRelayed && wantNAT[pair.from] == "symmetric" && ct.PathNote == "" {
			t.Errorf("%s → %s is relayed with no reason given", pair.from, pair.to)
		}
	}
	wantHistory(t, nodes["carol"], "alice", peer.Outgoing, "carol 穿过 NAT 到 alice", peer.Delivered)

	// A 50 MiB file on each kind of path: alice → carol direct, alice →
	// bob and dave → bob through the relay.
	src := filepath.Join(t.TempDir(), "季度报告.bin")
	sum := writeRandom(t, src, 50<<20)
	for _, p := range []struct{ from, to string }{{"alice", "carol"}, {"alice", "bob"}, {"dave", "bob"}} {
		from, nd, to := nodes[p.from], nodes[p.to], p.to
		offer := offerFiles(t, from, nd, record(t, nd), p.from+" 的文件给 "+to, src)
		dest := t.TempDir()
		start := time.Now()
		ts, err := acceptJSON(nd, offer.ID, dest)
		if err != nil || len(ts) != 1 || ts[0].State != peer.TransferDone {
			t.Fatalf("%s accepts %s's file: %v, %+v", to, p.from, err, ts)
		}
		if got := hashFile(t, filepath.Join(dest, "季度报告.bin")); got != sum {
			t.Errorf("%s's copy differs from %s's file", to, p.from)
		}
		t.Logf("50 MiB %s → %s (%s): %v", p.from, to, contact(t, from, to).Path, time.Since(start).Round(time.Millisecond))
	}

	// The relay goes down. alice still reaches carol on their own
	// connection; her message to bob waits, and goes when the relay is
	// back: the conversation continues with nothing lost or doubled.
	relayData := relayNode.Data
	relayNode.Kill()
	if out, err := nodes["alice"].CLI("send", "carol", "relay 停了"); err != nil || out != "delivered to carol\n" {
		t.Errorf("alice → carol without the relay: %v, printed %q", err, out)
	}
	toBob := make(chan string, 1)
	go func() {
		out, err := nodes["alice"].CLI("send", "bob", "relay 回来了吗")
		toBob <- fmt.Sprint(out, err)
	}()
	time.Sleep(time.Second)
	lantest.StartRelay(t, hr, relayData)
	if got := <-toBob; got != "stored to bob\n<nil>" && got != "delivered to bob\n<nil>" {
		t.Errorf("alice → bob across the relay's restart: %q", got)
	}
	// bob notices the restart at his next ping (relay.pingEvery) at worst.
	eventually(t, 40*time.Second, func() (bool, string) {
		return countText(history(t, nodes["bob"], "alice", 0), "relay 回来了吗") > 0, "bob has not got alice's message"
	})
	waitHistory(t, nodes["carol"], "alice", "relay 停了")
	time.Sleep(time.Second)
	for _, c := range []struct{ nd, from, text string }{{"bob", "alice", "relay 回来了吗"}, {"carol", "alice", "relay 停了"}} {
		if k := countText(history(t, nodes[c.nd], c.from, 0), c.text); k != 1 {
			t.Errorf("%s has %q %d times, want once", c.nd, c.text, k)
		}
	}
}

// waitNAT waits until nd's NAT check says nat, and returns nd's relay
// state then: the check's results, its TCP mapping included, come together.
func waitNAT(t testing.TB, nd *lantest.Node, nat string) relay.State {
	t.Helper()
	var st relay.State
	eventually(t, 15*time.Second, func() (bool, string) {
		st = status(t, nd).Relay
		return st.NAT == nat, fmt.Sprintf("%s's NAT check: %+v, want %s", nd.Name, st, nat)
	})
	return st
}

// natNet is a relay on a public-looking WAN and members, each on its own
// private LAN behind its own NAT router.
type natNet struct {
	wan       *netns.Segment
	relayHost *netns.Host
	relay     *lantest.Node
	hosts     map[string]*netns.Host
	nodes     map[string]*lantest.Node
}

type natMember struct {
	name string
	kind netns.NATKind
}

// startNATNet builds the network (wan a prefix such as 11.203.0.0/24, the
// LANs lan.1.0/24, lan.2.0/24, …) and starts the relay and the members.
func startNATNet(tb testing.TB, wan, lan string, members []natMember) *natNet {
	tb.Helper()
	n := netns.New(tb)
	nn := &natNet{wan: n.Segment(netip.MustParsePrefix(wan)), hosts: map[string]*netns.Host{}, nodes: map[string]*lantest.Node{}}
	nn.relayHost = nn.wan.AddHost("relay")
	nn.relay = lantest.StartRelay(tb, nn.relayHost, "")
	rn := &relayNet{relay: nn.relay}
	for i, m := range members {
		seg := n.Segment(netip.MustParsePrefix(fmt.Sprintf("%s.%d.0/24", lan, i+1)))
		n.NAT(fmt.Sprintf("nat%d", i+1), seg, nn.wan, m.kind)
		nn.hosts[m.name] = seg.AddHost(fmt.Sprintf("h%d", i+1))
		nn.nodes[m.name] = rn.member(tb, nn.hosts[m.name], m.name)
	}
	return nn
}
