/*
 * coordinator/lock.h - the bridge lock: one exchange to take it, a plain
 * release store to drop it.
 *
 * Storing threads hold it for a few hundred nanoseconds, so a waiter
 * spins first. One that has spun too long (its holder was preempted: the
 * CPUs are shared) sleeps on a futex, and the holder must then wake it.
 * Unlocking with a store and then loading `sleepers` is the store-buffer
 * pattern: on its own, the load may be satisfied before the store is
 * visible, and a sleeper that announced itself in between would sleep
 * through the unlock. The sleeper pays for the missing fence instead:
 *
 *   lock     L1 exchange(held, 1), acquire: it was 0, the lock is ours
 *            L2 spin while held != 0 (SB_LOCK_SPINS times), then L1 again
 *            L3 sleepers += 1; membarrier(): every running thread of the
 *               process passes a full barrier; then L1, else
 *               FUTEX_WAIT(held, 1); sleepers -= 1 once it is ours
 *   unlock   U1 store_release(held, 0)              -- pairs with L1
 *            U2 load(sleepers): not 0 -> FUTEX_WAKE(held, 1)
 *
 * No lost wake-up: the membarrier in L3 runs a full barrier in the
 * unlocking thread (or it was not running, and a context switch is one).
 * If its U1 came before that barrier, U1 is visible to L3's L1, which
 * takes the lock or finds it taken again (whose unlock then sees the
 * sleeper). If U1 came after it, U2 comes after it too and sees L3's
 * increment: the unlocker wakes. A process where membarrier is not
 * available (old kernel, seccomp) puts a full fence between U1 and U2
 * instead, chosen once at init.
 */
#ifndef SB_COORD_LOCK_H
#define SB_COORD_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "../ring/atomics.h"

struct sb_lock {
	uint32_t held;	   /* 0 or 1 */
	uint32_t sleepers; /* threads in L3 */
	bool fenced;	   /* no membarrier: U1 and U2 are separated by a full fence */
};

/* Set up an unlocked lock (registers this process for membarrier). */
void sb__lock_init(struct sb_lock *l);

/* L2-L3: the lock was taken. */
void sb__lock_wait(struct sb_lock *l);

/* U2's slow path: wake one sleeper. */
void sb__lock_wake(struct sb_lock *l);

static inline void sb__lock(struct sb_lock *l)
{
	if (sb_exchange_acquire(&l->held, 1) != 0) /* L1: pairs with U1 */
		sb__lock_wait(l);
}

static inline void sb__unlock(struct sb_lock *l)
{
	sb_store_release(&l->held, 0); /* U1: pairs with L1 */
	if (l->fenced)
		sb_fence_seqcst();
	if (sb_load_relaxed(&l->sleepers) != 0) /* U2: see above for why relaxed suffices */
		sb__lock_wake(l);
}

#endif
