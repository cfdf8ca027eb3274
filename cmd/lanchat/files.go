package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lanchat/lanchat/internal/control"
	"github.com/lanchat/lanchat/peer"
)

func cmdAccept(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("accept", &f)
	to := fs.String("to", "", "folder to save into (default: the node's download folder)")
	noWait := fs.Bool("no-wait", false, "start the downloads and return at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"accept needs one OFFER (the message ID `lanchat events` shows with the files)"}
	}
	dir := *to
	if dir != "" {
		abs, err := absFiles([]string{dir})
		if err != nil {
			return err
		}
		dir = abs[0]
	}
	bar := newProgress(out, !f.jsonOut && isTerminal(out))
	failed := 0
	err := call(f.data, control.Request{Op: "accept", ID: fs.Arg(0), Dir: dir, Wait: !*noWait},
		func(kind string, data json.RawMessage) error {
			var t peer.Transfer
			if err := json.Unmarshal(data, &t); err != nil {
				return err
			}
			if t.State == peer.TransferFailed || t.State == peer.TransferCancelled {
				failed++
			}
			if f.jsonOut {
				return printJSON(out, data)
			}
			bar.show(t)
			return nil
		})
	bar.end()
	if err == nil && failed > 0 {
		err = fmt.Errorf("%d of the files did not arrive", failed)
	}
	return err
}

func cmdDecline(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("decline", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"decline needs one OFFER"}
	}
	return call(f.data, control.Request{Op: "decline", ID: fs.Arg(0)}, nil)
}

func cmdCancel(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("cancel", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"cancel needs one TRANSFER id (see `lanchat transfers`)"}
	}
	return call(f.data, control.Request{Op: "cancel", ID: fs.Arg(0)}, nil)
}

func cmdTransfers(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("transfers", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if !f.jsonOut {
		fmt.Fprintln(tw, "ID\tDIR\tPEER\tNAME\tSTATE\tDONE\tRATE")
	}
	err := call(f.data, control.Request{Op: "transfers"}, func(kind string, data json.RawMessage) error {
		if f.jsonOut {
			return printJSON(out, data)
		}
		var t peer.Transfer
		if err := json.Unmarshal(data, &t); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s/s\n", t.ID, t.Dir, t.Nick, t.Name, t.State,
			doneText(t), size(int64(t.Rate)))
		return nil
	})
	tw.Flush()
	return err
}

// call sends one request to the node of a data folder.
func call(data string, req control.Request, each func(string, json.RawMessage) error) error {
	c, err := dial(data)
	if err != nil {
		return err
	}
	defer c.Close()
	if each == nil {
		each = func(string, json.RawMessage) error { return nil }
	}
	return c.Do(req, each)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress prints transfers: a redrawn bar per running transfer on a
// terminal, one line per finished transfer otherwise.
type progress struct {
	out  io.Writer
	tty  bool
	last string // the transfer the bar is drawing
}

func newProgress(out io.Writer, tty bool) *progress { return &progress{out: out, tty: tty} }

func (p *progress) show(t peer.Transfer) {
	switch {
	case t.State.Final():
		p.clear()
		msg := string(t.State)
		if t.Path != "" {
			msg += " → " + t.Path
		}
		if t.Error != "" {
			msg += ": " + t.Error
		}
		fmt.Fprintf(p.out, "%s %s (%s)\n", t.Name, msg, size(t.Done))
	case p.tty && t.State == peer.TransferRunning:
		p.last = t.ID
		fmt.Fprintf(p.out, "\r%s", bar(t, 30))
	}
}

func (p *progress) clear() {
	if p.tty && p.last != "" {
		fmt.Fprintf(p.out, "\r%s\r", strings.Repeat(" ", 100))
		p.last = ""
	}
}

func (p *progress) end() { p.clear() }

// bar draws "name [=====     ]  42%  3.1 MiB/7.4 MiB  11.2 MiB/s  ETA 0:04".
func bar(t peer.Transfer, width int) string {
	name := t.Name
	if r := []rune(name); len(r) > 24 {
		name = string(r[:23]) + "…"
	}
	if t.Total <= 0 {
		return fmt.Sprintf("%-24s %s  %d files  %s/s", name, size(t.Done), t.Files, size(int64(t.Rate)))
	}
	frac := min(float64(t.Done)/float64(t.Total), 1)
	fill := int(frac * float64(width))
	return fmt.Sprintf("%-24s [%s%s] %3.0f%%  %s  %s/s  ETA %s", name, strings.Repeat("=", fill),
		strings.Repeat(" ", width-fill), frac*100, doneText(t), size(int64(t.Rate)), t.ETA.Round(time.Second))
}

func doneText(t peer.Transfer) string {
	if t.Total > 0 {
		return size(t.Done) + "/" + size(t.Total)
	}
	return size(t.Done)
}

// size formats bytes in binary units.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
