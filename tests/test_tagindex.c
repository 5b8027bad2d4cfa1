/*
 * The coordinator's tag index (coordinator/tagindex.c), white-box: every
 * answer against a reference set through tombstones, emptied chains and
 * table rebuilds, with hashes forced to collide; lock-free readers
 * racing a writer that churns the chain around the tag they look for; and
 * no table reused while a reader may still hold it, nor a key read torn.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <urcu-bp.h>

#include "../coordinator/tagindex.h"

#define POOL 40
/* Buckets per slot: a quarter of the bridge's, so that the churn below fills tables and rebuilds.
 */
#define PER_SLOT 4

struct model {
	struct sb_tagindex idx;
	char tags[POOL][16];
	int64_t slot_of[POOL]; /* the reference: -1 or the slot the tag is in */
	uint32_t nslots;
	uint32_t free[64], nfree;
};

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

/* collide: every tag's hash shares its low 2 bits' home and its whole 32-bit fingerprint. */
static uint64_t hash_of(const char *tag, int collide)
{
	uint64_t h = sb__tag_hash(tag, strlen(tag));
	return collide ? (h & 3) : h;
}

/* tag with the hash given (tests force collisions with it). */
static struct sb_tag tag_with_hash(const char *s, size_t len, uint64_t hash)
{
	struct sb_tag t;

	sb__tag_make(&t, s, len);
	t.hash = hash;
	return t;
}

/* A lookup's answer as one value: the slot, or -ENOENT / -EAGAIN. */
static int64_t find(struct sb_tagindex *idx, const char *s, size_t len, uint64_t hash)
{
	struct sb_tag t = tag_with_hash(s, len, hash);
	uint32_t slot = UINT32_MAX;
	int rc = sb__tagindex_find(idx, &t, &slot);

	cr_assert(rc == 0 || slot == UINT32_MAX, "a failed lookup (%d) wrote the slot", rc);
	return rc == 0 ? (int64_t)slot : rc;
}

static int64_t find_held(struct sb_tagindex *idx, const char *s, size_t len, uint64_t hash)
{
	struct sb_tag t = tag_with_hash(s, len, hash);
	uint32_t slot = UINT32_MAX;
	int rc = sb__tagindex_find_held(idx, &t, &slot);

	cr_assert(rc == 0 || rc == -ENOENT, "the writer's lookup returned %d", rc);
	cr_assert(rc == 0 || slot == UINT32_MAX, "a failed lookup wrote the slot");
	return rc == 0 ? (int64_t)slot : rc;
}

static void add(struct sb_tagindex *idx, const char *s, size_t len, uint64_t hash, uint32_t slot)
{
	struct sb_tag t = tag_with_hash(s, len, hash);

	sb__tagindex_add_held(idx, &t, slot);
}

/* The answer a lookup must give for a tag the reference places in slot_of (-1: absent). */
static int64_t expected(int64_t slot_of)
{
	return slot_of >= 0 ? slot_of : -ENOENT;
}

static void model_init(struct model *m, uint32_t nslots)
{
	cr_assert_eq(sb__tagindex_init(&m->idx, nslots, PER_SLOT), 0);
	m->nslots = nslots;
	m->nfree = nslots;
	for (uint32_t i = 0; i < nslots; i++)
		m->free[i] = nslots - 1 - i;
	for (int t = 0; t < POOL; t++) {
		snprintf(m->tags[t], sizeof(m->tags[t]), "tag_%02d", t);
		m->slot_of[t] = -1;
	}
}

static void check_all(struct model *m, int collide, uint64_t step)
{
	uint32_t live = 0;

	for (int t = 0; t < POOL; t++) {
		const char *tag = m->tags[t];
		uint64_t h = hash_of(tag, collide);

		live += m->slot_of[t] >= 0;
		cr_assert_eq(find_held(&m->idx, tag, strlen(tag), h), expected(m->slot_of[t]),
			     "step %llu: the writer's lookup of %s disagrees with the reference",
			     (unsigned long long)step, tag);
		cr_assert_eq(find(&m->idx, tag, strlen(tag), h), expected(m->slot_of[t]),
			     "step %llu: the lock-free lookup of %s disagrees with the reference",
			     (unsigned long long)step, tag);
	}
	cr_assert_eq(m->idx.live, live);
	cr_assert_leq(m->idx.used, m->idx.mask + 1);
}

static void random_ops(int collide, uint64_t *rebuilds, uint32_t *max_tombstones)
{
	struct model m;
	uint64_t seed = 12345 + collide;

	*rebuilds = 0;
	*max_tombstones = 0;

	model_init(&m, 8);
	for (uint64_t step = 0; step < 40000; step++) {
		int t = (int)(lcg(&seed) % POOL);
		const char *tag = m.tags[t];
		const void *before = m.idx.table;

		if (m.slot_of[t] >= 0) {
			sb__tagindex_del_held(&m.idx, (uint32_t)m.slot_of[t]);
			m.free[m.nfree++] = (uint32_t)m.slot_of[t];
			m.slot_of[t] = -1;
		} else if (m.nfree > 0) {
			uint32_t slot = m.free[--m.nfree];
			add(&m.idx, tag, strlen(tag), hash_of(tag, collide), slot);
			m.slot_of[t] = slot;
		}
		*rebuilds += m.idx.table != before;
		if (m.idx.used - m.idx.live > *max_tombstones)
			*max_tombstones = m.idx.used - m.idx.live;
		check_all(&m, collide, step);
	}
	sb__tagindex_fini(&m.idx);
}

