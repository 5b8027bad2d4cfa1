#!/usr/bin/env bash
# tests/fuzz/run.sh BUILD SECONDS - run every fuzz target of BUILD (`make fuzz`).
#
# Each target runs SECONDS on a scratch copy of its checked-in corpus
# (tests/fuzz/corpus/NAME/ is read, never written). Any crash, leak,
# timeout or broken promise fails the run; the reproducer is left in
# BUILD/fuzz-artifacts/ and named in the output. A summary line per target
# (executions, corpus size) goes to BUILD/fuzz-summary.txt.
set -euo pipefail

build="${1:?usage: run.sh BUILD SECONDS}"
secs="${2:?usage: run.sh BUILD SECONDS}"
src="$(cd "$(dirname "$0")" && pwd)"
bin="$build/tests/fuzz"
targets=$(tr ';' ' ' <"$bin/targets.txt")
art="$build/fuzz-artifacts"
mkdir -p "$art"
: >"$build/fuzz-summary.txt"

status=0
for t in $targets; do
	work="$build/fuzz-corpus/$t"
	rm -rf "$work"
	mkdir -p "$work"
	log="$build/fuzz-$t.log"
	# -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a
	# leak or an allocation sized from hostile bytes.
	if "$bin/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len=4096 -print_final_stats=1 -artifact_prefix="$art/$t-" \
		"$work" "$src/corpus/$t" >"$log" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		corpus=$(ls "$work" | wc -l)
		echo "ok    fuzz_$t: $execs executions in ${secs}s, $corpus new corpus inputs" |
			tee -a "$build/fuzz-summary.txt"
	else
		grep -E "ERROR|broken promise|runtime error|SUMMARY|Test unit written" "$log" || tail -30 "$log"
		echo "FAIL  fuzz_$t: a finding (full log: $log)"
		status=1
	fi
done
exit $status
