/*
 * Conservation under load: several writer threads at full speed, random
 * tag reuse and random record sizes, three consumer processes draining as
 * fast as they can. For every consumer, delivered + superseded + evicted
 * + lapped equals the stores made, nothing is torn, and every delivered
 * payload verifies against its seed and arrives in its writer's order.
 *
 * SB_SOAK_SECONDS sets how long the writers run (default 10; CI runs 60).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serveutil.h"
#include "testutil.h"

#define WRITERS	  3
#define CONSUMERS 3
#define MAX_SIZE  (200 * 1024)

static char sock[64];

static void name_socket(void)
{
	snprintf(sock, sizeof(sock), "@sb-soak-%d", (int)getpid());
}

TestSuite(soak, .init = name_socket, .timeout = 900);

struct writer {
	struct sb_bridge *b;
	unsigned id;
	uint64_t deadline_ms;
	uint64_t stores, bytes, failures;
	uint8_t buf[MAX_SIZE + 16];
};

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	uint64_t s = 0x50a4u + w->id * 7919u;
	char tag[32];

	while (su_now_ms() < w->deadline_ms) {
		for (int burst = 0; burst < 64; burst++) {
			uint64_t r = rng(&s);
			size_t n = r % 50 == 0 ? 64 * 1024 + r % (MAX_SIZE - 64 * 1024)
					       : 64 + r % (16 * 1024);

			if (r % 5 == 0) /* a tag never used again */
				snprintf(tag, sizeof(tag), "u%u_%llu", w->id,
					 (unsigned long long)w->stores);
			else /* one of 100 shared tags: overwrites across writers */
				snprintf(tag, sizeof(tag), "t%llu",
					 (unsigned long long)(r >> 8) % 100);
			struct sb_report rep = { .schema = "soak",
						 .msgpack = w->buf,
						 .msgpack_len = tu_report(
						     w->buf, n, tu_seed(w->id, w->stores + 1)) };
			if (sb_bridge_store(w->b, tag, &rep) != 0)
				w->failures++;
			w->stores++;
			w->bytes += n;
		}
	}
	return NULL;
}

static unsigned seconds(void)
{
	const char *v = getenv("SB_SOAK_SECONDS");
	long n = v ? strtol(v, NULL, 10) : 10;

	return n > 0 ? (unsigned)n : 10;
}

Test(soak, every_consumer_accounts_for_every_store_of_several_writers)
{
	static struct writer w[WRITERS];
	struct sb_config cfg;
	struct sb_bridge *b;
	pthread_t t[WRITERS];
	FILE *out[CONSUMERS];
	pid_t pid[CONSUMERS];
	unsigned secs = seconds();

	tu_config(&cfg, 64, 1024, 16u << 20);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0, "%s", sb_last_error());
	su_serve(b, sock);
	for (int k = 0; k < CONSUMERS; k++) {
		pid[k] = su_spawn(sock, "drain", "multi", &out[k]);
		su_expect_line(out[k], "attached");
	}
	su_wait_attached(b, CONSUMERS);

	uint64_t start = su_now_ms();
	for (unsigned i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){ .b = b, .id = i, .deadline_ms = start + secs * 1000ull };
		cr_assert_eq(pthread_create(&t[i], NULL, write_loop, &w[i]), 0);
	}
	uint64_t stores = 0, bytes = 0;
	for (unsigned i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(w[i].failures, 0, "writer %u: a store failed", i);
		stores += w[i].stores;
		bytes += w[i].bytes;
	}
	uint64_t elapsed = su_now_ms() - start;
	sb_bridge_destroy(b);

	uint64_t delivered = 0, lapped = 0;
	for (int k = 0; k < CONSUMERS; k++) {
		struct su_result r = su_drain_result(out[k], pid[k]);

		cr_assert_eq(r.stores, stores, "consumer %d accounted for %llu of %llu stores", k,
			     r.stores, (unsigned long long)stores);
		cr_assert_eq(r.delivered + r.superseded + r.evicted + r.lapped, r.stores,
			     "consumer %d: the four outcomes add up", k);
		cr_assert_eq(r.torn, 0, "consumer %d: nothing torn with a live writer", k);
		cr_assert_eq(r.bad, 0,
			     "consumer %d: a payload failed its seed or its writer's order", k);
		cr_assert_eq(r.seen, r.delivered);
		cr_assert_str_eq(r.state, "closed");
		delivered += r.delivered;
		lapped += r.lapped;
	}
	fprintf(stderr,
		"soak: %u s, %u writers, %u consumers: %llu stores (%.0f/s, %.1f MB/s), "
		"%llu deliveries verified, %llu lapped\n",
		secs, WRITERS, CONSUMERS, (unsigned long long)stores,
		stores * 1000.0 / (double)(elapsed ? elapsed : 1),
		bytes / 1e6 * 1000.0 / (double)(elapsed ? elapsed : 1),
		(unsigned long long)delivered, (unsigned long long)lapped);
}
