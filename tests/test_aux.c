/*
 * The reference bridge's parts beside snapshots: watch slots, accessor
 * state and its waits (in the coordinator and from consumer processes),
 * the kernel-op and cgroup.procs logs and their msgpack forms, the aux
 * log consumers drain, and the thread's active bridge.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../consumers/consumer_internal.h"
#include "../coordinator/bridge_internal.h"
#include "serveutil.h"
#include "testutil.h"

#define SEC 1000000000ull

static struct sb_bridge *bridge_with(const struct sb_bridge_ops *ops, uint32_t max_watch,
				     uint64_t aux_bytes)
{
	struct sb_config cfg;
	struct sb_bridge *b;

	tu_config(&cfg, 16, 64, 1u << 20);
	cfg.max_watch = max_watch;
	cfg.aux_bytes = aux_bytes;
	cr_assert_eq(sb_bridge_create(&cfg, ops, &b), 0, "%s", sb_last_error());
	return b;
}

static struct sb_bridge *plain_bridge(void)
{
	return bridge_with(NULL, SB_DEFAULT_MAX_WATCH, SB_DEFAULT_AUX_BYTES);
}

/* An in-process consumer of b's region (read-only descriptor). */
static struct sb_consumer *consumer_of(struct sb_bridge *b)
{
	struct sb_consumer *c;
	int fd;

	cr_assert_eq(sb_bridge_data_fd(b, &fd), 0);
	cr_assert_eq(sb_consumer_open_fd(fd, 0, &c), 0, "%s", sb_last_error());
	close(fd);
	return c;
}

static void assert_error_has(const char *what)
{
	cr_assert(strstr(sb_last_error(), what), "error \"%s\" lacks \"%s\"", sb_last_error(),
		  what);
}

/* ---- watch slots ------------------------------------------------------------ */

struct watch_cb {
	int calls;
	int fail_with; /* 0: accept */
};

static int watch_register(void *user, const char *symbol, char *why, size_t cap)
{
	struct watch_cb *w = user;

	__atomic_fetch_add(&w->calls, 1, __ATOMIC_RELAXED);
	if (w->fail_with) {
		snprintf(why, cap, "symbol %s does not resolve", symbol);
		return w->fail_with;
	}
	return 0;
}

static uint32_t watch_count(struct sb_bridge *b)
{
	uint32_t n;

	cr_assert_eq(sb_bridge_watch_count(b, &n), 0);
	return n;
}

TestSuite(watch, .timeout = 60);

Test(watch, without_a_callback_registration_fails_and_gives_the_slot_back)
{
	struct sb_bridge *b = plain_bridge();

	cr_assert_eq(sb_bridge_register_watch(b, "jiffies"), -ENOSYS);
	/* The reference's phrase, which callers match on. */
	assert_error_has("no watch-register callback installed");
	assert_error_has("jiffies");
	cr_assert_eq(watch_count(b), 0);
	sb_bridge_destroy(b);
}

Test(watch, a_failing_callback_gives_the_slot_back_and_its_reason_is_reported)
{
	struct watch_cb w = { 0, -ENXIO };
	struct sb_bridge_ops ops = { .watch_register = watch_register, .user = &w };
	struct sb_bridge *b = bridge_with(&ops, 3, SB_DEFAULT_AUX_BYTES);

	for (int i = 0; i < 5; i++)
		cr_assert_eq(sb_bridge_register_watch(b, "nosuch"), -ENXIO);
	assert_error_has("symbol nosuch does not resolve");
	cr_assert_eq(w.calls, 5, "every attempt reached the callback: no slot leaked");
	cr_assert_eq(watch_count(b), 0);
	sb_bridge_destroy(b);
}

