package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/lanchat/lanchat/internal/control"
	"github.com/lanchat/lanchat/internal/settings"
	"github.com/lanchat/lanchat/ipmsg"
	"github.com/lanchat/lanchat/peer"
)

// listFlag collects a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// nodeFlags are the flags of a node, shared by `serve` and the desktop app.
type nodeFlags struct {
	data, nick, group, charset, listen, logLevel, awayText, downloads, relay string
	port                                                                     int
	broadcast, autoAccept                                                    listFlag
	noBroadcast, away                                                        bool
}

func (f *nodeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.data, "data", settings.DefaultDataDir(), "data folder: settings, history, control socket")
	fs.StringVar(&f.nick, "name", "", "nickname others see (saved)")
	fs.StringVar(&f.group, "group", "", "group others see (saved)")
	fs.StringVar(&f.charset, "charset", "", "text encoding for peers without UTF-8: gbk or cp932 (saved; default gbk)")
	fs.IntVar(&f.port, "port", 0, "UDP and TCP port (saved; default 2425)")
	fs.Var(&f.broadcast, "broadcast", "extra broadcast address, subnet (10.1.2.0/24), host or host:port to announce to; repeatable (saved)")
	fs.BoolVar(&f.noBroadcast, "no-broadcast", false, "announce only to --broadcast targets, not to LAN broadcast addresses")
	fs.StringVar(&f.listen, "listen", "", "local address to bind (default all)")
	fs.BoolVar(&f.away, "away", false, "start in away mode")
	fs.StringVar(&f.awayText, "away-text", "", "auto-reply text while away (saved)")
	fs.StringVar(&f.logLevel, "log", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.downloads, "downloads", "", "folder for accepted files (saved; default ~/Downloads)")
	fs.StringVar(&f.relay, "relay", "", "relay addresses, comma-separated, each ending in /p2p/<ID> (saved; lanchat join sets it; \"none\" clears it)")
	fs.Var(&f.autoAccept, "auto-accept", "download offers from these contacts without asking: nick, user@host, or * for everyone; repeatable (saved)")
}

// config merges saved settings with flags given on the command line, saves
// what the flags changed, and returns the node's configuration.
func (f *nodeFlags) config(fs *flag.FlagSet, log *slog.Logger) (peer.Config, error) {
	st, err := settings.Load(f.data)
	if err != nil {
		return peer.Config{}, err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if err := f.apply(set, &st); err != nil {
		return peer.Config{}, err
	}
	if len(set) > 0 {
		if err := settings.Save(f.data, st); err != nil {
			return peer.Config{}, err
		}
	}
	return peer.Config{
		DataDir: f.data, Port: st.Port, Listen: f.listen, Nick: st.Nick, Group: st.Group,
		Legacy: st.Legacy, Extra: st.Broadcast, NoBroadcast: f.noBroadcast, Away: f.away,
		AwayText: st.AwayText, Logger: log, Downloads: st.Downloads, AutoAccept: st.AutoAccept,
		Relay: relayAddrs(st.Relay),
	}, nil
}

func (f *nodeFlags) apply(set map[string]bool, st *settings.Settings) error {
	if set["name"] {
		st.Nick = f.nick
	}
	if set["group"] {
		st.Group = f.group
	}
	if set["port"] {
		st.Port = f.port
	}
	if set["broadcast"] {
		st.Broadcast = f.broadcast
	}
	if set["downloads"] {
		st.Downloads = f.downloads
	}
	if set["auto-accept"] {
		st.AutoAccept = f.autoAccept
	}
	if set["relay"] {
		st.Relay = f.relay
		if f.relay == "none" {
			st.Relay = ""
		}
	}
	if set["away-text"] {
		st.AwayText = f.awayText
	}
	if set["charset"] {
		cs, err := ipmsg.ParseCharset(f.charset)
		if err != nil || cs == ipmsg.UTF8 {
			return usageError{fmt.Sprintf("--charset %q: want gbk or cp932", f.charset)}
		}
		st.Legacy = cs
	}
	return nil
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log %q: want debug, info, warn or error", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func cmdServe(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f nodeFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"serve takes no arguments"}
	}
	log, err := newLogger(f.logLevel, os.Stderr)
	if err != nil {
		return err
	}
	cfg, err := f.config(fs, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runNode(ctx, cfg, log)
}

// runNode runs a node and its control socket until ctx is done.
func runNode(ctx context.Context, cfg peer.Config, log *slog.Logger) error {
	node, srv, err := startNode(cfg, log)
	if err != nil {
		return err
	}
	return serveNode(ctx, node, srv, cfg, log)
}

// startNode creates a node and listens on its control socket.
func startNode(cfg peer.Config, log *slog.Logger) (*peer.Node, *control.Server, error) {
	node, err := peer.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	srv, err := control.Listen(cfg.DataDir, node, log)
	if err != nil {
		return nil, nil, err
	}
	return node, srv, nil
}

// serveNode runs a started node and its control socket until ctx is done.
func serveNode(ctx context.Context, node *peer.Node, srv *control.Server, cfg peer.Config, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ctx) }()
	self := node.Self()
	log.Info("lanchat is running", "addr", self.Addr, "nick", self.Nick, "group", self.Group,
		"data", cfg.DataDir, "charset", self.Legacy)
	err := node.Run(ctx)
	cancel()
	if serr := <-srvDone; err == nil {
		err = serr
	}
	return err
}

// relayAddrs splits the saved relay setting into addresses.
func relayAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
