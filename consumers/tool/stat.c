/*
 * snapbridge stat - what a region holds: its header and config, the
 * writer's counters, the coordinator's liveness and the attached
 * consumers with their lag. --watch redraws once a second.
 *
 * The header and counters are not in the public API, so this reads the
 * consumer's validated header copy and the hot words through the
 * library's internal view (read-only, relaxed loads: informational).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../ring/atomics.h"
#include "../../ring/layout.h"
#include "../consumer_internal.h"
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
		    "                       [--format json|table] [--iterations N]\n"
		    "       snapbridge stat --nats URL [--stream NAME] [--host H] [--watch] ...\n"
		    "\n"
		    "Show a region: header (ABI, layout hash, size), config, the writer's\n"
		    "counters (stores, resident, overwrites, evictions, events, log use), the\n"
		    "coordinator's liveness and the attached consumers with their lag.\n"
		    "\n"
		    "options:\n"
		    "  --socket PATH      connect to a coordinator\n"
		    "  --file IMAGE       read an image made by 'snapbridge save'\n"
		    "  --pid PID          attach to a coordinator by pid (needs ptrace access)\n"
		    "  --nats URL         a JetStream stream 'snapbridge export' writes: messages\n"
		    "                     and accounting per host, and each exporter's lag;\n"
		    "                     with --stream NAME, --host H, --subject-prefix P\n"
		    "  --watch            redraw once a second, like top, until SIGINT or the\n"
		    "                     coordinator closes\n"
		    "  --iterations N     with --watch, stop after N redraws\n"
		    "  --format FMT       table (default) or json (one object per line)\n"
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
		{ "socket", required_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },
		{ "pid", required_argument, NULL, 'P' },
		{ "watch", no_argument, NULL, 'w' },
		{ "format", required_argument, NULL, 'o' },
		{ "iterations", required_argument, NULL, 'n' },
		SB_NATS_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
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
				    cmd, "--format must be json or table, got '%s'", optarg);
			break;
		case 'h':
			exit(sb_tool_help_done(cmd, usage(stdout, 0)));
		default:
			if (!sb_tool_source_option(&o->src, c, optarg))
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

#define HOT(c, field) ((json_int_t)sb_load_relaxed(&(c)->hot->field))

static json_t *consumers_json(struct sb_consumer *c)
{
	struct sb_consumer_info info[64];
	size_t n = 0;

	if (sb_consumer_peers(c, info, 64, &n) != 0)
		return json_null(); /* an image: nobody is attached to it */
	json_t *a = json_array();
	for (size_t i = 0; a && i < n && i < 64; i++) {
		const struct sb_consumer_info *p = &info[i];

		if (p->pid == getpid())
			continue; /* this stat itself */
		json_array_append_new(
		    a, json_pack("{s:i,s:i,s:I,s:o,s:b,s:b,s:I}", "slot", (int)p->slot, "pid",
				 (int)p->pid, "cursor", (json_int_t)p->cursor, "lag",
				 p->lag_valid ? json_integer((json_int_t)p->lag) : json_null(),
				 "waiting", (int)p->waiting, "polling", (int)p->polling,
				 "heartbeat_age_ms", (json_int_t)(p->heartbeat_age_ns / 1000000)));
	}
	return a;
}

static json_t *stat_json(struct sb_consumer *c)
{
	const struct sb_header *h = &c->hdr;
	char hash[20], abi[16];
	enum sb_coord_state cs = SB_COORD_ALIVE;
	uint64_t now = sb_tool_mono_ns();
	uint64_t beat = sb_load_relaxed(&((const struct sb_header *)c->base)->heartbeat_ns);
	uint64_t head = sb_load_acquire(&c->hot->log_head),
		 tail = sb_load_acquire(&c->hot->log_tail);

	sb_consumer_coordinator(c, &cs);
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)h->layout_hash);
	snprintf(abi, sizeof(abi), "%u.%u", h->abi_major, h->abi_minor);
	uint8_t id[SB_REGION_ID_BYTES];
	sb_consumer_region_id(c, id);
	json_t *header =
	    json_pack("{s:s,s:s,s:s,s:I,s:i,s:o}", "magic", SB_MAGIC, "abi", abi, "layout_hash",
		      hash, "region_bytes", (json_int_t)h->region_size, "coordinator_pid",
		      (int)h->coord_pid, "region_id", sb_tool_region_json(id));
	json_t *config =
	    json_pack("{s:i,s:i,s:i,s:I,s:I}", "max_snapshots", (int)h->max_snapshots, "max_events",
		      (int)h->max_events, "max_watch", (int)h->max_watch, "log_bytes",
		      (json_int_t)h->log_bytes, "aux_bytes", (json_int_t)h->aux_bytes);
	json_t *counters =
	    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "stores", HOT(c, store_seq),
		      "resident", HOT(c, resident), "overwrites", HOT(c, overwrites), "evicted_cap",
		      HOT(c, evicted_cap), "evicted_bytes", HOT(c, evicted_bytes), "drained",
		      HOT(c, drained), "capture_unavailable", HOT(c, capture_unavailable), "events",
		      HOT(c, event_seq), "wakes", HOT(c, wakes), "log_used_bytes",
		      (json_int_t)(head - tail <= h->log_bytes ? head - tail : h->log_bytes));
	json_t *coord = json_pack("{s:s,s:o}", "state", sb_coord_state_name(cs), "heartbeat_age_ms",
				  beat && now >= beat && c->mapped
				      ? json_integer((json_int_t)((now - beat) / 1000000))
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
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "header", header, "config", config,
			 "counters", counters, "aux", aux, "coordinator", coord, "consumers",
			 consumers_json(c));
}

