package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/lanchat/lanchat/relay/natcheck"
	"github.com/lanchat/lanchat/relay/store"
)

// DefaultPort is the relay's TCP and UDP (QUIC) port.
const DefaultPort = 4001

// ServerConfig configures a relay. Zero fields take the documented defaults.
type ServerConfig struct {
	Dir    string   // data folder: identity, store, admin socket (required)
	Listen []string // multiaddresses; default TCP and QUIC on DefaultPort, all interfaces
	// Announce are the addresses put into invites, when members must dial
	// something other than the listen addresses (a public name or a NAT's
	// forwarded port). Default: the host's listen addresses.
	Announce []string
	// SyncAlways makes the store fsync before acknowledging; see store.Config.
	SyncAlways bool
	MaxConns   int // connections held at most; default 20000
	// SendRate bounds messages per second from one member (default 500,
	// bursts of 5000); faster senders are slowed down, not refused.
	SendRate float64
	// JoinGrace is how long a peer that is not a member may stay connected
	// to present an invite; default 15 s.
	JoinGrace time.Duration
	// STUNPorts are the UDP ports of the STUN responder, two so that a
	// member can tell a symmetric NAT from an endpoint-independent one;
	// default 3478 and 3479; 0 picks a free port. A port that cannot be
	// opened is logged and skipped. The first one opened also answers
	// STUN over TCP, on the same port number.
	STUNPorts []int
	Logger    *slog.Logger
}

func (c *ServerConfig) fill() error {
	if c.Dir == "" {
		return errors.New("relay: no data folder")
	}
	if len(c.Listen) == 0 {
		c.Listen = []string{
			fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultPort),
			fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", DefaultPort),
		}
	}
	if c.MaxConns == 0 {
		c.MaxConns = 20000
	}
	if c.SendRate == 0 {
		c.SendRate = 500
	}
	if c.JoinGrace == 0 {
		c.JoinGrace = 15 * time.Second
	}
	if c.STUNPorts == nil {
		c.STUNPorts = []int{3478, 3479}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server is a running relay.
type Server struct {
	cfg  ServerConfig
	log  *slog.Logger
	id   peer.ID
	host host.Host
	st   *store.Store

	stun      []net.PacketConn
	stunPorts []int
	stunDone  chan struct{}
	stopSTUN  context.CancelFunc

	mu       sync.Mutex
	sessions map[peer.ID]*session
	wg       sync.WaitGroup

	dirMu sync.Mutex
	dir   *directory
}

// NewServer opens the relay's identity and store and starts listening.
// Close (or Run's end) releases them.
func NewServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	key, id, err := LoadIdentity(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, id: id, sessions: map[peer.ID]*session{}}
	s.st, err = store.Open(ctx, store.Config{
		Dir: filepath.Join(cfg.Dir, "store"), SyncAlways: cfg.SyncAlways,
		Logger: cfg.Logger.With("part", "store"),
		// Called on the store's watcher, which must not wait on the network.
		OnRemove: func(id string) { go s.dropMember(id) },
	})
	if err != nil {
		return nil, err
	}
	if s.host, err = s.newHost(key); err != nil {
		s.st.Close()
		return nil, err
	}
	s.host.SetStreamHandler(ProtoJoin, s.handleJoin)
	s.host.SetStreamHandler(ProtoSession, s.handleSession)
	s.host.Network().Notify(&network.NotifyBundle{ConnectedF: s.onConnect})
	s.startSTUN()
	return s, nil
}