Test(watch, success_commits_the_slot_and_the_cap_refuses_before_the_callback_runs)
{
	struct watch_cb w = { 0, 0 };
	struct sb_bridge_ops ops = { .watch_register = watch_register, .user = &w };
	struct sb_bridge *b = bridge_with(&ops, 3, SB_DEFAULT_AUX_BYTES);
	struct sb_consumer *c = consumer_of(b);
	uint32_t seen;

	for (int i = 0; i < 3; i++)
		cr_assert_eq(sb_bridge_register_watch(b, "sym"), 0, "%s", sb_last_error());
	cr_assert_eq(sb_bridge_register_watch(b, "sym"), -ENOSPC);
	assert_error_has("cap exceeded"); /* the reference's phrase, which callers match on */
	assert_error_has("all 3 watch slots are taken");
	cr_assert_eq(w.calls, 3, "the capped attempt must not call the callback");
	cr_assert_eq(watch_count(b), 3);
	cr_assert_eq(sb_consumer_watch_count(c, &seen), 0);
	cr_assert_eq(seen, 3, "the count is published in the region");
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(watch, max_watch_zero_refuses_every_registration)
{
	struct watch_cb w = { 0, 0 };
	struct sb_bridge_ops ops = { .watch_register = watch_register, .user = &w };
	struct sb_bridge *b = bridge_with(&ops, 0, SB_DEFAULT_AUX_BYTES);

	cr_assert_eq(sb_bridge_register_watch(b, "sym"), -ENOSPC);
	cr_assert_eq(w.calls, 0);
	sb_bridge_destroy(b);
}

Test(watch, bad_symbols_are_refused_without_taking_a_slot)
{
	struct watch_cb w = { 0, 0 };
	struct sb_bridge_ops ops = { .watch_register = watch_register, .user = &w };
	struct sb_bridge *b = bridge_with(&ops, 3, SB_DEFAULT_AUX_BYTES);
	char big[SB_KOP_TARGET_MAX + 2];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(sb_bridge_register_watch(b, NULL), -EINVAL);
	cr_assert_eq(sb_bridge_register_watch(b, ""), -EINVAL);
	cr_assert_eq(sb_bridge_register_watch(b, big), -ENAMETOOLONG);
	cr_assert_eq(sb_bridge_register_watch(NULL, "sym"), -EINVAL);
	cr_assert_eq(w.calls, 0);
	cr_assert_eq(watch_count(b), 0);
	sb_bridge_destroy(b);
}

/* The storm: registrations from many threads, most of them failing. */
struct storm {
	struct sb_bridge *b;
	const uint64_t *shared_count; /* the word as a consumer maps it */
	int stop;
	uint64_t max_seen;
	uint64_t samples;
	int ok;
};

static int flaky_register(void *user, const char *symbol, char *why, size_t cap)
{
	struct storm *s = user;
	(void)symbol;

	sched_yield(); /* widen the window between reservation and outcome */
	if (rand() % 64 != 0) {
		snprintf(why, cap, "flaky");
		return -EAGAIN;
	}
	__atomic_fetch_add(&s->ok, 1, __ATOMIC_RELAXED);
	return 0;
}

static void *storm_thread(void *arg)
{
	struct storm *s = arg;

	for (int i = 0; i < 2000; i++)
		sb_bridge_register_watch(s->b, "sym");
	return NULL;
}

static void *observer_thread(void *arg)
{
	struct storm *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		uint64_t n = __atomic_load_n(s->shared_count, __ATOMIC_RELAXED);
		if (n > s->max_seen)
			s->max_seen = n;
		__atomic_fetch_add(&s->samples, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

Test(watch, a_thread_storm_never_pushes_the_published_count_past_the_cap)
{
	struct storm s = { 0 };
	struct sb_bridge_ops ops = { .watch_register = flaky_register, .user = &s };
	struct sb_bridge *b = bridge_with(&ops, 3, SB_DEFAULT_AUX_BYTES);
	struct sb_consumer *c = consumer_of(b);
	pthread_t t[8], obs;

	s.b = b;
	/* The observer samples the consumer's read-only mapping of the word. */
	s.shared_count = &c->hot->watch_count;
	cr_assert_eq(pthread_create(&obs, NULL, observer_thread, &s), 0);
	while (__atomic_load_n(&s.samples, __ATOMIC_RELAXED) == 0)
		sched_yield(); /* the observer watches from before the first registration */
	for (int i = 0; i < 8; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, storm_thread, &s), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	pthread_join(obs, NULL);

	cr_assert_gt(s.samples, 0);
	cr_assert_leq(s.max_seen, 3, "the observer saw %llu watches with a cap of 3",
		      (unsigned long long)s.max_seen);
	cr_assert_eq(s.ok, 3, "exactly the cap's worth of callbacks succeeded (%d)", s.ok);
	cr_assert_eq(watch_count(b), 3);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

/* ---- accessor state ---------------------------------------------------------- */

TestSuite(accessor, .timeout = 60);

static uint64_t in_ns(uint64_t ns)
{
	return sb_monotonic_ns() + ns;
}

Test(accessor, without_accessor_state_both_waits_succeed_at_once_with_seqno_zero)
{
	struct sb_bridge *b = plain_bridge();
	uint64_t seqno = 99;

	cr_assert_eq(sb_bridge_wait_publish_advance(b, 0, in_ns(60 * SEC), "Op::Test", &seqno), 0);
	cr_assert_eq(seqno, 0);
	cr_assert_eq(sb_bridge_wait_worker_not_trying(b, in_ns(60 * SEC), "Op::Test"), 0);
	cr_assert_eq(sb_bridge_accessor_publish_seqno(b, &seqno), 0);
	cr_assert_eq(seqno, 0);
	sb_bridge_destroy(b);
}

Test(accessor, a_seqno_already_past_the_baseline_returns_without_sleeping)
{
	struct sb_bridge *b = plain_bridge();
	uint64_t seqno;

	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(sb_bridge_accessor_publish(b, NULL), 0);
	cr_assert_eq(sb_bridge_wait_publish_advance(b, 3, in_ns(60 * SEC), "Op::Test", &seqno), 0);
	cr_assert_eq(seqno, 5);
	sb_bridge_destroy(b);
}

Test(accessor, publish_seqno_reads_each_publish)
{
	struct sb_bridge *b = plain_bridge();
	uint64_t seqno, got;

	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	cr_assert_eq(sb_bridge_accessor_publish_seqno(b, &got), 0);
	cr_assert_eq(got, 0);
	cr_assert_eq(sb_bridge_accessor_publish(b, &seqno), 0);
	cr_assert_eq(seqno, 1);
	cr_assert_eq(sb_bridge_accessor_publish(b, &seqno), 0);
	cr_assert_eq(sb_bridge_accessor_publish_seqno(b, &got), 0);
	cr_assert_eq(got, 2);
	sb_bridge_destroy(b);
}

struct publisher {
	struct sb_bridge *b;
	int delay_ms;
	bool fail;
};

static void *publish_later(void *arg)
{
	struct publisher *p = arg;

	usleep((useconds_t)p->delay_ms * 1000);
	if (p->fail)
		sb_bridge_accessor_fail(p->b);
	else
		sb_bridge_accessor_publish(p->b, NULL);
	return NULL;
}

/*
 * The wait sleeps on the futex with the whole remaining time (a minute
 * here), so returning at all, long before the deadline, shows the publish
 * woke it.
 */
Test(accessor, a_publish_from_another_thread_wakes_the_wait_long_before_the_deadline)
{
	struct sb_bridge *b = plain_bridge();
	struct publisher p = { b, 100, false };
	pthread_t t;
	uint64_t seqno = 0;

	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	cr_assert_eq(pthread_create(&t, NULL, publish_later, &p), 0);
	uint64_t t0 = sb_monotonic_ns();
	cr_assert_eq(sb_bridge_wait_publish_advance(b, 0, in_ns(60 * SEC), "Op::Test", &seqno), 0,
		     "%s", sb_last_error());
	uint64_t took = sb_monotonic_ns() - t0;
	pthread_join(t, NULL);
	cr_assert_eq(seqno, 1);
	cr_assert_lt(took, 30 * SEC, "the wait ran to its deadline instead of being woken");
	sb_bridge_destroy(b);
}

Test(accessor, failed_permanently_ends_the_advance_wait_with_the_terminal_diagnostic)
{
	struct sb_bridge *b = plain_bridge();

	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	cr_assert_eq(sb_bridge_accessor_fail(b), 0);
	cr_assert_eq(sb_bridge_wait_publish_advance(b, 0, in_ns(60 * SEC), "Op::Test", NULL),
		     -ENOTRECOVERABLE);
	assert_error_has("Op::Test");
	assert_error_has("FAILED_PERMANENTLY");
	sb_bridge_destroy(b);
}

Test(accessor, the_deadline_reports_the_observed_worker_state_and_its_legend)
{
	struct sb_bridge *b = plain_bridge();

	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	cr_assert_eq(sb_bridge_wait_publish_advance(b, 0, in_ns(120000000ull), "Op::Test", NULL),
		     -ETIMEDOUT);
	assert_error_has("Op::Test");
	assert_error_has("worker state = 0");
	assert_error_has("0=Trying / 1=Succeeded / 2=FailedPermanently");
	/* A worker that published once and is re-initialising: state 0 again, seqno 1. */
	cr_assert_eq(sb_bridge_accessor_publish(b, NULL), 0);
	cr_assert_eq(sb_bridge_accessor_retry(b), 0);
	cr_assert_eq(sb_bridge_wait_publish_advance(b, 1, in_ns(50000000ull), "Op::Swap", NULL),
		     -ETIMEDOUT);
	assert_error_has("from 1 within deadline (worker state = 0;");
	sb_bridge_destroy(b);
}

Test(accessor, waiting_for_the_worker_to_leave_trying)
{
	struct sb_bridge *b = plain_bridge();
	struct publisher p = { b, 50, false };
	pthread_t t;

	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	cr_assert_eq(sb_bridge_wait_worker_not_trying(b, in_ns(60000000ull), "Op::Attach"),
		     -ETIMEDOUT);
	assert_error_has("Op::Attach");
	assert_error_has("stayed in TRYING");
	cr_assert_eq(pthread_create(&t, NULL, publish_later, &p), 0);
	cr_assert_eq(sb_bridge_wait_worker_not_trying(b, in_ns(60 * SEC), "Op::Attach"), 0, "%s",
		     sb_last_error());
	pthread_join(t, NULL);
	cr_assert_eq(sb_bridge_accessor_fail(b), 0);
	cr_assert_eq(sb_bridge_wait_worker_not_trying(b, in_ns(60 * SEC), "Op::Attach"),
		     -ENOTRECOVERABLE);
	assert_error_has("FAILED_PERMANENTLY");
	sb_bridge_destroy(b);
}

Test(accessor, a_fail_from_another_thread_wakes_a_worker_wait)
{
	struct sb_bridge *b = plain_bridge();
	struct publisher p = { b, 50, true };
	pthread_t t;

	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	cr_assert_eq(pthread_create(&t, NULL, publish_later, &p), 0);
	cr_assert_eq(sb_bridge_wait_worker_not_trying(b, in_ns(60 * SEC), "Op::Attach"),
		     -ENOTRECOVERABLE);
	pthread_join(t, NULL);
	sb_bridge_destroy(b);
}

Test(accessor, transitions_need_installed_state_and_stop_after_a_permanent_failure)
{
	struct sb_bridge *b = plain_bridge();

	cr_assert_eq(sb_bridge_accessor_publish(b, NULL), -ENODEV);
	cr_assert_eq(sb_bridge_accessor_retry(b), -ENODEV);
	cr_assert_eq(sb_bridge_accessor_fail(b), -ENODEV);
	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	cr_assert_eq(sb_bridge_accessor_install(b), -EALREADY);
	cr_assert_eq(sb_bridge_accessor_fail(b), 0);
	cr_assert_eq(sb_bridge_accessor_publish(b, NULL), -ENOTRECOVERABLE);
	cr_assert_eq(sb_bridge_accessor_retry(b), -ENOTRECOVERABLE);
	sb_bridge_destroy(b);
}

Test(accessor, a_consumer_reads_the_published_state)
{
	struct sb_bridge *b = plain_bridge();
	struct sb_consumer *c = consumer_of(b);
	enum sb_worker_state st;
	uint64_t seqno;
	bool installed;

	cr_assert_eq(sb_consumer_accessor(c, &installed, &seqno, &st), 0);
	cr_assert(!installed);
	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	cr_assert_eq(sb_bridge_accessor_publish(b, NULL), 0);
	cr_assert_eq(sb_bridge_accessor_publish(b, NULL), 0);
	cr_assert_eq(sb_consumer_accessor(c, &installed, &seqno, &st), 0);
	cr_assert(installed);
	cr_assert_eq(seqno, 2);
	cr_assert_eq(st, SB_WORKER_SUCCEEDED);
	cr_assert_str_eq(sb_worker_state_name(st), "Succeeded");
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

/* ---- the same waits from consumer processes ------------------------------------ */

static char sock[64];

static void name_socket(void)
{
	snprintf(sock, sizeof(sock), "@sb-aux-test-%d", (int)getpid());
}

TestSuite(accessor_process, .init = name_socket, .timeout = 60);

static void quiet(void *user, const char *line)
{
	(void)user;
	(void)line;
}

static struct sb_bridge *serving(const struct sb_bridge_ops *ops, uint64_t aux_bytes)
{
	struct sb_bridge *b = bridge_with(ops, 3, aux_bytes);
	struct sb_serve_config sc;

	sb_serve_config_default(&sc);
	sc.socket = sock;
	sc.log = quiet;
	cr_assert_eq(sb_bridge_serve(b, &sc), 0, "%s", sb_last_error());
	return b;
}

/* Spawn a waiting consumer process and let it get into its wait. */
static pid_t waiting_child(struct sb_bridge *b, const char *mode, FILE **out)
{
	pid_t pid = su_spawn(sock, mode, NULL, out);

	su_expect_line(*out, "attached");
	su_wait_attached(b, 1);
	usleep(100000); /* into the futex, most likely; either way the result is the same */
	return pid;
}

Test(accessor_process, a_publish_wakes_a_consumer_process_waiting_for_the_seqno)
{
	struct sb_bridge *b = serving(NULL, SB_DEFAULT_AUX_BYTES);
	char line[512];
	FILE *out;

	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	pid_t pid = waiting_child(b, "advance", &out);
	cr_assert_eq(sb_bridge_accessor_publish(b, NULL), 0);
	su_last_line(out, pid, line, sizeof(line));
	cr_assert(strncmp(line, "rc=0 seqno=1 ", 13) == 0, "child said: %s", line);
	sb_bridge_destroy(b);
}

Test(accessor_process, a_permanent_failure_reaches_a_consumer_process_with_its_diagnostic)
{
	struct sb_bridge *b = serving(NULL, SB_DEFAULT_AUX_BYTES);
	char line[512], want[32];
	FILE *out;

	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	pid_t pid = waiting_child(b, "not-trying", &out);
	cr_assert_eq(sb_bridge_accessor_fail(b), 0);
	su_last_line(out, pid, line, sizeof(line));
	snprintf(want, sizeof(want), "rc=%d ", -ENOTRECOVERABLE);
	cr_assert(strncmp(line, want, strlen(want)) == 0, "child said: %s", line);
	cr_assert(strstr(line, "Op::Child") && strstr(line, "FAILED_PERMANENTLY"), "child said: %s",
		  line);
	sb_bridge_destroy(b);
}

Test(accessor_process, a_consumer_process_waiting_on_a_closing_coordinator_is_told_so)
{
	struct sb_bridge *b = serving(NULL, SB_DEFAULT_AUX_BYTES);
	char line[512], want[32];
	FILE *out;

	cr_assert_eq(sb_bridge_accessor_install(b), 0);
	pid_t pid = waiting_child(b, "advance", &out);
	sb_bridge_destroy(b);
	su_last_line(out, pid, line, sizeof(line));
	snprintf(want, sizeof(want), "rc=%d ", -EPIPE);
	cr_assert(strncmp(line, want, strlen(want)) == 0, "child said: %s", line);
	cr_assert(strstr(line, "closed or died"), "child said: %s", line);
}

Test(accessor_process, without_accessor_state_a_consumer_process_returns_at_once)
{
	struct sb_bridge *b = serving(NULL, SB_DEFAULT_AUX_BYTES);
	char line[512];
	FILE *out;
	pid_t pid = su_spawn(sock, "advance", NULL, &out);

	su_expect_line(out, "attached");
	su_last_line(out, pid, line, sizeof(line));
	cr_assert(strncmp(line, "rc=0 seqno=0 ", 13) == 0, "child said: %s", line);
	sb_bridge_destroy(b);
}

/* ---- kernel ops ------------------------------------------------------------------ */

TestSuite(kernel_op, .timeout = 60);

/* Reads answer u32 id + 1 per entry; writes succeed with no values. */
static void kop_callback(void *user, const struct sb_kop_request *req, struct sb_kop_reply *reply)
{
	static _Thread_local struct sb_kop_value vals[8];
	int *calls = user;

	(*calls)++;
	reply->success = true;
	reply->reason = NULL;
	if (req->direction == SB_KOP_READ) {
		for (size_t i = 0; i < req->n_entries && i < 8; i++)
			vals[i] =
			    (struct sb_kop_value){ .kind = SB_KOP_U32, .num = req->id + 1 + i };
		reply->read_values = vals;
		reply->n_values = req->n_entries < 8 ? req->n_entries : 8;
	}
}

static struct sb_bridge *kop_bridge(int *calls)
{
	struct sb_bridge_ops ops = { .kernel_op = kop_callback, .user = calls };

	return bridge_with(&ops, 3, SB_DEFAULT_AUX_BYTES);
}

static const struct sb_kop_entry read_entry = { "scx_root->exit_kind", { .kind = SB_KOP_NONE } };

static struct sb_kop_request read_req(uint64_t id, const char *tag)
{
	return (struct sb_kop_request){ id, SB_KOP_HOT, SB_KOP_READ, tag, &read_entry, 1 };
}

Test(kernel_op, without_a_callback_dispatch_says_not_installed_and_logs_nothing)
{
	struct sb_bridge *b = plain_bridge();
	struct sb_kop_request req = read_req(1, "t");
	struct sb_kop_reply *reply = (void *)1;
	struct sb_kop_log log;

	cr_assert_eq(sb_bridge_dispatch_kernel_op(b, &req, &reply), -ENOSYS);
	cr_assert_null(reply);
	assert_error_has("no kernel-op callback");
	cr_assert_eq(sb_bridge_drain_kernel_ops(b, &log), 0);
	cr_assert_eq(log.count, 0);
	uint64_t n;
	struct sb_consumer *c = consumer_of(b);
	cr_assert_eq(sb_consumer_aux_count(c, &n), 0);
	cr_assert_eq(n, 0, "nothing reached the aux log either");
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(kernel_op, dispatch_returns_the_reply_and_logs_it_in_insertion_order)
{
	int calls = 0;
	struct sb_bridge *b = kop_bridge(&calls);
	struct sb_kop_reply *reply;
	struct sb_kop_log log;

	for (uint64_t id = 10; id < 13; id++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "op%llu", (unsigned long long)id);
		struct sb_kop_request req = read_req(id, tag);
		cr_assert_eq(sb_bridge_dispatch_kernel_op(b, &req, &reply), 0, "%s",
			     sb_last_error());
		cr_assert_eq(reply->id, id);
		cr_assert(reply->success);
		cr_assert_eq(reply->n_values, 1);
		cr_assert_eq(reply->read_values[0].num, id + 1);
		sb_kop_reply_free(reply);
	}
	cr_assert_eq(calls, 3);
	cr_assert_eq(sb_bridge_drain_kernel_ops(b, &log), 0);
	cr_assert_eq(log.count, 3);
	for (size_t i = 0; i < 3; i++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "op%zu", 10 + i);
		cr_assert_str_eq(log.items[i].tag, tag);
		cr_assert_eq(log.items[i].reply->id, 10 + i);
	}
	sb_kop_log_free(&log);
	cr_assert_eq(sb_bridge_drain_kernel_ops(b, &log), 0);
	cr_assert_eq(log.count, 0, "a drain empties the log");
	sb_bridge_destroy(b);
}

static void noop_kop(void *user, const struct sb_kop_request *req, struct sb_kop_reply *reply)
{
	(void)user;
	(void)req;
	(void)reply;
}

Test(kernel_op, a_callback_that_leaves_the_reply_alone_logs_a_failure)
{
	struct sb_bridge_ops ops = { .kernel_op = noop_kop };
	struct sb_bridge *b = bridge_with(&ops, 3, SB_DEFAULT_AUX_BYTES);
	struct sb_kop_request req = read_req(5, "untouched");
	struct sb_kop_reply *reply;

	cr_assert_eq(sb_bridge_dispatch_kernel_op(b, &req, &reply), 0);
	cr_assert_eq(reply->id, 5);
	cr_assert(!reply->success);
	cr_assert_str_eq(reply->reason, "the kernel-op callback left the reply unset");
	sb_kop_reply_free(reply);
	sb_bridge_destroy(b);
}

Test(kernel_op, record_only_replies_join_the_same_log)
{
	int calls = 0;
	struct sb_bridge *b = kop_bridge(&calls);
	struct sb_kop_request req = read_req(1, "via_callback");
	struct sb_kop_reply wire = { .id = 2, .success = true };
	struct sb_kop_log log;

	cr_assert_eq(sb_bridge_dispatch_kernel_op(b, &req, NULL), 0);
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "via_wire", &wire), 0);
	cr_assert_eq(calls, 1, "record-only does not call the callback");
	cr_assert_eq(sb_bridge_drain_kernel_ops(b, &log), 0);
	cr_assert_eq(log.count, 2);
	cr_assert_str_eq(log.items[0].tag, "via_callback");
	cr_assert_str_eq(log.items[1].tag, "via_wire");
	cr_assert_eq(log.items[1].reply->id, 2);
	sb_kop_log_free(&log);
	sb_bridge_destroy(b);
}

Test(kernel_op, value_lookup_takes_the_first_successful_reply_with_values_without_draining)
{
	struct sb_bridge *b = plain_bridge();
	struct sb_kop_value u64 = { .kind = SB_KOP_U64, .num = 1ull << 40 };
	struct sb_kop_value bytes = { .kind = SB_KOP_BYTES,
				      .bytes = (const uint8_t *)"abc",
				      .len = 3 };
	struct sb_kop_reply failed = {
		.id = 1, .success = false, .reason = "fault", .read_values = &u64, .n_values = 1
	};
	struct sb_kop_reply empty = { .id = 2, .success = true };
	struct sb_kop_reply first = {
		.id = 3, .success = true, .read_values = &bytes, .n_values = 1
	};
	struct sb_kop_reply second = {
		.id = 4, .success = true, .read_values = &u64, .n_values = 1
	};
	struct sb_kop_value v;
	struct sb_kop_log log;

	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "t", &failed), 0);
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "t", &empty), 0);
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "t", &first), 0);
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "t", &second), 0);
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "other", &second), 0);

	cr_assert_eq(sb_bridge_kernel_op_value(b, "t", &v), 0);
	cr_assert_eq(v.kind, SB_KOP_BYTES, "a failed reply and one without values are skipped");
	cr_assert_eq(v.len, 3);
	cr_assert_arr_eq(v.bytes, "abc", 3);
	sb_kop_value_free(&v);
	cr_assert_eq(sb_bridge_kernel_op_value(b, "other", &v), 0);
	cr_assert_eq(v.kind, SB_KOP_U64);
	cr_assert_eq(v.num, 1ull << 40);
	cr_assert_eq(sb_bridge_kernel_op_value(b, "nobody", &v), -ENOENT);

	cr_assert_eq(sb_bridge_drain_kernel_ops(b, &log), 0);
	cr_assert_eq(log.count, 5, "the lookups drained nothing");
	sb_kop_log_free(&log);
	cr_assert_eq(sb_bridge_kernel_op_value(b, "t", &v), -ENOENT, "after the drain: nothing");
	sb_bridge_destroy(b);
}

