/*
 * snapbridge export - follow a coordinator (or read an image) and publish
 * everything it drains to a NATS JetStream stream, exactly once and in
 * store order, resuming after a crash where the stream says it stopped
 * (consumers/export/, docs/ARCHITECTURE.md "Export to NATS JetStream").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "tool.h"

static const char *const cmd = "export";

struct export_opts {
	struct sb_source src;
	uint64_t replicas, window, window_bytes, summary_ms, settle_ms, ack_wait_ms, finish_ms;
	bool quiet, settle_given;
};

static int usage(FILE *to, int code)
{
	fprintf(
	    to,
	    "usage: snapbridge export (--socket PATH | --pid PID | --file IMAGE) [--nats URL]\n"
	    "                         [--stream NAME] [--host NAME] [--wait[=MS]] [options]\n"
	    "\n"
	    "Publish every delivered snapshot, event, kernel-op reply and cgroup.procs\n"
	    "snapshot of a bridge to a NATS JetStream stream, exactly once and in store\n"
	    "order, with the five-way accounting every few seconds. Restarted after a\n"
	    "crash, it continues after the last message the stream holds for this host\n"
	    "and region. It never slows the coordinator: when NATS is slow or down it\n"
	    "falls behind, is lapped, and counts the stores it lost as lapped. It ends\n"
	    "when the coordinator closes or dies (an image: once it is all published),\n"
	    "or on SIGINT/SIGTERM, after the stream confirmed what was sent, and prints\n"
	    "the accounting as one JSON line.\n"
	    "\n"
	    "options:\n"
	    "  --socket PATH        connect to a coordinator\n"
	    "  --expect-uid UID     with --socket: the uid its server must run as (default:\n"
	    "                       yours, or root)\n"
	    "  --pid PID            attach to a coordinator by pid (needs ptrace access)\n"
	    "  --file IMAGE         publish an image made by 'snapbridge save'\n"
	    "  --wait[=MS]          wait for the coordinator to appear (at most MS ms;\n"
	    "                       without MS until stopped)\n"
	    "  --nats URL           NATS server(s), comma-separated (default %s)\n"
	    "  --stream NAME        the stream; created when missing, with subjects\n"
	    "                       PREFIX.> (default snapbridge)\n"
	    "  --subject-prefix P   subjects start with P (default %s)\n"
	    "  --host NAME          this coordinator's name in subjects (default: the\n"
	    "                       host name); one exporter per host name and stream\n"
	    "  --replicas N         replicas of a stream created here (default 1)\n"
	    "  --window N           publishes waiting for their ack, at most (default %d)\n"
	    "  --window-bytes SIZE  ... and their bytes, e.g. 64M (default %uM)\n"
	    "  --summary-ms MS      accounting to PREFIX.HOST.summary this often (default %d)\n"
	    "  --settle-ms MS       wait before reading where to resume, for a killed\n"
	    "                       exporter's last publishes (default %d)\n"
	    "  --ack-wait-ms MS     a publish not acknowledged in MS is resent (default %d)\n"
	    "  --finish-ms MS       at the end, wait this long for the acks (default 30000)\n"
	    "  --quiet              no progress lines on stderr\n"
	    "  --help               show this help\n"
	    "  --version            print the version and the region ABI\n"
	    "\n"
	    "Subjects: PREFIX.HOST.snap.TAG, PREFIX.HOST.event, .kernel_op, .cgroup_procs,\n"
	    ".summary and .resume; HOST and TAG escaped (docs/CLI.md). Exit status: 0,\n"
	    "1 on a failure (NATS unreachable, a stream with other subjects, a message\n"
	    "there that is not ours), 2 on a usage error.\n"
	    "\n"
	    "examples:\n"
	    "  snapbridge export --socket /tmp/sb.sock --nats nats://10.0.0.5:4222 --stream caps\n"
	    "  snapbridge export --file /tmp/sb.img --stream caps --host vm7\n",
	    SBX_DEFAULT_URL, SBX_DEFAULT_PREFIX, SBX_DEFAULT_WINDOW, SBX_DEFAULT_WINDOW_BYTES >> 20,
	    SBX_DEFAULT_SUMMARY_MS, SBX_DEFAULT_SETTLE_MS, SBX_DEFAULT_ACK_WAIT_MS);
	return code;
}

static int parse(int argc, char **argv, struct export_opts *o)
{
	static const struct option longopts[] = {
		SB_TOOL_SOURCE_LONGOPTS,
		SB_NATS_LONGOPTS,
		{ "replicas", required_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'w' },
		{ "window-bytes", required_argument, NULL, 'b' },
		{ "summary-ms", required_argument, NULL, 'S' },
		{ "settle-ms", required_argument, NULL, 'T' },
		{ "ack-wait-ms", required_argument, NULL, 'A' },
		{ "finish-ms", required_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		SB_TOOL_COMMON_LONGOPTS,
		{ 0 },
	};
	int c, err = 0;

	o->replicas = 1;
	o->finish_ms = 30000;
	while (!err && (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			err = sb_tool_parse_u64(cmd, "replicas", optarg, 1, 5, &o->replicas);
			break;
		case 'w':
			err = sb_tool_parse_u64(cmd, "window", optarg, 1, 65536, &o->window);
			break;
		case 'b':
			err = sb_tool_parse_size(cmd, "window-bytes", optarg, 65536, 1ull << 32,
						 &o->window_bytes);
			break;
		case 'S':
			err = sb_tool_parse_u64(cmd, "summary-ms", optarg, 10, 3600000,
						&o->summary_ms);
			break;
		case 'T':
			err = sb_tool_parse_u64(cmd, "settle-ms", optarg, 0, 600000, &o->settle_ms);
			o->settle_given = true;
			break;
		case 'A':
			err = sb_tool_parse_u64(cmd, "ack-wait-ms", optarg, 10, 600000,
						&o->ack_wait_ms);
			break;
		case 'F':
			err =
			    sb_tool_parse_u64(cmd, "finish-ms", optarg, 0, 3600000, &o->finish_ms);
			break;
		case 'q':
			o->quiet = true;
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
	/* The region source as every command checks it; the NATS options are the destination. */
	struct sb_source region = o->src;
	region.nats = region.stream = region.host = region.subject_prefix = NULL;
	err = sb_tool_check_source(cmd, &region, true, true);
	if (err)
		return err;
	struct sbx_target t = { o->src.nats, o->src.stream ? o->src.stream : "snapbridge",
				o->src.subject_prefix };
	if (sbx_target_check(&t) || (o->src.host && sbx_host_check(o->src.host)))
		return sb_tool_usage_error(cmd, "%s", sbx_last_error());
	if (o->src.nats && !*o->src.nats)
		return sb_tool_usage_error(cmd, "--nats needs a URL");
	return 0;
}

