package discovery

import (
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/lanchat/lanchat/ipmsg"
)

// Peer is one person on the LAN as the roster knows them.
type Peer struct {
	Key         string // stable identity: user@host, plus :port when not 2425
	User, Host  string
	Nick, Group string
	Addr        netip.AddrPort   // the address heard from most recently; where to send
	Addrs       []netip.AddrPort // every address the person was heard from (several network cards)
	Client      ipmsg.Client
	Version     string        // raw header version, e.g. "1_iptux 0.8.3"
	Status      ipmsg.Command // option bits of the last entry packet
	Away        bool
	Legacy      ipmsg.Charset // charset the peer's legacy bytes showed, Unknown if none yet
	Lanchat     string        // lanchat's entry key, for lanchat peers
	PeerID      string        // a lanchat peer's libp2p identity
	IptuxCompat bool          // iptux sent its 4th (encoding) field; it says utf-8 even when iptux sends us GBK
	LastSeen    time.Time
}

// ChangeKind says what happened to a peer.
type ChangeKind uint8

const (
	Joined  ChangeKind = iota + 1 // first heard of
	Updated                       // nick, group, status or address changed
	Left                          // BR_EXIT, or silent past expiry
)

func (k ChangeKind) String() string {
	return [...]string{"", "joined", "updated", "left"}[k]
}

// Change is reported to Config.OnChange.
type Change struct {
	Kind ChangeKind
	Peer Peer
}

// Roster is the table of known peers, keyed by identity, safe for concurrent use.
type Roster struct {
	mu    sync.Mutex
	peers map[string]*Peer
	byAdr map[netip.AddrPort]string
}

func newRoster() *Roster {
	return &Roster{peers: map[string]*Peer{}, byAdr: map[netip.AddrPort]string{}}
}

// PeerKey is the identity of a sender: user@host, with the port when it is
// not the default so several nodes on one machine stay apart.
func PeerKey(user, host string, port uint16) string {
	k := user + "@" + host
	if port != 2425 {
		k += ":" + strconv.Itoa(int(port))
	}
	return k
}

// upsert merges p into the table and reports what changed (0 for nothing
// visible). When p's address belonged to another peer and was its last,
// that peer is gone and is returned too.
func (r *Roster) upsert(p Peer) (ChangeKind, *Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone *Peer
	if k, taken := r.byAdr[p.Addr]; taken && k != p.Key {
		gone = r.dropAddrLocked(k, p.Addr) // the address moved to someone else (DHCP)
	}
	old, ok := r.peers[p.Key]
	if !ok {
		p.Addrs = []netip.AddrPort{p.Addr}
		r.peers[p.Key] = &p
		r.byAdr[p.Addr] = p.Key
		return Joined, gone
	}
	kind := ChangeKind(0)
	if old.Nick != p.Nick || old.Group != p.Group || old.Away != p.Away || old.Addr != p.Addr {
		kind = Updated
	}
	p.Addrs = old.Addrs
	if !slices.Contains(p.Addrs, p.Addr) {
		p.Addrs = append(p.Addrs, p.Addr)
	}
	if p.Legacy == ipmsg.Unknown {
		p.Legacy = old.Legacy
	}
	*old = p
	r.byAdr[p.Addr] = p.Key
	return kind, gone
}

// dropAddrLocked removes address a from the peer; it returns the peer when
// that was its last address and it is gone.
func (r *Roster) dropAddrLocked(key string, a netip.AddrPort) *Peer {
	delete(r.byAdr, a)
	p := r.peers[key]
	if p == nil {
		return nil
	}
	p.Addrs = slices.DeleteFunc(p.Addrs, func(x netip.AddrPort) bool { return x == a })
	if len(p.Addrs) == 0 {
		delete(r.peers, key)
		c := *p
		c.Addrs = []netip.AddrPort{a}
		return &c
	} else if p.Addr == a {
		p.Addr = p.Addrs[len(p.Addrs)-1]
	}
	return nil
}

// remove drops the address a; the peer goes when it has no address left.
// It returns the peer and whether it is gone entirely.
func (r *Roster) remove(a netip.AddrPort) (Peer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key, ok := r.byAdr[a]
	if !ok {
		return Peer{}, false
	}
	p := *r.peers[key]
	r.dropAddrLocked(key, a)
	_, still := r.peers[key]
	return p, !still
}

// touch records that a was heard from now; it reports whether a is known.
func (r *Roster) touch(a netip.AddrPort, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	key, ok := r.byAdr[a]
	if ok {
		r.peers[key].LastSeen = now
	}
	return ok
}

// ByAddr returns the peer heard from a.
func (r *Roster) ByAddr(a netip.AddrPort) (Peer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if key, ok := r.byAdr[a]; ok {
		return clonePeer(r.peers[key]), true
	}
	return Peer{}, false
}

// Get returns the peer with the key.
func (r *Roster) Get(key string) (Peer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.peers[key]; ok {
		return clonePeer(p), true
	}
	return Peer{}, false
}

// SetLegacy records the charset a peer's bytes showed, when not yet known.
func (r *Roster) SetLegacy(key string, c ipmsg.Charset) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.peers[key]; ok && p.Legacy == ipmsg.Unknown {
		p.Legacy = c
	}
}

// List returns every peer, sorted by group, nick and key.
func (r *Roster) List() []Peer {
	r.mu.Lock()
	out := make([]Peer, 0, len(r.peers))
	for _, p := range r.peers {
		out = append(out, clonePeer(p))
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Nick != b.Nick {
			return a.Nick < b.Nick
		}
		return a.Key < b.Key
	})
	return out
}

// Len returns the number of peers.
func (r *Roster) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.peers)
}

// stale returns the addresses of peers not heard from since before.
func (r *Roster) stale(before time.Time) []Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Peer
	for _, p := range r.peers {
		if p.LastSeen.Before(before) {
			out = append(out, clonePeer(p))
		}
	}
	return out
}

// drop removes a peer entirely.
func (r *Roster) drop(key string) (Peer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.peers[key]
	if !ok {
		return Peer{}, false
	}
	for _, a := range p.Addrs {
		delete(r.byAdr, a)
	}
	delete(r.peers, key)
	return *p, true
}

func clonePeer(p *Peer) Peer {
	c := *p
	c.Addrs = slices.Clone(p.Addrs)
	return c
}
