package peer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lanchat/lanchat/discovery"
	"github.com/lanchat/lanchat/internal/loopback"
	"github.com/lanchat/lanchat/ipmsg"
)

// Every node in these tests listens on 127.0.0.1 with NoBroadcast set, and
// learns its peers from Extra targets or from their entry packets, so no
// datagram leaves loopback.

func testLogger(t *testing.T, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// loopbackConfig fills what every test node needs: loopback only, a
// temporary data folder, a logger on the test output, names.
func loopbackConfig(t *testing.T, cfg Config) Config {
	cfg.Listen = "127.0.0.1"
	cfg.NoBroadcast = true
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, slog.LevelDebug)
	}
	if cfg.Downloads == "" {
		cfg.Downloads = filepath.Join(cfg.DataDir, "downloads")
	}
	if cfg.User == "" {
		cfg.User = "tester"
	}
	if cfg.Host == "" {
		cfg.Host = "testhost"
	}
	return cfg
}

// newNode creates a node on a free loopback port (or cfg.Port) without
// starting it.
func newNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg = loopbackConfig(t, cfg)
	fixed := cfg.Port != 0
	for attempt := 0; ; attempt++ {
		if !fixed {
			cfg.Port = loopback.FreePort(t)
		}
		n, err := New(cfg)
		if err == nil {
			return n
		}
		if !errors.Is(err, ErrPortInUse) || fixed || attempt > 10 {
			t.Fatal(err)
		}
	}
}

// closeUnstarted releases what New opened, for a node that never ran.
func closeUnstarted(n *Node) {
	n.udp.Close()
	n.tcp.Close()
	n.hist.close()
}

