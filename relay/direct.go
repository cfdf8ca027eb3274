package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// Member-to-member protocols, over a direct connection if there is one,
// else over a circuit through the relay (see the package doc).
const (
	// ProtoDirect carries messages without the relay's store: one stream
	// per message.
	ProtoDirect = "/lanchat/direct/1.0.0"
	// ProtoFile carries file transfers: one stream per request, in the
	// IPMsg file-transfer protocol that lanchat speaks on the LAN (a
	// GETFILEDATA or GETDIRFILES request, then the bytes).
	ProtoFile = "/lanchat/file/1.0.0"
)

// Stream is a member-to-member stream.
type Stream = network.Stream

// Paths between two members, as Client.Path reports them.
const (
	PathNone    = ""        // not connected: messages wait in the relay's store
	PathDirect  = "direct"  // a connection of their own, hole-punched or plain
	PathRelayed = "relayed" // a circuit through the relay
)

// directTimeout bounds one direct send: the circuit, the stream, the
// recipient keeping the message.
const directTimeout = 10 * time.Second

// Path says how this member is connected to another right now.
func (c *Client) Path(member string) string {
	id, err := peer.Decode(member)
	if err != nil {
		return PathNone
	}
	path := PathNone
	for _, conn := range c.host.Network().ConnsToPeer(id) {
		if isCircuit(conn.RemoteMultiaddr()) {
			path = PathRelayed
			continue
		}
		return PathDirect
	}
	return path
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// SendDirect hands a message to member itself and returns once the member
// kept it (made it durable). Without a direct connection it goes through a
// circuit of the relay, which the recipient's hole punching may then
// upgrade. An error means the member may not have it: send it through the
// relay's store (Send, with the same id; the recipient drops a repeat).
func (c *Client) SendDirect(ctx context.Context, member, id string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, directTimeout)
	defer cancel()
	str, err := c.OpenStream(ctx, member, ProtoDirect)
	if err != nil {
		return err
	}
	defer str.Close()
	if dl, ok := ctx.Deadline(); ok {
		str.SetDeadline(dl)
	}
	if err := WriteFrame(str, Frame{T: "send", ID: id, Body: b}); err != nil {
		str.Reset()
		return fmt.Errorf("direct send: %w", err)
	}
	f, err := ReadFrame(bufio.NewReader(str))
	switch {
	case err != nil:
		str.Reset()
		return fmt.Errorf("direct send: %w", err)
	case f.T != "stored":
		return remoteError(f)
	}
	return nil
}

// OpenStream opens a stream of a member-to-member protocol, over the best
// connection to the member: a direct one if it exists, else a circuit
// through the relay, made if need be.
func (c *Client) OpenStream(ctx context.Context, member, proto string) (Stream, error) {
	to, err := peer.Decode(member)
	if err != nil {
		return nil, fmt.Errorf("relay: member %q: %w", member, err)
	}
	c.mu.Lock()
	info := c.info
	_, known := c.members[to.String()]
	c.mu.Unlock()
	if !known {
		return nil, fmt.Errorf("%s is not a member of this relay", to)
	}
	if c.host.Network().Connectedness(to) != network.Connected {
		circuit, err := ma.NewMultiaddr("/p2p/" + info.ID.String() + "/p2p-circuit")
		if err != nil {
			return nil, err
		}
		var addrs []ma.Multiaddr
		for _, a := range info.Addrs {
			addrs = append(addrs, a.Encapsulate(circuit))
		}
		if err := c.host.Connect(ctx, peer.AddrInfo{ID: to, Addrs: addrs}); err != nil {
			return nil, fmt.Errorf("cannot reach %s through the relay: %w", to, err)
		}
	}
	// The relay lifts circuit limits for members, but a relay that did not
	// would mark the connection limited; a message is small enough for it.
	str, err := c.host.NewStream(network.WithAllowLimitedConn(ctx, "lanchat"), to, protocol.ID(proto))
	if err != nil {
		return nil, fmt.Errorf("%s stream to %s: %w", proto, to, err)
	}
	return str, nil
}

// Handle serves a member-to-member protocol: h gets the streams of the
// relay's members (others are reset) with the member's peer ID.
func (c *Client) Handle(proto string, h func(member string, str Stream)) {
	c.host.SetStreamHandler(protocol.ID(proto), func(str network.Stream) {
		from := str.Conn().RemotePeer().String()
		_, known := c.Member(from)
		if !known {
			str.Reset()
			return
		}
		h(from, str)
	})
}

