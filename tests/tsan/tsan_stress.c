/*
 * tests/tsan/tsan_stress.c - the library's concurrent paths in one
 * process, for ThreadSanitizer (Criterion cannot start under TSan:
 * Snaipe/Criterion#274). `make test-tsan` runs it; it is also a ctest
 * entry in the ordinary builds.
 *
 * Writer threads store seeded reports of random size under a small pool
 * of tags, and one store in five under a tag of its own, into a small log
 * (overwrites, cap and byte evictions, tag-index rebuilds, readers
 * lapped), with and without stats, and ask has(); a coordinator thread
 * drains events, reads len(), now and then drains the bridge, registers
 * watches and waits on the accessor; an aux thread appends cgroup.procs
 * snapshots to the aux log and drains the coordinator's copy; a worker
 * thread publishes the accessor seqno. Reader threads each hold a
 * consumer handed over through sb_bridge_consumer_socket() and drain
 * records, events and the aux log, ask has() and len(), and sleep in
 * sb_consumer_wait() (arms, the waker thread's rings); one more reader
 * connects over the socket and polls its descriptor.
 *
 * It checks what a data race would break: every delivered payload (and
 * every aux snapshot's pids) matches its seed, store_seq only grows per
 * consumer, each consumer's outcomes add up to every store and every aux
 * record, and the watch count never passes max_watch. Exit status: 0 when
 * all holds, 1 when a check fails (TSan's own reports exit with the
 * exitcode set in TSAN_OPTIONS).
 *
 * Usage: sb_tsan_stress [stores per writer [log KiB]]   (default 1500, 256)
 *        sb_tsan_stress --planted-race   two threads race on purpose: under
 *        TSan this must end with TSan's exit code, or TSan is not working
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <snapbridge/snapbridge.h>

#include "testutil.h"

#define WRITERS	  3
#define READERS	  2 /* plus one polling reader over the socket */
#define TAGS	  24
#define MAX_BYTES (12 << 10)

static struct sb_bridge *bridge;
static uint64_t per_writer = 1500;
static atomic_int writers_done;
static atomic_int aux_done;
static atomic_ulong ops; /* every library call the harness made */
static atomic_int failed;

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "tsan_stress: " __VA_ARGS__);                                      \
		fputc('\n', stderr);                                                               \
		atomic_store(&failed, 1);                                                          \
	} while (0)

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *writer_main(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	uint8_t *buf = malloc(MAX_BYTES + 16);
	uint8_t stats_buf[64];
	uint64_t s = 0x9e3779b97f4a7c15ull * (id + 1);
	char tag[32];

	if (!buf) {
		FAIL("out of memory");
		return NULL;
	}
	for (uint64_t i = 0; i < per_writer && !atomic_load(&failed); i++) {
		/* Seeds are unique per store: id in the high bits. */
		uint64_t seed = (uint64_t)id << 40 | i;
		size_t n = (size_t)(rng(&s) % MAX_BYTES);
		struct sb_report r = { .schema = "tsan",
				       .msgpack = buf,
				       .msgpack_len = tu_report(buf, n, seed) };
		bool has;
		int err;

		/* One store in five under a tag of its own: the tag index churns and rebuilds. */
		if (i % 5 == 2)
			snprintf(tag, sizeof(tag), "u%llu_%llu", (unsigned long long)id,
				 (unsigned long long)i);
		else
			snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(rng(&s) % TAGS));
		if (i % 4 == 0) {
			struct sb_stats st = { .kind = SB_STATS_OK,
					       .msgpack = stats_buf,
					       .msgpack_len = tu_report(stats_buf, 32, seed) };
			err = sb_bridge_store_with_stats(bridge, tag, &r, &st, &i);
		} else {
			err = sb_bridge_store(bridge, tag, &r);
		}
		if (err) {
			FAIL("store %s: %s", tag, sb_last_error());
			break;
		}
		sb_bridge_has(bridge, tag, &has);
		atomic_fetch_add(&ops, 2);
	}
	free(buf);
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

/* pids[i] of the cgroup.procs snapshot tagged "cg-SEED". */
static int32_t aux_pid(uint64_t seed, size_t i)
{
	return (int32_t)((seed * 2654435761u + i * 40503u) & 0x3fffffff);
}

