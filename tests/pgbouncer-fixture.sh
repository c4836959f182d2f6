#!/usr/bin/env bash
# Starts or stops a PgBouncer in front of the test cluster, configured as
# production sites run it: pool_mode = transaction, and only
# extra_float_digits among the ignored startup parameters (so a client
# sending `options` is refused, as there).
#   pgbouncer-fixture.sh start DIR PG_DIR   on a free 127.0.0.1 port; writes DIR/conninfo
#   pgbouncer-fixture.sh stop DIR
# PGBOUNCER_IGNORE (extra_float_digits) and PGBOUNCER_POOL_SIZE (40) change
# ignore_startup_parameters and default_pool_size: a "lenient" PgBouncer
# that drops `options` silently, as some sites configure it.
# PgBouncer refuses to run as root, so as root it runs as user postgres.
set -euo pipefail
cmd=${1:?usage: pgbouncer-fixture.sh start DIR PG_DIR | stop DIR}
dir=${2:?usage: pgbouncer-fixture.sh start DIR PG_DIR | stop DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Its files must be writable by the user it runs as: a private build tree
# may not be, so they live in /tmp and DIR keeps a link.
run_dir() {
  if [ -L "$dir/run" ] || [ -d "$dir/run" ]; then readlink -f "$dir/run"; return; fi
  local t; t=$(mktemp -d /tmp/guestuser-pgbouncer.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres: "$t"
  ln -s "$t" "$dir/run"; echo "$t"
}

# Whether PID runs (a zombie does not: nothing may reap a daemon here).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

stop() {
  if [ -e "$dir/run" ]; then
    local r; r=$(readlink -f "$dir/run")
    # A PgBouncer that ended before its stop is a fault to explain: its
    # log's end goes to the stop's output (and ctest's log), and the whole
    # log stays beside the fixture's directory.
    [ -f "$r/pgbouncer.log" ] && cp "$r/pgbouncer.log" "$dir/last-pgbouncer.log"
    if ! { [ -f "$r/pgbouncer.pid" ] && alive "$(cat "$r/pgbouncer.pid")"; }; then
      echo "pgbouncer-fixture: PgBouncer had ended before this stop; the end of its log:" >&2
      tail -n 20 "$r/pgbouncer.log" >&2 2>/dev/null || true
    fi
    if [ -f "$r/pgbouncer.pid" ]; then
      kill "$(cat "$r/pgbouncer.pid")" 2>/dev/null || true
      for _ in $(seq 1 100); do [ -f "$r/pgbouncer.pid" ] || break; sleep 0.1; done
    fi
    rm -rf "$r" "$dir/run"
  fi
  rm -f "$dir/conninfo"
}

case "$cmd" in
start)
  pg_dir=${3:?usage: pgbouncer-fixture.sh start DIR PG_DIR}
  command -v pgbouncer >/dev/null || { echo "pgbouncer-fixture: pgbouncer not found (Debian: pgbouncer)" >&2; exit 1; }
  stop
  pg_port=$(cat "$pg_dir/port")
  r=$(run_dir)
  echo '"postgres" ""' >"$r/userlist.txt"
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 30000))
    cat >"$r/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $r/userlist.txt
pool_mode = transaction
ignore_startup_parameters = ${PGBOUNCER_IGNORE:-extra_float_digits}
max_client_conn = 1000
default_pool_size = ${PGBOUNCER_POOL_SIZE:-40}
logfile = $r/pgbouncer.log
pidfile = $r/pgbouncer.pid
EOF
    [ "$(id -u)" = 0 ] && chown postgres: "$r"/*
    # Its descriptors raised to the hard limit (as the user it runs as):
    # at 1024, max_client_conn and the server connections of a busy
    # ctest -j4 could bring it to EMFILE.
    if as_pg sh -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec pgbouncer -d "$1"' sh \
      "$r/pgbouncer.ini" 2>>"$r/start.log"; then
      for _ in $(seq 1 100); do
        # Its own log must say it listens: an answer on the port alone may
        # come from another suite's server that took the port first (the
        # daemon then exits, having failed to bind).
        if grep -q "listening on 127.0.0.1:$port\$" "$r/pgbouncer.log" 2>/dev/null &&
          [ -f "$r/pgbouncer.pid" ] && kill -0 "$(cat "$r/pgbouncer.pid")" 2>/dev/null &&
          (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
          echo "host=127.0.0.1 port=$port user=postgres dbname=postgres" >"$dir/conninfo"
          echo "pgbouncer-fixture: PgBouncer (transaction pooling) on 127.0.0.1:$port -> $pg_port"
          exit 0
        fi
        sleep 0.1
      done
      stop; r=$(run_dir); echo '"postgres" ""' >"$r/userlist.txt"
    fi
  done
  echo "pgbouncer-fixture: could not start PgBouncer:" >&2
  cat "$r/start.log" "$r/pgbouncer.log" >&2 2>/dev/null || true
  exit 1 ;;
stop) stop ;;
*) echo "pgbouncer-fixture: unknown command $cmd" >&2; exit 2 ;;
esac
