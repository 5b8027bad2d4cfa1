/*
 * consumers/tool/nats_source.c - drain --nats and stat --nats: what
 * 'snapbridge export' published, read back from the JetStream stream
 * (consumers/export/reader.c) and shown as drain and stat show a region.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "export.h"
#include "tool.h"

json_t *sb_tool_region_json(const uint8_t id[SB_REGION_ID_BYTES])
{
	char text[SBX_REGION_TEXT];

	return json_string(sbx_region_text(id, text));
}

static struct sbx_target target_of(const struct sb_source *src)
{
	return (struct sbx_target){ src->nats, src->stream ? src->stream : "snapbridge",
				    src->subject_prefix };
}

int sb_nats_check_source(const char *cmd, const struct sb_source *src)
{
	if (!src->nats)
		return sb_tool_usage_error(cmd,
					   "--stream, --host and --subject-prefix need --nats URL");
	if (src->socket || src->file || src->pid)
		return sb_tool_usage_error(cmd, "give --nats or one of --socket, --file and --pid, "
						"not both");
	if (!*src->nats)
		return sb_tool_usage_error(cmd, "--nats needs a URL");
	if (src->wait)
		return sb_tool_usage_error(cmd, "--wait waits for a coordinator, not for --nats");
	struct sbx_target t = target_of(src);
	if (sbx_target_check(&t) || (src->host && sbx_host_check(src->host)))
		return sb_tool_usage_error(cmd, "%s", sbx_last_error());
	return 0;
}

/* ---- drain --nats ------------------------------------------------------------------------ */

/* What was read of one host's region, and the newest accounting its exporter published. */
struct region_read {
	char host[SBX_HOST_MAX + 1];
	uint8_t region[SB_REGION_ID_BYTES];
	uint64_t snapshots, aux_items;
	struct sbx_cursors at; /* where `counts` stands, per sequence */
	struct sbx_counts counts;
	bool has_summary, final;
	enum sb_coord_state coordinator;
};

struct reads {
	struct region_read *r;
	size_t n;
};

static struct region_read *region_of(struct reads *rs, const struct sbx_msg *m)
{
	for (size_t i = 0; i < rs->n; i++)
		if (!strcmp(rs->r[i].host, m->host) &&
		    !memcmp(rs->r[i].region, m->region, SB_REGION_ID_BYTES))
			return &rs->r[i];
	struct region_read *r = realloc(rs->r, (rs->n + 1) * sizeof(*r));
	if (!r)
		return NULL;
	rs->r = r;
	r = &rs->r[rs->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->host, sizeof(r->host), "%s", m->host);
	memcpy(r->region, m->region, SB_REGION_ID_BYTES);
	r->coordinator = SB_COORD_ALIVE;
	return r;
}

/* Keep the newest accounting of each sequence: the message that stands furthest. */
static void take_counts(struct region_read *r, const struct sbx_msg *m)
{
	const struct sbx_cursors *at = m->kind == SBX_SUMMARY ? &m->summary.at : NULL;
	const struct sbx_counts *c = m->kind == SBX_SUMMARY ? &m->summary.counts : &m->counts;
	bool rec = m->kind == SBX_SNAP || at, ev = m->kind == SBX_EVENT || at,
	     aux = m->kind == SBX_KERNEL_OP || m->kind == SBX_CGROUP_PROCS || at;
	uint64_t sseq = at ? at->store_seq : m->seq, eseq = at ? at->event_seq : m->seq,
		 aseq = at ? at->aux_seq : m->seq;

	if (rec && sseq >= r->at.store_seq) {
		r->at.store_seq = sseq;
		r->counts.rec = c->rec;
	}
	if (ev && eseq >= r->at.event_seq) {
		r->at.event_seq = eseq;
		r->counts.events = c->events;
		r->counts.events_truncated = c->events_truncated;
	}
	if (aux && aseq >= r->at.aux_seq) {
		r->at.aux_seq = aseq;
		r->counts.aux = c->aux;
	}
}

static const char *coord_of(const struct reads *rs)
{
	const char *name = NULL;

	for (size_t i = 0; i < rs->n; i++) {
		const char *n =
		    rs->r[i].has_summary ? sb_coord_state_name(rs->r[i].coordinator) : "unknown";
		if (name && strcmp(name, n))
			return "mixed";
		name = n;
	}
	return name ? name : "unknown";
}

