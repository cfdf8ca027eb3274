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

.PHONY: run gui build test deps bench fuzz clean

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