// handleDirect keeps a message a member sent directly, then says so.
func (c *Client) handleDirect(str network.Stream) {
	defer str.Close()
	from := str.Conn().RemotePeer()
	str.SetDeadline(time.Now().Add(directTimeout))
	_, known := c.Member(from.String())
	if !known { // only the relay's members; the relay vouches for them
		WriteFrame(str, errorFrame(CodeNotMember, errors.New("not a member of this relay")))
		return
	}
	f, err := ReadFrame(bufio.NewReader(str))
	if err != nil || f.T != "send" || f.ID == "" || len(f.ID) > maxIDLen || len(f.Body) > MaxBody || !json.Valid(f.Body) {
		WriteFrame(str, errorFrame(CodeBadRequest, errors.New("expected a message")))
		str.Reset()
		return
	}
	env := Envelope{ID: from.String() + "/" + f.ID, From: from.String(), Kind: KindMsg, Sent: time.Now(), Body: f.Body}
	if err := c.keep(env); err != nil {
		c.log.Warn("direct message", "from", from, "err", err)
		WriteFrame(str, errorFrame(CodeInternal, errors.New("could not keep it")))
		return
	}
	WriteFrame(str, Frame{T: "stored", ID: f.ID})
}

// keep hands a message over once, made durable: a message sent directly
// and, when its acknowledgement was lost, again through the store reaches
// the user once.
func (c *Client) keep(env Envelope) error {
	if !c.seen.add(env.ID) {
		return nil
	}
	if c.cfg.Deliver != nil {
		if err := c.cfg.Deliver(env); err != nil {
			c.seen.remove(env.ID)
			return err
		}
	}
	if c.cfg.Sync != nil {
		return c.cfg.Sync()
	}
	return nil
}

// recentIDs remembers the last message IDs kept, up to a bound.
type recentIDs struct {
	mu    sync.Mutex
	set   map[string]struct{}
	order []string
}

// recentKept bounds recentIDs: far more than can be in flight at once.
const recentKept = 4096

// add reports whether id is new, and remembers it.
func (r *recentIDs) add(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[id]; ok {
		return false
	}
	if r.set == nil {
		r.set = map[string]struct{}{}
	}
	r.set[id] = struct{}{}
	r.order = append(r.order, id)
	if len(r.order) > recentKept {
		delete(r.set, r.order[0])
		r.order = r.order[1:]
	}
	return true
}

func (r *recentIDs) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.set, id)
}

// reserve keeps a circuit reservation with the relay for as long as the
// session lasts, so that other members can reach this one through it.
func (c *Client) reserve(ctx context.Context, info peer.AddrInfo) {
	for {
		wait := 30 * time.Second
		rsv, err := client.Reserve(ctx, c.host, info)
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Warn("circuit reservation", "err", err)
		case err == nil:
			// Renew well before it expires (an hour by default).
			wait = max(time.Until(rsv.Expiration)*3/4, time.Minute)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// punchFilter stops hole punching that cannot work: none behind a
// symmetric NAT (see punchable), and with UDP blocked, TCP only, on both
// sides: our UDP addresses are not reachable, theirs not reachable from
// here.
type punchFilter struct{ c *Client }

func (f punchFilter) FilterLocal(_ peer.ID, addrs []ma.Multiaddr) []ma.Multiaddr {
	if !f.c.punchable() {
		return nil
	}
	return f.FilterRemote("", addrs)
}

func (f punchFilter) FilterRemote(_ peer.ID, addrs []ma.Multiaddr) []ma.Multiaddr {
	if !f.c.udpBlocked() {
		return addrs
	}
	return slices.DeleteFunc(slices.Clone(addrs), func(a ma.Multiaddr) bool {
		_, err := a.ValueForProtocol(ma.P_UDP)
		return err == nil
	})
}

// pathWatch tells the client's owner when connections to members come and
// go, since they change Path.
type pathWatch struct{ c *Client }

func (w pathWatch) Connected(_ network.Network, conn network.Conn)    { w.note(conn) }
func (w pathWatch) Disconnected(_ network.Network, conn network.Conn) { w.note(conn) }
func (pathWatch) Listen(network.Network, ma.Multiaddr)                {}
func (pathWatch) ListenClose(network.Network, ma.Multiaddr)           {}

func (w pathWatch) note(conn network.Conn) {
	c := w.c
	c.mu.Lock()
	relayID := c.info.ID
	c.mu.Unlock()
	if conn.RemotePeer() != relayID {
		go c.changed() // notifiees must not block the swarm
		c.punch.wake()
	}
}
