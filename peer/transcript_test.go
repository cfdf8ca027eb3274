package peer

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanchat/lanchat/ipmsg"
)

// These tests script a fake IPMsg client packet by packet and compare
// everything the node writes back (see fakePeer.exchange).

// TestAckEchoesRawPacketNo: SENDMSG|SENDCHECKOPT is answered by exactly one
// RECVMSG echoing the packet number as written ("0042", not "42"). The
// same datagram again (a retransmission) is acked again but shown and
// stored once.
func TestAckEchoesRawPacketNo(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)
	drainEvents(n.events)

	pkt := f.raw("0042", ipmsg.SendMsg|ipmsg.SendCheckOpt|ipmsg.UTF8Opt, "hello 你好\x00")
	for try := range 3 {
		got := f.exchange(pkt)
		if len(got) != 1 {
			t.Fatalf("try %d: node sent %s, want one RECVMSG", try, describe(got))
		}
		ack := got[0]
		if !isAck(ack, "0042") || string(ack.Version) != "1" || string(ack.User) != "tester" || string(ack.Host) != "testhost" {
			t.Errorf("try %d: ack %q:%d:%q:%q:%v:%q, want 1:…:tester:testhost:RECVMSG:\"0042\\x00\"",
				try, ack.Version, ack.No, ack.User, ack.Host, ack.Command, ack.Extra)
		}
	}
	msgs := messageEvents(drainEvents(n.events))
	if len(msgs) != 1 {
		t.Fatalf("%d message events for one message sent three times: %+v", len(msgs), msgs)
	}
	if m := msgs[0]; m.Text != "hello 你好" || m.PacketNo != 42 || m.Peer != f.key() || m.Dir != Incoming || m.Nick != f.nick {
		t.Errorf("message %+v", m)
	}
	if got := historyLines(t, n.Node, f.key()); got != 1 {
		t.Errorf("%d history lines, want 1", got)
	}
	if s := n.Stats(); s.Received != 1 || s.Duplicates != 2 {
		t.Errorf("stats %+v, want 1 received and 2 duplicates", s)
	}
}

// TestAckRules: which packets get RECVMSG (IPMsg protocol §5.2, pitfall 23
// and 26). Every SENDMSG is still shown once.
func TestAckRules(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)
	drainEvents(n.events)
	pad := strings.Repeat("\x00", 64)
	cases := []struct {
		name     string
		cmd      ipmsg.Command
		extra    string
		ack      bool
		messages int    // message events
		text     string // of the message, when there is one
	}{
		{"sendcheck", ipmsg.SendMsg | ipmsg.SendCheckOpt, "a\x00", true, 1, "a"},
		{"no sendcheck", ipmsg.SendMsg, "b\x00", false, 1, "b"},
		{"broadcast", ipmsg.SendMsg | ipmsg.SendCheckOpt | ipmsg.BroadcastOpt, "c\x00", false, 1, "c"},
		{"auto reply", ipmsg.SendMsg | ipmsg.SendCheckOpt | ipmsg.AutoRetOpt, "d\x00", false, 1, "d"},
		{"iptux file offer", ipmsg.SendMsg | ipmsg.FileAttachOpt, "\x0010000:f.txt:352:6b0352b8:1:\a\x00", false, 1, ""},
		{"sealed", ipmsg.SendMsg | ipmsg.SendCheckOpt | ipmsg.SecretExOpt, "e\x00", true, 1, "e"},
		{"padded retry", ipmsg.SendMsg | ipmsg.SendCheckOpt, "padded" + pad, true, 1, "padded"},
		{"no trailing nul", ipmsg.SendMsg | ipmsg.SendCheckOpt, "bare", true, 1, "bare"},
		{"iptux recvmsg with sendcheck", ipmsg.RecvMsg | ipmsg.SendCheckOpt, "1795380093\x00", false, 0, ""},
		{"recvmsg", ipmsg.RecvMsg, "12345\x00", false, 0, ""},
		{"stray ansreadmsg", ipmsg.AnsReadMsg, "12345\x00", false, 0, ""},
		{"feiq typing", ipmsg.FeiQInputing, "", false, 0, ""},
		{"feiq knock with sendcheck", ipmsg.FeiQKnock | ipmsg.SendCheckOpt, "", false, 0, ""},
		{"iptux sendmsg", ipmsg.IptuxSendMsg | ipmsg.IptuxBroadcastOpt, "group text\x00", false, 0, ""},
		{"getpubkey", ipmsg.GetPubKey, "21003\x00", false, 0, ""},
		{"release files", ipmsg.ReleaseFiles, "1234\x00", false, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			no := f.no + 1
			got := f.exchange(f.packet(c.cmd, c.extra))
			want := 0
			if c.ack {
				want = 1
			}
			if len(got) != want || (c.ack && !isAck(got[0], strconv.FormatUint(no, 10))) {
				t.Errorf("%v answered with %s, want %d RECVMSG", c.cmd, describe(got), want)
			}
			msgs := messageEvents(drainEvents(n.events))
			if len(msgs) != c.messages || (c.messages == 1 && msgs[0].Text != c.text) {
				t.Errorf("message events %+v, want %d with text %q", msgs, c.messages, c.text)
			}
		})
	}
}

