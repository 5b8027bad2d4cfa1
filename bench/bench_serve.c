/*
 * bench/bench_serve.c - the multi-process serving path, measured.
 *
 *   1. raw_futex wake latency: a bare FUTEX_WAIT / FUTEX_WAKE ping-pong
 *      between two processes on a MAP_SHARED word, the floor for (2).
 *   2. snapbridge wake latency: a coordinator stores one 64-byte report
 *      stamped with CLOCK_MONOTONIC while a consumer, connected over the
 *      socket, sleeps in sb_consumer_wait(); the consumer's drain callback
 *      takes now - stamp.
 *   3. writer cost: one thread storing 4 KiB reports as fast as it can,
 *      with 0, 1 or 3 consumers that spin-drain or wait, in wall-clock
 *      stores/s and in stores per CPU-second of the storing thread.
 *
 * Coordinators store a warm-up (a log's worth) before consumers attach,
 * so page faults of a fresh log are not timed; consumers attach at the
 * end (SB_CONSUMER_START_AT_END) and account only for the timed stores.
 *
 * Every process of a run is a child of a single-threaded parent that only
 * forks and reaps (so no child is forked from a process with the bridge's
 * threads in it), kills the rest when one fails or a run overstays, and
 * reads the results from an anonymous shared mapping. Repetitions of the
 * compared cases are interleaved so that machine noise hits them alike.
 *
 * --syscall-probe N / --syscall-probe-unique N run in one process, for
 * strace: a bridge with one attached, never waiting consumer, 1000 warm-up
 * stores, "probe start" on stderr, N stores of 4 KiB, "probe end".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <snapbridge/snapbridge.h>

/* Internal: the writer's wake counter (b->hot->wakes) and the raw futex calls. */
#include "../coordinator/bridge_internal.h"
#include "../ring/clock.h"
#include "../ring/futex.h"

#define REPS		    5
#define LAT_SAMPLES	    2000
#define LAT_SAMPLES_QUICK   400
#define LAT_REPORT_BYTES    64
#define LAT_STAMP_AT	    2 /* after a bin 8 header: see make_report() */
#define LAT_WARMUP	    1024
#define WRITER_STORES	    200000
#define WRITER_STORES_QUICK 50000
#define WRITER_REPORT_BYTES 4096
#define WRITER_TAGS	    32
#define WRITER_LOG_BYTES    (64ull << 20)
#define WRITER_MAX_SNAPS    64
/* More than a log's worth, so that every page of the log is faulted in before timing. */
#define WRITER_WARMUP 20000
#define PROBE_WARMUP  1000
#define MAX_CONSUMERS 3
#define MAX_CHILDREN  (MAX_CONSUMERS + 1)
/* How long the sleeper has been announced before the wake: it is in the kernel by then. */
#define SETTLE_NS 75000
/* Any single step (a wake-up, an attach, a hand-shake) that takes longer is a failure. */
#define STEP_TIMEOUT_MS 5000
/* A whole run (all its processes) that takes longer is killed. */
#define RUN_TIMEOUT_MS 120000

/* ---- time and small helpers ------------------------------------------------------ */

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

static uint64_t deadline_after_ms(uint64_t ms)
{
	return sb__mono_ns() + ms * 1000000ull;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t percentile(const uint64_t *sorted, size_t n, unsigned pct)
{
	size_t rank = (n * pct + 99) / 100;

	return sorted[rank ? rank - 1 : 0];
}

struct spread {
	double median, min, max;
};

static struct spread spread_of(const double *v, unsigned n)
{
	double s[REPS];

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return (struct spread){ n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, s[0], s[n - 1] };
}

/*
 * A msgpack bin 8 / bin 16 of exactly len bytes (len >= 11), its body
 * filled; returns the offset of the body, where the stamp goes.
 */
static size_t make_report(uint8_t *buf, size_t len)
{
	size_t body = len - 2 <= 0xff ? 2 : 3;

	if (body == 2) {
		buf[0] = 0xc4;
		buf[1] = (uint8_t)(len - 2);
	} else {
		buf[0] = 0xc5;
		buf[1] = (uint8_t)((len - 3) >> 8);
		buf[2] = (uint8_t)(len - 3);
	}
	memset(buf + body, 0x5a, len - body);
	return body;
}

/* ---- what the processes of a run share -------------------------------------------- */

struct shared {
	/* raw_futex: the word the waiter sleeps on and its "about to sleep" announcement */
	_Alignas(64) uint32_t raw_word;
	_Alignas(64) uint32_t raw_asleep; /* the waiter stores word + 1 just before FUTEX_WAIT */
	_Alignas(64) uint64_t raw_stamp;
	_Alignas(64) uint32_t served; /* the coordinator serves: consumers may connect */
	uint32_t ready;		      /* consumers attached and drained once */
	uint32_t done;		      /* consumers finished */
	/* results */
	uint64_t wall_ns, cpu_ns, wakes, stores;
	struct sb_drain_counts counts[MAX_CONSUMERS];
	char err[MAX_CHILDREN][256];
	/*
	 * latency runs: [0, n) wake latencies, [n, 2n) the waker's call (stamp to
	 * return), [2n, 3n) snapbridge only: sb_consumer_wait() return to callback
	 */
	uint64_t samples[];
};

struct run {
	struct shared *sh;
	pid_t parent;
	char socket[64];
	unsigned nsamples; /* latency runs */
	uint64_t nstores;  /* writer runs */
	uint64_t warm;	   /* stores before consumers attach: set before the fork */
	unsigned nconsumers;
	bool waiting; /* writer runs: consumers wait (else spin-drain) */
};

typedef int (*child_fn)(struct run *r, int idx);

/* A child's failure: the message goes to the parent through the shared page. */
static int child_fail(struct run *r, int idx, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int child_fail(struct run *r, int idx, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->sh->err[idx], sizeof(r->sh->err[idx]), fmt, ap);
	va_end(ap);
	return err < 0 ? err : -EIO;
}

/* ---- the children's processes ------------------------------------------------------ */

struct group {
	pid_t pid[MAX_CHILDREN];
	const char *name[MAX_CHILDREN];
	unsigned n;
};

static int spawn(struct group *g, struct run *r, const char *name, child_fn fn)
{
	int idx = (int)g->n;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t chld;

		/* Never outlive the parent, whatever kills it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != r->parent)
			_exit(2);
		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		/* Sleeps of tens of microseconds should last what they say. */
		prctl(PR_SET_TIMERSLACK, 1000UL);
		_exit(fn(r, idx) == 0 ? 0 : 1);
	}
	g->pid[idx] = pid;
	g->name[idx] = name;
	g->n++;
	return 0;
}