Test(kernel_op, out_of_bound_tags_reasons_and_replies_are_refused_and_nothing_is_logged)
{
	struct sb_bridge *b = plain_bridge();
	char tag[SB_KOP_TAG_MAX + 2], reason[SB_KOP_REASON_MAX + 2];
	struct sb_kop_log log;

	memset(tag, 't', sizeof(tag) - 1);
	tag[sizeof(tag) - 1] = '\0';
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	struct sb_kop_reply ok = { .id = 1, .success = true };
	struct sb_kop_reply long_reason = { .id = 1, .success = false, .reason = reason };
	uint8_t *huge = calloc(1, SB_KOP_REPLY_MAX);
	struct sb_kop_value big = { .kind = SB_KOP_BYTES, .bytes = huge, .len = SB_KOP_REPLY_MAX };
	struct sb_kop_reply too_big = {
		.id = 1, .success = true, .read_values = &big, .n_values = 1
	};
	struct sb_kop_value wide = { .kind = SB_KOP_U32, .num = 1ull << 32 };
	struct sb_kop_reply not_u32 = {
		.id = 1, .success = true, .read_values = &wide, .n_values = 1
	};

	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, tag, &ok), -ENAMETOOLONG);
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "", &ok), -EINVAL);
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, NULL, &ok), -EINVAL);
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "t", NULL), -EINVAL);
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "t", &long_reason), -ENAMETOOLONG);
	assert_error_has("reason");
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "t", &too_big), -E2BIG);
	assert_error_has("1048576");
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "t", &not_u32), -EINVAL);
	cr_assert_eq(sb_bridge_drain_kernel_ops(b, &log), 0);
	cr_assert_eq(log.count, 0);
	free(huge);
	sb_bridge_destroy(b);
}

