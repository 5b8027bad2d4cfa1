/*
 * tests/serveutil.h - Criterion helpers for suites that serve consumers
 * in other processes (fork + exec of sb_test_consumer). Header-only
 * because they assert with Criterion, which the helper process does not
 * link.
 */
#ifndef SB_TESTS_SERVEUTIL_H
#define SB_TESTS_SERVEUTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <snapbridge/snapbridge.h>

static inline uint64_t su_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* fork + exec sb_test_consumer SOCK MODE [ARG]; *out reads its stdout. */
static inline pid_t su_spawn(const char *sock, const char *mode, const char *arg, FILE **out)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(SB_TEST_CONSUMER, SB_TEST_CONSUMER, sock, mode, arg, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	*out = fdopen(p[0], "r");
	return pid;
}

/* The consumer's next line starts with want. */
static inline void su_expect_line(FILE *f, const char *want)
{
	char line[512];

	cr_assert_not_null(fgets(line, sizeof(line), f), "consumer printed nothing");
	cr_assert(strncmp(line, want, strlen(want)) == 0, "consumer said: %s", line);
}

/* Read the consumer's last line into line, then reap it: it must exit 0. */
static inline void su_last_line(FILE *f, pid_t pid, char *line, size_t cap)
{
	int status;

	cr_assert_not_null(fgets(line, (int)cap, f), "consumer printed no result");
	fclose(f);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "consumer exited with %#x",
		  status);
}

static inline void su_quiet(void *user, const char *line)
{
	(void)user;
	(void)line;
}

/* Serve b on sock with the default heartbeat and no log lines. */
static inline void su_serve(struct sb_bridge *b, const char *sock)
{
	struct sb_serve_config sc;

	sb_serve_config_default(&sc);
	sc.socket = sock;
	sc.log = su_quiet;
	cr_assert_eq(sb_bridge_serve(b, &sc), 0, "%s", sb_last_error());
}

/* A consumer in this process connected to sock, drained so that only new publications are news. */
static inline struct sb_consumer *su_caught_up(const char *sock)
{
	struct sb_consumer *c;
	struct sb_events ev;

	cr_assert_eq(sb_consumer_connect(sock, 0, &c), 0, "%s", sb_last_error());
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, NULL), 0);
	cr_assert_eq(sb_consumer_drain_events(c, &ev), 0);
	sb_events_free(&ev);
	return c;
}

/* The result line of sb_test_consumer's drain mode. */
struct su_result {
	unsigned long long stores, delivered, superseded, evicted, lapped, torn, seen, bad, waits;
	char state[16];
};

static inline struct su_result su_drain_result(FILE *f, pid_t pid)
{
	struct su_result r = { 0 };
	char line[512];

	su_last_line(f, pid, line, sizeof(line));
	int n = sscanf(line,
		       "stores=%llu delivered=%llu superseded=%llu evicted=%llu lapped=%llu "
		       "torn=%llu seen=%llu bad=%llu waits=%llu state=%15s",
		       &r.stores, &r.delivered, &r.superseded, &r.evicted, &r.lapped, &r.torn,
		       &r.seen, &r.bad, &r.waits, r.state);
	cr_assert_eq(n, 10, "unexpected result line: %s", line);
	return r;
}

static inline size_t su_attached(struct sb_bridge *b)
{
	size_t n;

	cr_assert_eq(sb_bridge_consumers(b, NULL, 0, &n), 0);
	return n;
}

static inline void su_wait_attached(struct sb_bridge *b, size_t want)
{
	uint64_t until = su_now_ms() + 10000;

	while (su_attached(b) != want && su_now_ms() < until)
		usleep(2000);
	cr_assert_eq(su_attached(b), want, "expected %zu attached consumers", want);
}

#endif