static void kill_rest(struct group *g, bool *killed)
{
	for (unsigned i = 0; i < g->n; i++) {
		if (g->pid[i] > 0 && !killed[i]) {
			kill(g->pid[i], SIGKILL);
			killed[i] = true;
		}
	}
}

/*
 * Reap every child. At the first failure or at the deadline, kill the
 * others. Every child that failed by itself is reported with the message
 * it left. Returns 0, -EIO or -ETIMEDOUT.
 */
static int reap(struct group *g, struct run *r, const char *what)
{
	uint64_t deadline = deadline_after_ms(RUN_TIMEOUT_MS);
	bool killed[MAX_CHILDREN] = { false };
	unsigned left = g->n;
	int err = 0;
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	while (left) {
		for (unsigned i = 0; i < g->n; i++) {
			int st;

			if (g->pid[i] <= 0 || waitpid(g->pid[i], &st, WNOHANG) != g->pid[i])
				continue;
			g->pid[i] = 0;
			left--;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
				continue;
			if (!killed[i])
				fprintf(stderr, "bench: %s: %s failed (%s %d): %s\n", what,
					g->name[i], WIFEXITED(st) ? "exit" : "signal",
					WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
					r->sh->err[i][0] ? r->sh->err[i] : "no message");
			err = err ? err : -EIO;
			kill_rest(g, killed);
		}
		if (!left)
			break;
		uint64_t now = sb__mono_ns();
		if (now >= deadline) {
			fprintf(stderr, "bench: %s: still running after %d s, killed\n", what,
				RUN_TIMEOUT_MS / 1000);
			err = err ? err : -ETIMEDOUT;
			kill_rest(g, killed);
			deadline = UINT64_MAX;
			continue;
		}
		uint64_t wait = deadline - now < 100000000ull ? deadline - now : 100000000ull;
		struct timespec ts = { 0, (long)wait };
		(void)sigtimedwait(&chld, NULL, &ts);
	}
	return err;
}

/* Fresh shared page and a fresh socket name for one run. */
static void run_reset(struct run *r)
{
	static unsigned serial;

	memset(r->sh, 0, sizeof(*r->sh)); /* not the samples: every run rewrites its own */
	snprintf(r->socket, sizeof(r->socket), "@snapbridge-bench-%d-%u", (int)r->parent, serial++);
}

/* ---- 1. raw futex ping-pong -------------------------------------------------------- */

static int raw_waiter(struct run *r, int idx)
{
	struct shared *sh = r->sh;
	const struct timespec limit = { STEP_TIMEOUT_MS / 1000, 0 };

	for (unsigned i = 0; i < r->nsamples; i++) {
		uint32_t g = sb_load_acquire(&sh->raw_word);

		sb_store_seqcst(&sh->raw_asleep, g + 1);
		while (sb_load_acquire(&sh->raw_word) == g) {
			int err = sb__futex_wait(&sh->raw_word, g, &limit);
			if (err == -ETIMEDOUT)
				return child_fail(r, idx, err,
						  "no FUTEX_WAKE within %d ms (sample %u)",
						  STEP_TIMEOUT_MS, i);
		}
		uint64_t now = sb__mono_ns();
		/* pairs with the waker's release of raw_word, which follows the stamp */
		sh->samples[i] = now - sb_load_relaxed(&sh->raw_stamp);
	}
	return 0;
}

/* Wait until the sleeper announced it sleeps on gen, then give it SETTLE_NS to get there. */
static int raw_await_asleep(struct shared *sh, uint32_t gen)
{
	uint64_t deadline = deadline_after_ms(STEP_TIMEOUT_MS);

	while (sb_load_acquire(&sh->raw_asleep) != gen + 1) {
		if (sb__mono_ns() > deadline)
			return -ETIMEDOUT;
		sched_yield();
	}
	sleep_ns(SETTLE_NS);
	return 0;
}

static int raw_waker(struct run *r, int idx)
{
	struct shared *sh = r->sh;

	for (unsigned i = 0; i < r->nsamples; i++) {
		if (raw_await_asleep(sh, (uint32_t)i))
			return child_fail(r, idx, -ETIMEDOUT,
					  "waiter did not go to sleep within %d ms (sample %u)",
					  STEP_TIMEOUT_MS, i);
		uint64_t stamp = sb__mono_ns();
		sb_store_relaxed(&sh->raw_stamp, stamp);
		sb_store_release(&sh->raw_word, (uint32_t)i + 1);
		int woken = sb__futex_wake(&sh->raw_word, 1);
		if (woken < 0)
			return child_fail(r, idx, woken, "FUTEX_WAKE: %s", strerror(-woken));
		sh->samples[r->nsamples + i] = sb__mono_ns() - stamp;
	}
	return 0;
}

/* ---- coordinator and consumer plumbing --------------------------------------------- */

static void quiet_log(void *user, const char *line)
{
	(void)user;
	(void)line;
}

static int serve_bridge(struct run *r, uint32_t max_snapshots, uint64_t log_bytes,
			struct sb_bridge **out)
{
	struct sb_config cfg;
	struct sb_serve_config sc;
	int err;

