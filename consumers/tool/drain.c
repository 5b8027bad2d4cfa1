/*
 * snapbridge drain / snapbridge events - read a bridge in FIFO order and
 * print what was delivered, as JSON lines or as a table, then a summary
 * with the exact accounting.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

enum format { FMT_JSONL, FMT_TABLE };

/* The keys of a snapshot line, in order; --fields picks among them. */
static const char *const snapshot_fields[] = {
	"store_seq", "tag",	   "schema", "placeholder", "elapsed_ms", "boundary_offset_ms",
	"step_index", "stats", "report", "verified",
};
#define NFIELDS (sizeof(snapshot_fields) / sizeof(snapshot_fields[0]))
#define FIELD_REPORT 8u

struct drain_opts {
	const char *cmd;
	bool events_only; /* `snapbridge events` */
	struct sb_source src;
	bool follow, all_versions, events, aux, verify, quiet, from_end;
	enum format format;
	bool format_given; /* --format; otherwise a table on a terminal, jsonl elsewhere */
	uint32_t fields;   /* snapshot keys to print, a bit per snapshot_fields[] */
	int64_t timeout_ms;   /* -1: none */
	uint64_t interval_ms; /* with --follow: drain on this period instead of on wake-ups */
};

/* Wake-latency samples of --verify, in microseconds. */
#define MAX_SAMPLES 100000

struct drain_state {
	const struct drain_opts *o;
	FILE *out;
	struct sb_table table;
	int write_err;
	uint64_t events, events_truncated;
	uint64_t verified, bad;
	/* The latency of a wake: the first record delivered after it, if stored while we slept. */
	bool sample_pending;
	uint64_t wait_start_ns, wake_ns;
	uint32_t *samples;
	size_t nsamples;
};

static int usage(const struct drain_opts *o, FILE *to, int code)
{
	if (o->events_only) {
		fprintf(
		    to,
		    "usage: snapbridge events (--socket PATH | --file IMAGE | --pid PID) "
		    "[--follow] [--format table|jsonl]\n"
		    "                         [--timeout-ms MS] [--wait[=MS]]\n"
		    "       snapbridge events --nats URL [--stream NAME] [--host H] [options]\n"
		    "\n"
		    "Print the bridge's diagnostic events (Overwrite, Eviction,\n"
		    "CaptureUnavailable, ...) in order; events the ring overwrote before\n"
		    "they were read show up as one EventLogTruncated with their count.\n"
		    "\n"
		    "options:\n"
		    "  --socket PATH      connect to a coordinator\n"
		    SB_TOOL_EXPECT_UID_HELP
		    "  --file IMAGE       read an image made by 'snapbridge save'\n"
		    "  --pid PID          attach to a coordinator by pid (needs ptrace access)\n"
		    "  --wait[=MS]        wait for the coordinator to appear (at most MS ms;\n"
		    "                     without MS until stopped)\n");
		fputs(SB_NATS_HELP("the events 'snapbridge export' published to a JetStream\n"
				   "                     stream, from its start"),
		      to);
		fprintf(
		    to,
		    "  --follow           keep waiting for events until the coordinator closes\n"
		    "                     (exit 0) or dies (exit 3)\n"
		    "  --format table|jsonl  default: a table on a terminal, jsonl otherwise\n"
		    "  --timeout-ms MS    with --follow, stop after MS ms with nothing new\n"
		    "  --help             show this help\n"
		    "  --version          print the version and the region ABI\n"
		    "\n"
		    "examples:\n"
		    "  snapbridge events --socket /tmp/sb.sock --format table\n"
		    "  snapbridge events --socket /tmp/sb.sock --follow | jq -c 'select(.kind == "
		    "\"Eviction\")'\n");
		return code;
	}
	fprintf(to,
		"usage: snapbridge drain (--socket PATH | --file IMAGE | --pid PID) [options]\n"
		"       snapbridge drain --nats URL [--stream NAME] [--host H] [options]\n"
		"\n"
		"Drain the bridge in FIFO order. Every store gets one outcome: delivered,\n"
		"superseded (a newer store of its tag replaced it), evicted, lapped (the\n"
		"writer reused its bytes first) or torn (the writer died writing it); the\n"
		"summary's counts always add up to the stores.\n"
		"\n"
		"options:\n"
		"  --socket PATH      connect to a coordinator\n"
		SB_TOOL_EXPECT_UID_HELP
		"  --file IMAGE       read an image made by 'snapbridge save'\n"
		"  --pid PID          attach to a coordinator by pid (needs ptrace access)\n"
		"  --wait[=MS]        wait for the coordinator to appear (at most MS ms;\n"
		"                     without MS until stopped): start before the coordinator\n");
	fputs(SB_NATS_HELP("read what 'snapbridge export' published to a JetStream\n"
			   "                     stream, from its start"),
	      to);
	fprintf(to,
		"  --follow           keep waiting (event-driven) until the coordinator closes\n"
		"                     (exit 0) or dies (exit 3), then print the summary;\n"
		"                     SIGINT stops it too (exit 0)\n"
		"  --all-versions     deliver every version still in the log, not only the\n"
		"                     resident ones\n"
		"  --from-end         skip what is already stored; start with the next store\n"
		"  --events           print events too (\"type\":\"event\" lines)\n"
		"  --aux              print the aux log too: \"type\":\"kernel_op\" lines (the\n"
		"                     reply) and \"type\":\"cgroup_procs\" lines (cgroup, pids);\n"
		"                     the summary gains aux {records, delivered, lapped}\n"
		"  --verify           check every report made by 'snapbridge coordinator'\n"
		"                     (pattern, checksum, seq); exit 1 if any fails; the\n"
		"                     summary gains verified, bad and wake_latency_us\n"
		"  --quiet            print only the summary\n"
		"  --format table|jsonl  a table (columns sized to their content) or one JSON\n"
		"                     object per line; default: a table on a terminal, jsonl\n"
		"                     when piped\n"
		"  --no-report        jsonl without the report body (implies jsonl)\n"
		"  --fields LIST      jsonl snapshot lines with only these keys, comma-separated\n"
		"                     (implies jsonl): store_seq, tag, schema, placeholder,\n"
		"                     elapsed_ms, boundary_offset_ms, step_index, stats,\n"
		"                     report, verified\n"
		"  --timeout-ms MS    with --follow, stop after MS ms with nothing new\n"
		"  --interval-ms MS   with --follow, drain every MS ms instead of waking on\n"
		"                     each store: a slow consumer, to see what it misses\n"
		"  --help             show this help\n"
		"  --version          print the version and the region ABI\n"
		"\n"
		"JSON lines have a \"type\": snapshot, event, kernel_op, cgroup_procs and\n"
		"summary (docs/CLI.md has each schema). Exit status: 0, 1 on a failure (or\n"
		"a report that fails --verify), 2 on a usage error, 3 when a --follow's\n"
		"coordinator died without closing.\n"
		"\n"
		"examples:\n"
		"  snapbridge drain --socket /tmp/sb.sock --follow --events --aux\n"
		"  snapbridge drain --file /tmp/sb.img\n"
		"  snapbridge drain --socket /tmp/sb.sock --fields store_seq,tag | jq -c .\n"
		"  snapbridge drain --socket /tmp/sb.sock --wait=5000 --follow --verify --quiet\n"
		"  snapbridge drain --nats nats://10.0.0.5:4222 --stream caps --host vm7\n");
	return code;
}

