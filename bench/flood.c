/* bench/flood.c - see flood.h. */
#define _GNU_SOURCE
#include "flood.h"

#include <errno.h>
#include <grp.h>
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

/* What the processes of a run share. */
struct flood_shared {
	_Alignas(64) uint32_t served; /* the coordinator serves: the flooders may start */
	uint32_t lines;		      /* lines the serving thread logged, so far */
	_Alignas(64) uint64_t attempts[FLOODERS];
	uint64_t until_ns; /* when the flooders stop (set before served) */
	uint64_t worst_age_ns, connect_ns, elapsed_ns;
	uint32_t lines_in_run; /* lines logged while sampling (not the backlog's after it) */
	uint32_t heartbeat_ms;
	sbb_errtab err;
};

struct flood_run {
	struct flood_shared *sh;
	char socket[64];
	unsigned ms;
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
	(void)line;
	sb_fetch_add_relaxed((uint32_t *)user, 1); /* read after the run: a count, no order */
}

static int flood_coordinator(void *arg, int idx)
{
	struct flood_run *r = arg;
	struct flood_shared *sh = r->sh;
	struct sb_config cfg;
	struct sb_serve_config sc;
	struct sb_bridge *b;
	struct sb_consumer *self = NULL, *honest = NULL;
	int fd = -1, err;

	sb_config_default(&cfg);
	cfg.log_bytes = SB_LOG_BYTES_MIN;
	err = sb_bridge_create(&cfg, NULL, &b);
	if (err)
		return sbb_child_fail(&sh->err, idx, err, "create: %s", sb_last_error());
	sb_serve_config_default(&sc);
	sc.socket = r->socket;
	sc.log = count_line;
	sc.log_user = &sh->lines;
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
	sb_store_release(&sh->served, 1); /* pairs with the flooders' acquire */
	bool connected = false;
	for (uint64_t now = start; now < end; now = sb__mono_ns()) {
		struct sb_region_stat st;

		err = sb_consumer_stat(self, &st);
		if (err) {
			sbb_child_fail(&sh->err, idx, err, "stat: %s", sb_last_error());
			goto out;
		}
		if (st.heartbeat_known && st.heartbeat_age_ns > sh->worst_age_ns)
			sh->worst_age_ns = st.heartbeat_age_ns;
		if (!connected && now - start >= (end - start) / 2) {
			uint64_t t = sb__mono_ns();
			err = sb_consumer_connect(r->socket, 0, &honest);
			sh->connect_ns = sb__mono_ns() - t;
			if (err) {
				sbb_child_fail(&sh->err, idx, err, "an honest consumer: %s",
					       sb_last_error());
				goto out;
			}
			connected = true;
		}
		sbb_sleep_ns(SAMPLE_EVERY_NS);
	}
	sh->elapsed_ns = sb__mono_ns() - start;
	sh->lines_in_run = sb_load_relaxed(&sh->lines);
out:
	sb_consumer_close(honest);
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
		(void)connect(s, (struct sockaddr *)&addr, len); /* refused or not: it costs */
		close(s);
		n++;
	}
	sh->attempts[idx - 1] = n;
	return 0;
}

int sbb_flood_run(bool flood, unsigned ms, unsigned rep, unsigned reps,
		  struct sbb_flood_result *res)
{
	struct flood_run r = { .ms = ms };
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
		res->lines_per_s[rep] = secs > 0 ? sh->lines_in_run / secs : 0;
		res->attempts_per_s[rep] = secs > 0 ? (double)attempts / secs : 0;
		res->heartbeat_ms = sh->heartbeat_ms;
		fprintf(stderr,
			"  %-7s rep %u/%u: oldest beat %6.1f ms  %5.1f log lines/s  connect "
			"%6.2f ms  %8.0f attempts/s\n",
			flood ? "flooded" : "quiet", rep + 1, reps, res->worst_age_ms[rep],
			res->lines_per_s[rep], res->connect_ms[rep], res->attempts_per_s[rep]);
	}
	munmap(r.sh, sizeof(*r.sh));
	return err ? err : rerr;
}
