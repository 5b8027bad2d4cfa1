/*
 * Serving consumers in other processes: the socket hand-over, who is let
 * in, what a consumer can and cannot do with what it gets, wake-ups,
 * liveness, and what survives a SIGKILL on either side. Consumers are
 * real processes (fork + exec of sb_test_consumer) or, where a test needs
 * to look inside, the test process itself.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../consumers/consumer_internal.h"
#include "../coordinator/bridge_internal.h"
#include "../ring/futex.h"
#include "../shm/handover.h"
#include "serveutil.h"
#include "testutil.h"

static char dir[64];
static char sock[100];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/sbtest.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/coord.sock", dir);
}

static void remove_dir(void)
{
	char lock[160];

	snprintf(lock, sizeof(lock), "%s.lock", sock);
	unlink(sock);
	unlink(lock);
	rmdir(dir);
}

TestSuite(serve, .init = make_dir, .fini = remove_dir, .timeout = 60);

static uint8_t payload[8192];

/* Store a report whose bytes are seeded by the store_seq it will get. */
static void store_seeded(struct sb_bridge *b, const char *tag, size_t n)
{
	uint64_t next = sb_load_relaxed(&b->hot->store_seq) + 1;
	struct sb_report r = { .schema = "t",
			       .msgpack = payload,
			       .msgpack_len = tu_report(payload, n, next) };
	cr_assert_eq(sb_bridge_store(b, tag, &r), 0, "%s", sb_last_error());
}

static void quiet(void *user, const char *line)
{
	(void)user;
	(void)line;
}

/* Serve with a heartbeat of beat_ms (0: the default). */
static struct sb_bridge *serving_bridge_beat(const char *name, uint64_t log_bytes, uint32_t beat_ms)
{
	struct sb_config cfg;
	struct sb_serve_config sc;
	struct sb_bridge *b;

	tu_config(&cfg, 64, 256, log_bytes);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0, "%s", sb_last_error());
	sb_serve_config_default(&sc);
	sc.socket = name;
	sc.log = quiet;
	if (beat_ms)
		sc.heartbeat_ms = beat_ms;
	cr_assert_eq(sb_bridge_serve(b, &sc), 0, "%s", sb_last_error());
	return b;
}

static struct sb_bridge *serving_bridge(const char *name, uint64_t log_bytes)
{
	return serving_bridge_beat(name, log_bytes, 0);
}

static pid_t spawn_consumer(const char *mode, const char *arg, FILE **out)
{
	return su_spawn(sock, mode, arg, out);
}

/* ---- hand-over ---------------------------------------------------------- */

Test(serve, three_consumer_processes_drain_everything_in_order_with_exact_accounting)
{
	struct sb_bridge *b = serving_bridge(sock, 8u << 20);
	FILE *out[3];
	pid_t pid[3];
	char tag[16];

	for (int i = 0; i < 3; i++) {
		pid[i] = spawn_consumer("drain", i == 0 ? "all" : "", &out[i]);
		su_expect_line(out[i], "attached");
	}
	su_wait_attached(b, 3);
	for (int s = 1; s <= 3000; s++) {
		snprintf(tag, sizeof(tag), "t%d", s % 100);
		store_seeded(b, tag, 100 + (size_t)(s * 7) % 2000);
	}
	sb_bridge_destroy(b);
	for (int i = 0; i < 3; i++) {
		struct su_result r = su_drain_result(out[i], pid[i]);

		cr_assert_str_eq(r.state, "closed");
		cr_assert_eq(r.stores, 3000, "consumer %d accounted for %llu stores", i, r.stores);
		cr_assert_eq(r.delivered + r.superseded + r.evicted + r.lapped + r.torn, 3000);
		cr_assert_eq(r.bad, 0, "every delivered byte matches its seed, in order");
		cr_assert_eq(r.seen, r.delivered);
		cr_assert_eq(r.lapped + r.torn, 0, "an 8 MiB log holds all 3000 stores");
		if (i == 0)
			cr_assert_eq(r.delivered, 3000, "all-versions mode delivers every store");
		else
			cr_assert_geq(r.delivered, 64, "at least the final resident set");
	}
}

Test(serve, socket_file_is_private_to_the_coordinators_uid)
{
	struct stat st;
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);

	cr_assert_eq(stat(sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600);
	sb_bridge_destroy(b);
	cr_assert_eq(stat(sock, &st), -1, "a clean shutdown removes the socket");
}

Test(serve, empty_socket_path_and_foreign_lock_files_are_refused_and_kept)
{
	struct sb_bridge *b;
	struct sb_serve_config sc;
	char lock[160];
	struct stat st;

	cr_assert_eq(sb_bridge_create(NULL, NULL, &b), 0);
	sb_serve_config_default(&sc);
	sc.socket = "";
	cr_assert_eq(sb_bridge_serve(b, &sc), -EINVAL);
	snprintf(lock, sizeof(lock), "%s.lock", sock);
	int fd = open(lock, O_CREAT | O_WRONLY, 0600);
	cr_assert_eq(write(fd, "mine", 4), 4);
	close(fd);
	sc.socket = sock;
	cr_assert_eq(sb_bridge_serve(b, &sc), -EEXIST);
	cr_assert(strstr(sb_last_error(), "not a snapbridge lock file"), "%s", sb_last_error());
	sb_bridge_destroy(b);
	cr_assert_eq(stat(lock, &st), 0, "somebody else's file survives");
	cr_assert_eq(st.st_size, 4);
}

