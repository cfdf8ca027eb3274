package ipmsg

import (
	"bytes"
	"errors"
	"math"
	"strconv"
)

// Version is what lanchat sends in the first header field. IP Messenger and
// FeiQ require "1" or a "1_" prefix; iptux accepts anything.
const Version = "1"

// Packet size limits, in bytes.
const (
	// MaxDatagram is the largest UDP payload; anything larger cannot arrive.
	MaxDatagram = 65507
	// MaxSendIPMsg is IP Messenger's receive buffer (MAX_UDPBUF).
	MaxSendIPMsg = 32 * 1024
	// MaxSendIptux is what iptux reads of a datagram before cutting it off.
	MaxSendIptux = 8191
	// MaxSendFeiQ is FeiQ's receive buffer.
	MaxSendFeiQ = 4096
)

// Errors from Parse and the other parsers and stream readers. Callers drop
// what fails to parse; the error says why. Each error wraps one of these, so
// errors.Is tells them apart.
var (
	ErrMalformed = errors.New("ipmsg: malformed packet")
	ErrTooLarge  = errors.New("ipmsg: packet too large")
	ErrIPDict    = errors.New("ipmsg: IPDict packet not supported")
)

// Packet is one IPMsg packet. Parse fills the byte slices with sub-slices of
// its input, so they are valid only as long as that buffer is; Clone copies.
// Their capacity ends with the field, so appending to one never overwrites
// the input.
type Packet struct {
	Version []byte  // raw, e.g. "1", "1_iptux 0.8.3", "1_lbt6_0#128#MAC#…"
	No      uint64  // packet number
	NoRaw   []byte  // the packet number as received; echoed in acks
	User    []byte  // login name, in the packet's encoding
	Host    []byte  // machine name, in the packet's encoding
	Command Command // mode and options
	Extra   []byte  // everything after the fifth colon, untrimmed
}

// Parse splits a datagram (or a TCP request line) into a Packet. It copies
// nothing. It rejects input without five header colons, a non-decimal
// PacketNo or Command, IPDict packets and anything over MaxDatagram.
func Parse(b []byte) (Packet, error) {
	var p Packet
	if len(b) > MaxDatagram {
		return p, overLimit("", len(b), "bytes", MaxDatagram)
	}
	if bytes.HasPrefix(b, []byte("IP2:")) {
		return p, ErrIPDict
	}
	var field [5][]byte
	rest := b
	for i := range field {
		j := bytes.IndexByte(rest, ':')
		if j < 0 {
			return p, errMalformed(itoa(i) + " header fields, want 5")
		}
		field[i], rest = rest[:j:j], rest[j+1:]
	}
	no, err := parseDecimal(field[1])
	if err != nil {
		return p, errMalformed("packet number " + quote(field[1]))
	}
	cmd, err := parseDecimal(field[4])
	if err != nil {
		return p, errMalformed("command " + quote(field[4]))
	}
	p = Packet{
		Version: field[0], No: no, NoRaw: field[1], User: field[2], Host: field[3],
		Command: Command(uint32(cmd)), // IP Messenger reads it with 32-bit atol
		Extra:   rest,
	}
	return p, nil
}

// parseDecimal parses digits only: no sign, no spaces, no empty string.
func parseDecimal(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 20 {
		return 0, strconv.ErrSyntax
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, strconv.ErrRange
		}
		n = n*10 + d
	}
	return n, nil
}

// parseHex parses hex digits of either case: no prefix, no sign, no empty
// string, at most bits wide. Leading zeros are allowed (W pads sizes).
func parseHex(b []byte, bits int) (uint64, error) {
	if len(b) == 0 {
		return 0, strconv.ErrSyntax
	}
	var n uint64
	for _, c := range b {
		d, ok := hexDigit(c)
		if !ok {
			return 0, strconv.ErrSyntax
		}
		if n>>(bits-4) != 0 {
			return 0, strconv.ErrRange
		}
		n = n<<4 | d
	}
	return n, nil
}

