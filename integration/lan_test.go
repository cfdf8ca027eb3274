// Package integration runs real lanchat processes on network-namespace
// topologies: one switched segment, two subnets behind a router, and a lossy
// link. The tests need root and skip cleanly without it.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/peer"
)

// TestBridgeThreeHosts puts three nodes on one segment: they find each other
// by broadcast, chat in Chinese and English, reach two peers with one send,
// and notice a peer that quits.
func TestBridgeThreeHosts(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	n := netns.New(t)
	seg := n.Segment(netip.MustParsePrefix("10.71.1.0/24"))
	ha, hb, hc := seg.AddHost("a"), seg.AddHost("b"), seg.AddHost("c")

	a := lantest.StartAs(t, ha, "a", "张三")
	b := lantest.StartAs(t, hb, "b", "bob")
	c := lantest.StartAs(t, hc, "c", "李四", "--group", "研发")
	evA, evB, evC := record(t, a), record(t, b), record(t, c)

	a.WaitPeers(3*time.Second, "bob", "李四")
	b.WaitPeers(3*time.Second, "张三", "李四")
	c.WaitPeers(3*time.Second, "张三", "bob")
	for _, nd := range []*lantest.Node{a, b} {
		if ct := contact(t, nd, "李四"); ct.Group != "研发" {
			t.Errorf("%s sees 李四 in group %q, want 研发", nd.Name, ct.Group)
		}
	}

	chats := []struct {
		name     string
		from, to *lantest.Node
		ev       *recorder
		text     string
	}{
		{"A to B", a, b, evB, "你好 bob，我是张三。Hello from 张三!"},
		{"B to A", b, a, evA, "hi 张三, bob here: 收到了"},
		{"C to A", c, a, evA, "研发部下午三点开会 / R&D meeting at 3 pm"},
	}
	for _, ch := range chats {
		t.Run(ch.name, func(t *testing.T) {
			sendOK(t, ch.from, []string{ch.to.Name}, ch.text)
			ch.ev.waitIncoming(t, 5*time.Second, ch.from.Name, ch.text)
			wantHistory(t, ch.from, ch.to.Name, peer.Outgoing, ch.text, peer.Delivered)
			wantHistory(t, ch.to, ch.from.Name, peer.Incoming, ch.text, peer.Received)
		})
	}

	const all = "大家好 hello both of you"
	sendOK(t, a, []string{"bob", "李四"}, all)
	evB.waitIncoming(t, 5*time.Second, "张三", all)
	evC.waitIncoming(t, 5*time.Second, "张三", all)

	// Each text was shown once; a repeat would have come with the text.
	for _, ch := range chats {
		if got := ch.ev.countIncoming(ch.from.Name, ch.text); got != 1 {
			t.Errorf("%s's events show %q from %s %d times, want once", ch.to.Name, ch.text, ch.from.Name, got)
		}
	}
	for _, r := range []*recorder{evB, evC} {
		if got := r.countIncoming("张三", all); got != 1 {
			t.Errorf("%s's events show %q %d times, want once", r.node.Name, all, got)
		}
	}

	stopped := time.Now()
	if err := c.Stop(); err != nil {
		t.Fatalf("stop 李四: %v", err)
	}
	for _, nd := range []*lantest.Node{a, b} {
		waitGone(t, nd, 2*time.Second, "李四")
	}
	t.Logf("张三 and bob dropped 李四 %v after SIGTERM", time.Since(stopped).Round(time.Millisecond))
	for _, r := range []*recorder{evA, evB} {
		if got := r.contactChanges("李四", "left"); got != 1 {
			t.Errorf("%s's events show 李四 leaving %d times, want once (BR_EXIT)", r.node.Name, got)
		}
	}
}

