package ipmsg

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
)

// DirHeader is one record header of the folder stream that answers
// GETDIRFILES. A FileRegular header is followed by Size bytes of content, a
// FileDir header enters that directory and a FileRetParent header (name ".")
// leaves it; the stream ends with the FileRetParent that leaves the folder
// requested.
type DirHeader struct {
	Name  string // decoded to UTF-8; not escaped on the wire, so it may hold ':'
	Size  uint64 // content bytes after the header (regular files only)
	Attr  uint32 // the full attribute word; Type gives the low byte
	MTime int64  // ext attribute 14 (MTIME), 0 if absent
	CTime int64  // ext attribute 16 (CREATETIME; iptux sends the unix ctime), 0 if absent
}

// Type returns the record type: the low byte of Attr.
func (h DirHeader) Type() uint32 { return h.Attr & 0xff }

// MaxDirHeader is the longest folder record header ReadDirHeader accepts,
// in bytes. W and iptux build headers in path-sized buffers (iptux 1 KiB);
// 4 KiB holds a MaxFileName-byte name with room to spare.
const MaxDirHeader = 4096

// maxLenDigits bounds the hex length prefix: 4 digits in practice, and
// MaxDirHeader needs no more than 4 either; allow leading zeros up to 8.
const maxLenDigits = 8

// ReadDirHeader reads one record header "HHHH:name:size:attr[:key=value]*:"
// from a folder stream. HHHH is the header's length in hex, counted from its
// own first digit through the final ':'; W and iptux write four digits, but
// any number up to eight is read. It reads exactly the header and none of the
// content, which the caller reads next (Size bytes for a regular file). It
// returns io.EOF if the stream ends before a header starts. Names are decoded
// as in ParseFileList; cs is UTF8 when the request had UTF8OPT (W then sends
// UTF-8), else the peer's charset.
func ReadDirHeader(r *bufio.Reader, cs Charset) (DirHeader, error) {
	n, digits, err := readHeaderLen(r)
	if err != nil {
		return DirHeader{}, err
	}
	if n <= uint64(digits)+1 {
		return DirHeader{}, errMalformed("folder header length " + strconv.FormatUint(n, 10) +
			" shorter than its " + itoa(digits+1) + "-byte prefix")
	}
	body := make([]byte, int(n)-digits-1)
	if _, err := io.ReadFull(r, body); err != nil {
		return DirHeader{}, &ioError{"read folder header", unexpected(err)}
	}
	return parseDirBody(body, cs)
}

