// Package ui is lanchat's desktop window, built with fyne. It shows the
// engine's state and forwards what the user does; it holds no protocol
// logic. It takes a fyne.App and never creates one, so its tests run
// headless with fyne's test driver.
package ui

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/lanchat/lanchat/peer"
)

// Engine is what the window needs from the node.
type Engine interface {
	Contacts() []peer.Contact
	Send(ctx context.Context, to []string, text string, opt peer.SendOptions) ([]peer.Message, error)
	Subscribe() (<-chan peer.Event, func())
	History(who string, limit int) ([]peer.Message, error)
	SetAway(away bool, text string)
	SetName(nick, group string)
	Open(ctx context.Context, id string) error
	Self() peer.Self
	Accept(offerID, dir string) ([]peer.Transfer, error)
	Decline(offerID string) error
	Transfers() []peer.Transfer
	Cancel(id string) error
}

// Options configure the window.
type Options struct {
	Lang string // "zh" or "en"; empty: SystemLang()
	// DataDir holds settings.json, which the settings dialog edits; empty
	// hides the dialog.
	DataDir string
	// Tray says the desktop shows tray icons: the window gets one, with a
	// menu, and closing the window hides it there instead of quitting.
	// Leave it off where nothing shows the icon, or the window is lost.
	Tray   bool
	Logger *slog.Logger // nil discards
}

// historyLimit is how many past messages a conversation loads; the list
// draws only the rows in view, so a long history costs little.
const historyLimit = 10000

// sendTimeout bounds one send from the window: the engine retries for
// seconds, and a forgotten goroutine must end.
const sendTimeout = 2 * time.Minute

// contactState is a contact as the window shows it.
type contactState struct {
	peer.Contact
	online bool
}

// row is one line of the contact list: a group header or a contact.
type row struct {
	group string // header when key is empty
	key   string
}

// UI is the main window and its state. All methods but Run run on fyne's
// goroutine.
type UI struct {
	app fyne.App
	eng Engine
	opt Options
	log *slog.Logger
	tr  tr
	win fyne.Window

	focused   bool   // the window has the input focus: no notifications
	awayText  string // the auto-reply, "" for the engine's
	downloads string // where Accept saves, "" for the engine's folder
	tray      *tray  // nil without a tray

	events <-chan peer.Event
	unsub  func()

	contacts map[string]*contactState
	unread   map[string]int
	rows     []row
	selected string

	msgs      []peer.Message // the selected conversation
	offers    map[string]peer.Message
	transfers map[string]*transferRow

	search      *widget.Entry
	contactList *widget.List
	awayCheck   *widget.Check
	awayButton  *widget.Button
	multiButton *widget.Button
	prefsButton *widget.Button
	relayLine   *widget.Label   // the relay connection; hidden without a relay
	left        *fyne.Container // the contact pane, laid out again when the relay line changes
	title       *widget.Label
	msgList     *widget.List
	msgBox      *fyne.Container // holds msgList
	right       *fyne.Container // the conversation pane, laid out again when its bottom grows
	msgWidth    float32         // the width message heights were measured for
	measurer    *messageItem    // an off-screen row that measures messages
	lineHeights map[int]float32 // by line count, of messages that do not wrap
	// selectedChanged: the list shows a new conversation, so it opens at
	// the bottom; a width change keeps the place instead.
	selectedChanged bool
	offerBox        *fyne.Container
	xferBox         *fyne.Container
	input           *sendEntry
	sealCheck       *widget.Check
	sendButton      *widget.Button
	fileButton      *widget.Button
	dirButton       *widget.Button
	notice          *widget.Label

	multi *multiForm    // the open "send to several" dialog
	prefs *settingsForm // the open settings dialog
}

