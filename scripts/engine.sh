#!/usr/bin/env bash
# make engine: ensure a Docker engine (API >= 1.41) with the gVisor runtime `runsc` registered.
# Idempotent. On Debian as root it installs and starts what is missing; elsewhere it prints what
# the operator must do and fails.
#
# make engine ENGINE=podman: ensure Podman's Docker-compatible API service (rootful) answers at
# unix:///run/podman/podman.sock, with catatonit (for Init) and runsc registered. It runs beside
# dockerd and never touches it.
set -euo pipefail

ENGINE=${ENGINE:-docker}
PODMAN_SOCK=${AIRLOCK_PODMAN_SOCK:-/run/podman/podman.sock}
PODMAN_LOG=/var/log/airlock-podman.log
PODMAN_PID=/run/airlock-podman.pid
CONTAINERS_CONF=${AIRLOCK_CONTAINERS_CONF:-/etc/containers/containers.conf}
RUNSC_WRAPPER=${AIRLOCK_RUNSC_WRAPPER:-/usr/local/lib/airlock/runsc-podman}

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

# ---------------------------------------------------------------------------------------------
# Podman

podman_up() {
    [ -S "$PODMAN_SOCK" ] &&
        curl -fsS --max-time 10 --unix-socket "$PODMAN_SOCK" http://d/_ping >/dev/null 2>&1
}

podman_runsc_registered() {
    curl -fsS --max-time 10 --unix-socket "$PODMAN_SOCK" http://d/info 2>/dev/null |
        grep -q "\"runsc\":{\"path\":\"$RUNSC_WRAPPER\""
}

install_podman() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    # Debian's podman only recommends catatonit, but HostConfig.Init needs it.
    dpkg -s catatonit >/dev/null 2>&1 || missing+=(catatonit)
    command -v curl >/dev/null || missing+=(curl)
    command -v runsc >/dev/null || missing+=(runsc)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Register runsc as an OCI runtime in containers.conf ([engine.runtimes]), keeping what is
# there. Podman passes no per-runtime flags, so runsc is reached through a wrapper adding
# --network=none (as daemon.json's runtimeArgs do for dockerd). Prints "changed" when the file
# was written.
register_podman_runsc() {
    local runsc_path
    runsc_path=$(command -v runsc)
    mkdir -p "$(dirname "$CONTAINERS_CONF")" "$(dirname "$RUNSC_WRAPPER")"
    local want
    want=$(printf '#!/bin/sh\n# airlock: runsc for podman, with no network stack of its own\nexec %s --network=none "$@"\n' "$runsc_path")
    if [ "$(cat "$RUNSC_WRAPPER" 2>/dev/null)" != "$want" ]; then
        printf '%s\n' "$want" >"$RUNSC_WRAPPER.tmp" && chmod 0755 "$RUNSC_WRAPPER.tmp" &&
            mv -f "$RUNSC_WRAPPER.tmp" "$RUNSC_WRAPPER"
    fi
    python3 - "$RUNSC_WRAPPER" "$CONTAINERS_CONF" <<'PY'
import os, re, sys
runsc, path = sys.argv[1], sys.argv[2]
text = open(path).read() if os.path.exists(path) else ""
line = f'runsc = ["{runsc}"]\n'
if line in text:
    sys.exit(0)
if re.search(r'^\s*runsc\s*=', text, re.M):
    text = re.sub(r'^\s*runsc\s*=.*\n?', line, text, count=1, flags=re.M)
    line = ""
if not line:
    pass
elif re.search(r'^\[engine\.runtimes\]\s*$', text, re.M):
    text = re.sub(r'^(\[engine\.runtimes\]\s*\n)', lambda m: m.group(1) + line, text, count=1, flags=re.M)
else:
    text = text + ("" if text.endswith("\n") or not text else "\n") + "\n[engine.runtimes]\n" + line
tmp = path + ".airlock.tmp"
with open(tmp, "w") as f:
    f.write(text)
os.replace(tmp, path)
print("changed")
PY
}

start_podman() {
    say "starting podman system service in the background (socket: $PODMAN_SOCK, log: $PODMAN_LOG)"
    mkdir -p "$(dirname "$PODMAN_SOCK")"
    rm -f "$PODMAN_SOCK"
    # From /: when a container is OOM-killed, Podman 4.3 writes an empty `oom` file into the
    # service's working directory, which was the checkout make ran from.
    (
        cd /
        nohup setsid podman system service --time=0 "unix://$PODMAN_SOCK" >>"$PODMAN_LOG" 2>&1 </dev/null &
        echo $! >"$PODMAN_PID"
    )
}

wait_podman() {
    local i
    for ((i = 0; i < WAIT_SECS; i++)); do
        podman_up && return 0
        sleep 1
    done
    say "podman did not answer within ${WAIT_SECS}s; last lines of $PODMAN_LOG:"
    tail -n 20 "$PODMAN_LOG" >&2 || true
    exit 1
}

podman_version() {
    curl -fsS --max-time 10 --unix-socket "$PODMAN_SOCK" http://d/version |
        python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["Version"], "API", v["ApiVersion"])'
}

podman_main() {
    if podman_up && podman_runsc_registered && dpkg -s catatonit >/dev/null 2>&1 &&
        [ -x "$RUNSC_WRAPPER" ]; then
        say "podman ready ($(podman_version)) at unix://$PODMAN_SOCK"
        return 0
    fi
    is_debian_root || {
        cat >&2 <<MSG
engine: podman does not answer at $PODMAN_SOCK, and this is not Debian as root.
engine: install podman (>= 4.3) and catatonit, add runsc under [engine.runtimes] in
engine: $CONTAINERS_CONF, then run: podman system service --time=0 unix://$PODMAN_SOCK
MSG
        exit 1
    }
    install_podman
    local changed
    changed=$(register_podman_runsc)
    if podman_up && [ -n "$changed" ]; then
        # The service reads containers.conf at start: restart the one this script started.
        say "restarting the podman service to register runsc"
        [ -s "$PODMAN_PID" ] && kill "$(cat "$PODMAN_PID")" 2>/dev/null || true
        sleep 1
    fi
    podman_up || start_podman
    wait_podman
    podman_runsc_registered || { say "runsc not registered with podman; see $CONTAINERS_CONF"; exit 1; }
    say "podman ready ($(podman_version)) at unix://$PODMAN_SOCK"
}

# Run when executed; only define the functions when sourced (tests call register_runsc).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case $ENGINE in
        docker) main "$@" ;;
        podman) podman_main "$@" ;;
        *) say "unknown ENGINE=$ENGINE (known: docker podman)"; exit 1 ;;
    esac
fi
