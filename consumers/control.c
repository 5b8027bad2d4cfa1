/*
 * consumers/control.c - what a consumer tells about itself in its own
 * control page (hints the coordinator lists), and the coordinator's list
 * of attached consumers as it publishes it in the data region (no
 * consumer may read another's page).
 */
#include <errno.h>
#include <string.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"
#include "../ring/error.h"
#include "../ring/peers.h"
#include "consumer_internal.h"

void sb__consumer_touch(struct sb_consumer *c)
{
	if (!c->page)
		return;
	/* Hints for the listing; relaxed: they order nothing. */
	sb_store_relaxed(&c->page->cursor, c->rec.cursor);
	sb_store_relaxed(&c->page->heartbeat_ns, sb__mono_ns());
}

int sb_consumer_peers(struct sb_consumer *c, struct sb_consumer_info *out, size_t cap, size_t *n)
{
	struct sb_peer_entry e[SB_PEERS_MAX];
	uint32_t count = 0;

	if (!c || !n || (cap && !out))
		return sb__fail(-EINVAL, "sb_consumer_peers: NULL argument");
	if (c->image)
		return sb__fail(-EOPNOTSUPP, "an image has no attached consumers");
	const struct sb_peers *shared =
	    (const struct sb_peers *)(c->base + c->hdr.sections[SB_SEC_PEERS].offset);
	int err = sb__peers_read(shared, &count, e); /* D3-D4 */
	if (err)
		return err;
	uint64_t stores = sb__log_newest_seq(&c->hot->store_seq);
	uint64_t now = sb__mono_ns();
	for (uint32_t i = 0; i < count && i < cap; i++) {
		struct sb_consumer_info *p = &out[i];

		/* Each entry's cursor and beat are that consumer's claims: bounded here. */
		memset(p, 0, sizeof(*p));
		p->slot = e[i].slot;
		p->pid = e[i].pid;
		p->cursor = e[i].cursor;
		p->lag_valid = e[i].cursor <= stores;
		p->lag = p->lag_valid ? stores - e[i].cursor : 0;
		p->heartbeat_age_ns = e[i].heartbeat_ns <= now ? now - e[i].heartbeat_ns : 0;
		p->attached_ns = e[i].attached_ns;
		p->waiting = e[i].armed != 0;
		p->polling = e[i].armed == SB_ARM_POLL;
	}
	*n = count;
	return 0;
}
