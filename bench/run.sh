#!/usr/bin/env bash
# The benchmarks, against a private, throwaway PostgreSQL cluster (the test
# fixture's: fsync off, so figures compare methods, not disks).
#   bench/run.sh [BUILD_DIR] [all]        one table: HTTP, API and pgbench side
#                                         by side for each case (the default)
#   bench/run.sh BUILD_DIR bench_cleanup [options...]   (or just the options)
#   bench/run.sh BUILD_DIR bench_requests [N]
#   bench/run.sh BUILD_DIR bench_login_flood [SECONDS] [CLIENTS] [ITERATIONS]
# BUILD_DIR defaults to ./build; configure it with -DGUESTUSER_BENCHMARKS=ON
# (the default for a top-level build). Nothing is built unless BENCH_BUILD=1.
# The "all" mode reads (see docs/performance.md):
#   BENCH_SECONDS (8)       length of each measurement, in BENCH_ROUNDS (2)
#                           turns of HTTP, API and pgbench
#   BENCH_CASES             any of: new returning healthz hello cached two
#                           servers pipeline pgbouncer cleanup
#   BENCH_SERVERS (evhttp)  the demo's other servers, for the "servers" case
#   BENCH_WRK_THREADS (2), BENCH_CONNECTIONS (16)   wrk -t / -c
#   BENCH_POOL (8)          database connections: the demo's --pool-size, the
#                           API threads and pgbench -c
#   BENCH_COOKIES (500)     returning visitors that take turns
#   BENCH_CLEANUP_ROWS (50000)   expired guests per cleanup run
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
mode=all
case "${1:-}" in
bench_requests | bench_cleanup | bench_login_flood) mode=$1; shift ;;
all) shift ;;
"") ;;
*) mode=bench_cleanup ;; # options for bench_cleanup, as before "all" existed
esac
[ "${BENCH_BUILD:-0}" = 1 ] && cmake --build "$build" -j2 >&2

dir=$(mktemp -d /tmp/guestuser-bench.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -z "${bouncer_dir:-}" ] || bash "$here/../tests/pgbouncer-fixture.sh" stop "$bouncer_dir" >/dev/null 2>&1 || true
  bash "$here/../tests/pg-fixture.sh" stop "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$mode" != all ]; then
  bin=$build/bench/$mode
  [ -x "$bin" ] || { echo "run.sh: $bin not found; build with -DGUESTUSER_BENCHMARKS=ON" >&2; exit 1; }
  bash "$here/../tests/pg-fixture.sh" start "$dir" >&2
  "$bin" "$(cat "$dir/conninfo")" "$@"
  exit
fi

seconds=${BENCH_SECONDS:-8}
cases=${BENCH_CASES:-new returning healthz hello cached two servers pipeline pgbouncer cleanup}
wrk_threads=${BENCH_WRK_THREADS:-2}
conns=${BENCH_CONNECTIONS:-16}
pool=${BENCH_POOL:-8}
ncookies=${BENCH_COOKIES:-500}
cleanup_rows=${BENCH_CLEANUP_ROWS:-50000}
rounds=${BENCH_ROUNDS:-2}
round_s=$((seconds / rounds > 0 ? seconds / rounds : 1))
demo=$build/examples/guestuser-demo
api=$build/bench/bench_requests
ceiling=$build/bench/http_ceiling
cli=$build/tools/guestuser
for f in "$demo" "$api" "$cli"; do
  [ -x "$f" ] || { echo "run.sh: $f not found; build $build first (or BENCH_BUILD=1)" >&2; exit 1; }
done
bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
for f in wrk curl "$bindir/pgbench" "$bindir/psql"; do
  command -v "$f" >/dev/null || { echo "run.sh: $f not found (Debian: wrk, curl, postgresql)" >&2; exit 1; }
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# the share of time some task waited for a CPU (Linux PSI), when there is one
psi() { [ -r /proc/pressure/cpu ] && sed -n 's/^some avg10=\([0-9.]*\) avg60=\([0-9.]*\).*/, CPU pressure (PSI some, 10 s\/60 s): \1%\/\2%/p' /proc/pressure/cpu; }
psi_before=$(psi || true)
bash "$here/../tests/pg-fixture.sh" start "$dir" >&2
conninfo=$(cat "$dir/conninfo")
psqlq() { "$bindir/psql" "$conninfo" -qXAt -v ON_ERROR_STOP=1 "$@"; }
# pg_stat_statements counts the statements every client sends: the round
# trips per request of the HTTP path. It must be preloaded, so the cluster
# restarts once (the settings the fixture passes on its command line are
# kept in postgresql.auto.conf).
pgss=0
if psqlq -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" \
  -c "ALTER SYSTEM SET synchronous_commit = off" -c "ALTER SYSTEM SET full_page_writes = off" &&
  bash "$here/../tests/pg-fixture.sh" pause "$dir" >&2 && bash "$here/../tests/pg-fixture.sh" resume "$dir" >&2 &&
  psqlq -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" 2>/dev/null; then
  pgss=1
