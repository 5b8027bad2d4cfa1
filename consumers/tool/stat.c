/*
 * snapbridge stat - what a region holds: its header and config, the
 * writer's counters (sb_consumer_stat), the coordinator's liveness and
 * the attached consumers with their lag. --watch redraws once a second
 * with the rates over the last interval: stores/s, log bytes/s, and per
 * consumer the stores it lost to laps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

static const char *const cmd = "stat";

struct stat_opts {
	struct sb_source src;
	bool watch;
	bool table;
	uint64_t iterations; /* 0: until stopped */
};

static int usage(FILE *to, int code)
{
	fprintf(to, "usage: snapbridge stat (--socket PATH | --file IMAGE | --pid PID) [--watch]\n"
		    "                       [--format table|json] [--iterations N] [--wait[=MS]]\n"
		    "       snapbridge stat --nats URL [--stream NAME] [--host H] [--watch] ...\n"
		    "\n"
		    "Show a region: header (ABI, layout hash, size), config, the writer's\n"
		    "counters (stores, resident, overwrites, evictions, events, log use), the\n"
		    "coordinator's liveness and the attached consumers with their lag.\n"
		    "\n"
		    "options:\n"
		    "  --socket PATH      connect to a coordinator\n"
		    SB_TOOL_EXPECT_UID_HELP
		    "  --file IMAGE       read an image made by 'snapbridge save'\n"
		    "  --pid PID          attach to a coordinator by pid (needs ptrace access)\n"
		    "  --wait[=MS]        wait for the coordinator to appear (at most MS ms)\n");
	fputs(SB_NATS_HELP("a JetStream stream 'snapbridge export' writes: messages\n"
			   "                     and accounting per host, and each exporter's lag"),
	      to);
	fprintf(to, "  --watch            redraw once a second, like top, until SIGINT or the\n"
		    "                     coordinator closes, with the rates over each second:\n"
		    "                     stores/s, log bytes/s, laps per consumer\n"
		    "  --iterations N     with --watch, stop after N redraws\n"
		    "  --format table|json  table (default) or json (one object per line, each\n"
		    "                     with a \"time\")\n"
		    "  --help             show this help\n"
		    "  --version          print the version and the region ABI\n"
		    "\n"
		    "examples:\n"
		    "  snapbridge stat --socket /tmp/sb.sock\n"
		    "  snapbridge stat --socket /tmp/sb.sock --watch\n"
		    "  snapbridge stat --file /tmp/sb.img --format json | jq .counters\n"
		    "  snapbridge stat --nats nats://10.0.0.5:4222 --stream caps\n");
	return code;
}

static int parse(int argc, char **argv, struct stat_opts *o)
{
	static const struct option longopts[] = {
		SB_TOOL_SOURCE_LONGOPTS,
		{ "watch", no_argument, NULL, 'w' },
		{ "format", required_argument, NULL, 'o' },
		{ "iterations", required_argument, NULL, 'n' },
		SB_NATS_LONGOPTS,
		SB_TOOL_COMMON_LONGOPTS,
		{ 0 },
	};
	int c, err = 0;

	o->table = true;
	while (!err && (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'w':
			o->watch = true;
			break;
		case 'n':
			err = sb_tool_parse_u64(cmd, "iterations", optarg, 1, UINT32_MAX,
						&o->iterations);
			break;
		case 'o':
			if (!strcmp(optarg, "json"))
				o->table = false;
			else if (!strcmp(optarg, "table"))
				o->table = true;
			else
				return sb_tool_usage_error(
				    cmd, "--format must be table or json, got '%s'", optarg);
			break;
		case 'h':
		case SB_OPT_VERSION:
			sb_tool_common_option(cmd, c, usage);
			break;
		default:
			if (!sb_tool_source_option(cmd, &o->src, c, optarg))
				return sb_tool_bad_option(cmd, c, argv);
			break;
		}
	}
	err = sb_tool_options_done(cmd, err, argc, argv);
	if (err)
		return err;
	if (o->iterations && !o->watch)
		return sb_tool_usage_error(cmd, "--iterations only applies with --watch");
	return sb_tool_check_any_source(cmd, &o->src, true, true);
}

/*
 * What --watch remembers between samples: the counters, and per consumer
 * how far its stores are accounted for (read or lost), to count each
 * lapped store once.
 */
struct watch {
	bool have;
	uint64_t at_ns;
	struct sb_region_stat prev;
	struct peer {
		int32_t pid;
		uint32_t slot;
		uint64_t accounted; /* stores up to here were read by it or counted lapped */
		uint64_t lapped;    /* counted since stat started */
	} peers[64];
	size_t npeers;
};

/*
 * Stores a consumer lost to laps since the last sample: those below the
 * oldest record still in the log that its cursor had not reached. Seen
 * from outside, once a second: a consumer lapped and caught up within one
 * interval is not counted, so this is a lower bound.
 */
