#!/usr/bin/env bash
# make images: build airlock's local images without any registry. Idempotent.
#
#   airlock/sandbox-test:latest  FROM scratch + Debian's static busybox (hardening tests)
#   airlock/demo:latest          debootstrapped bookworm (python3, pytest, git) + demo-agent
#   airlock/agents:latest        airlock/demo + the real agent CLIs (Codex CLI, Claude Code),
#                                installed with npm on the host (pinned) and copied in
#
# Each image is labelled airlock.inputs=<sha256 of its inputs>; an image whose label matches
# is left alone. The debootstrap rootfs is cached as a tarball under $AIRLOCK_CACHE
# (default /var/cache/airlock), keyed by suite, variant, packages and the cleanup code.
#
# Environment: AIRLOCK_CACHE, AIRLOCK_DEBIAN_MIRROR (default: the mirror this machine's apt
# sources name, see scripts/apt-mirror.sh),
# BUSYBOX (path of a static busybox; default: /bin/busybox from Debian's busybox-static).
# ENGINE=podman: also copy each image into Podman's storage (`docker save | podman load`), skipped
# when Podman already holds an image with the same airlock.inputs label.
# CODEX_VERSION, CLAUDE_CODE_VERSION: the npm versions of @openai/codex and
# @anthropic-ai/claude-code that airlock/agents holds. ENGINE=podman skips airlock/agents (the
# real-agent tests run on dockerd; 700 MB is not worth copying).
# Usage: scripts/images.sh [sandbox-test|demo|agents ...]   (default: all three)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${AIRLOCK_CACHE:-/var/cache/airlock}
# shellcheck source=scripts/apt-mirror.sh
source "$ROOT/scripts/apt-mirror.sh"
MIRROR=                           # resolved by debian_mirror when debootstrap needs it
export DOCKER_BUILDKIT=0          # the classic builder: FROM scratch / local images, no pulls

DEMO_SUITE=bookworm
DEMO_VARIANT=minbase
DEMO_PACKAGES=python3,python3-pytest,git

CODEX_VERSION=${CODEX_VERSION:-0.171.0}
CLAUDE_CODE_VERSION=${CLAUDE_CODE_VERSION:-2.1.332}

say() { printf 'images: %s\n' "$*" >&2; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }

TMPDIRS=()
cleanup() {
    local d m
    for d in "${TMPDIRS[@]+"${TMPDIRS[@]}"}"; do
        # debootstrap may leave proc/sys mounted inside an interrupted rootfs: unmount first,
        # and never let rm cross into another file system.
        if [ -r /proc/mounts ]; then
            awk -v p="$d/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r |
                while read -r m; do umount -l "$m" 2>/dev/null || true; done
        fi
        rm -rf --one-file-system "$d"
    done
}
trap cleanup EXIT

# new_tmp VAR: make a temp dir, removed on exit, and store its path in VAR.
new_tmp() {
    local d
    d=$(mktemp -d "${TMPDIR:-/tmp}/airlock-images.XXXXXX")
    TMPDIRS+=("$d")
    printf -v "$1" '%s' "$d"
}

sha() { sha256sum | cut -d' ' -f1; }

# Mode, path and content hash of every file under a directory, in a stable order.
hash_dir() {
    (cd "$1" && find . -type f -printf '%m %p\n' | LC_ALL=C sort |
        while read -r mode path; do
            printf '%s %s %s\n' "$mode" "$path" "$(sha256sum <"$path" | cut -d' ' -f1)"
        done)
}

current_label() {
    docker image inspect --format '{{ index .Config.Labels "airlock.inputs" }}' "$1" 2>/dev/null || true
}

image_id() { docker image inspect --format '{{ .Id }}' "$1" 2>/dev/null || true; }

image_size() {
    docker image inspect --format '{{ .Size }}' "$1" 2>/dev/null |
        awk '{ printf "%.1f MB", $1 / 1000000 }'
}

apt_install() {
    command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] ||
        die "$1 is missing; install Debian's $1 package (needs root and apt-get here)"
    say "installing $1 with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}

