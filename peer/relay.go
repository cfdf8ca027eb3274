package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lanchat/lanchat/discovery"
	"github.com/lanchat/lanchat/relay"
	"github.com/lanchat/lanchat/relay/natcheck"
)

// Via says which path reaches a contact.
const (
	ViaLAN   = "lan"
	ViaRelay = "relay"
)

// Contact.Path of a relay member with a connection of its own.
const (
	PathDirect  = relay.PathDirect
	PathRelayed = relay.PathRelayed
)

// GroupPrefix starts the conversation key of a relay group: "group:<ID>".
const GroupPrefix = "group:"

// RelayEvent reports a change of the connection to the relay.
type RelayEvent struct {
	State relay.State `json:"state"`
}

func (RelayEvent) event() {}

// relayLink is the node's side of the relay: the client and what the node
// last told subscribers about it.
type relayLink struct {
	mu     sync.Mutex
	client *relay.Client
	shown  map[string]Contact // relay contacts as last published, by key
	state  relay.State
	// A publish of relay changes is due (relayChanged) and when the last
	// one ran; publishing guards the publish itself, so two never overlap.
	due        bool
	published  time.Time
	publishing sync.Mutex
	// before holds, per conversation, the IDs of the messages from relay
	// members that history had when this process first got one there
	// (keptBefore).
	before map[string]map[string]bool
	run    func(*relay.Client) // starts the client under the node's Run
	// last is, per conversation, closed when its latest send settles: the
	// next send waits for it, so messages keep their order whichever path
	// each takes.
	last map[string]chan struct{}
}

// queue returns what a new send to key waits for, and what it closes when
// it settles.
func (l *relayLink) queue(key string) (prev <-chan struct{}, done func()) {
	ch := make(chan struct{})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]chan struct{}{}
	}
	p := l.last[key]
	if p == nil {
		p = make(chan struct{})
		close(p)
	}
	l.last[key] = ch
	return p, func() {
		close(ch)
		l.mu.Lock()
		if l.last[key] == ch {
			delete(l.last, key)
		}
		l.mu.Unlock()
	}
}

// relayStateFile remembers the last relayed delivery kept.
const relayStateFile = "relay-state.json"

// newRelayClient makes the node's relay client (addrs may be empty: Join
// sets them).
func (n *Node) newRelayClient(addrs []string) (*relay.Client, error) {
	return relay.NewClient(relay.ClientConfig{
		Key: n.key, Relay: addrs, Profile: n.profile(),
		StateFile: filepath.Join(n.cfg.DataDir, relayStateFile),
		Deliver:   n.relayDeliver,
		Sync:      func() error { n.hist.flush(); return nil },
		OnChange:  n.relayChanged,
		Logger:    n.log.With("part", "relay"),
	})
}

func (n *Node) profile() relay.Profile {
	s := n.disc.Self()
	return relay.Profile{Key: discovery.PeerKey(n.cfg.User, n.cfg.Host, uint16(n.cfg.Port)), Nick: s.Nick, Group: s.Group}
}

func (n *Node) relayClient() *relay.Client {
	n.relay.mu.Lock()
	defer n.relay.mu.Unlock()
	return n.relay.client
}

// Join presents a relay invite code. On success the node uses that relay
// from now on and returns its addresses, for the settings.
func (n *Node) Join(ctx context.Context, code string) ([]string, error) {
	n.relay.mu.Lock()
	c := n.relay.client
	if c == nil {
		var err error
		if c, err = n.newRelayClient(nil); err != nil {
			n.relay.mu.Unlock()
			return nil, err
		}
		n.relay.client = c
		if n.relay.run != nil {
			n.relay.run(c)
		}
	}
	n.relay.mu.Unlock()
	return c.Join(ctx, code)
}

// RelayState reports the relay connection; the zero State when the node
// has no relay.
func (n *Node) RelayState() relay.State {
	if c := n.relayClient(); c != nil {
		return c.State()
	}
	return relay.State{}
}

