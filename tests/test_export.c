/*
 * test_export - `snapbridge export` into real nats-server processes and
 * `drain --nats` back out (docs/RELIABILITY.md says what each proves).
 * This process is the coordinator: a bridge served on a socket, storing
 * from a thread with tags that overwrite (a pool), evict (a pool larger
 * than the cap) and need escaping; the exporter is the tool, killed and
 * restarted at will. Every check reads the stream back and compares each
 * message body with the envelope built here, byte for byte.
 *
 * Servers are started here on loopback ports, with their state under the
 * test's directory, and stopped by pid. Where nats-server cannot start,
 * main() says why in one line and the suite is skipped (exit 77), or
 * fails when SB_REQUIRE_NATS=1 (.ci/run sets it).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "export.h"
#include "testutil.h"

#ifndef SB_TOOL
#error "SB_TOOL must name the snapbridge binary"
#endif
#ifndef SB_SKIP_FILE
#error "SB_SKIP_FILE must name where a skip is recorded"
#endif

static char dir[256];

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/sb-test-export-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	sbx_remove_tree(dir);
}

/* ---- the tool ---------------------------------------------------------------------------- */

struct tool {
	pid_t pid;
	char out[300], err[300];
};

static void tool_start(struct tool *t, const char *name, const char *const args[])
{
	const char *argv[48] = { "snapbridge" };
	int n = 1;

	while (args[n - 1] && n < 47) {
		argv[n] = args[n - 1];
		n++;
	}
	argv[n] = NULL;
	snprintf(t->out, sizeof(t->out), "%s/%s.out", dir, name);
	snprintf(t->err, sizeof(t->err), "%s/%s.err", dir, name);
	t->pid = fork();
	cr_assert(t->pid >= 0);
	if (t->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int o = open(t->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(t->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(o, 1);
		dup2(e, 2);
		execv(SB_TOOL, (char *const *)argv);
		_exit(127);
	}
}

/* Its exit status (128 + signal), waiting at most timeout_ms (then SIGKILL and fail). */
static int tool_wait(struct tool *t, int timeout_ms)
{
	uint64_t until = now_ms() + (uint64_t)timeout_ms;
	int st;

	for (;;) {
		pid_t r = waitpid(t->pid, &st, WNOHANG);

		if (r == t->pid)
			break;
		if (now_ms() > until) {
			kill(t->pid, SIGKILL);
			waitpid(t->pid, &st, 0);
			char *err = tu_slurp(t->err);
			cr_assert_fail("%s did not finish in %d ms; stderr:\n%s", t->out,
				       timeout_ms, err);
		}
		nap_ms(20);
	}
	t->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int tool_run(const char *name, const char *const args[], char **out, char **err)
{
	struct tool t;

	tool_start(&t, name, args);
	int st = tool_wait(&t, 120000);
	*out = tu_slurp(t.out);
	*err = tu_slurp(t.err);
	return st;
}

/* The last line of an output as JSON. */
static json_t *last_json(const char *text)
{
	const char *end = text + strlen(text), *p = end;

	while (p > text && (p[-1] == '\n'))
		p--;
	while (p > text && p[-1] != '\n')
		p--;
	json_error_t e;
	json_t *j = json_loadb(p, (size_t)(end - p), 0, &e);
	cr_assert_not_null(j, "not JSON: %s (%s)", e.text, p);
	return j;
}

static json_int_t geti(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static bool one_line(const char *s)
{
	size_t n = strlen(s);

	return n > 1 && strchr(s, '\n') == s + n - 1;
}

/* ---- the coordinator in this process ------------------------------------------------------ */

/* Tags: a pool that overwrites, outgrows the cap, and has names that need escaping. */
static void tag_of(uint64_t s, int pool, char *tag, size_t n)
{
	unsigned k = (unsigned)((s * 2654435761u) >> 7) % (unsigned)pool;

	if (k == 0)
		snprintf(tag, n, "a.b c");
	else if (k == 1)
		snprintf(tag, n, "*>%%");
	else if (k == 2)
		snprintf(tag, n, "\xc3\xa9t\xc3\xa9");
	else
		snprintf(tag, n, "t%u", k);
}

static size_t len_of(uint64_t s)
{
	return 64 + (size_t)(s * 37 % 900);
}

/* Every third store carries a stats document {"i": s}. */
static size_t stats_of(uint64_t s, uint8_t *buf)
{
	if (s % 3)
		return 0;
	buf[0] = 0x81;
	buf[1] = 0xa1;
	buf[2] = 'i';
	buf[3] = 0xcf;
	for (int i = 0; i < 8; i++)
		buf[4 + i] = (uint8_t)(s >> (56 - 8 * i));
	return 12;
}

/* The body the exporter must publish for store s: {"v":1,"report":R,"stats":S|nil}. */
static size_t envelope_of(uint64_t s, uint8_t *out)
{
	static const uint8_t head[] = { 0x83, 0xa1, 'v', 0x01, 0xa6, 'r', 'e', 'p', 'o', 'r', 't' };
	static const uint8_t stats_key[] = { 0xa5, 's', 't', 'a', 't', 's' };
	size_t n = 0;

	memcpy(out, head, sizeof(head));
	n += sizeof(head);
	n += tu_report(out + n, len_of(s), s);
	memcpy(out + n, stats_key, sizeof(stats_key));
	n += sizeof(stats_key);
	size_t sl = stats_of(s, out + n);
	if (!sl)
		out[n] = 0xc0;
	return n + (sl ? sl : 1);
}

struct coord {
	struct sb_bridge *b;
	char sock[300];
	uint32_t cap;
	int pool;
	int pause_us;	      /* between stores */
	uint64_t max_stores;  /* stop after this many (0: until stopped) */
	uint64_t drain_after; /* a coordinator drain after this store (0: none) */
	uint64_t log_bytes;   /* set before coord_start (0: the default log) */
	atomic_bool stop;
	atomic_uint_fast64_t stored;
	pthread_t thread;
	bool running;
	/* The reference bridge's resident set, for "what is resident at the end". */
	uint64_t *fifo; /* store_seqs, oldest first */
	size_t nfifo;
};

static void model_store(struct coord *c, uint64_t s)
{
	char tag[32], other[32];

	tag_of(s, c->pool, tag, sizeof(tag));
	for (size_t i = 0; i < c->nfifo; i++) {
		tag_of(c->fifo[i], c->pool, other, sizeof(other));
		if (!strcmp(tag, other)) {
			memmove(&c->fifo[i], &c->fifo[i + 1],
				(c->nfifo - i - 1) * sizeof(uint64_t));
			c->nfifo--;
			break;
		}
	}
	if (c->nfifo == c->cap) {
		memmove(&c->fifo[0], &c->fifo[1], (c->nfifo - 1) * sizeof(uint64_t));
		c->nfifo--;
	}
	c->fifo[c->nfifo++] = s;
}

static void store_one(struct coord *c, uint64_t s)
{
	uint8_t report[2048], stats[16];
	char tag[32];
	struct sb_report r = { .schema = "test.v1", .msgpack = report };
	struct sb_stats st = { .kind = SB_STATS_ABSENT };
	uint64_t elapsed = s * 10;

	tag_of(s, c->pool, tag, sizeof(tag));
	r.msgpack_len = tu_report(report, len_of(s), s);
	size_t sl = stats_of(s, stats);
	if (sl) {
		st.kind = SB_STATS_OK;
		st.msgpack = stats;
		st.msgpack_len = sl;
	}
	int err = sb_bridge_store_with_stats(c->b, tag, &r, &st, &elapsed);
	if (err)
		fprintf(stderr, "store %" PRIu64 ": %s\n", s, sb_last_error());
	model_store(c, s);
}

static void *store_loop(void *arg)
{
	struct coord *c = arg;

	for (uint64_t s = 1; !atomic_load(&c->stop) && (!c->max_stores || s <= c->max_stores);
	     s++) {
		store_one(c, s);
		atomic_store(&c->stored, s);
		if (s == c->drain_after) {
			struct sb_entries e;

			if (sb_bridge_drain(c->b, &e) == 0)
				sb_entries_free(&e);
			c->nfifo = 0;
		}
		if (c->pause_us)
			usleep((useconds_t)c->pause_us);
	}
	return NULL;
}

static void coord_start(struct coord *c, const char *name, uint32_t cap, int pool)
{
	struct sb_config cfg;
	struct sb_serve_config sc;

	sb_config_default(&cfg);
	cfg.max_snapshots = cap;
	cfg.max_events = 1u << 16; /* every event fits: none is lost to truncation */
	if (c->log_bytes)
		cfg.log_bytes = c->log_bytes;
	c->cap = cap;
	c->pool = pool;
	c->fifo = calloc(cap + 1, sizeof(uint64_t));
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &c->b), 0, "%s", sb_last_error());
	snprintf(c->sock, sizeof(c->sock), "%s/%s.sock", dir, name);
	sb_serve_config_default(&sc);
	sc.socket = c->sock;
	cr_assert_eq(sb_bridge_serve(c->b, &sc), 0, "%s", sb_last_error());
}

static void coord_run(struct coord *c)
{
	cr_assert_eq(pthread_create(&c->thread, NULL, store_loop, c), 0);
	c->running = true;
}

static void coord_join(struct coord *c)
{
	if (c->running)
		pthread_join(c->thread, NULL);
	c->running = false;
}

/* Stop storing and close the bridge: its exporters finish and exit. */
static void coord_close(struct coord *c)
{
	atomic_store(&c->stop, true);
	coord_join(c);
	sb_bridge_destroy(c->b);
	c->b = NULL;
}

static void coord_free(struct coord *c)
{
	if (c->b)
		coord_close(c);
	free(c->fifo);
	c->fifo = NULL;
}

/* ---- exporters --------------------------------------------------------------------------- */

static void export_start(struct tool *t, const char *name, const struct coord *c, const char *url,
			 const char *stream, const char *host, const char *extra)
{
	const char *args[32] = { "export", "--socket",	   c->sock, "--nats",
				 url,	   "--stream",	   stream,  "--host",
				 host,	   "--summary-ms", "200",   "--ack-wait-ms",
				 "2000",   "--settle-ms",  "300" };
	int n = 15;

	if (extra)
		args[n++] = extra;
	args[n] = NULL;
	tool_start(t, name, args);
}

/* ---- reading the stream back -------------------------------------------------------------- */

struct readback {
	int pool;		/* the coordinator's tag pool, for what each store's tag was */
	const uint8_t *region;	/* only this region's messages (NULL: all of them) */
	uint64_t other_regions; /* messages skipped for being of another region */
	uint64_t snaps, events, summaries, resumes, aux;
	uint64_t last_store, last_event;
	bool in_order, bodies_ok, ids_ok;
	char first_problem[300];
	uint64_t *seen; /* store_seqs read, in order */
	size_t nseen, capseen;
	struct sbx_summary last_summary;
	bool have_summary;
};

static void problem(struct readback *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct readback *r, const char *fmt, ...)
{
	va_list ap;

	if (r->first_problem[0])
		return;
	va_start(ap, fmt);
	vsnprintf(r->first_problem, sizeof(r->first_problem), fmt, ap);
	va_end(ap);
}

/*
 * Read everything the stream holds for host (of one region when region is
 * not NULL); check each snapshot against what was stored.
 */
static void read_back_region(const char *url, const char *stream, const char *host, int pool,
			     const uint8_t *region_only, struct readback *r)
{
	static uint8_t want[4096];
	struct sbx_reader_config cfg = { { url, stream, NULL }, host, false, 30000 };
	struct sbx_reader *rd;
	struct sbx_msg m;
	char region[SBX_REGION_TEXT], id[80];

	memset(r, 0, sizeof(*r));
	r->pool = pool;
	r->region = region_only;
	r->in_order = r->bodies_ok = r->ids_ok = true;
	cr_assert_eq(sbx_reader_open(&cfg, &rd), 0, "%s", sbx_last_error());
	for (;;) {
		int err = sbx_reader_next(rd, 5000, &m);

		cr_assert_geq(err, 0, "%s", sbx_last_error());
		if (err == 1)
			break;
		if (r->region && memcmp(m.region, r->region, SB_REGION_ID_BYTES) != 0) {
			r->other_regions++;
			sbx_msg_free(&m);
			continue;
		}
		sbx_region_text(m.region, region);
		if (m.kind == SBX_SNAP) {
			uint64_t s = m.entry.store_seq;
			const char *msgid = NULL;

			r->snaps++;
			if (s <= r->last_store) {
				r->in_order = false;
				problem(r, "store %" PRIu64 " after %" PRIu64, s, r->last_store);
			}
			r->last_store = s;
			if (r->nseen == r->capseen) {
				r->capseen = r->capseen ? 2 * r->capseen : 1024;
				r->seen = realloc(r->seen, r->capseen * sizeof(uint64_t));
			}
			r->seen[r->nseen++] = s;
			size_t n = envelope_of(s, want);
			if ((size_t)natsMsg_GetDataLength(m.raw) != n ||
			    memcmp(natsMsg_GetData(m.raw), want, n) != 0) {
				r->bodies_ok = false;
				problem(r, "store %" PRIu64 ": the body differs from the envelope",
					s);
			}
			snprintf(id, sizeof(id), "%s:%" PRIu64, region, s);
			natsMsgHeader_Get(m.raw, "Nats-Msg-Id", &msgid);
			char tag[32];
			tag_of(s, r->pool, tag, sizeof(tag));
			if (strcmp(m.entry.tag, tag) || strcmp(m.entry.schema, "test.v1") ||
			    !m.entry.meta.has_elapsed || m.entry.meta.elapsed_ms != s * 10) {
				r->bodies_ok = false;
				problem(r, "store %" PRIu64 " came back as tag \"%s\"", s,
					m.entry.tag);
			}
			if (!msgid || strcmp(msgid, id)) {
				r->ids_ok = false;
				problem(r, "store %" PRIu64 " has Nats-Msg-Id %s", s,
					msgid ? msgid : "(none)");
			}
		} else if (m.kind == SBX_EVENT) {
			r->events++;
			if (m.event.seq && m.event.seq != r->last_event + 1) {
				r->in_order = false;
				problem(r, "event %" PRIu64 " after %" PRIu64, m.event.seq,
					r->last_event);
			}
			if (m.event.seq)
				r->last_event = m.event.seq;
		} else if (m.kind == SBX_SUMMARY) {
			r->summaries++;
			r->last_summary = m.summary;
			r->have_summary = true;
		} else if (m.kind == SBX_RESUME) {
			r->resumes++;
		} else {
			r->aux++;
		}
		sbx_msg_free(&m);
	}
	sbx_reader_close(rd);
}

static void read_back(const char *url, const char *stream, const char *host, int pool,
		      struct readback *r)
{
	read_back_region(url, stream, host, pool, NULL, r);
}

static void readback_free(struct readback *r)
{
	free(r->seen);
	r->seen = NULL;
}

static bool seen(const struct readback *r, uint64_t s)
{
	size_t lo = 0, hi = r->nseen;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (r->seen[mid] < s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->nseen && r->seen[lo] == s;
}

/*
 * The stream holds each delivered store once, in order, byte-identical;
 * the exporter's accounting (its last summary, cumulative over restarts)
 * adds up to every store and its exported count is what the stream holds;
 * every store the reference bridge still has resident is there.
 */
static void assert_exported(const struct readback *r, json_t *summary, const struct coord *c,
			    uint64_t stores)
{
	cr_assert(r->in_order, "out of order: %s", r->first_problem);
	cr_assert(r->bodies_ok, "%s", r->first_problem);
	cr_assert(r->ids_ok, "%s", r->first_problem);
	cr_assert_eq(geti(summary, "stores"), (json_int_t)stores, "stores %lld, want %" PRIu64,
		     (long long)geti(summary, "stores"), stores);
	cr_assert(json_is_true(json_object_get(summary, "adds_up")));
	cr_assert_eq(geti(summary, "exported"), (json_int_t)r->snaps,
		     "the exporter says %lld exported, the stream holds %" PRIu64,
		     (long long)geti(summary, "exported"), r->snaps);
	cr_assert(r->have_summary && r->last_summary.final, "no final summary in the stream");
	cr_assert_eq(r->last_summary.counts.rec.stores, stores);
	cr_assert_eq(r->last_summary.counts.rec.delivered, r->snaps);
	for (size_t i = 0; i < c->nfifo; i++)
		cr_assert(seen(r, c->fifo[i]), "store %" PRIu64 " stayed resident but is missing",
			  c->fifo[i]);
}

/* ---- servers ----------------------------------------------------------------------------- */

static void server_start(struct sbx_natsd *d, const char *name, int port)
{
	char sdir[300];

	snprintf(sdir, sizeof(sdir), "%s/%s", dir, name);
	cr_assert_eq(sbx_natsd_start(d, sdir, name, port, 0, NULL, 20000), 0, "%s",
		     sbx_last_error());
}

/* Wait until the exporter says it is exporting (attached, resume point read). */
static void wait_exporting(const struct tool *t)
{
	uint64_t until = now_ms() + 60000;

	while (now_ms() < until) {
		char *err = tu_slurp(t->err);
		bool yes = strstr(err, "exporting region") != NULL;

		free(err);
		if (yes)
			return;
		if (waitpid(t->pid, NULL, WNOHANG) == t->pid)
			cr_assert_fail("the exporter exited before it started exporting: %s",
				       tu_slurp(t->err));
		nap_ms(20);
	}
	cr_assert_fail("the exporter never started exporting: %s", tu_slurp(t->err));
}

static json_t *export_end(struct tool *t, int timeout_ms)
{
	int st = tool_wait(t, timeout_ms);
	char *out = tu_slurp(t->out), *err = tu_slurp(t->err);

	cr_assert_eq(st, 0, "export exited %d; stderr:\n%s", st, err);
	json_t *j = last_json(out);
	free(out);
	free(err);
	return j;
}

/* ---- the suite --------------------------------------------------------------------------- */

Test(export, five_thousand_stores_land_once_each_in_order_byte_identical, .init = make_dir,
     .fini = remove_dir, .timeout = 300)
{
	struct sbx_natsd srv;
	struct coord c = { 0 };
	struct tool ex;
	struct readback r;

	server_start(&srv, "n1", 0);
	coord_start(&c, "c", 32, 48);
	c.max_stores = 5000;
	c.drain_after = 2500;
	c.pause_us = 100;
	export_start(&ex, "ex", &c, srv.url, "S1", "h1", NULL);
	wait_exporting(&ex);
	coord_run(&c);
	coord_join(&c);
	uint64_t stores = atomic_load(&c.stored);
	coord_close(&c);
	json_t *sum = export_end(&ex, 120000);

	read_back(srv.url, "S1", "h1", c.pool, &r);
	assert_exported(&r, sum, &c, stores);
	cr_assert_eq(stores, 5000);
	cr_assert_eq(geti(sum, "lapped"), 0, "an 18 MiB log never laps 5000 small stores");
	cr_assert_eq(geti(sum, "torn"), 0);
	cr_assert_eq((json_int_t)r.events, geti(sum, "events"), "events: stream %" PRIu64,
		     r.events);
	cr_assert_eq(r.last_event, r.events, "events are 1..N, each once");
	cr_assert_eq(r.resumes, 1);
	cr_assert_eq(geti(sum, "late"), 0);
	cr_assert_eq(geti(sum, "out_of_order"), 0);
	json_decref(sum);
	readback_free(&r);
	coord_free(&c);
	sbx_natsd_stop(&srv, SIGTERM);
}

/* Lines of one "type" from a drain's JSON output, in order, joined. */
static char *lines_of(const char *text, const char *type)
{
	char key[64], *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	snprintf(key, sizeof(key), "{\"type\":\"%s\"", type);
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (!strncmp(p, key, strlen(key)))
			fprintf(m, "%.*s\n", (int)n, p);
		p += n + (nl != NULL);
	}
	fclose(m);
	return buf;
}

static char *table_rows(const char *text, const char *first)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (!strncmp(p, first, strlen(first)))
			fprintf(m, "%.*s\n", (int)n, p);
		p += n + (nl != NULL);
	}
	fclose(m);
	return buf;
}

