package peer

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/lanchat/lanchat/discovery"
	"github.com/lanchat/lanchat/ipmsg"
)

// ErrUnknownPeer means no contact matches what the user typed.
var ErrUnknownPeer = errors.New("unknown peer")

// ErrAmbiguousPeer means several contacts match.
var ErrAmbiguousPeer = errors.New("ambiguous peer")

func (n *Node) onChange(c discovery.Change) {
	n.bus.publish(ContactEvent{Change: c.Kind.String(), Contact: n.contact(c.Peer)})
}

func (n *Node) contact(p discovery.Peer) Contact {
	cs, _ := n.sendCharset(p)
	return Contact{
		Key: p.Key, Nick: p.Nick, Group: p.Group, User: p.User, Host: p.Host,
		Addr: p.Addr, Addrs: p.Addrs, Client: p.Client.String(), Version: p.Version,
		Away: p.Away, Charset: cs.String(), Seen: p.LastSeen, Via: ViaLAN, Path: ViaLAN, ID: p.PeerID,
	}
}

// Contacts returns everyone on the LAN the node knows, sorted by group and
// nick, then the relay's members that are not on the LAN and its groups.
func (n *Node) Contacts() []Contact {
	peers := n.disc.Roster().List()
	out := make([]Contact, len(peers))
	for i, p := range peers {
		out[i] = n.contact(p)
	}
	return append(out, n.relayContacts(out)...)
}

// Resolve finds the contact a user means: a key (user@host), a nickname,
// a user name, an IP address or IP:port. A unique case-insensitive prefix
// of a nickname also works.
func (n *Node) Resolve(spec string) (Contact, error) {
	p, err := n.resolve(spec)
	if err != nil {
		return Contact{}, err
	}
	return n.contact(p), nil
}

func (n *Node) resolve(spec string) (discovery.Peer, error) {
	r := n.disc.Roster()
	if p, ok := r.Get(spec); ok {
		return p, nil
	}
	if ap, err := netip.ParseAddrPort(spec); err == nil {
		if p, ok := r.ByAddr(ap); ok {
			return p, nil
		}
	}
	peers := r.List()
	if a, err := netip.ParseAddr(spec); err == nil {
		return pick(spec, peers, func(p discovery.Peer) bool { return p.Addr.Addr() == a })
	}
	for _, match := range []func(discovery.Peer) bool{
		func(p discovery.Peer) bool { return p.Nick == spec || p.User == spec },
		func(p discovery.Peer) bool { return strings.EqualFold(p.Nick, spec) || p.User+"@"+p.Host == spec },
		func(p discovery.Peer) bool { return strings.HasPrefix(strings.ToLower(p.Nick), strings.ToLower(spec)) },
	} {
		p, err := pick(spec, peers, match)
		if !errors.Is(err, ErrUnknownPeer) {
			return p, err
		}
	}
	return discovery.Peer{}, fmt.Errorf("%w %q: see `lanchat peers`", ErrUnknownPeer, spec)
}

func pick(spec string, peers []discovery.Peer, match func(discovery.Peer) bool) (discovery.Peer, error) {
	var found []discovery.Peer
	for _, p := range peers {
		if match(p) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return discovery.Peer{}, fmt.Errorf("%w %q", ErrUnknownPeer, spec)
	case 1:
		return found[0], nil
	}
	keys := make([]string, len(found))
	for i, p := range found {
		keys[i] = p.Key
	}
	return discovery.Peer{}, fmt.Errorf("%w %q matches %s: use one of these keys", ErrAmbiguousPeer, spec, strings.Join(keys, ", "))
}

// sendCharset applies the sending rules of the protocol (§7.4) and returns
// the charset for text to p and whether to flag it UTF8OPT. It is a pure
// function of what the peer has shown, so it never alternates: the one
// change it can make, for iptux, follows iptux's own one-way switch.
func (n *Node) sendCharset(p discovery.Peer) (ipmsg.Charset, bool) {
	switch {
	case p.Status.Has(ipmsg.CapUTF8Opt):
		return ipmsg.UTF8, true
	case p.Client == ipmsg.ClientIptux:
		// iptux locks onto GB18030 for us once it sees non-UTF-8 bytes from
		// us (our legacy nick), and then sends us GBK too. Mirror it, with
		// GB18030 itself: iptux decodes with it, and GBK's 0x80 (€) makes
		// that fail and iptux switch us to UTF-16 for good.
		if p.Legacy == ipmsg.GB18030 || !n.legacyIsASCII() {
			return ipmsg.GB18030Full, false
		}
		return ipmsg.UTF8, false
	}
	return n.cfg.Legacy, false
}

// legacyIsASCII reports whether our broadcast legacy fields are plain
// ASCII, which leaves iptux's charset guess for us open.
func (n *Node) legacyIsASCII() bool {
	s := n.disc.Self()
	for _, str := range []string{s.User, s.Host, s.Nick, s.Group} {
		for i := 0; i < len(str); i++ {
			if str[i] >= 0x80 {
				return false
			}
		}
	}
	return true
}
