/*
 * Fault injection: SIGKILL of the coordinator at seeded random points of
 * a store stream, consumers killed mid-copy and mid-wait, a consumer
 * stopped until the writer laps it, and a byte budget squeezed by one
 * huge record among many small ones. Whatever happens, every committed
 * record is delivered exactly once with every byte intact, or accounted
 * for exactly as superseded, evicted, lapped or (one at most) torn.
 *
 * SB_FAULT_ITERATIONS sets the number of coordinator kills (default 12).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../coordinator/bridge_internal.h"
#include "serveutil.h"
#include "testutil.h"

static char sock[64];

static void name_socket(void)
{
	snprintf(sock, sizeof(sock), "@sb-fault-%d", (int)getpid());
}

TestSuite(fault, .init = name_socket, .timeout = 300);

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A record size: mostly small, some of tens of KB, a few of 128..256 KB. */
static size_t pick_size(uint64_t *s)
{
	uint64_t r = rng(s);

	switch (r % 20) {
	case 0:
		return 128 * 1024 + r % (128 * 1024);
	case 1:
	case 2:
	case 3:
	case 4:
		return 4096 + r % (60 * 1024);
	default:
		return 64 + r % 2048;
	}
}

static uint8_t big[512 * 1024 + 16]; /* the largest record any test here stores, with its header */

/* Store a report seeded by the store_seq it will get (one writer thread). */
static void store_seeded(struct sb_bridge *b, const char *tag, size_t n)
{
	uint64_t next = sb_load_relaxed(&b->hot->store_seq) + 1;
	struct sb_report r = { .schema = "f",
			       .msgpack = big,
			       .msgpack_len = tu_report(big, n, next) };

	cr_assert_eq(sb_bridge_store(b, tag, &r), 0, "%s", sb_last_error());
}

static struct sb_bridge *bridge(uint32_t max_snapshots, uint64_t log_bytes)
{
	struct sb_config cfg;
	struct sb_bridge *b;

	tu_config(&cfg, max_snapshots, 256, log_bytes);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0, "%s", sb_last_error());
	return b;
}

/* A coordinator process storing a seeded stream until it is killed. */
static pid_t storing_coordinator(uint64_t seed)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sb_bridge *b = bridge(64, 16u << 20);
		char tag[16];

		su_serve(b, sock);
		(void)!write(p[1], "r", 1);
		for (uint64_t i = 0;; i++) {
			snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(rng(&seed) % 24));
			store_seeded(b, tag, pick_size(&seed));
			if (i % 256 == 255)
				usleep(200); /* let the consumers run on 2 cores */
		}
	}
	char byte;
	cr_assert_eq(read(p[0], &byte, 1), 1);
	close(p[0]);
	close(p[1]);
	return pid;
}

static void drain_until_gone(struct sb_consumer *c, struct tu_tally *t)
{
	enum sb_wait_status st;

	do {
		cr_assert_eq(sb_consumer_wait(c, 10000, &st), 0);
		cr_assert_eq(tu_drain_to_end(c, tu_tally_entry, t), 0, "%s", sb_last_error());
	} while (st == SB_WAIT_READY);
	cr_assert_eq(st, SB_WAIT_DEAD, "status %d", st);
}

static unsigned iterations(void)
{
	const char *v = getenv("SB_FAULT_ITERATIONS");
	long n = v ? strtol(v, NULL, 10) : 12;

	return n > 0 ? (unsigned)n : 12;
}

