package ipmsg

import (
	"bytes"
	"strconv"
	"strings"
)

// File is one attachment of a SENDMSG|FILEATTACHOPT offer, or one entry of
// iptux's share list.
type File struct {
	ID    uint64 // decimal in the offer; requested in hex (see FileRequest)
	Name  string // decoded to UTF-8, as sent: callers sanitise it before using it as a path
	Size  uint64
	MTime int64     // unix seconds
	Attr  uint32    // the full attribute word as sent; Type gives the low byte
	Ext   []ExtAttr // extended attributes, in the order sent
}

// Type returns the file type: the low byte of Attr (FileRegular, FileDir, …).
// Windows sets flag bits above it, which iptux rejects, so compare this and
// not Attr.
func (f File) Type() uint32 { return f.Attr & 0xff }

// ExtAttr is an extended attribute "key=value[,value…]" of a file entry, both
// hex on the wire. Keys are the FileExt constants.
type ExtAttr struct {
	Key    uint32
	Values []uint64
}

// File types: the low byte of the attribute word (IPMSG_FILE_* in ipmsg.h).
const (
	FileRegular   = 0x01
	FileDir       = 0x02
	FileRetParent = 0x03 // folder stream only: leave the current directory
	FileSymlink   = 0x04
	FileCDev      = 0x05
	FileBDev      = 0x06
	FileFIFO      = 0x07
	FileResFork   = 0x10
	FileClipboard = 0x20 // inline image of W v10+; ext FileExtClipboardPos gives its place in the text
)

// File attribute flags above the type byte, as Windows sends them.
const (
	FileReadOnly = 0x00000100 // RONLYOPT
	FileHidden   = 0x00001000 // HIDDENOPT
	FileExHidden = 0x00002000 // EXHIDDENOPT
	FileArchive  = 0x00004000 // ARCHIVEOPT
	FileSystem   = 0x00008000 // SYSTEMOPT
)

// Extended attribute keys (IPMSG_FILE_* in ipmsg.h).
const (
	FileExtUID          = 0x01
	FileExtUserName     = 0x02
	FileExtGID          = 0x03
	FileExtGroupName    = 0x04
	FileExtClipboardPos = 0x08 // FileClipboard: character position of the image in the text
	FileExtPerm         = 0x10
	FileExtMajorNo      = 0x11
	FileExtMinorNo      = 0x12
	FileExtCTime        = 0x13
	FileExtMTime        = 0x14 // also in folder stream headers
	FileExtATime        = 0x15
	FileExtCreateTime   = 0x16 // also in folder stream headers; iptux puts the unix ctime there
	FileExtCreator      = 0x20
	FileExtFileType     = 0x21
	FileExtFinderInfo   = 0x22
	FileExtACL          = 0x30
	FileExtAliasFName   = 0x40
	FileExtUnicodeFName = 0x41 // iptux and FeiQ clones; gone from W 4.99
)

// File list limits.
const (
	// MaxFiles is the most entries ParseFileList reads from one list. IP
	// Messenger fills at most its 32 KiB buffer, which holds about 1100
	// entries with nine-digit IDs and short names; iptux's 8 KiB far fewer.
	MaxFiles = 2048
	// MaxFileName is the longest file name, in bytes as sent. Windows
	// paths are at most 260 UTF-16 units (about 780 bytes of UTF-8), Linux
	// names 255 bytes.
	MaxFileName = 1024
	// maxExtAttrs and maxExtValues bound the extended attributes of one
	// entry; W sends at most a few.
	maxExtAttrs  = 32
	maxExtValues = 32
)

const fileSep = '\a' // FILELIST_SEPARATOR

