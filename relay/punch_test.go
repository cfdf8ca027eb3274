package relay

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
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

// TestPunchFilter: which addresses hole punching offers and dials, by what
// the NAT check found here.
func TestPunchFilter(t *testing.T) {
	ours := addrs(t, "/ip4/11.0.0.1/udp/4001/quic-v1", "/ip4/11.0.0.1/tcp/4001")
	tcp := ours[1:]
	for _, c := range []struct {
		nat, tcp      string
		local, remote []ma.Multiaddr
		mapped        []ma.Multiaddr
	}{
		{"", "", ours, ours, nil},
		{"endpoint-independent", "11.0.0.1:4002", ours, ours, addrs(t, "/ip4/11.0.0.1/tcp/4002")},
		{"symmetric", "11.0.0.1:4002", nil, ours, addrs(t, "/ip4/11.0.0.1/tcp/4002")},
		{"blocked", "[2001:db8::1]:4002", tcp, tcp, addrs(t, "/ip6/2001:db8::1/tcp/4002")},
	} {
		cl := &Client{state: State{NAT: c.nat, PublicTCP: c.tcp}}
		f := punchFilter{cl}
		if got := f.FilterLocal("", ours); !slices.EqualFunc(got, c.local, ma.Multiaddr.Equal) {
			t.Errorf("NAT %q: offers %v, want %v", c.nat, got, c.local)
		}
		if got := f.FilterRemote("", ours); !slices.EqualFunc(got, c.remote, ma.Multiaddr.Equal) {
			t.Errorf("NAT %q: dials %v, want %v", c.nat, got, c.remote)
		}
		if got := cl.mappedTCP(); !slices.EqualFunc(got, c.mapped, ma.Multiaddr.Equal) {
			t.Errorf("PublicTCP %q: mapped %v, want %v", c.tcp, got, c.mapped)
		}
	}
	if !ours[0].Equal(ma.StringCast("/ip4/11.0.0.1/udp/4001/quic-v1")) {
		t.Fatalf("the filter changed its argument: %v", ours)
	}
}

func addrs(t *testing.T, ss ...string) []ma.Multiaddr {
	t.Helper()
	out := make([]ma.Multiaddr, len(ss))
	for i, s := range ss {
		out[i] = ma.StringCast(s)
	}
	return out
}