fi
calls() {
  if [ "$pgss" = 1 ]; then
    psqlq -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'"
  else echo 0; fi
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU time in clock ticks: the whole machine's busy time (idle and I/O wait
# left out), and one process's with all its threads
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
cpu_us() { [ "${2:-0}" -gt 0 ] && calc "%.0f" "$1 * 1000000 / $hz / $2" || echo -; }
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
note() { echo "run.sh: $*" >&2; }
users() { psqlq -c "SELECT count(*) FROM guestuser.users"; }

# listening_port PID OUT LOG WHAT: waits until OUT says "listening on
# http://127.0.0.1:PORT/" and prints PORT; fails, showing LOG, when PID
# ended first
listening_port() {
  local port=
  for _ in $(seq 300); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$2")
    [ -n "$port" ] && break
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$3" >&2; echo "run.sh: $4 did not start" >&2; return 1; }
  echo "$port"
}

# start_demo NAME POOL [DEMO FLAGS...]: the demo on a free port, on the
# server $demo_server (mhd); sets demo_pid, demo_port
start_demo() {
  "$demo" --server "${demo_server:-mhd}" --bind 127.0.0.1 --port 0 --db "$conninfo" --pool-size "$2" "${@:3}" \
    >"$dir/$1.out" 2>"$dir/$1.log" &
  demo_pid=$!
  pids+=("$demo_pid")
  demo_port=$(listening_port "$demo_pid" "$dir/$1.out" "$dir/$1.log" "the demo") || exit 1
}

# wrk_run PORT PATH THREADS CONNS [COOKIE_FILE]: prints wrk's ops= line
wrk_run() {
  wrk -t"$3" -c"$4" -d"${seconds}s" -s "$here/wrk/visit.lua" "http://127.0.0.1:$1$2" \
    ${5:+-- "$5"} | grep '^ops='
}

# start_ceiling CASE: bench/http_ceiling on a free port for that case (new,
# returning, ping), in place of the one before; sets ceiling_port
ceiling_pid=
start_ceiling() {
  [ -z "$ceiling_pid" ] || { kill "$ceiling_pid"; wait "$ceiling_pid" 2>/dev/null || true; }
  # a file per case: the shell truncates it in the child, and reading the
  # last case's port from it before then would reach a stopped server
  "$ceiling" "$conninfo" --case "$1" --conns "$pool" >"$dir/ceiling-$1.out" 2>"$dir/ceiling-$1.log" &
  ceiling_pid=$!
  pids+=("$ceiling_pid")
  ceiling_port=$(listening_port "$ceiling_pid" "$dir/ceiling-$1.out" "$dir/ceiling-$1.log" \
    http_ceiling) || exit 1
}

# pgbench_run SCRIPT: prints ops= seconds= p50_ms= p99_ms= from its logs
pgbench_run() {
  rm -f "$dir"/pgb.*
  local out
  out=$(cd "$dir" && "$bindir/pgbench" -n -M prepared -c "$pool" -j 2 -T "$seconds" \
    -l --log-prefix="$dir/pgb" -f "$here/pgbench/$1" "$conninfo" 2>&1) ||
    { echo "$out" >&2; exit 1; }
  grep -q 'number of failed transactions: 0 ' <<<"$out" || note "pgbench $1: $(grep failed <<<"$out")"
  cat "$dir"/pgb.* | awk '{print $3}' | sort -n | awk -v s="$seconds" '
    { a[NR] = $1 }
    END { printf "ops=%d seconds=%s p50_ms=%.3f p99_ms=%.3f\n", NR, s,
          NR ? a[int((NR - 1) * 0.5) + 1] / 1000 : 0, NR ? a[int((NR - 1) * 0.99) + 1] / 1000 : 0 }'
}

# handler_times LOG FROM: the handler times (ms) the demo logged after line FROM
handler_times() { tail -n +"$(($2 + 1))" "$1" | awk 'NF == 5 && $4 ~ /^[0-9]+$/ { print $5 + 0 }'; }
lines() { wc -l <"$1"; }
# percentiles: times on stdin -> "p50/p99"
percentiles() {
  sort -n | awk '{ a[NR] = $1 } END { if (!NR) { print "-"; exit }
    printf "%.1f/%.1f\n", a[int((NR - 1) * 0.5) + 1], a[int((NR - 1) * 0.99) + 1] }'
}
rate() { calc "%.0f" "$(field "$1" ops) / $(field "$1" seconds)"; }
lat() { [ -n "$1" ] && calc "%.3f/%.2f" "$(field "$1" p50_ms), $(field "$1" p99_ms)" || echo -; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && calc "%.2f" "$(rate "$1") / $(rate "$2")" || echo -; }

