#!/bin/sh
# The man page and the bash completion against the tool's own --help
# (ctest entry "cli_docs"): every command `snapbridge --help` lists and
# every option each `snapbridge CMD --help` lists appears in snapbridge(1)
# as rendered by man, and is offered by the completion; the completion
# completes "snapbridge dr" to "drain" and option values (--format's
# words, files for --file); and every option a command takes is on one of
# its --help option lines. So neither can drift from the tool.
set -eu
: "${SB_TOOL:?}" "${SB_SOURCE_DIR:?}" "${SB_BUILD_DIR:?}"
page="$SB_BUILD_DIR/man/snapbridge.1"
completion="$SB_SOURCE_DIR/consumers/tool/snapbridge.bash"
t=$(mktemp -d /tmp/sb-docs-XXXXXX)
trap 'rm -rf "$t"' EXIT
fail() {
	echo "cli_docs: $*" >&2
	exit 1
}

[ -f "$page" ] || fail "no $page"
# As a reader sees it (ASCII, so \- renders as -).
MANWIDTH=200 LC_ALL=C man -l "$page" 2>"$t/man.err" | col -b >"$t/man.txt"
[ ! -s "$t/man.err" ] || fail "man -l warns: $(cat "$t/man.err")"

cmds=$("$SB_TOOL" --help | awk '/^commands:/ { on = 1; next } on && /^$/ { exit }
	on && /^  [a-z]/ { print $1 }')
[ -n "$cmds" ] || fail "no commands in --help"

# What the completion offers for the words given (the cursor on the last).
complete_words() {
	bash -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_snapbridge
		printf "%s\n" "${COMPREPLY[@]}"' sh "$completion" "$@"
}

offered=$(complete_words "$SB_TOOL" "")
checked=0
for c in $cmds; do
	grep -q "^ *$c " "$t/man.txt" || grep -q "^ *$c\$" "$t/man.txt" ||
		fail "command '$c' is not in the man page"
	[ "$c" = help ] && continue
	grep -q "snapbridge $c\$" "$t/man.txt" || fail "no section for '$c' in the man page"
	printf '%s\n' "$offered" | grep -qx "$c" || fail "the completion does not offer '$c'"
	opts=$("$SB_TOOL" "$c" --help | sed -n 's/^  \(--[a-z0-9-]*\).*/\1/p')
	[ -n "$opts" ] || fail "'$c --help' lists no option"
	copts=$(complete_words "$SB_TOOL" "$c" "--")
	for o in $opts; do
		grep -q -- "$o" "$t/man.txt" || fail "'$c $o' is not in the man page"
		printf '%s\n' "$copts" | grep -qx -- "$o" || fail "the completion does not offer '$c $o'"
		checked=$((checked + 1))
	done
done
[ $checked -gt 30 ] || fail "only $checked options checked"

# The other way round: an option a command takes is on one of its --help
# option lines (or the man page and the completion never learn of it).
# Tried: every option any --help names. "CMD --opt=x --bogus" reaches
# --bogus when --opt takes a value; "CMD --opt --bogus" when it is a flag
# (then nothing eats --bogus); an option CMD does not take is named as
# unknown instead. An option taken only to be refused with a better line
# ("--file is not accepted here") is fine.
every=$(for c in $cmds; do "$SB_TOOL" "$c" --help; done | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
for c in $cmds; do
	[ "$c" = help ] && continue
	listed=$("$SB_TOOL" "$c" --help | sed -n 's/^  \(--[a-z0-9-]*\).*/\1/p')
	for o in $every; do
		printf '%s\n' "$listed" | grep -qx -- "$o" && continue
		err=$("$SB_TOOL" "$c" "$o=x" --sb-bogus 2>&1 >/dev/null </dev/null || true)
		case $err in
		*"unknown option '--sb-bogus'"*) form="$o=x" ;;
		*"'$o' is unknown or takes no value"*)
			err=$("$SB_TOOL" "$c" "$o" --sb-bogus 2>&1 >/dev/null </dev/null || true)
			case $err in
			*"unknown option '--sb-bogus'"*) form=$o ;;
			*) continue ;;
			esac
			;;
		*) continue ;; # a value it refused: checked by its own tests
		esac
		err=$(timeout 10 "$SB_TOOL" "$c" "$form" 2>&1 >/dev/null </dev/null || true)
		case $err in
		*"$o is not accepted here"*) ;;
		*) fail "'$c' takes $o but its --help does not list it" ;;
		esac
	done
done

[ "$(complete_words "$SB_TOOL" dr)" = drain ] || fail "'snapbridge dr' does not complete to drain"
[ "$(complete_words "$SB_TOOL" help st)" = stat ] || fail "'snapbridge help st' does not complete"
[ "$(complete_words "$SB_TOOL" drain --format j)" = jsonl ] || fail "--format j does not complete"
touch "$t/region.img"
[ "$(complete_words "$SB_TOOL" drain --file "$t/reg")" = "$t/region.img" ] ||
	fail "--file does not complete a file name"
echo "cli_docs: $checked options in the man page and the completion: 1 passed, 0 failed"