static void *aux_main(void *arg)
{
	int32_t pids[256];
	uint64_t s = 0x51ed27;
	char tag[32];

	(void)arg;
	for (uint64_t seed = 1; atomic_load(&writers_done) < WRITERS && !atomic_load(&failed);
	     seed++) {
		size_t n = (size_t)(rng(&s) % 256);

		for (size_t i = 0; i < n; i++)
			pids[i] = aux_pid(seed, i);
		snprintf(tag, sizeof(tag), "cg-%llu", (unsigned long long)seed);
		if (sb_bridge_record_cgroup_procs(bridge, tag, "/sys/fs/cgroup/tsan", pids, n) !=
		    0) {
			FAIL("cgroup.procs %s: %s", tag, sb_last_error());
			break;
		}
		if (seed % 32 == 0) {
			struct sb_cgroup_procs_log log;

			if (sb_bridge_drain_cgroup_procs(bridge, &log) == 0)
				sb_cgroup_procs_log_free(&log);
		}
		atomic_fetch_add(&ops, 1 + (seed % 32 == 0));
		usleep(50);
	}
	atomic_store(&aux_done, 1);
	return NULL;
}

/* The accessor worker: publishes until the writers are done, then fails for good. */
static void *worker_main(void *arg)
{
	(void)arg;
	while (atomic_load(&writers_done) < WRITERS && !atomic_load(&failed)) {
		if (sb_bridge_accessor_publish(bridge, NULL) != 0) {
			FAIL("accessor publish: %s", sb_last_error());
			break;
		}
		atomic_fetch_add(&ops, 1);
		usleep(300);
	}
	sb_bridge_accessor_fail(bridge);
	return NULL;
}

/* Every other symbol arms; the rest fail and release their slot. */
static int watch_register(void *user, const char *symbol, char *why, size_t why_len)
{
	(void)user;
	if (symbol[strlen(symbol) - 1] % 2) {
		snprintf(why, why_len, "odd symbol");
		return -EINVAL;
	}
	return 0;
}

/* The coordinator's own readers: event drains, len, and destructive drains. */
static void *coordinator_main(void *arg)
{
	(void)arg;
	for (unsigned i = 0; atomic_load(&writers_done) < WRITERS && !atomic_load(&failed); i++) {
		struct sb_events ev;
		size_t len;
		char sym[32];
		uint32_t watches;
		uint64_t seqno = 0;

		if (sb_bridge_drain_events(bridge, &ev) == 0)
			sb_events_free(&ev);
		sb_bridge_len(bridge, &len);
		/* Watch slots: reserved by CAS, released when the callback fails. */
		snprintf(sym, sizeof(sym), "sym%u", i);
		sb_bridge_register_watch(bridge, sym);
		sb_bridge_watch_count(bridge, &watches);
		if (watches > 3)
			FAIL("watch count %u passed max_watch 3", watches);
		/* The accessor: wait a little for the worker's next publish. */
		sb_bridge_accessor_publish_seqno(bridge, &seqno);
		sb_bridge_wait_publish_advance(bridge, seqno, sb_monotonic_ns() + 1000000, "tsan",
					       &seqno);
		atomic_fetch_add(&ops, 5);
		if (i % 64 == 63) {
			struct sb_entries en;

			if (sb_bridge_drain(bridge, &en) != 0) {
				FAIL("bridge drain: %s", sb_last_error());
				break;
			}
			for (size_t k = 0; k < en.count; k++)
				if (tu_report_check(en.items[k].report, en.items[k].report_len,
						    NULL))
					FAIL("bridge drain: report %llu (%s, %zu bytes, %zu of "
					     "%zu) does not "
					     "match its seed",
					     (unsigned long long)en.items[k].store_seq,
					     en.items[k].tag, en.items[k].report_len, k, en.count);
			sb_entries_free(&en);
		}
		atomic_fetch_add(&ops, 2 + (i % 64 == 63));
		usleep(200);
	}
	return NULL;
}

struct reader {
	pthread_t thread;
	struct sb_consumer *c;
	bool poll_mode;
	uint64_t last_seq, delivered, bad, out_of_order;
	uint64_t aux_delivered, aux_last_seq;
	struct sb_drain_counts totals;
	struct sb_aux_counts aux_totals;
};