static json_int_t geti(json_t *o, const char *a, const char *b)
{
	return json_integer_value(json_object_get(json_object_get(o, a), b));
}

static void print_table(FILE *out, const char *what, json_t *j)
{
	json_t *h = json_object_get(j, "header"), *co = json_object_get(j, "coordinator");
	json_t *age = json_object_get(co, "heartbeat_age_ms");

	fprintf(out, "region       %s\n", what);
	fprintf(out, "  id         %s\n", json_string_value(json_object_get(h, "region_id")));
	fprintf(out, "  abi        %s  layout %s  %lld bytes\n",
		json_string_value(json_object_get(h, "abi")),
		json_string_value(json_object_get(h, "layout_hash")),
		(long long)geti(j, "header", "region_bytes"));
	fprintf(out, "coordinator  pid %lld  %s", (long long)geti(j, "header", "coordinator_pid"),
		json_string_value(json_object_get(co, "state")));
	if (json_is_integer(age))
		fprintf(out, "  (heartbeat %lld ms ago)", (long long)json_integer_value(age));
	fprintf(out, "\nconfig       max_snapshots %lld  max_events %lld  log %lld bytes\n",
		(long long)geti(j, "config", "max_snapshots"),
		(long long)geti(j, "config", "max_events"),
		(long long)geti(j, "config", "log_bytes"));
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
	fprintf(out, "log used     %12lld of %lld bytes   wakes %lld\n",
		(long long)geti(j, "counters", "log_used_bytes"),
		(long long)geti(j, "config", "log_bytes"), (long long)geti(j, "counters", "wakes"));

	json_t *cons = json_object_get(j, "consumers");
	if (!json_is_array(cons)) {
		fprintf(out, "consumers    (none: an image has no control page)\n");
		return;
	}
	fprintf(out, "consumers    %zu attached\n", json_array_size(cons));
	if (!json_array_size(cons))
		return;
	fprintf(out, "  %4s %8s %12s %8s %-8s %10s\n", "SLOT", "PID", "CURSOR", "LAG", "STATE",
		"BEAT(ms)");
	size_t i;
	json_t *p;
	json_array_foreach(cons, i, p)
	{
		json_t *lag = json_object_get(p, "lag");
		char lagbuf[24];
		const char *state = json_is_true(json_object_get(p, "polling"))	  ? "polling"
				    : json_is_true(json_object_get(p, "waiting")) ? "waiting"
										  : "running";

		if (json_is_integer(lag))
			snprintf(lagbuf, sizeof(lagbuf), "%lld",
				 (long long)json_integer_value(lag));
		else
			snprintf(lagbuf, sizeof(lagbuf), "?");
		fprintf(out, "  %4lld %8lld %12lld %8s %-8s %10lld\n",
			(long long)json_integer_value(json_object_get(p, "slot")),
			(long long)json_integer_value(json_object_get(p, "pid")),
			(long long)json_integer_value(json_object_get(p, "cursor")), lagbuf, state,
			(long long)json_integer_value(json_object_get(p, "heartbeat_age_ms")));
	}
}

int sb_cmd_stat(int argc, char **argv)
{
	struct stat_opts o = { 0 };
	int ret = parse(argc, argv, &o);
	struct sb_consumer *c = NULL;
	char what[600];

	if (ret)
		return ret;
	if (o.src.nats) /* the stream an export wrote (nats_source.c) */
		return sb_nats_stat(cmd, &o.src, o.table, o.watch, o.iterations);
	ret = sb_tool_attach(cmd, &o.src, SB_CONSUMER_START_AT_END, &c);
	if (ret)
		return ret;
	snprintf(what, sizeof(what), "%s %s",
		 o.src.socket ? "socket"
		 : o.src.file ? "image"
			      : "pid",
		 o.src.socket ? o.src.socket
		 : o.src.file ? o.src.file
			      : o.src.pid);
	sb_tool_catch_stop_signals();
	bool tty = isatty(STDOUT_FILENO);
	for (uint64_t n = 1;; n++) {
		json_t *j = stat_json(c);

		if (!j) {
			ret = sb_tool_fail(cmd, "out of memory");
			break;
		}
		if (o.watch && o.table && tty)
			fputs("\033[H\033[2J", stdout); /* home, clear: redraw in place */
		else if (o.watch && o.table && n > 1)
			fputc('\n', stdout);
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
		if (!o.watch || cs != SB_COORD_ALIVE || (o.iterations && n >= o.iterations))
			break;
		/* Sleep a second in slices, so SIGINT is noticed quickly. */
		for (int i = 0; i < 10 && !sb_tool_stop; i++) {
			struct timespec ts = { 0, 100000000 };

			nanosleep(&ts, NULL);
		}
		if (sb_tool_stop)
			break;
	}
	sb_consumer_close(c);
	return ret;
}
