package ui

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/lanchat/lanchat/peer"
)

// offerCard shows an incoming offer with its Accept, Save as and Decline
// buttons.
type offerCard struct {
	widget.BaseWidget
	box                     *fyne.Container
	accept, saveAs, decline *widget.Button
}

// CreateRenderer draws the card's box.
func (c *offerCard) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(c.box) }

// refreshOffers shows the selected contact's pending offers.
func (u *UI) refreshOffers() {
	var ms []peer.Message
	for _, m := range u.offers {
		if m.Peer == u.selected {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b peer.Message) int { return a.Time.Compare(b.Time) })
	objs := make([]fyne.CanvasObject, 0, len(ms))
	for _, m := range ms {
		objs = append(objs, u.newOfferCard(m))
	}
	u.offerBox.Objects = objs
	u.offerBox.Refresh()
	u.right.Refresh() // the pane's bottom changed height
}

func (u *UI) newOfferCard(m peer.Message) *offerCard {
	T := u.tr.T
	names := make([]string, len(m.Files))
	for i, f := range m.Files {
		names[i] = f.Name
		if f.Folder {
			names[i] += "/"
		} else {
			names[i] += " (" + size(f.Size) + ")"
		}
	}
	label := widget.NewLabel(m.Nick + " " + T("offers") + ": " + strings.Join(names, ", "))
	label.Wrapping = fyne.TextWrapWord
	id := m.ID
	c := &offerCard{}
	c.accept = widget.NewButtonWithIcon(T("Accept"), theme.DownloadIcon(), func() { u.accept(id, u.downloads) })
	c.accept.Importance = widget.HighImportance
	c.saveAs = widget.NewButtonWithIcon(T("Save as…"), theme.FolderOpenIcon(), func() {
		d := dialog.NewFolderOpen(func(dir fyne.ListableURI, err error) {
			if err != nil {
				u.showNotice(T("Accept failed") + ": " + err.Error())
			}
			if dir != nil {
				u.accept(id, dir.Path())
			}
		}, u.win)
		if loc, err := storage.ListerForURI(storage.NewFileURI(u.downloadDir())); err == nil {
			d.SetLocation(loc)
		}
		d.Show()
	})
	c.decline = widget.NewButtonWithIcon(T("Decline"), theme.CancelIcon(), func() {
		if err := u.eng.Decline(id); err != nil {
			u.showNotice(T("Decline failed") + ": " + err.Error())
			return
		}
		delete(u.offers, id)
		u.refreshOffers()
	})
	c.box = container.NewBorder(nil, nil, nil, container.NewHBox(c.accept, c.saveAs, c.decline), label)
	c.ExtendBaseWidget(c)
	return c
}

// accept downloads an offer into dir ("" for the engine's folder).
func (u *UI) accept(id, dir string) {
	if _, err := u.eng.Accept(id, dir); err != nil {
		u.showNotice(u.tr.T("Accept failed") + ": " + err.Error())
		return
	}
	delete(u.offers, id)
	u.refreshOffers()
}

// downloadDir is where Save as starts browsing.
func (u *UI) downloadDir() string {
	if u.downloads != "" {
		return u.downloads
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "Downloads")
	}
	return "."
}

// Offers returns the offer cards shown for the selected contact.
func (u *UI) offerCards() []*offerCard {
	var out []*offerCard
	for _, o := range u.offerBox.Objects {
		out = append(out, o.(*offerCard))
	}
	return out
}

// transferRow shows one transfer: name and state, progress, cancel.
type transferRow struct {
	t      peer.Transfer
	box    *fyne.Container
	label  *widget.Label
	bar    *widget.ProgressBar
	cancel *widget.Button
}

