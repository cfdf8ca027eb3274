package ui

import "github.com/godbus/dbus/v5"

// TrayAvailable reports whether the desktop shows tray icons. On Linux an
// icon is a StatusNotifierItem, shown only when a watcher runs on the
// session bus (KDE, GNOME with the AppIndicator extension, XFCE…); without
// one the window must not hide in a tray nobody sees.
func TrayAvailable() bool {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return false
	}
	defer conn.Close()
	var has bool
	err = conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.kde.StatusNotifierWatcher").Store(&has)
	return err == nil && has
}
