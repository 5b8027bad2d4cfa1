/* bench/wake.c - see wake.h. */
#define _GNU_SOURCE
#include "wake.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"
#include "../ring/futex.h"

#define LAT_REPORT_BYTES 64
#define LAT_WARMUP	 1024
#define LAT_STAMP_AT	 2 /* after a bin 8 header: see sbb_make_report() */

/* What the two processes of a run share. */
struct wake_shared {
	/* raw_futex: the word the waiter sleeps on and its "about to sleep" announcement */
	_Alignas(64) uint32_t raw_word;
	_Alignas(64) uint32_t raw_asleep; /* the waiter stores word + 1 just before FUTEX_WAIT */
	_Alignas(64) uint64_t raw_stamp;
	_Alignas(64) uint32_t served; /* the coordinator serves: the consumer may connect */
	uint32_t done;		      /* the consumer finished */
	sbb_errtab err;
	/*
	 * [0, n) wake latencies, [n, 2n) the waker's call (stamp to return),
	 * [2n, 3n) snapbridge only: sb_consumer_wait() return to callback
	 */
	uint64_t samples[];
};

struct wake_run {
	struct wake_shared *sh;
	char socket[64];
	unsigned n;
};

/* ---- raw futex ping-pong ----------------------------------------------------------- */

static int raw_waiter(void *arg, int idx)
{
	struct wake_run *r = arg;
	struct wake_shared *sh = r->sh;
	const struct timespec limit = { SBB_STEP_TIMEOUT_MS / 1000, 0 };

	sbb_pin(1);
	for (unsigned i = 0; i < r->n; i++) {
		uint32_t g = sb_load_acquire(&sh->raw_word);

		sb_store_seqcst(&sh->raw_asleep, g + 1);
		while (sb_load_acquire(&sh->raw_word) == g) {
			int err = sb__futex_wait(&sh->raw_word, g, &limit);
			if (err == -ETIMEDOUT)
				return sbb_child_fail(&sh->err, idx, err,
						      "no FUTEX_WAKE within %d ms (sample %u)",
						      SBB_STEP_TIMEOUT_MS, i);
		}
		uint64_t now = sb__mono_ns();
		/* pairs with the waker's release of raw_word, which follows the stamp */
		sh->samples[i] = now - sb_load_relaxed(&sh->raw_stamp);
	}
	return 0;
}

/* Wait until the sleeper announced it sleeps on gen, then give it SBB_SETTLE_NS to get there. */
static int raw_await_asleep(struct wake_shared *sh, uint32_t gen)
{
	uint64_t deadline = sbb_deadline_after_ms(SBB_STEP_TIMEOUT_MS);

	while (sb_load_acquire(&sh->raw_asleep) != gen + 1) {
		if (sb__mono_ns() > deadline)
			return -ETIMEDOUT;
		sched_yield();
	}
	sbb_sleep_ns(SBB_SETTLE_NS);
	return 0;
}

static int raw_waker(void *arg, int idx)
{
	struct wake_run *r = arg;
	struct wake_shared *sh = r->sh;

	sbb_pin(0);
	for (unsigned i = 0; i < r->n; i++) {
		if (raw_await_asleep(sh, (uint32_t)i))
			return sbb_child_fail(&sh->err, idx, -ETIMEDOUT,
					      "waiter did not go to sleep within %d ms (sample %u)",
					      SBB_STEP_TIMEOUT_MS, i);
		uint64_t stamp = sb__mono_ns();
		sb_store_relaxed(&sh->raw_stamp, stamp);
		sb_store_release(&sh->raw_word, (uint32_t)i + 1);
		int woken = sb__futex_wake(&sh->raw_word, 1);
		if (woken < 0)
			return sbb_child_fail(&sh->err, idx, woken, "FUTEX_WAKE: %s",
					      strerror(-woken));
		sh->samples[r->n + i] = sb__mono_ns() - stamp;
	}
	return 0;
}

/* ---- snapbridge -------------------------------------------------------------------- */

