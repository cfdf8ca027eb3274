package peer

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lanchat/lanchat/ipmsg"
)

// Each hostile test feeds a node bad input and then checks it still acks
// and records a normal message, and that its roster and history hold
// together (assertHealthy).

// TestHostileMalformed: headers that do not parse are counted and dropped
// without an answer; extreme but valid numbers are handled as IPMsg
// clients read them.
func TestHostileMalformed(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)
	cases := []struct {
		name string
		pkt  string
		ack  string // the RECVMSG extra expected, or "" for no answer
	}{
		{"empty", "", ""},
		{"one colon", ":", ""},
		{"four colons", "1:2:u:h:", ""}, // fifth colon missing: no command field end
		{"three colons", "1:2:u:h", ""},
		{"no colons", "hello world", ""},
		{"letters in packet number", "1:x1:u:h:288:hi\x00", ""},
		{"negative packet number", "1:-1:u:h:288:hi\x00", ""},
		{"plus sign", "1:+5:u:h:288:hi\x00", ""},
		{"space in packet number", "1: 5:u:h:288:hi\x00", ""},
		{"empty packet number", "1::u:h:288:hi\x00", ""},
		{"hex command", "1:5:u:h:0x120:hi\x00", ""},
		{"empty command", "1:5:u:h::hi\x00", ""},
		{"packet number above 2^64", "1:18446744073709551616:u:h:288:hi\x00", ""},
		{"25-digit packet number", "1:9999999999999999999999999:u:h:288:hi\x00", ""},
		{"command above 2^64", "1:5:u:h:18446744073709551616:hi\x00", ""},
		{"recvmsg with bad number", "1:6:u:h:33:abc\x00", ""},
		{"readmsg with empty number", "1:7:u:h:48:\x00", ""},
		// Valid, if odd: IP Messenger reads the command as 32 bits.
		{"largest packet number", "1:18446744073709551615:u:h:288:max\x00", "18446744073709551615"},
		{"command wraps at 2^32", "1:9:u:h:4294967584:wrapped\x00", "9"},
		{"leading zeros", "1:00000000000000000010:u:h:288:z\x00", "00000000000000000010"},
		{"21 digits", "1:000000000000000000010:u:h:288:z\x00", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := n.Stats().Malformed
			got := f.exchange([]byte(c.pkt))
			malformed := n.Stats().Malformed - before
			if c.ack == "" {
				if len(got) != 0 || malformed != 1 {
					t.Errorf("%q: answered %s, malformed +%d; want silence and +1", c.pkt, describe(got), malformed)
				}
				return
			}
			if len(got) != 1 || !isAck(got[0], c.ack) || malformed != 0 {
				t.Errorf("%q: answered %s (malformed +%d), want RECVMSG %q", c.pkt, describe(got), malformed, c.ack)
			}
		})
	}
	assertHealthy(t, n, "127.0.0.1")
}

// TestHostileTruncated sends every prefix of several valid packets.
func TestHostileTruncated(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)
	full := [][]byte{
		f.packetNo(77, ipmsg.SendMsg|ipmsg.SendCheckOpt|ipmsg.UTF8Opt, "截断的消息\x00"),
		f.packetNo(78, ipmsg.AnsEntry|ipmsg.CapUTF8Opt, f.entryExtra()),
		f.packetNo(79, ipmsg.RecvMsg, "1795380093\x00"),
		f.packetNo(80, ipmsg.ReadMsg|ipmsg.ReadCheckOpt, "1795380093\x00"),
		f.packetNo(81, ipmsg.GetAbsenceInfo, ""),
	}
	var unparsable int
	for _, b := range full {
		var prefixes [][]byte
		for i := range len(b) {
			if _, err := ipmsg.Parse(b[:i]); err != nil {
				unparsable++
			}
			prefixes = append(prefixes, b[:i])
		}
		f.exchange(prefixes...)
	}
	if got := n.Stats().Malformed; got < unparsable {
		t.Errorf("malformed count %d, want at least the %d prefixes that do not parse", got, unparsable)
	}
	assertHealthy(t, n, "127.0.0.1")
}

