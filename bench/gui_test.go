//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Targets for the desktop app, from the issue.
const (
	guiStartTarget = 1500 * time.Millisecond
	guiRSSTarget   = 100 << 20
	// guiIdle is how long the app idles before its memory is read.
	guiIdle = 3 * time.Second
)

// BenchmarkGUIStart starts the real desktop app under Xvfb, on 127.0.0.1
// with broadcast off, and reports the time from exec to its window being
// mapped on the display, and its resident memory after idling, beside the
// targets and beside a headless `lanchat serve` from the same binary (time
// to its "running" line, and its memory). Skips without Xvfb, xdotool or a
// C compiler.
func BenchmarkGUIStart(b *testing.B) {
	for _, tool := range []string{"Xvfb", "xdotool", "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not installed (scripts/debian-deps.sh)", tool)
		}
	}
	bin := buildGUI(b)
	display := startXvfb(b)
	var start, serveStart time.Duration
	var rss, serveRSS int64
	n := 0
	for b.Loop() {
		d, r := runGUI(b, bin, display)
		sd, sr := runServe(b, bin)
		start, rss, serveStart, serveRSS = start+d, rss+r, serveStart+sd, serveRSS+sr
		n++
	}
	start, serveStart = start/time.Duration(n), serveStart/time.Duration(n)
	rss, serveRSS = rss/int64(n), serveRSS/int64(n)
	b.ReportMetric(float64(start.Milliseconds()), "start-ms")
	b.ReportMetric(float64(rss)/(1<<20), "rss-MB")
	b.Logf("start to a drawn window: %v (target ≤ %v; headless serve ready in %v)",
		start.Round(time.Millisecond), guiStartTarget, serveStart.Round(time.Millisecond))
	b.Logf("idle memory: %.1f MB RSS (target ≤ %d MB; headless serve %.1f MB)",
		float64(rss)/(1<<20), guiRSSTarget>>20, float64(serveRSS)/(1<<20))
}

// buildGUI builds the cgo desktop binary once, before anything is timed.
func buildGUI(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "lanchat-gui")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/lanchat/lanchat/cmd/lanchat")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Skipf("cannot build the desktop app (GL and X11 headers: scripts/debian-deps.sh): %v\n%s", err, out)
	}
	return bin
}

// startXvfb runs a virtual display for the benchmark and stops it after.
func startXvfb(b *testing.B) string {
	n := 120
	for ; n < 200; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); os.IsNotExist(err) {
			if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); os.IsNotExist(err) {
				break
			}
		}
	}
	display := fmt.Sprintf(":%d", n)
	x := exec.Command("Xvfb", display, "-screen", "0", "1024x700x24", "-nolisten", "tcp")
	if err := x.Start(); err != nil {
		b.Skipf("Xvfb: %v", err)
	}
	b.Cleanup(func() { stop(x) })
	for range 100 {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			return display
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("Xvfb %s did not start", display)
	return ""
}

// runGUI starts the app and returns the time until its window is mapped,
// and its RSS after idling; then it stops the app.
func runGUI(b *testing.B, bin, display string) (time.Duration, int64) {
	port := loopbackPort(b)
	cmd := exec.Command(bin, "--data", b.TempDir(), "--listen", "127.0.0.1", "--port", strconv.Itoa(port), "--no-broadcast")
	cmd.Env = append(os.Environ(), "DISPLAY="+display, "LANG=en_US.UTF-8")
	var log bytes.Buffer
	cmd.Stderr = &log
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer stop(cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	find := exec.CommandContext(ctx, "xdotool", "search", "--sync", "--onlyvisible", "--pid", strconv.Itoa(cmd.Process.Pid))
	find.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := find.CombinedOutput(); err != nil {
		b.Fatalf("no window: %v %s\n%s", err, out, log.String())
	}
	d := time.Since(t0)
	time.Sleep(guiIdle)
	return d, vmRSS(b, cmd.Process.Pid)
}

// runServe starts a headless node from the same binary and returns the
// time until it logs that it runs, and its RSS after idling.
func runServe(b *testing.B, bin string) (time.Duration, int64) {
	port := loopbackPort(b)
	cmd := exec.Command(bin, "serve", "--data", b.TempDir(), "--listen", "127.0.0.1", "--port", strconv.Itoa(port), "--no-broadcast")
	cmd.Env = append(os.Environ(), "LANG=en_US.UTF-8")
	errs, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer stop(cmd)
	sc := bufio.NewScanner(errs)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "lanchat is running") {
			break
		}
	}
	d := time.Since(t0)
	go func() { // keep draining so the node never blocks on its log
		for sc.Scan() {
		}
	}()
	time.Sleep(guiIdle)
	return d, vmRSS(b, cmd.Process.Pid)
}

// vmRSS reads a process's resident memory from /proc.
func vmRSS(b *testing.B, pid int) int64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(st)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS for %d", pid)
	return 0
}

// loopbackPort returns a port free for UDP and TCP on 127.0.0.1.
func loopbackPort(b *testing.B) int {
	for range 50 {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	b.Fatal("no free port")
	return 0
}

// stop ends a process we started: SIGTERM, then SIGKILL after 5 s.
func stop(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}