/*
 * Wait until the consumer has accounted for every store so far and says it
 * sleeps: its cursor moves when it drains, its waiting flag is set only
 * right before FUTEX_WAIT (after the adaptive spin). Then SBB_SETTLE_NS more.
 */
static int await_sleeping_consumer(struct sb_bridge *b, uint64_t stores)
{
	uint64_t deadline = sbb_deadline_after_ms(SBB_STEP_TIMEOUT_MS);
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
	sbb_sleep_ns(SBB_SETTLE_NS);
	return 0;
}

static int latency_coordinator(void *arg, int idx)
{
	struct wake_run *r = arg;
	struct wake_shared *sh = r->sh;
	uint8_t buf[LAT_REPORT_BYTES];
	struct sb_report rep = { .schema = "bench.lat",
				 .msgpack = buf,
				 .msgpack_len = sizeof(buf) };
	struct sb_bridge *b;
	int err;

	sbb_pin(0); /* before the bridge's threads start: they inherit it */
	err = sbb_serve_bridge(r->socket, 64, SB_LOG_BYTES_MIN, &b);

	if (err)
		return sbb_child_fail(&sh->err, idx, err, "serving: %s", sb_last_error());
	sbb_make_report(buf, sizeof(buf));
	for (unsigned i = 0; i < LAT_WARMUP && !err; i++)
		err = sb_bridge_store(b, "lat", &rep);
	if (err)
		sbb_child_fail(&sh->err, idx, err, "warm-up store: %s", sb_last_error());
	else
		sb_store_release(&sh->served, 1); /* pairs with sbb_connect_when */
	for (unsigned i = 0; i < r->n && !err; i++) {
		err = await_sleeping_consumer(b, LAT_WARMUP + i);
		if (err) {
			sbb_child_fail(&sh->err, idx, err,
				       "consumer not asleep within %d ms (sample %u)",
				       SBB_STEP_TIMEOUT_MS, i);
			break;
		}
		uint64_t stamp = sb__mono_ns();
		memcpy(buf + LAT_STAMP_AT, &stamp, sizeof(stamp));
		err = sb_bridge_store(b, "lat", &rep);
		sh->samples[r->n + i] = sb__mono_ns() - stamp;
		if (err)
			sbb_child_fail(&sh->err, idx, err, "store: %s", sb_last_error());
	}
	if (!err && sbb_await_count(&sh->done, 1, 6 * SBB_STEP_TIMEOUT_MS))
		err = sbb_child_fail(&sh->err, idx, -ETIMEDOUT, "consumer did not finish");
	sb_bridge_destroy(b);
	return err;
}

struct lat_ctx {
	struct wake_run *r;
	unsigned got;
	uint64_t woke;	/* when sb_consumer_wait() returned READY */
	size_t bad_len; /* a report that was not ours */
};

static int on_latency_entry(void *user, const struct sb_entry *e)
{
	uint64_t now = sb__mono_ns();
	struct lat_ctx *l = user;
	unsigned n = l->r->n;
	uint64_t stamp;

	if (e->report_len != LAT_REPORT_BYTES) {
		l->bad_len = e->report_len;
		return -EBADMSG;
	}
	memcpy(&stamp, (const uint8_t *)e->report + LAT_STAMP_AT, sizeof(stamp));
	if (l->got < n) {
		l->r->sh->samples[2 * n + l->got] = now - l->woke;
		l->r->sh->samples[l->got++] = now - stamp;
	}
	return 0;
}

static const char *wait_failure(int err, enum sb_wait_status st)
{
	if (err)
		return sb_last_error();
	return st == SB_WAIT_TIMEOUT ? "no wake-up within the timeout" : "coordinator went away";
}

