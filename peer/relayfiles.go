package peer

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/lanchat/lanchat/discovery"
	"github.com/lanchat/lanchat/ipmsg"
	"github.com/lanchat/lanchat/relay"
)

// Files to and from relay members travel over libp2p streams
// (relay.ProtoFile, direct or through a circuit of the relay) in the same
// IPMsg file protocol as on the LAN, so the transfer package serves and
// fetches them as it does for LAN peers. It knows peers by IP address: a
// member stands in as fd6c:6e63::/32 (a unique-local prefix, "lc") plus 12
// bytes of the SHA-256 of its peer ID, and the streams carry that address.

var standInPrefix = [4]byte{0xfd, 0x6c, 0x6e, 0x63}

// standIn is the address the transfer package knows a member by.
func standIn(member string) netip.Addr {
	sum := sha256.Sum256([]byte(member))
	var a [16]byte
	copy(a[:4], standInPrefix[:])
	copy(a[4:], sum[:12])
	return netip.AddrFrom16(a)
}

func isStandIn(a netip.Addr) bool {
	b := a.As16()
	return a.Is6() && [4]byte(b[:4]) == standInPrefix
}

// memberByStandIn finds the relay member behind a stand-in address.
func (n *Node) memberByStandIn(a netip.Addr) (relay.Member, bool) {
	c := n.relayClient()
	if c == nil || !isStandIn(a) {
		return relay.Member{}, false
	}
	for _, m := range c.Members() {
		if standIn(m.ID) == a {
			return m, true
		}
	}
	return relay.Member{}, false
}

// memberConn is a stream to or from a member, as a net.Conn between
// stand-in addresses.
type memberConn struct {
	relay.Stream
	local, remote net.Addr
	closed        chan struct{}
	once          *sync.Once
}

func newMemberConn(s relay.Stream, local, remote string) memberConn {
	addr := func(id string) net.Addr { return net.TCPAddrFromAddrPort(netip.AddrPortFrom(standIn(id), 0)) }
	return memberConn{Stream: s, local: addr(local), remote: addr(remote), closed: make(chan struct{}), once: new(sync.Once)}
}

func (c memberConn) LocalAddr() net.Addr  { return c.local }
func (c memberConn) RemoteAddr() net.Addr { return c.remote }

func (c memberConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Stream.Close()
}

// memberListener hands the transfer server the file streams members open.
type memberListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *memberListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memberListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memberListener) Addr() net.Addr { return &net.TCPAddr{} }

// memberFiles has the relay client pass members' file streams to a
// listener for the transfer server.
func (n *Node) memberFiles(c *relay.Client) net.Listener {
	l := &memberListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	self := c.ID().String()
	c.Handle(relay.ProtoFile, func(member string, str relay.Stream) {
		if c.Path(member) != relay.PathDirect {
			c.TryDirect(member) // the circuit may have come in here: punching starts here then
		}
		select {
		case l.conns <- newMemberConn(str, self, member):
		case <-l.closed:
			str.Close()
		}
	})
	return l
}

// dialMember is the transfer client's way to senders that are relay
// members: a file stream over the best connection to them. While that is
// a circuit through the relay, hole punching is tried again at once, and
// a direct connection that comes up ends the stream: the fetch resumes
// over it.
func (n *Node) dialMember(ctx context.Context, to netip.AddrPort) (net.Conn, bool, error) {
	m, ok := n.memberByStandIn(to.Addr())
	if !ok {
		if isStandIn(to.Addr()) {
			return nil, true, errors.New("the sender is no longer a member of the relay")
		}
		return nil, false, nil
	}
	c := n.relayClient()
	str, err := c.OpenStream(ctx, m.ID, relay.ProtoFile)
	if err != nil {
		return nil, true, err
	}
	conn := newMemberConn(str, c.ID().String(), m.ID)
	if c.Path(m.ID) != relay.PathDirect {
		c.TryDirect(m.ID)
		go func() {
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					if c.Path(m.ID) == relay.PathDirect {
						n.log.Info("direct connection up: the transfer moves to it", "member", m.Nick)
						conn.Close()
						return
					}
				case <-conn.closed:
					return
				}
			}
		}()
	}
	return conn, true, nil
}

// shareWithMember registers paths as offer no to a relay member and
// returns the message body's file list.
func (n *Node) shareWithMember(no uint64, member string, paths []string) (string, []File, error) {
	list, err := n.files.srv.Share(no, standIn(member), paths)
	if err != nil {
		return "", nil, err
	}
	return string(ipmsg.AppendFileList(nil, list, ipmsg.UTF8)), publicFiles(list), nil
}

// onMemberOffer remembers the files a relay member offered with message
// id and returns them for the message.
func (n *Node) onMemberOffer(id, member, key string, b relay.MessageBody) []File {
	list, err := ipmsg.ParseFileList([]byte(b.Files), ipmsg.UTF8)
	if err != nil || len(list) == 0 {
		n.log.Info("unreadable attachment list", "from", key, "err", err)
		return nil
	}
	no := strconv.FormatUint(b.Offer, 10)
	return n.keepOffer(&offerRef{id: id, from: netip.AddrPortFrom(standIn(member), 0),
		no: b.Offer, noRaw: []byte(no), files: list, utf8: true, cs: ipmsg.UTF8, arrived: time.Now(),
		peer: discovery.Peer{Key: key, Nick: b.Nick, Client: ipmsg.ClientLanchat}, member: true})
}

// releaseMember tells a relay member that its offer was declined, so that
// it stops sharing the files (RELEASEFILES on the LAN). The notice goes in
// the background: declining does not wait for the relay.
func (n *Node) releaseMember(ref *offerRef) error {
	m, ok := n.memberByStandIn(ref.from.Addr())
	if !ok {
		return errors.New("the sender is no longer a member of the relay")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return ErrStopped
	}
	n.wg.Go(func() {
		ctx, cancel := n.untilStop(context.Background(), relaySendTimeout)
		defer cancel()
		if err := n.notifyMember(ctx, m.ID, relay.MessageBody{Release: ref.no}); err != nil {
			n.log.Info("could not tell the sender the offer was declined", "member", m.Nick, "err", err)
		}
	})
	return nil
}
