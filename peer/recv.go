package peer

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/lanchat/lanchat/discovery"
	"github.com/lanchat/lanchat/ipmsg"
)

// notAbsence is IP Messenger's answer to GETABSENCEINFO when not away.
const notAbsence = "Not Absence mode"

// readLoop reads datagrams until the socket is closed. It never blocks on
// anything but the socket and history appends, so a flood or a slow event
// reader cannot stall it.
func (n *Node) readLoop(ctx context.Context) {
	buf := make([]byte, ipmsg.MaxDatagram+1)
	for {
		sz, from, err := n.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, netErrClosed) {
				return
			}
			n.log.Debug("read", "err", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if !n.limit.allow(from.Addr(), time.Now()) {
			n.flooded(from)
			continue
		}
		n.handle(buf[:sz], from)
	}
}

// flooded counts a dropped packet and warns once per thousand.
func (n *Node) flooded(from netip.AddrPort) {
	n.mu.Lock()
	n.stats.Flooded++
	c := n.stats.Flooded
	n.mu.Unlock()
	if c%1000 == 1 {
		n.log.Warn("dropping flood", "from", from, "dropped", c)
		n.bus.publish(notice("warn", NoticeFlood, from.Addr(), n.cfg.Port))
	}
}

// handle processes one datagram.
func (n *Node) handle(b []byte, from netip.AddrPort) {
	p, err := ipmsg.Parse(b)
	if err != nil {
		n.count(func(s *Stats) { s.Malformed++ })
		n.log.Debug("bad packet", "from", from, "err", err)
		return
	}
	if p.Command.IsEntry() {
		n.disc.Handle(p, from)
		return
	}
	n.disc.Touch(from)
	switch p.Command.Mode() {
	case ipmsg.SendMsg:
		n.onMessage(p, from)
	case ipmsg.RecvMsg:
		n.onAck(p, from)
	case ipmsg.ReadMsg:
		n.onRead(p, from)
	case ipmsg.AnsReadMsg:
		n.onAck(p, from)
	case ipmsg.GetInfo:
		n.reply(p, from, ipmsg.SendInfo, "lanchat "+Version)
	case ipmsg.GetAbsenceInfo:
		n.reply(p, from, ipmsg.SendAbsenceInfo, n.absenceText())
	case ipmsg.ReleaseFiles:
		n.onRelease(p, from)
	default:
		n.count(func(s *Stats) { s.Ignored++ }) // FeiQ/iptux extensions, GETPUBKEY, host lists
	}
}

func (n *Node) onAck(p ipmsg.Packet, from netip.AddrPort) {
	no, err := p.NoExtra()
	if err != nil {
		n.count(func(s *Stats) { s.Malformed++ })
		return
	}
	if !n.ack(no, from) {
		n.log.Debug("stray ack", "from", from, "no", no)
	}
}

// sender returns the contact a packet came from, or a stand-in built from
// its header when the sender never announced itself.
func (n *Node) sender(p ipmsg.Packet, from netip.AddrPort) (discovery.Peer, bool) {
	if peer, ok := n.disc.Roster().ByAddr(from); ok {
		return peer, true
	}
	user, _ := ipmsg.DecodeText(p.User, p.Command.Has(ipmsg.UTF8Opt), n.cfg.Legacy)
	host, _ := ipmsg.DecodeText(p.Host, p.Command.Has(ipmsg.UTF8Opt), n.cfg.Legacy)
	return discovery.Peer{Key: discovery.PeerKey(user, host, from.Port()), User: user, Host: host,
		Nick: user, Addr: from, Client: ipmsg.DetectClient(p.Version, nil), Version: string(p.Version)}, false
}