# run_logged LOG LABEL CMD...: run CMD with its output in LOG and, while it runs, say how far it
# got every $PROGRESS_EVERY seconds: the elapsed time and the log's last step line (`Step 3/7` of
# docker build, `I: Unpacking ...` of debootstrap). One updating line on a terminal, plain lines
# otherwise (CI logs). Control characters from the log are dropped. Returns CMD's status.
PROGRESS_EVERY=${PROGRESS_EVERY:-10}
run_logged() {
    local log=$1 label=$2 pid t0 rc=0 last next
    shift 2
    t0=$SECONDS
    next=$((t0 + PROGRESS_EVERY))
    "$@" >"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        [ "$SECONDS" -ge "$next" ] || continue
        next=$((SECONDS + PROGRESS_EVERY))
        last=$(grep -aE '^(Step [0-9]+/[0-9]+ :|I: )' "$log" 2>/dev/null | tail -n 1 |
            LC_ALL=C tr -cd '[:print:]' | cut -c1-100 || true)
        if [ -t 2 ]; then
            printf '\r\033[Kimages: %s: %ss %s' "$label" "$((SECONDS - t0))" "$last" >&2
        else
            say "$label: $((SECONDS - t0))s${last:+: $last}"
        fi
    done
    wait "$pid" || rc=$?
    if [ -t 2 ]; then printf '\r\033[K' >&2; fi
    return "$rc"
}

# docker build into NAME:latest with the label, keeping the log unless it fails.
build_image() {
    local name=$1 inputs=$2 ctx=$3 logdir log old new
    shift 3
    new_tmp logdir
    log=$logdir/build.log
    old=$(image_id "$name:latest")
    if ! run_logged "$log" "docker build $name" docker build --rm --force-rm --pull=false \
            --label "airlock.inputs=$inputs" -t "$name:latest" "$@" "$ctx"; then
        tail -n 30 "$log" >&2
        die "docker build of $name failed (last lines above)"
    fi
    new=$(image_id "$name:latest")
    if [ -n "$old" ] && [ "$old" != "$new" ]; then
        docker rmi "$old" >/dev/null 2>&1 || true   # the previous build, if nothing uses it
    fi
}

# ---------------------------------------------------------------------------------------------
# airlock/sandbox-test

