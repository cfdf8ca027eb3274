package peer

import (
	"net/netip"
	"time"
)

// Contact is a person the node can talk to.
type Contact struct {
	Key     string           `json:"key"` // user@host[:port]: stable across restarts and network cards
	Nick    string           `json:"nick"`
	Group   string           `json:"group,omitempty"`
	User    string           `json:"user"`
	Host    string           `json:"host"`
	Addr    netip.AddrPort   `json:"addr"`
	Addrs   []netip.AddrPort `json:"addrs,omitempty"`
	Client  string           `json:"client"` // lanchat, ipmsg (IP Messenger, Feige), feiq, iptux
	Version string           `json:"version,omitempty"`
	Away    bool             `json:"away,omitempty"`
	Charset string           `json:"charset"` // what we send to them: utf-8 or the legacy charset
	Seen    time.Time        `json:"seen"`
}

// Direction says who wrote a message.
type Direction string

const (
	Incoming Direction = "in"
	Outgoing Direction = "out"
)

// Status is where an outgoing message stands.
type Status string

const (
	Sending   Status = "sending"
	Delivered Status = "delivered" // the peer acknowledged it
	Failed    Status = "failed"    // no acknowledgement before the deadline
	Opened    Status = "opened"    // a sealed message the peer opened
	Received  Status = "received"  // an incoming message
)

// Message is one chat message, in either direction.
type Message struct {
	ID       string    `json:"id"`   // unique in this node's history
	Peer     string    `json:"peer"` // contact key
	Nick     string    `json:"nick,omitempty"`
	Dir      Direction `json:"dir"`
	Text     string    `json:"text"`
	Time     time.Time `json:"time"`
	Sealed   bool      `json:"sealed,omitempty"`
	AutoRe   bool      `json:"auto_reply,omitempty"` // an away auto-reply
	Status   Status    `json:"status"`
	Error    string    `json:"error,omitempty"`
	PacketNo uint64    `json:"packet_no"`
	Part     int       `json:"part,omitempty"`  // 1-based part number of a split long message
	Parts    int       `json:"parts,omitempty"` // how many parts it was split into
}

// Event is something the node reports. The set is closed: ContactEvent,
// MessageEvent, StatusEvent, NoticeEvent.
type Event interface{ event() }

// ContactEvent reports a contact joining, changing or leaving.
type ContactEvent struct {
	Change  string  `json:"change"` // joined, updated, left
	Contact Contact `json:"contact"`
}

// MessageEvent reports a message received or sent.
type MessageEvent struct {
	Message Message `json:"message"`
}

// StatusEvent reports an outgoing message delivered, failed or opened.
type StatusEvent struct {
	ID     string `json:"id"`
	Peer   string `json:"peer"`
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
}

// NoticeEvent is a warning a user should see, such as dropped flood traffic.
type NoticeEvent struct {
	Level string `json:"level"` // info, warn
	Text  string `json:"text"`
}

func (ContactEvent) event() {}
func (MessageEvent) event() {}
func (StatusEvent) event()  {}
func (NoticeEvent) event()  {}