// TestUnknownSenderIntroduced: a message from a host that never announced
// itself is acked, and the node unicasts BR_ENTRY so the host answers and
// joins the roster, unless the sender asked NOADDLISTOPT.
func TestUnknownSenderIntroduced(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{Nick: "节点"})
	f := newFakePeer(t, n, "127.0.0.1")
	got := f.exchange(f.packetNo(7, ipmsg.SendMsg|ipmsg.SendCheckOpt|ipmsg.NoAddListOpt, "quiet\x00"))
	if len(got) != 1 || !isAck(got[0], "7") {
		t.Errorf("with NOADDLISTOPT: %s, want only RECVMSG", describe(got))
	}
	got = f.exchange(f.packetNo(8, ipmsg.SendMsg|ipmsg.SendCheckOpt, "hello\x00"))
	if len(got) != 2 || !isAck(got[0], "8") || got[1].Command.Mode() != ipmsg.BrEntry {
		t.Fatalf("unknown sender got %s, want RECVMSG then BR_ENTRY", describe(got))
	}
	if e := ipmsg.ParseEntry(got[1], ipmsg.GB18030); e.Nick != "节点" || e.Lanchat != Version {
		t.Errorf("introduction entry %+v", e)
	}
	// The stand-in contact for history is keyed like the real one.
	h, err := n.History(f.key(), 0)
	if err != nil || len(h) != 2 {
		t.Errorf("history %+v, %v; want both messages under %s", h, err, f.key())
	}
}

// TestInfoRequests: GETINFO → SENDINFO; GETABSENCEINFO → "Not Absence mode"
// or the away text, in the peer's charset.
func TestInfoRequests(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f := newFakePeer(t, n, "127.0.0.1") // announces CAPUTF8OPT
	f.announce(n)

	got := f.exchange(f.packet(ipmsg.GetInfo, ""))
	if len(got) != 1 || got[0].Command != ipmsg.SendInfo|ipmsg.UTF8Opt || string(got[0].Extra) != "lanchat "+Version+"\x00" {
		t.Errorf("GETINFO answered with %s", describe(got))
	}
	checkAbsence := func(f *fakePeer, want ipmsg.Packet, skip int) {
		t.Helper()
		got := f.exchange(f.packet(ipmsg.GetAbsenceInfo, ""))
		if len(got) != skip+1 || got[skip].Command != want.Command || string(got[skip].Extra) != string(want.Extra) {
			t.Errorf("GETABSENCEINFO answered with %s, want %v:%q", describe(got), want.Command, want.Extra)
		}
	}
	checkAbsence(f, ipmsg.Packet{Command: ipmsg.SendAbsenceInfo | ipmsg.UTF8Opt, Extra: []byte(ipmsg.NotAbsence + "\x00")}, 0)

	n.SetAway(true, "在开会，稍后回复")
	// SetAway tells the known peer with BR_ABSENCE first.
	got = f.exchange(f.packet(ipmsg.GetAbsenceInfo, ""))
	if len(got) != 2 || got[0].Command.Mode() != ipmsg.BrAbsence || !got[0].Command.Has(ipmsg.AbsenceOpt|ipmsg.CapUTF8Opt) ||
		got[1].Command != ipmsg.SendAbsenceInfo|ipmsg.UTF8Opt || string(got[1].Extra) != "在开会，稍后回复\x00" {
		t.Errorf("away: %s, want BR_ABSENCE|ABSENCEOPT then the away text", describe(got))
	}

	g := newFakePeer(t, n, "127.0.0.1") // a GBK client (Feige)
	g.status = 0
	g.announce(n)
	gbk := string(ipmsg.GB18030.Encode("在开会，稍后回复"))
	checkAbsence(g, ipmsg.Packet{Command: ipmsg.SendAbsenceInfo, Extra: []byte(gbk + "\x00")}, 0)

	n.SetAway(false, "")
	checkAbsence(g, ipmsg.Packet{Command: ipmsg.SendAbsenceInfo, Extra: []byte(ipmsg.NotAbsence + "\x00")}, 1)
}