fmt='%-24s %8s %8s %8s %8s %6s %6s %6s %6s %13s %11s %13s %13s %9s %8s\n'
rows=()
notes=()
cpu_fmt='%-24s %12s %12s %12s %12s %12s %12s\n'
cpu_rows=()
srv_fmt='%-22s %8s %8s %6s %8s %6s %9s %9s %7s %9s %13s %13s\n'
srv_rows=()
pipe_fmt='%-10s %8s %8s %6s %9s %9s %13s %13s\n'
pipe_rows=()
row() {
  local cells=() v
  for v in "$@"; do cells+=("${v:--}"); done
  # shellcheck disable=SC2059
  rows+=("$(printf "$fmt" "${cells[@]}")")
}

# measure NAME PATH API_CASE PGBENCH_SCRIPT [COOKIE_FILE]: one row
# combine LINE...: the runs of one measurement as one line: counts and
# times summed, p50 the mean weighted by requests, p99 the worst round's
combine() {
  printf '%s\n' "$@" | awk '
    { delete v; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      ops += v["ops"]; s += v["seconds"]; p50 += v["p50_ms"] * v["ops"]
      if (v["p99_ms"] + 0 > p99) p99 = v["p99_ms"] + 0
      n2 += v["non2xx"]; e += v["errors"]; rt += v["rt_per_op"] * v["ops"] }
    END { if (ops) printf "ops=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f non2xx=%d errors=%d rt_per_op=%.2f\n",
            ops, s, p50 / ops, p99, n2, e, rt / ops }'
}

