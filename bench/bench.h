/*
 * bench/bench.h - `snapbridge bench`: throughput, latency and wake-up
 * figures of snapbridge next to its baselines, measured in one run
 * (docs/BENCHMARKS.md says what each figure means).
 */
#ifndef SB_BENCH_BENCH_H
#define SB_BENCH_BENCH_H

/*
 * snapbridge bench [--quick | --smoke] [--json FILE] [--svg FILE]
 *                  [--only NAME,...] [--sizes LIST] [--shape LIST]
 * argv[0] is the command's name. Returns 0, 1 (a measurement failed or a
 * file could not be written) or 2 (usage). Without gnuplot, --svg is
 * skipped with one line saying so and does not fail the run.
 */
int sb_bench_main(int argc, char **argv);

#endif