static void result_of(const struct reads *rs, struct sb_nats_drain_result *res)
{
	memset(&res->counts, 0, sizeof(res->counts));
	memset(&res->aux, 0, sizeof(res->aux));
	res->hosts = json_array();
	for (size_t i = 0; i < rs->n; i++) {
		const struct region_read *r = &rs->r[i];
		const struct sb_drain_counts *c = &r->counts.rec;

		/* delivered is what was read back: it adds up only if the stream holds each once.
		 */
		res->counts.stores += c->stores;
		res->counts.delivered += r->snapshots;
		res->counts.superseded += c->superseded;
		res->counts.evicted += c->evicted;
		res->counts.lapped += c->lapped;
		res->counts.torn += c->torn;
		res->aux.records += r->counts.aux.records;
		res->aux.delivered += r->aux_items;
		res->aux.lapped += r->counts.aux.lapped;
		json_array_append_new(
		    res->hosts,
		    json_pack("{s:s,s:o,s:I,s:I,s:I,s:I,s:s,s:b}", "host", r->host, "region_id",
			      sb_tool_region_json(r->region), "snapshots", (json_int_t)r->snapshots,
			      "exported", (json_int_t)c->delivered, "stores", (json_int_t)c->stores,
			      "store_seq", (json_int_t)r->at.store_seq, "coordinator",
			      r->has_summary ? sb_coord_state_name(r->coordinator) : "unknown",
			      "final", (int)r->final));
	}
	res->coordinator = coord_of(rs);
}

int sb_nats_drain(const char *cmd, const struct sb_source *src, bool follow, int64_t timeout_ms,
		  const struct sb_drain_sink *sink, struct sb_nats_drain_result *res)
{
	struct sbx_reader_config cfg = { target_of(src), src->host, follow, 0 };
	struct sbx_reader *rd = NULL;
	struct reads rs = { 0 };
	uint64_t last_news = sb_tool_mono_ns(), last_round = last_news;
	int ret = 0;

	memset(res, 0, sizeof(*res));
	if (sbx_reader_open(&cfg, &rd))
		return sb_tool_fail(cmd, "%s", sbx_last_error());
	while (!sb_tool_stop) {
		struct sbx_msg m;
		int r = sbx_reader_next(rd, 100, &m);
		uint64_t now = sb_tool_mono_ns();

		/* A follower's rounds: when the stream goes quiet, and every 100 ms of a flood. */
		if (follow && (r == 1 || now - last_round >= 100000000ull)) {
			sink->round(sink->user);
			last_round = now;
		}
		if (r == 1) {
			if (!follow)
				break;
			if (timeout_ms >= 0 && (int64_t)((now - last_news) / 1000000) >= timeout_ms)
				break;
			continue;
		}
		if (r < 0) {
			ret = sb_tool_fail(cmd, "%s", sbx_last_error());
			break;
		}
		last_news = sb_tool_mono_ns();
		struct region_read *reg = region_of(&rs, &m);
		if (!reg) {
			sbx_msg_free(&m);
			ret = sb_tool_fail(cmd, "out of memory");
			break;
		}
		int stop = 0;
		switch (m.kind) {
		case SBX_SNAP:
			reg->snapshots++;
			if (sink->entry)
				stop = sink->entry(sink->user, &m.entry);
			break;
		case SBX_EVENT:
			sink->event(sink->user, &m.event);
			break;
		case SBX_KERNEL_OP:
		case SBX_CGROUP_PROCS:
			reg->aux_items++;
			if (sink->aux)
				stop = sink->aux(sink->user, &m.aux);
			break;
		case SBX_SUMMARY:
			reg->has_summary = true;
			reg->final = m.summary.final;
			reg->coordinator = m.summary.coordinator;
			break;
		case SBX_RESUME:
			break;
		}
		if (m.kind != SBX_RESUME)
			take_counts(reg, &m);
		sbx_msg_free(&m);
		if (stop || sink->stopped(sink->user))
			break;
	}
	sbx_reader_close(rd);
	nats_Close();
	result_of(&rs, res);
	free(rs.r);
	return ret;
}

/* ---- stat --nats ------------------------------------------------------------------------- */

static json_t *stat_json(const struct sb_source *src, const struct sbx_stream_stat *st)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	json_t *hosts = json_array();
	for (size_t i = 0; hosts && i < st->n; i++) {
		const struct sbx_host_stat *h = &st->hosts[i];
		json_t *msgs = json_object();

		for (int k = SBX_SNAP; k <= SBX_RESUME; k++) {
			static const char *const names[] = { "",	  "snap",	  "event",
							     "kernel_op", "cgroup_procs", "summary",
							     "resume" };
			json_object_set_new(msgs, names[k], json_integer((json_int_t)h->msgs[k]));
		}
		json_t *j = json_pack("{s:s,s:o}", "host", h->host, "messages", msgs);
		if (j && h->has_state) {
			const struct sb_drain_counts *c = &h->counts.rec;
			bool adds_up =
			    c->delivered + c->superseded + c->evicted + c->lapped + c->torn ==
			    c->stores;
			json_t *lag = json_null(), *age = json_null();
			if (h->has_summary) {
				/* Stores the coordinator had made that the exporter had not
				 * reached. */
				uint64_t cs = h->summary.coordinator_stores, at = h->at.store_seq;
				lag = json_integer(cs > at ? (json_int_t)(cs - at) : 0);
				if (now > h->summary.time_ns)
					age = json_integer(
					    (json_int_t)((now - h->summary.time_ns) / 1000000));
			}
			json_object_update_new(
			    j,
			    json_pack("{s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:o,s:o,s:s,s:b}",
				      "region_id", sb_tool_region_json(h->region), "store_seq",
				      (json_int_t)h->at.store_seq, "stores", (json_int_t)c->stores,
				      "exported", (json_int_t)c->delivered, "superseded",
				      (json_int_t)c->superseded, "evicted", (json_int_t)c->evicted,
				      "lapped", (json_int_t)c->lapped, "torn", (json_int_t)c->torn,
				      "adds_up", (int)adds_up, "lag", lag, "summary_age_ms", age,
				      "coordinator",
				      h->has_summary ? sb_coord_state_name(h->summary.coordinator)
						     : "unknown",
				      "final", (int)(h->has_summary && h->summary.final)));
		}
		json_array_append_new(hosts, j);
	}
	return json_pack("{s:{s:s,s:I,s:I,s:I,s:I},s:o}", "stream", "name",
			 src->stream ? src->stream : "snapbridge", "messages",
			 (json_int_t)st->messages, "bytes", (json_int_t)st->bytes, "first_seq",
			 (json_int_t)st->first_seq, "last_seq", (json_int_t)st->last_seq, "hosts",
			 hosts);
}