# measure NAME PATH API_CASE PGBENCH_SCRIPT [COOKIE_FILE]: one row. The three
# take turns, in rounds of BENCH_SECONDS / BENCH_ROUNDS (HTTP API pgbench,
# then pgbench API HTTP, ...), so a neighbour's load drifting over the
# minute weighs on all three alike.
measure() {
  local name=$1 path=$2 api_case=$3 script=$4 cookies=${5:-} h a p c0 c1 r0 r1 rt l0 hl
  local hs=() as=() ps=() cs=() round order m calls_http=0 rss_http=0 ceil_case='' cc
  local b0 t0 bh=0 th=0 bc=0 tc=0 ba=0 bp=0
  : >"$dir/handler_times"
  # the ceiling's cookies name the sessions made for pgbench
  [ -x "$ceiling" ] && [ -n "$script" ] && ceil_case=$api_case
  [ -z "$ceil_case" ] || start_ceiling "$ceil_case"
  for ((round = 0; round < rounds; round++)); do
    order="http ceiling api pgbench"
    [ $((round % 2)) = 1 ] && order="pgbench api ceiling http"
    for m in $order; do
      case $m in
      http)
        note "$name: HTTP"
        r0=$(rss "$demo1") c0=$(calls) u0=$(users) l0=$(lines "$dir/demo1.log")
        b0=$(busy) t0=$(ticks "$demo1")
        h=$(seconds=$round_s wrk_run "$port1" "$path" "$wrk_threads" "$conns" "$cookies")
        bh=$((bh + $(busy) - b0)) th=$((th + $(ticks "$demo1") - t0))
        c1=$(calls) r1=$(rss "$demo1")
        handler_times "$dir/demo1.log" "$l0" >>"$dir/handler_times"
        # a cookie that did not resolve would have made a new guest
        [ -z "$cookies" ] || [ "$(users)" = "$u0" ] ||
          notes+=("$name: new users appeared over HTTP (cookies not recognised?)")
        calls_http=$((calls_http + c1 - c0)) rss_http=$((rss_http + r1 - r0))
        hs+=("$h")
        ;;
      ceiling)
        [ -n "$ceil_case" ] || continue
        note "$name: ceiling"
        cc=""
        [ -z "$cookies" ] || cc=$dir/bcookies
        b0=$(busy) t0=$(ticks "$ceiling_pid")
        cs+=("$(seconds=$round_s wrk_run "$ceiling_port" / "$wrk_threads" "$conns" "$cc")")
        bc=$((bc + $(busy) - b0)) tc=$((tc + $(ticks "$ceiling_pid") - t0))
        ;;
      api)
        [ -n "$api_case" ] || continue
        note "$name: API"
        b0=$(busy)
        a=$("$api" "$conninfo" --case "$api_case" --seconds "$round_s" --threads "$pool" \
          --cookies "$ncookies") || notes+=("$name: the API run reported errors: $a")
        ba=$((ba + $(busy) - b0))
        as+=("$a")
        ;;
      pgbench)
        [ -n "$script" ] || continue
        note "$name: pgbench"
        b0=$(busy)
        ps+=("$(seconds=$round_s pgbench_run "$script")")
        bp=$((bp + $(busy) - b0))
        ;;
      esac
    done
  done
  h=$(combine "${hs[@]}") a="" p="" c=""
  [ ${#cs[@]} = 0 ] || c=$(combine "${cs[@]}")
  [ ${#as[@]} = 0 ] || a=$(combine "${as[@]}")
  [ ${#ps[@]} = 0 ] || p=$(combine "${ps[@]}")
  hl=$(percentiles <"$dir/handler_times")
  cpu_rows+=("$(printf "$cpu_fmt" "$name" "$(cpu_us "$bh" "$(field "$h" ops)")" \
    "$(cpu_us "$th" "$(field "$h" ops)")" "$(cpu_us "$bc" "$(field "$c" ops)")" \
    "$(cpu_us "$tc" "$(field "$c" ops)")" "$(cpu_us "$ba" "$(field "$a" ops)")" \
    "$(cpu_us "$bp" "$(field "$p" ops)")")")
  http_total=$((http_total + $(field "$h" ops)))
  [ "$(field "$h" non2xx)$(field "$h" errors)" = 00 ] ||
    notes+=("$name: $(field "$h" non2xx) non-2xx answers, $(field "$h" errors) socket errors over HTTP")
  rt=-
  [ "$pgss" = 1 ] && rt=$(calc "%.2f" "$calls_http / $(field "$h" ops)")
  [ -z "$a" ] || rt="$rt/$(field "$a" rt_per_op)"
  eval "pgb_$api_case=\$p"
  row "$name" "$(rate "$h")" "${c:+$(rate "$c")}" "${a:+$(rate "$a")}" "${p:+$(rate "$p")}" \
    "$(ratio "$h" "$p")" "$(ratio "$c" "$p")" "$(ratio "$h" "$c")" "$(ratio "$a" "$p")" \
    "$(lat "$h")" "$hl" "$(lat "$a")" "$(lat "$p")" "$rt" "$rss_http"
}

cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)
echo "libguestuser benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "CPU: ${cpu:-unknown}, $(nproc) cores; load average before the run: $load_before$psi_before"
echo "PostgreSQL $(psqlq -c 'SHOW server_version') (private cluster, fsync off); $seconds s per measurement (in $rounds turns);" \
  "wrk -t$wrk_threads -c$conns; $pool database connections (demo pool, API threads, pgbench -c)"

start_demo demo1 "$pool"
demo1=$demo_pid port1=$demo_port
# Warm up: every pooled connection open and its statements prepared, so the
# RSS figures show growth under load, not start-up.
note "warming up the demo"
(seconds=1 wrk_run "$port1" /allow_guest_user/ "$wrk_threads" "$conns" >/dev/null)
(seconds=1 wrk_run "$port1" /healthz "$wrk_threads" "$conns" >/dev/null)
rss_start=$(rss "$demo1")
http_total=0
# The visitors that come back: the demo's own guests for HTTP, and for
# pgbench sessions whose tokens it can make itself (bench_requests makes
# its own through the API).
curl -s -o /dev/null -D - "http://127.0.0.1:$port1/allow_guest_user/?[1-$ncookies]" |
  sed -n 's/^Set-Cookie: \(sessionid=[^;]*\);.*/\1/p' >"$dir/cookies"
psqlq -c "WITH u AS (INSERT INTO guestuser.users (username)
    SELECT 'pgbench-returning-' || i FROM generate_series(1, 500) i RETURNING id, username),
  g AS (INSERT INTO guestuser.guests (user_id) SELECT id FROM u RETURNING user_id)
  INSERT INTO guestuser.sessions (token_hash, user_id, expires_at)
  SELECT sha256(int8send(-(substr(u.username, 19)::bigint))), u.id, now() + interval '14 days'
  FROM u" -c "VACUUM ANALYZE"
# ... and the ceiling's cookies, the numbers of those same sessions
seq 1 500 | sed 's/^/b=/' >"$dir/bcookies"

for c in $cases; do
  case $c in
  new) measure "new visitor" /allow_guest_user/ new new_visitor.sql ;;
  returning) measure "returning ($ncookies cookies)" /allow_guest_user/ returning returning_visitor.sql "$dir/cookies" ;;
  healthz) measure "/healthz" /healthz ping ping.sql ;;
  hello)
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port1/hello")
    if [ "$code" = 200 ]; then
      measure "/hello" /hello "" ""
    else
      row "/hello: skipped, $code" - - - - - - - - - - - - - -
    fi
    ;;
  cached)
    # The session cache on, in a demo of its own: the same returning
    # visitors against /hello, the page with no guard and no database, on
    # that same demo, in alternating turns.
    start_demo demo4 "$pool" --session-cache-ttl 60
    port4=$demo_port
    (seconds=1 wrk_run "$port4" /allow_guest_user/ "$wrk_threads" "$conns" "$dir/cookies" >/dev/null)
    cs=() hs4=()
    for ((round = 0; round < rounds; round++)); do
      note "session cache: returning, then /hello"
      cs+=("$(seconds=$round_s wrk_run "$port4" /allow_guest_user/ "$wrk_threads" "$conns" "$dir/cookies")")
      hs4+=("$(seconds=$round_s wrk_run "$port4" /hello "$wrk_threads" "$conns")")
    done
    hc=$(combine "${cs[@]}") hh=$(combine "${hs4[@]}")
    row "returning, cache on" "$(rate "$hc")" - - - - - - - "$(lat "$hc")" - - - - -
    row "/hello, same demo" "$(rate "$hh")" - - - - - - - "$(lat "$hh")" - - - - -
    cached_ratio=$(calc "%.2f" "$(rate "$hc") / $(rate "$hh")")
    notes+=("session cache: returning visitors at ${cached_ratio}x the same demo's /hello (target 0.8)")
    ;;
  servers)
    # The demo on each other server (BENCH_SERVERS), in alternating turns
    # with the ceiling and the first demo (mhd): demo / ceiling and the
    # server process's CPU per request / the ceiling's, side by side in
    # one run.
    for srv in ${BENCH_SERVERS:-evhttp}; do
      demo_server=$srv start_demo "demo-$srv" "$pool"
      dsrv=$demo_pid psrv=$demo_port
      (seconds=1 wrk_run "$psrv" /allow_guest_user/ "$wrk_threads" "$conns" >/dev/null)
      for k in new returning; do
        start_ceiling "$k"
        ck="" cc=""
        [ "$k" = returning ] && ck=$dir/cookies cc=$dir/bcookies
        ss=() cs=() ms=() ts=0 tc=0 tm=0
        for ((round = 0; round < rounds; round++)); do
          order="srv ceiling mhd"
          [ $((round % 2)) = 1 ] && order="mhd ceiling srv"
          for m in $order; do
            note "$srv: $k, $m"
            case $m in
            srv)
              t0=$(ticks "$dsrv")
              ss+=("$(seconds=$round_s wrk_run "$psrv" /allow_guest_user/ "$wrk_threads" "$conns" "$ck")")
              ts=$((ts + $(ticks "$dsrv") - t0)) ;;
            ceiling)
              t0=$(ticks "$ceiling_pid")
              cs+=("$(seconds=$round_s wrk_run "$ceiling_port" / "$wrk_threads" "$conns" "$cc")")
              tc=$((tc + $(ticks "$ceiling_pid") - t0)) ;;
            mhd)
              t0=$(ticks "$demo1")
              ms+=("$(seconds=$round_s wrk_run "$port1" /allow_guest_user/ "$wrk_threads" "$conns" "$ck")")
              tm=$((tm + $(ticks "$demo1") - t0)) ;;
            esac
          done
        done
        hs=$(combine "${ss[@]}") hc=$(combine "${cs[@]}") hm=$(combine "${ms[@]}")
        [ "$(field "$hs" non2xx)$(field "$hs" errors)" = 00 ] ||
          notes+=("$srv, $k: $(field "$hs" non2xx) non-2xx answers, $(field "$hs" errors) socket errors")
        us_s=$(cpu_us "$ts" "$(field "$hs" ops)") us_c=$(cpu_us "$tc" "$(field "$hc" ops)")
        us_m=$(cpu_us "$tm" "$(field "$hm" ops)")
        cr=-
        [ "$us_s" != - ] && [ "$us_c" != - ] && [ "$us_c" != 0 ] && cr=$(calc "%.2f" "$us_s / $us_c")
        # shellcheck disable=SC2059
        srv_rows+=("$(printf "$srv_fmt" "$srv: $k" "$(rate "$hs")" "$(rate "$hc")" "$(ratio "$hs" "$hc")" \
          "$(rate "$hm")" "$(ratio "$hm" "$hc")" "$us_s" "$us_c" "$cr" "$us_m" "$(lat "$hs")" "$(lat "$hc")")")
      done
      kill "$dsrv"
      wait "$dsrv" 2>/dev/null || true
    done
    ;;
  pipeline)
    # libpq's pipeline mode at its best: the ceiling with --pipeline (every
    # request's statement sent at once behind those in flight, a sync point
    # each) against the plain ceiling (one statement per connection at a
    # time), in alternating turns, with each process's CPU per request.
    for k in new returning; do
      start_ceiling "$k"
      "$ceiling" "$conninfo" --case "$k" --conns "$pool" --pipeline \
        >"$dir/pipe-$k.out" 2>"$dir/pipe-$k.log" &
      pipe_pid=$!
      pids+=("$pipe_pid")
      pipe_port=$(listening_port "$pipe_pid" "$dir/pipe-$k.out" "$dir/pipe-$k.log" http_ceiling) || exit 1
      cc=""
      [ "$k" = returning ] && cc=$dir/bcookies
      ps_=() cs=() tp=0 tc=0
      for ((round = 0; round < rounds; round++)); do
        order="pipe plain"
        [ $((round % 2)) = 1 ] && order="plain pipe"
        for m in $order; do
          note "pipeline: $k, $m"
          if [ "$m" = pipe ]; then
            t0=$(ticks "$pipe_pid")
            ps_+=("$(seconds=$round_s wrk_run "$pipe_port" / "$wrk_threads" "$conns" "$cc")")
            tp=$((tp + $(ticks "$pipe_pid") - t0))
          else
            t0=$(ticks "$ceiling_pid")
            cs+=("$(seconds=$round_s wrk_run "$ceiling_port" / "$wrk_threads" "$conns" "$cc")")
            tc=$((tc + $(ticks "$ceiling_pid") - t0))
          fi
        done
      done
      kill "$pipe_pid"
      wait "$pipe_pid" 2>/dev/null || true
      hp=$(combine "${ps_[@]}") hc=$(combine "${cs[@]}")
      # shellcheck disable=SC2059
      pipe_rows+=("$(printf "$pipe_fmt" "$k" "$(rate "$hp")" "$(rate "$hc")" "$(ratio "$hp" "$hc")" \
        "$(cpu_us "$tp" "$(field "$hp" ops)")" "$(cpu_us "$tc" "$(field "$hc" ops)")" "$(lat "$hp")" "$(lat "$hc")")")
    done
    ;;
  pgbouncer)
    # The demo through a PgBouncer in transaction mode (the test fixture's,
    # configured as production runs it) next to the first demo, direct, in
    # alternating turns: what the pooler's extra hop and unnamed
    # statements cost. Skipped without pgbouncer.
    if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
      row "PgBouncer: skipped" - - - - - - - - - - - - - -
      continue
    fi
    PATH=$PATH:/usr/sbin bash "$here/../tests/pgbouncer-fixture.sh" start "$dir/bouncer" "$dir" >&2
    bouncer_dir=$dir/bouncer
    start_demo demo5 "$pool" --db "$(cat "$dir/bouncer/conninfo")"
    demo5=$demo_pid port5=$demo_port
    (seconds=1 wrk_run "$port5" /allow_guest_user/ "$wrk_threads" "$conns" >/dev/null)
    curl -s -o /dev/null -D - "http://127.0.0.1:$port5/allow_guest_user/?[1-$ncookies]" |
      sed -n 's/^Set-Cookie: \(sessionid=[^;]*\);.*/\1/p' >"$dir/cookies5"
    for k in new returning; do
      ck="" ck5="" bs=() ds=() cb=0 rb=0
      [ "$k" = returning ] && ck=$dir/cookies ck5=$dir/cookies5
      for ((round = 0; round < rounds; round++)); do
        note "PgBouncer: $k"
        r0=$(rss "$demo5") c0=$(calls)
        bs+=("$(seconds=$round_s wrk_run "$port5" /allow_guest_user/ "$wrk_threads" "$conns" "$ck5")")
        c1=$(calls) r1=$(rss "$demo5")
        cb=$((cb + c1 - c0)) rb=$((rb + r1 - r0))
        ds+=("$(seconds=$round_s wrk_run "$port1" /allow_guest_user/ "$wrk_threads" "$conns" "$ck")")
      done
      hb=$(combine "${bs[@]}") hd=$(combine "${ds[@]}")
      [ "$(field "$hb" non2xx)$(field "$hb" errors)" = 00 ] ||
        notes+=("PgBouncer, $k: $(field "$hb" non2xx) non-2xx answers, $(field "$hb" errors) socket errors")
      p=$(eval echo "\${pgb_$k:-}")
      rt=-
      [ "$pgss" = 1 ] && rt=$(calc "%.2f" "$cb / $(field "$hb" ops)")
      row "PgBouncer: $k" "$(rate "$hb")" "" "" "${p:+$(rate "$p")}" "$(ratio "$hb" "$p")" "" "" "" \
        "$(lat "$hb")" - "" "$(lat "$p")" "$rt" "$rb"
      row "  direct, same turns" "$(rate "$hd")" "" "" "" "$(ratio "$hd" "$p")" "" "" "" "$(lat "$hd")" - "" "" "" ""
    done
    kill "$demo5"
    wait "$demo5" 2>/dev/null || true
    bash "$here/../tests/pgbouncer-fixture.sh" stop "$bouncer_dir" >&2
    bouncer_dir=
    ;;
  two)
    # Two more demos, each with half the connections, so the database sees
    # as many as in the other rows; the first one idles meanwhile.
    half=$((pool / 2 > 0 ? pool / 2 : 1))
    start_demo demo2 "$half"
    demo2=$demo_pid port2=$demo_port
    start_demo demo3 "$half"
    demo3=$demo_pid port3=$demo_port
    (seconds=1 wrk_run "$port2" /allow_guest_user/ 1 "$conns" >/dev/null)
    (seconds=1 wrk_run "$port3" /allow_guest_user/ 1 "$conns" >/dev/null)
    for k in new returning; do
      note "two demos: $k"
      ck=""
      [ "$k" = returning ] && ck=$dir/cookies
      r0=$(($(rss "$demo2") + $(rss "$demo3")))
      c0=$(calls)
      l2=$(lines "$dir/demo2.log") l3=$(lines "$dir/demo3.log")
      wrk_run "$port2" /allow_guest_user/ 1 $((conns / 2)) "$ck" >"$dir/w1" &
      w1=$!
      wrk_run "$port3" /allow_guest_user/ 1 $((conns / 2)) "$ck" >"$dir/w2"
      wait "$w1"
      c1=$(calls)
      hl=$({ handler_times "$dir/demo2.log" "$l2"; handler_times "$dir/demo3.log" "$l3"; } | percentiles)
      r1=$(($(rss "$demo2") + $(rss "$demo3")))
      h1=$(cat "$dir/w1") h2=$(cat "$dir/w2")
      ops=$(($(field "$h1" ops) + $(field "$h2" ops)))
      # the slower of the two for the time and each percentile
      worse() { calc "%.3f" "($(field "$h1" "$1") > $(field "$h2" "$1")) ? $(field "$h1" "$1") : $(field "$h2" "$1")"; }
      h="ops=$ops seconds=$(worse seconds) p50_ms=$(worse p50_ms) p99_ms=$(worse p99_ms)"
      [ "$(field "$h1" non2xx)$(field "$h1" errors)$(field "$h2" non2xx)$(field "$h2" errors)" = 0000 ] ||
        notes+=("two demos, $k: non-2xx answers or socket errors: $h1 / $h2")
      rt=-
      [ "$pgss" = 1 ] && rt=$(calc "%.2f" "($c1 - $c0) / $ops")
      p=$(eval echo "\${pgb_$k:-}")
      row "2 demos: $k" "$(rate "$h")" "" "" "${p:+$(rate "$p")}" "$(ratio "$h" "$p")" "" "" "" \
        "$(lat "$h")" "$hl" "" "$(lat "$p")" "$rt" "$((r1 - r0))"
    done
    kill "$demo2" "$demo3"
    wait "$demo2" "$demo3" 2>/dev/null || true
    ;;
  cleanup)
    # Fresh expired guests for each run (with a session each, as a guest
    # has); the library's command and one set-based DELETE take turns.
    populate() {
      psqlq -c "WITH u AS (INSERT INTO guestuser.users (username)
          SELECT 'expired-$1-' || i FROM generate_series(1, $cleanup_rows) i RETURNING id),
        g AS (INSERT INTO guestuser.guests (user_id, created_at)
          SELECT id, now() - interval '30 days' FROM u RETURNING user_id)
        INSERT INTO guestuser.sessions (token_hash, user_id, expires_at)
        SELECT sha256(int8send(-1000000 - user_id)), user_id, now() - interval '16 days' FROM g" \
        -c "VACUUM ANALYZE guestuser.users, guestuser.guests, guestuser.sessions"
    }
    best_cli="" best_raw="" cli_rt=0
    for round in cli raw raw cli; do
      note "cleanup: $round"
      populate "$round$RANDOM"
      c0=$(calls)
      t0=$(date +%s.%N)
      if [ "$round" = cli ]; then
        out=$("$cli" --db "$conninfo" delete-expired)
      else
        out=$("$bindir/psql" "$conninfo" -XAt -v ON_ERROR_STOP=1 -c "DELETE FROM guestuser.users
          WHERE id IN (SELECT user_id FROM guestuser.guests WHERE created_at < now() - interval '14 days')")
        out=${out/DELETE/deleted:}
      fi
      t=$(calc "%.3f" "$(date +%s.%N) - $t0")
      c1=$(calls)
      grep -q "deleted: $cleanup_rows\$" <<<"$out" || notes+=("cleanup $round: expected 'deleted: $cleanup_rows', got: $out")
      if [ "$round" = cli ]; then
        cli_rt=$((c1 - c0))
        [ -z "$best_cli" ] || [ "$(calc %d "$t < $best_cli")" = 1 ] && best_cli=$t
      else
        [ -z "$best_raw" ] || [ "$(calc %d "$t < $best_raw")" = 1 ] && best_raw=$t
      fi
    done
    row "cleanup $cleanup_rows expired" "$(calc %.0f "$cleanup_rows / $best_cli")" "" "" \
      "$(calc %.0f "$cleanup_rows / $best_raw")" "$(calc %.2f "$best_raw / $best_cli")" "" "" "" \
      "${best_cli}s" "" "" "${best_raw}s" "$([ "$pgss" = 1 ] && echo "$cli_rt/run" || echo -)" -
    ;;
  *) echo "run.sh: unknown case '$c' in BENCH_CASES" >&2; exit 1 ;;
  esac
