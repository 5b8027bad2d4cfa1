/*
 * bench/bench.c - `snapbridge bench`: plan the measurements, run their
 * repetitions interleaved (so that machine noise hits every system
 * alike), then print the table, the targets, and write JSON and SVG.
 *
 *   store     one thread, sizes 64 B .. 256 KiB: snapbridge with unique
 *             tags (evicts past the cap) and with 32 tags round-robin
 *             (overwrites), memcpy, raw_ring, mutex_map (both tag
 *             patterns); pipe, unix_stream and iceoryx need a reader, so
 *             their store figure is the writer's rate of the end-to-end
 *             run. p50 / p99 / p99.9 per store at 64 B and 4 KiB.
 *   e2e       delivered records/s to 1 consumer process (2 and 4 where
 *             the machine has a CPU for each, plus one for the writer).
 *   wake      store-to-consumer-running latency vs a raw futex.
 *   parallel  2 and 4 writer threads, 4 KiB and 256 KiB.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../ring/clock.h"
#include "export_bench.h"
#include "harness.h"
#include "iox.h"
#include "measure.h"
#include "wake.h"

static const uint32_t sizes[] = { 64, 1024, 4096, 65536, 262144 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static const char *const all_systems[] = { "snapbridge",  "memcpy",    "raw_ring", "pipe",
					   "unix_stream", "mutex_map", "iceoryx",  "raw_futex" };
#define NSYSTEMS (sizeof(all_systems) / sizeof(all_systems[0]))
static const char *const all_benches[] = { "store", "e2e", "wake", "parallel", "export" };
#define NBENCHES (sizeof(all_benches) / sizeof(all_benches[0]))

enum mode { MODE_FULL, MODE_QUICK, MODE_SMOKE };

enum kind { K_STORE, K_STORE_VIA_E2E, K_E2E, K_WAKE, K_PARALLEL };

struct msr {
	enum kind kind;
	const char *bench; /* JSON name: store, store_overwrite, e2e, wake, parallel */
	const char *system;
	struct sbb_params p;
	unsigned source; /* K_STORE_VIA_E2E: index of the e2e run whose writer rate this is */
	unsigned reps;	 /* completed */
	double rate[SBB_REPS], wrate[SBB_REPS], crate[SBB_REPS];
	double p50[SBB_REPS], p99[SBB_REPS], p999[SBB_REPS];
	double lost[SBB_REPS];
	bool has_lat, has_counts, failed;
	struct sb_drain_counts counts; /* summed over repetitions */
	const char *skip;	       /* why it was not measured */
};

struct plan {
	struct msr *m;
	unsigned n, cap;
	enum mode mode;
	unsigned reps;
	bool sys_on[NSYSTEMS], bench_on[NBENCHES], size_on[NSIZES];
	char iox_why[160];
	bool iox_ok;
	struct sbb_wake_result wake[2]; /* raw_futex, snapbridge */
	unsigned wake_samples;
};

/* ---- the plan ---------------------------------------------------------------------- */

static bool sys_on(const struct plan *pl, const char *name)
{
	for (unsigned i = 0; i < NSYSTEMS; i++)
		if (!strcmp(all_systems[i], name))
			return pl->sys_on[i];
	return false;
}

static bool bench_on(const struct plan *pl, const char *name)
{
	for (unsigned i = 0; i < NBENCHES; i++)
		if (!strcmp(all_benches[i], name))
			return pl->bench_on[i];
	return false;
}

/* Timed records: about 64 MiB, between 256 and 100 000 records; fewer in quick modes. */
static uint64_t count_for(const struct plan *pl, uint32_t size)
{
	uint64_t n = (64ull << 20) / size;

	n = n < 256 ? 256 : n > 100000 ? 100000 : n;
	if (pl->mode == MODE_QUICK)
		n = n / 10 < 64 ? 64 : n / 10;
	if (pl->mode == MODE_SMOKE)
		n = 200;
	return n;
}

/* Untimed records before timing: enough to have written the whole ring once. */
static uint64_t warm_for(const struct plan *pl, uint32_t size)
{
	uint64_t w = SBB_RING_BYTES / (size + 128) + SBB_MAX_SNAPS;

	return pl->mode == MODE_SMOKE ? (w < 400 ? w : 400) : w;
}

static uint64_t nlat_for(const struct plan *pl, uint32_t size)
{
	if (size != 64 && size != 4096)
		return 0;
	return pl->mode == MODE_FULL ? 50000 : pl->mode == MODE_QUICK ? 10000 : 100;
}

static struct msr *add(struct plan *pl, enum kind kind, const char *bench, const char *system,
		       struct sbb_params p)
{
	if (pl->n == pl->cap) {
		pl->cap = pl->cap ? 2 * pl->cap : 64;
		struct msr *m = realloc(pl->m, pl->cap * sizeof(*m));
		if (!m) {
			fprintf(stderr, "bench: out of memory\n");
			exit(1);
		}
		pl->m = m;
	}
	struct msr *m = &pl->m[pl->n++];
	memset(m, 0, sizeof(*m));
	for (unsigned s = 0; s < NSIZES; s++)
		if (sizes[s] == p.size && !pl->size_on[s] && kind != K_WAKE) {
			pl->n--;
			return NULL;
		}
	m->kind = kind;
	m->bench = bench;
	m->system = system;
	m->p = p;
	if (!strcmp(system, "iceoryx") && !pl->iox_ok)
		m->skip = pl->iox_why;
	return m;
}

