/*
 * ring/events.c - the event ring: its constructors per kind, the reader's
 * copy and check (the protocol is in events.h), and the event helpers of
 * the public API.
 */
#include "events.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "error.h"

void sb__event_capture_unavailable(struct sb_evring *ring, const char *tag, size_t tag_len)
{
	sb__event_push(ring, &(struct sb__ev){ .kind = SB_EVENT_CAPTURE_UNAVAILABLE,
					       .tag = tag,
					       .tag_len = tag_len });
}

void sb__event_drain_ordering_violation(struct sb_evring *ring, const char *tag, size_t tag_len,
					const char *variant)
{
	sb__event_push(ring, &(struct sb__ev){ .kind = SB_EVENT_DRAIN_ORDERING_INVARIANT_VIOLATION,
					       .tag = tag,
					       .tag_len = tag_len,
					       .detail = variant,
					       .detail_len = strlen(variant) });
}

void sb__event_cap_violation(struct sb_evring *ring, uint64_t reports_len, uint64_t cap)
{
	sb__event_push(ring, &(struct sb__ev){ .kind = SB_EVENT_CAP_INVARIANT_VIOLATION,
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

int sb__event_copy(const struct sb_evring *ring, uint64_t e, struct sb_event_slot *out)
{
	const struct sb_event_slot *s = &ring->slots[(e - 1) % ring->n];

	if (sb_load_acquire(&s->stamp) != e) /* V1: pairs with E2 */
		return 1;
	memcpy(out, s, sizeof(*out));
	sb_fence_acquire(); /* V3: pairs with E1's fence */
	return sb_load_relaxed(&s->stamp) != e;
}

int sb__event_read(const struct sb_evring *ring, uint64_t e, struct sb_event *out)
{
	struct sb_event_slot copy;

	if (sb__event_copy(ring, e, &copy))
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

void sb_events_free(struct sb_events *events)
{
	if (!events)
		return;
	free(events->items);
	events->items = NULL;
	events->count = 0;
}

const char *sb_event_kind_name(enum sb_event_kind kind)
{
	switch (kind) {
	case SB_EVENT_CAPTURE_UNAVAILABLE:
		return "CaptureUnavailable";
	case SB_EVENT_OVERWRITE:
		return "Overwrite";
	case SB_EVENT_EVICTION:
		return "Eviction";
	case SB_EVENT_DRAIN_ORDERING_INVARIANT_VIOLATION:
		return "DrainOrderingInvariantViolation";
	case SB_EVENT_CAP_INVARIANT_VIOLATION:
		return "CapInvariantViolation";
	case SB_EVENT_LOG_TRUNCATED:
		return "EventLogTruncated";
	}
	return "Unknown";
}
