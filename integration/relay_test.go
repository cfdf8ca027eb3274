package integration

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/peer"
)

// relayNet is three subnets joined by a router: alice, bob and carol each
// on their own (so the LAN path cannot join them: broadcasts are not
// routed), and the relay on a third.
type relayNet struct {
	ha, hb, hc, hr *netns.Host
	relay          *lantest.Node
}

func newRelayNet(t *testing.T, prefix string) *relayNet {
	t.Helper()
	n := netns.New(t)
	var segs []*netns.Segment
	for i := 1; i <= 4; i++ {
		segs = append(segs, n.Segment(netip.MustParsePrefix(fmt.Sprintf("%s.%d.0/24", prefix, i))))
	}
	n.Router("r", segs...)
	rn := &relayNet{ha: segs[0].AddHost("a"), hb: segs[1].AddHost("b"), hc: segs[2].AddHost("c"), hr: segs[3].AddHost("relay")}
	rn.relay = lantest.StartRelay(t, rn.hr, "")
	return rn
}

// member starts a node on h and makes it a member with a fresh invite.
func (rn *relayNet) member(t testing.TB, h *netns.Host, user string) *lantest.Node {
	t.Helper()
	nd := lantest.StartAs(t, h, user, user)
	if out, err := nd.CLI("join", rn.relay.Invite()); err != nil {
		t.Fatalf("%s join: %v\n%s", user, err, out)
	}
	waitRelay(t, nd)
	return nd
}

// waitRelay waits until nd is connected to its relay.
func waitRelay(t testing.TB, nd *lantest.Node) {
	t.Helper()
	eventually(t, 15*time.Second, func() (bool, string) {
		st := status(t, nd)
		return st.Relay.Connected, fmt.Sprintf("%s: relay state %+v", nd.Name, st.Relay)
	})
}

// waitContact waits until nd lists nick reached through the relay, online
// or not as wanted.
func waitContact(t testing.TB, nd *lantest.Node, nick string, online bool) peer.Contact {
	t.Helper()
	var found peer.Contact
	eventually(t, 10*time.Second, func() (bool, string) {
		for _, c := range nd.Peers() {
			if c.Nick == nick && c.Via == peer.ViaRelay && c.Offline == !online {
				found = c
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s lists %v, want %s via the relay (online %v)", nd.Name, nickList(nd.Peers()), nick, online)
	})
	return found
}

// TestRelayOfflineDelivery: bob is a member but not running; alice's
// message is stored by the relay, and delivered (and reported delivered to
// alice) when bob starts. The conversation is one history on each side.
// Then a sealed message: bob opens it, and alice learns that he did; and
// a file bob declines, which alice learns too.
func TestRelayOfflineDelivery(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	rn := newRelayNet(t, "10.81")
	a := rn.member(t, rn.ha, "alice")
	b := rn.member(t, rn.hb, "bob")
	waitContact(t, a, "bob", true)
	bobData := b.Data
	b.Stop()
	ct := waitContact(t, a, "bob", false)
	if ct.Key != "bob@"+ct.Host || ct.ID == "" {
		t.Errorf("bob via relay: %+v, want his LAN key and identity", ct)
	}
	evA := record(t, a)

	const text = "留言 while you were out"
	out, err := a.CLI("send", "bob", text)
	if err != nil || out != "stored to bob\n" {
		t.Fatalf("send to offline bob: %v, printed %q, want %q", err, out, "stored to bob\n")
	}
	b = lantest.StartWith(t, rn.hb, bobData, "bob", "bob")
	waitHistory(t, b, "alice", text)
	eventually(t, 10*time.Second, func() (bool, string) {
		for _, e := range evA.snapshot() {
			var se peer.StatusEvent
			if e.Kind == "status" && json.Unmarshal(e.Data, &se) == nil && se.Status == peer.Delivered {
				return true, ""
			}
		}
		return false, "alice saw no delivered report"
	})
	wantHistory(t, a, "bob", peer.Outgoing, text, peer.Delivered)
	wantHistory(t, b, "alice", peer.Incoming, text, peer.Received)

	// bob answers through the relay; alice gets it in the same conversation.
	sendTo(t, b, "alice", "收到")
	wantHistory(t, a, "bob", peer.Incoming, "收到", peer.Received)

	// Restarting bob again delivers nothing twice.
	b.Stop()
	b = lantest.StartWith(t, rn.hb, bobData, "bob", "bob")
	waitRelay(t, b)
	time.Sleep(500 * time.Millisecond)
	if n := countText(history(t, b, "alice", 0), text); n != 1 {
		t.Errorf("bob's history has %q %d times after a restart, want once", text, n)
	}

	// A sealed message: bob must open it, and alice is told when he does.
	const sealed = "密封的消息"
	if out, err := a.CLI("send", "--seal", "bob", sealed); err != nil || out != "delivered to bob\n" {
		t.Fatalf("sealed send to bob: %v, printed %q", err, out)
	}
	waitHistory(t, b, "alice", sealed)
	var got peer.Message
	for _, m := range history(t, b, "alice", 0) {
		if m.Text == sealed {
			got = m
		}
	}
	if !got.Sealed {
		t.Fatalf("bob's copy of the sealed message is not sealed: %+v", got)
	}
	wantHistory(t, a, "bob", peer.Outgoing, sealed, peer.Delivered)
	if out, err := b.CLI("open", got.ID); err != nil {
		t.Fatalf("bob opens %s: %v\n%s", got.ID, err, out)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		for _, m := range history(t, a, "bob", 0) {
			if m.Text == sealed {
				return m.Status == peer.Opened, fmt.Sprintf("alice's sealed message: %+v, want opened", m)
			}
		}
		return false, "alice has no sealed message"
	})
	wantHistory(t, b, "alice", peer.Incoming, sealed, peer.Opened)

	// bob declines a file: alice is told, and stops sharing it.
	src := filepath.Join(t.TempDir(), "不要的.txt")
	writeRandom(t, src, 1000)
	offer := offerFiles(t, a, b, record(t, b), "要这个文件吗", src)
	if out, err := b.CLI("decline", offer.ID); err != nil {
		t.Fatalf("bob declines: %v\n%s", err, out)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(a.Log(), "a relay member declined our offer"), "alice was not told bob declined"
	})
}

