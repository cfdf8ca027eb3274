package ui

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/lanchat/lanchat/internal/settings"
	"github.com/lanchat/lanchat/peer"
)

// setAway forwards the Away check to the engine and the tray menu.
func (u *UI) setAway(on bool) {
	u.eng.SetAway(on, u.awayText)
	u.tray.refresh()
}

// SetAway checks or clears Away, as the tray menu does.
func (u *UI) SetAway(on bool) { u.awayCheck.SetChecked(on) }

// editAwayText asks for the auto-reply, applies it and saves it.
func (u *UI) editAwayText() {
	T := u.tr.T
	e := widget.NewMultiLineEntry()
	e.SetMinRowsVisible(3)
	e.Wrapping = fyne.TextWrapWord
	e.SetText(u.awayText)
	if e.Text == "" {
		e.SetText(u.eng.Self().AwayText)
	}
	d := dialog.NewCustomConfirm(T("Auto-reply while away"), T("Save"), T("Cancel"), e, func(ok bool) {
		if ok {
			u.SetAwayText(e.Text)
		}
	}, u.win)
	d.Resize(fyne.NewSize(400, 200))
	d.Show()
}

// SetAwayText changes the auto-reply, now and in the settings file.
func (u *UI) SetAwayText(text string) {
	text = strings.TrimSpace(text)
	if text == "" {
		return
	}
	u.awayText = text
	u.eng.SetAway(u.awayCheck.Checked, text)
	if u.opt.DataDir == "" {
		return
	}
	st, err := settings.Load(u.opt.DataDir)
	if err == nil {
		st.AwayText = text
		err = settings.Save(u.opt.DataDir, st)
	}
	if err != nil {
		u.showNotice(err.Error())
	}
}

// watchFocus follows whether the app is in front, so that notifications
// go out only when the user would otherwise miss a message.
func (u *UI) watchFocus() {
	lc := u.app.Lifecycle()
	lc.SetOnEnteredForeground(func() { u.focused = true })
	lc.SetOnExitedForeground(func() { u.focused = false })
}

// SetFocused tells the window whether it has the input focus. The app's
// lifecycle calls it; tests call it directly.
func (u *UI) SetFocused(on bool) { u.focused = on }

// notifyLen bounds the text of a notification.
const notifyLen = 120

// notify raises a desktop notification for a message from someone else
// while the window is in the background or hidden in the tray.
func (u *UI) notify(m peer.Message) {
	if u.focused || m.Dir != peer.Incoming {
		return
	}
	title := m.Nick
	if title == "" {
		title = m.Peer
	}
	body := u.messageBody(m)
	if r := []rune(body); len(r) > notifyLen {
		body = string(r[:notifyLen]) + "…"
	}
	u.app.SendNotification(fyne.NewNotification(title, body))
}

// trayHost is what the tray needs from a desktop app: fyne's desktop.App.
type trayHost interface {
	SetSystemTrayMenu(*fyne.Menu)
	SetSystemTrayIcon(fyne.Resource)
}

// tray is the icon in the system tray, with a menu to show the window, go
// away and quit. Its icon carries a dot while messages are unread. A nil
// *tray does nothing, so callers need not check.
type tray struct {
	u                *UI
	host             trayHost
	menu             *fyne.Menu
	show, away, quit *fyne.MenuItem
	unread           bool
	told             bool // the user was told the app went to the tray
}

// newTray installs the tray icon and makes closing the window hide it
// there. It returns nil when the app has no tray.
func newTray(u *UI) *tray {
	host, ok := u.app.(trayHost)
	if !ok {
		return nil
	}
	T := u.tr.T
	t := &tray{u: u, host: host}
	t.show = fyne.NewMenuItem(T("Show lanchat"), u.ShowWindow)
	t.away = fyne.NewMenuItem(T("Away"), func() { u.SetAway(!u.awayCheck.Checked) })
	t.quit = fyne.NewMenuItem(T("Quit"), u.app.Quit)
	t.quit.IsQuit = true
	t.menu = fyne.NewMenu("lanchat", t.show, t.away, fyne.NewMenuItemSeparator(), t.quit)
	host.SetSystemTrayMenu(t.menu)
	host.SetSystemTrayIcon(IconResource(false))
	if w, ok := host.(interface{ SetSystemTrayWindow(fyne.Window) }); ok {
		w.SetSystemTrayWindow(u.win) // a click on the icon shows the window
	}
	u.win.SetCloseIntercept(u.HideToTray)
	return t
}

// refresh shows the unread count and away state in the tray.
func (t *tray) refresh() {
	if t == nil {
		return
	}
	n := 0
	for _, c := range t.u.unread {
		n += c
	}
	t.show.Label = t.u.tr.T("Show lanchat")
	if n > 0 {
		t.show.Label += " (" + strconv.Itoa(n) + ")"
	}
	t.away.Checked = t.u.awayCheck.Checked
	t.host.SetSystemTrayMenu(t.menu)
	if unread := n > 0; unread != t.unread {
		t.unread = unread
		t.host.SetSystemTrayIcon(IconResource(unread))
	}
}

// ShowWindow brings the window back from the tray.
func (u *UI) ShowWindow() {
	u.win.Show()
	u.win.RequestFocus()
	u.focused = true
}

// HideToTray hides the window; the node keeps running and the tray menu
// brings it back or quits. The first time, a notification says so.
func (u *UI) HideToTray() {
	u.win.Hide()
	u.focused = false
	if u.tray != nil && !u.tray.told {
		u.tray.told = true
		u.app.SendNotification(fyne.NewNotification(u.tr.T("lanchat"),
			u.tr.T("lanchat keeps running in the tray. Quit from its menu.")))
	}
}

// IconResource is lanchat's icon, a speech bubble, drawn once per state;
// unread adds a red dot. The window and the tray use it.
func IconResource(unread bool) fyne.Resource {
	if unread {
		return unreadIcon
	}
	return plainIcon
}

var (
	plainIcon  = fyne.NewStaticResource("lanchat.png", drawIcon(false))
	unreadIcon = fyne.NewStaticResource("lanchat-unread.png", drawIcon(true))
)

// drawIcon paints a 64×64 icon: a blue disc with a tail, and a red dot.
func drawIcon(unread bool) []byte {
	const n = 64
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	blue := color.NRGBA{0x1e, 0x88, 0xe5, 0xff}
	white := color.NRGBA{0xff, 0xff, 0xff, 0xff}
	red := color.NRGBA{0xe5, 0x39, 0x35, 0xff}
	disc := func(cx, cy, r float64, c color.NRGBA) {
		for y := 0; y < n; y++ {
			for x := 0; x < n; x++ {
				dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
				if dx*dx+dy*dy <= r*r {
					img.SetNRGBA(x, y, c)
				}
			}
		}
	}
	disc(30, 28, 26, blue)
	for y := 44; y < 60; y++ { // the bubble's tail
		for x := 10; x < 10+(60-y); x++ {
			img.SetNRGBA(x, y, blue)
		}
	}
	for _, x := range []float64{18, 30, 42} { // three dots of text
		disc(x, 28, 4, white)
	}
	if unread {
		disc(52, 12, 11, white)
		disc(52, 12, 9, red)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic("ui: encode icon: " + err.Error()) // an in-memory image always encodes
	}
	return b.Bytes()
}