// TestAwayAutoReply: while away, a message gets RECVMSG plus one
// SENDMSG|AUTORETOPT with the away text (once per contact per minute);
// AUTORETOPT and BROADCASTOPT input gets neither.
func TestAwayAutoReply(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{Away: true, AwayText: "我在开会"})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)

	got := f.exchange(f.packetNo(100, ipmsg.SendMsg|ipmsg.SendCheckOpt|ipmsg.UTF8Opt, "在吗？\x00"))
	if len(got) != 2 || !isAck(got[0], "100") {
		t.Fatalf("message while away answered with %s, want RECVMSG and an auto-reply", describe(got))
	}
	re := got[1]
	if re.Command != ipmsg.SendMsg|ipmsg.AutoRetOpt|ipmsg.UTF8Opt|ipmsg.CapUTF8Opt || string(re.Extra) != "我在开会\x00" {
		t.Errorf("auto-reply %v:%q, want SENDMSG|AUTORETOPT|UTF8OPT|CAPUTF8OPT:\"我在开会\\x00\"", re.Command, re.Extra)
	}
	got = f.exchange(f.packetNo(101, ipmsg.SendMsg|ipmsg.SendCheckOpt|ipmsg.UTF8Opt, "还在吗？\x00"))
	if len(got) != 1 || !isAck(got[0], "101") {
		t.Errorf("second message within a minute: %s, want only RECVMSG", describe(got))
	}

	g := newFakePeer(t, n, "127.0.0.1")
	g.announce(n)
	for _, cmd := range []ipmsg.Command{
		ipmsg.SendMsg | ipmsg.SendCheckOpt | ipmsg.AutoRetOpt, // another away user's auto-reply
		ipmsg.SendMsg | ipmsg.SendCheckOpt | ipmsg.BroadcastOpt,
	} {
		if got := g.exchange(g.packet(cmd, "我也不在\x00")); len(got) != 0 {
			t.Errorf("%v answered with %s, want nothing", cmd, describe(got))
		}
	}
	// g's own first normal message still gets its auto-reply.
	got = g.exchange(g.packetNo(5000, ipmsg.SendMsg|ipmsg.SendCheckOpt, "hi\x00"))
	if len(got) != 2 || !isAck(got[0], "5000") || !got[1].Command.Has(ipmsg.AutoRetOpt) || got[1].Command.Has(ipmsg.SendCheckOpt) {
		t.Errorf("g's message: %s", describe(got))
	}

	h, err := n.History(f.key(), 0)
	if err != nil || len(h) != 3 || !h[1].AutoRe || h[1].Dir != Outgoing || h[1].Text != "我在开会" {
		t.Errorf("history with f: %+v, %v; want message, auto-reply, message", h, err)
	}
}

// TestSealedFromPeer: a sealed message is acked at once; Open sends READMSG
// echoing its packet number, with READCHECKOPT when the sender asked, and
// then waits for ANSREADMSG.
func TestSealedFromPeer(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)
	drainEvents(n.events)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, c := range []struct {
		name      string
		no        string
		readCheck bool
	}{{"readcheck", "0555", true}, {"plain", "556", false}} {
		t.Run(c.name, func(t *testing.T) {
			cmd := ipmsg.SendMsg | ipmsg.SendCheckOpt | ipmsg.SecretOpt
			if c.readCheck {
				cmd |= ipmsg.ReadCheckOpt
			}
			got := f.exchange(f.raw(c.no, cmd, "只给你看\x00"))
			if len(got) != 1 || !isAck(got[0], c.no) {
				t.Fatalf("sealed message answered with %s", describe(got))
			}
			msgs := messageEvents(drainEvents(n.events))
			if len(msgs) != 1 || !msgs[0].Sealed {
				t.Fatalf("message events %+v", msgs)
			}
			opened := make(chan error, 1)
			go func() { opened <- n.Open(ctx, msgs[0].ID) }()
			rd, _ := f.readMode(ipmsg.ReadMsg, 5*time.Second)
			if rd.Command.Has(ipmsg.ReadCheckOpt) != c.readCheck || string(rd.Extra) != c.no+"\x00" {
				t.Errorf("READMSG %v:%q, want READCHECKOPT %v and extra %q", rd.Command, rd.Extra, c.readCheck, c.no+"\x00")
			}
			if c.readCheck {
				select {
				case err := <-opened:
					t.Fatalf("Open returned %v before ANSREADMSG", err)
				default:
				}
				f.send(f.packet(ipmsg.AnsReadMsg, string(rd.NoRaw)+"\x00"))
			}
			select {
			case err := <-opened:
				if err != nil {
					t.Errorf("Open: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Open did not return")
			}
			h, _ := n.History(f.key(), 0)
			if len(h) == 0 || h[len(h)-1].Status != Opened {
				t.Errorf("history %+v, want the message opened", h)
			}
		})
	}
}

