package peer

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Retransmission timing. Legacy clients get no faster retry than 250 ms: we
// cannot know how FeiQ treats a repeat, and IP Messenger itself waits 1 s.
// lanchat peers drop repeats for sure, so they may be retried sooner.
const (
	maxRTO        = time.Second
	minRTOLegacy  = 250 * time.Millisecond
	minRTOLanchat = 20 * time.Millisecond
	sendQueueLen  = 1024 // messages waiting per contact before Send refuses
)

// ErrQueueFull means too many messages are waiting for one contact.
var ErrQueueFull = errors.New("send queue full")

// ErrStopped means the node stopped before the message was delivered.
var ErrStopped = errors.New("node stopped")

// ErrNotDelivered means the peer did not acknowledge in time.
var ErrNotDelivered = errors.New("not acknowledged")

// Delivery runs without goroutines of its own. A contact's messages go one
// at a time, in order: the first is sent by whoever queues it (Send's
// caller), each later one by whoever ends the one before (the receive loop
// on its ack, or the resend timer when it fails). Resends run from one
// timer for the whole node, armed for the earliest flight that is due, and
// Run fails whatever is left when the node stops. So a message's round
// trip is a send and a wake-up of the receive loop, as for any UDP request
// and answer, rather than passing through a sender goroutine twice. State
// lives under n.mu; datagrams are written after it is released.
//
// One timer rather than one per flight: arming a timer while no thread
// waits in the netpoller makes the Go runtime start one, which in a stream
// of messages cost a thread wake-up each. Messages in a row are due in the
// order they were sent, so the armed deadline is rarely moved.

// outgoing is one datagram to deliver reliably, and where to say the result.
type outgoing struct {
	msg    Message
	pkt    []byte
	to     netip.AddrPort
	legacy bool
	result chan Message // buffered 1
	wake   *waker       // woken once result is sent; nil for none
}

// sendQueue is one contact's messages: the one in flight and those behind it.
type sendQueue struct {
	head    *flight
	waiting []*outgoing // in order; at most sendQueueLen
}

// flight is a datagram sent and waiting for its acknowledgement, resent
// with the same bytes until it comes, the delivery fails, or the node
// stops. Its fields are guarded by n.mu.
type flight struct {
	o       *outgoing
	key     string     // the contact, whose round trip times the resends
	q       *sendQueue // the queue it heads; nil for a lone flight (Open)
	done    chan error // a lone flight's result; buffered 1
	start   time.Time
	sentAt  time.Time // of the latest copy
	rto     time.Duration
	due     time.Time // when the next copy goes, or the delivery fails
	attempt int       // copies sent before the latest
}

// queue puts o behind the contact's other messages, sending it at once
// when there are none. Its delivery lives as long as the node, not the
// caller's request.
func (n *Node) queue(key string, o *outgoing) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return ErrStopped
	}
	q, ok := n.queues[key]
	if !ok {
		q = &sendQueue{}
		n.queues[key] = q
	}
	if len(q.waiting) == sendQueueLen {
		n.mu.Unlock()
		return fmt.Errorf("%w for %s: %d messages are waiting", ErrQueueFull, key, sendQueueLen)
	}
	// Record under n.mu, before the first copy goes: the ack must not
	// report o before history has it.
	n.record(o.msg)
	var f *flight
	if q.head == nil {
		f = n.launchLocked(key, q, o, nil)
	} else {
		q.waiting = append(q.waiting, o)
	}
	n.mu.Unlock()
	n.transmit(f)
	return nil
}

// record stores a new outgoing message in history and tells subscribers.
func (n *Node) record(m Message) {
	n.hist.add(m)
	if n.bus.active() {
		n.bus.publish(MessageEvent{Message: m})
	}
}

// deliver sends o on its own, outside any queue, and waits for the result.
func (n *Node) deliver(key string, o *outgoing) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return ErrStopped
	}
	done := make(chan error, 1)
	f := n.launchLocked(key, nil, o, done)
	n.mu.Unlock()
	n.transmit(f)
	return <-done
}

// launchLocked starts the flight of o: it awaits its ack from now, and is
// resent when due. The caller sends the first copy (transmit) once it has
// released n.mu.
func (n *Node) launchLocked(key string, q *sendQueue, o *outgoing, done chan error) *flight {
	now := time.Now()
	f := &flight{o: o, key: key, q: q, done: done, start: now, rto: n.rto(key, o.legacy)}
	f.due = now.Add(f.rto)
	n.pending[o.msg.PacketNo] = f
	if o.msg.Sealed {
		n.sent.put(o.msg.PacketNo, sentRef{peer: key, id: o.msg.ID, to: o.to.Addr()})
	}
	if q != nil {
		q.head = f
	}
	n.armLocked(f.due)
	n.copyLocked(f)
	return f
}

// armLocked has the resend timer fire by due at the latest.
func (n *Node) armLocked(due time.Time) {
	if !n.resendAt.IsZero() && !due.Before(n.resendAt) {
		return
	}
	n.resendAt = due
	if n.resend == nil {
		n.resend = time.AfterFunc(time.Until(due), n.resendDue)
		return
	}
	n.resend.Reset(time.Until(due))
}

