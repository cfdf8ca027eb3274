package ui

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"github.com/lanchat/lanchat/internal/settings"
	"github.com/lanchat/lanchat/peer"
)

// at is a fixed time in the local zone, so goldens read the same anywhere.
var at = time.Date(2025, 3, 4, 9, 30, 0, 0, time.Local)

const longLine = "This line is long enough that it cannot fit in the conversation pane and has to wrap " +
	"onto the next lines instead of running off the right edge of the window, 这一行也很长，需要自动换行。"

// conversationFake is a fake with a conversation that has a bit of
// everything: plain, multi-line, long, sealed and sent messages.
func conversationFake() *fakeEngine {
	eng := newFake(alice, bob, carol, dave)
	eng.history[alice.Key] = []peer.Message{
		{ID: "1", Peer: alice.Key, Nick: "Alice", Dir: peer.Incoming, Text: "早上好！", Time: at, Status: peer.Received},
		{ID: "2", Peer: alice.Key, Nick: "Me", Dir: peer.Outgoing, Text: "Morning.\nCoffee?", Time: at, Status: peer.Delivered},
		{ID: "3", Peer: alice.Key, Nick: "Alice", Dir: peer.Incoming, Text: longLine, Time: at, Status: peer.Received},
		{ID: "4", Peer: alice.Key, Nick: "Alice", Dir: peer.Incoming, Text: "秘密", Time: at, Sealed: true, Status: peer.Received},
	}
	return eng
}

func TestMainWindowGolden(t *testing.T) {
	for _, lang := range []string{"en", "zh"} {
		t.Run(lang, func(t *testing.T) {
			u := newUI(t, lang, conversationFake())
			u.Select(alice.Key)
			u.Handle(peer.MessageEvent{Message: peer.Message{ID: "9", Peer: bob.Key, Nick: "老王",
				Dir: peer.Incoming, Text: "在吗", Time: at}})
			test.AssertRendersToMarkup(t, "main_"+lang+".xml", u.Window().Canvas())
		})
	}
}

func TestLongLinesWrap(t *testing.T) {
	u := newUI(t, "en", conversationFake())
	u.Select(alice.Key)
	one := u.newMessageItem()
	u.fillMessage(one, u.msgs[0])
	plain := one.MinSize().Height
	long := u.newMessageItem()
	u.fillMessage(long, u.msgs[2])
	long.Resize(fyne.NewSize(u.msgWidth, 10))
	if long.MinSize().Height < plain+theme.TextSize() { // at least one more line
		t.Errorf("a long line is %v high, a short one %v: it did not wrap", long.MinSize().Height, plain)
	}
	if !long.body.Visible() || long.body.Wrapping != fyne.TextWrapWord {
		t.Error("message text does not wrap at words")
	}
}

func TestOpenSealed(t *testing.T) {
	eng := conversationFake()
	u := newUI(t, "en", eng)
	u.Select(alice.Key)
	if got := u.Messages()[3]; strings.Contains(got, "秘密") || !strings.Contains(got, "open it to read") {
		t.Fatalf("unopened sealed message shows %q", got)
	}
	it := u.newMessageItem()
	u.fillMessage(it, u.msgs[3])
	if !it.openRow.Visible() {
		t.Fatal("no Open button on a sealed message")
	}
	test.Tap(it.open)
	if got := u.Messages()[3]; !strings.HasSuffix(got, "\n秘密") {
		t.Errorf("opened sealed message shows %q", got)
	}
	waitFor(t, func() bool {
		var ok bool
		eng.locked(func() { ok = slices.Equal(eng.opened, []string{"4"}) })
		return ok
	}, "engine Open(4)")
	u.fillMessage(it, u.msgs[3])
	if it.openRow.Visible() {
		t.Error("Open button stays after opening")
	}
	// Our own sealed messages are never hidden from us.
	out := peer.Message{ID: "5", Dir: peer.Outgoing, Sealed: true, Text: "x", Status: peer.Delivered}
	if unopened(out) {
		t.Error("an outgoing sealed message counts as unopened")
	}
}

