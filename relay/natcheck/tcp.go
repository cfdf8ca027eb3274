package natcheck

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-reuseport"
	"github.com/pion/stun/v3"
)

// STUN over TCP (RFC 5389 section 7.2.2): the same Binding request and
// response, one after the other on a stream, each framed by its own header's
// length. ServeTCP answers one request per connection and closes it;
// ProbeTCP asks from a given local port, the one libp2p listens (and dials)
// on, so the mapped address is where peers can reach that port.
const (
	// tcpTimeout bounds one exchange, connecting included, on either side.
	tcpTimeout = 3 * time.Second
	// maxStreams bounds the connections ServeTCP serves at once; it closes
	// further ones unanswered until one ends.
	maxStreams = 64
	// headerSize is a STUN message header's: type, length, magic cookie
	// and transaction ID.
	headerSize = 20
)

// ErrNoTCP is returned by ProbeTCP when the server refuses the connection,
// as a relay from before STUN over TCP does.
var ErrNoTCP = errors.New("no STUN over TCP at the server")

var (
	errNotSTUN = errors.New("not a STUN message")
	errTooLong = errors.New("STUN message too long")
)

// readMessage reads one STUN message from r: its header, then as many bytes
// as the header's length field says, at most maxPacket in all. It checks the
// magic cookie before reading on, so a stream that is not STUN fails after
// 20 bytes.
func readMessage(r io.Reader) ([]byte, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	if !stun.IsMessage(h[:]) {
		return nil, errNotSTUN
	}
	n := headerSize + int(binary.BigEndian.Uint16(h[2:4]))
	if n > maxPacket {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errTooLong, n, maxPacket)
	}
	msg := make([]byte, n)
	copy(msg, h[:])
	if _, err := io.ReadFull(r, msg[headerSize:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// ServeTCP answers STUN Binding requests over TCP on ln: one request per
// connection, answered and then closed, within tcpTimeout; anything else
// closes the connection unanswered. At most maxStreams connections are
// served at once. It returns nil once ctx is done and every connection it
// served is closed, or an error if ln fails. Like Serve, it ends a blocked
// Accept with a past deadline and leaves closing ln to the caller.
func ServeTCP(ctx context.Context, log *slog.Logger, ln *net.TCPListener) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stop := context.AfterFunc(ctx, func() { ln.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	r := &responder{origin: specificAddr(ln.Addr()), log: log.With("local", ln.Addr().String())}
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, maxStreams)
	for {
		c, err := ln.AcceptTCP()
		switch {
		case ctx.Err() != nil:
			if c != nil {
				c.Close()
			}
			return nil
		case errors.Is(err, net.ErrClosed):
			return fmt.Errorf("natcheck: serve tcp: %w", err)
		case err != nil: // out of descriptors, say: this too shall pass
			r.log.Debug("accept failed", "err", err)
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			r.log.Debug("too many STUN connections; closed one unanswered", "from", c.RemoteAddr())
			c.Close()
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
			defer stop()
			r.serveStream(c, time.Now().Add(tcpTimeout))
		})
	}
}

// serveStream answers the one request on c by deadline and closes c.
func (r *responder) serveStream(c net.Conn, deadline time.Time) {
	defer c.Close()
	c.SetDeadline(deadline)
	src, ok := addrPort(c.RemoteAddr())
	if !ok {
		return
	}
	pkt, err := readMessage(c)
	req, resp := new(stun.Message), new(stun.Message)
	if err != nil || !r.answer(pkt, src, req, resp) {
		r.log.Debug("ignored stream", "from", src, "err", err)
		return
	}
	if _, err := c.Write(resp.Raw); err != nil {
		r.log.Debug("answer failed", "to", src, "err", err)
	}
}

// ProbeTCP asks server ("host:port") over TCP which address and port it
// sees the connection come from, and returns that mapped address. The
// connection goes out from local port port (0: any) with SO_REUSEADDR and
// SO_REUSEPORT set, as libp2p's TCP listener has them, so it may share that
// listener's port: for a NAT that maps endpoint-independently, the answer
// is then where peers reach the listener. A refused connection is ErrNoTCP.
// The connection ends with a reset, as libp2p ends its own, so that the
// port's 4-tuple is not held in TIME-WAIT.
func ProbeTCP(ctx context.Context, server string, port int) (netip.AddrPort, error) {
	ap, err := probeTCP(ctx, server, port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("natcheck: probe tcp: %w", err)
	}
	return ap, nil
}

func probeTCP(ctx context.Context, server string, port int) (netip.AddrPort, error) {
	to, err := lookup(ctx, server)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if port < 0 || port > 0xffff {
		return netip.AddrPort{}, fmt.Errorf("local port %d", port)
	}
	ctx, cancel := context.WithTimeout(ctx, tcpTimeout)
	defer cancel()
	network := "tcp4"
	if !to.Addr().Is4() {
		network = "tcp6"
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{Port: port}, Control: reuseport.Control}
	c, err := d.DialContext(ctx, network, to.String())
	if errors.Is(err, syscall.ECONNREFUSED) {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrNoTCP, err)
	}
	if err != nil {
		return netip.AddrPort{}, err
	}
	tc := c.(*net.TCPConn)
	defer tc.Close()
	defer tc.SetLinger(0)
	stop := context.AfterFunc(ctx, func() { tc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	return exchangeStream(tc)
}

// exchangeStream sends a Binding request on c and reads the mapped address
// from the answer.
func exchangeStream(c io.ReadWriter) (netip.AddrPort, error) {
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("build request: %w", err)
	}
	if _, err := c.Write(req.Raw); err != nil {
		return netip.AddrPort{}, fmt.Errorf("send: %w", err)
	}
	pkt, err := readMessage(c)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("read: %w", err)
	}
	var resp stun.Message
	if err := stun.Decode(pkt, &resp); err != nil {
		return netip.AddrPort{}, fmt.Errorf("answer: %w", err)
	}
	if resp.Type != stun.BindingSuccess || resp.TransactionID != req.TransactionID {
		return netip.AddrPort{}, fmt.Errorf("answer %v is not a Binding success for our request", resp.Type)
	}
	ap, ok := mappedAddress(&resp)
	if !ok {
		return netip.AddrPort{}, errors.New("answer without a mapped address")
	}
	return ap, nil
}
