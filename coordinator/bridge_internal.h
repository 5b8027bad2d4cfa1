/*
 * coordinator/bridge_internal.h - the bridge's private state, shared by
 * the coordinator's own files and white-box tests. Not installed.
 */
#ifndef SB_COORD_BRIDGE_INTERNAL_H
#define SB_COORD_BRIDGE_INTERNAL_H

#include <pthread.h>

#include <snapbridge/bridge.h>

#include "../ring/atomics.h"
#include "../ring/events.h"
#include "../ring/layout.h"
#include "../ring/log.h"
#include "../ring/wake.h"
#include "../shm/shm.h"
#include "lock.h"
#include "tagindex.h"

struct sb_server;

/* A growable array the bridge owns (coordinator/aux_log.c). */
struct sb_vec {
	void *items;
	size_t count, cap;
};

struct sb_bridge {
	struct sb_shm data;
	/*
	 * The wake protocol's private words (ring/wake.h): the store path's
	 * "someone is armed" flag and the waker thread's kick word. Only this
	 * process maps them; every consumer sleeps on its own control page.
	 */
	struct sb_wake wake;
	struct sb_server *server; /* NULL unless sb_bridge_serve() ran */
	struct sb_header *hdr;
	struct sb_hot *hot;
	struct sb_slot *slots;
	struct sb_log log;
	struct sb_log aux;
	struct sb_evring events;
	struct sb_config cfg;
	struct sb_bridge_ops ops;

	struct sb_lock lock; /* covers everything below, and every store to the region */
	struct sb_tagindex index;
	uint32_t *free_slots;
	uint32_t nfree;
	uint64_t resident;	  /* resident reports; mirrored to hot->resident */
	uint64_t resident_cursor; /* log position before which no record is resident */
	uint64_t events_drained;  /* event sequence the coordinator's own drain reached */

	/* coordinator/aux_log.c: the private logs and the aux log, under aux_lock. */
	pthread_mutex_t aux_lock;
	struct sb_vec kops;	       /* of struct sb_kop_record */
	struct sb_vec procs;	       /* of struct sb_cgroup_procs * */
	pthread_mutex_t accessor_lock; /* serialises the accessor worker's transitions */
};

/* Set up and free coordinator/aux_log.c's and coordinator/accessor.c's state. */
void sb__aux_log_init(struct sb_bridge *b);
void sb__aux_log_fini(struct sb_bridge *b);
void sb__accessor_init(struct sb_bridge *b);
void sb__accessor_fini(struct sb_bridge *b);

/*
 * N2-N4 (ring/wake.h), after publishing on chans (SB_WAKE_* bits): one
 * load of a private word, and a kick of the waker thread only if a
 * consumer armed on one of them. Never called with a bridge lock held.
 */
static inline void sb__bridge_notify(struct sb_bridge *b, uint32_t chans)
{
	sb__wake_publish(&b->wake, chans);
}

/* Ring every attached consumer's bell, armed or not (the close). */
void sb__serve_ring_all(struct sb_bridge *b);

/* The serving thread's table of consumers (coordinator/peers.h); b must serve. */
struct sb_peer_table *sb__serve_peers(struct sb_bridge *b);

/* Stop the serving thread, hang up on every consumer, remove the socket. */
void sb__serve_stop(struct sb_bridge *b);

/*
 * Test hook: make tag's resident record look non-resident in the log while
 * its slot stays resident, the desynchronisation the invariant-violation
 * events exist for. Never used outside tests.
 */
int sb__bridge_debug_desync(struct sb_bridge *b, const char *tag);

/* Test hook: count one more resident report than there is (the cap-violation state). */
void sb__bridge_debug_inflate_resident(struct sb_bridge *b);

#endif
