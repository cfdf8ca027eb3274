package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/lanchat/lanchat/relay/store"
)

// directory is the member directory as a welcome carries it: every
// member's profile, in the order of their peer IDs, built once per change
// of the store's members, and a version naming its content. A member that
// reconnects with the current version (after a restart of the relay, all
// of them at once) gets only who is online, a bit each, instead of every
// profile: otherwise n members reconnecting cost n² profiles.
type directory struct {
	rev     uint64    // the store's members revision it was built from
	built   time.Time // every member in it joined before
	version string
	members []Member // without Online
	peers   []peer.ID
}

// directory returns the current directory.
func (s *Server) directory(ctx context.Context) (*directory, error) {
	rev := s.st.MembersRevision()
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	if s.dir != nil && s.dir.rev == rev {
		return s.dir, nil
	}
	ms, err := s.st.Members(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ms, func(a, b store.Member) int { return strings.Compare(a.ID, b.ID) })
	d := &directory{rev: rev, built: time.Now(), members: make([]Member, 0, len(ms)), peers: make([]peer.ID, 0, len(ms))}
	for _, m := range ms {
		p, err := peer.Decode(m.ID)
		if err != nil {
			continue
		}
		d.members = append(d.members, Member{ID: m.ID, Profile: Profile{Key: m.Key, Nick: m.Nick, Group: m.Group}})
		d.peers = append(d.peers, p)
	}
	b, err := json.Marshal(d.members)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	d.version = hex.EncodeToString(sum[:12])
	s.dir = d
	return d, nil
}

// onlineBitsLocked says which of the directory's members have a session.
func (s *Server) onlineBitsLocked(d *directory) []byte {
	bits := make([]byte, (len(d.peers)+7)/8)
	for i, p := range d.peers {
		if s.sessions[p] != nil {
			bits[i/8] |= 1 << (i % 8)
		}
	}
	return bits
}

// applyDirectory makes a client's member map from a directory and its
// online bits.
func applyDirectory(members []Member, online []byte) map[string]Member {
	out := make(map[string]Member, len(members))
	for i, m := range members {
		m.Online = i/8 < len(online) && online[i/8]&(1<<(i%8)) != 0
		out[m.ID] = m
	}
	return out
}