/* --fields LIST: names from snapshot_fields[], comma-separated. */
static int parse_fields(const char *cmd, const char *list, uint32_t *mask)
{
	const char *p = list;

	*mask = 0;
	for (;;) {
		size_t n = strcspn(p, ","), i;

		for (i = 0; i < NFIELDS; i++)
			if (strlen(snapshot_fields[i]) == n && !strncmp(p, snapshot_fields[i], n))
				break;
		if (i == NFIELDS)
			return sb_tool_usage_error(
			    cmd,
			    "--fields: unknown field '%.*s' (fields: store_seq, tag, schema, "
			    "placeholder, elapsed_ms, boundary_offset_ms, step_index, stats, "
			    "report, verified)",
			    (int)n, p);
		*mask |= 1u << i;
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

static int parse(int argc, char **argv, struct drain_opts *o)
{
	static const struct option longopts[] = {
		SB_TOOL_SOURCE_LONGOPTS,
		{ "follow", no_argument, NULL, 'F' },
		{ "all-versions", no_argument, NULL, 'a' },
		{ "from-end", no_argument, NULL, 'e' },
		{ "events", no_argument, NULL, 'E' },
		{ "aux", no_argument, NULL, 'x' },
		{ "verify", no_argument, NULL, 'V' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "format", required_argument, NULL, 'o' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "no-report", no_argument, NULL, 'R' },
		{ "fields", required_argument, NULL, 'L' },
		SB_NATS_LONGOPTS,
		SB_TOOL_COMMON_LONGOPTS,
		{ 0 },
	};
	const char *cmd = o->cmd;
	uint64_t v;
	bool no_report = false;
	int c, err = 0;

	o->timeout_ms = -1;
	while (!err && (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		bool drain_only = c > 0 && c < 128 && strchr("aeExVqiRL", c) != NULL;

		if (o->events_only && drain_only)
			return sb_tool_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		switch (c) {
		case 'F':
			o->follow = true;
			break;
		case 'a':
			o->all_versions = true;
			break;
		case 'e':
			o->from_end = true;
			break;
		case 'E':
			o->events = true;
			break;
		case 'x':
			o->aux = true;
			break;
		case 'V':
			o->verify = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'o':
			if (!strcmp(optarg, "jsonl"))
				o->format = FMT_JSONL;
			else if (!strcmp(optarg, "table"))
				o->format = FMT_TABLE;
			else
				return sb_tool_usage_error(
				    cmd, "--format must be table or jsonl, got '%s'", optarg);
			o->format_given = true;
			break;
		case 'R':
			no_report = true;
			break;
		case 'L':
			err = parse_fields(cmd, optarg, &o->fields);
			break;
		case 't':
			err = sb_tool_parse_u64(cmd, "timeout-ms", optarg, 0, 86400000, &v);
			o->timeout_ms = (int64_t)v;
			break;
		case 'i':
			err = sb_tool_parse_u64(cmd, "interval-ms", optarg, 1, 3600000,
						&o->interval_ms);
			break;
		case 'h':
			exit(sb_tool_help_done(o->cmd, usage(o, stdout, 0)));
		case SB_OPT_VERSION:
			sb_tool_common_option(cmd, c, NULL);
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
	err = sb_tool_check_any_source(cmd, &o->src, true, true);
	if (err)
		return err;
	if (o->src.nats && (o->interval_ms || o->from_end || o->all_versions))
		return sb_tool_usage_error(cmd,
					   "--interval-ms, --from-end and --all-versions read a "
					   "region, not --nats");
	if (o->follow && o->src.file)
		return sb_tool_usage_error(cmd, "--follow needs a live coordinator (--socket or "
						"--pid), not an image");
	if (o->timeout_ms >= 0 && !o->follow)
		return sb_tool_usage_error(cmd, "--timeout-ms only applies with --follow");
	if (o->interval_ms && !o->follow)
		return sb_tool_usage_error(cmd, "--interval-ms only applies with --follow");
	if (o->interval_ms && o->timeout_ms >= 0)
		return sb_tool_usage_error(cmd, "give --interval-ms or --timeout-ms, not both");
	if (o->fields || no_report) {
		if (o->format_given && o->format == FMT_TABLE)
			return sb_tool_usage_error(cmd, "--%s is for jsonl, not --format table",
						   o->fields ? "fields" : "no-report");
		o->format = FMT_JSONL;
		o->format_given = true;
	}
	if (!o->fields)
		o->fields = (1u << NFIELDS) - 1;
	if (no_report)
		o->fields &= ~(1u << FIELD_REPORT);
	if (!o->format_given)
		o->format = isatty(STDOUT_FILENO) ? FMT_TABLE : FMT_JSONL;
	return 0;
}

static void emit(struct drain_state *s, json_t *line)
{
	if (!s->write_err)
		s->write_err = sb_tool_print_json_line(s->out, line);
	else
		json_decref(line);
}

/*
 * After each drain round: what was printed reaches the reader now, not
 * when a 4 KiB buffer fills (a follower piped into jq or head).
 */
static void round_done(struct drain_state *s)
{
	if (!s->write_err && s->o->format == FMT_TABLE)
		s->write_err = sb_table_flush(&s->table);
	if (!s->write_err && fflush(s->out) != 0)
		s->write_err = errno ? -errno : -EIO;
}

static json_t *opt_u64(bool has, uint64_t v)
{
	return has ? json_integer((json_int_t)v) : json_null();
}

/* The drain table's columns; events and aux records fill the first ones, then free text. */
static const char *const drain_columns[] = { "TYPE",	 "SEQ",	 "TAG",	 "SCHEMA", "PH",
					     "ELAPSED", "BOUNDARY", "STEP", "STATS",  "BYTES" };
static const char *const event_columns[] = { "SEQ", "KIND", "WHAT" };

static void table_init(struct drain_state *s)
{
	if (s->o->events_only)
		sb_table_init(&s->table, s->out, 3, event_columns, "rll");
	else
		sb_table_init(&s->table, s->out, 10, drain_columns, "lrlllrrrlr");
}

/* A table row; a failed allocation stops the drain like a failed write. */
static void table_row(struct drain_state *s, size_t n, const char *const cells[], const char *rest)
{
	if (!s->write_err && sb_table_row(&s->table, n, cells, rest) != 0)
		s->write_err = -ENOMEM;
}

static void table_u64(char *buf, size_t n, bool has, uint64_t v)
{
	if (has)
		snprintf(buf, n, "%llu", (unsigned long long)v);
	else
		snprintf(buf, n, "-");
}

static void print_entry_table(struct drain_state *s, const struct sb_entry *e)
{
	char seq[24], el[24], bo[24], st[24], stats[40], bytes[24], tag[4 * SB_TAG_MAX + 1],
	    schema[4 * SB_SCHEMA_MAX + 1];

	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)e->store_seq);
	table_u64(el, sizeof(el), e->meta.has_elapsed, e->meta.elapsed_ms);
	table_u64(bo, sizeof(bo), e->meta.has_boundary, e->meta.boundary_offset_ms);
	table_u64(st, sizeof(st), e->meta.has_step, e->meta.step_index);
	if (e->stats.kind == SB_STATS_OK)
		snprintf(stats, sizeof(stats), "ok (%zu B)", e->stats.msgpack_len);
	else if (e->stats.kind == SB_STATS_MISSING)
		snprintf(stats, sizeof(stats), "missing %s",
			 sb_missing_kind_name(e->stats.missing.kind));
	else
		snprintf(stats, sizeof(stats), "-");
	snprintf(bytes, sizeof(bytes), "%zu", e->report_len);
	const char *cells[] = { "snap",
				seq,
				sb_tool_safe(e->tag, tag, sizeof(tag)),
				e->schema[0] ? sb_tool_safe(e->schema, schema, sizeof(schema)) : "-",
				e->placeholder ? "yes" : "no",
				el,
				bo,
				st,
				stats,
				bytes };
	table_row(s, 10, cells, NULL);
}

static json_t *entry_json(const struct sb_entry *e, uint32_t fields)
{
	char err[128];
	json_t *report = NULL;

	if (!(fields & 1u << FIELD_REPORT))
		report = json_null(); /* dropped below: no need to decode it */
	else if (sb_mp_to_json(e->report, e->report_len, &report, err, sizeof(err)) != 0)
		report = json_pack("{s:s}", "undecodable", err);
	return json_pack(
	    "{s:s,s:I,s:o,s:o,s:b,s:o,s:o,s:o,s:o,s:o}", "type", "snapshot", "store_seq",
	    (json_int_t)e->store_seq, "tag", sb_tool_text_json(e->tag, strlen(e->tag)), "schema",
	    sb_tool_text_json(e->schema, strlen(e->schema)), "placeholder", (int)e->placeholder,
	    "elapsed_ms", opt_u64(e->meta.has_elapsed, e->meta.elapsed_ms), "boundary_offset_ms",
	    opt_u64(e->meta.has_boundary, e->meta.boundary_offset_ms), "step_index",
	    opt_u64(e->meta.has_step, e->meta.step_index), "stats", sb_tool_stats_json(&e->stats),
	    "report", report);
}

static int on_entry(void *user, const struct sb_entry *e)
{
	struct drain_state *s = user;
	const struct drain_opts *o = s->o;
	bool ok = true;

	if (o->verify) {
		struct sb_synth_info info;
		char why[160];

		if (sb_synth_check(e->report, e->report_len, &info, why, sizeof(why)) != 0) {
			ok = false;
		} else if (info.seq != e->store_seq) {
			ok = false;
			snprintf(why, sizeof(why), "report seq %llu delivered as store_seq %llu",
				 (unsigned long long)info.seq, (unsigned long long)e->store_seq);
		}
		if (ok) {
			s->verified++;
			if (s->sample_pending && info.stored_ns >= s->wait_start_ns &&
			    s->wake_ns >= info.stored_ns && s->nsamples < MAX_SAMPLES)
				s->samples[s->nsamples++] =
				    (uint32_t)((s->wake_ns - info.stored_ns) / 1000);
		} else {
			char tag[4 * SB_TAG_MAX + 1];

			s->bad++;
			fprintf(stderr,
				"snapbridge %s: store_seq %llu (tag %s) fails --verify: %s\n",
				o->cmd, (unsigned long long)e->store_seq,
				sb_tool_safe(e->tag, tag, sizeof(tag)), why);
		}
		s->sample_pending = false;
	}
	if (o->quiet)
		return 0;
	if (o->format == FMT_TABLE) {
		print_entry_table(s, e);
		return s->write_err ? 1 : 0;
	}
	json_t *j = entry_json(e, o->fields);
	if (j && o->verify)
		json_object_set_new(j, "verified", json_boolean(ok));
	for (size_t i = 0; j && i < NFIELDS; i++)
		if (!(o->fields & 1u << i))
			json_object_del(j, snapshot_fields[i]);
	emit(s, j);
	return s->write_err ? 1 : 0;
}

static const char *cause_name(enum sb_evict_cause c)
{
	return c == SB_EVICT_BYTES ? "bytes" : "cap";
}

static json_t *event_json(const struct sb_event *ev)
{
	json_t *j = json_pack("{s:s,s:I,s:s}", "type", "event", "seq", (json_int_t)ev->seq, "kind",
			      sb_event_kind_name(ev->kind));
	json_t *tag = sb_tool_text_json(ev->tag, strlen(ev->tag));
	json_t *detail = sb_tool_text_json(ev->detail, strlen(ev->detail));

	if (!j)
		goto out;
	switch (ev->kind) {
	case SB_EVENT_CAPTURE_UNAVAILABLE:
		json_object_set(j, "tag", tag);
		break;
	case SB_EVENT_OVERWRITE:
		json_object_set(j, "tag", tag);
		json_object_set(j, "prior_schema", detail);
		break;
	case SB_EVENT_EVICTION:
		json_object_set(j, "evicted_tag", tag);
		json_object_set(j, "new_tag", detail);
		json_object_set_new(j, "cap", json_integer((json_int_t)ev->cap));
		json_object_set_new(j, "cause", json_string(cause_name(ev->cause)));
		break;
	case SB_EVENT_DRAIN_ORDERING_INVARIANT_VIOLATION:
		json_object_set(j, "tag", tag);
		json_object_set(j, "drain_variant", detail);
		break;
	case SB_EVENT_CAP_INVARIANT_VIOLATION:
		json_object_set_new(j, "reports_len", json_integer((json_int_t)ev->count));
		json_object_set_new(j, "cap", json_integer((json_int_t)ev->cap));
		break;
	case SB_EVENT_LOG_TRUNCATED:
		json_object_set_new(j, "dropped_count", json_integer((json_int_t)ev->count));
		break;
	}
out:
	json_decref(tag);
	json_decref(detail);
	return j;
}

static void print_event_table(struct drain_state *s, const struct sb_event *ev)
{
	char what[700], t[4 * SB_TAG_MAX + 1], d[4 * SB_TAG_MAX + 1];
	const char *tag = sb_tool_safe(ev->tag, t, sizeof(t));
	const char *detail = sb_tool_safe(ev->detail, d, sizeof(d));

	switch (ev->kind) {
	case SB_EVENT_EVICTION:
		snprintf(what, sizeof(what), "%s evicted for %s (cap %llu, by %s)", tag, detail,
			 (unsigned long long)ev->cap, cause_name(ev->cause));
		break;
	case SB_EVENT_OVERWRITE:
		snprintf(what, sizeof(what), "%s overwritten (prior schema %s)", tag, detail);
		break;
	case SB_EVENT_LOG_TRUNCATED:
		snprintf(what, sizeof(what), "%llu events dropped before they were read",
			 (unsigned long long)ev->count);
		break;
	case SB_EVENT_CAP_INVARIANT_VIOLATION:
		snprintf(what, sizeof(what), "%llu reports resident over a cap of %llu",
			 (unsigned long long)ev->count, (unsigned long long)ev->cap);
		break;
	default:
		snprintf(what, sizeof(what), "%s %s", tag, detail);
		break;
	}
	char seq[24], rest[800];

	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)ev->seq);
	if (s->o->events_only) {
		const char *cells[] = { seq, sb_event_kind_name(ev->kind) };

		table_row(s, 2, cells, what);
		return;
	}
	const char *cells[] = { "event", seq, ev->tag[0] ? tag : "-" };
	snprintf(rest, sizeof(rest), "%s: %s", sb_event_kind_name(ev->kind), what);
	table_row(s, 3, cells, rest);
}

/* Count an event, and print it when asked to. */
static void take_event(void *user, const struct sb_event *ev)
{
	struct drain_state *s = user;
	const struct drain_opts *o = s->o;

	if (ev->kind == SB_EVENT_LOG_TRUNCATED)
		s->events_truncated += ev->count;
	else
		s->events++;
	if (o->quiet || !(o->events || o->events_only) || s->write_err)
		return;
	if (o->format == FMT_TABLE)
		print_event_table(s, ev);
	else
		emit(s, event_json(ev));
}

static int drain_events(struct sb_consumer *c, struct drain_state *s)
{
	struct sb_events evs;
	int err = sb_consumer_drain_events(c, &evs);

	if (err)
		return err;
	for (size_t i = 0; i < evs.count; i++)
		take_event(s, &evs.items[i]);
	sb_events_free(&evs);
	return 0;
}

static void print_aux_table(struct drain_state *s, const struct sb_aux_item *it)
{
	char what[1200], safe[1100], tag[4 * SB_KOP_TAG_MAX + 1];

	if (it->kind == SB_AUX_KERNEL_OP && it->reply) {
		const struct sb_kop_reply *r = it->reply;

		if (!r->success)
			snprintf(what, sizeof(what), "op %llu failed: %s",
				 (unsigned long long)r->id,
				 sb_tool_safe(r->reason, safe, sizeof(safe)));
		else if (r->n_values && r->read_values[0].kind != SB_KOP_BYTES)
			snprintf(what, sizeof(what), "op %llu ok, %zu value%s, first %llu",
				 (unsigned long long)r->id, r->n_values,
				 r->n_values == 1 ? "" : "s",
				 (unsigned long long)r->read_values[0].num);
		else
			snprintf(what, sizeof(what), "op %llu ok, %zu value%s",
				 (unsigned long long)r->id, r->n_values,
				 r->n_values == 1 ? "" : "s");
	} else if (it->kind == SB_AUX_CGROUP_PROCS && it->procs) {
		snprintf(what, sizeof(what), "%s: %zu pid%s",
			 sb_tool_safe(it->procs->cgroup, safe, sizeof(safe)), it->procs->n_pids,
			 it->procs->n_pids == 1 ? "" : "s");
	} else {
		snprintf(what, sizeof(what), "?");
	}
	char seq[24];
	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)it->seq);
	const char *cells[] = { it->kind == SB_AUX_KERNEL_OP ? "kop" : "procs", seq,
				sb_tool_safe(it->tag, tag, sizeof(tag)) };
	table_row(s, 3, cells, what);
}

