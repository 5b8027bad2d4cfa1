/*
 * coordinator/tagindex.h - tag -> slot: an open-addressed hash table of
 * slot numbers, confirmed against a private copy of each slot's tag.
 *
 * Writers (add, del) run under the bridge lock. Lookups from any
 * other thread take only liburcu's read lock (bulletproof flavour, so no
 * thread registers) and never wait for the writer, except when a slot
 * they must compare is mid-update (then the caller takes the lock).
 *
 * A bucket holds 0 (empty), a tombstone, or (low 32 bits of the tag's
 * hash) << 32 | (slot + 1). Entries never move: a delete leaves a
 * tombstone (or an empty bucket when no probe chain can pass it), an add
 * fills the first empty or tombstone bucket of its chain. So a reader
 * that probes while the writer works passes over every bucket it would
 * have passed in a quiet table, and the entry it is looking for, if
 * present throughout, stays where it was. When tombstones pile up the
 * writer rebuilds the live entries into a fresh table, publishes it, and
 * hands the old one to call_rcu: readers still probing it finish on a
 * frozen copy. The retired table is then kept for the next rebuild.
 *
 * A hit is only a candidate: the reader confirms it against the slot's
 * key (the tag it holds, empty once unindexed) under the key's seqlock,
 * so a stale bucket whose slot was reused is passed over, never reported.
 * The key is also where each change takes effect: an add publishes the
 * bucket and then writes the key, a delete clears the key and then the
 * bucket, so a tag is present exactly while its key holds it.
 */
#ifndef SB_COORD_TAGINDEX_H
#define SB_COORD_TAGINDEX_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <snapbridge/types.h>

#include "../ring/atomics.h"

struct sb_tagtable;

/* Words of a tag zero-padded to whole words, with room for a zero word after SB_TAG_MAX. */
#define SB_TAG_WORDS ((SB_TAG_MAX + 8) / 8)

/*
 * A tag as the index compares it: its bytes zero-padded to whole words
 * (so keys compare and copy a word at a time), its length and its hash.
 * The coordinator builds one per store and uses it for the index, the
 * slot, the events and the record.
 */
struct sb_tag {
	uint64_t word[SB_TAG_WORDS];
	uint64_t hash;
	uint32_t len;
};

/*
 * The tag each indexed slot holds, private to the coordinator and
 * seqlocked (C11 fences, so TSan sees every edge): a reader confirms a
 * candidate bucket against its slot's key. len 0: the slot holds no tag.
 *   writer:  K1 seq odd (relaxed), release fence; K2 words, len;
 *            K3 seq even (release).
 *   reader:  seq even (acquire, pairs with K3); len, words (relaxed);
 *            acquire fence (pairs with K1's); seq unchanged.
 * A key's words past its tag are zero, and a reader compares only the
 * words a tag of len bytes covers: equal lengths mean equal word counts.
 */
struct sb_tagkey {
	uint32_t seq;
	uint32_t len;
	uint64_t word[SB_TAG_WORDS];
};

struct sb_tagindex {
	struct sb_tagtable *table; /* the current version, published with release */
	struct sb_tagtable *spare; /* a retired version whose readers are gone, or NULL */
	uint64_t *bucket;	   /* the writer's: the current version's buckets */
	struct sb_tagkey *keys;	   /* one per slot */
	uint32_t nslots;
	uint32_t mask;	     /* buckets - 1; buckets >= per_slot * nslots */
	uint32_t live;	     /* entries (the writer's) */
	uint32_t used;	     /* entries plus tombstones: a rebuild starts above half */
	uint32_t *bucket_of; /* the bucket of each resident slot's entry, or UINT32_MAX */
};

/*
 * Buckets per slot: at most a sixteenth of the buckets hold entries, so a
 * store's probe for a new tag stays short while deletes leave tombstones
 * (at four per slot a unique-tag store took 114 ns of CPU instead of 98,
 * mostly in mispredicted probe loops; docs/BENCHMARKS.md). 128 bytes per
 * slot per table version.
 */
