/*
 * bench/bench.c - `snapbridge bench`: plan the measurements, run their
 * repetitions interleaved (so that machine noise hits every system
 * alike), then print the table, the targets, and write JSON and SVG.
 *
 *   store     one thread: snapbridge with unique tags (evicts past the
 *             cap), with 32 tags round-robin (overwrites) and with its
 *             msgpack check on (validated), memcpy, raw_ring, mutex_map
 *             (both tag patterns); pipe, unix_stream and iceoryx need a
 *             reader, so their store figure is the writer's rate of the
 *             end-to-end run. p50 / p99 / p99.9 per store at 64 B and 4 KiB.
 *   e2e       delivered records/s to 1 consumer process (2 and 4 where
 *             the machine has a CPU for each, plus one for the writer);
 *             snapbridge also with consumers that check the msgpack.
 *   wake      store-to-consumer-running latency vs a raw futex.
 *   parallel  2 and 4 writer threads, 4 KiB and 256 KiB.
 *
 * Every measurement runs for each report shape (harness.h: an opaque bin,
 * a scheduler-state dump) at the shape's sizes, and reports the minor
 * page faults of its timed phase: a row above one fault per thousand
 * records is marked, since it measured the kernel's page allocator.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
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
/* A dump is a document of many objects: below 4 KiB it would be a few CPUs' worth. */
#define DUMP_MIN_SIZE 4096
/* The validated rows: where a report is big enough to be a document. */
#define VALIDATE_MIN_SIZE 4096

static const char *const all_systems[] = { "snapbridge",  "memcpy",    "raw_ring", "pipe",
					   "unix_stream", "mutex_map", "iceoryx",  "raw_futex" };
#define NSYSTEMS (sizeof(all_systems) / sizeof(all_systems[0]))
static const char *const all_benches[] = { "store", "e2e", "wake", "parallel", "export" };
#define NBENCHES (sizeof(all_benches) / sizeof(all_benches[0]))

/* Rows whose timed phase faulted more than this many pages per 1000 records are marked. */
#define FAULT_MARK 1.0

enum mode { MODE_FULL, MODE_QUICK, MODE_SMOKE };

enum kind { K_STORE, K_STORE_VIA_E2E, K_E2E, K_WAKE, K_PARALLEL };

struct msr {
	enum kind kind;
	/* JSON name: store, store_overwrite, store_validate, e2e, e2e_validate, wake, parallel */
	const char *bench;
	const char *system;
	struct sbb_params p;
	unsigned source; /* K_STORE_VIA_E2E: index of the e2e run whose writer rate this is */
	unsigned reps;	 /* completed */
	double rate[SBB_REPS], wrate[SBB_REPS], crate[SBB_REPS];
	double p50[SBB_REPS], p99[SBB_REPS], p999[SBB_REPS];
	double lost[SBB_REPS];
	double faults[SBB_REPS], cfaults[SBB_REPS]; /* timed phase: writer, consumers */
	bool has_lat, has_counts, has_faults, has_cfaults, failed;
	struct sb_drain_counts counts; /* summed over repetitions */
	const char *skip;	       /* why it was not measured */
};

