/*
 * Consumers isolated from each other and from the writer: one test per
 * way a consumer (or a process posing as a coordinator) used to change
 * what another consumer is told, or what a store costs (issue 14's six
 * findings). Each failed before the control plane was rebuilt; test_hostile
 * has the consumer that does all of it at once.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
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
#include "../ring/clock.h"
#include "../ring/futex.h"
#include "../shm/handover.h"
#include "serveutil.h"
#include "testutil.h"

static char sock[64];

static void name_socket(void)
{
	snprintf(sock, sizeof(sock), "@sb-isolation-%d", (int)getpid());
}

TestSuite(isolation, .init = name_socket, .timeout = 120);

static uint8_t payload[4096];

static void store_seeded(struct sb_bridge *b, const char *tag, size_t n)
{
	uint64_t next = sb_load_relaxed(&b->hot->store_seq) + 1;
	struct sb_report r = { .schema = "t",
			       .msgpack = payload,
			       .msgpack_len = tu_report(payload, n, next) };
	cr_assert_eq(sb_bridge_store(b, tag, &r), 0, "%s", sb_last_error());
}

static struct sb_bridge *serving(uint32_t heartbeat_ms, void (*log)(void *, const char *),
				 void *user)
{
	struct sb_config cfg;
	struct sb_serve_config sc;
	struct sb_bridge *b;

	tu_config(&cfg, 64, 256, 4u << 20);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0, "%s", sb_last_error());
	sb_serve_config_default(&sc);
	sc.socket = sock;
	sc.log = log ? log : su_quiet;
	sc.log_user = user;
	if (heartbeat_ms)
		sc.heartbeat_ms = heartbeat_ms;
	cr_assert_eq(sb_bridge_serve(b, &sc), 0, "%s", sb_last_error());
	return b;
}

/* A hand-over taken by hand, as a hostile consumer would: the socket and both descriptors. */
struct raw {
	int sock;
	int data;
	int page_fd;
	uint8_t *page;
};

static struct raw raw_connect(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct sb_hello h;
	int fds[SB_HELLO_FDS];
	struct raw r;

	r.sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock);
	addr.sun_path[0] = '\0';
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sock));
	cr_assert_eq(connect(r.sock, (struct sockaddr *)&addr, len), 0, "%s", strerror(errno));
	cr_assert_eq(sb__hello_recv(r.sock, 5000, &h, fds), 0, "%s", sb_last_error());
	r.data = fds[SB_HELLO_FD_DATA];
	r.page_fd = fds[SB_HELLO_FD_CTL];
	r.page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, r.page_fd, 0);
	cr_assert_neq(r.page, MAP_FAILED);
	return r;
}

static void raw_close(struct raw *r)
{
	munmap(r->page, 4096);
	close(r->page_fd);
	close(r->data);
	close(r->sock);
}

/* ---- 1. one consumer evicts another ------------------------------------------ */

/* The victim is attached, alive to it, and gets n more stores whole. */
static void victim_unharmed(struct sb_bridge *b, struct sb_consumer *victim, int n)
{
	enum sb_coord_state cs;
	enum sb_wait_status st;
	struct sb_drain_counts d;

	cr_assert_eq(sb_consumer_coordinator(victim, &cs), 0);
	cr_assert_eq(cs, SB_COORD_ALIVE, "the victim's coordinator is alive and it knows");
	for (int i = 0; i < n; i++)
		store_seeded(b, i % 2 ? "x" : "y", 1000);
	cr_assert_eq(sb_consumer_drain(victim, NULL, NULL, &d), 0, "%s", sb_last_error());
	cr_assert_eq(d.stores, (uint64_t)n);
	cr_assert_eq(d.torn, 0, "nothing in flight is torn: the writer lives");
	struct sb_events ev;
	cr_assert_eq(sb_consumer_drain_events(victim, &ev), 0); /* the overwrites' events */
	sb_events_free(&ev);
	cr_assert_eq(sb_consumer_wait(victim, 0, &st), 0);
	cr_assert_eq(st, SB_WAIT_TIMEOUT, "caught up, alive, nothing new");
}

