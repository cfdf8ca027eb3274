package ipmsg

import (
	"bytes"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// HostList is one ANSLIST chunk of IP Messenger's host list, the answer to
// GETLIST. Only W uses it, and only when "AllowSendList" is configured.
type HostList struct {
	// Next is the start position to ask for in the next GETLIST, or 0 when
	// this chunk ends the list.
	Next  int
	Hosts []ListedHost
}

// ListedHost is one host of a HostList, decoded to UTF-8.
type ListedHost struct {
	User, Host  string
	Status      Command // the host's entry command: mode and status options
	Addr        string  // IP address as text
	Port        uint16  // the real port; the wire has it byte-swapped (see AppendHostList)
	Nick, Group string
}

// MaxListHosts is the most hosts ParseHostList reads from one chunk. W fills
// at most its 32 KiB buffer, and every host takes more than 16 bytes.
const MaxListHosts = 2048

const (
	hostSep   = '\a' // HOSTLIST_SEPARATOR
	hostDummy = "\b" // HOSTLIST_DUMMY: stands for an empty field
	hostCols  = 7    // user, host, status, addr, port, nick, group
)

// ParseHostList decodes an ANSLIST extra: "%5d\a%5d\a" (next start position,
// host count), then per host "user\ahost\astatus\aaddr\aport\anick\agroup\a",
// where "\b" stands for an empty field and port is htons(port) printed in
// decimal by a little-endian sender. The count is not trusted: like W, it
// reads hosts until the text ends. cs is as for ParseFileList (UTF8 when the
// packet had UTF8OPT).
func ParseHostList(b []byte, cs Charset) (HostList, error) {
	var l HostList
	b = bytes.TrimRight(b, "\x00")
	if len(b) > MaxDatagram {
		return l, overLimit("host list of ", len(b), "bytes", MaxDatagram)
	}
	if n := bytes.Count(b, []byte{hostSep}) / hostCols; n > MaxListHosts {
		return l, overLimit("host list of ", n, "hosts", MaxListHosts)
	}
	f := hostFields{rest: b}
	var err error
	if l.Next, err = f.header(); err != nil {
		return l, err
	}
	for i := 0; len(f.rest) > 0; i++ {
		h, err := f.host(cs)
		if err != nil {
			return HostList{}, prefixError(err, "host list entry "+itoa(i)+": ")
		}
		l.Hosts = append(l.Hosts, h)
	}
	return l, nil
}

// hostFields walks the '\a'-separated fields of a host list.
type hostFields struct{ rest []byte }

func (f *hostFields) next() ([]byte, bool) {
	field, rest, ok := bytes.Cut(f.rest, []byte{hostSep})
	f.rest = rest
	return field, ok
}

// header reads "%5d\a%5d\a" and returns the next start position. The
// count must be a number, but the hosts that follow are what counts.
func (f *hostFields) header() (int, error) {
	next, _ := f.next()
	count, ok := f.next()
	n, err := parsePadded(next)
	if err != nil {
		return 0, errMalformed("host list: next position " + quote(next))
	}
	if _, err := parsePadded(count); err != nil || !ok {
		return 0, errMalformed("host list: count " + quote(count))
	}
	return n, nil
}

// host reads the seven fields of one host.
func (f *hostFields) host(cs Charset) (ListedHost, error) {
	var col [hostCols][]byte
	for i := range col {
		var ok bool
		if col[i], ok = f.next(); !ok && i < hostCols-1 {
			return ListedHost{}, errMalformed(itoa(i+1) + " fields, want 7")
		}
	}
	status, err := parseStatus(col[2])
	if err != nil {
		return ListedHost{}, errMalformed("status " + quote(col[2]))
	}
	port, err := parseDecimal(col[4])
	if err != nil || port > 0xffff {
		return ListedHost{}, errMalformed("port " + quote(col[4]))
	}
	return ListedHost{
		User: hostText(col[0], cs), Host: hostText(col[1], cs), Status: status, Addr: hostText(col[3], cs),
		Port: bits.ReverseBytes16(uint16(port)), Nick: hostText(col[5], cs), Group: hostText(col[6], cs),
	}, nil
}

// hostText decodes a text field, in which "\b" alone means empty.
func hostText(b []byte, cs Charset) string {
	if string(b) == hostDummy {
		return ""
	}
	return decodeName(b, cs)
}

// parsePadded parses the space-padded %5d of the chunk header.
func parsePadded(b []byte) (int, error) {
	n, err := parseDecimal(bytes.TrimLeft(b, " "))
	if err != nil || n > math.MaxInt32 {
		return 0, strconv.ErrSyntax
	}
	return int(n), nil
}

// parseStatus reads W's "%d" of the 32-bit status, which is negative when
// the top bit is set.
func parseStatus(b []byte) (Command, error) {
	neg := bytes.HasPrefix(b, []byte("-"))
	n, err := parseDecimal(bytes.TrimPrefix(b, []byte("-")))
	if err != nil || n > 1<<32-1 || (neg && n > 1<<31) {
		return 0, strconv.ErrSyntax
	}
	if neg {
		return Command(-uint32(n)), nil
	}
	return Command(n), nil
}

// AppendHostList appends l as an ANSLIST extra in W's shape. Empty fields
// are written as "\b" (W's reader would skip an empty one), and '\a' in a
// field becomes '_'. Status is written as W's "%d" of a 32-bit long, and
// ports as W's htons(port) prints on a little-endian machine: 2425 as 30985.
func AppendHostList(dst []byte, l HostList, cs Charset) []byte {
	dst = appendPadded(dst, l.Next)
	dst = appendPadded(dst, len(l.Hosts))
	for _, h := range l.Hosts {
		dst = appendHostField(dst, h.User, cs)
		dst = appendHostField(dst, h.Host, cs)
		dst = strconv.AppendInt(dst, int64(int32(h.Status)), 10)
		dst = append(dst, hostSep)
		dst = appendHostField(dst, h.Addr, cs)
		dst = strconv.AppendUint(dst, uint64(bits.ReverseBytes16(h.Port)), 10)
		dst = append(dst, hostSep)
		dst = appendHostField(dst, h.Nick, cs)
		dst = appendHostField(dst, h.Group, cs)
	}
	return dst
}

// appendPadded writes n as "%5d\a".
func appendPadded(dst []byte, n int) []byte {
	for w := len(strconv.Itoa(n)); w < 5; w++ {
		dst = append(dst, ' ')
	}
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, hostSep)
}

func appendHostField(dst []byte, s string, cs Charset) []byte {
	if s == "" {
		s = hostDummy
	}
	dst = cs.AppendEncode(dst, strings.ReplaceAll(s, "\a", "_"))
	return append(dst, hostSep)
}
