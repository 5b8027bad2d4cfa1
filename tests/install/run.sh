#!/bin/sh
# The install, as a user meets it (ctest entry "install"): the build is
# installed under a temporary prefix with `cmake --install --prefix` (or
# SB_PREFIX names one `make install PREFIX=...` filled, as .ci/run does); a
# program is built there through pkg-config and another through
# find_package(snapbridge 0.1 REQUIRED), and both run. The .pc is checked
# for a system prefix too (/usr, through DESTDIR): no -I/-L of its own and
# no flags of the library's private dependencies (urcu, ck, msgpack).
# The installed tool runs, finds its library, has a man page that `man`
# finds from PATH, a bash completion, and no benchmark.
set -eu
: "${SB_BUILD_DIR:?}" "${SB_SOURCE_DIR:?}"
t=$(mktemp -d /tmp/sb-install-XXXXXX)
trap 'rm -rf "$t"' EXIT
fail() {
	echo "install test: $*" >&2
	exit 1
}
# An ASan build's library needs the ASan runtime first in the programs too.
cflags=$(sed -n 's/^SNAPBRIDGE_SANITIZE:STRING=address$/-fsanitize=address,undefined/p' \
	"$SB_BUILD_DIR/CMakeCache.txt")
cflags=${cflags:-}$(sed -n 's/^SNAPBRIDGE_SANITIZE:STRING=thread$/-fsanitize=thread/p' \
	"$SB_BUILD_DIR/CMakeCache.txt")

if [ -n "${SB_PREFIX:-}" ]; then
	ln -s "$SB_PREFIX" "$t/p"
else
	cmake --install "$SB_BUILD_DIR" --prefix "$t/p" >"$t/install.log" 2>&1 ||
		{ cat "$t/install.log"; fail "cmake --install failed"; }
fi
pcdir=$(dirname "$(find "$t/p/" -name snapbridge.pc)")
[ -f "$pcdir/snapbridge.pc" ] || fail "no snapbridge.pc under $t/p"
for f in snapbridgeConfig.cmake snapbridgeConfigVersion.cmake snapbridgeTargets.cmake; do
	find "$t/p/" -name "$f" | grep -q . || fail "no $f installed"
done
[ -x "$t/p/bin/snapbridge" ] || fail "no bin/snapbridge"
[ -f "$t/p/share/man/man1/snapbridge.1" ] || fail "no share/man/man1/snapbridge.1"
[ -f "$t/p/share/bash-completion/completions/snapbridge" ] || fail "no bash completion"

# pkg-config: the flags name the prefix, nothing else.
export PKG_CONFIG_PATH="$pcdir"
flags=$(pkg-config --cflags --libs snapbridge)
case " $flags " in
*urcu* | *" -lck "* | *msgpack* | *-D__x86_64__* | *" -I/usr/include/"*) fail "private flags leak: $flags" ;;
esac
want=${SB_PREFIX:-$t/p}
[ "$(pkg-config --variable=prefix snapbridge)" = "$want" ] ||
	fail "prefix is not $want: $(pkg-config --variable=prefix snapbridge)"
[ "$(pkg-config --modversion snapbridge)" = "$("$t/p/bin/snapbridge" --version | cut -d' ' -f2)" ] ||
	fail "pkg-config's version is not the tool's"
# shellcheck disable=SC2086 # word lists
cc $cflags -o "$t/pc-consumer" "$SB_SOURCE_DIR/tests/install/consumer/main.c" \
	$(pkg-config --cflags --libs snapbridge) || fail "cannot build with pkg-config"
# A non-system prefix: the program finds the library through LD_LIBRARY_PATH (README).
LD_LIBRARY_PATH="$(pkg-config --variable=libdir snapbridge)" "$t/pc-consumer" ||
	fail "the pkg-config build does not run"

# find_package(snapbridge 0.1 REQUIRED), then a version it must refuse.
cmake -S "$SB_SOURCE_DIR/tests/install/consumer" -B "$t/cm" -DCMAKE_PREFIX_PATH="$t/p" \
	-DCMAKE_C_FLAGS="$cflags" >"$t/cm.log" 2>&1 || { cat "$t/cm.log"; fail "find_package failed"; }
cmake --build "$t/cm" >>"$t/cm.log" 2>&1 || { cat "$t/cm.log"; fail "the CMake build failed"; }
"$t/cm/consumer" || fail "the find_package build does not run (CMake sets its run path)"
sed 's/snapbridge 0.1 REQUIRED/snapbridge 1.0 REQUIRED/' \
	"$SB_SOURCE_DIR/tests/install/consumer/CMakeLists.txt" >"$t/CMakeLists.txt"
cp "$SB_SOURCE_DIR/tests/install/consumer/main.c" "$t/"
if cmake -S "$t" -B "$t/cm1" -DCMAKE_PREFIX_PATH="$t/p" >"$t/cm1.log" 2>&1; then
	fail "find_package(snapbridge 1.0) accepted 0.1 (SameMajorVersion)"
fi

# The installed tool: finds its library by its run path, carries no benchmark.
"$t/p/bin/snapbridge" version | grep -q "library $(pkg-config --modversion snapbridge)" ||
	fail "the installed tool does not run"
if "$t/p/bin/snapbridge" bench --help >/dev/null 2>&1; then
	fail "the installed tool has 'bench'"
fi
if nm "$t/p/bin/snapbridge" | grep -qi ' sbb_'; then
	fail "the installed tool links the benchmark"
fi
# man finds the page from PATH (man-db looks in ../share/man of each bin).
page=$(PATH="$t/p/bin:$PATH" MANPATH= man -w snapbridge 2>&1) || fail "man -w snapbridge: $page"
case "$page" in
*/share/man/man1/snapbridge.1) ;;
*) fail "man finds $page" ;;
esac

# System prefixes: the .pc names the prefix, and gives no -I or -L that
# pkg-config does not drop as a system directory.
for prefix in /usr /usr/local; do
	rm -rf "$t/stage"
	DESTDIR="$t/stage" cmake --install "$SB_BUILD_DIR" --prefix $prefix >"$t/stage.log" 2>&1 ||
		{ cat "$t/stage.log"; fail "staged install to $prefix failed"; }
	pc=$(find "$t/stage$prefix" -name snapbridge.pc)
	grep -qx "prefix=$prefix" "$pc" || fail "the $prefix .pc says $(grep prefix= "$pc")"
	grep -q "^libdir=\${prefix}/" "$pc" || fail "the $prefix .pc's libdir: $(grep libdir= "$pc")"
	if [ $prefix = /usr ]; then
		got=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs snapbridge | xargs)
		[ "$got" = "-lsnapbridge" ] || fail "the /usr .pc gives '$got', not '-lsnapbridge'"
	fi
done
echo "install test: 1 passed, 0 failed"
