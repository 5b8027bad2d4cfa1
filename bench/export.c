/*
 * bench/export.c - `snapbridge bench` row for the export to NATS
 * JetStream (consumers/export/): records/s and MB/s that snapbridge
 * export gets into a local single-node nats-server, next to a bare
 * libnats js_PublishMsgAsync loop of exactly the same messages (subject,
 * headers, body) with the same window of unacknowledged publishes, in the
 * same run, on the same warm server.
 *
 *   setup (untimed)  a nats-server started here (file storage, state in a
 *                    temporary directory); a bridge holding N reports of
 *                    nested msgpack maps (4 KB, 64 KB), one unique tag
 *                    each; the consumer's pages read once and rewound
 *                    (sb_consumer_seek), the baseline's messages built
 *   exporter         attach, then pump until all N are drained, then wait
 *                    for every ack: the clock runs from the first pump to
 *                    the last ack
 *   baseline         publish the N prebuilt messages, then wait for every
 *                    ack (js_PublishAsyncComplete)
 *
 * Repetitions alternate the two, each into a fresh stream, deleted after.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>

#include "export.h"
#include "export_bench.h"

#define REPS_MAX 5

struct xrow {
	uint32_t size;
	uint64_t n;
	double rate[2][REPS_MAX]; /* [0] exporter, [1] baseline: records/s */
	double cpu[2][REPS_MAX]; /* this process's CPU (all threads, libnats' too), us per record */
	unsigned reps;
	double report_bytes; /* per record */
	bool ok;
};

static struct {
	bool ran;
	char skip[300];
	struct xrow rows[2];
	unsigned nrows;
} res;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * A report the size of size bytes, shaped like a capture: a map of small
 * values with an array of per-CPU maps, the array grown to the size.
 */
static void make_report(msgpack_sbuffer *sb, uint64_t seq, uint32_t size)
{
	msgpack_packer pk;
	const uint32_t per_cpu = 48; /* bytes of one per-CPU map, roughly */
	uint32_t cpus = size > 200 ? (size - 120) / per_cpu : 1;

	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	msgpack_pack_str_with_body(&pk, "seq", 3);
	msgpack_pack_uint64(&pk, seq);
	msgpack_pack_str_with_body(&pk, "kind", 4);
	msgpack_pack_str_with_body(&pk, "sched.v3", 8);
	msgpack_pack_str_with_body(&pk, "stored_ns", 9);
	msgpack_pack_uint64(&pk, mono_ns());
	msgpack_pack_str_with_body(&pk, "cpus", 4);
	msgpack_pack_array(&pk, cpus);
	for (uint32_t i = 0; i < cpus; i++) {
		msgpack_pack_map(&pk, 4);
		msgpack_pack_str_with_body(&pk, "cpu", 3);
		msgpack_pack_uint32(&pk, i);
		msgpack_pack_str_with_body(&pk, "runnable", 8);
		msgpack_pack_uint32(&pk, (uint32_t)(seq * 7 + i) % 13);
		msgpack_pack_str_with_body(&pk, "switches", 8);
		msgpack_pack_uint64(&pk, seq * 1000003 + i * 7919);
		msgpack_pack_str_with_body(&pk, "load", 4);
		msgpack_pack_double(&pk, (double)(i % 100) / 100.0);
	}
}

struct setup {
	struct sb_bridge *b;
	uint64_t n;
	double report_bytes;
};

static int fill(struct setup *s, uint32_t size, uint64_t n)
{
	struct sb_config cfg;
	msgpack_sbuffer sb;
	char tag[32];
	int err;

	sb_config_default(&cfg);
	cfg.max_snapshots = (uint32_t)n;
	cfg.log_bytes = n * ((uint64_t)size + 1024) + (4u << 20);
	if (cfg.log_bytes > SB_LOG_BYTES_MAX)
		return -E2BIG;
	err = sb_bridge_create(&cfg, NULL, &s->b);
	if (err)
		return err;
	msgpack_sbuffer_init(&sb);
	s->report_bytes = 0;
	for (uint64_t i = 1; i <= n && !err; i++) {
		make_report(&sb, i, size);
		struct sb_report r = { .schema = "sched.v3",
				       .msgpack = sb.data,
				       .msgpack_len = sb.size };
		snprintf(tag, sizeof(tag), "capture_%" PRIu64, i);
		err = sb_bridge_store(s->b, tag, &r);
		s->report_bytes += (double)sb.size;
	}
	msgpack_sbuffer_destroy(&sb);
	s->n = n;
	s->report_bytes /= (double)n;
	return err;
}

