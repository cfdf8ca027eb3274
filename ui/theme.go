package ui

import (
	_ "embed"
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// cjkFont is Droid Sans Fallback (Apache 2.0, from Debian's
// fonts-droid-fallback), so Chinese renders on machines without a CJK font.
// It is a subset (scripts/cjk-font.sh: GB2312, the 通用规范汉字表, CJK
// punctuation, the UI's strings) because fyne parses the theme's font anew
// for every text style it draws, even when, as here, every style gets the
// same resource (fyne caches faces by style), at about four times the
// font's size: the whole 4 MB font cost 33 MB of memory for regular and
// bold, this one 10. It has no Latin; fyne falls back to its own Noto Sans
// for that, and to the system's fonts for characters neither has. A .ttc
// would crash fyne.
//
//go:embed DroidSansFallbackSubset.ttf
var cjkFont []byte

var fontResource = fyne.NewStaticResource("DroidSansFallbackSubset.ttf", cjkFont)

// Theme is fyne's default theme with the bundled CJK font for all text
// but monospace.
type Theme struct{ fyne.Theme }

// NewTheme returns the lanchat theme.
func NewTheme() fyne.Theme { return Theme{theme.DefaultTheme()} }

// Font returns the bundled font, except for monospace text.
func (t Theme) Font(s fyne.TextStyle) fyne.Resource {
	if s.Monospace || s.Symbol {
		return t.Theme.Font(s)
	}
	return fontResource
}

// Color defers to the default theme.
func (t Theme) Color(n fyne.ThemeColorName, v fyne.ThemeVariant) color.Color {
	return t.Theme.Color(n, v)
}
