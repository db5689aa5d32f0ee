# Everything a fresh machine with Docker needs is installed here: protoc (for etcd-client),
# Debian's archive keyring (to fetch the etcd packages with apt-get download),
# cargo-nextest, the etcd images (built locally, no registry) and, for the tests, an
# S3-compatible server.
SHELL := /bin/bash
BIN := target/release/etcd-drill
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSIONS ?= 3.5 3.4

.PHONY: deps build install image tools test lint drill bench bench-verify soak cleanup

deps:
	@command -v docker >/dev/null || { echo "etcd-drill needs Docker: install Docker Engine and start it" >&2; exit 2; }
	@.ci/docker-up
	@[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq debian-archive-keyring >/dev/null; }
	@command -v protoc >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq protobuf-compiler >/dev/null; }
	@{ command -v iptables >/dev/null && command -v nsenter >/dev/null; } || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq iptables util-linux >/dev/null; }
	@cargo nextest --version >/dev/null 2>&1 || cargo install --locked cargo-nextest

build: deps
	cargo build --release --bins

# etcd-drill on your PATH (~/.cargo/bin), so every command in README.md runs as written.
install: deps
	cargo install --path . --locked

# Idempotent: present images are kept.
image: build
	@for v in $(VERSIONS); do $(BIN) image build --version $$v || exit $$?; done

# A real S3-compatible server for the tests (s3s-fs from crates.io, SigV4 checked), built
# into target/tools once; the tests start their own on a free loopback port;
# and headless Chromium from Debian's packages, which renders every shipped scenario's
# report.html to check it is not blank.
tools: deps
	.ci/s3-server install
	@command -v chromium-headless-shell >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium-headless-shell fonts-dejavu-core >/dev/null; }

test: image tools
	INSTA_UPDATE=$${INSTA_UPDATE:-no} cargo nextest run --profile ci

# The main job: the default DR drill (both seed procedures and the fault-tolerance table),
# reports under reports/<UTC timestamp>-<scenario>/. Exit 1 if any expectation or gate failed.
DRILLS ?= scenarios/seed-etcdctl-tls-restore.toml scenarios/seed-rke-replace-node.toml scenarios/fault-tolerance-table.toml
drill: image
	$(BIN) drill $(DRILLS) --report-dir reports

# BENCH picks sections of the drill bench (the history checker's bench and the workload's
# drills run after it); `make bench-verify` is the 2 GiB verify-snapshot
# bench (local file vs loopback S3; tens of minutes), not part of `make bench`'s default.
bench: image
	cargo bench --bench drill -- $(BENCH)
	cargo bench --bench history
	cargo bench --bench workload

bench-verify: image tools
	cargo bench --bench verify -- $(BENCH_VERIFY)

# Every shipped scenario RUNS times (default 5), round robin, each with its own seed:
# reports/bench/soak.{json,md}. Not part of `make test` (tens of minutes).
RUNS ?= 5
soak: image
	cargo bench --bench soak -- --runs $(RUNS)

# Formatting and clippy, warnings as errors (CI runs this after the tests).
lint: deps
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

cleanup:
	$(BIN) cleanup
