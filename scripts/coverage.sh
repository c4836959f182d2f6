#!/usr/bin/env bash
# Line coverage of src/ by the test suite: a gcc --coverage build in
# build-cov (Debug, so the assert()s run too; atomic counters, as the
# library runs on many threads), its ctest, then gcovr
# (Debian: gcovr) per layer. Fails when the lines covered in src/ fall
# under GUESTUSER_COVERAGE_MIN percent (docs/testing.md says how to raise
# it; never by excluding code). Called by scripts/test.sh after the
# sanitizer step; runs on its own too.
#   GUESTUSER_COVERAGE_MIN   the gate, percent of lines in src/ (default below)
#   GUESTUSER_COVERAGE_REUSE=1  keep the counts of an earlier run (no ctest)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
guestuser_ensure_deps
# Issue #20 asks for 95 %. Measured with this script: 89.9 % before the
# fault tests, 90.4 % with them, 93.6 % with the allocation-failure,
# view-fault and refusal tests, 95.1 % with the tests/test_cov_*.c suites
# (Debian 12, gcc 12, gcovr 5.2); the gate is the figure reached, rounded
# down, and only goes up. With the event-loop tests the same tree measured
# 11,978 and 11,971 of 12,592 lines (95.1 % and 95.07 %) in two runs: lines
# that depend on timing (reconnects, watchdogs) move the count by about 7,
# so the gate sat at 94.9 while the margin over 95 % was 8 lines. Since the
# views share their entry (guest__view_enter) it is 11,967 of 12,573
# (95.18 %), 22 lines over 95 % (11,945): the gate is 95.
min=${GUESTUSER_COVERAGE_MIN:-95}
jobs=$(nproc 2>/dev/null || echo 2)
dir=build-cov

echo ">> coverage build (gcc --coverage) + tests"
# Without -Werror: gcc's range analysis under --coverage reports
# format-truncation in places the normal and sanitizer builds (which do
# use -Werror) find none.
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DGUESTUSER_WERROR=OFF \
  -DGUESTUSER_BENCHMARKS=OFF -DCMAKE_C_COMPILER=gcc \
  "-DCMAKE_C_FLAGS=--coverage -fprofile-update=atomic" \
  -DCMAKE_EXE_LINKER_FLAGS=--coverage \
  -DCMAKE_SHARED_LINKER_FLAGS=--coverage >/dev/null
cmake --build "$dir" -j"$jobs"
if [ "${GUESTUSER_COVERAGE_REUSE:-0}" != 1 ]; then
  # Counts from an earlier run would add to this one's.
  find "$dir" -name '*.gcda' -delete
  # The installed-package check adds time, not lines (it builds against an
  # install of the same objects); the symbol lists are the normal build's
  # to check, as --coverage exports gcov's own.
  (cd "$dir" && ctest -j"$jobs" --output-on-failure \
    -E '^(cmake_package|exported_symbols.*)$')
fi

echo ">> line coverage of src/ per layer (gcovr)"
summary="$dir/coverage.json"
gcovr --root . --object-directory "$dir" --filter 'src/' \
  --json-summary "$summary" --txt "$dir/coverage.txt" >"$dir/gcovr.log" 2>&1 ||
  { cat "$dir/gcovr.log"; echo "coverage: gcovr failed (above)"; exit 1; }
python3 - "$summary" "$min" <<'EOF'
import json, sys
summary, minimum = sys.argv[1], float(sys.argv[2])
layers = ["base", "store", "core", "accounts", "oidc", "mail", "adapters",
          "conformance"]
files = json.load(open(summary))["files"]
per = {}
for f in files:
    layer = f["filename"].split("/")[1]
    covered, total = per.get(layer, (0, 0))
    per[layer] = (covered + f["line_covered"], total + f["line_total"])
covered = sum(c for c, _ in per.values())
total = sum(t for _, t in per.values())
for layer in layers + sorted(set(per) - set(layers)):
    c, t = per.get(layer, (0, 0))
    print(f"  src/{layer + '/':<13} {c:6d} / {t:6d} lines  "
          f"{100.0 * c / t if t else 0.0:5.1f} %")
pct = 100.0 * covered / total if total else 0.0
print(f"  {'src/':<17} {covered:6d} / {total:6d} lines  {pct:5.1f} %"
      f"  (gate: {minimum:g} %)")
worst = sorted(files, key=lambda f: f["line_covered"] - f["line_total"])[:10]
print("  most lines not run:", ", ".join(
    f"{f['filename']} ({f['line_total'] - f['line_covered']})" for f in worst))
if pct < minimum:
    print(f"coverage: {pct:.1f} % of the lines in src/, under {minimum:g} %")
    sys.exit(1)
EOF
echo ">> coverage: per-file report in $dir/coverage.txt"
