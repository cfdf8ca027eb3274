package peer

import (
	"context"
	"fmt"
	"net"

	"github.com/lanchat/lanchat/discovery"
	"github.com/lanchat/lanchat/ipmsg"
	"github.com/lanchat/lanchat/relay"
)

var netErrClosed = net.ErrClosed

// SetAway switches away mode; text is the auto-reply ("" keeps the current
// one). Everyone is told with BR_ABSENCE.
func (n *Node) SetAway(away bool, text string) {
	n.mu.Lock()
	n.away = away
	n.replied.clear() // a new absence answers everyone once again
	if text != "" {
		n.awayMsg = text
	}
	n.mu.Unlock()
	self := n.disc.Self()
	self.Away = away
	n.disc.SetSelf(self)
	if c := n.relayClient(); c != nil {
		c.SetProfile(n.profile())
	}
}

// SetName changes the nickname and group everyone sees.
func (n *Node) SetName(nick, group string) {
	self := n.disc.Self()
	self.Nick, self.Group = nick, group
	n.disc.SetSelf(self)
}

func (n *Node) isAway() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.away
}

func (n *Node) absenceText() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.away {
		return notAbsence
	}
	return n.awayMsg
}

// Open marks a received sealed message as opened and tells its sender
// (READMSG). With READCHECKOPT the notice is retried until ANSREADMSG.
func (n *Node) Open(ctx context.Context, id string) error {
	n.mu.Lock()
	ref, ok := n.sealed.take(id)
	n.mu.Unlock()
	if !ok {
		return fmt.Errorf("no unopened sealed message %q", id)
	}
	if ref.member != "" {
		return n.openRelayed(ctx, id, ref)
	}
	peer, _ := n.disc.Roster().ByAddr(ref.to)
	cs, _ := n.sendCharset(peer)
	cmd := ipmsg.ReadMsg
	if ref.readCheck {
		cmd |= ipmsg.ReadCheckOpt
	}
	pkt, no := n.packet(cmd, cs, append([]byte(ref.noRaw), 0))
	n.hist.update(ref.peer, id, Opened, "")
	if !ref.readCheck {
		return n.send(pkt, ref.to)
	}
	o := &outgoing{msg: Message{ID: id, Peer: ref.peer, PacketNo: no}, pkt: pkt, to: ref.to, legacy: true}
	return n.deliver(ref.peer, o)
}

// History returns the last limit messages with a contact (all when
// limit <= 0), oldest first. who is anything Resolve accepts, or a key of a
// contact that is no longer online.
func (n *Node) History(who string, limit int) ([]Message, error) {
	key := who
	if p, err := n.resolve(who); err == nil {
		key = p.Key
	} else if t, ok, _ := n.resolveRelay(who); ok {
		key = t.key
	}
	return n.hist.read(key, limit)
}

// Self describes this node.
type Self struct {
	User, Host, Nick, Group string
	Away                    bool
	AwayText                string
	Addr                    string
	Legacy                  string
	Stats                   Stats
	Discovery               discovery.Stats // presence packets sent
	Peers                   int
	ID                      string      // the node's identity (libp2p peer ID)
	Relay                   relay.State // the relay connection, when there is a relay
}

// Self returns what the node announces and its counters.
func (n *Node) Self() Self {
	s := n.disc.Self()
	n.mu.Lock()
	defer n.mu.Unlock()
	return Self{User: s.User, Host: s.Host, Nick: s.Nick, Group: s.Group, Away: n.away,
		AwayText: n.awayMsg, Addr: n.Addr().String(), Legacy: n.cfg.Legacy.String(), Stats: n.stats,
		Discovery: n.disc.Stats(), Peers: n.disc.Roster().Len(), ID: n.id, Relay: n.RelayState()}
}