Test(export, drain_nats_prints_what_drain_prints_of_the_same_region, .init = make_dir,
     .fini = remove_dir, .timeout = 120)
{
	struct sbx_natsd srv;
	struct coord c = { 0 };
	char img[300], *o1, *e1, *o2, *e2;
	size_t size;
	int fd;

	server_start(&srv, "n1", 0);
	coord_start(&c, "c", 16, 24);
	for (uint64_t s = 1; s <= 400; s++)
		store_one(&c, s);
	for (uint64_t i = 1; i <= 20; i++)
		cr_assert_eq(tu_aux_put(c.b, i), 0, "%s", sb_last_error());
	/* A still image of the region: both drains see exactly the same. */
	cr_assert_eq(sb_bridge_data_fd(c.b, &fd), 0);
	uint8_t *copy = tu_read_region(fd, &size);
	close(fd);
	snprintf(img, sizeof(img), "%s/region.img", dir);
	FILE *f = fopen(img, "w");
	cr_assert_eq(fwrite(copy, 1, size, f), size);
	fclose(f);
	free(copy);

	const char *exp[] = { "export",	  "--file", img,      "--nats", srv.url,
			      "--stream", "S2",	    "--host", "img.h",	NULL };
	cr_assert_eq(tool_run("ex", exp, &o1, &e1), 0, "export: %s", e1);
	free(o1);
	free(e1);
	const char *d1[] = { "drain", "--file", img, "--events", "--aux", NULL };
	const char *d2[] = { "drain",  "--nats", srv.url,    "--stream", "S2",
			     "--host", "img.h",	 "--events", "--aux",	 NULL };
	cr_assert_eq(tool_run("d1", d1, &o1, &e1), 0, "%s", e1);
	cr_assert_eq(tool_run("d2", d2, &o2, &e2), 0, "%s", e2);
	static const char *const types[] = { "snapshot", "event", "kernel_op", "cgroup_procs" };
	for (int i = 0; i < 4; i++) {
		char *a = lines_of(o1, types[i]), *b = lines_of(o2, types[i]);

		cr_assert(strlen(a) > 0, "drain printed no %s lines", types[i]);
		cr_assert_str_eq(a, b, "%s lines differ", types[i]);
		free(a);
		free(b);
	}
	json_t *s1 = last_json(o1), *s2 = last_json(o2);
	static const char *const keys[] = {
		"stores", "delivered", "superseded", "evicted",
		"lapped", "torn",      "events",     "events_truncated"
	};
	for (int i = 0; i < 8; i++)
		cr_assert_eq(geti(s1, keys[i]), geti(s2, keys[i]), "summary %s: %lld vs %lld",
			     keys[i], (long long)geti(s1, keys[i]), (long long)geti(s2, keys[i]));
	cr_assert(json_is_true(json_object_get(s2, "adds_up")));
	json_t *a1 = json_object_get(s1, "aux"), *a2 = json_object_get(s2, "aux");
	cr_assert_eq(geti(a1, "records"), geti(a2, "records"));
	cr_assert_eq(geti(a1, "delivered"), geti(a2, "delivered"));
	cr_assert_str_eq(json_string_value(json_object_get(s1, "region_id")),
			 json_string_value(json_object_get(
			     json_array_get(json_object_get(s2, "hosts"), 0), "region_id")));
	json_decref(s1);
	json_decref(s2);
	free(o1);
	free(e1);
	free(o2);
	free(e2);

	/* The table too: the same snapshot rows. */
	const char *t1[] = { "drain", "--file", img, "--format", "table", NULL };
	const char *t2[] = { "drain",  "--nats", srv.url,    "--stream", "S2",
			     "--host", "img.h",	 "--format", "table",	 NULL };
	cr_assert_eq(tool_run("t1", t1, &o1, &e1), 0, "%s", e1);
	cr_assert_eq(tool_run("t2", t2, &o2, &e2), 0, "%s", e2);
	char *r1 = table_rows(o1, "snap "), *r2 = table_rows(o2, "snap ");
	cr_assert(strlen(r1) > 0);
	cr_assert_str_eq(r1, r2, "table rows differ");
	free(r1);
	free(r2);
	free(o1);
	free(e1);
	free(o2);
	free(e2);

	/* A follower's table rows come as they are read, not when it stops (as drain --socket). */
	struct tool fl;
	const char *t3[] = { "drain",	     "--nats", srv.url,	   "--stream", "S2",
			     "--host",	     "img.h",  "--follow", "--format", "table",
			     "--timeout-ms", "600000", NULL };
	tool_start(&fl, "t3", t3);
	uint64_t until = now_ms() + 60000;
	bool rows = false;
	while (!rows && now_ms() < until) {
		char *out = tu_slurp(fl.out);

		rows = strstr(out, "\nsnap ") != NULL;
		free(out);
		cr_assert_eq(waitpid(fl.pid, NULL, WNOHANG), 0, "the follower exited");
		nap_ms(50);
	}
	kill(fl.pid, SIGINT);
	cr_assert_eq(tool_wait(&fl, 30000), 0);
	cr_assert(rows, "a --follow table showed no row in 60 s");
	coord_free(&c);
	sbx_natsd_stop(&srv, SIGTERM);
}