Test(isolation, consumer_that_zeroes_punches_and_truncates_its_page_cannot_evict_another)
{
	struct sb_bridge *b = serving(0, NULL, NULL);
	struct sb_consumer *victim = su_caught_up(sock), *late[3];
	struct raw evil = raw_connect();
	enum sb_wait_status st;
	size_t n;

	/* Zero all but the page's first line (where slot owners used to be), then attach twice. */
	memset(evil.page + 64, 0, 4096 - 64);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(sb_consumer_connect(sock, 0, &late[i]), 0, "%s", sb_last_error());
	victim_unharmed(b, victim, 200);

	/* Everything else a consumer can do to the page it was handed, then attach again. */
	memset(evil.page, 0xff, 4096);
	cr_assert_eq(fallocate(evil.page_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096),
		     0, "a hole can be punched: %s", strerror(errno));
	errno = 0;
	cr_assert_eq(ftruncate(evil.page_fd, 0), -1, "it cannot be shrunk");
	cr_assert_eq(errno, EPERM);
	cr_assert_eq(ftruncate(evil.page_fd, 1 << 20), -1, "nor grown");
	cr_assert_eq(fcntl(evil.page_fd, F_ADD_SEALS, F_SEAL_WRITE), -1, "nor sealed");
	cr_assert_eq(sb_consumer_connect(sock, 0, &late[2]), 0, "%s", sb_last_error());
	cr_assert_eq(sb_bridge_consumers(b, NULL, 0, &n), 0);
	cr_assert_eq(n, 5, "the victim, the vandal and three newcomers are attached");
	victim_unharmed(b, victim, 200);

	raw_close(&evil);
	for (int i = 0; i < 3; i++)
		sb_consumer_close(late[i]);
	sb_bridge_destroy(b);
	cr_assert_eq(sb_consumer_wait(victim, 5000, &st), 0);
	cr_assert_eq(st, SB_WAIT_CLOSED);
	sb_consumer_close(victim);
}

/* ---- 2. consumers set the writer's latency ------------------------------------- */

struct sleeper {
	const uint32_t *word;
	int stop;
	int asleep;
	int woken; /* FUTEX_WAIT returned 0: someone called FUTEX_WAKE on the word */
};

