// Package control is the local channel between a running lanchat node (the
// GUI or `lanchat serve`) and the short commands (`lanchat peers`, `send`,
// `events`, …). It is a Unix socket in the node's data folder (Windows 10
// and later have them too) carrying JSON lines:
//
//	client: {"op":"send","to":["alice"],"text":"hi"}
//	server: {"kind":"message","data":{…}} …  then {"done":true} or {"error":"…"}
//
// One connection carries any number of requests, answered in order. The
// "events" op streams until the client hangs up. Only the owner of the data
// folder can reach the socket: the folder is private (0700).
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/lanchat/lanchat/peer"
	"github.com/lanchat/lanchat/relay"
)

// SocketName is the socket's file name in the data folder.
const SocketName = "lanchat.sock"

// SocketPath returns the control socket of a data folder.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, SocketName) }

// Request is one command from a client.
type Request struct {
	Op    string   `json:"op"` // peers, send, events, away, name, history, open, status, accept, decline, transfers, cancel
	To    []string `json:"to,omitempty"`
	Text  string   `json:"text,omitempty"`
	Seal  bool     `json:"seal,omitempty"`
	Away  bool     `json:"away,omitempty"`
	Nick  string   `json:"nick,omitempty"`
	Group string   `json:"group,omitempty"`
	Peer  string   `json:"peer,omitempty"`
	Limit int      `json:"limit,omitempty"`
	ID    string   `json:"id,omitempty"`
	Files []string `json:"files,omitempty"` // absolute paths to offer with send
	Dir   string   `json:"dir,omitempty"`   // where accept saves; default the download folder
	Wait  bool     `json:"wait,omitempty"`  // accept: stream progress until every transfer ends
	Code  string   `json:"code,omitempty"`  // join: the invite code
	// GroupOp is a group request (create, add, remove, list); To are the
	// members to add or remove, Group the group, Nick a new group's name.
	GroupOp string `json:"group_op,omitempty"`
	TTL     string `json:"ttl,omitempty"` // invite: how long it is valid (Go duration)
}

// Response is one line of an answer. An answer is zero or more lines with
// Kind and Data, ended by a line with Done or Error.
type Response struct {
	Kind  string          `json:"kind,omitempty"` // contact, message, status, notice, self
	Data  json.RawMessage `json:"data,omitempty"`
	Done  bool            `json:"done,omitempty"`
	Error string          `json:"error,omitempty"`
}

// Engine is what the control server needs from the node.
type Engine interface {
	Contacts() []peer.Contact
	Send(ctx context.Context, to []string, text string, opt peer.SendOptions) ([]peer.Message, error)
	Subscribe() (<-chan peer.Event, func())
	SetAway(away bool, text string)
	SetName(nick, group string)
	History(who string, limit int) ([]peer.Message, error)
	Open(ctx context.Context, id string) error
	Self() peer.Self
	Accept(offerID, dir string) ([]peer.Transfer, error)
	Decline(offerID string) error
	Transfers() []peer.Transfer
	Cancel(id string) error
	Join(ctx context.Context, code string) ([]string, error)
	RelayGroup(ctx context.Context, op, group, name string, peers []string) ([]relay.Group, error)
}

// RelayAdmin is what a relay's control socket serves: `lanchat relay
// invite`, `members`, `remove` and `status`.
type RelayAdmin interface {
	Invite(ctx context.Context, ttl time.Duration, note string) (string, error)
	Members(ctx context.Context) ([]relay.Member, error)
	Remove(ctx context.Context, id string) error
	Status(ctx context.Context) (relay.Status, error)
}

// EventKind names an event for the wire.
func EventKind(e peer.Event) string {
	switch e.(type) {
	case peer.ContactEvent:
		return "contact"
	case peer.MessageEvent:
		return "message"
	case peer.StatusEvent:
		return "status"
	case peer.NoticeEvent:
		return "notice"
	case peer.TransferEvent:
		return "transfer"
	case peer.RelayEvent:
		return "relay"
	}
	return "unknown"
}

// ErrNotRunning means no node is listening on the data folder's socket.
var ErrNotRunning = errors.New("no lanchat is running with this data folder")

// RemoteError is an error the node reported.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("control: marshal %T: %v", v, err)) // our own types always marshal
	}
	return b
}
