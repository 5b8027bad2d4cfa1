/*
 * Several writer threads and several reader threads at once: every
 * delivered payload matches its seed byte for byte, store_seq only grows
 * per consumer, and the accounting adds up to every store.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

#define WRITERS	   3
#define READERS	   2
#define PER_WRITER 2000

static struct sb_bridge *bridge;
static atomic_int writers_done;

struct reader {
	pthread_t thread;
	struct sb_consumer *c;
	uint64_t last_seq;
	uint64_t bad;
	uint64_t out_of_order;
	struct sb_drain_counts totals;
	int err;
};

static void *writer_main(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	uint8_t *buf = malloc(40 << 10);
	char tag[32];

	for (uint64_t i = 0; i < PER_WRITER; i++) {
		/* Seeds are unique per store; sizes vary from 64 B to 32 KiB. */
		uint64_t seed = id << 32 | i;
		size_t n = 64 + (size_t)((seed * 2654435761u) % (32 << 10));
		struct sb_report r = { .schema = "c",
				       .msgpack = buf,
				       .msgpack_len = tu_report(buf, n, seed) };

		snprintf(tag, sizeof(tag), "w%lu-%llu", (unsigned long)id,
			 (unsigned long long)(i % 50));
		if (sb_bridge_store(bridge, tag, &r) != 0)
			abort();
		bool has;
		sb_bridge_has(bridge, tag, &has);
	}
	free(buf);
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

static int check_entry(void *user, const struct sb_entry *e)
{
	struct reader *r = user;

	if (tu_report_check(e->report, e->report_len, NULL) != 0)
		r->bad++;
	if (e->store_seq <= r->last_seq)
		r->out_of_order++;
	r->last_seq = e->store_seq;
	return 0;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	const uint64_t total = WRITERS * PER_WRITER;
	uint64_t cursor = 0;

	while (cursor < total) {
		r->err = sb_consumer_drain(r->c, check_entry, r, NULL);
		if (r->err)
			break;
		sb_consumer_cursor(r->c, &cursor);
		if (atomic_load(&writers_done) < WRITERS)
			sched_yield();
	}
	sb_consumer_totals(r->c, &r->totals);
	return NULL;
}

Test(concurrency, writers_and_readers_never_see_a_torn_or_reordered_record, .timeout = 120)
{
	struct sb_config cfg;
	struct reader readers[READERS] = { 0 };
	pthread_t writers[WRITERS];

	/* 1 MiB of log against ~100 MiB of stores: readers are lapped often. */
	tu_config(&cfg, 32, 128, 1 << 20);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &bridge), 0);
	for (int i = 0; i < READERS; i++) {
		int fd;
		cr_assert_eq(sb_bridge_data_fd(bridge, &fd), 0);
		cr_assert_eq(
		    sb_consumer_open_fd(fd, i ? SB_CONSUMER_ALL_VERSIONS : 0, &readers[i].c), 0);
		close(fd);
		pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]);
	}
	for (uintptr_t i = 0; i < WRITERS; i++)
		pthread_create(&writers[i], NULL, writer_main, (void *)i);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(writers[i], NULL);
	for (int i = 0; i < READERS; i++) {
		struct reader *r = &readers[i];
		const struct sb_drain_counts *d = &r->totals;

		pthread_join(r->thread, NULL);
		cr_assert_eq(r->err, 0, "reader %d: %s", i, sb_last_error());
		cr_assert_eq(r->bad, 0, "reader %d delivered a payload that fails its seed", i);
		cr_assert_eq(r->out_of_order, 0);
		cr_assert_eq(d->stores, WRITERS * PER_WRITER);
		cr_assert_eq(d->delivered + d->superseded + d->evicted + d->lapped + d->torn,
			     d->stores);
		cr_assert_eq(d->torn, 0);
		sb_consumer_close(r->c);
	}
	size_t len;
	sb_bridge_len(bridge, &len);
	cr_assert_leq(len, 32);
	sb_bridge_destroy(bridge);
}
