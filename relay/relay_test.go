package relay

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
)

// testRelay runs a relay on loopback.
func testRelay(t *testing.T) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := NewServer(ctx, ServerConfig{Dir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, JoinGrace: 2 * time.Second,
		STUNPorts: []int{0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
	return s
}

// testMember is a running client that records what it is given.
type testMember struct {
	*Client
	mu   sync.Mutex
	got  []Envelope
	seen chan struct{}
}

func (m *testMember) received() []Envelope {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Envelope(nil), m.got...)
}

// waitFor waits until cond holds for what the member received.
func (m *testMember) waitFor(t *testing.T, what string, cond func([]Envelope) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond(m.received()) {
		select {
		case <-m.seen:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: received %+v", what, m.received())
		}
	}
}

// newMember starts a client; with an invite code it joins first.
func newMember(t *testing.T, s *Server, nick, code string, relayAddrs []string) *testMember {
	t.Helper()
	dir := t.TempDir()
	key, _, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &testMember{seen: make(chan struct{}, 1)}
	c, err := NewClient(ClientConfig{Key: key, Relay: relayAddrs, Profile: Profile{Key: nick + "@pc", Nick: nick},
		StateFile: dir + "/state", Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		Deliver: func(env Envelope) error {
			m.mu.Lock()
			m.got = append(m.got, env)
			m.mu.Unlock()
			select {
			case m.seen <- struct{}{}:
			default:
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	m.Client = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; c.Close() })
	if code != "" {
		if _, err := c.Join(ctx, code); err != nil {
			t.Fatalf("%s join: %v", nick, err)
		}
	}
	return m
}

func invite(t *testing.T, s *Server) string {
	t.Helper()
	code, err := s.Invite(context.Background(), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func waitConnected(t *testing.T, m *testMember, want bool) State {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := m.State()
		if st.Connected == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay state %+v, want connected=%v", st, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func send(t *testing.T, m *testMember, id, to, group, text string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return m.Send(ctx, id, to, group, MessageBody{Text: text})
}

func TestRelayMessagesAndReceipts(t *testing.T) {
	s := testRelay(t)
	a := newMember(t, s, "alice", invite(t, s), nil)
	b := newMember(t, s, "bob", invite(t, s), nil)
	waitConnected(t, a, true)
	waitConnected(t, b, true)
	bob := b.ID().String()
	for i, text := range []string{"一", "二", "三"} {
		if err := send(t, a, "o"+string(rune('1'+i)), bob, "", text); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	b.waitFor(t, "bob's three messages", func(es []Envelope) bool { return len(es) == 3 })
	for i, env := range b.received() {
		if env.From != a.ID().String() || env.Kind != KindMsg || env.ID != a.ID().String()+"/o"+string(rune('1'+i)) {
			t.Errorf("delivery %d: %+v", i, env)
		}
	}
	a.waitFor(t, "alice's receipts", func(es []Envelope) bool { return len(es) == 3 })
	for _, env := range a.received() {
		if env.Kind != KindReceipt || env.From != bob {
			t.Errorf("receipt %+v", env)
		}
	}
	// On loopback there is no NAT, and the relay's STUN ports say so.
	deadline := time.Now().Add(5 * time.Second)
	for a.State().NAT != "none" {
		if time.Now().After(deadline) {
			t.Fatalf("alice's NAT check: %+v, want none", a.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Members see each other in the directory, with their profiles.
	ms := a.Members()
	if len(ms) != 1 || ms[0].ID != bob || ms[0].Nick != "bob" || ms[0].Key != "bob@pc" || !ms[0].Online {
		t.Errorf("alice's directory: %+v", ms)
	}
}

// TestRelayIsolation: a member never gets another member's messages, and
// cannot post to or learn about a group it is not in.
func TestRelayIsolation(t *testing.T) {
	s := testRelay(t)
	a := newMember(t, s, "alice", invite(t, s), nil)
	b := newMember(t, s, "bob", invite(t, s), nil)
	c := newMember(t, s, "carol", invite(t, s), nil)
	for _, m := range []*testMember{a, b, c} {
		waitConnected(t, m, true)
	}
	ctx := context.Background()
	gs, err := a.Group(ctx, "create", "", "ab", []string{b.ID().String()})
	if err != nil || len(gs) != 1 {
		t.Fatalf("create: %v %+v", gs, err)
	}
	if err := send(t, a, "o1", b.ID().String(), "", "for bob only"); err != nil {
		t.Fatal(err)
	}
	if err := send(t, a, "o2", "", gs[0].ID, "for the group"); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "bob's two", func(es []Envelope) bool { return len(es) == 2 })
	err = send(t, c, "o1", "", gs[0].ID, "let me in")
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != CodeNoGroup {
		t.Errorf("carol posting to a group she is not in: %v, want %s", err, CodeNoGroup)
	}
	if _, err := c.Group(ctx, "add", gs[0].ID, "", []string{c.ID().String()}); err == nil {
		t.Error("carol added herself to a group she is not in")
	}
	if got := c.Groups(); len(got) != 0 {
		t.Errorf("carol knows of groups %+v", got)
	}
	time.Sleep(200 * time.Millisecond)
	if got := c.received(); len(got) != 0 {
		t.Errorf("carol received %+v", got)
	}
	err = send(t, a, "o3", "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK", "", "to a stranger")
	if !errors.As(err, &re) || re.Code != CodeUnknownPeer {
		t.Errorf("send to a non-member: %v, want %s", err, CodeUnknownPeer)
	}
}

// TestRelayRefusals: a peer without membership is refused (and told why),
// a bad invite is refused, and a removed member is disconnected at once.
func TestRelayRefusals(t *testing.T) {
	s := testRelay(t)
	stranger := newMember(t, s, "mallory", "", s.Addrs())
	waitRefused(t, stranger)
	if _, err := stranger.Join(context.Background(), Invite{Secret: "guess", Addrs: s.Addrs()}.Code()); err == nil {
		t.Error("joined with a guessed secret")
	}

	b := newMember(t, s, "bob", invite(t, s), nil)
	waitConnected(t, b, true)
	if err := s.Remove(context.Background(), b.ID().String()); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, b)
}

// waitRefused waits until m is disconnected because it is not a member.
func waitRefused(t *testing.T, m *testMember) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := m.State()
		if !st.Connected && strings.Contains(st.Error, "not a member") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %+v, want refused as not a member", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCircuitReservationsMembersOnly: the circuit relay serves members,
// without the default per-circuit limits (2 min, 128 KiB) that would cut
// file transfers, and refuses everyone else.
func TestCircuitReservationsMembersOnly(t *testing.T) {
	s := testRelay(t)
	info, err := AddrInfo(s.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newMember(t, s, "alice", invite(t, s), nil)
	waitConnected(t, a, true)
	r, err := circuit.Reserve(ctx, a.host, info)
	if err != nil {
		t.Fatalf("member's reservation: %v", err)
	}
	if r.LimitDuration != 0 || r.LimitData != 0 {
		t.Errorf("member's circuits are limited to %v / %d bytes, want no limit", r.LimitDuration, r.LimitData)
	}
	stranger := newMember(t, s, "mallory", "", nil)
	if _, err := circuit.Reserve(ctx, stranger.host, info); err == nil {
		t.Error("a stranger got a circuit reservation")
	}
}

// TestRelayDirectoryOnReconnect: a member reconnecting with the current
// directory gets only who is online, and still sees everyone right; who
// comes and goes meanwhile reaches it as presence.
func TestRelayDirectoryOnReconnect(t *testing.T) {
	s := testRelay(t)
	a := newMember(t, s, "alice", invite(t, s), nil)
	b := newMember(t, s, "bob", invite(t, s), nil)
	waitConnected(t, a, true)
	waitConnected(t, b, true)
	online := func(m *testMember, nick string) bool {
		for _, x := range m.Members() {
			if x.Nick == nick {
				return x.Online
			}
		}
		return false
	}
	waitUntil(t, "alice sees bob online", func() bool { return online(a, "bob") })

	ctx := context.Background()
	d, err := s.directory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := d.version
	for _, c := range []struct {
		have        string
		wantMembers bool
	}{{have, false}, {"", true}, {"stale", true}} {
		f, err := s.welcome(ctx, &session{}, a.ID(), c.have)
		if err != nil {
			t.Fatal(err)
		}
		if f.DirV != have || (f.Members != nil) != c.wantMembers || len(f.Online) != 1 || f.Online[0] != 3 {
			t.Errorf("welcome for a member with directory %q: version %q, %d members, online %v; want members %v",
				c.have, f.DirV, len(f.Members), f.Online, c.wantMembers)
		}
	}

	// carol joins while alice is away; alice comes back with her old
	// directory and learns of carol all the same.
	s.host.Network().ClosePeer(a.ID())
	dirv := func() (string, bool) {
		a.Client.mu.Lock()
		defer a.Client.mu.Unlock()
		return a.dirv, a.sess != nil
	}
	waitUntil(t, "alice reconnected with the current directory", func() bool {
		v, connected := dirv()
		return connected && v == have && online(b, "alice")
	})
	// Now current, she reconnects and is sent no profiles: she keeps hers.
	bob := b.ID().String()
	a.Client.mu.Lock()
	a.members = map[string]Member{} // what she sees next comes from this welcome
	a.Client.mu.Unlock()
	s.host.Network().ClosePeer(a.ID())
	waitUntil(t, "alice sees bob online from her kept directory", func() bool {
		v, connected := dirv()
		return connected && v == have && online(a, "bob")
	})
	if ms := a.Members(); len(ms) != 1 || ms[0].ID != bob || ms[0].Key != "bob@pc" {
		t.Errorf("alice's directory after a reconnect: %+v", ms)
	}
	cm := newMember(t, s, "carol", invite(t, s), nil)
	waitConnected(t, cm, true)
	waitUntil(t, "alice sees carol and bob online", func() bool { return online(a, "carol") && online(a, "bob") })
	s.host.Network().ClosePeer(a.ID())
	waitUntil(t, "alice sees carol after reconnecting", func() bool {
		v, connected := dirv()
		return connected && v != have && online(a, "carol") && online(a, "bob")
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