	sb_config_default(&cfg);
	cfg.max_snapshots = max_snapshots;
	cfg.log_bytes = log_bytes;
	err = sb_bridge_create(&cfg, NULL, out);
	if (err)
		return err;
	sb_serve_config_default(&sc);
	sc.socket = r->socket;
	sc.log = quiet_log;
	err = sb_bridge_serve(*out, &sc);
	if (err)
		sb_bridge_destroy(*out);
	return err;
}

/* r->warm stores over tags round-robin before anyone attaches; then let the consumers in. */
static int warm_up_and_announce(struct run *r, struct sb_bridge *b, const struct sb_report *rep,
				const char (*tags)[8], unsigned ntags)
{
	for (uint64_t i = 0; i < r->warm; i++) {
		int err = sb_bridge_store(b, tags[i % ntags], rep);
		if (err)
			return err;
	}
	sb_store_release(&r->sh->served, 1);
	return 0;
}

/* Attach at the end of the warm-up: only the timed stores are accounted for. */
static int connect_when_served(struct run *r, struct sb_consumer **out)
{
	uint64_t deadline = deadline_after_ms(STEP_TIMEOUT_MS);

	while (!sb_load_acquire(&r->sh->served)) {
		if (sb__mono_ns() > deadline)
			return -ETIMEDOUT;
		sleep_ns(200000);
	}
	return sb_consumer_connect(r->socket, SB_CONSUMER_START_AT_END, out);
}

/* Until every consumer is done, so that none sees the close before its last drain. */
static int await_done(struct shared *sh, unsigned n)
{
	uint64_t deadline = deadline_after_ms(6 * STEP_TIMEOUT_MS);

	while (sb_load_acquire(&sh->done) < n) {
		if (sb__mono_ns() > deadline)
			return -ETIMEDOUT;
		sleep_ns(1000000);
	}
	return 0;
}

static int drain_events(struct sb_consumer *c)
{
	struct sb_events ev;
	int err = sb_consumer_drain_events(c, &ev);

	if (!err)
		sb_events_free(&ev);
	return err;
}

/* ---- 2. snapbridge wake latency ---------------------------------------------------- */

/*
 * Wait until the consumer has accounted for every store so far and says it
 * sleeps: its cursor moves when it drains, its waiting flag is set only
 * right before FUTEX_WAIT (after the adaptive spin). Then SETTLE_NS more.
 */
static int await_sleeping_consumer(struct sb_bridge *b, uint64_t stores)
{
	uint64_t deadline = deadline_after_ms(STEP_TIMEOUT_MS);
	struct sb_consumer_info info;
	size_t n;

	for (;;) {
		int err = sb_bridge_consumers(b, &info, 1, &n);
		if (err)
			return err;
		if (n >= 1 && info.waiting && info.cursor == stores)
			break;
		if (sb__mono_ns() > deadline)
			return -ETIMEDOUT;
		sched_yield();
	}
	sleep_ns(SETTLE_NS);
	return 0;
}

static int latency_coordinator(struct run *r, int idx)
{
	uint8_t buf[LAT_REPORT_BYTES];
	size_t at = make_report(buf, sizeof(buf));
	struct sb_report rep = { .schema = "bench.lat",
				 .msgpack = buf,
				 .msgpack_len = sizeof(buf) };
	static const char tag[1][8] = { "lat" };
	struct sb_bridge *b;
	int err = serve_bridge(r, 64, SB_LOG_BYTES_MIN, &b);

	if (err)
		return child_fail(r, idx, err, "serving: %s", sb_last_error());
	err = warm_up_and_announce(r, b, &rep, tag, 1);
	if (err)
		child_fail(r, idx, err, "warm-up store: %s", sb_last_error());
	for (unsigned i = 0; i < r->nsamples && !err; i++) {
		err = await_sleeping_consumer(b, r->warm + i);
		if (err) {
			child_fail(r, idx, err, "consumer not asleep within %d ms (sample %u)",
				   STEP_TIMEOUT_MS, i);
			break;
		}
		uint64_t stamp = sb__mono_ns();
		memcpy(buf + at, &stamp, sizeof(stamp));
		err = sb_bridge_store(b, tag[0], &rep);
		r->sh->samples[r->nsamples + i] = sb__mono_ns() - stamp;
		if (err)
			child_fail(r, idx, err, "store: %s", sb_last_error());
	}
	if (!err && await_done(r->sh, 1))
		err = child_fail(r, idx, -ETIMEDOUT, "consumer did not finish");
	sb_bridge_destroy(b);
	return err;
}

struct lat_ctx {
	struct shared *sh;
	unsigned n, got;
	uint64_t woke;	/* when sb_consumer_wait() returned READY */
	size_t bad_len; /* a report that was not ours */
};

static int on_latency_entry(void *user, const struct sb_entry *e)
{
	uint64_t now = sb__mono_ns();
	struct lat_ctx *l = user;
	uint64_t stamp;

	if (e->report_len != LAT_REPORT_BYTES) {
		l->bad_len = e->report_len;
		return -EBADMSG;
	}
	memcpy(&stamp, (const uint8_t *)e->report + LAT_STAMP_AT, sizeof(stamp));
	if (l->got < l->n) {
		l->sh->samples[2 * l->n + l->got] = now - l->woke;
		l->sh->samples[l->got++] = now - stamp;
	}
	return 0;
}

static const char *wait_failure(int err, enum sb_wait_status st)
{
	if (err)
		return sb_last_error();
	return st == SB_WAIT_TIMEOUT ? "no wake-up within the timeout" : "coordinator went away";
}