static int check_aux(void *user, const struct sb_aux_item *it)
{
	struct reader *r = user;
	unsigned long long seed;

	if (it->kind != SB_AUX_CGROUP_PROCS || !it->procs ||
	    sscanf(it->procs->tag, "cg-%llu", &seed) != 1) {
		r->bad++;
		return 0;
	}
	for (size_t i = 0; i < it->procs->n_pids; i++)
		if (it->procs->pids[i] != aux_pid(seed, i))
			r->bad++;
	if (it->seq <= r->aux_last_seq)
		r->out_of_order++;
	r->aux_last_seq = it->seq;
	r->aux_delivered++;
	return 0;
}

static int check_entry(void *user, const struct sb_entry *e)
{
	struct reader *r = user;

	if (tu_report_check(e->report, e->report_len, NULL) != 0)
		r->bad++;
	if (e->stats.kind == SB_STATS_OK &&
	    tu_report_check(e->stats.msgpack, e->stats.msgpack_len, NULL) != 0)
		r->bad++;
	if (e->store_seq <= r->last_seq)
		r->out_of_order++;
	r->last_seq = e->store_seq;
	r->delivered++;
	return 0;
}

/* Block until the writer publishes: futex wait, or arm + poll on the socket. */
static void reader_wait(struct reader *r)
{
	enum sb_wait_status st;

	if (!r->poll_mode) {
		sb_consumer_wait(r->c, 2, &st);
		return;
	}
	if (sb_consumer_arm(r->c, &st) == 0 && st == SB_WAIT_ARMED) {
		int fd;

		if (sb_consumer_pollfd(r->c, &fd) == 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			poll(&p, 1, 2);
		}
	}
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	for (unsigned i = 0;; i++) {
		uint64_t cursor, stores, aux_records;
		struct sb_aux_counts aux;
		int done = atomic_load(&writers_done) == WRITERS && atomic_load(&aux_done);

		if (sb_consumer_drain(r->c, check_entry, r, NULL) != 0) {
			FAIL("consumer drain: %s", sb_last_error());
			break;
		}
		if (sb_consumer_drain_aux(r->c, check_aux, r, NULL) != 0) {
			FAIL("consumer aux drain: %s", sb_last_error());
			break;
		}
		sb_consumer_aux_totals(r->c, &aux);
		sb_consumer_aux_count(r->c, &aux_records);
		if (i % 8 == 0) {
			struct sb_events ev;
			size_t len;
			bool has;

			if (sb_consumer_drain_events(r->c, &ev) == 0)
				sb_events_free(&ev);
			sb_consumer_len(r->c, &len);
			sb_consumer_has(r->c, "t7", &has);
			atomic_fetch_add(&ops, 3);
		}
		sb_consumer_cursor(r->c, &cursor);
		sb_consumer_store_count(r->c, &stores);
		atomic_fetch_add(&ops, 6);
		if (done && cursor == stores && aux.records == aux_records)
			break;
		if (atomic_load(&failed))
			break;
		if (cursor == stores && aux.records == aux_records)
			reader_wait(r);
	}
	sb_consumer_totals(r->c, &r->totals);
	sb_consumer_aux_totals(r->c, &r->aux_totals);
	return NULL;
}

static long planted;

static void *planted_main(void *arg)
{
	for (int i = 0; i < 100000; i++)
		planted += (long)(uintptr_t)arg; /* unsynchronised on purpose */
	return NULL;
}

/* A data race TSan must report: proof that the sanitizer is really on. */
static int planted_race(void)
{
	pthread_t a, b;

	pthread_create(&a, NULL, planted_main, (void *)1);
	pthread_create(&b, NULL, planted_main, (void *)2);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	printf("tsan_stress: planted race ran (%ld)\n", planted);
	return 0;
}

