package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/lanchat/lanchat/relay/natcheck"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Key     crypto.PrivKey
	Relay   []string // the relay's addresses (ending in /p2p/<ID>); empty until Join
	Profile Profile
	// StateFile remembers the last delivery kept, so a redelivery after a
	// crash is recognised and dropped.
	StateFile string
	// Deliver receives each stored message in order. It returns once the
	// message is kept; Sync then makes everything kept so far durable, and
	// only after it is the relay told (so a crash redelivers, never loses).
	Deliver func(Envelope) error
	Sync    func() error
	// OnChange is called when the directory, the groups or the connection
	// state change; read them with Members, Groups and State.
	OnChange func()
	Logger   *slog.Logger
	// Listen are the client host's addresses; default TCP and QUIC on any
	// port.
	Listen []string
}

// State is the client's connection to its relay.
type State struct {
	Relay     string    `json:"relay,omitempty"` // the relay's peer ID
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"`
	Error     string    `json:"error,omitempty"` // why it is not connected
	// NAT is what the relay's STUN responder showed about this node's
	// network (natcheck's mapping: none, endpoint-independent, symmetric,
	// blocked, unknown); NATText says it for people, Public is the mapped
	// address. Empty until measured.
	NAT     string `json:"nat,omitempty"`
	NATText string `json:"nat_text,omitempty"`
	Public  string `json:"public,omitempty"`
	// PublicTCP is where this node's libp2p TCP port appears outside, as
	// the relay's STUN over TCP saw a connection from it; hole punching
	// offers it (over TCP, also when UDP is blocked). Empty until
	// measured, or if the relay does not answer STUN over TCP.
	PublicTCP string `json:"public_tcp,omitempty"`
}

// Client keeps a member's connection to its relay: it reconnects with
// backoff, resends what the relay has not stored, and hands deliveries over
// in order.
type Client struct {
	cfg   ClientConfig
	log   *slog.Logger
	host  host.Host
	punch *puncher
	kick  chan struct{} // wakes Run when the relay is set

	mu      sync.Mutex
	info    peer.AddrInfo
	state   State
	sess    *clientSession
	gen     int
	pending []*pendingSend // in send order; removed when stored or failed
	members map[string]Member
	dir     []Member // the relay's directory as of dirv, kept across sessions
	dirv    string
	groups  map[string]Group
	floor   floor
	reqs    map[string]chan Frame // group requests awaiting an answer, by ref
	nextRef int

	seen recentIDs // messages kept lately, by either path
}

type pendingSend struct {
	f    Frame
	gen  int        // the session that last wrote it
	done chan error // buffered 1
}

// floor is the last delivery kept, per relay store epoch.
type floor struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// NewClient starts the client's libp2p host.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}
	}
	c := &Client{cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1),
		members: map[string]Member{}, groups: map[string]Group{}, reqs: map[string]chan Frame{}}
	if len(cfg.Relay) > 0 {
		info, err := AddrInfo(cfg.Relay)
		if err != nil {
			return nil, err
		}
		c.info = info
		c.state.Relay = info.ID.String()
	}
	if b, err := os.ReadFile(cfg.StateFile); err == nil {
		json.Unmarshal(b, &c.floor)
	}
	h, err := libp2p.New(libp2p.Identity(cfg.Key), security, libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.DisableMetrics())
	if err != nil {
		return nil, fmt.Errorf("relay client: %w", err)
	}
	// Hole punching (DCUtR): a member reached through a circuit tries to
	// upgrade to a direct connection, with the addresses the relay
	// observed, and tries again later if that fails (punch.go).
	if c.punch, err = newPuncher(h, c.log, c.punchable, c.mappedTCP, punchFilter{c}); err != nil {
		h.Close()
		return nil, fmt.Errorf("relay client: %w", err)
	}
	c.host = h
	h.SetStreamHandler(ProtoDirect, c.handleDirect)
	h.Network().Notify(pathWatch{c})
	return c, nil
}

// ID is this member's peer ID.
func (c *Client) ID() peer.ID { return c.host.ID() }

