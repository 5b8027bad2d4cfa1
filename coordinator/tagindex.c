/*
 * No _LGPL_SOURCE: liburcu-bp's inline read side touches its reader
 * registry through pointers UBSan flags as misaligned (the registry's
 * chunks do not honour the struct's 128-byte alignment); calling the
 * library keeps that inside liburcu.
 */
#include "tagindex.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <ck_pr.h>
#include <urcu-bp.h>

#include <snapbridge/bridge.h>

#include "../ring/atomics.h"
#include "../ring/error.h"

#define EMPTY SB_TAG_EMPTY
#define TOMB  SB_TAG_TOMB

/* How long a reader waits for a key mid-update before it lets the caller lock. */
#define KEY_SPINS 256

_Static_assert(SB_TAG_MAX < 8 * SB_TAG_WORDS, "a key holds any tag and a zero byte");
_Static_assert(SB_MAX_SNAPSHOTS_LIMIT < UINT32_MAX - 1, "slot + 1 never reads as a tombstone");

struct sb_tagtable {
	struct rcu_head rcu;
	struct sb_tagindex *idx; /* for the call_rcu callback; relaxed atomics */
	uint64_t bucket[];	 /* EMPTY, TOMB, or hash32 << 32 | (slot + 1) */
};

uint64_t sb__tag_hash(const char *tag, size_t len)
{
	struct sb_tag t;

	sb__tag_make(&t, tag, len);
	return t.hash;
}

static struct sb_tagtable *table_new(struct sb_tagindex *idx)
{
	struct sb_tagtable *t =
		malloc(sizeof(*t) + ((size_t)idx->mask + 1) * sizeof(t->bucket[0]));

	if (t)
		sb_store_relaxed(&t->idx, idx);
	return t;
}

int sb__tagindex_init(struct sb_tagindex *idx, uint32_t nslots, uint32_t per_slot)
{
	uint32_t buckets = 16;

	memset(idx, 0, sizeof(*idx));
	while (buckets < per_slot * nslots)
		buckets <<= 1;
	idx->nslots = nslots;
	idx->mask = buckets - 1;
	idx->keys = calloc(nslots, sizeof(*idx->keys));
	idx->bucket_of = malloc(nslots * sizeof(*idx->bucket_of));
	idx->table = idx->keys && idx->bucket_of ? table_new(idx) : NULL;
	if (!idx->table) {
		free(idx->keys);
		free(idx->bucket_of);
		idx->keys = NULL;
		idx->bucket_of = NULL;
		return sb__fail(-ENOMEM, "out of memory for a %u-bucket tag index", buckets);
	}
	for (uint32_t i = 0; i < nslots; i++)
		idx->bucket_of[i] = UINT32_MAX;
	memset(idx->table->bucket, 0, (size_t)buckets * sizeof(uint64_t));
	idx->bucket = idx->table->bucket;
	return 0;
}

/* After a grace period: no reader still probes t; keep it for the next rebuild. */
static void table_retired(struct rcu_head *head)
{
	struct sb_tagtable *t = caa_container_of(head, struct sb_tagtable, rcu);
	struct sb_tagindex *idx = sb_load_relaxed(&t->idx);

	/* Pairs with rebuild's exchange: its stores into t come after this. */
	free(sb_exchange_acq_rel(&idx->spare, t));
}

void sb__tagindex_fini(struct sb_tagindex *idx)
{
	if (!idx->table)
		return;
	rcu_barrier(); /* every table_retired has run */
	free(idx->table);
	/* An exchange, as table_retired's: the pair is the edge TSan sees, not the barrier. */
	free(sb_exchange_acq_rel(&idx->spare, (struct sb_tagtable *)NULL));
	free(idx->keys);
	free(idx->bucket_of);
	idx->table = NULL;
	idx->bucket = NULL;
	idx->keys = NULL;
	idx->bucket_of = NULL;
}

/* ---- readers ------------------------------------------------------------ */

/* 1: key holds want (and is live), 0: it does not, -EAGAIN: it stayed mid-update. */
static int key_matches(const struct sb_tagkey *k, const struct sb_tag *want)
{
	for (int tries = 0; tries < KEY_SPINS; tries++) {
		uint32_t v = sb_load_acquire(&k->seq); /* pairs with K3 */
		bool same;

		if (v & 1) {
			ck_pr_stall();
			continue;
		}
		same = sb_load_relaxed(&k->len) == want->len;
		for (uint32_t i = 0; i < sb__tag_words_of(want->len) && same; i++)
			same = sb_load_relaxed(&k->word[i]) == want->word[i];
		sb_fence_acquire(); /* pairs with K1's fence */
		if (sb_load_relaxed(&k->seq) == v)
			return same;
	}
	return -EAGAIN;
}

int sb__tagindex_find(struct sb_tagindex *idx, const struct sb_tag *tag, uint32_t *slot_out)
{
	int found = -ENOENT;

	rcu_read_lock();
	/* Pairs with the release store that published this version (rebuild). */
	const struct sb_tagtable *t = sb_load_acquire(&idx->table);
	uint32_t i = (uint32_t)tag->hash & idx->mask;

	for (uint32_t n = 0; n <= idx->mask; n++, i = (i + 1) & idx->mask) {
		uint64_t e = sb_load_acquire(&t->bucket[i]); /* pairs with add's release */

		if (e == EMPTY)
			break;
		if (e == TOMB || (uint32_t)(e >> 32) != (uint32_t)tag->hash)
			continue;
		uint32_t slot = (uint32_t)e - 1;
		int m = key_matches(&idx->keys[slot], tag);
		if (m > 0) {
			*slot_out = slot;
			found = 0;
			break;
		}
		if (m < 0)
			found = m; /* unless a later bucket holds the tag: then it was not this one */
	}
	rcu_read_unlock();
	return found;
}

/* ---- the writer (bridge lock held); the hot calls are inline in tagindex.h -- */

/* The first bucket of hash's chain that takes a new entry. */
static uint32_t free_bucket(const struct sb_tagtable *t, uint32_t mask, uint64_t hash)
{
	uint32_t i = (uint32_t)hash & mask;

	while (t->bucket[i] != EMPTY && t->bucket[i] != TOMB)
		i = (i + 1) & mask;
	return i;
}

/*
 * The old table goes to call_rcu and comes back as the spare once its
 * readers are gone. Without a spare and without memory, tombstones stay:
 * probes get longer.
 */
void sb__tagindex_rebuild(struct sb_tagindex *idx)
{
	struct sb_tagtable *old = idx->table;
	/* Pairs with table_retired's exchange, made after the grace period. */
	struct sb_tagtable *t = sb_exchange_acq_rel(&idx->spare, (struct sb_tagtable *)NULL);

	if (!t && !(t = table_new(idx)))
		return;
	/* Relaxed atomics: readers of this memory's previous version loaded it atomically. */
	for (uint32_t i = 0; i <= idx->mask; i++)
		sb_store_relaxed(&t->bucket[i], EMPTY);
	for (uint32_t slot = 0; slot < idx->nslots; slot++) {
		if (idx->bucket_of[slot] == UINT32_MAX)
			continue;
		uint64_t e = old->bucket[idx->bucket_of[slot]];
		uint32_t i = free_bucket(t, idx->mask, e >> 32);

		sb_store_relaxed(&t->bucket[i], e);
		idx->bucket_of[slot] = i;
	}
	idx->used = idx->live;
	idx->bucket = t->bucket;
	sb_store_release(&idx->table, t); /* pairs with find's acquire */
	call_rcu(&old->rcu, table_retired);
}