Test(export, sigkill_twenty_times_leaves_every_store_once_in_order, .init = make_dir,
     .fini = remove_dir, .timeout = 300)
{
	struct sbx_natsd srv;
	struct coord c = { 0 };
	struct tool ex;
	struct readback r;
	unsigned seed = (unsigned)time(NULL);
	char name[32];

	srand(seed);
	server_start(&srv, "n1", 0);
	coord_start(&c, "c", 64, 80);
	c.pause_us = 1000;
	export_start(&ex, "ex0", &c, srv.url, "S3", "h3", NULL);
	wait_exporting(&ex);
	coord_run(&c);
	for (int k = 1; k <= 20; k++) {
		/* Anywhere: mid-publish, mid-resume, before it even attached. */
		nap_ms(50 + rand() % 500);
		kill(ex.pid, SIGKILL);
		cr_assert_eq(tool_wait(&ex, 30000), 128 + SIGKILL, "seed %u", seed);
		snprintf(name, sizeof(name), "ex%d", k);
		export_start(&ex, name, &c, srv.url, "S3", "h3", NULL);
	}
	wait_exporting(&ex);
	nap_ms(500);
	coord_close(&c);
	uint64_t stores = atomic_load(&c.stored);
	json_t *sum = export_end(&ex, 120000);

	read_back(srv.url, "S3", "h3", c.pool, &r);
	assert_exported(&r, sum, &c, stores);
	cr_assert_eq(geti(sum, "lapped"), 0, "seed %u: the log never wrapped", seed);
	cr_assert(json_is_true(json_object_get(sum, "resumed")));
	cr_assert_geq(r.resumes, 2, "restarts left no resume marker");
	json_decref(sum);
	readback_free(&r);
	coord_free(&c);
	sbx_natsd_stop(&srv, SIGTERM);
}

