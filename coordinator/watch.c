/*
 * coordinator/watch.c - the reference's watch slots: a count in the
 * region that a compare-and-swap reservation keeps at or under max_watch,
 * and the host's watch-register callback, run with no lock held.
 */
#define _GNU_SOURCE
#include "bridge_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ring/atomics.h"
#include "../ring/error.h"
#include "../ring/format/kernel_op.h"

int sb_bridge_register_watch(struct sb_bridge *b, const char *symbol)
{
	uint64_t *count;
	uint64_t prev;

	if (!b)
		return sb__fail(-EINVAL, "bridge is NULL");
	if (!symbol || !symbol[0])
		return sb__fail(-EINVAL, "watch symbol is %s", symbol ? "empty" : "NULL");
	if (strnlen(symbol, SB_KOP_TARGET_MAX + 1) > SB_KOP_TARGET_MAX)
		return sb__fail(-ENAMETOOLONG, "watch symbol \"%.24s...\" is longer than %d bytes",
				symbol, SB_KOP_TARGET_MAX);
	/*
	 * Reserve by compare-and-swap, never add-then-undo: a failed add would
	 * put the published count over the cap for a moment, and consumers
	 * (and other threads) read it at any moment.
	 */
	count = &b->hot->watch_count;
	prev = sb_load_relaxed(count);
	do {
		if (prev >= b->cfg.max_watch)
			return sb__fail(-ENOSPC,
					"watch on %s: cap exceeded: all %u watch slots are taken "
					"(max_watch; the host's own trigger slot is not counted). "
					"Drop a watch, or capture on a timer instead",
					symbol, b->cfg.max_watch);
	} while (!sb_cas(count, &prev, prev + 1));

	if (!b->ops.watch_register) {
		sb_fetch_add_seqcst(count, (uint64_t)-1);
		return sb__fail(-ENOSYS,
				"watch on %s: no watch-register callback installed on this "
				"bridge (set sb_bridge_ops.watch_register at create)",
				symbol);
	}
	char why[256] = "";
	int r = b->ops.watch_register(b->ops.user, symbol, why, sizeof(why));
	if (r != 0) {
		int err = r < 0 ? r : -EIO;

		sb_fetch_add_seqcst(count, (uint64_t)-1); /* the slot goes back */
		why[sizeof(why) - 1] = '\0';
		if (!why[0])
			snprintf(why, sizeof(why), "it returned %d (%s)", r,
				 r < 0 ? strerror(-r) : "not a negative errno");
		return sb__fail(err, "watch on %s: the watch-register callback failed: %s", symbol,
				why);
	}
	return 0; /* the slot stays taken */
}

int sb_bridge_watch_count(struct sb_bridge *b, uint32_t *out)
{
	if (!b || !out)
		return sb__fail(-EINVAL, "sb_bridge_watch_count: NULL argument");
	*out = (uint32_t)sb_load_relaxed(&b->hot->watch_count);
	return 0;
}
