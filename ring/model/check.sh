#!/usr/bin/env bash
# ring/model/check.sh OUTDIR - run every SPIN check of ring/model/ (`make model`).
#
# Each line of CHECKS below is: model, expectation, defines.
#   pass  exhaustive search; fails on any error (assertion, invalid end
#         state, search depth too small, out of memory)
#   fail:PATTERN  a mutant: SPIN must report an assertion violation whose
#         text contains PATTERN (no spaces), or the model is vacuous for that bug
# A summary (one line per check, states stored) goes to OUTDIR/summary.txt.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: check.sh OUTDIR}"
mkdir -p "$out"
: >"$out/summary.txt"

CHECKS=(
	# the record log: 2 writer threads, 1 reader, 2 tags, cap 1
	"log pass -DRING=4 -DMAXLEN=2 -DWRITERS=2 -DSTORES=3 -DTAGS=2 -DCAP=1"
	# more laps: one writer, four stores through a 4-block ring
	"log pass -DRING=4 -DMAXLEN=2 -DWRITERS=1 -DSTORES=4 -DTAGS=2 -DCAP=1"
	# 3-block records and pads of 1 or 2 blocks
	"log pass -DRING=6 -DMAXLEN=3 -DWRITERS=1 -DSTORES=3 -DTAGS=2 -DCAP=1"
	# cap 2: byte-budget evictions of resident records
	"log pass -DRING=4 -DMAXLEN=2 -DWRITERS=2 -DSTORES=3 -DTAGS=2 -DCAP=2"
	# mutants: the tail published after the overwrite; no re-check after the copy
	"log fail:!(over) -DMUTANT_TAIL_LATE -DWRITERS=1 -DSTORES=3"
	"log fail:c_seq==id -DMUTANT_TAIL_LATE -DSKIP_P2 -DWRITERS=1 -DSTORES=3"
	"log fail:!(over) -DMUTANT_NO_RECHECK -DWRITERS=1 -DSTORES=3"
	# the bug the TSan harness found: an overwrite reclaiming its own old record
	"log fail:(p==resident) -DMUTANT_RECLAIM_OWN_SLOT -DWRITERS=1 -DSTORES=4 -DCAP=2"
	# the slot seqlock: a live writer, a writer killed mid-update
	"slot pass -DFIELDS=3 -DUPDATES=3 -DTRIES=3"
	"slot pass -DCRASH -DFIELDS=4 -DUPDATES=4 -DTRIES=5"
	# mutant: the reader does not re-check the sequence
	"slot fail:(c[i]==c[0]) -DMUTANT_NO_RETRY"
	# the tag index: 4 buckets, 2 slots, 3 colliding tags, 5 random adds/deletes, a lookup of any tag
	"tagindex pass -DOPS=5"
	# from one add short of a rebuild: two rebuilds, the spare reused
	"tagindex pass -DPREFILL -DTAGS=4 -DOPS=4"
	# 8 buckets, 3 slots: longer chains, cascades over several tombstones
	"tagindex pass -DBUCKETS=8 -DSLOTS=3 -DTAGS=4 -DOPS=4 -DWANT=2"
	# two readers across a rebuild
	"tagindex pass -DPREFILL -DOPS=2 -DREADERS=2 -DWANT=1 -DKSPINS=1"
	# two lookups in a row of tag 3 while tag 1 (same hash) leaves its slot and tag 3 may take it
	"tagindex pass -DPREFILL -DOPS=3 -DFINDS=2 -DWANT=3"
	# mutants: no tombstone; the backward cascade past a live entry (the writer's
	# check, then a reader's miss without it); a rebuild published before it is
	# filled; a retired table reused at once (the writer's check, then a reader's
	# miss); the key before the bucket (a lookup misses the tag from its key on;
	# without T2, a lookup finds it through the slot's old bucket and the next
	# lookup misses it); a hash match taken without the key
	"tagindex fail:on_chain -DMUTANT_NO_TOMB -DOPS=5"
	"tagindex fail:g_abs -DMUTANT_NO_TOMB -DSKIP_T5 -DOPS=4 -DWANT=1"
	"tagindex fail:on_chain -DMUTANT_CASCADE_FAR -DBUCKETS=8 -DSLOTS=3 -DTAGS=4 -DOPS=5"
	"tagindex fail:g_abs -DMUTANT_CASCADE_FAR -DSKIP_T5 -DBUCKETS=8 -DSLOTS=3 -DTAGS=4 -DOPS=5 -DWANT=2 -DKSPINS=1"
	"tagindex fail:g_abs -DMUTANT_PUBLISH_EARLY -DPREFILL -DOPS=2"
	"tagindex fail:rt[r]==nt -DMUTANT_REUSE_EARLY -DPREFILL -DTAGS=4 -DOPS=4"
	"tagindex fail:g_abs -DMUTANT_REUSE_EARLY -DSKIP_T4 -DPREFILL -DTAGS=4 -DOPS=4 -DWANT=1"
	"tagindex fail:g_abs -DMUTANT_KEY_FIRST -DPREFILL -DOPS=2"
	"tagindex fail:g_obs0 -DMUTANT_KEY_FIRST -DSKIP_T2 -DPREFILL -DOPS=2 -DFINDS=2 -DWANT=3"
	"tagindex fail:g_pres -DMUTANT_NO_KEY -DOPS=4"
	# the wake protocol: a hostile consumer's arms and page writes against an
	# honest sleeper; two writers; more stores; more hostile steps
	"wake pass -DSTORES=2 -DWRITERS=1 -DHOSTILE_OPS=1"
	"wake pass -DSTORES=2 -DWRITERS=2 -DHOSTILE_OPS=0"
	"wake pass -DSTORES=3 -DWRITERS=1 -DHOSTILE_OPS=0"
	"wake pass -DSTORES=1 -DWRITERS=1 -DHOSTILE_OPS=2"
	# mutants: the flag tested before the commit; no re-check after marking;
	# a batch that keeps only its own bits (needs the hostile consumer); a
	# consumer that trusts an arm its bell says was spent; a kick that does
	# not wake a sleeping waker
	"wake fail:h_pos==2 -DMUTANT_FLAG_FIRST -DSTORES=2 -DWRITERS=1 -DHOSTILE_OPS=1"
	"wake fail:h_pos==2 -DMUTANT_NO_RECHECK -DSTORES=2 -DWRITERS=1 -DHOSTILE_OPS=1"
	"wake fail:h_pos==2 -DMUTANT_KEEP_BATCH -DSTORES=2 -DWRITERS=1 -DHOSTILE_OPS=1"
	"wake fail:h_pos==2 -DMUTANT_HELD_BLIND -DSTORES=2 -DWRITERS=1 -DHOSTILE_OPS=1"
	"wake fail:h_pos==2 -DMUTANT_KICK_NO_WAKE -DSTORES=2 -DWRITERS=1 -DHOSTILE_OPS=1"
)

