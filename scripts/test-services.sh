#!/usr/bin/env bash
# make test (services): what the shared-queue tests need on the host, installed when missing.
# Idempotent. PostgreSQL and faketime from Debian's packages, the S3 API from moto (PyPI).
# The tests start and stop their own throwaway servers on loopback; nothing is started here.
set -euo pipefail

say() { printf 'services: %s\n' "$*" >&2; }

have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_faketime() { command -v faketime >/dev/null 2>&1; }
have_moto() { command -v moto_server >/dev/null 2>&1; }

missing=()
have_pg || missing+=(postgresql)
have_faketime || missing+=(faketime)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        say "missing ${missing[*]}: install them (apt-get install -y ${missing[*]}) as root"
        exit 1
    fi
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian's package starts a cluster of its own; the tests never use it.
if have_moto; then :; else
    say "installing moto[server] from PyPI"
    python3 -m pip install --quiet 'moto[server]' || pip install --quiet 'moto[server]'
fi
have_pg && have_faketime && have_moto || { say "a service is still missing"; exit 1; }
say "postgresql $(ls /usr/lib/postgresql | sort -V | tail -1), faketime, moto_server ready"
