package ipmsg

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCharsetCodec(t *testing.T) {
	tests := []struct {
		name string
		cs   Charset
		text string
		wire string
	}{
		{"gbk", GB18030, "你好", "\xc4\xe3\xba\xc3"},
		{"gbk mixed", GB18030, "hello from probe 你好，世界 (gbk)", "hello from probe \xc4\xe3\xba\xc3\xa3\xac\xca\xc0\xbd\xe7 (gbk)"},
		{"gbk feiq nick", GB18030, "陈俞辛", "\xb3\xc2\xd3\xe1\xd0\xc1"},
		{"gbk file name", GB18030, "文件", "\xce\xc4\xbc\xfe"},
		{"cp932", CP932, "日本語", "\x93\xfa\x96\x7b\x8c\xea"},
		{"cp932 kana", CP932, "テスト", "\x83\x65\x83\x58\x83\x67"},
		{"utf-8", UTF8, "你好", "\xe4\xbd\xa0\xe5\xa5\xbd"},
		{"unknown is utf-8", Unknown, "你好", "\xe4\xbd\xa0\xe5\xa5\xbd"},
		{"ascii", CP932, "plain", "plain"},
		{"control byte kept", GB18030, "a\x1ab你", "a\x1ab\xc4\xe3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.cs.Encode(tt.text)); got != tt.wire {
				t.Errorf("Encode(%q) = %q, want %q", tt.text, got, tt.wire)
			}
			if got := tt.cs.Decode([]byte(tt.wire)); got != tt.text {
				t.Errorf("Decode(%q) = %q, want %q", tt.wire, got, tt.text)
			}
			if !tt.cs.CanEncode(tt.text) {
				t.Errorf("CanEncode(%q) = false", tt.text)
			}
		})
	}
}

// TestCharsetUnencodable checks that characters a code page lacks become '?',
// as Windows writes them, and that CanEncode says so beforehand.
func TestCharsetUnencodable(t *testing.T) {
	tests := []struct {
		name string
		cs   Charset
		text string
		wire string
	}{
		{"emoji in gbk", GB18030, "a😀b", "a?b"},
		{"emoji in cp932", CP932, "a😀b", "a?b"},
		{"hangul in cp932", CP932, "한", "?"},
		{"invalid utf-8 in gbk", GB18030, "a\xffb", "a?b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.cs.Encode(tt.text)); got != tt.wire {
				t.Errorf("Encode(%q) = %q, want %q", tt.text, got, tt.wire)
			}
			if tt.cs.CanEncode(tt.text) {
				t.Errorf("CanEncode(%q) = true", tt.text)
			}
		})
	}
}

// TestDecodeText follows the receiving rules of §7.4.
func TestDecodeText(t *testing.T) {
	tests := []struct {
		name    string
		b       string
		utf8opt bool
		legacy  Charset
		want    string
		wantCS  Charset
	}{
		{"ascii tells nothing", "hello", false, GB18030, "hello", Unknown},
		{"ascii with flag", "hello", true, Unknown, "hello", Unknown},
		{"flag means utf-8", "\xe4\xbd\xa0\xe5\xa5\xbd", true, GB18030, "你好", UTF8},
		{"flag with invalid bytes", "a\xc4\xe3", true, GB18030, "a\ufffd", UTF8},
		{"valid utf-8 without flag (iptux)", "\xe4\xbd\xa0\xe5\xa5\xbd", false, GB18030, "你好", UTF8},
		{"gbk, no legacy known", "\xc4\xe3\xba\xc3", false, Unknown, "你好", GB18030},
		{"gbk, legacy utf-8 falls back to gbk", "\xc4\xe3\xba\xc3", false, UTF8, "你好", GB18030},
		{"cp932 legacy", "\x93\xfa\x96\x7b\x8c\xea", false, CP932, "日本語", CP932},
		{"truncated gbk", "ab\xc4", false, GB18030, "ab\ufffd", GB18030},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cs := DecodeText([]byte(tt.b), tt.utf8opt, tt.legacy)
			if got != tt.want || cs != tt.wantCS {
				t.Errorf("DecodeText(%q, %v, %v) = %q, %v; want %q, %v", tt.b, tt.utf8opt, tt.legacy, got, cs, tt.want, tt.wantCS)
			}
		})
	}
}

// TestCharsetInvalidBytes feeds every charset bytes that are not valid in
// it: decoding must give valid UTF-8 and never panic.
func TestCharsetInvalidBytes(t *testing.T) {
	inputs := []string{"\xff", "\x80", "\x81", "\xfe\xfe\xfe", "\xe4\xb8", "\x81\x30", "\x81\x30\x81", "\xa0\xa0", "a\x00\xffb"}
	for b := 0x80; b <= 0xff; b++ {
		inputs = append(inputs, string([]byte{byte(b)}), string([]byte{byte(b), 0x7f}), string([]byte{0x81, byte(b)}))
	}
	for _, cs := range []Charset{Unknown, UTF8, GB18030, CP932, Charset(99)} {
		for _, in := range inputs {
			if got := cs.Decode([]byte(in)); !utf8.ValidString(got) {
				t.Errorf("%v.Decode(%q) = %q, not valid UTF-8", cs, in, got)
			}
			_, _ = DecodeText([]byte(in), false, cs)
			_ = cs.Encode(in)
			_ = cs.CanEncode(in)
		}
	}
}

func TestParseCharset(t *testing.T) {
	for name, want := range map[string]Charset{
		"utf-8": UTF8, "UTF8": UTF8, "gbk": GB18030, "GB18030": GB18030Full, "cp936": GB18030, "gb2312": GB18030,
		"cp932": CP932, "Shift_JIS": CP932, "shift-jis": CP932, "sjis": CP932,
	} {
		if got, err := ParseCharset(name); got != want || err != nil {
			t.Errorf("ParseCharset(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	_, err := ParseCharset("latin1")
	if err == nil || !strings.Contains(err.Error(), `"latin1"`) {
		t.Errorf("ParseCharset(latin1) error = %v", err)
	}
}

func TestCharsetJSON(t *testing.T) {
	for _, cs := range []Charset{UTF8, GB18030, CP932} {
		b, err := json.Marshal(cs)
		var back Charset
		if err != nil || json.Unmarshal(b, &back) != nil || back != cs {
			t.Errorf("%v: JSON %s, %v, back %v", cs, b, err, back)
		}
	}
}
