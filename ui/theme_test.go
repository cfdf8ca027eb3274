package ui

import (
	"bytes"
	"testing"

	"fyne.io/fyne/v2/theme"
	"github.com/go-text/typesetting/font"
)

// TestFontCoversStrings checks that every character of the Chinese strings
// and of the settings' encoding labels is in the bundled CJK subset or in
// fyne's Noto Sans, so none depends on the system's fonts. After adding a
// string with a character that fails here, run scripts/cjk-font.sh.
func TestFontCoversStrings(t *testing.T) {
	faces := []*font.Face{parseFont(t, cjkFont), parseFont(t, theme.DefaultTextFont().Content())}
	texts := []string{}
	for _, s := range zh {
		texts = append(texts, s)
	}
	for _, c := range legacyChoices {
		texts = append(texts, c.label)
	}
	// Names and words the tests and the screenshot use, beyond GB2312.
	texts = append(texts, "老王 研发部 张三 季度报告 堃 喆")
	for _, s := range texts {
	runes:
		for _, r := range s {
			if r < ' ' {
				continue
			}
			for _, f := range faces {
				if _, ok := f.NominalGlyph(r); ok {
					continue runes
				}
			}
			t.Errorf("%q: %q (U+%04X) is in neither the bundled font nor fyne's", s, r, r)
		}
	}
}

func parseFont(t *testing.T, b []byte) *font.Face {
	t.Helper()
	f, err := font.ParseTTF(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return f
}