// New builds the main window for eng on app and loads the contacts. Call
// Run on another goroutine to follow the engine's events.
func New(app fyne.App, eng Engine, opt Options) *UI {
	if opt.Lang == "" {
		opt.Lang = SystemLang()
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	u := &UI{
		app: app, eng: eng, opt: opt, log: opt.Logger, tr: tr(opt.Lang), focused: true,
		contacts: map[string]*contactState{}, unread: map[string]int{},
		offers: map[string]peer.Message{}, transfers: map[string]*transferRow{},
	}
	app.Settings().SetTheme(NewTheme())
	u.events, u.unsub = eng.Subscribe()
	u.loadPrefs()
	u.build()
	// Set the field, not SetChecked: a node started with --away is away
	// already, and telling it again would re-send the absence.
	self := eng.Self()
	u.awayCheck.Checked = self.Away
	u.awayCheck.Refresh()
	u.showRelay(peer.RelayEvent{State: self.Relay})
	u.watchFocus()
	if opt.Tray {
		u.tray = newTray(u)
	}
	for _, c := range eng.Contacts() {
		u.contacts[c.Key] = &contactState{Contact: c, online: true}
	}
	for _, t := range eng.Transfers() {
		u.transfer(t)
	}
	u.refreshContacts()
	return u
}

// Window returns the main window.
func (u *UI) Window() fyne.Window { return u.win }

// Run applies the engine's events to the window through fyne.Do until ctx
// is done or the engine closes the stream.
func (u *UI) Run(ctx context.Context) {
	defer u.unsub()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-u.events:
			if !ok {
				return
			}
			fyne.Do(func() { u.Handle(ev) })
		}
	}
}