static void make_plan(struct plan *pl)
{
	static const char *const store_sys[] = { "memcpy", "raw_ring", "mutex_map", "snapbridge" };
	static const char *const e2e_sys[] = { "raw_ring", "pipe", "unix_stream", "iceoryx",
					       "snapbridge" };
	static const char *const par_sys[] = { "memcpy", "mutex_map", "snapbridge" };
	static const unsigned consumer_counts[] = { 1, 2, 4 };
	static const unsigned thread_counts[] = { 2, 4 };

	/* e2e runs first in the array so that the store rows can point at them. */
	for (unsigned s = 0; s < NSIZES && (bench_on(pl, "e2e") || bench_on(pl, "store")); s++) {
		for (unsigned c = 0; c < 3; c++) {
			unsigned nc = consumer_counts[c];
			/* A CPU for the writer and one per consumer, or the figure measures
			 * sharing. */
			if (nc > 1 && (nc + 1 > sbb_ncpus() || !bench_on(pl, "e2e")))
				continue;
			for (unsigned i = 0; i < sizeof(e2e_sys) / sizeof(e2e_sys[0]); i++) {
				const char *sys = e2e_sys[i];
				bool streams = strcmp(sys, "snapbridge") && strcmp(sys, "raw_ring");
				if (!sys_on(pl, sys))
					continue;
				/* Stream systems run for the store table even without e2e. */
				if (!bench_on(pl, "e2e") && !streams)
					continue;
				struct sbb_params p = {
					.size = sizes[s],
					.n = count_for(pl, sizes[s]),
					.nlat = streams && nc == 1 ? nlat_for(pl, sizes[s]) : 0,
					.warm = streams ? 64 : warm_for(pl, sizes[s]),
					.consumers = nc,
				};
				add(pl, K_E2E, "e2e", sys, p);
			}
		}
	}
	unsigned e2e_end = pl->n;
	for (unsigned s = 0; s < NSIZES && bench_on(pl, "store"); s++) {
		for (unsigned i = 0; i < sizeof(store_sys) / sizeof(store_sys[0]); i++) {
			const char *sys = store_sys[i];
			if (!sys_on(pl, sys))
				continue;
			struct sbb_params p = { .size = sizes[s],
						.n = count_for(pl, sizes[s]),
						.nlat = nlat_for(pl, sizes[s]),
						.warm = warm_for(pl, sizes[s]),
						.threads = 1 };
			add(pl, K_STORE, "store", sys, p);
			if (!strcmp(sys, "mutex_map") || !strcmp(sys, "snapbridge")) {
				p.overwrite = true;
				add(pl, K_STORE, "store_overwrite", sys, p);
			}
		}
		for (unsigned j = 0; j < e2e_end; j++) {
			struct msr *e = &pl->m[j];
			if (e->p.size != sizes[s] || e->p.consumers != 1 ||
			    !strcmp(e->system, "snapbridge") || !strcmp(e->system, "raw_ring"))
				continue;
			struct sbb_params p = e->p;
			p.threads = 1;
			struct msr *m = add(pl, K_STORE_VIA_E2E, "store", e->system, p);
			if (m)
				m->source = j;
		}
	}
	for (unsigned s = 0; s < NSIZES && bench_on(pl, "parallel"); s++) {
		if (sizes[s] != 4096 && sizes[s] != 262144)
			continue;
		for (unsigned t = 0; t < 2; t++)
			for (unsigned i = 0; i < sizeof(par_sys) / sizeof(par_sys[0]); i++) {
				if (!sys_on(pl, par_sys[i]))
					continue;
				struct sbb_params p = { .size = sizes[s],
							.n = count_for(pl, sizes[s]),
							.warm = warm_for(pl, sizes[s]),
							.threads = thread_counts[t] };
				add(pl, K_PARALLEL, "parallel", par_sys[i], p);
			}
	}
	if (bench_on(pl, "wake")) {
		struct sbb_params p = { .size = 64, .consumers = 1 };
		if (sys_on(pl, "raw_futex"))
			add(pl, K_WAKE, "wake", "raw_futex", p);
		if (sys_on(pl, "snapbridge"))
			add(pl, K_WAKE, "wake", "snapbridge", p);
	}
}

/* ---- running ----------------------------------------------------------------------- */

static void size_label(uint32_t size, char *buf, size_t len)
{
	if (size >= 1024)
		snprintf(buf, len, "%u KB", size / 1024);
	else
		snprintf(buf, len, "%u B", size);
}

