#!/usr/bin/env bash
# Runs guestuser-conformance against tests/conformance_server with one
# adapter and checks its exit status.
#   conformance-run.sh SERVER PROGRAM ADAPTER SCHEMA
#       every check must pass (exit 0)
#   conformance-run.sh SERVER PROGRAM ADAPTER SCHEMA BROKEN CHECK...
#       with the server's --broken BROKEN layer the program must exit 1 and
#       report each CHECK as failed
#   conformance-run.sh usage PROGRAM
#       usage errors and an unreachable server exit 2
# CONFORMANCE_SKIP (environment): check names to --skip, for what a server
# library cannot do at all (docs/adapters.md says which and why).
set -euo pipefail

if [ "$1" = usage ]; then
  program=$2
  expect2() {
    set +e; "$program" "$@" >/dev/null 2>&1; rc=$?; set -e
    [ "$rc" = 2 ] || { echo "FAIL: guestuser-conformance $*: exit $rc, want 2"; exit 1; }
  }
  expect2
  expect2 --url
  expect2 --url https://127.0.0.1:8443/
  expect2 --url ftp://127.0.0.1/
  expect2 --url http://127.0.0.1:99999/
  expect2 --url http://127.0.0.1:8080/prefix/
  expect2 --url http://127.0.0.1:1/ --check no-such-check
  expect2 --url http://127.0.0.1:1/ --skip no-such-check
  # nothing listens on a port just released
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  expect2 --url "http://127.0.0.1:$port/"
  "$program" --help | grep -q 'plain HTTP' || { echo "FAIL: --help does not say http only"; exit 1; }
  [ "$("$program" --list | wc -l)" -gt 20 ] || { echo "FAIL: --list"; exit 1; }
  echo "usage errors exit 2"
  exit 0
fi

server=$1 program=$2 adapter=$3 schema=$4
shift 4
broken=${1:-}
[ $# -gt 0 ] && shift
work=$(mktemp -d)
args=(--server "$adapter" --schema "$schema")
[ -n "$broken" ] && args+=(--broken "$broken")
# created here: the background shell may open them after the loop's first look
: >"$work/out"
: >"$work/err"
"$server" "${args[@]}" >"$work/out" 2>"$work/err" &
pid=$!
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# Stops the server; its exit status (a sanitizer's report among others)
# must be 0.
stop_server() {
  kill "$pid" 2>/dev/null || true
  set +e; wait "$pid"; src=$?; set -e
  pid=
  if [ "$src" != 0 ]; then
    cat "$work/err" >&2
    echo "FAIL: conformance_server exited with $src" >&2
    exit 1
  fi
}

url=
for _ in $(seq 1200); do # up to 120 s on a loaded machine
  url=$(sed -n 's/^url //p' "$work/out")
  [ -n "$url" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$work/err" >&2
    echo "FAIL: conformance_server exited before listening" >&2
    exit 1
  fi
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/err" >&2; echo "FAIL: conformance_server never listened" >&2; exit 1; }

skips=()
for s in ${CONFORMANCE_SKIP:-}; do skips+=(--skip "$s"); done
set +e
"$program" --url "$url" "${skips[@]}" >"$work/report"
rc=$?
set -e
cat "$work/report"
stop_server
if [ -z "$broken" ]; then
  [ "$rc" = 0 ] || { cat "$work/err" >&2; echo "FAIL: exit $rc" >&2; }
  exit "$rc"
fi
[ "$rc" = 1 ] || { echo "FAIL: exit $rc against --broken $broken, want 1" >&2; exit 1; }
tail -n 1 "$work/report" | grep -Eq '^[0-9]+ passed, [1-9][0-9]* failed$' ||
  { echo "FAIL: no summary line" >&2; exit 1; }
for check in "$@"; do
  grep -q "^FAIL $check: " "$work/report" ||
    { echo "FAIL: --broken $broken was not caught by the check $check" >&2; exit 1; }
done
echo "--broken $broken caught by: $*"
