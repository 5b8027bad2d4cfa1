/* bench/flood.c - see flood.h. */
#define _GNU_SOURCE
#include "flood.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"

#define FLOODERS	2
#define SAMPLE_EVERY_NS 1000000

/* What the serving thread logged: written by it alone, read when the run ends. */
struct log_count {
	uint64_t lines;
	uint64_t refusals; /* "refused ..." lines plus the N of each "... and N more" */
};

/* What the processes of a run share. */
struct flood_shared {
	_Alignas(64) uint32_t served; /* the coordinator serves: the flooders may start */
	_Alignas(64) struct log_count log;
	_Alignas(64) uint64_t attempts[FLOODERS]; /* connect() calls, whatever they returned */
	uint64_t until_ns;			  /* when the flooders stop (set before served) */
	uint64_t worst_age_ns, connect_ns, elapsed_ns;
	struct log_count in_run; /* lines when sampling ended; refusals of its windows */
	uint32_t heartbeat_ms;
	sbb_errtab err;
};

struct flood_run {
	struct flood_shared *sh;
	char socket[64];
	unsigned ms;
	bool flood;
};

bool sbb_flood_possible(char *why, size_t len)
{
	if (geteuid() == 0)
		return true;
	snprintf(why, len, "needs root, to run its flooders as uid %d", SBB_FLOOD_UID);
	return false;
}

static void count_line(void *user, const char *line)
{
	struct log_count *n = user;
	unsigned long long more;
	uint64_t refused = 0;

	if (!strncmp(line, "refused ", 8))
		refused = 1;
	else if (sscanf(line, "... and %llu more", &more) == 1)
		refused = more; /* the refusals (and hang-ups: none here) left out */
	/* Relaxed: counts, read once sampling ends; nothing is ordered by them. */
	sb_store_relaxed(&n->lines, sb_load_relaxed(&n->lines) + 1);
	sb_store_relaxed(&n->refusals, sb_load_relaxed(&n->refusals) + refused);
}

/* One honest consumer connecting halfway through, beside the sampling. */
struct honest {
	const char *socket;
	uint64_t at_ns, took_ns;
	int err;
	char why[160];
};

static void *honest_connect(void *arg)
{
	struct honest *h = arg;
	struct sb_consumer *c = NULL;
	uint64_t now = sb__mono_ns();

	if (h->at_ns > now)
		sbb_sleep_ns(h->at_ns - now);
	uint64_t t = sb__mono_ns();
	h->err = sb_consumer_connect(h->socket, 0, &c);
	h->took_ns = sb__mono_ns() - t;
	if (h->err)
		snprintf(h->why, sizeof(h->why), "%s", sb_last_error());
	sb_consumer_close(c);
	return NULL;
}

static int flood_coordinator(void *arg, int idx)
{
	struct flood_run *r = arg;
	struct flood_shared *sh = r->sh;
	struct sb_config cfg;
	struct sb_serve_config sc;
	struct sb_bridge *b;
	struct sb_consumer *self = NULL;
	struct honest h = { .socket = r->socket };
	pthread_t ht;
	bool started = false;
	int fd = -1, err;

	sb_config_default(&cfg);
	cfg.log_bytes = SB_LOG_BYTES_MIN;
	err = sb_bridge_create(&cfg, NULL, &b);
	if (err)
		return sbb_child_fail(&sh->err, idx, err, "create: %s", sb_last_error());
	sb_serve_config_default(&sc);
	sc.socket = r->socket;
	sc.log = count_line;
	sc.log_user = &sh->log;
	sh->heartbeat_ms = sc.heartbeat_ms;
	err = sb_bridge_serve(b, &sc);
	if (!err)
		err = sb_bridge_data_fd(b, &fd);
	if (!err)
		err = sb_consumer_open_fd(fd, 0, &self); /* a reader of our own region */
	if (err) {
		sbb_child_fail(&sh->err, idx, err, "serving: %s", sb_last_error());
		goto out;
	}
	uint64_t start = sb__mono_ns(), end = start + (uint64_t)r->ms * 1000000;
	sh->until_ns = end;
	h.at_ns = start + (end - start) / 2;
	err = -pthread_create(&ht, NULL, honest_connect, &h);
	if (err) {
		sbb_child_fail(&sh->err, idx, err, "pthread_create: %s", strerror(-err));
		goto out;
	}
	started = true;
	sb_store_release(&sh->served, 1); /* pairs with the flooders' acquire */
	for (uint64_t now = start; now < end; now = sb__mono_ns()) {
		struct sb_region_stat st;

		err = sb_consumer_stat(self, &st);
		if (err) {
			sbb_child_fail(&sh->err, idx, err, "stat: %s", sb_last_error());
			goto out;
		}
		if (st.heartbeat_known && st.heartbeat_age_ns > sh->worst_age_ns)
			sh->worst_age_ns = st.heartbeat_age_ns;
		sbb_sleep_ns(SAMPLE_EVERY_NS);
	}
	sh->elapsed_ns = sb__mono_ns() - start;
	sh->in_run.lines = sb_load_relaxed(&sh->log.lines);
	/*
	 * Refusals left out of the log are counted by the line that closes
	 * their one-second window, at a beat after it ends: wait for it (the
	 * flooders stopped with sampling; at most a backlog's 64 come after).
	 */
	if (r->flood)
		sbb_sleep_ns(1100000000ull);
	sh->in_run.refusals = sb_load_relaxed(&sh->log.refusals);
out:
	if (started) {
		pthread_join(ht, NULL); /* h is the thread's until then */
		sh->connect_ns = h.took_ns;
		if (!err && h.err)
			err = sbb_child_fail(&sh->err, idx, h.err, "an honest consumer: %s", h.why);
	}
	sb_consumer_close(self);
	if (fd >= 0)
		close(fd);
	sb_bridge_destroy(b);
	return err;
}