Test(kernel_op, a_reply_that_cannot_fit_the_aux_log_is_refused_whole)
{
	struct sb_bridge *b = bridge_with(NULL, 3, 64u << 10);
	uint8_t payload[40000] = { 0 };
	struct sb_kop_value v = { .kind = SB_KOP_BYTES, .bytes = payload, .len = sizeof(payload) };
	struct sb_kop_reply r = { .id = 1, .success = true, .read_values = &v, .n_values = 1 };
	struct sb_kop_log log;

	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "big", &r), -E2BIG);
	assert_error_has("raise aux_bytes");
	cr_assert_eq(sb_bridge_drain_kernel_ops(b, &log), 0);
	cr_assert_eq(log.count, 0, "not in the coordinator's log either");
	sb_bridge_destroy(b);
}

Test(kernel_op, a_request_outside_the_bounds_never_reaches_the_callback)
{
	int calls = 0;
	struct sb_bridge *b = kop_bridge(&calls);
	struct sb_kop_request req = read_req(1, "t");
	struct sb_kop_entry no_target = { NULL, { .kind = SB_KOP_NONE } };

	req.mode = 7;
	cr_assert_eq(sb_bridge_dispatch_kernel_op(b, &req, NULL), -EINVAL);
	req = read_req(1, "t");
	req.entries = &no_target;
	cr_assert_eq(sb_bridge_dispatch_kernel_op(b, &req, NULL), -EINVAL);
	req = read_req(1, "t");
	req.n_entries = SB_KOP_ENTRIES_MAX + 1;
	cr_assert_eq(sb_bridge_dispatch_kernel_op(b, &req, NULL), -E2BIG);
	cr_assert_eq(sb_bridge_dispatch_kernel_op(b, NULL, NULL), -EINVAL);
	cr_assert_eq(calls, 0);
	sb_bridge_destroy(b);
}

