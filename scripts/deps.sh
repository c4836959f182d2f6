# Sourced by the scripts: installs the Debian packages the project needs
# when any is missing. Root runs apt-get directly; others go through sudo.
# dpkg-dev and file: cpack -G DEB runs dpkg-shlibdeps on the binaries.
# pgbouncer: the tests through PgBouncer in transaction pooling mode.
# wrk: the HTTP load of bench/run.sh.
# libcurl4-gnutls-dev: the OIDC tests' HTTP client (tests/oidc) and
# libguestuser-oidc's; the GnuTLS flavour, as libulfius-dev depends on it and
# the OpenSSL one conflicts. libcjose-dev: libguestuser-oidc's JWKS and
# signature checks. python3-aiosmtpd: the tests' SMTP server (tests/smtp),
# which libguestuser-mail (same libcurl) delivers to. gcovr: the line
# coverage of scripts/coverage.sh. abi-dumper and abi-compliance-checker:
# scripts/abi-check.sh's comparison with the 1.0.0 ABI.
GUESTUSER_DEB_PACKAGES="build-essential cmake pkg-config git curl ca-certificates
  libpq-dev uuid-dev libssl-dev check libsubunit-dev postgresql
  libmicrohttpd-dev libcivetweb-dev libulfius-dev libevent-dev libjansson-dev libpwquality-dev cracklib-runtime
  pgbouncer wrk libcurl4-gnutls-dev libcjose-dev python3-aiosmtpd
  clang libclang-rt-dev openssl clang-format clang-tidy
  dpkg-dev file gcovr abi-dumper abi-compliance-checker"
# The browser tests (tests/e2e): Debian's Chromium, and node with npm unless
# the machine has both already (another vendor's nodejs package brings npm
# itself and conflicts with Debian's npm package).
GUESTUSER_E2E_DEB_PACKAGES="chromium"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  GUESTUSER_E2E_DEB_PACKAGES="$GUESTUSER_E2E_DEB_PACKAGES nodejs npm"
fi

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