Test(serve, live_coordinators_socket_is_never_taken_over)
{
	struct sb_bridge *a = serving_bridge(sock, SB_LOG_BYTES_MIN), *b;
	struct sb_serve_config sc;
	struct sb_consumer *c;

	cr_assert_eq(sb_bridge_create(NULL, NULL, &b), 0);
	sb_serve_config_default(&sc);
	sc.socket = sock;
	cr_assert_eq(sb_bridge_serve(b, &sc), -EADDRINUSE);
	cr_assert(strstr(sb_last_error(), "live coordinator"), "%s", sb_last_error());
	/* The first coordinator still owns it and still serves. */
	cr_assert_eq(sb_consumer_connect(sock, 0, &c), 0, "%s", sb_last_error());
	sb_consumer_close(c);
	sb_bridge_destroy(b);
	sb_bridge_destroy(a);
}

Test(serve, stale_socket_of_a_killed_coordinator_is_replaced)
{
	int ready[2];
	char byte;

	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	if (pid == 0) {
		serving_bridge(sock, SB_LOG_BYTES_MIN);
		(void)!write(ready[1], "r", 1);
		pause();
	}
	cr_assert_eq(read(ready[0], &byte, 1), 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	struct stat st;
	cr_assert_eq(stat(sock, &st), 0, "the dead coordinator left its socket behind");

	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c;
	cr_assert_eq(sb_consumer_connect(sock, 0, &c), 0, "%s", sb_last_error());
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(serve, path_that_is_not_a_socket_is_never_removed)
{
	struct sb_bridge *b;
	struct sb_serve_config sc;
	struct stat st;
	int fd = open(sock, O_CREAT | O_WRONLY, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "keep", 4), 4);
	close(fd);
	cr_assert_eq(sb_bridge_create(NULL, NULL, &b), 0);
	sb_serve_config_default(&sc);
	sc.socket = sock;
	cr_assert_eq(sb_bridge_serve(b, &sc), -EEXIST);
	cr_assert(strstr(sb_last_error(), "not a socket"), "%s", sb_last_error());
	cr_assert_eq(stat(sock, &st), 0);
	cr_assert_eq(st.st_size, 4);
	sb_bridge_destroy(b);
}

/* A child with another uid tries to connect; returns what connect said. */
static int connect_as(uid_t uid, gid_t gid, const char *name, char *why, size_t cap)
{
	int p[2];
	struct {
		int rc;
		char msg[256];
	} res = { 0 };

	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct sb_consumer *c;
		if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
			_exit(3);
		res.rc = sb_consumer_connect(name, 0, &c);
		snprintf(res.msg, sizeof(res.msg), "%s", sb_last_error());
		(void)!write(p[1], &res, sizeof(res));
		_exit(0);
	}
	close(p[1]);
	cr_assert_eq(read(p[0], &res, sizeof(res)), (ssize_t)sizeof(res));
	close(p[0]);
	waitpid(pid, NULL, 0);
	snprintf(why, cap, "%s", res.msg);
	return res.rc;
}

Test(serve, peer_with_another_uid_is_refused_with_the_reason)
{
	char why[256], name[64];

	if (geteuid() != 0)
		cr_skip_test("needs root to run a peer as another uid");
	/* An abstract name has no file permissions: only SO_PEERCRED stands in the way. */
	snprintf(name, sizeof(name), "@sbtest-%d", getpid());
	struct sb_bridge *b = serving_bridge(name, SB_LOG_BYTES_MIN);
	int rc = connect_as(65534, 65534, name, why, sizeof(why));

	cr_assert_eq(rc, -EACCES, "rc %d: %s", rc, why);
	cr_assert(strstr(why, "uid 65534 is not the coordinator's uid 0"), "%s", why);
	cr_assert_eq(su_attached(b), 0, "a refused peer holds no slot");
	/* Through the 0600 socket file it does not even reach the coordinator. */
	struct sb_bridge *b2 = serving_bridge(sock, SB_LOG_BYTES_MIN);
	cr_assert_eq(connect_as(65534, 65534, sock, why, sizeof(why)), -EACCES);
	sb_bridge_destroy(b2);
	sb_bridge_destroy(b);
}

Test(serve, allowed_group_admits_its_members_and_opens_the_socket_file_to_it)
{
	struct sb_bridge *b;
	struct sb_serve_config sc;
	struct stat st;
	char why[256];

	if (geteuid() != 0)
		cr_skip_test("needs root to run a peer as another uid");
	cr_assert_eq(sb_bridge_create(NULL, NULL, &b), 0);
	sb_serve_config_default(&sc);
	sc.socket = sock;
	sc.allowed_gid = 65534;
	sc.log = quiet;
	chmod(dir, 0755);
	cr_assert_eq(sb_bridge_serve(b, &sc), 0, "%s", sb_last_error());
	cr_assert_eq(stat(sock, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0660);
	cr_assert_eq(st.st_gid, 65534);
	int rc = connect_as(65534, 65534, sock, why, sizeof(why));
	cr_assert_eq(rc, 0, "a member of the allowed group attaches: %s", why);
	rc = connect_as(65533, 65533, sock, why, sizeof(why));
	cr_assert_eq(rc, -EACCES, "anyone else does not: %s", why);
	sb_bridge_destroy(b);
}

/* ---- a fake coordinator that says the wrong things ------------------------------- */

enum fake { FAKE_GARBAGE, FAKE_OLD_VERSION, FAKE_HANG_UP, FAKE_UNSEALED, FAKE_ONE_FD };

static pid_t fake_coordinator(enum fake kind)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int ls = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock);
	cr_assert_eq(bind(ls, (struct sockaddr *)&addr, sizeof(addr)), 0);
	cr_assert_eq(listen(ls, 4), 0);
	pid_t pid = fork();
	if (pid)
		return close(ls), pid;
	int fd = accept(ls, NULL, NULL);
	struct sb_hello h;
	struct sb_bridge *b;
	int fds[2];
	sb__hello_accept(&h, 0, 0, getpid(), 0);
	switch (kind) {
	case FAKE_GARBAGE:
		(void)!send(fd, "GET / HTTP/1.1\r\n\r\n", 18, 0);
		break;
	case FAKE_OLD_VERSION:
		h.version = 7;
		(void)!send(fd, &h, sizeof(h), 0);
		break;
	case FAKE_HANG_UP:
		break;
	case FAKE_UNSEALED:
	case FAKE_ONE_FD:
		sb_bridge_create(NULL, NULL, &b);
		sb_bridge_data_fd(b, &fds[0]);
		sb_bridge_data_fd(b, &fds[1]); /* never looked at: the first descriptor fails */
		if (kind == FAKE_UNSEALED) {
			fds[0] = memfd_create("imposter", 0);
			if (ftruncate(fds[0], (off_t)b->data.size) != 0)
				_exit(1);
		}
		h.data_size = b->data.size;
		sb__hello_send(fd, &h, fds, kind == FAKE_ONE_FD ? 1 : 2);
		break;
	}
	usleep(200000);
	_exit(0);
}

