#!/usr/bin/env bash
# The Debian mirror this machine's apt already uses, for scripts that fetch from Debian
# (debootstrap in images.sh). Sourced: `debian_mirror` prints it. Run: prints it too.
#
# Order: AIRLOCK_DEBIAN_MIRROR when set; else the first `deb` entry of the archive proper (not
# -security, -updates, -backports) in $AIRLOCK_APT_DIR/sources.list, then sources.list.d/*.list
# (one-line format) and sources.list.d/*.sources (deb822), in file-name order. Only http, https
# and file URIs count (what debootstrap can fetch from). Nothing found: an error naming the
# files read and the override. AIRLOCK_APT_DIR defaults to /etc/apt (tests point it elsewhere).

debian_mirror() {
    if [[ -n ${AIRLOCK_DEBIAN_MIRROR:-} ]]; then
        printf '%s\n' "$AIRLOCK_DEBIAN_MIRROR"
        return 0
    fi
    local apt=${AIRLOCK_APT_DIR:-/etc/apt} f found
    local -a lists=() sources=()
    [[ -f $apt/sources.list ]] && lists+=("$apt/sources.list")
    for f in "$apt"/sources.list.d/*.list; do [[ -f $f ]] && lists+=("$f"); done
    for f in "$apt"/sources.list.d/*.sources; do [[ -f $f ]] && sources+=("$f"); done
    found=$(
        {
            ((${#lists[@]} == 0)) || awk '
                /^[ \t]*deb[ \t]/ {
                    i = 2
                    if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                    uri = $(i); suite = $(i + 1)
                    if (suite ~ /-(security|updates|backports)$/ || suite ~ /\/updates$/) next
                    if (uri !~ /^(https?|file):/) next
                    print uri; exit
                }' "${lists[@]}"
            ((${#sources[@]} == 0)) || awk '
                function flush() {
                    if (deb && uri != "" && plain && uri ~ /^(https?|file):/ && enabled) { print uri; exit }
                    deb = 0; uri = ""; plain = 0; enabled = 1
                }
                BEGIN { enabled = 1 }
                /^[ \t]*$/ { flush(); next }
                /^[ \t]*#/ { next }
                tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
                tolower($1) == "uris:" { uri = $2 }
                tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
                tolower($1) == "suites:" {
                    for (i = 2; i <= NF; i++) if ($i !~ /-(security|updates|backports)$/ && $i !~ /\/updates$/) plain = 1
                }
                END { flush() }' "${sources[@]}"
        } | head -n1 || true
    )
    if [[ -z $found ]]; then
        printf 'no Debian mirror in %s (sources.list, sources.list.d/*.list, sources.list.d/*.sources): set AIRLOCK_DEBIAN_MIRROR=<http(s) URL of a Debian archive>\n' "$apt" >&2
        return 1
    fi
    printf '%s\n' "${found%/}"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    debian_mirror
fi
