package peer

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// subscriberQueue is how many events a slow subscriber may fall behind
// before events are dropped for it. Dropped events are counted and the
// subscriber is told how many it missed; the history still has every message.
const subscriberQueue = 1024

type subscriber struct {
	ch      chan Event
	dropped int
}

// bus fans events out to subscribers without ever blocking the engine.
type bus struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
	n    atomic.Int32 // len(subs), read without mu
}

func newBus() *bus { return &bus{subs: map[*subscriber]struct{}{}} }

// subscribe returns a channel of events and a function that ends the
// subscription and closes the channel.
func (b *bus) subscribe() (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, subscriberQueue)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.n.Store(int32(len(b.subs)))
	b.mu.Unlock()
	return s.ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[s]; ok {
			delete(b.subs, s)
			b.n.Store(int32(len(b.subs)))
			close(s.ch)
		}
	}
}

// active reports whether anyone subscribes, so that a caller on the message
// path can skip building an event nobody reads.
func (b *bus) active() bool { return b.n.Load() > 0 }

func (b *bus) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.dropped > 0 && s.offer(notice("warn", NoticeDropped, s.dropped)) {
			s.dropped = 0
		}
		if !s.offer(e) {
			s.dropped++
		}
	}
}

func (s *subscriber) offer(e Event) bool {
	select {
	case s.ch <- e:
		return true
	default:
		return false
	}
}

// closeAll ends every subscription, when the node stops.
func (b *bus) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		close(s.ch)
		delete(b.subs, s)
	}
	b.n.Store(0)
}

// notice is a NoticeEvent whose text is format applied to args.
func notice(level, format string, args ...any) NoticeEvent {
	return NoticeEvent{Level: level, Text: fmt.Sprintf(format, args...), Format: format, Args: args}
}
