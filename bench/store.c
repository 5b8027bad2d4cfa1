/*
 * bench/store.c - in-process stores: one thread (store) or several
 * (parallel), for snapbridge and the in-process baselines.
 *
 *   memcpy      copy the record once into a destination ring as big as
 *               snapbridge's log, at advancing offsets: the floor of a store.
 *   raw_ring    rr_append into a memfd ring as big as the log (raw_ring.h).
 *   mutex_map   mm_store (mutex_map.h), unique or round-robin tags.
 *   snapbridge  sb_bridge_store into a bridge with the default 64 snapshots
 *               and a log of p->ring_bytes, unique tags (every store past
 *               the cap evicts and records an event) or round-robin tags
 *               (overwrites); with p->validate, SB_BRIDGE_VALIDATE_MSGPACK.
 *
 * Each run warms up first (p->warm records, enough to write every ring in
 * full), then times p->n records as a whole, counting the minor page
 * faults of that phase, then p->nlat records one by one with
 * CLOCK_MONOTONIC around each.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"
#include "harness.h"
#include "measure.h"
#include "mutex_map.h"
#include "raw_ring.h"

/* ---- tags -------------------------------------------------------------------------- */

void sbb_tags_init(struct sbb_tags *t, const char *prefix)
{
	int n = snprintf(t->s, sizeof(t->s), "%s%010u", prefix, 0u);

	t->len = (unsigned)n;
	t->digits_at = t->len - 10;
}

void sbb_tags_next(struct sbb_tags *t)
{
	for (unsigned i = t->len; i-- > t->digits_at;) {
		if (t->s[i] != '9') {
			t->s[i]++;
			return;
		}
		t->s[i] = '0';
	}
}

void sbb_latency_fill(uint64_t *lat, uint64_t n, struct sbb_sample *out)
{
	if (!n)
		return;
	qsort(lat, n, sizeof(*lat), sbb_cmp_u64);
	out->p50 = (double)sbb_percentile(lat, n, 500);
	out->p99 = (double)sbb_percentile(lat, n, 990);
	out->p999 = (double)sbb_percentile(lat, n, 999);
	out->has_lat = true;
}

/* ---- the systems, behind one store call -------------------------------------------- */

struct writer {
	int (*store)(void *ctx, const char *tag, const uint8_t *rec, uint32_t len);
	void *ctx;
};

struct copy_ring {
	uint8_t *base;
	uint64_t size, off;
};

static int memcpy_store(void *ctx, const char *tag, const uint8_t *rec, uint32_t len)
{
	struct copy_ring *c = ctx;

	(void)tag;
	if (c->off + len > c->size)
		c->off = 0;
	memcpy(c->base + c->off, rec, len);
	c->off += (len + 63) & ~63u;
	return 0;
}

static int raw_ring_store(void *ctx, const char *tag, const uint8_t *rec, uint32_t len)
{
	(void)tag;
	rr_append(ctx, rec, len);
	return 0;
}

static int mutex_map_store(void *ctx, const char *tag, const uint8_t *rec, uint32_t len)
{
	return mm_store(ctx, tag, "bench", rec, len);
}

static int snapbridge_store(void *ctx, const char *tag, const uint8_t *rec, uint32_t len)
{
	struct sb_report r = { .schema = "bench", .msgpack = rec, .msgpack_len = len };

	return sb_bridge_store(ctx, tag, &r);
}

/* One system's shared state; copy rings are per thread and made by open_thread. */
struct instance {
	const char *system;
	uint64_t ring_bytes; /* the size of a memcpy ring */
	struct rr_ring ring;
	struct mm_map *map;
	struct sb_bridge *bridge;
};

static int instance_open(struct instance *in, const char *system, const struct sbb_params *p)
{
	memset(in, 0, sizeof(*in));
	in->system = system;
	in->ring.fd = -1;
	in->ring_bytes = p->ring_bytes;
	if (!strcmp(system, "memcpy"))
		return 0;
	if (!strcmp(system, "raw_ring"))
		return rr_create(p->ring_bytes, &in->ring);
	if (!strcmp(system, "mutex_map")) {
		/*
		 * Keep what it frees: left to glibc's defaults, a 256 KiB copy
		 * comes from mmap or a heap top that is trimmed back, and every
		 * store pays page faults no warm-up can prevent. This child
		 * process runs nothing else.
		 */
		mallopt(M_MMAP_THRESHOLD, 64 << 20);
		mallopt(M_TRIM_THRESHOLD, INT32_MAX);
		return mm_create(SBB_MAX_SNAPS, SBB_MAX_EVENTS, &in->map);
	}
	if (!strcmp(system, "snapbridge")) {
		struct sb_config cfg;

		sb_config_default(&cfg);
		cfg.log_bytes = p->ring_bytes;
		cfg.flags = p->validate ? SB_BRIDGE_VALIDATE_MSGPACK : 0;
		int err = sb_bridge_create(&cfg, NULL, &in->bridge);
		if (err)
			fprintf(stderr, "bench: creating a bridge: %s\n", sb_last_error());
		return err;
	}
	return -ENOENT;
}

