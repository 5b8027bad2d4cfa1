/*
 * bench/wake.h - wake-up latency, snapbridge against a bare futex.
 *
 *   raw_futex   two processes share a page; the waker stamps
 *               CLOCK_MONOTONIC, bumps a word and calls FUTEX_WAKE; the
 *               sleeper, in FUTEX_WAIT, takes now - stamp.
 *   snapbridge  a coordinator stores a 64-byte report carrying the stamp
 *               while a consumer, connected over the socket, sleeps in
 *               sb_consumer_wait(); its drain callback takes now - stamp.
 *
 * Before each wake the sleeper has announced itself and had SBB_SETTLE_NS
 * to reach the kernel, so the sleeping path is measured, not the spin.
 */
#ifndef SB_BENCH_WAKE_H
#define SB_BENCH_WAKE_H

#include <stdbool.h>

#include "harness.h"

#define SBB_SETTLE_NS 75000

struct sbb_wake_result {
	double p50[SBB_REPS], p99[SBB_REPS];
	double call50[SBB_REPS];  /* the waker's FUTEX_WAKE or sb_bridge_store, from the stamp */
	double drain50[SBB_REPS]; /* snapbridge: wait() returned to the drain callback */
	bool ok;
};

/*
 * Repetition rep (of reps) of nsamples wake-ups, raw_futex or snapbridge;
 * fills slot rep of res and prints one progress line on stderr. Returns 0
 * or -errno (the children's messages are on stderr).
 */
int sbb_wake_run(bool raw, unsigned nsamples, unsigned rep, unsigned reps,
		 struct sbb_wake_result *res);

#endif