static void print_stat_table(FILE *out, const char *url, json_t *j)
{
	json_t *s = json_object_get(j, "stream"), *hosts = json_object_get(j, "hosts"), *h;
	size_t i;

	fprintf(out, "stream       %s at %s\n", json_string_value(json_object_get(s, "name")), url);
	fprintf(out, "  messages   %lld (%lld bytes), sequences %lld..%lld\n",
		(long long)json_integer_value(json_object_get(s, "messages")),
		(long long)json_integer_value(json_object_get(s, "bytes")),
		(long long)json_integer_value(json_object_get(s, "first_seq")),
		(long long)json_integer_value(json_object_get(s, "last_seq")));
	fprintf(out, "hosts        %zu\n", json_array_size(hosts));
	if (!json_array_size(hosts))
		return;
	fprintf(out, "  %-16s %-12s %9s %9s %7s %-8s %9s %s\n", "HOST", "REGION", "STORES",
		"EXPORTED", "LAG", "COORD", "AGE(ms)", "MESSAGES snap/event/aux");
	json_array_foreach(hosts, i, h)
	{
		json_t *m = json_object_get(h, "messages"), *lag = json_object_get(h, "lag"),
		       *age = json_object_get(h, "summary_age_ms");
		const char *region = json_string_value(json_object_get(h, "region_id"));
		char lagb[24] = "-", ageb[24] = "-", host[4 * SBX_HOST_MAX + 1];

		if (json_is_integer(lag))
			snprintf(lagb, sizeof(lagb), "%lld", (long long)json_integer_value(lag));
		if (json_is_integer(age))
			snprintf(ageb, sizeof(ageb), "%lld", (long long)json_integer_value(age));
		fprintf(
		    out, "  %-16s %-12.12s %9lld %9lld %7s %-8s %9s %lld/%lld/%lld\n",
		    sb_tool_safe(json_string_value(json_object_get(h, "host")), host, sizeof(host)),
		    region ? region : "-",
		    (long long)json_integer_value(json_object_get(h, "stores")),
		    (long long)json_integer_value(json_object_get(h, "exported")), lagb,
		    json_string_value(json_object_get(h, "coordinator"))
			? json_string_value(json_object_get(h, "coordinator"))
			: "-",
		    ageb, (long long)json_integer_value(json_object_get(m, "snap")),
		    (long long)json_integer_value(json_object_get(m, "event")),
		    (long long)(json_integer_value(json_object_get(m, "kernel_op")) +
				json_integer_value(json_object_get(m, "cgroup_procs"))));
	}
}

int sb_nats_stat(const char *cmd, const struct sb_source *src, bool table, bool watch,
		 uint64_t iterations)
{
	struct sbx_reader_config cfg = { target_of(src), src->host, false, 0 };
	int ret = 0;

	sb_tool_catch_stop_signals();
	for (uint64_t n = 1;; n++) {
		struct sbx_stream_stat st;

		if (sbx_stream_stat(&cfg, &st)) {
			ret = sb_tool_fail(cmd, "%s", sbx_last_error());
			break;
		}
		json_t *j = stat_json(src, &st);
		sbx_stream_stat_free(&st);
		if (!j) {
			ret = sb_tool_fail(cmd, "out of memory");
			break;
		}
		if (watch && table)
			sb_tool_watch_frame(n);
		int werr = 0;
		if (table) {
			print_stat_table(stdout, src->nats, j);
			json_decref(j);
			if (ferror(stdout))
				werr = errno ? -errno : -EIO;
		} else {
			werr = sb_tool_print_json_line(stdout, j);
		}
		if (!werr && fflush(stdout) != 0)
			werr = errno ? -errno : -EIO;
		if (werr) {
			ret = sb_tool_output_done(cmd, stdout, werr);
			break;
		}
		if (!watch || (iterations && n >= iterations) || !sb_tool_watch_pause())
			break;
	}
	nats_Close();
	return ret;
}