// TestRelayAway: bob is away; alice's messages through the relay get his
// away text back, once a minute at most, and her own auto-reply is never
// answered by his (two away members do not talk to each other forever).
func TestRelayAway(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	rn := newRelayNet(t, "10.87")
	a := rn.member(t, rn.ha, "alice")
	b := rn.member(t, rn.hb, "bob")
	waitContact(t, a, "bob", true)
	waitContact(t, b, "alice", true)
	const away = "开会中，稍后回复"
	for _, c := range []struct {
		nd   *lantest.Node
		text string
	}{{b, away}, {a, "我也不在"}} {
		if out, err := c.nd.CLI("away", c.text); err != nil {
			t.Fatalf("%s away: %v\n%s", c.nd.Name, err, out)
		}
	}
	sendTo(t, a, "bob", "在吗？")
	sendTo(t, a, "bob", "还在开会？")
	waitHistory(t, a, "bob", away)
	time.Sleep(time.Second) // room for a wrong second auto-reply, or a ping-pong
	var replies, ours int
	for _, m := range history(t, a, "bob", 0) {
		switch {
		case m.Text == away && m.Dir == peer.Incoming && m.AutoRe:
			replies++
		case m.AutoRe && m.Dir == peer.Outgoing:
			ours++
		}
	}
	if replies != 1 || ours != 0 {
		t.Errorf("alice got %d auto-replies from bob (want 1) and sent %d of her own (want 0): %+v", replies, ours, history(t, a, "bob", 0))
	}
}

// waitHistory waits until text is in nd's conversation with who: the
// message may arrive before an event stream could be started.
func waitHistory(t testing.TB, nd *lantest.Node, who, text string) {
	t.Helper()
	eventually(t, 15*time.Second, func() (bool, string) {
		return countText(history(t, nd, who, 0), text) > 0, fmt.Sprintf("%s has no %q from %s", nd.Name, text, who)
	})
}

