#!/usr/bin/env bash
# Prints the `use crate::` edges between top-level modules of src/ (one "from -> to" a line),
# sorted and de-duplicated; then any cycles of length 2. Used to keep the module graph a DAG.
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
echo "# cycles (a -> b and b -> a):"
echo "$E" | while read -r a _ b; do
  if echo "$E" | grep -qx "$b -> $a" && [[ "$a" < "$b" ]]; then echo "$a <-> $b"; fi
done
