/*
 * ring/accessor.h - the accessor worker's state in the hot words, and the
 * two waits on it, shared by the coordinator and consumer processes.
 *
 * Protocol (one writer at a time, under the bridge's accessor lock):
 *
 *   worker                                   waiter
 *     A1 store_release(seqno / state)          B1 g = load_acquire(gen)
 *     A2 fetch_add_seqcst(gen, 1)              B2 load_acquire(state, seqno): done?
 *     A3 FUTEX_WAKE(gen, all)                  B3 FUTEX_WAIT(gen, g, remaining)
 *
 * B1 is ordered before B2 (acquire), A1 before A2 (release). A waiter that
 * misses A1 at B2 loaded gen before A2, so either the kernel sees gen != g
 * at B3 and returns at once, or the waiter is queued before A3 wakes it:
 * no wake-up is lost, and nothing sleeps in a polling loop. Publishes are
 * rare (a scheduler swap), so A3 always makes its one system call rather
 * than counting waiters: a consumer's mapping is read-only and could not
 * announce itself in the data region anyway.
 */
#ifndef SB_RING_ACCESSOR_H
#define SB_RING_ACCESSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

/* Writer side; the caller serialises them. */
void sb__accessor_install(struct sb_hot *hot);
uint64_t sb__accessor_publish(struct sb_hot *hot);
void sb__accessor_set_state(struct sb_hot *hot, uint32_t state);

/* Wake every waiter to re-check (the coordinator is closing: consumers then see it). */
void sb__accessor_kick(struct sb_hot *hot);

/*
 * Between futex sleeps a consumer asks whether its coordinator is gone
 * (closed or dead): then no publish can come, and the wait ends with
 * -EPIPE instead of sleeping to its deadline. NULL inside the coordinator.
 */
typedef bool (*sb_gone_fn)(void *arg);

/* The waits of sb_bridge_wait_worker_not_trying / _publish_advance. */
int sb__accessor_wait_not_trying(const struct sb_hot *hot, uint64_t deadline_ns,
				 const char *op_label, sb_gone_fn gone, void *arg);
int sb__accessor_wait_advance(const struct sb_hot *hot, uint64_t seqno_before, uint64_t deadline_ns,
			      const char *op_label, sb_gone_fn gone, void *arg, uint64_t *seqno);

#endif