static uint64_t lapped_since(struct watch *w, const struct sb_consumer_info *p,
			     uint64_t oldest_seq, uint64_t *total)
{
	struct peer *q = NULL;

	for (size_t i = 0; i < w->npeers; i++)
		if (w->peers[i].pid == p->pid && w->peers[i].slot == p->slot)
			q = &w->peers[i];
	uint64_t lost = oldest_seq ? oldest_seq - 1 : 0; /* every store up to here left the log */
	uint64_t now = 0;
	if (!q) {
		if (w->npeers == sizeof(w->peers) / sizeof(w->peers[0]))
			return *total = 0;
		q = &w->peers[w->npeers++];
		*q = (struct peer){ .pid = p->pid,
				    .slot = p->slot,
				    .accounted = p->cursor > lost ? p->cursor : lost };
	}
	uint64_t from = q->accounted > p->cursor ? q->accounted : p->cursor;
	if (lost > from)
		now = lost - from;
	q->lapped += now;
	if (q->accounted < from + now)
		q->accounted = from + now;
	*total = q->lapped;
	return now;
}

static json_t *rate(double per_s)
{
	return json_real(per_s);
}

static json_t *consumers_json(struct sb_consumer *c, struct watch *w, uint64_t oldest_seq,
			      double dt)
{
	struct sb_consumer_info info[64];
	size_t n = 0;

	if (sb_consumer_peers(c, info, 64, &n) != 0)
		return json_null(); /* an image: nobody is attached to it */
	json_t *a = json_array();
	for (size_t i = 0; a && i < n && i < 64; i++) {
		const struct sb_consumer_info *p = &info[i];
		uint64_t total = 0, now = 0;

		if (p->pid == getpid())
			continue; /* this stat itself */
		if (w)
			now = lapped_since(w, p, oldest_seq, &total);
		json_t *j = json_pack(
		    "{s:i,s:i,s:I,s:o,s:b,s:b,s:I}", "slot", (int)p->slot, "pid", (int)p->pid,
		    "cursor", (json_int_t)p->cursor, "lag",
		    p->lag_valid ? json_integer((json_int_t)p->lag) : json_null(), "waiting",
		    (int)p->waiting, "polling", (int)p->polling, "heartbeat_age_ms",
		    (json_int_t)(p->heartbeat_age_ns / 1000000));
		if (j && w) {
			json_object_set_new(j, "lapped_seen", json_integer((json_int_t)total));
			json_object_set_new(j, "lapped_per_s",
					    dt > 0 ? rate((double)now / dt) : json_null());
		}
		json_array_append_new(a, j);
	}
	return a;
}

static json_t *stat_json(struct sb_consumer *c, struct watch *w)
{
	struct sb_region_stat st;
	char hash[20], abi[16], when[40];
	enum sb_coord_state cs = SB_COORD_ALIVE;
	uint64_t now = sb_tool_mono_ns();

	sb_consumer_stat(c, &st);
	sb_consumer_coordinator(c, &cs);
	double dt = w && w->have ? (double)(now - w->at_ns) / 1e9 : 0;
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)st.layout_hash);
	snprintf(abi, sizeof(abi), "%u.%u", st.abi_major, st.abi_minor);
	uint8_t id[SB_REGION_ID_BYTES];
	sb_consumer_region_id(c, id);
	json_t *header = json_pack("{s:s,s:s,s:s,s:I,s:i,s:o}", "magic", "SNAPBRDG", "abi", abi,
				   "layout_hash", hash, "region_bytes", (json_int_t)st.region_bytes,
				   "coordinator_pid", (int)st.coordinator_pid, "region_id",
				   sb_tool_region_json(id));
	json_t *config =
	    json_pack("{s:i,s:i,s:i,s:I,s:I}", "max_snapshots", (int)st.max_snapshots, "max_events",
		      (int)st.max_events, "max_watch", (int)st.max_watch, "log_bytes",
		      (json_int_t)st.log_bytes, "aux_bytes", (json_int_t)st.aux_bytes);
	json_t *counters = json_pack(
	    "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "stores", (json_int_t)st.stores,
	    "resident", (json_int_t)st.resident, "overwrites", (json_int_t)st.overwrites,
	    "evicted_cap", (json_int_t)st.evicted_cap, "evicted_bytes",
	    (json_int_t)st.evicted_bytes, "drained", (json_int_t)st.drained, "capture_unavailable",
	    (json_int_t)st.capture_unavailable, "events", (json_int_t)st.events, "wakes",
	    (json_int_t)st.wakes, "log_used_bytes", (json_int_t)st.log_used_bytes,
	    "log_written_bytes", (json_int_t)st.log_written_bytes);
	json_t *coord = json_pack("{s:s,s:o}", "state", sb_coord_state_name(cs), "heartbeat_age_ms",
				  st.heartbeat_known
				      ? json_integer((json_int_t)(st.heartbeat_age_ns / 1000000))
				      : json_null());
	uint64_t aux_records = 0, acc_seqno = 0;
	uint32_t watches = 0;
	bool installed = false;
	enum sb_worker_state acc_state = SB_WORKER_TRYING;
	sb_consumer_aux_count(c, &aux_records);
	sb_consumer_watch_count(c, &watches);
	sb_consumer_accessor(c, &installed, &acc_seqno, &acc_state);
	const char *acc_name = sb_worker_state_name(acc_state);
	json_t *aux =
	    json_pack("{s:I,s:i,s:{s:b,s:s,s:I}}", "records", (json_int_t)aux_records,
		      "watch_count", (int)watches, "accessor", "installed", (int)installed, "state",
		      acc_name ? acc_name : "?", "seqno", (json_int_t)acc_seqno);
	json_t *rates = json_null();
	if (dt > 0)
		rates = json_pack(
		    "{s:f,s:o,s:o,s:o}", "interval_s", dt, "stores_per_s",
		    rate((double)(st.stores - w->prev.stores) / dt), "log_bytes_per_s",
		    rate((double)(st.log_written_bytes - w->prev.log_written_bytes) / dt),
		    "events_per_s", rate((double)(st.events - w->prev.events) / dt));
	json_t *j = json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "time",
			      sb_tool_iso_time(when, sizeof(when)), "header", header, "config",
			      config, "counters", counters, "rates", rates, "aux", aux,
			      "coordinator", coord, "consumers",
			      consumers_json(c, w, st.oldest_seq, dt));
	if (w) {
		w->prev = st;
		w->at_ns = now;
		w->have = true;
	}
	return j;
}

