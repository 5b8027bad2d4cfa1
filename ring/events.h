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
 * E1-E3: append one event, a constructor per kind. Texts are cut at
 * SB_TAG_MAX bytes. The constructors the store path calls take texts
 * that may be read for a whole 64 bytes (slot fields, padded tag words),
 * of which len count; the others take any bytes. A kind without a cause
 * gets SB_EVICT_NONE.
 */
void sb__event_eviction(struct sb_evring *ring, const char evicted[64], size_t evicted_len,
			const char new_tag[64], size_t new_len, uint64_t cap,
			enum sb_evict_cause cause);
void sb__event_overwrite(struct sb_evring *ring, const char tag[64], size_t tag_len,
			 const char prior_schema[64], size_t schema_len);
void sb__event_capture_unavailable(struct sb_evring *ring, const char *tag, size_t tag_len);
void sb__event_drain_ordering_violation(struct sb_evring *ring, const char *tag, size_t tag_len,
					const char *variant);
void sb__event_cap_violation(struct sb_evring *ring, uint64_t reports_len, uint64_t cap);

/* Published events so far. */
uint64_t sb__event_head(const struct sb_evring *ring);

/*
 * V1-V3: read event e. Returns 0, 1 when it was overwritten (lapped), or
 * -EBADMSG for a slot whose contents cannot be an event.
 */
int sb__event_read(const struct sb_evring *ring, uint64_t e, struct sb_event *out);

#endif
