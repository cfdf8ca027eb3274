package relay

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestPunchSchedule: after libp2p's own attempt, hole punching is tried
// again punchFirst later, then twice as long after each failure, up to
// punchMax; TryDirect moves the next attempt forward unless one began
// within punchGap.
func TestPunchSchedule(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	st := newPunchPeer(now)
	if got := st.next.Sub(now); got != punchFirst {
		t.Fatalf("first retry %v after the circuit, want %v", got, punchFirst)
	}
	for _, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second,
		80 * time.Second, 160 * time.Second, punchMax, punchMax} {
		now = st.next
		st.failed(now)
		if got := st.next.Sub(now); got != want {
			t.Fatalf("after a failure the next try is %v later, want %v", got, want)
		}
	}

	const id = peer.ID("member")
	start := now
	p := &puncher{kick: make(chan struct{}, 1), peers: map[peer.ID]*punchPeer{id: newPunchPeer(start)}}
	for _, c := range []struct {
		name    string
		at      time.Duration // after the circuit came in
		running bool
		moved   bool
	}{
		{"just after libp2p's attempt", punchGap - time.Millisecond, false, false},
		{"a while after", punchGap, false, true},
		{"while one runs", time.Minute, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := newPunchPeer(start)
			st.running = c.running
			p.peers[id] = st
			planned := st.next
			at := start.Add(c.at)
			p.soon(id, at)
			if moved := st.next.Equal(at); moved != c.moved || !moved && !st.next.Equal(planned) {
				t.Errorf("next try at %v after the circuit, want moved %v", st.next.Sub(start), c.moved)
			}
			select {
			case <-p.kick:
			default:
				t.Error("the schedule was not woken")
			}
		})
	}
	p.soon("someone else", now) // no circuit came in from them: nothing to do
}
