package peer

import "context"

// A waker is how a goroutine waiting in Send learns that a delivery ended.
// The result itself travels on the outgoing message's channel; the waker
// only wakes the waiter, and it does so through the Go netpoller (an
// eventfd on Linux) rather than by the channel send alone.
//
// Why: the result is sent by the receive loop, and a channel send to a
// parked goroutine makes the runtime start a second thread to run it while
// a processor is idle, which on a small machine costs more than the whole
// round trip's work (measured: p50 85-110 µs with a channel, 62-75 µs with
// the eventfd, against 35 µs for a bare UDP echo; BenchmarkAckedRoundTrip).
// Readiness found by the netpoller is picked up by the receive loop's own
// thread as soon as that loop parks, as for the bare echo. On this kind of
// VM every system call is costly too, so the waiter never reads the
// eventfd: it only waits for the edge each wake makes.
//
// Where the platform has no such file (newWaker returns nil), await waits
// on the channel alone.

// wakerCache is how many idle wakers a node keeps for later sends.
const wakerCache = 16

// getWaker takes an idle waker, or makes one; nil where wakers are not
// available.
func (n *Node) getWaker() *waker {
	select {
	case w := <-n.wakers:
		return w
	default:
		return newWaker()
	}
}

// putWaker keeps w for a later send, or closes it when enough are kept.
func (n *Node) putWaker(w *waker) {
	if w == nil {
		return
	}
	select {
	case n.wakers <- w:
	default:
		w.close()
	}
}

// closeWakers closes the idle wakers once the node stopped. A Send still
// returning puts its own back later; the garbage collector closes that.
func (n *Node) closeWakers() {
	for {
		select {
		case w := <-n.wakers:
			w.close()
		default:
			return
		}
	}
}

// awaitResult waits for a delivery's result on ch, woken by w. A waker
// whose wait ended by ctx is closed: its deadline is spent.
func (n *Node) awaitResult(ctx context.Context, w *waker, ch <-chan Message) (Message, error) {
	if w == nil {
		return awaitChan(ctx, ch)
	}
	return w.await(ctx, ch)
}

// awaitChan waits for the result on ch alone.
func awaitChan(ctx context.Context, ch <-chan Message) (Message, error) {
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}
