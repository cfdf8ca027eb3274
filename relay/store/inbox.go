package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Kinds of envelope the relay protocol uses; the store accepts any lowercase token.
const (
	KindMsg     = "msg"     // a chat message
	KindReceipt = "receipt" // a delivery receipt on its way back to the sender
)

// Envelope is one message on its way to one recipient. The store treats Body as opaque.
type Envelope struct {
	ID    string // sender-chosen, unique per sender, e.g. "<senderPeerID>/<n>"; with To, the dedup key
	From  string // sender peer ID
	To    string // recipient peer ID
	Group string // group ID for group posts, "" for direct
	Kind  string // KindMsg or KindReceipt
	Sent  time.Time
	Body  []byte
}

// Delivery is a stored envelope handed out by an Inbox.
type Delivery struct {
	Seq    uint64    // stream sequence; pass it to Inbox.Ack
	Stored time.Time // when the relay stored it
	Envelope
}

// validToken reports whether id is safe as a NATS subject token and KV key: 1 to max
// characters from [A-Za-z0-9_-]. Base58 and base32 peer IDs qualify; '.', '*', '>',
// spaces and anything else that could address another subject do not.
func validToken(id string, max int) bool {
	if id == "" || len(id) > max {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func checkPeer(id string) error {
	if !validToken(id, maxPeerIDLen) {
		return fmt.Errorf("%w: peer ID %q", ErrBadID, id)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("%w: name must be 1 to %d bytes of UTF-8", ErrBadID, maxNameLen)
	}
	return nil
}

// check validates every field but To.
func (env *Envelope) check() error {
	if env.ID == "" || len(env.ID) > maxEnvelopeIDLen {
		return fmt.Errorf("%w: ID must be 1 to %d bytes", ErrBadEnvelope, maxEnvelopeIDLen)
	}
	for i := 0; i < len(env.ID); i++ {
		if env.ID[i] <= ' ' || env.ID[i] > '~' {
			return fmt.Errorf("%w: ID %q has a byte outside printable ASCII", ErrBadEnvelope, env.ID)
		}
	}
	if err := checkPeer(env.From); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if env.Group != "" && !validToken(env.Group, maxPeerIDLen) {
		return fmt.Errorf("%w: group ID %q", ErrBadID, env.Group)
	}
	if !validToken(env.Kind, maxKindLen) || strings.ToLower(env.Kind) != env.Kind {
		return fmt.Errorf("%w: kind %q", ErrBadEnvelope, env.Kind)
	}
	return nil
}

func inboxSubject(peer string) string { return subjInboxPrefix + peer }

// message encodes env for its inbox subject; see the package doc for the headers.
func (env *Envelope) message() *nats.Msg {
	m := nats.NewMsg(inboxSubject(env.To))
	m.Data = env.Body
	m.Header.Set(hdrID, env.ID)
	m.Header.Set(hdrFrom, env.From)
	m.Header.Set(hdrKind, env.Kind)
	if env.Group != "" {
		m.Header.Set(hdrGroup, env.Group)
	}
	if !env.Sent.IsZero() {
		m.Header.Set(hdrSent, env.Sent.UTC().Format(time.RFC3339Nano))
	}
	return m
}

// dedupID is the Nats-Msg-Id of env: To cannot contain '|', so the pair is unambiguous.
func (env *Envelope) dedupID() string { return env.To + "|" + env.ID }

func decodeDelivery(raw *jetstream.RawStreamMsg) (Delivery, error) {
	to, ok := strings.CutPrefix(raw.Subject, subjInboxPrefix)
	if !ok {
		return Delivery{}, fmt.Errorf("subject %q outside the inbox", raw.Subject)
	}
	d := Delivery{Seq: raw.Sequence, Stored: raw.Time, Envelope: Envelope{
		ID:    raw.Header.Get(hdrID),
		From:  raw.Header.Get(hdrFrom),
		To:    to,
		Group: raw.Header.Get(hdrGroup),
		Kind:  raw.Header.Get(hdrKind),
		Body:  raw.Data,
	}}
	if sent := raw.Header.Get(hdrSent); sent != "" {
		t, err := time.Parse(time.RFC3339Nano, sent)
		if err != nil {
			return Delivery{}, fmt.Errorf("seq %d: %s header: %w", raw.Sequence, hdrSent, err)
		}
		d.Sent = t
	}
	if d.ID == "" || d.From == "" {
		return Delivery{}, fmt.Errorf("seq %d: missing %s or %s header", raw.Sequence, hdrID, hdrFrom)
	}
	return d, nil
}

// Enqueue stores env for env.To and returns once JetStream has acknowledged it (see the
// package doc for what that survives). A repeat of the same (ID, To) within the
// duplicate window is not stored again: it returns the original sequence and dup=true.
// The recipient must be a member (ErrNotMember); a full inbox gives ErrInboxFull.
func (s *Store) Enqueue(ctx context.Context, env Envelope) (seq uint64, dup bool, err error) {
	if err := s.checkRecipient(&env, env.To); err != nil {
		return 0, false, fmt.Errorf("store: enqueue: %w", err)
	}
	ack, err := s.js.PublishMsg(ctx, env.message(),
		jetstream.WithMsgID(env.dedupID()), jetstream.WithExpectStream(streamInbox))
	if err != nil {
		return 0, false, fmt.Errorf("store: enqueue to %s: %w", env.To, publishError(err))
	}
	if !ack.Duplicate {
		s.wake(env.To)
	}
	return ack.Sequence, ack.Duplicate, nil
}

// Stored is the outcome of EnqueueMany for one recipient.
type Stored struct {
	To  string
	Seq uint64
	Dup bool
}

// EnqueueMany is Enqueue of the same envelope for each recipient in to (a group post);
// env.To is ignored. It publishes to all at once and waits for every acknowledgement.
// It is not atomic: on error some recipients may have the message already, and the
// error (errors.Join of one error per failed recipient, each naming it) says which.
// Calling it again with the same envelope is safe: dedup stores nothing twice.
func (s *Store) EnqueueMany(ctx context.Context, env Envelope, to []string) ([]Stored, error) {
	for _, r := range to {
		if err := s.checkRecipient(&env, r); err != nil {
			return nil, fmt.Errorf("store: enqueue many: %w", err)
		}
	}
	futures := make([]jetstream.PubAckFuture, len(to))
	for i, r := range to {
		e := env
		e.To = r
		f, err := s.js.PublishMsgAsync(e.message(),
			jetstream.WithMsgID(e.dedupID()), jetstream.WithExpectStream(streamInbox))
		if err != nil {
			return nil, fmt.Errorf("store: enqueue many to %s: %w", r, err)
		}
		futures[i] = f
	}
	out := make([]Stored, len(to))
	var errs []error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			out[i] = Stored{To: to[i], Seq: ack.Sequence, Dup: ack.Duplicate}
			if !ack.Duplicate {
				s.wake(to[i])
			}
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("to %s: %w", to[i], publishError(err)))
		case <-ctx.Done():
			return nil, fmt.Errorf("store: enqueue many: %w", ctx.Err())
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("store: enqueue many: %w", errors.Join(errs...))
	}
	return out, nil
}