func TestSendToSeveral(t *testing.T) {
	eng := newFake(alice, bob, carol)
	u := newUI(t, "zh", eng)
	u.Select(bob.Key)
	u.ShowMulti()
	f := u.multi
	if f == nil || len(f.labels) != 3 {
		t.Fatalf("multi form %+v", f)
	}
	if !slices.Equal(f.pick.Selected, []string{f.labels[slices.Index(f.keys, bob.Key)]}) {
		t.Errorf("the open conversation is not ticked: %q", f.pick.Selected)
	}
	test.AssertRendersToMarkup(t, "multi_zh.xml", u.Window().Canvas())

	test.Tap(f.send) // nothing typed
	if f.dlg == nil || u.notice.Text != "请输入消息或添加文件。" {
		t.Errorf("empty send: notice %q", u.notice.Text)
	}
	test.Tap(f.all)
	test.Type(f.text, "下午三点开会")
	f.addFile("/tmp/agenda.txt")
	test.Tap(f.seal)
	test.Tap(f.send)
	s := <-eng.sent
	want := []string{bob.Key, alice.Key, carol.Key}
	slices.Sort(want)
	slices.Sort(s.to)
	if !slices.Equal(s.to, want) || s.text != "下午三点开会" || !s.opt.Seal || !slices.Equal(s.opt.Files, []string{"/tmp/agenda.txt"}) {
		t.Errorf("sent %+v", s)
	}
	if u.multi != nil {
		t.Error("dialog still open after sending")
	}
}

func TestDropFiles(t *testing.T) {
	eng := newFake(alice, carol)
	u := newUI(t, "en", eng)
	w := u.Window()
	w.Resize(fyne.NewSize(900, 600))
	uris := []fyne.URI{storage.NewFileURI("/tmp/a.txt"), storage.NewFileURI("/tmp/photos")}

	// Nothing open and dropped beside the list: the user is told.
	u.Drop(fyne.NewPos(700, 300), uris)
	if !u.notice.Visible() {
		t.Error("a drop with no target says nothing")
	}

	// Onto Carol's row (rows: # Sales, Carol, # 研发部, Alice).
	at := u.app.Driver().AbsolutePositionForObject(u.contactList)
	rowH := u.contactList.CreateItem().MinSize().Height + 4
	u.Drop(fyne.NewPos(at.X+20, at.Y+rowH*1.5), uris)
	s := <-eng.sent
	if !slices.Equal(s.to, []string{carol.Key}) || !slices.Equal(s.opt.Files, []string{"/tmp/a.txt", "/tmp/photos"}) {
		t.Errorf("drop on carol sent %+v", s)
	}

	// Onto the conversation: to the contact open there.
	u.Select(alice.Key)
	u.Drop(fyne.NewPos(700, 300), uris[:1])
	s = <-eng.sent
	if !slices.Equal(s.to, []string{alice.Key}) || !slices.Equal(s.opt.Files, []string{"/tmp/a.txt"}) || s.text != "" {
		t.Errorf("drop on conversation sent %+v", s)
	}
}

func TestOfferSaveAsAndTransfers(t *testing.T) {
	eng := newFake(alice)
	u := newUI(t, "en", eng)
	u.downloads = "/srv/inbox"
	u.Select(alice.Key)
	u.Handle(peer.MessageEvent{Message: peer.Message{ID: "o1", Peer: alice.Key, Nick: "Alice", Dir: peer.Incoming,
		Time: at, Files: []peer.File{{ID: 1, Name: "report.pdf", Size: 3 << 20}}}})
	card := u.offerCards()[0]
	if card.saveAs.Text != "Save as…" {
		t.Errorf("save as button %q", card.saveAs.Text)
	}
	test.Tap(card.accept) // into the download folder from the settings
	eng.locked(func() {
		if !slices.Equal(eng.accepted, []string{"o1:/srv/inbox"}) {
			t.Errorf("accepted %q", eng.accepted)
		}
	})
	u.Handle(peer.TransferEvent{Transfer: peer.Transfer{ID: "t1", Offer: "o1", Peer: alice.Key, Nick: "Alice",
		Dir: peer.Incoming, Name: "report.pdf", Done: 1 << 20, Total: 3 << 20, Rate: 512 << 10,
		ETA: 4 * time.Second, State: peer.TransferRunning}})
	r := u.transfers["t1"]
	if want := "report.pdf  from Alice  running  1.0 MiB / 3.0 MiB  512.0 KiB/s  left 4s"; r.label.Text != want {
		t.Errorf("transfer line %q, want %q", r.label.Text, want)
	}
	test.AssertRendersToMarkup(t, "transfer_en.xml", u.Window().Canvas())
}