static int latency_consumer(struct run *r, int idx)
{
	struct lat_ctx l = { .sh = r->sh, .n = r->nsamples };
	struct sb_drain_counts t = { 0 };
	struct sb_consumer *c;
	int err = connect_when_served(r, &c);

	if (err)
		return child_fail(r, idx, err, "connect: %s", sb_last_error());
	for (;;) {
		enum sb_wait_status st;

		err = sb_consumer_drain(c, on_latency_entry, &l, NULL);
		if (!err)
			err = drain_events(c);
		if (err && l.bad_len) {
			child_fail(r, idx, err, "a %zu-byte report, not a %d-byte stamp", l.bad_len,
				   LAT_REPORT_BYTES);
			break;
		}
		if (err) {
			child_fail(r, idx, err, "drain: %s", sb_last_error());
			break;
		}
		if (l.got >= l.n)
			break;
		err = sb_consumer_wait(c, STEP_TIMEOUT_MS, &st);
		l.woke = sb__mono_ns();
		if (err || st != SB_WAIT_READY) {
			err = child_fail(r, idx, err ? err : -ETIMEDOUT,
					 "wait after %u of %u samples: %s", l.got, l.n,
					 wait_failure(err, st));
			break;
		}
	}
	if (!err && (sb_consumer_totals(c, &t) || t.delivered != l.n || t.stores != l.n))
		err = child_fail(r, idx, -EPROTO, "%u stores but %" PRIu64 " delivered", l.n,
				 t.delivered);
	sb_consumer_close(c);
	sb_fetch_add_release(&r->sh->done, 1);
	return err;
}

/* ---- 3. writer cost ---------------------------------------------------------------- */

static unsigned count_waiting(struct sb_bridge *b)
{
	struct sb_consumer_info info[MAX_CONSUMERS];
	unsigned w = 0;
	size_t n;

	if (sb_bridge_consumers(b, info, MAX_CONSUMERS, &n))
		return 0;
	for (size_t i = 0; i < n && i < MAX_CONSUMERS; i++)
		w += info[i].waiting;
	return w;
}

/* Every consumer attached and drained once; waiting ones asleep. */
static int await_consumers(struct run *r, struct sb_bridge *b)
{
	uint64_t deadline = deadline_after_ms(STEP_TIMEOUT_MS);

	while (sb_load_acquire(&r->sh->ready) < r->nconsumers ||
	       (r->waiting && count_waiting(b) < r->nconsumers)) {
		if (sb__mono_ns() > deadline)
			return -ETIMEDOUT;
		sleep_ns(200000);
	}
	return 0;
}

static int writer_coordinator(struct run *r, int idx)
{
	static uint8_t buf[WRITER_REPORT_BYTES];
	struct sb_report rep = { .schema = "bench.w", .msgpack = buf, .msgpack_len = sizeof(buf) };
	char tags[WRITER_TAGS][8];
	struct sb_bridge *b;
	int err = serve_bridge(r, WRITER_MAX_SNAPS, WRITER_LOG_BYTES, &b);

	if (err)
		return child_fail(r, idx, err, "serving: %s", sb_last_error());
	make_report(buf, sizeof(buf));
	for (unsigned i = 0; i < WRITER_TAGS; i++)
		snprintf(tags[i], sizeof(tags[i]), "w%02u", i);
	err = warm_up_and_announce(r, b, &rep, (const char(*)[8])tags, WRITER_TAGS);
	if (err) {
		child_fail(r, idx, err, "warm-up store: %s", sb_last_error());
		goto out;
	}
	err = await_consumers(r, b);
	if (err) {
		child_fail(r, idx, err, "%u consumers not attached%s within %d ms", r->nconsumers,
			   r->waiting ? " and asleep" : "", STEP_TIMEOUT_MS);
		goto out;
	}

	uint64_t wakes = sb_load_relaxed(&b->hot->wakes);
	uint64_t cpu = thread_cpu_ns();
	uint64_t t0 = sb__mono_ns();
	for (uint64_t i = 0; i < r->nstores; i++) {
		err = sb_bridge_store(b, tags[(r->warm + i) % WRITER_TAGS], &rep);
		if (err) {
			child_fail(r, idx, err, "store %" PRIu64 ": %s", i, sb_last_error());
			goto out;
		}
	}
	r->sh->wall_ns = sb__mono_ns() - t0;
	r->sh->cpu_ns = thread_cpu_ns() - cpu;
	r->sh->wakes = sb_load_relaxed(&b->hot->wakes) - wakes;
	r->sh->stores = r->nstores;
	if (await_done(r->sh, r->nconsumers))
		err = child_fail(r, idx, -ETIMEDOUT, "consumers did not finish draining");
out:
	sb_bridge_destroy(b);
	return err;
}

static int on_any_entry(void *user, const struct sb_entry *e)
{
	(void)user;
	(void)e;
	return 0;
}

static int spin_drain(struct sb_consumer *c, uint64_t stores, uint64_t deadline)
{
	uint64_t cursor = 0;

	for (unsigned i = 1; cursor < stores; i++) {
		int err = sb_consumer_drain(c, on_any_entry, NULL, NULL);
		if (err)
			return err;
		sb_consumer_cursor(c, &cursor);
		if ((i & 1023) == 0 && sb__mono_ns() > deadline)
			return -ETIMEDOUT;
	}
	return 0;
}

static int wait_drain(struct sb_consumer *c, uint64_t stores)
{
	uint64_t cursor = 0;

	for (;;) {
		enum sb_wait_status st;
		int err = sb_consumer_drain(c, on_any_entry, NULL, NULL);

		if (!err)
			err = drain_events(c);
		if (err)
			return err;
		sb_consumer_cursor(c, &cursor);
		if (cursor >= stores)
			return 0;
		err = sb_consumer_wait(c, STEP_TIMEOUT_MS, &st);
		if (err)
			return err;
		if (st == SB_WAIT_TIMEOUT)
			return -ETIMEDOUT;
		if (st == SB_WAIT_CLOSED || st == SB_WAIT_DEAD)
			return -EPIPE;
	}
}

