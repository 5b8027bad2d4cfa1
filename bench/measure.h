/*
 * bench/measure.h - one repetition of one measurement, for one system.
 * bench.c schedules them (repetitions interleaved across systems) and
 * turns the samples into the table, the JSON and the plot.
 *
 * Pinning, the same for every system: the storing thread (or process) on
 * the first allowed CPU, consumer processes on the others in turn; with
 * N writer threads, thread i on CPU i (mod the CPU count).
 */
#ifndef SB_BENCH_MEASURE_H
#define SB_BENCH_MEASURE_H

#include <stdbool.h>
#include <stdint.h>

#include <snapbridge/snapbridge.h>

#include "harness.h"

/* The record log of the snapbridge runs (the default) and the ring size of raw_ring / memcpy. */
#define SBB_RING_BYTES	   SB_DEFAULT_LOG_BYTES
#define SBB_MAX_SNAPS	   SB_DEFAULT_MAX_SNAPSHOTS
#define SBB_MAX_EVENTS	   SB_DEFAULT_MAX_EVENTS
#define SBB_OVERWRITE_TAGS 32
#define SBB_MAX_CONSUMERS  4

struct sbb_params {
	uint32_t size;	      /* record (report) bytes */
	enum sbb_shape shape; /* what the report holds (harness.h) */
	uint64_t
	    ring_bytes; /* snapbridge's log, raw_ring's ring, memcpy's ring: one size for all */
	uint64_t n;	/* timed records, over all threads */
	uint64_t nlat;	/* records timed one by one for p50/p99/p99.9; 0: none */
	/*
	 * Untimed records first, enough to write every ring in full: every
	 * page of every system's memory is faulted in before timing. In an
	 * end-to-end run they go once before the consumers attach (the
	 * writer's pages) and once after (the consumers' mappings and buffers).
	 */
	uint64_t warm;
	unsigned threads;   /* writer threads (parallel runs) */
	unsigned consumers; /* consumer processes (end-to-end runs) */
	bool overwrite;	    /* tags reused round-robin instead of unique tags */
	/* snapbridge: stores check their msgpack (store, parallel), or consumers do (e2e). */
	bool validate;
};

struct sbb_sample {
	double rate;	    /* records/s: stored (store, parallel) or delivered (e2e) */
	double writer_rate; /* e2e: the writer's own records/s */
	/*
	 * Records per CPU-second of the storing process, all its threads (a
	 * bridge's liburcu worker included): store runs and the e2e writer. Unlike the wall-clock
	 * rates, time the machine's other users take from the pinned CPU does not count.
	 */
	double cpu_rate;
	double p50, p99, p999;
	bool has_lat;
	uint64_t stores;    /* e2e: records stored, times consumers */
	uint64_t delivered; /* e2e: records delivered, over consumers */
	bool has_counts;    /* snapbridge e2e: the consumers' outcomes */
	struct sb_drain_counts counts;
	/*
	 * Minor page faults of the timed phase (getrusage): the storing or
	 * writing process, all its threads; in e2e runs also every consumer
	 * process, summed, from the writer's first timed record to its last.
	 */
	uint64_t faults;
	uint64_t consumer_faults;
	bool has_consumer_faults;
};

/* In-process, one thread: memcpy, raw_ring, mutex_map, snapbridge. -ENOENT: unknown here. */
int sbb_store_run(const char *system, const struct sbb_params *p, struct sbb_sample *out);

/* In-process, p->threads threads: memcpy, mutex_map, snapbridge. */
int sbb_parallel_run(const char *system, const struct sbb_params *p, struct sbb_sample *out);

/*
 * A writer process and p->consumers consumer processes: snapbridge,
 * raw_ring, pipe, unix_stream, iceoryx (RouDi running: sbb_iox_start).
 * Fills the delivered rate, the writer's rate and, where p->nlat, the
 * writer's per-record latency.
 */
int sbb_e2e_run(const char *system, const struct sbb_params *p, struct sbb_sample *out);

/* Per-record latencies (ns) into percentiles; sorts lat. */
void sbb_latency_fill(uint64_t *lat, uint64_t n, struct sbb_sample *out);

/*
 * Unique tags without snprintf per store: a decimal counter after a
 * prefix, incremented in place.
 */
struct sbb_tags {
	char s[48];
	unsigned len, digits_at;
};

void sbb_tags_init(struct sbb_tags *t, const char *prefix);
void sbb_tags_next(struct sbb_tags *t);

#endif
