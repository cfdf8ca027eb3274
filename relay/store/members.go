package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Member is an enrolled user of the relay.
type Member struct {
	ID     string    `json:"id"`     // peer ID
	Name   string    `json:"name"`   // display name given when joining
	Joined time.Time `json:"joined"` //
	Invite string    `json:"invite"` // ID of the invite redeemed (Invite.ID)
	// The profile the member's client last presented: the key its LAN
	// contacts know it by, its nickname and group.
	Key   string `json:"key,omitempty"`
	Nick  string `json:"nick,omitempty"`
	Group string `json:"group,omitempty"`
}

// Invite is a one-time invite code as stored: the secret itself is never stored.
type Invite struct {
	ID      string    `json:"-"`                 // first 16 hex digits of the secret's SHA-256
	Note    string    `json:"note,omitempty"`    // the admin's note, e.g. who it is for
	Created time.Time `json:"created"`           //
	Expires time.Time `json:"expires"`           //
	UsedBy  string    `json:"used_by,omitempty"` // peer ID that redeemed it
	UsedAt  time.Time `json:"used_at,omitzero"`  //
}

// secretEncoding writes invite secrets: lowercase base32 without padding, 32
// characters for 160 bits, easy to read out and to type.
var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// inviteKey returns the KV key (hex SHA-256) of a typed secret; ok is false if it
// cannot be a secret. Case, spaces and dashes are ignored.
func inviteKey(secret string) (key string, ok bool) {
	secret = strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, strings.ToUpper(strings.TrimSpace(secret)))
	raw, err := secretEncoding.DecodeString(secret)
	if err != nil || len(raw) != inviteSecretBytes {
		return "", false
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), true
}

// CreateInvite makes a one-time invite valid for ttl and returns its secret, which is
// shown once: only its SHA-256 is stored. It also removes invites that have expired.
func (s *Store) CreateInvite(ctx context.Context, ttl time.Duration, note string) (secret string, err error) {
	if ttl <= 0 {
		return "", fmt.Errorf("store: create invite: ttl %v is not positive", ttl)
	}
	if len(note) > 1024 {
		return "", fmt.Errorf("store: create invite: note of %d bytes exceeds 1024", len(note))
	}
	raw := make([]byte, inviteSecretBytes)
	rand.Read(raw)
	secret = strings.ToLower(secretEncoding.EncodeToString(raw))
	key, _ := inviteKey(secret)
	now := s.now()
	b, err := json.Marshal(Invite{Note: note, Created: now.UTC(), Expires: now.Add(ttl).UTC()})
	if err != nil {
		return "", fmt.Errorf("store: create invite: %w", err)
	}
	if _, err := s.invites.Create(ctx, key, b); err != nil {
		return "", fmt.Errorf("store: create invite: %w", err)
	}
	// A sweep reads every invite: once in a while, not per invite (an
	// admin enrolling thousands would wait quadratically).
	s.mu.Lock()
	sweep := now.Sub(s.swept) >= inviteSweepInterval
	if sweep {
		s.swept = now
	}
	s.mu.Unlock()
	if sweep {
		if err := s.sweepInvites(ctx); err != nil {
			s.log.Warn("sweeping expired invites failed", "err", err)
		}
	}
	s.log.Info("invite created", "invite", key[:16], "expires", now.Add(ttl).UTC(), "note", note)
	return secret, nil
}

// inviteSweepInterval is how often CreateInvite deletes expired invites.
const inviteSweepInterval = 10 * time.Minute

// Invites lists the stored invites, used or not, oldest first.
func (s *Store) Invites(ctx context.Context) ([]Invite, error) {
	var out []Invite
	err := s.eachInvite(ctx, func(key string, inv Invite, _ uint64) error {
		out = append(out, inv)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: invites: %w", err)
	}
	slices.SortFunc(out, func(a, b Invite) int { return a.Created.Compare(b.Created) })
	return out, nil
}

func (s *Store) eachInvite(ctx context.Context, f func(key string, inv Invite, rev uint64) error) error {
	keys, err := s.invites.ListKeys(ctx)
	if err != nil {
		return err
	}
	for key := range keys.Keys() {
		e, err := s.invites.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		} else if err != nil {
			keys.Stop()
			return err
		}
		var inv Invite
		if err := json.Unmarshal(e.Value(), &inv); err != nil {
			s.log.Warn("undecodable invite", "invite", key, "err", err)
			continue
		}
		inv.ID = key[:min(16, len(key))]
		if err := f(key, inv, e.Revision()); err != nil {
			keys.Stop()
			return err
		}
	}
	return nil
}

