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

#include <stddef.h>
#include <stdint.h>

#include <snapbridge/types.h>

struct sb_tagtable;
struct sb_tagkey;

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

struct sb_tagindex {
	struct sb_tagtable *table; /* the current version, published with release */
	struct sb_tagtable *spare; /* a retired version whose readers are gone, or NULL */
	struct sb_tagkey *keys;	   /* one per slot */
	uint32_t nslots;
	uint32_t mask;	     /* buckets - 1; buckets >= 4 * nslots */
	uint32_t live;	     /* entries (the writer's) */
	uint32_t used;	     /* entries plus tombstones: a rebuild starts above half */
	uint32_t *bucket_of; /* the bucket of each resident slot's entry, or UINT32_MAX */
};

int sb__tagindex_init(struct sb_tagindex *idx, uint32_t nslots);
void sb__tagindex_fini(struct sb_tagindex *idx);

/* The len (<= SB_TAG_MAX) bytes at s as zero-padded words, reading no byte past s + len. */
void sb__words_make(uint64_t word[SB_TAG_WORDS], const char *s, size_t len);

/* Fill t from len (<= SB_TAG_MAX) bytes at s: the padded words, the length, the hash. */
void sb__tag_make(struct sb_tag *t, const char *s, size_t len);

/* The hash sb__tag_make() computes. */
uint64_t sb__tag_hash(const char *tag, size_t len);

/*
 * Any thread, no lock: 0 with *slot holding tag, -ENOENT when it is not
 * resident, or -EAGAIN when a slot to compare stayed mid-update for a
 * while (its writer was preempted): the caller asks again under the
 * bridge lock.
 */
int sb__tagindex_find(struct sb_tagindex *idx, const struct sb_tag *tag, uint32_t *slot);

/* The writer's calls, under the bridge lock. 0 with *slot, or -ENOENT. */
int sb__tagindex_find_held(const struct sb_tagindex *idx, const struct sb_tag *tag,
			   uint32_t *slot);
/*
 * Index tag (not already indexed) in slot. Never fails: a rebuild that
 * cannot get memory is put off (lookups only get longer; the table has
 * room for every slot without one).
 */
void sb__tagindex_add_held(struct sb_tagindex *idx, const struct sb_tag *tag, uint32_t slot);
/* Unindex slot's tag; nothing when the slot is not indexed. */
void sb__tagindex_del_held(struct sb_tagindex *idx, uint32_t slot);

#endif
