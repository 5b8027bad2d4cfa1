/*
 * Hostile peers: a consumer that writes garbage into every byte of the
 * control page, and descriptors that lie about what they are. The
 * coordinator must neither crash, hang nor lose a store, other consumers
 * must still get everything, and a bad descriptor must be refused before
 * anything reads through it.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../consumers/consumer_internal.h"
#include "../coordinator/bridge_internal.h"
#include "serveutil.h"
#include "testutil.h"

static char sock[64];

static void name_socket(void)
{
	snprintf(sock, sizeof(sock), "@sb-hostile-%d", (int)getpid());
}

TestSuite(hostile, .init = name_socket, .timeout = 120);

struct scribbler {
	uint8_t *page; /* the control page, mapped read-write as any consumer has it */
	int stop;
	uint64_t rounds;
	uint64_t seed;
};

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Rewrites the page over and over: random bytes everywhere, then patterns
 * aimed at the fields the coordinator reads (armed, waiting, pids,
 * cursors, heartbeats, the header) with their worst values.
 */
static void *scribble(void *arg)
{
	struct scribbler *s = arg;
	struct sb_ctl *ctl = (struct sb_ctl *)s->page;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		uint64_t r = next_rand(&s->seed);

		switch (r % 4) {
		case 0:
			for (size_t i = 0; i < SB_CTL_SIZE; i += 8) {
				uint64_t v = next_rand(&s->seed);
				memcpy(s->page + i, &v, 8);
			}
			break;
		case 1: /* every slot claims to poll, owned by us, cursor at infinity */
			for (uint32_t i = 0; i < SB_CTL_SLOTS; i++) {
				ctl->slots[i].owner = getpid();
				ctl->slots[i].waiting = SB_CTL_WAIT_POLL;
				ctl->slots[i].cursor = UINT64_MAX;
				ctl->slots[i].heartbeat_ns = UINT64_MAX;
			}
			ctl->armed = 1;
			break;
		case 2: /* pids that are gone, negative, or pid 1 */
			for (uint32_t i = 0; i < SB_CTL_SLOTS; i++) {
				static const int32_t pids[] = { -1, 0, 1, INT32_MAX, INT32_MIN };
				ctl->slots[i].owner = pids[(i + r) % 5];
				ctl->slots[i].waiting = (uint32_t)(r >> 8) + i;
				ctl->slots[i].start_time = r;
			}
			break;
		default: /* clear armed over and over: other consumers' wakes are delayed */
			ctl->armed = 0;
			break;
		}
		__atomic_fetch_add(&s->rounds, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void quiet(void *user, const char *line)
{
	(void)user;
	(void)line;
}

Test(hostile, garbage_in_every_control_page_byte_cannot_stop_stores_or_starve_other_consumers)
{
	struct sb_config cfg;
	struct sb_serve_config sc;
	struct sb_bridge *b;
	struct sb_consumer *evil;
	struct scribbler s = { .seed = 0x9e3779b97f4a7c15ull };
	pthread_t t;
	static uint8_t payload[2048];
	char line[512];
	FILE *out;

	tu_config(&cfg, 64, 256, 4u << 20);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0, "%s", sb_last_error());
	sb_serve_config_default(&sc);
	sc.socket = sock;
	sc.log = quiet;
	sc.heartbeat_ms = 10; /* the serving thread reads the page often */
	cr_assert_eq(sb_bridge_serve(b, &sc), 0, "%s", sb_last_error());

	/* A well-behaved consumer process first, then the vandal. */
	pid_t pid = su_spawn(sock, "drain", "all", &out);
	su_expect_line(out, "attached");
	cr_assert_eq(sb_consumer_connect(sock, 0, &evil), 0, "%s", sb_last_error());
	s.page = (uint8_t *)evil->ctl;
	cr_assert_eq(pthread_create(&t, NULL, scribble, &s), 0);

	const uint64_t stores = 20000;
	for (uint64_t i = 1; i <= stores; i++) {
		char tag[16];
		struct sb_report r = { .schema = "t", .msgpack = payload };

		snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(i % 32));
		r.msgpack_len = tu_report(payload, 64 + i % 1500, i);
		cr_assert_eq(sb_bridge_store(b, tag, &r), 0, "store %llu: %s",
			     (unsigned long long)i, sb_last_error());
		if (i % 1000 == 0) {
			struct sb_consumer_info info[8];
			size_t n;

			/* What the coordinator reports from the page stays bounded. */
			cr_assert_eq(sb_bridge_consumers(b, info, 8, &n), 0);
			cr_assert_leq(n, SB_CTL_SLOTS);
			for (size_t k = 0; k < n && k < 8; k++)
				cr_assert(info[k].lag_valid ? info[k].lag <= i : true);
			usleep(2000);
		}
	}
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	cr_assert_gt(s.rounds, 100, "the page was rewritten throughout (%llu rounds)",
		     (unsigned long long)s.rounds);

	/* A consumer attaching now either works or is refused with a reason: never a crash. */
	struct sb_consumer *late = NULL;
	int rc = sb_consumer_connect(sock, 0, &late);
	cr_assert(rc == 0 || rc == -EBADMSG || rc == -EPROTO || rc == -EBUSY, "rc %d: %s", rc,
		  sb_last_error());
	if (late)
		sb_consumer_close(late);
	sb_consumer_close(evil);
	sb_bridge_destroy(b);

	unsigned long long st, del, sup, ev, lap, torn, seen, bad;
	su_last_line(out, pid, line, sizeof(line));
	cr_assert_eq(sscanf(line,
			    "stores=%llu delivered=%llu superseded=%llu evicted=%llu lapped=%llu "
			    "torn=%llu seen=%llu bad=%llu",
			    &st, &del, &sup, &ev, &lap, &torn, &seen, &bad),
		     8, "consumer said: %s", line);
	cr_assert_eq(st, stores, "the honest consumer accounted for every store: %s", line);
	cr_assert_eq(del + sup + ev + lap + torn, st);
	cr_assert_eq(torn, 0);
	cr_assert_eq(bad, 0, "every delivered byte matches its seed");
	cr_assert_eq(seen, del);
}