/* Another uid, connecting and hanging up as fast as it can until the run's end. */
static int flooder(void *arg, int idx)
{
	struct flood_run *r = arg;
	struct flood_shared *sh = r->sh;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(r->socket));
	uint64_t n = 0;

	if (setgroups(0, NULL) || setgid(SBB_FLOOD_UID) || setuid(SBB_FLOOD_UID))
		return sbb_child_fail(&sh->err, idx, -errno, "cannot become uid %d: %s",
				      SBB_FLOOD_UID, strerror(errno));
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", r->socket);
	addr.sun_path[0] = '\0'; /* "@name": the abstract namespace */
	int err = sbb_await_count(&sh->served, 1, SBB_STEP_TIMEOUT_MS);
	if (err)
		return sbb_child_fail(&sh->err, idx, err, "the coordinator never served");
	while (sb__mono_ns() < sh->until_ns) {
		int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);

		if (s < 0)
			return sbb_child_fail(&sh->err, idx, -errno, "socket: %s", strerror(errno));
		/* Queued (then refused), or turned away by a full backlog: either costs. */
		(void)connect(s, (struct sockaddr *)&addr, len);
		close(s);
		n++;
	}
	sh->attempts[idx - 1] = n;
	return 0;
}

int sbb_flood_run(bool flood, unsigned ms, unsigned rep, unsigned reps,
		  struct sbb_flood_result *res)
{
	struct flood_run r = { .ms = ms, .flood = flood };
	struct sbb_group g;
	char label[64];
	int err;

	r.sh = mmap(NULL, sizeof(*r.sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r.sh == MAP_FAILED)
		return -errno;
	sbb_socket_name(r.socket, sizeof(r.socket));
	sbb_group_init(&g, &r.sh->err);
	snprintf(label, sizeof(label), "%s serving, repetition %u", flood ? "flooded" : "quiet",
		 rep + 1);
	err = sbb_spawn(&g, "coordinator", flood_coordinator, &r);
	for (int i = 0; i < FLOODERS && flood && !err; i++)
		err = sbb_spawn(&g, "flooder", flooder, &r);
	if (err)
		sbb_spawn_failed(&g, label, err);
	int rerr = sbb_reap(&g, label, SBB_RUN_TIMEOUT_MS);
	if (!err && !rerr) {
		struct flood_shared *sh = r.sh;
		double secs = (double)sh->elapsed_ns / 1e9;
		uint64_t attempts = 0;

		for (int i = 0; i < FLOODERS; i++)
			attempts += sh->attempts[i];
		res->worst_age_ms[rep] = (double)sh->worst_age_ns / 1e6;
		res->connect_ms[rep] = (double)sh->connect_ns / 1e6;
		res->lines_per_s[rep] = secs > 0 ? (double)sh->in_run.lines / secs : 0;
		res->refusals_per_s[rep] = secs > 0 ? (double)sh->in_run.refusals / secs : 0;
		res->attempts_per_s[rep] = secs > 0 ? (double)attempts / secs : 0;
		res->heartbeat_ms = sh->heartbeat_ms;
		fprintf(stderr,
			"  %-7s rep %u/%u: oldest beat %6.1f ms  %5.1f log lines/s  %7.0f "
			"refused/s  connect %6.2f ms  %8.0f attempts/s\n",
			flood ? "flooded" : "quiet", rep + 1, reps, res->worst_age_ms[rep],
			res->lines_per_s[rep], res->refusals_per_s[rep], res->connect_ms[rep],
			res->attempts_per_s[rep]);
	}
	munmap(r.sh, sizeof(*r.sh));
	return err ? err : rerr;
}