// Close stops the host. Call it after Run has returned.
func (c *Client) Close() error {
	err := c.host.Close()
	c.punch.close()
	return err
}

// State reports the connection.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Members returns the relay's directory, without this member.
func (c *Client) Members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		if m.ID != c.host.ID().String() {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Nick < out[j].Nick })
	return out
}

// Member looks one member up in the directory.
func (c *Client) Member(id string) (Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[id]
	return m, ok
}

// Groups returns the groups this member is in.
func (c *Client) Groups() []Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SetProfile changes how this member presents itself from the next session on.
func (c *Client) SetProfile(p Profile) {
	c.mu.Lock()
	c.cfg.Profile = p
	c.mu.Unlock()
}

func (c *Client) changed() {
	if c.cfg.OnChange != nil {
		c.cfg.OnChange()
	}
}

func (c *Client) setState(connected bool, err error) {
	c.mu.Lock()
	c.state.Connected = connected
	c.state.Since = time.Now()
	c.state.Error = ""
	if err != nil {
		c.state.Error = err.Error()
	}
	c.mu.Unlock()
	c.changed()
}

// Join presents an invite code to its relay. On success the client uses
// that relay from now on; the relay's addresses are returned for saving.
func (c *Client) Join(ctx context.Context, code string) ([]string, error) {
	inv, err := ParseInvite(code)
	if err != nil {
		return nil, err
	}
	info, _ := AddrInfo(inv.Addrs) // checked by ParseInvite
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.host.Connect(ctx, info); err != nil {
		return nil, fmt.Errorf("cannot reach the relay at %s: %w", strings.Join(inv.Addrs, ", "), err)
	}
	str, err := c.host.NewStream(ctx, info.ID, ProtoJoin)
	if err != nil {
		return nil, fmt.Errorf("relay join: %w", err)
	}
	defer str.Close()
	if dl, ok := ctx.Deadline(); ok {
		str.SetDeadline(dl)
	}
	c.mu.Lock()
	prof := c.cfg.Profile
	c.mu.Unlock()
	if err := WriteFrame(str, Frame{T: "join", Secret: inv.Secret, Profile: &prof}); err != nil {
		return nil, fmt.Errorf("relay join: %w", err)
	}
	f, err := ReadFrame(bufio.NewReader(str))
	if err != nil {
		return nil, fmt.Errorf("relay join: %w", err)
	}
	if f.T != "joined" {
		return nil, remoteError(f)
	}
	c.mu.Lock()
	c.info = info
	c.state = State{Relay: info.ID.String()}
	c.mu.Unlock()
	c.wake()
	return inv.Addrs, nil
}

func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
	if s := c.current(); s != nil {
		s.wake()
	}
}

func (c *Client) current() *clientSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// Reconnect backoff: from minBackoff doubling to maxBackoff, with jitter so
// that thousands of members do not return to a restarted relay in step.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
	// stableAfter is how long a session must last for the backoff to reset.
	stableAfter = 30 * time.Second
	// pingEvery is how often an idle session pings the relay. A relay that
	// restarted answers a QUIC packet with a reset, and one that vanished
	// does not answer: either way the session ends within about
	// 2×pingEvery, not at the transport's idle timeout, and the member
	// reconnects.
	pingEvery = 10 * time.Second
)