func (u *UI) build() {
	T := u.tr.T
	u.win = u.app.NewWindow(T("lanchat"))

	u.search = widget.NewEntry()
	u.search.SetPlaceHolder(T("Search"))
	u.search.OnChanged = func(string) { u.refreshContacts() }
	u.awayCheck = widget.NewCheck(T("Away"), u.setAway)
	u.awayButton = widget.NewButtonWithIcon("", theme.DocumentCreateIcon(), u.editAwayText)
	u.multiButton = widget.NewButtonWithIcon(T("Send to several…"), theme.MailForwardIcon(), u.ShowMulti)
	u.prefsButton = widget.NewButtonWithIcon("", theme.SettingsIcon(), u.ShowSettings)
	if u.opt.DataDir == "" {
		u.prefsButton.Hide()
	}

	u.contactList = widget.NewList(
		func() int { return len(u.rows) },
		func() fyne.CanvasObject {
			return container.NewHBox(widget.NewIcon(theme.AccountIcon()), widget.NewLabel(""))
		},
		func(id widget.ListItemID, o fyne.CanvasObject) { u.drawContact(id, o.(*fyne.Container)) },
	)
	u.contactList.OnSelected = func(id widget.ListItemID) {
		if id >= len(u.rows) || u.rows[id].key == "" {
			u.contactList.Unselect(id)
			return
		}
		u.Select(u.rows[id].key)
	}
	tools := container.NewBorder(nil, nil, nil, container.NewHBox(u.awayButton, u.prefsButton), u.awayCheck)
	u.relayLine = newRelayLine()
	u.left = container.NewBorder(container.NewVBox(u.search, tools, u.relayLine), u.multiButton, nil, nil, u.contactList)

	u.title = widget.NewLabelWithStyle(T("Choose a contact"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	u.msgList = u.newMessageList()
	u.offerBox = container.NewVBox()
	u.xferBox = container.NewVBox()
	u.input = newSendEntry(u.send)
	u.input.SetPlaceHolder(T("Type a message"))
	u.input.SetMinRowsVisible(3)
	u.sealCheck = widget.NewCheck(T("Seal"), nil)
	u.sendButton = widget.NewButtonWithIcon(T("Send"), theme.MailSendIcon(), u.send)
	u.fileButton = widget.NewButtonWithIcon(T("File…"), theme.FileIcon(), u.pickFile)
	u.dirButton = widget.NewButtonWithIcon(T("Folder…"), theme.FolderIcon(), u.pickFolder)
	u.notice = widget.NewLabel("")
	u.notice.Wrapping = fyne.TextWrapWord
	u.notice.Hide()
	bottom := container.NewVBox(u.offerBox, u.xferBox, u.notice,
		container.NewHBox(u.fileButton, u.dirButton),
		container.NewBorder(nil, nil, nil, container.NewVBox(u.sendButton, u.sealCheck), u.input))
	u.msgBox = container.New(&widthWatch{onWidth: u.remeasure}, u.msgList)
	u.right = container.NewBorder(u.title, bottom, nil, nil, u.msgBox)

	split := container.NewHSplit(u.left, u.right)
	split.Offset = 0.3
	u.win.SetContent(split)
	u.win.Resize(fyne.NewSize(900, 600))
	u.win.SetOnDropped(u.Drop)
	u.setConversationEnabled(false)
}

func (u *UI) setConversationEnabled(on bool) {
	for _, w := range []fyne.Disableable{u.input, u.sendButton, u.fileButton, u.dirButton} {
		if on {
			w.Enable()
		} else {
			w.Disable()
		}
	}
}

// Handle applies one engine event. Run calls it through fyne.Do; tests call
// it directly.
func (u *UI) Handle(ev peer.Event) {
	switch e := ev.(type) {
	case peer.ContactEvent:
		c := e.Contact
		if e.Change == "left" {
			if cs, ok := u.contacts[c.Key]; ok {
				cs.online = false
			}
		} else {
			u.contacts[c.Key] = &contactState{Contact: c, online: true}
		}
		u.refreshContacts()
		if c.Key == u.selected {
			u.refreshTitle()
		}
	case peer.MessageEvent:
		u.message(e.Message)
		u.notify(e.Message)
	case peer.StatusEvent:
		for i := range u.msgs {
			if u.msgs[i].ID == e.ID {
				u.msgs[i].Status, u.msgs[i].Error = e.Status, e.Error
				u.msgList.RefreshItem(i)
			}
		}
	case peer.NoticeEvent:
		text := e.Text
		if e.Format != "" {
			text = fmt.Sprintf(u.tr.T(e.Format), e.Args...)
		}
		u.showNotice(text)
	case peer.TransferEvent:
		u.transfer(e.Transfer)
	case peer.RelayEvent:
		u.showRelay(e)
	}
}

// message adds a message to its conversation, or counts it as unread.
func (u *UI) message(m peer.Message) {
	if _, ok := u.contacts[m.Peer]; !ok {
		u.contacts[m.Peer] = &contactState{Contact: peer.Contact{Key: m.Peer, Nick: m.Nick}}
	}
	if m.Dir == peer.Incoming && len(m.Files) > 0 {
		u.offers[m.ID] = m
	}
	if m.Peer != u.selected {
		if m.Dir == peer.Incoming {
			u.unread[m.Peer]++
			u.refreshContacts()
			u.tray.refresh()
		}
		return
	}
	for i := range u.msgs {
		if u.msgs[i].ID == m.ID {
			u.msgs[i] = m
			u.msgList.RefreshItem(i)
			return
		}
	}
	u.msgs = append(u.msgs, m)
	u.measure(len(u.msgs) - 1)
	u.msgList.Refresh()
	u.msgList.ScrollToBottom()
	u.refreshOffers()
}

// Select opens the conversation with a contact.
func (u *UI) Select(key string) {
	u.selected = key
	delete(u.unread, key)
	hist, err := u.eng.History(key, historyLimit)
	if err != nil {
		u.showNotice(err.Error())
	}
	u.msgs = hist
	u.selectedChanged = true
	u.showMessages(u.messageWidth())
	u.refreshTitle()
	u.refreshOffers()
	u.refreshTransfers()
	u.refreshContacts()
	u.tray.refresh()
	u.setConversationEnabled(true)
	u.win.Canvas().Focus(u.input)
}

// send forwards the typed text to the engine. The engine reports the
// message as a MessageEvent; a failure to send shows as a notice.
func (u *UI) send() {
	text := strings.TrimRight(u.input.Text, "\n")
	if u.selected == "" || strings.TrimSpace(text) == "" {
		return
	}
	u.input.SetText("")
	u.sendTo([]string{u.selected}, text, peer.SendOptions{Seal: u.sealCheck.Checked})
}

// sendTo hands a message to the engine off fyne's goroutine, since Send
// waits for delivery; a failure shows as a notice.
func (u *UI) sendTo(to []string, text string, opt peer.SendOptions) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
		defer cancel()
		if _, err := u.eng.Send(ctx, to, text, opt); err != nil {
			u.log.Warn("send", "to", to, "err", err)
			fyne.Do(func() { u.showNotice(u.tr.T("Send failed") + ": " + err.Error()) })
		}
	}()
}

