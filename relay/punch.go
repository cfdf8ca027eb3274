package relay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/lanchat/lanchat/relay/natcheck"
)

// Hole punching (DCUtR) and trying it again.
//
// libp2p's hole punching service punches once per relayed connection, when
// it comes in (and not at all if it comes in before this member knows a
// public address of its own). A member whose first punch failed, say
// through a NAT or firewall hiccup, would stay on the circuit for as long
// as it lasts. So the client runs the service itself, instead of
// libp2p.EnableHolePunching, and asks it again: while a member is reached
// only through a circuit it opened to us (DCUtR is started by the side the
// circuit came in to), punchFirst after the circuit came in, then after
// each failure twice as long as before, up to punchMax. A new circuit
// starts the schedule afresh. TryDirect asks for an attempt at once, when a
// transfer is about to run over the circuit.
const (
	punchFirst = 5 * time.Second
	punchMax   = 5 * time.Minute
	// punchGap is how recent an attempt makes TryDirect do nothing.
	punchGap = 3 * time.Second
)

// puncher is the hole punching service and the retry schedule of the
// members reached only through a circuit that came in.
type puncher struct {
	host host.Host
	svc  *holepunch.Service
	obs  *observedaddrs.Manager
	log  *slog.Logger
	can  func() bool // whether this member's NAT lets punching work
	kick chan struct{}

	mu       sync.Mutex
	peers    map[peer.ID]*punchPeer
	attempts sync.WaitGroup // DirectConnect calls; they end when the host closes
}

// punchPeer is one member's schedule.
type punchPeer struct {
	next    time.Time     // when to try next
	wait    time.Duration // how long next is after the last failure
	last    time.Time     // when the last attempt began, libp2p's first included
	running bool          // one of ours is
	tries   int           // ours so far
}

// newPuncher starts the hole punching service on h. can reports whether
// this member's own NAT lets punching work; mapped lists public addresses
// of ours found otherwise than by libp2p (the TCP mapping of natcheck's
// ProbeTCP); filter is the service's address filter.
func newPuncher(h host.Host, log *slog.Logger, can func() bool, mapped func() []ma.Multiaddr, filter holepunch.AddrFilter) (*puncher, error) {
	bh, ok := h.(interface {
		IDService() identify.IDService
		AllAddrs() []ma.Multiaddr
	})
	if !ok {
		return nil, errors.New("hole punching: the libp2p host has no identify service")
	}
	// The addresses to punch from are what libp2p's own service would use
	// (the host's HolePunchAddrs, which is not exported): the host's
	// addresses and every address a peer observed us at, even a single
	// peer, public ones only. Addrs does not do: it lists an observed
	// address only once four peers saw it, and a member sees its relay
	// first. So a second observed-address manager keeps count for us.
	// A member connected to its relay over QUIC is observed on UDP only:
	// its TCP mapping comes from the relay's STUN over TCP (mapped).
	obs, err := observedaddrs.NewManager(h.EventBus(), h.Network())
	if err != nil {
		return nil, err
	}
	obs.Start(h.Network())
	addrs := func() []ma.Multiaddr {
		all := ma.Unique(slices.Concat(bh.AllAddrs(), obs.Addrs(1), mapped()))
		return slices.DeleteFunc(all, func(a ma.Multiaddr) bool { return !manet.IsPublicAddr(a) })
	}
	svc, err := holepunch.NewService(h, bh.IDService(), addrs, holepunch.WithAddrFilter(filter))
	if err != nil {
		obs.Close()
		return nil, err
	}
	return &puncher{host: h, svc: svc, obs: obs, log: log, can: can, kick: make(chan struct{}, 1),
		peers: map[peer.ID]*punchPeer{}}, nil
}

// close stops the service. Call it after the host closed and run returned:
// attempts still running then end at once.
func (p *puncher) close() {
	// An attempt waits inside DirectConnect until the service has a public
	// address, which it gets only while open: wait for them first.
	p.attempts.Wait()
	p.svc.Close()
	p.obs.Close()
}

