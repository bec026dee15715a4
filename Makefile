# airlock — see README.md. Two commands do everything on a fresh Debian machine:
#   make demo    run the demo task end to end
#   make test    set up the engine and images, build, and run every test against the real engine
SHELL := /bin/bash
CARGO ?= cargo
ARTIFACTS ?= artifacts

.PHONY: all engine images engine-podman images-podman demo-repo services build test bench demo lint clean-state

all: build

ENGINE ?= docker
PODMAN_HOST ?= unix:///run/podman/podman.sock

engine:
	@ENGINE=$(ENGINE) bash scripts/engine.sh

images: engine
	@ENGINE=$(ENGINE) bash scripts/images.sh

# Podman's Docker-compatible service beside dockerd, and the same images in its storage.
engine-podman:
	@ENGINE=podman bash scripts/engine.sh

images-podman: images engine-podman
	@ENGINE=podman bash scripts/images.sh

demo-repo:
	@bash scripts/demo-repo.sh

services:
	@bash scripts/test-services.sh

build:
	$(CARGO) build --release --locked

demo: engine images demo-repo build
	@echo "== airlock run examples/demo/task.toml (mode fix-on-retry)" >&2
	@./target/release/airlock run examples/demo/task.toml --artifacts $(ARTIFACTS) -v; \
	  code=$$?; echo "exit code: $$code" >&2; exit $$code

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

test: engine images demo-repo images-podman services
	$(CARGO) build --locked --all-targets
	$(CARGO) test --locked --no-fail-fast -- --test-threads=2
	@echo "== hardening and limits again, against Podman at $(PODMAN_HOST)" >&2
	DOCKER_HOST=$(PODMAN_HOST) $(CARGO) test --locked --no-fail-fast --test hardening --test limits -- --test-threads=2

bench: engine images demo-repo images-podman services build
	@bash scripts/bench.sh
