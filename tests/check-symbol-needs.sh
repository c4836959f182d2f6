#!/usr/bin/env bash
# A program linked against the library records the symbol versions it uses
# (docs/abi.md, "Symbol versions"): its version needs name the library's
# SONAME with GUESTUSER_1.0, so a library too old for it is refused when it
# starts rather than at its first call.
set -euo pipefail
prog=$1 soname=$2 version=$3
needs=$(readelf -V --wide "$prog")
# readelf prints "File: libguestuser.so.1  Cnt: N" and under it the
# versions needed from that file.
if ! echo "$needs" | awk -v f="$soname" -v v="$version" '
    /File:/ { infile = ($0 ~ ("File: " f "[[:space:]]")) }
    infile && $0 ~ ("Name: " v "[[:space:]]") { found = 1 }
    END { exit !found }'; then
  echo "$prog does not record $version from $soname:"
  echo "$needs" | sed -n '/Version needs/,$p'
  exit 1
fi
echo "$prog needs $version from $soname"