Test(fault, coordinator_sigkill_at_seeded_random_points_loses_no_committed_record)
{
	unsigned n = iterations();
	uint64_t checked = 0, torn = 0;

	for (unsigned it = 0; it < n; it++) {
		uint64_t seed = 0x5eed0000u + it, s = seed;
		pid_t coord = storing_coordinator(seed);
		struct sb_consumer *live, *late;
		struct tu_tally tl = { 0 }, tt = { 0 };
		enum sb_wait_status st;
		uint64_t stores;

		/* All versions: every committed record is owed to both consumers. */
		cr_assert_eq(sb_consumer_connect(sock, SB_CONSUMER_ALL_VERSIONS, &live), 0, "%s",
			     sb_last_error());
		cr_assert_eq(sb_consumer_connect(sock, SB_CONSUMER_ALL_VERSIONS, &late), 0);
		uint64_t kill_at = su_now_ms() + 2 + rng(&s) % 120;
		while (su_now_ms() < kill_at) {
			sb_consumer_wait(live, 2, &st);
			cr_assert_eq(tu_drain_to_end(live, tu_tally_entry, &tl), 0, "%s",
				     sb_last_error());
		}
		kill(coord, SIGKILL);
		waitpid(coord, NULL, 0);
		drain_until_gone(live, &tl);
		drain_until_gone(late, &tt);

		cr_assert_eq(sb_consumer_store_count(live, &stores), 0);
		struct sb_consumer *both[] = { live, late };
		struct tu_tally *tal[] = { &tl, &tt };
		for (int i = 0; i < 2; i++) {
			struct sb_drain_counts d;

			cr_assert_eq(sb_consumer_totals(both[i], &d), 0);
			/* A kill after a record's reservation and before store_seq: one more. */
			cr_assert(d.stores == stores || (d.stores == stores + 1 && d.torn == 1),
				  "seed %llu: %llu stores accounted for, %llu made",
				  (unsigned long long)seed, (unsigned long long)d.stores,
				  (unsigned long long)stores);
			cr_assert_eq(d.superseded + d.evicted, 0, "all versions are owed");
			cr_assert_leq(d.torn, 1, "one writer: at most one store in flight");
			cr_assert_eq(d.delivered + d.lapped + d.torn, d.stores);
			cr_assert_eq(tal[i]->bad, 0,
				     "seed %llu: a delivered record with a wrong byte, a repeat "
				     "or a store_seq out of order",
				     (unsigned long long)seed);
			cr_assert_eq(tal[i]->delivered, d.delivered);
			checked += d.delivered;
			torn += d.torn;
		}
		sb_consumer_close(live);
		sb_consumer_close(late);
	}
	/* The figures docs/RELIABILITY.md quotes. */
	fprintf(stderr, "fault: %u coordinator kills, %llu delivered records checked, %llu torn\n",
		n, (unsigned long long)checked, (unsigned long long)torn);
}

Test(fault, consumers_killed_mid_copy_and_mid_wait_cost_the_others_and_the_writer_nothing)
{
	struct sb_bridge *b = bridge(64, 8u << 20);
	FILE *out[3];
	pid_t pid[3];
	uint64_t seed = 42, stores = 0;
	char tag[16];

	su_serve(b, sock);
	for (int k = 0; k < 3; k++) {
		pid[k] = su_spawn(sock, "drain", "all", &out[k]);
		su_expect_line(out[k], "attached");
	}
	su_wait_attached(b, 3);
	/* Large records keep the consumers copying most of the time. */
	uint64_t until = su_now_ms() + 60;
	while (su_now_ms() < until) {
		snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(stores % 24));
		store_seeded(b, tag, 128 * 1024 + rng(&seed) % (128 * 1024));
		stores++;
	}
	kill(pid[0], SIGKILL); /* most likely inside a copy */
	for (int i = 0; i < 200; i++, stores++) {
		snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(stores % 24));
		store_seeded(b, tag, pick_size(&seed));
	}
	usleep(200000);	       /* the others drain and go to sleep */
	kill(pid[1], SIGKILL); /* inside its wait */
	waitpid(pid[0], NULL, 0);
	waitpid(pid[1], NULL, 0);
	fclose(out[0]);
	fclose(out[1]);
	su_wait_attached(b, 1); /* both slots reclaimed on their hang-up */
	for (int i = 0; i < 2000; i++, stores++) {
		snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(stores % 24));
		store_seeded(b, tag, pick_size(&seed));
	}
	sb_bridge_destroy(b);

	struct su_result r = su_drain_result(out[2], pid[2]);
	cr_assert_eq(r.stores, stores, "the survivor accounted for every store");
	cr_assert_eq(r.delivered + r.lapped, r.stores, "all versions: delivered or lapped");
	cr_assert_eq(r.torn, 0);
	cr_assert_eq(r.bad, 0);
	cr_assert_eq(r.seen, r.delivered);
	cr_assert_str_eq(r.state, "closed");
}