static void *sleep_on_word(void *arg)
{
	struct sleeper *s = arg;
	const struct timespec slice = { 0, 100 * 1000000 };

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		uint32_t v = __atomic_load_n(s->word, __ATOMIC_ACQUIRE);
		__atomic_store_n(&s->asleep, 1, __ATOMIC_RELEASE);
		if (sb__futex_wait(s->word, v, &slice) == 0)
			__atomic_fetch_add(&s->woken, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

struct waiter {
	struct sb_consumer *c;
	enum sb_wait_status st;
};

static void *wait_once(void *arg)
{
	struct waiter *w = arg;

	sb_consumer_wait(w->c, 20000, &w->st);
	return NULL;
}

static bool waiting(struct sb_bridge *b)
{
	struct sb_consumer_info info[8];
	size_t n;
	bool any = false;

	cr_assert_eq(sb_bridge_consumers(b, info, 8, &n), 0);
	for (size_t i = 0; i < n && i < 8; i++)
		any |= info[i].waiting;
	return any;
}

static void until_waiting(struct sb_bridge *b)
{
	uint64_t until = su_now_ms() + 10000;

	while (!waiting(b) && su_now_ms() < until)
		usleep(1000);
	cr_assert(waiting(b), "the consumer never armed");
}

Test(isolation, no_publication_wakes_a_thread_a_consumer_put_to_sleep_on_the_data_region)
{
	struct sb_bridge *b = serving(0, NULL, NULL);
	struct sb_consumer *evil = su_caught_up(sock);
	/* One sleeper on every word of the header's live line and of the hot words. */
	const struct sb_header *hdr = (const struct sb_header *)evil->base;
	const uint32_t *hot = (const uint32_t *)evil->hot;
	size_t nhot = sizeof(struct sb_hot) / 4, nlive = 64 / 4;
	size_t n = nhot + nlive;
	struct sleeper *s = calloc(n, sizeof(*s));
	pthread_t *t = calloc(n, sizeof(*t));
	pthread_attr_t small;

	pthread_attr_init(&small);
	pthread_attr_setstacksize(&small, 64 << 10);
	for (size_t i = 0; i < n; i++) {
		s[i].word = i < nhot ? &hot[i] : (const uint32_t *)&hdr->heartbeat_ns + (i - nhot);
		cr_assert_eq(pthread_create(&t[i], &small, sleep_on_word, &s[i]), 0);
	}
	for (size_t i = 0; i < n; i++)
		while (!__atomic_load_n(&s[i].asleep, __ATOMIC_ACQUIRE))
			usleep(1000);
	usleep(50000);

	/* Honest waiters are woken, by stores, events and accessor transitions. */
	struct waiter w = { .c = su_caught_up(sock) };
	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	for (int round = 0; round < 20; round++) {
		pthread_t wt;
		bool stored;
		pthread_create(&wt, NULL, wait_once, &w);
		until_waiting(b);
		if (round % 3 == 2)
			cr_assert_eq(sb_bridge_capture(b, "none", &stored), 0); /* an event alone */
		else
			store_seeded(b, "wake", 200);
		cr_assert_eq(sb_bridge_accessor_publish(b, NULL), 0);
		pthread_join(wt, NULL);
		cr_assert_eq(w.st, SB_WAIT_READY, "round %d", round);
		cr_assert_eq(sb_consumer_drain(w.c, NULL, NULL, NULL), 0);
		struct sb_events ev;
		cr_assert_eq(sb_consumer_drain_events(w.c, &ev), 0);
		sb_events_free(&ev);
	}
	int woken = 0;
	for (size_t i = 0; i < n; i++) {
		__atomic_store_n(&s[i].stop, 1, __ATOMIC_RELEASE);
		pthread_join(t[i], NULL);
		woken += s[i].woken;
	}
	cr_assert_eq(woken, 0,
		     "%d FUTEX_WAKEs reached threads asleep on data-region words: "
		     "a consumer could make every store wake its thousands of threads",
		     woken);
	cr_assert_geq(sb_load_relaxed(&b->hot->wakes), 1, "the honest waiter was kicked for");
	free(s);
	free(t);
	sb_consumer_close(w.c);
	sb_consumer_close(evil);
	sb_bridge_destroy(b);
}

/* ---- 3. pollers can be starved ------------------------------------------------- */

struct vandal {
	uint8_t *page;
	int stop;
	uint64_t rounds;
};

static void *rewrite_page(void *arg)
{
	struct vandal *v = arg;

	while (!__atomic_load_n(&v->stop, __ATOMIC_ACQUIRE)) {
		/* What used to be the shared armed word and every slot's waiting word. */
		memset(v->page + 64, 0, 4096 - 64);
		__atomic_fetch_add(&v->rounds, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

Test(isolation, poller_is_woken_whatever_another_consumer_writes)
{
	struct sb_bridge *b = serving(0, NULL, NULL);
	struct sb_consumer *p = su_caught_up(sock);
	struct raw evil = raw_connect();
	struct vandal v = { .page = evil.page };
	enum sb_wait_status st;
	pthread_t t;
	int fd;

	cr_assert_eq(sb_consumer_pollfd(p, &fd), 0);
	cr_assert_eq(pthread_create(&t, NULL, rewrite_page, &v), 0);
	for (int round = 0; round < 20; round++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		cr_assert_eq(sb_consumer_arm(p, &st), 0, "%s", sb_last_error());
		cr_assert_eq(st, SB_WAIT_ARMED, "round %d: status %d", round, st);
		until_waiting(b);
		store_seeded(b, "polled", 100);
		/* Generous: the bound is one heartbeat (100 ms); starvation used to be forever. */
		cr_assert_eq(poll(&pfd, 1, 10000), 1,
			     "round %d: the store never reached the poller", round);
		cr_assert_eq(sb_consumer_arm(p, &st), 0);
		cr_assert_eq(st, SB_WAIT_READY);
		struct sb_events ev;
		cr_assert_eq(sb_consumer_drain(p, NULL, NULL, NULL), 0);
		cr_assert_eq(sb_consumer_drain_events(p, &ev), 0); /* its overwrite event */
		sb_events_free(&ev);
	}
	__atomic_store_n(&v.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	cr_assert_gt(v.rounds, 20, "the page was rewritten throughout");
	raw_close(&evil);
	sb_consumer_close(p);
	sb_bridge_destroy(b);
}

/* ---- 4. who serves the socket ---------------------------------------------------- */

/* A process of another uid that binds sock first and serves a region of its own. */
static pid_t impostor(uid_t uid, int *ready)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct sb_bridge *b;
		struct sb_serve_config sc;

		close(p[0]);
		if (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0)
			_exit(3);
		if (sb_bridge_create(NULL, NULL, &b) != 0)
			_exit(4);
		sb_serve_config_default(&sc);
		sc.socket = sock;
		sc.log = su_quiet;
		sc.allowed_gid = 0; /* it lets root in, and hands over a region of its making */
		if (sb_bridge_serve(b, &sc) != 0)
			_exit(5);
		(void)!write(p[1], "r", 1);
		pause();
		_exit(0);
	}
	close(p[1]);
	*ready = p[0];
	return pid;
}

Test(isolation, consumer_refuses_a_socket_served_by_another_uid)
{
	struct sb_consumer *c = NULL;
	struct sb_connect_config cfg;
	int ready;
	char byte;

	if (geteuid() != 0)
		cr_skip_test("needs root to run the impostor as another uid");
	pid_t pid = impostor(65534, &ready);
	cr_assert_eq(read(ready, &byte, 1), 1, "the impostor serves");
	int rc = sb_consumer_connect(sock, 0, &c);
	cr_assert_eq(rc, -EACCES, "rc %d: %s", rc, sb_last_error());
	cr_assert_null(c);
	cr_assert(strstr(sb_last_error(), "served by uid 65534"), "%s", sb_last_error());
	/* Naming the uid is how a consumer attaches to another user's coordinator. */
	sb_connect_config_default(&cfg);
	cfg.expect_uid = 65534;
	cr_assert_eq(sb_consumer_connect_with(sock, &cfg, &c), 0, "%s", sb_last_error());
	sb_consumer_close(c);
	cfg.expect_uid = 1234;
	cr_assert_eq(sb_consumer_connect_with(sock, &cfg, &c), -EACCES);
	cr_assert(strstr(sb_last_error(), "not the expected uid 1234"), "%s", sb_last_error());
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(ready);
}

/* ---- 5. a connection flood stalls serving ----------------------------------------- */

static void count_line(void *user, const char *line)
{
	(void)line;
	__atomic_fetch_add((int *)user, 1, __ATOMIC_RELAXED);
}

/* A process of another uid connecting and hanging up as fast as it can, for ms. */
static pid_t flooder(uid_t uid, int ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct sockaddr_un addr = { .sun_family = AF_UNIX };
		socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sock));

		if (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0)
			_exit(3);
		snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock);
		addr.sun_path[0] = '\0';
		uint64_t until = su_now_ms() + (uint64_t)ms;
		while (su_now_ms() < until) {
			int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
			(void)connect(fd, (struct sockaddr *)&addr, len);
			close(fd);
		}
		_exit(0);
	}
	return pid;
}

