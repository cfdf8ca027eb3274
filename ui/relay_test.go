package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/lanchat/lanchat/peer"
)

// relayState is the part of the node's relay state the window shows.
type relayState struct {
	relay     string
	connected bool
	err       string
	nat       string
	public    string
}

// event builds the RelayEvent the node would publish for s.
func (s relayState) event() peer.RelayEvent {
	var e peer.RelayEvent
	e.State.Relay, e.State.Connected, e.State.Error = s.relay, s.connected, s.err
	e.State.NAT, e.State.Public = s.nat, s.public
	if s.nat != "" {
		e.State.NATText = "what natcheck says about " + s.nat
	}
	return e
}

const relayID = "12D3KooWRelayRelayRelay"

var relayCases = []struct {
	name   string
	state  relayState
	zh, en string // "" means the line is hidden
}{
	{name: "no relay"},
	{
		name:  "cone with public address",
		state: relayState{relay: relayID, connected: true, nat: "endpoint-independent", public: "203.0.113.7:40000"},
		zh:    "中继：已连接 · 锥形 NAT（可直连） · 公网 203.0.113.7:40000",
		en:    "Relay: connected · cone NAT (direct possible) · public 203.0.113.7:40000",
	},
	{
		name:  "symmetric",
		state: relayState{relay: relayID, connected: true, nat: "symmetric", public: "198.51.100.9:61001"},
		zh:    "中继：已连接 · 对称 NAT（经中继） · 公网 198.51.100.9:61001",
		en:    "Relay: connected · symmetric NAT (via relay) · public 198.51.100.9:61001",
	},
	{
		name:  "no NAT",
		state: relayState{relay: relayID, connected: true, nat: "none", public: "192.0.2.10:2425"},
		zh:    "中继：已连接 · 无 NAT · 公网 192.0.2.10:2425",
		en:    "Relay: connected · no NAT · public 192.0.2.10:2425",
	},
	{
		name:  "UDP blocked",
		state: relayState{relay: relayID, connected: true, nat: "blocked"},
		zh:    "中继：已连接 · UDP 被阻断",
		en:    "Relay: connected · UDP blocked",
	},
	{
		name:  "unknown",
		state: relayState{relay: relayID, connected: true, nat: "unknown", public: "203.0.113.7:40000"},
		zh:    "中继：已连接 · NAT 类型未知 · 公网 203.0.113.7:40000",
		en:    "Relay: connected · NAT type unknown · public 203.0.113.7:40000",
	},
	{
		name:  "connected, not measured yet",
		state: relayState{relay: relayID, connected: true},
		zh:    "中继：已连接",
		en:    "Relay: connected",
	},
	{
		name: "not connected",
		// The last measurement stays in the state but is not shown.
		state: relayState{relay: relayID, err: "dial tcp 192.0.2.1:4001: connect: connection refused",
			nat: "symmetric", public: "198.51.100.9:61001"},
		zh: "中继：未连接 – dial tcp 192.0.2.1:4001: connect: connection refused",
		en: "Relay: not connected – dial tcp 192.0.2.1:4001: connect: connection refused",
	},
	{
		name:  "long error",
		state: relayState{relay: relayID, err: strings.Repeat("x", 100)},
		zh:    "中继：未连接 – " + strings.Repeat("x", relayErrLen-1) + "…",
		en:    "Relay: not connected – " + strings.Repeat("x", relayErrLen-1) + "…",
	},
	{
		name:  "connecting",
		state: relayState{relay: relayID},
		zh:    "中继：正在连接…",
		en:    "Relay: connecting…",
	},
}

// checkRelayLine fails unless the relay line reads want, or is hidden when
// want is "".
func checkRelayLine(t *testing.T, u *UI, want string) {
	t.Helper()
	if want == "" {
		if u.relayLine.Visible() {
			t.Errorf("relay line shows %q, want it hidden", u.relayLine.Text)
		}
		return
	}
	if !u.relayLine.Visible() || u.relayLine.Text != want {
		t.Errorf("relay line %q (visible %v), want %q", u.relayLine.Text, u.relayLine.Visible(), want)
	}
}

// TestRelayLine: the window shows the node's relay state as it starts.
func TestRelayLine(t *testing.T) {
	for _, c := range relayCases {
		for _, lang := range []string{"zh", "en"} {
			t.Run(c.name+"/"+lang, func(t *testing.T) {
				eng := newFake(alice)
				eng.self.Relay = c.state.event().State
				u := newUI(t, lang, eng)
				want := map[string]string{"zh": c.zh, "en": c.en}[lang]
				checkRelayLine(t, u, want)
				danger := c.state.relay != "" && !c.state.connected && c.state.err != ""
				if got := u.relayLine.Importance == widget.DangerImportance; got != danger {
					t.Errorf("shown as an error: %v, want %v", got, danger)
				}
			})
		}
	}
}

// TestRelayLineFollowsEvents: each RelayEvent replaces the line, and the
// line goes away when the relay does.
func TestRelayLineFollowsEvents(t *testing.T) {
	u := newUI(t, "zh", newFake(alice))
	checkRelayLine(t, u, "")
	for _, c := range append(relayCases[1:], relayCases[0]) {
		u.Handle(c.state.event())
		checkRelayLine(t, u, c.zh)
	}
}

// TestRelayLineGolden: the line sits under the Away check, above the
// contacts, and wraps in the narrow pane.
func TestRelayLineGolden(t *testing.T) {
	u := newUI(t, "zh", newFake(alice, bob))
	u.Handle(relayCases[1].state.event())
	// The desktop driver lays a container out again on the next frame
	// when a wrapped label turns out taller at its new width; the test
	// canvas has no frames, so do it here.
	u.left.Refresh()
	test.AssertRendersToMarkup(t, "relay_zh.xml", u.Window().Canvas())
}