// keptBefore reports whether history held message id in conversation key
// before this process got a message there from the relay. The relay
// client drops a message it kept already, but remembers only since it
// started: a message delivered directly just before this node stopped,
// whose "stored" answer was lost on the way, comes again through the
// relay's store after the restart. History, flushed before that answer,
// has it; its last messages are read once per conversation.
func (n *Node) keptBefore(key, id string) bool {
	n.relay.mu.Lock()
	ids, ok := n.relay.before[key]
	n.relay.mu.Unlock()
	if !ok {
		msgs, err := n.hist.read(key, keptScan)
		if err != nil {
			n.log.Warn("history", "err", err)
		}
		ids = map[string]bool{}
		for _, m := range msgs {
			if m.Dir == Incoming && m.Via == ViaRelay {
				ids[m.ID] = true
			}
		}
		n.relay.mu.Lock()
		if n.relay.before == nil {
			n.relay.before = map[string]map[string]bool{}
		}
		n.relay.before[key] = ids
		n.relay.mu.Unlock()
	}
	return ids[id]
}

// keptScan is how many of a conversation's last messages keptBefore looks
// at: the copies it catches are of the last few sent before a stop.
const keptScan = 200

// relayEvery is how often relay changes are published at most: in a
// presence storm (hundreds of members coming online after a relay restart)
// each change would otherwise compare the whole directory.
const relayEvery = 100 * time.Millisecond

// relayChanged is the relay client's OnChange. It runs on the client's
// session reader, which must not slow down, so it only has the changes
// published soon, off the reader: at once after a quiet spell, else
// relayEvery after the last publish, one publish for all changes meanwhile.
func (n *Node) relayChanged() {
	n.relay.mu.Lock()
	if n.relay.due {
		n.relay.mu.Unlock()
		return
	}
	n.relay.due = true
	wait := time.Until(n.relay.published.Add(relayEvery))
	n.relay.mu.Unlock()
	time.AfterFunc(max(wait, 0), n.publishRelay)
}

// publishRelay publishes what changed in the directory and the connection
// since it last ran.
func (n *Node) publishRelay() {
	n.relay.publishing.Lock()
	defer n.relay.publishing.Unlock()
	n.relay.mu.Lock()
	n.relay.due, n.relay.published = false, time.Now()
	n.relay.mu.Unlock()
	c := n.relayClient()
	if c == nil {
		return
	}
	st := c.State()
	now := map[string]Contact{}
	for _, ct := range n.relayContacts(nil) {
		now[ct.Key] = ct
	}
	var events []Event
	n.relay.mu.Lock()
	if st != n.relay.state {
		n.relay.state = st
		events = append(events, RelayEvent{State: st})
	}
	for k, ct := range now {
		old, ok := n.relay.shown[k]
		switch {
		case !ok:
			events = append(events, ContactEvent{Change: "joined", Contact: ct})
		case old.Offline != ct.Offline || old.Nick != ct.Nick || old.Group != ct.Group || old.Path != ct.Path:
			events = append(events, ContactEvent{Change: "updated", Contact: ct})
		}
	}
	for k, ct := range n.relay.shown {
		if _, ok := now[k]; !ok {
			events = append(events, ContactEvent{Change: "left", Contact: ct})
		}
	}
	n.relay.shown = now
	n.relay.mu.Unlock()
	for _, e := range events {
		n.bus.publish(e)
	}
}