// ParseFileList decodes a file list: the second section of a
// SENDMSG|FILEATTACHOPT extra, or of iptux's share list. Entries are split on
// '\a' and one leading ':' is stripped from each, which accepts the ":\a",
// ":\a:" and "\a:" separators seen in the wild. Names are decoded with
// DecodeText's rules, cs being the packet's charset (UTF8 when it had
// UTF8OPT, else the peer's legacy charset), and "::" in a name is a ':', as
// iptux reads it (W turns it into ';'). Entries whose type is not regular,
// directory or clipboard are skipped, as W does; a malformed entry fails the
// whole list with an error naming the entry's index. Extended attributes
// that are not hex "key=value[,value…]" are ignored, as W's strtoul does.
func ParseFileList(b []byte, cs Charset) ([]File, error) {
	b = bytes.TrimRight(b, "\x00")
	if len(b) > MaxDatagram {
		return nil, overLimit("file list of ", len(b), "bytes", MaxDatagram)
	}
	n := bytes.Count(b, []byte{fileSep})
	if n > MaxFiles {
		return nil, overLimit("file list of ", n, "entries", MaxFiles)
	}
	files := make([]File, 0, n+1)
	for i := 0; len(b) > 0; i++ {
		var entry []byte
		entry, b, _ = bytes.Cut(b, []byte{fileSep})
		entry = bytes.TrimPrefix(entry, []byte(":"))
		if len(entry) == 0 {
			continue
		}
		f, err := parseFile(entry, cs)
		if err != nil {
			return nil, prefixError(err, "file list entry "+itoa(i)+": ")
		}
		if t := f.Type(); t == FileRegular || t == FileDir || t == FileClipboard {
			files = append(files, f)
		}
	}
	return files, nil
}

// parseFile decodes "id:name:size:mtime:attr[:key=value]*[:]".
func parseFile(b []byte, cs Charset) (File, error) {
	var f File
	id, b, _ := bytes.Cut(b, []byte(":"))
	var err error
	if f.ID, err = parseDecimal(id); err != nil {
		return f, errMalformed("id " + quote(id))
	}
	name, b, ok := cutName(b)
	switch {
	case !ok:
		return f, errMalformed("no size")
	case len(name) == 0:
		return f, errMalformed("empty name")
	case len(name) > MaxFileName:
		return f, overLimit("name of ", len(name), "bytes", MaxFileName)
	}
	f.Name = decodeName(name, cs)
	if b, err = parseFileNumbers(&f, b); err != nil {
		return f, err
	}
	f.Ext, err = parseExtAttrs(b)
	return f, err
}

// parseFileNumbers reads "size:mtime:attr" and returns what follows attr.
func parseFileNumbers(f *File, b []byte) ([]byte, error) {
	var field [3][]byte
	for i, what := range [...]string{"size", "mtime", "attr"} {
		field[i], b, _ = bytes.Cut(b, []byte(":"))
		if len(field[i]) == 0 {
			return nil, errMalformed("no " + what)
		}
	}
	size, err1 := parseHex(field[0], 64)
	mtime, err2 := parseHex(field[1], 64)
	attr, err3 := parseHex(field[2], 32)
	switch {
	case err1 != nil:
		return nil, errMalformed("size " + quote(field[0]))
	case err2 != nil:
		return nil, errMalformed("mtime " + quote(field[1]))
	case err3 != nil:
		return nil, errMalformed("attr " + quote(field[2]))
	}
	f.Size, f.MTime, f.Attr = size, int64(mtime), uint32(attr)
	return b, nil
}

// cutName reads a file name up to its terminating ':', turning each "::"
// into ':'. It copies only when there is an escape.
func cutName(b []byte) (name, rest []byte, ok bool) {
	var out []byte
	start := 0
	for i := 0; i < len(b); i++ {
		if b[i] != ':' {
			continue
		}
		if i+1 < len(b) && b[i+1] == ':' {
			out = append(out, b[start:i+1]...)
			i++
			start = i + 1
			continue
		}
		if out == nil {
			return b[:i], b[i+1:], true
		}
		return append(out, b[start:i]...), b[i+1:], true
	}
	return nil, nil, false
}

// decodeName decodes a file name of a packet in charset cs.
func decodeName(b []byte, cs Charset) string {
	s, _ := DecodeText(b, cs == UTF8, cs)
	return s
}

// parseExtAttrs reads the ':'-separated "key=value[,value…]" fields after
// attr. Empty fields (the final ':') and fields that do not parse are
// skipped.
func parseExtAttrs(b []byte) ([]ExtAttr, error) {
	n := bytes.Count(b, []byte("="))
	if n == 0 {
		return nil, nil
	}
	if n > maxExtAttrs {
		return nil, overLimit("", n, "extended attributes", maxExtAttrs)
	}
	ext := make([]ExtAttr, 0, n)
	for len(b) > 0 {
		var field []byte
		field, b, _ = bytes.Cut(b, []byte(":"))
		x, ok, err := parseExtAttr(field)
		if err != nil {
			return nil, err
		}
		if ok {
			ext = append(ext, x)
		}
	}
	if len(ext) == 0 {
		return nil, nil
	}
	return ext, nil
}

// parseExtAttr parses one "key=value[,value…]". ok is false for a field to
// skip; err is set only for a limit.
func parseExtAttr(b []byte) (x ExtAttr, ok bool, err error) {
	k, v, found := bytes.Cut(b, []byte("="))
	key, kerr := parseHex(k, 32)
	if !found || kerr != nil {
		return x, false, nil
	}
	n := bytes.Count(v, []byte(",")) + 1
	if n > maxExtValues {
		return x, false, overLimit("extended attribute of ", n, "values", maxExtValues)
	}
	x.Key, x.Values = uint32(key), make([]uint64, 0, n)
	for val := range bytes.SplitSeq(v, []byte(",")) {
		n, err := parseHex(val, 64)
		if err != nil {
			return ExtAttr{}, false, nil
		}
		x.Values = append(x.Values, n)
	}
	return x, true, nil
}

// AppendFileList appends files as a file list in the portable shape
// "%d:%s:%x:%x:%x:\a" that IP Messenger, FeiQ and iptux all read, followed
// by any extended attributes as ":%x=%x[,%x]". Names are encoded in cs with
// ':' escaped as "::"; '\a' and NUL, which would end the list, become '_',
// and so does an empty name. Attr is masked to its type byte because iptux
// rejects flag bits; extended attributes without values are left out.
// Names longer than MaxFileName bytes are written but peers reject them.
func AppendFileList(dst []byte, files []File, cs Charset) []byte {
	for _, f := range files {
		dst = strconv.AppendUint(dst, f.ID, 10)
		dst = append(dst, ':')
		dst = cs.AppendEncode(dst, escapeName(f.Name))
		dst = append(dst, ':')
		dst = strconv.AppendUint(dst, f.Size, 16)
		dst = append(dst, ':')
		dst = strconv.AppendUint(dst, uint64(f.MTime), 16)
		dst = append(dst, ':')
		dst = strconv.AppendUint(dst, uint64(f.Type()), 16)
		dst = append(dst, ':')
		dst = appendExtAttrs(dst, f.Ext)
		dst = append(dst, fileSep)
	}
	return dst
}

var nameEscaper = strings.NewReplacer(":", "::", "\a", "_", "\x00", "_")

func escapeName(s string) string {
	if s == "" {
		return "_"
	}
	return nameEscaper.Replace(s)
}

// appendExtAttrs writes "key=value[,value…]:" for each attribute.
func appendExtAttrs(dst []byte, ext []ExtAttr) []byte {
	for _, x := range ext {
		if len(x.Values) == 0 {
			continue
		}
		dst = strconv.AppendUint(dst, uint64(x.Key), 16)
		sep := byte('=')
		for _, v := range x.Values {
			dst = append(dst, sep)
			dst = strconv.AppendUint(dst, v, 16)
			sep = ','
		}
		dst = append(dst, ':')
	}
	return dst
}