done
rss_end=$(rss "$demo1")
# What the demos answered other than 200 (the /hello probe aside), from their
# request logs ("ADDR METHOD TARGET STATUS TIMEms").
for log in "$dir"/demo*.log; do
  other=$(awk 'NF == 5 && $4 ~ /^[0-9]+$/ && $4 != 200 && $3 != "/hello" { n[$4]++ }
    END { for (s in n) printf "%s%d x %s", (k++ ? ", " : ""), n[s], s }' "$log")
  [ -z "$other" ] || notes+=("$(basename "$log" .log) answered $other (slowest: $(
    awk 'NF == 5 { t = $5 + 0; if (t > m) m = t } END { print m }' "$log") ms in the handler)")
done

echo
# shellcheck disable=SC2059
printf "$fmt" case HTTP/s ceil/s API/s pgbench/s H/pgb C/pgb H/C A/pgb "HTTP p50/99" "in handler" "API p50/99" "pgb p50/99" RT/op "RSS+ KB"
printf '%s\n' "${rows[@]}"
echo
echo "HTTP: wrk -t$wrk_threads -c$conns through guestuser-demo --server mhd (pool $pool); API: bench_requests --case,"
echo "$pool threads in process; pgbench: bench/pgbench/*.sql, -M prepared -c $pool. Latencies in ms, p50/p99"
echo "(p50: mean of the turns, p99: the worst turn's); \"in handler\": the part of the HTTP latency spent in"
echo "the demo's handler (library + database), from its request log. RT/op: statements per request over"
echo "HTTP (pg_stat_statements) / through the API (the library's counter). Cleanup: guestuser delete-expired"
echo "(HTTP column) against one raw DELETE (pgbench column) in rows/s, each the best of 2 on fresh rows;"
echo "its RT/op is statements per run."
echo
echo "CPU time per request in microseconds: the whole machine's (load generator, server, PostgreSQL"
echo "and any neighbour), and the server process's own. $(nproc) cores give $(nproc),000,000 us per second,"
echo "so that divided by the machine's figure is the most requests per second that work could reach here."
# shellcheck disable=SC2059
printf "$cpu_fmt" case "HTTP machine" "HTTP demo" "ceil machine" "ceil server" "API machine" "pgb machine"
printf '%s\n' "${cpu_rows[@]}"
if [ ${#pipe_rows[@]} -gt 0 ]; then
  echo
  echo "libpq's pipeline mode at its best: bench/http_ceiling --pipeline against the plain ceiling, in"
  echo "turns (P/C: pipelined / plain requests per second; CPU: microseconds of the server per request)."
  # shellcheck disable=SC2059
  printf "$pipe_fmt" case pipe/s ceil/s P/C "CPU pipe" "CPU ceil" "pipe p50/99" "ceil p50/99"
  printf '%s\n' "${pipe_rows[@]}"
fi
if [ ${#srv_rows[@]} -gt 0 ]; then
  echo
  echo "The demo on other servers, in turns with the ceiling and the mhd demo (same cookies, same wrk):"
  echo "D/C = that demo / the ceiling, M/C = the mhd demo / the ceiling; CPU: microseconds of the server"
  echo "process per request (all its threads), and that of the demo / that of the ceiling."
  # shellcheck disable=SC2059
  printf "$srv_fmt" case demo/s ceil/s D/C mhd/s M/C "CPU demo" "CPU ceil" CPU-D/C "CPU mhd" "demo p50/99" "ceil p50/99"
  printf '%s\n' "${srv_rows[@]}"
fi
echo
echo "ceil: bench/http_ceiling, the least an HTTP front end does around the same statements (one epoll"
echo "thread, non-blocking libpq on $pool connections, no library, a fixed answer) under the same wrk: C/pgb is"
echo "how near pgbench any HTTP server comes on this machine, H/C how near the demo comes to that ceiling."
echo "demo RSS: $rss_start KB after warm-up, $rss_end KB after $http_total requests" \
  "($((rss_end - rss_start)) KB); the two-demo rows: both extra processes' growth"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)$(psi || true)"
for n in "${notes[@]}"; do echo "NOTE: $n"; done
