#!/usr/bin/env bash
# Starts or stops the OpenID Providers of the test suite, on loopback ports
# the kernel picks (so parallel runs and build trees never clash):
#   the real one (provider.mjs: oidc-provider) and the hostile one
#   (hostile.mjs), both under node.
#   oidc-fixture.sh start DIR   start both, wait for their discovery
#                               documents, write DIR/env (README.md)
#   oidc-fixture.sh stop DIR    stop both; DIR/*.log stay for a look
# GUESTUSER_NODE names the node binary (default: node on PATH).
set -euo pipefail
cmd=${1:?usage: oidc-fixture.sh start|stop DIR}
dir=${2:?usage: oidc-fixture.sh start|stop DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Whether PID runs (a zombie, exited but not yet reaped by init, does not).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# Ends the server whose pid file is DIR/NAME.pid, if that process is still
# the node running SCRIPT (a pid is never killed on trust alone).
stop_one() {
  local name=$1 script=$2 pidf="$dir/$1.pid" pid
  if [ -f "$pidf" ]; then
    pid=$(cat "$pidf" 2>/dev/null || true)
    rm -f "$pidf" # its watchdog ends it too, within 2 s, if the kill misses
    if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "$script"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
      alive "$pid" && kill -9 "$pid" 2>/dev/null
    fi
  fi
  rm -f "$dir/$name.port"
}

stop_all() {
  rm -f "$dir/env"
  stop_one provider provider.mjs
  stop_one hostile hostile.mjs
}

fail() {
  echo "oidc-fixture: $*" >&2
  for log in "$dir/provider.log" "$dir/hostile.log"; do
    [ -s "$log" ] && { echo "---- $log" >&2; tail -n 40 "$log" >&2; }
  done
  stop_all
  exit 1
}

# Waits for NAME's port file, then for URL (with PORT in it) to answer 200.
wait_ready() {
  local name=$1 url=$2 port=""
  for _ in $(seq 1 300); do
    if [ -z "$port" ] && [ -s "$dir/$name.port" ]; then port=$(cat "$dir/$name.port"); fi
    if [ -n "$port" ] && curl -fsS --max-time 5 -o /dev/null "${url//PORT/$port}" 2>/dev/null; then
      echo "$port"
      return 0
    fi
    sleep 0.1
  done
  return 1
}

secret() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }

case "$cmd" in
start)
  stop_all
  node=${GUESTUSER_NODE:-$(command -v node || true)}
  [ -n "$node" ] && [ -x "$node" ] ||
    fail "node not found: install nodejs and npm (scripts/deps.sh does)"
  major=$("$node" -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || fail "node $("$node" --version) is too old: 20 or later is needed"
  for pkg in oidc-provider jose; do
    [ -f "$here/node_modules/$pkg/package.json" ] ||
      fail "$here/node_modules/$pkg is missing: run
  npm ci --prefix tests/oidc --ignore-scripts --no-audit --no-fund
(scripts/test.sh does)"
  done
  command -v curl >/dev/null || fail "curl not found (Debian: curl)"

  # Clients of the real provider, with fresh secrets; each secret also in a
  # file of its own, for --oidc NAME,ISSUER,CLIENT_ID,CLIENT_SECRET_FILE.
  mkdir -p "$dir/secrets"
  chmod 700 "$dir/secrets"
  s_basic=$(secret) s_post=$(secret) s_es=$(secret) s_ps=$(secret) s_hostile=$(secret)
  redirects='["http://127.0.0.1/*", "http://localhost/*"]'
  cat >"$dir/clients.json" <<EOF
[
  {"client_id": "guestuser-basic", "client_secret": "$s_basic", "redirect_uris": $redirects,
   "token_endpoint_auth_method": "client_secret_basic"},
  {"client_id": "guestuser-post", "client_secret": "$s_post", "redirect_uris": $redirects,
   "token_endpoint_auth_method": "client_secret_post"},
  {"client_id": "guestuser-es256", "client_secret": "$s_es", "redirect_uris": $redirects,
   "token_endpoint_auth_method": "client_secret_basic", "id_token_signed_response_alg": "ES256"},
  {"client_id": "guestuser-ps256", "client_secret": "$s_ps", "redirect_uris": $redirects,
   "token_endpoint_auth_method": "client_secret_basic", "id_token_signed_response_alg": "PS256"}
]
EOF
  for pair in basic:$s_basic post:$s_post es256:$s_es ps256:$s_ps hostile:$s_hostile; do
    (umask 077 && printf '%s' "${pair#*:}" >"$dir/secrets/${pair%%:*}")
  done

  # setsid -f: out of ctest's process group and session, so ctest waits for
  # neither; the pid files are written by the servers themselves.
  : >"$dir/provider.log"
  : >"$dir/hostile.log"
  setsid -f "$node" "$here/provider.mjs" --port 0 --port-file "$dir/provider.port" \
    --pid-file "$dir/provider.pid" --clients "$dir/clients.json" \
    </dev/null >>"$dir/provider.log" 2>&1
  setsid -f "$node" "$here/hostile.mjs" --port 0 --port-file "$dir/hostile.port" \
    --pid-file "$dir/hostile.pid" --client-id hostile-client --client-secret "$s_hostile" \
    </dev/null >>"$dir/hostile.log" 2>&1

  p_port=$(wait_ready provider "http://127.0.0.1:PORT/.well-known/openid-configuration") ||
    fail "the real provider (provider.mjs) did not answer its discovery document within 30 s"
  h_port=$(wait_ready hostile "http://127.0.0.1:PORT/good/.well-known/openid-configuration") ||
    fail "the hostile provider (hostile.mjs) did not answer its discovery document within 30 s"
  issuer="http://127.0.0.1:$p_port"
  hostile="http://127.0.0.1:$h_port"
  got=$(curl -fsS --max-time 5 "$issuer/.well-known/openid-configuration" |
    "$node" -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log(JSON.parse(s).issuer))') ||
    fail "the real provider's discovery document is not JSON"
  [ "$got" = "$issuer" ] || fail "the real provider says issuer $got, expected $issuer"
  modes=$(curl -fsS --max-time 5 "$hostile/" |
    "$node" -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log(Object.keys(JSON.parse(s).modes).join(",")))') ||
    fail "the hostile provider's mode list is not JSON"
  users=$(cd "$here" && "$node" --input-type=module -e '
import { ACCOUNTS } from "./accounts.mjs";
console.log(`OIDC_USERS=${Object.keys(ACCOUNTS).join(",")}`);
for (const [login, a] of Object.entries(ACCOUNTS)) console.log(`OIDC_SUB_${login.toUpperCase()}=${a.sub}`);')

  {
    echo "OIDC_ISSUER=$issuer"
    echo "OIDC_CLIENT_ID=guestuser-basic"
    echo "OIDC_CLIENT_SECRET=$s_basic"
    echo "OIDC_CLIENT_SECRET_FILE=$dir/secrets/basic"
    echo "OIDC_POST_CLIENT_ID=guestuser-post"
    echo "OIDC_POST_CLIENT_SECRET=$s_post"
    echo "OIDC_POST_CLIENT_SECRET_FILE=$dir/secrets/post"
    echo "OIDC_ES256_CLIENT_ID=guestuser-es256"
    echo "OIDC_ES256_CLIENT_SECRET=$s_es"
    echo "OIDC_ES256_CLIENT_SECRET_FILE=$dir/secrets/es256"
    echo "OIDC_PS256_CLIENT_ID=guestuser-ps256"
    echo "OIDC_PS256_CLIENT_SECRET=$s_ps"
    echo "OIDC_PS256_CLIENT_SECRET_FILE=$dir/secrets/ps256"
    echo "$users"
    echo "OIDC_PROVIDER_LOG=$dir/provider.log"
    echo "HOSTILE_BASE=$hostile"
    echo "HOSTILE_CLIENT_ID=hostile-client"
    echo "HOSTILE_CLIENT_SECRET=$s_hostile"
    echo "HOSTILE_CLIENT_SECRET_FILE=$dir/secrets/hostile"
    echo "HOSTILE_MODES=$modes"
    echo "HOSTILE_LOG=$dir/hostile.log"
  } >"$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
  echo "oidc-fixture: provider $issuer (pid $(cat "$dir/provider.pid")), hostile $hostile/MODE (pid $(cat "$dir/hostile.pid")); $dir/env"
  ;;
stop)
  stop_all
  echo "oidc-fixture: stopped (logs in $dir)"
  ;;
*) echo "oidc-fixture: unknown command $cmd" >&2; exit 2 ;;
esac