/*
 * Stop the server started by server_start(srv, "n1", ...) for down_ms while
 * c stores (at least min_stores more meanwhile), then start it again on
 * its port and its store.
 */
static void server_outage(struct sbx_natsd *srv, const struct coord *c, long down_ms,
			  uint64_t min_stores)
{
	char sdir[300];
	int port = srv->port;

	sbx_natsd_stop(srv, SIGTERM);
	uint64_t at_stop = atomic_load(&c->stored);
	nap_ms(down_ms); /* stores go on; the exporter cannot publish */
	cr_assert_geq(atomic_load(&c->stored), at_stop + min_stores,
		      "the coordinator stored too little while the server was down");
	snprintf(sdir, sizeof(sdir), "%s/n1", dir);
	cr_assert_eq(sbx_natsd_start(srv, sdir, "n1", port, 0, NULL, 20000), 0, "%s",
		     sbx_last_error());
}

Test(export, a_server_restart_mid_run_loses_nothing, .init = make_dir, .fini = remove_dir,
     .timeout = 300)
{
	struct sbx_natsd srv;
	struct coord c = { 0 };
	struct tool ex;
	struct readback r;

	server_start(&srv, "n1", 0);
	coord_start(&c, "c", 64, 80);
	c.pause_us = 1000;
	export_start(&ex, "ex", &c, srv.url, "S4", "h4", NULL);
	wait_exporting(&ex);
	coord_run(&c);
	nap_ms(1000);
	server_outage(&srv, &c, 1500, 1);
	nap_ms(1500);
	coord_close(&c);
	uint64_t stores = atomic_load(&c.stored);
	json_t *sum = export_end(&ex, 120000);

	read_back(srv.url, "S4", "h4", c.pool, &r);
	assert_exported(&r, sum, &c, stores);
	cr_assert_eq(geti(sum, "lapped"), 0);
	cr_assert_geq(geti(sum, "reconnects"), 1, "the exporter never reconnected");
	json_decref(sum);
	readback_free(&r);
	coord_free(&c);
	sbx_natsd_stop(&srv, SIGTERM);
}

