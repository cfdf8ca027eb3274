package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestGroupsConcurrentEdits(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{})
	ctx := context.Background()
	const n = 20
	peers := make([]string, n)
	for i := range peers {
		peers[i] = fmt.Sprintf("p%02d", i)
	}
	enroll(t, s, append([]string{"owner", "m1", "m2"}, peers...)...)
	g, err := s.CreateGroup(ctx, "owner", "all hands", []string{"m1", "m2", "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Members, []string{"owner", "m1", "m2"}) {
		t.Fatalf("members %v", g.Members)
	}
	// 20 concurrent adds and one concurrent leave: none may be lost.
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, p := range peers {
		wg.Go(func() {
			<-start
			by := []string{"owner", "m1"}[i%2]
			if _, err := s.AddToGroup(ctx, g.ID, by, p); err != nil {
				t.Errorf("add %s: %v", p, err)
			}
		})
	}
	wg.Go(func() {
		<-start
		if _, err := s.RemoveFromGroup(ctx, g.ID, "m2", "m2"); err != nil {
			t.Errorf("m2 leaves: %v", err)
		}
	})
	close(start)
	wg.Wait()
	got, err := s.Group(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"owner", "m1"}, peers...)
	slices.Sort(want)
	members := slices.Sorted(slices.Values(got.Members))
	if !slices.Equal(members, want) {
		t.Fatalf("members after concurrent edits:\n got %v\nwant %v", members, want)
	}
	gs, err := s.GroupsOf(ctx, "p07")
	if err != nil || len(gs) != 1 || gs[0].ID != g.ID {
		t.Fatalf("GroupsOf(p07) = %+v, %v", gs, err)
	}
	if gs, _ := s.GroupsOf(ctx, "m2"); len(gs) != 0 {
		t.Fatalf("GroupsOf(m2) = %+v after leaving", gs)
	}
}

func TestGroupPermissions(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{})
	ctx := context.Background()
	enroll(t, s, "owner", "a", "b", "outsider")
	g, err := s.CreateGroup(ctx, "owner", "g", []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"outsider adds", func() error { _, err := s.AddToGroup(ctx, g.ID, "outsider", "outsider"); return err }, ErrNotAllowed},
		{"member removes another", func() error { _, err := s.RemoveFromGroup(ctx, g.ID, "a", "b"); return err }, ErrNotAllowed},
		{"add a non-member of the relay", func() error { _, err := s.AddToGroup(ctx, g.ID, "a", "stranger"); return err }, ErrNotMember},
		{"create with a stranger", func() error { _, err := s.CreateGroup(ctx, "a", "x", []string{"stranger"}); return err }, ErrNotMember},
		{"unknown group", func() error { _, err := s.AddToGroup(ctx, "nosuchgroup", "a", "b"); return err }, ErrNoGroup},
		{"hostile group ID", func() error { _, err := s.RemoveFromGroup(ctx, "x.>", "a", "a"); return err }, ErrNoGroup},
		{"member adds", func() error { _, err := s.AddToGroup(ctx, g.ID, "a", "outsider"); return err }, nil},
		{"owner removes another", func() error { _, err := s.RemoveFromGroup(ctx, g.ID, "owner", "b"); return err }, nil},
		{"owner leaves", func() error { _, err := s.RemoveFromGroup(ctx, g.ID, "owner", "owner"); return err }, nil},
	}
	for _, c := range cases {
		if err := c.do(); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	got, err := s.Group(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != "a" || !slices.Equal(got.Members, []string{"a", "outsider"}) {
		t.Fatalf("group %+v, want owner a and members [a outsider]", got)
	}
	// The last members leave: the group is gone.
	for _, p := range []string{"a", "outsider"} {
		if _, err := s.RemoveFromGroup(ctx, g.ID, p, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Group(ctx, g.ID); !errors.Is(err, ErrNoGroup) {
		t.Fatalf("empty group: %v, want ErrNoGroup", err)
	}
}
