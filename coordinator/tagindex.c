/*
 * No _LGPL_SOURCE: liburcu-bp's inline read side touches its reader
 * registry through pointers UBSan flags as misaligned (the registry's
 * chunks do not honour the struct's 128-byte alignment); calling the
 * library keeps that inside liburcu.
 */
#include "tagindex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ck_stack.h>
#include <urcu-bp.h>
#include <urcu/rculfhash.h>

#include "../ring/error.h"

struct sb_tagnode {
	struct cds_lfht_node node;
	struct rcu_head rcu;
	struct sb_tagindex *idx;
	struct ck_stack_entry spare;
	struct sb_tagnode *retired_next; /* the next node of the batch this one waits in */
	uint32_t slot;
	uint32_t len;
	char tag[64];
};

CK_STACK_CONTAINER(struct sb_tagnode, spare, node_of_spare)

struct key {
	const char *tag;
	size_t len;
};

static int match(struct cds_lfht_node *node, const void *arg)
{
	const struct sb_tagnode *n = caa_container_of(node, struct sb_tagnode, node);
	const struct key *k = arg;

	return n->len == k->len && memcmp(n->tag, k->tag, k->len) == 0;
}

/*
 * Eight bytes at a time, then murmur3's finaliser: tags differ mostly in
 * their last digits, and cds_lfht takes both high and low bits.
 */
uint64_t sb__tag_hash(const char *tag, size_t len)
{
	const uint64_t k = 0xff51afd7ed558ccdull;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;

	for (; len >= 8; tag += 8, len -= 8) {
		memcpy(&w, tag, 8);
		h = (h ^ w) * k;
		h ^= h >> 32;
	}
	if (len) {
		w = 0;
		for (size_t i = 0; i < len; i++)
			w |= (uint64_t)(uint8_t)tag[i] << (8 * i);
		h = (h ^ w) * k;
		h ^= h >> 32;
	}
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

int sb__tagindex_init(struct sb_tagindex *idx, uint32_t capacity)
{
	unsigned long buckets = 1;

	/* The resident set is capped, so the table never needs to resize. */
	while (buckets < 2ul * capacity)
		buckets <<= 1;
	idx->ht = cds_lfht_new(buckets, buckets, buckets, 0, NULL);
	if (!idx->ht)
		return sb__fail(-ENOMEM, "out of memory for a %lu-bucket tag index", buckets);
	ck_stack_init(&idx->spare);
	idx->retired = NULL;
	idx->nretired = 0;
	return 0;
}

void sb__tagnode_put(struct sb_tagindex *idx, struct sb_tagnode *n)
{
	if (n)
		ck_stack_push_mpmc(&idx->spare, &n->spare);
}

struct sb_tagnode *sb__tagnode_new(struct sb_tagindex *idx)
{
	struct ck_stack_entry *e = ck_stack_pop_mpmc(&idx->spare);
	struct sb_tagnode *n = e ? node_of_spare(e) : malloc(sizeof(*n));

	if (n)
		n->idx = idx;
	return n;
}

/* Runs after a grace period: no reader can still see any node of the batch. */
static void free_batch(struct rcu_head *head)
{
	struct sb_tagnode *n = caa_container_of(head, struct sb_tagnode, rcu);

	while (n) {
		struct sb_tagnode *next = n->retired_next;
		sb__tagnode_put(n->idx, n);
		n = next;
	}
}

/*
 * Hand the retired batch to call_rcu. Every node in it was unlinked before
 * this call, so the grace period that starts here covers them all.
 */
static void retire_flush(struct sb_tagindex *idx)
{
	if (!idx->retired)
		return;
	call_rcu(&idx->retired->rcu, free_batch);
	idx->retired = NULL;
	idx->nretired = 0;
}

/* An unlinked node waits for a grace period with up to SB_TAGINDEX_RETIRE_BATCH others. */
static void retire(struct sb_tagindex *idx, struct sb_tagnode *n)
{
	n->retired_next = idx->retired;
	idx->retired = n;
	if (++idx->nretired >= SB_TAGINDEX_RETIRE_BATCH)
		retire_flush(idx);
}

void sb__tagindex_clear(struct sb_tagindex *idx)
{
	struct cds_lfht_iter iter;
	struct sb_tagnode *n;

	rcu_read_lock();
	cds_lfht_for_each_entry(idx->ht, &iter, n, node)
	{
		if (cds_lfht_del(idx->ht, &n->node) == 0)
			retire(idx, n);
	}
	rcu_read_unlock();
	retire_flush(idx);
}

void sb__tagindex_fini(struct sb_tagindex *idx)
{
	if (!idx->ht)
		return;
	sb__tagindex_clear(idx); /* flushes the retired batch too */
	rcu_barrier();		 /* every free_batch has run */
	cds_lfht_destroy(idx->ht, NULL);
	idx->ht = NULL;
	for (struct ck_stack_entry *e; (e = ck_stack_pop_mpmc(&idx->spare));)
		free(node_of_spare(e));
}

void sb__rcu_enter(void)
{
	rcu_read_lock();
}

void sb__rcu_leave(void)
{
	rcu_read_unlock();
}

struct sb_tagnode *sb__tagindex_find_held(struct sb_tagindex *idx, const char *tag, size_t len,
					  uint64_t hash)
{
	struct key k = { tag, len };
	struct cds_lfht_iter iter;
	struct cds_lfht_node *node;

	cds_lfht_lookup(idx->ht, (unsigned long)hash, match, &k, &iter);
	node = cds_lfht_iter_get_node(&iter);
	return node ? caa_container_of(node, struct sb_tagnode, node) : NULL;
}

uint32_t sb__tagnode_slot(const struct sb_tagnode *node)
{
	return node->slot;
}

int64_t sb__tagindex_find(struct sb_tagindex *idx, const char *tag, size_t len, uint64_t hash)
{
	int64_t slot = -1;

	rcu_read_lock();
	struct sb_tagnode *n = sb__tagindex_find_held(idx, tag, len, hash);
	if (n)
		slot = n->slot;
	rcu_read_unlock();
	return slot;
}

void sb__tagindex_add_held(struct sb_tagindex *idx, struct sb_tagnode *n, const char *tag,
			   size_t len, uint64_t hash, uint32_t slot)
{
	cds_lfht_node_init(&n->node);
	n->slot = slot;
	n->len = (uint32_t)len;
	memcpy(n->tag, tag, len);
	cds_lfht_add(idx->ht, (unsigned long)hash, &n->node);
}

void sb__tagindex_del_held(struct sb_tagindex *idx, struct sb_tagnode *n)
{
	if (cds_lfht_del(idx->ht, &n->node) == 0)
		retire(idx, n);
}