/* Children 1..n of a writer run are consumers 0..n-1. */
static int writer_consumer(struct run *r, int idx)
{
	int k = idx - 1;
	struct sb_consumer *c;
	int err = connect_when_served(r, &c);

	if (err)
		return child_fail(r, idx, err, "connect: %s", sb_last_error());
	err = sb_consumer_drain(c, on_any_entry, NULL, NULL);
	if (!err && r->waiting)
		err = drain_events(c);
	if (err) {
		child_fail(r, idx, err, "first drain: %s", sb_last_error());
		goto out;
	}
	sb_fetch_add_release(&r->sh->ready, 1);
	if (r->waiting)
		err = wait_drain(c, r->warm + r->nstores);
	else
		err = spin_drain(c, r->warm + r->nstores, deadline_after_ms(RUN_TIMEOUT_MS));
	if (err) {
		child_fail(r, idx, err, "draining: %s",
			   err == -ETIMEDOUT ? "timed out"
			   : err == -EPIPE   ? "coordinator went away"
					     : sb_last_error());
		goto out;
	}
	sb_consumer_totals(c, &r->sh->counts[k]);
out:
	sb_consumer_close(c);
	sb_fetch_add_release(&r->sh->done, 1);
	return err;
}

/* ---- the parent: runs, statistics, the table --------------------------------------- */

struct latency_result {
	double p50[REPS], p99[REPS];
	double call50[REPS];  /* the waker's FUTEX_WAKE or sb_bridge_store, from the stamp */
	double drain50[REPS]; /* snapbridge: wait() returned to the drain callback */
	bool ok;
};

/* A fork failed part-way through a run: stop the children already started. */
static void spawn_failed(struct group *g, const char *label, int err)
{
	bool killed[MAX_CHILDREN] = { false };

	fprintf(stderr, "bench: %s: fork: %s\n", label, strerror(-err));
	kill_rest(g, killed);
}

static int run_latency(struct run *r, bool raw, unsigned rep, struct latency_result *res)
{
	const char *what = raw ? "raw_futex" : "snapbridge";
	char label[64];
	struct group g = { 0 };
	int err;

	run_reset(r);
	r->warm = LAT_WARMUP;
	snprintf(label, sizeof(label), "%s wake latency, repetition %u", what, rep + 1);
	if (raw) {
		err = spawn(&g, r, "waiter", raw_waiter);
		if (!err)
			err = spawn(&g, r, "waker", raw_waker);
	} else {
		err = spawn(&g, r, "coordinator", latency_coordinator);
		if (!err)
			err = spawn(&g, r, "consumer", latency_consumer);
	}
	if (err)
		spawn_failed(&g, label, err);
	int rerr = reap(&g, r, label);
	if (err || rerr)
		return err ? err : rerr;

	uint64_t *s = r->sh->samples;
	qsort(s, r->nsamples, sizeof(*s), cmp_u64);
	res->p50[rep] = (double)percentile(s, r->nsamples, 50);
	res->p99[rep] = (double)percentile(s, r->nsamples, 99);
	qsort(s + r->nsamples, r->nsamples, sizeof(*s), cmp_u64);
	res->call50[rep] = (double)percentile(s + r->nsamples, r->nsamples, 50);
	qsort(s + 2 * r->nsamples, r->nsamples, sizeof(*s), cmp_u64);
	res->drain50[rep] = raw ? 0 : (double)percentile(s + 2 * r->nsamples, r->nsamples, 50);
	fprintf(stderr,
		"  %-10s rep %u/%u: p50 %6.0f ns  p99 %7.0f ns  waker call p50 %5.0f ns  (%u "
		"samples)\n",
		what, rep + 1, REPS, res->p50[rep], res->p99[rep], res->call50[rep], r->nsamples);
	return 0;
}

struct writer_case {
	const char *name;
	unsigned consumers;
	bool waiting;
	double wall[REPS], cpu[REPS], wakes[REPS];
	struct sb_drain_counts sum; /* over consumers and repetitions */
	uint64_t consumer_runs;
	bool sums_ok;
	bool ok;
};

static int run_writer(struct run *r, struct writer_case *wc, unsigned rep)
{
	char label[64];
	struct group g = { 0 };
	int err;

	run_reset(r);
	r->nconsumers = wc->consumers;
	r->waiting = wc->waiting;
	r->warm = WRITER_WARMUP;
	snprintf(label, sizeof(label), "writer \"%s\", repetition %u", wc->name, rep + 1);
	err = spawn(&g, r, "coordinator", writer_coordinator);
	for (unsigned i = 0; i < wc->consumers && !err; i++)
		err = spawn(&g, r, "consumer", writer_consumer);
	if (err)
		spawn_failed(&g, label, err);
	int rerr = reap(&g, r, label);
	if (err || rerr)
		return err ? err : rerr;

	struct shared *sh = r->sh;
	wc->wall[rep] = (double)sh->stores * 1e9 / (double)sh->wall_ns;
	wc->cpu[rep] = (double)sh->stores * 1e9 / (double)sh->cpu_ns;
	wc->wakes[rep] = (double)sh->wakes * 1000.0 / (double)sh->stores;
	for (unsigned i = 0; i < wc->consumers; i++) {
		const struct sb_drain_counts *d = &sh->counts[i];

		if (d->delivered + d->superseded + d->evicted + d->lapped + d->torn != d->stores ||
		    d->stores != sh->stores)
			wc->sums_ok = false;
		wc->sum.stores += d->stores;
		wc->sum.delivered += d->delivered;
		wc->sum.superseded += d->superseded;
		wc->sum.evicted += d->evicted;
		wc->sum.lapped += d->lapped;
		wc->sum.torn += d->torn;
		wc->consumer_runs++;
	}
	fprintf(stderr,
		"  %-12s rep %u/%u: %8.0f stores/s  %8.0f stores/CPU-s  %.2f wakes/1000  "
		"(%.0f%% CPU)\n",
		wc->name, rep + 1, REPS, wc->wall[rep], wc->cpu[rep], wc->wakes[rep],
		100.0 * (double)sh->cpu_ns / (double)sh->wall_ns);
	return 0;
}

static void json_spread(FILE *f, const char *key, const double *v, unsigned n)
{
	struct spread s = spread_of(v, n);

	fprintf(f, "\"%s\":{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f,\"reps\":[", key, s.median,
		s.min, s.max);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "%s%.1f", i ? "," : "", v[i]);
	fprintf(f, "]}");
}