static json_t *aux_json(const struct sb_aux_item *it)
{
	json_t *tag = sb_tool_text_json(it->tag ? it->tag : "", it->tag ? strlen(it->tag) : 0);

	if (it->kind == SB_AUX_CGROUP_PROCS && it->procs) {
		const struct sb_cgroup_procs *p = it->procs;
		json_t *pids = json_array();

		for (size_t i = 0; pids && i < p->n_pids; i++)
			json_array_append_new(pids, json_integer(p->pids[i]));
		return json_pack("{s:s,s:I,s:o,s:o,s:o}", "type", "cgroup_procs", "seq",
				 (json_int_t)it->seq, "tag", tag, "cgroup",
				 sb_tool_text_json(p->cgroup, strlen(p->cgroup)), "pids", pids);
	}
	char err[128];
	json_t *reply = NULL;
	if (sb_mp_to_json(it->msgpack, it->msgpack_len, &reply, err, sizeof(err)) != 0)
		reply = json_pack("{s:s}", "undecodable", err);
	return json_pack("{s:s,s:I,s:o,s:o}", "type", "kernel_op", "seq", (json_int_t)it->seq,
			 "tag", tag, "reply", reply);
}

static int on_aux(void *user, const struct sb_aux_item *it)
{
	struct drain_state *s = user;

	if (s->o->quiet)
		return 0;
	if (s->o->format == FMT_TABLE) {
		print_aux_table(s, it);
		return s->write_err ? 1 : 0;
	}
	emit(s, aux_json(it));
	return s->write_err ? 1 : 0;
}

