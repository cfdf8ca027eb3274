//go:build !linux

package ui

// TrayAvailable reports whether the desktop shows tray icons: Windows and
// macOS always do.
func TrayAvailable() bool { return true }
