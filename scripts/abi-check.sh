#!/usr/bin/env bash
# Compares the ABI of every shared library in a build with the 1.0.0
# baseline kept in abi/ (docs/abi.md): abi-dumper describes each built
# library from its debug information, as seen through the public headers,
# and abi-compliance-checker fails on anything a program built against
# 1.0.0 could notice (a removed function, a changed parameter, a moved field
# of a struct the program allocates). Added functions pass.
#
#   scripts/abi-check.sh BUILD_DIR            compare (scripts/test.sh)
#   scripts/abi-check.sh --baseline BUILD_DIR write the baseline: only when
#                                             the release that sets it is made
#
# The build needs debug information (RelWithDebInfo or Debug). Reports go
# to BUILD_DIR/abi/<library>.html. For its own test (tests/check-abi-check.sh)
# GUESTUSER_ABI_DIR, GUESTUSER_ABI_HEADERS and GUESTUSER_ABI_VERSION stand in
# for abi/, include/guestuser and the project's version.
set -euo pipefail
cd "$(dirname "$0")/.."
baseline_version=1.0.0
mode=check
if [ "${1:-}" = --baseline ]; then
  mode=baseline
  shift
fi
build=${1:?usage: scripts/abi-check.sh [--baseline] BUILD_DIR}
out="$build/abi"
mkdir -p "$out"
version=${GUESTUSER_ABI_VERSION:-$(sed -n 's/^project(guestuser VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)}
abi=${GUESTUSER_ABI_DIR:-abi}
headers=${GUESTUSER_ABI_HEADERS:-include/guestuser}

# Structs a 1.x grew on purpose (abi/grown-types.txt), left to
# test_struct_sizes.
skip=()
if [ -e "$abi/grown-types.txt" ] && grep -qv '^#' "$abi/grown-types.txt"; then
  grep -v '^#' "$abi/grown-types.txt" >"$out/grown-types.txt"
  skip=(-skip-types "$out/grown-types.txt")
fi

failed=0 checked=0
for lib in "$build"/src/libguestuser*.so; do
  [ -e "$lib" ] || continue
  name=$(basename "$lib" .so)
  real=$(readlink -f "$lib")
  # Named apart from the baseline's copy below, which has the same version.
  dump="$out/$name-$version-build.dump"
  abi-dumper "$real" -o "$dump" -lver "$version" -public-headers "$headers" \
    >"$out/$name.dumper.log" 2>&1 ||
    { cat "$out/$name.dumper.log"; echo "abi-dumper failed on $real"; exit 1; }
  kept="$abi/$name-$baseline_version.dump.xz"
  if [ "$mode" = baseline ]; then
    xz -9 -c "$dump" >"$kept"
    echo "baseline: $kept"
    continue
  fi
  if [ ! -e "$kept" ]; then
    echo "$name: no baseline $kept (a library added after 1.0.0 gets one when its first version is released)"
    failed=1
    continue
  fi
  base="$out/$name-$baseline_version-baseline.dump"
  xz -dc "$kept" >"$base"
  if abi-compliance-checker -l "$name" -old "$base" -new "$dump" \
    -report-path "$out/$name.html" "${skip[@]}" >"$out/$name.log" 2>&1; then
    echo "$name: compatible with $baseline_version ($(grep -o 'Binary compatibility: [0-9.]*%' "$out/$name.log"))"
  else
    grep -E 'compatibility|problems' "$out/$name.log" || cat "$out/$name.log"
    echo "$name: NOT compatible with $baseline_version; report: $out/$name.html"
    failed=1
  fi
  checked=$((checked + 1))
done
[ "$mode" = baseline ] && exit 0
if [ "$checked" = 0 ] && [ "$failed" = 0 ]; then
  echo "no shared library under $build/src"
  exit 1
fi
exit "$failed"
