#!/usr/bin/env bash
# scripts/abi-check.sh really compares: a toy library named like one of
# ours is dumped as a baseline, then rebuilt three ways. A function added
# passes; a field inserted in a public struct and a return type widened
# each fail. (The check once compared the baseline with itself and passed
# everything; this is the test that would have said so.)
set -euo pipefail
src=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/include" "$tmp/abi" "$tmp/build/src"
export GUESTUSER_ABI_DIR=$tmp/abi GUESTUSER_ABI_HEADERS=$tmp/include GUESTUSER_ABI_VERSION=1.0.0

# build FIELDS RETURN EXTRA: the toy library with struct probe's fields,
# probe_get's return type and any extra declaration
build() {
  cat >"$tmp/include/probe.h" <<H
struct probe { $1 };
$2 probe_get(const struct probe *p);
$3
H
  cat >"$tmp/probe.c" <<C
#include "probe.h"
$2 probe_get(const struct probe *p) { return p->last; }
${4:-}
C
  cc -g -Og -shared -fPIC -I"$tmp/include" "$tmp/probe.c" -o "$tmp/build/src/libguestuser-probe.so"
}

check() { # EXPECTED_RC WHAT
  local rc=0
  bash "$src/scripts/abi-check.sh" "$tmp/build" >"$tmp/out" 2>&1 || rc=$?
  if [ "$rc" != "$1" ]; then
    cat "$tmp/out"
    echo "FAIL: $2: abi-check.sh exited $rc, expected $1"
    exit 1
  fi
  echo "ok: $2 ($(tail -1 "$tmp/out"))"
}

build "int first; int last;" int ""
bash "$src/scripts/abi-check.sh" --baseline "$tmp/build" >/dev/null
[ -s "$tmp/abi/libguestuser-probe-1.0.0.dump.xz" ] || { echo "FAIL: no baseline written"; exit 1; }
check 0 "the same library"
build "int first; int last;" int "int probe_new(void);" "int probe_new(void) { return 1; }"
check 0 "a function added"
build "int first; int inserted; int last;" int ""
check 1 "a field inserted"
build "int first; int last;" "long long" ""
check 1 "a return type widened"
