package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/lanchat/lanchat/discovery"
	"github.com/lanchat/lanchat/ipmsg"
	"github.com/lanchat/lanchat/relay"
)

// DefaultPort is the IPMsg port, the same number for UDP and TCP.
const DefaultPort = 2425

// Config configures a Node. Zero fields take the documented defaults.
type Config struct {
	DataDir     string // required: history, packet numbers
	Port        int    // UDP and TCP port; default 2425
	Listen      string // local address to bind; default all (0.0.0.0)
	User, Host  string // header names; default the login and host name
	Nick, Group string // default User, ""
	// Legacy is the charset for peers that do not speak UTF-8: GB18030 (GBK,
	// the default) or CP932.
	Legacy ipmsg.Charset
	Extra  []string // extra broadcast targets: addresses, addr:port, subnets, names
	// NoBroadcast announces only to Extra (see discovery.Config).
	NoBroadcast bool
	Away        bool
	// AwayText is the auto-reply while away; default "I am away."
	AwayText string
	Logger   *slog.Logger
	// DeliveryTimeout is how long a message is retried before it is
	// reported failed (default 5 s); Retries is the least number of resends
	// before that (default 4).
	DeliveryTimeout time.Duration
	Retries         int
	// FloodRate and FloodBurst bound packets per second accepted from one
	// address (defaults 20000 and 40000); the rest is dropped unparsed.
	FloodRate, FloodBurst float64
	// Downloads is where accepted files go; default ~/Downloads, or
	// <DataDir>/downloads when there is no home folder.
	Downloads string
	// AutoAccept lists contacts (keys, nicks, user@host, or "*" for
	// everyone) whose offers are downloaded without asking.
	AutoAccept []string
	// Discovery timing, for tests; zero means the discovery defaults.
	ProbeAfter, ExpireAfter time.Duration
	// Relay is the relay's addresses (each ending in /p2p/<ID>); empty for
	// none until Join.
	Relay []string
}

// Version is reported to GETINFO and in lanchat's entry key.
const Version = "0.1"

// Node is a running lanchat endpoint on the LAN.
type Node struct {
	cfg   Config
	log   *slog.Logger
	udp   *net.UDPConn
	tcp   net.Listener
	nos   *packetNumbers
	hist  *history
	bus   *bus
	disc  *discovery.Service
	dedup *dedup
	limit *limiter
	files *files
	key   crypto.PrivKey // the node's identity (libp2p)
	id    string
	relay relayLink
	names [ipmsg.GB18030Full + 1]headerNames // by charset; fixed once New returns

	mu      sync.Mutex
	away    bool
	awayMsg string
	pending map[uint64]*flight          // by packet number, awaiting RECVMSG or ANSREADMSG
	queues  map[string]*sendQueue       // per contact key, while it has messages to deliver
	sent    *fifoMap[uint64, sentRef]   // our sealed messages, to match READMSG
	sealed  *fifoMap[string, sealedRef] // received sealed messages not yet opened, by message ID
	rtt     map[string]*rttEstimate
	replied *fifoMap[string, time.Time] // last auto-reply per contact
	stats   Stats

	// resend fires at resendAt for the flights due then (deliver.go);
	// resendAt is zero while it is not armed.
	resend   *time.Timer
	resendAt time.Time

	stopped bool
	quit    chan struct{} // closed when Run ends: senders give up

	wakers chan *waker // idle ones, for later sends (waker.go)

	wg sync.WaitGroup // goroutines started by Run and by sends
}

// Stats counts what the node did, for `lanchat status` and tests.
type Stats struct {
	Received, Sent, Acked, Failed, Retransmits int
	Duplicates, Malformed, Flooded, Ignored    int
}

// ErrPortInUse means another program holds the IPMsg port.
var ErrPortInUse = errors.New("port in use")