// sweepInvites deletes invites that have expired, used or not.
func (s *Store) sweepInvites(ctx context.Context) error {
	now := s.now()
	return s.eachInvite(ctx, func(key string, inv Invite, rev uint64) error {
		if now.Before(inv.Expires) {
			return nil
		}
		err := s.invites.Purge(ctx, key, jetstream.LastRevision(rev))
		if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
		return nil
	})
}

// RedeemInvite enrols peerID under name with the invite secret. An invite works once,
// even with concurrent redeemers (the claim is a compare-and-set on its revision);
// an unknown, used or expired one gives ErrInviteInvalid. Redeeming again the invite
// this same peer already used returns its membership (a retried join). A peer that
// is already a member gets ErrAlreadyMember and the invite stays unused.
func (s *Store) RedeemInvite(ctx context.Context, secret, peerID, name string) (Member, error) {
	m, err := s.redeem(ctx, secret, peerID, name)
	if err != nil {
		return Member{}, fmt.Errorf("store: redeem invite: %w", err)
	}
	return m, nil
}

func (s *Store) redeem(ctx context.Context, secret, peerID, name string) (Member, error) {
	if err := checkPeer(peerID); err != nil {
		return Member{}, err
	}
	if err := checkName(name); err != nil {
		return Member{}, err
	}
	key, ok := inviteKey(secret)
	if !ok {
		return Member{}, ErrInviteInvalid
	}
	e, err := s.invites.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Member{}, ErrInviteInvalid
	} else if err != nil {
		return Member{}, err
	}
	var inv Invite
	if err := json.Unmarshal(e.Value(), &inv); err != nil {
		return Member{}, fmt.Errorf("invite %s: %w", key[:16], err)
	}
	now := s.now()
	if inv.UsedBy != "" {
		if m, ok := s.mcache.get(peerID); ok && inv.UsedBy == peerID && m.Invite == key[:16] {
			return m, nil
		}
		return Member{}, ErrInviteInvalid
	}
	if !now.Before(inv.Expires) {
		return Member{}, ErrInviteInvalid
	}
	if _, ok := s.mcache.get(peerID); ok {
		return Member{}, ErrAlreadyMember
	}
	inv.UsedBy, inv.UsedAt = peerID, now.UTC()
	b, err := json.Marshal(inv)
	if err != nil {
		return Member{}, err
	}
	if _, err := s.invites.Update(ctx, key, b, e.Revision()); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return Member{}, ErrInviteInvalid // someone else redeemed it first
	} else if err != nil {
		return Member{}, err
	}
	m := Member{ID: peerID, Name: name, Joined: now.UTC(), Invite: key[:16]}
	b, err = json.Marshal(m)
	if err != nil {
		return Member{}, err
	}
	rev, err := s.members.Put(ctx, peerID, b)
	if err != nil {
		return Member{}, fmt.Errorf("invite %s claimed but member not stored: %w", key[:16], err)
	}
	if err := s.mcache.waitApplied(ctx, rev); err != nil {
		return Member{}, err
	}
	s.log.Info("member joined", "peer", peerID, "name", name, "invite", key[:16])
	return m, nil
}

func decodeMember(b []byte) (Member, error) {
	var m Member
	err := json.Unmarshal(b, &m)
	return m, err
}

// Member returns the member with this peer ID from memory; it is cheap enough to ask
// on every connection. The cache follows the bucket, including changes made by other
// relays of a cluster.
func (s *Store) Member(peerID string) (Member, bool) {
	return s.mcache.get(peerID)
}

