package ui

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"

	"github.com/lanchat/lanchat/peer"
)

// fakeEngine embeds Engine so a test overrides only what it uses.
type fakeEngine struct {
	Engine
	contacts []peer.Contact
	history  map[string][]peer.Message

	mu       sync.Mutex
	sent     chan sent
	accepted []string // offer IDs, with ":" and the folder when one was given
	declined []string
	opened   []string
	names    [][2]string
	away     []string // "on:text" or "off:text" per SetAway
	self     peer.Self
}

func (f *fakeEngine) SetAway(away bool, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.away = append(f.away, fmt.Sprintf("%v:%s", away, text))
}

func (f *fakeEngine) SetName(nick, group string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names = append(f.names, [2]string{nick, group})
	f.self.Nick, f.self.Group = nick, group
}

func (f *fakeEngine) Open(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened = append(f.opened, id)
	return nil
}

func (f *fakeEngine) Self() peer.Self {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.self
}

// locked reads the fake's records under its lock.
func (f *fakeEngine) locked(read func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	read()
}

type sent struct {
	to   []string
	text string
	opt  peer.SendOptions
}

func newFake(cs ...peer.Contact) *fakeEngine {
	return &fakeEngine{contacts: cs, history: map[string][]peer.Message{}, sent: make(chan sent, 10),
		self: peer.Self{User: "me", Host: "mypc", Nick: "Me", AwayText: "I am away."}}
}

func (f *fakeEngine) Contacts() []peer.Contact { return f.contacts }
func (f *fakeEngine) Transfers() []peer.Transfer {
	return nil
}

func (f *fakeEngine) Subscribe() (<-chan peer.Event, func()) {
	return make(chan peer.Event), func() {}
}

func (f *fakeEngine) History(who string, _ int) ([]peer.Message, error) {
	return slices.Clone(f.history[who]), nil
}

func (f *fakeEngine) Send(_ context.Context, to []string, text string, opt peer.SendOptions) ([]peer.Message, error) {
	f.sent <- sent{to, text, opt}
	return nil, nil
}

func (f *fakeEngine) Accept(id, dir string) ([]peer.Transfer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if dir != "" {
		id += ":" + dir
	}
	f.accepted = append(f.accepted, id)
	return nil, nil
}

func (f *fakeEngine) Decline(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.declined = append(f.declined, id)
	return nil
}

var (
	alice = peer.Contact{Key: "alice@pc1", Nick: "Alice", Group: "研发部", Client: "lanchat"}
	bob   = peer.Contact{Key: "bob@pc2", Nick: "老王", Group: "研发部", Client: "ipmsg", Away: true}
	carol = peer.Contact{Key: "carol@pc3", Nick: "Carol", Group: "Sales", Client: "feiq"}
	dave  = peer.Contact{Key: "dave@pc4", Nick: "Dave", Client: "iptux"}
)

func newUI(t *testing.T, lang string, eng Engine) *UI {
	t.Helper()
	app := test.NewTempApp(t)
	u := New(app, eng, Options{Lang: lang})
	u.Window().Resize(fyne.NewSize(900, 600))
	return u
}

func TestContactsGrouped(t *testing.T) {
	u := newUI(t, "en", newFake(carol, bob, dave, alice))
	want := []string{
		"# No group",
		"Dave · iptux",
		"# Sales",
		"Carol · FeiQ",
		"# 研发部",
		"Alice · lanchat",
		"老王 · IP Messenger / Feige · away",
	}
	if got := u.ContactRows(); !slices.Equal(got, want) {
		t.Errorf("rows:\n%q\nwant\n%q", got, want)
	}

	test.Type(u.search, "car")
	if got := u.ContactRows(); !slices.Equal(got, []string{"# Sales", "Carol · FeiQ"}) {
		t.Errorf("search car: %q", got)
	}
	u.search.SetText("")

	u.Handle(peer.ContactEvent{Change: "left", Contact: dave})
	u.Handle(peer.ContactEvent{Change: "joined", Contact: peer.Contact{Key: "eve@pc5", Nick: "Eve", Client: "lanchat"}})
	want = []string{"# No group", "Eve · lanchat", "Dave · iptux · offline"}
	if got := u.ContactRows()[:3]; !slices.Equal(got, want) {
		t.Errorf("after leave/join: %q, want %q", got, want)
	}
}

