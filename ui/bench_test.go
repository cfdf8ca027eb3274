package ui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/lanchat/lanchat/peer"
)

// openTarget is what opening a long conversation may take.
const openTarget = 300 * time.Millisecond

// longHistory is n messages as an office chat has them: mostly short
// lines, some with several lines, a few long enough to wrap.
func longHistory(key string, n int) []peer.Message {
	ms := make([]peer.Message, n)
	for i := range ms {
		text := fmt.Sprintf("第 %d 条消息 ok", i)
		switch {
		case i%50 == 0:
			text = strings.Repeat("a long line that wraps in the pane, 很长的一行会自动换行。", 4)
		case i%10 == 0:
			text = "first line\nsecond line\n第三行"
		}
		dir := peer.Incoming
		if i%3 == 0 {
			dir = peer.Outgoing
		}
		ms[i] = peer.Message{ID: fmt.Sprint(i), Peer: key, Nick: "Alice", Dir: dir, Text: text,
			Time: at.Add(time.Duration(i) * time.Second), Status: peer.Delivered}
	}
	return ms
}

// BenchmarkOpenConversation10k times opening a conversation of 10,000
// messages and drawing the window, beside the 300 ms target. The list is
// virtualised: only rows in view are built, and only multi-line or long
// messages are measured.
func BenchmarkOpenConversation10k(b *testing.B) {
	eng := newFake(alice, bob)
	eng.history[alice.Key] = longHistory(alice.Key, 10000)
	eng.history[bob.Key] = longHistory(bob.Key, 10000)
	u := New(test.NewTempApp(b), eng, Options{Lang: "en"})
	u.Window().Resize(fyne.NewSize(900, 600))
	keys := []string{alice.Key, bob.Key}
	var total time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		u.Select(keys[i%2])
		u.Window().Canvas().Capture() // drawn, not only laid out
		total += time.Since(start)
		i++
	}
	if len(u.Messages()) != 10000 {
		b.Fatalf("%d messages shown", len(u.Messages()))
	}
	per := total / time.Duration(i)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/open")
	b.ReportMetric(float64(openTarget.Milliseconds()), "target-ms")
	b.Logf("open 10,000-message conversation: %v (target ≤ %v)", per.Round(time.Millisecond), openTarget)
}