/* ---- the msgpack forms ------------------------------------------------------------ */

TestSuite(kop_codec, .timeout = 60);

Test(kop_codec, requests_round_trip_with_every_value_kind)
{
	const uint8_t raw[] = { 0, 1, 2, 0xff };
	struct sb_kop_entry e[5] = {
		{ "a", { .kind = SB_KOP_NONE } },
		{ "b", { .kind = SB_KOP_U32, .num = 0xffffffffu } },
		{ "c", { .kind = SB_KOP_U64, .num = UINT64_MAX } },
		{ "d", { .kind = SB_KOP_BYTES, .bytes = raw, .len = sizeof(raw) } },
		{ "e", { .kind = SB_KOP_OR_U32, .num = 0x80 } },
	};
	struct sb_kop_request req = { UINT64_MAX, SB_KOP_COLD, SB_KOP_WRITE, "tag", e, 5 };
	struct sb_kop_request *back;
	void *buf;
	size_t len;

	cr_assert_eq(sb_kop_request_encode(&req, &buf, &len), 0, "%s", sb_last_error());
	cr_assert_eq(sb_kop_request_decode(buf, len, &back), 0, "%s", sb_last_error());
	cr_assert_eq(back->id, UINT64_MAX);
	cr_assert_eq(back->mode, SB_KOP_COLD);
	cr_assert_eq(back->direction, SB_KOP_WRITE);
	cr_assert_str_eq(back->tag, "tag");
	cr_assert_eq(back->n_entries, 5);
	for (int i = 0; i < 5; i++) {
		cr_assert_str_eq(back->entries[i].target, e[i].target);
		cr_assert_eq(back->entries[i].value.kind, e[i].value.kind);
		cr_assert_eq(back->entries[i].value.num, e[i].value.num);
	}
	cr_assert_eq(back->entries[3].value.len, sizeof(raw));
	cr_assert_arr_eq(back->entries[3].value.bytes, raw, sizeof(raw));
	sb_kop_request_free(back);
	free(buf);
}

Test(kop_codec, replies_round_trip_and_decoding_refuses_what_is_not_a_reply)
{
	struct sb_kop_value v = { .kind = SB_KOP_U32, .num = 7 };
	struct sb_kop_reply r = {
		.id = 9, .success = true, .reason = "", .read_values = &v, .n_values = 1
	};
	struct sb_kop_reply *back;
	void *buf;
	size_t len;

	cr_assert_eq(sb_kop_reply_encode(&r, &buf, &len), 0);
	cr_assert_eq(sb_kop_reply_decode(buf, len, &back), 0, "%s", sb_last_error());
	cr_assert_eq(back->id, 9);
	cr_assert_str_eq(back->reason, "");
	cr_assert_eq(back->read_values[0].num, 7);
	sb_kop_reply_free(back);
	for (size_t cut = 0; cut < len; cut++)
		cr_assert_eq(sb_kop_reply_decode(buf, cut, &back), -EBADMSG, "a %zu-byte prefix",
			     cut);
	free(buf);

	/* Hand-made documents: each breaks one rule. */
	static const struct {
		const char *why;
		const char *bytes;
		size_t len;
	} bad[] = {
		{ "not a map", "\x91\x01", 2 },
		{ "success missing", "\x81\xa2id\x01", 5 },
		{ "unknown key", "\x83\xa2id\x01\xa7success\xc3\xa1x\x01", 16 },
		{ "repeated key", "\x83\xa2id\x01\xa7success\xc3\xa2id\x02", 17 },
		{ "u32 too wide",
		  "\x83\xa2id\x01\xa7success\xc3\xabread_values\x91\x81\xa3u32\xcf"
		  "\x00\x00\x00\x01\x00\x00\x00\x00",
		  41 },
		{ "bytes as str",
		  "\x83\xa2id\x01\xa7success\xc3\xabread_values\x91\x81\xa5"
		  "bytes"
		  "\xa1x",
		  34 },
		{ "two objects", "\x82\xa2id\x01\xa7success\xc3\xc0", 15 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(sb_kop_reply_decode(bad[i].bytes, bad[i].len, &back), -EBADMSG, "%s",
			     bad[i].why);
}

/* ---- cgroup.procs ------------------------------------------------------------------- */

TestSuite(cgroup_procs, .timeout = 60);

static int record_on_active(struct sb_bridge *b, void *user)
{
	const int32_t pids[] = { 1, 2 };
	(void)user;
	return sb_bridge_record_cgroup_procs(b, "tag", "cg", pids, 2);
}

/*
 * The reference's "visible via a clone" pattern: code that only knows the
 * thread's active bridge records; the owner drains through its own handle.
 */
Test(cgroup_procs, a_record_through_the_active_bridge_is_seen_by_the_owner_and_drained_for_both)
{
	struct sb_bridge *b = plain_bridge();
	struct sb_cgroup_procs_log log;
	int rc = -1;

	{
		SB_ACTIVE_BRIDGE_SCOPE(b);
		cr_assert_eq(sb_with_active_bridge(record_on_active, NULL, &rc), 0);
		cr_assert_eq(rc, 0);
	}
	cr_assert_eq(sb_bridge_drain_cgroup_procs(b, &log), 0);
	cr_assert_eq(log.count, 1);
	cr_assert_str_eq(log.items[0]->tag, "tag");
	cr_assert_str_eq(log.items[0]->cgroup, "cg");
	cr_assert_eq(log.items[0]->n_pids, 2);
	cr_assert_eq(log.items[0]->pids[0], 1);
	cr_assert_eq(log.items[0]->pids[1], 2);
	sb_cgroup_procs_log_free(&log);
	cr_assert_eq(sb_bridge_drain_cgroup_procs(b, &log), 0);
	cr_assert_eq(log.count, 0, "one shared log: the drain emptied it for every handle");
	sb_bridge_destroy(b);
}

Test(cgroup_procs, drain_consumes_and_later_records_start_afresh)
{
	struct sb_bridge *b = plain_bridge();
	struct sb_cgroup_procs_log log;
	const int32_t one = 1, two = 2, three = 3;

	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "t1", "cg", &one, 1), 0);
	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "t2", "cg", &two, 1), 0);
	cr_assert_eq(sb_bridge_drain_cgroup_procs(b, &log), 0);
	cr_assert_eq(log.count, 2);
	sb_cgroup_procs_log_free(&log);
	cr_assert_eq(sb_bridge_drain_cgroup_procs(b, &log), 0);
	cr_assert_eq(log.count, 0);
	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "t3", "cg", &three, 1), 0);
	cr_assert_eq(sb_bridge_drain_cgroup_procs(b, &log), 0);
	cr_assert_eq(log.count, 1);
	cr_assert_str_eq(log.items[0]->tag, "t3");
	sb_cgroup_procs_log_free(&log);
	sb_bridge_destroy(b);
}

