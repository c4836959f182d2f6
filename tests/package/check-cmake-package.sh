#!/bin/sh
# Checks the installed CMake package as its users meet it:
#  - a package built with both adapters, installed into a fresh prefix:
#    COMPONENTS mhd configures, builds and runs while CivetWeb is hidden
#    from CMake's search (CMAKE_IGNORE_PATH over the directories holding
#    civetweb.h and libcivetweb.so: the compiler still sees the system
#    headers, but every find_path/find_library for CivetWeb fails, as on a
#    machine without libcivetweb-dev), and COMPONENTS civetweb fails there
#    with a message naming CivetWeb, which shows the hiding works;
#  - COMPONENTS civetweb, static, mhd;conformance, testing and none work when
#    nothing is hidden; COMPONENTS db (the library plus libpq) links libpq
#    for the caller;
#  - a second package configured with -DGUESTUSER_WITH_CIVETWEB=OFF:
#    COMPONENTS civetweb fails, saying the package was built without it;
#  - when the build has the Ulfius adapter: COMPONENTS ulfius works, and
#    COMPONENTS mhd looks for no Ulfius; the second package is also built
#    with -DGUESTUSER_WITH_ULFIUS=OFF and refuses COMPONENTS ulfius;
#  - find_package leaves no variables but its own in the caller's scope
#    (tests/package/consumer/CMakeLists.txt checks, for each case).
# Usage: check-cmake-package.sh BUILD_DIR SOURCE_DIR (exits 77, skipped, unless
# BUILD_DIR has both adapters)
set -eu
build=$(cd "${1:?usage: check-cmake-package.sh BUILD_DIR SOURCE_DIR}" && pwd)
src=$(cd "${2:?}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
jobs=$(nproc 2>/dev/null || echo 2)
ulfius=no
grep -q "^GUESTUSER_WITH_ULFIUS:BOOL=ON" "$build/CMakeCache.txt" && ulfius=yes
for a in MHD CIVETWEB; do
  if ! grep -q "^GUESTUSER_WITH_$a:BOOL=ON" "$build/CMakeCache.txt"; then
    echo "SKIPPED: $build was configured without GUESTUSER_WITH_$a; these checks need both adapters"
    exit 77
  fi
done

echo ">> package with both adapters"
cmake --install "$build" --prefix "$work/both" >/dev/null

civet_h=$(echo '#include <civetweb.h>' | cc -M -x c - 2>/dev/null | tr ' \\' '\n\n' | grep '/civetweb\.h$' | head -n1)
civet_so=$(cc -print-file-name=libcivetweb.so)
hidden="$(dirname "$civet_h");$(dirname "$(readlink -f "$civet_so")");$(dirname "$civet_so")"

# consumer NAME PREFIX COMPONENTS [cmake args...]: configure + build + run
consumer() {
  name=$1 prefix=$2 comps=$3
  shift 3
  cmake -S "$src/tests/package/consumer" -B "$work/$name" -DCMAKE_PREFIX_PATH="$prefix" \
    "-DGUESTUSER_COMPONENTS=$comps" "$@" >"$work/$name.log" 2>&1 || {
    cat "$work/$name.log"; return 1; }
  cmake --build "$work/$name" >>"$work/$name.log" 2>&1 || { cat "$work/$name.log"; return 1; }
  printf "%s: " "$name"
  env -i PATH=/usr/bin:/bin "$work/$name/consumer"
}
# refused NAME PREFIX COMPONENTS TEXT [cmake args...]: configure must fail saying TEXT
refused() {
  name=$1 prefix=$2 comps=$3 text=$4
  shift 4
  if cmake -S "$src/tests/package/consumer" -B "$work/$name" -DCMAKE_PREFIX_PATH="$prefix" \
    "-DGUESTUSER_COMPONENTS=$comps" "$@" >"$work/$name.log" 2>&1; then
    cat "$work/$name.log"; echo "FAIL: $name: find_package succeeded" >&2; return 1
  fi
  if ! tr -s ' \n' ' ' <"$work/$name.log" | grep -q "$text"; then
    cat "$work/$name.log"; echo "FAIL: $name: no \"$text\" in the message" >&2; return 1
  fi
  echo "$name: refused as expected:"
  grep -A6 'Reason given' "$work/$name.log" | grep -v '^ *$' | sed 's/^/    /'
}

echo "hidden from CMake's search: $hidden"
consumer mhd-alone "$work/both" mhd "-DCMAKE_IGNORE_PATH=$hidden"
if grep -qi civetweb "$work/mhd-alone/CMakeCache.txt"; then
  grep -i civetweb "$work/mhd-alone/CMakeCache.txt"
  echo "FAIL: COMPONENTS mhd looked for CivetWeb" >&2; exit 1
fi
if grep -qi libulfius "$work/mhd-alone/CMakeCache.txt"; then
  grep -i libulfius "$work/mhd-alone/CMakeCache.txt"
  echo "FAIL: COMPONENTS mhd looked for Ulfius" >&2; exit 1
fi
refused civetweb-hidden "$work/both" civetweb "civetweb: CivetWeb was not found" \
  "-DCMAKE_IGNORE_PATH=$hidden"
consumer civetweb "$work/both" civetweb
consumer both "$work/both" "mhd;civetweb"
if [ "$ulfius" = yes ]; then
  consumer ulfius "$work/both" ulfius
  consumer all-three "$work/both" "mhd;civetweb;ulfius"
fi
consumer static "$work/both" static
consumer db "$work/both" "db;mhd" "-DCMAKE_IGNORE_PATH=$hidden"
consumer conformance "$work/both" "mhd;conformance"
consumer testing "$work/both" "testing"
consumer core "$work/both" ""
if grep -qiE 'civetweb|microhttpd|libulfius|libpq' "$work/core/CMakeCache.txt"; then
  echo "FAIL: find_package(guestuser) without components looked for dependencies" >&2; exit 1
fi

echo ">> package built without CivetWeb, Ulfius and the conformance kit"
cmake -S "$src" -B "$work/build-mhd-only" -DGUESTUSER_WITH_CIVETWEB=OFF -DGUESTUSER_WITH_ULFIUS=OFF -DGUESTUSER_CONFORMANCE=OFF -DGUESTUSER_TESTING=OFF -DGUESTUSER_TESTS=OFF \
  -DGUESTUSER_EXAMPLES=OFF -DGUESTUSER_TOOLS=OFF -DGUESTUSER_BENCHMARKS=OFF >/dev/null
cmake --build "$work/build-mhd-only" -j"$jobs" >/dev/null
cmake --install "$work/build-mhd-only" --prefix "$work/mhd-only" >/dev/null
consumer mhd-only "$work/mhd-only" mhd
refused civetweb-from-mhd-only "$work/mhd-only" civetweb \
  "civetweb: this guestuser was built without its CivetWeb adapter"
refused conformance-from-mhd-only "$work/mhd-only" conformance \
  "conformance: this guestuser was built without its conformance kit"
refused testing-from-mhd-only "$work/mhd-only" testing \
  "testing: this guestuser was built without libguestuser-testing"
refused ulfius-from-mhd-only "$work/mhd-only" ulfius \
  "ulfius: this guestuser was built without its Ulfius adapter"
refused unknown-component "$work/both" nginx "nginx: no such component"
echo ">> CMake package checks passed"
