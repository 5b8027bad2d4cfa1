/*
 * snapbridge demo - the multi-process demo `make demo` runs: one
 * coordinator process and K consumer processes (this same binary, run as
 * `snapbridge coordinator` and `snapbridge drain --follow --verify`) over
 * a Unix socket, a live status line, and a summary whose accounting must
 * add up for every consumer.
 *
 * This process only forks, watches and reports: it attaches as one more
 * consumer to count events and read each consumer's lag, and never
 * stores. It exits 0 only if every consumer accounted for every store,
 * every delivered report verified, and every child exited cleanly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

static const char *const cmd = "demo";

#define MAX_CONSUMERS 16
#define INTERVAL_MS   2
#define PAYLOAD	      2048
#define MAX_SNAPSHOTS 16
#define LOG_BYTES     (1u << 20)
#define MAX_EVENTS    512
/* The consumers' drain periods: see sb_cmd_demo(). */
#define PERIOD_MS 100
#define SLOW_MS	  1200
/* Startup, attach and shutdown allowance on top of --seconds before we give up. */
#define GRACE_S 30

struct child {
	pid_t pid;
	int out;   /* its stdout, non-blocking; -1 once at EOF */
	char *buf; /* everything it printed */
	size_t len, cap;
	int status; /* from waitpid */
	bool exited;
	bool all_versions;
	unsigned period_ms; /* 0: wakes on every store */
	json_t *summary;    /* a consumer's summary line */
};

struct demo {
	uint64_t seconds, consumers;
	bool json;
	char self[4096];
	char socket[64];
	struct child coord;
	struct child cons[MAX_CONSUMERS];
	struct sb_consumer *monitor;
	uint64_t ev_by_kind[SB_EVENT_LOG_TRUNCATED + 1];
	uint64_t ev_truncated;
	uint64_t started_ns;
	pid_t parent;
	bool interrupted;
};

static int usage(FILE *to, int code)
{
	fprintf(to,
		"usage: snapbridge demo [--seconds S] [--consumers K] [--json]\n"
		"\n"
		"Start a coordinator and K consumer processes (this binary, as 'snapbridge\n"
		"coordinator' and 'snapbridge drain --follow --verify') on a private socket.\n"
		"The coordinator stores a %d-byte report every %d ms for S seconds with a\n"
		"cap of %d snapshots: one hot tag overwritten again and again, periodic\n"
		"tags evicted at the cap, stats present or missing with a reason. The last\n"
		"consumer drains in all-versions mode. A status line shows progress on a\n"
		"terminal (a plain line a second when piped or with TERM=dumb); the summary\n"
		"shows, per consumer, how every store ended (delivered, superseded,\n"
		"evicted, lapped, torn) and whether they add up, plus events, throughput\n"
		"and wake-up latency.\n"
		"\n"
		"options:\n"
		"  --seconds S      how long the coordinator stores (default 3)\n"
		"  --consumers K    consumer processes, 1..%d (default 3)\n"
		"  --json           print the summary as one JSON object, no progress\n"
		"  --help           show this help\n"
		"  --version        print the version and the region ABI\n"
		"\n"
		"Exit status 0 only if every consumer's accounting adds up and every report\n"
		"verified.\n"
		"\n"
		"examples:\n"
		"  snapbridge demo\n"
		"  snapbridge demo --seconds 10 --consumers 5\n"
		"  snapbridge demo --json | jq .consumers\n",
		PAYLOAD, INTERVAL_MS, MAX_SNAPSHOTS, MAX_CONSUMERS);
	return code;
}

static int parse(int argc, char **argv, struct demo *d)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "consumers", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		SB_TOOL_COMMON_LONGOPTS,
		{ 0 },
	};
	int c, err = 0;

	d->seconds = 3;
	d->consumers = 3;
	while (!err && (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			err = sb_tool_parse_u64(cmd, "seconds", optarg, 1, 3600, &d->seconds);
			break;
		case 'k':
			err = sb_tool_parse_u64(cmd, "consumers", optarg, 1, MAX_CONSUMERS,
						&d->consumers);
			break;
		case 'j':
			d->json = true;
			break;
		case 'h':
		case SB_OPT_VERSION:
			sb_tool_common_option(cmd, c, usage);
			break;
		default:
			return sb_tool_bad_option(cmd, c, argv);
		}
	}
	err = sb_tool_options_done(cmd, err, argc, argv);
	if (err)
		return err;
	return 0;
}