func (u *UI) showNotice(text string) {
	u.notice.SetText(text)
	u.notice.Show()
	u.right.Refresh()
}

func (u *UI) refreshTitle() {
	c, ok := u.contacts[u.selected]
	if !ok {
		return
	}
	u.title.SetText(u.contactLine(c))
}

// contactLine is how a contact reads in the list and the title.
func (u *UI) contactLine(c *contactState) string {
	name := c.Nick
	if name == "" {
		name = c.User
	}
	if name == "" {
		name = c.Key
	}
	var state []string
	if c.Client != "" {
		state = append(state, u.tr.client(c.Client))
	}
	switch {
	case !c.online || c.Offline:
		state = append(state, u.tr.T("offline"))
	case c.Away:
		state = append(state, u.tr.T("away"))
	}
	// How a relay member is reached: its own connection, or the relay.
	if c.Via == peer.ViaRelay && (c.Path == peer.PathDirect || c.Path == peer.PathRelayed) {
		state = append(state, u.tr.T(c.Path))
	}
	s := name
	if len(state) > 0 {
		s += " · " + strings.Join(state, " · ")
	}
	if n := u.unread[c.Key]; n > 0 {
		s += fmt.Sprintf(" (%d)", n)
	}
	return s
}

// refreshContacts rebuilds the rows of the contact list: groups in order,
// contacts matching the search under each, online before offline.
func (u *UI) refreshContacts() {
	q := strings.ToLower(strings.TrimSpace(u.search.Text))
	groups := map[string][]*contactState{}
	for _, c := range u.contacts {
		if q != "" && !matches(c, q) {
			continue
		}
		groups[c.Group] = append(groups[c.Group], c)
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	u.rows = u.rows[:0]
	for _, g := range names {
		cs := groups[g]
		slices.SortFunc(cs, func(a, b *contactState) int {
			if a.online != b.online {
				if a.online {
					return -1
				}
				return 1
			}
			if c := strings.Compare(strings.ToLower(a.Nick), strings.ToLower(b.Nick)); c != 0 {
				return c
			}
			return strings.Compare(a.Key, b.Key)
		})
		u.rows = append(u.rows, row{group: g})
		for _, c := range cs {
			u.rows = append(u.rows, row{group: g, key: c.Key})
		}
	}
	u.contactList.Refresh()
	u.win.SetTitle(u.windowTitle())
}

func (u *UI) windowTitle() string {
	n := 0
	for _, c := range u.unread {
		n += c
	}
	if n == 0 {
		return u.tr.T("lanchat")
	}
	return fmt.Sprintf("(%d) %s", n, u.tr.T("lanchat"))
}

func matches(c *contactState, q string) bool {
	for _, s := range []string{c.Nick, c.User, c.Host, c.Group, c.Addr.String()} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

func (u *UI) drawContact(id widget.ListItemID, box *fyne.Container) {
	if id >= len(u.rows) {
		return
	}
	icon, label := box.Objects[0].(*widget.Icon), box.Objects[1].(*widget.Label)
	r := u.rows[id]
	if r.key == "" {
		name := r.group
		if name == "" {
			name = u.tr.T("No group")
		}
		icon.SetResource(theme.FolderIcon())
		label.TextStyle = fyne.TextStyle{Bold: true}
		label.SetText(name)
		return
	}
	c := u.contacts[r.key]
	switch {
	case !c.online:
		icon.SetResource(theme.NewDisabledResource(theme.AccountIcon()))
	case c.Away:
		icon.SetResource(theme.NewWarningThemedResource(theme.AccountIcon()))
	default:
		icon.SetResource(theme.NewSuccessThemedResource(theme.AccountIcon()))
	}
	label.TextStyle = fyne.TextStyle{Bold: u.unread[r.key] > 0}
	label.SetText(u.contactLine(c))
}

// ContactRows returns the contact list as it reads, a line per row; group
// headers are prefixed with "# ". For tests and accessibility.
func (u *UI) ContactRows() []string {
	out := make([]string, 0, len(u.rows))
	for _, r := range u.rows {
		if r.key == "" {
			name := r.group
			if name == "" {
				name = u.tr.T("No group")
			}
			out = append(out, "# "+name)
			continue
		}
		out = append(out, u.contactLine(u.contacts[r.key]))
	}
	return out
}