static void json_spread_ratio(FILE *f, const char *key, const double *v, unsigned n)
{
	struct spread s = spread_of(v, n);

	fprintf(f, "\"%s\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}", key, s.median, s.min,
		s.max);
}

static void print_latency(FILE *json, unsigned nsamples, const struct latency_result *raw,
			  const struct latency_result *sb)
{
	const struct latency_result *res[2] = { raw, sb };
	const char *names[2] = { "raw_futex", "snapbridge" };
	double ratio[REPS];

	printf("\nWake latency: %u wake-ups per repetition; the sleeper announced itself and "
	       "then\nhad %u us to reach FUTEX_WAIT before each wake. ns, median [min..max] of "
	       "%d repetitions.\n\"waker call\" is the waker's stamp-to-return time of FUTEX_WAKE "
	       "(raw_futex) or\nsb_bridge_store (snapbridge), p50.\n\n",
	       nsamples, SETTLE_NS / 1000, REPS);
	printf("  %-12s %24s %24s %24s\n", "measurement", "p50 ns", "p99 ns", "waker call ns");
	for (int i = 0; i < 2; i++) {
		if (!res[i]->ok) {
			printf("  %-12s %24s %24s %24s\n", names[i], "FAILED", "FAILED", "FAILED");
			continue;
		}
		struct spread p50 = spread_of(res[i]->p50, REPS);
		struct spread p99 = spread_of(res[i]->p99, REPS);
		struct spread call = spread_of(res[i]->call50, REPS);
		char a[32], b[32], c[32];
		snprintf(a, sizeof(a), "%.0f [%.0f..%.0f]", p50.median, p50.min, p50.max);
		snprintf(b, sizeof(b), "%.0f [%.0f..%.0f]", p99.median, p99.min, p99.max);
		snprintf(c, sizeof(c), "%.0f [%.0f..%.0f]", call.median, call.min, call.max);
		printf("  %-12s %24s %24s %24s\n", names[i], a, b, c);
		if (json) {
			fprintf(json,
				"{\"measurement\":\"%s_wake_latency\",\"samples\":%u,\"reps\":%d,"
				"\"settle_ns\":%d,",
				names[i], nsamples, REPS, SETTLE_NS);
			json_spread(json, "p50_ns", res[i]->p50, REPS);
			fputc(',', json);
			json_spread(json, "p99_ns", res[i]->p99, REPS);
			fputc(',', json);
			json_spread(json, "waker_call_p50_ns", res[i]->call50, REPS);
			if (res[i] == sb) {
				fputc(',', json);
				json_spread(json, "wait_return_to_callback_p50_ns", sb->drain50,
					    REPS);
			}
			fprintf(json, "}\n");
		}
	}
	if (!raw->ok || !sb->ok)
		return;
	struct spread rp = spread_of(raw->p50, REPS), sp = spread_of(sb->p50, REPS);
	/* Repetitions were interleaved, so repetition i of each ran side by side. */
	for (unsigned i = 0; i < REPS; i++)
		ratio[i] = sb->p50[i] / raw->p50[i];
	struct spread rr = spread_of(ratio, REPS);
	printf("\n  p50 ratio snapbridge / raw_futex: %.2f (medians); per repetition %.2f "
	       "[%.2f..%.2f]; target <= 1.5: %s\n",
	       sp.median / rp.median, rr.median, rr.min, rr.max,
	       sp.median / rp.median <= 1.5 ? "met" : "NOT met");
	printf("  breakdown (p50, medians): the waker's sb_bridge_store %.0f ns vs its FUTEX_WAKE "
	       "%.0f ns;\n  sb_consumer_wait() returning READY to the drain callback %.0f ns\n",
	       spread_of(sb->call50, REPS).median, spread_of(raw->call50, REPS).median,
	       spread_of(sb->drain50, REPS).median);
	if (json) {
		fprintf(
		    json,
		    "{\"measurement\":\"wake_latency_ratio\",\"of_medians\":%.3f,\"target\":1.5,",
		    sp.median / rp.median);
		json_spread_ratio(json, "per_rep", ratio, REPS);
		fprintf(json, "}\n");
	}
}