/*
 * NATS down while the coordinator goes on storing into a 256 KiB log: the
 * exporter cannot publish, stops reading and is lapped; once the server is
 * back it goes on from the log's oldest record. The stream holds the rest
 * once each, in order, and the accounting counts what it lost as lapped.
 * (Residents stay in the log: 16 of at most 1 KiB each, and a resident is
 * evicted by the cap long before 256 KiB of newer records pass it.)
 */
Test(export, a_server_down_long_enough_laps_the_exporter_and_it_counts_the_laps, .init = make_dir,
     .fini = remove_dir, .timeout = 300)
{
	struct sbx_natsd srv;
	struct coord c = { .log_bytes = 256u << 10 };
	struct tool ex;
	struct readback r;

	server_start(&srv, "n1", 0);
	coord_start(&c, "c", 16, 24);
	c.pause_us = 200;
	export_start(&ex, "ex", &c, srv.url, "S7", "h7", NULL);
	wait_exporting(&ex);
	coord_run(&c);
	nap_ms(500);
	/* A few thousand stores of 64-964 bytes meanwhile: the log wraps many times. */
	server_outage(&srv, &c, 1500, 1000);
	nap_ms(3000); /* the exporter's backoff is at most 2 s */
	coord_close(&c);
	uint64_t stores = atomic_load(&c.stored);
	json_t *sum = export_end(&ex, 120000);

	read_back(srv.url, "S7", "h7", c.pool, &r);
	assert_exported(&r, sum, &c, stores);
	cr_assert_gt(geti(sum, "lapped"), 0,
		     "%" PRIu64 " stores, %" PRIu64 " exported, none lapped", stores, r.snaps);
	cr_assert_eq(r.last_summary.counts.rec.lapped, (uint64_t)geti(sum, "lapped"),
		     "the stream's final summary and the exporter's disagree on laps");
	cr_assert_geq(geti(sum, "reconnects"), 1, "the exporter never reconnected");
	json_decref(sum);
	readback_free(&r);
	coord_free(&c);
	sbx_natsd_stop(&srv, SIGTERM);
}

/*
 * A restarted coordinator is a new region: its store_seqs start again at
 * 1, below the host's last message in the stream. Its exporter must not
 * take the old region's point as its own (it would skip or count as
 * lapped every new store): it starts at the new region's oldest record.
 */
