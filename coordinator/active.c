/*
 * coordinator/active.c - the thread's active bridge: a _Thread_local
 * pointer, installed and restored by guards that nest.
 */
#include "bridge_internal.h"

#include <errno.h>

#include "../ring/error.h"

static _Thread_local struct sb_bridge *active;

struct sb_bridge_guard sb_bridge_set_thread_local(struct sb_bridge *b)
{
	struct sb_bridge_guard g = { active, true };

	active = b;
	return g;
}

void sb_bridge_guard_restore(struct sb_bridge_guard *g)
{
	if (!g || !g->armed)
		return;
	active = g->prev;
	g->armed = false;
}

struct sb_bridge *sb_active_bridge(void)
{
	return active;
}

int sb_with_active_bridge(int (*fn)(struct sb_bridge *b, void *user), void *user, int *result)
{
	if (!fn || !result)
		return sb__fail(-EINVAL, "sb_with_active_bridge: NULL argument");
	if (!active)
		return sb__fail(-ENOENT, "no bridge is active on this thread "
					 "(sb_bridge_set_thread_local)");
	*result = fn(active, user);
	return 0;
}