// New opens the data folder and the sockets. It fails with a plain
// explanation when the port is taken.
func New(cfg Config) (*Node, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, bus: newBus(), dedup: newDedup(),
		quit:  make(chan struct{}),
		limit: newLimiter(cfg.FloodRate, cfg.FloodBurst),
		away:  cfg.Away, awayMsg: cfg.AwayText,
		pending: map[uint64]*flight{}, queues: map[string]*sendQueue{}, wakers: make(chan *waker, wakerCache),
		sent: newFIFOMap[uint64, sentRef](maxRemembered), sealed: newFIFOMap[string, sealedRef](maxRemembered),
		rtt: map[string]*rttEstimate{}, replied: newFIFOMap[string, time.Time](maxRemembered)}
	var err error
	if n.nos, err = openPacketNumbers(cfg.DataDir, time.Now()); err != nil {
		return nil, err
	}
	key, id, err := relay.LoadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n.key, n.id = key, id.String()
	for cs := range n.names {
		n.names[cs] = newHeaderNames(cfg.User, cfg.Host, ipmsg.Charset(cs))
	}
	if n.hist, err = openHistory(cfg.DataDir, func(err error) { n.log.Error("history", "err", err) }); err != nil {
		return nil, err
	}
	if err := n.listen(); err != nil {
		n.hist.close()
		return nil, err
	}
	n.disc = discovery.New(discovery.Config{
		Conn: n.udp, Port: uint16(cfg.Port), NextNo: n.nos.Next, Legacy: cfg.Legacy,
		Extra: cfg.Extra, NoBroadcast: cfg.NoBroadcast, Logger: cfg.Logger.With("part", "discovery"), OnChange: n.onChange,
		OnWarn: func(err error) {
			if errors.Is(err, discovery.ErrNoBroadcast) {
				n.bus.publish(notice("warn", NoticeNoBroadcast))
				return
			}
			n.bus.publish(notice("warn", "%v", err))
		},
		ProbeAfter: cfg.ProbeAfter, ExpireAfter: cfg.ExpireAfter,
		Self: discovery.Self{User: cfg.User, Host: cfg.Host, Nick: cfg.Nick, Group: cfg.Group,
			Away: cfg.Away, Lanchat: Version, PeerID: n.id, Files: true},
	})
	n.files = n.newFiles()
	if len(cfg.Relay) > 0 {
		if n.relay.client, err = n.newRelayClient(cfg.Relay); err != nil {
			n.udp.Close()
			n.tcp.Close()
			n.hist.close()
			return nil, err
		}
	}
	return n, nil
}

func (c *Config) fill() error {
	if c.DataDir == "" {
		return errors.New("peer: no data folder")
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.User == "" {
		c.User = loginName()
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	if c.Nick == "" {
		c.Nick = c.User
	}
	if c.Legacy == ipmsg.Unknown || c.Legacy == ipmsg.UTF8 {
		c.Legacy = ipmsg.GB18030
	}
	if c.AwayText == "" {
		c.AwayText = "I am away."
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Downloads == "" {
		c.Downloads = defaultDownloads(c.DataDir)
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = 5 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 4
	}
	if c.FloodRate == 0 {
		c.FloodRate, c.FloodBurst = 20000, 40000
	}
	return nil
}

func defaultDownloads(data string) string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "Downloads")
	}
	return filepath.Join(data, "downloads")
}

