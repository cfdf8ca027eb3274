package peer

import (
	"context"
	"testing"
	"time"

	"github.com/lanchat/lanchat/discovery"
	"github.com/lanchat/lanchat/ipmsg"
)

// TestTwoNodes: two nodes on loopback find each other, deliver a message
// each way, and A's history and packet numbers survive a restart.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	a, b := startPair(t,
		Config{User: "alice", Host: "pc-a", Nick: "爱丽丝", Group: "测试部"},
		Config{User: "bob", Host: "pc-b", Nick: "Bob"})
	keyA := discovery.PeerKey("alice", "pc-a", a.Addr().Port())
	keyB := discovery.PeerKey("bob", "pc-b", b.Addr().Port())
	ca, cb := b.waitContact(keyA), a.waitContact(keyB)
	if ca.Nick != "爱丽丝" || ca.Group != "测试部" || ca.Client != "lanchat" || ca.Charset != "utf-8" || ca.Addr != a.Addr() {
		t.Errorf("B sees A as %+v", ca)
	}
	if cb.Nick != "Bob" || cb.Client != "lanchat" || cb.Addr != b.Addr() {
		t.Errorf("A sees B as %+v", cb)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent, err := a.Send(ctx, []string{keyB}, "你好 Bob", SendOptions{})
	if err != nil || len(sent) != 1 || sent[0].Status != Delivered || sent[0].Error != "" {
		t.Fatalf("A.Send = %+v, %v; want one delivered message", sent, err)
	}
	in := waitEvent(t, b.events, 5*time.Second, func(e MessageEvent) bool { return e.Message.Dir == Incoming })
	if m := in.Message; m.Text != "你好 Bob" || m.Peer != keyA || m.Nick != "爱丽丝" || m.PacketNo != sent[0].PacketNo || m.Status != Received {
		t.Errorf("B received %+v", m)
	}
	st := waitEvent(t, a.events, 5*time.Second, func(e StatusEvent) bool { return e.ID == sent[0].ID })
	if st.Status != Delivered || st.Peer != keyB {
		t.Errorf("A's status event %+v", st)
	}

	back, err := b.Send(ctx, []string{"爱丽丝"}, "hi Alice 👋\n第二行", SendOptions{})
	if err != nil || len(back) != 1 || back[0].Status != Delivered {
		t.Fatalf("B.Send = %+v, %v", back, err)
	}
	in = waitEvent(t, a.events, 5*time.Second, func(e MessageEvent) bool { return e.Message.Dir == Incoming })
	if m := in.Message; m.Text != "hi Alice 👋\n第二行" || m.Peer != keyB {
		t.Errorf("A received %+v", m)
	}
	if s := a.Stats(); s.Acked != 1 || s.Received != 1 || s.Failed != 0 {
		t.Errorf("A stats %+v", s)
	}

	// Restart A on the same data folder.
	lastNo := sent[0].PacketNo
	dataDir := a.cfg.DataDir
	a.stop()
	a2 := startNode(t, Config{DataDir: dataDir, User: "alice", Host: "pc-a", Nick: "爱丽丝",
		Extra: []string{b.Addr().String()}})
	hist, err := a2.History(keyB, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 {
		t.Fatalf("history after restart has %d messages, want 2: %+v", len(hist), hist)
	}
	if h := hist[0]; h.Dir != Outgoing || h.Text != "你好 Bob" || h.Status != Delivered || h.ID != sent[0].ID || h.PacketNo != lastNo {
		t.Errorf("history[0] = %+v", h)
	}
	if h := hist[1]; h.Dir != Incoming || h.Text != "hi Alice 👋\n第二行" || h.Status != Received || h.Peer != keyB {
		t.Errorf("history[1] = %+v", h)
	}

	// The restarted A's numbers continue above everything A used before.
	keyA2 := discovery.PeerKey("alice", "pc-a", a2.Addr().Port())
	b.waitContact(keyA2)
	a2.waitContact(keyB)
	again, err := a2.Send(ctx, []string{keyB}, "back again", SendOptions{})
	if err != nil || len(again) != 1 || again[0].Status != Delivered {
		t.Fatalf("restarted A.Send = %+v, %v", again, err)
	}
	if again[0].PacketNo <= lastNo {
		t.Errorf("packet number %d after restart is not above %d from before", again[0].PacketNo, lastNo)
	}
	in = waitEvent(t, b.events, 5*time.Second, func(e MessageEvent) bool { return e.Message.Text == "back again" })
	if in.Message.PacketNo != again[0].PacketNo {
		t.Errorf("B saw packet number %d, A sent %d", in.Message.PacketNo, again[0].PacketNo)
	}
}

// TestPacketNumbersOnWire starts a node whose saved mark is far above the
// clock and restarts it: every number a listening peer sees is above the
// mark, and the second run's numbers are above the first run's.
func TestPacketNumbersOnWire(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	future := uint64(time.Now().Unix()) + 1_000_000
	writeMark(t, dir, future)
	f := newFakePeer(t, nil, "127.0.0.1")
	cfg := Config{DataDir: dir, Extra: []string{f.addr.String()}}

	run := func() []uint64 {
		n := startNode(t, cfg)
		var nos []uint64
		p, _ := f.readMode(ipmsg.BrEntry, 5*time.Second)
		nos = append(nos, p.No)
		n.stop()
		p, _ = f.readMode(ipmsg.BrExit, 5*time.Second)
		return append(nos, p.No)
	}
	first := run()
	second := run()
	if first[0] <= future {
		t.Errorf("first number %d is not above the saved mark %d", first[0], future)
	}
	prev := uint64(0)
	for i, no := range append(first, second...) {
		if no <= prev {
			t.Errorf("number %d (%d) is not above the one before (%d): %v then %v", i, no, prev, first, second)
		}
		prev = no
	}
}

// TestSealedBetweenNodes: A seals a message, B opens it, A hears it was
// opened and B's Open returns once A answered ANSREADMSG.
func TestSealedBetweenNodes(t *testing.T) {
	t.Parallel()
	a, b := startPair(t, Config{User: "alice", Host: "pc-a"}, Config{User: "bob", Host: "pc-b"})
	keyA := discovery.PeerKey("alice", "pc-a", a.Addr().Port())
	keyB := discovery.PeerKey("bob", "pc-b", b.Addr().Port())
	b.waitContact(keyA)
	a.waitContact(keyB)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent, err := a.Send(ctx, []string{keyB}, "密封的信", SendOptions{Seal: true})
	if err != nil || len(sent) != 1 || sent[0].Status != Delivered || !sent[0].Sealed {
		t.Fatalf("sealed send: %+v, %v", sent, err)
	}
	in := waitEvent(t, b.events, 5*time.Second, func(e MessageEvent) bool { return e.Message.Dir == Incoming })
	if !in.Message.Sealed || in.Message.Text != "密封的信" {
		t.Fatalf("B received %+v", in.Message)
	}
	if err := b.Open(ctx, in.Message.ID); err != nil {
		t.Fatalf("Open: %v", err)
	}
	st := waitEvent(t, a.events, 5*time.Second, func(e StatusEvent) bool { return e.Status == Opened })
	if st.ID != sent[0].ID || st.Peer != keyB {
		t.Errorf("opened event %+v, want for %s", st, sent[0].ID)
	}
	if err := b.Open(ctx, in.Message.ID); err == nil {
		t.Error("a second Open of the same message succeeded")
	}
	for _, c := range []struct {
		n   *testNode
		key string
	}{{a, keyB}, {b, keyA}} {
		h, err := c.n.History(c.key, 0)
		if err != nil || len(h) != 1 || h[0].Status != Opened {
			t.Errorf("history: %+v, %v; want one opened message", h, err)
		}
	}
}