// TestSealedOpenedByPeer: we seal a message; the peer's READMSG gives a
// StatusEvent Opened (once) and an ANSREADMSG echoing the READMSG's own
// packet number.
func TestSealedOpenedByPeer(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	result := make(chan []Message, 1)
	go func() {
		msgs, err := n.Send(ctx, []string{f.key()}, "秘密", SendOptions{Seal: true})
		if err != nil {
			t.Error(err)
		}
		result <- msgs
	}()
	p, _ := f.readMode(ipmsg.SendMsg, 5*time.Second)
	want := ipmsg.SendMsg | ipmsg.SendCheckOpt | ipmsg.SecretExOpt | ipmsg.UTF8Opt | ipmsg.CapUTF8Opt
	if p.Command != want || string(p.Extra) != "秘密\x00" {
		t.Errorf("sealed SENDMSG %v:%q, want %v", p.Command, p.Extra, want)
	}
	f.send(f.packet(ipmsg.RecvMsg, string(p.NoRaw)+"\x00"))
	msgs := <-result
	if len(msgs) != 1 || msgs[0].Status != Delivered {
		t.Fatalf("Send = %+v", msgs)
	}
	drainEvents(n.events)

	read := f.raw("0777", ipmsg.ReadMsg|ipmsg.ReadCheckOpt, strconv.FormatUint(p.No, 10)+"\x00")
	for try := range 2 {
		got := f.exchange(read)
		if len(got) != 1 || got[0].Command != ipmsg.AnsReadMsg || string(got[0].Extra) != "0777\x00" {
			t.Errorf("try %d: READMSG answered with %s, want ANSREADMSG:\"0777\\x00\"", try, describe(got))
		}
	}
	var opened []StatusEvent
	for _, ev := range drainEvents(n.events) {
		if s, ok := ev.(StatusEvent); ok {
			opened = append(opened, s)
		}
	}
	if len(opened) != 1 || opened[0].Status != Opened || opened[0].ID != msgs[0].ID || opened[0].Peer != f.key() {
		t.Errorf("status events %+v, want one Opened for %s", opened, msgs[0].ID)
	}
	h, _ := n.History(f.key(), 0)
	if len(h) != 1 || h[0].Status != Opened {
		t.Errorf("history %+v", h)
	}
}

// TestSamePacketNoFromTwoPorts: two clients on one machine (two ports)
// whose counters happen to agree are two senders, not one message repeated.
// lanchat nodes start counting at the unix time, so two started in the
// same second send the same numbers.
func TestSamePacketNoFromTwoPorts(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f1, f2 := newFakePeer(t, n, "127.0.0.1"), newFakePeer(t, n, "127.0.0.1")
	f1.announce(n)
	f2.announce(n)
	drainEvents(n.events)
	for i, f := range []*fakePeer{f1, f2} {
		got := f.exchange(f.packetNo(1_700_000_123, ipmsg.SendMsg|ipmsg.SendCheckOpt, "from "+strconv.Itoa(i+1)+"\x00"))
		if len(got) != 1 || !isAck(got[0], "1700000123") {
			t.Errorf("peer %d: %s", i+1, describe(got))
		}
	}
	msgs := messageEvents(drainEvents(n.events))
	if len(msgs) != 2 {
		t.Fatalf("%d messages shown, want 2: %+v", len(msgs), msgs)
	}
	if msgs[0].Text != "from 1" || msgs[1].Text != "from 2" || msgs[0].Peer == msgs[1].Peer {
		t.Errorf("messages %+v", msgs)
	}
}
