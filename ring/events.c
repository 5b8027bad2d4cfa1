#include "events.h"

#include <errno.h>
#include <string.h>

#include "atomics.h"
#include "error.h"

uint64_t sb__event_push_n(struct sb_evring *ring, enum sb_event_kind kind, const char *tag,
			  size_t tag_len, const char *detail, size_t detail_len, uint64_t cap,
			  uint64_t count, enum sb_evict_cause cause)
{
	uint64_t e = sb_load_relaxed(ring->seq) + 1; /* only lock holders store it */
	struct sb_event_slot *s = &ring->slots[ring->next];

	ring->next = ring->next + 1 == ring->n ? 0 : ring->next + 1; /* (e - 1) % n, without a division */
	tag_len = tag_len < SB_TAG_MAX ? tag_len : SB_TAG_MAX;
	detail_len = detail_len < SB_TAG_MAX ? detail_len : SB_TAG_MAX;
	sb_store_relaxed(&s->stamp, e | SB_STAMP_WRITING); /* E1 */
	sb_fence_release();
	s->kind = kind;
	s->cause = cause;
	s->cap = cap;
	s->count = count;
	/* Bytes past each length are left as they were: readers copy only the length. */
	memcpy(s->tag, tag, tag_len);
	memcpy(s->detail, detail, detail_len);
	s->tag_len = (uint8_t)tag_len;
	s->detail_len = (uint8_t)detail_len;
	sb_store_release(&s->stamp, e); /* E2: pairs with V1 */
	sb_store_release(ring->seq, e); /* E3: pairs with V0 */
	return e;
}

uint64_t sb__event_push(struct sb_evring *ring, enum sb_event_kind kind, const char *tag,
			const char *detail, uint64_t cap, uint64_t count, enum sb_evict_cause cause)
{
	return sb__event_push_n(ring, kind, tag ? tag : "", tag ? strnlen(tag, SB_TAG_MAX) : 0,
				detail ? detail : "", detail ? strnlen(detail, SB_TAG_MAX) : 0,
				cap, count, cause);
}

uint64_t sb__event_head(const struct sb_evring *ring)
{
	return sb_load_acquire(ring->seq); /* V0: pairs with E3 */
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
	    copy.cause > SB_EVICT_BYTES || copy.tag_len > SB_TAG_MAX ||
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