/* Fork and exec this binary with argv; its stdout comes back through a pipe. */
static int spawn(struct demo *d, struct child *ch, char *const argv[])
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;

		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		/*
		 * Its own process group: a terminal's ^C reaches only the demo, which
		 * stops the coordinator so that every consumer still finishes its
		 * accounting. And it goes if the demo dies.
		 */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != d->parent)
			_exit(1);
		dup2(p[1], STDOUT_FILENO);
		signal(SIGPIPE, SIG_DFL);
		execv(d->self, argv);
		fprintf(stderr, "snapbridge demo: cannot run %s: %s\n", d->self, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	ch->pid = pid;
	ch->out = p[0];
	return 0;
}

/* Take what a child printed so far. */
static void collect(struct child *ch)
{
	while (ch->out >= 0) {
		if (ch->cap - ch->len < 4096) {
			size_t cap = ch->cap ? ch->cap * 2 : 8192;
			char *b = realloc(ch->buf, cap);

			if (!b)
				return;
			ch->buf = b;
			ch->cap = cap;
		}
		ssize_t n = read(ch->out, ch->buf + ch->len, ch->cap - ch->len - 1);
		if (n > 0) {
			ch->len += (size_t)n;
			ch->buf[ch->len] = '\0';
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		close(ch->out);
		ch->out = -1;
	}
}

static void reap(struct child *ch)
{
	if (ch->pid > 0 && !ch->exited && waitpid(ch->pid, &ch->status, WNOHANG) == ch->pid)
		ch->exited = true;
}

static bool child_ok(const struct child *ch)
{
	return ch->exited && WIFEXITED(ch->status) && WEXITSTATUS(ch->status) == 0;
}

/* Wait until the coordinator says it serves (its first line) or gives up. */
static int wait_serving(struct demo *d)
{
	uint64_t deadline = sb_tool_mono_ns() + 10ull * 1000000000ull;

	while (!d->coord.buf || !strchr(d->coord.buf, '\n')) {
		struct pollfd pfd = { .fd = d->coord.out, .events = POLLIN };

		if (d->coord.out < 0 || sb_tool_mono_ns() > deadline || sb_tool_stop)
			return sb_tool_fail(cmd, "the coordinator did not start (see above)");
		poll(&pfd, 1, 100);
		collect(&d->coord);
	}
	if (!strstr(d->coord.buf, "serving on"))
		return sb_tool_fail(cmd, "the coordinator said: %s", d->coord.buf);
	return 0;
}

static void monitor_events(struct demo *d)
{
	struct sb_events ev;

	if (!d->monitor || sb_consumer_drain_events(d->monitor, &ev) != 0)
		return;
	for (size_t i = 0; i < ev.count; i++) {
		if (ev.items[i].kind == SB_EVENT_LOG_TRUNCATED)
			d->ev_truncated += ev.items[i].count;
		else if (ev.items[i].kind <= SB_EVENT_LOG_TRUNCATED)
			d->ev_by_kind[ev.items[i].kind]++;
	}
	sb_events_free(&ev);
}

static void progress(struct demo *d, bool tty, bool final)
{
	uint64_t stores = 0;
	struct sb_consumer_info info[64];
	size_t n = 0;
	char line[512];
	int off;

	if (!d->monitor)
		return;
	sb_consumer_store_count(d->monitor, &stores);
	sb_consumer_peers(d->monitor, info, 64, &n);
	off =
	    snprintf(line, sizeof(line), "[%5.1fs] stores %6llu/%llu  lag",
		     (double)(sb_tool_mono_ns() - d->started_ns) / 1e9, (unsigned long long)stores,
		     (unsigned long long)(d->seconds * 1000 / INTERVAL_MS));
	for (uint64_t k = 0; k < d->consumers; k++) {
		const char *lag = "-";
		char buf[24];

		for (size_t i = 0; i < n && i < 64; i++)
			if (info[i].pid == d->cons[k].pid && info[i].lag_valid) {
				snprintf(buf, sizeof(buf), "%llu", (unsigned long long)info[i].lag);
				lag = buf;
			}
		if (d->cons[k].exited)
			lag = "done";
		if (off < (int)sizeof(line))
			off += snprintf(line + off, sizeof(line) - (size_t)off, " c%llu:%s",
					(unsigned long long)k + 1, lag);
	}
	if (off < (int)sizeof(line))
		snprintf(line + off, sizeof(line) - (size_t)off, "  events %llu",
			 (unsigned long long)(d->ev_by_kind[SB_EVENT_OVERWRITE] +
					      d->ev_by_kind[SB_EVENT_EVICTION] +
					      d->ev_by_kind[SB_EVENT_CAPTURE_UNAVAILABLE]));
	if (tty)
		printf("\r\033[K%s%s", line, final ? "\n" : "");
	else
		printf("%s\n", line);
	fflush(stdout);
}

static json_int_t geti(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* A consumer's summary: its last line that parses as a JSON summary. */
static void parse_summary(struct child *ch)
{
	char *save = NULL;

	if (!ch->buf)
		return;
	for (char *l = strtok_r(ch->buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(l, 0, NULL);
		const char *type = json_string_value(json_object_get(j, "type"));

		if (type && !strcmp(type, "summary")) {
			json_decref(ch->summary);
			ch->summary = j;
		} else {
			json_decref(j);
		}
	}
}

static bool consumer_adds_up(const struct child *ch, uint64_t stores)
{
	json_t *s = ch->summary;

	if (!s)
		return false;
	json_int_t sum = geti(s, "delivered") + geti(s, "superseded") + geti(s, "evicted") +
			 geti(s, "lapped") + geti(s, "torn");
	return sum == geti(s, "stores") && (uint64_t)geti(s, "stores") == stores;
}

static json_t *report(struct demo *d, double secs, bool *all_ok)
{
	uint64_t stores = 0;
	unsigned long long coord_stores = 0;
	double coord_secs = 0;
	const char *closing = d->coord.buf ? strstr(d->coord.buf, "stored ") : NULL;

	if (d->monitor)
		sb_consumer_store_count(d->monitor, &stores);
	if (closing)
		sscanf(closing, "stored %llu", &coord_stores);
	closing = closing ? strstr(closing, " in ") : NULL;
	if (closing)
		sscanf(closing, " in %lf s", &coord_secs);
	*all_ok = child_ok(&d->coord) && coord_stores == stores && stores > 0;

	json_t *cons = json_array();
	json_int_t p50 = 0, p99 = 0, max = 0;
	for (uint64_t k = 0; k < d->consumers; k++) {
		struct child *ch = &d->cons[k];
		bool adds_up = consumer_adds_up(ch, stores);
		bool ok = adds_up && child_ok(ch) && geti(ch->summary, "bad") == 0;
		json_t *lat = json_object_get(ch->summary, "wake_latency_us");

		if (json_is_object(lat)) {
			p50 = geti(lat, "p50") > p50 ? geti(lat, "p50") : p50;
			p99 = geti(lat, "p99") > p99 ? geti(lat, "p99") : p99;
			max = geti(lat, "max") > max ? geti(lat, "max") : max;
		}
		*all_ok = *all_ok && ok;
		json_array_append_new(
		    cons,
		    json_pack("{s:i,s:s,s:o,s:O,s:b,s:i}", "pid", (int)ch->pid, "mode",
			      ch->all_versions ? "all-versions" : "resident", "drain_every_ms",
			      ch->period_ms ? json_integer(ch->period_ms) : json_null(), "summary",
			      ch->summary ? ch->summary : json_null(), "adds_up", (int)adds_up,
			      "exit_status",
			      ch->exited && WIFEXITED(ch->status) ? WEXITSTATUS(ch->status) : -1));
	}
	double store_secs = coord_secs > 0 ? coord_secs : secs;
	return json_pack(
	    "{s:I,s:I,s:i,s:i,s:i,s:I,s:f,s:{s:I,s:I,s:I,s:I},s:o,s:{s:I,s:I,s:I},s:b}", "seconds",
	    (json_int_t)d->seconds, "consumers_requested", (json_int_t)d->consumers, "report_bytes",
	    PAYLOAD, "interval_ms", INTERVAL_MS, "max_snapshots", MAX_SNAPSHOTS, "stores",
	    (json_int_t)stores, "stores_per_s", (double)stores / store_secs, "events", "overwrite",
	    (json_int_t)d->ev_by_kind[SB_EVENT_OVERWRITE], "eviction",
	    (json_int_t)d->ev_by_kind[SB_EVENT_EVICTION], "capture_unavailable",
	    (json_int_t)d->ev_by_kind[SB_EVENT_CAPTURE_UNAVAILABLE], "truncated",
	    (json_int_t)d->ev_truncated, "consumers", cons, "wake_latency_us_worst", "p50", p50,
	    "p99", p99, "max", max, "ok", (int)*all_ok);
}

static void print_table(json_t *r)
{
	json_t *ev = json_object_get(r, "events"), *cons = json_object_get(r, "consumers");
	json_t *c;
	size_t i;

	printf("\nsnapbridge demo: 1 coordinator + %lld consumer process%s, %lld s, %lld-byte "
	       "reports every %lld ms, cap %lld snapshots\n\n",
	       (long long)geti(r, "consumers_requested"),
	       geti(r, "consumers_requested") == 1 ? "" : "es", (long long)geti(r, "seconds"),
	       (long long)geti(r, "report_bytes"), (long long)geti(r, "interval_ms"),
	       (long long)geti(r, "max_snapshots"));
	printf("  stores   %8lld  (%.0f/s)%s\n", (long long)geti(r, "stores"),
	       json_real_value(json_object_get(r, "stores_per_s")),
	       json_is_true(json_object_get(r, "interrupted")) ? "  stopped early by a signal"
							       : "");
	printf("  events   %8lld overwrites, %lld evictions, %lld captures unavailable, %lld "
	       "dropped before read\n\n",
	       (long long)geti(ev, "overwrite"), (long long)geti(ev, "eviction"),
	       (long long)geti(ev, "capture_unavailable"), (long long)geti(ev, "truncated"));
	printf("  %-3s %7s %-15s %7s %9s %10s %7s %6s %4s %7s %8s %4s %14s\n", "#", "PID", "MODE",
	       "STORES", "DELIVERED", "SUPERSEDED", "EVICTED", "LAPPED", "TORN", "ADDS_UP",
	       "VERIFIED", "BAD", "WAKE p50/p99us");
	json_array_foreach(cons, i, c)
	{
		json_t *s = json_object_get(c, "summary");
		json_t *lat = json_object_get(s, "wake_latency_us");
		char wake[40] = "-", mode[40];
		json_t *every = json_object_get(c, "drain_every_ms");

		if (json_is_object(lat))
			snprintf(wake, sizeof(wake), "%lld/%lld", (long long)geti(lat, "p50"),
				 (long long)geti(lat, "p99"));
		const char *kind = strcmp(json_string_value(json_object_get(c, "mode")), "resident")
				       ? "all"
				       : "resident";
		if (json_is_integer(every))
			snprintf(mode, sizeof(mode), "%s/%lldms", kind,
				 (long long)json_integer_value(every));
		else
			snprintf(mode, sizeof(mode), "%s/wake", kind);
		printf("  %-3zu %7lld %-15s %7lld %9lld %10lld %7lld %6lld %4lld %7s %8lld %4lld "
		       "%14s\n",
		       i + 1, (long long)geti(c, "pid"), mode, (long long)geti(s, "stores"),
		       (long long)geti(s, "delivered"), (long long)geti(s, "superseded"),
		       (long long)geti(s, "evicted"), (long long)geti(s, "lapped"),
		       (long long)geti(s, "torn"),
		       json_is_true(json_object_get(c, "adds_up")) ? "yes" : "NO",
		       (long long)geti(s, "verified"), (long long)geti(s, "bad"), wake);
	}
	printf("\n  delivered + superseded + evicted + lapped + torn == stores for every "
	       "consumer: %s\n",
	       json_is_true(json_object_get(r, "ok")) ? "yes" : "NO");
}

static void kill_all(struct demo *d, int sig)
{
	if (d->coord.pid > 0 && !d->coord.exited)
		kill(d->coord.pid, sig);
	for (uint64_t k = 0; k < d->consumers; k++)
		if (d->cons[k].pid > 0 && !d->cons[k].exited)
			kill(d->cons[k].pid, sig);
}

static void free_child(struct child *ch)
{
	if (ch->out >= 0)
		close(ch->out);
	free(ch->buf);
	json_decref(ch->summary);
}

int sb_cmd_demo(int argc, char **argv)
{
	struct demo *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return sb_tool_fail(cmd, "out of memory");
	ret = parse(argc, argv, d);
	if (ret)
		goto out_free;
	d->coord.out = -1;
	for (int k = 0; k < MAX_CONSUMERS; k++)
		d->cons[k].out = -1;
	ssize_t n = readlink("/proc/self/exe", d->self, sizeof(d->self) - 1);
	if (n <= 0) {
		ret = sb_tool_fail(cmd, "cannot find this program (/proc/self/exe): %s",
				   strerror(errno));
		goto out_free;
	}
	d->self[n] = '\0';
	d->parent = getpid();
	snprintf(d->socket, sizeof(d->socket), "@snapbridge-demo-%d", (int)getpid());
	sb_tool_catch_stop_signals();

	char count[24], waitn[24], interval[24], payload[24], snaps[24], logb[24], evs[24];
	snprintf(count, sizeof(count), "%llu",
		 (unsigned long long)(d->seconds * 1000 / INTERVAL_MS));
	snprintf(waitn, sizeof(waitn), "%llu", (unsigned long long)d->consumers + 1);
	snprintf(interval, sizeof(interval), "%d", INTERVAL_MS);
	snprintf(payload, sizeof(payload), "%d", PAYLOAD);
	snprintf(snaps, sizeof(snaps), "%d", MAX_SNAPSHOTS);
	snprintf(logb, sizeof(logb), "%u", LOG_BYTES);
	snprintf(evs, sizeof(evs), "%d", MAX_EVENTS);
	char *cargv[] = { "snapbridge",
			  "coordinator",
			  "--socket",
			  d->socket,
			  "--count",
			  count,
			  "--interval-ms",
			  interval,
			  "--payload-bytes",
			  payload,
			  "--tag-mode",
			  "mixed",
			  "--max-snapshots",
			  snaps,
			  "--log-bytes",
			  logb,
			  "--max-events",
			  evs,
			  "--wait-consumers",
			  waitn,
			  NULL };
	int err = spawn(d, &d->coord, cargv);
	if (err) {
		ret = sb_tool_fail(cmd, "cannot start the coordinator: %s", strerror(-err));
		goto out_free;
	}
	ret = wait_serving(d);
	for (uint64_t k = 0; !ret && k < d->consumers; k++) {
		struct child *ch = &d->cons[k];

		/*
		 * The first consumer wakes on every store; the others drain on a
		 * period (and the last in all-versions mode, slowly enough to be
		 * lapped), so that every outcome shows up.
		 */
		char every[24];
		char *dargv[16] = { "snapbridge", "drain",   "--socket", d->socket, "--follow",
				    "--verify",	  "--quiet", "--format", "jsonl" };
		int na = 9;
		ch->all_versions = d->consumers > 1 && k == d->consumers - 1;
		ch->period_ms = ch->all_versions ? SLOW_MS : k ? PERIOD_MS * (unsigned)k : 0;
		if (ch->all_versions)
			dargv[na++] = "--all-versions";
		if (ch->period_ms) {
			snprintf(every, sizeof(every), "%u", ch->period_ms);
			dargv[na++] = "--interval-ms";
			dargv[na++] = every;
		}
		err = spawn(d, ch, dargv);
		if (err)
			ret = sb_tool_fail(cmd, "cannot start a consumer: %s", strerror(-err));
	}
	if (!ret && sb_consumer_connect(d->socket, 0, &d->monitor) != 0)
		ret = sb_tool_fail(cmd, "cannot attach the monitor: %s", sb_last_error());
	if (ret) {
		kill_all(d, SIGKILL);
		goto out_reap;
	}

	bool tty = sb_tool_fancy_terminal(STDOUT_FILENO) && !d->json;
	uint64_t deadline_ns = sb_tool_mono_ns() + (d->seconds + GRACE_S) * 1000000000ull;
	uint64_t next_line = 0;
	bool stop_sent = false;
	d->started_ns = sb_tool_mono_ns();
	for (;;) {
		bool all_done = true;

		collect(&d->coord);
		reap(&d->coord);
		all_done = d->coord.exited;
		for (uint64_t k = 0; k < d->consumers; k++) {
			collect(&d->cons[k]);
			reap(&d->cons[k]);
			all_done = all_done && d->cons[k].exited;
		}
		monitor_events(d);
		if (all_done)
			break;
		uint64_t now = sb_tool_mono_ns();
		if (!d->json && (tty || now >= next_line)) {
			progress(d, tty, false);
			next_line = now + 1000000000ull;
		}
		/* ^C, or a consumer that failed: stop storing; the others see the close. */
		bool consumer_failed = false;
		for (uint64_t k = 0; k < d->consumers; k++)
			consumer_failed =
			    consumer_failed || (d->cons[k].exited && !child_ok(&d->cons[k]));
		if ((sb_tool_stop || consumer_failed) && !stop_sent) {
			kill(d->coord.pid, SIGTERM);
			stop_sent = true;
			d->interrupted = sb_tool_stop;
		}
		if (now > deadline_ns) {
			kill_all(d, SIGKILL);
			sb_tool_fail(cmd, "the run took more than %llu s; stopped every process",
				     (unsigned long long)(d->seconds + GRACE_S));
			ret = SB_EXIT_RUNTIME;
			deadline_ns = UINT64_MAX;
		}
		struct timespec ts = { 0, 100000000 };
		nanosleep(&ts, NULL);
	}
	if (!d->json)
		progress(d, tty, true);
	monitor_events(d);

	double secs = (double)(sb_tool_mono_ns() - d->started_ns) / 1e9;
	for (uint64_t k = 0; k < d->consumers; k++)
		parse_summary(&d->cons[k]);
	bool all_ok;
	json_t *r = report(d, secs, &all_ok);
	if (r)
		json_object_set_new(r, "interrupted", json_boolean(d->interrupted));
	if (!r) {
		ret = sb_tool_fail(cmd, "out of memory");
	} else if (d->json) {
		if (sb_tool_print_json_line(stdout, r) != 0)
			ret = SB_EXIT_RUNTIME;
	} else {
		print_table(r);
		json_decref(r);
	}
	if (!ret && !all_ok)
		ret = sb_tool_fail(cmd, "some consumer's accounting or exit status is wrong (see "
					"the summary)");
	if (fflush(stdout) != 0 && !ret)
		ret = SB_EXIT_RUNTIME;
out_reap:
	sb_consumer_close(d->monitor);
	for (uint64_t k = 0; k < d->consumers; k++) {
		if (d->cons[k].pid > 0 && !d->cons[k].exited)
			waitpid(d->cons[k].pid, &d->cons[k].status, 0);
		free_child(&d->cons[k]);
	}
	if (d->coord.pid > 0 && !d->coord.exited)
		waitpid(d->coord.pid, &d->coord.status, 0);
	free_child(&d->coord);
out_free:
	free(d);
	return ret;
}
