package ui

import (
	_ "embed"
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// cjkFont is Droid Sans Fallback (Apache 2.0, from Debian's
// fonts-droid-fallback): a single .ttf with Latin and CJK glyphs, so Chinese
// renders on machines without a CJK font. A .ttc would crash fyne.
//
//go:embed DroidSansFallbackFull.ttf
var cjkFont []byte

var fontResource = fyne.NewStaticResource("DroidSansFallbackFull.ttf", cjkFont)

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