Test(export, a_restarted_coordinator_is_exported_from_its_oldest_record, .init = make_dir,
     .fini = remove_dir, .timeout = 300)
{
	struct sbx_natsd srv;
	struct coord a = { 0 }, b = { 0 };
	struct tool ex;
	struct readback ra, rb;
	uint8_t ida[SB_REGION_ID_BYTES], idb[SB_REGION_ID_BYTES];

	server_start(&srv, "n1", 0);
	coord_start(&a, "a", 16, 24);
	cr_assert_eq(sb_bridge_region_id(a.b, ida), 0);
	export_start(&ex, "exa", &a, srv.url, "S8", "h8", NULL);
	wait_exporting(&ex);
	for (uint64_t s = 1; s <= 300; s++)
		store_one(&a, s);
	coord_close(&a);
	json_t *sa = export_end(&ex, 120000);

	coord_start(&b, "b", 16, 24);
	cr_assert_eq(sb_bridge_region_id(b.b, idb), 0);
	cr_assert(memcmp(ida, idb, sizeof(ida)) != 0, "two coordinators, one region id");
	for (uint64_t s = 1; s <= 40; s++) /* before its exporter starts */
		store_one(&b, s);
	export_start(&ex, "exb", &b, srv.url, "S8", "h8", NULL);
	wait_exporting(&ex);
	char *said = tu_slurp(ex.err);
	cr_assert(strstr(said, "from its oldest record"), "the exporter said: %s", said);
	free(said);
	coord_close(&b);
	json_t *sb = export_end(&ex, 120000);

	read_back_region(srv.url, "S8", "h8", a.pool, ida, &ra);
	assert_exported(&ra, sa, &a, 300);
	read_back_region(srv.url, "S8", "h8", b.pool, idb, &rb);
	assert_exported(&rb, sb, &b, 40);
	cr_assert_gt(rb.other_regions, 0, "the first region's messages are gone");
	cr_assert(!json_is_true(json_object_get(sb, "resumed")));
	cr_assert_eq(geti(sb, "lapped"), 0, "the new region's stores were all in its log");
	cr_assert(seen(&rb, 40), "the new region's last store is missing");
	json_decref(sa);
	json_decref(sb);
	readback_free(&ra);
	readback_free(&rb);
	coord_free(&a);
	coord_free(&b);
	sbx_natsd_stop(&srv, SIGTERM);
}

/* Make stream name with replicas on the cluster at urls, retrying while it elects leaders. */
static void cluster_stream(const char *urls, const char *name, int replicas)
{
	struct sbx_target t = { urls, name, NULL };
	struct sbx_conn conn;
	struct sbx_conn_config cc = { .target = &t,
				      .host = "*",
				      .create = true,
				      .replicas = (uint32_t)replicas,
				      .connect_ms = 5000 };
	uint64_t until = now_ms() + 60000;
	int err;

	while ((err = sbx_conn_open(&cc, &conn)) != 0 && now_ms() < until)
		nap_ms(250);
	cr_assert_eq(err, 0, "the cluster never took the stream: %s", sbx_last_error());
	sbx_conn_close(&conn);
}

static int stream_leader(const char *urls, const char *name, const struct sbx_natsd *n, int count)
{
	struct sbx_target t = { urls, name, NULL };
	struct sbx_conn conn;
	struct sbx_conn_config cc = { .target = &t, .host = "*", .connect_ms = 5000 };
	jsStreamInfo *si = NULL;
	jsErrCode ec;
	int leader = -1;

	cr_assert_eq(sbx_conn_open(&cc, &conn), 0, "%s", sbx_last_error());
	if (js_GetStreamInfo(&si, conn.js, name, NULL, &ec) == NATS_OK && si->Cluster &&
	    si->Cluster->Leader)
		for (int i = 0; i < count; i++)
			if (!strcmp(si->Cluster->Leader, n[i].name))
				leader = i;
	jsStreamInfo_Destroy(si);
	sbx_conn_close(&conn);
	cr_assert_geq(leader, 0, "no stream leader found");
	return leader;
}

Test(export, a_three_node_cluster_losing_its_stream_leader_keeps_every_store_once, .init = make_dir,
     .fini = remove_dir, .timeout = 300)
{
	struct sbx_natsd n[3];
	struct coord c = { 0 };
	struct tool ex;
	struct readback r;
	char routes[200], urls[200], sdir[300], name[8];
	int cp[3];

	for (int i = 0; i < 3; i++)
		cr_assert_gt(cp[i] = sbx_free_port(), 0);
	snprintf(routes, sizeof(routes),
		 "nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d", cp[0], cp[1],
		 cp[2]);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "n%d", i + 1);
		snprintf(sdir, sizeof(sdir), "%s/%s", dir, name);
		cr_assert_eq(sbx_natsd_start(&n[i], sdir, name, 0, cp[i], routes, 20000), 0, "%s",
			     sbx_last_error());
	}
	snprintf(urls, sizeof(urls), "%s,%s,%s", n[0].url, n[1].url, n[2].url);
	cluster_stream(urls, "S5", 3);

	coord_start(&c, "c", 64, 80);
	c.pause_us = 1000;
	export_start(&ex, "ex", &c, urls, "S5", "h5", "--replicas=3");
	wait_exporting(&ex);
	coord_run(&c);
	nap_ms(1500);
	int dead = stream_leader(urls, "S5", n, 3);
	sbx_natsd_stop(&n[dead], SIGKILL);
	nap_ms(3000);
	coord_close(&c);
	uint64_t stores = atomic_load(&c.stored);
	json_t *sum = export_end(&ex, 180000);

	read_back(urls, "S5", "h5", c.pool, &r);
	assert_exported(&r, sum, &c, stores);
	json_decref(sum);
	readback_free(&r);
	coord_free(&c);
	for (int i = 0; i < 3; i++)
		sbx_natsd_stop(&n[i], SIGTERM);
}