func TestSaveAsDialogAccepts(t *testing.T) {
	eng := newFake(alice)
	u := newUI(t, "en", eng)
	u.Select(alice.Key)
	u.Handle(peer.MessageEvent{Message: peer.Message{ID: "o2", Peer: alice.Key, Nick: "Alice", Dir: peer.Incoming,
		Time: at, Files: []peer.File{{ID: 1, Name: "a", Size: 1}}}})
	u.accept("o2", "/chosen/dir") // what the folder dialog calls back with
	eng.locked(func() {
		if !slices.Equal(eng.accepted, []string{"o2:/chosen/dir"}) {
			t.Errorf("accepted %q", eng.accepted)
		}
	})
}

// trayApp is the test app with a tray, as fyne's desktop app has.
type trayApp struct {
	fyne.App
	menu  *fyne.Menu
	icon  fyne.Resource
	trays int
}

func (a *trayApp) SetSystemTrayMenu(m *fyne.Menu)    { a.menu = m; a.trays++ }
func (a *trayApp) SetSystemTrayIcon(r fyne.Resource) { a.icon = r }

func TestTrayAwayNotifications(t *testing.T) {
	eng := newFake(alice, bob)
	app := &trayApp{App: test.NewTempApp(t)}
	u := New(app, eng, Options{Lang: "en", Tray: true})
	u.Window().Show()
	if app.menu == nil || app.icon != IconResource(false) {
		t.Fatal("no tray menu or icon")
	}
	labels := func() []string {
		var out []string
		for _, it := range app.menu.Items {
			out = append(out, it.Label)
		}
		return out
	}
	if got := labels(); !slices.Equal(got, []string{"Show lanchat", "Away", "", "Quit"}) || !app.menu.Items[3].IsQuit {
		t.Errorf("tray menu %q", got)
	}

	// A message while the window is in the background: a notification,
	// an unread count in the menu and a dot on the icon.
	u.SetFocused(false)
	msg := peer.Message{ID: "1", Peer: bob.Key, Nick: "老王", Dir: peer.Incoming, Text: "在吗", Time: at}
	test.AssertNotificationSent(t, fyne.NewNotification("老王", "在吗"), func() {
		u.Handle(peer.MessageEvent{Message: msg})
	})
	if got := labels()[0]; got != "Show lanchat (1)" || app.icon != IconResource(true) {
		t.Errorf("unread: menu %q, icon %s", got, app.icon.Name())
	}
	// None while the user looks at the window.
	u.SetFocused(true)
	test.AssertNotificationSent(t, nil, func() {
		u.Handle(peer.MessageEvent{Message: peer.Message{ID: "2", Peer: bob.Key, Nick: "老王", Dir: peer.Incoming, Text: "?", Time: at}})
	})
	u.Select(bob.Key)
	if app.icon != IconResource(false) || labels()[0] != "Show lanchat" {
		t.Errorf("read: menu %q, icon %s", labels()[0], app.icon.Name())
	}

	// Away from the tray menu, with the saved auto-reply.
	u.awayText = "开会中"
	app.menu.Items[1].Action()
	if !u.awayCheck.Checked || !app.menu.Items[1].Checked {
		t.Error("tray Away did not check Away")
	}
	eng.locked(func() {
		if !slices.Equal(eng.away, []string{"true:开会中"}) {
			t.Errorf("SetAway calls %q", eng.away)
		}
	})

	// Closing the window hides it in the tray, and says so once.
	test.AssertNotificationSent(t, fyne.NewNotification("lanchat", "lanchat keeps running in the tray. Quit from its menu."),
		u.HideToTray) // what closing the window does: the test window skips intercepts
	if u.focused {
		t.Error("window still focused after close to tray")
	}
	app.menu.Items[0].Action()
	if !u.focused {
		t.Error("Show did not bring the window back")
	}
}