// copyLocked counts a copy of f about to be sent.
func (n *Node) copyLocked(f *flight) {
	f.sentAt = time.Now()
	n.stats.Sent++
	if f.attempt > 0 {
		n.stats.Retransmits++
	}
}

// transmit sends f's datagram; nil does nothing.
func (n *Node) transmit(f *flight) {
	if f == nil {
		return
	}
	if err := n.send(f.o.pkt, f.o.to); err != nil {
		n.log.Debug("send", "to", f.o.to, "err", err)
	}
}

// ack completes a pending send when a RECVMSG (or ANSREADMSG) for it comes
// from the address it was sent to; acks from anyone else are spoofed or
// stray and ignored.
func (n *Node) ack(no uint64, from netip.AddrPort) bool {
	n.mu.Lock()
	f, ok := n.pending[no]
	if !ok || f.o.to != from {
		n.mu.Unlock()
		return false
	}
	if f.attempt == 0 {
		n.sampleRTT(f.key, time.Since(f.sentAt))
	}
	next := n.landLocked(f)
	n.mu.Unlock()
	n.complete(f, nil)
	n.transmit(next)
	return true
}

// resendDue runs when the resend timer fires. Each flight that is due gets
// another copy, its timeout doubled up to maxRTO, or fails once both the
// deadline has passed and Retries resends were made; then the timer is
// armed for the next flight due.
func (n *Node) resendDue() {
	type failure struct {
		f, next *flight
		err     error
	}
	var copies []*flight
	var failed []failure
	n.mu.Lock()
	n.resendAt = time.Time{}
	if n.stopped { // Run fails what is left
		n.mu.Unlock()
		return
	}
	now := time.Now()
	for _, f := range n.pending {
		if f.due.After(now) {
			continue
		}
		if f.attempt >= n.cfg.Retries && now.Sub(f.start) >= n.cfg.DeliveryTimeout {
			err := fmt.Errorf("%w after %d tries in %v", ErrNotDelivered, f.attempt+1, now.Sub(f.start).Round(time.Millisecond))
			// The next message of f's queue joins n.pending; due later, it
			// is left alone if this loop meets it.
			failed = append(failed, failure{f, n.landLocked(f), err})
			continue
		}
		f.attempt++
		f.rto = min(2*f.rto, maxRTO)
		f.due = now.Add(f.rto)
		n.copyLocked(f)
		copies = append(copies, f)
	}
	for _, f := range n.pending {
		n.armLocked(f.due)
	}
	n.wg.Add(1) // Run waits for the results to be recorded
	n.mu.Unlock()
	defer n.wg.Done()
	for _, f := range copies {
		n.transmit(f)
	}
	for _, x := range failed {
		n.complete(x.f, x.err)
		n.transmit(x.next)
	}
}

// landLocked ends f's flight and launches the next message of its queue,
// which the caller then transmits.
func (n *Node) landLocked(f *flight) *flight {
	delete(n.pending, f.o.msg.PacketNo)
	q := f.q
	if q == nil {
		return nil
	}
	q.head = nil
	if len(q.waiting) == 0 {
		delete(n.queues, f.key)
		return nil
	}
	o := q.waiting[0]
	q.waiting[0] = nil
	q.waiting = q.waiting[1:]
	return n.launchLocked(f.key, q, o, nil)
}

// complete reports the end of f's delivery: err is nil when it was acked.
func (n *Node) complete(f *flight, err error) {
	if f.q == nil {
		f.done <- err
		return
	}
	n.finish(f.o, err)
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
	if n.bus.active() {
		n.bus.publish(StatusEvent{ID: m.ID, Peer: m.Peer, Status: m.Status, Error: m.Error})
	}
	o.result <- m
	o.wake.wake()
}

// failAll fails every flight and every queued message with ErrStopped,
// each queue in order, once Run has set n.stopped.
func (n *Node) failAll() {
	n.mu.Lock()
	var lone []*flight
	var queued []*outgoing
	if n.resend != nil {
		n.resend.Stop()
	}
	for _, f := range n.pending {
		if f.q == nil {
			lone = append(lone, f)
		}
	}
	for _, q := range n.queues {
		if q.head != nil {
			queued = append(queued, q.head.o)
		}
		queued = append(queued, q.waiting...)
	}
	clear(n.pending)
	clear(n.queues)
	n.mu.Unlock()
	for _, f := range lone {
		f.done <- ErrStopped
	}
	for _, o := range queued {
		n.finish(o, ErrStopped)
	}
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

// rto is the first resend timeout for key: the smoothed round trip plus
// four variations, within the floor for the kind of client and maxRTO.
// n.mu is held.
func (n *Node) rto(key string, legacy bool) time.Duration {
	floor := minRTOLanchat
	if legacy {
		floor = minRTOLegacy
	}
	r, ok := n.rtt[key]
	if !ok {
		return maxRTO
	}
	return min(max(r.srtt+4*r.rttvar, floor), maxRTO)
}

// sampleRTT adds a round trip to key's estimate; n.mu is held.
func (n *Node) sampleRTT(key string, d time.Duration) {
	r, ok := n.rtt[key]
	if !ok {
		r = &rttEstimate{}
		n.rtt[key] = r
	}
	r.sample(d)
}
