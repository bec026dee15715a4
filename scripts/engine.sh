#!/usr/bin/env bash
# make engine: ensure a Docker engine (API >= 1.41) with the gVisor runtime `runsc` registered.
# Idempotent. On Debian as root it installs and starts what is missing; elsewhere it prints what
# the operator must do and fails.
set -euo pipefail

DOCKER_SOCK=${DOCKER_HOST:-unix:///var/run/docker.sock}
LOG=/var/log/airlock-dockerd.log
WAIT_SECS=${AIRLOCK_ENGINE_WAIT:-60}
DAEMON_JSON=${AIRLOCK_DAEMON_JSON:-/etc/docker/daemon.json}

say() { printf 'engine: %s\n' "$*" >&2; }

engine_up() { docker info >/dev/null 2>&1; }

# runsc with --host-uds=open: model egress binds a host unix socket into the sandbox.
runsc_registered() {
    docker info --format '{{json .Runtimes}}' 2>/dev/null | grep '"runsc"' | grep -q 'host-uds=open'
}

is_debian_root() {
    [ "$(id -u)" = 0 ] && [ -r /etc/os-release ] && grep -q '^ID=debian' /etc/os-release
}

manual_instructions() {
    cat >&2 <<'MSG'
engine: no Docker engine answers, and this is not Debian as root, so airlock will not install one.
engine: do this, then run `make engine` again:
  1. install Docker >= 20.10 (API 1.41) and gVisor's runsc;
  2. in /etc/docker/daemon.json add
       "runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--host-uds=open"]}}
  3. start dockerd (e.g. `systemctl start docker`) and check `docker info` answers.
MSG
    exit 1
}

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v runsc >/dev/null || missing+=(runsc)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
    command -v git >/dev/null || missing+=(git)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Merge runsc into daemon.json without clobbering other keys an operator set.
register_runsc() {
    local runsc_path
    runsc_path=$(command -v runsc)
    mkdir -p "$(dirname "$DAEMON_JSON")"
    python3 - "$runsc_path" "$DAEMON_JSON" <<'PY'
import json, os, sys
path = sys.argv[2]
cfg = {}
if os.path.exists(path):
    with open(path) as f:
        text = f.read().strip()
    cfg = json.loads(text) if text else {}
want = {"path": sys.argv[1], "runtimeArgs": ["--network=none", "--host-uds=open"]}
runtimes = cfg.setdefault("runtimes", {})
if runtimes.get("runsc") != want:
    runtimes["runsc"] = want
    tmp = path + ".airlock.tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    print("changed")
PY
}

start_dockerd() {
    say "starting dockerd in the background (log: $LOG)"
    if command -v containerd >/dev/null && ! pgrep -x containerd >/dev/null; then
        nohup containerd >>/var/log/airlock-containerd.log 2>&1 &
        sleep 1
    fi
    local args=()
    pgrep -x containerd >/dev/null && args+=(--containerd=/run/containerd/containerd.sock)
    nohup setsid dockerd "${args[@]}" >>"$LOG" 2>&1 </dev/null &
}

wait_up() {
    local i
    for ((i = 0; i < WAIT_SECS; i++)); do
        engine_up && return 0
        sleep 1
    done
    say "dockerd did not answer within ${WAIT_SECS}s; last lines of $LOG:"
    tail -n 20 "$LOG" >&2 || true
    exit 1
}

main() {
    if engine_up && runsc_registered; then
        say "ready ($(docker version --format '{{.Server.Version}} API {{.Server.APIVersion}}'))"
        return 0
    fi
    is_debian_root || { engine_up && { say "engine answers but runtime runsc is not registered"; manual_instructions; }; manual_instructions; }
    install_packages
    local changed
    changed=$(register_runsc)
    if engine_up; then
        if [ -n "$changed" ] || ! runsc_registered; then
            say "reloading dockerd to register runsc"
            # Only the engine behind /var/run/docker.pid: other dockerds on the host (tests
            # start their own) are not ours to reload. SIGHUP reloads runtimes; containers keep running.
            if [ -r /var/run/docker.pid ]; then
                kill -HUP "$(cat /var/run/docker.pid)" || true
            else
                pkill -HUP -x dockerd || true
            fi
            sleep 2
        fi
    else
        start_dockerd
    fi
    wait_up
    runsc_registered || { say "runsc still not registered after start; see $LOG"; exit 1; }
    say "ready ($(docker version --format '{{.Server.Version}} API {{.Server.APIVersion}}'))"
}

# Run when executed; only define the functions when sourced (tests call register_runsc).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
