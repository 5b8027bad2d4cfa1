/*
 * bench/bench_serve.c - the multi-process serving path, measured.
 *
 *   1-2. wake latency, snapbridge against a bare futex (bench/wake.c,
 *      shared with `snapbridge bench`).
 *   3. writer cost: one thread storing 4 KiB reports as fast as it can,
 *      with 0, 1 or 3 consumers that spin-drain or wait, in wall-clock
 *      stores/s and in stores per CPU-second of the storing thread.
 *   4. store latency under hostile consumers: each store of a paced
 *      stream timed alone (p50, p99.9), with no consumer, with 3 honest
 *      sleepers, with one consumer holding 10,000 threads asleep on words
 *      of the data region and on its own bell, and with one consumer
 *      sending arms as fast as it can.
 *   5. serving under a connection flood (bench/flood.c): the oldest
 *      heartbeat, the log's rate, the refusals and an honest consumer's
 *      connect while two processes of another uid connect and hang up as
 *      fast as they can, against the same time without them.
 *
 * Coordinators store a warm-up (a log's worth) before consumers attach,
 * so page faults of a fresh log are not timed; consumers attach at the
 * end (SB_CONSUMER_START_AT_END) and account only for the timed stores.
 *
 * Every process of a run is a child of a single-threaded parent that only
 * forks and reaps (bench/harness.c; so no child is forked from a process
 * with the bridge's threads in it) and reads the results from an
 * anonymous shared mapping. Repetitions of the
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

#include <getopt.h>
#include <pthread.h>
#include <sys/socket.h>

#include <snapbridge/snapbridge.h>

/*
 * Internal, for the hostile consumer alone: it sends raw arms on its
 * connection and sleeps on words of its own page and the region, which
 * no public call lets a consumer do. Everything else uses the public API
 * (and the inline clock, futex and atomics every benchmark row shares).
 */
#include "../consumers/consumer_internal.h"
#include "../ring/clock.h"
#include "../ring/futex.h"
#include "flood.h"
#include "harness.h"
#include "wake.h"

#define LAT_SAMPLES	    2000
#define LAT_SAMPLES_QUICK   400
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
/* Store latency: stores timed one by one, paced so that sleepers get to sleep. */
#define LAT_STORES	 200000
#define LAT_STORES_QUICK 10000
#define LAT_PACE_EVERY	 64 /* stores between two pauses */
#define LAT_PACE_NS	 100000
#define HOSTILE_THREADS	 10000
/*
 * Repetitions of each latency case: its p99.9 swings between two levels
 * with the machine's other load, so the median needs more of them.
 */
#define LAT_REPS	    9
#define FLOOD_MS	    3000 /* each case of each repetition */
#define FLOOD_MS_QUICK	    1000
#define HOSTILE_STACK_BYTES (32u << 10)

/* ---- what the processes of a writer run share -------------------------------------- */

struct shared {
	_Alignas(64) uint32_t served; /* the coordinator serves: consumers may connect */
	uint32_t ready;		      /* consumers attached and drained once */
	uint32_t done;		      /* consumers finished */
	/* results */
	uint64_t wall_ns, cpu_ns, wakes, stores;
	struct sb_drain_counts counts[MAX_CONSUMERS];
	uint32_t hostile_ready; /* the hostile consumer's threads are asleep or arming */
	uint64_t hostile_arms;	/* arms it sent */
	sbb_errtab err;
};

/* What a hostile consumer of a latency run does. */
enum hostile {
	HOSTILE_NONE = 0,
	HOSTILE_SLEEPERS, /* HOSTILE_THREADS threads asleep on data-region words and its bell */
	HOSTILE_ARMS,	  /* arms with positions that are always behind, as fast as it can */
};

struct run {
	struct shared *sh;
	char socket[64];
	uint64_t nstores;
	uint64_t warm; /* stores before consumers attach */
	unsigned nconsumers;
	bool waiting; /* consumers wait (else spin-drain) */
	enum hostile hostile;
	uint64_t *lat; /* latency runs: each timed store's ns, shared with the parent */
};

/* r->warm stores over tags round-robin before anyone attaches; then let the consumers in. */
/*
 * The writer's wake counter, as any reader of the region sees it
 * (sb_region_stat.wakes); read outside the timed loops. 0 if it cannot
 * be read, which the caller's ratio then shows.
 */
static uint64_t writer_wakes(struct sb_bridge *b)
{
	struct sb_region_stat st = { .wakes = 0 };
	struct sb_consumer *c = NULL;
	int fd = -1;

	if (sb_bridge_data_fd(b, &fd) == 0 && sb_consumer_open_fd(fd, 0, &c) == 0) {
		if (sb_consumer_stat(c, &st))
			st.wakes = 0;
		sb_consumer_close(c);
	}
	if (fd >= 0)
		close(fd);
	return st.wakes;
}

