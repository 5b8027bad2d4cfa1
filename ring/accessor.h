/*
 * ring/accessor.h - the accessor worker's state in the hot words, and the
 * two waits on it, shared by the coordinator and consumer processes.
 *
 * Protocol (one writer at a time, under the bridge's accessor lock):
 *
 *   worker                                   waiter
 *     A1 store_release(seqno / state)          B1 g = load_acquire(gen)
 *     A2 fetch_add_release(gen, 1)             B2 load_acquire(state, seqno): done?
 *     -- the lock is dropped --                B3 sleep until gen moves from g
 *     A3 FUTEX_WAKE_PRIVATE(gen, all), and
 *        publish to consumers (ring/wake.h N2-N4)
 *
 * B1 is ordered before B2 (acquire), A1 before A2 (release). A waiter that
 * misses A1 at B2 loaded gen before A2, so its sleep cannot outlast A3:
 *   - in the coordinator, B3 is FUTEX_WAIT_PRIVATE(gen, g): the kernel
 *     sees gen != g and returns at once, or A3 wakes it;
 *   - in a consumer, B3 arms its bell for "gen moved from g"
 *     (SB_WAKE_ACCESSOR) and sleeps there: ring/wake.h's protocol then
 *     rings it after A2, as it does for a store.
 * No wake-up is lost and nothing sleeps in a polling loop. A3 wakes only
 * sleepers of this process (a private futex): a consumer that puts
 * thousands of threads to sleep on the shared word is never woken by it,
 * so it cannot make a transition slow. A3 runs after the accessor lock
 * is dropped, so no system call is made under it.
 */
#ifndef SB_RING_ACCESSOR_H
#define SB_RING_ACCESSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

/* A1-A2; the caller serialises them, then calls sb__accessor_wake() unlocked. */
void sb__accessor_install(struct sb_hot *hot);
uint64_t sb__accessor_publish(struct sb_hot *hot);
void sb__accessor_set_state(struct sb_hot *hot, uint32_t state);

/* A3's first half: wake the coordinator's own waiters (a private futex wake). */
void sb__accessor_wake(struct sb_hot *hot);

/* What a reader sees: installed, and the seqno and state A1 published. */
struct sb_accessor_view {
	bool installed;
	uint64_t seqno;
	uint32_t state; /* enum sb_worker_state; unchecked: the region may lie */
};

/* B2 on its own: the published words (acquire: pairs with A1). */
void sb__accessor_read(const struct sb_hot *hot, struct sb_accessor_view *out);

/* B1 on its own: the futex word a waiter compares with (acquire: pairs with A2). */
uint32_t sb__accessor_gen(const struct sb_hot *hot);

/* B3 for one process: how it sleeps, and (for a consumer) whether its coordinator is gone. */
struct sb_accessor_sleeper {
	/*
	 * Sleep until accessor_gen may have moved from g, at most ns. NULL:
	 * the coordinator's own FUTEX_WAIT_PRIVATE on the word.
	 */
	void (*sleep)(void *arg, const struct sb_hot *hot, uint32_t g, uint64_t ns);
	/*
	 * Between sleeps a consumer asks whether its coordinator is gone
	 * (closed or dead): then no publish can come, and the wait ends with
	 * -EPIPE instead of sleeping to its deadline. NULL in the coordinator.
	 */
	bool (*gone)(void *arg);
	void *arg;
	/* Longest single sleep (a consumer's liveness check); 0: no limit. */
	uint64_t slice_ns;
};

/* The waits of sb_bridge_wait_worker_not_trying / _publish_advance. */
int sb__accessor_wait_not_trying(const struct sb_hot *hot, uint64_t deadline_ns,
				 const char *op_label, const struct sb_accessor_sleeper *z);
int sb__accessor_wait_advance(const struct sb_hot *hot, uint64_t seqno_before, uint64_t deadline_ns,
			      const char *op_label, const struct sb_accessor_sleeper *z,
			      uint64_t *seqno);

#endif