// sendTo sends through the relay and wants it stored or delivered.
func sendTo(t *testing.T, nd *lantest.Node, to, text string) {
	t.Helper()
	// An online member gets it at once (delivered), an offline one's
	// waits in the relay's store (stored).
	out, err := nd.CLI("send", to, "--", text)
	if err != nil || !strings.HasPrefix(out, "stored to ") && !strings.HasPrefix(out, "delivered to ") {
		t.Fatalf("%s: send to %s: %v, printed %q", nd.Name, to, err, out)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		return countText(history(t, nd, to, 0), text) == 1, "not in history"
	})
}

func countText(ms []peer.Message, text string) int {
	k := 0
	for _, m := range ms {
		if m.Text == text {
			k++
		}
	}
	return k
}

// TestRelayGroups: alice makes a group with bob and carol; carol is
// offline when alice posts and gets the post when she returns. A member
// removed from the group gets no more posts and cannot post.
func TestRelayGroups(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	rn := newRelayNet(t, "10.82")
	a := rn.member(t, rn.ha, "alice")
	b := rn.member(t, rn.hb, "bob")
	c := rn.member(t, rn.hc, "carol")
	for _, nick := range []string{"bob", "carol"} {
		waitContact(t, a, nick, true)
	}
	out, err := a.CLI("group", "create", "项目组", "bob", "carol")
	if err != nil || !strings.Contains(out, "项目组") || !strings.Contains(out, "3 members") {
		t.Fatalf("group create: %v %q", err, out)
	}
	carolData := c.Data
	c.Stop()
	evB := record(t, b)
	sendTo(t, a, "group:项目组", "周会改到三点")
	eventually(t, 10*time.Second, func() (bool, string) {
		for _, m := range evB.incoming() {
			if m.Text == "周会改到三点" && strings.HasPrefix(m.Peer, peer.GroupPrefix) && m.Nick == "alice" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("bob's messages: %+v", evB.incoming())
	})
	c = lantest.StartWith(t, rn.hc, carolData, "carol", "carol")
	evC := record(t, c)
	waitHistory(t, c, "group:项目组", "周会改到三点")

	// bob leaves the group (alice, the owner, removes him).
	if out, err := a.CLI("group", "remove", "项目组", "bob"); err != nil {
		t.Fatalf("group remove: %v %q", err, out)
	}
	sendTo(t, a, "group:项目组", "only carol now")
	evC.waitIncoming(t, 10*time.Second, "alice", "only carol now")
	time.Sleep(300 * time.Millisecond)
	if evB.countIncoming("alice", "only carol now") != 0 {
		t.Error("bob got a post after he was removed from the group")
	}
	if out, err := b.CLI("send", "group:项目组", "--", "may I?"); err == nil {
		t.Errorf("bob posted to a group he is not in: %q", out)
	}
}

// TestRelayRefusesStrangers: a node that never joined and a member whose
// membership was revoked are refused, and told so.
func TestRelayRefusesStrangers(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	rn := newRelayNet(t, "10.83")
	a := rn.member(t, rn.ha, "alice")
	relayAddr := status(t, a).Relay.Relay
	addrs := relayAddrsOf(t, rn.relay)

	// mallory knows the relay's address but has no invite.
	m := lantest.StartAs(t, rn.hc, "mallory", "mallory", "--relay", strings.Join(addrs, ","))
	eventually(t, 15*time.Second, func() (bool, string) {
		st := status(t, m).Relay
		return !st.Connected && strings.Contains(st.Error, "not a member"), fmt.Sprintf("mallory's relay state %+v", st)
	})
	// A used invite does not work twice.
	code := rn.relay.Invite()
	b := lantest.StartAs(t, rn.hb, "bob", "bob")
	if _, err := b.CLI("join", code); err != nil {
		t.Fatal(err)
	}
	if out, err := m.CLI("join", code); err == nil {
		t.Errorf("mallory joined with bob's used invite: %q", out)
	}
	waitRelay(t, b)

	// Revoke bob: he is disconnected at once and refused from then on.
	var bobID string
	for _, mem := range relayMembers(t, rn.relay) {
		if mem.Nick == "bob" {
			bobID = mem.ID
		}
	}
	if out, err := rn.relay.CLI("remove", bobID); err != nil {
		t.Fatalf("relay remove: %v %q", err, out)
	}
	eventually(t, 15*time.Second, func() (bool, string) {
		st := status(t, b).Relay
		return !st.Connected && strings.Contains(st.Error, "not a member"), fmt.Sprintf("bob's relay state %+v", st)
	})
	if out, err := a.CLI("send", "bob", "--", "still there?"); err == nil {
		t.Errorf("alice could send to revoked bob: %q", out)
	}
	if st := status(t, a).Relay; !st.Connected || st.Relay != relayAddr {
		t.Errorf("alice lost her relay: %+v", st)
	}
}

type relayMember struct {
	ID     string `json:"id"`
	Nick   string `json:"nick"`
	Online bool   `json:"online"`
}

func relayMembers(t *testing.T, r *lantest.Node) []relayMember {
	t.Helper()
	out, err := r.CLI("members", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ms []relayMember
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m relayMember
		if json.Unmarshal([]byte(line), &m) == nil {
			ms = append(ms, m)
		}
	}
	return ms
}

func relayAddrsOf(t *testing.T, r *lantest.Node) []string {
	t.Helper()
	out, err := r.CLI("status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Addrs []string }
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	return st.Addrs
}

// TestRelayCrashDuringBurst sends 10,000 messages to an offline member and
// kills the relay (SIGKILL) in the middle, then restarts it: every message
// the relay acknowledged ("stored") reaches bob exactly once, in order, and
// alice's node resends what was in flight, so nothing is lost at all.
func TestRelayCrashDuringBurst(t *testing.T) {
	netns.Require(t)
	if testing.Short() {
		t.Skip("10,000 messages")
	}
	t.Parallel()
	rn := newRelayNet(t, "10.84")
	a := rn.member(t, rn.ha, "alice")
	b := rn.member(t, rn.hb, "bob")
	waitContact(t, a, "bob", true)
	bobData := b.Data
	b.Stop()
	waitContact(t, a, "bob", false)

	const total = 10000
	var in strings.Builder
	for i := range total {
		fmt.Fprintf(&in, "burst %05d\n", i)
	}
	done := make(chan struct{})
	var stdout, stderr string
	var sendErr error
	go func() {
		defer close(done)
		stdout, stderr, sendErr = runCLI(t, 5*time.Minute, a, []byte(in.String()), "send", "--json", "--lines", "bob")
	}()
	// Kill the relay once a good part is stored.
	eventually(t, 60*time.Second, func() (bool, string) {
		n := len(history(t, a, "bob", 0))
		return n > total/4, fmt.Sprintf("alice has sent %d", n)
	})
	select {
	case <-done:
		t.Fatal("the burst ended before the relay was killed: the test proves nothing")
	default:
	}
	rn.relay.Kill()
	relayData := rn.relay.Data
	time.Sleep(time.Second)
	rn.relay = lantest.StartRelay(t, rn.hr, relayData)
	<-done
	if sendErr != nil {
		t.Fatalf("send: %v\n%s", sendErr, stderr)
	}
	results := parseResults(t, stdout)
	stored := 0
	for _, m := range results {
		if m.Status == peer.Stored {
			stored++
		}
	}
	if len(results) != total || stored != total {
		t.Fatalf("%d results, %d stored; want all %d stored (the node resends across the relay's restart)", len(results), stored, total)
	}

	b = lantest.StartWith(t, rn.hb, bobData, "bob", "bob")
	eventually(t, 3*time.Minute, func() (bool, string) {
		n := len(history(t, b, "alice", 0))
		return n >= total, fmt.Sprintf("bob has %d of %d", n, total)
	})
	got := history(t, b, "alice", 0)
	if len(got) != total {
		t.Fatalf("bob has %d messages, want exactly %d", len(got), total)
	}
	for i, m := range got {
		if want := fmt.Sprintf("burst %05d", i); m.Text != want {
			t.Fatalf("bob's message %d is %q, want %q (lost, doubled or out of order)", i, m.Text, want)
		}
	}
}