static void instance_close(struct instance *in)
{
	if (in->ring.map)
		rr_destroy(&in->ring);
	mm_destroy(in->map);
	if (in->bridge)
		sb_bridge_destroy(in->bridge);
}

/* A writer for one thread; memcpy gets its own destination ring in *copy. */
static int writer_for(struct instance *in, struct copy_ring *copy, struct writer *w)
{
	if (!strcmp(in->system, "memcpy")) {
		copy->size = in->ring_bytes;
		copy->off = 0;
		copy->base = malloc(copy->size);
		if (!copy->base)
			return -ENOMEM;
		*w = (struct writer){ memcpy_store, copy };
	} else if (in->map) {
		*w = (struct writer){ mutex_map_store, in->map };
	} else if (in->bridge) {
		*w = (struct writer){ snapbridge_store, in->bridge };
	} else {
		*w = (struct writer){ raw_ring_store, &in->ring };
	}
	return 0;
}

/*
 * mutex_map's memory is malloc's: take twice its resident set at once from
 * this thread's arena, write it, and give it back (it is kept, see
 * instance_open), so that the heap the stores come and go in is faulted
 * in like every other system's ring, with room for the churn of blocks
 * other threads free into it.
 */
static int prefault_heap(const struct instance *in, uint32_t size)
{
	enum { BLOCKS = 2 * SBB_MAX_SNAPS };
	void *block[BLOCKS];
	int err = 0;

	if (!in->map)
		return 0;
	for (unsigned i = 0; i < BLOCKS; i++) {
		block[i] = malloc(size + 256);
		if (!block[i])
			err = -ENOMEM;
		else
			memset(block[i], 0x5a, size + 256);
	}
	for (unsigned i = 0; i < BLOCKS; i++)
		free(block[i]);
	return err;
}

/* ---- the loop ---------------------------------------------------------------------- */

struct tag_source {
	bool overwrite;
	struct sbb_tags unique;
	char rr[SBB_OVERWRITE_TAGS][16];
	unsigned next;
};

static void tags_open(struct tag_source *t, bool overwrite, unsigned thread)
{
	char prefix[24];

	t->overwrite = overwrite;
	t->next = 0;
	snprintf(prefix, sizeof(prefix), "t%u_periodic_", thread);
	sbb_tags_init(&t->unique, prefix);
	for (unsigned i = 0; i < SBB_OVERWRITE_TAGS; i++)
		snprintf(t->rr[i], sizeof(t->rr[i]), "t%u_w%02u", thread, i);
}

static const char *tags_take(struct tag_source *t)
{
	if (t->overwrite) {
		const char *s = t->rr[t->next];
		t->next = (t->next + 1) % SBB_OVERWRITE_TAGS;
		return s;
	}
	sbb_tags_next(&t->unique);
	return t->unique.s;
}

/* n stores; with lat, each one timed on its own. */
static int store_loop(const struct writer *w, struct tag_source *tags, const uint8_t *rec,
		      uint32_t len, uint64_t n, uint64_t *lat)
{
	for (uint64_t i = 0; i < n; i++) {
		const char *tag = tags_take(tags);
		uint64_t t0 = lat ? sb__mono_ns() : 0;
		int err = w->store(w->ctx, tag, rec, len);
		if (lat)
			lat[i] = sb__mono_ns() - t0;
		if (err)
			return err;
	}
	return 0;
}

static uint8_t *make_record(const struct sbb_params *p)
{
	uint8_t *rec = malloc(p->size);

	if (rec)
		sbb_make_shaped(p->shape, rec, p->size);
	return rec;
}

int sbb_store_run(const char *system, const struct sbb_params *p, struct sbb_sample *out)
{
	struct instance in;
	struct copy_ring copy = { 0 };
	struct tag_source tags;
	struct writer w = { 0 };
	uint8_t *rec = make_record(p);
	uint64_t *lat = p->nlat ? malloc(p->nlat * sizeof(*lat)) : NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (!rec || (p->nlat && !lat)) {
		free(rec);
		free(lat);
		return -ENOMEM;
	}
	sbb_pin(0);
	err = instance_open(&in, system, p);
	if (err) {
		free(rec);
		free(lat);
		return err;
	}
	err = writer_for(&in, &copy, &w);
	tags_open(&tags, p->overwrite, 0);
	if (!err)
		err = prefault_heap(&in, p->size);
	if (!err)
		err = store_loop(&w, &tags, rec, p->size, p->warm, NULL);
	sbb_touch_clocks();
	uint64_t f0 = sbb_minflt(), c0 = sbb_process_cpu_ns(), t0 = sb__mono_ns();
	if (!err)
		err = store_loop(&w, &tags, rec, p->size, p->n, NULL);
	uint64_t t1 = sb__mono_ns(), c1 = sbb_process_cpu_ns(), f1 = sbb_minflt();
	if (!err && lat)
		err = store_loop(&w, &tags, rec, p->size, p->nlat, lat);
	if (err) {
		fprintf(stderr, "bench: %s store of %u bytes: %s\n", system, p->size,
			in.bridge ? sb_last_error() : strerror(-err));
	} else {
		out->rate = (double)p->n * 1e9 / (double)(t1 - t0);
		out->cpu_rate = (double)p->n * 1e9 / (double)(c1 - c0);
		out->faults = f1 - f0;
		sbb_latency_fill(lat, p->nlat, out);
	}
	free(copy.base);
	instance_close(&in);
	free(rec);
	free(lat);
	return err;
}

