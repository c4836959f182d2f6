#!/bin/sh
# Builds the Debian packages of a build tree with `cpack -G DEB` and checks
# them: the expected packages with their metadata (dpkg-deb -I), no file in
# two packages, `apt-get install --simulate ./*.deb` resolves on this
# machine, and -- extracted with dpkg -x into a clean directory, so the
# machine is left alone -- the programs run without environment variables
# and the examples build against the packaged headers, CMake package and
# pkg-config files. The build tree must be configured with
# -DCMAKE_INSTALL_PREFIX=/usr, as Debian's own packages are: libraries then
# go to /usr/lib/<multiarch>, and the .pc files name /usr.
# Usage: check-debs.sh BUILD_DIR SOURCE_DIR [OUT_DIR]  (OUT_DIR keeps the .debs)
set -eu
build=$(cd "${1:?usage: check-debs.sh BUILD_DIR SOURCE_DIR [OUT_DIR]}" && pwd)
src=$(cd "${2:?}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${3:-$work/debs}
mkdir -p "$out"
out=$(cd "$out" && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)

echo ">> cpack -G DEB"
rm -f "$out"/*.deb
(cd "$build" && cpack -G DEB -B "$out" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
ls "$out"/*.deb | sed 's|.*/||'

# the runtime packages carry the SONAME's number, the major version
so=$(sed -n 's/^CMAKE_PROJECT_VERSION_MAJOR:STATIC=//p' "$build/CMakeCache.txt")
[ -n "$so" ] || { echo "FAIL: no project version in $build/CMakeCache.txt" >&2; exit 1; }
expected="libguestuser$so libguestuser-dev"
grep -q '^GUESTUSER_WITH_MHD:BOOL=ON' "$build/CMakeCache.txt" &&
  expected="$expected libguestuser-mhd$so libguestuser-mhd-dev"
grep -q '^GUESTUSER_WITH_CIVETWEB:BOOL=ON' "$build/CMakeCache.txt" &&
  expected="$expected libguestuser-civetweb$so libguestuser-civetweb-dev"
grep -q '^GUESTUSER_WITH_ULFIUS:BOOL=ON' "$build/CMakeCache.txt" &&
  expected="$expected libguestuser-ulfius$so libguestuser-ulfius-dev"
grep -q '^GUESTUSER_TESTING:BOOL=ON' "$build/CMakeCache.txt" &&
  expected="$expected libguestuser-testing$so libguestuser-testing-dev"
grep -q '^GUESTUSER_TOOLS:BOOL=ON' "$build/CMakeCache.txt" && expected="$expected guestuser-tools"
for p in $expected; do
  deb=$(ls "$out/${p}_"*.deb 2>/dev/null | head -n1)
  [ -n "$deb" ] || { echo "FAIL: no $p package" >&2; exit 1; }
  for field in Package Version Architecture Maintainer Description; do
    [ -n "$(dpkg-deb -f "$deb" "$field")" ] || { echo "FAIL: $p has no $field" >&2; exit 1; }
  done
  echo "$p: $(dpkg-deb -f "$deb" Depends)"
done
# the runtime libraries depend on the library packages they link
case $(dpkg-deb -f "$out"/libguestuser"$so"_*.deb Depends) in
  *libpq5*) ;; *) echo "FAIL: libguestuser$so does not depend on libpq5" >&2; exit 1 ;;
esac
for p in libguestuser-mhd$so libguestuser-civetweb$so libguestuser-ulfius$so libguestuser-testing$so guestuser-tools; do
  for deb in "$out/${p}_"*.deb; do
    [ -f "$deb" ] || continue
    case $(dpkg-deb -f "$deb" Depends) in
      *"libguestuser$so (= "*) ;; *) echo "FAIL: $p does not depend on libguestuser$so" >&2; exit 1 ;;
    esac
  done
done
dpkg-deb -I "$out"/libguestuser-dev_*.deb | sed 's/^/    /'