// TestRelayPaths: a relay member shows how it is reached, and when it is
// offline.
func TestRelayPaths(t *testing.T) {
	member := func(key, nick, path string, offline bool) peer.Contact {
		return peer.Contact{Key: key, Nick: nick, Group: "上海", Client: "lanchat", Via: peer.ViaRelay, Path: path, Offline: offline}
	}
	u := newUI(t, "zh", newFake(member("li@sh1", "李四", peer.PathDirect, false),
		member("wang@sh2", "王五", peer.PathRelayed, false), member("zhao@sh3", "赵六", "", true)))
	want := []string{"# 上海", "李四 · lanchat · 直连", "王五 · lanchat · 经中继", "赵六 · lanchat · 离线"}
	if got := u.ContactRows(); !slices.Equal(got, want) {
		t.Errorf("rows:\n%q\nwant\n%q", got, want)
	}
}

func TestChineseStrings(t *testing.T) {
	u := newUI(t, "zh", newFake(dave, carol))
	want := []string{"# 未分组", "Dave · iptux", "# Sales", "Carol · 飞秋"}
	if got := u.ContactRows(); !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
	if u.sendButton.Text != "发送" {
		t.Errorf("send button %q", u.sendButton.Text)
	}
}

func TestEnterSendsShiftEnterNewLine(t *testing.T) {
	eng := newFake(alice, bob)
	u := newUI(t, "zh", eng)
	u.Select(alice.Key)
	test.Type(u.input, "你好")
	u.input.KeyDown(&fyne.KeyEvent{Name: desktop.KeyShiftLeft})
	u.input.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	u.input.KeyUp(&fyne.KeyEvent{Name: desktop.KeyShiftLeft})
	test.Type(u.input, "世界")
	if u.input.Text != "你好\n世界" {
		t.Fatalf("entry %q after Shift+Enter", u.input.Text)
	}
	select {
	case s := <-eng.sent:
		t.Fatalf("Shift+Enter sent %q", s.text)
	default:
	}
	u.input.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	select {
	case s := <-eng.sent:
		if s.text != "你好\n世界" || !slices.Equal(s.to, []string{alice.Key}) || s.opt.Seal {
			t.Errorf("sent %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Enter did not send")
	}
	if u.input.Text != "" {
		t.Errorf("entry not cleared: %q", u.input.Text)
	}

	// The send button sends too, sealed when Seal is checked.
	test.Type(u.input, "密封")
	test.Tap(u.sealCheck)
	test.Tap(u.sendButton)
	select {
	case s := <-eng.sent:
		if s.text != "密封" || !s.opt.Seal {
			t.Errorf("sent %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the button did not send")
	}
}

func TestIncomingMessages(t *testing.T) {
	eng := newFake(alice, bob)
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.Local)
	eng.history[alice.Key] = []peer.Message{
		{ID: "1", Peer: alice.Key, Nick: "Alice", Dir: peer.Incoming, Text: "早上好", Time: now, Status: peer.Received},
	}
	u := newUI(t, "en", eng)
	u.Select(alice.Key)
	if len(u.Messages()) != 1 {
		t.Fatalf("history: %q", u.Messages())
	}

	u.Handle(peer.MessageEvent{Message: peer.Message{ID: "2", Peer: alice.Key, Nick: "Alice",
		Dir: peer.Incoming, Text: "第一行\n第二行", Time: now, Status: peer.Received}})
	u.Handle(peer.MessageEvent{Message: peer.Message{ID: "3", Peer: bob.Key, Nick: "老王",
		Dir: peer.Incoming, Text: "在吗", Time: now, Status: peer.Received}})
	u.Handle(peer.MessageEvent{Message: peer.Message{ID: "4", Peer: alice.Key, Nick: "me",
		Dir: peer.Outgoing, Text: "hi", Time: now, Status: peer.Sending}})
	u.Handle(peer.StatusEvent{ID: "4", Peer: alice.Key, Status: peer.Delivered})

	msgs := u.Messages()
	if len(msgs) != 3 || msgs[1] != "Alice  2025-01-02 03:04:05\n第一行\n第二行" ||
		msgs[2] != "→ me  2025-01-02 03:04:05  [delivered]\nhi" {
		t.Errorf("conversation: %q", msgs)
	}
	if u.msgList.Length() != 3 {
		t.Errorf("list length %d", u.msgList.Length())
	}
	rows := u.ContactRows()
	if !slices.Contains(rows, "老王 · IP Messenger / Feige · away (1)") {
		t.Errorf("no unread count for bob: %q", rows)
	}
	if u.Window().Title() != "(1) lanchat" {
		t.Errorf("title %q", u.Window().Title())
	}
	u.Select(bob.Key)
	if slices.Contains(u.ContactRows(), "老王 · IP Messenger / Feige · away (1)") || u.unread[bob.Key] != 0 {
		t.Errorf("unread not cleared: %q", u.ContactRows())
	}

	// A message from someone not yet known still lands in the list.
	u.Handle(peer.MessageEvent{Message: peer.Message{ID: "5", Peer: "zoe@pc9", Nick: "Zoe",
		Dir: peer.Incoming, Text: "hey", Time: now}})
	if !slices.Contains(u.ContactRows(), "Zoe · offline (1)") {
		t.Errorf("unknown sender: %q", u.ContactRows())
	}
}

func TestOfferAcceptDecline(t *testing.T) {
	eng := newFake(alice)
	u := newUI(t, "en", eng)
	u.Select(alice.Key)
	offer := func(id string) peer.Message {
		return peer.Message{ID: id, Peer: alice.Key, Nick: "Alice", Dir: peer.Incoming, Time: time.Now(),
			Files: []peer.File{{ID: 1, Name: "报告.pdf", Size: 2048}, {ID: 2, Name: "photos", Folder: true}}}
	}
	u.Handle(peer.MessageEvent{Message: offer("o1")})
	u.Handle(peer.MessageEvent{Message: offer("o2")})
	cards := u.offerCards()
	if len(cards) != 2 {
		t.Fatalf("%d offer cards", len(cards))
	}
	if cards[0].accept.Text != "Accept" || cards[0].decline.Text != "Decline" {
		t.Errorf("buttons %q %q", cards[0].accept.Text, cards[0].decline.Text)
	}
	test.Tap(cards[0].accept)
	test.Tap(u.offerCards()[0].decline)
	eng.mu.Lock()
	acc, dec := eng.accepted, eng.declined
	eng.mu.Unlock()
	if !slices.Equal(acc, []string{"o1"}) || !slices.Equal(dec, []string{"o2"}) {
		t.Errorf("accepted %q declined %q", acc, dec)
	}
	if len(u.offerCards()) != 0 {
		t.Errorf("offer cards left: %d", len(u.offerCards()))
	}

	u.Handle(peer.TransferEvent{Transfer: peer.Transfer{ID: "t1", Offer: "o1", Peer: alice.Key, Nick: "Alice",
		Dir: peer.Incoming, Name: "报告.pdf", Done: 512, Total: 2048, State: peer.TransferRunning}})
	r := u.transfers["t1"]
	if r == nil || len(u.xferBox.Objects) != 1 || r.bar.Value != 0.25 || !r.cancel.Visible() {
		t.Fatalf("transfer row %+v", r)
	}
	u.Handle(peer.TransferEvent{Transfer: peer.Transfer{ID: "t1", Offer: "o1", Peer: alice.Key, Nick: "Alice",
		Dir: peer.Incoming, Name: "报告.pdf", Done: 2048, Total: 2048, State: peer.TransferDone}})
	if r.bar.Value != 1 || r.cancel.Visible() {
		t.Errorf("done transfer: bar %v cancel %v", r.bar.Value, r.cancel.Visible())
	}
}

func TestRendersChinese(t *testing.T) {
	u := newUI(t, "zh", newFake(alice, bob))
	u.Select(bob.Key)
	u.Handle(peer.MessageEvent{Message: peer.Message{ID: "1", Peer: bob.Key, Nick: "老王",
		Dir: peer.Incoming, Text: "你好，世界", Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}})
	// Rendering the whole window with the bundled font must not panic.
	img := u.Window().Canvas().Capture()
	if img.Bounds().Dx() == 0 {
		t.Fatal("empty capture")
	}
}

// TestNoticesTranslated: the node's notices show in the window's language,
// with their values filled in; one the UI has no translation for shows as
// the node wrote it.
func TestNoticesTranslated(t *testing.T) {
	flood := peer.NoticeEvent{Level: "warn", Text: "10.0.0.9 is flooding port 2425; dropping its packets",
		Format: peer.NoticeFlood, Args: []any{netip.MustParseAddr("10.0.0.9"), 2425}}
	for _, c := range []struct {
		lang string
		ev   peer.NoticeEvent
		want string
	}{
		{"zh", flood, "10.0.0.9 正在向端口 2425 大量发包，已丢弃它的数据包"},
		{"en", flood, flood.Text},
		{"zh", peer.NoticeEvent{Level: "warn", Text: "something new"}, "something new"},
	} {
		u := newUI(t, c.lang, newFake())
		u.Handle(c.ev)
		if u.notice.Text != c.want || !u.notice.Visible() {
			t.Errorf("%s: notice %q (shown %v), want %q", c.lang, u.notice.Text, u.notice.Visible(), c.want)
		}
	}
}