Test(export, two_coordinators_share_a_stream_and_drain_reads_both, .init = make_dir,
     .fini = remove_dir, .timeout = 180)
{
	struct sbx_natsd srv;
	struct coord a = { 0 }, b = { 0 };
	struct tool ea, eb;
	struct readback ra, rb;
	char *out, *err;

	server_start(&srv, "n1", 0);
	coord_start(&a, "a", 16, 24);
	coord_start(&b, "b", 16, 24);
	a.max_stores = b.max_stores = 600;
	a.pause_us = b.pause_us = 300;
	export_start(&ea, "ea", &a, srv.url, "S6", "alpha", NULL);
	export_start(&eb, "eb", &b, srv.url, "S6", "beta.example", NULL);
	wait_exporting(&ea);
	wait_exporting(&eb);
	coord_run(&a);
	coord_run(&b);
	coord_join(&a);
	coord_join(&b);
	coord_close(&a);
	coord_close(&b);
	json_t *sa = export_end(&ea, 120000), *sb = export_end(&eb, 120000);
	read_back(srv.url, "S6", "alpha", a.pool, &ra);
	read_back(srv.url, "S6", "beta.example", b.pool, &rb);
	assert_exported(&ra, sa, &a, 600);
	assert_exported(&rb, sb, &b, 600);

	const char *all[] = { "drain", "--nats", srv.url, "--stream", "S6", "--quiet", NULL };
	cr_assert_eq(tool_run("d", all, &out, &err), 0, "%s", err);
	json_t *s = last_json(out);
	cr_assert_eq(json_array_size(json_object_get(s, "hosts")), 2);
	cr_assert_eq(geti(s, "delivered"), (json_int_t)(ra.snaps + rb.snaps));
	cr_assert_eq(geti(s, "stores"), 1200);
	cr_assert(json_is_true(json_object_get(s, "adds_up")));
	cr_assert_str_eq(json_string_value(json_object_get(s, "coordinator")), "closed");
	json_decref(s);
	free(out);
	free(err);

	/* One host alone: its snapshots, in its store order. */
	const char *one[] = { "drain", "--nats", srv.url,	 "--stream",
			      "S6",    "--host", "beta.example", NULL };
	cr_assert_eq(tool_run("d1", one, &out, &err), 0, "%s", err);
	char *snaps = lines_of(out, "snapshot");
	json_int_t n = 0, last = 0;
	for (char *save = NULL, *l = strtok_r(snaps, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save), n++) {
		json_t *j = json_loads(l, 0, NULL);
		json_int_t seq = geti(j, "store_seq");

		cr_assert_gt(seq, last);
		last = seq;
		json_decref(j);
	}
	cr_assert_eq(n, (json_int_t)rb.snaps);
	free(snaps);
	free(out);
	free(err);

	const char *st[] = {
		"stat", "--nats", srv.url, "--stream", "S6", "--format", "json", NULL
	};
	cr_assert_eq(tool_run("st", st, &out, &err), 0, "%s", err);
	s = last_json(out);
	json_t *hosts = json_object_get(s, "hosts");
	cr_assert_eq(json_array_size(hosts), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *h = json_array_get(hosts, i);

		cr_assert_eq(geti(h, "stores"), 600);
		cr_assert_eq(geti(h, "lag"), 0);
		cr_assert(json_is_true(json_object_get(h, "adds_up")));
	}
	json_decref(s);
	json_decref(sa);
	json_decref(sb);
	free(out);
	free(err);
	readback_free(&ra);
	readback_free(&rb);
	coord_free(&a);
	coord_free(&b);
	sbx_natsd_stop(&srv, SIGTERM);
}

/* ---- bad input --------------------------------------------------------------------------- */

Test(export_bad_input, an_unreachable_url_is_one_line_and_exit_1, .init = make_dir,
     .fini = remove_dir, .timeout = 120)
{
	struct coord c = { 0 };
	char url[64], *out, *err;
	size_t attached;

	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", sbx_free_port());
	coord_start(&c, "c", 16, 24);
	for (uint64_t s = 1; s <= 10; s++)
		store_one(&c, s);
	const char *ex[] = { "export", "--socket", c.sock, "--nats", url, NULL };
	cr_assert_eq(tool_run("ex", ex, &out, &err), 1);
	cr_assert(one_line(err) && strstr(err, "cannot reach NATS"), "stderr: %s", err);
	free(out);
	free(err);
	cr_assert_eq(sb_bridge_consumers(c.b, NULL, 0, &attached), 0);
	cr_assert_eq(attached, 0, "the failed exporter left its slot");
	const char *dr[] = { "drain", "--nats", url, NULL };
	cr_assert_eq(tool_run("dr", dr, &out, &err), 1);
	cr_assert(one_line(err) && strstr(err, "cannot reach NATS"), "stderr: %s", err);
	free(out);
	free(err);
	const char *st[] = { "stat", "--nats", url, NULL };
	cr_assert_eq(tool_run("st", st, &out, &err), 1);
	cr_assert(one_line(err), "stderr: %s", err);
	free(out);
	free(err);
	coord_free(&c);
}