int main(int argc, char **argv)
{
	struct sb_config cfg;
	struct reader readers[READERS + 1] = { 0 };
	pthread_t writers[WRITERS], coord, aux, worker;
	struct sb_bridge_ops bops = { .watch_register = watch_register };
	char sock[64];

	uint64_t log_kib = 256;

	if (argc > 1 && strcmp(argv[1], "--planted-race") == 0)
		return planted_race();
	if (argc > 1)
		per_writer = strtoull(argv[1], NULL, 10);
	if (argc > 2)
		log_kib = strtoull(argv[2], NULL, 10);
	/* A small log: reports up to 12 KiB in 256 KiB lap the readers often. */
	tu_config(&cfg, 16, 64, log_kib << 10);
	if (sb_bridge_create(&cfg, &bops, &bridge) != 0 ||
	    sb_bridge_accessor_install(bridge) != 0) {
		fprintf(stderr, "tsan_stress: bridge: %s\n", sb_last_error());
		return 1;
	}
	struct sb_serve_config sc;
	sb_serve_config_default(&sc);
	snprintf(sock, sizeof(sock), "@snapbridge-tsan-%d", (int)getpid());
	sc.socket = sock;
	if (sb_bridge_serve(bridge, &sc) != 0) {
		fprintf(stderr, "tsan_stress: serve: %s\n", sb_last_error());
		return 1;
	}
	for (int i = 0; i < READERS; i++) {
		int fd;
		if (sb_bridge_consumer_socket(bridge, &fd) != 0 ||
		    sb_consumer_open_socket(fd, 0, &readers[i].c) != 0) {
			fprintf(stderr, "tsan_stress: open: %s\n", sb_last_error());
			return 1;
		}
	}
	if (sb_consumer_connect(sock, 0, &readers[READERS].c) != 0) {
		fprintf(stderr, "tsan_stress: connect: %s\n", sb_last_error());
		return 1;
	}
	readers[READERS].poll_mode = true;

	for (int i = 0; i <= READERS; i++)
		pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]);
	for (uintptr_t i = 0; i < WRITERS; i++)
		pthread_create(&writers[i], NULL, writer_main, (void *)i);
	pthread_create(&coord, NULL, coordinator_main, NULL);
	pthread_create(&aux, NULL, aux_main, NULL);
	pthread_create(&worker, NULL, worker_main, NULL);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(writers[i], NULL);
	pthread_join(coord, NULL);
	pthread_join(aux, NULL);
	pthread_join(worker, NULL);
	for (int i = 0; i <= READERS; i++)
		pthread_join(readers[i].thread, NULL);

	uint64_t stores = WRITERS * per_writer;
	uint64_t aux_total = 0;
	sb_consumer_aux_count(readers[0].c, &aux_total);
	for (int i = 0; i <= READERS; i++) {
		const struct reader *r = &readers[i];
		const struct sb_drain_counts *t = &r->totals;
		uint64_t sum = t->delivered + t->superseded + t->evicted + t->lapped + t->torn;

		printf("reader %d%s: stores %llu delivered %llu superseded %llu evicted %llu "
		       "lapped %llu torn %llu\n",
		       i, r->poll_mode ? " (poll)" : "", (unsigned long long)t->stores,
		       (unsigned long long)t->delivered, (unsigned long long)t->superseded,
		       (unsigned long long)t->evicted, (unsigned long long)t->lapped,
		       (unsigned long long)t->torn);
		if (atomic_load(&failed))
			continue;
		if (t->stores != stores || sum != stores)
			FAIL("reader %d accounted %llu stores (outcomes sum to %llu) of %llu", i,
			     (unsigned long long)t->stores, (unsigned long long)sum,
			     (unsigned long long)stores);
		const struct sb_aux_counts *a = &r->aux_totals;
		printf("reader %d aux: records %llu delivered %llu lapped %llu\n", i,
		       (unsigned long long)a->records, (unsigned long long)a->delivered,
		       (unsigned long long)a->lapped);
		if (a->records != aux_total || a->delivered + a->lapped != a->records ||
		    r->aux_delivered != a->delivered)
			FAIL("reader %d accounted %llu aux records (%llu delivered + %llu lapped, "
			     "callback saw %llu) of %llu",
			     i, (unsigned long long)a->records, (unsigned long long)a->delivered,
			     (unsigned long long)a->lapped, (unsigned long long)r->aux_delivered,
			     (unsigned long long)aux_total);
		if (r->bad || r->out_of_order || r->delivered != t->delivered || t->torn)
			FAIL("reader %d: %llu payloads off their seed, %llu out of order, "
			     "%llu torn, callback saw %llu of %llu delivered",
			     i, (unsigned long long)r->bad, (unsigned long long)r->out_of_order,
			     (unsigned long long)t->torn, (unsigned long long)r->delivered,
			     (unsigned long long)t->delivered);
	}
	for (int i = 0; i <= READERS; i++)
		sb_consumer_close(readers[i].c);
	sb_bridge_destroy(bridge);
	printf("tsan_stress: %llu stores by %d writers, %d readers, %lu library calls: %s\n",
	       (unsigned long long)stores, WRITERS, READERS + 1, atomic_load(&ops),
	       atomic_load(&failed) ? "FAILED" : "ok");
	return atomic_load(&failed) ? 1 : 0;
}
