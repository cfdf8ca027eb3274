package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/lanchat/lanchat/peer"
)

// relayErrLen bounds the connection error the relay line shows; `lanchat
// status` prints it whole.
const relayErrLen = 60

// newRelayLine is the small line under the Away check that says how this
// computer reaches the relay. It stays hidden until the node has a relay.
func newRelayLine() *widget.Label {
	l := widget.NewLabel("")
	l.SizeName = theme.SizeNameCaptionText
	l.Wrapping = fyne.TextWrapWord
	l.Hide()
	return l
}

// showRelay puts the relay connection in the relay line. New calls it with
// the node's state, Handle with each RelayEvent, which carries the whole
// state.
func (u *UI) showRelay(e peer.RelayEvent) {
	text := u.relayText(e)
	if text == "" {
		if u.relayLine.Visible() {
			u.relayLine.Hide()
			u.left.Refresh()
		}
		return
	}
	u.relayLine.Importance = widget.MediumImportance
	if !e.State.Connected && e.State.Error != "" {
		u.relayLine.Importance = widget.DangerImportance
	}
	u.relayLine.SetText(text)
	u.relayLine.Show()
	u.left.Refresh() // the line may have appeared or wrapped onto more rows
}

// relayText is the relay line in the window's language, such as
// "中继：已连接 · 锥形 NAT（可直连） · 公网 203.0.113.7:40000"; "" when
// there is no relay. The network is shown only while connected: the
// measurement came from the relay and may be stale once the link is down.
func (u *UI) relayText(e peer.RelayEvent) string {
	T, s := u.tr.T, e.State
	if s.Relay == "" {
		return ""
	}
	var parts []string
	switch {
	case s.Connected:
		parts = append(parts, T("connected"))
		if nat := u.natName(s.NAT); nat != "" {
			parts = append(parts, nat)
		}
		if s.Public != "" {
			parts = append(parts, T("public")+" "+s.Public)
		}
	case s.Error != "":
		parts = append(parts, T("not connected")+" – "+shorten(s.Error, relayErrLen))
	default:
		parts = append(parts, T("connecting…"))
	}
	return fmt.Sprintf(T("Relay: %s"), strings.Join(parts, " · "))
}

// natName says natcheck's mapping name in words; "" before it is measured.
func (u *UI) natName(mapping string) string {
	switch mapping {
	case "":
		return ""
	case "endpoint-independent":
		return u.tr.T("cone NAT (direct possible)")
	case "symmetric":
		return u.tr.T("symmetric NAT (via relay)")
	case "none":
		return u.tr.T("no NAT")
	case "blocked":
		return u.tr.T("UDP blocked")
	case "unknown":
		return u.tr.T("NAT type unknown")
	}
	return mapping
}

// shorten cuts s to at most n runes, marking the cut with "…".
func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
