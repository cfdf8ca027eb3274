package relay

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// invitePrefix starts every invite code, so a code is recognisable and a
// future format can get another prefix.
const invitePrefix = "LC1-"

// Invite is what an invite code carries: the one-time secret and where the
// relay is. The code is all a new member needs.
type Invite struct {
	Secret string   `json:"s"`
	Addrs  []string `json:"a"` // multiaddresses ending in /p2p/<relay ID>
}

// Code encodes the invite for copying and pasting.
func (in Invite) Code() string {
	b, _ := json.Marshal(in) // strings only: cannot fail
	return invitePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseInvite decodes an invite code and checks that it names a relay.
func ParseInvite(code string) (Invite, error) {
	code = strings.TrimSpace(code)
	rest, ok := strings.CutPrefix(code, invitePrefix)
	if !ok {
		return Invite{}, errors.New("not a lanchat invite code (it starts with " + invitePrefix + ")")
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return Invite{}, fmt.Errorf("invite code is damaged (copy all of it): %w", err)
	}
	var in Invite
	if err := json.Unmarshal(b, &in); err != nil || in.Secret == "" || len(in.Addrs) == 0 {
		return Invite{}, errors.New("invite code is damaged (copy all of it)")
	}
	if _, err := AddrInfo(in.Addrs); err != nil {
		return Invite{}, err
	}
	return in, nil
}

// AddrInfo parses relay addresses, which must all name the same relay.
func AddrInfo(addrs []string) (peer.AddrInfo, error) {
	var info peer.AddrInfo
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return info, fmt.Errorf("relay address %q: %w", s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return info, fmt.Errorf("relay address %q must end in /p2p/<relay ID>: %w", s, err)
		}
		if info.ID != "" && ai.ID != info.ID {
			return info, fmt.Errorf("relay addresses name two relays: %s and %s", info.ID, ai.ID)
		}
		info.ID = ai.ID
		info.Addrs = append(info.Addrs, ai.Addrs...)
	}
	if info.ID == "" {
		return info, errors.New("no relay address")
	}
	return info, nil
}