// relayContacts returns the relay members that are not on the LAN (lan
// lists the LAN contacts; nil means look them up).
func (n *Node) relayContacts(lan []Contact) []Contact {
	c := n.relayClient()
	if c == nil {
		return nil
	}
	if lan == nil {
		for _, p := range n.disc.Roster().List() {
			lan = append(lan, Contact{Key: p.Key, ID: p.PeerID})
		}
	}
	onLAN := map[string]bool{}
	for _, ct := range lan {
		onLAN[ct.Key] = true
		if ct.ID != "" {
			onLAN[ct.ID] = true
		}
	}
	var out []Contact
	note := pathNote(c.State())
	for _, m := range c.Members() {
		if onLAN[m.ID] || onLAN[m.Key] {
			continue
		}
		ct := memberContact(m)
		if m.Online {
			ct.Path = c.Path(m.ID)
			if ct.Path != relay.PathDirect {
				ct.PathNote = note
			}
		}
		out = append(out, ct)
	}
	for _, g := range c.Groups() {
		out = append(out, Contact{Key: GroupPrefix + g.ID, Nick: g.Name, Client: "group", Via: ViaRelay,
			ID: g.ID, Members: len(g.Members)})
	}
	return out
}

// pathNote says why members reach this node only through the relay, when
// its own network is the reason.
func pathNote(st relay.State) string {
	switch st.NAT {
	case natcheck.Symmetric.String():
		return "this network's NAT is symmetric: no direct connection is possible, the relay carries everything"
	case natcheck.Blocked.String():
		return "UDP is blocked here: a direct connection can only be punched over TCP, which the NATs on the way have not let through so far; the relay carries the traffic"
	}
	return ""
}

func memberContact(m relay.Member) Contact {
	key := m.Key
	if key == "" {
		key = m.ID
	}
	user, host, _ := strings.Cut(key, "@")
	return Contact{Key: key, Nick: m.Nick, Group: m.Group, User: user, Host: host, Client: "lanchat",
		Charset: "utf-8", Via: ViaRelay, ID: m.ID, Offline: !m.Online}
}

// relayTarget is who a relay send goes to: a member or a group.
type relayTarget struct {
	key, nick string
	to, group string
}

// resolveRelay finds a relay member or group by the same rules as LAN
// contacts: key, peer ID, "group:" name or ID, nickname, or nickname prefix.
func (n *Node) resolveRelay(spec string) (relayTarget, bool, error) {
	c := n.relayClient()
	if c == nil {
		return relayTarget{}, false, nil
	}
	if name, ok := strings.CutPrefix(spec, GroupPrefix); ok {
		var found []relay.Group
		for _, g := range c.Groups() {
			if g.ID == name || g.Name == name {
				found = append(found, g)
			}
		}
		switch len(found) {
		case 0:
			return relayTarget{}, false, nil
		case 1:
			g := found[0]
			return relayTarget{key: GroupPrefix + g.ID, nick: g.Name, group: g.ID}, true, nil
		}
		return relayTarget{}, false, fmt.Errorf("%w %q: several groups have that name; use group:<ID>", ErrAmbiguousPeer, spec)
	}
	members := c.Members()
	for _, match := range []func(relay.Member) bool{
		func(m relay.Member) bool { return m.Key == spec || m.ID == spec },
		func(m relay.Member) bool { return m.Nick == spec || strings.EqualFold(m.Nick, spec) },
		func(m relay.Member) bool { return strings.HasPrefix(strings.ToLower(m.Nick), strings.ToLower(spec)) },
	} {
		var found []relay.Member
		for _, m := range members {
			if match(m) {
				found = append(found, m)
			}
		}
		switch len(found) {
		case 0:
			continue
		case 1:
			ct := memberContact(found[0])
			return relayTarget{key: ct.Key, nick: ct.Nick, to: found[0].ID}, true, nil
		}
		return relayTarget{}, false, fmt.Errorf("%w %q matches several relay members", ErrAmbiguousPeer, spec)
	}
	return relayTarget{}, false, nil
}

// relaySendTimeout is how long a relayed send waits for the relay to store
// it, across a reconnect.
const relaySendTimeout = 30 * time.Second

