#!/bin/sh
# quiet-build.sh DIR [TARGET...] - `cmake --build DIR` for the Makefile:
# one line of progress (redrawn in place on a terminal, said once
# otherwise), every compiler warning and error as it comes, the whole
# output kept in DIR/build.log. Exits with the build's status. BUILD_WHAT
# names what is built in the progress line (default: the targets).
dir=$1
shift
targets=
what="everything"
for t in "$@"; do
	targets="$targets --target $t"
done
[ $# -gt 0 ] && what="$*"
[ -n "${BUILD_WHAT:-}" ] && what=$BUILD_WHAT
fancy=0
if [ -t 1 ] && [ -n "${TERM:-}" ] && [ "$TERM" != dumb ]; then
	fancy=1
fi
[ $fancy -eq 1 ] || echo "building $what in $dir/ ..."
# shellcheck disable=SC2086 # $targets is a list of words
{ cmake --build "$dir" -j "${JOBS:-2}" $targets 2>&1; echo "sb-build-status $?"; } |
	tee "$dir/build.log" |
	awk -v fancy=$fancy -v dir="$dir" -v what="$what" '
	function clear() { if (fancy && shown) { printf "\r\033[K"; shown = 0 } }
	/^sb-build-status / { status = $2; next }
	/^\[ *[0-9]+%\]/ {
		if (fancy) {
			pct = $0; sub(/^\[ */, "", pct); sub(/%.*/, "", pct)
			printf "\r\033[Kbuilding %s in %s/ ... %s%%", what, dir, pct
			shown = 1
		}
		next
	}
	/^Consolidate compiler generated dependencies/ { next }
	{ clear(); print; fflush() }
	END {
		clear()
		if (status != 0) print "build failed (exit " status "): the whole log is " dir "/build.log"
		exit status
	}'