static void log_line(void *user, const char *line)
{
	const struct export_opts *o = user;

	if (!o->quiet)
		fprintf(stderr, "snapbridge export: %s\n", line);
}

static json_t *summary_json(struct sbx_export *x, const struct export_opts *o)
{
	struct sbx_summary s;
	struct sbx_cursors from;
	uint8_t region[SB_REGION_ID_BYTES];
	bool resumed;

	sbx_export_summary(x, &s);
	sbx_export_region(x, region);
	sbx_export_resumed(x, &from, &resumed);
	const struct sb_drain_counts *d = &s.counts.rec;
	bool adds_up = d->delivered + d->superseded + d->evicted + d->lapped + d->torn == d->stores;
	json_t *j = json_pack(
	    "{s:s,s:s,s:o,s:s,s:b,s:{s:I,s:I,s:I},s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:I,"
	    "s:{s:I,s:I,s:I},s:I,s:I,s:I,s:I,s:I,s:I,s:s}",
	    "type", "summary", "host", sbx_export_host(x), "region_id", sb_tool_region_json(region),
	    "stream", o->src.stream ? o->src.stream : "snapbridge", "resumed", (int)resumed,
	    "resumed_after", "store_seq", (json_int_t)from.store_seq, "event_seq",
	    (json_int_t)from.event_seq, "aux_seq", (json_int_t)from.aux_seq, "stores",
	    (json_int_t)d->stores, "exported", (json_int_t)d->delivered, "superseded",
	    (json_int_t)d->superseded, "evicted", (json_int_t)d->evicted, "lapped",
	    (json_int_t)d->lapped, "torn", (json_int_t)d->torn, "adds_up", (int)adds_up, "events",
	    (json_int_t)s.counts.events, "events_truncated", (json_int_t)s.counts.events_truncated,
	    "aux", "records", (json_int_t)s.counts.aux.records, "delivered",
	    (json_int_t)s.counts.aux.delivered, "lapped", (json_int_t)s.counts.aux.lapped,
	    "published", (json_int_t)s.published, "resent", (json_int_t)s.resent, "duplicates",
	    (json_int_t)s.duplicates, "late", (json_int_t)s.late, "out_of_order",
	    (json_int_t)s.out_of_order, "reconnects", (json_int_t)s.reconnects, "coordinator",
	    sb_coord_state_name(s.coordinator));
	return j;
}

int sb_cmd_export(int argc, char **argv)
{
	struct export_opts o = { 0 };
	struct sbx_export *x = NULL;
	struct sb_consumer *c = NULL;
	int ret = parse(argc, argv, &o);

	if (ret)
		return ret;
	struct sbx_export_config cfg = {
		.target = { o.src.nats, o.src.stream ? o.src.stream : "snapbridge",
			    o.src.subject_prefix },
		.host = o.src.host,
		.replicas = (uint32_t)o.replicas,
		.window = (uint32_t)o.window,
		.window_bytes = o.window_bytes,
		.summary_ms = (uint32_t)o.summary_ms,
		.settle_ms = o.settle_given ? (uint32_t)o.settle_ms : SBX_DEFAULT_SETTLE_MS,
		.ack_wait_ms = (uint32_t)o.ack_wait_ms,
		.once = o.src.file != NULL,
		.log = log_line,
		.log_user = &o,
	};

	sb_tool_catch_stop_signals();
	ret = sb_tool_attach(cmd, &o.src, 0, &c);
	if (ret)
		return ret;
	int err = sbx_export_open(&cfg, &x);
	if (err) {
		sb_consumer_close(c);
		return sb_tool_fail(cmd, "%s", sbx_last_error());
	}
	err = sbx_export_attach(x, c);
	bool attached = !err, done = false;
	while (!err && !done && !sb_tool_stop)
		err = sbx_export_pump(x, 100, &done);
	if (!err)
		err = sbx_export_finish(x, (int)o.finish_ms);
	if (err)
		ret = sb_tool_fail(cmd, "%s", sbx_last_error());
	/* Not attached: no accounting at all, rather than one of zeros that adds up. */
	int werr = attached ? sb_tool_print_json_line(stdout, summary_json(x, &o)) : 0;
	sbx_export_close(x);
	sb_consumer_close(c);
	nats_Close();
	int out = sb_tool_output_done(cmd, stdout, werr);
	return ret ? ret : out;
}
