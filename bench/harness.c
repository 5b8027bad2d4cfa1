/* bench/harness.c - see harness.h. */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"

/* ---- time -------------------------------------------------------------------------- */

uint64_t sbb_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t sbb_process_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t sbb_minflt(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (uint64_t)ru.ru_minflt;
}

void sbb_touch_clocks(void)
{
	(void)sbb_minflt();
	(void)sbb_process_cpu_ns();
	(void)sbb_thread_cpu_ns();
	(void)sb__mono_ns();
}

void sbb_prefault_shared(void)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512];

	while (maps && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
		    perms[3] != 's')
			continue;
		for (unsigned long a = lo; a < hi; a += 4096)
			(void)*(volatile const uint8_t *)a;
	}
	if (maps)
		fclose(maps);
}

void sbb_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

uint64_t sbb_deadline_after_ms(uint64_t ms)
{
	return sb__mono_ns() + ms * 1000000ull;
}

/* ---- statistics -------------------------------------------------------------------- */

int sbb_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

uint64_t sbb_percentile(const uint64_t *sorted, size_t n, unsigned permille)
{
	size_t rank = (n * permille + 999) / 1000;

	return sorted[rank ? rank - 1 : 0];
}

struct sbb_spread sbb_spread_of(const double *v, unsigned n)
{
	double s[64];

	if (n == 0)
		return (struct sbb_spread){ 0, 0, 0 };
	n = n > 64 ? 64 : n;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return (struct sbb_spread){ n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, s[0],
				    s[n - 1] };
}

bool sbb_on_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[512];

	for (const char *p = path ? path : "/usr/bin"; *p;) {
		const char *end = strchrnul(p, ':');
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)(end - p), p, name);
		if (access(buf, X_OK) == 0)
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

/* ---- CPUs -------------------------------------------------------------------------- */

static int allowed_cpus(cpu_set_t *set)
{
	/* The parent's set at the first call: children pinned later must not shrink it. */
	static cpu_set_t first;
	static bool have;

	if (!have) {
		if (sched_getaffinity(0, sizeof(first), &first) != 0)
			return -errno;
		have = true;
	}
	*set = first;
	return 0;
}

unsigned sbb_ncpus(void)
{
	cpu_set_t set;

	if (allowed_cpus(&set))
		return 1;
	int n = CPU_COUNT(&set);
	return n > 0 ? (unsigned)n : 1;
}

int sbb_pin(unsigned cpu)
{
	cpu_set_t set, one;
	unsigned want, seen = 0;
	int err = allowed_cpus(&set);

	if (err)
		return err;
	want = cpu % sbb_ncpus();
	CPU_ZERO(&one);
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (seen++ == want) {
			CPU_SET(c, &one);
			break;
		}
	}
	if (sched_setaffinity(0, sizeof(one), &one) != 0)
		return -errno;
	return 0;
}

/* ---- processes --------------------------------------------------------------------- */

void sbb_block_sigchld(void)
{
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	(void)sbb_ncpus(); /* remember the parent's CPU set before anyone is pinned */
}

void sbb_group_init(struct sbb_group *g, sbb_errtab *err)
{
	memset(g, 0, sizeof(*g));
	g->parent = getpid();
	g->err = err;
	memset(err, 0, sizeof(*err));
}

int sbb_child_fail(sbb_errtab *tab, int idx, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf((*tab)[idx], sizeof((*tab)[idx]), fmt, ap);
	va_end(ap);
	return err < 0 ? err : -EIO;
}

int sbb_spawn(struct sbb_group *g, const char *name, sbb_child_fn fn, void *arg)
{
	int idx = (int)g->n;

	if (g->n >= SBB_MAX_CHILDREN)
		return -E2BIG;
	fflush(NULL); /* nothing buffered is written twice */
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t chld;

		/* Never outlive the parent, whatever kills it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != g->parent)
			_exit(2);
		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		/* Sleeps of tens of microseconds should last what they say. */
		prctl(PR_SET_TIMERSLACK, 1000UL);
		int rc = fn(arg, idx);
		fflush(NULL);
		_exit(rc == 0 ? 0 : 1);
	}
	g->pid[idx] = pid;
	g->name[idx] = name;
	g->n++;
	return 0;
}

static void kill_rest(struct sbb_group *g, bool *killed)
{
	for (unsigned i = 0; i < g->n; i++) {
		if (g->pid[i] > 0 && !killed[i]) {
			kill(g->pid[i], SIGKILL);
			killed[i] = true;
		}
	}
}

void sbb_spawn_failed(struct sbb_group *g, const char *label, int err)
{
	bool killed[SBB_MAX_CHILDREN] = { false };

	fprintf(stderr, "bench: %s: fork: %s\n", label, strerror(-err));
	kill_rest(g, killed);
}

int sbb_reap(struct sbb_group *g, const char *what, uint64_t timeout_ms)
{
	uint64_t deadline = sbb_deadline_after_ms(timeout_ms);
	bool killed[SBB_MAX_CHILDREN] = { false };
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
					(*g->err)[i][0] ? (*g->err)[i] : "no message");
			err = err ? err : -EIO;
			kill_rest(g, killed);
		}
		if (!left)
			break;
		uint64_t now = sb__mono_ns();
		if (now >= deadline) {
			fprintf(stderr, "bench: %s: still running after %llu s, killed\n", what,
				(unsigned long long)(timeout_ms / 1000));
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

/* ---- snapbridge plumbing ----------------------------------------------------------- */

void sbb_socket_name(char *buf, size_t len)
{
	static unsigned serial;

	snprintf(buf, len, "@snapbridge-bench-%d-%u", (int)getpid(), serial++);
}

static void quiet_log(void *user, const char *line)
{
	(void)user;
	(void)line;
}

int sbb_serve_bridge(const char *socket, uint32_t max_snapshots, uint64_t log_bytes,
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
	sc.socket = socket;
	sc.log = quiet_log;
	err = sb_bridge_serve(*out, &sc);
	if (err)
		sb_bridge_destroy(*out);
	return err;
}

int sbb_connect_when(const uint32_t *flag, const char *socket, uint32_t flags,
		     struct sb_consumer **out)
{
	uint64_t deadline = sbb_deadline_after_ms(SBB_STEP_TIMEOUT_MS);

	while (!sb_load_acquire(flag)) { /* pairs with the coordinator's release once it serves */
		if (sb__mono_ns() > deadline)
			return -ETIMEDOUT;
		sbb_sleep_ns(200000);
	}
	return sb_consumer_connect(socket, flags, out);
}

int sbb_await_count(const uint32_t *count, uint32_t n, uint64_t timeout_ms)
{
	uint64_t deadline = sbb_deadline_after_ms(timeout_ms);

	while (sb_load_acquire(count) < n) { /* pairs with each process's release add */
		if (sb__mono_ns() > deadline)
			return -ETIMEDOUT;
		sbb_sleep_ns(200000);
	}
	return 0;
}

int sbb_drain_events(struct sb_consumer *c)
{
	struct sb_events ev;
	int err = sb_consumer_drain_events(c, &ev);

	if (!err)
		sb_events_free(&ev);
	return err;
}
