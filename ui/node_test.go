package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/lanchat/lanchat/internal/loopback"
	"github.com/lanchat/lanchat/peer"
)

// These tests run real nodes on 127.0.0.1 with broadcast off; each learns
// the other from its Extra target, so nothing leaves loopback.

// nodePair starts two nodes that know each other, and stops them when the
// test ends.
func nodePair(t *testing.T) (a, b *peer.Node) {
	t.Helper()
	cfg := func(user, nick string) peer.Config {
		dir := t.TempDir()
		return peer.Config{DataDir: dir, Listen: "127.0.0.1", NoBroadcast: true, User: user, Host: "loop",
			Nick: nick, Downloads: filepath.Join(dir, "downloads"),
			Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))}
	}
	for range 10 {
		ca, cb := cfg("gui", "界面"), cfg("bob", "老王")
		ca.Port, cb.Port = loopback.FreePort(t), loopback.FreePort(t)
		if ca.Port == cb.Port {
			continue
		}
		ca.Extra, cb.Extra = []string{fmt.Sprintf("127.0.0.1:%d", cb.Port)}, []string{fmt.Sprintf("127.0.0.1:%d", ca.Port)}
		na, err := peer.New(ca)
		if errors.Is(err, peer.ErrPortInUse) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		nb, err := peer.New(cb)
		if err != nil {
			t.Fatal(err) // a's sockets close with the test binary; rare enough
		}
		run(t, na)
		run(t, nb)
		return na, nb
	}
	t.Fatal("no two free ports")
	return nil, nil
}

func run(t *testing.T, n *peer.Node) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("node did not stop")
		}
	})
}

// pump applies the engine's events to the window on the test goroutine,
// as Run does through fyne.Do, until cond holds.
func pump(t *testing.T, u *UI, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for !cond() {
		select {
		case ev := <-u.events:
			u.Handle(ev)
		case <-deadline:
			t.Fatalf("timed out waiting for %s; contacts %q, messages %q", what, u.ContactRows(), u.Messages())
		}
	}
}

func TestRealNodeMessageAndOffer(t *testing.T) {
	a, b := nodePair(t)
	u := New(test.NewTempApp(t), a, Options{Lang: "zh"})
	u.Window().Resize(fyne.NewSize(900, 600))
	pump(t, u, "bob in the list", func() bool {
		return slices.ContainsFunc(u.ContactRows(), func(r string) bool { return strings.HasPrefix(r, "老王") })
	})
	bobKey := ""
	for k, c := range u.contacts {
		if c.Nick == "老王" {
			bobKey = k
		}
	}
	var guiKey string
	deadline := time.Now().Add(10 * time.Second)
	for guiKey == "" && time.Now().Before(deadline) {
		for _, c := range b.Contacts() {
			if c.Nick == "界面" {
				guiKey = c.Key
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if guiKey == "" {
		t.Fatal("bob never saw the GUI's node")
	}

	// Bob sends a message and offers a file.
	bobEvents, unsub := b.Subscribe()
	defer unsub()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Send(ctx, []string{guiKey}, "你好，这是真的节点", peer.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "季度报告.txt")
	if err := os.WriteFile(file, []byte(strings.Repeat("数据", 5000)), 0o600); err != nil {
		t.Fatal(err)
	}
	go b.Send(ctx, []string{guiKey}, "", peer.SendOptions{Files: []string{file}})
	pump(t, u, "two unread from bob", func() bool { return u.unread[bobKey] == 2 })
	if !slices.Contains(u.ContactRows(), "老王 · lanchat (2)") {
		t.Errorf("rows %q", u.ContactRows())
	}

	u.Select(bobKey)
	msgs := u.Messages()
	if len(msgs) != 2 || !strings.HasSuffix(msgs[0], "\n你好，这是真的节点") || !strings.HasSuffix(msgs[1], "\n📎 季度报告.txt") {
		t.Fatalf("conversation %q", msgs)
	}
	cards := u.offerCards()
	if len(cards) != 1 {
		t.Fatalf("%d offer cards", len(cards))
	}
	test.AssertObjectRendersToMarkup(t, "real_offer_zh.xml", cards[0])

	// Accepting downloads it; the transfer row ends done.
	dir := t.TempDir()
	u.accept(msgsID(u, 1), dir)
	pump(t, u, "download done", func() bool {
		for _, r := range u.transfers {
			if r.t.State == peer.TransferDone {
				return true
			}
		}
		return false
	})
	if got, err := os.ReadFile(filepath.Join(dir, "季度报告.txt")); err != nil || len(got) != len(strings.Repeat("数据", 5000)) {
		t.Errorf("downloaded %d bytes, %v", len(got), err)
	}

	// Typing Chinese and pressing Enter sends it to bob.
	test.Type(u.input, "收到，谢谢！")
	u.input.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	for {
		select {
		case ev := <-bobEvents:
			if m, ok := ev.(peer.MessageEvent); ok && m.Message.Dir == peer.Incoming {
				if m.Message.Text != "收到，谢谢！" {
					t.Fatalf("bob got %q", m.Message.Text)
				}
				pump(t, u, "our message delivered", func() bool {
					return slices.ContainsFunc(u.Messages(), func(s string) bool {
						return strings.Contains(s, "[已送达]") && strings.HasSuffix(s, "\n收到，谢谢！")
					})
				})
				return
			}
		case <-ctx.Done():
			t.Fatal("bob never got the message typed in the window")
		}
	}
}

// msgsID is the ID of message i of the open conversation.
func msgsID(u *UI, i int) string { return u.msgs[i].ID }
