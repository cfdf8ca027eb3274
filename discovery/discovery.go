// Package discovery keeps lanchat's presence on the LAN: it announces us with
// IPMsg entry packets on a UDP socket it is given, answers other hosts'
// announcements after a random delay, and keeps the roster of peers.
//
// Presence sequence (IPMsg protocol §4):
//
//	start, network change:  BR_ENTRY  -> every interface's broadcast, 255.255.255.255,
//	                                     and each configured extra address or subnet (unicast)
//	BR_ENTRY heard:         ANSENTRY  -> the sender, after 0–1 s (small LAN) to 0–4 s (large)
//	status or nick change:  BR_ABSENCE -> the same targets as BR_ENTRY; nobody answers
//	quit:                   BR_EXIT   -> the same targets
//	peer silent too long:   BR_ENTRY|DIALUPOPT unicast to it; dropped if still silent
//
// IPMsg clients send no keep-alives, so a silent peer is probed before it is
// forgotten. Our own broadcasts come back to us and are ignored.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lanchat/lanchat/internal/netutil"
	"github.com/lanchat/lanchat/ipmsg"
)

// Self is what we announce about ourselves.
type Self struct {
	User, Host  string // header fields; ':' is replaced
	Nick, Group string
	Away        bool
	Lanchat     string // our LC entry key; empty announces us as a plain IPMsg client
	PeerID      string // our libp2p identity, for lanchat peers
	Files       bool   // we serve files (FILEATTACHOPT)
}

// Config configures a Service. Zero fields take the documented defaults.
type Config struct {
	Conn   net.PacketConn // required: the node's UDP socket (SO_BROADCAST set)
	Port   uint16         // peers' port; default 2425
	Self   Self
	NextNo func() uint64 // required: the node's packet numbers
	Legacy ipmsg.Charset // charset of legacy fields; default GB18030
	Extra  []string      // extra targets: broadcast or host addresses, or subnets (each host unicast)
	// NoBroadcast sends announcements only to Extra and known peers, never
	// to broadcast addresses: for networks where broadcast is unwelcome,
	// and for tests confined to loopback.
	NoBroadcast bool
	Logger      *slog.Logger // default: discard
	// OnChange is told of every roster change. It runs on the caller of
	// Handle or on the Run goroutine and must not block.
	OnChange func(Change)
	// OnWarn is told of conditions a user should fix, such as ErrNoBroadcast.
	OnWarn func(error)
	// ProbeAfter is how long a peer may be silent before we probe it
	// (default 5 min); ExpireAfter is how much longer before it is dropped
	// (default 30 s).
	ProbeAfter, ExpireAfter time.Duration
	// Interfaces lists local addresses; default netutil.Interfaces. Tests
	// substitute it.
	Interfaces func() ([]netutil.Iface, error)
}

// Service runs presence on one socket.
type Service struct {
	cfg    Config
	log    *slog.Logger
	roster *Roster

	mu       sync.Mutex
	self     Self
	ifs      []netutil.Iface
	ifsKnown bool
	// started and lastExtraRetry pace retryExtra.
	started, lastExtraRetry time.Time
	pending                 map[netip.AddrPort]*time.Timer // ANSENTRY answers waiting for their delay
	answered                map[netip.AddrPort]uint64      // packet number of the BR_ENTRY last answered, per host
	stopped                 bool
	// inflight counts answers being sent, so that Run returns after them.
	inflight sync.WaitGroup
	stats    Stats
}

// Stats counts packets sent, for benchmarks and `lanchat status`.
type Stats struct {
	Entries, Answers, Probes, Absences, Exits int
	SendErrors                                int
}

