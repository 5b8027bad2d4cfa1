/* tests/testutil.h - payload builders and checks shared by the suites. */
#ifndef SB_TESTUTIL_H
#define SB_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <snapbridge/snapbridge.h>

/*
 * Encode a report of n payload bytes as one msgpack bin whose bytes come
 * from seed; returns its encoded length (buf needs n + 5 bytes).
 */
size_t tu_report(uint8_t *buf, size_t n, uint64_t seed);

/* Whether a report made by tu_report() holds exactly the seeded bytes; returns the seed. */
int tu_report_check(const void *report, size_t len, uint64_t *seed_out);

/*
 * A private copy of fd's whole region (what a saved image holds); NULL on
 * failure. The caller frees it.
 */
uint8_t *tu_read_region(int fd, size_t *size);

/* A file's whole text, NUL-terminated ("" when it cannot be opened). The caller frees it. */
char *tu_slurp(const char *path);

/* Writers a multi-writer tally tells apart, and the seed of writer w's n-th store. */
#define TU_WRITERS 8
static inline uint64_t tu_seed(unsigned writer, uint64_t n)
{
	return (uint64_t)(writer + 1) << 48 | n;
}

/*
 * A drain callback's tally of reports made by tu_report() with seed =
 * store_seq: bad counts entries whose bytes do not match their seed or
 * whose store_seq does not grow (by exactly one when contiguous is set:
 * no store may be missing).
 */
struct tu_tally {
	bool contiguous;
	/*
	 * Several writers: seeds are tu_seed(writer, n) instead of store_seq,
	 * and each writer's n must grow in delivery order (stores are
	 * delivered in store order, and each writer stores in its own order).
	 */
	bool multi;
	uint64_t last_seq;
	uint64_t last_n[TU_WRITERS];
	uint64_t delivered;
	uint64_t bad;
};

/* An sb_entry_fn for a struct tu_tally. */
int tu_tally_entry(void *tally, const struct sb_entry *e);

/*
 * Drain until the cursor reaches the newest store or stops moving (a
 * record in flight): one drain call reads at most a log's worth.
 * Returns the first drain error, else 0.
 */
int tu_drain_to_end(struct sb_consumer *c, sb_entry_fn fn, void *user);

/*
 * Aux record i (i >= 1) of a seeded stream: odd i is a kernel op tagged
 * "kop_<i>" whose reply has id i, succeeds unless i % 3 == 0, and reads
 * one u64 i * 7; even i is a cgroup.procs snapshot tagged "cg_<i>" of
 * cgroup "/sb/<i>" with pids i, i+1, ... (i % 5 of them).
 */
int tu_aux_put(struct sb_bridge *b, uint64_t i);

/* Whether a drained aux item is exactly what tu_aux_put(b, seq) recorded. */
bool tu_aux_check(const struct sb_aux_item *item);

/* A minimal bridge config for tests. */
void tu_config(struct sb_config *cfg, uint32_t max_snapshots, uint32_t max_events,
	       uint64_t log_bytes);

#endif