func loginName() string {
	for _, k := range []string{"USER", "USERNAME", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "lanchat"
}

// listen binds UDP and TCP on the port. TCP carries file data (and holds
// the port so that no other IPMsg client shares it unnoticed).
func (n *Node) listen() error {
	addr := net.JoinHostPort(n.cfg.Listen, fmt.Sprint(n.cfg.Port))
	lc := net.ListenConfig{Control: setBroadcast}
	pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
	if err != nil {
		return portError("UDP", n.cfg.Port, err)
	}
	n.udp = pc.(*net.UDPConn)
	// A burst of broadcasts on a big LAN should wait in the kernel, not be lost.
	_ = n.udp.SetReadBuffer(4 << 20)
	if n.tcp, err = net.Listen("tcp4", addr); err != nil {
		n.udp.Close()
		return portError("TCP", n.cfg.Port, err)
	}
	return nil
}

func portError(proto string, port int, err error) error {
	if isAddrInUse(err) {
		return fmt.Errorf("%w: %s port %d is already used by another program — usually another "+
			"IP Messenger, Feige, FeiQ, iptux or lanchat on this computer. Quit it, or start lanchat "+
			"with --port to use another port (peers then need that port in their broadcast list)",
			ErrPortInUse, proto, port)
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%s port %d: permission denied (a firewall or security policy blocks it): %w", proto, port, err)
	}
	return fmt.Errorf("listen on %s port %d: %w", proto, port, err)
}

// Addr returns the bound UDP address.
func (n *Node) Addr() netip.AddrPort { return n.udp.LocalAddr().(*net.UDPAddr).AddrPort() }

// Run joins the LAN and serves until ctx is done, then says goodbye
// (BR_EXIT), closes the sockets and returns after every goroutine ended.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	discDone := make(chan error, 1)
	go func() { discDone <- n.disc.Run(ctx) }()
	n.wg.Add(2)
	go func() { defer n.wg.Done(); n.readLoop(ctx) }()
	go func() { defer n.wg.Done(); n.files.srv.Serve(ctx, n.tcp) }()
	var relayWG sync.WaitGroup
	n.relay.mu.Lock()
	n.relay.run = func(c *relay.Client) {
		relayWG.Add(2)
		go func() { defer relayWG.Done(); n.files.srv.Serve(ctx, n.memberFiles(c)) }()
		go func() {
			defer relayWG.Done()
			if err := c.Run(ctx); err != nil {
				n.log.Error("relay client", "err", err)
			}
		}()
	}
	if n.relay.client != nil {
		n.relay.run(n.relay.client)
	}
	n.relay.mu.Unlock()
	var err error
	select {
	case err = <-discDone:
	case <-ctx.Done():
		err = <-discDone // discovery sends BR_EXIT on the still-open socket
	}
	cancel()
	n.mu.Lock()
	n.stopped = true
	close(n.quit)
	n.mu.Unlock()
	n.failAll()
	n.udp.Close()
	n.tcp.Close()
	n.relay.mu.Lock()
	n.relay.run = nil
	c := n.relay.client
	n.relay.mu.Unlock()
	relayWG.Wait()
	if c != nil {
		c.Close()
	}
	n.wg.Wait()
	n.bus.closeAll()
	n.hist.close()
	n.closeWakers()
	return err
}

// Subscribe returns a stream of events and a function that ends it.
func (n *Node) Subscribe() (<-chan Event, func()) { return n.bus.subscribe() }

// Stats returns counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

func (n *Node) count(f func(*Stats)) {
	n.mu.Lock()
	f(&n.stats)
	n.mu.Unlock()
}

// send writes one datagram.
func (n *Node) send(pkt []byte, to netip.AddrPort) error {
	_, err := n.udp.WriteToUDPAddrPort(pkt, to)
	return err
}

// packet builds a packet from us with the header names in cs and returns
// it with its packet number.
func (n *Node) packet(cmd ipmsg.Command, cs ipmsg.Charset, extra []byte) ([]byte, uint64) {
	no := n.nos.Next()
	return n.packetNo(no, cmd, cs, extra), no
}

// packetNo builds a packet with a packet number taken earlier, in one
// allocation.
func (n *Node) packetNo(no uint64, cmd ipmsg.Command, cs ipmsg.Charset, extra []byte) []byte {
	h := n.headerNames(cs)
	p := ipmsg.Packet{Version: wireVersion, No: no, User: h.user, Host: h.host, Command: cmd, Extra: extra}
	return p.Append(make([]byte, 0, len(wireVersion)+len(h.user)+len(h.host)+len(extra)+headerDigits))
}

// wireVersion is ipmsg.Version as packets carry it.
var wireVersion = []byte(ipmsg.Version)

// headerDigits is room for a header's packet number, command and colons.
const headerDigits = 2*20 + 5

// headerNames are our user and host names as a header in one charset
// carries them, and how long the raw names are in it.
type headerNames struct {
	user, host []byte
	raw        int // len of User and Host encoded without HeaderName's changes
}

func newHeaderNames(user, host string, cs ipmsg.Charset) headerNames {
	return headerNames{user: cs.Encode(ipmsg.HeaderName(user)), host: cs.Encode(ipmsg.HeaderName(host)),
		raw: len(cs.Encode(user)) + len(cs.Encode(host))}
}

// headerNames returns the names for cs, encoded when New ran.
func (n *Node) headerNames(cs ipmsg.Charset) headerNames {
	if int(cs) < len(n.names) {
		return n.names[cs]
	}
	return newHeaderNames(n.cfg.User, n.cfg.Host, cs)
}
