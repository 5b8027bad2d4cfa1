/*
 * ring/control.c - stamping, checking and claiming slots of the control page.
 */
#include "control.h"

#include <errno.h>
#include <string.h>

#include <snapbridge/types.h>

#include "atomics.h"
#include "error.h"

void sb__ctl_init(struct sb_ctl *ctl)
{
	memcpy(ctl->hdr.magic, SB_CTL_MAGIC, sizeof(ctl->hdr.magic));
	ctl->hdr.abi_major = SB_ABI_MAJOR;
	ctl->hdr.abi_minor = SB_ABI_MINOR;
	ctl->hdr.size = SB_CTL_SIZE;
	ctl->hdr.layout_hash = sb__layout_hash();
	ctl->hdr.nslots = SB_CTL_SLOTS;
	ctl->hdr.slot_size = sizeof(struct sb_ctl_slot);
}

int sb__ctl_validate(const struct sb_ctl *ctl)
{
	struct sb_ctl_header h;

	/* A private copy: another consumer may be scribbling on the shared one. */
	memcpy(&h, &ctl->hdr, sizeof(h));
	if (memcmp(h.magic, SB_CTL_MAGIC, sizeof(h.magic)) != 0)
		return sb__fail(-EBADMSG, "control page has no SNAPCTRL magic: not a snapbridge "
					  "control memfd");
	if (h.abi_major != SB_ABI_MAJOR || h.layout_hash != sb__layout_hash())
		return sb__fail(-EPROTO,
				"control page is ABI %u.%u with layout %016llx; this build reads "
				"%u.x with layout %016llx",
				h.abi_major, h.abi_minor, (unsigned long long)h.layout_hash,
				SB_ABI_MAJOR, (unsigned long long)sb__layout_hash());
	if (h.size != SB_CTL_SIZE || h.nslots != SB_CTL_SLOTS ||
	    h.slot_size != sizeof(struct sb_ctl_slot))
		return sb__fail(-EBADMSG, "control page claims %u bytes and %u slots of %u bytes",
				h.size, h.nslots, h.slot_size);
	return 0;
}

int sb__ctl_claim(struct sb_ctl *ctl, int32_t pid, uint64_t start_time, uint64_t now_ns)
{
	/* 0 means free: a claim for pid 0 would succeed on a free slot and leave it free. */
	if (pid <= 0)
		return sb__fail(-EINVAL,
				"cannot claim a consumer slot for pid %d (a peer in "
				"another pid namespace?)",
				pid);
	for (uint32_t i = 0; i < SB_CTL_SLOTS; i++) {
		struct sb_ctl_slot *s = &ctl->slots[i];
		int32_t free_owner = 0;

		if (sb_load_relaxed(&s->owner) != 0 || !sb_cas(&s->owner, &free_owner, pid))
			continue;
		sb_store_relaxed(&s->waiting, (uint32_t)SB_CTL_WAIT_NONE);
		sb_store_relaxed(&s->start_time, start_time);
		sb_store_relaxed(&s->cursor, (uint64_t)0);
		sb_store_relaxed(&s->heartbeat_ns, now_ns);
		sb_store_relaxed(&s->attached_ns, now_ns);
		return (int)i;
	}
	return sb__fail(-EBUSY, "all %u consumer slots of the control page are taken",
			SB_CTL_SLOTS);
}

int sb__ctl_release(struct sb_ctl *ctl, uint32_t i, int32_t pid)
{
	if (i >= SB_CTL_SLOTS || pid == 0)
		return 0;
	struct sb_ctl_slot *s = &ctl->slots[i];
	/* Clear waiting only in a slot that is still ours; a new owner sets its own. */
	if (sb_load_relaxed(&s->owner) != pid)
		return 0;
	sb_store_relaxed(&s->waiting, (uint32_t)SB_CTL_WAIT_NONE);
	return sb_cas(&s->owner, &pid, 0) ? 1 : 0;
}

size_t sb__ctl_list(const struct sb_ctl *ctl, uint64_t stores, uint64_t now_ns,
		    struct sb_consumer_info *out, size_t cap)
{
	size_t n = 0;

	for (uint32_t i = 0; i < SB_CTL_SLOTS; i++) {
		const struct sb_ctl_slot *s = &ctl->slots[i];
		int32_t owner = sb_load_relaxed(&s->owner);

		if (owner == 0)
			continue;
		if (n < cap) {
			struct sb_consumer_info *c = &out[n];
			uint64_t cursor = sb_load_relaxed(&s->cursor);
			uint64_t beat = sb_load_relaxed(&s->heartbeat_ns);
			uint32_t waiting = sb_load_relaxed(&s->waiting);

			memset(c, 0, sizeof(*c));
			c->slot = i;
			c->pid = owner;
			c->cursor = cursor;
			c->lag_valid = cursor <= stores;
			c->lag = c->lag_valid ? stores - cursor : 0;
			c->heartbeat_age_ns = beat <= now_ns ? now_ns - beat : 0;
			c->attached_ns = sb_load_relaxed(&s->attached_ns);
			c->waiting = waiting == SB_CTL_WAIT_FUTEX || waiting == SB_CTL_WAIT_POLL;
			c->polling = waiting == SB_CTL_WAIT_POLL;
		}
		n++;
	}
	return n;
}
