#!/usr/bin/env bash
# make bench: airlock vs raw engine (scripts/bench.py), then the daemon's throughput and RSS,
# then model egress: the proxy's (and forwarder's) added latency and 10 MB stream throughput
# against a direct connection to the same server (benches/model_proxy.rs); then the shared queue
# at N = 1, 10, 100 simulated runners on a real PostgreSQL against a bare SKIP LOCKED loop
# (benches/shared_queue.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/bench.py
python3 scripts/bench-flood.py
if [ -f scripts/bench-daemon.sh ]; then bash scripts/bench-daemon.sh; fi
cargo bench --locked --bench model_proxy
cargo bench --locked --bench shared_queue
