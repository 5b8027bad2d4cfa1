#!/bin/sh
# The tool in a terminal (ctest entry "cli_terminal"), through a pty
# (script(1), to see the raw bytes) and tmux (to type as a user does):
#   - drain prints a table on a terminal and JSON lines into a pipe;
#   - stat --watch, the demo's status line and bench's progress use cursor
#     controls on a terminal, and none with TERM=dumb or into a pipe;
#   - in an interactive bash with the completion, "snapbridge dr<TAB>"
#     becomes "snapbridge drain ".
set -eu
: "${SB_TOOL:?}" "${SB_BENCH_TOOL:?}" "${SB_SOURCE_DIR:?}"
t=$(mktemp -d /tmp/sb-term-XXXXXX)
coord=
natsd=
session=sb-term-$$
cleanup() {
	[ -n "$coord" ] && kill "$coord" 2>/dev/null && wait "$coord" 2>/dev/null
	[ -n "$natsd" ] && kill "$natsd" 2>/dev/null && wait "$natsd" 2>/dev/null
	tmux kill-session -t "$session" 2>/dev/null || true
	rm -rf "$t"
}
trap cleanup EXIT
fail() {
	echo "cli_terminal: $*" >&2
	exit 1
}
# Run "$@" on a pty with TERM=$term; its raw output goes to $out.
on_pty() {
	term=$1 out=$2
	shift 2
	TERM=$term script -qfec "$*" /dev/null </dev/null >"$out" 2>&1
}
esc=$(printf '\033')

"$SB_TOOL" coordinator --socket "$t/s.sock" --count 20 --interval-ms 0 --linger-ms 600000 \
	>"$t/coord.out" 2>&1 &
coord=$!
i=0
until grep -q "serving on" "$t/coord.out"; do
	kill -0 $coord 2>/dev/null || fail "the coordinator exited: $(cat "$t/coord.out")"
	i=$((i + 1))
	[ $i -lt 3000 ] || fail "the coordinator did not serve in 30 s"
	sleep 0.01
done
"$SB_TOOL" drain --socket "$t/s.sock" --wait=30000 --quiet >/dev/null

# drain: a table on a terminal, JSON lines into a pipe.
on_pty xterm "$t/drain.tty" "$SB_TOOL" drain --socket "$t/s.sock"
grep -q "^TYPE  *SEQ  *TAG" "$t/drain.tty" || fail "no table on a terminal: $(head -3 "$t/drain.tty")"
"$SB_TOOL" drain --socket "$t/s.sock" | head -1 | grep -q '^{"type":"snapshot"' ||
	fail "no JSON lines into a pipe"
on_pty xterm "$t/drain.json" "$SB_TOOL" drain --socket "$t/s.sock" --format jsonl
grep -q '^{"type":"snapshot"' "$t/drain.json" || fail "--format jsonl is not forced on a terminal"

# stat --watch: redrawn in place on a terminal, plain blocks with TERM=dumb.
on_pty xterm "$t/stat.tty" "$SB_TOOL" stat --socket "$t/s.sock" --watch --iterations 2
grep -q "${esc}\[H${esc}\[2J" "$t/stat.tty" || fail "stat --watch does not redraw on a terminal"
on_pty dumb "$t/stat.dumb" "$SB_TOOL" stat --socket "$t/s.sock" --watch --iterations 2
! grep -q "$esc" "$t/stat.dumb" || fail "stat --watch sends escapes to TERM=dumb"
[ "$(grep -c '^stores ' "$t/stat.dumb")" = 2 ] || fail "stat --watch with TERM=dumb: not 2 blocks"
grep -q "stores/s" "$t/stat.dumb" || fail "stat --watch shows no rates"

