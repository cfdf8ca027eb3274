package discovery

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/lanchat/lanchat/internal/leakcheck"
	"github.com/lanchat/lanchat/internal/netutil"
	"github.com/lanchat/lanchat/ipmsg"
)

// TestServicesFindEachOther runs two Services on loopback sockets. A knows
// B's address and announces itself; B learns A from the BR_ENTRY and answers
// with ANSENTRY after its random delay, which is how A learns B. B's nick,
// group and host are Chinese, so A sees GBK legacy fields and the UTF-8
// block. When B stops, its BR_EXIT removes it from A's roster.
func TestServicesFindEachOther(t *testing.T) {
	t.Parallel()
	connA, connB := listenUDP(t, "127.0.0.1"), listenUDP(t, "127.0.0.1")
	addrA, addrB := localAddr(connA), localAddr(connB)

	// B starts first with nobody to announce to; its first packet number is
	// taken for that (empty) announcement, after which only A's BR_ENTRY
	// can teach B about A.
	bAnnounced := make(chan struct{})
	var once sync.Once
	nextB := counter(2_000_000_000)
	b := startService(t, connB, Config{
		Self: Self{User: "bob", Host: "张三的电脑", Nick: "张三", Group: "研发部", Lanchat: "0.1"},
		NextNo: func() uint64 {
			once.Do(func() { close(bAnnounced) })
			return nextB()
		},
	})
	<-bAnnounced
	a := startService(t, connA, Config{
		Self:  Self{User: "alice", Host: "hostA", Nick: "Alice", Group: "QA", Lanchat: "0.1"},
		Extra: []string{addrB.String()},
	})

	keyA := PeerKey("alice", "hostA", addrA.Port())
	keyB := PeerKey("bob", "张三的电脑", addrB.Port())
	b.changes.wait(t, 3*time.Second, "B learns A", func(c Change) bool { return c.Kind == Joined && c.Peer.Key == keyA })
	joined := a.changes.wait(t, 3*time.Second, "A learns B", func(c Change) bool { return c.Kind == Joined && c.Peer.Key == keyB })
	if d := time.Since(a.started); d < 5*time.Millisecond {
		t.Errorf("A learned B after %v; the ANSENTRY should wait at least 5ms", d)
	}
	// B counts the answer just after sending it.
	eventually(t, time.Second, "B counts its answer", func() bool { return b.svc.Stats().Answers == 1 })
	if st := b.svc.Stats(); st.Answers != 1 || st.Entries != 0 {
		t.Errorf("B stats %+v, want exactly 1 answer and no entries", st)
	}

	got := joined.Peer
	got.LastSeen = time.Time{}
	want := Peer{
		Key: keyB, User: "bob", Host: "张三的电脑", Nick: "张三", Group: "研发部",
		Addr: addrB, Addrs: []netip.AddrPort{addrB}, Client: ipmsg.ClientLanchat, Version: "1",
		Status: ipmsg.CapUTF8Opt, Legacy: ipmsg.GB18030, Lanchat: "0.1",
	}
	if !peerEqual(got, want) {
		t.Errorf("A's roster entry for B:\n got %+v\nwant %+v", got, want)
	}
	pa, ok := b.svc.Roster().Get(keyA)
	if !ok || pa.Nick != "Alice" || pa.Group != "QA" || pa.Client != ipmsg.ClientLanchat || pa.Legacy != ipmsg.Unknown || pa.Addr != addrA {
		t.Errorf("B's roster entry for A: %+v (found %v)", pa, ok)
	}

	b.stop()
	a.changes.wait(t, 3*time.Second, "B leaves", func(c Change) bool { return c.Kind == Left && c.Peer.Key == keyB })
	if n := a.svc.Roster().Len(); n != 0 {
		t.Errorf("A's roster has %d peers after B's BR_EXIT, want 0", n)
	}
	if st := a.svc.Stats(); st.Answers != 0 {
		t.Errorf("A answered %d times; nobody sent A a BR_ENTRY", st.Answers)
	}
}