Test(isolation, flood_of_refused_connections_keeps_the_beat_and_the_log_short)
{
	int lines = 0;
	struct sb_bridge *b = serving(50, count_line, &lines);
	struct sb_consumer *c;
	uint64_t worst = 0;

	if (geteuid() != 0) {
		sb_bridge_destroy(b);
		cr_skip_test("needs root to flood as another uid");
	}
	pid_t pids[2] = { flooder(65534, 2000), flooder(65534, 2000) };
	uint64_t start = su_now_ms();
	while (su_now_ms() < start + 2000) {
		uint64_t beat = sb_load_relaxed(&b->hdr->heartbeat_ns);
		uint64_t now = sb__mono_ns();
		if (now > beat && now - beat > worst)
			worst = now - beat;
		usleep(1000);
	}
	/* An honest consumer still gets in while the flood goes on or right after. */
	cr_assert_eq(sb_consumer_connect(sock, 0, &c), 0, "%s", sb_last_error());
	for (int i = 0; i < 2; i++)
		waitpid(pids[i], NULL, 0);
	uint64_t elapsed_s = (su_now_ms() - start) / 1000 + 1;
	int seen = __atomic_load_n(&lines, __ATOMIC_RELAXED);
	/* 5 lines a second, one count line per second, one more window at each end. */
	cr_assert_leq(seen, (int)(6 * (elapsed_s + 2)), "%d log lines in about %llu s of refusals",
		      seen, (unsigned long long)elapsed_s);
	cr_assert_gt(seen, 0, "the refusals were logged");
	/* Generous (20 periods of 50 ms); a flood used to stall the beat for seconds. */
	cr_assert_lt(worst, 1000000000ull, "the heartbeat went %llu ms without a beat",
		     (unsigned long long)(worst / 1000000));
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

/* ---- 6. an image of a live coordinator never reports gone ---------------------------- */

static void save_image(const struct sb_consumer *c, const char *path)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(c->base, 1, c->size, f), c->size);
	fclose(f);
}