# stat --nats --watch: the same rule, for the stream an export wrote (an
# image of the region exported to a nats-server of our own, stopped by pid).
if command -v nats-server >/dev/null 2>&1; then
	mkdir "$t/nats"
	nats-server -js -a 127.0.0.1 -p -1 -sd "$t/nats/store" --ports_file_dir "$t/nats" \
		-l "$t/nats/log" </dev/null >/dev/null 2>&1 &
	natsd=$!
	i=0
	until port=$(sed -n 's/.*nats:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
		"$t/nats/nats-server_$natsd.ports" 2>/dev/null) && [ -n "$port" ]; do
		i=$((i + 1))
		[ $i -lt 3000 ] || fail "nats-server did not start in 30 s"
		sleep 0.01
	done
	"$SB_TOOL" save --socket "$t/s.sock" --output "$t/img" >/dev/null
	"$SB_TOOL" export --file "$t/img" --nats "nats://127.0.0.1:$port" --stream T \
		--host h --settle-ms 0 --quiet >/dev/null || fail "export to nats-server failed"
	on_pty xterm "$t/natsstat.tty" "$SB_TOOL" stat --nats "nats://127.0.0.1:$port" \
		--stream T --watch --iterations 2
	on_pty dumb "$t/natsstat.dumb" "$SB_TOOL" stat --nats "nats://127.0.0.1:$port" \
		--stream T --watch --iterations 2
	kill $natsd
	wait $natsd 2>/dev/null || true
	natsd=
	grep -q "${esc}\[H${esc}\[2J" "$t/natsstat.tty" ||
		fail "stat --nats --watch does not redraw on a terminal"
	! grep -q "$esc" "$t/natsstat.dumb" || fail "stat --nats --watch sends escapes to TERM=dumb"
	[ "$(grep -c '^stream ' "$t/natsstat.dumb")" = 2 ] ||
		fail "stat --nats --watch with TERM=dumb: not 2 blocks"
else
	echo "cli_terminal: stat --nats --watch not checked: no nats-server on PATH"
fi

# The demo's status line: \r\033[K on a terminal, plain lines otherwise.
on_pty xterm "$t/demo.tty" "$SB_TOOL" demo --seconds 1 --consumers 1
grep -q "${esc}\[K" "$t/demo.tty" || fail "the demo draws no status line on a terminal"
on_pty dumb "$t/demo.dumb" "$SB_TOOL" demo --seconds 1 --consumers 1
! grep -q "$esc" "$t/demo.dumb" || fail "the demo sends escapes to TERM=dumb"
grep -q "consumer process," "$t/demo.dumb" || fail "the demo says 'processes' of 1 consumer"

# bench's progress (the build tree's tool: the installed one has no bench):
# one line redrawn in place on a terminal, a plain line per repetition with
# TERM=dumb (as into a pipe). --smoke measures 64 B and 4 KB: two lines.
on_pty xterm "$t/bench.tty" "$SB_BENCH_TOOL" bench --smoke --only store,memcpy --shape bin
grep -q "${esc}\[K" "$t/bench.tty" || fail "bench redraws no progress line on a terminal"
[ "$(grep -c 'rep 1/1' "$t/bench.tty")" = 1 ] ||
	fail "bench's progress on a terminal is not one redrawn line: $(cat "$t/bench.tty")"
on_pty dumb "$t/bench.dumb" "$SB_BENCH_TOOL" bench --smoke --only store,memcpy --shape bin
! grep -q "$esc" "$t/bench.dumb" || fail "bench sends escapes to TERM=dumb"
[ "$(grep -c 'rep 1/1' "$t/bench.dumb")" = 2 ] ||
	fail "bench with TERM=dumb: not a line per repetition: $(cat "$t/bench.dumb")"

# Completion, typed: "snapbridge dr<TAB>" in an interactive bash (capture-pane
# drops trailing blanks: "drain " shows as "drain").
mkdir "$t/bin"
ln -s "$(readlink -f "$SB_TOOL")" "$t/bin/snapbridge"
cat >"$t/rc" <<RC
PS1='$ '
[ -f /usr/share/bash-completion/bash_completion ] && . /usr/share/bash-completion/bash_completion
. "$SB_SOURCE_DIR/consumers/tool/snapbridge.bash"
PATH="$t/bin:\$PATH"
RC
tmux new-session -d -s "$session" -x 120 -y 20 "bash --noprofile --rcfile $t/rc -i"
# Until the pane shows a line matching $1 (a prompt, a completed command line).
await_pane() {
	i=0
	until tmux capture-pane -p -t "$session" | grep -q "$1"; do
		i=$((i + 1))
		[ $i -lt 3000 ] || fail "$2: $(tmux capture-pane -p -t "$session" | grep -v '^$' | tail -2)"
		sleep 0.01
	done
}
await_pane '^\$' "bash did not start in tmux"
tmux send-keys -t "$session" 'snapbridge dr' Tab
await_pane '^\$ snapbridge drain$' "dr<TAB>"
tmux send-keys -t "$session" -l -- '--form'
tmux send-keys -t "$session" Tab
await_pane '^\$ snapbridge drain --format$' "--form<TAB>"
echo "cli_terminal: 1 passed, 0 failed"
