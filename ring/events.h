/*
 * ring/events.h - the event ring: max_events fixed slots, each stamped
 * with the 1-based sequence of the event it holds.
 *
 * Protocol
 *   writer (under the bridge lock), event e into slot (e - 1) % n:
 *     E1  store stamp = e | WRITING, then sb_fence_release()  -- pairs with V3
 *     E2  write the body, store_release(stamp = e)            -- pairs with V1
 *     E3  store_release(event_seq = e)                        -- pairs with V0
 *   reader, wanting event e <= event_seq:
 *     V0  load_acquire(event_seq)
 *     V1  load_acquire(stamp): anything but e means e was overwritten
 *     V2  copy the body
 *     V3  sb_fence_acquire(), load stamp again: changed means lapped
 */
#ifndef SB_RING_EVENTS_H
#define SB_RING_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <snapbridge/types.h>

#include "layout.h"

struct sb_evring {
	struct sb_event_slot *slots;
	uint32_t n;
	uint64_t *seq; /* the event_seq hot word */
	uint32_t next; /* the writer's: the slot of the next event, event_seq % n */
};

/*
 * E1-E3: append an event; tag and detail may be NULL and are cut at
 * SB_TAG_MAX bytes. Returns the new sequence.
 */
uint64_t sb__event_push(struct sb_evring *ring, enum sb_event_kind kind, const char *tag,
			const char *detail, uint64_t cap, uint64_t count,
			enum sb_evict_cause cause);

/* The same with the lengths known: tag and detail need not be NUL-terminated. */
uint64_t sb__event_push_n(struct sb_evring *ring, enum sb_event_kind kind, const char *tag,
			  size_t tag_len, const char *detail, size_t detail_len, uint64_t cap,
			  uint64_t count, enum sb_evict_cause cause);

/* Published events so far. */
uint64_t sb__event_head(const struct sb_evring *ring);

/*
 * V1-V3: read event e. Returns 0, 1 when it was overwritten (lapped), or
 * -EBADMSG for a slot whose contents cannot be an event.
 */
int sb__event_read(const struct sb_evring *ring, uint64_t e, struct sb_event *out);

#endif