func TestAwayText(t *testing.T) {
	dir := t.TempDir()
	eng := newFake(alice)
	u := New(test.NewTempApp(t), eng, Options{Lang: "en", DataDir: dir})
	u.SetAwayText("  Back at 3 pm  ")
	test.Tap(u.awayCheck)
	eng.locked(func() {
		if !slices.Equal(eng.away, []string{"false:Back at 3 pm", "true:Back at 3 pm"}) {
			t.Errorf("SetAway calls %q", eng.away)
		}
	})
	st, err := settings.Load(dir)
	if err != nil || st.AwayText != "Back at 3 pm" {
		t.Errorf("saved away text %q, %v", st.AwayText, err)
	}
}

func TestSettingsDialog(t *testing.T) {
	t.Setenv("HOME", "/home/li") // the download folder's placeholder, in the golden
	dir := t.TempDir()
	if err := settings.Save(dir, settings.Settings{Nick: "Me", Port: 2500, Broadcast: []string{"10.0.0.255"}}); err != nil {
		t.Fatal(err)
	}
	eng := newFake(alice)
	u := New(test.NewTempApp(t), eng, Options{Lang: "zh", DataDir: dir})
	u.Window().Resize(fyne.NewSize(900, 600))
	u.ShowSettings()
	f := u.prefs
	if f == nil || f.nick.Text != "Me" || f.broadcast.Text != "10.0.0.255" || f.legacy.Selected != "GBK (简体中文)" {
		t.Fatalf("form %+v", f)
	}
	test.AssertRendersToMarkup(t, "settings_zh.xml", u.Window().Canvas())

	f.nick.SetText("小李")
	f.group.SetText("财务部")
	f.awayText.SetText("午休")
	f.downloads.SetText("/home/li/收件")
	f.broadcast.SetText("10.0.0.255\n192.168.9.0/24\n")
	f.autoAccept.SetText("alice@pc1, *")
	f.relay.SetText("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWtest")
	f.legacy.SetSelectedIndex(1)
	test.Tap(f.save)

	b, err := os.ReadFile(filepath.Join(dir, settings.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"nick": "小李", "group": "财务部", "away_text": "午休", "downloads": "/home/li/收件",
		"broadcast": []any{"10.0.0.255", "192.168.9.0/24"}, "auto_accept": []any{"alice@pc1", "*"},
		"relay": "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWtest", "legacy_charset": "cp932", "port": float64(2500)}
	for k, v := range want {
		if gb, _ := json.Marshal(got[k]); string(gb) != string(mustJSON(t, v)) {
			t.Errorf("settings.json %s = %s, want %s", k, gb, mustJSON(t, v))
		}
	}
	eng.locked(func() {
		if !slices.Equal(eng.names, [][2]string{{"小李", "财务部"}}) || !slices.Equal(eng.away, []string{"false:午休"}) {
			t.Errorf("live: names %q away %q", eng.names, eng.away)
		}
	})
	if u.downloads != "/home/li/收件" || !strings.Contains(u.notice.Text, "重启后生效") {
		t.Errorf("downloads %q, notice %q", u.downloads, u.notice.Text)
	}
	if u.prefs != nil {
		t.Error("dialog still open after Save")
	}

	// Saving names only applies at once and says nothing of a restart.
	u.ShowSettings()
	u.prefs.nick.SetText("老李")
	test.Tap(u.prefs.save)
	if u.notice.Text != "设置已保存。" {
		t.Errorf("notice %q", u.notice.Text)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNoticeWindows(t *testing.T) {
	app := test.NewTempApp(t)
	w := NewRunningWindow(app, "en", "/home/li/.config/lanchat", "Li (li@pc7, 192.168.1.7:2425)")
	w.Show()
	test.AssertRendersToMarkup(t, "running_en.xml", w.Canvas())
	w = NewRunningWindow(app, "zh", "/home/li/.config/lanchat", "")
	w.Show()
	test.AssertRendersToMarkup(t, "running_zh.xml", w.Canvas())
}

// waitFor polls cond on fyne's goroutine until it holds or 10 s pass.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var ok bool
		fyne.DoAndWait(func() { ok = cond() })
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