/* 1.23M, 456k, 12.3 */
static void si(double v, char *buf, size_t len)
{
	if (v >= 1e9)
		snprintf(buf, len, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else
		snprintf(buf, len, "%.1f", v);
}

static const char *describe(const struct msr *m, char *buf, size_t len)
{
	char sz[16];

	size_label(m->p.size, sz, sizeof(sz));
	if (m->kind == K_E2E)
		snprintf(buf, len, "%s %s %s, %u consumer%s", m->bench, m->system, sz,
			 m->p.consumers, m->p.consumers > 1 ? "s" : "");
	else if (m->kind == K_PARALLEL)
		snprintf(buf, len, "%s %s %s, %u threads", m->bench, m->system, sz, m->p.threads);
	else if (m->kind == K_WAKE)
		snprintf(buf, len, "wake %s", m->system);
	else
		snprintf(buf, len, "%s %s %s", m->bench, m->system, sz);
	return buf;
}

struct in_child_arg {
	const struct msr *m;
	struct sbb_sample *out; /* MAP_SHARED */
};

static int in_child_main(void *arg, int idx)
{
	struct in_child_arg *a = arg;

	(void)idx;
	if (a->m->kind == K_STORE)
		return sbb_store_run(a->m->system, &a->m->p, a->out);
	return sbb_parallel_run(a->m->system, &a->m->p, a->out);
}

/*
 * In-process measurements run in a child too: the parent must never start
 * a bridge's threads (liburcu's call_rcu worker does not survive fork, so
 * a later child's bridge would wait for it forever).
 */
static int in_child(const struct msr *m, struct sbb_sample *out)
{
	struct {
		struct sbb_sample s;
		sbb_errtab err;
	} *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct in_child_arg a = { m, NULL };
	struct sbb_group g;
	char label[96];

	if (sh == MAP_FAILED)
		return -errno;
	a.out = &sh->s;
	sbb_group_init(&g, &sh->err);
	describe(m, label, sizeof(label));
	int err = sbb_spawn(&g, "writer", in_child_main, &a);
	if (err)
		sbb_spawn_failed(&g, label, err);
	int rerr = sbb_reap(&g, label, SBB_RUN_TIMEOUT_MS);
	if (!err && !rerr)
		*out = sh->s;
	munmap(sh, sizeof(*sh));
	return err ? err : rerr;
}

static int run_one(struct plan *pl, struct msr *m, unsigned rep)
{
	struct sbb_sample s;
	int err;

	switch (m->kind) {
	case K_STORE:
	case K_PARALLEL:
		err = in_child(m, &s);
		break;
	case K_E2E:
		err = sbb_e2e_run(m->system, &m->p, &s);
		break;
	case K_WAKE: {
		bool raw = !strcmp(m->system, "raw_futex");
		struct sbb_wake_result *w = &pl->wake[raw ? 0 : 1];
		err = sbb_wake_run(raw, pl->wake_samples, rep, pl->reps, w);
		memset(&s, 0, sizeof(s));
		if (!err) {
			s.p50 = w->p50[rep];
			s.p99 = w->p99[rep];
			s.has_lat = true;
		}
		break;
	}
	case K_STORE_VIA_E2E: {
		const struct msr *e = &pl->m[m->source];
		if (e->failed || e->reps <= rep)
			return -EIO;
		m->rate[rep] = e->wrate[rep];
		m->crate[rep] = e->crate[rep];
		m->p50[rep] = e->p50[rep];
		m->p99[rep] = e->p99[rep];
		m->p999[rep] = e->p999[rep];
		m->has_lat = e->has_lat;
		m->reps = rep + 1;
		return 0;
	}
	default:
		return -EINVAL;
	}
	if (err)
		return err;
	m->rate[rep] = s.rate;
	m->wrate[rep] = s.writer_rate;
	m->crate[rep] = s.cpu_rate;
	m->p50[rep] = s.p50;
	m->p99[rep] = s.p99;
	m->p999[rep] = s.p999;
	m->has_lat = s.has_lat;
	m->lost[rep] = (double)(s.stores - s.delivered);
	if (s.has_counts) {
		m->has_counts = true;
		m->counts.stores += s.counts.stores;
		m->counts.delivered += s.counts.delivered;
		m->counts.superseded += s.counts.superseded;
		m->counts.evicted += s.counts.evicted;
		m->counts.lapped += s.counts.lapped;
		m->counts.torn += s.counts.torn;
	}
	m->reps = rep + 1;
	return 0;
}

static bool run_all(struct plan *pl)
{
	unsigned total = 0, done = 0;
	bool ok = true;
	uint64_t t0 = sb__mono_ns();

	for (unsigned i = 0; i < pl->n; i++)
		total += !pl->m[i].skip && pl->m[i].kind != K_STORE_VIA_E2E;
	total *= pl->reps;
	for (unsigned rep = 0; rep < pl->reps; rep++) {
		for (unsigned i = 0; i < pl->n; i++) {
			struct msr *m = &pl->m[i];
			char what[96], r[16];

			if (m->skip || m->failed)
				continue;
			int err = run_one(pl, m, rep);
			if (m->kind == K_STORE_VIA_E2E) {
				m->failed = err != 0;
				continue;
			}
			done++;
			describe(m, what, sizeof(what));
			if (err) {
				fprintf(stderr, "[%3u/%u] %s: FAILED (%s)\n", done, total, what,
					strerror(-err));
				m->failed = true;
				ok = false;
				continue;
			}
			if (m->kind == K_WAKE)
				continue; /* sbb_wake_run printed its own line */
			si(m->rate[rep], r, sizeof(r));
			fprintf(stderr, "[%3u/%u] %-48s rep %u/%u: %8s records/s  (%.0f s)\n", done,
				total, what, rep + 1, pl->reps, r,
				(double)(sb__mono_ns() - t0) / 1e9);
		}
	}
	return ok;
}

/* ---- results ----------------------------------------------------------------------- */

static struct sbb_spread spread(const struct msr *m, const double *v)
{
	return sbb_spread_of(v, m->reps);
}

static bool usable(const struct msr *m)
{
	return m && !m->skip && !m->failed && m->reps > 0;
}

static const struct msr *find(const struct plan *pl, const char *bench, const char *system,
			      uint32_t size, unsigned consumers, unsigned threads)
{
	for (unsigned i = 0; i < pl->n; i++) {
		const struct msr *m = &pl->m[i];
		if (!strcmp(m->bench, bench) && !strcmp(m->system, system) && m->p.size == size &&
		    (m->kind != K_E2E || m->p.consumers == consumers) &&
		    (m->kind != K_PARALLEL || m->p.threads == threads))
			return m;
	}
	return NULL;
}

/* The snapbridge figure a row is compared with (NULL for snapbridge's own rows). */
static const struct msr *reference_of(const struct plan *pl, const struct msr *m)
{
	const char *bench = m->bench;

	if (!strcmp(m->system, "snapbridge"))
		return NULL;
	if (m->kind == K_STORE_VIA_E2E)
		bench = "store";
	return find(pl, bench, "snapbridge", m->p.size, m->p.consumers, m->p.threads);
}

static double median_rate(const struct msr *m)
{
	return spread(m, m->rate).median;
}

static void print_row(const struct plan *pl, const struct msr *m)
{
	char sz[16], sysname[40], rate[64], a[16], b[16], c[16], mbs[16], ratio[16] = "",
									  lat[48] = "";
	char cpu[16] = "", cratio[16] = "";

	size_label(m->p.size, sz, sizeof(sz));
	snprintf(sysname, sizeof(sysname), "%s%s%s", m->system,
		 !strcmp(m->bench, "store_overwrite") ? " (overwrite)" : "",
		 m->kind == K_STORE_VIA_E2E ? " *" : "");
	if (m->skip) {
		printf("  %-7s %-26s skipped: %s\n", sz, sysname, m->skip);
		return;
	}
	if (!usable(m)) {
		printf("  %-7s %-26s FAILED\n", sz, sysname);
		return;
	}
	struct sbb_spread r = spread(m, m->rate);
	si(r.median, a, sizeof(a));
	si(r.min, b, sizeof(b));
	si(r.max, c, sizeof(c));
	snprintf(rate, sizeof(rate), "%s [%s..%s]", a, b, c);
	snprintf(mbs, sizeof(mbs), "%.0f", r.median * m->p.size / 1e6);
	const struct msr *ref = reference_of(pl, m);
	if (usable(ref))
		snprintf(ratio, sizeof(ratio), "%.2f", median_rate(ref) / r.median);
	else if (!strcmp(m->system, "snapbridge"))
		snprintf(ratio, sizeof(ratio), "-");
	bool store = m->kind == K_STORE || m->kind == K_STORE_VIA_E2E;
	if (store) {
		double cr = spread(m, m->crate).median;
		si(cr, cpu, sizeof(cpu));
		if (usable(ref))
			snprintf(cratio, sizeof(cratio), "%.2f",
				 spread(ref, ref->crate).median / cr);
		else if (!strcmp(m->system, "snapbridge"))
			snprintf(cratio, sizeof(cratio), "-");
	}
	if (m->has_lat && store)
		snprintf(lat, sizeof(lat), "%8.0f %8.0f %8.0f", spread(m, m->p50).median,
			 spread(m, m->p99).median, spread(m, m->p999).median);
	if (store)
		printf("  %-7s %-26s %26s %7s %6s %8s %6s %s\n", sz, sysname, rate, mbs, ratio, cpu,
		       cratio, lat);
	else
		printf("  %-7s %-26s %26s %7s %6s\n", sz, sysname, rate, mbs, ratio);
}

static void print_table(const struct plan *pl)
{
	static const struct {
		const char *title;
		enum kind kinds[2];
	} sections[] = {
		{ "store: one thread, records/s median [min..max]", { K_STORE, K_STORE_VIA_E2E } },
		{ "end-to-end: records/s delivered to each consumer process", { K_E2E, K_E2E } },
		{ "parallel writers: records/s over all threads", { K_PARALLEL, K_PARALLEL } },
	};

	printf("\nsnapbridge bench: median [min..max] of %u repetition%s; sb/x = snapbridge / "
	       "that system\n(above 1: snapbridge is faster).\n",
	       pl->reps, pl->reps > 1 ? "s" : "");
	for (unsigned sct = 0; sct < 3; sct++) {
		bool any = false;
		for (unsigned i = 0; i < pl->n; i++)
			any |= pl->m[i].kind == sections[sct].kinds[0] ||
			       pl->m[i].kind == sections[sct].kinds[1];
		if (!any)
			continue;
		printf("\n%s\n", sections[sct].title);
		if (sct == 0)
			printf("  %-7s %-26s %26s %7s %6s %8s %6s %s\n", "size", "system",
			       "records/s", "MB/s", "sb/x", "rec/CPUs", "sb/x",
			       "  p50 ns   p99 ns p99.9 ns");
		else
			printf("  %-7s %-26s %26s %7s %6s\n", "size", "system", "records/s", "MB/s",
			       "sb/x");
		static const unsigned groups[] = { 1, 2, 4 };
		for (unsigned s = 0; s < NSIZES; s++)
			for (unsigned g = 0; g < 3; g++) {
				bool header = false;
				for (unsigned i = 0; i < pl->n; i++) {
					const struct msr *m = &pl->m[i];
					unsigned grp = m->kind == K_E2E	       ? m->p.consumers
						       : m->kind == K_PARALLEL ? m->p.threads
									       : 1;
					if (m->p.size != sizes[s] || grp != groups[g] ||
					    (m->kind != sections[sct].kinds[0] &&
					     m->kind != sections[sct].kinds[1]))
						continue;
					if (!header && (sct == 2 || g > 0))
						printf("  (%u %s)\n", grp,
						       sct == 1 ? "consumers" : "threads");
					header = true;
					print_row(pl, m);
				}
			}
		if (sct == 0)
			printf(
			    "  records/s is wall clock; rec/CPUs is records per CPU-second of the "
			    "storing process\n  (all its threads), which the machine's other "
			    "users cannot inflate.\n"
			    "  * pipe, unix_stream, iceoryx: the writer's rate while one consumer "
			    "process drains\n    (from the end-to-end run); p50/p99/p99.9 are its "
			    "per-record times there.\n");
		if (sct == 1) {
			printf("\n  accounting (snapbridge consumers, all repetitions; every store "
			       "gets one outcome):\n");
			printf("  %-7s %9s %10s %10s %11s %9s %9s %5s\n", "size", "consumers",
			       "stores", "delivered", "superseded", "evicted", "lapped", "torn");
			for (unsigned i = 0; i < pl->n; i++) {
				const struct msr *m = &pl->m[i];
				char sz[16];
				if (m->kind != K_E2E || !m->has_counts)
					continue;
				size_label(m->p.size, sz, sizeof(sz));
				printf("  %-7s %9u %10" PRIu64 " %10" PRIu64 " %11" PRIu64
				       " %9" PRIu64 " %9" PRIu64 " %5" PRIu64 "\n",
				       sz, m->p.consumers, m->counts.stores, m->counts.delivered,
				       m->counts.superseded, m->counts.evicted, m->counts.lapped,
				       m->counts.torn);
			}
			printf(
			    "  lost per repetition (median), other systems: raw_ring and iceoryx "
			    "by sequence gaps;\n  pipe and unix_stream block the writer instead "
			    "(0).\n");
			for (unsigned i = 0; i < pl->n; i++) {
				const struct msr *m = &pl->m[i];
				char sz[16];
				if (m->kind != K_E2E || !usable(m))
					continue;
				size_label(m->p.size, sz, sizeof(sz));
				printf("  %-7s %-12s %u consumer(s): %.0f of %" PRIu64 " lost\n",
				       sz, m->system, m->p.consumers, spread(m, m->lost).median,
				       m->p.n * m->p.consumers);
			}
		}
	}
	unsigned skipped = 0;
	for (unsigned c = 2; c <= 4; c *= 2)
		skipped += c + 1 > sbb_ncpus();
	if (skipped && bench_on(pl, "e2e"))
		printf("\n  end-to-end with 2 and 4 consumers: not run, this machine allows %u "
		       "CPUs (a writer and\n  n consumers need n + 1, or the figure measures CPU "
		       "sharing).\n",
		       sbb_ncpus());
	const struct msr *wr = find(pl, "wake", "raw_futex", 64, 1, 0);
	const struct msr *ws = find(pl, "wake", "snapbridge", 64, 1, 0);
	if (wr || ws) {
		printf("\nwake: store to consumer running, %u wake-ups per repetition, ns median "
		       "[min..max]\n",
		       pl->wake_samples);
		printf("  %-12s %28s %28s\n", "system", "p50 ns", "p99 ns");
		const struct msr *w[2] = { wr, ws };
		for (unsigned i = 0; i < 2; i++) {
			if (!w[i])
				continue;
			if (!usable(w[i])) {
				printf("  %-12s FAILED\n", w[i]->system);
				continue;
			}
			struct sbb_spread a = spread(w[i], w[i]->p50), b = spread(w[i], w[i]->p99);
			char x[48], y[48];
			snprintf(x, sizeof(x), "%.0f [%.0f..%.0f]", a.median, a.min, a.max);
			snprintf(y, sizeof(y), "%.0f [%.0f..%.0f]", b.median, b.min, b.max);
			printf("  %-12s %28s %28s\n", w[i]->system, x, y);
		}
	}
}

struct target {
	const char *what;
	const char *bench, *other;
	uint32_t size;
	double min; /* snapbridge / other at least; for wake: at most */
};

/* The verdicts, as a table on text and/or as a "targets" array on json (either may be NULL). */
static void print_targets(const struct plan *pl, FILE *text, FILE *json)
{
	static const struct target t[] = {
		{ "store 64 B unique tags >= 10x pipe", "store", "pipe", 64, 10 },
		{ "store 64 B unique tags >= 3x mutex_map", "store", "mutex_map", 64, 3 },
		{ "store 64 B unique tags >= 0.2x raw_ring", "store", "raw_ring", 64, 0.2 },
		{ "store 4 KB >= 0.6x raw_ring", "store", "raw_ring", 4096, 0.6 },
		{ "store 256 KB >= 0.8x raw_ring", "store", "raw_ring", 262144, 0.8 },
		{ "e2e 1 consumer 4 KB >= 0.5x raw_ring", "e2e", "raw_ring", 4096, 0.5 },
		{ "e2e 1 consumer 256 KB >= 0.7x raw_ring", "e2e", "raw_ring", 262144, 0.7 },
		{ "e2e 1 consumer 4 KB >= 2x iceoryx", "e2e", "iceoryx", 4096, 2 },
		{ "wake p50 <= 1.5x raw_futex", "wake", "raw_futex", 64, 1.5 },
	};

	if (text)
		fprintf(text, "\ntargets (ratios of medians):\n");
	if (json)
		fprintf(json, ",\n\"targets\":[");
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const struct msr *sb = find(pl, t[i].bench, "snapbridge", t[i].size, 1, 0);
		const struct msr *o = find(pl, t[i].bench, t[i].other, t[i].size, 1, 0);
		bool wake = !strcmp(t[i].bench, "wake");
		double ratio = 0;
		const char *verdict = "n/a";

		if (usable(sb) && usable(o)) {
			ratio = wake ? spread(sb, sb->p50).median / spread(o, o->p50).median
				     : median_rate(sb) / median_rate(o);
			verdict =
			    (wake ? ratio <= t[i].min : ratio >= t[i].min) ? "met" : "NOT met";
		}
		if (text && ratio > 0)
			fprintf(text, "  %-44s %6.2f  %s\n", t[i].what, ratio, verdict);
		else if (text)
			fprintf(text, "  %-44s %6s  %s\n", t[i].what, "-", verdict);
		if (json) {
			fprintf(json, "%s\n {\"target\":\"%s\",", i ? "," : "", t[i].what);
			if (ratio > 0)
				fprintf(json, "\"ratio\":%.3f,", ratio);
			else
				fprintf(json, "\"ratio\":null,");
			fprintf(json, "\"verdict\":\"%s\"}", verdict);
		}
	}
	if (json)
		fprintf(json, "]");
}

