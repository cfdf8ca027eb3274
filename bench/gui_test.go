//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/loopback"
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
//
// Xvfb has no GPU: the window's OpenGL is Mesa's software renderer
// (llvmpipe, with all of LLVM), which an office PC's GPU driver replaces.
// So the memory is also reported without it, as read from
// /proc/PID/smaps: the files the window maps and the headless node does
// not (the GL driver and its libraries, X shared memory), and the C heap,
// which in the window is nearly all Mesa's (heaptrack: swrast_dri.so and
// LLVM; the Go side allocates little through C).
func BenchmarkGUIStart(b *testing.B) {
	for _, tool := range []string{"Xvfb", "xdotool", "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not installed (scripts/debian-deps.sh)", tool)
		}
	}
	bin := buildGUI(b)
	display := startXvfb(b)
	var start, serveStart time.Duration
	var rss, serveRSS, glFiles, glHeap, anon, binPages int64
	var glTop []string
	n := 0
	for b.Loop() {
		d, m := runGUI(b, bin, display)
		sd, sm := runServe(b, bin)
		f, h, top := glShare(m, sm)
		start, rss, serveStart, serveRSS = start+d, rss+m.rss, serveStart+sd, serveRSS+sm.rss
		glFiles, glHeap, glTop = glFiles+f, glHeap+h, top
		anon, binPages = anon+m.mapped[""], binPages+m.mapped[bin]
		n++
	}
	start, serveStart = start/time.Duration(n), serveStart/time.Duration(n)
	rss, serveRSS = rss/int64(n), serveRSS/int64(n)
	glFiles, glHeap, anon, binPages = glFiles/int64(n), glHeap/int64(n), anon/int64(n), binPages/int64(n)
	noGL := rss - glFiles - glHeap
	b.ReportMetric(float64(start.Milliseconds()), "start-ms")
	b.ReportMetric(mb(rss), "rss-MB")
	b.ReportMetric(mb(noGL), "rss-noGL-MB")
	b.Logf("start to a drawn window: %v (target ≤ %v; headless serve ready in %v)",
		start.Round(time.Millisecond), guiStartTarget, serveStart.Round(time.Millisecond))
	b.Logf("idle memory: %.1f MB RSS (target ≤ %d MB; headless serve %.1f MB)",
		mb(rss), guiRSSTarget>>20, mb(serveRSS))
	b.Logf("of which Xvfb's software GL: %.1f MB in files only the window maps (%s), %.1f MB of C heap",
		mb(glFiles), strings.Join(glTop, ", "), mb(glHeap))
	b.Logf("without it: %.1f MB RSS (target ≤ %d MB): anonymous (Go heap and runtime, stacks) %.1f MB, the binary's pages %.1f MB, other %.1f MB",
		mb(noGL), guiRSSTarget>>20, mb(anon), mb(binPages), mb(noGL-anon-binPages))
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// glShare returns what of the window's memory the display's GL driver
// holds: the resident bytes of files the window maps and the headless node
// from the same binary does not, with the largest three named, and the C
// heap beyond the node's.
func glShare(gui, serve memory) (files, heap int64, top []string) {
	type file struct {
		name string
		rss  int64
	}
	var only []file
	for name, rss := range gui.mapped {
		if _, ok := serve.mapped[name]; ok || !strings.HasPrefix(name, "/") {
			continue
		}
		files += rss
		only = append(only, file{filepath.Base(strings.TrimSuffix(name, " (deleted)")), rss})
	}
	slices.SortFunc(only, func(a, b file) int { return cmp.Compare(b.rss, a.rss) })
	for i, f := range only {
		if i == 3 {
			top = append(top, "…")
			break
		}
		top = append(top, fmt.Sprintf("%s %.1f MB", f.name, mb(f.rss)))
	}
	return files, max(gui.mapped["[heap]"]-serve.mapped["[heap]"], 0), top
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
// and its memory after idling; then it stops the app.
func runGUI(b *testing.B, bin, display string) (time.Duration, memory) {
	port := loopback.FreePort(b)
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
	return d, readMemory(b, cmd.Process.Pid)
}

// runServe starts a headless node from the same binary and returns the
// time until it logs that it runs, and its memory after idling.
func runServe(b *testing.B, bin string) (time.Duration, memory) {
	port := loopback.FreePort(b)
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
	return d, readMemory(b, cmd.Process.Pid)
}

// memory is a process's resident memory: in all (VmRSS), and by mapping
// as /proc/PID/smaps names them: a file's path, "[heap]", "[stack]", …,
// and "" for anonymous memory.
type memory struct {
	rss    int64
	mapped map[string]int64
}

// readMemory reads a process's resident memory from /proc.
func readMemory(b *testing.B, pid int) memory {
	m := memory{rss: vmRSS(b, pid), mapped: map[string]int64{}}
	smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		b.Fatal(err)
	}
	name := ""
	for line := range strings.Lines(string(smaps)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			// 7f..-7f.. r-xp 00000000 fe:00 1234   /usr/lib/…/libLLVM-15.so.1
			name = strings.Join(f[5:], " ")
		case len(f) >= 2 && f[0] == "Rss:":
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			m.mapped[name] += kb << 10
		}
	}
	return m
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