#define SB_TAG_BUCKETS_PER_SLOT 16

/* An index for nslots slots with at least per_slot buckets each (tests use fewer). */
int sb__tagindex_init(struct sb_tagindex *idx, uint32_t nslots, uint32_t per_slot);
void sb__tagindex_fini(struct sb_tagindex *idx);

/* The hash sb__tag_make() computes. */
uint64_t sb__tag_hash(const char *tag, size_t len);

/*
 * Any thread, no lock: 0 with *slot holding tag, -ENOENT when it is not
 * resident, or -EAGAIN when a slot to compare stayed mid-update for a
 * while (its writer was preempted): the caller asks again under the
 * bridge lock.
 */
int sb__tagindex_find(struct sb_tagindex *idx, const struct sb_tag *tag, uint32_t *slot);

/* Copy the live entries into a clean table and publish it (add's slow path). */
void sb__tagindex_rebuild(struct sb_tagindex *idx);

/*
 * The rest is inline: the store path makes each of these calls once per
 * store, and they are a few dozen instructions each.
 */

#define SB_TAG_EMPTY 0ull
#define SB_TAG_TOMB  UINT64_MAX /* its slot field, 0xffffffff, is no slot + 1 */

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "tag words hold the bytes in order");

static inline uint32_t sb__tag_words_of(uint32_t len)
{
	return (len + 7) / 8;
}

/* One word into the hash: tags differ mostly in their last digits, and the table takes the low
 * bits. */
static inline uint64_t sb__tag_mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0xff51afd7ed558ccdull;
	return h ^ (h >> 32);
}

/* The n (1..7) bytes at s as the low bytes of a word, reading no byte past s + n. */
static inline uint64_t sb__tag_short_word(const char *s, uint32_t n)
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
static inline uint64_t sb__tag_fill(uint64_t word[SB_TAG_WORDS], const char *s, size_t len,
				    bool hash)
{
	uint32_t full = (uint32_t)len / 8, rem = (uint32_t)len % 8, i = 0;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;

	/* A fixed-size clear first (a few vector stores; a loop from i became rep stos). */
	memset(word, 0, SB_TAG_WORDS * sizeof(word[0]));
	for (; i < full; i++) {
		memcpy(&w, s + 8 * i, 8);
		word[i] = w;
		h = hash ? sb__tag_mix(h, w) : h;
	}
	if (rem) {
		if (full) { /* the last 8 bytes, shifted down to the ones not yet taken */
			memcpy(&w, s + len - 8, 8);
			w >>= 8 * (8 - rem);
		} else {
			w = sb__tag_short_word(s, rem);
		}
		word[i] = w;
		h = hash ? sb__tag_mix(h, w) : h;
	}
	return h;
}

/* The len (<= SB_TAG_MAX) bytes at s as zero-padded words, reading no byte past s + len. */
static inline void sb__words_make(uint64_t word[SB_TAG_WORDS], const char *s, size_t len)
{
	(void)sb__tag_fill(word, s, len, false);
}

/* Fill t from len (<= SB_TAG_MAX) bytes at s: the padded words, the length, the hash. */
static inline void sb__tag_make(struct sb_tag *t, const char *s, size_t len)
{
	uint64_t h = sb__tag_fill(t->word, s, len, true);

	/* murmur3's finaliser */
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	t->hash = h ^ (h >> 33);
	t->len = (uint32_t)len;
}

/* ---- the writer's calls, under the bridge lock -------------------------- */

