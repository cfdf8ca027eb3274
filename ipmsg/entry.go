package ipmsg

import (
	"bytes"
	"strconv"
)

// Entry is what an entry-type packet (BR_ENTRY, ANSENTRY, BR_ABSENCE, BR_EXIT)
// says about its sender, decoded to UTF-8.
type Entry struct {
	User, Host  string // from the header, or the UTF-8 block's UN/HN
	Nick, Group string // from the legacy sections, or the UTF-8 block's NN/GN
	// IptuxIcon and IptuxEncoding are iptux's third and fourth sections. A
	// non-empty IptuxEncoding marks an iptux that skips charset guessing for us.
	IptuxIcon, IptuxEncoding string
	VS                       string // IP Messenger's "VS:" version, e.g. "00010002:4:99:103"
	Lanchat                  string // lanchat's "LC:" key; non-empty only for lanchat peers
	// PeerID is a lanchat peer's "ID:" key: its persistent libp2p identity,
	// by which the relay and other networks know it.
	PeerID       string
	HasUTF8Block bool
	// Legacy is the charset the legacy bytes showed (Unknown when ASCII).
	Legacy Charset
}

// Keys of the UTF-8 entry block.
const (
	keyUser    = "UN"
	keyHost    = "HN"
	keyNick    = "NN"
	keyGroup   = "GN"
	keyVersion = "VS"
	keyLanchat = "LC"
	keyPeerID  = "ID"
)

// ParseEntry decodes the entry sections of p. legacy is the charset assumed
// for non-UTF-8 bytes. Fields of the UTF-8 block win over legacy ones, as IP
// Messenger does. It never fails: missing sections are empty.
func ParseEntry(p Packet, legacy Charset) Entry {
	utf8opt := p.Command.Has(UTF8Opt)
	var e Entry
	var seen [4]Charset
	e.User, seen[0] = DecodeText(p.User, utf8opt, legacy)
	e.Host, seen[1] = DecodeText(p.Host, utf8opt, legacy)
	e.Nick, seen[2] = DecodeText(p.Section(0), utf8opt, legacy)
	e.Group, seen[3] = DecodeText(p.Section(1), utf8opt, legacy)
	for _, c := range seen {
		if c != Unknown {
			e.Legacy = c
		}
	}
	third := p.Section(2)
	if bytes.HasPrefix(third, []byte("\n")) {
		e.parseBlock(third)
	} else {
		e.IptuxIcon = UTF8.Decode(third)
		e.IptuxEncoding = UTF8.Decode(p.Section(3))
	}
	return e
}

// parseBlock reads "\nKEY:value" lines; unknown keys are ignored.
func (e *Entry) parseBlock(b []byte) {
	e.HasUTF8Block = true
	for _, line := range bytes.Split(b, []byte("\n")) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v := UTF8.Decode(val)
		switch string(key) {
		case keyUser:
			e.User = v
		case keyHost:
			e.Host = v
		case keyNick:
			e.Nick = v
		case keyGroup:
			e.Group = v
		case keyVersion:
			e.VS = v
		case keyLanchat:
			e.Lanchat = v
		case keyPeerID:
			e.PeerID = v
		}
	}
}

// AppendEntryExtra appends the extra of an entry packet lanchat sends:
// nick and group in legacy, then the UTF-8 block with every key. Colons in
// the block's values would be harmless, but newlines would split a key, so
// they are replaced by spaces.
func AppendEntryExtra(dst []byte, e Entry, legacy Charset) []byte {
	dst = legacy.AppendEncode(dst, e.Nick)
	dst = append(dst, 0)
	dst = legacy.AppendEncode(dst, e.Group)
	dst = append(dst, 0)
	for _, kv := range [...][2]string{
		{keyUser, e.User}, {keyHost, e.Host}, {keyNick, e.Nick}, {keyGroup, e.Group},
		{keyVersion, e.VS}, {keyLanchat, e.Lanchat}, {keyPeerID, e.PeerID},
	} {
		if kv[1] == "" && (kv[0] == keyVersion || kv[0] == keyLanchat || kv[0] == keyPeerID) {
			continue
		}
		dst = append(dst, '\n')
		dst = append(dst, kv[0]...)
		dst = append(dst, ':')
		dst = append(dst, oneLine(kv[1])...)
	}
	return append(dst, 0)
}

func oneLine(s string) string {
	return string(bytes.Map(func(r rune) rune {
		if r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, []byte(s)))
}

// HeaderName makes a user or host name safe for the header: a colon would
// split the header, so it becomes ';' as IP Messenger advises.
func HeaderName(s string) string {
	return string(bytes.Map(func(r rune) rune {
		if r == ':' {
			return ';'
		}
		if r == 0 {
			return ' '
		}
		return r
	}, []byte(s)))
}

// VSLanchat is the "VS:" value lanchat sends, in IP Messenger's
// type:major:minor:rev form with a type no IP Messenger build uses.
const VSLanchat = "00500000:0:1:100"

// AppendNo appends a packet number as decimal text: the extra of RECVMSG,
// READMSG, ANSREADMSG, RELEASEFILES.
func AppendNo(dst []byte, no uint64) []byte {
	dst = strconv.AppendUint(dst, no, 10)
	return append(dst, 0)
}
