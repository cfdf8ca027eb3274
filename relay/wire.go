package relay

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Protocol IDs, versioned: a later incompatible change gets a new one.
const (
	ProtoJoin    = "/lanchat/join/1.0.0"
	ProtoSession = "/lanchat/session/1.0.0"
)

// Version is the session protocol version a client says in hello.
const Version = 1

// MaxFrame bounds one frame. A message body is at most MaxBody, and the
// largest frames are directories of a few thousand members.
const MaxFrame = 4 << 20

// MaxBody bounds one message body, so one member cannot fill the store
// with a few sends.
const MaxBody = 64 << 10

// Error codes in error frames, for clients to act on.
const (
	CodeNotMember   = "not_member"   // the connection's peer is not (or no longer) a member
	CodeBadInvite   = "bad_invite"   // unknown, used or expired invite
	CodeBadRequest  = "bad_request"  // malformed or unknown frame
	CodeUnknownPeer = "unknown_peer" // no such member
	CodeNoGroup     = "no_group"     // no such group, or not a member of it
	CodeFull        = "full"         // the recipient's stored messages reached their quota
	CodeInternal    = "internal"     // the relay failed; retry later
)

// Frame is every message of both protocols; T says which and which fields
// are set.
type Frame struct {
	T       string          `json:"t"`
	V       int             `json:"v,omitempty"`
	Profile *Profile        `json:"profile,omitempty"`
	Secret  string          `json:"secret,omitempty"`
	ID      string          `json:"id,omitempty"`
	To      string          `json:"to,omitempty"`
	Group   string          `json:"group,omitempty"`
	Body    json.RawMessage `json:"body,omitempty"`
	Seq     uint64          `json:"seq,omitempty"`
	Env     *Envelope       `json:"env,omitempty"`
	Epoch   string          `json:"epoch,omitempty"`
	Members []Member        `json:"members,omitempty"`
	Groups  []Group         `json:"groups,omitempty"`
	Ref     string          `json:"ref,omitempty"`
	Op      string          `json:"op,omitempty"`
	Name    string          `json:"name,omitempty"`
	Peers   []string        `json:"peers,omitempty"`
	STUN    []int           `json:"stun,omitempty"` // welcome: the relay's STUN ports
	// The directory's version: in a hello the one the client has, in a
	// welcome the relay's, which then carries Members only if they differ.
	DirV string `json:"dirv,omitempty"`
	// Online (welcome) says who is online: bit i (of byte i/8, from the
	// low bit) for the directory's i-th member.
	Online []byte `json:"online,omitempty"`
	// On and Off (presence) are members who came online or went offline.
	On    []string `json:"on,omitempty"`
	Off   []string `json:"off,omitempty"`
	Code  string   `json:"code,omitempty"`
	Error string   `json:"error,omitempty"`
}

// Profile is how a member presents itself: the key its LAN contacts know it
// by (user@host), so that one conversation is one history whichever path
// carried it, and its nickname and group.
type Profile struct {
	Key   string `json:"key"`
	Nick  string `json:"nick,omitempty"`
	Group string `json:"group,omitempty"`
}

// Member is a member as the directory shows it.
type Member struct {
	ID string `json:"id"` // peer ID
	Profile
	Online bool `json:"online,omitempty"`
}

// Group is a persistent group on the relay.
type Group struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Owner   string   `json:"owner"`
	Members []string `json:"members"`
}

// Envelope is a delivered message. Kind "msg" carries a MessageBody,
// "receipt" a ReceiptBody.
type Envelope struct {
	ID    string          `json:"id"`
	From  string          `json:"from"`
	Group string          `json:"group,omitempty"`
	Kind  string          `json:"kind"`
	Sent  time.Time       `json:"sent"`
	Body  json.RawMessage `json:"body"`
}

// MessageBody is a chat message's content.
type MessageBody struct {
	Text string `json:"text"`
	Nick string `json:"nick,omitempty"` // the sender's nickname when it sent
	// Offer and Files attach files: the offer's number and its list in
	// IPMsg's file-list format (UTF-8), fetched over ProtoFile.
	Offer uint64 `json:"offer,omitempty"`
	Files string `json:"files,omitempty"`
	// Sealed asks the recipient to open the message before reading it, as
	// IPMsg's sealed messages do. Opening sends the sender a body with no
	// text and Opened set to the message's id as the sender sent it.
	Sealed bool `json:"sealed,omitempty"`
	// Auto marks an away auto-reply, which is never answered by another.
	Auto   bool   `json:"auto,omitempty"`
	Opened string `json:"opened,omitempty"`
	// Release, in a body of its own, tells the sender that the recipient
	// declined its offer with that number: the sender stops sharing it.
	Release uint64 `json:"release,omitempty"`
}

// ReceiptBody tells a sender that its message reached the recipient.
type ReceiptBody struct {
	Ref string `json:"ref"` // the sender's message ID
	To  string `json:"to"`  // who received it
}

// Kinds of envelope.
const (
	KindMsg     = "msg"
	KindReceipt = "receipt"
)

// ErrFrameTooLarge means a frame's length exceeds MaxFrame.
var ErrFrameTooLarge = errors.New("relay: frame too large")

// ReadFrame reads one frame. Hostile input gives an error, never a panic or
// an allocation beyond MaxFrame.
func ReadFrame(r *bufio.Reader) (Frame, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Frame{}, io.EOF
		}
		return Frame{}, fmt.Errorf("relay: frame length: %w", err)
	}
	if n > MaxFrame {
		return Frame{}, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Frame{}, fmt.Errorf("relay: frame: %w", io.ErrUnexpectedEOF)
	}
	return DecodeFrame(buf)
}

// DecodeFrame parses a frame's JSON.
func DecodeFrame(b []byte) (Frame, error) {
	var f Frame
	if err := json.Unmarshal(b, &f); err != nil {
		return Frame{}, fmt.Errorf("relay: bad frame: %w", err)
	}
	if f.T == "" {
		return Frame{}, errors.New("relay: bad frame: no type")
	}
	return f, nil
}

// AppendFrame appends f, length-prefixed, to b.
func AppendFrame(b []byte, f Frame) ([]byte, error) {
	js, err := json.Marshal(f)
	if err != nil {
		return b, fmt.Errorf("relay: encode frame: %w", err)
	}
	if len(js) > MaxFrame {
		return b, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(js))
	}
	b = binary.AppendUvarint(b, uint64(len(js)))
	return append(b, js...), nil
}

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, f Frame) error {
	b, err := AppendFrame(nil, f)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// errorFrame is the answer to a failed request.
func errorFrame(code string, err error) Frame {
	return Frame{T: "error", Code: code, Error: err.Error()}
}

// RemoteError is an error the relay reported.
type RemoteError struct{ Code, Msg string }

func (e *RemoteError) Error() string { return "relay: " + e.Msg }

// ErrNotMember is matched (errors.Is) by a RemoteError with CodeNotMember.
var ErrNotMember = errors.New("not a member of this relay")

func (e *RemoteError) Is(target error) bool {
	return target == ErrNotMember && e.Code == CodeNotMember
}

func remoteError(f Frame) error { return &RemoteError{Code: f.Code, Msg: f.Error} }
