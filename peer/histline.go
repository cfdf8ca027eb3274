package peer

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// A history line is what json.Marshal makes of a record, byte for byte, so
// every file keeps one format and history.read (json.Unmarshal) reads it.
// appendRecord writes it without reflection or allocation, since the writer
// encodes three lines per acked message; FuzzHistoryLine holds it to
// json.Marshal's output.

// appendLine appends r's history line, without the newline.
func appendLine(b []byte, r *record) ([]byte, error) {
	if !rfc3339Safe(r.Time) || !filesSafe(r.Files) {
		// json.Marshal refuses these times; let it say so in its words. It
		// gets a copy, so that r does not escape (and each line cost an
		// allocation) for the sake of this rare case.
		c := *r
		line, err := json.Marshal(&c)
		return append(b, line...), err
	}
	return appendRecord(b, r), nil
}

// appendRecord appends r in the field order and with the omitempty rules
// of Message's and record's json tags.
func appendRecord(b []byte, r *record) []byte {
	m := &r.Message
	b = appendJSONString(append(b, `{"id":`...), m.ID)
	b = appendJSONString(append(b, `,"peer":`...), m.Peer)
	if m.Nick != "" {
		b = appendJSONString(append(b, `,"nick":`...), m.Nick)
	}
	b = appendJSONString(append(b, `,"dir":`...), string(m.Dir))
	b = appendJSONString(append(b, `,"text":`...), m.Text)
	b = appendJSONTime(append(b, `,"time":`...), m.Time)
	if m.Sealed {
		b = append(b, `,"sealed":true`...)
	}
	if m.AutoRe {
		b = append(b, `,"auto_reply":true`...)
	}
	b = appendJSONString(append(b, `,"status":`...), string(m.Status))
	if m.Error != "" {
		b = appendJSONString(append(b, `,"error":`...), m.Error)
	}
	b = strconv.AppendUint(append(b, `,"packet_no":`...), m.PacketNo, 10)
	if m.Part != 0 {
		b = strconv.AppendInt(append(b, `,"part":`...), int64(m.Part), 10)
	}
	if m.Parts != 0 {
		b = strconv.AppendInt(append(b, `,"parts":`...), int64(m.Parts), 10)
	}
	if len(m.Files) > 0 {
		b = append(b, `,"files":[`...)
		for i := range m.Files {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendFile(b, &m.Files[i])
		}
		b = append(b, ']')
	}
	if m.Via != "" {
		b = appendJSONString(append(b, `,"via":`...), m.Via)
	}
	if m.From != "" {
		b = appendJSONString(append(b, `,"from":`...), m.From)
	}
	if r.Update {
		b = append(b, `,"update":true`...)
	}
	return append(b, '}')
}

func appendFile(b []byte, f *File) []byte {
	b = strconv.AppendUint(append(b, `{"id":`...), f.ID, 10)
	b = appendJSONString(append(b, `,"name":`...), f.Name)
	b = strconv.AppendInt(append(b, `,"size":`...), f.Size, 10)
	if f.Folder {
		b = append(b, `,"folder":true`...)
	}
	b = appendJSONTime(append(b, `,"mtime":`...), f.MTime)
	return append(b, '}')
}

// rfc3339Safe reports whether t.MarshalJSON succeeds: a four-digit year
// and a zone offset under 24 hours.
func rfc3339Safe(t time.Time) bool {
	if y := t.Year(); y < 0 || y > 9999 {
		return false
	}
	_, off := t.Zone()
	return off > -24*60*60 && off < 24*60*60
}

func filesSafe(files []File) bool {
	for i := range files {
		if !rfc3339Safe(files[i].MTime) {
			return false
		}
	}
	return true
}

// appendJSONTime appends t as time.Time.MarshalJSON does, for a t that
// rfc3339Safe accepts.
func appendJSONTime(b []byte, t time.Time) []byte {
	return append(t.AppendFormat(append(b, '"'), time.RFC3339Nano), '"')
}

// appendJSONString appends s quoted as encoding/json does by default:
// HTML-sensitive <, > and & escaped, invalid UTF-8 replaced by U+FFFD,
// U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}
