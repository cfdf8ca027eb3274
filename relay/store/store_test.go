package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/leakcheck"
)

// testLogger writes to the test's output, so logs show only for failing tests.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// openStore opens a store on cfg.Dir (a new temporary folder if empty) and closes it
// when the test ends.
func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// enroll makes each peer a member through an invite, as a real join does.
func enroll(t testing.TB, s *Store, peers ...string) {
	t.Helper()
	ctx := context.Background()
	for _, p := range peers {
		secret, err := s.CreateInvite(ctx, time.Hour, "for "+p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeemInvite(ctx, secret, p, "name of "+p); err != nil {
			t.Fatal(err)
		}
	}
}

func env(from, to string, n int) Envelope {
	return Envelope{
		ID:   fmt.Sprintf("%s/%d", from, n),
		From: from,
		To:   to,
		Kind: KindMsg,
		Sent: time.Date(2025, 1, 2, 3, 4, 5, n, time.UTC),
		Body: fmt.Appendf(nil, "body %d", n),
	}
}

func mustEnqueue(t testing.TB, s *Store, e Envelope) uint64 {
	t.Helper()
	seq, dup, err := s.Enqueue(context.Background(), e)
	if err != nil {
		t.Fatalf("enqueue %s: %v", e.ID, err)
	}
	if dup {
		t.Fatalf("enqueue %s: unexpected dup", e.ID)
	}
	return seq
}

func next(t testing.TB, in *Inbox) Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := in.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return d
}

// expectEmpty checks that nothing more is delivered for a short while.
func expectEmpty(t testing.TB, in *Inbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if d, err := in.Next(ctx); err == nil {
		t.Fatalf("unexpected delivery seq %d id %s", d.Seq, d.ID)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("next on empty inbox: %v", err)
	}
}