/*
 * Drain the aux log up to the newest record as of now (a writer that never
 * stops cannot keep a one-shot drain running), or until it stops moving.
 */
static int drain_aux(struct sb_consumer *c, struct drain_state *s)
{
	struct sb_aux_counts t;
	uint64_t before, count;

	sb_consumer_aux_count(c, &count);
	do {
		sb_consumer_aux_totals(c, &t);
		before = t.records;
		int err = sb_consumer_drain_aux(c, on_aux, s, NULL);
		if (err)
			return s->write_err ? 0 : err;
		if (s->write_err)
			return 0;
		sb_consumer_aux_totals(c, &t);
	} while (t.records < count && t.records != before);
	return 0;
}

/*
 * Drain up to the newest store as of now, or until the cursor stops moving
 * (a record in flight). --follow comes back for what was stored since.
 */
static int drain_records(struct sb_consumer *c, struct drain_state *s)
{
	uint64_t before, after, stores;

	sb_consumer_store_count(c, &stores);
	do {
		sb_consumer_cursor(c, &before);
		int err = sb_consumer_drain(c, on_entry, s, NULL);
		if (err)
			return s->write_err ? 0 : err;
		if (s->write_err)
			return 0;
		sb_consumer_cursor(c, &after);
	} while (after < stores && after != before);
	return 0;
}

