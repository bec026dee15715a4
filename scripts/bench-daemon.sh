#!/usr/bin/env bash
# Daemon benchmark (called by `make bench`): throughput of 50 trivial tasks through the daemon
# at concurrency 1, 2, 4 against a raw loop of the same `docker run --rm` containers in the same
# run, and the daemon's RSS idle and with 1000 queued tasks. Goals: ratio >= 0.8 at every
# concurrency; RSS < 30 MiB idle, < 60 MiB with 1000 queued. BENCH_STRICT=1 exits 1 on a miss.
#
# Needs root, the engine (`make engine`) and the test image (`make images`).
set -euo pipefail
cd "$(dirname "$0")/.."

TASKS=${BENCH_TASKS:-50}
QUEUED=${BENCH_QUEUED:-1000}
IMAGE=airlock/sandbox-test:latest
BIN=./target/release/airlock

docker image inspect "$IMAGE" >/dev/null 2>&1 || { echo "image $IMAGE missing: run \`make images\`" >&2; exit 2; }
cargo build --release --locked -q
WORK=$(mktemp -d /tmp/airlock-bench.XXXXXX)
DAEMON_PID=""
cleanup() {
  [ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
  grep -o " $WORK[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A one-commit repo and a task that does nothing.
git init -q -b main "$WORK/src" && echo hi > "$WORK/src/README"
git -C "$WORK/src" add -A && git -C "$WORK/src" -c user.name=b -c user.email=b@b commit -qm init
git clone -q --bare "$WORK/src" "$WORK/src.git"
spec() {
  cat > "$WORK/task.toml" <<TOML
title = "bench"
level = "L1"
[repo]
url = "$WORK/src.git"
base = "main"
[issue]
text = "nothing"
[agent]
image = "$IMAGE"
command = ["sh", "-c", "$1"]
TOML
}

now() { date +%s.%N; }
per_min() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n * 60 / s }'; }

raw_run() {  # concurrency
  local t0; t0=$(now)
  seq "$TASKS" | xargs -P "$1" -I{} docker run --rm --network none "$IMAGE" sh -c true >/dev/null
  awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }'
}

start_daemon() {  # concurrency dir
  mkdir -p "$2"
  cat > "$2/airlock.toml" <<TOML
socket = "$2/airlock.sock"
state_dir = "$2/state"
concurrency = $1
[recovery]
sweep = "owned"
TOML
  "$BIN" daemon --config "$2/airlock.toml" 2>"$2/daemon.log" &
  DAEMON_PID=$!
  export AIRLOCK_SOCKET="$2/airlock.sock"
  for _ in $(seq 100); do "$BIN" status >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "daemon did not start:" >&2; cat "$2/daemon.log" >&2; exit 4
}

stop_daemon() {
  kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true; DAEMON_PID=""
}

open_tasks() {
  local q r
  q=$("$BIN" status --json --state queued --limit 10000 | grep -o '"id"' | wc -l)
  r=$("$BIN" status --json --state running --limit 10000 | grep -o '"id"' | wc -l)
  echo $((q + r))
}

daemon_run() {  # concurrency
  local dir="$WORK/d$1" t0
  start_daemon "$1" "$dir"
  t0=$(now)
  for _ in $(seq "$TASKS"); do "$BIN" submit "$WORK/task.toml" >/dev/null; done
  while [ "$(open_tasks)" -gt 0 ]; do sleep 0.1; done
  local secs; secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
  local green; green=$("$BIN" status --json --state green --limit 10000 | grep -o '"id"' | wc -l)
  stop_daemon
  [ "$green" -eq "$TASKS" ] || { echo "only $green of $TASKS tasks green" >&2; exit 1; }
  echo "$secs"
}

rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

spec true
miss=0
rows=()
for c in 1 2 4; do
  raw=$(raw_run "$c")
  dmn=$(daemon_run "$c")
  raw_pm=$(per_min "$TASKS" "$raw"); dmn_pm=$(per_min "$TASKS" "$dmn")
  ratio=$(awk -v a="$dmn_pm" -v b="$raw_pm" 'BEGIN { printf "%.2f", a / b }')
  ok=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "ok" : "MISS" }')
  [ "$ok" = ok ] || miss=1
  rows+=("$(printf '%-12s %14s %17s %7s  %s' "$c" "$raw_pm" "$dmn_pm" "$ratio" "$ok")")
done

# RSS: a fresh idle daemon, then 1000 tasks queued behind one that sleeps.
start_daemon 1 "$WORK/rss"
sleep 1
idle=$(rss_mib "$DAEMON_PID")
spec "sleep 600"; "$BIN" submit "$WORK/task.toml" >/dev/null
spec true
seq "$QUEUED" | xargs -P 4 -I{} "$BIN" submit "$WORK/task.toml" >/dev/null
queued_now=$("$BIN" status --json --state queued --limit 10000 | grep -o '"id"' | wc -l)
sleep 1
loaded=$(rss_mib "$DAEMON_PID")
stop_daemon
idle_ok=$(awk -v r="$idle" 'BEGIN { print (r < 30) ? "ok" : "MISS" }')
loaded_ok=$(awk -v r="$loaded" 'BEGIN { print (r < 60) ? "ok" : "MISS" }')
[ "$idle_ok" = ok ] && [ "$loaded_ok" = ok ] || miss=1

echo
echo "airlock daemon benchmark: $TASKS tasks of \`sh -c true\` in $IMAGE (L1, no gate); raw = docker run --rm --network none"
printf '%-12s %14s %17s %7s  %s\n' concurrency "raw tasks/min" "daemon tasks/min" ratio "goal >= 0.8"
printf '%s\n' "${rows[@]}"
printf '%-32s %8s MiB  %s\n' "daemon RSS idle" "$idle" "goal < 30: $idle_ok"
printf '%-32s %8s MiB  %s\n' "daemon RSS, $queued_now queued" "$loaded" "goal < 60: $loaded_ok"
if [ "$miss" = 1 ] && [ "${BENCH_STRICT:-0}" = 1 ]; then exit 1; fi
