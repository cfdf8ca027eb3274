//go:build cgo

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/lanchat/lanchat/internal/control"
	"github.com/lanchat/lanchat/peer"
	"github.com/lanchat/lanchat/ui"
)

// openDesktop is the entry point of `lanchat` without a command: a node
// like `lanchat serve`, taking the same flags (--data, --name, …) and the
// saved settings, its control socket for the short commands, and the
// desktop window. Closing the window stops the node, or hides it in the
// tray where the desktop has one. A desktop user starts us with a click and
// sees no terminal, so a node that cannot start is explained in a window.
func openDesktop(args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("lanchat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f nodeFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := newLogger(f.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "lanchat: %v\n", err)
		return 2
	}
	a := app.NewWithID("io.github.lanchat")
	a.SetIcon(ui.IconResource(false))
	cfg, err := f.config(fs, log)
	if err != nil {
		return startFailed(a, stderr, err)
	}
	if who, ok := runningNode(cfg.DataDir); ok {
		fmt.Fprintf(stderr, "lanchat: another lanchat is already running with data folder %s (%s)\n", cfg.DataDir, who)
		ui.NewRunningWindow(a, "", cfg.DataDir, who).ShowAndRun()
		return 1
	}
	node, srv, err := startNode(cfg, log)
	if err != nil {
		return startFailed(a, stderr, err)
	}

	a.Lifecycle().SetOnStarted(func() {
		// The line tells scripts and the start-up benchmark the window is up.
		log.Info("window open")
		// Starting leaves garbage (fonts parsed, history read) that the Go
		// runtime would keep resident until the heap next grows as large;
		// an idle window gives it back, once the first frames are drawn.
		time.AfterFunc(time.Second, debug.FreeOSMemory)
	})
	u := ui.New(a, node, ui.Options{DataDir: cfg.DataDir, Tray: ui.TrayAvailable(), Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// quit closes the app from another goroutine, unless it has ended: fyne
	// calls after the event loop stopped panic in GLFW.
	var mu sync.Mutex
	running := true
	quit := func() {
		mu.Lock()
		defer mu.Unlock()
		if running {
			fyne.Do(a.Quit)
		}
	}
	nodeDone := make(chan error, 1)
	go func() {
		err := serveNode(ctx, node, srv, cfg, log)
		nodeDone <- err
		if err != nil {
			fmt.Fprintf(stderr, "lanchat: %v\n", err)
		}
		quit()
	}()
	go u.Run(ctx)
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		select {
		case <-sig:
			quit()
		case <-ctx.Done():
		}
		signal.Stop(sig)
	}()

	w := u.Window()
	w.SetMaster()
	w.ShowAndRun()
	mu.Lock()
	running = false
	mu.Unlock()

	cancel()
	select {
	case err := <-nodeDone:
		if err != nil {
			return 1
		}
	case <-time.After(5 * time.Second):
		fmt.Fprintln(stderr, "lanchat: the node did not stop in 5s")
		return 1
	}
	return 0
}

// startFailed reports an error on stderr and in a window, and returns the
// exit status.
func startFailed(a fyne.App, stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "lanchat: %v\n", err)
	ui.NewStartErrorWindow(a, "", err).ShowAndRun()
	return 1
}

// runningNode reports whether a node answers on the data folder's control
// socket, and who it is ("nick (address)", or "" if it did not say in
// time).
func runningNode(dataDir string) (string, bool) {
	c, err := control.Dial(dataDir)
	if err != nil {
		return "", false
	}
	who := make(chan string, 1)
	go func() {
		defer c.Close()
		var s peer.Self
		err := c.Do(control.Request{Op: "status"}, func(_ string, data json.RawMessage) error {
			return json.Unmarshal(data, &s)
		})
		if err != nil {
			who <- ""
			return
		}
		who <- fmt.Sprintf("%s (%s@%s, %s)", s.Nick, s.User, s.Host, s.Addr)
	}()
	select {
	case w := <-who:
		return w, true
	case <-time.After(2 * time.Second): // a stuck node still holds the folder
		c.Close()
		return "", true
	}
}
