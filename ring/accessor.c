/*
 * ring/accessor.c - the accessor worker's published state and the waits
 * on it (ring/accessor.h has the protocol, A1-A3 / B1-B3).
 */
#include "accessor.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include <snapbridge/aux.h>

#include "atomics.h"
#include "clock.h"
#include "error.h"
#include "futex.h"

static void bump(struct sb_hot *hot)
{
	sb_fetch_add_release(&hot->accessor_gen, 1); /* A2: pairs with B1 */
}

void sb__accessor_wake(struct sb_hot *hot)
{
	/* A3: this process's waiters only; consumers are rung through their bells. */
	sb__futex_wake_private(&hot->accessor_gen, INT_MAX);
}

void sb__accessor_install(struct sb_hot *hot)
{
	sb_store_release(&hot->accessor_seqno, 0);
	sb_store_release(&hot->accessor_state, (uint32_t)SB_WORKER_TRYING);
	/* After the state: a reader that sees installed sees TRYING, not a stale word. */
	sb_store_release(&hot->accessor_installed, 1);
	bump(hot);
}

uint64_t sb__accessor_publish(struct sb_hot *hot)
{
	uint64_t seqno = sb_load_relaxed(&hot->accessor_seqno) + 1;

	sb_store_release(&hot->accessor_seqno, seqno); /* A1: pairs with B2 */
	sb_store_release(&hot->accessor_state, (uint32_t)SB_WORKER_SUCCEEDED);
	bump(hot);
	return seqno;
}

void sb__accessor_set_state(struct sb_hot *hot, uint32_t state)
{
	sb_store_release(&hot->accessor_state, state); /* A1: pairs with B2 */
	bump(hot);
}

/* B3: sleep until gen moves from g, the deadline, or the next liveness check. */
static void sleep_on(const struct sb_hot *hot, uint32_t g, uint64_t now, uint64_t deadline,
		     const struct sb_accessor_sleeper *z)
{
	uint64_t ns = deadline - now;

	if (z && z->slice_ns && ns > z->slice_ns)
		ns = z->slice_ns;
	if (z && z->sleep) {
		z->sleep(z->arg, hot, g, ns);
		return;
	}
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	sb__futex_wait_private(&hot->accessor_gen, g, &ts); /* any return: B1 again */
}

static bool is_gone(const struct sb_accessor_sleeper *z)
{
	return z && z->gone && z->gone(z->arg);
}

static int bad_state(const char *op_label, uint32_t st)
{
	return sb__fail(-EBADMSG, "%s: the region holds accessor worker state %u, not one of 0..2",
			op_label, st);
}

static int gone_error(const char *op_label, const char *what)
{
	return sb__fail(-EPIPE, "%s: the coordinator closed or died while %s", op_label, what);
}

int sb__accessor_wait_not_trying(const struct sb_hot *hot, uint64_t deadline_ns,
				 const char *op_label, const struct sb_accessor_sleeper *z)
{
	if (!op_label)
		op_label = "(unnamed op)";
	/* pairs with the release store of installed in sb__accessor_install */
	if (!sb_load_acquire(&hot->accessor_installed))
		return 0;
	for (;;) {
		/*
		 * Gone is asked before B1-B2: a transition made before the close
		 * (or the death) is then seen below, so -EPIPE is only returned
		 * when the condition did not hold as the coordinator went away.
		 */
		bool gone_now = is_gone(z);
		uint32_t g = sb_load_acquire(&hot->accessor_gen);    /* B1: pairs with A2 */
		uint32_t st = sb_load_acquire(&hot->accessor_state); /* B2: pairs with A1 */

		if (st == SB_WORKER_SUCCEEDED)
			return 0;
		if (st == SB_WORKER_FAILED_PERMANENTLY)
			return sb__fail(-ENOTRECOVERABLE,
					"%s: accessor-init worker exited (FAILED_PERMANENTLY) "
					"before this op could run; check the coordinator's "
					"accessor worker log for why it gave up",
					op_label);
		if (st != SB_WORKER_TRYING)
			return bad_state(op_label, st);
		uint64_t now = sb__mono_ns();
		if (now >= deadline_ns)
			return sb__fail(-ETIMEDOUT,
					"%s: accessor-init worker stayed in TRYING state past the "
					"deadline; its first publish has not completed. Check the "
					"coordinator's accessor worker log, or allow more time",
					op_label);
		if (gone_now)
			return gone_error(op_label, "the accessor worker was TRYING");
		sleep_on(hot, g, now, deadline_ns, z);
	}
}

