package ui

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/lanchat/lanchat/peer"
)

// messageItem is one row of the conversation: a head line, the text
// (wrapped at word boundaries), and an Open button for a sealed message.
type messageItem struct {
	widget.BaseWidget
	head, body *widget.Label
	open       *widget.Button
	openRow    *fyne.Container
	box        *fyne.Container
	onOpen     func()
}

func (u *UI) newMessageItem() *messageItem {
	it := &messageItem{
		head: widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		body: widget.NewLabel(""),
	}
	it.body.Wrapping = fyne.TextWrapWord
	it.open = widget.NewButtonWithIcon(u.tr.T("Open"), theme.VisibilityIcon(), func() {
		if it.onOpen != nil {
			it.onOpen()
		}
	})
	it.openRow = container.NewHBox(it.open)
	it.openRow.Hide()
	it.box = container.NewVBox(it.head, it.body, it.openRow)
	it.ExtendBaseWidget(it)
	return it
}

// CreateRenderer draws the item's box.
func (it *messageItem) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(it.box)
}

// newMessageList makes the conversation list. Each conversation gets its
// own, as a list keeps the row heights it was given.
func (u *UI) newMessageList() *widget.List {
	l := widget.NewList(
		func() int { return len(u.msgs) },
		func() fyne.CanvasObject { return u.newMessageItem() },
		func(id widget.ListItemID, o fyne.CanvasObject) {
			if id < len(u.msgs) {
				u.fillMessage(o.(*messageItem), u.msgs[id])
			}
		},
	)
	return l
}

func (u *UI) fillMessage(it *messageItem, m peer.Message) {
	it.head.SetText(u.messageHead(m))
	it.body.SetText(u.messageBody(m))
	if unopened(m) {
		id := m.ID
		it.onOpen = func() { u.OpenSealed(id) }
		it.openRow.Show()
	} else {
		it.onOpen = nil
		it.openRow.Hide()
	}
}

// unopened reports a sealed message we received and have not opened: its
// text stays hidden until the user opens it, and opening tells the sender.
func unopened(m peer.Message) bool {
	return m.Dir == peer.Incoming && m.Sealed && m.Status != peer.Opened
}

// OpenSealed shows a sealed message and has the engine tell its sender.
// The notice may be retried for seconds, so it goes off fyne's goroutine.
func (u *UI) OpenSealed(id string) {
	for i := range u.msgs {
		if u.msgs[i].ID == id {
			u.msgs[i].Status = peer.Opened
			u.measure(i)
			u.msgList.RefreshItem(i)
		}
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
		defer cancel()
		if err := u.eng.Open(ctx, id); err != nil {
			// The text is shown all the same: after a restart the engine
			// no longer knows where to send the read notice.
			u.log.Info("open sealed", "id", id, "err", err)
		}
	}()
}

func (u *UI) messageHead(m peer.Message) string {
	T := u.tr.T
	who := m.Nick
	if m.Dir == peer.Outgoing {
		who = "→ " + who
	}
	s := who + "  " + m.Time.Local().Format("2006-01-02 15:04:05")
	var tags []string
	if m.Sealed {
		tags = append(tags, T("sealed"))
	}
	if m.AutoRe {
		tags = append(tags, T("auto-reply"))
	}
	if m.Dir == peer.Outgoing && m.Status != "" {
		tags = append(tags, T(string(m.Status)))
	}
	if len(tags) > 0 {
		s += "  [" + strings.Join(tags, ", ") + "]"
	}
	if m.Error != "" {
		s += "  " + m.Error
	}
	return s
}

func (u *UI) messageBody(m peer.Message) string {
	if unopened(m) {
		return u.tr.T("Sealed message: open it to read it (the sender is told).")
	}
	s := m.Text
	for _, f := range m.Files {
		if s != "" {
			s += "\n"
		}
		s += "📎 " + f.Name
		if f.Folder {
			s += "/"
		}
	}
	return s
}