/* A stream made here, with one plain message on subject. */
static void foreign_stream(const char *url, const char *name, const char *pattern,
			   const char *subject)
{
	natsConnection *nc;
	jsCtx *js;
	jsStreamConfig cfg;
	jsStreamInfo *si = NULL;
	jsPubAck *pa = NULL;
	jsErrCode ec = 0;
	const char *subjects[] = { pattern };

	cr_assert_eq(natsConnection_ConnectTo(&nc, url), NATS_OK);
	cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
	jsStreamConfig_Init(&cfg);
	cfg.Name = name;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cr_assert_eq(js_AddStream(&si, js, &cfg, NULL, &ec), NATS_OK, "%d", ec);
	jsStreamInfo_Destroy(si);
	cr_assert_eq(js_Publish(&pa, js, subject, "hello", 5, NULL, &ec), NATS_OK);
	jsPubAck_Destroy(pa);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

static uint64_t stream_msgs(const char *url, const char *name)
{
	natsConnection *nc;
	jsCtx *js;
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;

	cr_assert_eq(natsConnection_ConnectTo(&nc, url), NATS_OK);
	cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
	cr_assert_eq(js_GetStreamInfo(&si, js, name, NULL, &ec), NATS_OK);
	uint64_t n = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return n;
}

/* Exporters of several hosts starting at once, each creating the missing stream. */
struct opener {
	const char *url;
	char stream[16];
	pthread_barrier_t *go;
	int err;
	char why[300];
};

static void *open_at_once(void *arg)
{
	struct opener *o = arg;
	struct sbx_target t = { o->url, o->stream, NULL };
	struct sbx_conn_config cc = {
		.target = &t, .host = "*", .create = true, .connect_ms = 5000
	};
	struct sbx_conn conn;

	pthread_barrier_wait(o->go);
	o->err = sbx_conn_open(&cc, &conn);
	if (o->err)
		snprintf(o->why, sizeof(o->why), "%s", sbx_last_error());
	else
		sbx_conn_close(&conn);
	return NULL;
}

/*
 * The server answers the loser of two creations of one stream with either
 * "name in use" or "subjects overlap": both mean someone made it, and the
 * exporter takes the stream it finds (two_coordinators_... failed on the
 * second answer once).
 */
Test(export, exporters_creating_the_stream_at_once_all_start, .init = make_dir, .fini = remove_dir,
     .timeout = 120)
{
	enum { OPENERS = 4, ROUNDS = 10 };
	struct sbx_natsd srv;
	pthread_barrier_t go;
	struct opener o[OPENERS];
	pthread_t th[OPENERS];

	server_start(&srv, "n1", 0);
	for (int round = 0; round < ROUNDS; round++) {
		pthread_barrier_init(&go, NULL, OPENERS);
		for (int i = 0; i < OPENERS; i++) {
			o[i] = (struct opener){ .url = srv.url, .go = &go };
			snprintf(o[i].stream, sizeof(o[i].stream), "RACE%d", round);
			cr_assert_eq(pthread_create(&th[i], NULL, open_at_once, &o[i]), 0);
		}
		for (int i = 0; i < OPENERS; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&go);
		for (int i = 0; i < OPENERS; i++)
			cr_assert_eq(o[i].err, 0, "round %d, opener %d: %s", round, i, o[i].why);
		/* Each round's stream takes snapbridge.>: delete it for the next. */
		struct sbx_target t = { srv.url, o[0].stream, NULL };
		struct sbx_conn_config cc = { .target = &t, .host = "*", .connect_ms = 5000 };
		struct sbx_conn conn;
		cr_assert_eq(sbx_conn_open(&cc, &conn), 0, "%s", sbx_last_error());
		cr_assert_eq(js_DeleteStream(conn.js, o[0].stream, NULL, NULL), NATS_OK);
		sbx_conn_close(&conn);
	}
	sbx_natsd_stop(&srv, SIGTERM);
}

Test(export_bad_input, a_stream_with_other_subjects_is_refused_untouched, .init = make_dir,
     .fini = remove_dir, .timeout = 120)
{
	struct sbx_natsd srv;
	struct coord c = { 0 };
	char *out, *err;

	server_start(&srv, "n1", 0);
	foreign_stream(srv.url, "OTHER", "other.>", "other.x");
	coord_start(&c, "c", 16, 24);
	for (uint64_t s = 1; s <= 10; s++)
		store_one(&c, s);
	const char *ex[] = { "export", "--socket", c.sock,  "--nats",
			     srv.url,  "--stream", "OTHER", NULL };
	cr_assert_eq(tool_run("ex", ex, &out, &err), 1);
	cr_assert(one_line(err) && strstr(err, "takes other subjects"), "stderr: %s", err);
	free(out);
	free(err);
	const char *dr[] = { "drain", "--nats", srv.url, "--stream", "OTHER", NULL };
	cr_assert_eq(tool_run("dr", dr, &out, &err), 1);
	cr_assert(one_line(err) && strstr(err, "takes other subjects"), "stderr: %s", err);
	free(out);
	free(err);
	cr_assert_eq(stream_msgs(srv.url, "OTHER"), 1, "the stream was written to");
	coord_free(&c);
	sbx_natsd_stop(&srv, SIGTERM);
}

Test(export_bad_input, a_message_that_is_not_ours_is_named_and_nothing_is_written, .init = make_dir,
     .fini = remove_dir, .timeout = 120)
{
	struct sbx_natsd srv;
	struct coord c = { 0 };
	char *out, *err;

	server_start(&srv, "n1", 0);
	foreign_stream(srv.url, "S7", "snapbridge.>", "snapbridge.h9.snap.x");
	coord_start(&c, "c", 16, 24);
	for (uint64_t s = 1; s <= 10; s++)
		store_one(&c, s);
	const char *ex[] = { "export",	 "--socket", c.sock,   "--nats", srv.url,
			     "--stream", "S7",	     "--host", "h9",	 NULL };
	cr_assert_eq(tool_run("ex", ex, &out, &err), 1);
	cr_assert(one_line(err) && strstr(err, "not a snapbridge export") &&
		      strstr(err, "snapbridge.h9.snap.x"),
		  "stderr: %s", err);
	/* It never started: no accounting to print (a summary of zeros would say it adds up). */
	cr_assert_str_empty(out, "stdout: %s", out);
	free(out);
	free(err);
	/* Only the exporter's fence went in: no snapshot, and the foreign one is still there. */
	cr_assert_eq(stream_msgs(srv.url, "S7"), 2);
	const char *dr[] = { "drain", "--nats", srv.url, "--stream", "S7", NULL };
	cr_assert_eq(tool_run("dr", dr, &out, &err), 1);
	cr_assert(one_line(err) && strstr(err, "message 1 on snapbridge.h9.snap.x"), "stderr: %s",
		  err);
	free(out);
	free(err);
	coord_free(&c);
	sbx_natsd_stop(&srv, SIGTERM);
}

Test(export_bad_input, malformed_names_and_mixed_sources_are_usage_errors, .init = make_dir,
     .fini = remove_dir, .timeout = 60)
{
	char *out, *err;
	const char *bad_stream[] = {
		"export", "--socket", "/nonexistent", "--stream", "a.b", NULL
	};
	const char *bad_host[] = { "export", "--socket", "/nonexistent", "--host", "a b", NULL };
	const char *bad_prefix[] = { "export",		 "--socket", "/nonexistent",
				     "--subject-prefix", "a..b",     NULL };
	const char *no_nats[] = { "drain", "--stream", "S", NULL };
	const char *both[] = { "drain", "--nats", "nats://127.0.0.1:1", "--socket", "/x", NULL };
	const char *const *cases[] = { bad_stream, bad_host, bad_prefix, no_nats, both };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(tool_run("u", cases[i], &out, &err), 2, "case %zu: %s", i, err);
		cr_assert(one_line(err), "case %zu: %s", i, err);
		free(out);
		free(err);
	}
}

/* ---- main: skip (or fail under SB_REQUIRE_NATS) where nats-server cannot start --------- */

static bool nats_available(char *why, size_t n)
{
	char tmp[] = "/tmp/sb-test-export-probe-XXXXXX", sdir[300];
	struct sbx_natsd d;

	if (!mkdtemp(tmp)) {
		snprintf(why, n, "cannot make a temporary directory: %s", strerror(errno));
		return false;
	}
	snprintf(sdir, sizeof(sdir), "%s/probe", tmp);
	int err = sbx_natsd_start(&d, sdir, "probe", 0, 0, NULL, 20000);
	if (err)
		snprintf(why, n, "%s", sbx_last_error());
	else
		sbx_natsd_stop(&d, SIGTERM);
	sbx_remove_tree(tmp);
	return err == 0;
}

int main(int argc, char *argv[])
{
	char why[512];

	if (!nats_available(why, sizeof(why))) {
		bool required = getenv("SB_REQUIRE_NATS") && strcmp(getenv("SB_REQUIRE_NATS"), "0");
		FILE *f = fopen(SB_SKIP_FILE, "w");

		fprintf(stderr, "test_export: %s: nats-server cannot start: %s\n",
			required ? "FAILED (SB_REQUIRE_NATS=1)" : "skipped", why);
		if (f) {
			fprintf(f, "test_export skipped: nats-server cannot start: %s\n", why);
			fclose(f);
		}
		return required ? 1 : 77;
	}
	unlink(SB_SKIP_FILE);
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	nats_Close();
	return result;
}
