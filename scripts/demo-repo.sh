#!/usr/bin/env bash
# demo-repo: make the bare git repository the demo tasks clone (examples/demo/task*.toml use
# url = "tasks-app.git"), from examples/demo/tasks-app/: one commit on branch main, with fixed
# author, committer and dates, so the commit id depends only on the source files.
# Idempotent: the source's hash is kept in DEST/airlock-source.sha256; an unchanged source is
# skipped, a changed one recreates the repository.
# Usage: scripts/demo-repo.sh [DEST]   (default: examples/demo/tasks-app.git)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/examples/demo/tasks-app
DEST=${1:-$ROOT/examples/demo/tasks-app.git}
STAMP=airlock-source.sha256

say() { printf 'demo-repo: %s\n' "$*" >&2; }
die() { printf 'demo-repo: error: %s\n' "$*" >&2; exit 1; }

command -v git >/dev/null || die "git is not installed"
[ -d "$SRC" ] || die "no source directory $SRC"
case $DEST in /*) ;; *) DEST=$PWD/$DEST ;; esac

# Files to commit: everything under SRC but Python/pytest caches.
list_files() {
    (cd "$SRC" && find . \( -name __pycache__ -o -name .pytest_cache -o -name '*.pyc' \) -prune \
        -o -type f -printf '%P\n' | LC_ALL=C sort)
}

source_hash() {
    {
        echo "demo-repo v1"
        declare -f make_repo list_files
        list_files | while IFS= read -r f; do
            printf '%s %s %s\n' "$(stat -c %a "$SRC/$f")" "$f" "$(sha256sum <"$SRC/$f" | cut -d' ' -f1)"
        done
    } | sha256sum | cut -d' ' -f1
}

# A hermetic git: no system or user config, no hooks or templates, fixed identity and dates.
hgit() {
    env -u GIT_DIR -u GIT_WORK_TREE -u GIT_INDEX_FILE \
        HOME=/nonexistent GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
        GIT_AUTHOR_NAME="airlock demo" GIT_AUTHOR_EMAIL="demo@airlock.invalid" \
        GIT_AUTHOR_DATE="2024-01-01T00:00:00+0000" \
        GIT_COMMITTER_NAME="airlock demo" GIT_COMMITTER_EMAIL="demo@airlock.invalid" \
        GIT_COMMITTER_DATE="2024-01-01T00:00:00+0000" \
        git -c core.hooksPath=/dev/null -c commit.gpgsign=false -c core.autocrlf=false \
            -c core.fileMode=true -c init.defaultBranch=main "$@"
}

make_repo() {
    local out=$1 work=$2
    mkdir -p "$work/tree"
    list_files | while IFS= read -r f; do
        mkdir -p "$work/tree/$(dirname "$f")"
        cp -p "$SRC/$f" "$work/tree/$f"
    done
    hgit init -q --template= -b main "$work/tree"
    hgit -C "$work/tree" add -A
    hgit -C "$work/tree" commit -q -m "tasks-app: a tiny to-do list library and CLI"
    hgit init -q --bare --template= -b main "$out"
    hgit -C "$work/tree" push -q "$out" main:refs/heads/main
    printf 'tasks-app demo repository (made by scripts/demo-repo.sh)\n' >"$out/description"
}

hash=$(source_hash)
if [ -f "$DEST/$STAMP" ] && [ "$(cat "$DEST/$STAMP")" = "$hash" ] &&
    hgit --git-dir="$DEST" rev-parse -q --verify refs/heads/main >/dev/null; then
    say "$DEST up to date ($(hgit --git-dir="$DEST" rev-parse --short refs/heads/main))"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-demo-repo.XXXXXX")
trap 'rm -rf "$work" "$DEST.new.$$"' EXIT
rm -rf "$DEST.new.$$"
make_repo "$DEST.new.$$" "$work"
printf '%s\n' "$hash" >"$DEST.new.$$/$STAMP"
rm -rf "$DEST"
mv "$DEST.new.$$" "$DEST"
say "created $DEST (main at $(hgit --git-dir="$DEST" rev-parse --short refs/heads/main))"