// sendRelay sends text to a relay member or group. A member who is online
// gets it over libp2p (directly or through a circuit of the relay) and the
// result is Delivered; otherwise, or when that fails, the relay's store
// takes it and the result is Stored (Delivered follows as a StatusEvent),
// or Failed with the reason.
func (n *Node) sendRelay(ctx context.Context, t relayTarget, text string, opt SendOptions) (chan Message, error) {
	c := n.relayClient()
	no := n.nos.Next()
	m := Message{ID: "o" + strconv.FormatUint(no, 10), Peer: t.key, Nick: t.nick, Dir: Outgoing, Text: text,
		Time: time.Now(), Status: Sending, PacketNo: no, Via: ViaRelay}
	body := relay.MessageBody{Text: text, Nick: n.disc.Self().Nick, Sealed: opt.Seal, Auto: opt.autoReply}
	m.Sealed, m.AutoRe = opt.Seal, opt.autoReply
	if opt.Seal && t.group != "" {
		return nil, fmt.Errorf("sealed messages go to one person at a time, not to a relay group")
	}
	if len(opt.Files) > 0 {
		if t.group != "" {
			return nil, fmt.Errorf("files go to one person at a time, not to a relay group")
		}
		var err error
		if body.Files, m.Files, err = n.shareWithMember(no, t.to, opt.Files); err != nil {
			return nil, err
		}
		body.Offer = no
	}
	n.record(m)
	res := make(chan Message, 1)
	prev, done := n.relay.queue(t.key)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer done()
		// The caller hanging up does not cancel a send already recorded;
		// the node stopping does.
		ctx, cancel := n.untilStop(context.WithoutCancel(ctx), relaySendTimeout)
		defer cancel()
		select {
		case <-prev:
		case <-ctx.Done():
		}
		m.Status = Stored
		var err error
		if to, ok := c.Member(t.to); ok && to.Online {
			if err = c.SendDirect(ctx, t.to, m.ID, body); err == nil {
				m.Status = Delivered
			} else {
				n.log.Info("direct send failed; the relay stores it", "to", t.key, "err", err)
			}
		}
		if m.Status != Delivered {
			err = c.Send(ctx, m.ID, t.to, t.group, body)
		}
		if err != nil {
			m.Status, m.Error = Failed, err.Error()
			n.files.srv.Cancel(no) // the member never heard of the offer
		}
		n.hist.update(m.Peer, m.ID, m.Status, m.Error)
		n.bus.publish(StatusEvent{ID: m.ID, Peer: m.Peer, Status: m.Status, Error: m.Error})
		res <- m
	}()
	return res, nil
}

// openRelayed marks a relay member's sealed message opened and tells the
// member.
func (n *Node) openRelayed(ctx context.Context, id string, ref sealedRef) error {
	n.hist.update(ref.peer, id, Opened, "")
	return n.notifyMember(ctx, ref.member, relay.MessageBody{Opened: ref.ref})
}

// notifyMember sends a relay member a notice about one of its messages
// (a body without text): directly when it is online, else through the
// relay's store.
func (n *Node) notifyMember(ctx context.Context, member string, body relay.MessageBody) error {
	c := n.relayClient()
	if c == nil {
		return errors.New("no relay to reach the member through")
	}
	id := "r" + strconv.FormatUint(n.nos.Next(), 10)
	if m, ok := c.Member(member); ok && m.Online {
		if err := c.SendDirect(ctx, member, id, body); err == nil {
			return nil
		}
	}
	return c.Send(ctx, id, member, "", body)
}

