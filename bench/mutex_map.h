/*
 * bench/mutex_map.h - the reference design as it is (the SnapshotBridge's
 * SnapshotStore), in C, in-process, as the baseline snapbridge replaces:
 * one mutex around a hash map of owned reports, a FIFO deque of owned tag
 * strings whose overwrite path searches the deque linearly for the tag's
 * position, and an event vector capped at max_events that drops its
 * oldest event by shifting the whole vector (Vec::remove(0)).
 *
 * Differences, all in mutex_map's favour: FNV-1a instead of SipHash, a
 * table sized once (the resident set is capped), the copies allocated
 * before the lock is taken, and the parallel stats / elapsed / boundary /
 * step maps left out (the benchmark stores none, so they would only add
 * removes of absent keys).
 */
#ifndef SB_BENCH_MUTEX_MAP_H
#define SB_BENCH_MUTEX_MAP_H

#include <stddef.h>
#include <stdint.h>

struct mm_map;

/* 0, -EINVAL (cap or max_events 0) or -ENOMEM. */
int mm_create(uint32_t cap, uint32_t max_events, struct mm_map **out);
void mm_destroy(struct mm_map *m);

/*
 * Store a copy of report under tag (the reference takes an owned report:
 * building one from the capture's bytes costs at least this copy).
 * Overwrite and eviction as the reference. Any thread. 0 or -ENOMEM.
 */
int mm_store(struct mm_map *m, const char *tag, const char *schema, const void *report, size_t len);

/* Resident reports and retained events (for the benchmark's own checks). */
size_t mm_len(struct mm_map *m);
size_t mm_event_count(struct mm_map *m);

#endif
