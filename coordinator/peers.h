/*
 * coordinator/peers.h - the attached consumers, as the coordinator keeps
 * them: a table in its own memory, one entry per connection. Not
 * installed.
 *
 * Nothing about a consumer is ever read back from shared memory to
 * decide anything: which entry a consumer holds, whether it is armed and
 * how it waits are this table's, changed only by the serving thread (and
 * by the API call that hands over a socketpair), under the table lock.
 * The waker thread and sb_bridge_consumers read it under the same lock.
 * The only shared memory an entry points at is that consumer's own
 * control page, whose bell the coordinator rings and whose hints it lists.
 */
#ifndef SB_COORD_PEERS_H
#define SB_COORD_PEERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../ring/control.h"
#include "../ring/wake.h"

struct sb_bridge;

#define SB_PEER_MAX SB_PEERS_MAX

struct sb_peer {
	int fd;		     /* the connection; -1: the entry is free */
	struct sb_ctl *page; /* its control page, mapped read-write */
	int32_t pid;	     /* SO_PEERCRED; 0 for a hand-over (its page's claim is listed) */
	uint64_t attached_ns;
	uint32_t armed;	    /* 0, or the mode of its pending arm (M1; F1 clears it) */
	struct sb_arm arm;  /* that arm: channels and positions, hints about this peer */
	bool fresh;	    /* marked in the current batch: M4 checks it */
	bool has_next;	    /* serving thread only: an arm received, not yet marked */
	struct sb_arm next; /* ... the latest one */
};

struct sb_peer_table {
	struct sb_bridge *b;
	struct sb_wake_view view;
	pthread_mutex_t lock; /* every entry; never held by a storing thread */
	struct sb_peer peer[SB_PEER_MAX];
	uint32_t count;
	pthread_t waker;
	bool waker_started;
	uint64_t next_batch_ns; /* serving thread: the earliest next arm batch (SB_ARM_BATCH_NS) */
};

/* Set up the table, and start the waker thread (signals blocked by the caller). */
int sb__peers_init(struct sb_peer_table *t, struct sb_bridge *b);

/* Stop the waker thread, hang up on every consumer, unmap their pages. */
void sb__peers_fini(struct sb_peer_table *t);

/*
 * Hand the region to a new consumer on connection fd: make its control
 * page, send the hello with both descriptors, enter it in the table. On
 * success the table owns fd; on failure the caller still does (and should
 * refuse and close it). -EBUSY when the table is full.
 */
int sb__peers_admit(struct sb_peer_table *t, int fd, int32_t pid, uint32_t *slot);

/* Hang up on entry i and forget it. */
void sb__peers_drop(struct sb_peer_table *t, uint32_t i);

/*
 * Serving thread: mark the arms received since the last batch (M1-M4),
 * if SB_ARM_BATCH_NS passed since that batch. Returns the ns until a
 * batch may run when arms are waiting for one, else 0.
 */
uint64_t sb__peers_arm_batch(struct sb_peer_table *t, uint64_t now);

/* Serving thread, every heartbeat: ring each armed consumer that has news. */
void sb__peers_net(struct sb_peer_table *t);

/* Ring every attached consumer, armed or not, both ways (the close). */
void sb__peers_ring_all(struct sb_peer_table *t);

/* Serving thread: rewrite the consumer list in the data region (D1-D2, ring/peers.h). */
void sb__peers_publish(struct sb_peer_table *t, uint64_t now);

#endif
