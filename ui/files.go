package ui

import (
	"fmt"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/lanchat/lanchat/peer"
)

// offerCard shows an incoming offer with its Accept and Decline buttons.
type offerCard struct {
	*fyne.Container
	accept, decline *widget.Button
}

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
	c.accept = widget.NewButtonWithIcon(T("Accept"), theme.DownloadIcon(), func() {
		if _, err := u.eng.Accept(id, ""); err != nil {
			u.showNotice(T("Accept failed") + ": " + err.Error())
			return
		}
		delete(u.offers, id)
		u.refreshOffers()
	})
	c.accept.Importance = widget.HighImportance
	c.decline = widget.NewButtonWithIcon(T("Decline"), theme.CancelIcon(), func() {
		if err := u.eng.Decline(id); err != nil {
			u.showNotice(T("Decline failed") + ": " + err.Error())
			return
		}
		delete(u.offers, id)
		u.refreshOffers()
	})
	c.Container = container.NewBorder(nil, nil, nil, container.NewHBox(c.accept, c.decline), label)
	return c
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
	if t.State == peer.TransferRunning && t.Rate > 0 {
		text += "  " + size(int64(t.Rate)) + "/s"
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
