#!/bin/sh
# Compiles every ```c block of README.md and docs/*.md against the tree's
# headers (cc -fsyntax-only -std=c11 -Wall -Werror), so the examples in the
# documentation cannot drift from the API.
#
# Usage: check-snippets.sh SOURCE_DIR [compiler flags, e.g. -I...]
# Environment: CC (default cc); SNIPPETS_KEEP=1 keeps the generated files.
#
# How a block is compiled:
# - A block that contains `main(` is a whole program: compiled exactly as
#   written, nothing added.
# - Any other block is a fragment. Its #-lines and its file-scope items (a
#   line at column 0 starting `static`, `typedef`, `struct`, `enum`, a
#   handler macro such as `GUEST_ALLOW(name)`, or `type name(`, up to where
#   its braces close or its `;`) stay at file scope; its other lines become
#   the body of a function returning int, inside `switch (st) { default: ... }` so that a
#   fragment showing one `case` of a longer switch compiles too. Before it
#   comes tests/snippets/prelude.h: the usual standard headers, the umbrella
#   header, both adapter headers, and the names the text uses without
#   declaring them (ctx, req, cfg, err, ... and the application's own
#   functions). Unused variables and functions are not errors in fragments.
# - `<!-- snippet: group NAME -->` on the line right before a block: the
#   blocks of one file with the same NAME are compiled together, as one
#   program or fragment, when the text builds one program over several
#   blocks (a handler defined in one, the server's main() in a later one).
# - `<!-- snippet: skip -->` on the line right before a block skips it. Use
#   it only for blocks that are not C on purpose: signatures written with
#   placeholders (`<server handle>`), bodies elided as `{ ... }` or `...`, or
#   code for a server that does not exist (docs/adapters.md's "srv").
# Errors point at the Markdown file and line.
set -eu
src=${1:?usage: check-snippets.sh SOURCE_DIR [cflags...]}
shift
cc=${CC:-cc}
work=$(mktemp -d)
[ -n "${SNIPPETS_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT

# Splits the Markdown files into blocks: $work/N.md holds a block's lines,
# $work/N.meta "file line mode" (mode: new, skip or group:NAME).
(cd "$src" && ls README.md docs/*.md) | while read -r md; do
  awk -v md="$md" -v out="$work" '
    /^```c[[:space:]]*$/ && !on { on = 1; n = ++count; start = NR + 1
      mode = "new"
      if (prev ~ /<!-- *snippet: *skip *-->/) mode = "skip"
      if (match(prev, /<!-- *snippet: *group +[A-Za-z0-9_.-]+ *-->/)) {
        mode = prev; sub(/.*group +/, "", mode); sub(/ *-->.*/, "", mode)
        mode = "group:" mode }
      f = sprintf("%s.%03d", md, n); gsub("/", "_", f); f = out "/" f
      print md, start, mode > (f ".meta"); close(f ".meta"); next }
    /^```/ && on { on = 0; close(f ".md"); prev = $0; next }
    on { print > (f ".md"); next }
    { if ($0 !~ /^[[:space:]]*$/) prev = $0 }
  ' "$src/$md"
done

# Turns one block (stdin) into file-scope lines and body lines, each line
# preceded by a #line directive naming the Markdown file.
split_block() { # md start top_out body_out
  awk -v md="$1" -v start="$2" -v top="$3" -v body="$4" '
    function braces(s,   t) { t = s; gsub(/"([^"\\]|\\.)*"/, "", t)
      o = gsub(/\{/, "{", t); c = gsub(/\}/, "}", t); return o - c }
    { ln = start + NR - 1; line = sprintf("#line %d \"%s\"\n%s", ln, md, $0) }
    !intop && /^#/ { print line >> top; next }
    !intop {
      first = $1; sub(/\(.*/, "", first)
      if ($0 ~ /^(static|typedef|struct|union|enum|extern)[[:space:]]/ ||
          $0 ~ /^[A-Z_]+\(/ ||
          ($0 ~ /^[A-Za-z_][A-Za-z0-9_]*[[:space:]*]+[A-Za-z_][A-Za-z0-9_]*\(/ &&
           first !~ /^(return|else|case|goto|do|if|while|for|switch|sizeof)$/)) {
        intop = 1; depth = 0; seen = 0
      }
    }
    intop { print line >> top; d = braces($0); if ($0 ~ /\{/) seen = 1; depth += d
      if (depth <= 0 && (seen || $0 ~ /;[[:space:]]*(\/\*.*\*\/)?[[:space:]]*$/)) intop = 0
      next }
    { print line >> body }
  '
}

compile() { # name file
  if ! "$cc" -fsyntax-only -std=c11 -Wall -Werror -Wno-unused-variable \
      -Wno-unused-function -Wno-unused-but-set-variable -Wno-unused-label \
      -I"$src/tests/snippets" "$@" 2>"$work/err"; then
    sed 's/^/    /' "$work/err" >&2
    return 1
  fi
}

checked=0 skipped=0 failed=0
flush() { # name, then the block files of one group
  name=$1; shift
  tu="$work/tu.c"; top="$work/top.c"; body="$work/body.c"
  : >"$top"; : >"$body"
  whole=0
  for gb in "$@"; do grep -q 'main(' "$gb.md" && whole=1; done
  if [ "$whole" = 1 ]; then
    : >"$tu"
    for gb in "$@"; do
      read -r gmd gstart gmode <"$gb.meta"
      printf '#line %s "%s"\n' "$gstart" "$gmd" >>"$tu"; cat "$gb.md" >>"$tu"
    done
  else
    for gb in "$@"; do
      read -r gmd gstart gmode <"$gb.meta"
      split_block "$gmd" "$gstart" "$top" "$body" <"$gb.md"
    done
    { echo '#include "prelude.h"'; cat "$top"
      echo 'int guestuser_snippet(void);'
      echo 'int guestuser_snippet(void) { switch (st) { default:;'
      cat "$body"; echo '} return 0; }'; } >"$tu"
  fi
  checked=$((checked + 1))
  if compile -x c "$tu" $cflags; then :; else
    echo "FAIL: snippet $name" >&2; failed=$((failed + 1))
  fi
}

cflags="$*"
metas=$(ls "$work"/*.meta | sort)
done_groups=" "
for meta in $metas; do
  b=${meta%.meta}
  read -r md start mode <"$meta"
  case $mode in
    skip) skipped=$((skipped + 1)) ;;
    new) flush "$md:$start" "$b" ;;
    group:*)
      key="$md:${mode#group:}"
      case $done_groups in *" $key "*) continue ;; esac
      done_groups="$done_groups$key "
      members="" names=""
      for m in $metas; do
        read -r mmd mstart mmode <"$m"
        if [ "$mmd" = "$md" ] && [ "$mmode" = "$mode" ]; then
          members="$members ${m%.meta}"; names="$names+$mmd:$mstart"
        fi
      done
      # shellcheck disable=SC2086
      flush "${names#+}" $members ;;
  esac
done
echo "snippets: $checked compiled, $skipped skipped, $failed failed"
[ "$failed" = 0 ]