Test(tagindex, agrees_with_a_reference_set_through_rebuilds)
{
	uint64_t rebuilds;
	uint32_t tombstones;

	random_ops(0, &rebuilds, &tombstones);
	/* The paths under test were taken: tombstones piled up and were rebuilt away. */
	cr_assert_gt(rebuilds, 10, "only %llu rebuilds", (unsigned long long)rebuilds);
}

/* Four homes, one fingerprint: every lookup compares keys along merged chains. */
Test(tagindex, agrees_with_a_reference_set_when_every_hash_collides)
{
	uint64_t rebuilds;
	uint32_t tombstones;

	random_ops(1, &rebuilds, &tombstones);
	cr_assert_gt(tombstones, 1, "the chains never held tombstones");
}

Test(tagindex, a_delete_before_an_empty_bucket_empties_the_tombstones_behind_it)
{
	struct model m;

	model_init(&m, 8); /* 32 buckets */
	/* Three tags in one chain from bucket 1: buckets 1, 2, 3. */
	for (int t = 0; t < 3; t++)
		add(&m.idx, m.tags[t], strlen(m.tags[t]), 1, (uint32_t)t);
	cr_assert_eq(m.idx.used, 3);
	sb__tagindex_del_held(&m.idx, 1); /* the middle one: a chain runs past it */
	cr_assert_eq(m.idx.used, 3, "the middle bucket must stay a tombstone");
	cr_assert_eq(find_held(&m.idx, m.tags[2], strlen(m.tags[2]), 1), 2,
		     "the tag behind the tombstone must still be found");
	sb__tagindex_del_held(&m.idx, 2); /* the last one: it and the tombstone empty */
	cr_assert_eq(m.idx.used, 1);
	cr_assert_eq(find(&m.idx, m.tags[0], strlen(m.tags[0]), 1), 0);
	cr_assert_eq(find(&m.idx, m.tags[1], strlen(m.tags[1]), 1), -ENOENT);
	cr_assert_eq(find(&m.idx, m.tags[2], strlen(m.tags[2]), 1), -ENOENT);
	sb__tagindex_fini(&m.idx);
}

/* ---- a writer and lock-free readers ------------------------------------- */

struct race {
	struct sb_tagindex idx;
	atomic_int stop;
	const char *target;  /* resident in slot 7 from start to end */
	const char *phantom; /* never indexed */
	uint64_t hash;	     /* the target's and the phantom's */
	_Atomic uint64_t lookups;
	uint64_t misses, phantoms, busy;
};

static void *reader(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {
		struct sb_tag target = tag_with_hash(r->target, strlen(r->target), r->hash);
		struct sb_tag phantom = tag_with_hash(r->phantom, strlen(r->phantom), r->hash);
		uint32_t slot = UINT32_MAX;
		int rc = sb__tagindex_find(&r->idx, &target, &slot);
		r->misses += !(rc == 0 && slot == 7) && rc != -EAGAIN;
		r->busy += rc == -EAGAIN;
		r->phantoms += sb__tagindex_find(&r->idx, &phantom, &slot) == 0;
		atomic_fetch_add(&r->lookups, 1);
	}
	return NULL;
}

/*
 * Seven churned slots whose tags' homes march round the 32-bucket table:
 * they fill the buckets of the target's chain in front of it and behind
 * it, leave trails of tombstones, empty them again, and force rebuilds.
 * The target has the last slot, so a rebuild (which goes in slot order)
 * puts it behind whatever churned tags share its chain.
 */