func (p *puncher) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run keeps the schedule until ctx ends.
func (p *puncher) run(ctx context.Context) {
	t := time.NewTimer(punchMax)
	defer t.Stop()
	for {
		t.Reset(p.step(time.Now()))
		select {
		case <-p.kick:
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// step brings the schedule up to date with the connections, starts the
// attempts that are due, and returns how long until the next one is.
func (p *puncher) step(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.peers {
		if !p.relayedIn(id) {
			delete(p.peers, id) // direct now, or the circuit is gone
		}
	}
	for _, conn := range p.host.Network().Conns() {
		id := conn.RemotePeer()
		if p.peers[id] == nil && p.relayedIn(id) {
			p.peers[id] = newPunchPeer(now)
		}
	}
	until := punchMax
	for id, st := range p.peers {
		if !st.running && !now.Before(st.next) {
			p.due(id, st, now)
		}
		if !st.running {
			until = min(until, st.next.Sub(now))
		}
	}
	return until
}

// due starts an attempt, or postpones it when it cannot work; p.mu is held.
func (p *puncher) due(id peer.ID, st *punchPeer, now time.Time) {
	switch {
	case !p.can():
		st.failed(now) // our NAT is symmetric: the State may change
		return
	case !p.ready():
		st.failed(now) // no public address of our own yet
		p.log.Debug("hole punching: no public address yet", "member", id)
		return
	}
	st.running, st.last = true, now
	st.tries++
	try := st.tries
	p.log.Debug("hole punching: trying again", "member", id, "try", try)
	p.attempts.Go(func() { p.attempt(id, try) })
}

// ready reports whether the service knows a public address of ours: until
// then DirectConnect would wait for one.
func (p *puncher) ready() bool {
	return slices.Contains(p.host.Mux().Protocols(), holepunch.Protocol)
}

// attempt is our try-th attempt at a direct connection to id.
func (p *puncher) attempt(id peer.ID, try int) {
	err := p.svc.DirectConnect(id)
	now := time.Now()
	var wait time.Duration
	p.mu.Lock()
	if st := p.peers[id]; st != nil { // else direct now, or the circuit is gone
		st.running = false
		if err != nil {
			st.failed(now)
			wait = st.wait
		}
	}
	p.mu.Unlock()
	switch {
	case err == nil:
		p.log.Info("hole punching: direct connection made", "member", id, "try", try)
	case errors.Is(err, holepunch.ErrClosed):
	default:
		p.log.Debug("hole punching failed; trying again later", "member", id, "try", try, "wait", wait, "err", err)
	}
	p.wake()
}

// soon asks for an attempt at once, unless one began less than punchGap
// ago or the member is not reached through a circuit that came in.
func (p *puncher) soon(id peer.ID, now time.Time) {
	p.mu.Lock()
	if st := p.peers[id]; st != nil && !st.running && now.Sub(st.last) >= punchGap {
		st.next = now
	}
	p.mu.Unlock()
	p.wake()
}

// newPunchPeer is the schedule of a member whose circuit came in at now,
// when libp2p's service punches.
func newPunchPeer(now time.Time) *punchPeer {
	return &punchPeer{next: now.Add(punchFirst), wait: punchFirst, last: now}
}

// failed schedules the next attempt after a failure: twice as long after
// it as the last one was.
func (st *punchPeer) failed(now time.Time) {
	st.wait = min(2*st.wait, punchMax)
	st.next = now.Add(st.wait)
}

// relayedIn reports whether id is reached only through circuits, one of
// which came in.
func (p *puncher) relayedIn(id peer.ID) bool {
	in := false
	for _, conn := range p.host.Network().ConnsToPeer(id) {
		if !isCircuit(conn.RemoteMultiaddr()) {
			return false
		}
		in = in || conn.Stat().Direction == network.DirInbound
	}
	return in
}

// TryDirect asks for an attempt at a direct connection to member now, as
// when a file transfer is about to run through a circuit: it does nothing
// when an attempt began in the last few seconds, when the connection is
// direct already, or when the circuit went out from here (the member's
// side of it then tries).
func (c *Client) TryDirect(member string) {
	if id, err := peer.Decode(member); err == nil {
		c.punch.soon(id, time.Now())
	}
}

// punchable reports whether this member's NAT lets hole punching work:
// behind a symmetric NAT the addresses it would announce are not the ones
// the other side's packets would have to reach. With UDP blocked it may
// still work over TCP (punchFilter keeps only TCP addresses then).
func (c *Client) punchable() bool {
	return c.State().NAT != natcheck.Symmetric.String()
}

// udpBlocked reports whether the NAT check found UDP blocked here.
func (c *Client) udpBlocked() bool {
	return c.State().NAT == natcheck.Blocked.String()
}

// mappedTCP is this member's public TCP mapping, if the NAT check found
// one, as a multiaddr for hole punching.
func (c *Client) mappedTCP() []ma.Multiaddr {
	ap, err := netip.ParseAddrPort(c.State().PublicTCP)
	if err != nil {
		return nil
	}
	a, err := manet.FromNetAddr(net.TCPAddrFromAddrPort(ap))
	if err != nil {
		return nil
	}
	return []ma.Multiaddr{a}
}
