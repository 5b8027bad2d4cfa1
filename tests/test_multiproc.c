/*
 * Consumers in other processes, across a real fork(): they hold only a
 * read-only descriptor, drain in order with exact accounting, verify
 * every byte, and cannot write the region.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static uint8_t buf[64 << 10];

struct child_report {
	int failed_check; /* 0 = all good, else the line of the failed check */
	struct sb_drain_counts totals;
	uint64_t delivered_cb;
};

#define CHILD_CHECK(rep, cond)                                                                     \
	do {                                                                                       \
		if (!(cond) && !(rep)->failed_check)                                               \
			(rep)->failed_check = __LINE__;                                            \
	} while (0)

static void run_child(int fd, int out, uint64_t expect_stores, uint32_t flags)
{
	struct child_report rep = { 0 };
	struct sb_consumer *c = NULL;
	struct tu_tally v = { 0 };
	uint64_t cursor = 0;

	CHILD_CHECK(&rep, sb_consumer_open_fd(fd, flags, &c) == 0);
	if (c) {
		/* The only mapping a consumer can have is read-only. */
		void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CHILD_CHECK(&rep, w == MAP_FAILED && (errno == EACCES || errno == EPERM));
		CHILD_CHECK(&rep, write(fd, "x", 1) == -1);
		while (cursor < expect_stores && !rep.failed_check) {
			CHILD_CHECK(&rep, sb_consumer_drain(c, tu_tally_entry, &v, NULL) == 0);
			sb_consumer_cursor(c, &cursor);
			sched_yield();
		}
		sb_consumer_totals(c, &rep.totals);
		CHILD_CHECK(&rep, v.bad == 0);
		rep.delivered_cb = v.delivered;
		sb_consumer_close(c);
	}
	if (write(out, &rep, sizeof(rep)) != sizeof(rep))
		_exit(3);
	_exit(0);
}

static pid_t spawn_consumer(struct sb_bridge *b, uint64_t expect, uint32_t flags, int *rd)
{
	int fd, p[2];

	cr_assert_eq(sb_bridge_data_fd(b, &fd), 0);
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		run_child(fd, p[1], expect, flags);
	}
	close(p[1]);
	close(fd);
	*rd = p[0];
	return pid;
}

static struct child_report reap(pid_t pid, int rd)
{
	struct child_report rep;
	int status;

	cr_assert_eq(read(rd, &rep, sizeof(rep)), (ssize_t)sizeof(rep), "child sent no report");
	close(rd);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_assert_eq(rep.failed_check, 0, "child check at line %d failed", rep.failed_check);
	return rep;
}

static void store_seeded(struct sb_bridge *b, const char *tag, size_t n, uint64_t seq)
{
	struct sb_report r = { .schema = "mp",
			       .msgpack = buf,
			       .msgpack_len = tu_report(buf, n, seq) };
	cr_assert_eq(sb_bridge_store(b, tag, &r), 0, "%s", sb_last_error());
}

Test(multiproc, forked_consumer_drains_what_the_parent_stored_in_order, .timeout = 30)
{
	struct sb_config cfg;
	struct sb_bridge *b;
	char tag[16];
	int rd;

	tu_config(&cfg, 64, 256, SB_LOG_BYTES_MIN * 16);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0);
	for (uint64_t s = 1; s <= 50; s++) {
		snprintf(tag, sizeof(tag), "tag%llu", (unsigned long long)(s % 40));
		store_seeded(b, tag, 700, s);
	}
	pid_t pid = spawn_consumer(b, 50, 0, &rd);
	struct child_report rep = reap(pid, rd);

	cr_assert_eq(rep.totals.stores, 50);
	cr_assert_eq(rep.totals.delivered, 40, "one resident version per tag");
	cr_assert_eq(rep.totals.superseded, 10);
	cr_assert_eq(rep.totals.lapped + rep.totals.evicted + rep.totals.torn, 0);
	cr_assert_eq(rep.delivered_cb, 40);
	sb_bridge_destroy(b);
}

Test(multiproc, forked_consumer_keeps_exact_accounting_while_the_writer_laps_it, .timeout = 60)
{
	struct sb_config cfg;
	struct sb_bridge *b;
	const uint64_t n = 3000;
	char tag[16];
	int rd;

	/* 64 KiB log and 4 KiB reports: the writer wraps every ~15 stores. */
	tu_config(&cfg, 16, 64, SB_LOG_BYTES_MIN);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0);
	pid_t pid = spawn_consumer(b, n, SB_CONSUMER_ALL_VERSIONS, &rd);
	for (uint64_t s = 1; s <= n; s++) {
		snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(s % 24));
		store_seeded(b, tag, 4000, s);
	}
	struct child_report rep = reap(pid, rd);
	const struct sb_drain_counts *d = &rep.totals;

	cr_assert_eq(d->stores, n);
	cr_assert_eq(d->delivered + d->superseded + d->evicted + d->lapped + d->torn, n);
	cr_assert_eq(d->superseded + d->evicted, 0, "all-versions mode delivers or counts lapped");
	cr_assert_eq(d->torn, 0);
	cr_assert_eq(rep.delivered_cb, d->delivered);
	sb_bridge_destroy(b);
}