echo ">> Debian's layout: libraries in /usr/lib/$arch, absolute .pc files"
for deb in "$out"/*.deb; do dpkg-deb -c "$deb"; done | awk '$1 !~ /^d/ {print $6}' >"$work/files"
if grep -E '^\./usr/lib/[^/]+\.(so|a)' "$work/files" | grep -v "^\./usr/lib/$arch/" >"$work/stray"; then
  cat "$work/stray"; echo "FAIL: libraries outside /usr/lib/$arch (configure with -DCMAKE_INSTALL_PREFIX=/usr)" >&2; exit 1
fi
grep -q "^\./usr/lib/$arch/libguestuser\.so" "$work/files" ||
  { echo "FAIL: no libguestuser.so in /usr/lib/$arch" >&2; exit 1; }

echo ">> no file in two packages"
for deb in "$out"/*.deb; do dpkg-deb -c "$deb"; done | awk '$1 !~ /^d/ {print $6}' | sort | uniq -d >"$work/dups"
if [ -s "$work/dups" ]; then cat "$work/dups"; echo "FAIL: files in two packages" >&2; exit 1; fi

echo ">> apt-get install --simulate ./*.deb"
apt-get install --simulate -q "$out"/*.deb >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; exit 1; }
grep -E '^Inst (libguestuser|guestuser)' "$work/apt.log" | sed 's/^/    /'

echo ">> extracted into a clean prefix"
root="$work/root"
for deb in "$out"/*.deb; do dpkg -x "$deb" "$root"; done
prefix="$root/usr"
pcdir="$prefix/lib/$arch/pkgconfig"
for pc in "$pcdir"/*.pc; do
  if grep -q '^prefix=' "$pc" && ! grep -q '^prefix=/usr$' "$pc"; then
    echo "FAIL: $pc does not say prefix=/usr" >&2; exit 1
  fi
  if grep -E -e '\.\./' -e '-L/usr/lib' "$pc"; then
    echo "FAIL: $pc names a relative path or the build machine's -L" >&2; exit 1
  fi
done
echo "$(ls "$pcdir" | wc -l) .pc files: prefix=/usr, no relative path, no -L/usr/lib"
for prog in guestuser guestuser-demo guestuser-conformance; do
  [ -x "$prefix/bin/$prog" ] || continue
  env -i PATH=/usr/bin:/bin "$prefix/bin/$prog" --help >/dev/null
  echo "$prog --help runs from $prefix/bin with an empty environment"
done
cmake -S "$src/examples" -B "$work/examples" -DCMAKE_PREFIX_PATH="$prefix" >"$work/examples.log" 2>&1 ||
  { cat "$work/examples.log"; exit 1; }
cmake --build "$work/examples" -j"$jobs" >>"$work/examples.log" 2>&1 || { cat "$work/examples.log"; exit 1; }
found=$(sed -n 's/^guestuser_DIR:PATH=//p' "$work/examples/CMakeCache.txt")
[ "$found" = "$prefix/lib/$arch/cmake/guestuser" ] || { echo "FAIL: the examples found guestuser in $found" >&2; exit 1; }
env -i PATH=/usr/bin:/bin "$work/examples/guestuser-demo" --help >/dev/null
echo "examples built against the packages (guestuser_DIR=$found); guestuser-demo runs"
printf '#include <guestuser/guestuser.h>\nint main(void){return guest_version()[0] ? 0 : 1;}\n' >"$work/pc.c"
PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$pcdir" \
  sh -c 'cc "$1/pc.c" -o "$1/pc" $(pkg-config --cflags --libs guestuser) -Wl,-rpath,"$(pkg-config --variable=libdir guestuser)"' _ "$work"
env -i "$work/pc"
echo "pkg-config guestuser: a program builds and runs"
if [ -f "$pcdir/guestuser-conformance.pc" ]; then
  printf '#include <guestuser/conformance.h>\nint main(void){return guest_conformance_routes() ? 0 : 1;}\n' >"$work/conf.c"
  PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$pcdir" \
    sh -c 'cc "$1/conf.c" -o "$1/conf" $(pkg-config --cflags --libs guestuser-conformance) -Wl,-rpath,"$(pkg-config --variable=libdir guestuser)"' _ "$work"
  env -i "$work/conf"
  echo "pkg-config guestuser-conformance: a program builds and runs"
fi
# (it calls the core too: the program's RUNPATH finds only the libraries
# it needs itself, and a user of the test client calls both)
if [ -f "$pcdir/guestuser-testing.pc" ]; then
  printf '#include <guestuser/testing.h>\nint main(void){guest_test_client_free(0);return guest_version()[0] ? guest_test_response_status(0) : 1;}\n' >"$work/testing.c"
  PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$pcdir" \
    sh -c 'cc "$1/testing.c" -o "$1/testing" $(pkg-config --cflags --libs guestuser-testing) -Wl,-rpath,"$(pkg-config --variable=libdir guestuser)"' _ "$work"
  env -i "$work/testing"
  echo "pkg-config guestuser-testing: a program builds and runs"
fi
echo ">> Debian package checks passed"
