#!/usr/bin/env bash
# Checks the layers of src/ (docs/architecture.md): every #include "..." of a
# file points to its own layer or one below, each layer folder holds one
# header, named for the layer, and adapters, the conformance kit's route
# table (conformance/, an application of the library), the OpenID
# Connect component (oidc/) and the SMTP component (mail/) see the public
# API only (and their own folder's header). libpq is store/'s: no file
# elsewhere calls a PQ function or names a PGresult (except the lending
# API, core/req_db.c).
# Usage: tests/check-layers.sh [SRC_DIR]   (default: src next to tests/)
set -euo pipefail
src=${1:-$(dirname "$0")/../src}
layers=(base store core accounts) # bottom to top
rank() {
  local i
  for i in "${!layers[@]}"; do
    [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }
  done
  echo -1
}
bad=0
fail() { echo "check-layers: $*"; bad=1; }

for f in "$src"/*.c "$src"/*.h; do
  [ -e "$f" ] && fail "${f#"$src"/} lies outside every layer folder"
done
for layer in "${layers[@]}"; do
  for h in "$src/$layer"/*.h; do
    [ -e "$h" ] || continue
    [ "$(basename "$h")" = "$layer.h" ] ||
      fail "$layer/$(basename "$h"): a layer has one header, $layer/$layer.h"
  done
done

for f in "$src"/*/*.c "$src"/*/*.h; do
  [ -e "$f" ] || continue
  rel=${f#"$src"/}
  layer=${rel%%/*}
  own=$(rank "$layer")
  case $layer in adapters | conformance | oidc | mail) public_only=1 ;; *) public_only=0 ;; esac
  if [ "$public_only" = 0 ] && [ "$own" -lt 0 ]; then
    fail "$rel: folder $layer is no layer (${layers[*]} adapters conformance oidc mail)"
    continue
  fi
  while IFS= read -r inc; do
    target=${inc#*\"}
    target=${target%%\"*}
    case $target in
    guestuser/*) continue ;; # the public API: every layer may use it
    esac
    if [ "$public_only" = 1 ]; then
      [ "$target" = "$layer/$layer.h" ] && continue
      fail "$rel includes \"$target\": $layer uses the public API only"
      continue
    fi
    to=${target%%/*}
    r=$(rank "$to")
    if [ "$target" = "$to" ] || [ "$r" -lt 0 ] || [ "$target" != "$to/$to.h" ]; then
      fail "$rel includes \"$target\": include a layer as \"<layer>/<layer>.h\""
    elif [ "$r" -gt "$own" ]; then
      fail "$rel includes \"$target\": $layer may not include $to, a layer above it"
    fi
  done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
done

# libpq stays in store/: no file elsewhere calls a PQ function, and only
# the lending API names a PGresult (core/req_db.c hands the application
# the result of its own query; it calls nothing of libpq).
pgresult_ok=(core/req_db.c)
for f in "$src"/*/*.c "$src"/*/*.h; do
  [ -e "$f" ] || continue
  rel=${f#"$src"/}
  [ "${rel%%/*}" = store ] && continue
  while IFS= read -r hit; do
    fail "$rel:${hit%%:*}: libpq call outside store/ (give the table a typed function in store/)"
  done < <(grep -nE '\bPQ[A-Za-z]+[[:space:]]*\(' "$f" || true)
  case " ${pgresult_ok[*]} " in *" $rel "*) continue ;; esac
  while IFS= read -r hit; do
    fail "$rel:${hit%%:*}: PGresult outside store/ (results come back as C values)"
  done < <(grep -nE '\bPGresult\b' "$f" || true)
done

[ "$bad" = 0 ] && echo "check-layers: includes point down (${layers[*]}; adapters, conformance, oidc and mail on top); libpq only in store/"
exit "$bad"
