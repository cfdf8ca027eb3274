//go:build linux

package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/netns"
)

// IPMsg command modes (the low byte of the command field).
const (
	modeBrEntry  = 0x01
	modeBrExit   = 0x02
	modeAnsEntry = 0x03
	modeSendMsg  = 0x20
	modeRecvMsg  = 0x21
)

// requireIptux skips unless the machine can run the real iptux headless in a
// network namespace: root, ip, iptux, Xvfb and xdotool.
func requireIptux(t *testing.T) {
	t.Helper()
	netns.Require(t)
	for _, tool := range []string{"iptux", "Xvfb", "xdotool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("interop: %s not installed (scripts/debian-deps.sh installs it as root): %v", tool, err)
		}
	}
}

// iptuxConfig is what the test writes to ~/.iptux/config.json before start.
type iptuxConfig struct {
	Nick  string `json:"nick_name"`
	Group string `json:"belong_group"`
	// OpenChat opens the chat window as soon as a message arrives, so the
	// test can type a reply without clicking through the pal list.
	OpenChat bool `json:"open_chat"`
	// EnterSends makes Return send the typed message (else Ctrl+Return).
	EnterSends bool `json:"use_enter_key"`
}

// iptux is a real iptux on a namespace host, on an Xvfb of its own, with its
// own HOME. Its DEBUG log, which dumps every datagram, goes to LogPath.
type iptux struct {
	t       testing.TB
	Host    *netns.Host
	Home    string
	Display string
	LogPath string
}

// startIptux starts Xvfb and iptux on h and waits until iptux has bound its
// ports. Both are stopped (SIGTERM, then SIGKILL) at cleanup, before the
// namespaces go, so call it after netns.New.
func startIptux(t testing.TB, h *netns.Host, cfg iptuxConfig) *iptux {
	t.Helper()
	home := t.TempDir()
	// iptux opens its chat log (communicate.log: each message as iptux
	// decoded and showed it) at start but creates its folder only later, so
	// on a fresh HOME there would be no chat log without this.
	for _, d := range []string{".iptux", ".config/iptux/log", ".cache", ".local/share", "run"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".iptux", "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	ip := &iptux{t: t, Host: h, Home: home, LogPath: filepath.Join(home, "iptux.log")}
	ip.Display = startXvfb(t, h, home)

	cmd := h.Command(context.Background(), "iptux", "-l", "DEBUG")
	cmd.Dir = home
	cmd.Env = ip.env()
	p := startLogged(t, "iptux", cmd, ip.LogPath)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(ip.Log(), "bind UDP port") {
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("iptux did not start (exited: %v):\n%s", p.exited(), ip.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("iptux log:\n%s", ip.Log())
		}
	})
	return ip
}

// env is iptux's whole environment: a private HOME and XDG folders, its
// own display, English messages (the chat log's format is translated), and
// no D-Bus. With no bus address GLib would autolaunch a session bus and the
// accessibility bus, daemons that outlive the test; with "disabled:" iptux
// only warns that it cannot show desktop notifications.
func (ip *iptux) env() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + ip.Home,
		"XDG_CONFIG_HOME=" + filepath.Join(ip.Home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(ip.Home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(ip.Home, ".local/share"),
		"XDG_RUNTIME_DIR=" + filepath.Join(ip.Home, "run"),
		"DISPLAY=" + ip.Display,
		"LANG=C.UTF-8", "LC_ALL=C.UTF-8", "LANGUAGE=C",
		"DBUS_SESSION_BUS_ADDRESS=disabled:",
		"NO_AT_BRIDGE=1",
		"GSETTINGS_BACKEND=memory",
		"GTK_IM_MODULE=gtk-im-context-simple", // has the Ctrl+Shift+U entry Reply types with
	}
}