// TestHostileMaxDatagram sends the largest UDP payload there is, as a
// message and as garbage.
func TestHostileMaxDatagram(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{Logger: testLogger(t, slog.LevelInfo)})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)
	drainEvents(n.events)
	head := f.packetNo(4242, ipmsg.SendMsg|ipmsg.SendCheckOpt, "")
	body := strings.Repeat("x", ipmsg.MaxDatagram-len(head)-1)
	big := append(append(head, body...), 0)
	if len(big) != ipmsg.MaxDatagram {
		t.Fatalf("built %d bytes", len(big))
	}
	got := f.exchange(big)
	if len(got) != 1 || !isAck(got[0], "4242") {
		t.Errorf("65507-byte message answered with %d packets", len(got))
	}
	msgs := messageEvents(drainEvents(n.events))
	if len(msgs) != 1 || msgs[0].Text != body {
		t.Errorf("%d message events; the big text should arrive whole", len(msgs))
	}
	for _, junk := range [][]byte{
		[]byte(strings.Repeat("\xff", ipmsg.MaxDatagram)),
		[]byte(strings.Repeat(":", ipmsg.MaxDatagram)),
		append([]byte("IP2:"), make([]byte, ipmsg.MaxDatagram-4)...),
	} {
		if got := f.exchange(junk); len(got) != 0 {
			t.Errorf("junk answered with %s", describe(got))
		}
	}
	assertHealthy(t, n, "127.0.0.1")
	if h, err := n.History(f.key(), 0); err != nil || len(h) != 1 || h[0].Text != body {
		t.Errorf("history of the big message: %d messages, %v", len(h), err)
	}
}

// TestHostileRandom sends a few thousand random datagrams from a seeded
// generator: pure noise, noise behind a valid header, and real packets with
// bytes flipped.
func TestHostileRandom(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{Logger: testLogger(t, slog.LevelInfo)})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)
	rng := rand.New(rand.NewPCG(2425, 1))
	noise := func(max int) []byte {
		b := make([]byte, rng.IntN(max))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	modes := []ipmsg.Command{ipmsg.NoOperation, ipmsg.BrEntry, ipmsg.BrExit, ipmsg.AnsEntry, ipmsg.BrAbsence,
		ipmsg.SendMsg, ipmsg.RecvMsg, ipmsg.ReadMsg, ipmsg.AnsReadMsg, ipmsg.GetInfo, ipmsg.GetAbsenceInfo,
		ipmsg.GetFileData, ipmsg.ReleaseFiles, ipmsg.GetPubKey, ipmsg.FeiQSendImage, ipmsg.IptuxSendIcon}
	seeds := [][]byte{
		f.packetNo(1, ipmsg.SendMsg|ipmsg.SendCheckOpt, "seed\x00"),
		f.packetNo(2, ipmsg.BrEntry|ipmsg.CapUTF8Opt, f.entryExtra()),
		[]byte("1_iptux 0.8.3:1:root:vm:257:iptux-h1\x00interop\x00icon-tux.png\x00utf-8\x00"),
	}
	var batch [][]byte
	for i := range 3000 {
		var b []byte
		switch i % 3 {
		case 0:
			b = noise(1500)
		case 1:
			cmd := modes[rng.IntN(len(modes))] | ipmsg.Command(rng.Uint32())&^0xff
			b = ipmsg.Packet{Version: noise(12), No: rng.Uint64() >> rng.IntN(64), User: noColon(noise(20)),
				Host: noColon(noise(20)), Command: cmd, Extra: noise(600)}.Append(nil)
		default:
			b = append([]byte(nil), seeds[rng.IntN(len(seeds))]...)
			for range 1 + rng.IntN(4) {
				b[rng.IntN(len(b))] = byte(rng.Uint32())
			}
		}
		batch = append(batch, b)
		if len(batch) == 50 { // in bursts that the socket buffer can hold
			f.exchange(batch...)
			batch = batch[:0]
		}
	}
	assertHealthy(t, n, "127.0.0.1")
	if n.Stats().Malformed == 0 {
		t.Error("no random datagram was counted malformed")
	}
}

// noColon keeps random header fields from adding header colons.
func noColon(b []byte) []byte {
	for i, c := range b {
		if c == ':' {
			b[i] = ';'
		}
	}
	return b
}

