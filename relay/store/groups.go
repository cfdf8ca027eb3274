package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// maxCASAttempts bounds the read-modify-write retries of one group edit.
const maxCASAttempts = 64

// Group is a persistent group chat hosted by the relay.
type Group struct {
	ID      string    `json:"id"`      // random, 26 lowercase base32 characters
	Name    string    `json:"name"`    //
	Owner   string    `json:"owner"`   // peer ID; may remove anyone
	Members []string  `json:"members"` // peer IDs, the owner included, in order of joining
	Created time.Time `json:"created"` //
}

// Has reports whether peer is a member of g.
func (g *Group) Has(peer string) bool { return slices.Contains(g.Members, peer) }

// remove takes peer out of g; if it owned g, the first remaining member takes over.
func (g *Group) remove(peer string) {
	g.Members = slices.DeleteFunc(g.Members, func(p string) bool { return p == peer })
	if g.Owner == peer {
		g.Owner = ""
		if len(g.Members) > 0 {
			g.Owner = g.Members[0]
		}
	}
}

func decodeGroup(b []byte) (Group, error) {
	var g Group
	err := json.Unmarshal(b, &g)
	return g, err
}

// checkMembers validates peer IDs and that each is a relay member.
func (s *Store) checkMembers(peers []string) error {
	for _, p := range peers {
		if err := checkPeer(p); err != nil {
			return err
		}
		if _, ok := s.mcache.get(p); !ok {
			return fmt.Errorf("%s: %w", p, ErrNotMember)
		}
	}
	return nil
}

// CreateGroup creates a group owned by owner with the given members (the owner is
// always one). Every peer must be a relay member (ErrNotMember).
func (s *Store) CreateGroup(ctx context.Context, owner, name string, members []string) (Group, error) {
	g, err := s.createGroup(ctx, owner, name, members)
	if err != nil {
		return Group{}, fmt.Errorf("store: create group: %w", err)
	}
	s.log.Info("group created", "group", g.ID, "owner", owner, "members", len(g.Members))
	return g, nil
}

func (s *Store) createGroup(ctx context.Context, owner, name string, members []string) (Group, error) {
	if err := checkName(name); err != nil {
		return Group{}, err
	}
	all := append([]string{owner}, members...)
	if err := s.checkMembers(all); err != nil {
		return Group{}, err
	}
	raw := make([]byte, 16)
	rand.Read(raw)
	g := Group{
		ID:      strings.ToLower(secretEncoding.EncodeToString(raw)),
		Name:    name,
		Owner:   owner,
		Created: s.now().UTC(),
	}
	for _, p := range all {
		if !g.Has(p) {
			g.Members = append(g.Members, p)
		}
	}
	b, err := json.Marshal(g)
	if err != nil {
		return Group{}, err
	}
	rev, err := s.groups.Create(ctx, g.ID, b)
	if err != nil {
		return Group{}, err
	}
	return g, s.gcache.waitApplied(ctx, rev)
}

// Group returns the group with this ID (ErrNoGroup), from memory.
func (s *Store) Group(ctx context.Context, id string) (Group, error) {
	if err := ctx.Err(); err != nil {
		return Group{}, fmt.Errorf("store: group: %w", err)
	}
	g, ok := s.gcache.get(id)
	if !ok {
		return Group{}, fmt.Errorf("store: group %q: %w", id, ErrNoGroup)
	}
	g.Members = slices.Clone(g.Members)
	return g, nil
}

// GroupsOf returns the groups peer is a member of, oldest first.
func (s *Store) GroupsOf(ctx context.Context, peer string) ([]Group, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: groups of: %w", err)
	}
	var out []Group
	for _, g := range s.gcache.all() {
		if g.Has(peer) {
			g.Members = slices.Clone(g.Members)
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b Group) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// AddToGroup adds peers (relay members) to group id on behalf of by, who must be a
// group member (ErrNotAllowed). Concurrent edits do not lose each other: each is a
// compare-and-set on the group's revision, retried on conflict.
func (s *Store) AddToGroup(ctx context.Context, id, by string, peers ...string) (Group, error) {
	if err := s.checkMembers(peers); err != nil {
		return Group{}, fmt.Errorf("store: add to group %s: %w", id, err)
	}
	g, err := s.editGroup(ctx, id, func(g *Group) error {
		if !g.Has(by) {
			return fmt.Errorf("%s is not in the group: %w", by, ErrNotAllowed)
		}
		for _, p := range peers {
			if !g.Has(p) {
				g.Members = append(g.Members, p)
			}
		}
		return nil
	})
	if err != nil {
		return Group{}, fmt.Errorf("store: add to group %s: %w", id, err)
	}
	return g, nil
}

// RemoveFromGroup removes peers from group id on behalf of by: a member may remove
// itself, the owner anyone (ErrNotAllowed otherwise). If the owner leaves, the first
// remaining member becomes the owner; a group left empty is deleted.
func (s *Store) RemoveFromGroup(ctx context.Context, id, by string, peers ...string) (Group, error) {
	g, err := s.editGroup(ctx, id, func(g *Group) error {
		for _, p := range peers {
			if p != by && g.Owner != by {
				return fmt.Errorf("%s may not remove %s: %w", by, p, ErrNotAllowed)
			}
		}
		for _, p := range peers {
			g.remove(p)
		}
		return nil
	})
	if err != nil {
		return Group{}, fmt.Errorf("store: remove from group %s: %w", id, err)
	}
	return g, nil
}

// editGroup applies edit to group id as a compare-and-set on its revision, retrying
// when another edit came first.
func (s *Store) editGroup(ctx context.Context, id string, edit func(*Group) error) (Group, error) {
	if !validToken(id, maxPeerIDLen) {
		return Group{}, ErrNoGroup
	}
	for range maxCASAttempts {
		e, err := s.groups.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return Group{}, ErrNoGroup
		} else if err != nil {
			return Group{}, err
		}
		g, err := decodeGroup(e.Value())
		if err != nil {
			return Group{}, fmt.Errorf("decode: %w", err)
		}
		before := slices.Clone(g.Members)
		if err := edit(&g); err != nil {
			return Group{}, err
		}
		if slices.Equal(before, g.Members) {
			return g, nil
		}
		if len(g.Members) == 0 {
			err = s.groups.Delete(ctx, id, jetstream.LastRevision(e.Revision()))
			if err == nil {
				return g, syncWith(ctx, s.gcache, s.groups)
			}
		} else {
			b, err2 := json.Marshal(g)
			if err2 != nil {
				return Group{}, err2
			}
			var rev uint64
			rev, err = s.groups.Update(ctx, id, b, e.Revision())
			if err == nil {
				return g, s.gcache.waitApplied(ctx, rev)
			}
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return Group{}, err
		}
	}
	return Group{}, fmt.Errorf("gave up after %d conflicting edits", maxCASAttempts)
}
