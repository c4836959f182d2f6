# Sourced by the scripts: installs the Debian packages the project needs
# when any is missing. Root runs apt-get directly; others go through sudo.
GUESTUSER_DEB_PACKAGES="build-essential cmake pkg-config git curl ca-certificates
  libpq-dev uuid-dev libssl-dev check libsubunit-dev postgresql
  libmicrohttpd-dev libcivetweb-dev libjansson-dev libpwquality-dev cracklib-runtime
  clang libclang-rt-dev"

guestuser_ensure_deps() {
  local missing="" p
  for p in $GUESTUSER_DEB_PACKAGES "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  echo ">> installing Debian packages:$missing"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