Test(cgroup_procs, by_tag_returns_the_first_match_without_draining)
{
	struct sb_bridge *b = plain_bridge();
	const int32_t a[] = { 10, 20 }, y = 30, again = 40;
	struct sb_cgroup_procs *p;
	struct sb_cgroup_procs_log log;

	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "tag_a", "cg_x", a, 2), 0);
	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "tag_b", "cg_y", &y, 1), 0);
	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "tag_a", "cg_x", &again, 1), 0);
	cr_assert_eq(sb_bridge_cgroup_procs_by_tag(b, "tag_a", &p), 0);
	cr_assert_eq(p->n_pids, 2, "the first of the two tag_a snapshots");
	cr_assert_eq(p->pids[0], 10);
	cr_assert_eq(p->pids[1], 20);
	cr_assert_str_eq(p->cgroup, "cg_x");
	sb_cgroup_procs_free(p);
	cr_assert_eq(sb_bridge_cgroup_procs_by_tag(b, "tag_unknown", &p), -ENOENT);
	cr_assert_null(p);
	cr_assert_eq(sb_bridge_drain_cgroup_procs(b, &log), 0);
	cr_assert_eq(log.count, 3, "duplicates are kept, and the lookup drained nothing");
	sb_cgroup_procs_log_free(&log);
	cr_assert_eq(sb_bridge_cgroup_procs_by_tag(b, "tag_a", &p), -ENOENT);
	sb_bridge_destroy(b);
}

Test(cgroup_procs, an_empty_cgroup_is_a_snapshot_and_bad_arguments_log_nothing)
{
	struct sb_bridge *b = plain_bridge();
	struct sb_cgroup_procs_log log;
	char name[SB_CGROUP_NAME_MAX + 2];

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "empty", "cg", NULL, 0), 0);
	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "t", "", NULL, 0), -EINVAL);
	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "t", NULL, NULL, 0), -EINVAL);
	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "t", name, NULL, 0), -ENAMETOOLONG);
	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "t", "cg", NULL, 3), -EINVAL);
	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "t", "cg", NULL, SB_CGROUP_PIDS_MAX + 1),
		     -E2BIG);
	cr_assert_eq(sb_bridge_drain_cgroup_procs(b, &log), 0);
	cr_assert_eq(log.count, 1);
	cr_assert_eq(log.items[0]->n_pids, 0);
	sb_cgroup_procs_log_free(&log);
	sb_bridge_destroy(b);
}

/* ---- the aux log, as consumers see it -------------------------------------------- */

TestSuite(aux_log, .init = name_socket, .timeout = 60);

struct aux_seen {
	uint64_t items, bad, first_seq;
};

static int collect(void *user, const struct sb_aux_item *item)
{
	struct aux_seen *s = user;

	if (!s->items++)
		s->first_seq = item->seq;
	s->bad += !tu_aux_check(item);
	return 0;
}

