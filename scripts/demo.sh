#!/usr/bin/env bash
# Builds the demo server and runs it on a private PostgreSQL cluster that
# lives in build/demo-pg and is stopped again when the demo exits (Ctrl-C).
# Installs what it needs on Debian first. PORT=8080 by default; extra
# arguments go to guestuser-demo (see guestuser-demo --help).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
guestuser_ensure_deps
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target guestuser-demo >/dev/null
pgdir=build/demo-pg
bash tests/pg-fixture.sh start "$pgdir"
trap 'bash tests/pg-fixture.sh stop "$pgdir"' EXIT
./build/examples/guestuser-demo --db "$(cat "$pgdir/conninfo")" \
  --port "${PORT:-8080}" "$@" || true