static int open_consumer(struct sb_bridge *b, struct sb_consumer **c)
{
	int fd, err = sb_bridge_data_fd(b, &fd);

	if (err)
		return err;
	err = sb_consumer_open_fd(fd, 0, c);
	close(fd);
	if (err)
		return err;
	/* Fault every page of the mapping in, then rewind: no fault in the timed phase. */
	uint64_t cursor, before;
	do {
		sb_consumer_cursor(*c, &before);
		err = sb_consumer_drain(*c, NULL, NULL, NULL);
		sb_consumer_cursor(*c, &cursor);
	} while (!err && cursor != before);
	return err ? err : sb_consumer_seek(*c, 0);
}

static void delete_stream(const char *url, const char *name)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsErrCode ec;

	if (natsConnection_ConnectTo(&nc, url) == NATS_OK &&
	    natsConnection_JetStream(&js, nc, NULL) == NATS_OK)
		js_DeleteStream(js, name, NULL, &ec);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

/* The exporter, from its first pump to its last ack: records/s, or < 0. */
static double run_exporter(const struct setup *s, const char *url, const char *stream,
			   double *cpu_us)
{
	struct sbx_export_config cfg = { .target = { url, stream, "bx" },
					 .host = "bench",
					 .summary_ms = 3600000,
					 .once = true };
	struct sbx_export *x = NULL;
	struct sb_consumer *c = NULL;
	double rate = -1;
	bool done = false;
	int err = open_consumer(s->b, &c);

	if (!err)
		err = sbx_export_open(&cfg, &x);
	if (!err)
		err = sbx_export_attach(x, c);
	uint64_t t0 = mono_ns(), c0 = cpu_ns();
	while (!err && !done)
		err = sbx_export_pump(x, 100, &done);
	if (!err)
		err = sbx_export_finish(x, 60000);
	uint64_t t1 = mono_ns();
	*cpu_us = (double)(cpu_ns() - c0) / 1e3 / (double)s->n;
	struct sbx_summary sum = { 0 };
	if (x)
		sbx_export_summary(x, &sum);
	if (err)
		fprintf(stderr, "bench export: %s\n", sbx_last_error());
	else if (sum.counts.rec.delivered != s->n)
		fprintf(stderr, "bench export: %" PRIu64 " of %" PRIu64 " exported\n",
			sum.counts.rec.delivered, s->n);
	else
		rate = (double)s->n / ((double)(t1 - t0) / 1e9);
	sbx_export_close(x);
	sb_consumer_close(c);
	return rate;
}

/* What the exporter would publish for every record, built ahead (untimed). */
struct prebuilt {
	natsMsg **m;
	uint64_t n;
	struct sbx_origin o;
	uint64_t built;
};

static int build_one(void *user, const struct sb_entry *e)
{
	struct prebuilt *p = user;
	struct sbx_counts c = { .rec = { .stores = e->store_seq, .delivered = e->store_seq } };

	if (p->built >= p->n || sbx_snap_msg(&p->o, e, &p->m[p->built]))
		return -ENOMEM;
	sbx_set_counts(p->m[p->built], SBX_SNAP, &c);
	p->built++;
	return 0;
}

