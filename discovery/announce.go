package discovery

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/lanchat/lanchat/internal/netutil"
	"github.com/lanchat/lanchat/ipmsg"
)

// maxSubnetHosts bounds how many addresses one configured subnet expands
// to (a /20), so a typo like 10.0.0.0/8 does not send sixteen million probes.
const maxSubnetHosts = 4094

// maxAnswered bounds the memory of answered announcements.
const maxAnswered = 4096

// limitedBroadcast is 255.255.255.255.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// entryPacket builds an entry-type packet about us.
func (s *Service) entryPacket(cmd ipmsg.Command) []byte {
	self := s.Self()
	status := ipmsg.CapUTF8Opt
	if self.Files {
		status |= ipmsg.FileAttachOpt
	}
	if self.Away {
		status |= ipmsg.AbsenceOpt
	}
	p := ipmsg.Packet{
		Version: []byte(ipmsg.Version),
		No:      s.cfg.NextNo(),
		User:    s.cfg.Legacy.Encode(ipmsg.HeaderName(self.User)),
		Host:    s.cfg.Legacy.Encode(ipmsg.HeaderName(self.Host)),
		Command: cmd | status,
	}
	e := ipmsg.Entry{User: self.User, Host: self.Host, Nick: self.Nick, Group: self.Group,
		VS: ipmsg.VSLanchat, Lanchat: self.Lanchat, PeerID: self.PeerID}
	p.Extra = ipmsg.AppendEntryExtra(nil, e, s.cfg.Legacy)
	return p.Append(nil)
}

// targets returns where announcements go: broadcasts, extra addresses and
// every known peer a broadcast cannot reach (they are on other subnets).
func (s *Service) targets(ctx context.Context) []netip.AddrPort {
	s.mu.Lock()
	ifs := s.ifs
	s.mu.Unlock()
	seen := map[netip.AddrPort]bool{}
	var out []netip.AddrPort
	add := func(ap netip.AddrPort) {
		if !seen[ap] && !s.isOwnIn(ifs, ap) {
			seen[ap] = true
			out = append(out, ap)
		}
	}
	if !s.cfg.NoBroadcast {
		for _, b := range netutil.Broadcasts(ifs) {
			add(netip.AddrPortFrom(b, s.cfg.Port))
		}
		add(netip.AddrPortFrom(limitedBroadcast, s.cfg.Port))
	}
	for _, t := range s.cfg.Extra {
		for _, ap := range s.expand(ctx, t) {
			add(ap)
		}
	}
	for _, p := range s.roster.List() {
		if !netutil.OnLink(ifs, p.Addr.Addr()) {
			add(p.Addr)
		}
	}
	return out
}

// expand turns one configured target into addresses: an address (with or
// without port) as is, a subnet into each of its hosts, a name into its
// IPv4 addresses.
func (s *Service) expand(ctx context.Context, t string) []netip.AddrPort {
	if ap, err := netip.ParseAddrPort(t); err == nil {
		return []netip.AddrPort{ap}
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(t); err == nil {
		addrs = []netip.Addr{a}
	} else if p, err := netip.ParsePrefix(t); err == nil && p.Addr().Is4() {
		addrs = subnetHosts(p.Masked())
	} else {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip4", t); err != nil {
			s.log.Warn("extra broadcast target not found", "target", t, "err", err)
		}
	}
	out := make([]netip.AddrPort, len(addrs))
	for i, a := range addrs {
		out[i] = netip.AddrPortFrom(a, s.cfg.Port)
	}
	return out
}

func subnetHosts(p netip.Prefix) []netip.Addr {
	if p.Bits() >= 31 {
		return []netip.Addr{p.Addr()}
	}
	var out []netip.Addr
	last := netutil.Broadcast(p)
	for a := p.Addr().Next(); a.IsValid() && a != last && len(out) < maxSubnetHosts; a = a.Next() {
		out = append(out, a)
	}
	return out
}

// announce sends an entry-type packet to every target.
func (s *Service) announce(cmd ipmsg.Command) {
	targets := s.targets(context.Background())
	failed := s.sendAll(s.entryPacket(cmd), targets)
	s.count(func(st *Stats) {
		switch cmd.Mode() {
		case ipmsg.BrEntry:
			st.Entries += len(targets)
		case ipmsg.BrAbsence:
			st.Absences += len(targets)
		case ipmsg.BrExit:
			st.Exits += len(targets)
		}
		st.SendErrors += failed
	})
}

// sendAll sends pkt to each target and returns how many sends failed.
// Unicast to many subnet hosts is paced, as iptux does, so a switch is not
// flooded.
func (s *Service) sendAll(pkt []byte, targets []netip.AddrPort) (failed int) {
	for i, t := range targets {
		if i > 0 && i%64 == 0 {
			time.Sleep(time.Millisecond)
		}
		if s.send(pkt, t) != nil {
			failed++
		}
	}
	return failed
}

// Extra targets that have not answered are asked again: every housekeeping
// tick during the first minute, then every five minutes. A colleague behind
// a router who starts later than us, or whose answer was lost, is found
// without waiting for either side to restart.
const (
	extraRetryFast   = time.Minute
	extraRetryPeriod = 5 * time.Minute
)