/* ---- JSON -------------------------------------------------------------------------- */

static void json_num(FILE *f, const char *key, double v, bool present)
{
	if (present)
		fprintf(f, ",\"%s\":%.1f", key, v);
	else
		fprintf(f, ",\"%s\":null", key);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_machine(FILE *f, const struct plan *pl)
{
	char model[256] = "unknown", line[512];
	struct utsname u;
	FILE *ci = fopen("/proc/cpuinfo", "r");

	while (ci && fgets(line, sizeof(line), ci)) {
		char *colon = strchr(line, ':');
		if (!strncmp(line, "model name", 10) && colon) {
			snprintf(model, sizeof(model), "%s", colon + 2);
			model[strcspn(model, "\n")] = '\0';
			break;
		}
	}
	if (ci)
		fclose(ci);
	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	time_t now = time(NULL);
	char date[32];
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(f, "\"machine\":{\"cpu\":");
	json_string(f, model);
	fprintf(f, ",\"cores\":%ld,\"cpus_allowed\":%u,\"kernel\":", sysconf(_SC_NPROCESSORS_ONLN),
		sbb_ncpus());
	json_string(f, u.release);
	fprintf(f, ",\"date\":\"%s\",\"mode\":\"%s\",\"repetitions\":%u}", date,
		pl->mode == MODE_FULL	 ? "full"
		: pl->mode == MODE_QUICK ? "quick"
					 : "smoke",
		pl->reps);
}

static void json_msr(FILE *f, const struct msr *m)
{
	bool ok = usable(m);
	struct sbb_spread r = ok ? spread(m, m->rate) : (struct sbb_spread){ 0, 0, 0 };

	fprintf(f,
		"{\"bench\":\"%s\",\"system\":\"%s\",\"size\":%u,\"consumers\":%u,\"threads\":%u",
		m->bench, m->system, m->p.size,
		m->kind == K_E2E || m->kind == K_STORE_VIA_E2E || m->kind == K_WAKE ? m->p.consumers
										    : 0,
		m->kind == K_WAKE ? 0
		: m->p.threads	  ? m->p.threads
				  : 1);
	bool rated = ok && m->kind != K_WAKE;
	json_num(f, "records_per_s", r.median, rated);
	json_num(f, "bytes_per_s", r.median * m->p.size, rated);
	json_num(f, "p50_ns", ok ? spread(m, m->p50).median : 0, ok && m->has_lat);
	json_num(f, "p99_ns", ok ? spread(m, m->p99).median : 0, ok && m->has_lat);
	json_num(f, "p999_ns", ok ? spread(m, m->p999).median : 0,
		 ok && m->has_lat && m->kind != K_WAKE);
	if (ok && m->kind == K_E2E)
		fprintf(f, ",\"lost\":%.0f", spread(m, m->lost).median);
	else
		fprintf(f, ",\"lost\":%s", ok ? "0" : "null");
	fprintf(f, ",\"reps\":%u", m->reps);
	if (rated)
		fprintf(f, ",\"records_per_s_min\":%.1f,\"records_per_s_max\":%.1f", r.min, r.max);
	if (ok && (m->kind == K_STORE || m->kind == K_STORE_VIA_E2E || m->kind == K_E2E))
		fprintf(f, ",\"%s\":%.1f",
			m->kind == K_E2E ? "writer_records_per_cpu_s" : "records_per_cpu_s",
			spread(m, m->crate).median);
	if (ok && m->kind == K_WAKE) {
		struct sbb_spread a = spread(m, m->p50);
		fprintf(f, ",\"p50_ns_min\":%.1f,\"p50_ns_max\":%.1f", a.min, a.max);
	}
	if (ok && m->kind == K_E2E)
		fprintf(f, ",\"records_stored\":%" PRIu64 ",\"writer_records_per_s\":%.1f",
			m->p.n * m->p.consumers, spread(m, m->wrate).median);
	if (m->has_counts)
		fprintf(f,
			",\"accounting\":{\"stores\":%" PRIu64 ",\"delivered\":%" PRIu64
			",\"superseded\":%" PRIu64 ",\"evicted\":%" PRIu64 ",\"lapped\":%" PRIu64
			",\"torn\":%" PRIu64 "}",
			m->counts.stores, m->counts.delivered, m->counts.superseded,
			m->counts.evicted, m->counts.lapped, m->counts.torn);
	if (m->kind == K_STORE_VIA_E2E)
		fprintf(f, ",\"note\":\"the writer's rate while one consumer process drains\"");
	if (m->skip) {
		fprintf(f, ",\"skipped\":");
		json_string(f, m->skip);
	} else if (!ok) {
		fprintf(f, ",\"failed\":true");
	}
	fprintf(f, "}");
}

static int write_json(const struct plan *pl, const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	fprintf(f, "{");
	json_machine(f, pl);
	fprintf(f, ",\n\"measurements\":[");
	for (unsigned i = 0; i < pl->n; i++) {
		fprintf(f, "%s\n ", i ? "," : "");
		json_msr(f, &pl->m[i]);
	}
	fprintf(f, "]");
	print_targets(pl, NULL, f);
	sbb_export_json(f);
	fprintf(f, "}\n");
	if (fclose(f) != 0) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

/* ---- SVG through gnuplot ----------------------------------------------------------- */

/* Whether m is a line of the panel of kinds k1/k2; if so, its line's name. */
static bool plotted(const struct msr *m, enum kind k1, enum kind k2, char *name, size_t len)
{
	if ((m->kind != k1 && m->kind != k2) || !usable(m) ||
	    (m->kind == K_E2E && m->p.consumers != 1))
		return false;
	snprintf(name, len, "%s%s", m->system,
		 !strcmp(m->bench, "store_overwrite") ? " (overwrite)" : "");
	return true;
}

static void plot_panel(FILE *g, const struct plan *pl, enum kind k1, enum kind k2,
		       const char *title)
{
	char names[16][48], name[48];
	unsigned n = 0;

	/* One line per system (and per tag pattern), in plan order. */
	for (unsigned i = 0; i < pl->n; i++) {
		bool seen = false;
		if (!plotted(&pl->m[i], k1, k2, name, sizeof(name)))
			continue;
		for (unsigned j = 0; j < n; j++)
			seen |= !strcmp(names[j], name);
		if (!seen && n < 16)
			memcpy(names[n++], name, sizeof(name));
	}
	fprintf(g, "set title '%s'\n", title);
	fprintf(g, "plot ");
	for (unsigned j = 0; j < n; j++)
		fprintf(g, "%s'-' using 1:2 with linespoints lw %d title '%s'", j ? ", " : "",
			strncmp(names[j], "snapbridge", 10) ? 1 : 3, names[j]);
	fprintf(g, "\n");
	for (unsigned j = 0; j < n; j++) {
		for (unsigned i = 0; i < pl->n; i++) {
			const struct msr *m = &pl->m[i];
			if (plotted(m, k1, k2, name, sizeof(name)) && !strcmp(name, names[j]))
				fprintf(g, "%u %.0f\n", m->p.size, median_rate(m) * m->p.size);
		}
		fprintf(g, "e\n");
	}
}

static int write_svg(const struct plan *pl, const char *path)
{
	char cmd[64];
	FILE *g;

	snprintf(cmd, sizeof(cmd), "gnuplot");
	g = popen(cmd, "w");
	if (!g) {
		fprintf(stderr, "bench: cannot run gnuplot (Debian package gnuplot-nox): %s\n",
			strerror(errno));
		return -errno;
	}
	fprintf(g, "set terminal svg size 1100,480 dynamic noenhanced font 'sans,11'\n");
	fprintf(g, "set output '%s'\n", path);
	fprintf(
	    g,
	    "set logscale xy\nset grid\nset key bottom right font ',9'\nset xrange [40:400000]\n");
	fprintf(g, "set xlabel 'record size (bytes)'\nset ylabel 'bytes/s'\n");
	fprintf(g, "set xtics ('64' 64, '1K' 1024, '4K' 4096, '64K' 65536, '256K' 262144)\n");
	fprintf(g, "set multiplot layout 1,2\n");
	plot_panel(g, pl, K_STORE, K_STORE_VIA_E2E, "store, one thread");
	plot_panel(g, pl, K_E2E, K_E2E, "end-to-end, 1 consumer process");
	fprintf(g, "unset multiplot\n");
	int rc = pclose(g);
	if (rc != 0) {
		fprintf(stderr, "bench: gnuplot failed (exit %d); is gnuplot-nox installed?\n", rc);
		return -EIO;
	}
	return 0;
}

/* ---- main -------------------------------------------------------------------------- */

static void usage(FILE *f, const char *name)
{
	fprintf(
	    f,
	    "usage: %s [--quick] [--json FILE] [--svg FILE] [--only NAME,...]\n"
	    "\n"
	    "  --quick        a tenth of the records, 3 repetitions (under a minute)\n"
	    "  --smoke        a fraction of a second, 1 repetition: proves it runs, figures "
	    "mean nothing\n"
	    "  --json FILE    one object per measurement, a \"machine\" object, the targets\n"
	    "  --svg FILE     throughput against record size, log-log (needs gnuplot)\n"
	    "  --only LIST    systems (snapbridge memcpy raw_ring pipe unix_stream mutex_map\n"
	    "                 iceoryx raw_futex) and/or measurements (store e2e wake parallel)\n"
	    "  --sizes LIST   record sizes to measure, of 64,1024,4096,65536,262144 (for "
	    "profiling)\n"
	    "  (--only export: the export to NATS JetStream alone; it needs nats-server)\n",
	    name);
}

static int parse_sizes(struct plan *pl, char *list)
{
	memset(pl->size_on, 0, sizeof(pl->size_on));
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		bool known = false;
		for (unsigned s = 0; s < NSIZES; s++)
			if ((unsigned long)sizes[s] == strtoul(tok, NULL, 10))
				known = pl->size_on[s] = true;
		if (!known) {
			fprintf(stderr, "bench: --sizes: %s is not one of the measured sizes\n",
				tok);
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_only(struct plan *pl, char *list)
{
	bool any_sys = false, any_bench = false;

	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		bool known = false;
		for (unsigned i = 0; i < NSYSTEMS; i++)
			if (!strcmp(tok, all_systems[i])) {
				if (!any_sys)
					memset(pl->sys_on, 0, sizeof(pl->sys_on));
				any_sys = known = pl->sys_on[i] = true;
			}
		for (unsigned i = 0; i < NBENCHES; i++)
			if (!strcmp(tok, all_benches[i])) {
				if (!any_bench)
					memset(pl->bench_on, 0, sizeof(pl->bench_on));
				any_bench = known = pl->bench_on[i] = true;
			}
		if (!known) {
			fprintf(stderr,
				"bench: --only: '%s' is neither a system nor a measurement\n", tok);
			return -EINVAL;
		}
	}
	return 0;
}

int sb_bench_main(int argc, char **argv)
{
	const char *json = NULL, *svg = NULL, *name = argc > 0 ? argv[0] : "bench";
	struct plan pl = { .mode = MODE_FULL };
	bool ok;

	for (unsigned i = 0; i < NSYSTEMS; i++)
		pl.sys_on[i] = true;
	for (unsigned i = 0; i < NBENCHES; i++)
		pl.bench_on[i] = true;
	for (unsigned i = 0; i < NSIZES; i++)
		pl.size_on[i] = true;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			pl.mode = MODE_QUICK;
		} else if (!strcmp(argv[i], "--smoke")) {
			pl.mode = MODE_SMOKE;
		} else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json = argv[++i];
		} else if (!strcmp(argv[i], "--svg") && i + 1 < argc) {
			svg = argv[++i];
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			if (parse_only(&pl, argv[++i]))
				return 2;
		} else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
			if (parse_sizes(&pl, argv[++i]))
				return 2;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout, name);
			return 0;
		} else {
			usage(stderr, name);
			return 2;
		}
	}
	pl.reps = pl.mode == MODE_FULL ? SBB_REPS : pl.mode == MODE_QUICK ? 3 : 1;
	pl.wake_samples = pl.mode == MODE_FULL ? 2000 : pl.mode == MODE_QUICK ? 400 : 20;
	pl.wake[0].ok = pl.wake[1].ok = true;
	sbb_block_sigchld();
	setvbuf(stdout, NULL, _IOLBF, 0);