static void expect_refusal(enum fake kind, int want, const char *words)
{
	struct sb_consumer *c = NULL;
	pid_t pid = fake_coordinator(kind);
	int rc = sb_consumer_connect(sock, 0, &c);

	cr_assert_eq(rc, want, "rc %d: %s", rc, sb_last_error());
	cr_assert_null(c);
	cr_assert(strstr(sb_last_error(), words), "message: %s", sb_last_error());
	waitpid(pid, NULL, 0);
}

Test(serve, garbage_instead_of_a_hello_is_refused)
{
	expect_refusal(FAKE_GARBAGE, -EPROTO, "not a snapbridge coordinator");
}

Test(serve, hello_of_another_handshake_version_is_refused)
{
	expect_refusal(FAKE_OLD_VERSION, -EPROTO, "handshake version 7");
}

Test(serve, coordinator_hanging_up_before_its_hello_is_reported)
{
	expect_refusal(FAKE_HANG_UP, -ECONNRESET, "closed the connection before its hello");
}

Test(serve, data_descriptor_that_is_not_a_sealed_memfd_is_refused)
{
	expect_refusal(FAKE_UNSEALED, -EPERM, "lacks seals");
}

Test(serve, hello_whose_descriptors_do_not_match_its_count_is_refused)
{
	expect_refusal(FAKE_ONE_FD, -EBADMSG, "promises 2 descriptors and carries 1");
}

Test(serve, connecting_where_nobody_serves_says_so)
{
	struct sb_consumer *c;

	cr_assert_eq(sb_consumer_connect(sock, 0, &c), -ENOENT);
	cr_assert(strstr(sb_last_error(), "no coordinator serves"), "%s", sb_last_error());
}

/* ---- read-only for real ----------------------------------------------------------- */

Test(serve, data_descriptor_a_consumer_receives_cannot_write_the_region)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct sb_hello h;
	int fds[SB_HELLO_FDS], s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock);
	cr_assert_eq(connect(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
	cr_assert_eq(sb__hello_recv(s, 5000, &h, fds), 0, "%s", sb_last_error());
	int data = fds[SB_HELLO_FD_DATA];

	errno = 0;
	cr_assert_eq(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, data, 0), MAP_FAILED);
	cr_assert_eq(errno, EACCES, "a read-only descriptor cannot be mapped shared-writable");
	errno = 0;
	cr_assert_eq(write(data, "x", 1), -1);
	cr_assert_eq(errno, EBADF, "write() on it fails");
	errno = 0;
	cr_assert_eq(pwrite(data, "x", 1, 0), -1);
	cr_assert_eq(errno, EBADF);
	void *ro = mmap(NULL, 4096, PROT_READ, MAP_SHARED, data, 0);
	cr_assert_neq(ro, MAP_FAILED);
	errno = 0;
	cr_assert_eq(mprotect(ro, 4096, PROT_READ | PROT_WRITE), -1);
	cr_assert_eq(errno, EACCES, "its read-only mapping cannot be made writable");
	/* Even reopened read-write through /proc, the memfd refuses new writers. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", data);
	int rw = open(path, O_RDWR);
	cr_assert_geq(rw, 0);
	errno = 0;
	cr_assert_eq(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0), MAP_FAILED);
	cr_assert_eq(errno, EPERM, "F_SEAL_FUTURE_WRITE refuses a writable mapping");
	errno = 0;
	cr_assert_eq(write(rw, "x", 1), -1);
	cr_assert_eq(errno, EPERM, "and write()");
	close(rw);
	munmap(ro, 4096);
	for (int i = 0; i < SB_HELLO_FDS; i++)
		close(fds[i]);
	close(s);
	sb_bridge_destroy(b);
}

Test(serve, consumers_own_mapping_of_the_data_region_stays_read_only)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c;

	cr_assert_eq(sb_consumer_connect(sock, 0, &c), 0, "%s", sb_last_error());
	errno = 0;
	cr_assert_eq(mprotect((void *)c->base, 4096, PROT_READ | PROT_WRITE), -1);
	cr_assert_eq(errno, EACCES);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

/* ---- wake-ups ------------------------------------------------------------------ */

static int stop_after_one(void *user, const struct sb_entry *e)
{
	(void)user;
	(void)e;
	return 1;
}

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");

	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

struct waiter {
	struct sb_consumer *c;
	enum sb_wait_status st;
	int rc;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->rc = sb_consumer_wait(w->c, 20000, &w->st);
	return NULL;
}

/* Until the serving thread holds the waiter's arm, marked and published (M1-M4). */
static void until_asleep(struct sb_bridge *b)
{
	struct sb_consumer_info info;
	size_t n;
	bool asleep;
	uint64_t until = su_now_ms() + 10000;

	do {
		usleep(1000);
		cr_assert_eq(sb_bridge_consumers(b, &info, 1, &n), 0);
		asleep = n == 1 && info.waiting;
	} while (!asleep && su_now_ms() < until);
	cr_assert(asleep, "the consumer never went to sleep");
}

Test(serve, wait_times_out_when_nothing_is_published)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c = su_caught_up(sock);
	enum sb_wait_status st;
	uint64_t t0 = su_now_ms();

	cr_assert_eq(sb_consumer_wait(c, 100, &st), 0);
	cr_assert_eq(st, SB_WAIT_TIMEOUT);
	cr_assert_geq(su_now_ms() - t0, 100, "it waited out the deadline");
	cr_assert_eq(sb_consumer_wait(c, 0, &st), 0);
	cr_assert_eq(st, SB_WAIT_TIMEOUT, "a zero timeout does not block");
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

/* A consumer process that drained everything and now sleeps in one wait. */
static pid_t sleeping_consumer(struct sb_bridge *b, FILE **out)
{
	pid_t pid = spawn_consumer("wait", "", out);

	su_expect_line(*out, "attached");
	if (b)
		until_asleep(b);
	return pid;
}

static void expect_woken(FILE *out, pid_t pid, const char *status)
{
	int st;

	su_expect_line(out, status);
	fclose(out);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

Test(serve, sleeping_consumer_process_is_woken_by_a_store)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	FILE *out;
	pid_t pid = sleeping_consumer(b, &out);

	store_seeded(b, "wake", 64);
	expect_woken(out, pid, "status=ready");
	cr_assert_eq(sb_load_relaxed(&b->hot->wakes), 1, "the store called FUTEX_WAKE once");
	sb_bridge_destroy(b);
}

Test(serve, sleeping_consumer_is_woken_by_an_event_alone)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct waiter w = { .c = su_caught_up(sock) };
	pthread_t t;
	bool stored;

	pthread_create(&t, NULL, wait_thread, &w);
	until_asleep(b);
	/* No capture callback: only a CaptureUnavailable event is published. */
	cr_assert_eq(sb_bridge_capture(b, "nothing", &stored), 0);
	pthread_join(t, NULL);
	cr_assert_eq(w.st, SB_WAIT_READY);
	sb_consumer_close(w.c);
	sb_bridge_destroy(b);
}