func pending(t testing.TB, s *Store, peer string) int {
	t.Helper()
	n, err := s.Pending(peer)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEnqueueInboxOrder(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{})
	enroll(t, s, "alice", "bob", "carol")
	var want []Envelope
	for i := range 50 {
		from := []string{"alice", "carol"}[i%2]
		e := env(from, "bob", i)
		if i%5 == 0 {
			e.Group, e.Kind = "g1", KindReceipt
		}
		mustEnqueue(t, s, e)
		want = append(want, e)
	}
	mustEnqueue(t, s, env("bob", "alice", 99)) // another inbox, not delivered to bob
	if got := pending(t, s, "bob"); got != 50 {
		t.Fatalf("pending = %d, want 50", got)
	}
	in, err := s.Inbox(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i, w := range want {
		d := next(t, in)
		if d.Seq <= last {
			t.Fatalf("#%d: seq %d after %d", i, d.Seq, last)
		}
		last = d.Seq
		if d.ID != w.ID || d.From != w.From || d.To != w.To || d.Group != w.Group ||
			d.Kind != w.Kind || !d.Sent.Equal(w.Sent) || !bytes.Equal(d.Body, w.Body) {
			t.Fatalf("#%d: got %+v, want %+v", i, d.Envelope, w)
		}
		if d.Stored.IsZero() {
			t.Fatalf("#%d: no stored time", i)
		}
	}
	expectEmpty(t, in)

	// Next waits for a message enqueued later.
	got := make(chan Delivery, 1)
	go func() {
		d, err := in.Next(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	time.Sleep(20 * time.Millisecond)
	seq := mustEnqueue(t, s, env("alice", "bob", 100))
	select {
	case d := <-got:
		if d.Seq != seq || d.ID != "alice/100" {
			t.Fatalf("late delivery %d %s, want %d alice/100", d.Seq, d.ID, seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not wake for a new message")
	}
}

func TestEnqueueDedup(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{})
	enroll(t, s, "alice", "bob", "carol")
	e := env("alice", "bob", 1)
	seq := mustEnqueue(t, s, e)
	seq2, dup, err := s.Enqueue(context.Background(), e)
	if err != nil || !dup || seq2 != seq {
		t.Fatalf("repeat: seq %d dup %v err %v, want seq %d dup true", seq2, dup, err, seq)
	}
	// The same ID to another recipient is another message.
	e2 := e
	e2.To = "carol"
	if seq3 := mustEnqueue(t, s, e2); seq3 == seq {
		t.Fatal("same ID to another recipient was deduplicated")
	}
	if got := pending(t, s, "bob"); got != 1 {
		t.Fatalf("pending = %d, want 1", got)
	}
	// After delivery and ack, a late resend is still recognised: not delivered again.
	in, err := s.Inbox(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Ack(next(t, in).Seq); err != nil {
		t.Fatal(err)
	}
	seq4, dup, err := s.Enqueue(context.Background(), e)
	if err != nil || !dup || seq4 != seq {
		t.Fatalf("resend after ack: seq %d dup %v err %v, want seq %d dup true", seq4, dup, err, seq)
	}
	expectEmpty(t, in)
}

// A client that resends after a relay crash, not knowing whether its message was
// stored, must not create a second copy.
func TestDedupAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, Config{Dir: dir})
	enroll(t, s, "alice", "bob")
	e := env("alice", "bob", 1)
	seq := mustEnqueue(t, s, e)
	s.Close()
	s = openStore(t, Config{Dir: dir})
	seq2, dup, err := s.Enqueue(context.Background(), e)
	if err != nil || !dup || seq2 != seq {
		t.Fatalf("resend after restart: seq %d dup %v err %v, want seq %d dup true", seq2, dup, err, seq)
	}
	if got := pending(t, s, "bob"); got != 1 {
		t.Fatalf("pending = %d, want 1", got)
	}
}

func TestAckThenReopenNotRedelivered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, Config{Dir: dir})
	enroll(t, s, "alice", "bob")
	for i := range 10 {
		mustEnqueue(t, s, env("alice", "bob", i))
	}
	in, err := s.Inbox(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for range 10 {
		seqs = append(seqs, next(t, in).Seq)
	}
	if err := in.Ack(seqs[2]); err != nil {
		t.Fatal(err)
	}
	if err := in.Ack(seqs[6]); err != nil {
		t.Fatal(err)
	}
	if err := in.Ack(seqs[1]); err != nil { // below the floor: nothing to do
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, Config{Dir: dir})
	if got := pending(t, s, "bob"); got != 3 {
		t.Fatalf("pending after reopen = %d, want 3", got)
	}
	in, err = s.Inbox(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	for i := 7; i < 10; i++ {
		if d := next(t, in); d.ID != fmt.Sprintf("alice/%d", i) || d.Seq != seqs[i] {
			t.Fatalf("got %s seq %d, want alice/%d seq %d", d.ID, d.Seq, i, seqs[i])
		}
	}
	expectEmpty(t, in)
}

func TestNoAckRedeliveredInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, Config{Dir: dir})
	enroll(t, s, "alice", "bob")
	for i := range 5 {
		mustEnqueue(t, s, env("alice", "bob", i))
	}
	in, err := s.Inbox(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		next(t, in)
	}
	in.Close()
	if _, err := in.Next(context.Background()); !errors.Is(err, ErrInboxClosed) {
		t.Fatalf("Next after Close: %v, want ErrInboxClosed", err)
	}
	check := func(s *Store) {
		t.Helper()
		in, err := s.Inbox(context.Background(), "bob")
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		for i := range 5 {
			if d := next(t, in); d.ID != fmt.Sprintf("alice/%d", i) {
				t.Fatalf("#%d: got %s", i, d.ID)
			}
		}
	}
	check(s) // a new session of the same store
	s.Close()
	check(openStore(t, Config{Dir: dir})) // and after a restart
}

func TestInboxReplaced(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{})
	enroll(t, s, "alice", "bob")
	mustEnqueue(t, s, env("alice", "bob", 1))
	old, err := s.Inbox(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	d := next(t, old)
	blocked := make(chan error, 1)
	go func() {
		_, err := old.Next(context.Background())
		blocked <- err
	}()
	in, err := s.Inbox(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-blocked:
		if !errors.Is(err, ErrInboxReplaced) {
			t.Fatalf("old session Next: %v, want ErrInboxReplaced", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("old session's Next did not end")
	}
	if err := old.Ack(d.Seq); !errors.Is(err, ErrInboxReplaced) {
		t.Fatalf("old session Ack: %v, want ErrInboxReplaced", err)
	}
	if d2 := next(t, in); d2.Seq != d.Seq {
		t.Fatalf("new session got seq %d, want %d again", d2.Seq, d.Seq)
	}
	if err := in.Ack(d.Seq + 1); !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("ack of an undelivered seq: %v, want ErrNotDelivered", err)
	}
}

func TestQuota(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{MaxInbox: 5})
	enroll(t, s, "alice", "bob", "carol")
	for i := range 5 {
		mustEnqueue(t, s, env("alice", "bob", i))
	}
	_, _, err := s.Enqueue(context.Background(), env("alice", "bob", 5))
	if !errors.Is(err, ErrInboxFull) {
		t.Fatalf("6th message: %v, want ErrInboxFull", err)
	}
	mustEnqueue(t, s, env("alice", "carol", 5)) // other inboxes are not affected
	in, err := s.Inbox(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Ack(next(t, in).Seq); err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, s, env("alice", "bob", 6)) // room again
	if got := pending(t, s, "bob"); got != 5 {
		t.Fatalf("pending = %d, want 5", got)
	}
	// The refused message was not remembered for dedup: a retry with room succeeds.
	in.Ack(next(t, in).Seq)
	mustEnqueue(t, s, env("alice", "bob", 5))
}

func TestSubjectInjectionRejected(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{})
	enroll(t, s, "alice", "victim")
	mustEnqueue(t, s, env("alice", "victim", 1))
	bad := []string{"", "victim.x", "*", ">", "lc.inbox.victim", "vic tim", "victim\r\n",
		"a|b", "victim/x", "ü", string(make([]byte, maxPeerIDLen+1))}
	ctx := context.Background()
	for _, id := range bad {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			if _, _, err := s.Enqueue(ctx, env("alice", id, 2)); !errors.Is(err, ErrBadID) {
				t.Errorf("Enqueue to: %v", err)
			}
			e := env(id, "victim", 2)
			e.ID = "x/2"
			if _, _, err := s.Enqueue(ctx, e); !errors.Is(err, ErrBadID) {
				t.Errorf("Enqueue from: %v", err)
			}
			if id != "" {
				e := env("alice", "victim", 2)
				e.Group = id
				if _, _, err := s.Enqueue(ctx, e); !errors.Is(err, ErrBadID) {
					t.Errorf("Enqueue group: %v", err)
				}
			}
			if _, err := s.Inbox(ctx, id); !errors.Is(err, ErrBadID) {
				t.Errorf("Inbox: %v", err)
			}
			if _, err := s.Pending(id); !errors.Is(err, ErrBadID) {
				t.Errorf("Pending: %v", err)
			}
			if _, err := s.EnqueueMany(ctx, env("alice", "", 2), []string{"victim", id}); !errors.Is(err, ErrBadID) {
				t.Errorf("EnqueueMany: %v", err)
			}
			if err := s.RemoveMember(ctx, id); !errors.Is(err, ErrBadID) {
				t.Errorf("RemoveMember: %v", err)
			}
		})
	}
	for _, id := range []string{"", "a\nb", "a b", string(make([]byte, maxEnvelopeIDLen+1))} {
		e := env("alice", "victim", 3)
		e.ID = id
		if _, _, err := s.Enqueue(ctx, e); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("Enqueue with ID %q: %v", id, err)
		}
	}
	if got := pending(t, s, "victim"); got != 1 {
		t.Fatalf("victim's pending = %d, want 1", got)
	}
}

