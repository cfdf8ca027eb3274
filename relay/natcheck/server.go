package natcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v3"
)

// maxPacket bounds what one read takes in; anything longer is truncated and
// then fails to decode, so per-packet work is bounded by this size.
const maxPacket = 1500

// Serve answers STUN Binding requests on every conn, one goroutine each,
// until ctx is done or a read fails; it ignores everything else, malformed or
// not STUN. It returns nil once ctx is done and every goroutine has returned.
// It does not close the conns: it ends their blocked reads with a past read
// deadline, so the caller closes them, after Serve returns.
//
// Give the conns in a fixed order: each one's OTHER-ADDRESS names the next
// (the last names the first), so with two IPs the pairs should differ in
// both IP and port.
func Serve(ctx context.Context, log *slog.Logger, conns ...net.PacketConn) error {
	if len(conns) == 0 {
		return errors.New("natcheck: serve: no conns")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.SetReadDeadline(time.Unix(1, 0)) // in the past: wakes blocked reads
		}
	})
	defer stop()

	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, c := range conns {
		r := &responder{
			conn:   c,
			origin: specificAddr(c.LocalAddr()),
			log:    log.With("local", c.LocalAddr().String()),
		}
		if len(conns) > 1 {
			r.other = specificAddr(conns[(i+1)%len(conns)].LocalAddr())
		}
		wg.Go(func() {
			if errs[i] = r.run(ctx); errs[i] != nil {
				cancel() // one failed conn stops them all
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("natcheck: serve: %w", err)
	}
	return nil
}

// addrPort is a's address and port if a is a UDP or TCP address, with an
// IPv4 address unmapped.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
}

// specificAddr is a's address and port if a is a UDP or TCP address with a
// specific (not wildcard) IP, else the zero AddrPort.
func specificAddr(a net.Addr) netip.AddrPort {
	ap, ok := addrPort(a)
	if !ok || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}
	}
	return ap
}

// responder serves one conn.
type responder struct {
	conn   net.PacketConn
	origin netip.AddrPort // RESPONSE-ORIGIN, if the conn's address is specific
	other  netip.AddrPort // OTHER-ADDRESS, if the next conn's address is specific
	log    *slog.Logger
}

// run reads and answers until a read fails; the failure is nil if ctx is done.
func (r *responder) run(ctx context.Context) error {
	buf := make([]byte, maxPacket)
	req, resp := new(stun.Message), new(stun.Message)
	for {
		n, from, err := r.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read on %v: %w", r.conn.LocalAddr(), err)
		}
		src, ok := addrPort(from)
		if !ok {
			continue
		}
		if !r.answer(buf[:n], src, req, resp) {
			r.log.Debug("ignored packet", "from", src, "len", n)
			continue
		}
		if _, err := r.conn.WriteTo(resp.Raw, net.UDPAddrFromAddrPort(src)); err != nil {
			// A send failing (no route back, buffer full) concerns only this client.
			r.log.Debug("answer failed", "to", src, "err", err)
		}
	}
}

// answer decodes pkt into req and, if it is a Binding request, builds the
// success response for a client at src into resp. It reports whether resp
// should be sent.
func (r *responder) answer(pkt []byte, src netip.AddrPort, req, resp *stun.Message) bool {
	if !stun.IsMessage(pkt) || len(pkt) > maxPacket {
		return false
	}
	if err := stun.Decode(pkt, req); err != nil || req.Type != stun.BindingRequest {
		return false
	}
	setters := make([]stun.Setter, 0, 5)
	setters = append(setters,
		stun.NewTransactionIDSetter(req.TransactionID),
		stun.BindingSuccess,
		&stun.XORMappedAddress{IP: src.Addr().AsSlice(), Port: int(src.Port())},
	)
	if r.origin.IsValid() {
		setters = append(setters, &stun.ResponseOrigin{IP: r.origin.Addr().AsSlice(), Port: int(r.origin.Port())})
	}
	if r.other.IsValid() {
		setters = append(setters, &stun.OtherAddress{IP: r.other.Addr().AsSlice(), Port: int(r.other.Port())})
	}
	setters = append(setters, stun.Fingerprint)
	resp.Reset()
	return resp.Build(setters...) == nil
}
