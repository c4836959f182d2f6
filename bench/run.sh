#!/usr/bin/env bash
# Runs bench_cleanup against a private, throwaway PostgreSQL cluster (the
# test fixture's: fsync off, so figures compare methods, not disks).
#   bench/run.sh [BUILD_DIR] [bench_cleanup options...]
#   bench/run.sh BUILD_DIR bench_requests [N]
#   bench/run.sh BUILD_DIR bench_login_flood [SECONDS] [CLIENTS] [ITERATIONS]
# BUILD_DIR defaults to ./build; configure it with -DGUESTUSER_BENCHMARKS=ON
# (the default for a top-level build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
bench=bench_cleanup
case "${1:-}" in
bench_requests | bench_cleanup | bench_login_flood) bench=$1; shift ;;
esac
bin=$build/bench/$bench
[ -x "$bin" ] || { echo "run.sh: $bin not found; build with -DGUESTUSER_BENCHMARKS=ON" >&2; exit 1; }
dir=$(mktemp -d /tmp/guestuser-bench.XXXXXX)
trap 'bash "$here/../tests/pg-fixture.sh" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
bash "$here/../tests/pg-fixture.sh" start "$dir" >&2
"$bin" "$(cat "$dir/conninfo")" "$@"