func TestEnqueueNonMember(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{})
	enroll(t, s, "alice")
	if _, _, err := s.Enqueue(context.Background(), env("alice", "stranger", 1)); !errors.Is(err, ErrNotMember) {
		t.Fatalf("enqueue to a non-member: %v, want ErrNotMember", err)
	}
	if _, err := s.Inbox(context.Background(), "stranger"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("inbox of a non-member: %v, want ErrNotMember", err)
	}
}

func TestEnqueueMany(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{MaxInbox: 1})
	enroll(t, s, "alice", "bob", "carol", "dave")
	e := env("alice", "", 1)
	e.Group = "g1"
	to := []string{"bob", "carol", "dave"}
	res, err := s.EnqueueMany(context.Background(), e, to)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.To != to[i] || r.Seq == 0 || r.Dup {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	again, err := s.EnqueueMany(context.Background(), e, to)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again {
		if !again[i].Dup || again[i].Seq != res[i].Seq {
			t.Fatalf("repeat %d: %+v, want dup of %+v", i, again[i], res[i])
		}
	}
	// Inboxes are full (MaxInbox 1): the error says so, per recipient.
	_, err = s.EnqueueMany(context.Background(), env("alice", "", 2), to)
	if !errors.Is(err, ErrInboxFull) {
		t.Fatalf("fan-out to full inboxes: %v, want ErrInboxFull", err)
	}
	for _, p := range to {
		if got := pending(t, s, p); got != 1 {
			t.Fatalf("pending of %s = %d, want 1", p, got)
		}
	}
}

func TestCloseEndsNext(t *testing.T) {
	t.Parallel()
	s := openStore(t, Config{})
	enroll(t, s, "bob")
	in, err := s.Inbox(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := in.Next(context.Background())
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for _, ch := range []chan error{done, closed} {
		select {
		case err := <-ch:
			if ch == done && !errors.Is(err, ErrClosed) {
				t.Fatalf("Next after Close: %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close or Next hangs")
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// recordHandler keeps the records logged through it.
type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r)
	return nil
}
func (h *recordHandler) WithAttrs(attrs []slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }

func TestNATSLogsGoToSlog(t *testing.T) {
	t.Parallel()
	h := &recordHandler{}
	s := openStore(t, Config{Logger: slog.New(h)})
	s.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	msgs := make([]string, 0, len(h.recs))
	for _, r := range h.recs {
		msgs = append(msgs, r.Message)
	}
	if !slices.ContainsFunc(msgs, func(m string) bool { return bytes.Contains([]byte(m), []byte("JetStream")) }) {
		t.Fatalf("no NATS log line reached the logger; got %q", msgs)
	}
}

// Close ends every goroutine the store and its NATS server started. Not parallel, so
// the goroutine count is this test's alone.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := Open(context.Background(), Config{Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	enroll(t, s, "alice", "bob")
	mustEnqueue(t, s, env("alice", "bob", 1))
	in, err := s.Inbox(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	next(t, in)
	blocked := make(chan error, 1)
	go func() {
		_, err := in.Next(context.Background())
		blocked <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-blocked; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next across Close: %v", err)
	}
	leakcheck.Goroutines(t, before)
}