/* --follow --interval-ms: drain on a period until the coordinator is gone. */
static int follow_by_period(struct sb_consumer *c, struct drain_state *s)
{
	for (;;) {
		enum sb_coord_state cs = SB_COORD_ALIVE;
		int err;

		/* Liveness before the drain: once it says gone, this drain reads the rest. */
		sb_consumer_coordinator(c, &cs);
		err = s->o->events_only ? 0 : drain_records(c, s);
		if (!err && s->o->aux)
			err = drain_aux(c, s);
		if (!err)
			err = drain_events(c, s);
		round_done(s);
		if (err || s->write_err || cs != SB_COORD_ALIVE || sb_tool_stop)
			return err;
		for (uint64_t slept = 0; slept < s->o->interval_ms && !sb_tool_stop;) {
			uint64_t ms =
			    s->o->interval_ms - slept < 100 ? s->o->interval_ms - slept : 100;
			struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };

			nanosleep(&ts, NULL);
			slept += ms;
		}
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static json_t *latency_json(struct drain_state *s)
{
	if (!s->nsamples)
		return json_null();
	qsort(s->samples, s->nsamples, sizeof(s->samples[0]), cmp_u32);
	size_t n = s->nsamples;
	return json_pack("{s:I,s:I,s:I,s:I}", "samples", (json_int_t)n, "p50",
			 (json_int_t)s->samples[n / 2], "p99", (json_int_t)s->samples[n * 99 / 100],
			 "max", (json_int_t)s->samples[n - 1]);
}

/*
 * What a summary reports: a region's totals, or (drain --nats) the
 * exporters' accounting with what was read back, plus JSON to append.
 */
struct summary_in {
	struct sb_drain_counts d;
	struct sb_aux_counts aux;
	const char *coordinator;
	json_t *region_id; /* taken */
	json_t *extra;	   /* an object whose members are appended; taken */
};

static void print_summary_of(struct drain_state *s, struct summary_in *in);

static void print_summary(struct sb_consumer *c, struct drain_state *s, enum sb_coord_state cs)
{
	struct summary_in in = { .coordinator = sb_coord_state_name(cs) };
	uint8_t id[SB_REGION_ID_BYTES];

	sb_consumer_totals(c, &in.d);
	if (s->o->aux)
		sb_consumer_aux_totals(c, &in.aux);
	sb_consumer_region_id(c, id);
	in.region_id = sb_tool_region_json(id);
	print_summary_of(s, &in);
}

static void print_summary_of(struct drain_state *s, struct summary_in *in)
{
	const struct drain_opts *o = s->o;
	struct sb_drain_counts d = in->d;
	const char *coord = in->coordinator;
	bool adds_up = d.delivered + d.superseded + d.evicted + d.lapped + d.torn == d.stores;
	json_t *j;

	if (o->events_only)
		j = json_pack("{s:s,s:I,s:I,s:s}", "type", "summary", "events",
			      (json_int_t)s->events, "events_truncated",
			      (json_int_t)s->events_truncated, "coordinator", coord);
	else
		j = json_pack(
		    "{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:s}", "type", "summary", "stores",
		    (json_int_t)d.stores, "delivered", (json_int_t)d.delivered, "superseded",
		    (json_int_t)d.superseded, "evicted", (json_int_t)d.evicted, "lapped",
		    (json_int_t)d.lapped, "torn", (json_int_t)d.torn, "adds_up", (int)adds_up,
		    "events", (json_int_t)s->events, "events_truncated",
		    (json_int_t)s->events_truncated, "coordinator", coord);
	if (j && in->region_id)
		json_object_set(j, "region_id", in->region_id);
	struct sb_aux_counts aux = in->aux;
	if (j && o->aux)
		json_object_set_new(j, "aux",
				    json_pack("{s:I,s:I,s:I}", "records", (json_int_t)aux.records,
					      "delivered", (json_int_t)aux.delivered, "lapped",
					      (json_int_t)aux.lapped));
	if (j && o->verify) {
		json_object_set_new(j, "verified", json_integer((json_int_t)s->verified));
		json_object_set_new(j, "bad", json_integer((json_int_t)s->bad));
		json_object_set_new(j, "wake_latency_us", latency_json(s));
	}
	if (j && in->extra)
		json_object_update(j, in->extra);
	if (o->format == FMT_JSONL) {
		emit(s, j);
		goto out;
	}
	if (s->table.header_done)
		fputc('\n', s->out);
	if (!o->events_only) {
		fprintf(s->out, "stores      %10llu\n", (unsigned long long)d.stores);
		fprintf(s->out, "  delivered %10llu\n", (unsigned long long)d.delivered);
		fprintf(s->out, "  superseded%10llu\n", (unsigned long long)d.superseded);
		fprintf(s->out, "  evicted   %10llu\n", (unsigned long long)d.evicted);
		fprintf(s->out, "  lapped    %10llu\n", (unsigned long long)d.lapped);
		fprintf(s->out, "  torn      %10llu\n", (unsigned long long)d.torn);
		fprintf(s->out, "adds up     %10s\n", adds_up ? "yes" : "NO");
	}
	if (o->aux) {
		fprintf(s->out, "aux records %10llu\n", (unsigned long long)aux.records);
		fprintf(s->out, "  delivered %10llu\n", (unsigned long long)aux.delivered);
		fprintf(s->out, "  lapped    %10llu\n", (unsigned long long)aux.lapped);
	}
	fprintf(s->out, "events      %10llu\n", (unsigned long long)s->events);
	fprintf(s->out, "  truncated %10llu\n", (unsigned long long)s->events_truncated);
	if (o->verify) {
		json_t *lat = json_object_get(j, "wake_latency_us");

		fprintf(s->out, "verified    %10llu\n", (unsigned long long)s->verified);
		fprintf(s->out, "  bad       %10llu\n", (unsigned long long)s->bad);
		if (json_is_object(lat))
			fprintf(s->out, "wake p50/p99/max  %lld / %lld / %lld us\n",
				(long long)json_integer_value(json_object_get(lat, "p50")),
				(long long)json_integer_value(json_object_get(lat, "p99")),
				(long long)json_integer_value(json_object_get(lat, "max")));
	}
	fprintf(s->out, "coordinator %10s\n", coord);
	if (in->region_id)
		fprintf(s->out, "region      %s\n", json_string_value(in->region_id));
	json_t *hosts = json_object_get(in->extra, "hosts");
	size_t i;
	json_t *h;
	json_array_foreach(hosts, i, h)
	{
		char host[4 * 64 + 1];

		fprintf(s->out, "host %-16s region %s  read %lld of %lld exported, %s\n",
			sb_tool_safe(json_string_value(json_object_get(h, "host")), host,
				     sizeof(host)),
			json_string_value(json_object_get(h, "region_id")),
			(long long)json_integer_value(json_object_get(h, "snapshots")),
			(long long)json_integer_value(json_object_get(h, "exported")),
			json_string_value(json_object_get(h, "coordinator")));
	}
	json_decref(j);
out:
	json_decref(in->region_id);
	json_decref(in->extra);
}

/* After the summary: the output's fate, then --verify's verdict, as the exit status. */
static int run_done(struct drain_state *s, int ret)
{
	if (!s->write_err && ferror(s->out))
		s->write_err = -EIO;
	int out_ret = sb_tool_output_done(s->o->cmd, s->out, s->write_err);
	if (!ret)
		ret = out_ret;
	if (!ret && s->bad)
		ret = sb_tool_fail(s->o->cmd, "%llu report%s failed --verify",
				   (unsigned long long)s->bad, s->bad == 1 ? "" : "s");
	return ret;
}

/* ---- drain --nats: the stream read back (nats_source.c) through the printers above ---- */

static bool write_failed(void *user)
{
	return ((struct drain_state *)user)->write_err != 0;
}

static void nats_round(void *user)
{
	round_done(user);
}

static int run_nats(struct drain_opts *o)
{
	struct drain_state s = { .o = o, .out = stdout };
	const struct sb_drain_sink sink = {
		.user = &s,
		.entry = o->events_only ? NULL : on_entry,
		.aux = o->aux ? on_aux : NULL,
		.event = take_event,
		.stopped = write_failed,
		.round = nats_round,
	};
	struct sb_nats_drain_result res = { 0 };

	table_init(&s);
	if (o->verify && !(s.samples = malloc(MAX_SAMPLES * sizeof(s.samples[0]))))
		return sb_tool_fail(o->cmd, "out of memory");
	sb_tool_catch_stop_signals();
	int ret = sb_nats_drain(o->cmd, &o->src, o->follow, o->timeout_ms, &sink, &res);
	if (!s.write_err && o->format == FMT_TABLE)
		s.write_err = sb_table_flush(&s.table);
	if (!s.write_err && (!ret || res.hosts)) {
		struct summary_in in = { res.counts, res.aux, res.coordinator, NULL,
					 json_pack("{s:s,s:o}", "source", "nats", "hosts",
						   res.hosts ? res.hosts : json_array()) };
		print_summary_of(&s, &in);
	} else {
		json_decref(res.hosts);
	}
	ret = run_done(&s, ret);
	free(s.samples);
	sb_table_free(&s.table);
	return ret;
}

static int run(struct drain_opts *o)
{
	if (o->src.nats)
		return run_nats(o);
	struct drain_state s = { .o = o, .out = stdout };
	struct sb_consumer *c = NULL;
	uint32_t flags = (o->all_versions ? SB_CONSUMER_ALL_VERSIONS : 0) |
			 (o->from_end ? SB_CONSUMER_START_AT_END : 0);
	int ret = sb_tool_attach(o->cmd, &o->src, flags, &c);

	if (ret)
		return ret;
	table_init(&s);
	if (o->verify && !(s.samples = malloc(MAX_SAMPLES * sizeof(s.samples[0])))) {
		sb_consumer_close(c);
		return sb_tool_fail(o->cmd, "out of memory");
	}
	sb_tool_catch_stop_signals();

	uint64_t last_news = sb_tool_mono_ns();
	int err = 0;
	if (o->interval_ms) {
		err = follow_by_period(c, &s);
		goto done;
	}
	for (;;) {
		if (!o->events_only)
			err = drain_records(c, &s);
		if (!err && o->aux)
			err = drain_aux(c, &s);
		if (!err)
			err = drain_events(c, &s);
		round_done(&s);
		if (err || s.write_err || !o->follow || sb_tool_stop)
			break;

		/* Wait in slices so that a stop signal is noticed within 100 ms. */
		enum sb_wait_status st = SB_WAIT_TIMEOUT;
		s.wait_start_ns = sb_tool_mono_ns();
		do {
			int slice = 100;

			if (o->timeout_ms >= 0) {
				int64_t left = o->timeout_ms -
					       (int64_t)((sb_tool_mono_ns() - last_news) / 1000000);
				if (left <= 0)
					break;
				slice = left < slice ? (int)left : slice;
			}
			err = sb_consumer_wait(c, slice, &st);
		} while (!err && st == SB_WAIT_TIMEOUT && !sb_tool_stop);
		if (err || sb_tool_stop)
			break;
		if (st == SB_WAIT_TIMEOUT || st == SB_WAIT_CLOSED || st == SB_WAIT_DEAD)
			break; /* CLOSED / DEAD come after news: everything was drained */
		s.wake_ns = last_news = sb_tool_mono_ns();
		s.sample_pending = true;
	}
done:
	if (err)
		ret = sb_tool_fail(o->cmd, "%s", sb_last_error());
	enum sb_coord_state cs = SB_COORD_ALIVE;
	sb_consumer_coordinator(c, &cs);
	if (!s.write_err && o->format == FMT_TABLE)
		s.write_err = sb_table_flush(&s.table);
	if (!s.write_err)
		print_summary(c, &s, cs);
	ret = run_done(&s, ret);
	/* A follower tells a coordinator that died from one that closed. */
	if (!ret && o->follow && !sb_tool_stop && cs == SB_COORD_DEAD)
		ret = SB_EXIT_DEAD;
	free(s.samples);
	sb_table_free(&s.table);
	sb_consumer_close(c);
	return ret;
}

int sb_cmd_drain(int argc, char **argv)
{
	struct drain_opts o = { .cmd = "drain" };
	int ret = parse(argc, argv, &o);

	return ret ? ret : run(&o);
}

int sb_cmd_events(int argc, char **argv)
{
	struct drain_opts o = { .cmd = "events", .events_only = true };
	int ret = parse(argc, argv, &o);

	return ret ? ret : run(&o);
}