#ifdef SBB_HAVE_IOX
	pl.iox_ok = sys_on(&pl, "iceoryx") && sbb_iox_available(pl.iox_why, sizeof(pl.iox_why));
	if (pl.iox_ok && (bench_on(&pl, "e2e") || bench_on(&pl, "store"))) {
		int err = sbb_iox_start();
		if (err) {
			snprintf(pl.iox_why, sizeof(pl.iox_why), "iox-roudi did not start: %s",
				 strerror(-err));
			pl.iox_ok = false;
		}
	}
#else
	snprintf(pl.iox_why, sizeof(pl.iox_why),
		 "built without the iceoryx C binding (make bench-deps, then rebuild)");
#endif
	make_plan(&pl);
	fprintf(stderr, "snapbridge bench (%s): %u measurements x %u repetitions, %u CPUs%s%s\n",
		pl.mode == MODE_FULL	? "full"
		: pl.mode == MODE_QUICK ? "quick"
					: "smoke",
		pl.n, pl.reps, sbb_ncpus(),
		pl.iox_ok || !sys_on(&pl, "iceoryx") ? "" : "; iceoryx: ",
		pl.iox_ok || !sys_on(&pl, "iceoryx") ? "" : pl.iox_why);
	uint64_t t0 = sb__mono_ns();
	ok = run_all(&pl);
#ifdef SBB_HAVE_IOX
	if (pl.iox_ok)
		sbb_iox_stop();
#endif
	print_table(&pl);
	print_targets(&pl, stdout, NULL);
	/* The export to NATS JetStream: rows and target of its own (bench/export.c). */
	if (bench_on(&pl, "export") && sbb_export_bench(pl.mode == MODE_FULL	? 0
							: pl.mode == MODE_QUICK ? 1
										: 2,
							stdout))
		ok = false;
	printf("\n%u CPUs; every writer thread or process pinned to CPU 0, consumers to CPU 1.. "
	       "in turn;\n%.0f s in all.\n",
	       sbb_ncpus(), (double)(sb__mono_ns() - t0) / 1e9);
	if (json && write_json(&pl, json))
		ok = false;
	if (svg && write_svg(&pl, svg))
		ok = false;
	free(pl.m);
	return ok ? 0 : 1;
}
