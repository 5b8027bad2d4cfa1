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

#define EMPTY 0ull
#define TOMB  UINT64_MAX /* its slot field, 0xffffffff, is no slot + 1 */

/* How long a reader waits for a key mid-update before it lets the caller lock. */
#define KEY_SPINS 256

_Static_assert(SB_TAG_MAX < 8 * SB_TAG_WORDS, "a key holds any tag and a zero byte");
_Static_assert(SB_MAX_SNAPSHOTS_LIMIT < UINT32_MAX - 1, "slot + 1 never reads as a tombstone");

/*
 * The tag each indexed slot holds, private to the coordinator and
 * seqlocked (C11 fences, so TSan sees every edge): a reader confirms a
 * candidate bucket against its slot's key. len 0: the slot holds no tag.
 *   writer:  K1 seq odd (relaxed), release fence; K2 words, len;
 *            K3 seq even (release).
 *   reader:  seq even (acquire, pairs with K3); len, words (relaxed);
 *            acquire fence (pairs with K1's); seq unchanged.
 * Only the words a tag of len bytes covers are written and compared: the
 * last of them is zero-padded on both sides, and equal lengths mean equal
 * word counts.
 */
struct sb_tagkey {
	uint32_t seq;
	uint32_t len;
	uint64_t word[SB_TAG_WORDS];
};

struct sb_tagtable {
	struct rcu_head rcu;
	struct sb_tagindex *idx; /* for the call_rcu callback; relaxed atomics */
	uint64_t bucket[];	 /* EMPTY, TOMB, or hash32 << 32 | (slot + 1) */
};

static uint32_t words_of(uint32_t len)
{
	return (len + 7) / 8;
}

/* One word into the hash: tags differ mostly in their last digits, and the table takes the low bits. */
static uint64_t mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0xff51afd7ed558ccdull;
	return h ^ (h >> 32);
}

/* murmur3's finaliser. */
static uint64_t finish(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "tag words hold the bytes in order");

/* The n (1..7) bytes at s as the low bytes of a word, reading no byte past s + n. */
static uint64_t short_word(const char *s, uint32_t n)
{
	uint32_t a, b;
	uint16_t c, d;

	if (n >= 4) { /* two loads that overlap in the middle */
		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		return a | (uint64_t)b << (8 * (n - 4));
	}
	if (n >= 2) {
		memcpy(&c, s, 2);
		memcpy(&d, s + n - 2, 2);
		return c | (uint64_t)d << (8 * (n - 2));
	}
	return (uint8_t)s[0];
}

/*
 * The len bytes at s as zero-padded words, and (with hash) the hash mixed
 * over them. Each word is built in a register and stored once: the hash
 * and every later copy read whole stores, never a word stitched from
 * several.
 */
static inline uint64_t fill_words(uint64_t word[SB_TAG_WORDS], const char *s, size_t len,
				  bool hash)
{
	uint32_t full = (uint32_t)len / 8, rem = (uint32_t)len % 8, i = 0;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;

	/* A fixed-size clear first (a few vector stores; a loop from i became rep stos). */
	memset(word, 0, SB_TAG_WORDS * sizeof(word[0]));
	for (; i < full; i++) {
		memcpy(&w, s + 8 * i, 8);
		word[i] = w;
		h = hash ? mix(h, w) : h;
	}
	if (rem) {
		if (full) { /* the last 8 bytes, shifted down to the ones not yet taken */
			memcpy(&w, s + len - 8, 8);
			w >>= 8 * (8 - rem);
		} else {
			w = short_word(s, rem);
		}
		word[i] = w;
		h = hash ? mix(h, w) : h;
	}
	return h;
}

void sb__words_make(uint64_t word[SB_TAG_WORDS], const char *s, size_t len)
{
	(void)fill_words(word, s, len, false);
}

void sb__tag_make(struct sb_tag *t, const char *s, size_t len)
{
	t->hash = finish(fill_words(t->word, s, len, true));
	t->len = (uint32_t)len;
}

uint64_t sb__tag_hash(const char *tag, size_t len)
{
	struct sb_tag t;

	sb__tag_make(&t, tag, len);
	return t.hash;
}

static uint64_t entry_of(uint64_t hash, uint32_t slot)
{
	return (uint64_t)(uint32_t)hash << 32 | (slot + 1);
}

static struct sb_tagtable *table_new(struct sb_tagindex *idx)
{
	struct sb_tagtable *t =
		malloc(sizeof(*t) + ((size_t)idx->mask + 1) * sizeof(t->bucket[0]));

	if (t)
		sb_store_relaxed(&t->idx, idx);
	return t;
}