static void print_writer(FILE *json, uint64_t nstores, struct writer_case *wc, unsigned ncases)
{
	struct spread base_w = spread_of(wc[0].wall, REPS), base_c = spread_of(wc[0].cpu, REPS);
	bool base_ok = wc[0].ok;

	printf(
	    "\nWriter cost: one thread stores %" PRIu64 " reports of %d bytes, %d tags "
	    "round-robin\n(log %llu MiB, max_snapshots %d); consumers are separate processes. "
	    "Median [min..max]\nof %d repetitions; \"vs 0\" = median / median of 0 consumers.\n\n",
	    nstores, WRITER_REPORT_BYTES, WRITER_TAGS, WRITER_LOG_BYTES >> 20, WRITER_MAX_SNAPS,
	    REPS);
	printf("  %-13s %28s %6s %28s %6s %20s\n", "case", "stores/s (wall)", "vs 0",
	       "stores/CPU-s (writer)", "vs 0", "wakes/1000 stores");
	for (unsigned i = 0; i < ncases; i++) {
		if (!wc[i].ok) {
			printf("  %-13s %28s\n", wc[i].name, "FAILED");
			continue;
		}
		struct spread w = spread_of(wc[i].wall, REPS), c = spread_of(wc[i].cpu, REPS);
		struct spread k = spread_of(wc[i].wakes, REPS);
		char a[48], b[48], d[48], rw[16] = "-", rc[16] = "-";
		snprintf(a, sizeof(a), "%.0f [%.0f..%.0f]", w.median, w.min, w.max);
		snprintf(b, sizeof(b), "%.0f [%.0f..%.0f]", c.median, c.min, c.max);
		if (wc[i].waiting)
			snprintf(d, sizeof(d), "%.2f [%.2f..%.2f]", k.median, k.min, k.max);
		else
			snprintf(d, sizeof(d), "-");
		if (base_ok) {
			snprintf(rw, sizeof(rw), "%.2f", w.median / base_w.median);
			snprintf(rc, sizeof(rc), "%.2f", c.median / base_c.median);
		}
		printf("  %-13s %28s %6s %28s %6s %20s\n", wc[i].name, a, rw, b, rc, d);
		if (json) {
			fprintf(
			    json,
			    "{\"measurement\":\"writer_store\",\"case\":\"%s\",\"consumers\":%u,"
			    "\"mode\":\"%s\",\"report_bytes\":%d,\"tags\":%d,\"stores\":%" PRIu64
			    ",\"reps\":%d,",
			    wc[i].name, wc[i].consumers,
			    wc[i].consumers ? (wc[i].waiting ? "waiting" : "spin") : "none",
			    WRITER_REPORT_BYTES, WRITER_TAGS, nstores, REPS);
			json_spread(json, "stores_per_s", wc[i].wall, REPS);
			fputc(',', json);
			json_spread(json, "stores_per_cpu_s", wc[i].cpu, REPS);
			fputc(',', json);
			json_spread(json, "wakes_per_1000_stores", wc[i].wakes, REPS);
			if (base_ok)
				fprintf(json, ",\"ratio_wall_vs_0\":%.3f,\"ratio_cpu_vs_0\":%.3f",
					w.median / base_w.median, c.median / base_c.median);
			fprintf(json,
				",\"drain\":{\"consumer_runs\":%" PRIu64 ",\"stores\":%" PRIu64
				",\"delivered\":%" PRIu64 ",\"superseded\":%" PRIu64
				",\"evicted\":%" PRIu64 ",\"lapped\":%" PRIu64 ",\"torn\":%" PRIu64
				",\"sums_ok\":%s}}\n",
				wc[i].consumer_runs, wc[i].sum.stores, wc[i].sum.delivered,
				wc[i].sum.superseded, wc[i].sum.evicted, wc[i].sum.lapped,
				wc[i].sum.torn, wc[i].sums_ok ? "true" : "false");
		}
	}
	printf("\n  stores/s is wall clock. stores/CPU-s divides by the storing thread's own CPU "
	       "time\n  (CLOCK_THREAD_CPUTIME_ID). This machine has 2 cores: spin-draining "
	       "consumers compete\n  with the writer for CPU, so the wall-clock ratio mixes "
	       "CPU contention with protocol\n  cost; the per-CPU-second ratio isolates the "
	       "cache/protocol cost.\n");
	for (unsigned i = 0; i < ncases; i++) {
		if (!base_ok || !wc[i].ok || wc[i].consumers != 3 || wc[i].waiting)
			continue;
		double w = spread_of(wc[i].wall, REPS).median / base_w.median;
		double c = spread_of(wc[i].cpu, REPS).median / base_c.median;
		printf("  target \"%s\" keeps >= 75%% of the 0-consumer throughput: wall %.0f%% "
		       "(%s), per CPU-second %.0f%% (%s)\n",
		       wc[i].name, 100 * w, w >= 0.75 ? "met" : "NOT met", 100 * c,
		       c >= 0.75 ? "met" : "NOT met");
	}

	printf("\nConsumer drain outcomes, summed over consumers and repetitions (each consumer "
	       "run\nmust account for every store; \"sums\" checks that each did):\n\n");
	printf("  %-13s %6s %10s %10s %11s %9s %9s %5s %5s\n", "case", "runs", "stores",
	       "delivered", "superseded", "evicted", "lapped", "torn", "sums");
	for (unsigned i = 0; i < ncases; i++) {
		const struct sb_drain_counts *s = &wc[i].sum;

		if (!wc[i].ok || !wc[i].consumers)
			continue;
		printf("  %-13s %6" PRIu64 " %10" PRIu64 " %10" PRIu64 " %11" PRIu64 " %9" PRIu64
		       " %9" PRIu64 " %5" PRIu64 " %5s\n",
		       wc[i].name, wc[i].consumer_runs, s->stores, s->delivered, s->superseded,
		       s->evicted, s->lapped, s->torn, wc[i].sums_ok ? "ok" : "BAD");
	}
}

/* ---- syscall probe ----------------------------------------------------------------- */

static int probe_store(struct sb_bridge *b, const struct sb_report *rep, uint64_t i, bool unique)
{
	char tag[24];

	if (unique)
		snprintf(tag, sizeof(tag), "u%" PRIu64, i);
	else
		snprintf(tag, sizeof(tag), "w%02u", (unsigned)(i % WRITER_TAGS));
	int err = sb_bridge_store(b, tag, rep);
	if (err)
		fprintf(stderr, "bench: store %" PRIu64 ": %s\n", i, sb_last_error());
	return err;
}

/*
 * One bridge, one in-process consumer attached through the two descriptors
 * (so it has a control slot, but never waits), N stores between markers.
 */
