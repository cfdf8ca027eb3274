//go:build cgo

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/lanchat/lanchat/ui"
)

// openDesktop is the entry point of `lanchat` without a command: a node
// like `lanchat serve`, taking the same flags (--data, --name, …) and the
// saved settings, its control socket for the short commands, and the
// desktop window. Closing the window stops the node.
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
	cfg, err := f.config(fs, log)
	if err != nil {
		fmt.Fprintf(stderr, "lanchat: %v\n", err)
		return 1
	}
	node, srv, err := startNode(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "lanchat: %v\n", err)
		return 1
	}

	a := app.NewWithID("io.github.lanchat")
	u := ui.New(a, node, ui.Options{})
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
