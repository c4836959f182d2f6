#!/usr/bin/env bash
# Compares what a library exports with its list in abi/ (docs/abi.md).
# For a shared library each name must carry the symbol version of the
# "[X.Y]" section it is listed under (GUESTUSER_X.Y, the default version:
# "@@"); for a static library, only the global names its objects define.
set -euo pipefail
lib=$1 list=$2
# "name version" for every listed name, from the sections of the list.
expected=$(awk '
  /^[[:space:]]*(#|$)/ { next }
  /^\[[0-9]+\.[0-9]+\]$/ { v = substr($0, 2, length($0) - 2); next }
  { print $1, "GUESTUSER_" v }' "$list")
case $lib in
*.a)
  actual=$(nm -g --defined-only "$lib" | awk 'NF == 3 && $2 ~ /^[TDBR]$/ {print $3}' | sort -u)
  expected=$(echo "$expected" | cut -d' ' -f1 | sort -u)
  ;;
*)
  # nm prints a versioned name as name@@VERSION; an unversioned one bare,
  # which the comparison then reports as "(none)".
  actual=$(nm -D --defined-only "$lib" | awk 'NF == 3 && $2 ~ /^[TDBR]$/ {
      n = split($3, part, "@@"); print part[1], (n == 2 ? part[2] : "(none)") }' | sort -u)
  expected=$(echo "$expected" | sort -u)
  ;;
esac
if [ "$actual" != "$expected" ]; then
  echo "exported symbols differ from $list (< expected, > actual):"
  diff <(echo "$expected") <(echo "$actual") || true
  exit 1
fi
echo "exported symbols: $(echo "$actual" | wc -l) match $list"