Test(serve, sleeping_consumer_process_is_woken_by_a_clean_close)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	FILE *out;
	pid_t pid = sleeping_consumer(b, &out);

	sb_bridge_destroy(b);
	expect_woken(out, pid, "status=closed");
}

Test(serve, burst_of_stores_costs_one_wake_per_waiting_period)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct waiter w = { .c = su_caught_up(sock) };
	pthread_t t;

	pthread_create(&t, NULL, wait_thread, &w);
	until_asleep(b);
	for (int i = 0; i < 500; i++)
		store_seeded(b, "burst", 64);
	pthread_join(t, NULL);
	cr_assert_eq(w.st, SB_WAIT_READY);
	cr_assert_eq(sb_load_relaxed(&b->hot->wakes), 1, "one waiting period, one wake");
	cr_assert_eq(sb_load_relaxed(&b->wake.armed), 0, "the first store took the arm");
	sb_consumer_close(w.c);
	sb_bridge_destroy(b);
}

Test(serve, arm_sent_after_a_store_it_missed_is_rung_by_the_recheck)
{
	/* A minute's heartbeat: its safety net cannot be what rings the bell here. */
	struct sb_bridge *b = serving_bridge_beat(sock, SB_LOG_BYTES_MIN, 60000);
	struct sb_consumer *c = su_caught_up(sock);
	struct timespec five_s = { 5, 0 };
	struct sb_arm a;

	/* C1, then C2 found nothing; then a store commits while nobody is armed: no kick. */
	uint32_t g = sb__wake_bell(c->page);
	sb__arm_init(&a, SB_ARM_FUTEX, SB_WAKE_REC);
	a.rec_pos = c->rec.pos;
	store_seeded(b, "missed", 64);
	cr_assert_eq(sb_load_relaxed(&b->hot->wakes), 0,
		     "nobody was armed: the store kicked no one");
	/* C3: the arm goes out with the positions C2 saw; M4 must find the store. */
	cr_assert_eq(sb__wake_arm_send(c->conn_fd, &a), 0);
	int r = sb__futex_wait(&c->page->bell, g, &five_s); /* C4 */
	cr_assert_neq(r, -ETIMEDOUT, "the bell was not rung");
	cr_assert_neq(sb__wake_bell(c->page), g, "M4 rang the bell");
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(serve, drain_stopped_by_its_callback_leaves_the_rest_as_news)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c = su_caught_up(sock);
	enum sb_wait_status st;
	struct sb_drain_counts d;
	struct sb_events ev;

	for (int i = 0; i < 3; i++)
		store_seeded(b, i == 0 ? "a" : i == 1 ? "b" : "c", 64);
	cr_assert_eq(sb_consumer_drain(c, stop_after_one, NULL, &d), 1);
	cr_assert_eq(d.delivered, 1);
	cr_assert_eq(sb_consumer_drain_events(c, &ev), 0);
	sb_events_free(&ev);
	cr_assert_eq(sb_consumer_wait(c, 0, &st), 0);
	cr_assert_eq(st, SB_WAIT_READY, "two records are still there");
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, &d), 0);
	cr_assert_eq(d.delivered, 2);
	cr_assert_eq(sb_consumer_wait(c, 0, &st), 0);
	cr_assert_eq(st, SB_WAIT_TIMEOUT);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(serve, consumer_that_drained_events_once_is_not_woken_by_records_it_already_drained)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c = su_caught_up(sock); /* drained records and events once */
	enum sb_wait_status st;

	for (int i = 0; i < 3; i++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "new%d", i); /* a new tag: no Overwrite event */
		store_seeded(b, tag, 64);
		cr_assert_eq(sb_consumer_drain(c, NULL, NULL, NULL), 0);
		cr_assert_eq(sb_consumer_wait(c, 0, &st), 0);
		cr_assert_eq(st, SB_WAIT_TIMEOUT, "store %d was drained and no event is pending",
			     i);
	}
	/* An event it has not drained is still news. */
	bool stored;
	cr_assert_eq(sb_bridge_capture(b, "nothing", &stored), 0);
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, NULL), 0);
	cr_assert_eq(sb_consumer_wait(c, 0, &st), 0);
	cr_assert_eq(st, SB_WAIT_READY);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(serve, news_published_before_a_close_is_reported_before_the_close)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c = su_caught_up(sock);
	enum sb_wait_status st;
	struct sb_drain_counts d;

	store_seeded(b, "last", 64);
	sb_bridge_destroy(b);
	cr_assert_eq(sb_consumer_wait(c, 1000, &st), 0);
	cr_assert_eq(st, SB_WAIT_READY);
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, &d), 0);
	cr_assert_eq(d.delivered, 1);
	cr_assert_eq(sb_consumer_wait(c, 1000, &st), 0);
	cr_assert_eq(st, SB_WAIT_CLOSED);
	sb_consumer_close(c);
}