struct plan {
	struct msr *m;
	unsigned n, cap;
	enum mode mode;
	unsigned reps;
	uint64_t ring_bytes;
	bool sys_on[NSYSTEMS], bench_on[NBENCHES], size_on[NSIZES], shape_on[SBB_NSHAPES];
	char iox_why[160];
	bool iox_ok;
	struct sbb_wake_result wake[2]; /* raw_futex, snapbridge */
	unsigned wake_samples;
	bool live;	    /* stderr is a terminal that can redraw one progress line */
	bool line_open;	    /* a progress line is on the screen, not yet ended */
	char plot_why[160]; /* why no SVG can be drawn, or "" */
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

static bool size_on(const struct plan *pl, uint32_t size)
{
	for (unsigned s = 0; s < NSIZES; s++)
		if (sizes[s] == size)
			return pl->size_on[s];
	return false;
}

/* Whether shape is measured at size. */
static bool shaped(const struct plan *pl, enum sbb_shape shape, uint32_t size)
{
	return pl->shape_on[shape] && size_on(pl, size) &&
	       (shape != SBB_SHAPE_DUMP || size >= DUMP_MIN_SIZE);
}

/* Timed records: about 64 MiB, between 256 and 100 000 records; fewer in quick modes. */
static uint64_t count_for(const struct plan *pl, uint32_t size)
{
	uint64_t n = (64ull << 20) / size;

	n = n < 256 ? 256 : n > 100000 ? 100000 : n;
	if (pl->mode == MODE_QUICK)
		n = n / 10 < 64 ? 64 : n / 10;
	/* Enough that one stray page fault stays below the mark. */
	if (pl->mode == MODE_SMOKE)
		n = 1000;
	return n;
}

/*
 * Untimed records before timing, the same for every system: enough to
 * write every ring in full, since no system's record takes fewer bytes
 * of its ring than the record itself (an eighth more for good measure),
 * and at least enough for snapbridge's event ring to go round once past
 * the resident cap (every store past it records an event).
 */
static uint64_t warm_for(const struct plan *pl, uint32_t size)
{
	uint64_t w = pl->ring_bytes / size;
	uint64_t events = SBB_MAX_SNAPS + SBB_MAX_EVENTS + SBB_MAX_EVENTS / 8;

	w += w / 8;
	return w > events ? w : events;
}

static uint64_t nlat_for(const struct plan *pl, uint32_t size)
{
	if (size != 64 && size != 4096)
		return 0;
	return pl->mode == MODE_FULL ? 50000 : pl->mode == MODE_QUICK ? 10000 : 100;
}

static struct sbb_params params(const struct plan *pl, enum sbb_shape shape, uint32_t size)
{
	return (struct sbb_params){ .size = size,
				    .shape = shape,
				    .ring_bytes = pl->ring_bytes,
				    .n = count_for(pl, size),
				    .warm = warm_for(pl, size),
				    .threads = 1 };
}

static struct msr *add(struct plan *pl, enum kind kind, const char *bench, const char *system,
		       struct sbb_params p)
{
	if (pl->n == pl->cap) {
		pl->cap = pl->cap ? 2 * pl->cap : 128;
		struct msr *m = realloc(pl->m, pl->cap * sizeof(*m));
		if (!m) {
			fprintf(stderr, "snapbridge bench: out of memory\n");
			exit(1);
		}
		pl->m = m;
	}
	struct msr *m = &pl->m[pl->n++];
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->bench = bench;
	m->system = system;
	m->p = p;
	if (!strcmp(system, "iceoryx") && !pl->iox_ok)
		m->skip = pl->iox_why;
	return m;
}

static void plan_e2e(struct plan *pl, enum sbb_shape shape, uint32_t size)
{
	static const char *const e2e_sys[] = { "raw_ring", "pipe", "unix_stream", "iceoryx",
					       "snapbridge" };
	static const unsigned consumer_counts[] = { 1, 2, 4 };

	for (unsigned c = 0; c < 3; c++) {
		unsigned nc = consumer_counts[c];
		/* A CPU for the writer and one per consumer, or the figure measures sharing. */
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
			struct sbb_params p = params(pl, shape, size);
			p.threads = 0;
			p.consumers = nc;
			p.nlat = streams && nc == 1 ? nlat_for(pl, size) : 0;
			add(pl, K_E2E, "e2e", sys, p);
			if (!strcmp(sys, "snapbridge") && nc == 1 && size >= VALIDATE_MIN_SIZE) {
				p.validate = true;
				add(pl, K_E2E, "e2e_validate", sys, p);
			}
		}
	}
}

static void plan_store(struct plan *pl, enum sbb_shape shape, uint32_t size, unsigned e2e_end)
{
	static const char *const store_sys[] = { "memcpy", "raw_ring", "mutex_map", "snapbridge" };

	for (unsigned i = 0; i < sizeof(store_sys) / sizeof(store_sys[0]); i++) {
		const char *sys = store_sys[i];
		if (!sys_on(pl, sys))
			continue;
		struct sbb_params p = params(pl, shape, size);
		p.nlat = nlat_for(pl, size);
		add(pl, K_STORE, "store", sys, p);
		if (!strcmp(sys, "mutex_map") || !strcmp(sys, "snapbridge")) {
			p.overwrite = true;
			add(pl, K_STORE, "store_overwrite", sys, p);
			p.overwrite = false;
		}
		if (!strcmp(sys, "snapbridge") && size >= VALIDATE_MIN_SIZE) {
			p.validate = true;
			add(pl, K_STORE, "store_validate", sys, p);
		}
	}
	for (unsigned j = 0; j < e2e_end; j++) {
		const struct msr *e = &pl->m[j];
		if (e->p.size != size || e->p.shape != shape || e->p.consumers != 1 ||
		    !strcmp(e->system, "snapbridge") || !strcmp(e->system, "raw_ring"))
			continue;
		struct sbb_params p = e->p;
		p.threads = 1;
		struct msr *m = add(pl, K_STORE_VIA_E2E, "store", e->system, p);
		m->source = j;
		m->skip = e->skip;
	}
}