func (s *Store) checkRecipient(env *Envelope, to string) error {
	if err := env.check(); err != nil {
		return err
	}
	if err := checkPeer(to); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if _, ok := s.mcache.get(to); !ok {
		return fmt.Errorf("to %s: %w", to, ErrNotMember)
	}
	env.To = to
	return nil
}

// publishError maps JetStream's refusals to the store's errors.
func publishError(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrStoreFailed {
		switch {
		case strings.Contains(apiErr.Description, jsMsgPerSubjectErrMsg):
			return fmt.Errorf("%w: %w", ErrInboxFull, err)
		case strings.Contains(apiErr.Description, jsMaxBytesErrMsg):
			return fmt.Errorf("%w: %w", ErrStoreFull, err)
		}
	}
	return err
}

// wake tells the inbox sessions of peer, on every relay of a cluster, that a message
// was stored. It is sent after JetStream acknowledged the message, so the session's
// next look finds it.
func (s *Store) wake(peer string) {
	if err := s.nc.Publish(subjNotifyPrefix+peer, nil); err != nil {
		s.log.Debug("notify failed", "peer", peer, "err", err)
	}
}

func (s *Store) onNotify(m *nats.Msg) {
	peer := strings.TrimPrefix(m.Subject, subjNotifyPrefix)
	s.mu.Lock()
	in := s.sessions[peer]
	s.mu.Unlock()
	if in != nil {
		select {
		case in.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
		in.mu.Lock()
		f := in.onWake
		in.mu.Unlock()
		if f != nil {
			f()
		}
	}
}

// Inbox is one delivery session of one peer's stored messages.
type Inbox struct {
	s    *Store
	peer string
	subj string
	wake chan struct{} // capacity 1: "look again"; further wake-ups merge into one
	done chan struct{} // closed when the session ends

	nextMu sync.Mutex // serialises Next

	mu        sync.Mutex
	next      uint64 // the sequence to look from
	delivered uint64 // the last sequence handed out
	acked     uint64 // everything up to here is acknowledged
	err       error  // why the session ended
	onWake    func() // see OnWake
}

// OnWake has f called whenever a message may have been stored for the peer,
// so that a caller of TryNext needs no goroutine of its own waiting for one.
// f must not block: it runs on the store's notification goroutine. As with
// Next, a caller should also look every so often on its own (a wake-up can
// be lost in a cluster).
func (in *Inbox) OnWake(f func()) {
	in.mu.Lock()
	in.onWake = f
	in.mu.Unlock()
}

// Inbox starts a delivery session for peer, which must be a member. It starts from the
// first message not yet acknowledged, so messages an earlier session handed out but
// did not acknowledge come again, in order, first. A peer has one session at a time:
// the earlier one ends, and its Next and Ack return ErrInboxReplaced.
func (s *Store) Inbox(ctx context.Context, peer string) (*Inbox, error) {
	if err := checkPeer(peer); err != nil {
		return nil, fmt.Errorf("store: inbox: %w", err)
	}
	if _, ok := s.mcache.get(peer); !ok {
		return nil, fmt.Errorf("store: inbox of %s: %w", peer, ErrNotMember)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: inbox: %w", err)
	}
	in := &Inbox{s: s, peer: peer, subj: inboxSubject(peer), next: 1,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("store: inbox: %w", ErrClosed)
	}
	old := s.sessions[peer]
	s.sessions[peer] = in
	s.mu.Unlock()
	if old != nil {
		old.end(ErrInboxReplaced)
	}
	return in, nil
}

// Next returns the next stored message, waiting until one arrives, ctx ends, or the
// session ends. Call it from one goroutine at a time.
func (in *Inbox) Next(ctx context.Context) (Delivery, error) {
	in.nextMu.Lock()
	defer in.nextMu.Unlock()
	timer := time.NewTimer(inboxPollInterval)
	defer timer.Stop()
	for {
		select { // a wake-up from now on means "look again"
		case <-in.wake:
		default:
		}
		d, ok, err := in.tryNext(ctx)
		if err != nil || ok {
			return d, err
		}
		// Nothing stored. Wait for Enqueue's wake-up; the timer is the safety net for a
		// wake-up lost in a cluster (a relay that died between storing and notifying).
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(inboxPollInterval)
		select {
		case <-in.wake:
		case <-timer.C:
		case <-in.done:
		case <-ctx.Done():
			return Delivery{}, fmt.Errorf("store: inbox next: %w", ctx.Err())
		}
	}
}

// TryNext is Next without the wait: ok is false when nothing is stored.
func (in *Inbox) TryNext(ctx context.Context) (d Delivery, ok bool, err error) {
	in.nextMu.Lock()
	defer in.nextMu.Unlock()
	return in.tryNext(ctx)
}

func (in *Inbox) tryNext(ctx context.Context) (Delivery, bool, error) {
	for {
		if err := in.ended(); err != nil {
			return Delivery{}, false, fmt.Errorf("store: inbox next: %w", err)
		}
		in.mu.Lock()
		from := in.next
		in.mu.Unlock()
		raw, err := in.s.inbox.GetMsg(ctx, from, jetstream.WithGetMsgSubject(in.subj))
		switch {
		case err == nil:
			in.mu.Lock()
			in.next, in.delivered = raw.Sequence+1, raw.Sequence
			in.mu.Unlock()
			d, err := decodeDelivery(raw)
			if err != nil { // not written by Enqueue: skip it, a later Ack removes it
				in.s.log.Warn("undecodable inbox message skipped", "peer", in.peer, "err", err)
				continue
			}
			return d, true, nil
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return Delivery{}, false, nil
		default:
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return Delivery{}, false, fmt.Errorf("store: inbox next: %w", err)
		}
	}
}

// Ack acknowledges every message of this peer up to and including seq, which must
// have been delivered in this session. Acknowledged messages are removed from the
// stream (a purge of the peer's subject below seq+1), durably like Enqueue, and are
// never delivered again. Ack a batch rather than each message: each call is a purge.
func (in *Inbox) Ack(seq uint64) error {
	in.mu.Lock()
	err, delivered, acked := in.err, in.delivered, in.acked
	in.mu.Unlock()
	switch {
	case err != nil:
		return fmt.Errorf("store: ack: %w", err)
	case seq <= acked:
		return nil
	case seq > delivered:
		return fmt.Errorf("store: ack %d: %w (last delivered %d)", seq, ErrNotDelivered, delivered)
	}
	ctx, cancel := in.s.opContext()
	defer cancel()
	if err := in.s.inbox.Purge(ctx, jetstream.WithPurgeSubject(in.subj),
		jetstream.WithPurgeSequence(seq+1)); err != nil {
		return fmt.Errorf("store: ack %d: %w", seq, err)
	}
	in.mu.Lock()
	in.acked = max(in.acked, seq)
	in.mu.Unlock()
	return nil
}

// Close ends the session; messages delivered and not acknowledged stay stored.
func (in *Inbox) Close() error {
	in.end(ErrInboxClosed)
	return nil
}

// end ends the session with reason, once, and unregisters it if it is still current.
func (in *Inbox) end(reason error) {
	in.mu.Lock()
	if in.err != nil {
		in.mu.Unlock()
		return
	}
	in.err = reason
	close(in.done)
	in.mu.Unlock()
	in.s.mu.Lock()
	if in.s.sessions[in.peer] == in {
		delete(in.s.sessions, in.peer)
	}
	in.s.mu.Unlock()
}

func (in *Inbox) ended() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.err
}

// Pending returns how many messages are stored for peer and not acknowledged.
func (s *Store) Pending(peer string) (int, error) {
	if err := checkPeer(peer); err != nil {
		return 0, fmt.Errorf("store: pending: %w", err)
	}
	ctx, cancel := s.opContext()
	defer cancel()
	subj := inboxSubject(peer)
	info, err := s.inbox.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return 0, fmt.Errorf("store: pending of %s: %w", peer, err)
	}
	return int(info.State.Subjects[subj]), nil
}

// dropInbox removes every stored message of peer and ends its session.
func (s *Store) dropInbox(ctx context.Context, peer string, reason error) error {
	s.mu.Lock()
	in := s.sessions[peer]
	s.mu.Unlock()
	if in != nil {
		in.end(reason)
	}
	if err := s.inbox.Purge(ctx, jetstream.WithPurgeSubject(inboxSubject(peer))); err != nil {
		return fmt.Errorf("purge inbox: %w", err)
	}
	return nil
}