Test(serve, pollable_descriptor_signals_a_store_and_then_the_close)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c = su_caught_up(sock);
	enum sb_wait_status st;
	int fd;

	cr_assert_eq(sb_consumer_pollfd(c, &fd), 0, "%s", sb_last_error());
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN }, got;
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0, "it nests in an epoll loop");

	cr_assert_eq(sb_consumer_arm(c, &st), 0);
	cr_assert_eq(st, SB_WAIT_ARMED, "status %d: %s", st, sb_last_error());
	cr_assert_eq(epoll_wait(ep, &got, 1, 50), 0, "quiet while nothing is published");
	store_seeded(b, "polled", 64);
	cr_assert_eq(epoll_wait(ep, &got, 1, 5000), 1, "readable after a store");
	cr_assert_eq(sb_consumer_arm(c, &st), 0);
	cr_assert_eq(st, SB_WAIT_READY, "arm says drain first");
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, NULL), 0);
	cr_assert_eq(sb_consumer_arm(c, &st), 0);
	cr_assert_eq(st, SB_WAIT_ARMED, "drained, and the store raised no event");
	cr_assert_eq(epoll_wait(ep, &got, 1, 50), 0, "drained and re-armed: quiet again");
	sb_bridge_destroy(b);
	cr_assert_eq(epoll_wait(ep, &got, 1, 5000), 1, "readable after the close");
	cr_assert_eq(sb_consumer_arm(c, &st), 0);
	cr_assert_eq(st, SB_WAIT_CLOSED);
	close(ep);
	sb_consumer_close(c);
}

struct strict_storer {
	struct sb_bridge *b;
	int finished;
};

/*
 * May make no system call but read, write and exit once in strict mode
 * (SECCOMP_MODE_STRICT: anything else kills this thread on the spot).
 */
static void *store_strictly(void *arg)
{
	struct strict_storer *s = arg;

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0)
		return NULL;
	for (int i = 0; i < 1000; i++)
		store_seeded(s->b, i % 2 ? "a" : "b", 200);
	__atomic_store_n(&s->finished, 1, __ATOMIC_RELEASE);
	syscall(SYS_exit, 0);
	return NULL;
}

/*
 * In a child, store 1000 overwrites from a thread that may make no system
 * call; the bridge serves, so its serving and waker threads run beside it
 * (strict mode binds only the thread that asks for it). Returns whether
 * the stores all went through.
 */
static bool stores_without_syscalls(bool someone_waits)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct sb_config cfg;
		struct sb_serve_config sc;
		struct strict_storer s = { 0 };
		struct sb_consumer *c;
		enum sb_wait_status st;
		struct sb_events ev;
		pthread_t t;
		int fd;

		tu_config(&cfg, 64, 256, SB_LOG_BYTES_MIN * 4);
		sb_serve_config_default(&sc); /* serving hand-overs only */
		if (sb_bridge_create(&cfg, NULL, &s.b) || sb_bridge_serve(s.b, &sc) ||
		    sb_bridge_consumer_socket(s.b, &fd) || sb_consumer_open_socket(fd, 0, &c))
			_exit(2);
		for (int i = 0; i < 100; i++) /* warm up: every tag and node exists */
			store_seeded(s.b, i % 2 ? "a" : "b", 200);
		if (sb_consumer_drain(c, NULL, NULL, NULL) || sb_consumer_drain_events(c, &ev))
			_exit(4);
		sb_events_free(&ev);
		if (someone_waits) {
			struct sb_consumer_info info;
			size_t n = 0;
			if (sb_consumer_arm(c, &st) || st != SB_WAIT_ARMED)
				_exit(5);
			for (int i = 0; i < 10000 && !(n == 1 && info.waiting); i++) {
				usleep(1000);
				sb_bridge_consumers(s.b, &info, 1, &n);
			}
			/* The waker sleeps: the first store's kick has to wake it. */
			while (sb_load_acquire(&s.b->wake.kick) != SB_KICK_ASLEEP)
				usleep(1000);
		}
		if (pthread_create(&t, NULL, store_strictly, &s) != 0)
			_exit(6);
		pthread_join(t, NULL); /* returns however the thread ended */
		_exit(__atomic_load_n(&s.finished, __ATOMIC_ACQUIRE) ? 0 : 1);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child ended with %#x", status);
	cr_assert_leq(WEXITSTATUS(status), 1, "child set-up failed (%d)", WEXITSTATUS(status));
	return WEXITSTATUS(status) == 0;
}

Test(serve, store_makes_no_system_call_when_no_consumer_waits)
{
	cr_assert(stores_without_syscalls(false), "a store made a system call");
	/* The check can fail: with a consumer armed, the first store must kick the waker. */
	cr_assert_not(stores_without_syscalls(true), "an armed consumer was not kicked for");
}

/* ---- liveness and crash survival ------------------------------------------------ */

struct coord_child {
	pid_t pid;
	int ready;
};

