#!/usr/bin/env bash
# Checks that no two source files of the library call each other in a
# circle (docs/architecture.md): from the compiled objects, each file's
# defined and undefined symbols give an edge "A calls B" when A uses a
# symbol B defines; tsort then finds any loop. Includes alone cannot show
# this (check-layers.sh reads includes), since a call needs only a
# declaration from the layer's one header.
# Usage: tests/check-calls.sh OBJECT_DIR   (the library's object files)
set -euo pipefail
dir=${1:?usage: check-calls.sh OBJECT_DIR}
mapfile -t objs < <(find "$dir" -name '*.o' | sort)
[ "${#objs[@]}" -gt 0 ] || { echo "check-calls: no object files in $dir"; exit 1; }
defs=$(mktemp)
edges=$(mktemp)
trap 'rm -f "$defs" "$edges"' EXIT
# nm -A: "FILE: VALUE TYPE NAME" (defined) and "FILE:  U NAME" (undefined);
# FILE becomes its path under $dir without ".o".
nm -A -g --defined-only "${objs[@]}" |
  awk -v d="$dir/" '{ f = $1; sub(/:.*/, "", f); sub(d, "", f); sub(/\.o$/, "", f);
    print $NF, f }' | sort >"$defs"
nm -A -u "${objs[@]}" |
  awk -v d="$dir/" '{ f = $1; sub(/:.*/, "", f); sub(d, "", f); sub(/\.o$/, "", f);
    print $NF, f }' | sort -u |
  join - "$defs" | awk '$2 != $3 { print $2, $3 }' | sort -u >"$edges"
[ -s "$edges" ] || { echo "check-calls: no calls between files found"; exit 1; }
if ! out=$(tsort "$edges" 2>&1 >/dev/null) || [ -n "$out" ]; then
  echo "check-calls: files that call each other in a circle:"
  echo "$out" | sed -n 's/^tsort: //p'
  exit 1
fi
echo "check-calls: $(wc -l <"$edges") calls between $(cut -d' ' -f1 "$edges" | sort -u | wc -l) files, no circle"