static int warm_up_and_announce(struct run *r, struct sb_bridge *b, const struct sb_report *rep,
				const char (*tags)[8], unsigned ntags)
{
	for (uint64_t i = 0; i < r->warm; i++) {
		int err = sb_bridge_store(b, tags[i % ntags], rep);
		if (err)
			return err;
	}
	sb_store_release(&r->sh->served, 1); /* pairs with sbb_connect_when */
	return 0;
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

/*
 * Every consumer attached and drained once, `asleep` of them asleep, and
 * the hostile one (if any) at work; -ETIMEDOUT after timeout_ms.
 */
static int await_consumers(struct run *r, struct sb_bridge *b, unsigned asleep, unsigned timeout_ms)
{
	uint64_t deadline = sbb_deadline_after_ms(timeout_ms);

	while (sb_load_acquire(&r->sh->ready) < r->nconsumers || count_waiting(b) < asleep ||
	       (r->hostile && !sb_load_acquire(&r->sh->hostile_ready))) {
		if (sb__mono_ns() > deadline)
			return -ETIMEDOUT;
		sbb_sleep_ns(200000);
	}
	return 0;
}

static int writer_coordinator(void *arg, int idx)
{
	struct run *r = arg;
	static uint8_t buf[WRITER_REPORT_BYTES];
	struct sb_report rep = { .schema = "bench.w", .msgpack = buf, .msgpack_len = sizeof(buf) };
	char tags[WRITER_TAGS][8];
	struct sb_bridge *b;
	int err = sbb_serve_bridge(r->socket, WRITER_MAX_SNAPS, WRITER_LOG_BYTES, &b);

	if (err)
		return sbb_child_fail(&r->sh->err, idx, err, "serving: %s", sb_last_error());
	sbb_make_report(buf, sizeof(buf));
	for (unsigned i = 0; i < WRITER_TAGS; i++)
		snprintf(tags[i], sizeof(tags[i]), "w%02u", i);
	err = warm_up_and_announce(r, b, &rep, (const char(*)[8])tags, WRITER_TAGS);
	if (err) {
		sbb_child_fail(&r->sh->err, idx, err, "warm-up store: %s", sb_last_error());
		goto out;
	}
	err = await_consumers(r, b, r->waiting ? r->nconsumers : 0, SBB_STEP_TIMEOUT_MS);
	if (err) {
		sbb_child_fail(&r->sh->err, idx, err, "%u consumers not attached%s within %d ms",
			       r->nconsumers, r->waiting ? " and asleep" : "", SBB_STEP_TIMEOUT_MS);
		goto out;
	}

	uint64_t wakes = writer_wakes(b);
	uint64_t cpu = sbb_thread_cpu_ns();
	uint64_t t0 = sb__mono_ns();
	for (uint64_t i = 0; i < r->nstores; i++) {
		err = sb_bridge_store(b, tags[(r->warm + i) % WRITER_TAGS], &rep);
		if (err) {
			sbb_child_fail(&r->sh->err, idx, err, "store %" PRIu64 ": %s", i,
				       sb_last_error());
			goto out;
		}
	}
	r->sh->wall_ns = sb__mono_ns() - t0;
	r->sh->cpu_ns = sbb_thread_cpu_ns() - cpu;
	r->sh->wakes = writer_wakes(b) - wakes;
	r->sh->stores = r->nstores;
	if (sbb_await_count(&r->sh->done, r->nconsumers, 6 * SBB_STEP_TIMEOUT_MS))
		err = sbb_child_fail(&r->sh->err, idx, -ETIMEDOUT,
				     "consumers did not finish draining");
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
			err = sbb_drain_events(c);
		if (err)
			return err;
		sb_consumer_cursor(c, &cursor);
		if (cursor >= stores)
			return 0;
		err = sb_consumer_wait(c, SBB_STEP_TIMEOUT_MS, &st);
		if (err)
			return err;
		if (st == SB_WAIT_TIMEOUT)
			return -ETIMEDOUT;
		if (st == SB_WAIT_CLOSED || st == SB_WAIT_DEAD)
			return -EPIPE;
	}
}

/* Children 1..n of a writer run are consumers 0..n-1. */
static int writer_consumer(void *arg, int idx)
{
	struct run *r = arg;
	int k = idx - 1;
	struct sb_consumer *c;
	int err = sbb_connect_when(&r->sh->served, r->socket, SB_CONSUMER_START_AT_END, &c);

	if (err)
		return sbb_child_fail(&r->sh->err, idx, err, "connect: %s", sb_last_error());
	err = sb_consumer_drain(c, on_any_entry, NULL, NULL);
	if (!err && r->waiting)
		err = sbb_drain_events(c);
	if (err) {
		sbb_child_fail(&r->sh->err, idx, err, "first drain: %s", sb_last_error());
		goto out;
	}
	sb_fetch_add_release(&r->sh->ready, 1);
	if (r->waiting)
		err = wait_drain(c, r->warm + r->nstores);
	else
		err =
		    spin_drain(c, r->warm + r->nstores, sbb_deadline_after_ms(SBB_RUN_TIMEOUT_MS));
	if (err) {
		sbb_child_fail(&r->sh->err, idx, err, "draining: %s",
			       err == -ETIMEDOUT ? "timed out"
			       : err == -EPIPE	 ? "coordinator went away"
						 : sb_last_error());
		goto out;
	}
	sb_consumer_totals(c, &r->sh->counts[k]);
out:
	sb_consumer_close(c);
	sb_fetch_add_release(&r->sh->done, 1);
	return err;
}

struct writer_case {
	const char *name;
	unsigned consumers;
	bool waiting;
	double wall[SBB_REPS], cpu[SBB_REPS], wakes[SBB_REPS];
	struct sb_drain_counts sum; /* over consumers and repetitions */
	uint64_t consumer_runs;
	bool sums_ok;
	bool ok;
};

static int run_writer(struct run *r, struct writer_case *wc, unsigned rep)
{
	char label[64];
	struct sbb_group g;
	int err;

	memset(r->sh, 0, sizeof(*r->sh));
	sbb_socket_name(r->socket, sizeof(r->socket));
	sbb_group_init(&g, &r->sh->err);
	r->nconsumers = wc->consumers;
	r->waiting = wc->waiting;
	r->warm = WRITER_WARMUP;
	snprintf(label, sizeof(label), "writer \"%s\", repetition %u", wc->name, rep + 1);
	err = sbb_spawn(&g, "coordinator", writer_coordinator, r);
	for (unsigned i = 0; i < wc->consumers && !err; i++)
		err = sbb_spawn(&g, "consumer", writer_consumer, r);
	if (err)
		sbb_spawn_failed(&g, label, err);
	int rerr = sbb_reap(&g, label, SBB_RUN_TIMEOUT_MS);
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
		wc->name, rep + 1, SBB_REPS, wc->wall[rep], wc->cpu[rep], wc->wakes[rep],
		100.0 * (double)sh->cpu_ns / (double)sh->wall_ns);
	return 0;
}