func hexDigit(c byte) (uint64, bool) {
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0'), true
	case 'a' <= c && c <= 'f':
		return uint64(c - 'a' + 10), true
	case 'A' <= c && c <= 'F':
		return uint64(c - 'A' + 10), true
	}
	return 0, false
}

// Append appends the packet in wire form to dst. NoRaw is ignored: No is
// written in decimal.
func (p Packet) Append(dst []byte) []byte {
	dst = append(dst, p.Version...)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, p.No, 10)
	dst = append(dst, ':')
	dst = append(dst, p.User...)
	dst = append(dst, ':')
	dst = append(dst, p.Host...)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, uint64(p.Command), 10)
	dst = append(dst, ':')
	return append(dst, p.Extra...)
}

// Clone returns a copy of p that does not share memory with the parsed buffer.
func (p Packet) Clone() Packet {
	// Copy field by field into one allocation: re-parsing p.Append would
	// lose a packet Parse rejects, such as one built with a long Extra.
	n := len(p.Version) + len(p.NoRaw) + len(p.User) + len(p.Host) + len(p.Extra)
	buf := make([]byte, 0, n)
	q := p
	q.Version, buf = carve(buf, p.Version)
	q.NoRaw, buf = carve(buf, p.NoRaw)
	q.User, buf = carve(buf, p.User)
	q.Host, buf = carve(buf, p.Host)
	q.Extra, _ = carve(buf, p.Extra)
	return q
}

// carve appends b to buf and returns the copy, capped so that appending to
// it cannot overwrite what follows, and the grown buf. nil stays nil.
func carve(buf, b []byte) (field, rest []byte) {
	if b == nil {
		return nil, buf
	}
	n := len(buf)
	buf = append(buf, b...)
	return buf[n:len(buf):len(buf)], buf
}

// TrimExtra returns Extra without the trailing NULs and zero padding that some
// senders add.
func (p Packet) TrimExtra() []byte {
	return bytes.TrimRight(p.Extra, "\x00")
}

// Sections splits Extra on NUL after trimming trailing NULs. A missing
// section is absent, not empty: callers index with care, or use Section.
func (p Packet) Sections() [][]byte {
	e := p.TrimExtra()
	if len(e) == 0 {
		return nil
	}
	return bytes.Split(e, []byte{0})
}

// Section returns the i-th NUL-separated section of Extra, or nil.
func (p Packet) Section(i int) []byte {
	e := p.TrimExtra()
	for ; i > 0; i-- {
		j := bytes.IndexByte(e, 0)
		if j < 0 {
			return nil
		}
		e = e[j+1:]
	}
	if j := bytes.IndexByte(e, 0); j >= 0 {
		return e[:j]
	}
	return e
}

// VersionOK reports whether IP Messenger would accept the version: "1" or a
// "1_" prefix (its atoi must give 1). lanchat accepts other versions too.
func (p Packet) VersionOK() bool {
	v := p.Version
	return string(v) == "1" || bytes.HasPrefix(v, []byte("1_"))
}

// FeiQMAC returns the MAC address FeiQ puts in its version string
// ("1_lbt6_0#128#<MAC>#…"), or "".
func (p Packet) FeiQMAC() string {
	if !bytes.HasPrefix(p.Version, []byte("1_lbt")) {
		return ""
	}
	f := bytes.Split(p.Version, []byte("#"))
	if len(f) < 3 {
		return ""
	}
	return string(f[2])
}

// NoExtra parses a PacketNo carried as decimal text in the first section of
// Extra (RECVMSG, READMSG, ANSREADMSG, RELEASEFILES, DELMSG). GETLIST's start
// position has the same form.
func (p Packet) NoExtra() (uint64, error) {
	s := p.Section(0)
	n, err := parseDecimal(s)
	if err != nil {
		return 0, errMalformed("packet number " + quote(s) + " in " + p.Command.Mode().String())
	}
	return n, nil
}

// NotAbsence is the SENDABSENCEINFO text of a user who is not away, as the
// English build of IP Messenger sends it (IDS_NOTABSENCE).
const NotAbsence = "Not Absence mode"