/*
 * A coordinator process that serves on sock and stores count seeded
 * records in bursts, with sizes 64..1087 under 16 tags, then waits to be
 * killed.
 */
static struct coord_child storing_coordinator(uint64_t log_bytes, uint64_t count)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct sb_bridge *b = serving_bridge(sock, log_bytes);
		char tag[16];

		if (count == UINT64_MAX)
			(void)!write(p[1], "r", 1);
		for (uint64_t s = 1; s <= count; s++) {
			snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(s % 16));
			store_seeded(b, tag, 64 + (s * 2654435761u) % 1024);
			if (s % 64 == 0)
				usleep(500);
		}
		(void)!write(p[1], "r", 1);
		pause();
	}
	char byte;
	cr_assert_eq(read(p[0], &byte, 1), 1);
	close(p[0]);
	close(p[1]);
	return (struct coord_child){ pid, 0 };
}

static void drain_to_end(struct sb_consumer *c, struct tu_tally *t)
{
	cr_assert_eq(tu_drain_to_end(c, tu_tally_entry, t), 0, "%s", sb_last_error());
}

Test(serve, sleeping_consumer_process_is_woken_by_the_coordinators_sigkill)
{
	struct coord_child k = storing_coordinator(SB_LOG_BYTES_MIN, 0);
	FILE *out;
	pid_t pid = sleeping_consumer(NULL, &out);
	struct sb_consumer *c;
	enum sb_coord_state cs;

	/* A second consumer here, to see the coordinator alive and then dead. */
	cr_assert_eq(sb_consumer_connect(sock, 0, &c), 0, "%s", sb_last_error());
	cr_assert_eq(sb_consumer_coordinator(c, &cs), 0);
	cr_assert_eq(cs, SB_COORD_ALIVE);
	usleep(100000); /* let the other consumer fall asleep */
	uint64_t t0 = su_now_ms();
	kill(k.pid, SIGKILL);
	waitpid(k.pid, NULL, 0);
	expect_woken(out, pid, "status=dead");
	cr_assert_lt(su_now_ms() - t0, 5000, "noticed by the hang-up, not the 20 s deadline");
	cr_assert_eq(sb_consumer_coordinator(c, &cs), 0);
	cr_assert_eq(cs, SB_COORD_DEAD);
	sb_consumer_close(c);
}

Test(serve, image_of_a_live_or_killed_coordinator_reads_dead_at_once)
{
	struct coord_child k = storing_coordinator(SB_LOG_BYTES_MIN, 10);
	struct sb_consumer *c, *img;
	enum sb_coord_state cs;
	char path[160];
	size_t size;

	cr_assert_eq(sb_consumer_connect(sock, 0, &c), 0, "%s", sb_last_error());
	snprintf(path, sizeof(path), "%s/region.img", dir);
	/* Save the region the way a post-mortem tool would. */
	const uint8_t *copy = c->base;
	size = c->size;
	FILE *f = fopen(path, "w");
	cr_assert_eq(fwrite(copy, 1, size, f), size);
	fclose(f);
	for (int round = 0; round < 2; round++) {
		cr_assert_eq(sb_consumer_open_image(path, 0, &img), 0, "%s", sb_last_error());
		cr_assert_eq(sb_consumer_coordinator(img, &cs), 0);
		cr_assert_eq(cs, SB_COORD_DEAD, "%s: an image is never alive",
			     round ? "killed" : "live");
		struct sb_drain_counts d;
		cr_assert_eq(sb_consumer_drain(img, NULL, NULL, &d), 0);
		cr_assert_eq(d.stores, 10, "the image still holds every store");
		sb_consumer_close(img);
		if (round == 0) {
			kill(k.pid, SIGKILL);
			waitpid(k.pid, NULL, 0);
		}
	}
	sb_consumer_close(c);
	unlink(path);
}

Test(serve, coordinator_killed_while_its_forked_child_keeps_the_connection_is_dead)
{
	int go[2], ready[2];
	char byte;

	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	pid_t coord = fork();
	if (coord == 0) {
		serving_bridge(sock, SB_LOG_BYTES_MIN);
		(void)!write(ready[1], "r", 1);
		/* Once a consumer is attached, fork a child that inherits its connection. */
		if (read(go[0], &byte, 1) != 1)
			_exit(1);
		pid_t child = fork();
		if (child == 0)
			pause();
		(void)!write(ready[1], &child, sizeof(child));
		pause();
	}
	cr_assert_eq(read(ready[0], &byte, 1), 1);
	struct sb_consumer *c;
	enum sb_wait_status st;
	cr_assert_eq(sb_consumer_connect(sock, 0, &c), 0, "%s", sb_last_error());
	cr_assert_eq(write(go[1], "g", 1), 1);
	pid_t child;
	cr_assert_eq(read(ready[0], &child, sizeof(child)), (ssize_t)sizeof(child));
	cr_assert_gt(child, 0);
	cr_assert_geq(c->pidfd, 0, "the consumer watches the coordinator's pid");
	kill(coord, SIGKILL);
	waitpid(coord, NULL, 0);
	do {
		cr_assert_eq(sb_consumer_drain(c, NULL, NULL, NULL), 0);
		cr_assert_eq(sb_consumer_wait(c, 10000, &st), 0);
	} while (st == SB_WAIT_READY);
	kill(child, SIGKILL);
	cr_assert_eq(st, SB_WAIT_DEAD, "the pidfd tells, though the connection stays open (%d)",
		     st);
	sb_consumer_close(c);
}

