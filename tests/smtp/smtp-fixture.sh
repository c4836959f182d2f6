#!/usr/bin/env bash
# Starts and stops the test suite's SMTP server (tests/smtp/README.md):
# smtp_server.py (Debian's python3-aiosmtpd) on loopback ports the kernel
# picks, saving each message it accepts under DIR/mail.
#   smtp-fixture.sh start DIR    a fresh server: new ports, credentials and
#                                certificate, an empty DIR/mail; writes DIR/env
#   smtp-fixture.sh stop DIR     ends it; DIR/env, the ports, the secrets and
#                                the mail stay, for resume
#   smtp-fixture.sh resume DIR   starts it again as it was: the same ports,
#                                credentials and certificate, the mail kept
#   smtp-fixture.sh restart DIR  stop, then resume
# GUESTUSER_PYTHON names the python3 to use (default: the first of python3
# on PATH and /usr/bin/python3 that has aiosmtpd).
set -euo pipefail
cmd=${1:?usage: smtp-fixture.sh start|stop|resume|restart DIR}
dir=${2:?usage: smtp-fixture.sh start|stop|resume|restart DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
script="$here/smtp_server.py"

alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# Ends the server whose pid is in DIR/server.pid if that process still runs
# smtp_server.py for this DIR (a pid is never killed on trust alone).
stop_server() {
  local pidf="$dir/server.pid" pid
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf" 2>/dev/null || true)
  rm -f "$pidf" # its watchdog ends it too, within 1 s, if the kill misses
  if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$script --dir $dir "; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null
  fi
  return 0
}

fail() {
  echo "smtp-fixture: $*" >&2
  [ -s "$dir/server.log" ] && { echo "---- $dir/server.log" >&2; tail -n 30 "$dir/server.log" >&2; }
  stop_server
  exit 1
}

find_python() {
  local p
  for p in ${GUESTUSER_PYTHON:-} python3 /usr/bin/python3; do
    command -v "$p" >/dev/null 2>&1 || continue
    if "$p" -c 'import aiosmtpd' >/dev/null 2>&1; then
      command -v "$p"
      return 0
    fi
  done
  return 1
}

# Runs the server with PORTS (NAME=PORT,...; empty: any) and waits until it
# listens and has written DIR/ports.
run_server() {
  local ports=$1 python pid
  python=$(find_python) ||
    fail "no python3 with aiosmtpd: install Debian's python3-aiosmtpd (apt-get install python3-aiosmtpd; scripts/deps.sh does)"
  rm -f "$dir/ports"
  setsid "$python" "$script" --dir "$dir" --ports "$ports" \
    --credentials "$dir/credentials" --cert "$dir/cert.pem" --key "$dir/key.pem" \
    >>"$dir/server.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/server.pid"
  for _ in $(seq 1 150); do
    [ -s "$dir/ports" ] && return 0
    alive "$pid" || fail "the server exited at start"
    sleep 0.1
  done
  fail "the server did not listen within 15 s"
}

port_of() { sed -n "s/^$1=//p" "$dir/ports"; }

case "$cmd" in
start)
  stop_server
  rm -rf "$dir/mail" "$dir/env" "$dir/ports" "$dir/server.log"
  mkdir -p "$dir/mail"
  user="mailer$(od -An -tx1 -N3 /dev/urandom | tr -d ' \n')"
  password=$(od -An -tx1 -N18 /dev/urandom | tr -d ' \n')
  (umask 077 && printf '%s:%s\n' "$user" "$password" >"$dir/credentials")
  # A self-signed certificate for 127.0.0.1 and localhost, new at each start;
  # it is its own CA (SMTP_CA_FILE).
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" >"$dir/openssl.log" 2>&1 ||
    fail "openssl req failed: $(tail -n 3 "$dir/openssl.log")"
  run_server ""
  base=smtp://127.0.0.1
  cat >"$dir/env.tmp" <<ENV
SMTP_URL=$base:$(port_of plain)
SMTP_AUTH_URL=$base:$(port_of auth)
SMTP_STARTTLS_URL=$base:$(port_of starttls)
SMTPS_URL=smtps://127.0.0.1:$(port_of smtps)
SMTP_DIR=$dir/mail
SMTP_USERNAME=$user
SMTP_PASSWORD=$password
SMTP_CREDENTIALS_FILE=$dir/credentials
SMTP_CA_FILE=$dir/cert.pem
SMTP_LOG=$dir/server.log
SMTP_FIXTURE_DIR=$dir
SMTP_FIXTURE_SCRIPT=$here/smtp-fixture.sh
ENV
  mv "$dir/env.tmp" "$dir/env"
  echo "smtp-fixture: listening on $(tr '\n' ' ' <"$dir/ports")(DIR $dir)"
  ;;
stop)
  stop_server
  ;;
resume | restart)
  stop_server
  [ -s "$dir/env" ] || fail "no server was started in $dir (run start first)"
  ports=$(sed -n 's#^SMTP_URL=.*:\([0-9]*\)$#plain=\1#p; s#^SMTP_AUTH_URL=.*:\([0-9]*\)$#auth=\1#p;
    s#^SMTP_STARTTLS_URL=.*:\([0-9]*\)$#starttls=\1#p; s#^SMTPS_URL=.*:\([0-9]*\)$#smtps=\1#p' \
    "$dir/env" | paste -sd, -)
  run_server "$ports"
  ;;
*)
  echo "usage: smtp-fixture.sh start|stop|resume|restart DIR" >&2
  exit 2
  ;;
esac
