# airlock — see README.md. Two commands do everything on a fresh Debian machine:
#   make demo    run the demo task end to end
#   make test    set up the engine and images, build, and run every test against the real engine
SHELL := /bin/bash
CARGO ?= cargo
ARTIFACTS ?= artifacts

.PHONY: all engine images demo-repo build test bench demo lint clean-state

all: build

engine:
	@bash scripts/engine.sh

images: engine
	@bash scripts/images.sh

demo-repo:
	@bash scripts/demo-repo.sh

build:
	$(CARGO) build --release --locked

demo: engine images demo-repo build
	@echo "== airlock run examples/demo/task.toml (mode fix-on-retry)" >&2
	@./target/release/airlock run examples/demo/task.toml --artifacts $(ARTIFACTS) -v; \
	  code=$$?; echo "exit code: $$code" >&2; exit $$code

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

test: engine images demo-repo
	$(CARGO) build --locked --all-targets
	$(CARGO) test --locked -- --test-threads=2

bench: engine images demo-repo build
	@bash scripts/bench.sh