// TestHostileFlood: one source sends 100k datagrams as fast as it can while
// a second source (another address: the limiter is per source) sends a
// message and receives one; both are delivered and acked within the
// ordinary five seconds, and the flood is counted.
func TestHostileFlood(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{FloodRate: 2000, FloodBurst: 4000, DeliveryTimeout: 10 * time.Second,
		Logger: testLogger(t, slog.LevelInfo)})
	legit := newFakePeer(t, n, "127.0.0.2")
	legit.announce(n)
	flood := newFakePeer(t, n, "127.0.0.1")

	floodDone := make(chan struct{})
	started := make(chan struct{})
	go func() {
		defer close(floodDone)
		small := flood.packetNo(1, ipmsg.NoOperation, "")
		for i := range 100_000 {
			if i == 5000 {
				close(started)
			}
			if _, err := flood.conn.WriteToUDPAddrPort(small, flood.node); err != nil {
				t.Errorf("flood: %v", err)
				return
			}
		}
	}()
	<-started

	// The legitimate peer sends as a real client does: resend every 200 ms
	// until acked, give up after 5 s.
	deadline := time.Now().Add(10 * time.Second) // generous: CI runs other tests beside this one
	msg := legit.packetNo(31337, ipmsg.SendMsg|ipmsg.SendCheckOpt|ipmsg.UTF8Opt, "洪水中的消息\x00")
	acked := false
	for !acked && time.Now().Before(deadline) {
		legit.send(msg)
		until := time.Now().Add(200 * time.Millisecond)
		for time.Now().Before(until) {
			p, _, ok := legit.read(time.Until(until))
			if ok && isAck(p, "31337") {
				acked = true
				break
			}
		}
	}
	if !acked {
		t.Fatal("the second source's message was not acked within 10 s during the flood")
	}

	// And the node's own message to it, sent during the flood, is
	// delivered (its ack may be lost in the flooded socket and resent).
	legit.ackLoop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := n.Send(ctx, []string{legit.key()}, "你还好吗", SendOptions{})
	if err != nil || len(msgs) != 1 || msgs[0].Status != Delivered {
		t.Errorf("Send during the flood: %+v, %v", msgs, err)
	}
	<-floodDone

	if s := n.Stats(); s.Flooded == 0 {
		t.Errorf("stats %+v: nothing counted as flooded", s)
	}
	// The node acks before it records, so the two may be in either order.
	h, _ := n.History(legit.key(), 0)
	got := map[string]Status{}
	for _, m := range h {
		got[m.Text] = m.Status
	}
	if len(h) != 2 || got["洪水中的消息"] != Received || got["你还好吗"] != Delivered {
		t.Errorf("history with the second source: %+v", h)
	}
	notice := false
	for _, ev := range drainEvents(n.events) {
		if e, ok := ev.(NoticeEvent); ok && strings.Contains(e.Text, "flooding") {
			notice = true
		}
	}
	if !notice {
		t.Error("no notice about the flood")
	}
	assertHealthy(t, n, "127.0.0.3")
}

// TestHostileSpoofedAck: a RECVMSG (or ANSREADMSG) carrying our pending
// packet number from any address but the one we sent to must not complete
// the send: not from another host, not from another port on the peer's
// host. The real ack still does.
func TestHostileSpoofedAck(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)
	otherHost := newFakePeer(t, n, "127.0.0.2")
	otherPort := newFakePeer(t, n, "127.0.0.1")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	result := make(chan []Message, 1)
	go func() {
		msgs, _ := n.Send(ctx, []string{f.key()}, "only for f", SendOptions{})
		result <- msgs
	}()
	p, _ := f.readMode(ipmsg.SendMsg, 5*time.Second)
	no := string(p.NoRaw)
	for _, s := range []*fakePeer{otherHost, otherPort} {
		s.user, s.host = f.user, f.host // even with the peer's names
		s.exchange(
			s.packet(ipmsg.RecvMsg, no+"\x00"),
			s.packet(ipmsg.RecvMsg|ipmsg.SendCheckOpt, no+"\x00"),
			s.packet(ipmsg.AnsReadMsg, no+"\x00"),
		)
	}
	select {
	case msgs := <-result:
		t.Fatalf("a spoofed ack completed the send: %+v", msgs)
	default:
	}
	if s := n.Stats(); s.Acked != 0 {
		t.Errorf("stats %+v after spoofed acks, want nothing acked", s)
	}
	f.send(f.packet(ipmsg.RecvMsg, no+"\x00"))
	select {
	case msgs := <-result:
		if len(msgs) != 1 || msgs[0].Status != Delivered {
			t.Errorf("after the real ack: %+v", msgs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the real ack did not complete the send")
	}
	assertHealthy(t, n, "127.0.0.1")
}

// TestHostileEntryNames: peers announce with names full of control
// characters, invalid UTF-8 and invalid GBK, or shaped like paths. The node
// stores them decoded, keeps their history in files inside the history
// folder, and still works.
func TestHostileEntryNames(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	cases := []struct {
		user, host, nick, group string
	}{
		{"ctl\x01\x02", "h\x1b[2J", "\x07bell\x08\x7f", "\t\r\n\v"},
		{"bad\xff\xfe", "\xc0\xafhost", "\xed\xa0\x80\xf4\x90\x80\x80", "\xff"},
		{"gbk\x81\x20", "\x81", "\x81\x30\x81", "\xfe"},
		{"../../etc", "passwd", "../x", "/"},
		{"%2e%2e", "nul\x00host", "", ""},
		{strings.Repeat("长", 200), strings.Repeat("h", 300), strings.Repeat("名", 1000), ""},
	}
	for i, c := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			f := newFakePeer(t, n, "127.0.0.1")
			f.user, f.host = c.user, c.host
			f.legacyCS = ipmsg.Unknown // send the raw bytes as they are
			f.status = 0
			extra := c.nick + "\x00" + c.group + "\x00"
			f.send(f.packet(ipmsg.AnsEntry, extra))
			var got Contact
			eventually(t, 5*time.Second, "contact", func() bool {
				for _, x := range n.Contacts() {
					if x.Addr == f.addr {
						got = x
						return true
					}
				}
				return false
			})
			for name, v := range map[string]string{"key": got.Key, "nick": got.Nick, "group": got.Group, "user": got.User, "host": got.Host} {
				if !utf8.ValidString(v) {
					t.Errorf("%s %q is not valid UTF-8", name, v)
				}
			}
			wantNick, _ := ipmsg.DecodeText([]byte(c.nick), false, ipmsg.GB18030)
			if wantNick == "" {
				wantNick = got.User
			}
			if got.Nick != wantNick {
				t.Errorf("nick %q, want %q", got.Nick, wantNick)
			}
			ack := f.exchange(f.packetNo(9000, ipmsg.SendMsg|ipmsg.SendCheckOpt, "msg\x00"))
			if len(ack) != 1 || !isAck(ack[0], "9000") {
				t.Errorf("message answered with %s", describe(ack))
			}
			h, err := n.History(got.Key, 0)
			if err != nil || len(h) != 1 || h[0].Nick != got.Nick {
				t.Errorf("history %+v, %v", h, err)
			}
		})
	}
	// Every history file is directly inside the history folder.
	root := filepath.Join(n.cfg.DataDir, "history")
	filepath.WalkDir(n.cfg.DataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".jsonl") && filepath.Dir(path) != root {
			t.Errorf("history file %s outside %s", path, root)
		}
		return nil
	})
	assertHealthy(t, n, "127.0.0.1")
}

