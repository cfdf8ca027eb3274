package ipmsg

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Charset is a text encoding used on the wire. The zero value, Unknown, is
// what DecodeText reports for text that is pure ASCII and so tells nothing.
type Charset uint8

const (
	Unknown Charset = iota
	UTF8            // UTF-8: with UTF8OPT, and what iptux sends without it
	GB18030         // GBK, as sent by Chinese Windows (Feige, FeiQ); decoded as GB18030
	CP932           // Shift_JIS, as sent by Japanese Windows (IP Messenger)
	// GB18030Full is GB18030 both ways. iptux decodes a peer it took for
	// GB18030 with glib's "gb18030", which rejects GBK's 0x80 (€) and reads
	// the characters GBK lacks (emoji, rare CJK) from 4-byte sequences.
	GB18030Full
)

// ParseCharset accepts "utf-8", "gbk", "gb18030", "cp936", "cp932" and
// "shift_jis", in any case.
func ParseCharset(name string) (Charset, error) {
	switch strings.ToLower(strings.ReplaceAll(name, "-", "")) {
	case "utf8":
		return UTF8, nil
	case "gbk", "cp936", "gb2312":
		return GB18030, nil
	case "gb18030":
		return GB18030Full, nil
	case "cp932", "shift_jis", "sjis", "shiftjis":
		return CP932, nil
	}
	return Unknown, errors.New("ipmsg: unknown charset " + strconv.Quote(name) + " (want utf-8, gbk or cp932)")
}

func (c Charset) String() string {
	switch c {
	case UTF8:
		return "utf-8"
	case GB18030:
		return "gbk"
	case CP932:
		return "cp932"
	case GB18030Full:
		return "gb18030"
	}
	return "unknown"
}

// MarshalText lets settings files and JSON carry a Charset by name.
func (c Charset) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (c *Charset) UnmarshalText(b []byte) error {
	v, err := ParseCharset(string(b))
	*c = v
	return err
}

func (c Charset) codec() (dec, enc encoding.Encoding) {
	switch c {
	case GB18030:
		// Decode the superset; encode GBK, which Feige and FeiQ (CP936) can read.
		return simplifiedchinese.GB18030, simplifiedchinese.GBK
	case CP932:
		return japanese.ShiftJIS, japanese.ShiftJIS
	case GB18030Full:
		return simplifiedchinese.GB18030, simplifiedchinese.GB18030
	}
	return nil, nil
}

// Decode converts bytes in c to a UTF-8 string. Invalid input becomes U+FFFD;
// it never fails. Unknown and UTF8 treat the bytes as UTF-8.
func (c Charset) Decode(b []byte) string {
	if isASCII(b) {
		return string(b)
	}
	dec, _ := c.codec()
	if dec == nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	s, err := dec.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(s)
}

// AppendEncode appends s encoded in c to dst. Characters c cannot represent
// become '?', as Windows does.
func (c Charset) AppendEncode(dst []byte, s string) []byte {
	_, enc := c.codec()
	if enc == nil || isASCII([]byte(s)) {
		return append(dst, s...)
	}
	e := encoding.ReplaceUnsupported(enc.NewEncoder())
	for _, r := range s {
		if r < utf8.RuneSelf { // ASCII is the same in every code page, U+001A included
			dst = append(dst, byte(r))
			continue
		}
		var buf [utf8.UTFMax]byte
		n := utf8.EncodeRune(buf[:], r)
		out, err := e.Bytes(buf[:n])
		if err != nil || (len(out) == 1 && out[0] == 0x1a) { // x/text's substitute byte
			dst = append(dst, '?')
			continue
		}
		dst = append(dst, out...)
	}
	return dst
}

// Encode returns s encoded in c.
func (c Charset) Encode(s string) []byte { return c.AppendEncode(nil, s) }

// CanEncode reports whether every character of s survives encoding in c.
func (c Charset) CanEncode(s string) bool {
	_, enc := c.codec()
	if enc == nil || isASCII([]byte(s)) {
		return true
	}
	_, err := enc.NewEncoder().String(s)
	return err == nil
}

// DecodeText decodes text received from a peer following the receiving rules
// of the protocol: UTF8OPT means UTF-8; otherwise valid UTF-8 with non-ASCII
// bytes is UTF-8 (iptux sends it without the flag); otherwise it is legacy
// (the peer's ANSI code page). It returns the charset the bytes showed, or
// Unknown when they were pure ASCII.
func DecodeText(b []byte, utf8opt bool, legacy Charset) (string, Charset) {
	switch {
	case isASCII(b):
		return string(b), Unknown
	case utf8opt || utf8.Valid(b):
		return UTF8.Decode(b), UTF8
	case legacy == Unknown || legacy == UTF8:
		return GB18030.Decode(b), GB18030
	}
	return legacy.Decode(b), legacy
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
