# lanchat: `make run` starts lanchat, `make test` runs every test. Both
# install what they need (Go modules, and as root the Debian packages the
# multi-host tests use).

GO      ?= go
ARGS    ?= serve
BIN     := bin/lanchat
PKGS    := ./...

.PHONY: run build test deps bench fuzz clean

run: build
	./$(BIN) $(ARGS)

# The headless static binary: CLI and node, no desktop libraries.
build:
	$(GO) mod download
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/lanchat

# Debian packages for the network-namespace tests (as root; skipped otherwise).
deps:
	@scripts/debian-deps.sh

test: deps
	$(GO) mod download
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# Benchmarks print each figure beside its baseline from the same run.
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

fuzz:
	@for f in $$($(GO) test -list 'Fuzz.*' ./ipmsg | grep ^Fuzz); do \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s ./ipmsg || exit 1; done

clean:
	rm -rf bin
