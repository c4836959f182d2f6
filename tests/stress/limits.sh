#!/usr/bin/env bash
# The abuse limits under a hostile burst, against guestuser-demo on a
# private PostgreSQL, over real sockets:
#   tests/stress/limits.sh [BUILD_DIR]
# Three runs of the demo (SERVER, default mhd):
#   login: the default guessing limits, 32 wrong passwords at once for one
#          user, 32 names at once from one address, and an office's NAT
#          (25 random-name failures, then the owner's right password);
#   ipv6:  --rate-limit 30/HOUR behind a trusted proxy, visitors from many
#          /64s of one /56 and many /56s of one /48;
#   cap:   --max-guests 100 with room for one network to take it all,
#          8,000 visits from 49 addresses, 32 at a time.
# Prints the figures; exit status 1 when a limit did not hold.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
server=${SERVER:-mhd}
demo=$build/examples/guestuser-demo
tool=$build/tools/guestuser
burst=$build/tests/stress/stress_limits_burst
for bin in "$demo" "$tool" "$burst"; do
  [ -x "$bin" ] || { echo "limits.sh: $bin not found; build $build first" >&2; exit 2; }
done
dir=$(mktemp -d /tmp/guestuser-limits.XXXXXX)
demo_pid=""
cleanup() {
  [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
  bash "$here/../pg-fixture.sh" stop "$dir" >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
bash "$here/../pg-fixture.sh" start "$dir" >&2 || exit 2
conninfo=$(cat "$dir/conninfo")

# start_demo NAME ARGS...: the demo on a schema of its own; sets port.
start_demo() {
  local name=$1; shift
  "$demo" --server "$server" --port 0 --db "$conninfo" --schema "limits_$name" \
    --password-iterations 100000 --max-conns-per-ip 0 "$@" \
    >"$dir/$name.out" 2>"$dir/$name.err" &
  demo_pid=$!
  port=""
  for _ in $(seq 1 300); do
    port=$(sed -n 's|.*http://[^:]*:\([0-9]*\)/.*|\1|p' "$dir/$name.out" 2>/dev/null)
    [ -n "$port" ] && break
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "the demo did not start:"; cat "$dir/$name.err"; exit 2; }
}
stop_demo() {
  kill -TERM "$demo_pid" 2>/dev/null; wait "$demo_pid" 2>/dev/null; demo_pid=""
}

status=0
echo "== login ($server, default limits: 5 per name and address, 100 per address)"
start_demo login --hash-concurrency 32 --hash-wait-ms 60000
printf 'correct-horse-battery-1\n' |
  "$tool" --db "$conninfo" --schema limits_login create-user owner >/dev/null || exit 2
LOGIN_LIMIT=5 ADDRESS_LIMIT=100 "$burst" "$port" login owner correct-horse-battery-1 || status=1
stop_demo

echo "== ipv6 ($server, --rate-limit 30/HOUR behind a trusted proxy)"
start_demo ipv6 --trusted-proxy 127.0.0.1/32 --rate-limit 30/HOUR
RATE_LIMIT=30 "$burst" "$port" ipv6 || status=1
stop_demo

echo "== ipv6 and the cap ($server, --max-guests 400, a network's share 20)"
start_demo ipv6cap --trusted-proxy 127.0.0.1/32 --max-guests 400
RATE_LIMIT=1000000 "$burst" "$port" ipv6 >"$dir/ipv6cap.txt"
sed 's/ (\/.*budget [0-9]*)//' "$dir/ipv6cap.txt"
grep -q 'another /48: gets a guest' "$dir/ipv6cap.txt" || status=1
made=$(psql "$conninfo" -Atc "SELECT count(*) FROM limits_ipv6cap.guests WHERE network = '2001:db8:aa::/48'")
echo "guests of 2001:db8:aa::/48: $made (its share: 20)"
[ "$made" -le 20 ] || status=1
stop_demo

echo "== cap ($server, --max-guests 100, one network may take it all)"
start_demo cap --max-guests 100 --max-guests-per-network 100 --pool-size 8
MAX_GUESTS=100 "$burst" "$port" cap 8000 || status=1
stop_demo
[ "$status" = 0 ] && echo "limits: every limit held" || echo "limits: a limit did not hold"
exit "$status"
