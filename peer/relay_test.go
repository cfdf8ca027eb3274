package peer

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lanchat/lanchat/relay"
)

// TestRelayCopyAfterRestart: a message a relay member delivered directly
// just before this node stopped comes again through the relay's store
// after the restart (its "stored" answer was lost on the way). The node,
// restarted on the same data folder, shows it once; a new message after it
// is shown.
func TestRelayCopyAfterRestart(t *testing.T) {
	t.Parallel()
	_, relayID, err := relay.LoadIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A relay that is never reached: the client is not run, only handed
	// deliveries as its session would.
	cfg := Config{DataDir: t.TempDir(), Relay: []string{"/ip4/127.0.0.1/tcp/9/p2p/" + relayID.String()}}
	_, member, err := relay.LoadIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	envelope := func(id, text string) relay.Envelope {
		body, _ := json.Marshal(relay.MessageBody{Text: text, Nick: "李四"})
		return relay.Envelope{ID: member.String() + "/" + id, From: member.String(), Kind: relay.KindMsg, Sent: time.Now(), Body: body}
	}
	deliver := func(envs ...relay.Envelope) []Message {
		n := newNode(t, cfg)
		defer func() {
			closeUnstarted(n)
			n.relayClient().Close()
		}()
		for _, env := range envs {
			if err := n.relayDeliver(env); err != nil {
				t.Fatal(err)
			}
		}
		h, err := n.History(member.String(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	first := envelope("1", "先到的")
	if h := deliver(first); len(h) != 1 {
		t.Fatalf("history before the restart: %+v", h)
	}
	h := deliver(first, envelope("2", "后来的"))
	if len(h) != 2 || h[0].Text != "先到的" || h[1].Text != "后来的" {
		t.Fatalf("history after the restart and the store's copy: %+v, want each message once", h)
	}
}