/* ---- parallel writers -------------------------------------------------------------- */

/* Workers wait here until all of them are ready; open with abandon set sends them home. */
struct gate {
	uint32_t arrived;
	uint32_t open;
	uint32_t abandon;
};

struct worker {
	pthread_t th;
	unsigned idx;
	struct instance *in;
	const struct sbb_params *p;
	struct gate *gate;
	const uint8_t *rec;
	uint64_t t0, t1;
	uint64_t faults; /* of its timed loop (RUSAGE_THREAD) */
	int err;
};

static uint64_t thread_minflt(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) == 0 ? (uint64_t)ru.ru_minflt : 0;
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct copy_ring copy = { 0 };
	struct tag_source tags;
	struct writer w = { 0 };
	uint64_t n = wk->p->n / wk->p->threads;

	sbb_pin(wk->idx);
	wk->err = writer_for(wk->in, &copy, &w);
	tags_open(&tags, wk->p->overwrite, wk->idx);
	/*
	 * Every thread warms up on its own too: its copy ring, its malloc
	 * arena (mutex_map), its stack, on top of the shared structure.
	 */
	if (!wk->err)
		wk->err = prefault_heap(wk->in, wk->p->size);
	if (!wk->err)
		wk->err = store_loop(&w, &tags, wk->rec, wk->p->size, wk->p->warm, NULL);
	sbb_touch_clocks();
	(void)thread_minflt();
	sb_fetch_add_release(&wk->gate->arrived, 1);
	while (!sb_load_acquire(&wk->gate->open)) /* pairs with the opener's release */
		sched_yield();
	uint64_t f0 = thread_minflt();
	wk->t0 = sb__mono_ns();
	if (!wk->err && !sb_load_relaxed(&wk->gate->abandon))
		wk->err = store_loop(&w, &tags, wk->rec, wk->p->size, n, NULL);
	wk->t1 = sb__mono_ns();
	wk->faults = thread_minflt() - f0;
	free(copy.base);
	return NULL;
}

int sbb_parallel_run(const char *system, const struct sbb_params *p, struct sbb_sample *out)
{
	struct worker wk[16];
	struct instance in;
	struct gate gate = { 0, 0, 0 };
	unsigned nt = p->threads < 16 ? p->threads : 16;
	uint8_t *rec = make_record(p);
	int err;

	memset(out, 0, sizeof(*out));
	if (!rec)
		return -ENOMEM;
	sbb_pin(0);
	err = instance_open(&in, system, p);
	if (err) {
		free(rec);
		return err;
	}
	if (strcmp(system, "memcpy") != 0) {
		/* Warm the shared structure from one thread, with tags no worker uses. */
		struct copy_ring none = { 0 };
		struct tag_source tags;
		struct writer w = { 0 };

		tags_open(&tags, p->overwrite, 99);
		err = writer_for(&in, &none, &w);
		if (!err)
			err = store_loop(&w, &tags, rec, p->size, p->warm, NULL);
	}
	unsigned started = 0;
	for (; started < nt && !err; started++) {
		wk[started] =
		    (struct worker){ .idx = started, .in = &in, .p = p, .gate = &gate, .rec = rec };
		err = -pthread_create(&wk[started].th, NULL, worker_main, &wk[started]);
		if (err) {
			fprintf(stderr, "bench: pthread_create: %s\n", strerror(-err));
			break;
		}
	}
	while (!err && sb_load_acquire(&gate.arrived) < nt) /* pairs with each worker's add */
		sched_yield();
	sb_store_relaxed(&gate.abandon, err != 0);
	sb_store_release(&gate.open, 1);
	uint64_t t0 = UINT64_MAX, t1 = 0;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(wk[i].th, NULL);
		if (wk[i].err && !err)
			err = wk[i].err;
		t0 = wk[i].t0 < t0 ? wk[i].t0 : t0;
		t1 = wk[i].t1 > t1 ? wk[i].t1 : t1;
		out->faults += wk[i].faults;
	}
	if (err)
		fprintf(stderr, "bench: %s with %u threads, %u bytes: %s\n", system, nt, p->size,
			in.bridge ? sb_last_error() : strerror(-err));
	else
		out->rate = (double)(p->n / nt * nt) * 1e9 / (double)(t1 - t0);
	instance_close(&in);
	free(rec);
	return err;
}