// testNode is a running node with its event stream.
type testNode struct {
	*Node
	t      *testing.T
	events <-chan Event
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// start runs n until the test ends (or stop).
func start(t *testing.T, n *Node) *testNode {
	t.Helper()
	events, _ := n.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{Node: n, t: t, events: events, cancel: cancel, done: make(chan error, 1)}
	go func() { tn.done <- n.Run(ctx) }()
	t.Cleanup(func() { tn.stop() })
	return tn
}

// startNode starts a node. Without Extra targets it gets a silent sink as
// its only one and returns after the sink heard the start-up BR_ENTRY, so
// that announcement cannot land in a later transcript.
func startNode(t *testing.T, cfg Config) *testNode {
	t.Helper()
	if len(cfg.Extra) > 0 {
		return start(t, newNode(t, cfg))
	}
	sink := newFakePeer(t, nil, "127.0.0.1")
	cfg.Extra = []string{sink.addr.String()}
	tn := start(t, newNode(t, cfg))
	sink.readMode(ipmsg.BrEntry, 5*time.Second)
	return tn
}

// stop cancels Run and waits for it; it fails the test if Run hangs.
func (tn *testNode) stop() {
	tn.once.Do(func() {
		tn.cancel()
		select {
		case err := <-tn.done:
			if err != nil {
				tn.t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			tn.t.Error("Run did not return within 5s of cancel")
		}
	})
}

// startPair starts two nodes that have each other as Extra targets. Both
// sockets are bound before either runs, so each one's first BR_ENTRY
// reaches the other.
func startPair(t *testing.T, ca, cb Config) (*testNode, *testNode) {
	t.Helper()
	ca, cb = loopbackConfig(t, ca), loopbackConfig(t, cb)
	for attempt := 0; attempt < 10; attempt++ {
		pa, pb := loopback.FreePort(t), loopback.FreePort(t)
		if pa == pb {
			continue
		}
		ca.Port, ca.Extra = pa, []string{fmt.Sprintf("127.0.0.1:%d", pb)}
		cb.Port, cb.Extra = pb, []string{fmt.Sprintf("127.0.0.1:%d", pa)}
		a, err := New(ca)
		if errors.Is(err, ErrPortInUse) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		b, err := New(cb)
		if errors.Is(err, ErrPortInUse) {
			closeUnstarted(a)
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		return start(t, a), start(t, b)
	}
	t.Fatal("cannot bind two nodes")
	return nil, nil
}

// eventually polls ok until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitContact waits until the node knows the contact with key.
func (tn *testNode) waitContact(key string) Contact {
	tn.t.Helper()
	var c Contact
	eventually(tn.t, 5*time.Second, "contact "+key, func() bool {
		for _, x := range tn.Contacts() {
			if x.Key == key {
				c = x
				return true
			}
		}
		return false
	})
	return c
}

// waitEvent returns the next event of type E that ok accepts.
func waitEvent[E Event](t *testing.T, events <-chan Event, timeout time.Duration, ok func(E) bool) E {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, open := <-events:
			if !open {
				t.Fatal("event stream closed")
			}
			if e, is := ev.(E); is && (ok == nil || ok(e)) {
				return e
			}
		case <-deadline:
			var zero E
			t.Fatalf("no %T within %v", zero, timeout)
		}
	}
}

// drainEvents returns the events already queued.
func drainEvents(events <-chan Event) []Event {
	var out []Event
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

func messageEvents(evs []Event) []Message {
	var out []Message
	for _, ev := range evs {
		if m, ok := ev.(MessageEvent); ok {
			out = append(out, m.Message)
		}
	}
	return out
}

// fakePeer is a raw UDP socket that plays another IPMsg client towards a
// node, so tests can script it packet by packet and see every byte the node
// sends back.
type fakePeer struct {
	t        *testing.T
	conn     *net.UDPConn
	addr     netip.AddrPort
	node     netip.AddrPort
	version  string
	user     string
	host     string
	nick     string
	group    string
	status   ipmsg.Command // entry status bits
	lanchat  string        // LC key: announce as a lanchat node
	legacyCS ipmsg.Charset // charset of legacy fields
	no       uint64
}

// newFakePeer binds ip (a loopback address) and aims at node, which may be
// nil for a peer that only listens.
func newFakePeer(t *testing.T, node *testNode, ip string) *fakePeer {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f := &fakePeer{t: t, conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort(), version: "1",
		nick: "假人", group: "测试组", status: ipmsg.CapUTF8Opt, legacyCS: ipmsg.GB18030, no: 1000}
	f.user = "fake" + strconv.Itoa(int(f.addr.Port()))
	f.host = "fakehost"
	if node != nil {
		f.node = node.Addr()
	}
	return f
}

// key is the node's contact key for this peer.
func (f *fakePeer) key() string { return discovery.PeerKey(f.user, f.host, f.addr.Port()) }

// packet builds a datagram with the next packet number.
func (f *fakePeer) packet(cmd ipmsg.Command, extra string) []byte {
	f.no++
	return f.packetNo(f.no, cmd, extra)
}

func (f *fakePeer) packetNo(no uint64, cmd ipmsg.Command, extra string) []byte {
	return ipmsg.Packet{Version: []byte(f.version), No: no, User: f.legacyCS.Encode(f.user),
		Host: f.legacyCS.Encode(f.host), Command: cmd, Extra: []byte(extra)}.Append(nil)
}

// raw builds a datagram with a packet number written as given ("0042").
func (f *fakePeer) raw(no string, cmd ipmsg.Command, extra string) []byte {
	return fmt.Appendf(nil, "%s:%s:%s:%s:%d:%s", f.version, no, f.user, f.host, uint32(cmd), extra)
}

func (f *fakePeer) entryExtra() string {
	if f.status.Has(ipmsg.CapUTF8Opt) || f.lanchat != "" {
		e := ipmsg.Entry{User: f.user, Host: f.host, Nick: f.nick, Group: f.group, Lanchat: f.lanchat}
		return string(ipmsg.AppendEntryExtra(nil, e, f.legacyCS))
	}
	return string(f.legacyCS.Encode(f.nick)) + "\x00" + string(f.legacyCS.Encode(f.group)) + "\x00"
}

func (f *fakePeer) send(b []byte) {
	f.t.Helper()
	if _, err := f.conn.WriteToUDPAddrPort(b, f.node); err != nil {
		f.t.Fatal(err)
	}
}

// announce sends ANSENTRY (which is not answered) and waits until the node
// lists this peer.
func (f *fakePeer) announce(tn *testNode) Contact {
	f.t.Helper()
	f.send(f.packet(ipmsg.AnsEntry|f.status, f.entryExtra()))
	var c Contact
	eventually(f.t, 5*time.Second, "node learns "+f.key(), func() bool {
		for _, x := range tn.Contacts() {
			if x.Addr == f.addr {
				c = x
				return true
			}
		}
		return false
	})
	return c
}

// read returns the next datagram, parsed and copied, or false on timeout.
func (f *fakePeer) read(timeout time.Duration) (ipmsg.Packet, []byte, bool) {
	f.t.Helper()
	buf := make([]byte, ipmsg.MaxDatagram+1)
	f.conn.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := f.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) {
			return ipmsg.Packet{}, nil, false
		}
		f.t.Fatal(err)
	}
	p, err := ipmsg.Parse(buf[:n])
	if err != nil {
		f.t.Fatalf("node sent a malformed datagram %q: %v", buf[:n], err)
	}
	return p.Clone(), buf[:n:n], true
}

// readMode reads until a datagram of mode arrives, returning those skipped.
func (f *fakePeer) readMode(mode ipmsg.Command, timeout time.Duration) (ipmsg.Packet, []byte) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p, b, ok := f.read(time.Until(deadline))
		if !ok {
			f.t.Fatalf("no %v within %v", mode, timeout)
		}
		if p.Command.Mode() == mode {
			return p, b
		}
	}
}