static void json_spread(FILE *f, const char *key, const double *v, unsigned n)
{
	struct sbb_spread s = sbb_spread_of(v, n);

	fprintf(f, "\"%s\":{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f,\"reps\":[", key, s.median,
		s.min, s.max);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "%s%.1f", i ? "," : "", v[i]);
	fprintf(f, "]}");
}

static void json_spread_ratio(FILE *f, const char *key, const double *v, unsigned n)
{
	struct sbb_spread s = sbb_spread_of(v, n);

	fprintf(f, "\"%s\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}", key, s.median, s.min,
		s.max);
}

static void print_latency(FILE *json, unsigned nsamples, const struct sbb_wake_result *raw,
			  const struct sbb_wake_result *sb)
{
	const struct sbb_wake_result *res[2] = { raw, sb };
	const char *names[2] = { "raw_futex", "snapbridge" };
	double ratio[SBB_REPS];

	printf("\nWake latency: %u wake-ups per repetition; the sleeper announced itself and "
	       "then\nhad %u us to reach FUTEX_WAIT before each wake. ns, median [min..max] of "
	       "%d repetitions.\n\"waker call\" is the waker's stamp-to-return time of FUTEX_WAKE "
	       "(raw_futex) or\nsb_bridge_store (snapbridge), p50.\n\n",
	       nsamples, SBB_SETTLE_NS / 1000, SBB_REPS);
	printf("  %-12s %24s %24s %24s\n", "measurement", "p50 ns", "p99 ns", "waker call ns");
	for (int i = 0; i < 2; i++) {
		if (!res[i]->ok) {
			printf("  %-12s %24s %24s %24s\n", names[i], "FAILED", "FAILED", "FAILED");
			continue;
		}
		struct sbb_spread p50 = sbb_spread_of(res[i]->p50, SBB_REPS);
		struct sbb_spread p99 = sbb_spread_of(res[i]->p99, SBB_REPS);
		struct sbb_spread call = sbb_spread_of(res[i]->call50, SBB_REPS);
		char a[32], b[32], c[32];
		snprintf(a, sizeof(a), "%.0f [%.0f..%.0f]", p50.median, p50.min, p50.max);
		snprintf(b, sizeof(b), "%.0f [%.0f..%.0f]", p99.median, p99.min, p99.max);
		snprintf(c, sizeof(c), "%.0f [%.0f..%.0f]", call.median, call.min, call.max);
		printf("  %-12s %24s %24s %24s\n", names[i], a, b, c);
		if (json) {
			fprintf(json,
				"{\"measurement\":\"%s_wake_latency\",\"samples\":%u,\"reps\":%d,"
				"\"settle_ns\":%d,",
				names[i], nsamples, SBB_REPS, SBB_SETTLE_NS);
			json_spread(json, "p50_ns", res[i]->p50, SBB_REPS);
			fputc(',', json);
			json_spread(json, "p99_ns", res[i]->p99, SBB_REPS);
			fputc(',', json);
			json_spread(json, "waker_call_p50_ns", res[i]->call50, SBB_REPS);
			if (res[i] == sb) {
				fputc(',', json);
				json_spread(json, "wait_return_to_callback_p50_ns", sb->drain50,
					    SBB_REPS);
			}
			fprintf(json, "}\n");
		}
	}
	if (!raw->ok || !sb->ok)
		return;
	struct sbb_spread rp = sbb_spread_of(raw->p50, SBB_REPS),
			  sp = sbb_spread_of(sb->p50, SBB_REPS);
	/* Repetitions were interleaved, so repetition i of each ran side by side. */
	for (unsigned i = 0; i < SBB_REPS; i++)
		ratio[i] = sb->p50[i] / raw->p50[i];
	struct sbb_spread rr = sbb_spread_of(ratio, SBB_REPS);
	printf("\n  p50 ratio snapbridge / raw_futex: %.2f (medians); per repetition %.2f "
	       "[%.2f..%.2f]; target <= 1.5: %s\n",
	       sp.median / rp.median, rr.median, rr.min, rr.max,
	       sp.median / rp.median <= 1.5 ? "met" : "NOT met");
	printf("  breakdown (p50, medians): the waker's sb_bridge_store %.0f ns vs its FUTEX_WAKE "
	       "%.0f ns;\n  sb_consumer_wait() returning READY to the drain callback %.0f ns\n",
	       sbb_spread_of(sb->call50, SBB_REPS).median,
	       sbb_spread_of(raw->call50, SBB_REPS).median,
	       sbb_spread_of(sb->drain50, SBB_REPS).median);
	if (json) {
		fprintf(
		    json,
		    "{\"measurement\":\"wake_latency_ratio\",\"of_medians\":%.3f,\"target\":1.5,",
		    sp.median / rp.median);
		json_spread_ratio(json, "per_rep", ratio, SBB_REPS);
		fprintf(json, "}\n");
	}
}

