// Command lanchat is a LAN messenger that speaks the IP Messenger protocol,
// so it chats with 飞鸽传书 (Feige), 飞秋 (FeiQ), IP Messenger and iptux users.
//
//	lanchat                      desktop app (headless builds print this help)
//	lanchat serve [flags]        run a headless node
//	lanchat peers [--json]       list people on the LAN
//	lanchat send [--seal] PEER [TEXT]   send TEXT (or stdin lines with --lines)
//	lanchat events [--json]      stream what happens
//	lanchat away [--off] [TEXT]  set or clear away mode
//	lanchat history PEER         show a conversation
//	lanchat open ID              open a sealed message
//	lanchat status               the running node
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/lanchat/lanchat/internal/control"
)

const usage = `lanchat — LAN messenger compatible with Feige (飞鸽传书), FeiQ (飞秋), IP Messenger and iptux

Usage:
  lanchat [flags]                  open the desktop app, with the flags of serve (headless builds print this help)
  lanchat serve [flags]            run a node without a window (servers, scripts)
  lanchat peers [--json]           people on the LAN
  lanchat send [--seal] PEER... [--] TEXT
                                   send a message; PEER is a nickname, user@host or IP
  lanchat send --lines PEER        send each line of standard input as a message, in order
  lanchat send --file PATH... PEER [TEXT]
                                   offer files and folders (--file repeats)
  lanchat accept [--to DIR] OFFER  download an offer (its message ID), with progress
  lanchat decline OFFER            refuse an offer; the sender is told
  lanchat transfers [--json]       transfers running and recently finished
  lanchat cancel TRANSFER          stop a transfer
  lanchat events [--json]          stream contacts, messages and delivery reports
  lanchat away [--off] [TEXT]      go away with an auto-reply, or come back
  lanchat name NICK [GROUP]        change the name and group others see
  lanchat history [-n N] PEER      show a conversation
  lanchat open ID                  open a sealed message (the sender is told)
  lanchat status [--json]          what the running node announces, its counters and its relay
  lanchat join CODE                join a relay with the invite code its admin gave you
  lanchat group list|create|add|remove ...
                                   groups on the relay; send with: lanchat send group:NAME TEXT
  lanchat relay [flags]            run a relay server (lanchat relay --help for its commands)

Every command takes --data DIR (default $LANCHAT_DATA or ~/.config/lanchat).
Short commands talk to the running node through its data folder.
Run 'lanchat serve --help' for the node's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit status: 0 ok, 1 failed,
// 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (strings.HasPrefix(args[0], "-") && !isHelp(args[0])) {
		return openDesktop(args, stdout, stderr) // `lanchat [--data DIR] [--name …]`
	}
	cmds := map[string]func([]string, io.Writer) error{
		"serve": cmdServe, "peers": cmdPeers, "send": cmdSend, "events": cmdEvents,
		"away": cmdAway, "name": cmdName, "history": cmdHistory, "open": cmdOpen, "status": cmdStatus,
		"accept": cmdAccept, "decline": cmdDecline, "transfers": cmdTransfers, "cancel": cmdCancel,
		"relay": cmdRelay, "join": cmdJoin, "group": cmdGroup,
	}
	name := args[0]
	if name == "help" || isHelp(name) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "lanchat: unknown command %q\n\n%s", name, usage)
		return 2
	}
	err := cmd(args[1:], stdout)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "lanchat %s: %v\n", name, err)
		return 2
	}
	fmt.Fprintf(stderr, "lanchat %s: %v\n", name, err)
	return 1
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// dial connects to the node of a data folder.
func dial(data string) (*control.Client, error) { return control.Dial(data) }