// untilStop is ctx, ended also after timeout or when the node stops.
func (n *Node) untilStop(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	go func() {
		select {
		case <-n.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// relayDeliver keeps a message or receipt the relay delivered.
func (n *Node) relayDeliver(env relay.Envelope) error {
	c := n.relayClient()
	sender := env.From
	if m, ok := c.Member(env.From); ok {
		sender = memberContact(m).Key
	}
	switch env.Kind {
	case relay.KindReceipt:
		var r relay.ReceiptBody
		if err := json.Unmarshal(env.Body, &r); err != nil {
			n.log.Warn("relay receipt", "err", err)
			return nil
		}
		n.hist.update(sender, r.Ref, Delivered, "")
		n.bus.publish(StatusEvent{ID: r.Ref, Peer: sender, Status: Delivered})
	case relay.KindMsg:
		var b relay.MessageBody
		if err := json.Unmarshal(env.Body, &b); err != nil {
			n.log.Warn("relay message", "from", env.From, "err", err)
			return nil
		}
		switch {
		case env.Group != "":
		case b.Opened != "":
			// Our sealed message was opened. Only the conversation with
			// this member is searched: no one else can mark it.
			n.hist.update(sender, b.Opened, Opened, "")
			n.bus.publish(StatusEvent{ID: b.Opened, Peer: sender, Status: Opened})
			return nil
		case b.Release != 0:
			// Our offer was declined; it was shared with this member only.
			n.files.srv.Release(b.Release, standIn(env.From))
			n.log.Info("a relay member declined our offer", "member", sender, "offer", b.Release)
			return nil
		}
		m := Message{ID: env.ID, Peer: sender, Nick: b.Nick, Dir: Incoming, Text: b.Text, Time: env.Sent,
			Status: Received, Via: ViaRelay, Sealed: b.Sealed && env.Group == "", AutoRe: b.Auto}
		if env.Group != "" {
			m.Peer, m.From = GroupPrefix+env.Group, sender
		}
		if n.keptBefore(m.Peer, m.ID) {
			n.count(func(s *Stats) { s.Duplicates++ })
			return nil
		}
		if env.Group == "" && b.Files != "" {
			m.Files = n.onMemberOffer(m.ID, env.From, sender, b)
		}
		if m.Sealed {
			n.mu.Lock()
			n.sealed.put(m.ID, sealedRef{peer: m.Peer, member: env.From, ref: strings.TrimPrefix(env.ID, env.From+"/")})
			n.mu.Unlock()
		}
		n.count(func(s *Stats) { s.Received++ })
		n.record(m)
		// Away: the away text answers, as on the LAN, but never a group
		// post or another auto-reply.
		if env.Group == "" && !b.Auto && n.isAway() && n.autoReplyDue(sender) {
			t := relayTarget{key: sender, nick: b.Nick, to: env.From}
			if _, err := n.sendRelay(context.Background(), t, n.absenceText(), SendOptions{autoReply: true}); err != nil {
				n.log.Warn("auto-reply", "to", sender, "err", err)
			}
		}
	}
	return nil
}

// RelayGroup runs a group request on the relay (see relay.Client.Group);
// peers are resolved like send's contacts.
func (n *Node) RelayGroup(ctx context.Context, op, group, name string, peers []string) ([]relay.Group, error) {
	c := n.relayClient()
	if c == nil {
		return nil, errors.New("no relay: join one with `lanchat join CODE`")
	}
	ids := make([]string, 0, len(peers))
	for _, p := range peers {
		t, ok, err := n.resolveRelayMember(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w %q among the relay's members", ErrUnknownPeer, p)
		}
		ids = append(ids, t)
	}
	if group != "" && op != "create" {
		t, ok, err := n.resolveRelay(GroupPrefix + strings.TrimPrefix(group, GroupPrefix))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: no group %q", ErrUnknownPeer, group)
		}
		group = t.group
	}
	return c.Group(ctx, op, group, name, ids)
}

// resolveRelayMember finds a member's peer ID, also for members the LAN
// knows (by their announced identity).
func (n *Node) resolveRelayMember(spec string) (string, bool, error) {
	if p, err := n.resolve(spec); err == nil && p.PeerID != "" {
		return p.PeerID, true, nil
	}
	t, ok, err := n.resolveRelay(spec)
	if err != nil || !ok || t.to == "" {
		return "", false, err
	}
	return t.to, true, nil
}