static void make_plan(struct plan *pl)
{
	static const unsigned thread_counts[] = { 2, 4 };

	/* e2e runs first in the array so that the store rows can point at them. */
	for (unsigned sh = 0; sh < SBB_NSHAPES; sh++)
		for (unsigned s = 0; s < NSIZES; s++)
			if (shaped(pl, sh, sizes[s]) &&
			    (bench_on(pl, "e2e") || bench_on(pl, "store")))
				plan_e2e(pl, sh, sizes[s]);
	unsigned e2e_end = pl->n;
	for (unsigned sh = 0; sh < SBB_NSHAPES; sh++)
		for (unsigned s = 0; s < NSIZES; s++)
			if (shaped(pl, sh, sizes[s]) && bench_on(pl, "store"))
				plan_store(pl, sh, sizes[s], e2e_end);
	for (unsigned sh = 0; sh < SBB_NSHAPES && bench_on(pl, "parallel"); sh++)
		for (unsigned s = 0; s < NSIZES; s++) {
			if ((sizes[s] != 4096 && sizes[s] != 262144) || !shaped(pl, sh, sizes[s]))
				continue;
			for (unsigned t = 0; t < 2; t++) {
				static const char *const par_sys[] = { "memcpy", "mutex_map",
								       "snapbridge" };
				for (unsigned i = 0; i < 3; i++) {
					if (!sys_on(pl, par_sys[i]))
						continue;
					struct sbb_params p = params(pl, sh, sizes[s]);
					p.threads = thread_counts[t];
					add(pl, K_PARALLEL, "parallel", par_sys[i], p);
				}
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

/* ---- progress ------------------------------------------------------------------------ */

/*
 * One line per finished repetition when stderr is a file, a pipe or a
 * dumb terminal; on a terminal, one line redrawn in place.
 */
__attribute__((format(printf, 2, 3))) static void progress(struct plan *pl, const char *fmt, ...)
{
	va_list ap;

	if (pl->live)
		fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (pl->live) {
		pl->line_open = true;
	} else {
		fputc('\n', stderr);
	}
	fflush(stderr);
}

/* End the redrawn line, so that other output starts on a line of its own. */
static void progress_break(struct plan *pl)
{
	if (pl->line_open)
		fputc('\n', stderr);
	pl->line_open = false;
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

/* "snapbridge", "snapbridge (overwrite)", "pipe *": the system as the table names it. */
static void display_name(const struct msr *m, char *buf, size_t len)
{
	const char *variant =
	    !strcmp(m->bench, "store_overwrite") ? " (overwrite)"
	    : !strcmp(m->bench, "store_validate") || !strcmp(m->bench, "e2e_validate")
		? " (validated)"
		: "";

	snprintf(buf, len, "%s%s%s", m->system, variant, m->kind == K_STORE_VIA_E2E ? " *" : "");
}

static const char *describe(const struct msr *m, char *buf, size_t len)
{
	char sz[16], name[48];

	size_label(m->p.size, sz, sizeof(sz));
	display_name(m, name, sizeof(name));
	if (m->kind == K_WAKE)
		snprintf(buf, len, "wake %s", m->system);
	else if (m->kind == K_E2E)
		snprintf(buf, len, "e2e %s %s %s, %u consumer%s", name, sbb_shape_name(m->p.shape),
			 sz, m->p.consumers, m->p.consumers > 1 ? "s" : "");
	else if (m->kind == K_PARALLEL)
		snprintf(buf, len, "parallel %s %s %s, %u threads", name,
			 sbb_shape_name(m->p.shape), sz, m->p.threads);
	else
		snprintf(buf, len, "store %s %s %s", name, sbb_shape_name(m->p.shape), sz);
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
		progress_break(pl); /* sbb_wake_run prints a line of its own */
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
		m->faults[rep] = e->faults[rep];
		m->has_lat = e->has_lat;
		m->has_faults = e->has_faults;
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
	m->faults[rep] = (double)s.faults;
	m->cfaults[rep] = (double)s.consumer_faults;
	m->has_faults = m->kind != K_WAKE;
	m->has_cfaults = s.has_consumer_faults;
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
			char what[128], r[16];

			if (m->skip || m->failed)
				continue;
			if (m->kind != K_STORE_VIA_E2E && m->kind != K_WAKE && pl->live) {
				describe(m, what, sizeof(what));
				progress(pl, "[%3u/%u] %s, rep %u/%u ... (%.0f s)", done + 1, total,
					 what, rep + 1, pl->reps,
					 (double)(sb__mono_ns() - t0) / 1e9);
			}
			int err = run_one(pl, m, rep);
			if (m->kind == K_STORE_VIA_E2E) {
				m->failed = err != 0;
				continue;
			}
			done++;
			describe(m, what, sizeof(what));
			if (err) {
				progress_break(pl);
				fprintf(stderr, "[%3u/%u] %s: FAILED (%s)\n", done, total, what,
					strerror(-err));
				m->failed = true;
				ok = false;
				continue;
			}
			if (m->kind == K_WAKE)
				continue; /* sbb_wake_run printed its own line */
			si(m->rate[rep], r, sizeof(r));
			progress(pl, "[%3u/%u] %-52s rep %u/%u: %8s records/s  (%.0f s)", done,
				 total, what, rep + 1, pl->reps, r,
				 (double)(sb__mono_ns() - t0) / 1e9);
		}
	}
	progress_break(pl);
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

/* The row of bench for system at this shape, size, consumer count (e2e) and thread count. */
static const struct msr *find(const struct plan *pl, const char *bench, const char *system,
			      enum sbb_shape shape, uint32_t size, unsigned consumers,
			      unsigned threads)
{
	for (unsigned i = 0; i < pl->n; i++) {
		const struct msr *m = &pl->m[i];
		if (!strcmp(m->bench, bench) && !strcmp(m->system, system) && m->p.size == size &&
		    m->p.shape == shape && (m->kind != K_E2E || m->p.consumers == consumers) &&
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
	return find(pl, bench, "snapbridge", m->p.shape, m->p.size, m->p.consumers, m->p.threads);
}

static double median_rate(const struct msr *m)
{
	return spread(m, m->rate).median;
}

/*
 * Faults of one repetition's timed phase per 1000 of its records, writer
 * and consumers together.
 */
static double faults_per_k(const struct msr *m, unsigned rep)
{
	double f = m->faults[rep] + (m->has_cfaults ? m->cfaults[rep] : 0);

	return m->p.n ? f * 1000.0 / (double)m->p.n : 0;
}

static struct sbb_spread fault_spread(const struct msr *m)
{
	double v[SBB_REPS];

	for (unsigned r = 0; r < m->reps; r++)
		v[r] = faults_per_k(m, r);
	return sbb_spread_of(v, m->reps);
}

/* The mark: the median repetition faulted more than FAULT_MARK pages per 1000 records. */
static bool over_mark(const struct msr *m)
{
	return usable(m) && m->has_faults && fault_spread(m).median > FAULT_MARK;
}

static void print_row(const struct plan *pl, const struct msr *m)
{
	char sz[16], sysname[48], rate[64], a[16], b[16], c[16], mbs[16], ratio[16] = "",
									  lat[48] = "";
	char cpu[16] = "", cratio[16] = "", flt[16] = "";

	size_label(m->p.size, sz, sizeof(sz));
	display_name(m, sysname, sizeof(sysname));
	if (m->skip)
		return; /* said once, under the table */
	if (!usable(m)) {
		printf("  %-7s %-5s %-26s FAILED\n", sz, sbb_shape_name(m->p.shape), sysname);
		return;
	}
	struct sbb_spread r = spread(m, m->rate);
	si(r.median, a, sizeof(a));
	si(r.min, b, sizeof(b));
	si(r.max, c, sizeof(c));
	snprintf(rate, sizeof(rate), "%s [%s..%s]", a, b, c);
	snprintf(mbs, sizeof(mbs), "%.0f", r.median * m->p.size / 1e6);
	if (m->has_faults)
		snprintf(flt, sizeof(flt), "%.2f%s", fault_spread(m).median,
			 over_mark(m) ? "!" : "");
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
		printf("  %-7s %-5s %-26s %26s %7s %6s %8s %6s %7s %s\n", sz,
		       sbb_shape_name(m->p.shape), sysname, rate, mbs, ratio, cpu, cratio, flt,
		       lat);
	else
		printf("  %-7s %-5s %-26s %26s %7s %6s %7s\n", sz, sbb_shape_name(m->p.shape),
		       sysname, rate, mbs, ratio, flt);
}

static void print_accounting(const struct plan *pl)
{
	printf("\n  accounting (snapbridge consumers, all repetitions; every store gets one "
	       "outcome):\n");
	printf("  %-7s %-5s %-11s %9s %10s %10s %11s %9s %9s %5s\n", "size", "shape", "consumer",
	       "consumers", "stores", "delivered", "superseded", "evicted", "lapped", "torn");
	for (unsigned i = 0; i < pl->n; i++) {
		const struct msr *m = &pl->m[i];
		char sz[16];
		if (m->kind != K_E2E || !m->has_counts)
			continue;
		size_label(m->p.size, sz, sizeof(sz));
		printf("  %-7s %-5s %-11s %9u %10" PRIu64 " %10" PRIu64 " %11" PRIu64 " %9" PRIu64
		       " %9" PRIu64 " %5" PRIu64 "\n",
		       sz, sbb_shape_name(m->p.shape), m->p.validate ? "validating" : "default",
		       m->p.consumers, m->counts.stores, m->counts.delivered, m->counts.superseded,
		       m->counts.evicted, m->counts.lapped, m->counts.torn);
	}
	printf("  lost per repetition (median): snapbridge by its accounting (lapped + torn), "
	       "raw_ring\n  and iceoryx by sequence gaps; pipe and unix_stream block the writer "
	       "instead (0).\n");
	for (unsigned i = 0; i < pl->n; i++) {
		const struct msr *m = &pl->m[i];
		char sz[16], name[48];
		if (m->kind != K_E2E || !usable(m))
			continue;
		size_label(m->p.size, sz, sizeof(sz));
		display_name(m, name, sizeof(name));
		printf("  %-7s %-5s %-24s %u consumer(s): %.0f of %" PRIu64 " lost\n", sz,
		       sbb_shape_name(m->p.shape), name, m->p.consumers, spread(m, m->lost).median,
		       m->p.n * m->p.consumers);
	}
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
	       "that system\n(above 1: snapbridge is faster); flt/k = minor page faults of the "
	       "timed phase per 1000\nrecords (writer and consumers), '!' above %.0f.\n",
	       pl->reps, pl->reps > 1 ? "s" : "", FAULT_MARK);
	for (unsigned sct = 0; sct < 3; sct++) {
		bool any = false;
		for (unsigned i = 0; i < pl->n; i++)
			any |= !pl->m[i].skip && (pl->m[i].kind == sections[sct].kinds[0] ||
						  pl->m[i].kind == sections[sct].kinds[1]);
		if (!any)
			continue;
		printf("\n%s\n", sections[sct].title);
		if (sct == 0)
			printf("  %-7s %-5s %-26s %26s %7s %6s %8s %6s %7s %s\n", "size", "shape",
			       "system", "records/s", "MB/s", "sb/x", "rec/CPUs", "sb/x", "flt/k",
			       "  p50 ns   p99 ns p99.9 ns");
		else
			printf("  %-7s %-5s %-26s %26s %7s %6s %7s\n", "size", "shape", "system",
			       "records/s", "MB/s", "sb/x", "flt/k");
		static const unsigned groups[] = { 1, 2, 4 };
		for (unsigned sh = 0; sh < SBB_NSHAPES; sh++)
			for (unsigned s = 0; s < NSIZES; s++)
				for (unsigned g = 0; g < 3; g++) {
					bool header = false;
					for (unsigned i = 0; i < pl->n; i++) {
						const struct msr *m = &pl->m[i];
						unsigned grp = m->kind == K_E2E ? m->p.consumers
							       : m->kind == K_PARALLEL
								   ? m->p.threads
								   : 1;
						if (m->p.size != sizes[s] || m->p.shape != sh ||
						    grp != groups[g] || m->skip ||
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
			    "users cannot inflate. validated: the\n  bridge checks each report's "
			    "msgpack (SB_BRIDGE_VALIDATE_MSGPACK).\n"
			    "  * pipe, unix_stream, iceoryx: the writer's rate while one consumer "
			    "process drains\n    (from the end-to-end run); p50/p99/p99.9 are its "
			    "per-record times there.\n");
		if (sct == 1) {
			printf("  validated: the consumer checks each report's msgpack "
			       "(SB_CONSUMER_VALIDATE_MSGPACK).\n");
			print_accounting(pl);
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
	if (sys_on(pl, "iceoryx") && !pl->iox_ok)
		printf("\n  iceoryx: not measured: %s.\n", pl->iox_why);
	const struct msr *wr = find(pl, "wake", "raw_futex", SBB_SHAPE_BIN, 64, 1, 0);
	const struct msr *ws = find(pl, "wake", "snapbridge", SBB_SHAPE_BIN, 64, 1, 0);
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
	unsigned marked = 0;
	for (unsigned i = 0; i < pl->n; i++)
		marked += over_mark(&pl->m[i]);
	if (marked)
		printf("\n  %u row%s faulted more than %.0f page per 1000 records in the timed "
		       "phase ('!'):\n  their figure includes the kernel's page allocator.\n",
		       marked, marked > 1 ? "s" : "", FAULT_MARK);
}

struct target {
	const char *what;
	const char *bench;	 /* snapbridge's row */
	const char *other_bench; /* the other system's */
	const char *other;
	enum sbb_shape shape;
	uint32_t size;
	double min; /* snapbridge / other at least; for wake: at most */
};

/* The verdicts, as a table on text and/or as a "targets" array on json (either may be NULL). */
static void print_targets(const struct plan *pl, FILE *text, FILE *json)
{
	static const struct target t[] = {
		{ "store 64 B unique tags >= 0.15x raw_ring", "store", "store", "raw_ring",
		  SBB_SHAPE_BIN, 64, 0.15 },
		{ "store 64 B unique tags >= 3x mutex_map", "store", "store", "mutex_map",
		  SBB_SHAPE_BIN, 64, 3 },
		{ "store 64 B overwrites >= 0.25x raw_ring", "store_overwrite", "store", "raw_ring",
		  SBB_SHAPE_BIN, 64, 0.25 },
		{ "store 4 KB bin >= 0.8x raw_ring", "store", "store", "raw_ring", SBB_SHAPE_BIN,
		  4096, 0.8 },
		{ "store 256 KB bin >= 0.9x raw_ring", "store", "store", "raw_ring", SBB_SHAPE_BIN,
		  262144, 0.9 },
		{ "store dump 64 KB >= 0.5x raw_ring", "store", "store", "raw_ring", SBB_SHAPE_DUMP,
		  65536, 0.5 },
		{ "store dump 256 KB >= 0.5x raw_ring", "store", "store", "raw_ring",
		  SBB_SHAPE_DUMP, 262144, 0.5 },
		{ "e2e 1 consumer 4 KB bin >= 0.7x raw_ring", "e2e", "e2e", "raw_ring",
		  SBB_SHAPE_BIN, 4096, 0.7 },
		{ "e2e 1 consumer dump 64 KB >= 0.5x raw_ring", "e2e", "e2e", "raw_ring",
		  SBB_SHAPE_DUMP, 65536, 0.5 },
		{ "wake p50 <= 1.5x raw_futex", "wake", "wake", "raw_futex", SBB_SHAPE_BIN, 64,
		  1.5 },
	};

	if (text)
		fprintf(text, "\ntargets (ratios of medians):\n");
	if (json)
		fprintf(json, ",\n\"targets\":[");
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const struct msr *sb =
		    find(pl, t[i].bench, "snapbridge", t[i].shape, t[i].size, 1, 0);
		const struct msr *o =
		    find(pl, t[i].other_bench, t[i].other, t[i].shape, t[i].size, 1, 0);
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
			fprintf(text, "  %-46s %6.2f  %s\n", t[i].what, ratio, verdict);
		else if (text)
			fprintf(text, "  %-46s %6s  %s\n", t[i].what, "-", verdict);
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
	fprintf(f,
		",\"date\":\"%s\",\"mode\":\"%s\",\"repetitions\":%u,\"ring_bytes\":%" PRIu64
		",\"fault_mark_per_1000\":%.1f}",
		date,
		pl->mode == MODE_FULL	 ? "full"
		: pl->mode == MODE_QUICK ? "quick"
					 : "smoke",
		pl->reps, pl->ring_bytes, FAULT_MARK);
}

static void json_msr(FILE *f, const struct msr *m)
{
	bool ok = usable(m);
	struct sbb_spread r = ok ? spread(m, m->rate) : (struct sbb_spread){ 0, 0, 0 };

	fprintf(f,
		"{\"bench\":\"%s\",\"system\":\"%s\",\"shape\":\"%s\",\"size\":%u,\"consumers\":%u,"
		"\"threads\":%u",
		m->bench, m->system, sbb_shape_name(m->p.shape), m->p.size,
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
	if (ok && m->has_faults) {
		struct sbb_spread fk = fault_spread(m);
		fprintf(f, ",\"records_timed\":%" PRIu64 ",\"faults\":%.0f", m->p.n,
			spread(m, m->faults).median);
		if (m->has_cfaults)
			fprintf(f, ",\"consumer_faults\":%.0f", spread(m, m->cfaults).median);
		fprintf(
		    f,
		    ",\"faults_per_1000\":%.3f,\"faults_per_1000_max\":%.3f,\"over_fault_mark\":%s",
		    fk.median, fk.max, over_mark(m) ? "true" : "false");
	}
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
		fprintf(stderr, "snapbridge bench: %s: %s\n", path, strerror(errno));
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
		fprintf(stderr, "snapbridge bench: %s: %s\n", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

/* ---- SVG through gnuplot ----------------------------------------------------------- */

/* Whether m is a line of the panel of kinds k1/k2 and shape; if so, its line's name. */
static bool plotted(const struct msr *m, enum kind k1, enum kind k2, enum sbb_shape shape,
		    char *name, size_t len)
{
	if ((m->kind != k1 && m->kind != k2) || !usable(m) || m->p.shape != shape ||
	    (m->kind == K_E2E && m->p.consumers != 1))
		return false;
	display_name(m, name, len);
	return true;
}

static void plot_panel(FILE *g, const struct plan *pl, enum kind k1, enum kind k2,
		       enum sbb_shape shape, const char *title)
{
	char names[24][48], name[48];
	unsigned n = 0;

	/* One line per system (and per variant), in plan order. */
	for (unsigned i = 0; i < pl->n; i++) {
		bool seen = false;
		if (!plotted(&pl->m[i], k1, k2, shape, name, sizeof(name)))
			continue;
		for (unsigned j = 0; j < n; j++)
			seen |= !strcmp(names[j], name);
		if (!seen && n < 24)
			memcpy(names[n++], name, sizeof(name));
	}
	fprintf(g, "set title '%s, %s reports'\n", title, sbb_shape_name(shape));
	if (!n) {
		fprintf(g, "plot NaN notitle\n");
		return;
	}
	fprintf(g, "plot ");
	for (unsigned j = 0; j < n; j++)
		fprintf(g, "%s'-' using 1:2 with linespoints lw %d title '%s'", j ? ", " : "",
			strncmp(names[j], "snapbridge", 10) ? 1 : 3, names[j]);
	fprintf(g, "\n");
	for (unsigned j = 0; j < n; j++) {
		for (unsigned i = 0; i < pl->n; i++) {
			const struct msr *m = &pl->m[i];
			if (plotted(m, k1, k2, shape, name, sizeof(name)) &&
			    !strcmp(name, names[j]))
				fprintf(g, "%u %.0f\n", m->p.size, median_rate(m) * m->p.size);
		}
		fprintf(g, "e\n");
	}
}

static int write_svg(const struct plan *pl, const char *path)
{
	unsigned rows = 0;
	FILE *g = popen("gnuplot", "w");

	if (!g) {
		fprintf(stderr, "snapbridge bench: cannot run gnuplot: %s\n", strerror(errno));
		return -errno;
	}
	for (unsigned sh = 0; sh < SBB_NSHAPES; sh++)
		rows += pl->shape_on[sh];
	fprintf(g, "set terminal svg size 1100,%u dynamic noenhanced font 'sans,11'\n",
		480 * (rows ? rows : 1));
	fprintf(g, "set output '%s'\n", path);
	fprintf(
	    g,
	    "set logscale xy\nset grid\nset key bottom right font ',9'\nset xrange [40:400000]\n");
	fprintf(g, "set xlabel 'record size (bytes)'\nset ylabel 'bytes/s'\n");
	fprintf(g, "set xtics ('64' 64, '1K' 1024, '4K' 4096, '64K' 65536, '256K' 262144)\n");
	fprintf(g, "set multiplot layout %u,2\n", rows ? rows : 1);
	for (unsigned sh = 0; sh < SBB_NSHAPES; sh++) {
		if (!pl->shape_on[sh])
			continue;
		plot_panel(g, pl, K_STORE, K_STORE_VIA_E2E, sh, "store, one thread");
		plot_panel(g, pl, K_E2E, K_E2E, sh, "end-to-end, 1 consumer process");
	}
	fprintf(g, "unset multiplot\n");
	int rc = pclose(g);
	if (rc != 0) {
		fprintf(stderr, "snapbridge bench: gnuplot failed (exit status %d) writing %s\n",
			rc, path);
		return -EIO;
	}
	return 0;
}

/* ---- the command line -------------------------------------------------------------- */

static const char *const cmd = "bench";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: snapbridge bench [--quick | --smoke] [--json FILE] [--svg FILE]\n"
		"                        [--only NAME,...] [--sizes LIST] [--shape LIST]\n"
		"\n"
		"Measure snapbridge next to memcpy, a minimal ring, pipes, sockets, a mutex map\n"
		"and iceoryx, side by side in one run (docs/BENCHMARKS.md).\n"
		"\n"
		"  --quick        a tenth of the records, 3 repetitions\n"
		"  --smoke        a fraction of a second, 1 repetition: proves it runs, figures "
		"mean nothing\n"
		"  --json FILE    one object per measurement, a \"machine\" object, the targets\n"
		"  --svg FILE     throughput against record size, log-log (gnuplot; skipped with "
		"a note\n"
		"                 when it is not installed)\n"
		"  --only LIST    systems (snapbridge memcpy raw_ring pipe unix_stream mutex_map\n"
		"                 iceoryx raw_futex) and/or measurements (store e2e wake parallel\n"
		"                 export: the export to NATS JetStream, which needs nats-server)\n"
		"  --sizes LIST   record sizes, of 64,1K,4K,64K,256K (bytes or K)\n"
		"  --shape LIST   report shapes, of bin (one msgpack bin) and dump (a "
		"scheduler-state\n"
		"                 dump, 4096 bytes and up); both by default\n"
		"  --version      print the version\n"
		"  -h, --help     this text\n"
		"\n"
		"examples:\n"
		"  snapbridge bench --quick\n"
		"  snapbridge bench --json out.json --svg out.svg\n"
		"  snapbridge bench --only store,snapbridge,raw_ring --sizes 64 --shape bin\n"
		"  snapbridge bench --only e2e --shape dump --sizes 64K\n");
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "snapbridge %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'snapbridge %s --help')\n", cmd);
	return 2;
}

/* A comma list of names, each one of names[n]: on[i] for those given, the rest off. */
static int parse_names(char *list, const char *const *names, unsigned n, bool *on, const char *opt,
		       const char *choices)
{
	memset(on, 0, n * sizeof(*on));
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		bool known = false;
		for (unsigned i = 0; i < n; i++)
			if (!strcmp(tok, names[i]))
				known = on[i] = true;
		if (!known)
			return usage_error("%s: '%s' is not one of %s", opt, tok, choices);
	}
	return 0;
}

/* Sizes in bytes or KiB, as the tool's size options take them: 64, 4096 or 4K, 256K. */
static int parse_sizes(struct plan *pl, char *list)
{
	memset(pl->size_on, 0, sizeof(pl->size_on));
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = *tok >= '0' && *tok <= '9' ? strtoul(tok, &end, 10) : 0;
		bool known = false;

		if (v && (!strcmp(end, "K") || !strcmp(end, "k") || !strcmp(end, "KiB")) &&
		    v <= UINT32_MAX >> 10)
			v <<= 10;
		else if (v && *end)
			v = 0;
		for (unsigned i = 0; i < NSIZES; i++)
			if (v == sizes[i])
				known = pl->size_on[i] = true;
		if (!known)
			return usage_error("--sizes: '%s' is not one of 64,1K,4K,64K,256K "
					   "(in bytes or with K)",
					   tok);
	}
	return 0;
}

static int parse_shapes(struct plan *pl, char *list)
{
	static const char *const names[SBB_NSHAPES] = { "bin", "dump" };

	return parse_names(list, names, SBB_NSHAPES, pl->shape_on, "--shape", "bin,dump");
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
		if (!known)
			return usage_error("--only: '%s' is neither a system nor a measurement",
					   tok);
	}
	return 0;
}

/* The option getopt_long refused, in one line. */
static int bad_option(int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return usage_error("option '%s' needs a value", arg);
	if (optopt && optopt < 128 && !strchr(arg, '='))
		return usage_error("unknown option '-%c'", optopt);
	return usage_error("unknown option '%s'", arg);
}

/* 0 to run, 1 when --help or --version was answered, 2 for a usage error. */
static int parse(int argc, char **argv, struct plan *pl, const char **json, const char **svg)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "smoke", no_argument, NULL, 'S' },
		{ "json", required_argument, NULL, 'j' },
		{ "svg", required_argument, NULL, 'g' },
		{ "only", required_argument, NULL, 'o' },
		{ "sizes", required_argument, NULL, 'z' },
		{ "shape", required_argument, NULL, 's' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, err = 0;

	optind = 1;
	opterr = 0;
	while (!err && (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			pl->mode = MODE_QUICK;
			break;
		case 'S':
			pl->mode = MODE_SMOKE;
			break;
		case 'j':
			*json = optarg;
			break;
		case 'g':
			*svg = optarg;
			break;
		case 'o':
			err = parse_only(pl, optarg);
			break;
		case 'z':
			err = parse_sizes(pl, optarg);
			break;
		case 's':
			err = parse_shapes(pl, optarg);
			break;
		case 'V':
			printf("snapbridge bench %s\n", SNAPBRIDGE_VERSION);
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		default:
			return bad_option(c, argv);
		}
	}
	if (err)
		return err;
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return 0;
}

/* Whether stderr can carry a redrawn progress line. */
static bool live_terminal(void)
{
	const char *term = getenv("TERM");

	return isatty(STDERR_FILENO) && term && *term && strcmp(term, "dumb") != 0;
}

int sb_bench_main(int argc, char **argv)
{
	const char *json = NULL, *svg = NULL;
	struct plan pl = { .mode = MODE_FULL };
	bool ok;

	for (unsigned i = 0; i < NSYSTEMS; i++)
		pl.sys_on[i] = true;
	for (unsigned i = 0; i < NBENCHES; i++)
		pl.bench_on[i] = true;
	for (unsigned i = 0; i < NSIZES; i++)
		pl.size_on[i] = true;
	for (unsigned i = 0; i < SBB_NSHAPES; i++)
		pl.shape_on[i] = true;
	int rc = parse(argc, argv, &pl, &json, &svg);
	if (rc)
		return rc == 1 ? 0 : rc;
	pl.reps = pl.mode == MODE_FULL ? SBB_REPS : pl.mode == MODE_QUICK ? 3 : 1;
	pl.wake_samples = pl.mode == MODE_FULL ? 2000 : pl.mode == MODE_QUICK ? 400 : 20;
	/*
	 * The smoke run's rings are small, so that filling them all first takes
	 * no time, and it measures the sizes of the small and the 4 KiB targets.
	 */
	pl.ring_bytes = pl.mode == MODE_SMOKE ? 1u << 20 : SBB_RING_BYTES;
	for (unsigned s = 0; s < NSIZES && pl.mode == MODE_SMOKE; s++)
		pl.size_on[s] &= sizes[s] == 64 || sizes[s] == 4096;
	pl.wake[0].ok = pl.wake[1].ok = true;
	pl.live = live_terminal();
	if (svg && !sbb_on_path("gnuplot"))
		snprintf(
		    pl.plot_why, sizeof(pl.plot_why),
		    "gnuplot is not on the PATH (Debian package gnuplot-nox; make bench-deps)");
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
	fprintf(stderr, "snapbridge bench (%s): %u measurements x %u repetitions, %u CPUs\n",
		pl.mode == MODE_FULL	? "full"
		: pl.mode == MODE_QUICK ? "quick"
					: "smoke",
		pl.n, pl.reps, sbb_ncpus());
	if (sys_on(&pl, "iceoryx") && !pl.iox_ok)
		fprintf(stderr, "snapbridge bench: iceoryx skipped: %s\n", pl.iox_why);
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
	if (svg && !pl.plot_why[0] && write_svg(&pl, svg))
		ok = false;
	else if (svg && pl.plot_why[0])
		fprintf(stderr, "snapbridge bench: %s not written: %s\n", svg, pl.plot_why);
	free(pl.m);
	return ok ? 0 : 1;
}
