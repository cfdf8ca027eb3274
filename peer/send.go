package peer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/lanchat/lanchat/discovery"
	"github.com/lanchat/lanchat/ipmsg"
)

// Retransmission timing. Legacy clients get no faster retry than 250 ms: we
// cannot know how FeiQ treats a repeat, and IP Messenger itself waits 1 s.
// lanchat peers drop repeats for sure, so they may be retried sooner.
const (
	maxRTO           = time.Second
	minRTOLegacy     = 250 * time.Millisecond
	minRTOLanchat    = 20 * time.Millisecond
	sendQueueLen     = 1024 // messages waiting per contact before Send refuses
	queueIdleTimeout = 30 * time.Second
)

// ErrQueueFull means too many messages are waiting for one contact.
var ErrQueueFull = errors.New("send queue full")

// ErrStopped means the node stopped before the message was delivered.
var ErrStopped = errors.New("node stopped")

// ErrNotDelivered means the peer did not acknowledge in time.
var ErrNotDelivered = errors.New("not acknowledged")

// SendOptions change how a message is sent.
type SendOptions struct {
	Seal  bool     // sealed: the peer must open it; we learn when they do
	Files []string // files and folders to offer; the peer downloads them when it accepts
}

type pendingSend struct {
	to   netip.AddrPort
	acks chan struct{} // closed by the receive loop on a matching ack
}

// sentRef is a sealed message of ours awaiting READMSG from where it went.
type sentRef struct {
	peer, id string
	to       netip.Addr
}

type sealedRef struct {
	to        netip.AddrPort
	no        uint64
	noRaw     string // no as the sender wrote it; READMSG echoes it
	readCheck bool
	peer      string
}

// outgoing is one datagram to deliver reliably, and where to say the result.
type outgoing struct {
	msg    Message
	pkt    []byte
	to     netip.AddrPort
	legacy bool
	result chan Message // buffered 1
}

type sendQueue struct {
	ch chan *outgoing
}

// rttEstimate is a smoothed round trip with its variation (RFC 6298).
type rttEstimate struct{ srtt, rttvar time.Duration }

func (r *rttEstimate) sample(d time.Duration) {
	if r.srtt == 0 {
		r.srtt, r.rttvar = d, d/2
		return
	}
	diff := r.srtt - d
	if diff < 0 {
		diff = -diff
	}
	r.rttvar = (3*r.rttvar + diff) / 4
	r.srtt = (7*r.srtt + d) / 8
}

