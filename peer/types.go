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
	Via     string           `json:"via"` // lan, or relay for members reached through the relay
	// Path is how a relay member is connected right now: direct (hole
	// punched or plain), relayed (a circuit through the relay), or empty
	// (messages wait in the relay's store); lan for LAN contacts. PathNote
	// says why there is no direct path, when it can tell.
	Path     string `json:"path,omitempty"`
	PathNote string `json:"path_note,omitempty"`
	ID       string `json:"id,omitempty"`      // a lanchat peer's identity; a group's ID
	Offline  bool   `json:"offline,omitempty"` // a relay member not connected: messages wait on the relay
	Members  int    `json:"members,omitempty"` // a relay group's size
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
	Stored    Status = "stored"    // the relay holds it for the peer; delivered follows
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
	Files    []File    `json:"files,omitempty"` // attachments: accept them by this message's ID
	Via      string    `json:"via,omitempty"`   // relay when the relay carried it
	From     string    `json:"from,omitempty"`  // in a group conversation, the sender's key
}

// Event is something the node reports. The set is closed: ContactEvent,
// MessageEvent, StatusEvent, NoticeEvent, TransferEvent, RelayEvent.
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
	// Format and Args make Text (fmt.Sprintf), for a display that
	// translates Format, verbs kept, before applying Args.
	Format string `json:"-"`
	Args   []any  `json:"-"`
}

// The notices' formats, for translations.
const (
	NoticeFlood       = "%v is flooding port %d; dropping its packets"
	NoticeDropped     = "%d events were dropped because the reader was slow; history has every message"
	NoticeNoBroadcast = "No network interface can broadcast and no extra address is configured: nobody on the LAN can see you. Connect to a network, or add peers or subnets (--broadcast, or Settings)"
)

func (ContactEvent) event() {}
func (MessageEvent) event() {}
func (StatusEvent) event()  {}
func (NoticeEvent) event()  {}

// File is one attachment of an offer.
type File struct {
	ID     uint64    `json:"id"`
	Name   string    `json:"name"`
	Size   int64     `json:"size"` // for folders, what the sender announced (lanchat and IP Messenger say 0, iptux the total)
	Folder bool      `json:"folder,omitempty"`
	MTime  time.Time `json:"mtime"`
}

// TransferState is where a transfer stands.
type TransferState string

const (
	TransferQueued    TransferState = "queued"
	TransferRunning   TransferState = "running"
	TransferDone      TransferState = "done"
	TransferFailed    TransferState = "failed"
	TransferCancelled TransferState = "cancelled"
)

// Final reports whether the transfer has ended.
func (s TransferState) Final() bool {
	return s == TransferDone || s == TransferFailed || s == TransferCancelled
}

// Transfer is one file or folder moving in either direction.
type Transfer struct {
	ID     string        `json:"id"`
	Offer  string        `json:"offer"` // ID of the message that offered it
	Peer   string        `json:"peer"`
	Nick   string        `json:"nick,omitempty"`
	Dir    Direction     `json:"dir"` // in: we download; out: the peer downloads from us
	Name   string        `json:"name"`
	Folder bool          `json:"folder,omitempty"`
	Path   string        `json:"path,omitempty"` // where a download was saved
	Done   int64         `json:"done"`
	Total  int64         `json:"total"` // 0 when unknown (folders)
	Files  int           `json:"files,omitempty"`
	Rate   float64       `json:"rate"` // bytes per second
	ETA    time.Duration `json:"eta"`
	State  TransferState `json:"state"`
	Error  string        `json:"error,omitempty"`
}

// TransferEvent reports a transfer's progress or end.
type TransferEvent struct {
	Transfer Transfer `json:"transfer"`
}

func (TransferEvent) event() {}