// Run keeps the connection to the relay until ctx ends. Pending sends fail
// when it returns.
func (c *Client) Run(ctx context.Context) error {
	defer c.failPending(errors.New("relay client stopped"))
	var punch sync.WaitGroup
	defer punch.Wait()
	punch.Go(func() { c.punch.run(ctx) })
	backoff := minBackoff
	for {
		c.mu.Lock()
		info := c.info
		c.mu.Unlock()
		if info.ID == "" {
			select {
			case <-c.kick:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		start := time.Now()
		err := c.session(ctx, info)
		if ctx.Err() != nil {
			c.setState(false, nil)
			return nil
		}
		c.log.Warn("relay connection ended", "relay", info.ID, "err", err)
		c.setState(false, err)
		if time.Since(start) > stableAfter {
			backoff = minBackoff
		}
		if errors.Is(err, ErrNotMember) {
			backoff = maxBackoff // nothing will change soon; don't hammer
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, maxBackoff)
		select {
		case <-time.After(wait):
		case <-c.kick:
		case <-ctx.Done():
			c.setState(false, nil)
			return nil
		}
	}
}

func (c *Client) failPending(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pending {
		p.done <- err
	}
	c.pending = nil
}

// Send hands a message to the relay and returns once the relay stored it
// durably, or with an error: ctx ended first, or the relay refused it. A
// send survives reconnects: it is written again to the next session, and
// the relay stores it once.
func (c *Client) Send(ctx context.Context, id, to, group string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	p := &pendingSend{f: Frame{T: "send", ID: id, To: to, Group: group, Body: b}, done: make(chan error, 1)}
	c.mu.Lock()
	if c.info.ID == "" {
		c.mu.Unlock()
		return errors.New("no relay: join one with `lanchat join CODE`")
	}
	c.pending = append(c.pending, p)
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		s.wake()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		c.settle(id, nil)
		select {
		case err := <-p.done: // settled meanwhile
			return err
		default:
		}
		state := c.State()
		if !state.Connected && state.Error != "" {
			return fmt.Errorf("the relay did not store it (%s): %w", state.Error, ctx.Err())
		}
		return fmt.Errorf("the relay did not store it: %w", ctx.Err())
	}
}

// probeNAT asks the relay's STUN ports what this node's NAT does, so the
// user (and hole punching) knows whether direct connections can work.
func (c *Client) probeNAT(ctx context.Context, ip string, ports []int) {
	var servers []string
	for _, p := range ports {
		servers = append(servers, net.JoinHostPort(ip, strconv.Itoa(p)))
	}
	res, err := natcheck.Probe(ctx, servers)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("NAT check", "err", err)
		}
		return
	}
	tcp := c.probeTCP(ctx, servers[0])
	c.log.Info("NAT check", "result", res.String(), "tcp", tcp)
	c.mu.Lock()
	c.state.NAT, c.state.NATText = res.Mapping.String(), res.String()
	c.state.Public, c.state.PublicTCP = "", ""
	if res.Public.IsValid() {
		c.state.Public = res.Public.String()
	}
	if tcp.IsValid() {
		c.state.PublicTCP = tcp.String()
	}
	c.mu.Unlock()
	c.changed()
}

// probeTCP asks the relay's STUN over TCP at server where this host's TCP
// listening port appears outside, connecting from that port. The zero
// AddrPort means unknown: no TCP listener, a relay without STUN over TCP
// (quietly), or a failure (logged).
func (c *Client) probeTCP(ctx context.Context, server string) netip.AddrPort {
	port := 0
	for _, a := range c.host.Network().ListenAddresses() { // /ip4/0.0.0.0/tcp/N, not /ws after it
		_, v4 := a.ValueForProtocol(ma.P_IP4)
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil && v4 == nil && len(a.Protocols()) == 2 {
			port, _ = strconv.Atoi(p)
			break
		}
	}
	if port == 0 {
		return netip.AddrPort{}
	}
	tcp, err := natcheck.ProbeTCP(ctx, server, port)
	if err != nil && !errors.Is(err, natcheck.ErrNoTCP) && ctx.Err() == nil {
		c.log.Warn("NAT check over TCP", "err", err)
	}
	return tcp
}

// settle ends the pending send id with err.
func (c *Client) settle(id string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.pending {
		if p.f.ID == id {
			p.done <- err
			c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
			return
		}
	}
}