// Send sends text to each contact and waits until every copy is delivered
// or failed. Long text is split into parts that each fit the peer's buffer;
// parts go in order. The returned messages carry their final status; err is
// set only when a contact cannot be resolved or queued.
func (n *Node) Send(ctx context.Context, to []string, text string, opt SendOptions) ([]Message, error) {
	var waits []chan Message
	if len(opt.Files) > 0 {
		abs, err := absPaths(opt.Files)
		if err != nil {
			return nil, err
		}
		opt.Files = abs
	}
	for _, spec := range to {
		p, err := n.resolve(spec)
		if errors.Is(err, ErrUnknownPeer) { // not on the LAN: perhaps through the relay
			t, ok, rerr := n.resolveRelay(spec)
			if rerr != nil {
				return nil, rerr
			}
			if ok {
				w, err := n.sendRelay(ctx, t, text, opt)
				if err != nil {
					return nil, err
				}
				waits = append(waits, w)
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		ws, err := n.enqueue(p, text, opt, len(to) > 1)
		if err != nil {
			return nil, err
		}
		waits = append(waits, ws...)
	}
	out := make([]Message, 0, len(waits))
	for _, w := range waits {
		select {
		case m := <-w:
			out = append(out, m)
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	return out, nil
}

// enqueue builds the datagrams for one contact and queues them.
func (n *Node) enqueue(p discovery.Peer, text string, opt SendOptions, multi bool) ([]chan Message, error) {
	cs, utf8opt := n.sendCharset(p)
	cmd := ipmsg.SendMsg | ipmsg.SendCheckOpt
	if utf8opt {
		cmd |= ipmsg.UTF8Opt | ipmsg.CapUTF8Opt
	}
	if opt.Seal {
		cmd |= ipmsg.SecretExOpt
	}
	if multi {
		cmd |= ipmsg.MulticastOpt
	}
	room := p.Client.MaxSend() - n.headerRoom(cs)
	parts := splitText(text, cs, room)
	var waits []chan Message
	for i, part := range parts {
		no := n.nos.Next()
		extra := append(cs.Encode(part), 0)
		var files []File
		if i == 0 && len(opt.Files) > 0 { // the offer rides on the first part
			list, pub, err := n.share(no, p, cs, opt.Files)
			if err != nil {
				return waits, err
			}
			if len(extra)+len(list) > room {
				n.files.srv.Cancel(no)
				return waits, fmt.Errorf("the list of %d files is too long for one message to %s: send their folder instead", len(opt.Files), p.Nick)
			}
			extra, files = append(extra, list...), pub
		}
		c := cmd
		if files != nil {
			c |= ipmsg.FileAttachOpt
		}
		pkt := n.packetNo(no, c, cs, extra)
		m := Message{ID: "o" + strconv.FormatUint(no, 10), Peer: p.Key, Nick: p.Nick, Dir: Outgoing,
			Text: part, Time: time.Now(), Sealed: opt.Seal, Status: Sending, PacketNo: no, Files: files}
		if len(parts) > 1 {
			m.Part, m.Parts = i+1, len(parts)
		}
		o := &outgoing{msg: m, pkt: pkt, to: p.Addr, legacy: p.Client != ipmsg.ClientLanchat,
			result: make(chan Message, 1)}
		if err := n.queue(p.Key, o); err != nil {
			if files != nil {
				n.files.srv.Cancel(no)
			}
			return waits, err
		}
		waits = append(waits, o.result)
	}
	return waits, nil
}

// headerRoom is the space the header and the text's NUL take.
func (n *Node) headerRoom(cs ipmsg.Charset) int {
	return len(ipmsg.Version) + 20 + len(cs.Encode(n.cfg.User)) + len(cs.Encode(n.cfg.Host)) + 10 + 6 + 1
}

// splitText cuts text into parts whose encoding fits limit bytes, at a
// line break in the second half of a part when there is one, and never
// inside a character.
func splitText(text string, cs ipmsg.Charset, limit int) []string {
	var parts []string
	start, size, lastNL := 0, 0, -1
	var buf [8]byte
	for i, r := range text {
		w := 1
		if r >= utf8.RuneSelf {
			w = len(cs.AppendEncode(buf[:0], string(r)))
		}
		if size+w > limit && i > start {
			cut := i
			if lastNL >= start+(i-start)/2 {
				cut = lastNL + 1
			}
			parts = append(parts, text[start:cut])
			start, size, lastNL = cut, len(cs.Encode(text[cut:i])), -1
		}
		size += w
		if r == '\n' {
			lastNL = i
		}
	}
	return append(parts, text[start:])
}

// queue hands o to the contact's sender goroutine, starting it if needed.
// The goroutine lives as long as the node, not the caller's request.
func (n *Node) queue(key string, o *outgoing) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return ErrStopped
	}
	q, ok := n.queues[key]
	if !ok {
		q = &sendQueue{ch: make(chan *outgoing, sendQueueLen)}
		n.queues[key] = q
		n.wg.Add(1)
		go n.runQueue(key, q)
	}
	// Record, then hand over, both under n.mu: the sender goroutine must
	// not report o before history has it, and must not quit (stop, idle)
	// between our look-up and the hand-over. Only queue sends on q.ch,
	// under n.mu, so the room checked here is still there.
	defer n.mu.Unlock()
	if len(q.ch) == cap(q.ch) {
		return fmt.Errorf("%w for %s: %d messages are waiting", ErrQueueFull, key, sendQueueLen)
	}
	n.record(o.msg)
	q.ch <- o
	return nil
}

// record stores a new outgoing message in history and tells subscribers.
func (n *Node) record(m Message) {
	n.hist.add(m)
	n.bus.publish(MessageEvent{Message: m})
}

// runQueue delivers one contact's messages one at a time, in order, and
// ends after being idle for a while.
func (n *Node) runQueue(key string, q *sendQueue) {
	defer n.wg.Done()
	idle := time.NewTimer(queueIdleTimeout)
	defer idle.Stop()
	for {
		select {
		case o := <-q.ch:
			n.finish(o, n.deliver(key, o))
			idle.Reset(queueIdleTimeout)
		case <-idle.C:
			n.mu.Lock()
			if len(q.ch) == 0 {
				delete(n.queues, key)
				n.mu.Unlock()
				return
			}
			n.mu.Unlock()
			idle.Reset(queueIdleTimeout)
		case <-n.quit:
			n.failQueued(q, ErrStopped)
			return
		}
	}
}

func (n *Node) failQueued(q *sendQueue, err error) {
	for {
		select {
		case o := <-q.ch:
			n.finish(o, err)
		default:
			return
		}
	}
}

// finish records the result of one delivery.
func (n *Node) finish(o *outgoing, err error) {
	m := o.msg
	m.Status = Delivered
	if err != nil {
		m.Status, m.Error = Failed, err.Error()
		n.count(func(s *Stats) { s.Failed++ })
	} else {
		n.count(func(s *Stats) { s.Acked++ })
	}
	if err != nil && len(m.Files) > 0 {
		n.files.srv.Cancel(m.PacketNo) // the peer never heard of the offer
	}
	n.hist.update(m.Peer, m.ID, m.Status, m.Error)
	n.bus.publish(StatusEvent{ID: m.ID, Peer: m.Peer, Status: m.Status, Error: m.Error})
	o.result <- m
}

// deliver sends o's datagram until acknowledged: resends use the same
// bytes (and so the same packet number), the timeout starts from the
// peer's measured round trip and doubles up to maxRTO, and delivery fails
// once both the deadline has passed and Retries resends were made.
func (n *Node) deliver(key string, o *outgoing) error {
	ps := &pendingSend{to: o.to, acks: make(chan struct{})}
	n.mu.Lock()
	n.pending[o.msg.PacketNo] = ps
	if o.msg.Sealed {
		n.sent[o.msg.PacketNo] = sentRef{peer: key, id: o.msg.ID, to: o.to.Addr()}
	}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.pending, o.msg.PacketNo)
		n.mu.Unlock()
	}()
	start := time.Now()
	rto := n.rto(key, o.legacy)
	timer := time.NewTimer(rto)
	defer timer.Stop()
	for attempt := 0; ; attempt++ {
		sentAt := time.Now()
		if err := n.send(o.pkt, o.to); err != nil {
			n.log.Debug("send", "to", o.to, "err", err)
		}
		n.count(func(s *Stats) {
			s.Sent++
			if attempt > 0 {
				s.Retransmits++
			}
		})
		select {
		case <-ps.acks:
			if attempt == 0 {
				n.sampleRTT(key, time.Since(sentAt))
			}
			return nil
		case <-timer.C:
		case <-n.quit:
			return ErrStopped
		}
		if attempt >= n.cfg.Retries && time.Since(start) >= n.cfg.DeliveryTimeout {
			return fmt.Errorf("%w after %d tries in %v", ErrNotDelivered, attempt+1, time.Since(start).Round(time.Millisecond))
		}
		rto = min(2*rto, maxRTO)
		timer.Reset(rto)
	}
}

func (n *Node) rto(key string, legacy bool) time.Duration {
	floor := minRTOLanchat
	if legacy {
		floor = minRTOLegacy
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	r, ok := n.rtt[key]
	if !ok {
		return maxRTO
	}
	return min(max(r.srtt+4*r.rttvar, floor), maxRTO)
}

func (n *Node) sampleRTT(key string, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r, ok := n.rtt[key]
	if !ok {
		r = &rttEstimate{}
		n.rtt[key] = r
	}
	r.sample(d)
}

// ack completes a pending send when a RECVMSG (or ANSREADMSG) for it comes
// from the address it was sent to; acks from anyone else are spoofed or
// stray and ignored.
func (n *Node) ack(no uint64, from netip.AddrPort) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	ps, ok := n.pending[no]
	if !ok || ps.to != from {
		return false
	}
	delete(n.pending, no)
	close(ps.acks)
	return true
}
