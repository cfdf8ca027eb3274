package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/lanchat/lanchat/internal/control"
	"github.com/lanchat/lanchat/internal/settings"
	"github.com/lanchat/lanchat/peer"
	"github.com/lanchat/lanchat/relay"
)

const relayUsage = `Usage:
  lanchat relay [flags]                 run the relay server
  lanchat relay invite [--ttl 168h] [NOTE]
                                        make a one-time invite code for a new member
  lanchat relay members [--json]        list members
  lanchat relay remove PEER-ID          revoke a membership (disconnects at once)
  lanchat relay status [--json]         addresses and counters

Every relay command takes --data DIR (default $LANCHAT_RELAY_DATA or ~/.config/lanchat-relay).
`

// defaultRelayData is the relay's data folder: apart from a node's, so one
// machine can run both.
func defaultRelayData() string {
	if d := os.Getenv("LANCHAT_RELAY_DATA"); d != "" {
		return d
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "lanchat-relay")
	}
	return ".lanchat-relay"
}

func cmdRelay(args []string, out io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub := map[string]func([]string, io.Writer) error{
			"invite": cmdRelayInvite, "members": cmdRelayMembers, "remove": cmdRelayRemove, "status": cmdRelayStatus,
		}[args[0]]
		if sub == nil {
			return usageError{fmt.Sprintf("unknown relay command %q\n\n%s", args[0], relayUsage)}
		}
		return sub(args[1:], out)
	}
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), relayUsage+"\nFlags of lanchat relay:\n"); fs.PrintDefaults() }
	data := fs.String("data", defaultRelayData(), "data folder: identity, message store, control socket")
	var listen, announce listFlag
	fs.Var(&listen, "listen", fmt.Sprintf("multiaddress to listen on; repeatable (default TCP and QUIC port %d on all interfaces)", relay.DefaultPort))
	fs.Var(&announce, "announce", "address members dial, put into invites (a public name or forwarded port); repeatable")
	syncMode := fs.String("sync", "os", "when an acknowledged message is safe: os (written to the OS: survives a relay crash; the default) or always (fsync: also survives a power cut; slower)")
	logLevel := fs.String("log", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *syncMode != "os" && *syncMode != "always" {
		return usageError{fmt.Sprintf("--sync %q: want os or always", *syncMode)}
	}
	log, err := newLogger(*logLevel, os.Stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := relay.NewServer(ctx, relay.ServerConfig{Dir: *data, Listen: listen, Announce: announce,
		SyncAlways: *syncMode == "always", Logger: log})
	if err != nil {
		return err
	}
	ctl, err := control.ListenRelay(*data, srv, log)
	if err != nil {
		srv.Close()
		return err
	}
	fmt.Fprintf(out, "lanchat relay %s\n", srv.ID())
	for _, a := range srv.Addrs() {
		fmt.Fprintf(out, "listening on %s\n", a)
	}
	fmt.Fprintf(out, "invite members with: lanchat relay invite --data %s\n", *data)
	if f, ok := out.(*os.File); ok {
		f.Sync()
	}
	log.Info("relay running", "id", srv.ID(), "data", *data, "sync", *syncMode)
	ctlDone := make(chan error, 1)
	go func() { ctlDone <- ctl.Serve(ctx) }()
	err = srv.Run(ctx)
	if cerr := <-ctlDone; err == nil {
		err = cerr
	}
	return err
}

func relayClientFlags(name string, f *clientFlags) *flag.FlagSet {
	fs := newClientFlags(name, f)
	fs.Lookup("data").DefValue = defaultRelayData()
	fs.Lookup("data").Value.Set(defaultRelayData())
	fs.Lookup("data").Usage = "data folder of the running relay"
	return fs
}

func cmdRelayInvite(args []string, out io.Writer) error {
	var f clientFlags
	fs := relayClientFlags("relay invite", &f)
	ttl := fs.String("ttl", "168h", "how long the code is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return call(f.data, control.Request{Op: "invite", TTL: *ttl, Text: strings.Join(fs.Args(), " ")},
		func(_ string, data json.RawMessage) error {
			if f.jsonOut {
				return printJSON(out, data)
			}
			var code string
			if err := json.Unmarshal(data, &code); err != nil {
				return err
			}
			fmt.Fprintln(out, code)
			return nil
		})
}

func cmdRelayMembers(args []string, out io.Writer) error {
	var f clientFlags
	fs := relayClientFlags("relay members", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	if !f.jsonOut {
		fmt.Fprintln(tw, "NICK\tGROUP\tSTATE\tKEY\tPEER ID")
	}
	return call(f.data, control.Request{Op: "members"}, func(_ string, data json.RawMessage) error {
		if f.jsonOut {
			return printJSON(out, data)
		}
		var m relay.Member
		if err := json.Unmarshal(data, &m); err != nil {
			return err
		}
		state := "offline"
		if m.Online {
			state = "online"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Nick, m.Group, state, m.Key, m.ID)
		return nil
	})
}

func cmdRelayRemove(args []string, out io.Writer) error {
	var f clientFlags
	fs := relayClientFlags("relay remove", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"usage: lanchat relay remove PEER-ID (see lanchat relay members)"}
	}
	return call(f.data, control.Request{Op: "remove", ID: fs.Arg(0)}, nil)
}

func cmdRelayStatus(args []string, out io.Writer) error {
	var f clientFlags
	fs := relayClientFlags("relay status", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return call(f.data, control.Request{Op: "status"}, func(_ string, data json.RawMessage) error {
		if f.jsonOut {
			return printJSON(out, data)
		}
		var st relay.Status
		if err := json.Unmarshal(data, &st); err != nil {
			return err
		}
		fmt.Fprintf(out, "relay %s: %d members, %d online, %d connections\n", st.ID, st.Members, st.Online, st.Conns)
		for _, a := range st.Addrs {
			fmt.Fprintf(out, "  %s\n", a)
		}
		return nil
	})
}

// cmdJoin makes the running node a member of the relay that issued code,
// and saves the relay in the settings.
func cmdJoin(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("join", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"usage: lanchat join CODE (the code from the relay's admin)"}
	}
	var addrs []string
	err := call(f.data, control.Request{Op: "join", Code: fs.Arg(0)}, func(_ string, data json.RawMessage) error {
		return json.Unmarshal(data, &addrs)
	})
	if err != nil {
		return err
	}
	st, err := settings.Load(f.data)
	if err != nil {
		return err
	}
	st.Relay = strings.Join(addrs, ",")
	if err := settings.Save(f.data, st); err != nil {
		return err
	}
	fmt.Fprintf(out, "joined the relay; members appear in lanchat peers once connected\n")
	return nil
}

const groupUsage = `usage:
  lanchat group list
  lanchat group create NAME [MEMBER...]
  lanchat group add GROUP MEMBER...
  lanchat group remove GROUP MEMBER...
Send to a group with: lanchat send group:NAME TEXT`

// cmdGroup manages the relay's groups.
func cmdGroup(args []string, out io.Writer) error {
	var f clientFlags
	fs := newClientFlags("group", &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a := fs.Args()
	if len(a) == 0 {
		return usageError{groupUsage}
	}
	req := control.Request{Op: "group", GroupOp: a[0]}
	switch {
	case a[0] == "list" && len(a) == 1:
	case a[0] == "create" && len(a) >= 2:
		req.Nick, req.To = a[1], a[2:]
	case (a[0] == "add" || a[0] == "remove") && len(a) >= 3:
		req.Group, req.To = a[1], a[2:]
	default:
		return usageError{groupUsage}
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	return call(f.data, req, func(_ string, data json.RawMessage) error {
		if f.jsonOut {
			return printJSON(out, data)
		}
		var g relay.Group
		if err := json.Unmarshal(data, &g); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%d members\t%s%s\n", g.Name, len(g.Members), peer.GroupPrefix, g.ID)
		return nil
	})
}

func relayStateText(s relay.State) string {
	switch {
	case s.Relay == "":
		return "none (join one with lanchat join CODE)"
	case s.Connected && s.NATText != "" && s.PublicTCP != "":
		return fmt.Sprintf("connected to %s since %s; network: %s; public TCP address %s", s.Relay, s.Since.Format("15:04:05"), s.NATText, s.PublicTCP)
	case s.Connected && s.NATText != "":
		return fmt.Sprintf("connected to %s since %s; network: %s", s.Relay, s.Since.Format("15:04:05"), s.NATText)
	case s.Connected:
		return fmt.Sprintf("connected to %s since %s", s.Relay, s.Since.Format("15:04:05"))
	case s.Error != "":
		return fmt.Sprintf("not connected to %s: %s", s.Relay, s.Error)
	}
	return fmt.Sprintf("connecting to %s", s.Relay)
}