// Group runs a group request: op is create (name, peers), add or remove
// (group, peers), or list. It returns the groups in the answer.
func (c *Client) Group(ctx context.Context, op, group, name string, peers []string) ([]Group, error) {
	s := c.current()
	if s == nil {
		st := c.State()
		if st.Error != "" {
			return nil, fmt.Errorf("not connected to the relay: %s", st.Error)
		}
		return nil, errors.New("not connected to the relay")
	}
	ch := make(chan Frame, 1)
	c.mu.Lock()
	c.nextRef++
	ref := strconv.Itoa(c.nextRef)
	c.reqs[ref] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.reqs, ref)
		c.mu.Unlock()
	}()
	if !s.control(Frame{T: "group", Ref: ref, Op: op, Group: group, Name: name, Peers: peers}) {
		return nil, errors.New("the relay connection ended; try again")
	}
	select {
	case f := <-ch:
		if f.T == "error" {
			return nil, remoteError(f)
		}
		return f.Groups, nil
	case <-s.ctx.Done():
		return nil, errors.New("the relay connection ended; try again")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// clientSession is one connection's session stream.
type clientSession struct {
	c      *Client
	gen    int
	str    network.Stream
	epoch  string
	ctx    context.Context
	cancel context.CancelFunc
	notify chan struct{}
	ctrl   chan Frame

	mu    sync.Mutex
	kept  uint64 // highest delivery kept, not yet acknowledged
	acked uint64
}

func (s *clientSession) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *clientSession) control(f Frame) bool {
	select {
	case s.ctrl <- f:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (c *Client) session(ctx context.Context, info peer.AddrInfo) error {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.host.Connect(cctx, info); err != nil {
		return fmt.Errorf("cannot reach the relay: %w", err)
	}
	str, err := c.host.NewStream(cctx, info.ID, ProtoSession)
	if err != nil {
		return fmt.Errorf("relay session: %w", err)
	}
	c.mu.Lock()
	prof, dirv := c.cfg.Profile, c.dirv
	c.mu.Unlock()
	str.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := WriteFrame(str, Frame{T: "hello", V: Version, Profile: &prof, DirV: dirv}); err != nil {
		str.Reset()
		return fmt.Errorf("relay session: %w", err)
	}
	r := bufio.NewReader(str)
	f, err := ReadFrame(r)
	if err != nil {
		str.Reset()
		return fmt.Errorf("relay session: %w", err)
	}
	if f.T != "welcome" {
		str.Reset()
		return remoteError(f)
	}
	str.SetDeadline(time.Time{})
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	context.AfterFunc(sctx, func() { str.Reset() }) // unblocks the reader
	c.mu.Lock()
	c.gen++
	s := &clientSession{c: c, gen: c.gen, str: str, epoch: f.Epoch, ctx: sctx, cancel: scancel,
		notify: make(chan struct{}, 1), ctrl: make(chan Frame, 64)}
	c.sess = s
	if f.DirV != c.dirv || f.Members != nil { // else the directory we have is current
		c.dir, c.dirv = f.Members, f.DirV
	}
	c.members = applyDirectory(c.dir, f.Online)
	c.groups = map[string]Group{}
	for _, g := range f.Groups {
		c.groups[g.ID] = g
	}
	c.mu.Unlock()
	c.setState(true, nil)
	c.log.Info("connected to relay", "relay", info.ID)
	defer func() {
		c.mu.Lock()
		if c.sess == s {
			c.sess = nil
		}
		c.mu.Unlock()
		str.Reset()
	}()
	var probe sync.WaitGroup
	defer probe.Wait()
	if ip, err := str.Conn().RemoteMultiaddr().ValueForProtocol(ma.P_IP4); err == nil && len(f.STUN) > 0 {
		probe.Go(func() { c.probeNAT(sctx, ip, f.STUN) })
	}
	probe.Go(func() { c.reserve(sctx, info) })
	done := make(chan error, 1)
	go func() { done <- s.write() }()
	s.wake() // write what is pending from before
	err = s.read(r)
	scancel()
	if werr := <-done; err == nil {
		err = werr
	}
	return err
}

func (s *clientSession) read(r *bufio.Reader) error {
	c := s.c
	for {
		s.str.SetReadDeadline(time.Now().Add(2*pingEvery + handshakeTimeout))
		f, err := ReadFrame(r)
		if err != nil {
			return fmt.Errorf("relay session: %w", err)
		}
		switch f.T {
		case "stored":
			c.settle(f.ID, nil)
		case "error":
			switch {
			case f.Ref != "":
				c.answer(f)
			case f.ID != "":
				c.settle(f.ID, remoteError(f))
			default:
				return remoteError(f)
			}
		case "deliver":
			if f.Env == nil {
				return errors.New("relay session: delivery without envelope")
			}
			if err := s.deliver(f.Seq, *f.Env); err != nil {
				return err
			}
		case "presence":
			c.mu.Lock()
			for _, m := range f.Members {
				c.members[m.ID] = m
			}
			for _, ids := range []struct {
				ids    []string
				online bool
			}{{f.On, true}, {f.Off, false}} {
				for _, id := range ids.ids {
					if m, ok := c.members[id]; ok {
						m.Online = ids.online
						c.members[id] = m
					}
				}
			}
			c.mu.Unlock()
			c.changed()
		case "group":
			c.mu.Lock()
			me := c.host.ID().String()
			for _, g := range f.Groups {
				if contains(g.Members, me) {
					c.groups[g.ID] = g
				} else {
					delete(c.groups, g.ID)
				}
			}
			c.mu.Unlock()
			if f.Ref != "" {
				c.answer(f)
			}
			c.changed()
		}
	}
}

func (c *Client) answer(f Frame) {
	c.mu.Lock()
	ch := c.reqs[f.Ref]
	c.mu.Unlock()
	if ch != nil {
		ch <- f
	}
}

// deliver hands a delivery over unless it was kept before a crash.
func (s *clientSession) deliver(seq uint64, env Envelope) error {
	c := s.c
	c.mu.Lock()
	seen := c.floor.Epoch == s.epoch && seq <= c.floor.Seq
	c.mu.Unlock()
	if !seen && c.seen.add(env.ID) && c.cfg.Deliver != nil {
		if err := c.cfg.Deliver(env); err != nil {
			c.seen.remove(env.ID)
			return fmt.Errorf("keeping a relayed message: %w", err)
		}
	}
	s.mu.Lock()
	s.kept = max(s.kept, seq)
	s.mu.Unlock()
	s.wake()
	return nil
}

// write sends pending messages, control frames and acknowledgements, in
// batches: one flush (and one Sync before an ack) per wake-up.
func (s *clientSession) write() error {
	c := s.c
	w := bufio.NewWriter(s.str)
	var buf []byte
	put := func(f Frame) error {
		var err error
		if buf, err = AppendFrame(buf[:0], f); err != nil {
			return err
		}
		_, err = w.Write(buf)
		return err
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case <-s.notify:
		case f := <-s.ctrl:
			if err := put(f); err != nil {
				return err
			}
		case <-ping.C:
			if err := put(Frame{T: "ping"}); err != nil {
				return err
			}
		case <-s.ctx.Done():
			return nil
		}
		c.mu.Lock()
		var batch []Frame
		for _, p := range c.pending {
			if p.gen != s.gen {
				p.gen = s.gen
				batch = append(batch, p.f)
			}
		}
		c.mu.Unlock()
		for _, f := range batch {
			if err := put(f); err != nil {
				return err
			}
		}
		s.mu.Lock()
		kept, acked := s.kept, s.acked
		s.mu.Unlock()
		if kept > acked {
			if err := s.ack(kept); err != nil {
				return err
			}
			if err := put(Frame{T: "ack", Seq: kept}); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// ack makes what was kept durable, remembers it, and only then lets the
// acknowledgement go out.
func (s *clientSession) ack(seq uint64) error {
	c := s.c
	if c.cfg.Sync != nil {
		if err := c.cfg.Sync(); err != nil {
			return fmt.Errorf("keeping relayed messages: %w", err)
		}
	}
	c.mu.Lock()
	c.floor = floor{Epoch: s.epoch, Seq: seq}
	fl := c.floor
	c.mu.Unlock()
	if c.cfg.StateFile != "" {
		b, _ := json.Marshal(fl)
		if err := os.WriteFile(c.cfg.StateFile+".tmp", b, 0o600); err != nil {
			return fmt.Errorf("relay state: %w", err)
		}
		if err := os.Rename(c.cfg.StateFile+".tmp", c.cfg.StateFile); err != nil {
			return fmt.Errorf("relay state: %w", err)
		}
	}
	s.mu.Lock()
	s.acked = seq
	s.mu.Unlock()
	return nil
}
