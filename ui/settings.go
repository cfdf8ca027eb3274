package ui

import (
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/widget"

	"github.com/lanchat/lanchat/internal/settings"
)

// legacyChoices are the encodings for peers without UTF-8, as the settings
// dialog names them, and their names in settings.json.
var legacyChoices = []struct{ label, name string }{
	{"GBK (简体中文)", "gbk"},
	{"CP932 (日本語)", "cp932"},
}

// settingsForm is the settings dialog: what settings.json holds and a user
// may change.
type settingsForm struct {
	nick, group, downloads, autoAccept, awayText, relay *widget.Entry
	broadcast                                           *widget.Entry // one target a line
	legacy                                              *widget.Select
	browse, save, cancel                                *widget.Button
	dlg                                                 *dialog.CustomDialog
}

// loadPrefs takes what the window itself applies from settings.json: the
// download folder for Accept and the auto-reply.
func (u *UI) loadPrefs() {
	if u.opt.DataDir == "" {
		return
	}
	st, err := settings.Load(u.opt.DataDir)
	if err != nil {
		u.log.Warn("settings", "err", err)
		return
	}
	u.downloads, u.awayText = st.Downloads, st.AwayText
}

// ShowSettings opens the settings dialog, filled from settings.json and,
// for the names, from what the node announces.
func (u *UI) ShowSettings() {
	if u.opt.DataDir == "" {
		return
	}
	T := u.tr.T
	st, err := settings.Load(u.opt.DataDir)
	if err != nil {
		u.showNotice(err.Error())
		return
	}
	self := u.eng.Self()
	f := &settingsForm{
		nick: entryWith(self.Nick), group: entryWith(self.Group),
		downloads: entryWith(st.Downloads), autoAccept: entryWith(strings.Join(st.AutoAccept, ", ")),
		awayText: entryWith(self.AwayText), relay: entryWith(st.Relay),
		broadcast: widget.NewMultiLineEntry(),
	}
	if st.AwayText != "" {
		f.awayText.SetText(st.AwayText)
	}
	f.broadcast.SetText(strings.Join(st.Broadcast, "\n"))
	f.broadcast.SetMinRowsVisible(3)
	f.broadcast.SetPlaceHolder("192.168.2.255\n10.1.2.0/24\nhost:2425")
	f.downloads.SetPlaceHolder(u.downloadDir())
	f.autoAccept.SetPlaceHolder(T("nicknames or user@host, comma separated; * for everyone"))
	f.relay.SetPlaceHolder("/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…")
	labels := make([]string, len(legacyChoices))
	for i, c := range legacyChoices {
		labels[i] = c.label
	}
	f.legacy = widget.NewSelect(labels, nil)
	f.legacy.SetSelectedIndex(0)
	for i, c := range legacyChoices {
		if st.Legacy.String() == c.name {
			f.legacy.SetSelectedIndex(i)
		}
	}
	f.browse = widget.NewButton(T("Browse…"), func() {
		d := dialog.NewFolderOpen(func(dir fyne.ListableURI, err error) {
			if err == nil && dir != nil {
				f.downloads.SetText(dir.Path())
			}
		}, u.win)
		if loc, err := storage.ListerForURI(storage.NewFileURI(u.downloadDir())); err == nil {
			d.SetLocation(loc)
		}
		d.Show()
	})
	restart := " " + T("(after restart)")
	form := widget.NewForm(
		widget.NewFormItem(T("Nickname"), f.nick),
		widget.NewFormItem(T("Group"), f.group),
		widget.NewFormItem(T("Auto-reply"), f.awayText),
		widget.NewFormItem(T("Download folder"), container.NewBorder(nil, nil, nil, f.browse, f.downloads)),
		widget.NewFormItem(T("Encoding for old clients")+restart, f.legacy),
		widget.NewFormItem(T("Extra broadcast addresses")+restart, f.broadcast),
		widget.NewFormItem(T("Accept files without asking from")+restart, f.autoAccept),
		widget.NewFormItem(T("Relay address")+restart, f.relay),
	)
	f.save = widget.NewButton(T("Save"), func() {
		if u.saveSettings(f) {
			f.dlg.Hide()
		}
	})
	f.save.Importance = widget.HighImportance
	f.cancel = widget.NewButton(T("Cancel"), func() { f.dlg.Hide() })
	f.dlg = dialog.NewCustomWithoutButtons(T("Settings"), container.NewVScroll(form), u.win)
	f.dlg.SetButtons([]fyne.CanvasObject{f.cancel, f.save})
	f.dlg.SetOnClosed(func() { u.prefs = nil })
	f.dlg.Resize(fyne.NewSize(680, 540))
	u.prefs = f
	f.dlg.Show()
}

func entryWith(text string) *widget.Entry {
	e := widget.NewEntry()
	e.SetText(text)
	return e
}

// saveSettings writes the form to settings.json and applies what the node
// can change while it runs: names, auto-reply, download folder. The rest
// is read at start; the notice says so when it changed.
func (u *UI) saveSettings(f *settingsForm) bool {
	T := u.tr.T
	st, err := settings.Load(u.opt.DataDir)
	if err != nil {
		u.showNotice(err.Error())
		return false
	}
	before := st
	st.Nick, st.Group = strings.TrimSpace(f.nick.Text), strings.TrimSpace(f.group.Text)
	st.AwayText = strings.TrimSpace(f.awayText.Text)
	st.Downloads = strings.TrimSpace(f.downloads.Text)
	st.Relay = strings.TrimSpace(f.relay.Text)
	st.Broadcast = splitList(f.broadcast.Text)
	st.AutoAccept = splitList(f.autoAccept.Text)
	if i := f.legacy.SelectedIndex(); i >= 0 {
		if err := st.Legacy.UnmarshalText([]byte(legacyChoices[i].name)); err != nil {
			u.showNotice(err.Error())
			return false
		}
	}
	if err := settings.Save(u.opt.DataDir, st); err != nil {
		u.showNotice(err.Error())
		return false
	}
	self := u.eng.Self()
	nick := st.Nick
	if nick == "" {
		nick = self.User // what the node announces without a nickname
	}
	if nick != self.Nick || st.Group != self.Group {
		u.eng.SetName(nick, st.Group)
	}
	if st.AwayText != "" && st.AwayText != u.awayText {
		u.awayText = st.AwayText
		u.eng.SetAway(u.awayCheck.Checked, st.AwayText)
	}
	u.downloads = st.Downloads
	if st.Legacy != before.Legacy || st.Relay != before.Relay ||
		!slices.Equal(st.Broadcast, before.Broadcast) || !slices.Equal(st.AutoAccept, before.AutoAccept) {
		u.showNotice(T("Settings saved. Encoding, broadcast addresses, auto-accept and relay take effect after restart."))
	} else {
		u.showNotice(T("Settings saved."))
	}
	return true
}

// splitList splits on new lines and commas, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
