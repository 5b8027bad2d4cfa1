/* coordinator/lock.c - the bridge lock's slow paths; the protocol is in lock.h. */
#define _GNU_SOURCE
#include "lock.h"

#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>

/* Spins before a waiter sleeps: a few microseconds, several critical sections. */
#define SB_LOCK_SPINS 512

static long membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

void sb__lock_init(struct sb_lock *l)
{
	l->held = 0;
	l->sleepers = 0;
	/* Once per process is enough; a second registration is a no-op. */
	l->fenced = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0;
}

/* The lock is held by another thread: 0 when it is ours. */
static int try_take(struct sb_lock *l)
{
	return sb_exchange_acquire(&l->held, 1) == 0 ? 0 : -EBUSY; /* L1: pairs with U1 */
}

void sb__lock_wait(struct sb_lock *l)
{
	for (int i = 0; i < SB_LOCK_SPINS; i++) {
		ck_pr_stall();
		if (sb_load_relaxed(&l->held) == 0 && try_take(l) == 0)
			return; /* L2 */
	}
	sb_fetch_add_seqcst(&l->sleepers, 1); /* L3 */
	/*
	 * The unlocker's fence, paid here. Should it fail (a fork()ed child is
	 * not registered), the sleep below is bounded: a missed wake-up then
	 * costs at most a millisecond.
	 */
	bool barrier = l->fenced || membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0;
	const struct timespec ms = { 0, 1000000 };
	while (try_take(l) != 0)
		syscall(SYS_futex, &l->held, FUTEX_WAIT_PRIVATE, 1, barrier ? NULL : &ms, NULL, 0);
	sb_fetch_add_relaxed(&l->sleepers, (uint32_t)-1);
}

void sb__lock_wake(struct sb_lock *l)
{
	syscall(SYS_futex, &l->held, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
