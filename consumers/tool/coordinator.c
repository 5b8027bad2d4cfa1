/*
 * snapbridge coordinator - a real coordinator over a synthetic capture
 * source: it stores verifiable reports (synth.c) on a schedule and serves
 * consumers on a socket until it is done or told to stop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

static const char *const cmd = "coordinator";

enum tag_mode { TAG_PERIODIC, TAG_CYCLE, TAG_UNIQUE, TAG_MIXED };

struct coord_opts {
	const char *socket;
	uint64_t count; /* 0: until signalled */
	uint64_t interval_ms;
	uint64_t payload;
	enum tag_mode mode;
	uint64_t cycle_k;
	uint64_t linger_ms;
	uint64_t wait_consumers;
	uint64_t aux_every;  /* 0: no aux records */
	int64_t allowed_gid; /* -1: only our uid */
	struct sb_config cfg;
};

static int usage(FILE *to, int code)
{
	fprintf(
	    to,
	    "usage: snapbridge coordinator --socket PATH [options]\n"
	    "\n"
	    "Run a coordinator with a synthetic capture source and serve consumers on a\n"
	    "Unix socket. Reports are msgpack maps with a seeded byte pattern and its\n"
	    "checksum, so any consumer can verify them ('snapbridge drain --verify').\n"
	    "Periodic captures carry stats (some present, some missing with a reason),\n"
	    "elapsed and boundary offsets and a step index. It stops after --count\n"
	    "stores and --linger-ms, or on SIGINT/SIGTERM/SIGHUP, and closes cleanly.\n"
	    "\n"
	    "options:\n"
	    "  --socket PATH          where consumers connect (a path, or @name)\n"
	    "  --allowed-gid GID      admit members of this group too, not only this uid\n"
	    "                         (a socket path is then created 0660 for the group)\n"
	    "  --count N              stores to make, 0 = until stopped (default 0)\n"
	    "  --interval-ms MS       time between captures, 0 = flat out (default 100)\n"
	    "  --payload-bytes SIZE   pattern bytes per report (default 1024; 2K, 1M: binary units)\n"
	    "  --tag-mode MODE        periodic   periodic_000, periodic_001, ... (default)\n"
	    "                         cycle:K    K tags cycle_0..cycle_K-1, round-robin\n"
	    "                         unique     capture_1, capture_2, ... never reused\n"
	    "                         mixed      a 'hot' tag every third capture (overwrites),\n"
	    "                                    periodic tags otherwise (evictions at the cap)\n"
	    "  --max-snapshots N      resident reports kept (default %u)\n"
	    "  --max-events N         events kept (default %u)\n"
	    "  --log-bytes SIZE       record log size (default %u; e.g. 256K, 18M)\n"
	    "  --linger-ms MS         keep serving this long after the last store (default 0)\n"
	    "  --wait-consumers N     before the first capture, wait until N consumers are\n"
	    "                         attached (at most 60 s)\n"
	    "  --aux-every N          a kernel op and a cgroup.procs snapshot after every N\n"
	    "                         stores, 0 = never (default 10)\n"
	    "  --help                 show this help\n"
	    "  --version              print the version and the region ABI\n"
	    "\n"
	    "It prints one line saying where consumers connect, and one when it closes.\n"
	    "\n"
	    "examples:\n"
	    "  snapbridge coordinator --socket /tmp/sb.sock --count 1000 --interval-ms 5\n"
	    "  snapbridge coordinator --socket @demo --tag-mode cycle:8 --max-snapshots 4\n",
	    SB_DEFAULT_MAX_SNAPSHOTS, SB_DEFAULT_MAX_EVENTS, SB_DEFAULT_LOG_BYTES);
	return code;
}

static int parse_tag_mode(const char *s, struct coord_opts *o)
{
	if (!strcmp(s, "periodic"))
		o->mode = TAG_PERIODIC;
	else if (!strcmp(s, "unique"))
		o->mode = TAG_UNIQUE;
	else if (!strcmp(s, "mixed"))
		o->mode = TAG_MIXED;
	else if (!strncmp(s, "cycle:", 6)) {
		o->mode = TAG_CYCLE;
		return sb_tool_parse_u64(cmd, "tag-mode cycle:K", s + 6, 1, 1000000, &o->cycle_k);
	} else
		return sb_tool_usage_error(
		    cmd, "--tag-mode must be periodic, cycle:K, unique or mixed, got '%s'", s);
	return 0;
}

