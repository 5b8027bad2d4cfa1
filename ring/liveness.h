/*
 * ring/liveness.h - how a consumer can tell that its coordinator is still
 * there, both halves: the words on the header's own line.
 *
 *   serving thread, every heartbeat_period_ms:
 *     H1  store heartbeat_ns = CLOCK_MONOTONIC (relaxed: it orders nothing;
 *         readers compare it with their own clock)
 *   sb_bridge_destroy, before any connection is hung up:
 *     X1  store_release(closed = 1)               -- pairs with X2
 *   reader
 *     X2  load_acquire(closed): once 1, every publication before the close
 *         is visible, and the coordinator is closed, not dead. A hang-up
 *         seen before X2 is read again afterwards tells the two apart.
 *
 * Whether a coordinator without a close is alive (pidfd, pid and start
 * time, a stale beat) is the consumer's judgement: consumers/liveness.c.
 */
#ifndef SB_RING_LIVENESS_H
#define SB_RING_LIVENESS_H

#include <stdbool.h>
#include <stdint.h>

#include "atomics.h"
#include "layout.h"

static inline void sb__beat(struct sb_header *h, uint64_t now_ns)
{
	sb_store_relaxed(&h->heartbeat_ns, now_ns); /* H1 */
}

static inline void sb__beat_period(struct sb_header *h, uint32_t period_ms)
{
	sb_store_relaxed(&h->heartbeat_period_ms, period_ms);
}

/* The last beat and its period (0: nobody beats). */
static inline void sb__beat_read(const struct sb_header *h, uint64_t *beat_ns, uint32_t *period_ms)
{
	*beat_ns = sb_load_relaxed(&h->heartbeat_ns);
	*period_ms = sb_load_relaxed(&h->heartbeat_period_ms);
}

static inline void sb__region_close(struct sb_header *h)
{
	sb_store_release(&h->closed, 1); /* X1: pairs with X2 */
}

static inline bool sb__region_closed(const struct sb_header *h)
{
	return sb_load_acquire(&h->closed) != 0; /* X2: pairs with X1 */
}

#endif