// startSTUN opens the STUN responder's ports.
func (s *Server) startSTUN() {
	for _, port := range s.cfg.STUNPorts {
		c, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		if err != nil {
			s.log.Warn("STUN port unavailable; members cannot learn their NAT type from it", "port", port, "err", err)
			continue
		}
		s.stun = append(s.stun, c)
		s.stunPorts = append(s.stunPorts, c.LocalAddr().(*net.UDPAddr).Port)
	}
	s.stunDone = make(chan struct{})
	if len(s.stun) == 0 {
		close(s.stunDone)
		return
	}
	// STUN over TCP on the first port, where members learn their public
	// TCP mapping for hole punching over TCP.
	tcp, err := net.ListenTCP("tcp4", &net.TCPAddr{Port: s.stunPorts[0]})
	if err != nil {
		s.log.Warn("STUN TCP port unavailable; members cannot learn their TCP mapping from it", "port", s.stunPorts[0], "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopSTUN = cancel
	log := s.log.With("part", "stun")
	go func() {
		defer close(s.stunDone)
		var wg sync.WaitGroup
		if tcp != nil {
			wg.Go(func() {
				defer tcp.Close()
				if err := natcheck.ServeTCP(ctx, log, tcp); err != nil {
					s.log.Error("STUN responder over TCP", "err", err)
				}
			})
		}
		if err := natcheck.Serve(ctx, log, s.stun...); err != nil {
			s.log.Error("STUN responder", "err", err)
		}
		wg.Wait()
	}()
}

// security is the relay's and its members' choice of channel security:
// Noise first, TLS still accepted. A Noise connection costs the relay
// about 8 KiB less than a TLS one (BenchmarkRelayIdleClients), which
// matters with thousands of members.
var security = libp2p.ChainOptions(libp2p.Security(noise.ID, noise.New), libp2p.Security(tls.ID, tls.New))

func (s *Server) newHost(key crypto.PrivKey) (host.Host, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	n := rcmgr.LimitVal(s.cfg.MaxConns)
	// The defaults suit a desktop; a relay holds a connection per member.
	// Per peer, a member gets enough for its session, circuits and file
	// transfers, and no more: one member cannot exhaust the relay.
	partial := rcmgr.PartialLimitConfig{
		System:    rcmgr.ResourceLimits{Conns: n, ConnsInbound: n, Streams: 4 * n, StreamsInbound: 4 * n, FD: n},
		Transient: rcmgr.ResourceLimits{Conns: n / 10, ConnsInbound: n / 10, Streams: n, StreamsInbound: n, FD: n / 10},
		// Every member holds a session stream: the default protocol
		// limit (a few thousand streams) would refuse the rest.
		ProtocolDefault: rcmgr.ResourceLimits{Streams: 4 * n, StreamsInbound: 2 * n, StreamsOutbound: 2 * n},
		PeerDefault: rcmgr.ResourceLimits{
			Conns: 8, ConnsInbound: 8, Streams: 256, StreamsInbound: 256, StreamsOutbound: 64,
			Memory: 64 << 20,
		},
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(limits.AutoScale())))
	if err != nil {
		return nil, fmt.Errorf("relay: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(s.cfg.MaxConns*9/10, s.cfg.MaxConns, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("relay: connection manager: %w", err)
	}
	res := relayv2.DefaultResources()
	res.MaxReservations = s.cfg.MaxConns
	res.MaxCircuits = 64
	res.MaxReservationsPerIP = 64 // an office behind one NAT shares an IP
	// Members' circuits carry their file transfers: the default limits
	// (2 min, 128 KiB per circuit) would cut them.
	res.Limit = nil
	h, err := libp2p.New(
		libp2p.Identity(key),
		security,
		libp2p.ListenAddrStrings(s.cfg.Listen...),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ForceReachabilityPublic(), // a relay serves circuits whatever AutoNAT thinks
		libp2p.EnableNATService(),
		libp2p.EnableRelayService(relayv2.WithResources(res), relayv2.WithACL(acl{s})),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("relay: listen on %v: %w", s.cfg.Listen, err)
	}
	return h, nil
}

// ID is the relay's peer ID.
func (s *Server) ID() peer.ID { return s.id }

// Addrs are the addresses the relay listens on, each ending in its /p2p/ ID.
func (s *Server) Addrs() []string {
	var out []string
	for _, a := range s.host.Addrs() {
		out = append(out, a.Encapsulate(ma.StringCast("/p2p/"+s.id.String())).String())
	}
	sort.Strings(out)
	return out
}

// Run serves until ctx ends, then closes everything.
func (s *Server) Run(ctx context.Context) error {
	// The store wakes a session's pump when a message is stored for it; in
	// a cluster a wake-up can be lost, so every pump also looks now and then:
	// a slice of the sessions each second, not thousands of requests at once.
	const slices = 30
	t := time.NewTicker(inboxPoll / slices)
	defer t.Stop()
	for tick := 0; ; tick++ {
		select {
		case <-t.C:
			s.mu.Lock()
			for p, ss := range s.sessions {
				if int(p[len(p)-1])%slices == tick%slices {
					ss.kickPump()
				}
			}
			s.mu.Unlock()
		case <-ctx.Done():
			return s.Close()
		}
	}
}

// Close disconnects everyone and closes the store.
func (s *Server) Close() error {
	if s.stopSTUN != nil {
		s.stopSTUN()
	}
	<-s.stunDone
	for _, c := range s.stun {
		c.Close()
	}
	err := s.host.Close()
	s.mu.Lock()
	for _, ss := range s.sessions {
		ss.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if e := s.st.Close(); err == nil {
		err = e
	}
	return err
}

func (s *Server) isMember(p peer.ID) bool {
	_, ok := s.st.Member(p.String())
	return ok
}

// onConnect gives a peer that is not a member JoinGrace to join.
func (s *Server) onConnect(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	if s.isMember(p) {
		return
	}
	time.AfterFunc(s.cfg.JoinGrace, func() {
		if !s.isMember(p) {
			s.host.Network().ClosePeer(p)
		}
	})
}

// dropMember disconnects a removed member at once.
func (s *Server) dropMember(id string) {
	p, err := peer.Decode(id)
	if err != nil {
		return
	}
	s.mu.Lock()
	ss := s.sessions[p]
	s.mu.Unlock()
	if ss != nil {
		ss.cancel()
	}
	s.host.Network().ClosePeer(p)
	s.log.Info("member removed and disconnected", "peer", id)
}

// acl lets only members reserve a slot or open a circuit.
type acl struct{ s *Server }

func (a acl) AllowReserve(p peer.ID, _ ma.Multiaddr) bool { return a.s.isMember(p) }

func (a acl) AllowConnect(src peer.ID, _ ma.Multiaddr, dst peer.ID) bool {
	return a.s.isMember(src) && a.s.isMember(dst)
}

// Invite makes a one-time invite code valid for ttl.
func (s *Server) Invite(ctx context.Context, ttl time.Duration, note string) (string, error) {
	secret, err := s.st.CreateInvite(ctx, ttl, note)
	if err != nil {
		return "", err
	}
	addrs := s.cfg.Announce
	if len(addrs) == 0 {
		addrs = s.Addrs()
	}
	for i, a := range addrs {
		if _, err := ma.NewMultiaddr(a); err == nil && !hasP2P(a) {
			addrs[i] = a + "/p2p/" + s.id.String()
		}
	}
	return Invite{Secret: secret, Addrs: addrs}.Code(), nil
}

func hasP2P(addr string) bool {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return false
	}
	_, err = m.ValueForProtocol(ma.P_P2P)
	return err == nil
}

// Members lists the members with their profiles and whether they are online.
func (s *Server) Members(ctx context.Context) ([]Member, error) {
	ms, err := s.st.Members(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, s.memberLocked(m))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Nick < out[j].Nick })
	return out, nil
}