static int parse(int argc, char **argv, struct coord_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "payload-bytes", required_argument, NULL, 'p' },
		{ "tag-mode", required_argument, NULL, 't' },
		{ "max-snapshots", required_argument, NULL, 'S' },
		{ "max-events", required_argument, NULL, 'E' },
		{ "log-bytes", required_argument, NULL, 'L' },
		{ "linger-ms", required_argument, NULL, 'l' },
		{ "wait-consumers", required_argument, NULL, 'w' },
		{ "aux-every", required_argument, NULL, 'a' },
		{ "allowed-gid", required_argument, NULL, 'g' },
		SB_TOOL_COMMON_LONGOPTS,
		{ 0 },
	};
	uint64_t v;
	int c, err = 0;

	memset(o, 0, sizeof(*o));
	o->interval_ms = 100;
	o->payload = 1024;
	o->aux_every = 10;
	o->allowed_gid = -1;
	sb_config_default(&o->cfg);
	while (!err && (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket = optarg;
			break;
		case 'n':
			err = sb_tool_parse_u64(cmd, "count", optarg, 0, UINT64_MAX / 2, &o->count);
			break;
		case 'i':
			err = sb_tool_parse_u64(cmd, "interval-ms", optarg, 0, 3600000,
						&o->interval_ms);
			break;
		case 'p':
			err = sb_tool_parse_size(cmd, "payload-bytes", optarg, 0,
						 SB_LOG_BYTES_MAX / 2, &o->payload);
			break;
		case 't':
			err = parse_tag_mode(optarg, o);
			break;
		case 'S':
			err = sb_tool_parse_u64(cmd, "max-snapshots", optarg, 1,
						SB_MAX_SNAPSHOTS_LIMIT, &v);
			o->cfg.max_snapshots = (uint32_t)v;
			break;
		case 'E':
			err = sb_tool_parse_u64(cmd, "max-events", optarg, 1, SB_MAX_EVENTS_LIMIT,
						&v);
			o->cfg.max_events = (uint32_t)v;
			break;
		case 'L':
			err = sb_tool_parse_size(cmd, "log-bytes", optarg, SB_LOG_BYTES_MIN,
						 SB_LOG_BYTES_MAX, &o->cfg.log_bytes);
			break;
		case 'l':
			err =
			    sb_tool_parse_u64(cmd, "linger-ms", optarg, 0, 86400000, &o->linger_ms);
			break;
		case 'w':
			err = sb_tool_parse_u64(cmd, "wait-consumers", optarg, 0, 64,
						&o->wait_consumers);
			break;
		case 'a':
			err = sb_tool_parse_u64(cmd, "aux-every", optarg, 0, UINT32_MAX,
						&o->aux_every);
			break;
		case 'g':
			err = sb_tool_parse_u64(cmd, "allowed-gid", optarg, 0, UINT32_MAX - 1, &v);
			o->allowed_gid = (int64_t)v;
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
	if (!o->socket)
		return sb_tool_usage_error(cmd, "--socket PATH is required");
	/* A record takes at most half the log; leave room for its header, tag and map. */
	if (o->payload + 512 > o->cfg.log_bytes / 2)
		return sb_tool_usage_error(cmd,
					   "--payload-bytes %llu does not fit a --log-bytes %llu "
					   "log (a record may take at most half of it)",
					   (unsigned long long)o->payload,
					   (unsigned long long)o->cfg.log_bytes);
	return 0;
}

/* The capture callback for the captures that find nothing: CaptureUnavailable. */
static int capture_nothing(void *user, const char *tag, struct sb_report *out)
{
	(void)user;
	(void)tag;
	(void)out;
	return 0;
}

/*
 * The kernel-op callback of the synthetic source: reads of "jiffies"
 * answer with a u64, writes succeed without values, and every fifth op
 * fails with a reason. The reply's buffers live until the next op (the
 * coordinator runs one op at a time).
 */
static void kernel_op_synthetic(void *user, const struct sb_kop_request *req,
				struct sb_kop_reply *reply)
{
	static struct sb_kop_value value;

	(void)user;
	reply->id = req->id;
	if (req->id % 5 == 4) {
		reply->success = false;
		reply->reason = "target not resolved: no such symbol in this kernel";
		return;
	}
	reply->success = true;
	reply->reason = NULL;
	if (req->direction == SB_KOP_READ) {
		value = (struct sb_kop_value){ .kind = SB_KOP_U64, .num = req->id * 1000 + 7 };
		reply->read_values = &value;
		reply->n_values = 1;
	}
}

/* After a store: a kernel op through the bridge, and a cgroup.procs snapshot. */
static int aux_records(struct sb_bridge *b, uint64_t n)
{
	char tag[64];
	struct sb_kop_entry entry = { .target = n % 2 ? "sched_debug_flags" : "jiffies" };
	struct sb_kop_request req = {
		.id = n,
		.mode = n % 3 ? SB_KOP_HOT : SB_KOP_COLD,
		.direction = n % 2 ? SB_KOP_WRITE : SB_KOP_READ,
		.tag = tag,
		.entries = &entry,
		.n_entries = 1,
	};
	int32_t pids[3] = { (int32_t)getpid(), (int32_t)(1000 + n % 100), (int32_t)(2000 + n) };
	int err;

	if (req.direction == SB_KOP_WRITE)
		entry.value = (struct sb_kop_value){ .kind = SB_KOP_U32, .num = (uint32_t)n };
	snprintf(tag, sizeof(tag), "kop_%llu", (unsigned long long)n);
	err = sb_bridge_dispatch_kernel_op(b, &req, NULL);
	if (err)
		return err;
	snprintf(tag, sizeof(tag), "procs_%llu", (unsigned long long)n);
	err = sb_bridge_record_cgroup_procs(b, tag, "/sys/fs/cgroup/snapbridge-synthetic", pids,
					    n % 4 == 3 ? 0 : 3);
	/*
	 * Consumers read these from the aux log; the bridge's own logs keep
	 * everything until drained, so a coordinator that never reads them
	 * drains them, or a long run would grow without bound.
	 */
	struct sb_kop_log kops;
	struct sb_cgroup_procs_log procs;
	if (!err && sb_bridge_drain_kernel_ops(b, &kops) == 0)
		sb_kop_log_free(&kops);
	if (!err && sb_bridge_drain_cgroup_procs(b, &procs) == 0)
		sb_cgroup_procs_log_free(&procs);
	return err;
}

static void make_stats(uint64_t k, msgpack_sbuffer *sb, struct sb_stats *st)
{
	static const struct sb_missing reasons[] = {
		{ .kind = SB_MISSING_NO_SCHEDULER, .text = "no scheduler is attached" },
		{ .kind = SB_MISSING_SCHEDULER_ERROR,
		  .err = 5,
		  .text = "read /sys/kernel/sched_ext/state" },
		{ .kind = SB_MISSING_DURING_FREEZE },
		{ .kind = SB_MISSING_MISSING_RESP, .text = "stats 7" },
		{ .kind = SB_MISSING_RESPONSE_TOO_LARGE, .size = 2u << 20, .max = 1u << 20 },
		{ .kind = SB_MISSING_CANCELLED },
	};

	memset(st, 0, sizeof(*st));
	if (k % 3 == 2) {
		st->kind = SB_STATS_MISSING;
		st->missing = reasons[(k / 3) % (sizeof(reasons) / sizeof(reasons[0]))];
		return;
	}
	msgpack_packer pk;
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	msgpack_pack_str_with_body(&pk, "runnable", 8);
	msgpack_pack_uint32(&pk, (uint32_t)(k % 7));
	msgpack_pack_str_with_body(&pk, "switches", 8);
	msgpack_pack_uint64(&pk, 1000 * k + 17);
	msgpack_pack_str_with_body(&pk, "load", 4);
	msgpack_pack_double(&pk, (double)(k % 16) / 8.0);
	msgpack_pack_str_with_body(&pk, "drift_ns", 8);
	msgpack_pack_int64(&pk, -(int64_t)(k % 1000) * 100);
	st->kind = SB_STATS_OK;
	st->msgpack = sb->data;
	st->msgpack_len = sb->size;
}

struct source {
	const struct coord_opts *o;
	struct sb_bridge *bridge;
	uint64_t start_ns;
	uint64_t attempts; /* capture attempts so far */
	uint64_t stored;
	uint64_t periodic; /* periodic captures so far */
	msgpack_sbuffer report, stats;
	bool reported; /* an error was already printed */
};

/* The report could not be built: said here, since no snapbridge call failed. */
static int no_memory(struct source *s)
{
	sb_tool_fail(cmd, "out of memory building a %llu-byte report",
		     (unsigned long long)s->o->payload);
	s->reported = true;
	return -ENOMEM;
}

/*
 * One capture: a store, or (every 97th periodic capture) an unavailable
 * one. Returns 0, a store's error (sb_last_error() says why), or -ENOMEM
 * already reported when the report could not be built.
 */
static int capture_one(struct source *s, bool *stored)
{
	const struct coord_opts *o = s->o;
	char tag[SB_TAG_MAX + 1];
	bool periodic = o->mode == TAG_PERIODIC || (o->mode == TAG_MIXED && s->attempts % 3 != 0);
	uint64_t i = s->attempts++;

	*stored = false;
	if (periodic) {
		uint64_t k = s->periodic++;

		snprintf(tag, sizeof(tag), "periodic_%03u", (unsigned)(k % 1000));
		if (k % 97 == 96) {
			bool dummy;
			int err = sb_bridge_capture(s->bridge, tag, &dummy);

			return err;
		}
		struct sb_stats st;
		uint64_t now = sb_tool_mono_ns();
		uint64_t elapsed = (now - s->start_ns) / 1000000;
		uint64_t boundary = k * o->interval_ms;

		make_stats(k, &s->stats, &st);
		if (sb_synth_report(&s->report, s->stored + 1, tag, now, o->payload) != 0)
			return no_memory(s);
		struct sb_report r = { .schema = "synthetic.v1",
				       .placeholder = k % 10 == 9,
				       .msgpack = s->report.data,
				       .msgpack_len = s->report.size };
		int err = sb_bridge_store_with_stats_and_step(s->bridge, tag, &r, &st, &elapsed,
							      &boundary, (uint16_t)(k / 10 % 8));
		*stored = err == 0;
		return err;
	}
	if (o->mode == TAG_CYCLE)
		snprintf(tag, sizeof(tag), "cycle_%llu", (unsigned long long)(i % o->cycle_k));
	else if (o->mode == TAG_UNIQUE)
		snprintf(tag, sizeof(tag), "capture_%llu", (unsigned long long)(i + 1));
	else
		snprintf(tag, sizeof(tag), "hot");
	uint64_t now = sb_tool_mono_ns();
	uint64_t elapsed = (now - s->start_ns) / 1000000;
	if (sb_synth_report(&s->report, s->stored + 1, tag, now, o->payload) != 0)
		return no_memory(s);
	struct sb_report r = { .schema = "synthetic.v1",
			       .msgpack = s->report.data,
			       .msgpack_len = s->report.size };
	int err = sb_bridge_store_with_stats(s->bridge, tag, &r, NULL, &elapsed);
	*stored = err == 0;
	return err;
}

/* Sleep until deadline_ns (CLOCK_MONOTONIC); false when a stop signal came first. */
static bool sleep_until(const sigset_t *stopset, uint64_t deadline_ns)
{
	for (;;) {
		uint64_t now = sb_tool_mono_ns();
		struct timespec ts;

		if (now >= deadline_ns)
			return true;
		ts.tv_sec = (time_t)((deadline_ns - now) / 1000000000ull);
		ts.tv_nsec = (long)((deadline_ns - now) % 1000000000ull);
		int sig = sigtimedwait(stopset, NULL, &ts);
		if (sig > 0)
			return false;
		if (sig < 0 && errno != EAGAIN && errno != EINTR)
			return true;
	}
}

/* Whether a stop signal is waiting (taken here), without blocking. */
static bool stop_pending(const sigset_t *stopset)
{
	struct timespec zero = { 0, 0 };

	return sigtimedwait(stopset, NULL, &zero) > 0;
}

static int wait_for_consumers(struct sb_bridge *b, const sigset_t *stopset, uint64_t want,
			      bool *stopped)
{
	uint64_t deadline = sb_tool_mono_ns() + 60ull * 1000000000ull;
	struct sb_consumer_info info[4];
	size_t n = 0;

	printf("snapbridge coordinator: waiting for %llu consumer%s\n", (unsigned long long)want,
	       want == 1 ? "" : "s");
	fflush(stdout);
	for (;;) {
		int err = sb_bridge_consumers(b, info, 4, &n);

		if (err)
			return sb_tool_fail(cmd, "cannot list consumers: %s", sb_last_error());
		if (n >= want)
			return 0;
		if (sb_tool_mono_ns() > deadline)
			return sb_tool_fail(cmd, "only %zu of %llu consumers attached within 60 s",
					    n, (unsigned long long)want);
		if (!sleep_until(stopset, sb_tool_mono_ns() + 5000000)) {
			*stopped = true;
			return 0;
		}
	}
}

int sb_cmd_coordinator(int argc, char **argv)
{
	struct coord_opts o;
	int ret = parse(argc, argv, &o);

	if (ret)
		return ret;

	/* The stop signals are taken with sigtimedwait(); the serving thread blocks all. */
	sigset_t stopset;
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGINT);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGHUP); /* its terminal closed: close cleanly, remove the socket */
	sigprocmask(SIG_BLOCK, &stopset, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct sb_bridge_ops ops = { .capture = capture_nothing, .kernel_op = kernel_op_synthetic };
	struct sb_bridge *b = NULL;
	int err = sb_bridge_create(&o.cfg, &ops, &b);
	if (err == -EINVAL)
		return sb_tool_usage_error(cmd, "%s", sb_last_error());
	if (err)
		return sb_tool_fail(cmd, "cannot create the bridge: %s", sb_last_error());

	struct sb_serve_config sc;
	sb_serve_config_default(&sc);
	sc.socket = o.socket;
	sc.allowed_gid = o.allowed_gid;
	err = sb_bridge_serve(b, &sc);
	if (err) {
		ret = sb_tool_fail(cmd, "cannot serve on %s: %s", o.socket, sb_last_error());
		sb_bridge_destroy(b);
		return ret;
	}
	printf("snapbridge coordinator: serving on %s (pid %d); attach with: snapbridge drain "
	       "--socket %s --follow\n",
	       o.socket, (int)getpid(), o.socket);
	fflush(stdout);

	struct source s = { .o = &o, .bridge = b };
	bool stopped = false;
	msgpack_sbuffer_init(&s.report);
	msgpack_sbuffer_init(&s.stats);
	if (o.wait_consumers)
		ret = wait_for_consumers(b, &stopset, o.wait_consumers, &stopped);

	s.start_ns = sb_tool_mono_ns();
	uint64_t next = s.start_ns;
	while (!ret && !stopped && (o.count == 0 || s.stored < o.count)) {
		bool stored;

		err = capture_one(&s, &stored);
		if (err) {
			ret = s.reported ? SB_EXIT_RUNTIME
					 : sb_tool_fail(cmd, "store failed: %s", sb_last_error());
			break;
		}
		s.stored += stored;
		if (stored && o.aux_every && s.stored % o.aux_every == 0 &&
		    aux_records(b, s.stored / o.aux_every) != 0) {
			ret = sb_tool_fail(cmd, "aux record failed: %s", sb_last_error());
			break;
		}
		next += o.interval_ms * 1000000ull;
		if (o.interval_ms && !sleep_until(&stopset, next))
			stopped = true;
		else if (!o.interval_ms && s.attempts % 64 == 0 && stop_pending(&stopset))
			stopped = true;
	}
	double secs = (double)(sb_tool_mono_ns() - s.start_ns) / 1e9;
	if (!ret && !stopped && o.linger_ms)
		sleep_until(&stopset, sb_tool_mono_ns() + o.linger_ms * 1000000ull);
	printf("snapbridge coordinator: stored %llu capture%s in %.2f s%s; closing\n",
	       (unsigned long long)s.stored, s.stored == 1 ? "" : "s", secs,
	       stopped ? " (stopped by a signal)" : "");
	fflush(stdout);
	msgpack_sbuffer_destroy(&s.report);
	msgpack_sbuffer_destroy(&s.stats);
	sb_bridge_destroy(b);
	return ret;
}