static json_int_t geti(json_t *o, const char *a, const char *b)
{
	return json_integer_value(json_object_get(json_object_get(o, a), b));
}

static const char *human(json_int_t v, char *buf, size_t n)
{
	return sb_tool_human_bytes((uint64_t)v, buf, n);
}

static void print_table(FILE *out, const char *what, json_t *j)
{
	json_t *h = json_object_get(j, "header"), *co = json_object_get(j, "coordinator");
	json_t *age = json_object_get(co, "heartbeat_age_ms");
	json_t *rates = json_object_get(j, "rates");
	char a[32], b[32];

	fprintf(out, "region       %s  at %s\n", what,
		json_string_value(json_object_get(j, "time")));
	fprintf(out, "  id         %s\n", json_string_value(json_object_get(h, "region_id")));
	fprintf(out, "  abi        %s  layout %s  %s\n",
		json_string_value(json_object_get(h, "abi")),
		json_string_value(json_object_get(h, "layout_hash")),
		human(geti(j, "header", "region_bytes"), a, sizeof(a)));
	fprintf(out, "coordinator  pid %lld  %s", (long long)geti(j, "header", "coordinator_pid"),
		json_string_value(json_object_get(co, "state")));
	if (json_is_integer(age))
		fprintf(out, "  (heartbeat %lld ms ago)", (long long)json_integer_value(age));
	fprintf(out, "\nconfig       max_snapshots %lld  max_events %lld  log %s  aux log %s\n",
		(long long)geti(j, "config", "max_snapshots"),
		(long long)geti(j, "config", "max_events"),
		human(geti(j, "config", "log_bytes"), a, sizeof(a)),
		human(geti(j, "config", "aux_bytes"), b, sizeof(b)));
	fprintf(out, "stores       %12lld   resident      %10lld\n",
		(long long)geti(j, "counters", "stores"),
		(long long)geti(j, "counters", "resident"));
	fprintf(out, "overwrites   %12lld   evicted (cap) %10lld   evicted (bytes) %lld\n",
		(long long)geti(j, "counters", "overwrites"),
		(long long)geti(j, "counters", "evicted_cap"),
		(long long)geti(j, "counters", "evicted_bytes"));
	fprintf(out, "events       %12lld   unavailable   %10lld   drained %lld\n",
		(long long)geti(j, "counters", "events"),
		(long long)geti(j, "counters", "capture_unavailable"),
		(long long)geti(j, "counters", "drained"));
	json_t *aux = json_object_get(j, "aux"), *acc = json_object_get(aux, "accessor");
	fprintf(out, "aux records  %12lld   watches       %10lld   accessor %s%s (seqno %lld)\n",
		(long long)geti(j, "aux", "records"), (long long)geti(j, "aux", "watch_count"),
		json_string_value(json_object_get(acc, "state")),
		json_is_true(json_object_get(acc, "installed")) ? "" : ", not installed",
		(long long)json_integer_value(json_object_get(acc, "seqno")));
	fprintf(out, "log used     %12s of %s   wakes %lld\n",
		human(geti(j, "counters", "log_used_bytes"), a, sizeof(a)),
		human(geti(j, "config", "log_bytes"), b, sizeof(b)),
		(long long)geti(j, "counters", "wakes"));
	if (json_is_object(rates)) {
		double bps = json_real_value(json_object_get(rates, "log_bytes_per_s"));

		fprintf(out, "rates        %12.1f stores/s   %s/s into the log   %.1f events/s\n",
			json_real_value(json_object_get(rates, "stores_per_s")),
			sb_tool_human_bytes(bps > 0 ? (uint64_t)bps : 0, a, sizeof(a)),
			json_real_value(json_object_get(rates, "events_per_s")));
	}

	json_t *cons = json_object_get(j, "consumers");
	if (!json_is_array(cons)) {
		fprintf(out, "consumers    (none: an image has no control page)\n");
		return;
	}
	size_t ncons = json_array_size(cons);
	fprintf(out, "consumers    %zu attached\n", ncons);
	if (!ncons)
		return;
	fprintf(out, "  %4s %8s %12s %8s %-8s %10s %10s\n", "SLOT", "PID", "CURSOR", "LAG", "STATE",
		"BEAT(ms)", "LAPPED/s");
	size_t i;
	json_t *p;
	json_array_foreach(cons, i, p)
	{
		json_t *lag = json_object_get(p, "lag"), *lps = json_object_get(p, "lapped_per_s");
		char lagbuf[24], lapbuf[24];
		const char *state = json_is_true(json_object_get(p, "polling"))	  ? "polling"
				    : json_is_true(json_object_get(p, "waiting")) ? "waiting"
										  : "running";

		if (json_is_integer(lag))
			snprintf(lagbuf, sizeof(lagbuf), "%lld",
				 (long long)json_integer_value(lag));
		else
			snprintf(lagbuf, sizeof(lagbuf), "?");
		if (json_is_number(lps))
			snprintf(lapbuf, sizeof(lapbuf), "%.1f", json_number_value(lps));
		else
			snprintf(lapbuf, sizeof(lapbuf), "-");
		fprintf(out, "  %4lld %8lld %12lld %8s %-8s %10lld %10s\n",
			(long long)json_integer_value(json_object_get(p, "slot")),
			(long long)json_integer_value(json_object_get(p, "pid")),
			(long long)json_integer_value(json_object_get(p, "cursor")), lagbuf, state,
			(long long)json_integer_value(json_object_get(p, "heartbeat_age_ms")),
			lapbuf);
	}
}

