#!/usr/bin/env bash
# Builds libguestuser and runs the whole test suite: a normal build with
# warnings as errors, the same suite under AddressSanitizer +
# UndefinedBehaviorSanitizer, the line coverage of src/ (scripts/coverage.sh),
# the ABI against the 1.0.0 baseline (scripts/abi-check.sh), and an
# install whose package the examples are
# built against out of tree, and the Debian packages (cpack -G DEB) checked
# and built against; first, every C file is checked against .clang-format
# and src/ against .clang-tidy. Installs what it needs on Debian first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
guestuser_ensure_deps $GUESTUSER_E2E_DEB_PACKAGES
# playwright-core for the browser tests, as pinned by the lock file; it
# drives Debian's Chromium and downloads no browser.
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  echo ">> npm ci --prefix tests/e2e"
  npm ci --prefix tests/e2e --ignore-scripts --no-audit --no-fund
fi
[ tests/oidc/node_modules/.package-lock.json -nt tests/oidc/package-lock.json ] || npm ci --prefix tests/oidc --ignore-scripts --no-audit --no-fund
jobs=$(nproc 2>/dev/null || echo 2)

echo ">> format (clang-format) and lint (clang-tidy, .clang-tidy)"
git ls-files -z '*.c' '*.h' ':!tests/e2e/*' | xargs -0 clang-format --dry-run -Werror
cmake -S . -B build-tidy -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DGUESTUSER_TESTS=OFF \
  -DGUESTUSER_EXAMPLES=OFF -DGUESTUSER_BENCHMARKS=OFF >/dev/null
run-clang-tidy -p build-tidy -j "$jobs" -quiet "$PWD/src/" >build-tidy/clang-tidy.log 2>&1 ||
  { cat build-tidy/clang-tidy.log; echo "clang-tidy found problems (above)"; exit 1; }

echo ">> build + tests"
# prefix /usr as Debian builds it: the packages below keep their libraries
# in /usr/lib/<multiarch>; the install check passes its own --prefix
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGUESTUSER_WERROR=ON \
  -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure)

echo ">> ABI against 1.0.0 (abi-dumper, abi-compliance-checker)"
scripts/abi-check.sh build

echo ">> sanitizer build + tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGUESTUSER_WERROR=ON \
  -DGUESTUSER_SANITIZE=ON -DGUESTUSER_BENCHMARKS=OFF >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure)

# Line coverage of src/ per layer, failing under its gate (docs/testing.md).
scripts/coverage.sh

echo ">> libFuzzer smoke run over the parsers (clang)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DGUESTUSER_FUZZ=ON \
  -DGUESTUSER_EXAMPLES=OFF -DGUESTUSER_TOOLS=OFF -DGUESTUSER_BENCHMARKS=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_parsers
(cd build-fuzz && ctest -R '^fuzz_' --output-on-failure)

echo ">> install + out-of-tree example build"
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install build --prefix "$prefix" >/dev/null
# the installed programs run from any prefix, without environment variables
for prog in guestuser guestuser-demo guestuser-conformance; do
  env -i PATH=/usr/bin:/bin "$prefix/bin/$prog" --help >/dev/null
done
cmake -S examples -B "$prefix/examples-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/examples-build" -j"$jobs" >/dev/null
"$prefix/examples-build/guestuser-demo" --help >/dev/null
# pkg-config users get the same library
printf '#include <guestuser/guestuser.h>\nint main(void){return guest_version()[0] ? 0 : 1;}\n' >"$prefix/pc.c"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/$(gcc -print-multiarch 2>/dev/null)/pkgconfig" \
  sh -c 'cc "$1/pc.c" -o "$1/pc" $(pkg-config --cflags --libs guestuser) -Wl,-rpath,"$(pkg-config --variable=libdir guestuser)"' _ "$prefix"
"$prefix/pc"

# The CMake package's components were checked by ctest above
# (cmake_package: tests/package/check-cmake-package.sh).
echo ">> Debian packages: cpack -G DEB, metadata, apt-get --simulate, examples against them"
tests/package/check-debs.sh build . build/debs
echo ">> all tests passed"