int sb__accessor_wait_advance(const struct sb_hot *hot, uint64_t seqno_before, uint64_t deadline_ns,
			      const char *op_label, const struct sb_accessor_sleeper *z,
			      uint64_t *seqno)
{
	uint64_t scratch;

	if (!seqno)
		seqno = &scratch;
	if (!op_label)
		op_label = "(unnamed op)";
	*seqno = 0;
	if (!sb_load_acquire(&hot->accessor_installed)) /* pairs with sb__accessor_install */
		return 0;
	/* A publish that landed before this call returns without sleeping. */
	uint64_t cur = sb_load_acquire(&hot->accessor_seqno); /* pairs with A1 */
	if (cur > seqno_before) {
		*seqno = cur;
		return 0;
	}
	for (;;) {
		bool gone_now = is_gone(z);			     /* before B1-B2, as above */
		uint32_t g = sb_load_acquire(&hot->accessor_gen);    /* B1: pairs with A2 */
		uint32_t st = sb_load_acquire(&hot->accessor_state); /* B2: pairs with A1 */

		if (st == SB_WORKER_FAILED_PERMANENTLY)
			return sb__fail(-ENOTRECOVERABLE,
					"%s: accessor-init worker exited (FAILED_PERMANENTLY); "
					"check the coordinator's accessor worker log for why it "
					"gave up: retrying the op will hit the same wall",
					op_label);
		if (st > SB_WORKER_FAILED_PERMANENTLY)
			return bad_state(op_label, st);
		cur = sb_load_acquire(&hot->accessor_seqno); /* B2: pairs with A1 */
		if (cur > seqno_before) {
			*seqno = cur;
			return 0;
		}
		uint64_t now = sb__mono_ns();
		if (now >= deadline_ns) {
			st = sb_load_acquire(&hot->accessor_state);
			return sb__fail(-ETIMEDOUT,
					"%s: accessor reinit did not advance publish seqno from "
					"%llu within deadline (worker state = %u; 0=Trying / "
					"1=Succeeded / 2=FailedPermanently). A reinit stuck in "
					"Trying past the deadline means the worker has not "
					"re-published yet: check the coordinator's accessor worker "
					"log, or allow more time",
					op_label, (unsigned long long)seqno_before, st);
		}
		if (gone_now)
			return gone_error(op_label, "waiting for the publish seqno to advance");
		sleep_on(hot, g, now, deadline_ns, z);
	}
}

void sb__accessor_read(const struct sb_hot *hot, struct sb_accessor_view *out)
{
	/* pairs with the release store of installed in sb__accessor_install */
	out->installed = sb_load_acquire(&hot->accessor_installed) != 0;
	out->state = sb_load_acquire(&hot->accessor_state); /* B2: pairs with A1 */
	out->seqno = sb_load_acquire(&hot->accessor_seqno); /* B2: pairs with A1 */
}

uint32_t sb__accessor_gen(const struct sb_hot *hot)
{
	return sb_load_acquire(&hot->accessor_gen); /* B1: pairs with A2 */
}

const char *sb_worker_state_name(enum sb_worker_state state)
{
	switch (state) {
	case SB_WORKER_TRYING:
		return "Trying";
	case SB_WORKER_SUCCEEDED:
		return "Succeeded";
	case SB_WORKER_FAILED_PERMANENTLY:
		return "FailedPermanently";
	}
	return NULL;
}
