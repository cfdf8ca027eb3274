package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestHeadlessDeps checks the import rules that keep the server build
// small and portable: the CGO_ENABLED=0 binary (relay and CLI for servers)
// has no GUI toolkit in its graph, for Linux and for Windows.
func TestHeadlessDeps(t *testing.T) {
	for _, goos := range []string{"linux", "windows"} {
		t.Run(goos, func(t *testing.T) {
			deps := goList(t, []string{"CGO_ENABLED=0", "GOOS=" + goos}, "github.com/lanchat/lanchat/cmd/lanchat")
			for _, d := range deps {
				if strings.HasPrefix(d, "fyne.io/") {
					t.Errorf("headless %s build imports %s: fyne belongs only in the cgo desktop entry and ui", goos, d)
				}
			}
		})
	}
}

// TestLayerDeps checks that no package imports one above it.
func TestLayerDeps(t *testing.T) {
	banned := map[string][]string{
		"discovery": {"peer", "cmd/", "internal/control", "ui"},
		"peer":      {"cmd/", "internal/control", "ui"},
		"ui":        {"cmd/", "internal/control"},
		// The relay is below the engine: a server build needs no LAN engine.
		"relay":       {"peer", "discovery", "transfer", "cmd/", "internal/control", "ui", "fyne.io/"},
		"relay/store": {"relay", "peer", "cmd/", "ui"},
	}
	for pkg, bad := range banned {
		for _, d := range goList(t, nil, "github.com/lanchat/lanchat/"+pkg) {
			if pkg == "relay/store" && d == "github.com/lanchat/lanchat/relay/store" {
				continue
			}
			for _, b := range bad {
				if strings.HasPrefix(d, "github.com/lanchat/lanchat/"+b) || strings.HasPrefix(d, b) && strings.Contains(b, ".") {
					t.Errorf("%s imports %s: imports flow cmd -> ui -> peer -> discovery -> ipmsg", pkg, d)
				}
			}
		}
	}
}

// TestUIDeps checks that the window holds no protocol logic: ui imports
// none of the protocol packages (it may use peer's types, which import them
// in turn), and never fyne's app package, so its tests run headless.
func TestUIDeps(t *testing.T) {
	bad := map[string]string{
		"github.com/lanchat/lanchat/ipmsg":     "packets are the engine's business",
		"github.com/lanchat/lanchat/discovery": "presence is the engine's business",
		"github.com/lanchat/lanchat/transfer":  "file transfer is the engine's business",
		"github.com/lanchat/lanchat/relay":     "the relay is the engine's business",
		"fyne.io/fyne/v2/app":                  "ui takes a fyne.App so its tests run headless; only cmd/lanchat creates one",
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-f", `{{join .Imports " "}}`,
		"github.com/lanchat/lanchat/ui")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, d := range strings.Fields(string(out)) {
		if why, ok := bad[d]; ok || strings.HasPrefix(d, "github.com/lanchat/lanchat/relay/") {
			t.Errorf("ui imports %s: %s", d, why)
		}
	}
}

func goList(t *testing.T, env []string, pkg string) []string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "list", "-deps", pkg)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}