static int syscall_probe(uint64_t n, bool unique)
{
	static uint8_t buf[WRITER_REPORT_BYTES];
	struct sb_report rep = { .schema = "bench.w", .msgpack = buf, .msgpack_len = sizeof(buf) };
	struct sb_config cfg;
	struct sb_consumer *c = NULL;
	struct sb_drain_counts t = { 0 };
	struct sb_bridge *b;
	int data_fd = -1, ctl_fd = -1, err;
	uint64_t i = 0, wakes;

	make_report(buf, sizeof(buf));
	sb_config_default(&cfg);
	cfg.max_snapshots = WRITER_MAX_SNAPS;
	cfg.log_bytes = WRITER_LOG_BYTES;
	err = sb_bridge_create(&cfg, NULL, &b);
	if (err) {
		fprintf(stderr, "bench: create: %s\n", sb_last_error());
		return err;
	}
	err = sb_bridge_data_fd(b, &data_fd);
	if (!err)
		err = sb_bridge_control_fd(b, &ctl_fd);
	if (!err)
		err = sb_consumer_open_fds(data_fd, ctl_fd, 0, &c);
	if (err) {
		fprintf(stderr, "bench: attaching the consumer: %s\n", sb_last_error());
		goto out;
	}
	for (; i < PROBE_WARMUP && !err; i++)
		err = probe_store(b, &rep, i, unique);
	wakes = sb_load_relaxed(&b->hot->wakes);
	fprintf(stderr, "probe start\n");
	for (; i < PROBE_WARMUP + n && !err; i++)
		err = probe_store(b, &rep, i, unique);
	fprintf(stderr, "probe end\n");
	if (err)
		goto out;
	wakes = sb_load_relaxed(&b->hot->wakes) - wakes;
	err = sb_consumer_drain(c, on_any_entry, NULL, NULL);
	if (!err)
		err = sb_consumer_totals(c, &t);
	if (err) {
		fprintf(stderr, "bench: drain: %s\n", sb_last_error());
		goto out;
	}
	fprintf(stderr,
		"probe: %" PRIu64 " %s stores of %d bytes after %d warm-up, %" PRIu64
		" wakes; consumer drained once: stores %" PRIu64 " delivered %" PRIu64
		" superseded %" PRIu64 " evicted %" PRIu64 " lapped %" PRIu64 " torn %" PRIu64 "\n",
		n, unique ? "unique-tag" : "overwrite", WRITER_REPORT_BYTES, PROBE_WARMUP, wakes,
		t.stores, t.delivered, t.superseded, t.evicted, t.lapped, t.torn);
out:
	if (c)
		sb_consumer_close(c);
	if (data_fd >= 0)
		close(data_fd);
	if (ctl_fd >= 0)
		close(ctl_fd);
	sb_bridge_destroy(b);
	return err;
}

/* ---- main -------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: snapbridge-bench-serve [--quick] [--json FILE]\n"
		"       snapbridge-bench-serve --syscall-probe N | --syscall-probe-unique N\n"
		"\n"
		"  --quick     fewer samples and stores (under 20 s)\n"
		"  --json FILE one JSON object per measurement per line\n"
		"  --syscall-probe N         N 4 KiB overwrites with one idle consumer attached,\n"
		"                            between \"probe start\" / \"probe end\" on stderr\n"
		"                            (run under strace -f)\n"
		"  --syscall-probe-unique N  the same with a new tag per store (evicts at the "
		"cap)\n");
}

static int parse_count(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > (1ull << 40))
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	const char *json_path = NULL;
	bool quick = false;
	uint64_t probe_n = 0;
	bool probe_unique = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			quick = true;
		} else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json_path = argv[++i];
		} else if ((!strcmp(argv[i], "--syscall-probe") ||
			    !strcmp(argv[i], "--syscall-probe-unique")) &&
			   i + 1 < argc) {
			probe_unique = !strcmp(argv[i], "--syscall-probe-unique");
			if (parse_count(argv[++i], &probe_n)) {
				fprintf(stderr, "bench: %s wants a positive count\n", argv[i - 1]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (probe_n)
		return syscall_probe(probe_n, probe_unique) ? 1 : 0;

	FILE *json = NULL;
	if (json_path && !(json = fopen(json_path, "w"))) {
		fprintf(stderr, "bench: %s: %s\n", json_path, strerror(errno));
		return 2;
	}

	unsigned nsamples = quick ? LAT_SAMPLES_QUICK : LAT_SAMPLES;
	uint64_t nstores = quick ? WRITER_STORES_QUICK : WRITER_STORES;
	size_t shsize = sizeof(struct shared) + 3 * (size_t)nsamples * sizeof(uint64_t);
	struct shared *sh =
	    mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		fprintf(stderr, "bench: mmap: %s\n", strerror(errno));
		return 1;
	}

	/* SIGCHLD stays blocked: reap() takes it with sigtimedwait(). */
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);

	struct run r = { .sh = sh, .parent = getpid(), .nsamples = nsamples, .nstores = nstores };
	uint64_t t0 = sb__mono_ns();

	fprintf(stderr,
		"wake latency: %u samples x %d repetitions (raw_futex and snapbridge "
		"interleaved)\n",
		nsamples, REPS);
	struct latency_result raw = { .ok = true }, sb = { .ok = true };
	for (unsigned rep = 0; rep < REPS; rep++) {
		if (raw.ok && run_latency(&r, true, rep, &raw))
			raw.ok = false;
		if (sb.ok && run_latency(&r, false, rep, &sb))
			sb.ok = false;
	}

	struct writer_case wc[] = {
		{ .name = "0 consumers" },
		{ .name = "1 spinning", .consumers = 1 },
		{ .name = "3 spinning", .consumers = 3 },
		{ .name = "1 waiting", .consumers = 1, .waiting = true },
		{ .name = "3 waiting", .consumers = 3, .waiting = true },
	};
	unsigned ncases = sizeof(wc) / sizeof(wc[0]);
	fprintf(stderr,
		"writer cost: %" PRIu64 " stores x %d repetitions x %u cases "
		"(cases interleaved)\n",
		nstores, REPS, ncases);
	for (unsigned i = 0; i < ncases; i++)
		wc[i].ok = wc[i].sums_ok = true;
	for (unsigned rep = 0; rep < REPS; rep++)
		for (unsigned i = 0; i < ncases; i++)
			if (wc[i].ok && run_writer(&r, &wc[i], rep))
				wc[i].ok = false;

	printf("snapbridge-bench-serve%s: %d repetitions per measurement, %.0f s\n",
	       quick ? " --quick" : "", REPS, (double)(sb__mono_ns() - t0) / 1e9);
	print_latency(json, nsamples, &raw, &sb);
	print_writer(json, nstores, wc, ncases);
	bool failed = !raw.ok || !sb.ok;
	for (unsigned i = 0; i < ncases; i++)
		failed |= !wc[i].ok || !wc[i].sums_ok;
	if (json && fclose(json) != 0) {
		fprintf(stderr, "bench: %s: %s\n", json_path, strerror(errno));
		failed = true;
	}
	munmap(sh, shsize);
	return failed ? 1 : 0;
}