/* The baseline: js_PublishMsgAsync of the same messages, same window. Records/s, or < 0. */
static double run_baseline(const struct setup *s, const char *url, const char *stream,
			   double *cpu_us)
{
	struct prebuilt p = { .n = s->n };
	struct sb_consumer *c = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	const char *subjects[] = { "bx.>" };
	double rate = -1;
	int err;

	p.m = calloc(s->n, sizeof(*p.m));
	p.o.prefix = "bx";
	p.o.host = "bench";
	sb_bridge_region_id(s->b, p.o.region);
	err = p.m ? open_consumer(s->b, &c) : -ENOMEM;
	for (uint64_t cursor = 0; !err && cursor < s->n;) {
		err = sb_consumer_drain(c, build_one, &p, NULL);
		sb_consumer_cursor(c, &cursor);
	}
	sb_consumer_close(c);
	if (err || p.built != s->n)
		goto out;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = SBX_DEFAULT_WINDOW;
	jsStreamConfig_Init(&sc);
	sc.Name = stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	if (natsConnection_ConnectTo(&nc, url) != NATS_OK ||
	    natsConnection_JetStream(&js, nc, &jo) != NATS_OK ||
	    js_AddStream(&si, js, &sc, NULL, &ec) != NATS_OK)
		goto out;
	jsStreamInfo_Destroy(si);
	uint64_t t0 = mono_ns(), c0 = cpu_ns();
	for (uint64_t i = 0; i < s->n; i++)
		if (js_PublishMsgAsync(js, &p.m[i], NULL) != NATS_OK)
			goto out;
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 60000;
	if (js_PublishAsyncComplete(js, &po) != NATS_OK)
		goto out;
	rate = (double)s->n / ((double)(mono_ns() - t0) / 1e9);
	*cpu_us = (double)(cpu_ns() - c0) / 1e3 / (double)s->n;
out:
	if (rate < 0)
		fprintf(stderr, "bench export: the js_PublishMsgAsync loop failed: %s\n",
			nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "setup");
	for (uint64_t i = 0; p.m && i < s->n; i++)
		natsMsg_Destroy(p.m[i]);
	free(p.m);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return rate;
}

