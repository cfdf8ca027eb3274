package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lanchat/lanchat/internal/control"
	"github.com/lanchat/lanchat/internal/settings"
	"github.com/lanchat/lanchat/peer"
)

// client flags shared by the short commands.
type clientFlags struct {
	data    string
	jsonOut bool
}

func newClientFlags(name string, f *clientFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&f.data, "data", settings.DefaultDataDir(), "data folder of the running node")
	fs.BoolVar(&f.jsonOut, "json", false, "print one JSON object per line")
	return fs
}

// ErrFailed means some messages were not delivered.
var ErrFailed = errors.New("not every message was delivered")

func cmdPeers(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("peers", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if !f.jsonOut {
		fmt.Fprintln(tw, "NICK\tGROUP\tCLIENT\tADDRESS\tSTATE\tPATH\tKEY")
	}
	err := call(f.data, control.Request{Op: "peers"}, func(kind string, data json.RawMessage) error {
		if f.jsonOut {
			return printJSON(out, data)
		}
		var ct peer.Contact
		if err := json.Unmarshal(data, &ct); err != nil {
			return err
		}
		state := "online"
		switch {
		case ct.Offline:
			state = "offline"
		case ct.Away:
			state = "away"
		}
		// lan, direct or relayed; a relay member without a connection of
		// its own is reached through the relay's store.
		path := ct.Path
		if path == "" {
			path = "relay store"
		}
		addr := ""
		if ct.Addr.IsValid() {
			addr = ct.Addr.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ct.Nick, ct.Group, ct.Client, addr, state, path, ct.Key)
		return nil
	})
	tw.Flush()
	return err
}

func printJSON(out io.Writer, data json.RawMessage) error {
	_, err := fmt.Fprintf(out, "%s\n", data)
	return err
}

func cmdSend(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("send", &f)
	seal := fs.Bool("seal", false, "sealed message: the peer must open it, and you are told when they do")
	lines := fs.Bool("lines", false, "send each line of standard input as its own message, in order")
	var files listFlag
	fs.Var(&files, "file", "a file or folder to offer; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	to, text, err := sendArgs(fs.Args(), *lines, len(files) > 0)
	if err != nil {
		return err
	}
	abs, err := absFiles(files)
	if err != nil {
		return err
	}
	c, err := dial(f.data)
	if err != nil {
		return err
	}
	defer c.Close()
	failed := 0
	send := func(text string) error {
		req := control.Request{Op: "send", To: to, Text: text, Seal: *seal, Files: abs}
		abs = nil // files ride on the first message only
		return c.Do(req, func(kind string, data json.RawMessage) error {
			var m peer.Message
			if err := json.Unmarshal(data, &m); err != nil {
				return err
			}
			if m.Status == peer.Failed {
				failed++
			}
			return printResult(out, f.jsonOut, data, m)
		})
	}
	if *lines {
		if len(files) > 0 {
			return usageError{"--lines and --file do not mix"}
		}
		err = eachLine(os.Stdin, send)
	} else {
		err = send(text)
	}
	if err == nil && failed > 0 {
		err = fmt.Errorf("%w: %d failed", ErrFailed, failed)
	}
	return err
}

// sendArgs splits PEER... [--] TEXT. With --, the peers come before it
// and the text after. Without: with --lines every argument is a peer; with
// files the first is the peer and the rest, optional, the text; otherwise
// the last is the text, and a lone PEER reads the text from standard input.
func sendArgs(args []string, lines, files bool) (to []string, text string, err error) {
	for i, a := range args {
		if a == "--" {
			return args[:i], strings.Join(args[i+1:], " "), checkSend(args[:i])
		}
	}
	switch {
	case lines:
		return args, "", checkSend(args)
	case files && len(args) > 0:
		return args[:1], strings.Join(args[1:], " "), nil
	}
	switch len(args) {
	case 0:
		return nil, "", usageError{"send needs a PEER and a TEXT"}
	case 1:
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		return args, strings.TrimRight(string(b), "\n"), err
	}
	return args[:len(args)-1], args[len(args)-1], nil
}

// absFiles makes paths absolute: the node resolves them, from another
// working directory.
func absFiles(paths []string) ([]string, error) {
	out := make([]string, len(paths))
	for i, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

func checkSend(to []string) error {
	if len(to) == 0 {
		return usageError{"send needs a PEER"}
	}
	return nil
}

func eachLine(r io.Reader, f func(string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if err := f(sc.Text()); err != nil {
			return err
		}
	}
	return sc.Err()
}

func printResult(out io.Writer, jsonOut bool, data json.RawMessage, m peer.Message) error {
	if jsonOut {
		return printJSON(out, data)
	}
	part := ""
	if m.Parts > 1 {
		part = fmt.Sprintf(" (part %d/%d)", m.Part, m.Parts)
	}
	switch m.Status {
	case peer.Failed:
		_, err := fmt.Fprintf(out, "FAILED to %s%s: %s\n", m.Nick, part, m.Error)
		return err
	default:
		_, err := fmt.Fprintf(out, "%s to %s%s\n", m.Status, m.Nick, part)
		return err
	}
}

func cmdEvents(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("events", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dial(f.data)
	if err != nil {
		return err
	}
	defer c.Close()
	w := bufio.NewWriter(out)
	ready := func() { // scripts wait for this line before acting
		if f.jsonOut {
			fmt.Fprintln(w, `{"kind":"ready"}`)
			w.Flush()
		}
	}
	shown := map[string]time.Time{} // transfer progress lines, at most one per transfer every 2 s
	return c.Events(ready, func(kind string, data json.RawMessage) error {
		if f.jsonOut {
			fmt.Fprintf(w, "{\"kind\":%q,\"data\":%s}\n", kind, data)
		} else {
			printEvent(w, kind, data, shown)
		}
		return w.Flush() // a script reading a pipe sees each event at once
	})
}

// printEvent writes one human-readable line.
func printEvent(w io.Writer, kind string, data json.RawMessage, shown map[string]time.Time) {
	now := time.Now().Format("15:04:05")
	switch kind {
	case "contact":
		var e peer.ContactEvent
		json.Unmarshal(data, &e)
		fmt.Fprintf(w, "%s %s %s (%s, %s, %s)\n", now, e.Change, e.Contact.Nick, e.Contact.Key, e.Contact.Client, e.Contact.Addr)
	case "message":
		var e peer.MessageEvent
		json.Unmarshal(data, &e)
		printMessage(w, e.Message)
	case "status":
		var e peer.StatusEvent
		json.Unmarshal(data, &e)
		fmt.Fprintf(w, "%s %s %s %s %s\n", now, e.Status, e.Peer, e.ID, e.Error)
	case "relay":
		var e peer.RelayEvent
		json.Unmarshal(data, &e)
		fmt.Fprintf(w, "%s relay: %s\n", now, relayStateText(e.State))
	case "notice":
		var e peer.NoticeEvent
		json.Unmarshal(data, &e)
		fmt.Fprintf(w, "%s %s: %s\n", now, e.Level, e.Text)
	case "transfer":
		var e peer.TransferEvent
		json.Unmarshal(data, &e)
		t := e.Transfer
		switch {
		case t.State.Final():
			delete(shown, t.ID)
			fmt.Fprintf(w, "%s %s %s %s %s %s %s\n", now, t.ID, t.Dir, t.Name, t.State, doneText(t), t.Error)
		case t.State == peer.TransferRunning && time.Since(shown[t.ID]) >= 2*time.Second:
			shown[t.ID] = time.Now()
			fmt.Fprintf(w, "%s %s %s %s\n", now, t.ID, t.Dir, bar(t, 20))
		}
	}
}

func printMessage(w io.Writer, m peer.Message) {
	arrow := "<"
	if m.Dir == peer.Outgoing {
		arrow = ">"
	}
	flags := ""
	if m.Sealed {
		flags += " [sealed " + m.ID + "]"
	}
	if m.AutoRe {
		flags += " [auto-reply]"
	}
	fmt.Fprintf(w, "%s %s %s%s: %s\n", m.Time.Local().Format("15:04:05"), arrow, m.Nick, flags, m.Text)
	for _, f := range m.Files {
		kind := size(f.Size)
		if f.Folder {
			kind = "folder"
		}
		fmt.Fprintf(w, "         📎 %s (%s)\n", f.Name, kind)
	}
	if len(m.Files) > 0 && m.Dir == peer.Incoming {
		fmt.Fprintf(w, "         lanchat accept %s   (or: lanchat decline %s)\n", m.ID, m.ID)
	}
}

func cmdAway(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("away", &f)
	off := fs.Bool("off", false, "come back from away")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return call(f.data, control.Request{Op: "away", Away: !*off, Text: strings.Join(fs.Args(), " ")}, nil)
}

func cmdName(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("name", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a := fs.Args()
	if len(a) == 0 || len(a) > 2 {
		return usageError{"name needs NICK [GROUP]"}
	}
	req := control.Request{Op: "name", Nick: a[0]}
	if len(a) == 2 {
		req.Group = a[1]
	}
	if err := call(f.data, req, nil); err != nil {
		return err
	}
	st, err := settings.Load(f.data)
	if err != nil {
		return err
	}
	st.Nick, st.Group = req.Nick, req.Group
	return settings.Save(f.data, st)
}

func cmdHistory(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("history", &f)
	n := fs.Int("n", 50, "how many of the latest messages (0: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"history needs one PEER"}
	}
	return call(f.data, control.Request{Op: "history", Peer: fs.Arg(0), Limit: *n}, func(kind string, data json.RawMessage) error {
		if f.jsonOut {
			return printJSON(out, data)
		}
		var m peer.Message
		if err := json.Unmarshal(data, &m); err != nil {
			return err
		}
		printMessage(out, m)
		return nil
	})
}

func cmdOpen(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("open", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"open needs a message ID (shown by `lanchat events`)"}
	}
	return call(f.data, control.Request{Op: "open", ID: fs.Arg(0)}, nil)
}

func cmdStatus(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("status", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return call(f.data, control.Request{Op: "status"}, func(kind string, data json.RawMessage) error {
		if f.jsonOut {
			return printJSON(out, data)
		}
		var s peer.Self
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s (%s@%s) group %q on %s, charset %s, away %v\n", s.Nick, s.User, s.Host, s.Group, s.Addr, s.Legacy, s.Away)
		fmt.Fprintf(out, "messages: %d received, %d sent, %d delivered, %d failed, %d resends, %d repeats dropped, %d malformed, %d flood-dropped\n",
			s.Stats.Received, s.Stats.Sent, s.Stats.Acked, s.Stats.Failed, s.Stats.Retransmits, s.Stats.Duplicates, s.Stats.Malformed, s.Stats.Flooded)
		fmt.Fprintf(out, "identity: %s\n", s.ID)
		fmt.Fprintf(out, "relay: %s\n", relayStateText(s.Relay))
		return nil
	})
}