Test(aux_log,
     a_consumer_drains_kernel_ops_and_cgroup_procs_in_order_whatever_the_coordinator_drained)
{
	struct sb_bridge *b = plain_bridge();
	struct sb_consumer *c = consumer_of(b);
	struct aux_seen seen = { 0 };
	struct sb_aux_counts a;
	struct sb_kop_log kl;
	struct sb_cgroup_procs_log cl;

	for (uint64_t i = 1; i <= 50; i++)
		cr_assert_eq(tu_aux_put(b, i), 0, "%s", sb_last_error());
	/* The coordinator's own destructive drains leave the consumers' stream alone. */
	cr_assert_eq(sb_bridge_drain_kernel_ops(b, &kl), 0);
	cr_assert_eq(kl.count, 25);
	sb_kop_log_free(&kl);
	cr_assert_eq(sb_bridge_drain_cgroup_procs(b, &cl), 0);
	cr_assert_eq(cl.count, 25);
	sb_cgroup_procs_log_free(&cl);

	cr_assert_eq(sb_consumer_drain_aux(c, collect, &seen, &a), 0, "%s", sb_last_error());
	cr_assert_eq(a.records, 50);
	cr_assert_eq(a.delivered, 50);
	cr_assert_eq(a.lapped, 0);
	cr_assert_eq(seen.items, 50);
	cr_assert_eq(seen.bad, 0, "every item is the one recorded under its sequence");
	cr_assert_eq(seen.first_seq, 1);
	cr_assert_eq(sb_consumer_drain_aux(c, collect, &seen, &a), 0);
	cr_assert_eq(a.records, 0, "nothing twice");
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(aux_log, a_lapped_consumer_accounts_for_every_record_exactly)
{
	struct sb_bridge *b = bridge_with(NULL, 3, 64u << 10);
	struct sb_consumer *c = consumer_of(b);
	struct aux_seen seen = { 0 };
	struct sb_aux_counts a, total;
	uint64_t n;

	for (uint64_t i = 1; i <= 3000; i++)
		cr_assert_eq(tu_aux_put(b, i), 0, "%s", sb_last_error());
	do
		cr_assert_eq(sb_consumer_drain_aux(c, collect, &seen, &a), 0, "%s",
			     sb_last_error());
	while (a.records);
	cr_assert_eq(sb_consumer_aux_totals(c, &total), 0);
	cr_assert_eq(sb_consumer_aux_count(c, &n), 0);
	cr_assert_eq(n, 3000);
	cr_assert_eq(total.records, 3000);
	cr_assert_eq(total.delivered + total.lapped, total.records);
	cr_assert_gt(total.lapped, 0, "a 64 KiB aux log cannot hold 3000 records");
	cr_assert_eq(total.delivered, seen.items);
	cr_assert_eq(seen.bad, 0);
	cr_assert_eq(seen.first_seq, total.lapped + 1, "the lapped ones are the oldest");
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(aux_log, consumer_processes_drain_the_aux_log_with_exact_accounting)
{
	struct sb_bridge *b = serving(NULL, 64u << 10);
	char line[2][512];
	FILE *out[2];
	pid_t pid[2];

	for (int k = 0; k < 2; k++) {
		pid[k] = su_spawn(sock, "aux", NULL, &out[k]);
		su_expect_line(out[k], "attached");
	}
	su_wait_attached(b, 2);
	for (uint64_t i = 1; i <= 2000; i++) {
		cr_assert_eq(tu_aux_put(b, i), 0, "%s", sb_last_error());
		if (i % 100 == 0)
			usleep(1000);
	}
	sb_bridge_destroy(b);
	for (int k = 0; k < 2; k++) {
		unsigned long long rec, del, lap, bad;
		char state[16];

		su_last_line(out[k], pid[k], line[k], sizeof(line[k]));
		cr_assert_eq(
		    sscanf(line[k],
			   "aux records=%llu delivered=%llu lapped=%llu bad=%llu state=%15s", &rec,
			   &del, &lap, &bad, state),
		    5, "consumer said: %s", line[k]);
		cr_assert_eq(rec, 2000, "consumer said: %s", line[k]);
		cr_assert_eq(del + lap, rec);
		cr_assert_eq(bad, 0);
		cr_assert_gt(del, 0);
		cr_assert_str_eq(state, "closed");
	}
}

/* ---- the thread's active bridge ----------------------------------------------------- */

TestSuite(active_bridge, .timeout = 60);

static int report_bridge(struct sb_bridge *b, void *user)
{
	*(struct sb_bridge **)user = b;
	return 42;
}

static void *other_thread(void *arg)
{
	*(struct sb_bridge **)arg = sb_active_bridge();
	return NULL;
}

Test(active_bridge, installs_nest_and_each_guard_restores_the_one_before)
{
	struct sb_bridge *outer = plain_bridge(), *inner = plain_bridge(), *got = NULL;
	int rc = 0;

	cr_assert_null(sb_active_bridge());
	cr_assert_eq(sb_with_active_bridge(report_bridge, &got, &rc), -ENOENT);
	cr_assert_null(got, "fn must not run without an active bridge");
	assert_error_has("no bridge is active");

	struct sb_bridge_guard g1 = sb_bridge_set_thread_local(outer);
	cr_assert_eq(sb_active_bridge(), outer);
	struct sb_bridge_guard g2 = sb_bridge_set_thread_local(inner);
	cr_assert_eq(sb_with_active_bridge(report_bridge, &got, &rc), 0);
	cr_assert_eq(got, inner);
	cr_assert_eq(rc, 42);
	sb_bridge_guard_restore(&g2);
	cr_assert_eq(sb_active_bridge(), outer);
	sb_bridge_guard_restore(&g2); /* twice: no effect */
	cr_assert_eq(sb_active_bridge(), outer);
	sb_bridge_guard_restore(&g1);
	cr_assert_null(sb_active_bridge());
	sb_bridge_destroy(inner);
	sb_bridge_destroy(outer);
}

Test(active_bridge, the_scope_macro_restores_on_every_exit_and_other_threads_see_their_own)
{
	struct sb_bridge *b = plain_bridge(), *seen = (void *)1;
	pthread_t t;

	for (int i = 0; i < 3; i++) {
		SB_ACTIVE_BRIDGE_SCOPE(b);
		cr_assert_eq(sb_active_bridge(), b);
		if (i == 1)
			break; /* leaving early restores too */
	}
	cr_assert_null(sb_active_bridge());
	{
		SB_ACTIVE_BRIDGE_SCOPE(b);
		cr_assert_eq(pthread_create(&t, NULL, other_thread, &seen), 0);
		pthread_join(t, NULL);
		cr_assert_null(seen, "the active bridge is per thread");
	}
	cr_assert_null(sb_active_bridge());
	sb_bridge_destroy(b);
}

/* ---- aux wake-ups, starting points and refusals, as consumers see them ---------- */

static enum sb_wait_status wait_now(struct sb_consumer *c)
{
	enum sb_wait_status st;

	cr_assert_eq(sb_consumer_wait(c, 0, &st), 0);
	return st;
}

Test(aux_log, a_consumer_that_drains_only_aux_is_woken_by_aux_appends_and_only_by_news)
{
	struct sb_bridge *b = plain_bridge();
	struct sb_consumer *c = consumer_of(b);
	struct sb_aux_counts a;

	cr_assert_eq(sb_consumer_drain_aux(c, NULL, NULL, &a), 0);
	cr_assert_eq(wait_now(c), SB_WAIT_TIMEOUT, "nothing new after the drain");
	cr_assert_eq(tu_aux_put(b, 1), 0);
	cr_assert_eq(wait_now(c), SB_WAIT_READY, "an aux append is news");
	cr_assert_eq(sb_consumer_drain_aux(c, NULL, NULL, &a), 0);
	cr_assert_eq(a.delivered, 1);
	cr_assert_eq(wait_now(c), SB_WAIT_TIMEOUT);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(aux_log, a_consumer_of_records_and_aux_stays_ready_until_both_are_drained)
{
	struct sb_bridge *b = plain_bridge();
	struct sb_consumer *c = consumer_of(b);
	uint8_t buf[64];
	struct sb_report r = { .msgpack = buf, .msgpack_len = tu_report(buf, 16, 1) };

	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, NULL), 0);
	cr_assert_eq(sb_consumer_drain_aux(c, NULL, NULL, NULL), 0);
	cr_assert_eq(wait_now(c), SB_WAIT_TIMEOUT);
	cr_assert_eq(sb_bridge_store(b, "t", &r), 0);
	cr_assert_eq(tu_aux_put(b, 1), 0);
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, NULL), 0);
	cr_assert_eq(wait_now(c), SB_WAIT_READY, "the aux record is still unread");
	cr_assert_eq(sb_consumer_drain_aux(c, NULL, NULL, NULL), 0);
	cr_assert_eq(wait_now(c), SB_WAIT_TIMEOUT);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(aux_log, a_consumer_started_at_the_end_sees_only_later_aux_records)
{
	struct sb_bridge *b = plain_bridge();
	struct sb_consumer *c;
	struct aux_seen seen = { 0 };
	struct sb_aux_counts a;
	int fd;

	for (uint64_t i = 1; i <= 10; i++)
		cr_assert_eq(tu_aux_put(b, i), 0);
	cr_assert_eq(sb_bridge_data_fd(b, &fd), 0);
	cr_assert_eq(sb_consumer_open_fd(fd, SB_CONSUMER_START_AT_END, &c), 0);
	close(fd);
	for (uint64_t i = 11; i <= 13; i++)
		cr_assert_eq(tu_aux_put(b, i), 0);
	cr_assert_eq(sb_consumer_drain_aux(c, collect, &seen, &a), 0);
	cr_assert_eq(a.records, 3);
	cr_assert_eq(a.delivered, 3);
	cr_assert_eq(seen.first_seq, 11);
	cr_assert_eq(seen.bad, 0);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

static uint64_t aux_count_of(struct sb_bridge *b)
{
	struct sb_consumer *c = consumer_of(b);
	uint64_t n;

	cr_assert_eq(sb_consumer_aux_count(c, &n), 0);
	sb_consumer_close(c);
	return n;
}

Test(kernel_op, refused_records_reach_neither_log)
{
	struct sb_bridge *b = bridge_with(NULL, 3, 64u << 10);
	uint8_t payload[40000] = { 0 };
	struct sb_kop_value v = { .kind = SB_KOP_BYTES, .bytes = payload, .len = sizeof(payload) };
	struct sb_kop_reply big = { .id = 1, .success = true, .read_values = &v, .n_values = 1 };
	struct sb_kop_reply ok = { .id = 1, .success = true };
	const int32_t pids[1] = { 1 };

	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "big", &big), -E2BIG);
	cr_assert_eq(sb_bridge_record_kernel_op_reply(b, "", &ok), -EINVAL);
	cr_assert_eq(sb_bridge_record_cgroup_procs(b, "t", "", pids, 1), -EINVAL);
	cr_assert_eq(aux_count_of(b), 0, "nothing reached the consumers' aux log");
	sb_bridge_destroy(b);
}

struct counting_kop {
	int calls, releases;
	const char *reason;
};

static void reasoned_kop(void *user, const struct sb_kop_request *req, struct sb_kop_reply *reply)
{
	struct counting_kop *k = user;

	(void)req;
	k->calls++;
	reply->success = false;
	reply->reason = k->reason;
}

static void count_release(void *user, struct sb_kop_reply *reply)
{
	struct counting_kop *k = user;

	(void)reply;
	k->releases++;
}