// New returns a Service; call Run to start it.
func New(cfg Config) *Service {
	if cfg.Port == 0 {
		cfg.Port = 2425
	}
	if cfg.Legacy == ipmsg.Unknown || cfg.Legacy == ipmsg.UTF8 {
		cfg.Legacy = ipmsg.GB18030
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProbeAfter == 0 {
		cfg.ProbeAfter = 5 * time.Minute
	}
	if cfg.ExpireAfter == 0 {
		cfg.ExpireAfter = 30 * time.Second
	}
	if cfg.Interfaces == nil {
		cfg.Interfaces = netutil.Interfaces
	}
	if cfg.OnWarn == nil {
		cfg.OnWarn = func(error) {}
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func(Change) {}
	}
	return &Service{cfg: cfg, log: cfg.Logger, roster: newRoster(), self: cfg.Self,
		pending: map[netip.AddrPort]*time.Timer{}, answered: map[netip.AddrPort]uint64{}}
}

// Roster returns the peer table.
func (s *Service) Roster() *Roster { return s.roster }

// Stats returns packet counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ErrNoBroadcast means no interface can broadcast and no extra target is
// configured: nobody on the LAN can hear us.
var ErrNoBroadcast = errors.New("no network interface can broadcast and no extra address is configured")

// Run announces us, watches for network changes and expires silent peers
// until ctx is done; then it says goodbye with BR_EXIT and returns once every
// pending answer has been sent or dropped. With no way to reach anyone it
// warns (OnWarn) and keeps watching: a cable plugged in later still works.
func (s *Service) Run(ctx context.Context) error {
	if _, err := s.refreshInterfaces(); err != nil {
		return err
	}
	s.mu.Lock()
	s.started = time.Now()
	s.mu.Unlock()
	s.announceIfReachable()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.stop()
			return nil
		case <-tick.C:
			s.housekeep()
		}
	}
}

// stop cancels pending answers (a leaving host should not answer) and
// says goodbye.
func (s *Service) stop() {
	s.mu.Lock()
	s.stopped = true
	for to, t := range s.pending {
		t.Stop()
		delete(s.pending, to)
	}
	s.mu.Unlock()
	s.inflight.Wait()
	s.announce(ipmsg.BrExit)
}

// refreshInterfaces reloads local addresses and reports whether they
// changed since the last call.
func (s *Service) refreshInterfaces() (bool, error) {
	ifs, err := s.cfg.Interfaces()
	if err != nil {
		return false, fmt.Errorf("list interfaces: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ifsKnown && slices.Equal(ifs, s.ifs) {
		return false, nil
	}
	s.ifs, s.ifsKnown = ifs, true
	return true, nil
}

// announceIfReachable sends BR_ENTRY, or warns when it cannot reach anyone.
func (s *Service) announceIfReachable() {
	s.mu.Lock()
	unreachable := (s.cfg.NoBroadcast || len(netutil.Broadcasts(s.ifs)) == 0) && len(s.cfg.Extra) == 0
	s.mu.Unlock()
	if unreachable {
		s.log.Warn(ErrNoBroadcast.Error())
		s.cfg.OnWarn(ErrNoBroadcast)
	}
	s.announce(ipmsg.BrEntry)
}

func (s *Service) housekeep() {
	changed, err := s.refreshInterfaces()
	switch {
	case err != nil:
		s.log.Warn("cannot list interfaces", "err", err)
	case changed:
		s.log.Info("network changed, announcing again")
		s.announceIfReachable()
	}
	s.retryExtra(time.Now())
	s.expire(time.Now())
}

// expire probes peers silent past ProbeAfter and drops those silent past
// ProbeAfter+ExpireAfter.
func (s *Service) expire(now time.Time) {
	for _, p := range s.roster.stale(now.Add(-s.cfg.ProbeAfter)) {
		if p.LastSeen.Before(now.Add(-s.cfg.ProbeAfter - s.cfg.ExpireAfter)) {
			if gone, ok := s.roster.drop(p.Key); ok {
				s.cfg.OnChange(Change{Kind: Left, Peer: gone})
			}
			continue
		}
		s.count(func(st *Stats) { st.Probes++ })
		s.send(s.entryPacket(ipmsg.BrEntry|ipmsg.DialupOpt), p.Addr)
	}
}

// SetSelf changes what we announce and tells everybody with BR_ABSENCE.
func (s *Service) SetSelf(self Self) {
	s.mu.Lock()
	s.self = self
	s.mu.Unlock()
	s.announce(ipmsg.BrAbsence)
}

// Self returns what we announce.
func (s *Service) Self() Self {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.self
}

func (s *Service) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}
