#!/usr/bin/env bash
# Prints the `use crate::` edges between top-level modules of src/ (one "from -> to" a line),
# sorted and de-duplicated; then every cycle `tsort` finds (of any length), one a line as
# "a -> b -> c -> a". Exits 1 when there is a cycle. Used to keep the module graph a DAG; the
# library's `module_graph` test runs it.
set -euo pipefail
cd "$(dirname "$0")/../src"
edges() {
  for f in $(find . -name '*.rs' | sort); do
    p=${f#./}
    top=${p%%/*}; top=${top%.rs}
    case "$top" in lib|main|policy_cmd|daemon_cli) continue ;; esac
    # `crate::x` anywhere (use lines, paths in code); multi-line `use crate::{a, b}` groups too.
    grep -oE 'crate::(\{[^}]*\}|[a-z_]+)' "$f" 2>/dev/null | sed -E 's/^crate:://' |
      tr -d '{}' | tr ',' '\n' | sed -E 's/^[[:space:]]*//; s/::.*//' | grep -E '^[a-z_]+$' |
      while read -r to; do if [ "$to" != "$top" ]; then echo "$top -> $to"; fi; done
  done | sort -u || true
}
E=$(edges)
echo "$E"
echo "# cycles:"
loops=$(echo "$E" | awk 'NF == 3 { print $1, $3 }' | tsort 2>&1 >/dev/null |
  awk '/input contains a loop/ { if (c) print c " -> " first; c = ""; next }
       { sub(/^tsort: /, ""); if (c == "") { c = $0; first = $0 } else c = c " -> " $0 }
       END { if (c) print c " -> " first }') || true
if [ -n "$loops" ]; then echo "$loops"; exit 1; fi
echo "none"
