package natcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/pion/stun/v3"
)

const (
	// firstRTO is the first retransmission timeout; it doubles after every
	// send. RFC 5389 suggests 500 ms, but a probe should finish quickly and a
	// relay is rarely further than 300 ms away.
	firstRTO = 300 * time.Millisecond
	// probeTimeout is how long Probe waits after its first send: with
	// firstRTO it sends at 0, 0.3, 0.9 and 2.1 s.
	probeTimeout = 3 * time.Second
)

// ErrNoServers is returned by Probe when it is given no server address.
var ErrNoServers = errors.New("no STUN servers")

// target is one server address and what Probe learnt from it.
type target struct {
	addr   netip.AddrPort
	local  netip.Addr // the source address the kernel picks towards addr
	tid    [stun.TransactionIDSize]byte
	req    []byte
	mapped netip.AddrPort // valid once answered
}

// Probe sends a STUN Binding request from one fresh local UDP socket to each
// server ("host:port"; give at least two, on two ports or better two IPs of
// the relay), retransmits unanswered ones, and classifies the mappings it
// gets back; see the package doc. It returns as soon as every server has
// answered, or 3 s after the first send. No answer at all is not an error but
// Mapping Blocked; ctx ending first is an error.
//
// The socket is new, so Public is that socket's mapping, not the one a
// libp2p or IPMsg socket has; the Mapping is what carries over.
func Probe(ctx context.Context, servers []string) (Result, error) {
	res, err := probe(ctx, servers)
	if err != nil {
		return Result{}, fmt.Errorf("natcheck: probe: %w", err)
	}
	return res, nil
}

func probe(ctx context.Context, servers []string) (Result, error) {
	if len(servers) == 0 {
		return Result{}, ErrNoServers
	}
	targets, err := resolve(ctx, servers)
	if err != nil {
		return Result{}, err
	}
	conn, err := net.ListenUDP(network(targets), nil)
	if err != nil {
		return Result{}, fmt.Errorf("listen: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // ends a blocked read
	defer stop()
	for i := range targets {
		targets[i].local = routeSource(targets[i].addr)
	}
	if err := exchange(ctx, conn, targets); err != nil {
		return Result{}, err
	}
	port := conn.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	local := make([]netip.AddrPort, len(targets))
	mapped := make([]netip.AddrPort, len(targets))
	for i, t := range targets {
		local[i], mapped[i] = netip.AddrPortFrom(t.local, port), t.mapped
	}
	return classify(local, mapped), nil
}

// resolve turns host:port strings into targets with fresh requests.
func resolve(ctx context.Context, servers []string) ([]target, error) {
	targets := make([]target, len(servers))
	for i, s := range servers {
		ap, err := lookup(ctx, s)
		if err != nil {
			return nil, err
		}
		m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("build request: %w", err)
		}
		targets[i] = target{addr: ap, tid: m.TransactionID, req: m.Raw}
	}
	return targets, nil
}

// lookup resolves one "host:port", preferring IPv4 for a name.
func lookup(ctx context.Context, s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("server %q: port 0", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("server %q: %w", s, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("server %q: bad port %q", s, portStr)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("server %q: %w", s, err)
	}
	best := addrs[0] // LookupNetIP returns at least one address or an error
	for _, a := range addrs {
		if a.Unmap().Is4() {
			best = a
			break
		}
	}
	return netip.AddrPortFrom(best.Unmap(), uint16(port)), nil
}

// network is "udp4" or "udp6" if every target is of that family, else "udp".
func network(targets []target) string {
	v4 := 0
	for _, t := range targets {
		if t.addr.Addr().Is4() {
			v4++
		}
	}
	switch v4 {
	case len(targets):
		return "udp4"
	case 0:
		return "udp6"
	}
	return "udp"
}

// routeSource is the source address the kernel would use towards to, or the
// zero Addr without a route. Connecting a UDP socket sends nothing.
func routeSource(to netip.AddrPort) netip.Addr {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return netip.Addr{}
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
}

// exchange sends every target's request and retransmits it until it is
// answered or probeTimeout has passed since the first send. Failed sends
// count as unanswered; only if every send failed and nothing answered is the
// last send error returned, since that is a local fault, not a NAT's.
func exchange(ctx context.Context, conn *net.UDPConn, targets []target) error {
	start := time.Now()
	deadline, next, rto := start.Add(probeTimeout), start, firstRTO
	buf := make([]byte, maxPacket)
	msg := new(stun.Message)
	var sendErr error
	sent := 0
	for pending(targets) > 0 {
		now := time.Now()
		if !now.Before(deadline) {
			break
		}
		if !now.Before(next) {
			for i := range targets {
				if t := &targets[i]; !t.mapped.IsValid() {
					if _, err := conn.WriteToUDPAddrPort(t.req, t.addr); err != nil {
						sendErr = fmt.Errorf("send to %v: %w", t.addr, err)
					} else {
						sent++
					}
				}
			}
			next, rto = now.Add(rto), rto*2
		}
		wake := next
		if deadline.Before(wake) {
			wake = deadline
		}
		if err := conn.SetReadDeadline(wake); err != nil && ctx.Err() == nil {
			return fmt.Errorf("set read deadline: %w", err)
		}
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue
		case err != nil:
			return fmt.Errorf("read: %w", err)
		}
		matchResponse(buf[:n], targets, msg)
	}
	if sent == 0 && sendErr != nil {
		return sendErr
	}
	return nil
}

func pending(targets []target) int {
	n := 0
	for _, t := range targets {
		if !t.mapped.IsValid() {
			n++
		}
	}
	return n
}

// matchResponse records the mapped address from pkt if it is a Binding
// success response to one of the targets' requests; it ignores anything else.
// It matches on the 96-bit random transaction ID alone: the source address
// would add nothing, and a server behind a load balancer may answer from
// another.
func matchResponse(pkt []byte, targets []target, msg *stun.Message) {
	if !stun.IsMessage(pkt) || stun.Decode(pkt, msg) != nil || msg.Type != stun.BindingSuccess {
		return
	}
	for i := range targets {
		t := &targets[i]
		if t.tid != msg.TransactionID || t.mapped.IsValid() {
			continue
		}
		t.mapped, _ = mappedAddress(msg)
		return
	}
}

// mappedAddress is msg's XOR-MAPPED-ADDRESS, if it has a valid one.
func mappedAddress(msg *stun.Message) (netip.AddrPort, bool) {
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(msg); err != nil {
		return netip.AddrPort{}, false
	}
	ip, ok := netip.AddrFromSlice(xa.IP)
	if !ok || xa.Port <= 0 || xa.Port > 0xffff {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(xa.Port)), true
}

// classify turns each target's local and mapped address (zero if it did not
// answer) into a Result.
func classify(local, mapped []netip.AddrPort) Result {
	first := -1
	answered, direct, same := 0, 0, 0
	for i, m := range mapped {
		if !m.IsValid() {
			continue
		}
		if first < 0 {
			first = i
		}
		answered++
		if m == local[i] {
			direct++
		}
		if m == mapped[first] {
			same++
		}
	}
	if first < 0 {
		r := Result{Mapping: Blocked}
		if len(local) > 0 {
			r.Local = local[0]
		}
		return r
	}
	r := Result{Public: mapped[first], Local: local[first]}
	switch {
	case direct == answered:
		r.Mapping = None
	case answered < 2:
		r.Mapping = Unknown
	case same == answered:
		r.Mapping = EndpointIndependent
	default:
		r.Mapping = Symmetric
	}
	return r
}