Test(serve, consumer_drains_every_record_committed_before_the_coordinators_sigkill, .timeout = 120)
{
	/* Different kill points; a 64 MiB log so that nothing is lapped. */
	for (int round = 0; round < 5; round++) {
		struct coord_child k = storing_coordinator(64u << 20, UINT64_MAX);
		struct sb_consumer *live, *late;
		struct tu_tally tl = { .contiguous = true }, tt = { .contiguous = true };
		enum sb_wait_status st = SB_WAIT_READY;
		struct sb_drain_counts dl, dt;
		uint64_t stores;

		cr_assert_eq(sb_consumer_connect(sock, SB_CONSUMER_ALL_VERSIONS, &live), 0, "%s",
			     sb_last_error());
		cr_assert_eq(sb_consumer_connect(sock, SB_CONSUMER_ALL_VERSIONS, &late), 0);
		uint64_t kill_at = su_now_ms() + 20 + (uint64_t)round * 37;
		/* One consumer drains while the writer runs; the other only after its death. */
		while (su_now_ms() < kill_at) {
			sb_consumer_wait(live, 5, &st);
			drain_to_end(live, &tl);
		}
		kill(k.pid, SIGKILL);
		waitpid(k.pid, NULL, 0);
		do {
			cr_assert_eq(sb_consumer_wait(live, 10000, &st), 0);
			drain_to_end(live, &tl);
		} while (st == SB_WAIT_READY);
		cr_assert_eq(st, SB_WAIT_DEAD);
		do {
			cr_assert_eq(sb_consumer_wait(late, 10000, &st), 0);
			drain_to_end(late, &tt);
		} while (st == SB_WAIT_READY);
		cr_assert_eq(st, SB_WAIT_DEAD);

		sb_consumer_store_count(live, &stores);
		cr_assert_gt(stores, 0);
		sb_consumer_totals(live, &dl);
		sb_consumer_totals(late, &dt);
		const struct sb_drain_counts *all[] = { &dl, &dt };
		const struct tu_tally *tal[] = { &tl, &tt };
		for (int i = 0; i < 2; i++) {
			const struct sb_drain_counts *d = all[i];
			/* A kill between publishing a record and counting it leaves one more. */
			cr_assert(d->stores == stores || (d->stores == stores + 1 && d->torn == 1),
				  "round %d: %llu stores accounted for, %llu made", round,
				  (unsigned long long)d->stores, (unsigned long long)stores);
			cr_assert_eq(d->lapped + d->superseded + d->evicted, 0);
			cr_assert_leq(d->torn, 1, "one writer thread: at most one store in flight");
			cr_assert_eq(d->delivered + d->torn, d->stores,
				     "every committed record delivered, exactly once");
			cr_assert_eq(tal[i]->bad, 0,
				     "every byte matches its seed, no gap, no repeat");
			cr_assert_eq(tal[i]->delivered, d->delivered);
		}
		sb_consumer_close(live);
		sb_consumer_close(late);
		unlink(sock);
	}
}

Test(serve, half_written_record_at_the_kill_is_torn_never_delivered)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c = su_caught_up(sock);
	struct sb_drain_counts d;
	struct tu_tally t = { .contiguous = true };

	store_seeded(b, "whole", 100);
	store_seeded(b, "half", 100);
	/* What a SIGKILL between reservation and commit leaves: a BUSY record. */
	uint32_t i = 0;
	while (strncmp(b->slots[i].tag, "half", 5) != 0)
		i++;
	uint64_t pos = sb_load_relaxed(&b->slots[i].record_pos);
	struct sb_rec *rec = sb__log_rec(&b->log, pos);
	sb_store_relaxed(&rec->commit, SB_REC_BUSY);
	cr_assert_eq(sb_consumer_drain(c, tu_tally_entry, &t, &d), 0);
	cr_assert_eq(d.delivered, 1, "the writer is alive: the busy record is waited for");
	cr_assert_eq(d.torn, 0);
	sb_consumer_set_writer_gone(c, true);
	cr_assert_eq(sb_consumer_drain(c, tu_tally_entry, &t, &d), 0);
	cr_assert_eq(d.torn, 1);
	cr_assert_eq(d.delivered, 0);
	cr_assert_eq(t.delivered, 1);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(serve, killed_consumers_slot_is_reclaimed_and_the_coordinator_goes_on)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer_info info;
	FILE *out;
	size_t n;

	pid_t pid = spawn_consumer("hold", "", &out);
	su_expect_line(out, "attached");
	cr_assert_eq(sb_bridge_consumers(b, &info, 1, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(info.pid, pid);
	until_asleep(b);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fclose(out);
	for (int i = 0; i < 2000; i++)
		store_seeded(b, i % 2 ? "x" : "y", 512);
	su_wait_attached(b, 0);
	/* The freed slot is handed out again. */
	struct sb_consumer *c;
	cr_assert_eq(sb_consumer_connect(sock, 0, &c), 0, "%s", sb_last_error());
	su_wait_attached(b, 1);
	sb_consumer_close(c);
	su_wait_attached(b, 0);
	sb_bridge_destroy(b);
}

Test(serve, consumer_that_zeroes_its_page_costs_the_coordinator_nothing)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c;

	cr_assert_eq(sb_consumer_connect(sock, 0, &c), 0, "%s", sb_last_error());
	sb_consumer_close(c);
	su_wait_attached(b, 0);
	int before = open_fds();
	for (int i = 0; i < 50; i++) {
		cr_assert_eq(sb_consumer_connect(sock, 0, &c), 0, "%s", sb_last_error());
		/* Hostile: zero the page we were given; nothing in it is the coordinator's record.
		 */
		memset(c->page, 0, SB_CTL_SIZE);
		struct sb_consumer *again;
		cr_assert_eq(sb_consumer_connect(sock, 0, &again), 0, "%s", sb_last_error());
		sb_consumer_close(again);
		sb_consumer_close(c);
	}
	su_wait_attached(b, 0);
	usleep(50000);
	cr_assert_leq(open_fds(), before + 1, "no connection is left behind in the coordinator");
	sb_bridge_destroy(b);
}