static void print_writer(FILE *json, uint64_t nstores, struct writer_case *wc, unsigned ncases)
{
	struct sbb_spread base_w = sbb_spread_of(wc[0].wall, SBB_REPS),
			  base_c = sbb_spread_of(wc[0].cpu, SBB_REPS);
	bool base_ok = wc[0].ok;

	printf(
	    "\nWriter cost: one thread stores %" PRIu64 " reports of %d bytes, %d tags "
	    "round-robin\n(log %llu MiB, max_snapshots %d); consumers are separate processes. "
	    "Median [min..max]\nof %d repetitions; \"vs 0\" = median / median of 0 consumers.\n\n",
	    nstores, WRITER_REPORT_BYTES, WRITER_TAGS, WRITER_LOG_BYTES >> 20, WRITER_MAX_SNAPS,
	    SBB_REPS);
	printf("  %-13s %28s %6s %28s %6s %20s\n", "case", "stores/s (wall)", "vs 0",
	       "stores/CPU-s (writer)", "vs 0", "wakes/1000 stores");
	for (unsigned i = 0; i < ncases; i++) {
		if (!wc[i].ok) {
			printf("  %-13s %28s\n", wc[i].name, "FAILED");
			continue;
		}
		struct sbb_spread w = sbb_spread_of(wc[i].wall, SBB_REPS),
				  c = sbb_spread_of(wc[i].cpu, SBB_REPS);
		struct sbb_spread k = sbb_spread_of(wc[i].wakes, SBB_REPS);
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
			    WRITER_REPORT_BYTES, WRITER_TAGS, nstores, SBB_REPS);
			json_spread(json, "stores_per_s", wc[i].wall, SBB_REPS);
			fputc(',', json);
			json_spread(json, "stores_per_cpu_s", wc[i].cpu, SBB_REPS);
			fputc(',', json);
			json_spread(json, "wakes_per_1000_stores", wc[i].wakes, SBB_REPS);
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
		double w = sbb_spread_of(wc[i].wall, SBB_REPS).median / base_w.median;
		double c = sbb_spread_of(wc[i].cpu, SBB_REPS).median / base_c.median;
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

/* ---- 4. store latency under hostile consumers ------------------------------------------ */

static int latency_coordinator(void *arg, int idx)
{
	struct run *r = arg;
	static uint8_t buf[WRITER_REPORT_BYTES];
	struct sb_report rep = { .schema = "bench.l", .msgpack = buf, .msgpack_len = sizeof(buf) };
	char tags[WRITER_TAGS][8];
	struct sb_bridge *b;
	unsigned honest = r->nconsumers - (r->hostile != HOSTILE_NONE);
	int err = sbb_serve_bridge(r->socket, WRITER_MAX_SNAPS, WRITER_LOG_BYTES, &b);

	if (err)
		return sbb_child_fail(&r->sh->err, idx, err, "serving: %s", sb_last_error());
	sbb_pin(0); /* the storing thread; the bridge's own threads stay free */
	sbb_make_report(buf, sizeof(buf));
	for (unsigned i = 0; i < WRITER_TAGS; i++)
		snprintf(tags[i], sizeof(tags[i]), "w%02u", i);
	err = warm_up_and_announce(r, b, &rep, (const char(*)[8])tags, WRITER_TAGS);
	if (!err)
		err = await_consumers(r, b, honest, 6 * SBB_STEP_TIMEOUT_MS);
	if (err) {
		sbb_child_fail(&r->sh->err, idx, err, "consumers not ready: %s",
			       err == -ETIMEDOUT ? "timed out" : sb_last_error());
		goto out;
	}
	uint64_t wakes = writer_wakes(b);
	for (uint64_t i = 0; i < r->nstores; i++) {
		uint64_t t0 = sb__mono_ns();
		err = sb_bridge_store(b, tags[(r->warm + i) % WRITER_TAGS], &rep);
		r->lat[i] = sb__mono_ns() - t0;
		if (err) {
			sbb_child_fail(&r->sh->err, idx, err, "store %" PRIu64 ": %s", i,
				       sb_last_error());
			goto out;
		}
		if (i % LAT_PACE_EVERY == LAT_PACE_EVERY - 1)
			sbb_sleep_ns(LAT_PACE_NS); /* sleepers fall asleep and are woken again */
	}
	r->sh->wakes = writer_wakes(b) - wakes;
	r->sh->stores = r->nstores;
	if (sbb_await_count(&r->sh->done, honest, 6 * SBB_STEP_TIMEOUT_MS))
		err = sbb_child_fail(&r->sh->err, idx, -ETIMEDOUT,
				     "consumers did not finish draining");
out:
	sb_bridge_destroy(b);
	return err;
}

static void *sleep_on(void *arg)
{
	const uint32_t *word = arg;

	for (;;)
		sb__futex_wait(word, sb_load_relaxed(word), NULL);
	return NULL;
}

/*
 * The hostile consumer: HOSTILE_THREADS threads asleep on words of the
 * data region and on its own bell while it waits like an honest sleeper,
 * or arms in a loop with positions that are always behind.
 */
static int hostile_consumer(void *arg, int idx)
{
	struct run *r = arg;
	struct sb_consumer *c;
	pthread_attr_t small;
	int err = sbb_connect_when(&r->sh->served, r->socket, SB_CONSUMER_START_AT_END, &c);

	if (err)
		return sbb_child_fail(&r->sh->err, idx, err, "connect: %s", sb_last_error());
	err = sb_consumer_drain(c, on_any_entry, NULL, NULL);
	if (!err)
		err = sbb_drain_events(c);
	if (err)
		return sbb_child_fail(&r->sh->err, idx, err, "first drain: %s", sb_last_error());
	sb_fetch_add_release(&r->sh->ready, 1);
	if (r->hostile == HOSTILE_ARMS) {
		struct sb_arm a;
		sb__arm_init(&a, SB_ARM_FUTEX, SB_WAKE_REC | SB_WAKE_EV);
		a.rec_pos = 0; /* always behind: every arm is news, and rung */
		sb_store_release(&r->sh->hostile_ready, 1);
		for (;;) {
			if (send(c->conn_fd, &a, sizeof(a), MSG_DONTWAIT | MSG_NOSIGNAL) ==
			    sizeof(a))
				sb_fetch_add_relaxed(&r->sh->hostile_arms, 1);
			else if (errno == EAGAIN || errno == ENOBUFS)
				sched_yield(); /* its queue is full: the coordinator takes 4 per
						  wake-up */
			else
				_exit(0); /* the coordinator closed */
		}
	}
	/*
	 * Words no store rewrites, so the threads stay asleep: the header page
	 * (its live line changes with the heartbeat only), the hot line where
	 * the futex word of the design before this one was, and its own bell.
	 * A thread on a word every store rewrites would not sleep but poll the
	 * writer's lines, as any reader can; the spinning rows measure that.
	 */
	const uint32_t *hdr = (const uint32_t *)c->base;
	const uint32_t *line = (const uint32_t *)c->hot->reserved_line;
	size_t nhdr = SB_PAGE / 4, nline = SB_LINE / 4;
	pthread_attr_init(&small);
	pthread_attr_setstacksize(&small, HOSTILE_STACK_BYTES);
	for (unsigned i = 0; i < HOSTILE_THREADS; i++) {
		pthread_t t;
		const uint32_t *w = i % 8 == 7	 ? &c->page->bell
				    : i % 8 == 6 ? &line[i % nline]
						 : &hdr[i % nhdr];
		err = -pthread_create(&t, &small, sleep_on, (void *)w);
		if (err)
			return sbb_child_fail(&r->sh->err, idx, err, "thread %u of %u: %s", i,
					      HOSTILE_THREADS, strerror(-err));
	}
	sbb_sleep_ns(100000000); /* let them all reach FUTEX_WAIT */
	sb_store_release(&r->sh->hostile_ready, 1);
	for (;;) { /* and wait like an honest sleeper: its arms are rung too */
		enum sb_wait_status st;
		if (sb_consumer_wait(c, -1, &st) || st == SB_WAIT_CLOSED || st == SB_WAIT_DEAD)
			_exit(0);
		sb_consumer_drain(c, on_any_entry, NULL, NULL);
		sbb_drain_events(c);
	}
}

struct latency_case {
	const char *name;
	unsigned sleepers; /* honest consumers that wait */
	enum hostile hostile;
	double p50[LAT_REPS], p999[LAT_REPS], wakes[LAT_REPS];
	uint64_t hostile_arms;
	bool ok;
};

static int run_latency(struct run *r, struct latency_case *lc, unsigned rep)
{
	char label[64];
	struct sbb_group g;
	int err;

	memset(r->sh, 0, sizeof(*r->sh));
	sbb_socket_name(r->socket, sizeof(r->socket));
	sbb_group_init(&g, &r->sh->err);
	r->nconsumers = lc->sleepers + (lc->hostile != HOSTILE_NONE);
	r->waiting = true;
	r->hostile = lc->hostile;
	r->warm = WRITER_WARMUP;
	snprintf(label, sizeof(label), "latency \"%s\", repetition %u", lc->name, rep + 1);
	err = sbb_spawn(&g, "coordinator", latency_coordinator, r);
	for (unsigned i = 0; i < lc->sleepers && !err; i++)
		err = sbb_spawn(&g, "consumer", writer_consumer, r);
	if (!err && lc->hostile)
		err = sbb_spawn(&g, "hostile consumer", hostile_consumer, r);
	if (err)
		sbb_spawn_failed(&g, label, err);
	int rerr = sbb_reap(&g, label, SBB_RUN_TIMEOUT_MS);
	r->hostile = HOSTILE_NONE;
	if (err || rerr)
		return err ? err : rerr;

	uint64_t n = r->sh->stores;
	qsort(r->lat, n, sizeof(*r->lat), sbb_cmp_u64);
	lc->p50[rep] = (double)sbb_percentile(r->lat, n, 500);
	lc->p999[rep] = (double)sbb_percentile(r->lat, n, 999);
	lc->wakes[rep] = (double)r->sh->wakes;
	lc->hostile_arms += r->sh->hostile_arms;
	fprintf(stderr, "  %-14s rep %u/%u: p50 %6.0f ns  p99.9 %8.0f ns  %4.0f kicks\n", lc->name,
		rep + 1, LAT_REPS, lc->p50[rep], lc->p999[rep], lc->wakes[rep]);
	return 0;
}

static void print_latency_cases(FILE *json, uint64_t nstores, struct latency_case *lc,
				unsigned ncases)
{
	struct sbb_spread base = sbb_spread_of(lc[0].p999, LAT_REPS);

	printf("\nStore latency under hostile consumers: %" PRIu64 " stores of %d bytes, each "
	       "timed alone,\n%d tags round-robin, a %d us pause every %d stores; ns, median "
	       "[min..max] of %d\nrepetitions; \"vs 0\" = p99.9 median / p99.9 median of 0 "
	       "consumers.\n\n",
	       nstores, WRITER_REPORT_BYTES, WRITER_TAGS, LAT_PACE_NS / 1000, LAT_PACE_EVERY,
	       LAT_REPS);
	printf("  %-16s %26s %28s %6s %14s\n", "case", "p50 ns", "p99.9 ns", "vs 0",
	       "kicks (median)");
	for (unsigned i = 0; i < ncases; i++) {
		if (!lc[i].ok) {
			printf("  %-16s %26s\n", lc[i].name, "FAILED");
			continue;
		}
		struct sbb_spread a = sbb_spread_of(lc[i].p50, LAT_REPS),
				  z = sbb_spread_of(lc[i].p999, LAT_REPS),
				  k = sbb_spread_of(lc[i].wakes, LAT_REPS);
		char p50[48], p999[48], vs[16] = "-";
		snprintf(p50, sizeof(p50), "%.0f [%.0f..%.0f]", a.median, a.min, a.max);
		snprintf(p999, sizeof(p999), "%.0f [%.0f..%.0f]", z.median, z.min, z.max);
		if (lc[0].ok)
			snprintf(vs, sizeof(vs), "%.2f", z.median / base.median);
		printf("  %-16s %26s %28s %6s %14.0f\n", lc[i].name, p50, p999, vs, k.median);
		if (json) {
			fprintf(
			    json,
			    "{\"measurement\":\"store_latency\",\"case\":\"%s\",\"stores\":%" PRIu64
			    ",\"report_bytes\":%d,\"reps\":%d,",
			    lc[i].name, nstores, WRITER_REPORT_BYTES, LAT_REPS);
			json_spread(json, "p50_ns", lc[i].p50, LAT_REPS);
			fputc(',', json);
			json_spread(json, "p999_ns", lc[i].p999, LAT_REPS);
			fputc(',', json);
			json_spread(json, "kicks", lc[i].wakes, LAT_REPS);
			if (lc[0].ok)
				fprintf(json, ",\"p999_vs_0\":%.3f", z.median / base.median);
			if (lc[i].hostile == HOSTILE_ARMS)
				fprintf(json, ",\"hostile_arms\":%" PRIu64, lc[i].hostile_arms);
			fprintf(json, "}\n");
		}
	}
	for (unsigned i = 0; i < ncases; i++) {
		if (!lc[0].ok || !lc[i].ok || lc[i].hostile != HOSTILE_SLEEPERS)
			continue;
		double v = sbb_spread_of(lc[i].p999, LAT_REPS).median / base.median;
		printf("\n  target \"%s\" p99.9 within 2x of 0 consumers: %.2f (%s)\n", lc[i].name,
		       v, v <= 2.0 ? "met" : "NOT met");
	}
	for (unsigned i = 0; i < ncases; i++)
		if (lc[i].ok && lc[i].hostile == HOSTILE_ARMS)
			printf("  \"%s\": the hostile consumer sent %" PRIu64
			       " arms over all repetitions\n",
			       lc[i].name, lc[i].hostile_arms);
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
 * One bridge, one in-process consumer attached through a handed-over socket
 * (so it has a control page and a connection, but never waits), N stores
 * between markers. The bridge serves hand-overs only (socket NULL).
 */
static int syscall_probe(uint64_t n, bool unique)
{
	static uint8_t buf[WRITER_REPORT_BYTES];
	struct sb_report rep = { .schema = "bench.w", .msgpack = buf, .msgpack_len = sizeof(buf) };
	struct sb_config cfg;
	struct sb_consumer *c = NULL;
	struct sb_drain_counts t = { 0 };
	struct sb_serve_config sc;
	struct sb_bridge *b;
	int sock_fd = -1, err;
	uint64_t i = 0, wakes;

	sbb_make_report(buf, sizeof(buf));
	sb_config_default(&cfg);
	cfg.max_snapshots = WRITER_MAX_SNAPS;
	cfg.log_bytes = WRITER_LOG_BYTES;
	err = sb_bridge_create(&cfg, NULL, &b);
	if (err) {
		fprintf(stderr, "bench: create: %s\n", sb_last_error());
		return err;
	}
	sb_serve_config_default(&sc);
	sc.socket = NULL; /* hand-overs only */
	err = sb_bridge_serve(b, &sc);
	if (!err)
		err = sb_bridge_consumer_socket(b, &sock_fd);
	if (!err)
		err = sb_consumer_open_socket(sock_fd, 0, &c);
	if (err) {
		fprintf(stderr, "bench: attaching the consumer: %s\n", sb_last_error());
		goto out;
	}
	for (; i < PROBE_WARMUP && !err; i++)
		err = probe_store(b, &rep, i, unique);
	wakes = writer_wakes(b);
	fprintf(stderr, "probe start\n");
	for (; i < PROBE_WARMUP + n && !err; i++)
		err = probe_store(b, &rep, i, unique);
	fprintf(stderr, "probe end\n");
	if (err)
		goto out;
	wakes = writer_wakes(b) - wakes;
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
	sb_bridge_destroy(b);
	return err;
}

/* ---- main -------------------------------------------------------------------------- */

static void print_flood(FILE *json, unsigned ms, const char *why,
			const struct sbb_flood_result *quiet,
			const struct sbb_flood_result *flooded)
{
	const struct sbb_flood_result *res[2] = { quiet, flooded };
	const char *names[2] = { "quiet", "flooded" };

	printf("\nServing under a connection flood: %u ms per case; \"flooded\": %d processes of "
	       "uid %d\nconnecting and hanging up as fast as they can (those the backlog takes are "
	       "accepted\nand refused, the rest turned away at once); the oldest heartbeat seen, "
	       "sampled every\n1 ms; an honest consumer's connect halfway, from another thread. "
	       "Median [min..max]\nof %d repetitions.\n\n",
	       ms, 2, SBB_FLOOD_UID, SBB_REPS);
	if (why[0]) {
		printf("  skipped: %s\n", why);
		return;
	}
	printf("  %-8s %22s %18s %26s %22s %26s\n", "case", "oldest beat ms", "log lines/s",
	       "refused/s", "honest connect ms", "connect() calls/s");
	for (int i = 0; i < 2; i++) {
		if (!res[i]->ok) {
			printf("  %-8s %22s\n", names[i], "FAILED");
			continue;
		}
		struct sbb_spread a = sbb_spread_of(res[i]->worst_age_ms, SBB_REPS),
				  l = sbb_spread_of(res[i]->lines_per_s, SBB_REPS),
				  f = sbb_spread_of(res[i]->refusals_per_s, SBB_REPS),
				  c = sbb_spread_of(res[i]->connect_ms, SBB_REPS),
				  n = sbb_spread_of(res[i]->attempts_per_s, SBB_REPS);
		char sa[40], sl[40], sf[48], sc[40], sn[48];
		snprintf(sa, sizeof(sa), "%.1f [%.1f..%.1f]", a.median, a.min, a.max);
		snprintf(sl, sizeof(sl), "%.1f [%.1f..%.1f]", l.median, l.min, l.max);
		snprintf(sf, sizeof(sf), "%.0f [%.0f..%.0f]", f.median, f.min, f.max);
		snprintf(sc, sizeof(sc), "%.2f [%.2f..%.2f]", c.median, c.min, c.max);
		snprintf(sn, sizeof(sn), "%.0f [%.0f..%.0f]", n.median, n.min, n.max);
		printf("  %-8s %22s %18s %26s %22s %26s\n", names[i], sa, sl, sf, sc, sn);
		if (json) {
			fprintf(json,
				"{\"measurement\":\"serving_%s\",\"ms\":%u,\"reps\":%d,"
				"\"heartbeat_ms\":%u,",
				names[i], ms, SBB_REPS, res[i]->heartbeat_ms);
			json_spread(json, "oldest_beat_ms", res[i]->worst_age_ms, SBB_REPS);
			fputc(',', json);
			json_spread(json, "log_lines_per_s", res[i]->lines_per_s, SBB_REPS);
			fputc(',', json);
			json_spread(json, "refused_per_s", res[i]->refusals_per_s, SBB_REPS);
			fputc(',', json);
			json_spread(json, "honest_connect_ms", res[i]->connect_ms, SBB_REPS);
			fputc(',', json);
			json_spread(json, "connect_calls_per_s", res[i]->attempts_per_s, SBB_REPS);
			fprintf(json, "}\n");
		}
	}
	if (!flooded->ok)
		return;
	/* One period late at most: a beat every period, so no beat older than two. */
	struct sbb_spread worst = sbb_spread_of(flooded->worst_age_ms, SBB_REPS);
	double bound = 2.0 * flooded->heartbeat_ms;
	printf("\n  target \"the heartbeat never more than one period late\" (no beat older than "
	       "%.0f ms,\n  every repetition): oldest %.1f ms: %s\n",
	       bound, worst.max, worst.max <= bound ? "met" : "NOT met");
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: snapbridge-bench-serve [--quick] [--json FILE] [--only PART]\n"
	    "       snapbridge-bench-serve --syscall-probe N | --syscall-probe-unique N\n"
	    "\n"
	    "Measures the serving path: wake latency against a raw futex, the writer's cost\n"
	    "of consumers, store latency under hostile consumers, and serving under a\n"
	    "connection flood (docs/BENCHMARKS.md).\n"
	    "\n"
	    "  -q, --quick                  fewer samples and stores (about 26 s)\n"
	    "  -j, --json FILE              one JSON object per measurement per line\n"
	    "  -o, --only PART              wake, writer, latency or flood: that part alone\n"
	    "  -p, --syscall-probe N        N 4 KiB overwrites with one idle consumer\n"
	    "                               attached, between \"probe start\" and \"probe end\"\n"
	    "                               on stderr (run under strace -f)\n"
	    "  -u, --syscall-probe-unique N the same with a new tag per store\n"
	    "  -h, --help                   this text\n"
	    "\n"
	    "examples:\n"
	    "  snapbridge-bench-serve --quick\n"
	    "  snapbridge-bench-serve --only latency --json latency.json\n"
	    "  snapbridge-bench-serve --only flood\n"
	    "  strace -f -o trace.txt snapbridge-bench-serve --syscall-probe 100000\n");
}

static int bad_usage(const char *fmt, const char *what)
{
	fprintf(stderr, "snapbridge-bench-serve: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, " (see --help)\n");
	return 2;
}

static int parse_count(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > (1ull << 40))
		return -EINVAL;
	*out = v;
	return 0;
}

enum part { PART_WAKE = 1, PART_WRITER = 2, PART_LATENCY = 4, PART_FLOOD = 8, PART_ALL = 15 };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", required_argument, NULL, 'j' },
		{ "only", required_argument, NULL, 'o' },
		{ "syscall-probe", required_argument, NULL, 'p' },
		{ "syscall-probe-unique", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *json_path = NULL;
	bool quick = false;
	uint64_t probe_n = 0;
	bool probe_unique = false;
	unsigned parts = PART_ALL;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qj:o:p:u:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quick = true;
			break;
		case 'j':
			json_path = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "wake"))
				parts = PART_WAKE;
			else if (!strcmp(optarg, "writer"))
				parts = PART_WRITER;
			else if (!strcmp(optarg, "latency"))
				parts = PART_LATENCY;
			else if (!strcmp(optarg, "flood"))
				parts = PART_FLOOD;
			else
				return bad_usage(
				    "--only takes wake, writer, latency or flood, not '%s'",
				    optarg);
			break;
		case 'p':
		case 'u':
			probe_unique = c == 'u';
			if (parse_count(optarg, &probe_n))
				return bad_usage("--syscall-probe%s needs a positive count",
						 probe_unique ? "-unique" : "");
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			return bad_usage("option '%s' needs a value", argv[optind - 1]);
		default:
			return bad_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	if (probe_n)
		return syscall_probe(probe_n, probe_unique) ? 1 : 0;

	FILE *json = NULL;
	if (json_path && !(json = fopen(json_path, "w"))) {
		fprintf(stderr, "snapbridge-bench-serve: %s: %s\n", json_path, strerror(errno));
		return 2;
	}

	unsigned nsamples = quick ? LAT_SAMPLES_QUICK : LAT_SAMPLES;
	uint64_t nstores = quick ? WRITER_STORES_QUICK : WRITER_STORES;
	uint64_t nlat = quick ? LAT_STORES_QUICK : LAT_STORES;
	size_t shsize = sizeof(struct shared);
	struct shared *sh =
	    mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t *lat = mmap(NULL, nlat * sizeof(uint64_t), PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || lat == MAP_FAILED) {
		fprintf(stderr, "snapbridge-bench-serve: mmap: %s\n", strerror(errno));
		return 1;
	}

	sbb_block_sigchld();
	struct run r = { .sh = sh, .nstores = nstores, .lat = lat };
	uint64_t t0 = sb__mono_ns();
	bool failed = false;

	struct sbb_wake_result raw = { .ok = true }, sb = { .ok = true };
	if (parts & PART_WAKE) {
		fprintf(stderr,
			"wake latency: %u samples x %d repetitions (raw_futex and snapbridge "
			"interleaved)\n",
			nsamples, SBB_REPS);
		for (unsigned rep = 0; rep < SBB_REPS; rep++) {
			if (raw.ok && sbb_wake_run(true, nsamples, rep, SBB_REPS, &raw))
				raw.ok = false;
			if (sb.ok && sbb_wake_run(false, nsamples, rep, SBB_REPS, &sb))
				sb.ok = false;
		}
		failed |= !raw.ok || !sb.ok;
	}

	struct writer_case wc[] = {
		{ .name = "0 consumers" },
		{ .name = "1 spinning", .consumers = 1 },
		{ .name = "3 spinning", .consumers = 3 },
		{ .name = "1 waiting", .consumers = 1, .waiting = true },
		{ .name = "3 waiting", .consumers = 3, .waiting = true },
	};
	unsigned ncases = sizeof(wc) / sizeof(wc[0]);
	if (parts & PART_WRITER) {
		fprintf(stderr,
			"writer cost: %" PRIu64 " stores x %d repetitions x %u cases "
			"(cases interleaved)\n",
			nstores, SBB_REPS, ncases);
		for (unsigned i = 0; i < ncases; i++)
			wc[i].ok = wc[i].sums_ok = true;
		for (unsigned rep = 0; rep < SBB_REPS; rep++)
			for (unsigned i = 0; i < ncases; i++)
				if (wc[i].ok && run_writer(&r, &wc[i], rep))
					wc[i].ok = false;
		for (unsigned i = 0; i < ncases; i++)
			failed |= !wc[i].ok || !wc[i].sums_ok;
	}

	struct latency_case lc[] = {
		{ .name = "0 consumers" },
		{ .name = "3 sleepers", .sleepers = 3 },
		{ .name = "10000 sleeping", .hostile = HOSTILE_SLEEPERS },
		{ .name = "arming loop", .hostile = HOSTILE_ARMS },
	};
	unsigned nlc = sizeof(lc) / sizeof(lc[0]);
	if (parts & PART_LATENCY) {
		fprintf(stderr,
			"store latency: %" PRIu64 " timed stores x %d repetitions x %u cases "
			"(cases interleaved)\n",
			nlat, LAT_REPS, nlc);
		r.nstores = nlat;
		for (unsigned i = 0; i < nlc; i++)
			lc[i].ok = true;
		for (unsigned rep = 0; rep < LAT_REPS; rep++)
			for (unsigned i = 0; i < nlc; i++)
				if (lc[i].ok && run_latency(&r, &lc[i], rep))
					lc[i].ok = false;
		for (unsigned i = 0; i < nlc; i++)
			failed |= !lc[i].ok;
	}

	struct sbb_flood_result fq = { .ok = true }, ff = { .ok = true };
	unsigned flood_ms = quick ? FLOOD_MS_QUICK : FLOOD_MS;
	char flood_why[96] = "";
	if ((parts & PART_FLOOD) && sbb_flood_possible(flood_why, sizeof(flood_why))) {
		fprintf(stderr,
			"serving under a flood: %u ms x %d repetitions x 2 cases (interleaved)\n",
			flood_ms, SBB_REPS);
		for (unsigned rep = 0; rep < SBB_REPS; rep++) {
			if (fq.ok && sbb_flood_run(false, flood_ms, rep, SBB_REPS, &fq))
				fq.ok = false;
			if (ff.ok && sbb_flood_run(true, flood_ms, rep, SBB_REPS, &ff))
				ff.ok = false;
		}
		failed |= !fq.ok || !ff.ok;
	}

	printf("snapbridge-bench-serve%s: %d repetitions per measurement, %.0f s\n",
	       quick ? " --quick" : "", SBB_REPS, (double)(sb__mono_ns() - t0) / 1e9);
	if (parts & PART_WAKE)
		print_latency(json, nsamples, &raw, &sb);
	if (parts & PART_WRITER)
		print_writer(json, nstores, wc, ncases);
	if (parts & PART_LATENCY)
		print_latency_cases(json, nlat, lc, nlc);
	if (parts & PART_FLOOD)
		print_flood(json, flood_ms, flood_why, &fq, &ff);
	if (json && fclose(json) != 0) {
		fprintf(stderr, "snapbridge-bench-serve: %s: %s\n", json_path, strerror(errno));
		failed = true;
	}
	munmap(sh, shsize);
	munmap(lat, nlat * sizeof(uint64_t));
	return failed ? 1 : 0;
}
