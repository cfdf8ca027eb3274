package ui

import (
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/lanchat/lanchat/peer"
)

// multiForm is the "send to several" dialog: contacts to tick, the text,
// files to offer, and Seal.
type multiForm struct {
	keys   []string // contact keys, in the order of the check group
	labels []string
	pick   *widget.CheckGroup
	all    *widget.Check
	text   *widget.Entry
	seal   *widget.Check
	files  []string
	attach *widget.Button
	attLbl *widget.Label
	send   *widget.Button
	dlg    *dialog.CustomDialog
}

// ShowMulti opens the "send to several" dialog with the online contacts,
// the selected one ticked. The engine sends one copy to each.
func (u *UI) ShowMulti() {
	T := u.tr.T
	f := &multiForm{}
	var cs []*contactState
	for _, c := range u.contacts {
		if c.online {
			cs = append(cs, c)
		}
	}
	slices.SortFunc(cs, func(a, b *contactState) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(u.contactLine(a)), strings.ToLower(u.contactLine(b)))
	})
	for _, c := range cs {
		label := u.contactLine(c)
		if c.Group != "" {
			label = c.Group + " / " + label
		}
		f.keys, f.labels = append(f.keys, c.Key), append(f.labels, label)
	}
	f.pick = widget.NewCheckGroup(f.labels, nil)
	if i := slices.Index(f.keys, u.selected); i >= 0 {
		f.pick.SetSelected([]string{f.labels[i]})
	}
	f.all = widget.NewCheck(T("Everyone"), func(on bool) {
		if on {
			f.pick.SetSelected(f.labels)
		} else {
			f.pick.SetSelected(nil)
		}
	})
	f.text = widget.NewMultiLineEntry()
	f.text.Wrapping = fyne.TextWrapWord
	f.text.SetPlaceHolder(T("Message to everyone ticked"))
	f.text.SetMinRowsVisible(3)
	f.seal = widget.NewCheck(T("Seal"), nil)
	f.attLbl = widget.NewLabel("")
	f.attLbl.Wrapping = fyne.TextWrapWord
	f.attach = widget.NewButton(T("File…"), func() {
		dialog.ShowFileOpen(func(r fyne.URIReadCloser, err error) {
			if err != nil || r == nil {
				return
			}
			r.Close() // only the path is wanted
			f.addFile(r.URI().Path())
		}, u.win)
	})
	f.send = widget.NewButton(T("Send"), func() {
		if u.sendMulti(f) {
			f.dlg.Hide()
		}
	})
	f.send.Importance = widget.HighImportance
	list := container.NewVScroll(f.pick)
	list.SetMinSize(fyne.NewSize(320, 220))
	body := container.NewBorder(f.all, container.NewVBox(f.text, f.attLbl,
		container.NewHBox(f.attach, f.seal)), nil, nil, list)
	u.multi = f
	f.dlg = dialog.NewCustomWithoutButtons(T("Send to several"), body, u.win)
	f.dlg.SetButtons([]fyne.CanvasObject{widget.NewButton(T("Cancel"), func() { f.dlg.Hide() }), f.send})
	f.dlg.SetOnClosed(func() { u.multi = nil })
	f.dlg.Resize(fyne.NewSize(480, 520))
	f.dlg.Show()
}

// addFile adds a file or folder to offer with the message.
func (f *multiForm) addFile(path string) {
	f.files = append(f.files, path)
	f.attLbl.SetText("📎 " + strings.Join(f.files, ", "))
}

// sendMulti sends the form's text and files to the ticked contacts. It
// returns false, and says why, when there is nothing to send or nobody.
func (u *UI) sendMulti(f *multiForm) bool {
	var to []string
	for i, l := range f.labels {
		if slices.Contains(f.pick.Selected, l) {
			to = append(to, f.keys[i])
		}
	}
	text := strings.TrimRight(f.text.Text, "\n")
	switch {
	case len(to) == 0:
		u.showNotice(u.tr.T("Tick at least one contact."))
		return false
	case strings.TrimSpace(text) == "" && len(f.files) == 0:
		u.showNotice(u.tr.T("Type a message or add a file."))
		return false
	}
	u.sendTo(to, text, peer.SendOptions{Seal: f.seal.Checked, Files: f.files})
	return true
}
