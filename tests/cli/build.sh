#!/bin/sh
# The Makefile's build output and what `make demo` builds (ctest entry
# "cli_build"):
#   - cmake/quiet-build.sh shows every compiler warning, hides CMake's
#     progress lines, says one line of progress (redrawn in place on a
#     terminal), and fails with the error shown when the build fails;
#   - the target `make demo` builds, snapbridge_tool_installed, depends on
#     the library and the CLI library only: no test, no benchmark.
set -eu
: "${SB_SOURCE_DIR:?}"
t=$(mktemp -d /tmp/sb-build-XXXXXX)
trap 'rm -rf "$t"' EXIT
fail() {
	echo "cli_build: $*" >&2
	exit 1
}
qb="$SB_SOURCE_DIR/cmake/quiet-build.sh"

mkdir "$t/src"
cat >"$t/src/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(qb C)
add_executable(warns warns.c)
add_executable(quiet quiet.c)
CM
printf 'int main(void) { int unused_here; return 0; }\n' >"$t/src/warns.c"
printf 'int main(void) { return 0; }\n' >"$t/src/quiet.c"
cmake -S "$t/src" -B "$t/b" -DCMAKE_C_FLAGS=-Wall >/dev/null || fail "cannot configure"
sh "$qb" "$t/b" </dev/null >"$t/out" 2>&1 || fail "the build failed: $(cat "$t/out")"
grep -q "warning: unused variable .unused_here." "$t/out" || fail "the warning is hidden: $(cat "$t/out")"
! grep -q '^\[ *[0-9]*%\]' "$t/out" || fail "progress lines shown: $(cat "$t/out")"
[ "$(grep -c '^building ' "$t/out")" = 1 ] || fail "not one line of progress: $(cat "$t/out")"
[ -s "$t/b/build.log" ] || fail "no build.log"

# On a terminal: the progress line is redrawn in place, still one line.
touch "$t/src/quiet.c" "$t/src/warns.c"
TERM=xterm script -qfec "sh $qb $t/b" /dev/null </dev/null >"$t/tty" 2>&1 ||
	fail "the build failed on a terminal"
grep -q "$(printf '\r')" "$t/tty" || fail "no progress redrawn on a terminal"
grep -q "warning: unused variable" "$t/tty" || fail "the warning is hidden on a terminal"

# A failing build: its status, and the error shown.
printf 'int main(void) { return nope; }\n' >"$t/src/quiet.c"
if sh "$qb" "$t/b" </dev/null >"$t/fail" 2>&1; then
	fail "a failing build exited 0"
fi
grep -q "nope" "$t/fail" || fail "the error is hidden: $(cat "$t/fail")"
grep -q "build failed" "$t/fail" || fail "no word that the build failed"

# What the demo builds: the dependency graph of the installed tool.
cmake -S "$SB_SOURCE_DIR" -B "$t/graph" -DSNAPBRIDGE_MAN=OFF --graphviz="$t/g/deps.dot" \
	>"$t/graph.log" 2>&1 || { cat "$t/graph.log"; fail "cannot configure the project"; }
dot="$t/g/deps.dot.snapbridge_tool_installed"
[ -f "$dot" ] || fail "no dependency graph for snapbridge_tool_installed"
grep -q '"snapbridge_cli"' "$dot" || fail "the tool does not depend on snapbridge_cli?"
for no in test_ snapbridge_bench sb_test_consumer snapbridge_static; do
	! grep -q "\"$no" "$dot" || fail "make demo would build $no: $(grep -o '"[a-z_]*"' "$dot" | sort -u | xargs)"
done
echo "cli_build: 1 passed, 0 failed"