// exchange sends pkts, then a GETINFO as a barrier, and returns everything
// the node sent back before the barrier's SENDINFO. The node handles
// datagrams one at a time and answers synchronously, so whatever it would
// send in reply to pkts comes before that SENDINFO.
func (f *fakePeer) exchange(pkts ...[]byte) []ipmsg.Packet {
	f.t.Helper()
	infos := 1
	for _, b := range pkts {
		if p, err := ipmsg.Parse(b); err == nil && p.Command.Mode() == ipmsg.GetInfo {
			infos++
		}
		f.send(b)
	}
	f.send(f.packet(ipmsg.GetInfo, ""))
	var out []ipmsg.Packet
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, _, ok := f.read(time.Until(deadline))
		if !ok {
			f.t.Fatalf("no answer to the GETINFO barrier; got %s", describe(out))
		}
		if p.Command.Mode() == ipmsg.SendInfo {
			if infos--; infos == 0 {
				return out
			}
		}
		out = append(out, p)
	}
}

// describe lists packets as "MODE|OPTS:extra" for failure messages.
func describe(ps []ipmsg.Packet) string {
	s := "["
	for i, p := range ps {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%v:%q", p.Command, p.Extra)
	}
	return s + "]"
}

// ackLoop answers every SENDMSG|SENDCHECKOPT the node sends with RECVMSG, as
// a well-behaved client does, and passes every datagram on to got. It ends
// when the test does.
func (f *fakePeer) ackLoop() <-chan []byte {
	got := make(chan []byte, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, ipmsg.MaxDatagram+1)
		for {
			n, _, err := f.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			b := append([]byte(nil), buf[:n]...)
			select {
			case got <- b:
			default:
			}
			p, err := ipmsg.Parse(b)
			if err == nil && p.Command.Mode() == ipmsg.SendMsg && p.Command.Has(ipmsg.SendCheckOpt) {
				f.conn.WriteToUDPAddrPort(f.raw("1", ipmsg.RecvMsg, string(p.NoRaw)+"\x00"), f.node)
			}
		}
	}()
	f.t.Cleanup(func() {
		f.conn.Close()
		<-done
	})
	return got
}

// isAck reports whether p is the node's RECVMSG for the packet number no,
// echoed as written.
func isAck(p ipmsg.Packet, no string) bool {
	return p.Command == ipmsg.RecvMsg && string(p.Extra) == no+"\x00"
}

// assertHealthy checks that the node still acknowledges and records a
// normal message from a fresh peer on ip, and that its roster and history
// hold together.
func assertHealthy(t *testing.T, tn *testNode, ip string) {
	t.Helper()
	f := newFakePeer(t, tn, ip)
	f.user = "healthcheck"
	f.announce(tn)
	text := "still alive 还活着"
	f.no += 1000
	no := f.no
	got := f.exchange(f.packetNo(no, ipmsg.SendMsg|ipmsg.SendCheckOpt|ipmsg.UTF8Opt, text+"\x00"))
	if len(got) != 1 || !isAck(got[0], strconv.FormatUint(no, 10)) {
		t.Fatalf("node answered a normal message with %s, want one RECVMSG for %d", describe(got), no)
	}
	hist, err := tn.History(f.key(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Text != text || hist[0].Dir != Incoming || hist[0].PacketNo != no {
		t.Errorf("history with the health-check peer: %+v", hist)
	}
	checkContacts(t, tn)
	checkHistoryFiles(t, tn.cfg.DataDir)
}

// checkContacts verifies every contact is valid text and no address
// belongs to two contacts.
func checkContacts(t *testing.T, tn *testNode) {
	t.Helper()
	owner := map[netip.AddrPort]string{}
	for _, c := range tn.Contacts() {
		for name, v := range map[string]string{"key": c.Key, "nick": c.Nick, "group": c.Group,
			"user": c.User, "host": c.Host, "version": c.Version} {
			if !utf8.ValidString(v) {
				t.Errorf("contact %q: %s %q is not valid UTF-8", c.Key, name, v)
			}
		}
		found := false
		for _, a := range c.Addrs {
			found = found || a == c.Addr
			if k, dup := owner[a]; dup {
				t.Errorf("address %v belongs to %q and %q", a, k, c.Key)
			}
			owner[a] = c.Key
		}
		if !found {
			t.Errorf("contact %q: addr %v not among %v", c.Key, c.Addr, c.Addrs)
		}
	}
}

// checkHistoryFiles verifies the history folder holds only regular files,
// each a list of JSON lines with a message ID.
func checkHistoryFiles(t *testing.T, dataDir string) {
	t.Helper()
	dir := filepath.Join(dataDir, "history")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			t.Errorf("history entry %q is not a regular file", e.Name())
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, maxHistoryLine)
		for line := 1; sc.Scan(); line++ {
			var r record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ID == "" {
				t.Errorf("%s:%d: bad line %.80q: %v", e.Name(), line, sc.Bytes(), err)
			}
		}
		if err := sc.Err(); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
		f.Close()
	}
}

// historyLines counts the lines of a contact's history file that add a
// message (not status updates), once the node has written what it queued.
func historyLines(t *testing.T, n *Node, key string) int {
	t.Helper()
	n.hist.flush()
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, "history", fileName(key)))
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxHistoryLine)
	for sc.Scan() {
		var r record
		if json.Unmarshal(sc.Bytes(), &r) == nil && !r.Update {
			lines++
		}
	}
	return lines
}