// transfer records a transfer's progress and updates its row.
func (u *UI) transfer(t peer.Transfer) {
	r, ok := u.transfers[t.ID]
	if !ok {
		r = &transferRow{label: widget.NewLabel(""), bar: widget.NewProgressBar()}
		id := t.ID
		r.cancel = widget.NewButtonWithIcon("", theme.CancelIcon(), func() {
			if err := u.eng.Cancel(id); err != nil {
				u.showNotice(err.Error())
			}
		})
		r.box = container.NewBorder(nil, nil, nil, r.cancel, container.NewVBox(r.label, r.bar))
		u.transfers[t.ID] = r
	}
	r.t = t
	T := u.tr.T
	dir := T("from")
	if t.Dir == peer.Outgoing {
		dir = T("to")
	}
	text := fmt.Sprintf("%s  %s %s  %s", t.Name, dir, t.Nick, T(string(t.State)))
	if t.Total > 0 {
		text += fmt.Sprintf("  %s / %s", size(t.Done), size(t.Total))
	} else if t.Done > 0 {
		text += "  " + size(t.Done)
	}
	if t.State == peer.TransferRunning && t.Rate > 0 {
		text += "  " + size(int64(t.Rate)) + "/s"
		if t.ETA > 0 {
			text += "  " + T("left") + " " + t.ETA.Round(time.Second).String()
		}
	}
	if t.Error != "" {
		text += "  " + t.Error
	}
	r.label.SetText(text)
	switch {
	case t.State == peer.TransferDone:
		r.bar.SetValue(1)
	case t.Total > 0:
		r.bar.SetValue(float64(t.Done) / float64(t.Total))
	}
	if t.State.Final() {
		r.cancel.Hide()
	} else {
		r.cancel.Show()
	}
	if !ok && t.Peer == u.selected {
		u.refreshTransfers()
	}
}

// refreshTransfers shows the selected contact's transfers.
func (u *UI) refreshTransfers() {
	var rs []*transferRow
	for _, r := range u.transfers {
		if r.t.Peer == u.selected {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(a, b *transferRow) int { return strings.Compare(a.t.ID, b.t.ID) })
	objs := make([]fyne.CanvasObject, len(rs))
	for i, r := range rs {
		objs[i] = r.box
	}
	u.xferBox.Objects = objs
	u.xferBox.Refresh()
	u.right.Refresh() // the pane's bottom changed height
}

func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// pickFile offers a file chosen in a dialog to the selected contact.
func (u *UI) pickFile() {
	key := u.selected
	dialog.ShowFileOpen(func(f fyne.URIReadCloser, err error) {
		if err != nil {
			u.showNotice(u.tr.T("Send failed") + ": " + err.Error())
		}
		if f == nil {
			return
		}
		f.Close() // only the path is wanted: the peer downloads the file later
		u.SendFiles([]string{key}, []string{f.URI().Path()})
	}, u.win)
}

// pickFolder offers a folder chosen in a dialog to the selected contact.
func (u *UI) pickFolder() {
	key := u.selected
	dialog.ShowFolderOpen(func(dir fyne.ListableURI, err error) {
		if err != nil {
			u.showNotice(u.tr.T("Send failed") + ": " + err.Error())
		}
		if dir != nil {
			u.SendFiles([]string{key}, []string{dir.Path()})
		}
	}, u.win)
}

// SendFiles offers files and folders to contacts; they download them when
// they accept.
func (u *UI) SendFiles(to []string, paths []string) {
	if len(to) == 0 || to[0] == "" || len(paths) == 0 {
		return
	}
	u.sendTo(to, "", peer.SendOptions{Files: paths})
}

// Drop sends files dropped on the window: onto a contact in the list to
// that contact, anywhere else to the open conversation. The window calls
// it; tests call it directly.
func (u *UI) Drop(pos fyne.Position, uris []fyne.URI) {
	var paths []string
	for _, uri := range uris {
		if uri.Scheme() == "file" {
			paths = append(paths, uri.Path())
		}
	}
	if len(paths) == 0 {
		return
	}
	key := u.contactAt(pos)
	if key == "" {
		key = u.selected
	}
	if key == "" {
		u.showNotice(u.tr.T("Drop files on a contact or an open conversation."))
		return
	}
	u.SendFiles([]string{key}, paths)
}

// contactAt returns the contact under a window position in the contact
// list, or "". Rows share one height, with a padding between them.
func (u *UI) contactAt(pos fyne.Position) string {
	d := u.app.Driver()
	at := d.AbsolutePositionForObject(u.contactList)
	sz := u.contactList.Size()
	if pos.X < at.X || pos.Y < at.Y || pos.X > at.X+sz.Width || pos.Y > at.Y+sz.Height {
		return ""
	}
	rowH := u.contactList.CreateItem().MinSize().Height + theme.Padding()
	i := int((pos.Y - at.Y + u.contactList.GetScrollOffset()) / rowH)
	if i < 0 || i >= len(u.rows) {
		return ""
	}
	return u.rows[i].key
}
