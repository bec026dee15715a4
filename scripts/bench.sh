#!/usr/bin/env bash
# make bench: airlock vs raw engine (scripts/bench.py), then the daemon's throughput and RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/bench.py
python3 scripts/bench-flood.py
if [ -f scripts/bench-daemon.sh ]; then bash scripts/bench-daemon.sh; fi
