package integration

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/peer"
	"github.com/lanchat/lanchat/relay"
)

// TestTransferMovesToDirect: alice and carol, behind cone NATs, meet while
// neither can reach the other's public address (each host's firewall
// drops what it sends there), so hole punching fails and they talk through
// a circuit of the relay, whose link is slowed down. A file alice offers
// starts through the relay; carol's client, after one more failed try,
// keeps trying on its schedule. The firewalls open, a retry punches
// through, and the running transfer moves to the direct connection: it
// completes intact, with part of the file never crossing the relay.
func TestTransferMovesToDirect(t *testing.T) {
	netns.RequireNftables(t)
	t.Parallel()
	nn := startNATNet(t, "11.205.0.0/24", "10.88", []natMember{{"alice", netns.NATCone}, {"carol", netns.NATCone}})
	alice, carol := nn.nodes["alice"], nn.nodes["carol"]
	for _, nd := range []*lantest.Node{alice, carol} {
		waitNAT(t, nd, "endpoint-independent")
	}
	waitContact(t, alice, "carol", true)
	if p := contact(t, alice, "carol").Path; p != relay.PathNone {
		t.Fatalf("alice reaches carol by %q before they met", p)
	}
	ha, hc := nn.hosts["alice"], nn.hosts["carol"]
	openA := blockTo(t, ha, hc.Public())
	openC := blockTo(t, hc, ha.Public())
	// The relay sends at 2 MB/s: through it the file would take 40 s.
	limitRate(t, nn.relayHost, "16mbit")

	start := time.Now()
	const size = 80 << 20
	src := filepath.Join(t.TempDir(), "搬家.bin")
	sum := writeRandom(t, src, size)
	offer := offerFiles(t, alice, carol, record(t, carol), "换条路走", src)
	rx0 := rxBytes(t, nn.relayHost)
	dest := t.TempDir()
	acc := startAccept(t, carol, offer.ID, dest)
	tr := waitOfferTransfer(t, carol, offer.ID, peer.Incoming)
	if p := contact(t, carol, "alice").Path; p != relay.PathRelayed {
		t.Fatalf("carol's transfer runs while she reaches alice by %q, want %q", p, relay.PathRelayed)
	}
	t.Logf("%v: the transfer runs through the relay (%d of %d bytes)", since(start), tr.Done, tr.Total)
	// Wait for one of carol's retries to fail, so that the one that works
	// comes from the schedule, not from libp2p's first attempt.
	eventually(t, 15*time.Second, func() (bool, string) {
		return strings.Contains(carol.Log(), "hole punching failed"), "carol logged no failed hole punching retry"
	})
	openA()
	openC()
	t.Logf("%v: direct traffic allowed again", since(start))

	eventually(t, 30*time.Second, func() (bool, string) {
		p := contact(t, carol, "alice").Path
		return p == relay.PathDirect, fmt.Sprintf("carol reaches alice by %q", p)
	})
	t.Logf("%v: carol reaches alice directly", since(start))
	if out, err := acc.wait(t); err != nil {
		t.Fatalf("carol's accept: %v\n%s", err, out)
	}
	relayed := rxBytes(t, nn.relayHost) - rx0
	t.Logf("%v: transfer done; %d of %d bytes came through the relay", since(start), relayed, size)
	if tr := lastOfferTransfer(t, carol, offer.ID); tr.State != peer.TransferDone || tr.Done != size {
		t.Fatalf("carol's transfer: %+v, want done with %d bytes", tr, size)
	}
	if got := hashFile(t, filepath.Join(dest, "搬家.bin")); got != sum {
		t.Fatalf("carol's copy has SHA-256 %s, want %s", got, sum)
	}
	if !strings.Contains(carol.Log(), "direct connection up: the transfer moves to it") {
		t.Error("carol's log does not say the transfer moved to the direct connection")
	}
	if relayed >= size {
		t.Errorf("the relay received %d bytes during a transfer of %d: the transfer did not move", relayed, size)
	}
}

// blockTo makes h's firewall drop everything h sends to addr, until the
// returned function is called (or the test ends with the namespace). The
// sender's own kernel refuses, so dials fail at once instead of timing out.
func blockTo(t *testing.T, h *netns.Host, addr netip.Addr) (open func()) {
	t.Helper()
	rules := fmt.Sprintf("table ip lanchat_block { chain output { type filter hook output priority filter; ip daddr %s drop; }; }", addr)
	if out, err := h.Run("nft", rules); err != nil {
		t.Fatalf("block %s → %s: %v\n%s", h.Name, addr, err, out)
	}
	return func() {
		t.Helper()
		if out, err := h.Run("nft", "delete", "table", "ip", "lanchat_block"); err != nil {
			t.Fatalf("unblock %s → %s: %v\n%s", h.Name, addr, err, out)
		}
	}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }
