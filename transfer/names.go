package transfer

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lanchat/lanchat/ipmsg"
)

// maxName is the longest name CheckName accepts, in bytes: NAME_MAX on
// Linux, and within what NTFS and APFS take.
const maxName = 255

// CheckName returns an error wrapping ErrUnsafeName unless name, received
// from a peer, is a plain name that means the same thing on Linux, Windows
// and macOS: not empty, "." or "..", no '/', '\\' or ':' (so no absolute
// path, drive letter or Windows stream), no control character, not a
// Windows device name (CON, PRN, AUX, NUL, COM1–9, LPT1–9, with or without
// an extension), no trailing dot or space (Windows drops them, so two names
// would meet), valid UTF-8 and at most 255 bytes. It rejects rather than
// repairs: a peer that sends such a name is broken or hostile, and a quiet
// rename would hide that.
func CheckName(name string) error {
	if why := unsafeReason(name); why != "" {
		return fmt.Errorf("%w %q: %s", ErrUnsafeName, truncate(name, 64), why)
	}
	return nil
}

// unsafeReason says what is wrong with name, or "" if nothing.
func unsafeReason(name string) string {
	switch {
	case name == "":
		return "empty"
	case name == "." || name == "..":
		return "names a folder, not an entry in it"
	case len(name) > maxName:
		return strconv.Itoa(len(name)) + " bytes, limit " + strconv.Itoa(maxName)
	case !utf8.ValidString(name):
		return "not valid UTF-8"
	case strings.ContainsAny(name, `/\`):
		return "contains a path separator"
	case len(name) >= 2 && name[1] == ':' && isLetter(name[0]):
		return "starts with a drive letter"
	case strings.ContainsRune(name, ':'):
		return "contains ':', which Windows reads as a stream name"
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, " "):
		return "ends with a dot or space, which Windows drops"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "contains a control character"
	case isDeviceName(name):
		return "is a Windows device name"
	}
	return ""
}

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// isDeviceName reports whether Windows opens name as a device: the part
// before the first dot, less trailing spaces, is a reserved word in any case.
func isDeviceName(name string) bool {
	base, _, _ := strings.Cut(name, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) < 4 || (base[:3] != "COM" && base[:3] != "LPT") {
		return false
	}
	switch base[3:] {
	case "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
		return true
	}
	return false
}

// numbered returns candidate k for a new entry called name: name itself,
// then "stem (1).ext", "stem (2).ext", … for a file and "name (1)", … for a
// folder, shortening the stem to stay within maxName bytes.
func numbered(name string, k int, dir bool) string {
	if k == 0 {
		return name
	}
	stem, ext := name, ""
	if !dir {
		ext = filepath.Ext(name)
		stem = name[:len(name)-len(ext)]
	}
	if stem == "" || len(ext) > 32 { // ".bashrc", or an "extension" that is most of the name
		stem, ext = name, ""
	}
	suffix := " (" + strconv.Itoa(k) + ")" + ext
	return truncate(stem, maxName-len(suffix)) + suffix
}

// partTag names the offered file a .part belongs to, by size and mtime:
// only a .part of the very same file is resumed, never one left by another
// file that happens to have the same name.
func partTag(f ipmsg.File) string {
	return strconv.FormatUint(f.Size, 16) + "-" + strconv.FormatInt(f.MTime, 16)
}

// partName is where a download of name is written until it is complete:
// "name.<tag>.part". A name too long for the suffix is shortened and tagged
// with its hash, so two long names sharing a prefix keep apart.
func partName(name, tag string) string {
	suffix := "." + tag + ".part"
	if len(name)+len(suffix) <= maxName {
		return name + suffix
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	hash := fmt.Sprintf("~%08x", h.Sum32())
	return truncate(name, maxName-len(hash)-len(suffix)) + hash + suffix
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// local checks, by the path's text alone, that rel stays inside the
// destination. CheckName and os.Root already make sure of it; this keeps
// it true should either change.
func local(rel string) error {
	if !filepath.IsLocal(rel) {
		return fmt.Errorf("%w: %q would leave the destination folder", ErrUnsafeName, rel)
	}
	return nil
}
