#!/usr/bin/env bash
# Compares the dynamic symbols a shared library exports (for a static
# library: the global symbols its objects define) with a list.
set -euo pipefail
lib=$1 list=$2
case $lib in
*.a) table=(nm -g --defined-only "$lib") ;;
*) table=(nm -D --defined-only "$lib") ;;
esac
actual=$("${table[@]}" | awk 'NF == 3 && $2 ~ /^[TDBR]$/ {print $3}' | sort -u)
expected=$(grep -v '^#' "$list" | sed '/^$/d' | sort -u)
if [ "$actual" != "$expected" ]; then
  echo "exported symbols differ from $list (< expected, > actual):"
  diff <(echo "$expected") <(echo "$actual") || true
  exit 1
fi
echo "exported symbols: $(echo "$actual" | wc -l) match $list"