// onMessage acknowledges a SENDMSG, shows it once, and auto-replies when away.
func (n *Node) onMessage(p ipmsg.Packet, from netip.AddrPort) {
	peer, known := n.sender(p, from)
	cmd := p.Command
	if cmd.Has(ipmsg.SendCheckOpt) && !cmd.Has(ipmsg.BroadcastOpt) && !cmd.Has(ipmsg.AutoRetOpt) {
		n.ackMessage(p, from, peer) // repeats are acked again: our first ack may have been lost
	}
	if !n.dedup.firstTime(from, p.No) {
		n.count(func(s *Stats) { s.Duplicates++ })
		return
	}
	if !known && !cmd.Has(ipmsg.NoAddListOpt) {
		n.disc.Introduce(from)
	}
	text, cs := ipmsg.DecodeText(p.Section(0), cmd.Has(ipmsg.UTF8Opt), n.cfg.Legacy)
	if cs == ipmsg.GB18030 || cs == ipmsg.CP932 {
		n.disc.Roster().SetLegacy(peer.Key, cs)
	}
	now := time.Now()
	m := Message{ID: incomingID(now, p.No), Peer: peer.Key, Nick: peer.Nick,
		Dir: Incoming, Text: text, Time: now, Sealed: cmd.Has(ipmsg.SecretOpt),
		AutoRe: cmd.Has(ipmsg.AutoRetOpt), Status: Received, PacketNo: p.No}
	if cmd.Has(ipmsg.FileAttachOpt) {
		m.Files = n.onOffer(p, from, peer, m.ID)
	}
	if m.Sealed {
		n.mu.Lock()
		n.sealed.put(m.ID, sealedRef{to: from, no: p.No, noRaw: string(p.NoRaw), readCheck: cmd.Has(ipmsg.ReadCheckOpt), peer: peer.Key})
		n.mu.Unlock()
	}
	n.count(func(s *Stats) { s.Received++ })
	n.record(m)
	if len(m.Files) > 0 && n.autoAccept(peer) {
		if _, err := n.Accept(m.ID, ""); err != nil {
			n.log.Warn("auto-accept", "err", err)
		}
	}
	if n.isAway() && !cmd.Has(ipmsg.AutoRetOpt) && !cmd.Has(ipmsg.BroadcastOpt) && n.autoReplyDue(peer.Key) {
		n.autoReply(peer)
	}
}

// incomingID is a received message's ID: "i", the arrival time in hex
// nanoseconds, "-" and the sender's packet number.
func incomingID(at time.Time, no uint64) string {
	b := make([]byte, 0, 40)
	b = strconv.AppendInt(append(b, 'i'), at.UnixNano(), 16)
	b = strconv.AppendUint(append(b, '-'), no, 10)
	return string(b)
}

// ackMessage answers RECVMSG with the packet number exactly as received.
func (n *Node) ackMessage(p ipmsg.Packet, from netip.AddrPort, peer discovery.Peer) {
	cs, _ := n.sendCharset(peer)
	var extra [24]byte // a packet number and its NUL
	pkt, _ := n.packet(ipmsg.RecvMsg, cs, append(append(extra[:0], p.NoRaw...), 0))
	n.send(pkt, from)
}

// autoReplyEvery limits auto-replies to one per contact per interval. IP
// Messenger answers every message, which buries a colleague who sends ten
// lines in a row under ten copies of the same away text.
const autoReplyEvery = time.Minute

func (n *Node) autoReplyDue(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if last, ok := n.replied.get(key); ok && time.Since(last) < autoReplyEvery {
		return false
	}
	n.replied.put(key, time.Now())
	return true
}

// autoReply sends the away text; it asks for no ack and is itself never
// answered (AUTORETOPT), which stops two away users from ping-ponging.
func (n *Node) autoReply(peer discovery.Peer) {
	cs, utf8opt := n.sendCharset(peer)
	cmd := ipmsg.SendMsg | ipmsg.AutoRetOpt
	if utf8opt {
		cmd |= ipmsg.UTF8Opt | ipmsg.CapUTF8Opt
	}
	text := n.absenceText()
	pkt, no := n.packet(cmd, cs, append(cs.Encode(text), 0))
	n.send(pkt, peer.Addr)
	m := Message{ID: outgoingID(no), Peer: peer.Key, Nick: peer.Nick, Dir: Outgoing,
		Text: text, Time: time.Now(), AutoRe: true, Status: Sending, PacketNo: no}
	n.record(m)
}

// reply answers an information request with text.
func (n *Node) reply(p ipmsg.Packet, from netip.AddrPort, cmd ipmsg.Command, text string) {
	peer, _ := n.sender(p, from)
	cs, utf8opt := n.sendCharset(peer)
	if utf8opt {
		cmd |= ipmsg.UTF8Opt
	}
	pkt, _ := n.packet(cmd, cs, append(cs.Encode(text), 0))
	n.send(pkt, from)
}

// onRead handles READMSG: a sealed message of ours was opened.
func (n *Node) onRead(p ipmsg.Packet, from netip.AddrPort) {
	no, err := p.NoExtra()
	if err != nil {
		n.count(func(s *Stats) { s.Malformed++ })
		return
	}
	if p.Command.Has(ipmsg.ReadCheckOpt) {
		peer, _ := n.sender(p, from)
		cs, _ := n.sendCharset(peer)
		pkt, _ := n.packet(ipmsg.AnsReadMsg, cs, append(append([]byte(nil), p.NoRaw...), 0))
		n.send(pkt, from)
	}
	n.mu.Lock()
	ref, ok := n.sent.get(no)
	ok = ok && ref.to == from.Addr() // only the recipient can open it
	if ok {
		n.sent.take(no)
	}
	n.mu.Unlock()
	if !ok || !n.dedup.firstTime(from, p.No) {
		return
	}
	n.hist.update(ref.peer, ref.id, Opened, "")
	n.bus.publish(StatusEvent{ID: ref.id, Peer: ref.peer, Status: Opened})
}