status=0
n=0
for line in "${CHECKS[@]}"; do
	read -r model expect defines <<<"$line"
	n=$((n + 1))
	dir="$out/$n-$model"
	rm -rf "$dir"
	mkdir -p "$dir"
	cp "$here/$model.pml" "$dir/"
	# shellcheck disable=SC2086
	(cd "$dir" && spin $defines -a "$model.pml" >spin.log 2>&1) || {
		cat "$dir/spin.log"
		echo "model: spin -a $model.pml $defines failed"
		status=1
		continue
	}
	# pan.c's generated undo code trips -Wstringop-overflow; it is not ours.
	# -O1: pan.c is one big switch, which -O2 takes twice as long to
	# compile for no faster search; a mutant's search stops at its first
	# violation, so -O0 there.
	opt=-O1
	[ "$expect" = pass ] || opt=-O0
	(cd "$dir" && gcc -w $opt -DSAFETY -DCOLLAPSE -DMEMLIM=2048 -o pan pan.c) || {
		echo "model: compiling pan for $model.pml $defines failed"
		status=1
		continue
	}
	start=$(date +%s.%N)
	(cd "$dir" && ./pan -m1000000 >pan.log 2>&1) || true
	secs=$(echo "$start $(date +%s.%N)" | awk '{printf "%.1f", $2 - $1}')
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$dir/pan.log" | tail -1)
	states=$(awk '/states, stored/ {print $1; exit}' "$dir/pan.log")
	what="$model.pml $defines"
	if [ -z "$errors" ]; then
		tail -20 "$dir/pan.log"
		echo "FAIL  $what: pan did not finish"
		status=1
	elif [ "$expect" = pass ]; then
		if [ "$errors" != 0 ] || grep -q "max search depth too small\|out of memory" "$dir/pan.log"; then
			grep -E "violated|error|invalid end" "$dir/pan.log" || true
			echo "FAIL  $what: $errors error(s); trail in $dir"
			status=1
		else
			echo "ok    $what: $states states, ${secs}s" | tee -a "$out/summary.txt"
		fi
	else
		pattern="${expect#fail:}"
		if [ "$errors" != 0 ] && grep "assertion violated" "$dir/pan.log" | grep -qF -- "$pattern"; then
			echo "ok    $what: violation found as expected ($(grep -m1 'assertion violated' "$dir/pan.log" | sed 's/^pan:1: //'), $states states)" |
				tee -a "$out/summary.txt"
		else
			grep -E "violated|errors" "$dir/pan.log" || true
			echo "FAIL  $what: expected an assertion violation matching '$pattern' (the model missed a planted bug)"
			status=1
		fi
	fi
done
exit $status