Test(tagindex, a_lock_free_reader_never_misses_a_resident_tag_nor_finds_an_absent_one)
{
	struct race r = { .target = "target", .phantom = "phantom", .hash = 5 };
	bool live[8] = { false };
	uint64_t seed = 99, home = 0, rebuilds = 0;
	pthread_t th;

	cr_assert_eq(sb__tagindex_init(&r.idx, 8, PER_SLOT), 0);
	cr_assert_eq(r.idx.mask, 31);
	/* Two churned tags first, so the target starts behind them in its chain. */
	for (uint32_t slot = 0; slot < 2; slot++) {
		add(&r.idx, "churn", 5, r.hash, slot);
		live[slot] = true;
	}
	add(&r.idx, r.target, strlen(r.target), r.hash, 7);
	cr_assert_eq(pthread_create(&th, NULL, reader, &r), 0);
	while (atomic_load(&r.lookups) == 0)
		sched_yield();
	for (uint64_t step = 0; step < 4000000 && (step < 200000 || atomic_load(&r.lookups) < 20000);
	     step++) {
		uint32_t slot = (uint32_t)(lcg(&seed) % 7);
		const void *before = r.idx.table;

		if (live[slot]) {
			sb__tagindex_del_held(&r.idx, slot);
		} else {
			home = (home + 1 + lcg(&seed) % 3) & 31;
			add(&r.idx, "churn", 5, home, slot);
		}
		live[slot] = !live[slot];
		rebuilds += r.idx.table != before;
	}
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	cr_log_info("%llu lookups, %llu rebuilds, %llu busy",
		    (unsigned long long)atomic_load(&r.lookups), (unsigned long long)rebuilds,
		    (unsigned long long)r.busy);
	cr_assert_gt(rebuilds, 0, "the writer never rebuilt the table under the reader");
	cr_assert_eq(r.misses, 0, "the resident tag was reported absent %llu times",
		     (unsigned long long)r.misses);
	cr_assert_eq(r.phantoms, 0, "a tag never indexed was found %llu times",
		     (unsigned long long)r.phantoms);
	sb__tagindex_fini(&r.idx);
}

/*
 * A reader inside its read-side section may still probe the table it
 * loaded, so no rebuild may write into that table, or publish it again,
 * until the section ends: retired tables come back as the spare only
 * after a grace period. Here the test thread is that reader: it holds the
 * read lock across many rebuilds, and no table current during the section
 * may be published twice in it (the grace period cannot end, so the spare
 * stays empty and every rebuild needs a fresh table).
 */
Test(tagindex, a_table_a_reader_may_hold_is_not_reused_before_its_grace_period)
{
	struct sb_tagindex idx;
	const void *seen[64];
	uint32_t nseen = 0;
	uint64_t seed = 5, home = 0;
	bool live[7] = { false };

	cr_assert_eq(sb__tagindex_init(&idx, 8, PER_SLOT), 0);
	add(&idx, "target", 6, 5, 7);
	rcu_read_lock();
	seen[nseen++] = idx.table;
	/* The churn of the racing test above: homes march round, tombstones pile up. */
	for (uint64_t step = 0; step < 400000 && nseen < 64; step++) {
		uint32_t slot = (uint32_t)(lcg(&seed) % 7);

		if (live[slot]) {
			sb__tagindex_del_held(&idx, slot);
		} else {
			home = (home + 1 + lcg(&seed) % 3) & 31;
			add(&idx, "churn", 5, home, slot);
		}
		live[slot] = !live[slot];
		if (idx.table == seen[nseen - 1])
			continue;
		for (uint32_t i = 0; i < nseen; i++)
			cr_assert_neq(idx.table, seen[i],
				      "rebuild %u republished the table current at rebuild %u while "
				      "a reader that loaded it was still inside its read section",
				      nseen, i);
		seen[nseen++] = idx.table;
	}
	rcu_read_unlock();
	cr_assert_geq(nseen, 3, "only %u rebuilds: the spare path was never tried", nseen - 1);
	cr_assert_eq(find(&idx, "target", 6, 5), 7);
	sb__tagindex_fini(&idx);
}

/*
 * A key rewritten between two tags of one length must never read as a mix
 * of them: the phantom is the first word of one and the second of the
 * other, under the same hash, so only a torn key read (a seqlock that does
 * not re-check) would report it.
 */
struct torn {
	struct sb_tagindex idx;
	atomic_int stop;
	_Atomic uint64_t lookups;
	uint64_t phantoms;
};

static const char torn_a[] = "aaaaaaaabbbbbbbb", torn_b[] = "ccccccccdddddddd",
		  torn_phantom[] = "aaaaaaaadddddddd";

static void *torn_reader(void *arg)
{
	struct torn *r = arg;

	struct sb_tag phantom = tag_with_hash(torn_phantom, 16, 3);
	uint32_t slot;

	while (!atomic_load(&r->stop)) {
		r->phantoms += sb__tagindex_find(&r->idx, &phantom, &slot) == 0;
		atomic_fetch_add(&r->lookups, 1);
	}
	return NULL;
}

Test(tagindex, a_lock_free_reader_never_matches_a_key_torn_between_two_tags)
{
	struct torn r = { .phantoms = 0 };
	pthread_t th;

	cr_assert_eq(sb__tagindex_init(&r.idx, 8, PER_SLOT), 0);
	add(&r.idx, torn_a, 16, 3, 0);
	cr_assert_eq(pthread_create(&th, NULL, torn_reader, &r), 0);
	while (atomic_load(&r.lookups) == 0)
		sched_yield();
	for (uint64_t step = 0; step < 4000000 && (step < 500000 || atomic_load(&r.lookups) < 100000);
	     step++) {
		sb__tagindex_del_held(&r.idx, 0);
		add(&r.idx, step & 1 ? torn_a : torn_b, 16, 3, 0);
	}
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	cr_assert_eq(r.phantoms, 0, "a mix of two keys was reported as a tag %llu times",
		     (unsigned long long)r.phantoms);
	sb__tagindex_fini(&r.idx);
}
