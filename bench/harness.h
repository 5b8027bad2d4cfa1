/*
 * bench/harness.h - what the benchmarks share: clocks, statistics over
 * repetitions, msgpack payloads of an exact size, CPU pinning, and the
 * processes of a multi-process run (a single-threaded parent forks the
 * children, reaps them, kills the rest when one fails or overstays, and
 * collects their messages from a shared table).
 *
 * Prefix sbb_: bench-only helpers, never part of the library.
 */
#ifndef SB_BENCH_HARNESS_H
#define SB_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <snapbridge/snapbridge.h>

/* Repetitions of every figure; figures are the median and the min..max spread. */
#define SBB_REPS 5
/* Children of one run at most: a writer, up to 4 consumers, a spare. */
#define SBB_MAX_CHILDREN 6
/* Any single step (a wake-up, an attach, a hand-shake) that takes longer is a failure. */
#define SBB_STEP_TIMEOUT_MS 5000
/* A whole run (all its processes) that takes longer is killed. */
#define SBB_RUN_TIMEOUT_MS 120000

/* ---- time -------------------------------------------------------------------------- */

uint64_t sbb_thread_cpu_ns(void);
/* CPU time of every thread of this process (a bridge's own threads included). */
uint64_t sbb_process_cpu_ns(void);
void sbb_sleep_ns(uint64_t ns);
/* Minor page faults of this process so far, all its threads (getrusage). */
uint64_t sbb_minflt(void);
/*
 * Call every clock and counter a timed phase reads once, so that their
 * first use after fork (the vDSO's data page) is not counted in it.
 */
void sbb_touch_clocks(void);
/*
 * Read one byte of every page of every shared mapping of this process
 * (a memfd ring, iceoryx's chunk pools...), so that a process that just
 * mapped them takes no page fault for them later. Every multi-process
 * run calls it in each process before its warm-up, every system alike.
 */
void sbb_prefault_shared(void);
uint64_t sbb_deadline_after_ms(uint64_t ms);

/* ---- statistics -------------------------------------------------------------------- */

int sbb_cmp_u64(const void *a, const void *b);
/* Nearest-rank percentile of a sorted array; permille 500 = p50, 999 = p99.9. */
uint64_t sbb_percentile(const uint64_t *sorted, size_t n, unsigned permille);

struct sbb_spread {
	double median, min, max;
};

/* Median (mean of the middle two for even n) and range of n <= 64 values. */
struct sbb_spread sbb_spread_of(const double *v, unsigned n);

/* ---- payloads ---------------------------------------------------------------------- */

/* bench/shape.c: the report shapes the benchmark stores. */
enum sbb_shape {
	SBB_SHAPE_BIN = 0, /* one msgpack bin: opaque bytes */
	SBB_SHAPE_DUMP,	   /* a scheduler-state dump: per-CPU maps of small values */
};
#define SBB_NSHAPES 2

/* "bin", "dump". */
const char *sbb_shape_name(enum sbb_shape shape);

/*
 * A msgpack bin of exactly len bytes (len >= 8), body filled with a fixed
 * pattern; returns the offset of the body, where a stamp or a sequence
 * number can go.
 */
size_t sbb_make_report(uint8_t *buf, size_t len);

/*
 * A scheduler-state dump of exactly len bytes (a bin when len is too small
 * for one): the same bytes for the same len. Returns its msgpack objects.
 */
uint64_t sbb_make_dump(uint8_t *buf, size_t len);

/* A report of the shape, exactly len bytes. Returns its msgpack objects. */
uint64_t sbb_make_shaped(enum sbb_shape shape, uint8_t *buf, size_t len);

/* Whether an executable called name is on the PATH. */
bool sbb_on_path(const char *name);

/* ---- CPUs -------------------------------------------------------------------------- */

/* Online CPUs this process may run on. */
unsigned sbb_ncpus(void);
/* Pin the calling thread to CPU cpu % sbb_ncpus() (of the allowed set). 0 or -errno. */
int sbb_pin(unsigned cpu);

/* ---- processes --------------------------------------------------------------------- */

/* A table of one message per child, in memory the children share with the parent. */
typedef char sbb_errtab[SBB_MAX_CHILDREN][256];

struct sbb_group {
	pid_t pid[SBB_MAX_CHILDREN];
	const char *name[SBB_MAX_CHILDREN];
	unsigned n;
	pid_t parent;
	sbb_errtab *err; /* MAP_SHARED; cleared by sbb_group_init */
};

/* A child's body; idx is its index in the group. Return 0 for success. */
typedef int (*sbb_child_fn)(void *arg, int idx);

/* Block SIGCHLD in the parent (sbb_reap takes it with sigtimedwait). Once, before forking. */
void sbb_block_sigchld(void);

void sbb_group_init(struct sbb_group *g, sbb_errtab *err);

/*
 * Fork a child that runs fn(arg, idx) and exits with its verdict. The
 * child dies with the parent and sleeps with a 1 us timer slack.
 */
int sbb_spawn(struct sbb_group *g, const char *name, sbb_child_fn fn, void *arg);

/* A fork failed part-way: report it and kill the children already started. */
void sbb_spawn_failed(struct sbb_group *g, const char *label, int err);

/*
 * Reap every child. At the first failure or after timeout_ms, kill the
 * others. Every child that failed by itself is reported on stderr with
 * the message it left. Returns 0, -EIO or -ETIMEDOUT.
 */
int sbb_reap(struct sbb_group *g, const char *what, uint64_t timeout_ms);

/* Leave a child's failure message for the parent; returns err (or -EIO when err >= 0). */
int sbb_child_fail(sbb_errtab *tab, int idx, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- snapbridge plumbing ----------------------------------------------------------- */

/* A fresh abstract socket name, unique within this parent. */
void sbb_socket_name(char *buf, size_t len);

/* Create a bridge (max_snapshots, log_bytes; the rest default) serving on socket, quietly. */
int sbb_serve_bridge(const char *socket, uint32_t max_snapshots, uint64_t log_bytes,
		     struct sb_bridge **out);

/* Wait until *flag is non-zero (another process's release), then connect. */
int sbb_connect_when(const uint32_t *flag, const char *socket, uint32_t flags,
		     struct sb_consumer **out);

/* Wait until *count >= n (released by other processes), at most timeout_ms. */
int sbb_await_count(const uint32_t *count, uint32_t n, uint64_t timeout_ms);

/* Drain and free the consumer's events (so event news does not keep a wait awake). */
int sbb_drain_events(struct sb_consumer *c);

#endif
