#!/usr/bin/env bash
# Starts or stops a private PostgreSQL cluster for the test suite.
#   pg-fixture.sh start DIR   initdb + start on a free 127.0.0.1 port; writes DIR/conninfo
#   pg-fixture.sh stop DIR    stop and remove the cluster
#   pg-fixture.sh pause DIR / resume DIR   stop / start the same cluster (outage tests)
#   pg-fixture.sh standby DIR PRIMARY_DIR   a streaming standby of PRIMARY_DIR's cluster
#                                           (pg_basebackup -R), on its own free port
#   pg-fixture.sh crash DIR     stop at once (-m immediate), as a failing server does
#   pg-fixture.sh promote DIR   turn a standby into a primary
# initdb refuses to run as root, so as root the server runs as user postgres.
set -euo pipefail
cmd=${1:?usage: pg-fixture.sh start|stop|pause|resume DIR}
dir=${2:?usage: pg-fixture.sh start|stop|pause|resume DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$bindir" ] || bindir=$(dirname "$(command -v initdb || echo /usr/bin/initdb)")
fi
[ -x "$bindir/initdb" ] || { echo "pg-fixture: initdb not found (install postgresql)" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The data directory must be reachable by the server's user; a build tree
# below a private (mode 700) folder is not, so it then lives in /tmp and the
# build tree keeps a link to it.
data_dir() {
  if [ -L "$dir/data" ] || [ -d "$dir/data" ]; then readlink -f "$dir/data"; return; fi
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -w "$dir" 2>/dev/null; then
    mkdir -p "$dir/data"; chown postgres: "$dir/data" 2>/dev/null || true
    echo "$dir/data"
  else
    local t; t=$(mktemp -d /tmp/guestuser-pg.XXXXXX)
    chown postgres: "$t"; ln -s "$t" "$dir/data"; echo "$t"
  fi
}

case "$cmd" in
start)
  "$0" stop "$dir" >/dev/null 2>&1 || true
  d=$(data_dir)
  as_pg "$bindir/initdb" -D "$d" -U postgres -A trust -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 30000))
    if as_pg "$bindir/pg_ctl" -D "$d" -l "$d/server.log" -w -t 30 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null 2>&1; then
      echo "host=127.0.0.1 port=$port user=postgres dbname=postgres" >"$dir/conninfo"
      echo "$port" >"$dir/port"
      echo "pg-fixture: PostgreSQL on 127.0.0.1:$port ($d)"
      exit 0
    fi
  done
  echo "pg-fixture: could not start PostgreSQL:" >&2; cat "$d/server.log" >&2 || true; exit 1 ;;
standby)
  primary=${3:?usage: pg-fixture.sh standby DIR PRIMARY_DIR}
  "$0" stop "$dir" >/dev/null 2>&1 || true
  d=$(data_dir)
  rm -rf "${d:?}"/*
  as_pg "$bindir/pg_basebackup" -h 127.0.0.1 -p "$(cat "$primary/port")" -U postgres \
    -D "$d" -R -X stream -c fast >"$dir/basebackup.log" 2>&1 ||
    { cat "$dir/basebackup.log" >&2; exit 1; }
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 30000))
    if as_pg "$bindir/pg_ctl" -D "$d" -l "$d/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null 2>&1; then
      echo "host=127.0.0.1 port=$port user=postgres dbname=postgres" >"$dir/conninfo"
      echo "$port" >"$dir/port"
      echo "pg-fixture: standby on 127.0.0.1:$port of $primary ($d)"
      exit 0
    fi
  done
  echo "pg-fixture: could not start the standby:" >&2; cat "$d/server.log" >&2 || true; exit 1 ;;
crash)
  as_pg "$bindir/pg_ctl" -D "$(data_dir)" -m immediate -w stop >/dev/null ;;
promote)
  as_pg "$bindir/pg_ctl" -D "$(data_dir)" -w -t 60 promote >/dev/null ;;
pause)
  as_pg "$bindir/pg_ctl" -D "$(data_dir)" -m fast -w stop >/dev/null ;;
resume)
  port=$(cat "$dir/port"); d=$(data_dir)
  as_pg "$bindir/pg_ctl" -D "$d" -l "$d/server.log" -w -t 30 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300 -c fsync=off" start >/dev/null ;;
stop)
  if [ -e "$dir/data" ]; then
    d=$(readlink -f "$dir/data")
    as_pg "$bindir/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$d" "$dir/data"
  fi
  rm -f "$dir/conninfo" "$dir/port" ;;
*) echo "pg-fixture: unknown command $cmd" >&2; exit 2 ;;
esac
