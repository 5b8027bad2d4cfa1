/*
 * coordinator/accessor.c - the accessor worker's state as the coordinator
 * publishes it (ring/accessor.h has the protocol, A1-A3 / B1-B3, and the
 * waits both sides share), and the clock its deadlines are given in.
 *
 * Locking: accessor_lock serialises the worker's transitions; it is never
 * held with b->lock, and the wake-ups run after it is dropped.
 */
#define _GNU_SOURCE
#include "bridge_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ring/accessor.h"
#include "../ring/atomics.h"
#include "../ring/clock.h"
#include "../ring/error.h"

uint64_t sb_monotonic_ns(void)
{
	return sb__mono_ns();
}

void sb__accessor_init(struct sb_bridge *b)
{
	pthread_mutex_init(&b->accessor_lock, NULL);
}

void sb__accessor_fini(struct sb_bridge *b)
{
	pthread_mutex_destroy(&b->accessor_lock);
}

/* A3 (ring/accessor.h), with the accessor lock dropped: waiters here, then consumers. */
static void accessor_wake(struct sb_bridge *b)
{
	sb__accessor_wake(b->hot);
	sb__bridge_notify(b, SB_WAKE_ACCESSOR);
}

int sb_bridge_accessor_install(struct sb_bridge *b)
{
	if (!b)
		return sb__fail(-EINVAL, "bridge is NULL");
	pthread_mutex_lock(&b->accessor_lock);
	bool had = sb_load_relaxed(&b->hot->accessor_installed) != 0;
	if (!had)
		sb__accessor_install(b->hot);
	pthread_mutex_unlock(&b->accessor_lock);
	if (had)
		return sb__fail(-EALREADY, "accessor state is already installed");
	accessor_wake(b);
	return 0;
}

/* Run a worker transition: state is the target, or UINT32_MAX for a publish. */
static int transition(struct sb_bridge *b, uint32_t state, uint64_t *seqno)
{
	int err = 0;

	if (!b)
		return sb__fail(-EINVAL, "bridge is NULL");
	pthread_mutex_lock(&b->accessor_lock);
	if (!sb_load_relaxed(&b->hot->accessor_installed))
		err = sb__fail(-ENODEV,
			       "no accessor state is installed (sb_bridge_accessor_install)");
	else if (sb_load_relaxed(&b->hot->accessor_state) == SB_WORKER_FAILED_PERMANENTLY)
		err = sb__fail(-ENOTRECOVERABLE,
			       "the accessor worker already failed permanently; it cannot "
			       "publish or retry again");
	else if (state == UINT32_MAX) {
		uint64_t s = sb__accessor_publish(b->hot);
		if (seqno)
			*seqno = s;
	} else {
		sb__accessor_set_state(b->hot, state);
	}
	pthread_mutex_unlock(&b->accessor_lock);
	if (!err)
		accessor_wake(b);
	return err;
}

int sb_bridge_accessor_publish(struct sb_bridge *b, uint64_t *seqno)
{
	return transition(b, UINT32_MAX, seqno);
}

int sb_bridge_accessor_retry(struct sb_bridge *b)
{
	return transition(b, SB_WORKER_TRYING, NULL);
}

int sb_bridge_accessor_fail(struct sb_bridge *b)
{
	return transition(b, SB_WORKER_FAILED_PERMANENTLY, NULL);
}

int sb_bridge_accessor_publish_seqno(struct sb_bridge *b, uint64_t *out)
{
	if (!b || !out)
		return sb__fail(-EINVAL, "sb_bridge_accessor_publish_seqno: NULL argument");
	struct sb_accessor_view v;

	sb__accessor_read(b->hot, &v);
	*out = v.seqno; /* 0 while nothing is installed */
	return 0;
}

int sb_bridge_wait_worker_not_trying(struct sb_bridge *b, uint64_t deadline_ns,
				     const char *op_label)
{
	if (!b)
		return sb__fail(-EINVAL, "bridge is NULL");
	return sb__accessor_wait_not_trying(b->hot, deadline_ns, op_label, NULL);
}

int sb_bridge_wait_publish_advance(struct sb_bridge *b, uint64_t seqno_before, uint64_t deadline_ns,
				   const char *op_label, uint64_t *seqno)
{
	if (!b)
		return sb__fail(-EINVAL, "bridge is NULL");
	return sb__accessor_wait_advance(b->hot, seqno_before, deadline_ns, op_label, NULL, seqno);
}