// Members lists the members, by join time.
// MembersRevision grows with every change to the members (a join, a
// profile, a removal, on this relay or another of its cluster): a copy of
// Members stays current while it does not change.
func (s *Store) MembersRevision() uint64 {
	s.mcache.mu.RLock()
	defer s.mcache.mu.RUnlock()
	return s.mcache.applied
}

func (s *Store) Members(ctx context.Context) ([]Member, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: members: %w", err)
	}
	ms := s.mcache.all()
	slices.SortFunc(ms, func(a, b Member) int {
		if c := a.Joined.Compare(b.Joined); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return ms, nil
}

// RemoveMember revokes peerID's membership: it deletes the member, ends its inbox
// session and drops its stored messages, and takes it out of every group (a group it
// owned passes to its first remaining member; an empty group is deleted). Config.OnRemove
// is called for it. ErrNotMember if it was not a member.
func (s *Store) RemoveMember(ctx context.Context, peerID string) error {
	if err := s.removeMember(ctx, peerID); err != nil {
		return fmt.Errorf("store: remove member %s: %w", peerID, err)
	}
	s.log.Info("member removed", "peer", peerID)
	return nil
}

func (s *Store) removeMember(ctx context.Context, peerID string) error {
	if err := checkPeer(peerID); err != nil {
		return err
	}
	e, err := s.members.Get(ctx, peerID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ErrNotMember
	} else if err != nil {
		return err
	}
	if err := s.members.Delete(ctx, peerID, jetstream.LastRevision(e.Revision())); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("changed concurrently, try again: %w", err)
	} else if err != nil {
		return err
	}
	if err := syncWith(ctx, s.mcache, s.members); err != nil {
		return err
	}
	if err := s.dropInbox(ctx, peerID, ErrNotMember); err != nil {
		return err
	}
	for _, g := range s.gcache.all() {
		if !slices.Contains(g.Members, peerID) {
			continue
		}
		if _, err := s.editGroup(ctx, g.ID, func(g *Group) error {
			g.remove(peerID)
			return nil
		}); err != nil && !errors.Is(err, ErrNoGroup) {
			return fmt.Errorf("group %s: %w", g.ID, err)
		}
	}
	return nil
}

// memberRemoved runs on the members watcher for every removal, local or remote.
func (s *Store) memberRemoved(peerID string) {
	s.mu.Lock()
	in := s.sessions[peerID]
	s.mu.Unlock()
	if in != nil {
		in.end(ErrNotMember)
	}
	if s.cfg.OnRemove != nil {
		s.cfg.OnRemove(peerID)
	}
}

// maxProfileField bounds each profile field, so a member cannot bloat the
// directory every other member downloads.
const maxProfileField = 256

// SetProfile records how a member presents itself. It writes only when
// something changed, with compare-and-set so a concurrent removal wins.
func (s *Store) SetProfile(ctx context.Context, peerID, key, nick, group string) error {
	for _, f := range []string{key, nick, group} {
		if len(f) > maxProfileField {
			return fmt.Errorf("store: profile field longer than %d bytes: %w", maxProfileField, ErrBadEnvelope)
		}
	}
	// Members present the same profile at every connection: the cache
	// answers that without a request.
	if m, ok := s.mcache.get(peerID); ok && m.Key == key && m.Nick == nick && m.Group == group {
		return nil
	}
	for range 5 {
		e, err := s.members.Get(ctx, peerID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("store: profile of %s: %w", peerID, ErrNotMember)
		} else if err != nil {
			return fmt.Errorf("store: profile of %s: %w", peerID, err)
		}
		m, err := decodeMember(e.Value())
		if err != nil {
			return fmt.Errorf("store: profile of %s: %w", peerID, err)
		}
		if m.Key == key && m.Nick == nick && m.Group == group {
			return nil
		}
		m.Key, m.Nick, m.Group = key, nick, group
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		rev, err := s.members.Update(ctx, peerID, b, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		} else if err != nil {
			return fmt.Errorf("store: profile of %s: %w", peerID, err)
		}
		return s.mcache.waitApplied(ctx, rev)
	}
	return fmt.Errorf("store: profile of %s: too many concurrent changes", peerID)
}
