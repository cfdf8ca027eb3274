# lanchat: `make run` opens the desktop app, `make test` runs every test. Both
# install what they need (Go modules, and as root the Debian packages the
# multi-host tests use).

GO      ?= go
ARGS    ?=
BIN     := bin/lanchat
GUI     := bin/lanchat-gui
PKGS    := ./...
# The race detector needs cgo; CGO_ENABLED=0 make test runs without it.
RACE    ?= $(if $(filter 0,$(CGO_ENABLED)),,-race)

.PHONY: run gui build windows test deps bench fuzz clean

# The desktop app (`make run ARGS=serve` runs a headless node instead).
run: gui
	./$(GUI) $(ARGS)

# The desktop build: cgo, fyne, GL and X11 (scripts/debian-deps.sh installs
# the headers as root). A cold build of fyne takes minutes.
gui: deps
	$(GO) mod download
	CGO_ENABLED=1 $(GO) build -ldflags="-s -w" -o $(GUI) ./cmd/lanchat

# The headless static binary: CLI and node, no desktop libraries.
build:
	$(GO) mod download
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/lanchat

# Both Windows binaries, cross-built from Linux, after vetting every package
# for Windows (the namespace tests are Linux-only): bin/lanchat.exe, the
# headless CLI and node (no cgo), and bin/lanchat-gui.exe, the desktop app
# (cgo with Debian's mingw-w64, which scripts/debian-deps.sh installs; a
# cold build of fyne takes minutes). -H windowsgui: a double-clicked app
# opens no console window; scripts use lanchat.exe.
windows: deps
	$(GO) mod download
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) vet $(PKGS)
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o bin/lanchat.exe ./cmd/lanchat
	GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc \
		$(GO) build -ldflags="-s -w -H windowsgui" -o bin/lanchat-gui.exe ./cmd/lanchat

# Debian packages for the network-namespace tests and the desktop build (as
# root; skipped otherwise).
deps:
	@scripts/debian-deps.sh

test: deps
	$(GO) mod download
	$(GO) vet $(PKGS)
	$(GO) test $(RACE) -count=1 -timeout 20m $(PKGS)

# Benchmarks print each figure beside its baseline from the same run.
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

fuzz:
	@for f in $$($(GO) test -list 'Fuzz.*' ./ipmsg | grep ^Fuzz); do \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s ./ipmsg || exit 1; done

clean:
	rm -rf bin
