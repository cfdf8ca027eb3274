package ipmsg

import "bytes"

// Client is the family of program a peer runs, as far as its packets tell.
type Client uint8

const (
	ClientIPMsg   Client = iota // IP Messenger for Windows, Feige, or anything else speaking "1"
	ClientFeiQ                  // version "1_lbt…"
	ClientIptux                 // version contains "iptux"
	ClientLanchat               // entry carries lanchat's LC key
)

func (c Client) String() string {
	switch c {
	case ClientFeiQ:
		return "feiq"
	case ClientIptux:
		return "iptux"
	case ClientLanchat:
		return "lanchat"
	}
	return "ipmsg"
}

// DetectClient names the client from a packet's version and, when known, its
// entry.
func DetectClient(version []byte, e *Entry) Client {
	switch {
	case e != nil && e.Lanchat != "":
		return ClientLanchat
	case bytes.Contains(version, []byte("iptux")) || (e != nil && e.IptuxEncoding != ""):
		return ClientIptux
	case bytes.HasPrefix(version, []byte("1_lbt")):
		return ClientFeiQ
	}
	return ClientIPMsg
}

// MaxSend is the largest datagram the client reads whole.
func (c Client) MaxSend() int {
	switch c {
	case ClientFeiQ:
		return MaxSendFeiQ
	case ClientIptux:
		return MaxSendIptux
	case ClientLanchat:
		return MaxSendIPMsg
	}
	// IP Messenger reads 32 KiB, but Feige also reports as "1" and FeiQ's
	// limit is the safe one for a client we cannot tell apart.
	return MaxSendFeiQ
}
