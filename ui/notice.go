package ui

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// NewNoticeWindow is a small window that explains why lanchat cannot
// start, such as another lanchat using the same data folder, with a Quit
// button. A desktop user launched us by a click and would otherwise see
// nothing at all.
func NewNoticeWindow(app fyne.App, lang, title, text string) fyne.Window {
	if lang == "" {
		lang = SystemLang()
	}
	T := tr(lang).T
	app.Settings().SetTheme(NewTheme())
	w := app.NewWindow(T("lanchat"))
	head := widget.NewLabelWithStyle(title, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	head.Wrapping = fyne.TextWrapWord
	body := widget.NewLabel(text)
	body.Wrapping = fyne.TextWrapWord
	quit := widget.NewButtonWithIcon(T("Quit"), theme.CancelIcon(), w.Close)
	quit.Importance = widget.HighImportance
	icon := widget.NewIcon(theme.NewWarningThemedResource(theme.WarningIcon()))
	// The scroll gives the wrapping labels their width before their height.
	w.SetContent(container.NewBorder(nil, container.NewHBox(layout.NewSpacer(), quit), icon, nil,
		container.NewVScroll(container.NewVBox(head, body))))
	w.Resize(fyne.NewSize(560, 240))
	return w
}

// NewRunningWindow says that another lanchat already uses the data folder,
// and which one (who: its nickname and address, if it answered).
func NewRunningWindow(app fyne.App, lang, dataDir, who string) fyne.Window {
	if lang == "" {
		lang = SystemLang()
	}
	T := tr(lang).T
	text := fmt.Sprintf(T("Data folder: %s"), dataDir)
	if who != "" {
		text += "\n" + fmt.Sprintf(T("Running as: %s"), who)
	}
	text += "\n\n" + T("If it is the desktop app, use its window or its tray icon; if it is `lanchat serve`, stop it first. To run a second lanchat on this computer, start it with --data and another folder, and --port.")
	return NewNoticeWindow(app, lang, T("Another lanchat is already running on this data folder."), text)
}

// NewStartErrorWindow says why the node could not start.
func NewStartErrorWindow(app fyne.App, lang string, err error) fyne.Window {
	if lang == "" {
		lang = SystemLang()
	}
	return NewNoticeWindow(app, lang, tr(lang).T("lanchat could not start."), err.Error())
}