static int latency_consumer(void *arg, int idx)
{
	struct wake_run *r = arg;
	struct wake_shared *sh = r->sh;
	struct lat_ctx l = { .r = r };
	struct sb_drain_counts t = { 0 };
	struct sb_consumer *c;
	int err;

	sbb_pin(1);
	err = sbb_connect_when(&sh->served, r->socket, SB_CONSUMER_START_AT_END, &c);

	if (err)
		return sbb_child_fail(&sh->err, idx, err, "connect: %s", sb_last_error());
	for (;;) {
		enum sb_wait_status st;

		err = sb_consumer_drain(c, on_latency_entry, &l, NULL);
		if (!err)
			err = sbb_drain_events(c);
		if (err && l.bad_len) {
			sbb_child_fail(&sh->err, idx, err, "a %zu-byte report, not a %d-byte stamp",
				       l.bad_len, LAT_REPORT_BYTES);
			break;
		}
		if (err) {
			sbb_child_fail(&sh->err, idx, err, "drain: %s", sb_last_error());
			break;
		}
		if (l.got >= r->n)
			break;
		err = sb_consumer_wait(c, SBB_STEP_TIMEOUT_MS, &st);
		l.woke = sb__mono_ns();
		if (err || st != SB_WAIT_READY) {
			err = sbb_child_fail(&sh->err, idx, err ? err : -ETIMEDOUT,
					     "wait after %u of %u samples: %s", l.got, r->n,
					     wait_failure(err, st));
			break;
		}
	}
	if (!err && (sb_consumer_totals(c, &t) || t.delivered != r->n || t.stores != r->n))
		err = sbb_child_fail(&sh->err, idx, -EPROTO, "%u stores but %llu delivered", r->n,
				     (unsigned long long)t.delivered);
	sb_consumer_close(c);
	sb_fetch_add_release(&sh->done, 1);
	return err;
}

/* ---- one repetition ---------------------------------------------------------------- */

int sbb_wake_run(bool raw, unsigned nsamples, unsigned rep, unsigned reps,
		 struct sbb_wake_result *res)
{
	const char *what = raw ? "raw_futex" : "snapbridge";
	size_t size = sizeof(struct wake_shared) + 3 * (size_t)nsamples * sizeof(uint64_t);
	struct wake_run r = { .n = nsamples };
	struct sbb_group g;
	char label[64];
	int err;

	r.sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r.sh == MAP_FAILED)
		return -errno;
	sbb_socket_name(r.socket, sizeof(r.socket));
	sbb_group_init(&g, &r.sh->err);
	snprintf(label, sizeof(label), "%s wake latency, repetition %u", what, rep + 1);
	/* Pinned like every multi-process run: the waker on CPU 0, the sleeper on CPU 1. */
	if (raw) {
		err = sbb_spawn(&g, "waiter", raw_waiter, &r);
		if (!err)
			err = sbb_spawn(&g, "waker", raw_waker, &r);
	} else {
		err = sbb_spawn(&g, "coordinator", latency_coordinator, &r);
		if (!err)
			err = sbb_spawn(&g, "consumer", latency_consumer, &r);
	}
	if (err)
		sbb_spawn_failed(&g, label, err);
	int rerr = sbb_reap(&g, label, SBB_RUN_TIMEOUT_MS);
	if (err || rerr) {
		munmap(r.sh, size);
		return err ? err : rerr;
	}

	uint64_t *s = r.sh->samples;
	unsigned n = nsamples;
	qsort(s, n, sizeof(*s), sbb_cmp_u64);
	res->p50[rep] = (double)sbb_percentile(s, n, 500);
	res->p99[rep] = (double)sbb_percentile(s, n, 990);
	qsort(s + n, n, sizeof(*s), sbb_cmp_u64);
	res->call50[rep] = (double)sbb_percentile(s + n, n, 500);
	qsort(s + 2 * n, n, sizeof(*s), sbb_cmp_u64);
	res->drain50[rep] = raw ? 0 : (double)sbb_percentile(s + 2 * n, n, 500);
	fprintf(stderr,
		"  %-10s rep %u/%u: p50 %6.0f ns  p99 %7.0f ns  waker call p50 %5.0f ns  (%u "
		"samples)\n",
		what, rep + 1, reps, res->p50[rep], res->p99[rep], res->call50[rep], n);
	munmap(r.sh, size);
	return 0;
}