static double median(const double *v, unsigned n)
{
	double s[REPS_MAX];

	memcpy(s, v, n * sizeof(*s));
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && s[j - 1] > s[j]; j--) {
			double t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* The whole measurement, in the child: fills res; 0 or -EIO. */
static int measure(int mode)
{
	static const uint32_t sizes[] = { 4096, 65536 };
	const uint64_t counts[3][2] = { { 20000, 3000 }, { 5000, 800 }, { 300, 50 } };
	const unsigned reps = mode == 0 ? REPS_MAX : mode == 1 ? 3 : 1;
	char tmp[] = "/tmp/sb-bench-export-XXXXXX", sdir[300], stream[32];
	struct sbx_natsd d;
	int ret = 0;

	if (!mkdtemp(tmp)) {
		snprintf(res.skip, sizeof(res.skip), "no temporary directory: %s", strerror(errno));
		return 0;
	}
	snprintf(sdir, sizeof(sdir), "%s/n1", tmp);
	if (sbx_natsd_start(&d, sdir, "bench", 0, 0, NULL, 20000)) {
		snprintf(res.skip, sizeof(res.skip), "%s", sbx_last_error());
		sbx_remove_tree(tmp);
		return 0;
	}
	for (unsigned z = 0; z < 2; z++) {
		struct xrow *row = &res.rows[res.nrows++];
		struct setup s = { 0 };
		double cpu;

		row->size = sizes[z];
		row->n = counts[mode][z];
		if (fill(&s, sizes[z], row->n)) {
			fprintf(stderr, "bench export: cannot fill a region: %s\n",
				sb_last_error());
			sb_bridge_destroy(s.b);
			ret = -EIO;
			continue;
		}
		row->report_bytes = s.report_bytes;
		/* Warm the server and both paths once, untimed. */
		for (int sys = 0; sys < 2; sys++) {
			snprintf(stream, sizeof(stream), "BXW%u_%d", z, sys);
			if (sys == 0)
				run_exporter(&s, d.url, stream, &cpu);
			else
				run_baseline(&s, d.url, stream, &cpu);
			delete_stream(d.url, stream);
		}
		row->ok = true;
		for (unsigned r = 0; r < reps && row->ok; r++) {
			for (int sys = 0; sys < 2; sys++) {
				snprintf(stream, sizeof(stream), "BX%u_%u_%d", z, r, sys);
				double rate = sys == 0 ? run_exporter(&s, d.url, stream, &cpu)
						       : run_baseline(&s, d.url, stream, &cpu);
				delete_stream(d.url, stream);
				row->rate[sys][r] = rate;
				row->cpu[sys][r] = cpu;
				if (rate <= 0)
					row->ok = false;
			}
			row->reps = r + 1;
		}
		if (!row->ok)
			ret = -EIO;
		sb_bridge_destroy(s.b);
	}
	sbx_natsd_stop(&d, SIGTERM);
	sbx_remove_tree(tmp);
	return ret;
}

int sbb_export_bench(int mode, FILE *text)
{
	int p[2], ret = 0;

	memset(&res, 0, sizeof(res));
	res.ran = true;
	/* In a child, as every measurement (bench.c): its threads (a bridge's, libnats') end with
	 * it. */
	fflush(NULL);
	if (pipe(p) != 0) {
		snprintf(res.skip, sizeof(res.skip), "pipe: %s", strerror(errno));
		goto print;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		int r = measure(mode);
		bool ok = write(p[1], &res, sizeof(res)) == (ssize_t)sizeof(res) &&
			  write(p[1], &r, sizeof(r)) == (ssize_t)sizeof(r);
		_exit(ok ? 0 : 1);
	}
	close(p[1]);
	if (pid < 0 || read(p[0], &res, sizeof(res)) != (ssize_t)sizeof(res) ||
	    read(p[0], &ret, sizeof(ret)) != (ssize_t)sizeof(ret)) {
		memset(&res, 0, sizeof(res));
		res.ran = true;
		snprintf(res.skip, sizeof(res.skip), "the measuring process failed");
		ret = -EIO;
	}
	close(p[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
print:
	fprintf(text, "\nexport to NATS JetStream (local nats-server, file storage, window %d):\n",
		SBX_DEFAULT_WINDOW);
	if (res.skip[0]) {
		fprintf(text, "  skipped: %s\n", res.skip);
		return ret;
	}
	fprintf(text, "  %-8s %-26s %12s %10s %7s %14s\n", "size", "system", "records/s", "MB/s",
		"ratio", "client us/rec");
	for (unsigned i = 0; i < res.nrows; i++) {
		const struct xrow *row = &res.rows[i];
		char size[16];

		snprintf(size, sizeof(size), "%u KB", row->size / 1024);
		if (!row->ok) {
			fprintf(text, "  %-8s failed (see stderr)\n", size);
			continue;
		}
		double ex = median(row->rate[0], row->reps), base = median(row->rate[1], row->reps);
		fprintf(text, "  %-8s %-26s %12.0f %10.1f %7.2f %14.1f\n", size,
			"snapbridge export", ex, ex * row->report_bytes / 1e6, ex / base,
			median(row->cpu[0], row->reps));
		fprintf(text, "  %-8s %-26s %12.0f %10.1f %7s %14.1f\n", size,
			"js_PublishMsgAsync loop", base, base * row->report_bytes / 1e6, "",
			median(row->cpu[1], row->reps));
	}
	for (unsigned i = 0; i < res.nrows; i++) {
		const struct xrow *row = &res.rows[i];

		if (row->ok) {
			double ratio =
			    median(row->rate[0], row->reps) / median(row->rate[1], row->reps);
			fprintf(
			    text,
			    "  target export %u KB >= 0.8x the js_PublishMsgAsync loop: %.2f  %s\n",
			    row->size / 1024, ratio, ratio >= 0.8 ? "met" : "NOT met");
		}
	}
	fprintf(text, "  (medians of %u repetitions, alternating; MB/s of report bytes)\n",
		res.nrows ? res.rows[0].reps : 0);
	return ret;
}

void sbb_export_json(FILE *f)
{
	if (!res.ran)
		return;
	fprintf(f, ",\n\"export\":{");
	if (res.skip[0]) {
		fprintf(f, "\"skipped\":\"");
		for (const char *p = res.skip; *p; p++)
			fputc(*p == '"' || *p == '\\' ? '\'' : *p < 0x20 ? '?' : *p, f);
		fprintf(f, "\"}");
		return;
	}
	fprintf(f, "\"window\":%d,\"rows\":[", SBX_DEFAULT_WINDOW);
	for (unsigned i = 0; i < res.nrows; i++) {
		const struct xrow *row = &res.rows[i];

		fprintf(f, "%s{\"size\":%u,\"records\":%" PRIu64 ",\"ok\":%s", i ? "," : "",
			row->size, row->n, row->ok ? "true" : "false");
		if (row->ok) {
			double ex = median(row->rate[0], row->reps),
			       base = median(row->rate[1], row->reps);
			fprintf(f,
				",\"export_records_s\":%.1f,\"export_mb_s\":%.2f,"
				"\"baseline_records_s\":%.1f,\"baseline_mb_s\":%.2f,\"ratio\":%.3f,"
				"\"export_client_us\":%.2f,\"baseline_client_us\":%.2f,\"reps\":%u",
				ex, ex * row->report_bytes / 1e6, base,
				base * row->report_bytes / 1e6, ex / base,
				median(row->cpu[0], row->reps), median(row->cpu[1], row->reps),
				row->reps);
		}
		fprintf(f, "}");
	}
	fprintf(f, "]}");
}
