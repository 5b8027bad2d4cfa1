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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <snapbridge/types.h>

#include "atomics.h"
#include "layout.h"

struct sb_evring {
	struct sb_event_slot *slots;
	uint32_t n;
	uint64_t *seq; /* the event_seq hot word */
	uint32_t next; /* the writer's: the slot of the next event, event_seq % n */
};

/* What one event says; a field its kind lacks stays zero. */
struct sb__ev {
	enum sb_event_kind kind;
	enum sb_evict_cause cause;
	uint64_t cap, count;
	const char *tag, *detail;
	size_t tag_len, detail_len;
	bool padded; /* tag and detail may be read for 64 bytes */
};

_Static_assert(sizeof(((struct sb_event_slot *)0)->tag) == 64 &&
		   sizeof(((struct sb_event_slot *)0)->detail) == 64,
	       "event texts are copied 64 bytes at a time");

static inline size_t sb__ev_cut(size_t len)
{
	return len < SB_TAG_MAX ? len : SB_TAG_MAX;
}

static inline void sb__ev_text(char dst[64], const char *src, size_t len, bool padded)
{
	if (padded)
		memcpy(dst, src, 64); /* a fixed size: a few vector moves, no call */
	else if (len)
		memcpy(dst, src, len); /* bytes past len are left: readers copy only len */
}

/*
 * E1-E3: the one writer of event slots, behind the constructors below.
 * Inline, since the store path pushes an event with every eviction and
 * overwrite.
 */
static inline void sb__event_push(struct sb_evring *ring, const struct sb__ev *ev)
{
	uint64_t e = sb_load_relaxed(ring->seq) + 1; /* only lock holders store it */
	struct sb_event_slot *s = &ring->slots[ring->next];

	ring->next = ring->next + 1 == ring->n ? 0 : ring->next + 1; /* (e - 1) % n, no division */
	sb_store_relaxed(&s->stamp, e | SB_STAMP_WRITING);	     /* E1 */
	sb_fence_release();
	s->kind = ev->kind;
	s->cause = ev->cause;
	s->cap = ev->cap;
	s->count = ev->count;
	sb__ev_text(s->tag, ev->tag, sb__ev_cut(ev->tag_len), ev->padded);
	sb__ev_text(s->detail, ev->detail, sb__ev_cut(ev->detail_len), ev->padded);
	s->tag_len = (uint8_t)sb__ev_cut(ev->tag_len);
	s->detail_len = (uint8_t)sb__ev_cut(ev->detail_len);
	sb_store_release(&s->stamp, e); /* E2: pairs with V1 */
	sb_store_release(ring->seq, e); /* E3: pairs with V0 */
}

/*
 * E1-E3: append one event, a constructor per kind. Texts are cut at
 * SB_TAG_MAX bytes. The constructors the store path calls take texts
 * that may be read for a whole 64 bytes (slot fields, padded tag words),
 * of which len count; the others take any bytes. A kind without a cause
 * gets SB_EVICT_NONE.
 */
static inline void sb__event_eviction(struct sb_evring *ring, const char evicted[64],
				      size_t evicted_len, const char new_tag[64], size_t new_len,
				      uint64_t cap, enum sb_evict_cause cause)
{
	sb__event_push(ring, &(struct sb__ev){ .kind = SB_EVENT_EVICTION,
					       .cause = cause,
					       .cap = cap,
					       .tag = evicted,
					       .tag_len = evicted_len,
					       .detail = new_tag,
					       .detail_len = new_len,
					       .padded = true });
}

static inline void sb__event_overwrite(struct sb_evring *ring, const char tag[64], size_t tag_len,
				       const char prior_schema[64], size_t schema_len)
{
	sb__event_push(ring, &(struct sb__ev){ .kind = SB_EVENT_OVERWRITE,
					       .tag = tag,
					       .tag_len = tag_len,
					       .detail = prior_schema,
					       .detail_len = schema_len,
					       .padded = true });
}

void sb__event_capture_unavailable(struct sb_evring *ring, const char *tag, size_t tag_len);
void sb__event_drain_ordering_violation(struct sb_evring *ring, const char *tag, size_t tag_len,
					const char *variant);
void sb__event_cap_violation(struct sb_evring *ring, uint64_t reports_len, uint64_t cap);

/* Published events so far. */
uint64_t sb__event_head(const struct sb_evring *ring);

/*
 * V1-V3: copy the slot of event e as it was written. Returns 0, or 1 when
 * the slot no longer (or not yet) holds e. The copy is not checked.
 */
int sb__event_copy(const struct sb_evring *ring, uint64_t e, struct sb_event_slot *out);

/*
 * V1-V3: read event e. Returns 0, 1 when it was overwritten (lapped), or
 * -EBADMSG for a slot whose contents cannot be an event.
 */
int sb__event_read(const struct sb_evring *ring, uint64_t e, struct sb_event *out);

#endif
