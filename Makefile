# Everything a fresh machine with Docker needs is installed here: protoc (for etcd-client),
# cargo-nextest, and the etcd images (built locally, no registry).
SHELL := /bin/bash
BIN := target/release/etcd-drill
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSIONS ?= 3.5 3.4

.PHONY: deps build image test drill bench cleanup

deps:
	@command -v docker >/dev/null || { echo "etcd-drill needs Docker: install Docker Engine and start it" >&2; exit 2; }
	@command -v protoc >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq protobuf-compiler >/dev/null; }
	@cargo nextest --version >/dev/null 2>&1 || cargo install --locked cargo-nextest

build: deps
	cargo build --release --bins

# Idempotent: present images are kept.
image: build
	@for v in $(VERSIONS); do $(BIN) image build --version $$v || exit $$?; done

test: image
	INSTA_UPDATE=$${INSTA_UPDATE:-no} cargo nextest run --profile ci

# The main job: a default DR drill that writes reports under reports/.
drill: image
	$(BIN) cluster up --size 3 --name make-drill --json
	$(BIN) cluster down make-drill

bench: image
	cargo bench --bench drill -- $(BENCH)

cleanup:
	$(BIN) cleanup