func (s *Server) memberLocked(m store.Member) Member {
	p, _ := peer.Decode(m.ID)
	return Member{ID: m.ID, Profile: Profile{Key: m.Key, Nick: m.Nick, Group: m.Group}, Online: s.sessions[p] != nil}
}

// Remove revokes a membership: the member is disconnected and refused from
// now on; its stored messages and group memberships are dropped.
func (s *Server) Remove(ctx context.Context, id string) error {
	if _, err := peer.Decode(id); err != nil {
		return fmt.Errorf("%q is not a peer ID: %w", id, err)
	}
	if err := s.st.RemoveMember(ctx, id); err != nil {
		return err
	}
	s.dropMember(id)
	return nil
}

// Status is what `lanchat relay status` shows.
type Status struct {
	ID      string   `json:"id"`
	Addrs   []string `json:"addrs"`
	Members int      `json:"members"`
	Online  int      `json:"online"`
	Conns   int      `json:"conns"`
}

// Status reports the relay's addresses and counters.
func (s *Server) Status(ctx context.Context) (Status, error) {
	ms, err := s.st.Members(ctx)
	if err != nil {
		return Status{}, err
	}
	s.mu.Lock()
	online := len(s.sessions)
	s.mu.Unlock()
	return Status{ID: s.id.String(), Addrs: s.Addrs(), Members: len(ms), Online: online,
		Conns: len(s.host.Network().Conns())}, nil
}
