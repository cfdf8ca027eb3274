package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestInviteExactlyOnceConcurrent(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{})
	ctx := context.Background()
	secret, err := s.CreateInvite(ctx, time.Hour, "one seat")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 26 { // 128 bits in base32
		t.Fatalf("secret %q is too short", secret)
	}
	const n = 20
	var (
		wg      sync.WaitGroup
		won     atomic.Int32
		start   = make(chan struct{})
		winners = make(chan string, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			peer := fmt.Sprintf("peer%02d", i)
			m, err := s.RedeemInvite(ctx, secret, peer, "P")
			switch {
			case err == nil:
				won.Add(1)
				winners <- peer
				if m.ID != peer {
					t.Errorf("member %+v for %s", m, peer)
				}
			case !errors.Is(err, ErrInviteInvalid):
				t.Errorf("%s: %v, want ErrInviteInvalid", peer, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d redeemers won, want exactly 1", won.Load())
	}
	winner := <-winners
	ms, err := s.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != winner {
		t.Fatalf("members = %+v, want only %s", ms, winner)
	}
	if m, ok := s.Member(winner); !ok || m.Invite == "" {
		t.Fatalf("Member(%s) = %+v, %v", winner, m, ok)
	}
	// A retried join by the winner returns its membership; anyone else is refused.
	if m, err := s.RedeemInvite(ctx, strings.ToUpper(secret), winner, "P"); err != nil || m.ID != winner {
		t.Fatalf("retried join: %+v, %v", m, err)
	}
	if _, err := s.RedeemInvite(ctx, secret, "latecomer", "L"); !errors.Is(err, ErrInviteInvalid) {
		t.Fatalf("used invite: %v, want ErrInviteInvalid", err)
	}
	invs, err := s.Invites(ctx)
	if err != nil || len(invs) != 1 || invs[0].UsedBy != winner || invs[0].ID != ms[0].Invite {
		t.Fatalf("invites = %+v, %v", invs, err)
	}
}

func TestInviteInvalid(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{})
	ctx := context.Background()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	secret, err := s.CreateInvite(ctx, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.CreateInvite(ctx, 2*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour) // the first has just expired
	for _, sec := range []string{secret, "", "not-a-secret", strings.Repeat("a", 32),
		secret[:len(secret)-1]} {
		if _, err := s.RedeemInvite(ctx, sec, "bob", "Bob"); !errors.Is(err, ErrInviteInvalid) {
			t.Errorf("redeem %q: %v, want ErrInviteInvalid", sec, err)
		}
	}
	if _, ok := s.Member("bob"); ok {
		t.Fatal("bob joined with an invalid invite")
	}
	// The next CreateInvite sweeps the expired one away.
	if _, err := s.CreateInvite(ctx, time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	if invs, _ := s.Invites(ctx); len(invs) != 2 {
		t.Fatalf("%d invites after the sweep, want 2", len(invs))
	}
	// A member cannot join twice; the invite stays usable.
	if _, err := s.RedeemInvite(ctx, other, "bob", "Bob"); err != nil {
		t.Fatal(err)
	}
	third, _ := s.CreateInvite(ctx, time.Hour, "")
	if _, err := s.RedeemInvite(ctx, third, "bob", "Bob"); !errors.Is(err, ErrAlreadyMember) {
		t.Fatalf("second join: %v, want ErrAlreadyMember", err)
	}
	if _, err := s.RedeemInvite(ctx, third, "carol", "Carol"); err != nil {
		t.Fatalf("invite after a refused join: %v", err)
	}
}

func TestRemoveMember(t *testing.T) {
	t.Parallel()
	removed := make(chan string, 4)
	dir := t.TempDir()
	s := openStore(t, Config{Dir: dir, OnRemove: func(p string) { removed <- p }})
	ctx := context.Background()
	enroll(t, s, "alice", "bob", "carol")
	for i := range 3 {
		mustEnqueue(t, s, env("alice", "bob", i))
	}
	mustEnqueue(t, s, env("bob", "alice", 9))
	g, err := s.CreateGroup(ctx, "bob", "team", []string{"alice", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Inbox(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMember(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Member("bob"); ok {
		t.Fatal("bob still a member")
	}
	select {
	case p := <-removed:
		if p != "bob" {
			t.Fatalf("OnRemove(%s), want bob", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnRemove not called")
	}
	if _, err := in.Next(ctx); !errors.Is(err, ErrNotMember) {
		t.Fatalf("session of a removed member: %v, want ErrNotMember", err)
	}
	if got := pending(t, s, "bob"); got != 0 {
		t.Fatalf("removed member's inbox holds %d", got)
	}
	if got := pending(t, s, "alice"); got != 1 {
		t.Fatalf("alice's inbox holds %d, want 1", got)
	}
	g, err = s.Group(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.Has("bob") || g.Owner != "alice" {
		t.Fatalf("group after removal: %+v, want bob gone and alice owner", g)
	}
	if _, _, err := s.Enqueue(ctx, env("alice", "bob", 5)); !errors.Is(err, ErrNotMember) {
		t.Fatalf("enqueue to removed member: %v", err)
	}
	if err := s.RemoveMember(ctx, "bob"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("second removal: %v, want ErrNotMember", err)
	}
	// The removal is durable, and the members are reloaded on open.
	s.Close()
	s = openStore(t, Config{Dir: dir})
	ms, err := s.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].ID != "alice" || ms[1].ID != "carol" {
		t.Fatalf("members after reopen: %+v", ms)
	}
	select {
	case p := <-removed:
		t.Fatalf("OnRemove(%s) for a removal replayed at open", p)
	default:
	}
}
