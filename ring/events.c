/* ring/events.c - the event ring; the protocol is in events.h. */
#include "events.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "atomics.h"
#include "error.h"

_Static_assert(sizeof(((struct sb_event_slot *)0)->tag) == 64 &&
		   sizeof(((struct sb_event_slot *)0)->detail) == 64,
	       "event texts are copied 64 bytes at a time");

/* What one event says; a field its kind lacks stays zero. */
struct ev {
	enum sb_event_kind kind;
	enum sb_evict_cause cause;
	uint64_t cap, count;
	const char *tag, *detail;
	size_t tag_len, detail_len;
	bool padded; /* tag and detail may be read for 64 bytes */
};

static size_t cut(size_t len)
{
	return len < SB_TAG_MAX ? len : SB_TAG_MAX;
}

static void copy_text(char dst[64], const char *src, size_t len, bool padded)
{
	if (padded)
		memcpy(dst, src, 64); /* a fixed size: a few vector moves, no call */
	else if (len)
		memcpy(dst, src, len); /* bytes past len are left: readers copy only len */
}

/* E1-E3: the one writer of event slots. */
static void push(struct sb_evring *ring, const struct ev *ev)
{
	uint64_t e = sb_load_relaxed(ring->seq) + 1; /* only lock holders store it */
	struct sb_event_slot *s = &ring->slots[ring->next];

	ring->next =
	    ring->next + 1 == ring->n ? 0 : ring->next + 1; /* (e - 1) % n, without a division */
	sb_store_relaxed(&s->stamp, e | SB_STAMP_WRITING);  /* E1 */
	sb_fence_release();
	s->kind = ev->kind;
	s->cause = ev->cause;
	s->cap = ev->cap;
	s->count = ev->count;
	copy_text(s->tag, ev->tag, cut(ev->tag_len), ev->padded);
	copy_text(s->detail, ev->detail, cut(ev->detail_len), ev->padded);
	s->tag_len = (uint8_t)cut(ev->tag_len);
	s->detail_len = (uint8_t)cut(ev->detail_len);
	sb_store_release(&s->stamp, e); /* E2: pairs with V1 */
	sb_store_release(ring->seq, e); /* E3: pairs with V0 */
}

void sb__event_eviction(struct sb_evring *ring, const char evicted[64], size_t evicted_len,
			const char new_tag[64], size_t new_len, uint64_t cap,
			enum sb_evict_cause cause)
{
	push(ring, &(struct ev){ .kind = SB_EVENT_EVICTION,
				 .cause = cause,
				 .cap = cap,
				 .tag = evicted,
				 .tag_len = evicted_len,
				 .detail = new_tag,
				 .detail_len = new_len,
				 .padded = true });
}

void sb__event_overwrite(struct sb_evring *ring, const char tag[64], size_t tag_len,
			 const char prior_schema[64], size_t schema_len)
{
	push(ring, &(struct ev){ .kind = SB_EVENT_OVERWRITE,
				 .tag = tag,
				 .tag_len = tag_len,
				 .detail = prior_schema,
				 .detail_len = schema_len,
				 .padded = true });
}

void sb__event_capture_unavailable(struct sb_evring *ring, const char *tag, size_t tag_len)
{
	push(ring,
	     &(struct ev){ .kind = SB_EVENT_CAPTURE_UNAVAILABLE, .tag = tag, .tag_len = tag_len });
}

void sb__event_drain_ordering_violation(struct sb_evring *ring, const char *tag, size_t tag_len,
					const char *variant)
{
	push(ring, &(struct ev){ .kind = SB_EVENT_DRAIN_ORDERING_INVARIANT_VIOLATION,
				 .tag = tag,
				 .tag_len = tag_len,
				 .detail = variant,
				 .detail_len = strlen(variant) });
}

void sb__event_cap_violation(struct sb_evring *ring, uint64_t reports_len, uint64_t cap)
{
	push(ring, &(struct ev){ .kind = SB_EVENT_CAP_INVARIANT_VIOLATION,
				 .cap = cap,
				 .count = reports_len });
}

uint64_t sb__event_head(const struct sb_evring *ring)
{
	return sb_load_acquire(ring->seq); /* V0: pairs with E3 */
}

/* Whether cause is the one an event of kind carries. */
static bool cause_fits(uint32_t kind, uint32_t cause)
{
	if (kind == SB_EVENT_EVICTION)
		return cause == SB_EVICT_CAP || cause == SB_EVICT_BYTES;
	return cause == SB_EVICT_NONE;
}

int sb__event_read(const struct sb_evring *ring, uint64_t e, struct sb_event *out)
{
	const struct sb_event_slot *s = &ring->slots[(e - 1) % ring->n];
	struct sb_event_slot copy;

	if (sb_load_acquire(&s->stamp) != e) /* V1: pairs with E2 */
		return 1;
	memcpy(&copy, s, sizeof(copy));
	sb_fence_acquire(); /* V3: pairs with E1's fence */
	if (sb_load_relaxed(&s->stamp) != e)
		return 1;
	if (copy.kind < SB_EVENT_CAPTURE_UNAVAILABLE || copy.kind > SB_EVENT_LOG_TRUNCATED ||
	    !cause_fits(copy.kind, copy.cause) || copy.tag_len > SB_TAG_MAX ||
	    copy.detail_len > SB_TAG_MAX)
		return sb__fail(-EBADMSG, "event %llu is corrupt: kind %u, cause %u, lengths %u/%u",
				(unsigned long long)e, copy.kind, copy.cause, copy.tag_len,
				copy.detail_len);
	memset(out, 0, sizeof(*out));
	out->kind = (enum sb_event_kind)copy.kind;
	out->cause = (enum sb_evict_cause)copy.cause;
	out->seq = e;
	out->cap = copy.cap;
	out->count = copy.count;
	memcpy(out->tag, copy.tag, copy.tag_len);
	memcpy(out->detail, copy.detail, copy.detail_len);
	return 0;
}
