#!/usr/bin/env bash
# Starts guestuser-demo with each --server given, asks /healthz and
# /allow_guest_user/ over loopback, stops it with SIGTERM and expects a clean
# exit; an unknown --server must be refused, and --version answers.
#   demo-servers.sh DEMO CONNINFO_FILE SERVER...
set -euo pipefail
demo=$1 conninfo=$(cat "$2")
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if "$demo" --server no-such-server >/dev/null 2>"$work/err"; then
  echo "an unknown --server was accepted"; exit 1
fi
grep -q "unknown --server 'no-such-server' (this build has:" "$work/err" ||
  { echo "unclear refusal:"; cat "$work/err"; exit 1; }

# --version: the demo's and the running library's, then exit 0
version=$("$demo" --version) || { echo "--version failed"; exit 1; }
[[ $version =~ ^guestuser-demo\ [0-9]+\.[0-9]+\.[0-9]+\ \(libguestuser\ [0-9]+\.[0-9]+\.[0-9]+\)$ ]] ||
  { echo "--version printed: $version"; exit 1; }

# Waits are bounded generously (30 s): a parallel run on a loaded machine
# can be slow to start a server or answer.
get() { # port path -> whole response on stdout
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
  timeout 30 cat <&3
  exec 3<&-
}

for server in "$@"; do
  # Emptied here, before the server starts: the background shell truncates
  # them only when it gets to run, and the loop below could first read the
  # previous server's port.
  : >"$work/out"
  : >"$work/log"
  "$demo" --server "$server" --port 0 --db "$conninfo" --schema "t_demo_$server" \
    --db-timeout-ms 30000 >"$work/out" 2>"$work/log" &
  pid=$!
  port=
  for _ in $(seq 300); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$server: did not start"; cat "$work/log"; exit 1; }
  get "$port" /healthz | head -1 | grep -q "^HTTP/1.1 200" ||
    { echo "$server: /healthz failed"; cat "$work/log"; exit 1; }
  get "$port" /allow_guest_user/ | grep -qi "^Set-Cookie: sessionid=" ||
    { echo "$server: no guest cookie"; cat "$work/log"; exit 1; }
  grep -q "serving with $server" "$work/log" ||
    { echo "$server: served by something else"; cat "$work/log"; exit 1; }
  kill -TERM "$pid"
  rc=0; wait "$pid" || rc=$?
  [ "$rc" = 0 ] || { echo "$server: exit status $rc after SIGTERM"; cat "$work/log"; exit 1; }
  echo "$server: ok (port $port)"
done