func peerEqual(a, b Peer) bool {
	return a.Key == b.Key && a.User == b.User && a.Host == b.Host && a.Nick == b.Nick && a.Group == b.Group &&
		a.Addr == b.Addr && slicesEqual(a.Addrs, b.Addrs) && a.Client == b.Client && a.Version == b.Version &&
		a.Status == b.Status && a.Away == b.Away && a.Legacy == b.Legacy && a.Lanchat == b.Lanchat &&
		a.IptuxCompat == b.IptuxCompat
}

func slicesEqual(a, b []netip.AddrPort) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEntryFields decodes the entry packets of each client family into
// roster fields.
func TestEntryFields(t *testing.T) {
	t.Parallel()
	gbk := func(s string) string { return string(ipmsg.GB18030.Encode(s)) }
	from := netip.MustParseAddrPort("127.0.0.9:2425")
	cases := []struct {
		name string
		pkt  ipmsg.Packet
		want Peer
	}{
		{
			name: "feiq gbk nick only",
			pkt: entry("1_lbt4_41#128#24F5AAD7C96A#0#0#0#311c#9", 1767153479, "t0250254", "DESKTOP-IOHG15K",
				0x600003, "\xb3\xc2\xd3\xe1\xd0\xc1"),
			want: Peer{User: "t0250254", Host: "DESKTOP-IOHG15K", Nick: "陈俞辛", Client: ipmsg.ClientFeiQ,
				Status: 0x600000, Legacy: ipmsg.GB18030},
		},
		{
			name: "ip messenger gbk legacy and utf-8 block",
			pkt: entry("1", 1700000000, gbk("李四"), "pc1", ipmsg.AnsEntry|ipmsg.CapUTF8Opt,
				gbk("李四")+"\x00"+gbk("财务")+"\x00\nUN:李四\nHN:pc1\nNN:李四\nGN:财务\nVS:00010002:4:99:103"),
			want: Peer{User: "李四", Host: "pc1", Nick: "李四", Group: "财务", Client: ipmsg.ClientIPMsg,
				Status: ipmsg.CapUTF8Opt, Legacy: ipmsg.GB18030},
		},
		{
			name: "block wins over legacy",
			pkt: entry("1", 7, "u", "h", ipmsg.AnsEntry|ipmsg.CapUTF8Opt,
				"ABC\x00grp\x00\nUN:u\nHN:h\nNN:张三\nGN:研发部\nLC:0.1"),
			want: Peer{User: "u", Host: "h", Nick: "张三", Group: "研发部", Client: ipmsg.ClientLanchat,
				Status: ipmsg.CapUTF8Opt, Lanchat: "0.1"},
		},
		{
			name: "iptux utf-8 four sections",
			pkt:  entry("1_iptux 0.8.3", 9, "root", "vm", 259, "iptux-h1\x00interop\x00icon-tux.png\x00utf-8\x00"),
			want: Peer{User: "root", Host: "vm", Nick: "iptux-h1", Group: "interop", Client: ipmsg.ClientIptux,
				Status: ipmsg.AbsenceOpt, IptuxCompat: true},
		},
		{
			name: "no nick falls back to user",
			pkt:  entry("1", 2, "user", "host", ipmsg.AnsEntry, "\x00\x00"),
			want: Peer{User: "user", Host: "host", Nick: "user", Client: ipmsg.ClientIPMsg},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := New(Config{Conn: newMemConn("127.0.0.1:2425"), NextNo: counter(1), NoBroadcast: true,
				Logger: testLogger(t), Interfaces: loopbackIfaces})
			if own := s.Handle(c.pkt, from); own {
				t.Fatal("Handle says the packet is our own")
			}
			want := c.want
			want.Key, want.Addr, want.Addrs = PeerKey(want.User, want.Host, 2425), from, []netip.AddrPort{from}
			want.Version = string(c.pkt.Version)
			got, ok := s.Roster().Get(want.Key)
			if !ok {
				t.Fatalf("no peer %q; roster %+v", want.Key, s.Roster().List())
			}
			if !peerEqual(got, want) {
				t.Errorf("\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestOwnEchoIgnored feeds the Service its own broadcast as it comes back
// from each local address: it must not join the roster or be answered. The
// same address with another port is another node on this machine.
func TestOwnEchoIgnored(t *testing.T) {
	t.Parallel()
	conn := newMemConn("0.0.0.0:2425")
	ifs := func() ([]netutil.Iface, error) {
		return []netutil.Iface{
			{Name: "lo", Prefix: netip.MustParsePrefix("127.0.0.1/8"), Loopback: true},
			{Name: "eth0", Prefix: netip.MustParsePrefix("10.1.2.3/24"), Broadcast: netip.MustParseAddr("10.1.2.255")},
		}, nil
	}
	s := New(Config{Conn: conn, NextNo: counter(1), NoBroadcast: true, Logger: testLogger(t), Interfaces: ifs,
		Self: Self{User: "me", Host: "box", Nick: "me"}})
	if _, err := s.refreshInterfaces(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	own, err := ipmsg.Parse(s.entryPacket(ipmsg.BrEntry))
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"127.0.0.1:2425", "10.1.2.3:2425"} {
		if !s.Handle(own, netip.MustParseAddrPort(from)) {
			t.Errorf("echo from %s not recognised as our own", from)
		}
	}
	s.mu.Lock()
	pending := len(s.pending)
	s.mu.Unlock()
	if n := s.Roster().Len(); n != 0 || pending != 0 {
		t.Errorf("after our own echoes: %d peers, %d answers pending; want none", n, pending)
	}
	// Another node on this machine, on another port, is a peer.
	if s.Handle(own, netip.MustParseAddrPort("10.1.2.3:2426")) {
		t.Error("another port on a local address taken for our own socket")
	}
	if n := s.Roster().Len(); n != 1 {
		t.Errorf("roster has %d peers, want the node on port 2426", n)
	}
}

// TestOwnEchoOnSocket sends a Service's own BR_ENTRY to its own loopback
// socket, as a broadcast comes back: it is dropped, and a real peer that
// writes next is the only one in the roster.
func TestOwnEchoOnSocket(t *testing.T) {
	t.Parallel()
	h := startService(t, listenUDP(t, "127.0.0.1"), Config{Self: Self{User: "me", Host: "box"}})
	// Our packets go out only once Run knows the local addresses.
	eventually(t, 2*time.Second, "Run lists interfaces", func() bool {
		h.svc.mu.Lock()
		defer h.svc.mu.Unlock()
		return h.svc.ifsKnown
	})
	if _, err := h.conn.WriteToUDPAddrPort(h.svc.entryPacket(ipmsg.BrEntry), h.addr); err != nil {
		t.Fatal(err)
	}
	r := newRawPeer(t, "127.0.0.1")
	r.sendTo(h.addr, r.packet(ipmsg.AnsEntry, "raw\x00\x00"))
	h.changes.wait(t, 2*time.Second, "raw peer joins", func(c Change) bool { return c.Kind == Joined })
	h.svc.mu.Lock()
	pending := len(h.svc.pending)
	h.svc.mu.Unlock()
	if peers := h.svc.Roster().List(); len(peers) != 1 || peers[0].Addr != r.addr || pending != 0 {
		t.Errorf("roster %+v, %d answers pending; want only the raw peer and nothing to answer", peers, pending)
	}
}

// TestOneAnswerPerPendingHost sends two BR_ENTRY from one raw peer while the
// first answer is still waiting for its delay: exactly one ANSENTRY comes
// back. Once that answer is out, a new BR_ENTRY is answered again.
func TestOneAnswerPerPendingHost(t *testing.T) {
	t.Parallel()
	h := startService(t, listenUDP(t, "127.0.0.1"), Config{Self: Self{User: "svc", Host: "svchost", Nick: "服务"}})
	r := newRawPeer(t, "127.0.0.1")
	// iptux broadcasts one BR_ENTRY with one packet number to several
	// addresses; IP Messenger re-broadcasts with a new number.
	e1 := r.packet(ipmsg.BrEntry, "raw\x00\x00")
	r.sendTo(h.addr, e1)
	r.sendTo(h.addr, e1)
	r.sendTo(h.addr, r.packet(ipmsg.BrEntry, "raw\x00\x00"))
	// The longest delay for a small LAN is 5 ms + 1023 ms, so a second
	// answer, had the later BR_ENTRY been queued too, would come within
	// about a second of the first.
	first, ok := r.waitMode(ipmsg.AnsEntry, 5*time.Second)
	if !ok {
		t.Fatal("no ANSENTRY")
	}
	got := append([]ipmsg.Packet{first}, r.collect(time.Now().Add(1200*time.Millisecond))...)
	if n := countMode(got, ipmsg.AnsEntry); n != 1 {
		t.Fatalf("got %d ANSENTRY for three BR_ENTRY from one host, want 1: %v", n, got)
	}
	for _, p := range got {
		if p.Command.Mode() != ipmsg.AnsEntry {
			continue
		}
		if want := ipmsg.AnsEntry | ipmsg.CapUTF8Opt; p.Command != want {
			t.Errorf("answer command %v, want %v", p.Command, want)
		}
		e := ipmsg.ParseEntry(p, ipmsg.GB18030)
		if e.Nick != "服务" || e.User != "svc" || !e.HasUTF8Block || e.VS != ipmsg.VSLanchat {
			t.Errorf("answer entry %+v", e)
		}
	}
	if st := h.svc.Stats(); st.Answers != 1 {
		t.Errorf("Stats.Answers = %d, want 1", st.Answers)
	}

	// A late copy of an announcement already answered (the same number,
	// sent to another broadcast address) gets no second answer...
	last := r.packet(ipmsg.BrEntry, "raw\x00\x00")
	r.sendTo(h.addr, last)
	if _, ok := r.waitMode(ipmsg.AnsEntry, 5*time.Second); !ok {
		t.Fatal("a BR_ENTRY after the answer went out was not answered")
	}
	r.sendTo(h.addr, last)
	if late := r.collect(time.Now().Add(1200 * time.Millisecond)); countMode(late, ipmsg.AnsEntry) != 0 {
		t.Errorf("a late copy of an answered BR_ENTRY was answered again: %v", late)
	}
	// ...but a new announcement from the same host (a restart) is.
	r.sendTo(h.addr, r.packet(ipmsg.BrEntry, "raw\x00\x00"))
	if _, ok := r.waitMode(ipmsg.AnsEntry, 5*time.Second); !ok {
		t.Fatal("a new BR_ENTRY from an answered host was not answered")
	}
}

// TestAbsence: BR_ABSENCE with ABSENCEOPT marks a peer away and without it
// back, and is never answered. iptux sets ABSENCEOPT on every entry packet,
// which does not mean away.
func TestAbsence(t *testing.T) {
	t.Parallel()
	conn := newMemConn("127.0.0.1:2425")
	changes := newChangeLog()
	s := New(Config{Conn: conn, NextNo: counter(1), NoBroadcast: true, Logger: testLogger(t),
		Interfaces: loopbackIfaces, OnChange: changes.add})
	t.Cleanup(s.stop)
	from := netip.MustParseAddrPort("127.0.0.2:2425")
	key := PeerKey("u", "h", 2425)
	away := func() bool {
		p, ok := s.Roster().Get(key)
		if !ok {
			t.Fatalf("peer %s missing", key)
		}
		return p.Away
	}
	s.Handle(entry("1", 1, "u", "h", ipmsg.AnsEntry, "nick\x00\x00"), from)
	if away() {
		t.Error("away after a plain ANSENTRY")
	}
	s.Handle(entry("1", 2, "u", "h", ipmsg.BrAbsence|ipmsg.AbsenceOpt, "nick[离开]\x00\x00"), from)
	if !away() {
		t.Error("not away after BR_ABSENCE|ABSENCEOPT")
	}
	s.Handle(entry("1", 3, "u", "h", ipmsg.BrAbsence, "nick\x00\x00"), from)
	if away() {
		t.Error("still away after BR_ABSENCE without ABSENCEOPT")
	}
	var kinds []ChangeKind
	for _, c := range changes.all() {
		kinds = append(kinds, c.Kind)
	}
	if want := []ChangeKind{Joined, Updated, Updated}; !equalKinds(kinds, want) {
		t.Errorf("changes %v, want %v", kinds, want)
	}

	iptux := netip.MustParseAddrPort("127.0.0.3:2425")
	s.Handle(entry("1_iptux 0.8.3", 1, "root", "vm", 257, "iptux-h1\x00interop\x00icon-tux.png\x00utf-8\x00"), iptux)
	s.Handle(entry("1_iptux 0.8.3", 2, "root", "vm", ipmsg.BrAbsence|ipmsg.AbsenceOpt, "iptux-h1\x00interop\x00icon-tux.png\x00utf-8\x00"), iptux)
	if p, _ := s.Roster().Get(PeerKey("root", "vm", 2425)); p.Away || p.Client != ipmsg.ClientIptux {
		t.Errorf("iptux peer %+v: ABSENCEOPT from iptux must not mean away", p)
	}

	s.mu.Lock()
	_, pendingU := s.pending[from]
	s.mu.Unlock()
	if pendingU {
		t.Error("an answer is pending for a host that only sent ANSENTRY and BR_ABSENCE")
	}
	for _, w := range conn.take() {
		if w.to == from {
			t.Errorf("sent %v to a host that never sent BR_ENTRY", w.pkt.Command)
		}
	}
}

func equalKinds(a, b []ChangeKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestTwoAddressesOnePeer: one user@host heard on two addresses (two network
// cards) is one peer with both; BR_EXIT from one leaves the other, and the
// peer leaves with its last address. The sockets are real loopback sockets
// on two addresses with one port.
func TestTwoAddressesOnePeer(t *testing.T) {
	t.Parallel()
	h := startService(t, listenUDP(t, "127.0.0.1"), Config{Self: Self{User: "svc", Host: "svchost"}})
	r1, r2 := rawPeerPair(t, "127.0.0.2", "127.0.0.3")
	r2.no = 9000
	key := PeerKey(r1.user, r1.host, r1.addr.Port())

	r1.sendTo(h.addr, r1.packet(ipmsg.AnsEntry, "双网卡\x00\x00"))
	h.changes.wait(t, 2*time.Second, "joined", func(c Change) bool { return c.Kind == Joined && c.Peer.Key == key })
	r2.sendTo(h.addr, r2.packet(ipmsg.AnsEntry, "双网卡\x00\x00"))
	upd := h.changes.wait(t, 2*time.Second, "second address", func(c Change) bool { return c.Kind == Updated && c.Peer.Addr == r2.addr })
	if want := []netip.AddrPort{r1.addr, r2.addr}; !slicesEqual(upd.Peer.Addrs, want) || upd.Peer.Key != key {
		t.Errorf("peer %q addrs %v, want %q with %v", upd.Peer.Key, upd.Peer.Addrs, key, want)
	}
	if n := h.svc.Roster().Len(); n != 1 {
		t.Errorf("roster has %d peers, want 1", n)
	}
	checkRoster(t, h.svc.Roster())

	r2.sendTo(h.addr, r2.packet(ipmsg.BrExit, "双网卡\x00\x00"))
	r1.sendTo(h.addr, r1.packet(ipmsg.AnsEntry|ipmsg.AbsenceOpt, "双网卡\x00\x00")) // an ordered marker
	h.changes.wait(t, 2*time.Second, "marker", func(c Change) bool { return c.Kind == Updated && c.Peer.Away })
	p, ok := h.svc.Roster().Get(key)
	if !ok || !slicesEqual(p.Addrs, []netip.AddrPort{r1.addr}) || p.Addr != r1.addr {
		t.Fatalf("after BR_EXIT on one address: %+v (found %v), want only %v", p, ok, r1.addr)
	}
	for _, c := range h.changes.all() {
		if c.Kind == Left {
			t.Errorf("peer left while it still had an address: %+v", c)
		}
	}
	r1.sendTo(h.addr, r1.packet(ipmsg.BrExit, "双网卡\x00\x00"))
	h.changes.wait(t, 2*time.Second, "left", func(c Change) bool { return c.Kind == Left && c.Peer.Key == key })
	if n := h.svc.Roster().Len(); n != 0 {
		t.Errorf("roster has %d peers after the last BR_EXIT", n)
	}
	checkRoster(t, h.svc.Roster())
}

// rawPeerPair binds two loopback addresses on one port, as one host with
// two network cards.
func rawPeerPair(t *testing.T, ip1, ip2 string) (*rawPeer, *rawPeer) {
	t.Helper()
	for range 20 {
		r1 := newRawPeer(t, ip1)
		at := netip.AddrPortFrom(netip.MustParseAddr(ip2), r1.addr.Port())
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(at))
		if err != nil {
			r1.conn.Close() // the port is taken on ip2: try another
			continue
		}
		t.Cleanup(func() { c.Close() })
		return r1, &rawPeer{t: t, conn: c, addr: localAddr(c), version: "1", user: r1.user, host: r1.host, no: 5000}
	}
	t.Fatal("no port free on both addresses")
	return nil, nil
}

// TestAddressTakenOver: when another identity is heard from an address a
// known peer used (DHCP gave it to another machine, or another client now
// runs there), the address moves: the old peer loses it, and leaves when it
// has no other. Otherwise two peers claim one address, the BR_EXIT from it
// removes only the newcomer, and expiring the stale one deletes the
// newcomer's index entry.
func TestAddressTakenOver(t *testing.T) {
	t.Parallel()
	changes := newChangeLog()
	s := New(Config{Conn: newMemConn("127.0.0.1:2425"), NextNo: counter(1), NoBroadcast: true,
		Logger: testLogger(t), Interfaces: loopbackIfaces, OnChange: changes.add})
	t.Cleanup(s.stop)
	x := netip.MustParseAddrPort("127.0.0.5:2425")
	old, newer := PeerKey("olduser", "oldpc", 2425), PeerKey("newuser", "newpc", 2425)
	s.Handle(entry("1", 1, "olduser", "oldpc", ipmsg.AnsEntry, "old\x00\x00"), x)
	s.Handle(entry("1", 1, "newuser", "newpc", ipmsg.AnsEntry, "new\x00\x00"), x)
	checkRoster(t, s.Roster())
	if _, ok := s.Roster().Get(old); ok {
		t.Errorf("%s still in the roster after its only address went to %s", old, newer)
	}
	if p, ok := s.Roster().ByAddr(x); !ok || p.Key != newer {
		t.Errorf("address %v belongs to %q, want %q", x, p.Key, newer)
	}
	left := 0
	for _, c := range changes.all() {
		if c.Kind == Left && c.Peer.Key == old {
			left++
		}
	}
	if left != 1 {
		t.Errorf("%d Left changes for the displaced peer, want 1: %+v", left, changes.all())
	}
	s.Handle(entry("1", 2, "newuser", "newpc", ipmsg.BrExit, "new\x00\x00"), x)
	if n := s.Roster().Len(); n != 0 {
		t.Errorf("roster keeps %d peers after BR_EXIT from the only address: %+v", n, s.Roster().List())
	}
	checkRoster(t, s.Roster())
}

// TestProbeAndExpire runs housekeeping on a fake clock: a peer that answers
// the unicast probe stays; a silent one is dropped with Left once
// ProbeAfter+ExpireAfter have passed, after being probed.
func TestProbeAndExpire(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		conn := newMemConn("127.0.0.1:2425")
		changes := newChangeLog()
		s := New(Config{Conn: conn, NextNo: counter(1), NoBroadcast: true, Logger: testLogger(t),
			Interfaces: loopbackIfaces, OnChange: changes.add,
			ProbeAfter: 3 * time.Second, ExpireAfter: 10 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		synctest.Wait()

		silent, alive := netip.MustParseAddrPort("127.0.0.2:2425"), netip.MustParseAddrPort("127.0.0.3:2425")
		quietKey, liveKey := PeerKey("quiet", "q", 2425), PeerKey("live", "l", 2425)
		no := uint64(10)
		answer := func() {
			no++
			s.Handle(entry("1", no, "live", "l", ipmsg.AnsEntry, "live\x00\x00"), alive)
		}
		s.Handle(entry("1", 1, "quiet", "q", ipmsg.AnsEntry, "quiet\x00\x00"), silent)
		answer()
		conn.take()

		probes := map[netip.AddrPort]int{}
		leftAt := time.Duration(0)
		start := time.Now()
		for range 4 { // housekeeping ticks at 5, 10, 15 and 20 s
			time.Sleep(5*time.Second + time.Millisecond)
			synctest.Wait()
			for _, w := range conn.take() {
				if w.pkt.Command != ipmsg.BrEntry|ipmsg.DialupOpt|ipmsg.CapUTF8Opt {
					t.Errorf("unexpected %v to %v", w.pkt.Command, w.to)
					continue
				}
				probes[w.to]++
				if w.to == alive {
					answer()
				}
			}
			if _, ok := s.Roster().Get(quietKey); !ok && leftAt == 0 {
				leftAt = time.Since(start)
			}
		}
		if probes[silent] != 2 || probes[alive] != 4 {
			t.Errorf("probes %v, want 2 to the silent peer (at 5 s and 10 s) and 4 to the live one", probes)
		}
		if leftAt < 13*time.Second || leftAt > 16*time.Second {
			t.Errorf("silent peer dropped after %v, want at the first tick past 13 s", leftAt)
		}
		var left []string
		for _, c := range changes.all() {
			if c.Kind == Left {
				left = append(left, c.Peer.Key)
			}
		}
		if len(left) != 1 || left[0] != quietKey {
			t.Errorf("Left changes for %v, want only %s", left, quietKey)
		}
		if _, ok := s.Roster().Get(liveKey); !ok {
			t.Error("the peer that answered probes was dropped")
		}
		if st := s.Stats(); st.Probes != 6 {
			t.Errorf("Stats.Probes = %d, want 6", st.Probes)
		}

		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		default:
			t.Fatal("Run did not return after cancel")
		}
		var exits int
		for _, w := range conn.take() {
			if w.pkt.Command.Mode() == ipmsg.BrExit && w.to == alive {
				exits++
			}
		}
		if exits != 1 {
			t.Errorf("%d BR_EXIT to the remaining peer, want 1", exits)
		}
	})
}

// TestCancelDropsPendingAnswer: a leaving host does not answer; Run returns
// at once even with answers waiting, and sends BR_EXIT instead.
func TestCancelDropsPendingAnswer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		conn := newMemConn("127.0.0.1:2425")
		s := New(Config{Conn: conn, NextNo: counter(1), NoBroadcast: true, Logger: testLogger(t),
			Interfaces: loopbackIfaces, Extra: []string{"127.0.0.7:2425"}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		synctest.Wait()
		from := netip.MustParseAddrPort("127.0.0.2:2425")
		s.Handle(entry("1", 1, "u", "h", ipmsg.BrEntry, "u\x00\x00"), from)
		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("Run did not return after cancel")
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		var cmds []string
		for _, w := range conn.take() {
			cmds = append(cmds, w.pkt.Command.Mode().String()+"->"+w.to.String())
		}
		want := []string{"BR_ENTRY->127.0.0.7:2425", "BR_EXIT->127.0.0.7:2425", "BR_EXIT->127.0.0.2:2425"}
		if strings.Join(cmds, " ") != strings.Join(want, " ") {
			t.Errorf("sent %v, want %v", cmds, want)
		}
		if st := s.Stats(); st.Answers != 0 {
			t.Errorf("answered %d times after stopping", st.Answers)
		}
	})
}

// TestRunReturnsPromptly cancels a Service on a real socket with an answer
// pending: Run returns quickly, the raw peer gets BR_EXIT and no ANSENTRY,
// and no goroutine is left behind. It is not parallel so that the goroutine
// count belongs to it alone.
func TestRunReturnsPromptly(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		r := newRawPeer(t, "127.0.0.1")
		conn := listenUDP(t, "127.0.0.1")
		h := startService(t, conn, Config{Self: Self{User: "svc", Host: "h"}, Extra: []string{r.addr.String()}})
		if _, ok := r.waitMode(ipmsg.BrEntry, 2*time.Second); !ok {
			t.Fatal("no BR_ENTRY at start")
		}
		r.sendTo(h.addr, r.packet(ipmsg.BrEntry, "raw\x00\x00"))
		h.changes.wait(t, 2*time.Second, "raw peer joins", func(c Change) bool { return c.Kind == Joined })
		if took := h.stop(); took > 500*time.Millisecond {
			t.Errorf("Run took %v to return after cancel", took)
		}
		got := r.collect(time.Now().Add(1200 * time.Millisecond))
		if countMode(got, ipmsg.AnsEntry) != 0 || countMode(got, ipmsg.BrExit) != 1 {
			t.Errorf("after cancel the peer got %v; want one BR_EXIT and no ANSENTRY", got)
		}
		conn.Close()
	}()
	leakcheck.Goroutines(t, before)
}

// TestHostileEntryNames feeds entry packets whose names are control
// characters, invalid UTF-8 and invalid GBK. Nothing panics, every name is
// stored as valid UTF-8 decoded from the bytes, and the roster stays
// consistent.
func TestHostileEntryNames(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		user, host string
		cmd        ipmsg.Command
		extra      string
		wantNick   string // "" means: the legacy decoding of section 0
	}{
		{"control chars", "u\x01", "h\x1b", ipmsg.AnsEntry, "\x01\x02\x1b[31mred\x7f\x00\t\r\v\f\x00", "\x01\x02\x1b[31mred\x7f"},
		{"invalid utf-8", "\xff\xfe", "\xc0\xaf", ipmsg.AnsEntry, "\xff\xfe\xfd\x00\xed\xa0\x80\x00", ""},
		{"invalid gbk", "\x81\x20", "\x81", ipmsg.AnsEntry, "\x81\x20\x81\x00\xfe\x00", ""},
		{"utf8opt on invalid bytes", "\xff", "h", ipmsg.AnsEntry | ipmsg.UTF8Opt, "\xff\xfe\x00\x80\x00", "\ufffd"},
		{"invalid block", "u", "h", ipmsg.AnsEntry | ipmsg.CapUTF8Opt, "n\x00g\x00\nNN:\xff\x01\nGN\nUN:\nHN:\x80\n\n:", "\ufffd\x01"},
		{"newlines", "u3", "h3", ipmsg.BrAbsence | ipmsg.AbsenceOpt, "a\nb\r\nc\x00\x00\x00\x00", "a\nb\r\nc"},
		{"huge nick", "u2", "h2", ipmsg.AnsEntry, strings.Repeat("\xd5\xc5", 30000) + "\x00", strings.Repeat("张", 30000)},
		{"path-like names", "../..", "/etc/passwd", ipmsg.AnsEntry, "..\x00/\x00", ".."},
		{"empty everything", "", "", ipmsg.AnsEntry, "", ""},
	}
	conn := newMemConn("127.0.0.1:2425")
	s := New(Config{Conn: conn, NextNo: counter(1), NoBroadcast: true, Logger: testLogger(t), Interfaces: loopbackIfaces})
	t.Cleanup(s.stop)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}), 2425)
			p := entry("1", uint64(i+1), c.user, c.host, c.cmd, c.extra)
			s.Handle(p, from)
			got, ok := s.Roster().ByAddr(from)
			if !ok {
				t.Fatalf("no peer at %v", from)
			}
			for field, v := range map[string]string{"key": got.Key, "user": got.User, "host": got.Host,
				"nick": got.Nick, "group": got.Group, "version": got.Version} {
				if !utf8.ValidString(v) {
					t.Errorf("%s %q is not valid UTF-8", field, v)
				}
			}
			want := c.wantNick
			if want == "" {
				want, _ = ipmsg.DecodeText(p.Section(0), c.cmd.Has(ipmsg.UTF8Opt), ipmsg.GB18030)
				if want == "" {
					want = got.User
				}
			}
			if got.Nick != want {
				t.Errorf("nick %q, want %q", got.Nick, want)
			}
			if bytes.ContainsRune([]byte(got.Nick), 0) {
				t.Errorf("nick holds a NUL: %q", got.Nick)
			}
			checkRoster(t, s.Roster())
		})
	}
	if n := s.Roster().Len(); n != len(cases) {
		t.Errorf("roster has %d peers, want %d", n, len(cases))
	}
}
