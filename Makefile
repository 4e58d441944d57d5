# Banter. The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# Seconds per fuzz target: a short run in `make test`, a long one in `make fuzz`.
FUZZ_SMOKE_SECONDS ?= 30
FUZZ_SECONDS ?= 600
WEB_SOURCES := $(shell find web/src web/index.html web/package.json web/vite.config.ts -type f 2>/dev/null)

.PHONY: run test web web-check rust-check rust-test fuzz fuzz-smoke services e2e e2e-deps screenshots soak clean

## make run: build the web client and Banter, and serve on http://127.0.0.1:8000 (SQLite in ./data)
run: web
	$(CARGO) run --release -- serve

## make test: every check — formatting, lints, unit and integration tests on SQLite and PostgreSQL, web tests
test: services rust-check web-check rust-test fuzz-smoke e2e

services:
	@scripts/ensure-services.sh

rust-check:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

rust-test: services web/dist/index.html
	$(CARGO) test --workspace --all-targets

## make fuzz-smoke: each fuzz target for FUZZ_SMOKE_SECONDS on a copy of its seed corpus (nightly)
# web/dist first: Banter embeds it, and its build script reruns (so every fuzz build
# rebuilds Banter) while it is missing.
fuzz-smoke: web/dist/index.html
	FUZZ_BUILD=dev scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)

## make fuzz: each fuzz target for FUZZ_SECONDS, keeping what it learns in fuzz/target/corpus
fuzz: web/dist/index.html
	FUZZ_KEEP_CORPUS=1 scripts/fuzz.sh $(FUZZ_SECONDS)

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && npm run build

web: web/dist/index.html

web-check: web/node_modules/.package-lock.json
	cd web && npm run typecheck && npm run lint && npm test

e2e-deps:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# Browser tests against a real Banter; their screenshots go to target/ (see `screenshots`).
e2e: e2e-deps web
	$(CARGO) build --workspace --all-targets
	cd web && BANTER_BIN=../target/debug/banter SCREENSHOT_DIR=../target/e2e-screenshots npm run e2e

## make screenshots: refresh docs/screenshots from a browser run
screenshots: e2e-deps web
	$(CARGO) build --workspace --all-targets
	cd web && BANTER_BIN=../target/debug/banter npm run e2e

## make soak: 20 minutes of traffic with connection churn; RSS and open files must stay flat
soak: web
	$(CARGO) build --release -p banter -p loadgen
	BIN=target/release bench/loadgen/soak.sh

clean:
	$(CARGO) clean
	rm -rf web/dist web/node_modules
