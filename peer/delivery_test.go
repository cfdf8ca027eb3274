package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/leakcheck"
	"github.com/lanchat/lanchat/ipmsg"
)

// TestSilentPeerFails: a peer that stops acking gets the very same datagram
// at least Retries+1 times, and the message fails with ErrNotDelivered once
// both the retries and the deadline are spent. The resend timeout starts
// from the measured round trip (at least 20 ms for a lanchat peer) and
// doubles up to 1 s, so with 2 retries the failure comes after the
// deadline and at most 7 timeouts (3 s) later.
func TestSilentPeerFails(t *testing.T) {
	t.Parallel()
	const timeout = 600 * time.Millisecond
	n := startNode(t, Config{DeliveryTimeout: timeout, Retries: 2})
	f := newFakePeer(t, n, "127.0.0.1")
	f.lanchat = Version // a lanchat peer may be retried from 20 ms
	f.announce(n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// One acknowledged message measures the round trip.
	result := make(chan []Message, 1)
	go func() {
		msgs, _ := n.Send(ctx, []string{f.key()}, "warm-up", SendOptions{})
		result <- msgs
	}()
	p, _ := f.readMode(ipmsg.SendMsg, 5*time.Second)
	f.send(f.packet(ipmsg.RecvMsg, string(p.NoRaw)+"\x00"))
	if msgs := <-result; len(msgs) != 1 || msgs[0].Status != Delivered {
		t.Fatalf("warm-up: %+v", msgs)
	}

	// Now the peer is silent.
	start := time.Now()
	go func() {
		msgs, _ := n.Send(ctx, []string{f.key()}, "anyone there?", SendOptions{})
		result <- msgs
	}()
	var copies [][]byte
	var msgs []Message
	for msgs == nil {
		select {
		case msgs = <-result:
		default:
			if _, b, ok := f.read(50 * time.Millisecond); ok {
				copies = append(copies, b)
			}
		}
	}
	took := time.Since(start)
	for { // datagrams that were queued when Send returned
		_, b, ok := f.read(10 * time.Millisecond)
		if !ok {
			break
		}
		copies = append(copies, b)
	}
	if len(msgs) != 1 || msgs[0].Status != Failed || !strings.HasPrefix(msgs[0].Error, ErrNotDelivered.Error()) {
		t.Fatalf("Send to a silent peer: %+v, want failed with %q", msgs, ErrNotDelivered)
	}
	if took < timeout || took > timeout+3*time.Second {
		t.Errorf("failed after %v, want about the delivery timeout %v", took, timeout)
	}
	retries := n.cfg.Retries
	if len(copies) < retries+1 {
		t.Errorf("%d datagrams, want at least %d", len(copies), retries+1)
	}
	for i, b := range copies {
		if !bytes.Equal(b, copies[0]) {
			t.Errorf("resend %d differs:\n%q\n%q", i, b, copies[0])
		}
	}
	if s := n.Stats(); s.Failed != 1 || s.Acked != 1 || s.Retransmits < retries {
		t.Errorf("stats %+v", s)
	}
	h, _ := n.History(f.key(), 0)
	if len(h) != 2 || h[1].Status != Failed || h[1].Error != msgs[0].Error {
		t.Errorf("history %+v", h)
	}
}

// TestLongTextToFeiQ: 20 KB of Chinese to a FeiQ peer goes as several
// SENDMSG, each at most FeiQ's 4096-byte buffer, in order, in GBK, and the
// parts rebuild the text.
func TestLongTextToFeiQ(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f := newFakePeer(t, n, "127.0.0.1")
	f.version = "1_lbt6_0#128#C85B76BD9F3F#0#0#0#4001#9"
	f.status = ipmsg.FileAttachOpt | ipmsg.EncryptOpt // FeiQ's 0x600000: no UTF-8
	f.nick, f.group = "飞秋用户", ""
	c := f.announce(n)
	if c.Client != "feiq" || c.Charset != "gbk" {
		t.Fatalf("contact %+v, want a feiq peer spoken to in gbk", c)
	}
	got := f.ackLoop()

	var sb strings.Builder
	for i := 0; sb.Len() < 30000; i++ { // 30 KB of UTF-8 is 20 KB of GBK
		sb.WriteString("中文消息测试，第")
		sb.WriteString(strings.Repeat("一", i%7))
		sb.WriteString("行。")
		if i%5 == 4 {
			sb.WriteString("\n")
		}
	}
	text := sb.String()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := n.Send(ctx, []string{f.key()}, text, SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 5 {
		t.Fatalf("%d parts for %d GBK bytes, want at least 5", len(msgs), len(ipmsg.GB18030.Encode(text)))
	}
	var joined strings.Builder
	for i, m := range msgs {
		if m.Status != Delivered || m.Part != i+1 || m.Parts != len(msgs) {
			t.Errorf("part %d: %+v", i+1, m)
		}
		joined.WriteString(m.Text)
	}
	if joined.String() != text {
		t.Error("message parts do not rebuild the text")
	}

	var wire strings.Builder
	seen := map[uint64]bool{}
	var order []uint64
	for len(order) < len(msgs) {
		var b []byte
		select {
		case b = <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d parts arrived", len(order), len(msgs))
		}
		p, err := ipmsg.Parse(b)
		if err != nil || p.Command.Mode() != ipmsg.SendMsg || seen[p.No] {
			continue
		}
		seen[p.No] = true
		if len(b) > ipmsg.MaxSendFeiQ {
			t.Errorf("part %d is %d bytes on the wire, FeiQ reads %d", len(order)+1, len(b), ipmsg.MaxSendFeiQ)
		}
		if p.Command != ipmsg.SendMsg|ipmsg.SendCheckOpt {
			t.Errorf("part command %v, want SENDMSG|SENDCHECKOPT without UTF-8 flags", p.Command)
		}
		order = append(order, p.No)
		wire.WriteString(ipmsg.GB18030.Decode(p.Section(0)))
	}
	for i, no := range order {
		if no != msgs[i].PacketNo {
			t.Errorf("part %d arrived as packet %d, want %d", i+1, no, msgs[i].PacketNo)
		}
	}
	if wire.String() != text {
		t.Error("the datagrams do not rebuild the text in order")
	}
}

// TestStopWhileSending cancels a node while a message is being retried to
// a silent peer and another waits behind it: Run returns promptly, both
// sends end with ErrStopped instead of hanging, a later Send is refused
// with ErrStopped, and no goroutine is left. Not parallel, so that the
// goroutine count is its own.
func TestStopWhileSending(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		n := startNode(t, Config{DeliveryTimeout: time.Minute})
		f := newFakePeer(t, n, "127.0.0.1")
		f.announce(n)
		results := make(chan []Message, 2)
		errs := make(chan error, 2)
		for _, text := range []string{"first", "second"} {
			go func() {
				msgs, err := n.Send(context.Background(), []string{f.key()}, text, SendOptions{})
				errs <- err
				results <- msgs
			}()
		}
		f.readMode(ipmsg.SendMsg, 5*time.Second) // one is in flight
		eventually(t, 5*time.Second, "both queued", func() bool {
			h, _ := n.History(f.key(), 0)
			return len(h) == 2
		})
		start := time.Now()
		n.stop()
		if d := time.Since(start); d > time.Second {
			t.Errorf("Run took %v to return", d)
		}
		for range 2 {
			select {
			case err := <-errs:
				msgs := <-results
				if err != nil || len(msgs) != 1 || msgs[0].Status != Failed || msgs[0].Error != ErrStopped.Error() {
					t.Errorf("Send during stop: %+v, %v; want failed with %q", msgs, err, ErrStopped)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Send hangs after the node stopped")
			}
		}
		if _, err := n.Send(context.Background(), []string{f.key()}, "too late", SendOptions{}); !errors.Is(err, ErrStopped) {
			t.Errorf("Send after stop: %v, want ErrStopped", err)
		}
	}()
	leakcheck.Goroutines(t, before)
}

// TestFastAckHistoryOrder sends many messages to a peer that acks at once.
// Each message must be in history, and reported, before its delivery:
// otherwise the status update precedes the message line, history.read
// drops it, and the message reads "sending" forever (and a subscriber sees
// Delivered before the message itself).
func TestFastAckHistoryOrder(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{Logger: testLogger(t, slog.LevelInfo)})
	f := newFakePeer(t, n, "127.0.0.1")
	f.lanchat = Version
	f.announce(n)
	f.ackLoop()
	drainEvents(n.events)
	const count = 1000
	seen := map[string]bool{} // message events by ID
	for i := range count {
		msgs, err := n.Send(context.Background(), []string{f.key()}, "msg "+strconv.Itoa(i), SendOptions{})
		if err != nil || len(msgs) != 1 || msgs[0].Status != Delivered {
			t.Fatalf("send %d: %+v, %v", i, msgs, err)
		}
		for _, ev := range drainEvents(n.events) {
			switch e := ev.(type) {
			case MessageEvent:
				seen[e.Message.ID] = true
			case StatusEvent:
				if !seen[e.ID] {
					t.Errorf("StatusEvent %s for %s before its MessageEvent", e.Status, e.ID)
				}
			}
		}
	}
	h, err := n.History(f.key(), 0)
	if err != nil || len(h) != count {
		t.Fatalf("history has %d messages (%v), want %d", len(h), err, count)
	}
	bad := 0
	for _, m := range h {
		if m.Status != Delivered {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d delivered messages are not delivered in history", bad, count)
	}
}

// TestSendRacingStop starts sends on many contacts just as the node stops.
// Each must end (delivered, failed or refused), never wait forever for a
// sender goroutine that already quit. The race is narrow, so this is a
// stress test: it rarely failed before the fix.
func TestSendRacingStop(t *testing.T) {
	t.Parallel()
	sink := newFakePeer(t, nil, "127.0.0.1")
	deadline := time.Now().Add(time.Second)
	for iter := 0; time.Now().Before(deadline); iter++ {
		n := newNode(t, Config{DeliveryTimeout: time.Minute, Logger: testLogger(t, slog.LevelError)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		var wg sync.WaitGroup
		release := make(chan struct{})
		for g := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-release
				for i := range 3 {
					o := &outgoing{msg: Message{ID: fmt.Sprint("o", g, "-", i), Peer: "k"}, pkt: []byte("x"),
						to: sink.addr, result: make(chan Message, 1)}
					if n.queue(fmt.Sprint("k", g%4), o) != nil {
						return
					}
					select {
					case <-o.result:
					case <-time.After(2 * time.Second):
						t.Errorf("iteration %d: a message queued as the node stopped never finished", iter)
						return
					}
				}
			}()
		}
		close(release)
		cancel()
		<-done
		wg.Wait()
	}
}

// TestSendGivesUpThenSendsAgain: a Send whose context ends before the ack
// returns the context's error, and the sends after it, many at once, are
// each woken by their own deliveries: a waiter's wake-up (waker.go) is
// neither lost nor stolen by another Send.
func TestSendGivesUpThenSendsAgain(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{})
	f := newFakePeer(t, n, "127.0.0.1")
	f.lanchat = Version
	f.announce(n)

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := n.Send(short, []string{f.key()}, "nobody answers yet", SendOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send past its deadline: %v, want %v", err, context.DeadlineExceeded)
	}

	f.ackLoop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const senders, each = 8, 50
	errs := make(chan error, senders)
	for s := range senders {
		go func() {
			for i := range each {
				msgs, err := n.Send(ctx, []string{f.key()}, fmt.Sprintf("sender %d message %d", s, i), SendOptions{})
				if err == nil && (len(msgs) != 1 || msgs[0].Status != Delivered) {
					err = fmt.Errorf("sender %d message %d: %+v", s, i, msgs)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range senders {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