// measure sets the height of message i for the current width. A short
// one-line message has the template's height and is not measured, which
// keeps opening a long conversation fast. One off-screen item does the
// measuring for all.
func (u *UI) measure(i int) {
	m := u.msgs[i]
	body := u.messageBody(m)
	if !unopened(m) {
		lines := strings.Split(body, "\n")
		if !slices.ContainsFunc(lines, func(l string) bool { return !fitsOneLine(l, u.msgWidth) }) {
			if len(lines) > 1 {
				u.msgList.SetItemHeight(i, u.linesHeight(len(lines)))
			}
			return
		}
	}
	u.msgList.SetItemHeight(i, u.measureItem(m))
}

// measureItem lays a message out in the off-screen row at the list's width
// and returns its height.
func (u *UI) measureItem(m peer.Message) float32 {
	if u.measurer == nil {
		u.measurer = u.newMessageItem()
	}
	it := u.measurer
	u.fillMessage(it, m)
	it.Resize(fyne.NewSize(u.msgWidth, it.MinSize().Height))
	return it.MinSize().Height
}

// linesHeight is the height of a message of n short lines; it depends only
// on n, so it is measured once per n.
func (u *UI) linesHeight(n int) float32 {
	if h, ok := u.lineHeights[n]; ok {
		return h
	}
	h := u.measureItem(peer.Message{Text: strings.Repeat("x\n", n-1) + "x"})
	if u.lineHeights == nil {
		u.lineHeights = map[int]float32{}
	}
	u.lineHeights[n] = h
	return h
}

// fitsOneLine is a cheap bound: no glyph of the bundled font is wider than
// the text size, so a text with fewer runes than fit the width is one line.
func fitsOneLine(s string, width float32) bool {
	room := width - 4*theme.InnerPadding()
	return float32(utf8.RuneCountInString(s))*theme.TextSize() <= room
}

// messageWidth is the width rows are laid out at: the list's, or a guess
// before the window is laid out.
func (u *UI) messageWidth() float32 {
	if w := u.msgList.Size().Width; w > 100 {
		return w
	}
	return 600
}

// showMessages puts a new list for u.msgs in the pane. The heights are set
// before the list is drawn: on a drawn list each one redraws the rows in
// view.
func (u *UI) showMessages(width float32) {
	offset, bottom := u.msgList.GetScrollOffset(), len(u.msgs) > 0 && u.selectedChanged
	u.msgWidth = width
	u.msgList = u.newMessageList()
	for i := range u.msgs {
		u.measure(i)
	}
	u.msgBox.Objects = []fyne.CanvasObject{u.msgList}
	u.msgList.Resize(u.msgBox.Size())
	u.msgBox.Refresh()
	if bottom {
		u.msgList.ScrollToBottom()
	} else {
		u.msgList.ScrollToOffset(offset)
	}
}

// remeasure lays out the conversation again when the list's width changed,
// since wrapped messages change height.
func (u *UI) remeasure(width float32) {
	if width < 100 || abs(width-u.msgWidth) < 1 || len(u.msgs) == 0 {
		return
	}
	u.selectedChanged = false
	u.showMessages(width)
}

func abs(f float32) float32 {
	if f < 0 {
		return -f
	}
	return f
}

// widthWatch lays out one object full size and reports width changes, so
// wrapped rows can be measured again.
type widthWatch struct {
	width   float32
	onWidth func(float32)
}

// Layout gives every object the whole size.
func (w *widthWatch) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		o.Move(fyne.NewPos(0, 0))
		o.Resize(size)
	}
	if size.Width != w.width {
		w.width = size.Width
		if w.onWidth != nil {
			w.onWidth(size.Width)
		}
	}
}

// MinSize is the largest of the objects' minimum sizes.
func (w *widthWatch) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var s fyne.Size
	for _, o := range objs {
		s = s.Max(o.MinSize())
	}
	return s
}

// Messages returns the selected conversation's messages as the list shows
// them: head, a new line, body. For tests and accessibility.
func (u *UI) Messages() []string {
	out := make([]string, len(u.msgs))
	for i, m := range u.msgs {
		out[i] = u.messageHead(m) + "\n" + u.messageBody(m)
	}
	return out
}