Test(kernel_op, release_runs_once_per_reply_and_a_refused_reply_leaves_a_failed_one_in_the_logs)
{
	char long_reason[SB_KOP_REASON_MAX + 10];
	struct counting_kop k = { 0, 0, "fine" };
	struct sb_bridge_ops ops = { .kernel_op = reasoned_kop,
				     .kernel_op_release = count_release,
				     .user = &k };
	struct sb_bridge *b = bridge_with(&ops, 3, SB_DEFAULT_AUX_BYTES);
	struct sb_kop_request req = read_req(7, "op");
	struct sb_kop_reply *reply = (void *)1;
	struct sb_kop_log log;

	cr_assert_eq(sb_bridge_dispatch_kernel_op(b, &req, NULL), 0);
	cr_assert_eq(k.calls, 1);
	cr_assert_eq(k.releases, 1);

	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	k.reason = long_reason; /* the callback's reply now breaks a bound */
	cr_assert_eq(sb_bridge_dispatch_kernel_op(b, &req, &reply), -ENAMETOOLONG);
	cr_assert_null(reply);
	assert_error_has("logged in its place");
	cr_assert_eq(k.calls, 2, "the op ran");
	cr_assert_eq(k.releases, 2, "and its reply was released");
	cr_assert_eq(sb_bridge_drain_kernel_ops(b, &log), 0);
	cr_assert_eq(log.count, 2, "the ran op is in the log");
	cr_assert_eq(log.items[1].reply->id, 7);
	cr_assert(!log.items[1].reply->success);
	cr_assert(strstr(log.items[1].reply->reason, "refused"), "%s", log.items[1].reply->reason);
	sb_kop_log_free(&log);
	cr_assert_eq(aux_count_of(b), 2, "and in the aux log");
	sb_bridge_destroy(b);
}

/* ---- aux records that lie ---------------------------------------------------------- */

/*
 * A region image with two aux records (a kernel op, then a cgroup.procs
 * snapshot); the test breaks one thing in it, and a consumer of the image
 * must refuse it with -EBADMSG, without a crash and without moving.
 */
struct forged {
	uint8_t *img;
	size_t size;
	struct sb_header *hdr;
	struct sb_hot *hot;
	struct sb_rec *first, *second;
};

static struct forged forge(void)
{
	struct sb_bridge *b = plain_bridge();
	struct forged f;
	int fd;

	cr_assert_eq(tu_aux_put(b, 1), 0);
	cr_assert_eq(tu_aux_put(b, 2), 0);
	cr_assert_eq(sb_bridge_data_fd(b, &fd), 0);
	f.img = tu_read_region(fd, &f.size);
	close(fd);
	sb_bridge_destroy(b);
	f.hdr = (struct sb_header *)f.img;
	f.hot = (struct sb_hot *)(f.img + f.hdr->sections[SB_SEC_HOT].offset);
	f.first = (struct sb_rec *)(f.img + f.hdr->sections[SB_SEC_AUX].offset);
	f.second = (struct sb_rec *)((uint8_t *)f.first + f.first->len);
	cr_assert_eq(f.first->kind, SB_REC_KERNEL_OP);
	cr_assert_eq(f.second->kind, SB_REC_CGROUP_PROCS);
	return f;
}

static void expect_aux_refused(struct forged *f, const char *why)
{
	char path[] = "/tmp/sb-aux-forged.XXXXXX";
	int fd = mkstemp(path);
	struct sb_consumer *c;
	struct sb_aux_counts a = { 99, 99, 99 };
	uint64_t before;

	cr_assert_eq(write(fd, f->img, f->size), (ssize_t)f->size);
	close(fd);
	cr_assert_eq(sb_consumer_open_image(path, 0, &c), 0, "%s", sb_last_error());
	unlink(path);
	free(f->img);
	int rc = sb_consumer_drain_aux(c, NULL, NULL, &a);
	cr_assert(rc == -EBADMSG || rc == -EPROTO, "%s: drain returned %d", why, rc);
	cr_assert_eq(a.records, a.delivered + a.lapped);
	cr_assert_eq(sb_consumer_aux_totals(c, &a), 0);
	before = a.records;
	cr_assert_eq(sb_consumer_drain_aux(c, NULL, NULL, NULL), rc, "%s: the same refusal again",
		     why);
	cr_assert_eq(sb_consumer_aux_totals(c, &a), 0);
	cr_assert_eq(a.records, before, "%s: a refused record moves nothing", why);
	sb_consumer_close(c);
}

Test(aux_log, hostile_aux_records_are_refused_without_moving_the_cursor)
{
	struct forged f;

	f = forge();
	f.second->tag_len = 0xffff;
	expect_aux_refused(&f, "a tag longer than the record");
	f = forge();
	f.second->report_len = 1u << 30;
	expect_aux_refused(&f, "a payload longer than the record");
	f = forge();
	((char *)(f.second + 1))[1] = '\0';
	expect_aux_refused(&f, "a NUL in the tag");
	f = forge();
	f.second->kind = 9;
	expect_aux_refused(&f, "an unknown kind");
	f = forge();
	f.second->step_index = 1;
	expect_aux_refused(&f, "a field that must be 0");
	f = forge();
	/* The pid array "cg_2" of /sb/2 holds [2, 3]: make the first pid a u64. */
	uint8_t *pids = (uint8_t *)(f.second + 1) + f.second->tag_len + f.second->schema_len;
	pids[1] = 0xcf;
	expect_aux_refused(&f, "a pid that is not an int32");
	f = forge();
	pids = (uint8_t *)(f.second + 1) + f.second->tag_len + f.second->schema_len;
	pids[0] = 0xdd; /* an array that claims 2^32-ish elements in a few bytes */
	expect_aux_refused(&f, "a pid count beyond the bytes");
	f = forge();
	f.first->commit = SB_REC_BUSY;
	expect_aux_refused(&f, "an uncommitted record below the head");
	f = forge();
	f.hot->aux_head += 1ull << 40; /* a head far beyond the tail */
	f.hot->aux_tail = 0;
	expect_aux_refused(&f, "a head more than a ring ahead");
}

/* ---- one end-of-drain rule for both logs ---------------------------------------------- */

static int stop_after_one(void *user, const struct sb_aux_item *item)
{
	(void)item;
	return ++*(int *)user >= 1 ? 1 : 0;
}

static int stop_after_one_entry(void *user, const struct sb_entry *e)
{
	(void)e;
	return ++*(int *)user >= 1 ? 1 : 0;
}

Test(aux_log, a_callback_that_stops_the_drain_leaves_the_rest_ready_as_the_record_log_does)
{
	struct sb_bridge *b = plain_bridge();
	struct sb_consumer *c = consumer_of(b);
	const int32_t pids[] = { 1, 2, 3 };
	uint8_t buf[64];
	struct sb_report r = { .msgpack = buf, .msgpack_len = tu_report(buf, 16, 1) };
	struct sb_aux_counts a;
	struct sb_drain_counts d;
	int calls = 0;

	for (int i = 0; i < 3; i++) {
		char tag[8];
		snprintf(tag, sizeof(tag), "t%d", i);
		cr_assert_eq(sb_bridge_record_cgroup_procs(b, tag, "/sys/fs/cgroup/x", pids, 3), 0);
		cr_assert_eq(sb_bridge_store(b, tag, &r), 0);
	}
	cr_assert_eq(sb_consumer_drain_aux(c, stop_after_one, &calls, &a), 1);
	cr_assert_eq(a.delivered, 1, "the callback stopped the drain after the first record");
	cr_assert_eq(wait_now(c), SB_WAIT_READY, "two aux records are unread");
	calls = 0;
	cr_assert_eq(sb_consumer_drain(c, stop_after_one_entry, &calls, &d), 1);
	cr_assert_eq(d.delivered, 1);
	cr_assert_eq(wait_now(c), SB_WAIT_READY, "two records and two aux records are unread");
	/* Once the coordinator is gone, the same rule decides between READY and CLOSED. */
	sb_bridge_destroy(b);
	cr_assert_eq(wait_now(c), SB_WAIT_READY, "what was published before the close comes first");
	cr_assert_eq(sb_consumer_drain_aux(c, NULL, NULL, &a), 0);
	cr_assert_eq(a.delivered, 2);
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, &d), 0);
	cr_assert_eq(d.delivered, 2);
	cr_assert_eq(wait_now(c), SB_WAIT_CLOSED);
	sb_consumer_close(c);
}
