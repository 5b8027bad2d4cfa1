/*
 * coordinator/bridge_internal.h - the bridge's private state, shared by
 * the coordinator's own files and white-box tests. Not installed.
 */
#ifndef SB_COORD_BRIDGE_INTERNAL_H
#define SB_COORD_BRIDGE_INTERNAL_H

#include <pthread.h>

#include <snapbridge/bridge.h>

#include "../ring/events.h"
#include "../ring/layout.h"
#include "../ring/log.h"
#include "../shm/shm.h"
#include "tagindex.h"

struct sb_bridge {
	struct sb_shm data;
	struct sb_header *hdr;
	struct sb_hot *hot;
	struct sb_slot *slots;
	struct sb_log log;
	struct sb_log aux;
	struct sb_evring events;
	struct sb_config cfg;
	struct sb_bridge_ops ops;

	pthread_mutex_t lock; /* covers everything below, and every store to the region */
	struct sb_tagindex index;
	struct sb_tagnode **slot_node; /* the index node of each resident slot */
	uint32_t *free_slots;
	uint32_t nfree;
	uint64_t resident;	  /* resident reports; mirrored to hot->resident */
	uint64_t resident_cursor; /* log position before which no record is resident */
	uint64_t events_drained;  /* event sequence the coordinator's own drain reached */
};

/* 0 when tag is 1..SB_TAG_MAX bytes, with *len set; else -EINVAL / -ENAMETOOLONG. */
int sb__check_tag(const char *tag, size_t *len);

/*
 * Test hook: make tag's resident record look non-resident in the log while
 * its slot stays resident, the desynchronisation the invariant-violation
 * events exist for. Never used outside tests.
 */
int sb__bridge_debug_desync(struct sb_bridge *b, const char *tag);

/* Test hook: count one more resident report than there is (the cap-violation state). */
void sb__bridge_debug_inflate_resident(struct sb_bridge *b);

#endif