// TestSubnetsViaRouter puts two nodes on subnets joined by a router, which
// forwards no broadcast: they meet only through --broadcast targets, and a
// target on one side is enough because the far side answers the unicast entry.
func TestSubnetsViaRouter(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	n := netns.New(t)
	seg1 := n.Segment(netip.MustParsePrefix("10.72.1.0/24"))
	seg2 := n.Segment(netip.MustParsePrefix("10.72.2.0/24"))
	n.Router("r", seg1, seg2)
	ha, hb := seg1.AddHost("a"), seg2.AddHost("b")

	t.Run("broadcast stays on its segment", func(t *testing.T) {
		a := lantest.StartAs(t, ha, "a", "alice")
		b := lantest.StartAs(t, hb, "b", "bob")
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			for _, nd := range []*lantest.Node{a, b} {
				if cs := nd.Peers(); len(cs) > 0 {
					t.Fatalf("%s lists %v across the router, want nobody: broadcasts must not be routed", nd.Name, nickList(cs))
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, nd := range []*lantest.Node{a, b} {
			if st := status(t, nd); st.Discovery.Entries == 0 {
				t.Errorf("%s sent no BR_ENTRY at all, so not seeing each other proves nothing", nd.Name)
			}
		}
	})

	t.Run("targets on both sides", func(t *testing.T) {
		a := lantest.StartAs(t, ha, "a", "alice", "--broadcast", seg2.Prefix.String())
		b := lantest.StartAs(t, hb, "b", "bob", "--broadcast", ha.Addr.String())
		evA, evB := record(t, a), record(t, b)
		a.WaitPeers(5*time.Second, "bob")
		b.WaitPeers(5*time.Second, "alice")
		wantAddr(t, a, "bob", hb.Addr)
		wantAddr(t, b, "alice", ha.Addr)

		const ab, ba = "routed hello 你好 from alice", "routed reply 收到 from bob"
		sendOK(t, a, []string{"bob"}, ab)
		evB.waitIncoming(t, 5*time.Second, "alice", ab)
		sendOK(t, b, []string{"alice"}, ba)
		evA.waitIncoming(t, 5*time.Second, "bob", ba)
		wantHistory(t, a, "bob", peer.Outgoing, ab, peer.Delivered)
		wantHistory(t, a, "bob", peer.Incoming, ba, peer.Received)
		wantHistory(t, b, "alice", peer.Outgoing, ba, peer.Delivered)
		wantHistory(t, b, "alice", peer.Incoming, ab, peer.Received)
	})

	t.Run("target on one side", func(t *testing.T) {
		// alice first: her unicast BR_ENTRY at start finds nobody; she
		// asks the silent targets again every few seconds, so bob, who
		// knows nothing of alice, still hears her and answers.
		a := lantest.StartAs(t, ha, "a", "alice", "--broadcast", seg2.Prefix.String())
		evA := record(t, a)
		b := lantest.StartAs(t, hb, "b", "bob")
		b.WaitPeers(10*time.Second, "alice")
		a.WaitPeers(5*time.Second, "bob")
		const text = "bob found alice without any --broadcast"
		sendOK(t, b, []string{"alice"}, text)
		evA.waitIncoming(t, 5*time.Second, "bob", text)
	})
}

// TestLossyLink1000Messages sends 1000 messages one by one over a link that
// loses 20% of UDP datagrams each way: each is delivered at most once, in
// order, and every one is reported delivered or failed.
func TestLossyLink1000Messages(t *testing.T) {
	netns.RequireIptables(t)
	t.Parallel()
	const count, loss = 1000, 20
	n := netns.New(t)
	seg := n.Segment(netip.MustParsePrefix("10.73.1.0/24"))
	ha, hb := seg.AddHost("a"), seg.AddHost("b")
	a := lantest.StartAs(t, ha, "a", "alice")
	b := lantest.StartAs(t, hb, "b", "bob")
	// Discovery runs loss-free: IPMsg never repeats BR_ENTRY, so a lost one
	// leaves the peers apart, and this test is about messages.
	a.WaitPeers(5*time.Second, "bob")
	b.WaitPeers(5*time.Second, "alice")
	for _, h := range []*netns.Host{ha, hb} {
		if err := h.DropInbound(loss); err != nil {
			t.Fatal(err)
		}
	}
	evB := record(t, b)

	var in bytes.Buffer
	texts := make([]string, count)
	for i := range texts {
		texts[i] = fmt.Sprintf("msg %04d", i+1)
		fmt.Fprintln(&in, texts[i])
	}
	start := time.Now()
	stdout, stderr, err := runCLI(t, 3*time.Minute, a, in.Bytes(), "send", "--json", "--lines", "bob")
	took := time.Since(start)
	t.Logf("sent %d messages with %d%% loss each way in %v (%v per message)", count, loss, took.Round(time.Millisecond), (took / count).Round(time.Microsecond))
	if took > 2*time.Minute {
		t.Errorf("sending took %v, want well under 2 minutes", took.Round(time.Millisecond))
	}

	results := parseResults(t, stdout)
	if len(results) != count {
		t.Fatalf("sender printed %d results, want one per message (%d); stderr: %s", len(results), count, stderr)
	}
	delivered := map[string]bool{}
	var failed []string
	for i, m := range results {
		switch {
		case m.Text != texts[i]:
			t.Fatalf("result %d is for %q, want %q: results must come in sending order", i+1, m.Text, texts[i])
		case m.Status == peer.Delivered:
			delivered[m.Text] = true
		case m.Status == peer.Failed:
			failed = append(failed, fmt.Sprintf("%s (%s)", m.Text, m.Error))
		default:
			t.Errorf("result for %q has status %q, want delivered or failed", m.Text, m.Status)
		}
	}
	t.Logf("%d delivered, %d failed: %v", len(delivered), len(failed), failed)
	if len(delivered)+len(failed) != count {
		t.Errorf("delivered %d + failed %d != %d", len(delivered), len(failed), count)
	}
	if wantErr := len(failed) > 0; (err != nil) != wantErr {
		t.Errorf("send exited with %v and %d failures; want exit status 1 exactly when a message failed; stderr: %s", err, len(failed), stderr)
	}
	// A failure needs ~9 lost round trips in a row (0.36^9 ≈ 1e-4 each).
	if len(failed) > count/100 {
		t.Errorf("%d of %d messages failed, want rare failures (< 1%%)", len(failed), count)
	}

	// Acks go out before the message event, so wait for the last ones.
	var got []peer.Message
	eventually(t, 10*time.Second, func() (bool, string) {
		got = evB.incoming()
		seen := map[string]bool{}
		for _, m := range got {
			seen[m.Text] = true
		}
		var missing []string
		for txt := range delivered {
			if !seen[txt] {
				missing = append(missing, txt)
			}
		}
		slices.Sort(missing)
		st := status(t, b)
		return len(missing) == 0 && len(got) == st.Stats.Received,
			fmt.Sprintf("bob's events lack %d messages the sender reports delivered (%.5v); %d events, %d received by the node",
				len(missing), missing, len(got), st.Stats.Received)
	})
	times := map[string]int{}
	for i, m := range got {
		times[m.Text]++
		if !slices.Contains(texts, m.Text) || m.Nick != "alice" {
			t.Errorf("bob received %q from %q, which alice never sent", m.Text, m.Nick)
		}
		if i > 0 && m.Text <= got[i-1].Text {
			t.Errorf("bob received %q after %q, want strictly increasing order", m.Text, got[i-1].Text)
		}
	}
	for txt, k := range times {
		if k != 1 {
			t.Errorf("bob shows %q %d times, want once", txt, k)
		}
	}
	if notes := evB.notices(); len(notes) > 0 {
		t.Errorf("bob's event stream reported %v; the stream must keep up with 1000 messages", notes)
	}
	if hist := history(t, b, "alice", 0); len(hist) != len(got) {
		t.Errorf("bob's history has %d messages from alice, events showed %d", len(hist), len(got))
	}

	sa, sb := status(t, a), status(t, b)
	t.Logf("alice: %d sent, %d resends, %d acked, %d failed; bob: %d received, %d repeats dropped",
		sa.Stats.Sent, sa.Stats.Retransmits, sa.Stats.Acked, sa.Stats.Failed, sb.Stats.Received, sb.Stats.Duplicates)
	if sa.Stats.Acked != len(delivered) || sa.Stats.Failed != len(failed) {
		t.Errorf("alice counts %d acked and %d failed, the CLI reported %d and %d",
			sa.Stats.Acked, sa.Stats.Failed, len(delivered), len(failed))
	}
	if sb.Stats.Received != len(got) {
		t.Errorf("bob counts %d received, its events showed %d", sb.Stats.Received, len(got))
	}
	// With 20% of acks lost, about 200 messages arrive twice: none would
	// mean the loss was not in effect or repeats were not recognised.
	if sa.Stats.Retransmits == 0 || sb.Stats.Duplicates == 0 {
		t.Errorf("alice resent %d and bob dropped %d repeats, want both > 0 with %d%% loss",
			sa.Stats.Retransmits, sb.Stats.Duplicates, loss)
	}
}

// recorder keeps every event a node's `lanchat events --json` printed.
type recorder struct {
	node   *lantest.Node
	mu     sync.Mutex
	events []lantest.Event
}

// record starts the node's event stream; it ends at cleanup.
func record(t testing.TB, nd *lantest.Node) *recorder {
	t.Helper()
	r := &recorder{node: nd}
	ch := nd.Events()
	go func() {
		for e := range ch {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) snapshot() []lantest.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// incoming returns the messages received, in the order they were shown.
func (r *recorder) incoming() []peer.Message {
	var out []peer.Message
	for _, e := range r.snapshot() {
		if m, ok := e.Message(); ok && m.Dir == peer.Incoming {
			out = append(out, m)
		}
	}
	return out
}

func (r *recorder) countIncoming(nick, text string) int {
	k := 0
	for _, m := range r.incoming() {
		if m.Nick == nick && m.Text == text {
			k++
		}
	}
	return k
}

// waitIncoming waits until text from nick has been shown.
func (r *recorder) waitIncoming(t *testing.T, timeout time.Duration, nick, text string) {
	t.Helper()
	eventually(t, timeout, func() (bool, string) {
		var seen []string
		for _, m := range r.incoming() {
			if m.Nick == nick && m.Text == text {
				return true, ""
			}
			seen = append(seen, fmt.Sprintf("%s: %q", m.Nick, m.Text))
		}
		return false, fmt.Sprintf("%s's events show %v, want %s: %q", r.node.Name, seen, nick, text)
	})
}

// contactChanges counts contact events of one kind (joined, updated, left) about nick.
func (r *recorder) contactChanges(nick, change string) int {
	k := 0
	for _, e := range r.snapshot() {
		var ce peer.ContactEvent
		if e.Kind == "contact" && json.Unmarshal(e.Data, &ce) == nil && ce.Contact.Nick == nick && ce.Change == change {
			k++
		}
	}
	return k
}

// notices returns the text of notice events.
func (r *recorder) notices() []string {
	var out []string
	for _, e := range r.snapshot() {
		var ne peer.NoticeEvent
		if e.Kind == "notice" && json.Unmarshal(e.Data, &ne) == nil {
			out = append(out, ne.Level+": "+ne.Text)
		}
	}
	return out
}

// eventually polls cond until it reports done, or fails the test with what
// cond last saw.
func eventually(t testing.TB, timeout time.Duration, cond func() (done bool, seen string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, seen := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sendOK sends text from nd to the peers and wants "delivered to NICK" for each.
func sendOK(t *testing.T, nd *lantest.Node, to []string, text string) {
	t.Helper()
	args := append(slices.Clone(to), "--", text)
	out, err := nd.CLI("send", args...)
	if err != nil {
		t.Fatalf("%s: send to %v: %v", nd.Name, to, err)
	}
	var want strings.Builder
	for _, p := range to {
		fmt.Fprintf(&want, "delivered to %s\n", p)
	}
	if out != want.String() {
		t.Fatalf("%s: send to %v printed %q, want %q", nd.Name, to, out, want.String())
	}
}

// history returns the last limit messages (0: all) of nd's conversation with who.
func history(t testing.TB, nd *lantest.Node, who string, limit int) []peer.Message {
	t.Helper()
	out, err := nd.CLI("history", "--json", "-n", fmt.Sprint(limit), who)
	if err != nil {
		t.Fatalf("%s: %v", nd.Name, err)
	}
	var msgs []peer.Message
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m peer.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: history line %q: %v", nd.Name, line, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// wantHistory wants text once in nd's conversation with who, in direction dir with status st.
func wantHistory(t *testing.T, nd *lantest.Node, who string, dir peer.Direction, text string, st peer.Status) {
	t.Helper()
	var found []peer.Message
	for _, m := range history(t, nd, who, 20) {
		if m.Text == text {
			found = append(found, m)
		}
	}
	if len(found) != 1 || found[0].Dir != dir || found[0].Status != st {
		t.Errorf("%s's history with %s has %+v for %q, want it once with dir %q and status %q", nd.Name, who, found, text, dir, st)
	}
}

func status(t testing.TB, nd *lantest.Node) peer.Self {
	t.Helper()
	out, err := nd.CLI("status", "--json")
	if err != nil {
		t.Fatalf("%s: %v", nd.Name, err)
	}
	var s peer.Self
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%s: status %q: %v", nd.Name, out, err)
	}
	return s
}

// contact returns the contact nd lists as nick.
func contact(t testing.TB, nd *lantest.Node, nick string) peer.Contact {
	t.Helper()
	cs := nd.Peers()
	for _, c := range cs {
		if c.Nick == nick {
			return c
		}
	}
	t.Fatalf("%s lists %v, want %s", nd.Name, nickList(cs), nick)
	return peer.Contact{}
}

// wantAddr wants nd to reach nick at addr on the IPMsg port.
func wantAddr(t *testing.T, nd *lantest.Node, nick string, addr netip.Addr) {
	t.Helper()
	want := netip.AddrPortFrom(addr, peer.DefaultPort)
	if got := contact(t, nd, nick).Addr; got != want {
		t.Errorf("%s reaches %s at %v, want %v", nd.Name, nick, got, want)
	}
}

// waitGone polls until nd no longer lists nick.
func waitGone(t *testing.T, nd *lantest.Node, timeout time.Duration, nick string) {
	t.Helper()
	eventually(t, timeout, func() (bool, string) {
		cs := nd.Peers()
		return !slices.Contains(nickList(cs), nick), fmt.Sprintf("%s still lists %v, want %s gone", nd.Name, nickList(cs), nick)
	})
}

func nickList(cs []peer.Contact) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Nick
	}
	return out
}

// runCLI runs `lanchat SUB --data DIR ARGS...` for nd with stdin and keeps
// standard output and error apart; it is killed after timeout.
func runCLI(t *testing.T, timeout time.Duration, nd *lantest.Node, stdin []byte, sub string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, lantest.Binary(t), append([]string{sub, "--data", nd.Data}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s: lanchat %s did not finish in %v; it printed %d bytes", nd.Name, sub, timeout, o.Len())
	}
	return o.String(), e.String(), err
}

// parseResults decodes `send --json` output, one message per line.
func parseResults(t *testing.T, out string) []peer.Message {
	t.Helper()
	var ms []peer.Message
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m peer.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("send result %q: %v", line, err)
		}
		ms = append(ms, m)
	}
	return ms
}
