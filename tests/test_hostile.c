/*
 * Hostile peers: a consumer process that does everything a consumer can
 * to the coordinator and to the other consumers at once, and descriptors
 * that lie about what they are. The coordinator must neither crash, hang
 * nor lose a store; honest consumers must get everything, in time, and
 * never be told their coordinator died; a bad descriptor must be refused
 * before anything reads through it.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../consumers/consumer_internal.h"
#include "../coordinator/bridge_internal.h"
#include "../ring/futex.h"
#include "../shm/handover.h"
#include "serveutil.h"
#include "testutil.h"

static char sock[64];

static void name_socket(void)
{
	snprintf(sock, sizeof(sock), "@sb-hostile-%d", (int)getpid());
}

TestSuite(hostile, .init = name_socket, .timeout = 240);

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- the vandal: a consumer process that does all of it at once ------------------ */

/* Threads the vandal puts to sleep: on every hot word and live header word, and its bell. */
#define VANDAL_SLEEPERS 2000
#define VANDAL_HELD	20 /* connections it holds open, besides the churn */

static int dial(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sock));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock);
	addr.sun_path[0] = '\0';
	if (connect(fd, (struct sockaddr *)&addr, len) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct vandal {
	int sock;
	int page_fd;
	uint8_t *page;
	const uint8_t *data;
	size_t data_size;
	const uint32_t *words[VANDAL_SLEEPERS];
};

static void *sleep_forever(void *arg)
{
	const uint32_t *w = arg;

	for (;;)
		sb__futex_wait(w, __atomic_load_n(w, __ATOMIC_RELAXED), NULL);
	return NULL;
}

/* Rewrites, punches, tries to truncate and reseal its page, over and over. */
static void *vandalise_page(void *arg)
{
	struct vandal *v = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	for (;;) {
		uint64_t r = next_rand(&seed);
		switch (r % 4) {
		case 0:
			for (size_t i = 0; i < 4096; i += 8) {
				uint64_t x = next_rand(&seed);
				memcpy(v->page + i, &x, 8);
			}
			break;
		case 1:
			(void)fallocate(v->page_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
					4096);
			break;
		case 2:
			(void)!ftruncate(v->page_fd, (off_t)(r % 3) * 4096);
			(void)fcntl(v->page_fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_FUTURE_WRITE);
			break;
		default:
			memset(v->page, (int)(r >> 8), 4096);
			break;
		}
	}
	return NULL;
}

/* Arms with whatever positions and modes, as fast as the socket takes them. */
static void *arm_and_disarm(void *arg)
{
	struct vandal *v = arg;
	uint64_t seed = 0x2545f4914f6cdd1dull;

	for (;;) {
		struct sb_arm a;
		uint64_t r = next_rand(&seed);
		sb__arm_init(&a, r & 1 ? SB_ARM_FUTEX : SB_ARM_POLL,
			     1u + (uint32_t)((r >> 1) % SB_WAKE_CHANS));
		a.rec_pos = (r >> 8) % 3 ? next_rand(&seed) : 0;
		a.ev_cursor = next_rand(&seed);
		a.aux_pos = r >> 20;
		a.accessor_gen = (uint32_t)r;
		if (send(v->sock, &a, sizeof(a), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			char sink[64];
			while (recv(v->sock, sink, sizeof(sink), MSG_DONTWAIT) > 0)
				; /* wake bytes: read them, so the arms keep going */
			usleep(10);
		}
	}
	return NULL;
}

/* Connects and hangs up in a loop, and holds a few connections besides. */
static void *flood_connections(void *arg)
{
	(void)arg;
	int held[VANDAL_HELD];

	for (int i = 0; i < VANDAL_HELD; i++)
		held[i] = dial();
	for (uint64_t n = 0;; n++) {
		int fd = dial();
		if (fd >= 0)
			close(fd);
		if (n % 64 == 0) {
			int k = (int)(n / 64 % VANDAL_HELD);
			if (held[k] >= 0)
				close(held[k]);
			held[k] = dial();
		}
	}
	return NULL;
}

/* The vandal's whole life: attach, start everything, say "ready", run until killed. */
static void vandal_main(int ready)
{
	static struct vandal v;
	struct sb_hello h;
	int fds[SB_HELLO_FDS];
	pthread_attr_t small;
	pthread_t t;

	v.sock = dial();
	if (v.sock < 0 || sb__hello_recv(v.sock, 5000, &h, fds) != 0)
		_exit(3);
	v.page_fd = fds[SB_HELLO_FD_CTL];
	v.page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, v.page_fd, 0);
	v.data_size = h.data_size;
	v.data = mmap(NULL, v.data_size, PROT_READ, MAP_SHARED, fds[SB_HELLO_FD_DATA], 0);
	if (v.page == MAP_FAILED || v.data == MAP_FAILED)
		_exit(4);
	const struct sb_header *hdr = (const struct sb_header *)v.data;
	const uint32_t *hot = (const uint32_t *)(v.data + hdr->sections[SB_SEC_HOT].offset);
	size_t nhot = sizeof(struct sb_hot) / 4;
	const uint32_t *live = (const uint32_t *)&hdr->heartbeat_ns;
	pthread_attr_init(&small);
	pthread_attr_setstacksize(&small, 32 << 10);
	for (size_t i = 0; i < VANDAL_SLEEPERS; i++) {
		const uint32_t *w;
		if (i < 2 * nhot)
			w = &hot[i % nhot];
		else if (i < 2 * nhot + 16)
			w = &live[i - 2 * nhot];
		else
			w = (const uint32_t *)(v.page + 64); /* its bell */
		if (pthread_create(&t, &small, sleep_forever, (void *)w) != 0)
			_exit(5);
	}
	if (pthread_create(&t, NULL, vandalise_page, &v) ||
	    pthread_create(&t, NULL, arm_and_disarm, &v) ||
	    pthread_create(&t, NULL, flood_connections, &v))
		_exit(6);
	(void)!write(ready, "r", 1);
	for (;;)
		pause();
}

static struct su_result follow_result(FILE *f, pid_t pid, unsigned long long *late)
{
	struct su_result r = { 0 };
	char line[512];

	su_last_line(f, pid, line, sizeof(line));
	int n = sscanf(line,
		       "stores=%llu delivered=%llu superseded=%llu evicted=%llu lapped=%llu "
		       "torn=%llu seen=%llu bad=%llu waits=%llu late=%llu state=%15s",
		       &r.stores, &r.delivered, &r.superseded, &r.evicted, &r.lapped, &r.torn,
		       &r.seen, &r.bad, &r.waits, late, r.state);
	cr_assert_eq(n, 11, "unexpected result line: %s", line);
	return r;
}

/* Until every honest consumer claims to have accounted for all stores. */
static void until_caught_up(struct sb_bridge *b, const pid_t *pids, int n, uint64_t stores)
{
	uint64_t until = su_now_ms() + 60000;
	struct sb_consumer_info info[64];
	int done = 0;
	size_t k;

	while (done < n && su_now_ms() < until) {
		usleep(5000);
		cr_assert_eq(sb_bridge_consumers(b, info, 64, &k), 0);
		done = 0;
		for (size_t i = 0; i < k && i < 64; i++)
			for (int j = 0; j < n; j++)
				done += info[i].pid == pids[j] && info[i].cursor == stores;
	}
	cr_assert_eq(done, n, "the honest consumers caught up");
}

Test(hostile, vandal_consumer_changes_nothing_for_honest_consumers_or_the_writer)
{
	struct sb_config cfg;
	struct sb_serve_config sc;
	struct sb_bridge *b;
	static uint8_t payload[2048];
	const uint64_t stores = 5000;
	FILE *out[2];
	pid_t honest[2];
	int ready[2];
	char byte;

	tu_config(&cfg, 64, 256, 8u << 20);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0, "%s", sb_last_error());
	sb_serve_config_default(&sc);
	sc.socket = sock;
	sc.log = su_quiet;
	sc.heartbeat_ms = 50;
	cr_assert_eq(sb_bridge_serve(b, &sc), 0, "%s", sb_last_error());

	/* Two honest consumer processes, one asleep in its waits and one polling. */
	honest[0] = su_spawn(sock, "follow", "", &out[0]);
	honest[1] = su_spawn(sock, "follow", "poll", &out[1]);
	for (int i = 0; i < 2; i++)
		su_expect_line(out[i], "attached");
	cr_assert_eq(pipe(ready), 0);
	pid_t vandal = fork();
	if (vandal == 0) {
		close(ready[0]);
		vandal_main(ready[1]);
	}
	close(ready[1]);
	cr_assert_eq(read(ready[0], &byte, 1), 1, "the vandal is at work");
	close(ready[0]);

	for (uint64_t i = 1; i <= stores; i++) {
		char tag[16];
		struct sb_report r = { .schema = "t", .msgpack = payload };

		snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(i % 50));
		r.msgpack_len = tu_report(payload, 64 + (i * 7) % 1500, i);
		cr_assert_eq(sb_bridge_store(b, tag, &r), 0, "store %llu: %s",
			     (unsigned long long)i, sb_last_error());
		if (i % 10 == 0)
			usleep(1000); /* let the honest consumers fall asleep, often */
		if (i == stores / 2) {
			size_t n;
			cr_assert_eq(sb_bridge_consumers(b, NULL, 0, &n), 0);
			cr_assert_gt(n, 2 + VANDAL_HELD / 2, "the vandal holds connections (%zu)",
				     n);
		}
	}
	until_caught_up(b, honest, 2, stores);
	kill(vandal, SIGKILL);
	waitpid(vandal, NULL, 0);
	sb_bridge_destroy(b);

	for (int i = 0; i < 2; i++) {
		unsigned long long late;
		struct su_result r = follow_result(out[i], honest[i], &late);

		cr_assert_str_eq(r.state, "closed",
				 "consumer %d was never told its coordinator died", i);
		cr_assert_eq(r.stores, stores, "consumer %d accounted for every store", i);
		cr_assert_eq(r.delivered + r.superseded + r.evicted + r.lapped + r.torn, stores);
		cr_assert_eq(r.torn, 0);
		cr_assert_eq(r.bad, 0, "every delivered byte matches its seed, in store order");
		cr_assert_eq(r.seen, r.delivered);
		cr_assert_eq(late, 0,
			     "consumer %d: %llu waits of 5 s ended with news pending (the bound is "
			     "50 ms asleep, one 50 ms heartbeat polling)",
			     i, late);
		cr_assert_gt(r.waits, 100, "consumer %d slept and was woken (%llu waits)", i,
			     r.waits);
	}
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