find_busybox() {
    local bb=${BUSYBOX:-/bin/busybox}
    if [ -z "${BUSYBOX:-}" ] && command -v dpkg-query >/dev/null &&
        [ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" != "install ok installed" ]; then
        apt_install busybox-static
    fi
    [ -x "$bb" ] || die "no busybox at $bb (install Debian's busybox-static, or set BUSYBOX)"
    if command -v ldd >/dev/null && ldd "$bb" >/dev/null 2>&1; then
        die "$bb is dynamically linked; a FROM scratch image needs a static one (busybox-static)"
    fi
    printf '%s\n' "$bb"
}

build_sandbox_test() {
    local name=airlock/sandbox-test src=$ROOT/images/sandbox-test bb inputs ctx t0
    bb=$(find_busybox)
    inputs=$( {
        echo "sandbox-test v1"
        declare -f build_sandbox_test build_image
        hash_dir "$src"
        echo "busybox $(sha256sum <"$bb" | cut -d' ' -f1)"
    } | sha)
    if [ "$(current_label "$name:latest")" = "$inputs" ]; then
        say "$name up to date"
        return
    fi
    t0=$SECONDS
    new_tmp ctx
    cp -a "$src/." "$ctx/"
    cp "$bb" "$ctx/busybox"
    chmod 0755 "$ctx/busybox"
    build_image "$name" "$inputs" "$ctx"
    say "built $name:latest ($(image_size "$name:latest"), $((SECONDS - t0))s)"
}

# ---------------------------------------------------------------------------------------------
# airlock/demo

# Strip what a sandbox never needs from a debootstrapped rootfs.
slim_rootfs() {
    local r=${1:?}
    [ "$r" != / ] && [ -d "$r/usr" ] || die "slim_rootfs: refusing '$r'"
    # shellcheck disable=SC2115  # r is checked non-empty and not / just above
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old \
        "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
        "$r"/usr/share/locale/* "$r"/usr/share/lintian "$r"/usr/share/linda \
        "$r"/dev/* "$r"/run/* "$r"/tmp/* "$r"/var/tmp/* \
        "$r"/etc/resolv.conf "$r"/etc/hostname "$r"/etc/machine-id
    find "$r"/var/log -type f -delete
    # Keep later `apt-get install`s in derived images slim as well.
    mkdir -p "$r"/etc/dpkg/dpkg.cfg.d
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
        'path-exclude /usr/share/locale/*' >"$r"/etc/dpkg/dpkg.cfg.d/airlock-slim
    printf '%s\n' 'Acquire::Languages "none";' >"$r"/etc/apt/apt.conf.d/90airlock-nolangs
}

# Sets DEMO_TAR to the cached rootfs tarball for KEY, making it with debootstrap if needed.
demo_rootfs_tar() {
    local key=$1 tar=$CACHE/demo-rootfs-$DEMO_SUITE-${1:0:16}.tar work log t0
    DEMO_TAR=$tar
    if [ -s "$tar" ]; then
        say "using cached rootfs $tar"
        return
    fi
    command -v debootstrap >/dev/null || apt_install debootstrap
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    MIRROR=$(debian_mirror) || die "cannot tell which Debian mirror to debootstrap from"
    mkdir -p "$CACHE"
    new_tmp work
    log=$CACHE/debootstrap.log
    say "debootstrap $DEMO_SUITE ($DEMO_VARIANT + $DEMO_PACKAGES) from $MIRROR; takes a few minutes, log: $log"
    t0=$SECONDS
    if ! run_logged "$log" debootstrap debootstrap --variant="$DEMO_VARIANT" \
            --include="$DEMO_PACKAGES" "$DEMO_SUITE" "$work/rootfs" "$MIRROR"; then
        tail -n 20 "$log" >&2
        [ -f "$work/rootfs/debootstrap/debootstrap.log" ] &&
            tail -n 20 "$work/rootfs/debootstrap/debootstrap.log" >&2
        die "debootstrap failed (see $log)"
    fi
    say "debootstrap done in $((SECONDS - t0))s"
    slim_rootfs "$work/rootfs"
    tar --numeric-owner --sort=name -C "$work/rootfs" -cf "$tar.tmp.$$" .
    mv -f "$tar.tmp.$$" "$tar"
    # Older rootfs tarballs (other keys) are not needed any more.
    find "$CACHE" -maxdepth 1 -name "demo-rootfs-*.tar" ! -path "$tar" -delete
}

build_demo() {
    local name=airlock/demo src=$ROOT/images/demo key base tar inputs ctx t0 tag
    key=$( {
        echo "demo-rootfs v1 $DEMO_SUITE $DEMO_VARIANT $DEMO_PACKAGES $(dpkg --print-architecture 2>/dev/null || uname -m)"
        declare -f slim_rootfs
    } | sha)
    base=airlock/demo-base:${key:0:16}
    inputs=$( {
        echo "demo v1 base=$base"
        declare -f build_demo build_image
        hash_dir "$src"
    } | sha)
    if [ "$(current_label "$name:latest")" = "$inputs" ] && [ -n "$(image_id "$base")" ]; then
        say "$name up to date"
        return
    fi
    t0=$SECONDS
    if [ -z "$(image_id "$base")" ]; then
        demo_rootfs_tar "$key"
        tar=$DEMO_TAR
        docker import --message "airlock demo rootfs ($DEMO_SUITE $DEMO_VARIANT + $DEMO_PACKAGES)" \
            "$tar" "$base" >/dev/null || die "docker import of $tar failed"
        say "imported $base ($(image_size "$base"))"
    fi
    for tag in $(docker images --format '{{.Tag}}' airlock/demo-base); do
        [ "airlock/demo-base:$tag" = "$base" ] || docker rmi "airlock/demo-base:$tag" >/dev/null 2>&1 || true
    done
    new_tmp ctx
    cp -a "$src/." "$ctx/"
    build_image "$name" "$inputs" "$ctx" --build-arg "BASE=$base"
    say "built $name:latest ($(image_size "$name:latest"), $((SECONDS - t0))s)"
}

# ---------------------------------------------------------------------------------------------
# airlock/agents

# npm_install DIR PKG@VERSION: install one pinned package (and its platform package) on the host.
npm_install() {
    local log=$1.npm.log
    mkdir -p "$1"
    if ! npm install --prefix "$1" --ignore-scripts --no-audit --no-fund --no-update-notifier \
            --loglevel=error "$2" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "npm install $2 failed (last lines above); the host needs npm and the npm registry"
    fi
}

build_agents() {
    local name=airlock/agents src=$ROOT/images/agents base=airlock/demo:latest inputs ctx npmdir t0 t1
    local arch codex_dir claude_bin
    [ -n "$(image_id "$base")" ] || build_demo
    inputs=$( {
        echo "agents v1 codex=$CODEX_VERSION claude-code=$CLAUDE_CODE_VERSION base=$(current_label "$base")"
        declare -f build_agents npm_install build_image
        hash_dir "$src"
    } | sha)
    if [ "$(current_label "$name:latest")" = "$inputs" ]; then
        say "$name up to date"
        return
    fi
    command -v npm >/dev/null || apt_install npm
    case $(uname -m) in
        x86_64) arch=x64 ;;
        aarch64) arch=arm64 ;;
        *) die "airlock/agents: no Codex/Claude Code build for $(uname -m)" ;;
    esac
    t0=$SECONDS
    new_tmp npmdir
    npm_install "$npmdir/codex" "@openai/codex@$CODEX_VERSION"
    npm_install "$npmdir/claude" "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
    codex_dir=$(find "$npmdir/codex/node_modules/@openai/codex-linux-$arch/vendor" -maxdepth 1 \
        -type d -name '*-linux-musl' | head -n 1)
    claude_bin=$npmdir/claude/node_modules/@anthropic-ai/claude-code-linux-$arch/claude
    [ -x "$codex_dir/bin/codex" ] || die "npm's @openai/codex@$CODEX_VERSION has no linux-$arch binary"
    [ -x "$codex_dir/codex-path/rg" ] || die "npm's @openai/codex@$CODEX_VERSION has no rg"
    [ -x "$claude_bin" ] || die "npm's @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION has no linux-$arch binary"
    t1=$SECONDS
    say "npm install of codex $CODEX_VERSION and claude-code $CLAUDE_CODE_VERSION: $((t1 - t0))s"
    new_tmp ctx
    cp -a "$src/." "$ctx/"
    # Hard links where the temp dirs share a file system (no 700 MB copy), copies otherwise.
    cp -l "$codex_dir/bin/codex" "$ctx/codex" 2>/dev/null || cp "$codex_dir/bin/codex" "$ctx/codex"
    cp -l "$codex_dir/codex-path/rg" "$ctx/rg" 2>/dev/null || cp "$codex_dir/codex-path/rg" "$ctx/rg"
    cp -l "$claude_bin" "$ctx/claude" 2>/dev/null || cp "$claude_bin" "$ctx/claude"
    build_image "$name" "$inputs" "$ctx" --build-arg "BASE=$base" --network none
    say "built $name:latest ($(image_size "$name:latest"), $((SECONDS - t0))s: npm $((t1 - t0))s, build $((SECONDS - t1))s)"
}

# ---------------------------------------------------------------------------------------------
# Podman: the same images, copied from dockerd.

podman_label() {
    podman image inspect --format '{{ index .Labels "airlock.inputs" }}' "$1" 2>/dev/null || true
}

copy_to_podman() {
    local name=$1:latest want t0
    command -v podman >/dev/null || die "podman is not installed; run \`make engine ENGINE=podman\`"
    want=$(current_label "$name")
    [ -n "$want" ] || die "$name is not built on dockerd"
    if [ "$(podman_label "$name")" = "$want" ]; then
        say "$name up to date in podman"
        return
    fi
    t0=$SECONDS
    say "copying $name into podman ($(image_size "$name"))"
    docker save "$name" | podman load -q >/dev/null || die "podman load of $name failed"
    podman image prune -f >/dev/null 2>&1 || true   # the previous copy, now untagged
    say "loaded $name into podman ($((SECONDS - t0))s)"
}

# ---------------------------------------------------------------------------------------------

command -v docker >/dev/null || die "the docker CLI is not installed; run \`make engine\`"
docker info >/dev/null 2>&1 || die "no container engine answers (docker info failed); run \`make engine\`"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sandbox-test demo agents)

# One build at a time per cache (concurrent `make images`).
mkdir -p "$CACHE"
if command -v flock >/dev/null; then
    exec 9>"$CACHE/images.lock"
    flock 9
fi

for t in "${targets[@]}"; do
    case $t in
        sandbox-test) build_sandbox_test ;;
        demo) build_demo ;;
        agents) build_agents ;;
        *) die "unknown image '$t' (known: sandbox-test demo agents)" ;;
    esac
    [ "${ENGINE:-docker}" != podman ] || [ "$t" = agents ] || copy_to_podman "airlock/$t"
done