/* 0 with *slot, or -ENOENT. Reads its own stores: keys and buckets change only under the lock. */
static inline int sb__tagindex_find_held(const struct sb_tagindex *idx, const struct sb_tag *tag,
					 uint32_t *slot_out)
{
	const uint64_t *bucket = idx->bucket;
	uint32_t i = (uint32_t)tag->hash & idx->mask;

	for (uint32_t n = 0; n <= idx->mask; n++, i = (i + 1) & idx->mask) {
		uint64_t e = bucket[i];

		if (e == SB_TAG_EMPTY)
			return -ENOENT;
		if (e == SB_TAG_TOMB || (uint32_t)(e >> 32) != (uint32_t)tag->hash)
			continue;
		uint32_t slot = (uint32_t)e - 1;
		const struct sb_tagkey *k = &idx->keys[slot];
		/* A live key has at least one word; most tags fit in two. */
		bool same = k->len == tag->len && k->word[0] == tag->word[0];
		for (uint32_t w = 1; w < sb__tag_words_of(tag->len) && same; w++)
			same = k->word[w] == tag->word[w];
		if (same) {
			*slot_out = slot;
			return 0;
		}
	}
	return -ENOENT;
}

/* K1-K3: the key of a slot becomes tag (all its padded words, no loop), or empty (NULL). */
static inline void sb__tagkey_write(struct sb_tagkey *k, const struct sb_tag *tag)
{
	sb_store_relaxed(&k->seq, k->seq + 1); /* K1 */
	sb_fence_release();
	if (tag) {
#pragma GCC unroll 8
		for (uint32_t i = 0; i < SB_TAG_WORDS; i++)
			sb_store_relaxed(&k->word[i], tag->word[i]); /* K2 */
	}
	sb_store_relaxed(&k->len, tag ? tag->len : 0);
	sb_store_release(&k->seq, k->seq + 1); /* K3 */
}

/*
 * Index tag (not already indexed) in slot. Never fails: a rebuild that
 * cannot get memory is put off (lookups only get longer; the table has
 * room for every slot without one).
 */
static inline void sb__tagindex_add_held(struct sb_tagindex *idx, const struct sb_tag *tag,
					 uint32_t slot)
{
	if (idx->used >= (idx->mask + 1) / 2)
		sb__tagindex_rebuild(idx);
	uint64_t *bucket = idx->bucket;
	uint32_t i = (uint32_t)tag->hash & idx->mask;

	while (bucket[i] != SB_TAG_EMPTY && bucket[i] != SB_TAG_TOMB)
		i = (i + 1) & idx->mask;
	idx->used += bucket[i] == SB_TAG_EMPTY;
	idx->live++;
	idx->bucket_of[slot] = i;
	/*
	 * The bucket first, then the key: the key write (K3) is where the tag
	 * becomes present, for every reader at once. Were the key first, a
	 * reader holding a stale bucket of this slot's previous tag (same
	 * low hash bits) could report the tag present, and a later reader,
	 * not yet seeing the bucket, absent.
	 */
	sb_store_release(&bucket[i], (uint64_t)(uint32_t)tag->hash << 32 | (slot + 1));
	sb__tagkey_write(&idx->keys[slot], tag);
}

/* Unindex slot's tag; nothing when the slot is not indexed. */
static inline void sb__tagindex_del_held(struct sb_tagindex *idx, uint32_t slot)
{
	uint64_t *bucket = idx->bucket;
	uint32_t mask = idx->mask;
	uint32_t i = idx->bucket_of[slot];

	if (i == UINT32_MAX)
		return;
	idx->bucket_of[slot] = UINT32_MAX;
	idx->live--;
	sb__tagkey_write(&idx->keys[slot], NULL);
	if (bucket[(i + 1) & mask] != SB_TAG_EMPTY) {
		/* A chain may pass here to an entry further on. */
		sb_store_relaxed(&bucket[i], SB_TAG_TOMB);
		return;
	}
	/*
	 * The next bucket is empty, so no chain runs past this one: it can be
	 * empty again, and so can the tombstones just before it, for the same
	 * reason. Entries never move, so a probing reader skips nothing.
	 */
	do {
		sb_store_relaxed(&bucket[i], SB_TAG_EMPTY);
		idx->used--;
		i = (i - 1) & mask;
	} while (bucket[i] == SB_TAG_TOMB);
}

#endif