// retryExtra unicasts BR_ENTRY to the extra targets nobody answered from.
func (s *Service) retryExtra(now time.Time) {
	if len(s.cfg.Extra) == 0 {
		return
	}
	s.mu.Lock()
	due := now.Sub(s.started) < extraRetryFast || now.Sub(s.lastExtraRetry) >= extraRetryPeriod
	if due {
		s.lastExtraRetry = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	var silent []netip.AddrPort
	for _, t := range s.cfg.Extra {
		for _, ap := range s.expand(context.Background(), t) {
			if _, known := s.roster.ByAddr(ap); !known && !s.isOwn(ap) {
				silent = append(silent, ap)
			}
		}
	}
	if len(silent) > 0 {
		failed := s.sendAll(s.entryPacket(ipmsg.BrEntry|ipmsg.DialupOpt), silent)
		s.count(func(st *Stats) { st.Entries += len(silent); st.SendErrors += failed })
	}
}

func (s *Service) send(pkt []byte, to netip.AddrPort) error {
	_, err := s.cfg.Conn.WriteTo(pkt, net.UDPAddrFromAddrPort(to))
	if err != nil {
		s.log.Debug("send failed", "to", to, "err", err)
	}
	return err
}

// Handle takes an entry-type packet received from a peer. Other modes are
// ignored; the caller dispatches. It reports whether the packet came from
// ourselves (our own broadcast echoed back).
func (s *Service) Handle(p ipmsg.Packet, from netip.AddrPort) (own bool) {
	if s.isOwn(from) {
		return true
	}
	switch p.Command.Mode() {
	case ipmsg.BrEntry:
		s.learn(p, from)
		s.scheduleAnswer(from, p.No)
	case ipmsg.AnsEntry, ipmsg.BrAbsence:
		s.learn(p, from)
	case ipmsg.BrExit:
		if peer, gone := s.roster.remove(from); gone {
			s.cfg.OnChange(Change{Kind: Left, Peer: peer})
		}
	}
	return false
}

// Introduce unicasts BR_ENTRY to a host that wrote to us without being
// known, so that it answers and joins the roster (IP Messenger does this).
func (s *Service) Introduce(to netip.AddrPort) {
	s.send(s.entryPacket(ipmsg.BrEntry), to)
	s.count(func(st *Stats) { st.Entries++ })
}

// Touch records that any packet came from a known peer.
func (s *Service) Touch(from netip.AddrPort) bool { return s.roster.touch(from, time.Now()) }

func (s *Service) isOwn(from netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isOwnIn(s.ifs, from)
}

// isOwnIn reports whether ap is our own socket's address.
func (s *Service) isOwnIn(ifs []netutil.Iface, ap netip.AddrPort) bool {
	return ap.Port() == s.localPort() && netutil.Local(ifs, ap.Addr())
}

func (s *Service) localPort() uint16 {
	if ua, ok := s.cfg.Conn.LocalAddr().(*net.UDPAddr); ok {
		return uint16(ua.Port)
	}
	return 0
}

// learn records the sender of an entry packet.
func (s *Service) learn(p ipmsg.Packet, from netip.AddrPort) {
	e := ipmsg.ParseEntry(p, s.cfg.Legacy)
	client := ipmsg.DetectClient(p.Version, &e)
	peer := Peer{
		Key: PeerKey(e.User, e.Host, from.Port()), User: e.User, Host: e.Host,
		Nick: e.Nick, Group: e.Group, Addr: from, Client: client,
		Version: string(p.Version), Status: p.Command.Opts(),
		Away:   p.Command.Has(ipmsg.AbsenceOpt) && client != ipmsg.ClientIptux,
		Legacy: e.Legacy, Lanchat: e.Lanchat, PeerID: e.PeerID, IptuxCompat: e.IptuxEncoding != "",
		LastSeen: time.Now(),
	}
	if peer.Nick == "" {
		peer.Nick = peer.User
	}
	kind, displaced := s.roster.upsert(peer)
	if displaced != nil {
		s.cfg.OnChange(Change{Kind: Left, Peer: *displaced})
	}
	if kind != 0 {
		got, _ := s.roster.Get(peer.Key)
		s.cfg.OnChange(Change{Kind: kind, Peer: got})
	}
}

// answerDelay spreads ANSENTRY replies as IP Messenger does, so that a
// broadcast on a big LAN is not answered by everyone in the same millisecond.
func (s *Service) answerDelay(from netip.Addr) time.Duration {
	s.mu.Lock()
	near := false
	for _, f := range s.ifs {
		p, _ := f.Prefix.Addr().Prefix(24)
		near = near || p.Contains(from)
	}
	s.mu.Unlock()
	n := s.roster.Len()
	switch {
	case n < 50 || near:
		return 5*time.Millisecond + rand.N(1024*time.Millisecond)
	case n < 300:
		return rand.N(2048 * time.Millisecond)
	}
	return rand.N(4096 * time.Millisecond)
}

// scheduleAnswer queues one ANSENTRY per host; a host already waiting is
// not queued twice (it may have broadcast to several of our addresses).
//
// A host broadcasts one BR_ENTRY to several addresses (its subnet's and
// 255.255.255.255) with the same packet number, and the copies can arrive
// after our answer to the first has gone; the packet number answered last
// is remembered so that such a copy is not answered again, while a new
// announcement (a restart: a new number) is.
func (s *Service) scheduleAnswer(to netip.AddrPort, no uint64) {
	d := s.answerDelay(to.Addr())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[to] != nil || s.stopped || s.answered[to] == no {
		return
	}
	if len(s.answered) >= maxAnswered {
		clear(s.answered) // a memory, not a record: forgetting costs one extra answer
	}
	s.answered[to] = no
	s.pending[to] = time.AfterFunc(d, func() {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		delete(s.pending, to)
		s.inflight.Add(1)
		s.mu.Unlock()
		defer s.inflight.Done()
		s.send(s.entryPacket(ipmsg.AnsEntry), to)
		s.count(func(st *Stats) { st.Answers++ })
	})
}