int sb_cmd_stat(int argc, char **argv)
{
	struct stat_opts o = { 0 };
	int ret = parse(argc, argv, &o);
	struct sb_consumer *c = NULL;
	struct watch *w = NULL;
	char what[600];

	if (ret)
		return ret;
	if (o.src.nats) /* the stream an export wrote (nats_source.c) */
		return sb_nats_stat(cmd, &o.src, o.table, o.watch, o.iterations);
	ret = sb_tool_attach(cmd, &o.src, SB_CONSUMER_START_AT_END, &c);
	if (ret)
		return ret;
	if (o.watch && !(w = calloc(1, sizeof(*w)))) {
		sb_consumer_close(c);
		return sb_tool_fail(cmd, "out of memory");
	}
	snprintf(what, sizeof(what), "%s %s",
		 o.src.socket ? "socket"
		 : o.src.file ? "image"
			      : "pid",
		 o.src.socket ? o.src.socket
		 : o.src.file ? o.src.file
			      : o.src.pid);
	sb_tool_catch_stop_signals();
	for (uint64_t n = 1;; n++) {
		json_t *j = stat_json(c, w);

		if (!j) {
			ret = sb_tool_fail(cmd, "out of memory");
			break;
		}
		if (o.watch && o.table)
			sb_tool_watch_frame(n);
		int werr = 0;
		if (o.table) {
			print_table(stdout, what, j);
			json_decref(j);
			if (ferror(stdout))
				werr = errno ? -errno : -EIO;
		} else {
			werr = sb_tool_print_json_line(stdout, j);
		}
		if (!werr && fflush(stdout) != 0)
			werr = errno ? -errno : -EIO;
		if (werr) {
			/* A closed pipe ends quietly; a full disk says so. */
			ret = sb_tool_output_done(cmd, stdout, werr);
			break;
		}
		enum sb_coord_state cs = SB_COORD_ALIVE;
		sb_consumer_coordinator(c, &cs);
		if (!o.watch || cs != SB_COORD_ALIVE || (o.iterations && n >= o.iterations) ||
		    !sb_tool_watch_pause())
			break;
	}
	free(w);
	sb_consumer_close(c);
	return ret;
}