Test(serve, polling_consumer_that_never_reads_cannot_stall_the_coordinator)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c = su_caught_up(sock), *late;
	struct sb_arm a;

	/* Hostile: arm to poll with a position that is always behind, and never read. */
	sb__arm_init(&a, SB_ARM_POLL, SB_WAKE_REC);
	a.rec_pos = 0;
	for (int i = 0; i < 20000; i++) {
		(void)sb__wake_arm_send(c->conn_fd, &a); /* every arm is rung at once */
		store_seeded(b, "flood", 64);
	}
	int queued = 0;
	cr_assert_eq(ioctl(c->conn_fd, FIONREAD, &queued), 0);
	cr_assert_gt(queued, 0, "wake bytes were sent, and pile up unread");
	/* The serving thread is not stuck on the full connection: it still admits. */
	cr_assert_eq(sb_consumer_connect(sock, 0, &late), 0, "%s", sb_last_error());
	sb_consumer_close(late);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(serve, consumer_lag_listing_bounds_what_the_control_page_claims)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c = su_caught_up(sock);
	struct sb_consumer_info info;
	size_t n;

	for (int i = 0; i < 10; i++)
		store_seeded(b, "lag", 64);
	cr_assert_eq(sb_bridge_consumers(b, &info, 1, &n), 0);
	cr_assert_eq(info.lag, 10);
	cr_assert(info.lag_valid);
	cr_assert_eq(info.pid, getpid());
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, NULL), 0);
	cr_assert_eq(sb_bridge_consumers(b, &info, 1, &n), 0);
	cr_assert_eq(info.lag, 0);
	/* A hostile consumer claims, in its own page, to be ahead of the writer. */
	sb_store_relaxed(&c->page->cursor, UINT64_MAX);
	cr_assert_eq(sb_bridge_consumers(b, &info, 1, &n), 0);
	cr_assert_not(info.lag_valid);
	cr_assert_eq(info.lag, 0);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

/* ---- attach by pid ----------------------------------------------------------------- */

Test(serve, forked_child_closing_an_inherited_consumer_leaves_the_parents_slot)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	struct sb_consumer *c;
	int fd;

	cr_assert_eq(sb_bridge_consumer_socket(b, &fd), 0, "%s", sb_last_error());
	cr_assert_eq(sb_consumer_open_socket(fd, 0, &c), 0, "%s", sb_last_error());
	cr_assert_eq(su_attached(b), 1);
	pid_t pid = fork();
	if (pid == 0) {
		sb_consumer_close(c);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	usleep(50000);
	cr_assert_eq(su_attached(b), 1, "the parent still holds the connection");
	sb_consumer_close(c);
	su_wait_attached(b, 0);
	sb_bridge_destroy(b);
}

Test(serve, tool_attaches_by_pid_and_drains)
{
	struct coord_child k = storing_coordinator(8u << 20, 100);
	struct sb_consumer *c;
	enum sb_coord_state cs;

	int rc = sb_consumer_open_pid(k.pid, 0, &c);
	cr_assert_eq(rc, 0, "%s", sb_last_error());
	cr_assert_eq(sb_consumer_coordinator(c, &cs), 0);
	cr_assert_eq(cs, SB_COORD_ALIVE);
	struct sb_drain_counts d;
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, &d), 0, "%s", sb_last_error());
	cr_assert_eq(d.stores, 100);
	cr_assert_eq(d.delivered, 16, "one resident version per tag");
	cr_assert_eq(d.superseded, 84);
	errno = 0;
	cr_assert_eq(mprotect((void *)c->base, 4096, PROT_READ | PROT_WRITE), -1);
	kill(k.pid, SIGKILL);
	waitpid(k.pid, NULL, 0);
	cr_assert_eq(sb_consumer_coordinator(c, &cs), 0);
	cr_assert_eq(cs, SB_COORD_DEAD, "the pidfd tells");
	sb_consumer_close(c);
}

Test(serve, attach_by_pid_of_a_process_without_a_bridge_says_so)
{
	struct sb_consumer *c;

	cr_assert_eq(sb_consumer_open_pid(getppid(), 0, &c), -ENOENT, "%s", sb_last_error());
	cr_assert(strstr(sb_last_error(), "no snapbridge data memfd"), "%s", sb_last_error());
	cr_assert_eq(sb_consumer_open_pid(0, 0, &c), -EINVAL);
}

Test(serve, attach_by_pid_without_ptrace_access_is_refused_clearly)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to run the tool as another uid");
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	int p[2];
	struct {
		int rc;
		char msg[256];
	} res;

	cr_assert_eq(pipe(p), 0);
	pid_t coord = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		struct sb_consumer *c;
		if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
			_exit(3);
		res.rc = sb_consumer_open_pid(coord, 0, &c);
		snprintf(res.msg, sizeof(res.msg), "%s", sb_last_error());
		(void)!write(p[1], &res, sizeof(res));
		_exit(0);
	}
	cr_assert_eq(read(p[0], &res, sizeof(res)), (ssize_t)sizeof(res));
	waitpid(pid, NULL, 0);
	cr_assert_eq(res.rc, -EPERM, "rc %d: %s", res.rc, res.msg);
	cr_assert(strstr(res.msg, "ptrace access"), "%s", res.msg);
	sb_bridge_destroy(b);
}

Test(serve, pid_attached_consumer_that_dies_has_its_slot_reclaimed)
{
	struct sb_bridge *b = serving_bridge(sock, SB_LOG_BYTES_MIN);
	int p[2];
	char byte;

	cr_assert_eq(pipe(p), 0);
	pid_t coord = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		struct sb_consumer *c;
		if (sb_consumer_open_pid(coord, 0, &c) != 0)
			_exit(1);
		(void)!write(p[1], "a", 1);
		pause();
	}
	cr_assert_eq(read(p[0], &byte, 1), 1, "the child attached by pid");
	su_wait_attached(b, 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	su_wait_attached(b, 0);
	sb_bridge_destroy(b);
}
