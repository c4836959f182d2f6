#!/usr/bin/env bash
# ctest's smoke run of bench/run.sh: one case, one second per measurement.
# It checks that the table comes out with a figure in each column, never
# how fast anything is. Exit 77 (skipped) without wrk or pgbench.
#   smoke.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
command -v wrk >/dev/null && [ -x "$bindir/pgbench" ] ||
  { echo "wrk or pgbench missing: skipped"; exit 77; }
out=$(BENCH_SECONDS=1 BENCH_ROUNDS=1 BENCH_CASES=healthz BENCH_POOL=2 BENCH_CONNECTIONS=4 \
  bash "$here/run.sh" "$1" 2>&1) || { echo "$out"; echo "run.sh failed"; exit 1; }
echo "$out"
number='[0-9]+'
grep -Eq '^CPU: .*cores; load average before the run: ' <<<"$out" &&
  grep -Eq '^PostgreSQL [0-9]' <<<"$out" &&
  grep -Eq '^case +HTTP/s +ceil/s +API/s +pgbench/s +H/pgb +C/pgb +H/C +A/pgb' <<<"$out" &&
  ratio="$number\\.$number" &&
  grep -Eq "^/healthz +$number +$number +$number +$number +$ratio +$ratio +$ratio +$ratio " <<<"$out" ||
  { echo "the table is not as expected"; exit 1; }
# NOTE lines (a wrk timeout on a loaded machine, say) are shown above, not
# failed on: this checks the program, not the machine.