// startXvfb starts an X server on h and returns its display. -displayfd
// makes Xvfb pick a free display number (lock files in /tmp are shared by
// all namespaces) and write it to fd 3 once it accepts connections.
func startXvfb(t testing.TB, h *netns.Host, dir string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := h.Command(context.Background(), "Xvfb", "-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "1024x768x24")
	cmd.ExtraFiles = []*os.File{w}
	logPath := filepath.Join(dir, "xvfb.log")
	startLogged(t, "Xvfb", cmd, logPath)
	w.Close()
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("Xvfb did not report its display: %v\n%s", err, out)
	}
	return ":" + strings.TrimSpace(line)
}

// proc is a program the test started and must stop.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startLogged starts cmd with its output in logPath and registers a cleanup
// that ends it by its PID: SIGTERM, then SIGKILL after 5 s.
func startLogged(t testing.TB, name string, cmd *exec.Cmd, logPath string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	f.Close()
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s (pid %d) ignored SIGTERM; killing it", name, cmd.Process.Pid)
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Log returns iptux's output so far.
func (ip *iptux) Log() string {
	b, _ := os.ReadFile(ip.LogPath)
	return string(b)
}

// datagram is one UDP datagram in iptux's DEBUG log.
type datagram struct {
	Sent bool           // iptux sent it; else iptux received it
	Peer netip.AddrPort // where it went to or came from
	Data []byte
}

func (d datagram) String() string {
	dir := "from"
	if d.Sent {
		dir = "to"
	}
	return fmt.Sprintf("%s %v %s", dir, d.Peer, quoteBytes(d.Data))
}

// header splits an IPMsg datagram: version:packetNo:user:host:command:extra.
type header struct {
	PacketNo string
	User     string
	Host     string
	Command  uint32
	Extra    []byte
}

func parseHeader(b []byte) (header, bool) {
	f := bytes.SplitN(b, []byte(":"), 6)
	if len(f) < 5 {
		return header{}, false
	}
	cmd, err := strconv.ParseUint(string(f[4]), 10, 32)
	if err != nil {
		return header{}, false
	}
	h := header{PacketNo: string(f[1]), User: string(f[2]), Host: string(f[3]), Command: uint32(cmd)}
	if len(f) == 6 {
		h.Extra = f[5]
	}
	return h, true
}

// Mode is the command without its option bits.
func (h header) Mode() uint32 { return h.Command & 0xff }

var (
	recvLine = regexp.MustCompile(`received udp message from (\S+), size (\d+)$`)
	sendLine = regexp.MustCompile(`send udp message to (\S+), size (\d+)$`)
	dumpLine = regexp.MustCompile(`^[0-9a-f]{8}  `)
	dumpEnd  = regexp.MustCompile(`^[0-9a-f]{8}$`)
)

// Datagrams parses every datagram iptux has logged so far. Received ones
// are printed as C strings (iptux's stringDumpAsCString), sent ones as
// `hexdump -C` (stringDump). A record still being written is left out
// because its length does not match yet.
func (ip *iptux) Datagrams() []datagram {
	lines := strings.Split(ip.Log(), "\n")
	var out []datagram
	for i := 0; i < len(lines); i++ {
		if m := recvLine.FindStringSubmatch(lines[i]); m != nil && i+1 < len(lines) {
			data, err := unquoteIptux(lines[i+1])
			if err == nil && strconv.Itoa(len(data)) == m[2] {
				out = append(out, datagram{Peer: netip.MustParseAddrPort(m[1]), Data: data})
			}
			i++
			continue
		}
		if m := sendLine.FindStringSubmatch(lines[i]); m != nil {
			var data []byte
			for i+1 < len(lines) && dumpLine.MatchString(lines[i+1]) {
				i++
				l := lines[i]
				end := min(len(l), 10+3*16+1)
				for _, f := range strings.Fields(l[10:end]) {
					b, err := hex.DecodeString(f)
					if err == nil && len(b) == 1 {
						data = append(data, b[0])
					}
				}
			}
			if i+1 < len(lines) && dumpEnd.MatchString(lines[i+1]) && strconv.Itoa(len(data)) == m[2] {
				out = append(out, datagram{Sent: true, Peer: netip.MustParseAddrPort(m[1]), Data: data})
			}
		}
	}
	return out
}

// unquoteIptux reverses iptux's stringDumpAsCString: \xNN, \t, \n, \r, \"
// and \\ escapes inside double quotes, everything else literal.
func unquoteIptux(s string) ([]byte, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return nil, fmt.Errorf("not a quoted dump: %q", s)
	}
	s = s[1 : len(s)-1]
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 >= len(s) {
			return nil, errors.New("dangling backslash")
		}
		i++
		switch s[i] {
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case '"', '\\':
			out = append(out, s[i])
		case 'x':
			if i+3 > len(s) {
				return nil, errors.New("short \\x escape")
			}
			b, err := hex.DecodeString(s[i+1 : i+3])
			if err != nil {
				return nil, err
			}
			out = append(out, b[0])
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return out, nil
}

// WaitDatagram polls the log until a datagram matches and returns the first
// match; it fails the test after timeout.
func (ip *iptux) WaitDatagram(timeout time.Duration, what string, match func(datagram, header) bool) (datagram, header) {
	ip.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, d := range ip.Datagrams() {
			if h, ok := parseHeader(d.Data); ok && match(d, h) {
				return d, h
			}
		}
		if time.Now().After(deadline) {
			ip.t.Fatalf("iptux did not log %s within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chatEntry is one record of iptux's chat log (~/.config/iptux/log/communicate.log),
// which holds messages as iptux decoded and displayed them.
type chatEntry struct {
	Head string // e.g. "(Mon Nov 23 11:53:51 2026) Recevied-From: Nickname:小明 User:lanchat Host:vm:"
	Body string // "[STRING]" and the text
}

func (ip *iptux) Chat() []chatEntry {
	b, _ := os.ReadFile(filepath.Join(ip.Home, ".config", "iptux", "log", "communicate.log"))
	var out []chatEntry
	for _, rec := range strings.Split(string(b), "=====================================\n")[1:] {
		body, complete := strings.CutSuffix(rec, "-------------------------------------\n\n")
		if !complete {
			continue
		}
		head, text, _ := strings.Cut(body, "\n")
		out = append(out, chatEntry{Head: head, Body: strings.TrimSuffix(text, "\n")})
	}
	return out
}

// WaitChat waits until the chat log has n entries and returns them.
func (ip *iptux) WaitChat(timeout time.Duration, n int) []chatEntry {
	ip.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := ip.Chat()
		if len(c) >= n {
			return c
		}
		if time.Now().After(deadline) {
			ip.t.Fatalf("iptux's chat log has %d entries after %v, want %d: %q", len(c), timeout, n, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// xdotool runs xdotool on iptux's display with a deadline and returns its output.
func (ip *iptux) xdotool(timeout time.Duration, args ...string) string {
	ip.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := ip.Host.Command(ctx, "xdotool", args...)
	cmd.Env = ip.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		ip.t.Fatalf("xdotool %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Reply types text into the open chat window with peer and presses Return,
// as a user would. It needs OpenChat and EnterSends in the config.
func (ip *iptux) Reply(peer netip.Addr, text string) {
	ip.t.Helper()
	title := `^Talk with .* IP:` + regexp.QuoteMeta(peer.String()) + `$`
	win := ip.xdotool(10*time.Second, "search", "--sync", "--limit", "1", "--name", title)
	ip.xdotool(5*time.Second, "windowfocus", "--sync", win)
	ip.xdotool(20*time.Second, append(append([]string{"key", "--delay", "15"}, unicodeKeys(text)...), "Return")...)
}

// unicodeKeys spells text as key presses for GTK's Ctrl+Shift+U hex entry:
// Ctrl+Shift+U, the code point's hex digits, space. Every key is on the
// default keymap. `xdotool type` would instead remap a spare keycode for
// each character not on it, and GTK, reading the key before the new
// mapping, drops such characters now and then.
func unicodeKeys(text string) []string {
	var keys []string
	for _, r := range text {
		keys = append(keys, "ctrl+shift+u")
		for _, d := range strconv.FormatInt(int64(r), 16) {
			keys = append(keys, string(d))
		}
		keys = append(keys, "space")
	}
	return keys
}