// readHeaderLen reads the hex length and its ':', checking it against
// MaxDirHeader before anything is allocated.
func readHeaderLen(r *bufio.Reader) (n uint64, digits int, err error) {
	for ; ; digits++ {
		c, err := r.ReadByte()
		switch {
		case err == io.EOF && digits == 0:
			return 0, 0, io.EOF
		case err != nil:
			return 0, 0, &ioError{"read folder header", unexpected(err)}
		case c == ':' && digits > 0:
			if n > MaxDirHeader {
				return 0, 0, errTooLarge("folder header of " + strconv.FormatUint(n, 10) +
					" bytes, limit " + itoa(MaxDirHeader))
			}
			return n, digits, nil
		}
		d, ok := hexDigit(c)
		if !ok || digits == maxLenDigits {
			return 0, 0, errMalformed("folder header length: byte " + quote([]byte{c}) + " after " + itoa(digits) + " digits")
		}
		n = n<<4 | d
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseDirBody decodes "name:size:attr[:key=value]*:", the header after its
// length. Names are not escaped, so the fields are taken from the right:
// trailing fields with '=' are attributes, then attr, then size, and the
// rest, colons and all, is the name.
func parseDirBody(b []byte, cs Charset) (DirHeader, error) {
	var h DirHeader
	if b[len(b)-1] != ':' {
		return h, errMalformed("folder header " + quote(b) + " does not end with ':' where its length says")
	}
	rest := b[:len(b)-1]
	for {
		i := bytes.LastIndexByte(rest, ':')
		if i < 0 || bytes.IndexByte(rest[i+1:], '=') < 0 {
			break
		}
		h.setExt(rest[i+1:])
		rest = rest[:i]
	}
	var attr, size []byte
	var ok1, ok2 bool
	rest, attr, ok1 = cutLast(rest)
	rest, size, ok2 = cutLast(rest)
	if !ok1 || !ok2 {
		return h, errMalformed("folder header " + quote(b) + ": want name:size:attr")
	}
	return h, h.setNumbers(size, attr, rest, cs)
}

// cutLast splits b at its last ':'.
func cutLast(b []byte) (before, after []byte, ok bool) {
	i := bytes.LastIndexByte(b, ':')
	if i < 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

func (h *DirHeader) setNumbers(size, attr, name []byte, cs Charset) error {
	s, err := parseHex(size, 64)
	if err != nil {
		return errMalformed("folder header size " + quote(size))
	}
	a, err := parseHex(attr, 32)
	if err != nil {
		return errMalformed("folder header attr " + quote(attr))
	}
	h.Size, h.Attr, h.Name = s, uint32(a), decodeName(name, cs)
	return nil
}

// setExt takes MTIME and CREATETIME from a "key=value" field and ignores
// everything else, including what does not parse.
func (h *DirHeader) setExt(field []byte) {
	k, v, _ := bytes.Cut(field, []byte("="))
	v, _, _ = bytes.Cut(v, []byte(","))
	key, err1 := parseHex(k, 32)
	val, err2 := parseHex(v, 64)
	if err1 != nil || err2 != nil {
		return
	}
	switch key {
	case FileExtMTime:
		h.MTime = int64(val)
	case FileExtCreateTime:
		h.CTime = int64(val)
	}
}

// AppendDirHeader appends h as a folder record header in iptux's shape,
// "%04x:%s:%.9x:%x:14=%x:16=%x:", which W reads too. Like W and iptux it
// writes the size of a FileRetParent record unpadded, and it leaves out the
// times when both are zero (W's "000b:.:0:3:"). ':' in the name becomes '_',
// since names are not escaped in this stream. The length takes more than
// four digits only for headers over 0xffff bytes, which peers reject.
func AppendDirHeader(dst []byte, h DirHeader, cs Charset) []byte {
	start := len(dst)
	dst = append(dst, "0000:"...)
	dst = cs.AppendEncode(dst, strings.ReplaceAll(h.Name, ":", "_"))
	dst = append(dst, ':')
	dst = appendDirSize(dst, h)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, uint64(h.Attr), 16)
	dst = append(dst, ':')
	if h.MTime != 0 || h.CTime != 0 {
		dst = append(dst, "14="...)
		dst = strconv.AppendUint(dst, uint64(h.MTime), 16)
		dst = append(dst, ":16="...)
		dst = strconv.AppendUint(dst, uint64(h.CTime), 16)
		dst = append(dst, ':')
	}
	return putHeaderLen(dst, start)
}

// appendDirSize writes the size zero-padded to nine digits (%.9x), as iptux
// does for W, except for RETPARENT, which both write as "0".
func appendDirSize(dst []byte, h DirHeader) []byte {
	if h.Type() != FileRetParent {
		for d := hexLen(h.Size); d < 9; d++ {
			dst = append(dst, '0')
		}
	}
	return strconv.AppendUint(dst, h.Size, 16)
}

// putHeaderLen writes the header's length over the "0000" at dst[start:],
// widening it first if four digits are too few.
func putHeaderLen(dst []byte, start int) []byte {
	digits := 4
	for hexLen(uint64(len(dst)-start-4+digits)) > digits {
		digits++
	}
	if digits > 4 {
		dst = append(dst, make([]byte, digits-4)...)
		copy(dst[start+digits:], dst[start+4:])
	}
	n := uint64(len(dst) - start)
	for i := start + digits - 1; i >= start; i-- {
		dst[i] = "0123456789abcdef"[n&0xf]
		n >>= 4
	}
	return dst
}

func hexLen(n uint64) int {
	d := 1
	for ; n > 0xf; n >>= 4 {
		d++
	}
	return d
}