int sb__tagindex_init(struct sb_tagindex *idx, uint32_t nslots)
{
	uint32_t buckets = 16;

	memset(idx, 0, sizeof(*idx));
	/* At most a quarter full of entries, so probes stay short even with tombstones. */
	while (buckets < 4 * nslots)
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
		for (uint32_t i = 0; i < words_of(want->len) && same; i++)
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

/* ---- the writer (bridge lock held) -------------------------------------- */

/* Reads its own stores: the keys and buckets change only under the lock it holds. */
int sb__tagindex_find_held(const struct sb_tagindex *idx, const struct sb_tag *tag,
			   uint32_t *slot_out)
{
	const struct sb_tagtable *t = idx->table;
	uint32_t i = (uint32_t)tag->hash & idx->mask;

	for (uint32_t n = 0; n <= idx->mask; n++, i = (i + 1) & idx->mask) {
		uint64_t e = t->bucket[i];

		if (e == EMPTY)
			return -ENOENT;
		if (e == TOMB || (uint32_t)(e >> 32) != (uint32_t)tag->hash)
			continue;
		uint32_t slot = (uint32_t)e - 1;
		const struct sb_tagkey *k = &idx->keys[slot];
		bool same = k->len == tag->len;
		for (uint32_t w = 0; w < words_of(tag->len) && same; w++)
			same = k->word[w] == tag->word[w];
		if (same) {
			*slot_out = slot;
			return 0;
		}
	}
	return -ENOENT;
}

/* K1-K3: the key of a slot becomes tag, or empty (NULL). */
static void key_write(struct sb_tagkey *k, const struct sb_tag *tag)
{
	uint32_t len = tag ? tag->len : 0;

	sb_store_relaxed(&k->seq, k->seq + 1); /* K1 */
	sb_fence_release();
	for (uint32_t i = 0; i < words_of(len); i++)
		sb_store_relaxed(&k->word[i], tag->word[i]); /* K2 */
	sb_store_relaxed(&k->len, len);
	sb_store_release(&k->seq, k->seq + 1); /* K3 */
}

/* The first bucket of hash's chain that takes a new entry. */
static uint32_t free_bucket(const struct sb_tagtable *t, uint32_t mask, uint64_t hash)
{
	uint32_t i = (uint32_t)hash & mask;

	while (t->bucket[i] != EMPTY && t->bucket[i] != TOMB)
		i = (i + 1) & mask;
	return i;
}

/*
 * Copy the live entries into a clean table and publish it. The old one
 * goes to call_rcu and comes back as the spare once its readers are gone.
 * Without a spare and without memory, tombstones stay: probes get longer.
 */
static void rebuild(struct sb_tagindex *idx)
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
	sb_store_release(&idx->table, t); /* pairs with find's acquire */
	call_rcu(&old->rcu, table_retired);
}

void sb__tagindex_add_held(struct sb_tagindex *idx, const struct sb_tag *tag, uint32_t slot)
{
	if (idx->used >= (idx->mask + 1) / 2)
		rebuild(idx);
	struct sb_tagtable *t = idx->table;
	uint32_t i = free_bucket(t, idx->mask, tag->hash);

	idx->used += t->bucket[i] == EMPTY;
	idx->live++;
	idx->bucket_of[slot] = i;
	/*
	 * The bucket first, then the key: the key write (K3) is where the tag
	 * becomes present, for every reader at once. Were the key first, a
	 * reader holding a stale bucket of this slot's previous tag (same
	 * low hash bits) could report the tag present, and a later reader,
	 * not yet seeing the bucket, absent.
	 */
	sb_store_release(&t->bucket[i], entry_of(tag->hash, slot));
	key_write(&idx->keys[slot], tag);
}

void sb__tagindex_del_held(struct sb_tagindex *idx, uint32_t slot)
{
	struct sb_tagtable *t = idx->table;
	uint32_t mask = idx->mask;
	uint32_t i = idx->bucket_of[slot];

	if (i == UINT32_MAX)
		return;
	idx->bucket_of[slot] = UINT32_MAX;
	idx->live--;
	key_write(&idx->keys[slot], NULL);
	if (t->bucket[(i + 1) & mask] != EMPTY) {
		/* A chain may pass here to an entry further on. */
		sb_store_relaxed(&t->bucket[i], TOMB);
		return;
	}
	/*
	 * The next bucket is empty, so no chain runs past this one: it can be
	 * empty again, and so can the tombstones just before it, for the same
	 * reason. Entries never move, so a probing reader skips nothing.
	 */
	do {
		sb_store_relaxed(&t->bucket[i], EMPTY);
		idx->used--;
		i = (i - 1) & mask;
	} while (t->bucket[i] == TOMB);
}