Test(fault, a_stopped_consumer_is_lapped_exactly_and_delivers_nothing_torn_after_it_continues)
{
	struct sb_bridge *b = bridge(64, SB_LOG_BYTES_MIN);
	uint64_t seed = 7, stores = 0;
	char tag[16];
	FILE *out;
	pid_t pid;

	su_serve(b, sock);
	pid = su_spawn(sock, "drain", "all", &out);
	su_expect_line(out, "attached");
	su_wait_attached(b, 1);
	for (int i = 0; i < 50; i++, stores++)
		store_seeded(b, "warm", 64 + rng(&seed) % 512);
	usleep(100000);
	cr_assert_eq(kill(pid, SIGSTOP), 0);
	/* Several times the 64 KiB log while it cannot run. */
	for (int i = 0; i < 600; i++, stores++) {
		snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(stores % 24));
		store_seeded(b, tag, 512 + rng(&seed) % 2048);
	}
	cr_assert_eq(kill(pid, SIGCONT), 0);
	for (int i = 0; i < 100; i++, stores++) {
		snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(stores % 24));
		store_seeded(b, tag, 64 + rng(&seed) % 512);
		if (i % 10 == 0)
			usleep(1000);
	}
	sb_bridge_destroy(b);

	struct su_result r = su_drain_result(out, pid);
	cr_assert_eq(r.stores, stores);
	cr_assert_gt(r.lapped, 0, "the writer lapped the stopped consumer");
	cr_assert_eq(r.delivered + r.lapped, r.stores, "lapped is exactly what was not delivered");
	cr_assert_eq(r.torn, 0);
	cr_assert_eq(r.bad, 0, "nothing overwritten was delivered");
}

Test(fault, one_huge_record_among_many_small_ones_keeps_the_byte_budget_accounting_exact)
{
	struct sb_bridge *b = bridge(64, 1u << 20);
	struct sb_consumer *early, *late;
	struct tu_tally te = { 0 }, tl = { 0 };
	struct sb_drain_counts de, dl;
	struct sb_events ev;
	uint64_t seed = 99, stores = 0;
	char tag[16];
	int fd;

	cr_assert_eq(sb_bridge_data_fd(b, &fd), 0);
	cr_assert_eq(sb_consumer_open_fd(fd, 0, &early), 0);
	cr_assert_eq(sb_consumer_open_fd(fd, 0, &late), 0);
	close(fd);
	/* 60 resident tags of 6..10 KB: about half the log is resident. */
	for (int i = 0; i < 120; i++, stores++) {
		snprintf(tag, sizeof(tag), "s%d", i % 60);
		store_seeded(b, tag, 6144 + rng(&seed) % 4096);
	}
	cr_assert_eq(tu_drain_to_end(early, tu_tally_entry, &te), 0);
	/* Just under half the log: everything before it must give way. */
	store_seeded(b, "huge", (1u << 19) - 4096);
	stores++;
	for (int i = 0; i < 200; i++, stores++) {
		snprintf(tag, sizeof(tag), "s%d", i % 40);
		store_seeded(b, tag, 256 + rng(&seed) % 1024);
	}
	cr_assert_eq(tu_drain_to_end(early, tu_tally_entry, &te), 0);
	cr_assert_eq(tu_drain_to_end(late, tu_tally_entry, &tl), 0);
	cr_assert_eq(sb_consumer_totals(early, &de), 0);
	cr_assert_eq(sb_consumer_totals(late, &dl), 0);

	const struct sb_drain_counts *all[] = { &de, &dl };
	for (int i = 0; i < 2; i++) {
		const struct sb_drain_counts *d = all[i];
		cr_assert_eq(d->stores, stores);
		cr_assert_eq(d->delivered + d->superseded + d->evicted + d->lapped, d->stores);
		cr_assert_eq(d->torn, 0);
	}
	cr_assert_eq(te.bad + tl.bad, 0);
	cr_assert_gt(sb_load_relaxed(&b->hot->evicted_bytes), 0,
		     "the huge record evicted by bytes");
	size_t resident;
	cr_assert_eq(sb_bridge_len(b, &resident), 0);
	cr_assert_eq(dl.delivered, resident, "the late consumer got exactly the resident set");
	cr_assert_eq(sb_bridge_drain_events(b, &ev), 0);
	bool bytes_eviction = false;
	for (size_t i = 0; i < ev.count; i++)
		bytes_eviction |=
		    ev.items[i].kind == SB_EVENT_EVICTION && ev.items[i].cause == SB_EVICT_BYTES;
	sb_events_free(&ev);
	cr_assert(bytes_eviction, "an Eviction event with cause bytes");
	sb_consumer_close(early);
	sb_consumer_close(late);
	sb_bridge_destroy(b);
}