Test(isolation, image_reports_gone_at_once_and_its_wait_returns)
{
	struct sb_bridge *b = serving(0, NULL, NULL);
	struct sb_consumer *c = su_caught_up(sock), *img;
	enum sb_coord_state cs;
	enum sb_wait_status st;
	struct sb_drain_counts d;
	char path[64];

	snprintf(path, sizeof(path), "/tmp/sb-isolation-%d.img", (int)getpid());
	for (int i = 0; i < 10; i++)
		store_seeded(b, "img", 100);
	save_image(c, path); /* the coordinator lives on */
	cr_assert_eq(sb_consumer_open_image(path, 0, &img), 0, "%s", sb_last_error());
	cr_assert_eq(sb_consumer_coordinator(img, &cs), 0);
	cr_assert_eq(cs, SB_COORD_DEAD, "nothing will ever be added to an image");
	cr_assert_eq(sb_consumer_wait(img, 5000, &st), 0);
	cr_assert_eq(st, SB_WAIT_READY, "what it holds comes first");
	cr_assert_eq(sb_consumer_drain(img, NULL, NULL, &d), 0);
	cr_assert_eq(d.stores, 10);
	cr_assert_eq(sb_consumer_wait(img, -1, &st), 0, "an unbounded wait returns");
	cr_assert_eq(st, SB_WAIT_DEAD);
	sb_consumer_close(img);

	sb_bridge_destroy(b);
	save_image(c, path); /* after a clean close */
	cr_assert_eq(sb_consumer_open_image(path, 0, &img), 0, "%s", sb_last_error());
	cr_assert_eq(sb_consumer_coordinator(img, &cs), 0);
	cr_assert_eq(cs, SB_COORD_CLOSED);
	cr_assert_eq(sb_consumer_drain(img, NULL, NULL, &d), 0);
	cr_assert_eq(sb_consumer_wait(img, -1, &st), 0);
	cr_assert_eq(st, SB_WAIT_CLOSED);
	sb_consumer_close(img);
	sb_consumer_close(c);
	unlink(path);
}

/* ---- a hang-up is not death -------------------------------------------------------- */

Test(isolation, consumer_the_coordinator_hangs_up_on_knows_it_lives_and_still_waits)
{
	struct sb_bridge *b = serving(0, NULL, NULL);
	struct sb_consumer *c = su_caught_up(sock);
	enum sb_coord_state cs;
	enum sb_wait_status st;
	size_t n;

	/* Something that is not an arm: the coordinator drops this consumer. */
	cr_assert_eq(send(c->conn_fd, "junk", 4, 0), 4);
	for (uint64_t until = su_now_ms() + 10000; su_now_ms() < until; usleep(1000)) {
		cr_assert_eq(sb_bridge_consumers(b, NULL, 0, &n), 0);
		if (n == 0)
			break;
	}
	cr_assert_eq(n, 0, "it was hung up on");
	cr_assert_eq(sb_consumer_coordinator(c, &cs), 0);
	cr_assert_eq(cs, SB_COORD_ALIVE, "a hang-up alone is not death: the pidfd says alive");
	cr_assert(c->disconnected);
	cr_assert_eq(sb_consumer_arm(c, &st), -ENOTCONN, "nothing would wake a poller");
	store_seeded(b, "after", 100);
	cr_assert_eq(sb_consumer_wait(c, 10000, &st), 0);
	cr_assert_eq(st, SB_WAIT_READY, "its waits look in slices now");
	struct sb_drain_counts d;
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, &d), 0);
	cr_assert_eq(d.stores, 1);
	cr_assert_eq(d.torn, 0);
	sb_bridge_destroy(b);
	cr_assert_eq(sb_consumer_wait(c, 10000, &st), 0);
	cr_assert_eq(st, SB_WAIT_CLOSED);
	sb_consumer_close(c);
}