// TestHostileIPDict: an IPDict packet (binary "IP2:…") is dropped unanswered.
func TestHostileIPDict(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)
	drainEvents(n.events)
	pkts := [][]byte{
		[]byte("IP2:\x01\x02\x03\x04K:V:Z"),
		append([]byte("IP2:"), []byte("1:2:u:h:288:looks like a message\x00")...),
	}
	before := n.Stats().Malformed
	if got := f.exchange(pkts...); len(got) != 0 {
		t.Errorf("IPDict answered with %s", describe(got))
	}
	if d := n.Stats().Malformed - before; d != len(pkts) {
		t.Errorf("malformed +%d, want %d", d, len(pkts))
	}
	if msgs := messageEvents(drainEvents(n.events)); len(msgs) != 0 {
		t.Errorf("IPDict produced messages %+v", msgs)
	}
	assertHealthy(t, n, "127.0.0.1")
}

// TestHostileSealedFlood: a peer sends more sealed messages than the node
// remembers. The node keeps only the newest maxRemembered waiting to be
// opened, and the newest can still be opened.
func TestHostileSealedFlood(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{FloodRate: 1e6, FloodBurst: 1e6})
	f := newFakePeer(t, n, "127.0.0.1")
	f.announce(n)
	const sent = maxRemembered + 500
	for i := range sent {
		f.send(f.packetNo(uint64(1000+i), ipmsg.SendMsg|ipmsg.SecretOpt, "秘密 "+strconv.Itoa(i)+"\x00"))
		if i%256 == 255 { // within the socket's buffer
			time.Sleep(5 * time.Millisecond)
		}
	}
	eventually(t, 20*time.Second, "every sealed message received", func() bool { return n.Stats().Received == sent })
	n.mu.Lock()
	waiting := n.sealed.len()
	n.mu.Unlock()
	if waiting != maxRemembered {
		t.Errorf("%d sealed messages waiting to be opened, want the newest %d", waiting, maxRemembered)
	}
	h, err := n.History(f.key(), 1)
	if err != nil || len(h) != 1 || !h[0].Sealed {
		t.Fatalf("last message: %+v, %v", h, err)
	}
	if err := n.Open(context.Background(), h[0].ID); err != nil {
		t.Errorf("opening the newest sealed message: %v", err)
	}
	assertHealthy(t, n, "127.0.0.1")
}
