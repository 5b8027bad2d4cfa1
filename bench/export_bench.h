/* bench/export_bench.h - the export-to-NATS row of `snapbridge bench` (bench/export.c). */
#ifndef SB_BENCH_EXPORT_BENCH_H
#define SB_BENCH_EXPORT_BENCH_H

#include <stdio.h>

/*
 * Measure snapbridge export against a js_PublishMsgAsync loop of the same
 * messages, 4 KB and 64 KB reports, into a nats-server started here, and
 * print the rows and the target to text. mode: 0 full, 1 quick, 2 smoke.
 * A machine without nats-server gets one "skipped" line and 0. Returns 0,
 * or -EIO when a run failed.
 */
int sbb_export_bench(int mode, FILE *text);

/* The results as a ",\n\"export\":{...}" member of bench.json (nothing if not run). */
void sbb_export_json(FILE *f);

#endif