/* ---- descriptors that lie ---------------------------------------------------------- */

/* A memfd holding a copy of a live region, resized by delta, sealed like the real one. */
static int forged_region(long delta, unsigned seals)
{
	struct sb_bridge *b;
	size_t size;
	int fd;

	cr_assert_eq(sb_bridge_create(NULL, NULL, &b), 0);
	cr_assert_eq(sb_bridge_data_fd(b, &fd), 0);
	uint8_t *img = tu_read_region(fd, &size);
	close(fd);
	sb_bridge_destroy(b);
	cr_assert_not_null(img);

	int m = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t want = (size_t)((long)size + delta);
	cr_assert_eq(ftruncate(m, (off_t)want), 0);
	cr_assert_eq(pwrite(m, img, want < size ? want : size, 0),
		     (ssize_t)(want < size ? want : size));
	free(img);
	if (seals)
		cr_assert_eq(fcntl(m, F_ADD_SEALS, seals), 0);
	return m;
}

#define ALL_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)

static void expect_refused(int fd, int want, const char *words)
{
	struct sb_consumer *c = (void *)1;

	cr_assert_eq(sb_consumer_open_fd(fd, 0, &c), want, "%s", sb_last_error());
	cr_assert_null(c);
	cr_assert(strstr(sb_last_error(), words), "message: %s", sb_last_error());
}

Test(hostile, a_region_larger_or_smaller_than_its_header_claims_is_refused)
{
	int bigger = forged_region(4096, ALL_SEALS);
	int smaller = forged_region(-4096, ALL_SEALS);

	expect_refused(bigger, -EBADMSG, "region");
	expect_refused(smaller, -EBADMSG, "region");
	close(bigger);
	close(smaller);
}

Test(hostile, a_region_missing_any_one_seal_is_refused)
{
	static const unsigned each[] = { F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_FUTURE_WRITE,
					 F_SEAL_SEAL };

	for (size_t i = 0; i < sizeof(each) / sizeof(each[0]); i++) {
		int fd = forged_region(0, ALL_SEALS & ~each[i]);

		expect_refused(fd, -EPERM, "seal");
		close(fd);
	}
	int ok = forged_region(0, ALL_SEALS);
	struct sb_consumer *c;
	cr_assert_eq(sb_consumer_open_fd(ok, 0, &c), 0, "the same copy with every seal: %s",
		     sb_last_error());
	sb_consumer_close(c);
	close(ok);
}
