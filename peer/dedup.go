package peer

import "net/netip"

// dedupSize is how many recent (sender, packet number) pairs are remembered.
// Retransmissions come within seconds, so a few thousand covers any burst.
const dedupSize = 8192

type dedupKey struct {
	from netip.AddrPort // the sender's socket: several clients may share a host
	no   uint64
}

// dedup remembers recently seen packets in a ring, as IP Messenger does, so
// that a retransmitted message is acknowledged again but shown once.
type dedup struct {
	seen map[dedupKey]struct{}
	ring [dedupSize]dedupKey
	next int
}

func newDedup() *dedup { return &dedup{seen: make(map[dedupKey]struct{}, dedupSize)} }

// firstTime records k and reports whether it was new. Not safe for
// concurrent use: only the receive loop calls it.
func (d *dedup) firstTime(from netip.AddrPort, no uint64) bool {
	k := dedupKey{from, no}
	if _, ok := d.seen[k]; ok {
		return false
	}
	old := d.ring[d.next]
	delete(d.seen, old)
	d.ring[d.next] = k
	d.next = (d.next + 1) % dedupSize
	d.seen[k] = struct{}{}
	return true
}
