package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/lanchat/lanchat/relay/store"
)

const (
	handshakeTimeout = 10 * time.Second
	// sessionQueue bounds frames waiting for a slow member's connection;
	// presence updates that do not fit end the session (the client
	// reconnects and gets a fresh directory).
	sessionQueue = 4096
	// deliveryWindow is how many deliveries may await the member's ack.
	deliveryWindow = 256
	// inboxPoll is how often every session's pump looks for stored
	// messages without being woken.
	inboxPoll = 30 * time.Second
	maxIDLen  = 128
)

// handleJoin redeems an invite for the connecting peer.
func (s *Server) handleJoin(str network.Stream) {
	defer str.Close()
	str.SetDeadline(time.Now().Add(handshakeTimeout))
	p := str.Conn().RemotePeer()
	f, err := ReadFrame(bufio.NewReader(io.LimitReader(str, 64<<10)))
	if err != nil || f.T != "join" || f.Profile == nil {
		WriteFrame(str, errorFrame(CodeBadRequest, errors.New("expected a join frame")))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if !s.isMember(p) {
		if _, err := s.st.RedeemInvite(ctx, f.Secret, p.String(), f.Profile.Nick); err != nil {
			code := CodeInternal
			if errors.Is(err, store.ErrInviteInvalid) {
				code = CodeBadInvite
			}
			s.log.Warn("join refused", "peer", p, "err", err)
			WriteFrame(str, errorFrame(code, err))
			return
		}
		s.log.Info("member joined", "peer", p, "nick", f.Profile.Nick)
	}
	if err := s.st.SetProfile(ctx, p.String(), f.Profile.Key, f.Profile.Nick, f.Profile.Group); err != nil {
		s.log.Warn("profile", "peer", p, "err", err)
	}
	WriteFrame(str, Frame{T: "joined"})
}

// session is one member's connection.
type session struct {
	srv    *Server
	id     peer.ID
	str    network.Stream
	ctx    context.Context
	cancel context.CancelFunc
	lim    *rate.Limiter
	window chan struct{} // a token per delivery awaiting ack
	dirAt  time.Time     // when the directory its welcome carried was built; under srv.mu

	// An idle member (the common case, thousands of them) costs one
	// goroutine, its reader: the writer and the pump of its stored
	// messages run only while they have work. Both start under a lock
	// that also checks ctx, so after cancel and a pass through both locks
	// none starts again and wg can be waited for.
	wg sync.WaitGroup

	qmu     sync.Mutex
	queue   [][]byte      // encoded frames waiting for the writer
	writing bool          // a writer runs, or the welcome is not written yet
	drained chan struct{} // closed and replaced whenever the writer takes frames

	pmu       sync.Mutex
	pumping   bool // a pump runs
	pumpAgain bool // a wake-up came while it ran

	mu       sync.Mutex
	in       *store.Inbox
	inflight []store.Delivery // delivered, not yet acknowledged, in order
}

func (s *Server) handleSession(str network.Stream) {
	p := str.Conn().RemotePeer()
	if !s.isMember(p) {
		WriteFrame(str, errorFrame(CodeNotMember, fmt.Errorf("%s is not a member of this relay: ask its admin for an invite", p)))
		str.Close()
		return
	}
	str.SetDeadline(time.Now().Add(handshakeTimeout))
	r := bufio.NewReaderSize(str, 512) // larger frames are read past the buffer
	hello, err := ReadFrame(r)
	if err != nil || hello.T != "hello" || hello.Profile == nil {
		WriteFrame(str, errorFrame(CodeBadRequest, errors.New("expected hello")))
		str.Reset()
		return
	}
	str.SetDeadline(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	ss := &session{srv: s, id: p, str: str, writing: true, drained: make(chan struct{}), ctx: ctx, cancel: cancel,
		lim:    rate.NewLimiter(rate.Limit(s.cfg.SendRate), int(s.cfg.SendRate*10)),
		window: make(chan struct{}, deliveryWindow)}
	// Others learn a new or changed profile in full, else just "online".
	before, _ := s.st.Member(p.String())
	newProfile := before.Key != hello.Profile.Key || before.Nick != hello.Profile.Nick || before.Group != hello.Profile.Group
	if err := s.st.SetProfile(ctx, p.String(), hello.Profile.Key, hello.Profile.Nick, hello.Profile.Group); err != nil {
		s.log.Warn("profile", "peer", p, "err", err)
	}
	s.host.ConnManager().Protect(p, "session")
	s.mu.Lock()
	if old := s.sessions[p]; old != nil {
		old.cancel() // the member reconnected: the new session wins
	}
	s.sessions[p] = ss
	s.wg.Add(1)
	s.mu.Unlock()
	context.AfterFunc(ctx, func() { str.Reset() }) // a replaced or removed session stops reading
	s.log.Info("member online", "peer", p, "nick", hello.Profile.Nick)

	welcome, err := s.welcome(ctx, ss, p, hello.DirV)
	if err != nil {
		s.log.Error("welcome", "peer", p, "err", err)
		WriteFrame(str, errorFrame(CodeInternal, err))
		ss.finish()
		return
	}
	// The welcome goes out before any writer starts: presence frames that
	// other sessions queued since this one registered must follow it.
	if err := WriteFrame(str, welcome); err != nil {
		ss.finish()
		return
	}
	ss.qmu.Lock()
	ss.writing = false
	ss.startWriterLocked()
	ss.qmu.Unlock()
	s.announce(ss, true, newProfile)
	if err := ss.openInbox(); err != nil {
		if ctx.Err() == nil {
			s.log.Error("inbox", "peer", p, "err", err)
		}
		ss.finish()
		return
	}
	// The handshake grew this goroutine's stack (the welcome, the store);
	// an idle member's reader lives for days, on a fresh small one.
	go ss.run(r)
}

// run reads the member's frames until the session ends.
func (ss *session) run(r *bufio.Reader) {
	ss.read(r)
	ss.finish()
}

// finish ends the session once its writer and pump have stopped.
func (ss *session) finish() {
	defer ss.srv.wg.Done()
	ss.cancel()
	// Past both locks, no writer or pump can start any more.
	ss.qmu.Lock()
	ss.qmu.Unlock()
	ss.pmu.Lock()
	ss.pmu.Unlock()
	ss.wg.Wait()
	ss.end()
}

// end unregisters the session, if it is still the member's current one.
func (ss *session) end() {
	s := ss.srv
	ss.cancel()
	ss.str.Reset()
	s.mu.Lock()
	current := s.sessions[ss.id] == ss
	if current {
		delete(s.sessions, ss.id)
	}
	s.mu.Unlock()
	ss.mu.Lock()
	if ss.in != nil {
		ss.in.Close()
	}
	ss.mu.Unlock()
	if current {
		s.host.ConnManager().Unprotect(ss.id, "session")
		s.announce(ss, false, false)
		s.log.Info("member offline", "peer", ss.id)
	}
}

// welcome is a new session's first frame; have is the directory version
// the member has from an earlier session.
func (s *Server) welcome(ctx context.Context, ss *session, p peer.ID, have string) (Frame, error) {
	d, err := s.directory(ctx)
	if err != nil {
		return Frame{}, err
	}
	groups, err := s.groupsOf(ctx, p.String())
	if err != nil {
		return Frame{}, err
	}
	// Who is online, and from now on presence for this session: in one
	// step, so that no one's coming or going falls between.
	s.mu.Lock()
	online := s.onlineBitsLocked(d)
	ss.dirAt = d.built
	s.mu.Unlock()
	f := Frame{T: "welcome", Epoch: s.st.Epoch(), DirV: d.version, Online: online, Groups: groups, STUN: s.stunPorts}
	if have != d.version {
		f.Members = d.members
	}
	return f, nil
}

// announce tells every other online member that ss's member came or went:
// with its profile to those whose directory lacks it (it joined since, or
// changed its profile now), else by its ID alone.
func (s *Server) announce(ss *session, online, profile bool) {
	m, ok := s.st.Member(ss.id.String())
	if !ok {
		return
	}
	full := Frame{T: "presence", Members: []Member{{ID: m.ID, Profile: Profile{Key: m.Key, Nick: m.Nick, Group: m.Group}, Online: online}}}
	short := Frame{T: "presence", Off: []string{m.ID}}
	if online {
		short = Frame{T: "presence", On: []string{m.ID}}
	}
	var fullB, shortB []byte
	encode := func(f Frame, b *[]byte) []byte {
		if *b == nil {
			var err error
			if *b, err = AppendFrame(nil, f); err != nil {
				s.log.Error("presence", "err", err)
			}
		}
		return *b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, other := range s.sessions {
		if p == ss.id || other.dirAt.IsZero() { // a session still being welcomed gets the directory
			continue
		}
		// A second's margin: Joined and the directory's time come from
		// different clocks in a cluster, and a profile too many is harmless.
		if profile || !m.Joined.Before(other.dirAt.Add(-time.Second)) {
			other.offer(encode(full, &fullB))
		} else {
			other.offer(encode(short, &shortB))
		}
	}
}

// offer queues an encoded frame, shared by many sessions, that must not
// block the sender; a member too slow to take it loses its session.
func (ss *session) offer(b []byte) {
	if !ss.enqueue(b) && ss.ctx.Err() == nil {
		ss.srv.log.Warn("member too slow; ending its session", "peer", ss.id)
		ss.cancel()
	}
}

// send queues a frame, waiting for room.
func (ss *session) send(f Frame) bool {
	b, err := AppendFrame(nil, f)
	if err != nil {
		ss.srv.log.Error("encode frame", "err", err)
		return true
	}
	for {
		ss.qmu.Lock()
		drained := ss.drained
		ss.qmu.Unlock()
		if ss.enqueue(b) {
			return true
		}
		select {
		case <-drained:
		case <-ss.ctx.Done():
			return false
		}
	}
}

// enqueue adds an encoded frame to the queue if it has room.
func (ss *session) enqueue(b []byte) bool {
	ss.qmu.Lock()
	defer ss.qmu.Unlock()
	if len(ss.queue) >= sessionQueue {
		return false
	}
	ss.queue = append(ss.queue, b)
	ss.startWriterLocked()
	return true
}

// startWriterLocked starts a writer if frames wait and none runs.
func (ss *session) startWriterLocked() {
	if ss.writing || len(ss.queue) == 0 || ss.ctx.Err() != nil {
		return
	}
	ss.writing = true
	ss.wg.Add(1)
	go ss.write()
}

// write sends the queued frames, a batch to one Write, until none is left.
// Its buffer lives no longer than the burst it carries.
func (ss *session) write() {
	defer ss.wg.Done()
	var buf []byte
	for {
		ss.qmu.Lock()
		batch := ss.queue
		ss.queue = nil
		close(ss.drained)
		ss.drained = make(chan struct{})
		if len(batch) == 0 {
			ss.writing = false
			ss.qmu.Unlock()
			return
		}
		ss.qmu.Unlock()
		buf = buf[:0]
		for _, b := range batch {
			buf = append(buf, b...)
		}
		if _, err := ss.str.Write(buf); err != nil {
			ss.cancel()
			return
		}
	}
}

// openInbox starts the delivery of the member's stored messages: a pump
// now, and again whenever the store says one may have come (and every
// inboxPoll, see Server.poll).
func (ss *session) openInbox() error {
	in, err := ss.srv.st.Inbox(ss.ctx, ss.id.String())
	if err != nil {
		return err
	}
	ss.mu.Lock()
	ss.in = in
	ss.mu.Unlock()
	in.OnWake(ss.kickPump)
	ss.kickPump()
	return nil
}

// kickPump starts a pump, or has the running one look again.
func (ss *session) kickPump() {
	ss.pmu.Lock()
	defer ss.pmu.Unlock()
	switch {
	case ss.ctx.Err() != nil:
	case ss.pumping:
		ss.pumpAgain = true
	default:
		ss.pumping = true
		ss.wg.Add(1)
		go ss.pump()
	}
}

// pump delivers the member's stored messages in order, at most
// deliveryWindow ahead of its acks, until none is left.
func (ss *session) pump() {
	defer ss.wg.Done()
	for {
		ss.drain()
		ss.pmu.Lock()
		if !ss.pumpAgain || ss.ctx.Err() != nil {
			ss.pumping = false
			ss.pmu.Unlock()
			return
		}
		ss.pumpAgain = false
		ss.pmu.Unlock()
	}
}

func (ss *session) drain() {
	ss.mu.Lock()
	in := ss.in
	ss.mu.Unlock()
	if in == nil { // a poll before openInbox
		return
	}
	for {
		select {
		case ss.window <- struct{}{}:
		case <-ss.ctx.Done():
			return
		}
		d, ok, err := in.TryNext(ss.ctx)
		if !ok {
			<-ss.window
			switch {
			case err == nil || ss.ctx.Err() != nil:
			case errors.Is(err, store.ErrInboxReplaced), errors.Is(err, store.ErrClosed):
				ss.cancel()
			default: // a busy store: the next wake-up or poll looks again
				ss.srv.log.Warn("inbox", "peer", ss.id, "err", err)
			}
			return
		}
		ss.mu.Lock()
		ss.inflight = append(ss.inflight, d)
		ss.mu.Unlock()
		env := d.Envelope
		if !ss.send(Frame{T: "deliver", Seq: d.Seq, Env: &Envelope{ID: env.ID, From: env.From, Group: env.Group,
			Kind: env.Kind, Sent: env.Sent, Body: env.Body}}) {
			return
		}
	}
}

func (ss *session) read(r *bufio.Reader) {
	for {
		f, err := ReadFrame(r)
		if err != nil {
			if ss.ctx.Err() == nil && !errors.Is(err, io.EOF) && !errors.Is(err, network.ErrReset) {
				ss.srv.log.Debug("session read", "peer", ss.id, "err", err)
			}
			return
		}
		switch f.T {
		case "send":
			if ss.lim.Wait(ss.ctx) != nil {
				return
			}
			ss.handleSend(f)
		case "ping":
			ss.send(Frame{T: "pong"})
		case "ack":
			if err := ss.handleAck(f.Seq); err != nil {
				ss.srv.log.Error("ack", "peer", ss.id, "err", err)
				return
			}
		case "group":
			ss.handleGroup(f)
		default:
			ss.send(Frame{T: "error", Ref: f.Ref, ID: f.ID, Code: CodeBadRequest, Error: fmt.Sprintf("unknown frame %q", f.T)})
		}
		if ss.ctx.Err() != nil {
			return
		}
	}
}

func (ss *session) fail(f Frame, code string, err error) {
	ss.send(Frame{T: "error", ID: f.ID, Ref: f.Ref, Code: code, Error: err.Error()})
}

func (ss *session) handleSend(f Frame) {
	from := ss.id.String()
	switch {
	case f.ID == "" || len(f.ID) > maxIDLen:
		ss.fail(f, CodeBadRequest, errors.New("a send needs an id of at most 128 bytes"))
		return
	case len(f.Body) > MaxBody || !json.Valid(f.Body):
		ss.fail(f, CodeBadRequest, fmt.Errorf("message body must be JSON of at most %d bytes", MaxBody))
		return
	case (f.To == "") == (f.Group == ""):
		ss.fail(f, CodeBadRequest, errors.New("a send goes to a member or to a group"))
		return
	}
	env := store.Envelope{ID: from + "/" + f.ID, From: from, Group: f.Group, Kind: KindMsg, Sent: time.Now(), Body: f.Body}
	var err error
	if f.To != "" {
		if _, ok := ss.srv.st.Member(f.To); !ok {
			ss.fail(f, CodeUnknownPeer, fmt.Errorf("%s is not a member of this relay", f.To))
			return
		}
		env.To = f.To
		_, _, err = ss.srv.st.Enqueue(ss.ctx, env)
	} else {
		var g store.Group
		if g, err = ss.srv.st.Group(ss.ctx, f.Group); err != nil || !contains(g.Members, from) {
			ss.fail(f, CodeNoGroup, fmt.Errorf("no group %s of yours", f.Group))
			return
		}
		var to []string
		for _, m := range g.Members {
			if m != from {
				to = append(to, m)
			}
		}
		_, err = ss.srv.st.EnqueueMany(ss.ctx, env, to)
	}
	switch {
	case errors.Is(err, store.ErrInboxFull):
		ss.fail(f, CodeFull, err)
	case err != nil:
		if ss.ctx.Err() == nil {
			ss.srv.log.Error("enqueue", "peer", ss.id, "err", err)
			ss.fail(f, CodeInternal, errors.New("the relay could not store the message; try again"))
		}
	default:
		ss.send(Frame{T: "stored", ID: f.ID})
	}
}

// handleAck acknowledges deliveries up to seq and sends receipts for the
// direct messages among them.
func (ss *session) handleAck(seq uint64) error {
	ss.mu.Lock()
	in := ss.in
	var done []store.Delivery
	for len(ss.inflight) > 0 && ss.inflight[0].Seq <= seq {
		done = append(done, ss.inflight[0])
		ss.inflight = ss.inflight[1:]
	}
	ss.mu.Unlock()
	if in == nil || len(done) == 0 {
		return nil
	}
	if err := in.Ack(seq); err != nil {
		return err
	}
	for range done {
		<-ss.window
	}
	me := ss.id.String()
	for _, d := range done {
		env := d.Envelope
		if env.Kind != KindMsg || env.Group != "" {
			continue
		}
		ref := strings.TrimPrefix(env.ID, env.From+"/")
		body, _ := json.Marshal(ReceiptBody{Ref: ref, To: me})
		r := store.Envelope{ID: "receipt/" + env.ID, From: me, To: env.From, Kind: KindReceipt, Sent: time.Now(), Body: body}
		if _, _, err := ss.srv.st.Enqueue(ss.ctx, r); err != nil && !errors.Is(err, store.ErrInboxFull) {
			return err
		}
	}
	return nil
}

func (ss *session) handleGroup(f Frame) {
	s, me := ss.srv, ss.id.String()
	for _, p := range f.Peers {
		if _, ok := s.st.Member(p); !ok {
			ss.fail(f, CodeUnknownPeer, fmt.Errorf("%s is not a member of this relay", p))
			return
		}
	}
	var g store.Group
	var err error
	switch f.Op {
	case "create":
		if strings.TrimSpace(f.Name) == "" {
			ss.fail(f, CodeBadRequest, errors.New("a group needs a name"))
			return
		}
		g, err = s.st.CreateGroup(ss.ctx, me, f.Name, append([]string{me}, f.Peers...))
	case "add":
		g, err = s.st.AddToGroup(ss.ctx, f.Group, me, f.Peers...)
	case "remove":
		g, err = s.st.RemoveFromGroup(ss.ctx, f.Group, me, f.Peers...)
	case "list":
		gs, err := s.groupsOf(ss.ctx, me)
		if err != nil {
			ss.fail(f, CodeInternal, err)
			return
		}
		ss.send(Frame{T: "group", Ref: f.Ref, Groups: gs})
		return
	default:
		ss.fail(f, CodeBadRequest, fmt.Errorf("unknown group op %q", f.Op))
		return
	}
	if err != nil {
		code := CodeInternal
		if errors.Is(err, store.ErrNoGroup) || errors.Is(err, store.ErrNotAllowed) {
			code = CodeNoGroup
		}
		ss.fail(f, code, err)
		return
	}
	gf := Frame{T: "group", Groups: []Group{toGroup(g)}}
	reply := gf
	reply.Ref = f.Ref
	ss.send(reply)
	b, err := AppendFrame(nil, gf)
	if err != nil {
		s.log.Error("group", "err", err)
		return
	}
	// Everyone concerned learns of the change, including who was removed.
	concerned := append(append([]string{}, g.Members...), f.Peers...)
	s.mu.Lock()
	for _, m := range concerned {
		p, err := peer.Decode(m)
		if other := s.sessions[p]; err == nil && other != nil && other != ss {
			other.offer(b)
		}
	}
	s.mu.Unlock()
}

func (s *Server) groupsOf(ctx context.Context, member string) ([]Group, error) {
	gs, err := s.st.GroupsOf(ctx, member)
	if err != nil {
		return nil, err
	}
	out := make([]Group, len(gs))
	for i, g := range gs {
		out[i] = toGroup(g)
	}
	return out, nil
}

func toGroup(g store.Group) Group {
	return Group{ID: g.ID, Name: g.Name, Owner: g.Owner, Members: g.Members}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
