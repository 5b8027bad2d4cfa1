/*
 * test_cli - the snapbridge binary driven as a user drives it: a
 * coordinator, two `drain --follow` consumers, `stat`, `save`, then
 * `drain --file` on the image; every JSON line parsed, every delivered
 * report's checksum recomputed here, every summary's outcomes added up;
 * usage errors exit 2 with a message, runtime errors exit 1 and leave no
 * output file; `demo --json` parses and its accounting holds.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <snapbridge/snapbridge.h>

#include "testutil.h"

#ifndef SB_TOOL
#error "SB_TOOL must name the snapbridge binary"
#endif

#define STORES 400

/* ---- running the binary ----------------------------------------------------------- */

struct run {
	int status; /* exit code, or 128 + signal */
	char *out, *err;
};

/* Start SB_TOOL with args (NULL-terminated); stdout and stderr go to files. */
static pid_t start(const char *out_path, const char *err_path, const char *const args[])
{
	const char *argv[32] = { "snapbridge" };
	int n = 1;

	while (args[n - 1] && n < 31) {
		argv[n] = args[n - 1];
		n++;
	}
	argv[n] = NULL;
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* A failed test must not leave a coordinator storing flat out behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(o, 1);
		dup2(e, 2);
		execv(SB_TOOL, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int finish(pid_t pid)
{
	int st;

	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char dir[256];

static struct run run_args(const char *const args[])
{
	char o[300], e[300];
	struct run r;

	snprintf(o, sizeof(o), "%s/run.out", dir);
	snprintf(e, sizeof(e), "%s/run.err", dir);
	r.status = finish(start(o, e, args));
	r.out = tu_slurp(o);
	r.err = tu_slurp(e);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/sb-test-cli-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

/* path = dir/name (path is a char[300]). */
#define in_dir(path, name) snprintf(path, sizeof(path), "%s/%s", dir, name)

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[600];

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* ---- checking reports ------------------------------------------------------------- */

static int b64val(int c)
{
	const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(abc, c) : NULL;

	return p ? (int)(p - abc) : -1;
}

/* Decode padded base64; returns the length or -1. */
static long b64decode(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s), o = 0;

	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];

		for (int k = 0; k < 4; k++)
			v[k] = s[i + k] == '=' ? 0 : b64val(s[i + k]);
		if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
			return -1;
		uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		int bytes = s[i + 2] == '=' ? 1 : s[i + 3] == '=' ? 2 : 3;
		if (o + (size_t)bytes > cap)
			return -1;
		out[o++] = (uint8_t)(x >> 16);
		if (bytes > 1)
			out[o++] = (uint8_t)(x >> 8);
		if (bytes > 2)
			out[o++] = (uint8_t)x;
	}
	return (long)o;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* A u64 as the tool writes it: a number, or a decimal string above INT64_MAX. */
static uint64_t json_u64(json_t *v)
{
	if (json_is_integer(v))
		return (uint64_t)json_integer_value(v);
	cr_assert(json_is_string(v), "a u64 is a number or a decimal string");
	return strtoull(json_string_value(v), NULL, 10);
}

/* The report's checksum field is the FNV-1a of its pattern bytes. */
static bool report_checksum_ok(json_t *report)
{
	static uint8_t buf[1 << 16];
	json_t *pattern = json_object_get(report, "pattern");

	if (!json_is_string(pattern))
		return false;
	long n = b64decode(json_string_value(pattern), buf, sizeof(buf));
	return n >= 0 && fnv1a(buf, (size_t)n) == json_u64(json_object_get(report, "checksum"));
}

static json_int_t geti(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

struct lines {
	size_t snapshots, events, summaries, bad_checksums;
	size_t kernel_ops, cgroup_procs; /* --aux lines */
	bool aux_ok;
	json_int_t last_seq;
	bool seq_order_ok, report_seq_ok, stats_ok, verified_ok;
	json_t *summary;
};

/* Parse a drain's JSON lines: every line must parse and have a known type. */
static void check_lines(const char *text, struct lines *l)
{
	char *copy = strdup(text), *save = NULL;

	memset(l, 0, sizeof(*l));
	l->seq_order_ok = l->report_seq_ok = l->stats_ok = l->verified_ok = l->aux_ok = true;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t jerr;
		json_t *j = json_loads(line, 0, &jerr);

		cr_assert_not_null(j, "line does not parse: %s (%s)", jerr.text, line);
		const char *type = json_string_value(json_object_get(j, "type"));
		cr_assert_not_null(type, "line has no type: %.200s", line);
		if (!strcmp(type, "snapshot")) {
			json_int_t seq = geti(j, "store_seq");
			json_t *report = json_object_get(j, "report");
			json_t *stats = json_object_get(j, "stats");
			json_t *verified = json_object_get(j, "verified");

			l->snapshots++;
			if (seq <= l->last_seq)
				l->seq_order_ok = false;
			l->last_seq = seq;
			if (!report_checksum_ok(report))
				l->bad_checksums++;
			if ((json_int_t)json_u64(json_object_get(report, "seq")) != seq)
				l->report_seq_ok = false;
			/* Periodic tags carry stats: a document or a missing reason. */
			if (!strncmp(json_string_value(json_object_get(j, "tag")), "periodic_",
				     9) &&
			    !(json_is_object(stats) && (json_object_get(stats, "missing") ||
							json_object_get(stats, "runnable"))))
				l->stats_ok = false;
			if (verified && !json_is_true(verified))
				l->verified_ok = false;
		} else if (!strcmp(type, "event")) {
			l->events++;
			cr_assert_not_null(json_string_value(json_object_get(j, "kind")));
		} else if (!strcmp(type, "kernel_op")) {
			json_t *reply = json_object_get(j, "reply");

			l->kernel_ops++;
			if (!json_is_integer(json_object_get(reply, "id")) ||
			    !json_is_boolean(json_object_get(reply, "success")) ||
			    !json_is_array(json_object_get(reply, "read_values")))
				l->aux_ok = false;
		} else if (!strcmp(type, "cgroup_procs")) {
			l->cgroup_procs++;
			if (!json_is_string(json_object_get(j, "cgroup")) ||
			    !json_is_array(json_object_get(j, "pids")))
				l->aux_ok = false;
		} else if (!strcmp(type, "summary")) {
			l->summaries++;
			json_decref(l->summary);
			l->summary = json_incref(j);
		} else {
			cr_assert_fail("unknown line type %s", type);
		}
		cr_assert(l->summaries == 0 || !strcmp(type, "summary"),
			  "a %s line after the summary", type);
		json_decref(j);
	}
	free(copy);
	cr_assert_eq(l->summaries, 1, "one summary line, last");
}

static void assert_adds_up(json_t *s, json_int_t stores)
{
	json_int_t sum = geti(s, "delivered") + geti(s, "superseded") + geti(s, "evicted") +
			 geti(s, "lapped") + geti(s, "torn");

	cr_assert_eq(geti(s, "stores"), stores, "summary stores %lld, want %lld",
		     (long long)geti(s, "stores"), (long long)stores);
	cr_assert_eq(sum, stores, "outcomes add up to %lld, stores %lld", (long long)sum,
		     (long long)stores);
	cr_assert(json_is_true(json_object_get(s, "adds_up")));
}

/* The aux log's outcomes add up, and every delivered record had its line. */
static void assert_aux_adds_up(const struct lines *l, json_int_t records)
{
	json_t *aux = json_object_get(l->summary, "aux");

	cr_assert(json_is_object(aux), "the summary has aux counts");
	cr_assert_eq(geti(aux, "records"), records, "aux records %lld, want %lld",
		     (long long)geti(aux, "records"), (long long)records);
	cr_assert_eq(geti(aux, "delivered") + geti(aux, "lapped"), records);
	cr_assert_eq((json_int_t)(l->kernel_ops + l->cgroup_procs), geti(aux, "delivered"));
	cr_assert(l->aux_ok, "every aux line has its fields");
}

static bool one_line(const char *s)
{
	size_t n = strlen(s);

	return n > 1 && strchr(s, '\n') == s + n - 1;
}

static bool file_has(const char *path, const char *needle)
{
	char *t = tu_slurp(path);
	bool yes = strstr(t, needle) != NULL;

	free(t);
	return yes;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Wait until the coordinator started with stdout in co says it serves. */
static void await_serving(const char *co, pid_t coord)
{
	while (!file_has(co, "serving on")) {
		cr_assert_eq(waitpid(coord, NULL, WNOHANG), 0, "the coordinator exited early");
		nap_ms(10);
	}
}

/*
 * Run `stat --format json` until the region has made `stores` stores and
 * has `consumers` consumers attached (stat leaves itself out), while each
 * process of alive[] (0-terminated; its stderr in the same place of errs)
 * still runs. Returns the last stat object. No order of attaching is
 * assumed: stat itself counts toward --wait-consumers.
 */
static json_t *await_stat(const char *sock, json_int_t stores, size_t consumers,
			  const pid_t *alive, const char *const *errs)
{
	for (;;) {
		struct run r = run_args(
		    (const char *const[]){ "stat", "--socket", sock, "--format", "json", NULL });
		cr_assert_eq(r.status, 0, "stat failed: %s", r.err);
		json_t *st = json_loads(r.out, 0, NULL);
		run_free(&r);
		cr_assert_not_null(st, "stat --format json does not parse");
		if (geti(json_object_get(st, "counters"), "stores") >= stores &&
		    json_array_size(json_object_get(st, "consumers")) == consumers)
			return st;
		json_decref(st);
		for (size_t i = 0; alive && alive[i]; i++)
			cr_assert_eq(waitpid(alive[i], NULL, WNOHANG), 0, "a process exited early: %s",
				     tu_slurp(errs[i]));
		nap_ms(20);
	}
}

/* ---- the end-to-end run ----------------------------------------------------------- */

Test(cli, coordinator_two_followers_stat_save_and_image_all_add_up, .timeout = 120)
{
	char sock[300], img[300], co[300], ce[300], ao[300], ae[300], bo[300], be[300];

	make_dir();
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	snprintf(img, sizeof(img), "%s/region.img", dir);
	snprintf(co, sizeof(co), "%s/coord.out", dir);
	snprintf(ce, sizeof(ce), "%s/coord.err", dir);
	snprintf(ao, sizeof(ao), "%s/a.out", dir);
	snprintf(ae, sizeof(ae), "%s/a.err", dir);
	snprintf(bo, sizeof(bo), "%s/b.out", dir);
	snprintf(be, sizeof(be), "%s/b.err", dir);

	/* It stores only once both followers are attached, then lingers until SIGTERM. */
	pid_t coord = start(
	    co, ce,
	    (const char *const[]){ "coordinator", "--socket",	     sock,	"--count",
				   "400",	  "--interval-ms",   "0",	"--tag-mode",
				   "mixed",	  "--max-snapshots", "16",	"--payload-bytes",
				   "700",	  "--log-bytes",     "1048576", "--wait-consumers",
				   "2",		  "--linger-ms",     "600000",	NULL });
	await_serving(co, coord);
	pid_t a = start(ao, ae,
			(const char *const[]){ "drain", "--socket", sock, "--follow", "--verify",
					       "--events", "--aux", NULL });
	pid_t b = start(bo, be,
			(const char *const[]){ "drain", "--socket", sock, "--follow",
					       "--all-versions", "--format", "jsonl", NULL });

	/*
	 * stat until every store is made and both followers are listed. The
	 * coordinator may store everything before a slow-starting follower
	 * attaches (stat counts toward --wait-consumers); that one still reads
	 * it all from the log.
	 */
	struct run r0;
	json_t *st = await_stat(sock, STORES, 2, (const pid_t[]){ a, b, 0 },
				(const char *const[]){ ae, be });
	cr_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(st, "coordinator"), "state")),
	    "alive");
	/* The region id: 32 hex digits, not all zero; the table shows the same. */
	char region[40];
	const char *rid =
	    json_string_value(json_object_get(json_object_get(st, "header"), "region_id"));
	cr_assert(rid && strlen(rid) == 32 && strspn(rid, "0123456789abcdef") == 32 &&
		      strspn(rid, "0") < 32,
		  "stat's region_id: %s", rid ? rid : "(none)");
	snprintf(region, sizeof(region), "%s", rid);
	json_decref(st);
	r0 = run_args((const char *const[]){ "stat", "--socket", sock, "--format", "table", NULL });
	cr_assert_eq(r0.status, 0, "stat failed: %s", r0.err);
	cr_assert(strstr(r0.out, region), "the table does not show the region id:\n%s", r0.out);
	run_free(&r0);

	/* stat --watch: one JSON object per redraw. */
	r0 = run_args((const char *const[]){ "stat", "--socket", sock, "--watch", "--iterations",
					     "2", "--format", "json", NULL });
	cr_assert_eq(r0.status, 0, "stat --watch failed: %s", r0.err);
	size_t objects = 0;
	char *save_nl = NULL;
	for (char *l = strtok_r(r0.out, "\n", &save_nl); l; l = strtok_r(NULL, "\n", &save_nl)) {
		json_t *w = json_loads(l, 0, NULL);

		cr_assert_not_null(w, "stat --watch line does not parse: %s", l);
		objects++;
		json_decref(w);
	}
	cr_assert_eq(objects, 2);
	run_free(&r0);

	/* save: the image appears whole, with no temporary left next to it. */
	struct run r =
	    run_args((const char *const[]){ "save", "--socket", sock, "--output", img, NULL });
	cr_assert_eq(r.status, 0, "save failed: %s", r.err);
	run_free(&r);
	struct stat sbuf;
	cr_assert_eq(stat(img, &sbuf), 0);
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d)))
		cr_assert(strncmp(de->d_name, ".region.img.", 12) != 0, "temporary %s left",
			  de->d_name);
	closedir(d);

	/* save into a directory that does not exist: exit 1, no file. */
	char bad_out[400];
	snprintf(bad_out, sizeof(bad_out), "%s/missing-dir/x.img", dir);
	r = run_args((const char *const[]){ "save", "--socket", sock, "--output", bad_out, NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(strlen(r.err) > 0);
	cr_assert_neq(stat(bad_out, &sbuf), 0);
	run_free(&r);

	/* SIGTERM: the coordinator closes cleanly, both followers see it and finish. */
	kill(coord, SIGTERM);
	cr_assert_eq(finish(coord), 0);
	cr_assert_eq(finish(a), 0, "follower a failed: %s", tu_slurp(ae));
	cr_assert_eq(finish(b), 0, "follower b failed: %s", tu_slurp(be));

	struct lines la, lb;
	char *text = tu_slurp(ao);
	check_lines(text, &la);
	free(text);
	assert_adds_up(la.summary, STORES);
	cr_assert_str_eq(json_string_value(json_object_get(la.summary, "coordinator")), "closed");
	cr_assert_str_eq(json_string_value(json_object_get(la.summary, "region_id")), region,
			 "the drain's summary names another region than stat");
	cr_assert_eq((json_int_t)la.snapshots, geti(la.summary, "delivered"));
	cr_assert_eq(la.bad_checksums, 0, "%zu reports fail their checksum", la.bad_checksums);
	cr_assert(la.seq_order_ok && la.report_seq_ok && la.stats_ok && la.verified_ok);
	cr_assert_eq(geti(la.summary, "bad"), 0);
	cr_assert_eq(geti(la.summary, "verified"), geti(la.summary, "delivered"));
	cr_assert_eq((json_int_t)la.events,
		     geti(la.summary, "events") + (geti(la.summary, "events_truncated") > 0));
	cr_assert_gt(la.events, 0, "mixed tags make overwrites and evictions");
	/* A kernel op and a cgroup.procs snapshot after every 10th store (the default). */
	assert_aux_adds_up(&la, 2 * STORES / 10);
	cr_assert_eq(la.kernel_ops, STORES / 10);

	text = tu_slurp(bo);
	check_lines(text, &lb);
	free(text);
	assert_adds_up(lb.summary, STORES);
	cr_assert_eq((json_int_t)lb.snapshots, geti(lb.summary, "delivered"));
	cr_assert_eq(lb.bad_checksums, 0);
	cr_assert(lb.seq_order_ok && lb.report_seq_ok && lb.stats_ok);
	cr_assert_eq(lb.events, 0, "no event lines without --events");
	cr_assert_eq(lb.kernel_ops + lb.cgroup_procs, 0, "no aux lines without --aux");
	cr_assert_geq(geti(lb.summary, "delivered"), geti(la.summary, "delivered"),
		      "all-versions delivers at least what the resident drain does");
	json_decref(la.summary);
	json_decref(lb.summary);

	/* The image: every store accounted for, the resident reports delivered intact. */
	struct lines li;
	r = run_args(
	    (const char *const[]){ "drain", "--file", img, "--format", "jsonl", "--aux", NULL });
	cr_assert_eq(r.status, 0, "drain --file failed: %s", r.err);
	check_lines(r.out, &li);
	run_free(&r);
	assert_adds_up(li.summary, STORES);
	assert_aux_adds_up(&li, 2 * STORES / 10);
	cr_assert_eq((json_int_t)li.snapshots, geti(li.summary, "delivered"));
	cr_assert_gt(li.snapshots, 0);
	cr_assert_leq(li.snapshots, 16, "at most the cap is resident");
	cr_assert_eq(li.bad_checksums, 0);
	cr_assert(li.seq_order_ok && li.report_seq_ok && li.stats_ok);
	json_decref(li.summary);

	/* events on the image: one line per retained event, then a summary. */
	r = run_args((const char *const[]){ "events", "--file", img, NULL });
	cr_assert_eq(r.status, 0, "events --file failed: %s", r.err);
	check_lines(r.out, &li);
	run_free(&r);
	cr_assert_eq(li.snapshots, 0);
	cr_assert_gt(li.events, 0);
	cr_assert_eq((json_int_t)li.events,
		     geti(li.summary, "events") + (geti(li.summary, "events_truncated") > 0));
	json_decref(li.summary);

	r = run_args((const char *const[]){ "stat", "--file", img, "--format", "json", NULL });
	cr_assert_eq(r.status, 0);
	st = json_loads(r.out, 0, NULL);
	cr_assert_not_null(st);
	cr_assert_eq(geti(json_object_get(st, "counters"), "stores"), STORES);
	cr_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(st, "header"), "region_id")), region,
	    "the saved image names another region");
	cr_assert(json_is_null(json_object_get(st, "consumers")));
	json_decref(st);
	run_free(&r);

	r = run_args((const char *const[]){ "drain", "--file", img, "--format", "table", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "adds up            yes"));
	run_free(&r);

	/* The same image claiming another ABI is refused with a reason. */
	char other[400];
	snprintf(other, sizeof(other), "%s/other-abi.img", dir);
	char *bytes = NULL;
	size_t len = 0;
	{
		FILE *in = fopen(img, "rb");
		FILE *m = open_memstream(&bytes, &len);
		char chunk[65536];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
			fwrite(chunk, 1, n, m);
		fclose(m);
		fclose(in);
	}
	bytes[8] = 2; /* abi_major */
	FILE *f = fopen(other, "wb");
	fwrite(bytes, 1, len, f);
	fclose(f);
	free(bytes);
	r = run_args((const char *const[]){ "drain", "--file", other, NULL });
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.err, "ABI"), "says why: %s", r.err);
	run_free(&r);
	remove_dir();
}

/* ---- bad input -------------------------------------------------------------------- */

Test(cli, every_usage_error_exits_2_with_a_message, .timeout = 60)
{
	static const char *const cases[][8] = {
		{ NULL },
		{ "no-such-command", NULL },
		{ "drain", NULL },
		{ "drain", "--socket", NULL },
		{ "drain", "--socket", "a", "--file", "b", NULL },
		{ "drain", "--socket", "a", "--format", "xml", NULL },
		{ "drain", "--socket", "a", "--bogus", NULL },
		{ "drain", "--file", "x", "--follow", NULL },
		{ "drain", "--socket", "a", "--timeout-ms", "10", NULL },
		{ "drain", "--socket", "a", "--follow", "--timeout-ms", "soon", NULL },
		{ "drain", "--socket", "a", "stray", NULL },
		{ "events", "--socket", "a", "--verify", NULL },
		{ "events", NULL },
		{ "stat", "--socket", "a", "--format", "jsonl", NULL },
		{ "stat", "--socket", "a", "--iterations", "3", NULL },
		{ "save", "--socket", "a", NULL },
		{ "save", "--file", "a", "--output", "b", NULL },
		{ "save", "--output", "b", NULL },
		{ "coordinator", NULL },
		{ "coordinator", "--socket", "a", "--count", "-1", NULL },
		{ "coordinator", "--socket", "a", "--tag-mode", "cycle:0", NULL },
		{ "coordinator", "--socket", "a", "--tag-mode", "random", NULL },
		{ "coordinator", "--socket", "a", "--max-snapshots", "0", NULL },
		{ "coordinator", "--socket", "a", "--log-bytes", "10", NULL },
		{ "coordinator", "--socket", "a", "--payload-bytes", "100000000", NULL },
		{ "demo", "--consumers", "0", NULL },
		{ "demo", "--seconds", "x", NULL },
		{ "version", "extra", NULL },
		{ "drain", "--pid", "abc", NULL },
		{ "drain", "--socket", "", NULL },
		{ "drain", "--socket", "a", "--help=foo", NULL },
		{ "coordinator", "--socket", "a", "--count", " 5", NULL },
		{ "drain", "--socket", "a", "--expect-uid", "root", NULL },
		{ "stat", "--file", "a", "--expect-uid", "0", NULL },
		{ "coordinator", "--socket", "a", "--allowed-gid", "-1", NULL },
		{ "coordinator", "--socket", "a", "--log-bytes", "18Q", NULL },
		{ "coordinator", "--socket", "a", "--log-bytes", "2G", NULL },
		{ "drain", "--socket", "a", "--fields", "tag,bogus", NULL },
		{ "drain", "--socket", "a", "--fields", "tag", "--format", "table", NULL },
		{ "drain", "--socket", "a", "--no-report", "--format", "table", NULL },
		{ "drain", "--socket", "a", "--wait=soon", NULL },
		{ "drain", "--file", "x", "--wait", NULL },
		{ "events", "--socket", "a", "--no-report", NULL },
		{ "stat", "--socket", "a", "--wait=-1", NULL },
		{ "drain", "--socket", "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock", NULL },
		{ "help", "no-such-command", NULL },
		{ "help", "drain", "extra", NULL },
		{ "--bogus", NULL },
		{ "version", "--bogus", NULL },
	};

	make_dir();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct run r = run_args(cases[i]);

		cr_expect_eq(r.status, 2, "case %zu (%s %s) exited %d", i,
			     cases[i][0] ? cases[i][0] : "",
			     cases[i][0] && cases[i][1] ? cases[i][1] : "", r.status);
		cr_expect(strlen(r.err) > 0, "case %zu printed nothing on stderr", i);
		/* One line naming the problem; with no command at all, the usage. */
		if (cases[i][0]) {
			cr_expect(strncmp(r.err, "snapbridge", 10) == 0, "case %zu: %s", i, r.err);
			cr_expect(one_line(r.err), "case %zu: not one line: %s", i, r.err);
		} else {
			cr_expect(strncmp(r.err, "usage", 5) == 0, "%s", r.err);
		}
		run_free(&r);
	}
	remove_dir();
}

Test(cli, runtime_errors_exit_1_and_name_the_problem, .timeout = 60)
{
	char nosock[300], notimg[300], out[300];

	make_dir();
	snprintf(nosock, sizeof(nosock), "%s/nobody.sock", dir);
	snprintf(notimg, sizeof(notimg), "%s/not-an-image", dir);
	snprintf(out, sizeof(out), "%s/out.img", dir);
	FILE *f = fopen(notimg, "w");
	fprintf(f, "this is not a snapbridge region\n");
	fclose(f);

	struct run r = run_args((const char *const[]){ "drain", "--socket", nosock, NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(one_line(r.err), "one line on stderr: %s", r.err);
	cr_assert_not_null(strstr(r.err, nosock), "names the socket: %s", r.err);
	run_free(&r);

	r = run_args((const char *const[]){ "drain", "--file", notimg, NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(one_line(r.err), "one line on stderr: %s", r.err);
	cr_assert_not_null(strstr(r.err, "not a snapbridge"), "%s", r.err);
	run_free(&r);

	r = run_args((const char *const[]){ "stat", "--file", "/nonexistent/image", NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(one_line(r.err), "one line on stderr: %s", r.err);
	cr_assert(strlen(r.err) > 0);
	run_free(&r);

	r = run_args((const char *const[]){ "save", "--socket", nosock, "--output", out, NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(one_line(r.err), "one line on stderr: %s", r.err);
	struct stat sb;
	cr_assert_neq(stat(out, &sb), 0, "no output file after a failed save");
	run_free(&r);
	remove_dir();
}

/* ---- the demo --------------------------------------------------------------------- */

Test(cli, demo_json_parses_and_every_consumer_adds_up, .timeout = 120)
{
	make_dir();
	struct run r = run_args(
	    (const char *const[]){ "demo", "--seconds", "1", "--consumers", "2", "--json", NULL });
	cr_assert_eq(r.status, 0, "demo failed: %s", r.err);
	json_error_t jerr;
	json_t *j = json_loads(r.out, 0, &jerr);
	cr_assert_not_null(j, "demo --json does not parse: %s", jerr.text);
	json_int_t stores = geti(j, "stores");
	json_t *cons = json_object_get(j, "consumers");

	cr_assert_gt(stores, 0);
	cr_assert(json_is_true(json_object_get(j, "ok")));
	cr_assert_eq(json_array_size(cons), 2);
	size_t i;
	json_t *c;
	json_array_foreach(cons, i, c)
	{
		json_t *s = json_object_get(c, "summary");

		assert_adds_up(s, stores);
		cr_assert_eq(geti(s, "bad"), 0);
		cr_assert_eq(geti(s, "verified"), geti(s, "delivered"));
		cr_assert_eq(geti(c, "exit_status"), 0);
	}
	json_decref(j);
	run_free(&r);
	remove_dir();
}

/* ---- save against a busy writer --------------------------------------------------- */

Test(cli, save_while_the_writer_stores_flat_out_gives_images_that_verify, .timeout = 120)
{
	char sock[300], img[300], co[300], ce[300];

	make_dir();
	snprintf(sock, sizeof(sock), "%s/busy.sock", dir);
	snprintf(img, sizeof(img), "%s/busy.img", dir);
	snprintf(co, sizeof(co), "%s/coord.out", dir);
	snprintf(ce, sizeof(ce), "%s/coord.err", dir);
	/* A small log the writer laps every few milliseconds, stores with no pause. */
	pid_t coord = start(co, ce,
			    (const char *const[]){ "coordinator", "--socket", sock, "--interval-ms",
						   "0", "--tag-mode", "unique", "--max-snapshots",
						   "64", "--log-bytes", "262144", "--payload-bytes",
						   "1500", "--aux-every", "100", NULL });
	await_serving(co, coord);
	json_int_t last_stores = 0;
	for (int i = 0; i < 3; i++) {
		/*
		 * On a loaded machine the writer may not run at all between two
		 * saves: wait until it has stored past the last image (by two: the
		 * store stat sees may still be in flight, the one before it is
		 * committed), and before the first one, past its first aux records
		 * (after store 100).
		 */
		json_decref(await_stat(sock, i ? last_stores + 2 : 102, 0, (const pid_t[]){ coord, 0 },
				       (const char *const[]){ ce }));
		struct run r = run_args(
		    (const char *const[]){ "save", "--socket", sock, "--output", img, NULL });
		cr_assert_eq(r.status, 0, "save %d failed: %s", i, r.err);
		run_free(&r);

		/* --verify exits 1 on any report whose bytes are not what was stored. */
		struct lines l;
		r = run_args((const char *const[]){ "drain", "--file", img, "--all-versions",
						    "--verify", "--aux", NULL });
		cr_assert_eq(r.status, 0, "image %d: %s", i, r.err);
		check_lines(r.out, &l);
		run_free(&r);
		json_int_t stores = geti(l.summary, "stores");
		assert_adds_up(l.summary, stores);
		cr_assert_gt(stores, last_stores,
			     "image %d holds %lld stores, the one before %lld: each image holds "
			     "the stores made so far",
			     i, (long long)stores, (long long)last_stores);
		cr_assert_gt(geti(l.summary, "delivered"), 0);
		cr_assert_eq(l.bad_checksums, 0);
		cr_assert(l.seq_order_ok && l.report_seq_ok && l.verified_ok);
		cr_assert_eq(geti(l.summary, "torn"), 0, "no record in an image is half-written");
		json_t *aux = json_object_get(l.summary, "aux");
		cr_assert_gt(geti(aux, "records"), 0);
		cr_assert_eq(geti(aux, "delivered") + geti(aux, "lapped"), geti(aux, "records"));
		cr_assert_eq((json_int_t)(l.kernel_ops + l.cgroup_procs), geti(aux, "delivered"));
		cr_assert(l.aux_ok);
		last_stores = stores;
		json_decref(l.summary);
	}
	kill(coord, SIGTERM);
	cr_assert_eq(finish(coord), 0);
	remove_dir();
}

/* ---- output: where it goes, and when ------------------------------------------------ */

Test(cli, save_never_replaces_what_is_not_a_regular_file, .timeout = 60)
{
	char sock[300], fifo[300], link[300], target[300], co[300], ce[300];

	make_dir();
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	snprintf(fifo, sizeof(fifo), "%s/a.fifo", dir);
	snprintf(link, sizeof(link), "%s/a.link", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(co, sizeof(co), "%s/coord.out", dir);
	snprintf(ce, sizeof(ce), "%s/coord.err", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	FILE *f = fopen(target, "w");
	fputs("keep me\n", f);
	fclose(f);
	cr_assert_eq(symlink(target, link), 0);
	pid_t coord = start(co, ce,
			    (const char *const[]){ "coordinator", "--socket", sock, "--count", "5",
						   "--linger-ms", "600000", NULL });
	await_serving(co, coord);
	const char *refused[] = { fifo, link, "/dev/null" };
	for (size_t i = 0; i < 3; i++) {
		struct run r = run_args((const char *const[]){ "save", "--socket", sock, "--output",
							       refused[i], NULL });
		cr_assert_eq(r.status, 1, "%s: exit %d", refused[i], r.status);
		cr_assert(one_line(r.err) && strstr(r.err, "not a regular file"), "%s", r.err);
		run_free(&r);
	}
	struct stat st;
	cr_assert_eq(lstat(fifo, &st), 0);
	cr_assert(S_ISFIFO(st.st_mode), "the FIFO is still a FIFO");
	cr_assert_eq(lstat(link, &st), 0);
	cr_assert(S_ISLNK(st.st_mode), "the symlink is still a symlink");
	cr_assert(file_has(target, "keep me"), "its target is untouched");
	kill(coord, SIGTERM);
	cr_assert_eq(finish(coord), 0);
	remove_dir();
}

Test(cli, a_failed_write_is_one_line_and_exit_1_and_a_closed_pipe_is_quiet, .timeout = 60)
{
	char e[300];

	make_dir();
	snprintf(e, sizeof(e), "%s/err", dir);
	/* /dev/full: every write fails with ENOSPC. */
	int status = finish(start("/dev/full", e, (const char *const[]){ "version", NULL }));
	char *err = tu_slurp(e);
	cr_assert_eq(status, 1, "version > /dev/full exited %d", status);
	cr_assert(one_line(err) && strstr(err, "cannot write the output"), "%s", err);
	free(err);
	status = finish(start("/dev/full", e, (const char *const[]){ "demo", "--help", NULL }));
	cr_assert_eq(status, 1, "help > /dev/full exited %d", status);
	remove_dir();
}

/* Start SB_TOOL with stdout into a pipe we read. */
static pid_t start_piped(int *rd, const char *err_path, const char *const args[])
{
	const char *argv[32] = { "snapbridge" };
	int p[2], n = 1;

	while (args[n - 1] && n < 31) {
		argv[n] = args[n - 1];
		n++;
	}
	argv[n] = NULL;
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(p[1], 1);
		dup2(e, 2);
		close(p[0]);
		execv(SB_TOOL, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	*rd = p[0];
	return pid;
}

/*
 * A follower's lines reach a pipe as they are drained, not when a 4 KiB
 * buffer fills: the coordinator stores 20 small records and then lingers
 * without closing, so unflushed rows (under 4 KiB in all) would never
 * arrive. Then the reader closes the pipe, and the follower ends quietly.
 */
Test(cli, a_follower_piped_into_a_reader_delivers_each_round_at_once, .timeout = 120)
{
	char sock[300], co[300], ce[300], fe[300], buf[512];
	int rd;

	make_dir();
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	snprintf(co, sizeof(co), "%s/coord.out", dir);
	snprintf(ce, sizeof(ce), "%s/coord.err", dir);
	snprintf(fe, sizeof(fe), "%s/follow.err", dir);
	pid_t coord =
	    start(co, ce,
		  (const char *const[]){ "coordinator", "--socket", sock, "--count", "20",
					 "--interval-ms", "200", "--payload-bytes", "64",
					 "--wait-consumers", "1", "--linger-ms", "600000", NULL });
	await_serving(co, coord);
	pid_t fol = start_piped(&rd, fe,
				(const char *const[]){ "drain", "--socket", sock, "--follow",
						       "--format", "table", NULL });
	FILE *in = fdopen(rd, "r");
	int rows = 0;
	while (rows < 3) {
		struct pollfd p = { rd, POLLIN, 0 };

		/* A liveness bound, not a speed target: flushed rows come in well under 1 s. */
		cr_assert_eq(poll(&p, 1, 30000), 1, "no row reached the pipe in 30 s (%d so far)",
			     rows);
		cr_assert_not_null(fgets(buf, sizeof(buf), in), "the follower ended early");
		rows += strncmp(buf, "snap", 4) == 0;
	}
	fclose(in); /* the reader goes away, as head does */
	int status = finish(fol);
	cr_assert_eq(status, 0, "a closed pipe ends the follower quietly (exit %d)", status);
	char *err = tu_slurp(fe);
	cr_assert_eq(strlen(err), 0, "nothing on stderr: %s", err);
	free(err);
	kill(coord, SIGTERM);
	finish(coord);
	remove_dir();
}

Test(cli, a_one_shot_drain_ends_though_the_writer_never_stops, .timeout = 120)
{
	char sock[300], co[300], ce[300];

	make_dir();
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	snprintf(co, sizeof(co), "%s/coord.out", dir);
	snprintf(ce, sizeof(ce), "%s/coord.err", dir);
	/*
	 * A 1 MiB log: a one-shot drain reads at most about a log's worth, and
	 * the default 18 MiB (some 100,000 records turned into JSON) took
	 * longer than the test's timeout under ASan on a loaded machine.
	 */
	pid_t coord = start(co, ce,
			    (const char *const[]){ "coordinator", "--socket", sock, "--count",
						   "1000000000", "--interval-ms", "0",
						   "--payload-bytes", "64", "--log-bytes", "1M", NULL });
	await_serving(co, coord);
	nap_ms(200);
	struct run r =
	    run_args((const char *const[]){ "drain", "--socket", sock, "--all-versions", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	struct lines l;
	check_lines(r.out, &l);
	cr_assert_not_null(l.summary, "it ended with a summary");
	cr_assert(json_is_true(json_object_get(l.summary, "adds_up")));
	cr_assert_str_eq(json_string_value(json_object_get(l.summary, "coordinator")), "alive",
			 "it ended while the writer still ran");
	json_decref(l.summary);
	run_free(&r);
	kill(coord, SIGTERM);
	cr_assert_eq(finish(coord), 0);
	remove_dir();
}

/* ---- one convention for every command ------------------------------------------------ */

static const char *const every_command[] = { "coordinator", "drain", "events", "stat",
					     "save",	    "export", "demo", "version" };

Test(cli, help_cmd_is_cmd_help_and_every_command_takes_version, .timeout = 60)
{
	make_dir();
	struct run v = run_args((const char *const[]){ "version", NULL });
	cr_assert_eq(v.status, 0);
	cr_assert(strncmp(v.out, "snapbridge " SNAPBRIDGE_VERSION " (library ", 19) == 0, "%s",
		  v.out);
	cr_assert_not_null(strstr(v.out, sb_version()), "names the library it runs with");
	for (size_t i = 0; i < sizeof(every_command) / sizeof(every_command[0]); i++) {
		const char *c = every_command[i];
		struct run a = run_args((const char *const[]){ "help", c, NULL });
		struct run b = run_args((const char *const[]){ c, "--help", NULL });
		struct run ver = run_args((const char *const[]){ c, "--version", NULL });

		cr_expect_eq(a.status, 0, "help %s: %s", c, a.err);
		cr_expect_str_eq(a.out, b.out, "'help %s' differs from '%s --help'", c, c);
		cr_expect(strstr(a.out, "--version") && strstr(a.out, "--help"),
			  "%s --help lists --help and --version", c);
		cr_expect(strstr(a.out, "example"), "%s --help has examples", c);
		cr_expect_eq(ver.status, 0, "%s --version exited %d: %s", c, ver.status, ver.err);
		cr_expect_str_eq(ver.out, v.out, "%s --version", c);
		run_free(&a);
		run_free(&b);
		run_free(&ver);
	}
	struct run top = run_args((const char *const[]){ "--version", NULL });
	cr_expect_str_eq(top.out, v.out);
	run_free(&top);
	struct run h = run_args((const char *const[]){ "help", NULL });
	cr_expect_eq(h.status, 0);
	cr_expect_not_null(strstr(h.out, "commands:"));
	/* help is a command too: --help and --version, and what its error points to works. */
	struct run hh = run_args((const char *const[]){ "help", "--help", NULL });
	cr_expect_eq(hh.status, 0, "help --help: %s", hh.err);
	cr_expect_str_eq(hh.out, h.out);
	struct run hv = run_args((const char *const[]){ "help", "--version", NULL });
	cr_expect_eq(hv.status, 0, "help --version: %s", hv.err);
	cr_expect_str_eq(hv.out, v.out);
	struct run hb = run_args((const char *const[]){ "help", "bogus", NULL });
	cr_expect_eq(hb.status, 2);
	cr_expect_not_null(strstr(hb.err, "unknown command 'bogus'"), "%s", hb.err);
	run_free(&h);
	run_free(&hh);
	run_free(&hv);
	run_free(&hb);
	run_free(&v);
	remove_dir();
}

/* ---- scripts: --wait, exit 3, what is wrong with a socket ------------------------------ */

static pid_t start_coordinator(const char *sock, const char *co, const char *ce, const char *count)
{
	return start(co, ce,
		     (const char *const[]){ "coordinator", "--socket", sock, "--count", count,
					    "--interval-ms", "1", "--payload-bytes", "256",
					    "--linger-ms", "600000", NULL });
}

Test(cli, drain_waits_for_a_coordinator_that_starts_later, .timeout = 120)
{
	char sock[300], co[300], ce[300], fo[300], fe[300];

	make_dir();
	in_dir(sock, "later.sock");
	in_dir(co, "coord.out");
	in_dir(ce, "coord.err");
	in_dir(fo, "f.out");
	in_dir(fe, "f.err");
	/* Nobody serves yet: --wait keeps trying; the follower ends when the coordinator closes. */
	pid_t f = start(fo, fe,
			(const char *const[]){ "drain", "--socket", sock, "--wait", "--follow",
					       "--format", "jsonl", "--quiet", NULL });
	nap_ms(100); /* not a timing assumption: the order does not matter to the result */
	pid_t coord = start_coordinator(sock, co, ce, "50");
	await_serving(co, coord);
	struct run r;
	json_decref(await_stat(sock, 50, 1, (const pid_t[]){ f, 0 }, (const char *const[]){ fe }));
	kill(coord, SIGTERM);
	cr_assert_eq(finish(coord), 0);
	cr_assert_eq(finish(f), 0, "%s", tu_slurp(fe));
	struct lines l;
	char *text = tu_slurp(fo);
	check_lines(text, &l);
	free(text);
	assert_adds_up(l.summary, 50);
	json_decref(l.summary);

	/* --wait=MS with nobody there: gives up after MS, exit 1, naming the socket. */
	r = run_args((const char *const[]){ "stat", "--socket", sock, "--wait=200", NULL });
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert(one_line(r.err) && strstr(r.err, sock), "%s", r.err);
	/* It says it waited, and does not tell a user who gave --wait to give it. */
	cr_assert(strstr(r.err, "200 ms") && !strstr(r.err, "give --wait"), "%s", r.err);
	run_free(&r);
	remove_dir();
}

Test(cli, a_follower_exits_3_when_its_coordinator_dies_and_0_when_it_closes, .timeout = 120)
{
	char sock[300], co[300], ce[300], fo[300], fe[300];

	make_dir();
	in_dir(sock, "die.sock");
	in_dir(co, "coord.out");
	in_dir(ce, "coord.err");
	in_dir(fo, "f.out");
	in_dir(fe, "f.err");
	pid_t coord = start_coordinator(sock, co, ce, "20");
	await_serving(co, coord);
	pid_t f = start(fo, fe,
			(const char *const[]){ "drain", "--socket", sock, "--follow", "--quiet",
					       "--format", "jsonl", NULL });
	pid_t e = start("/dev/null", "/dev/null",
			(const char *const[]){ "events", "--socket", sock, "--follow", NULL });
	json_decref(await_stat(sock, 0, 2, (const pid_t[]){ f, 0 }, (const char *const[]){ fe }));
	kill(coord, SIGKILL);
	finish(coord);
	int status = finish(f);
	cr_assert_eq(status, 3, "drain --follow after the coordinator died exited %d: %s", status,
		     tu_slurp(fe));
	cr_assert_eq(finish(e), 3, "events --follow after the coordinator died");
	struct lines l;
	char *text = tu_slurp(fo);
	check_lines(text, &l);
	free(text);
	cr_assert_str_eq(json_string_value(json_object_get(l.summary, "coordinator")), "dead");
	cr_assert(json_is_true(json_object_get(l.summary, "adds_up")));
	json_decref(l.summary);
	remove_dir();
}

/* A listening socket of some other kind at path; returns its descriptor. */
static int listen_at(const char *path, int type)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type, 0);

	cr_assert_geq(fd, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

Test(cli, socket_errors_say_what_is_at_the_path, .timeout = 60)
{
	char file[300], stream[300], seq[300];

	make_dir();
	in_dir(file, "plain-file");
	in_dir(stream, "stream.sock");
	in_dir(seq, "seqpacket.sock");
	FILE *f = fopen(file, "w");
	fputs("not a socket\n", f);
	fclose(f);
	int s1 = listen_at(stream, SOCK_STREAM);
	int s2 = listen_at(seq, SOCK_SEQPACKET);
	/* The seqpacket one accepts and hangs up without a hello, as another program might. */
	pid_t child = fork();
	if (child == 0) {
		for (;;) {
			int c = accept(s2, NULL, NULL);
			if (c >= 0)
				close(c);
		}
	}
	struct {
		const char *path, *says;
	} cases[] = {
		{ file, "is not a socket" },
		{ stream, "is not a snapbridge coordinator" },
		{ seq, "is not a snapbridge coordinator" },
	};
	for (size_t i = 0; i < 3; i++) {
		struct run r = run_args(
		    (const char *const[]){ "drain", "--socket", cases[i].path, NULL });
		cr_expect_eq(r.status, 1, "%s: exit %d", cases[i].path, r.status);
		cr_expect(one_line(r.err) && strstr(r.err, cases[i].says) &&
			      strstr(r.err, cases[i].path),
			  "%s: %s", cases[i].path, r.err);
		run_free(&r);
	}
	/* --wait does not wait for a file to become a socket. */
	struct run r = run_args((const char *const[]){ "drain", "--socket", file, "--wait", NULL });
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "is not a socket"), "%s", r.err);
	run_free(&r);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(s1);
	close(s2);
	remove_dir();
}

/* ---- output that fits: sizes, fields, tables, rates, wording --------------------------- */

Test(cli, sizes_take_binary_suffixes_and_jsonl_takes_fields, .timeout = 120)
{
	char sock[300], co[300], ce[300];

	make_dir();
	in_dir(sock, "s.sock");
	in_dir(co, "coord.out");
	in_dir(ce, "coord.err");
	pid_t coord = start(co, ce,
			    (const char *const[]){ "coordinator", "--socket", sock, "--count", "1",
						   "--log-bytes", "256K", "--payload-bytes", "2K",
						   "--linger-ms", "600000", NULL });
	await_serving(co, coord);
	json_t *st = await_stat(sock, 1, 0, NULL, NULL);
	cr_assert_eq(geti(json_object_get(st, "config"), "log_bytes"), 262144, "--log-bytes 256K");
	cr_assert(json_is_string(json_object_get(st, "time")), "stat lines carry a time");
	json_decref(st);

	/* --no-report: every key but the report; --fields: only those (and the type). */
	struct run r = run_args((const char *const[]){ "drain", "--socket", sock, "--no-report",
						       NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	json_t *line = json_loads(r.out, JSON_DISABLE_EOF_CHECK, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(line, "type")), "snapshot");
	cr_assert_null(json_object_get(line, "report"));
	cr_assert_not_null(json_object_get(line, "stats"));
	json_decref(line);
	run_free(&r);
	r = run_args((const char *const[]){ "drain", "--socket", sock, "--fields", "store_seq,tag",
					    NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	line = json_loads(r.out, JSON_DISABLE_EOF_CHECK, NULL);
	cr_assert_eq(json_object_size(line), 3, "type, store_seq, tag: %s", r.out);
	cr_assert_eq(geti(line, "store_seq"), 1);
	cr_assert_str_eq(json_string_value(json_object_get(line, "tag")), "periodic_000");
	json_decref(line);
	cr_assert_not_null(strstr(r.out, "\"type\":\"summary\""), "the summary still ends it");
	run_free(&r);
	/* The report's size shows up in the rows: 2 KiB of pattern. */
	r = run_args((const char *const[]){ "drain", "--socket", sock, "--format", "table", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, " 2") && strstr(r.out, "periodic_000"), "%s", r.out);
	run_free(&r);

	kill(coord, SIGTERM);
	cr_assert_eq(finish(coord), 0);
	cr_assert(file_has(co, "stored 1 capture in "), "says '1 capture': %s", tu_slurp(co));
	remove_dir();
}

/* Stores reports under tags of every length up to 63 and saves an image of them. */
static void long_tag_image(const char *img)
{
	static const unsigned char report[] = { 0x81, 0xa1, 'k', 0x01 };
	struct sb_report rep = { .schema = "t.v1", .msgpack = report, .msgpack_len = 4 };
	struct sb_bridge *b;
	struct sb_consumer *c;
	int data;
	char tag[SB_TAG_MAX + 1];

	cr_assert_eq(sb_bridge_create(NULL, NULL, &b), 0, "%s", sb_last_error());
	for (int n = 1; n <= SB_TAG_MAX; n += 31) {
		memset(tag, 'a' + n % 26, (size_t)n);
		tag[n] = '\0';
		cr_assert_eq(sb_bridge_store(b, tag, &rep), 0, "%s", sb_last_error());
	}
	memset(tag, 'z', SB_TAG_MAX);
	tag[SB_TAG_MAX] = '\0';
	cr_assert_eq(sb_bridge_store(b, tag, &rep), 0, "%s", sb_last_error());
	cr_assert_eq(sb_bridge_data_fd(b, &data), 0);
	cr_assert_eq(sb_consumer_open_fd(data, 0, &c), 0, "%s", sb_last_error());
	close(data);
	struct sb_image_info info;
	cr_assert_eq(sb_consumer_save_image(c, img, &info), 0, "%s", sb_last_error());
	cr_assert_eq(info.stores, 4);
	cr_assert_eq(info.records, 4);
	struct sb_region_stat st;
	cr_assert_eq(sb_consumer_stat(c, &st), 0);
	cr_assert_eq(st.stores, 4);
	cr_assert_eq(st.oldest_seq, 1, "nothing has left the log");
	cr_assert(st.heartbeat_known == false || st.heartbeat_age_ns < 600000000000ull);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(cli, table_columns_fit_tags_of_63_bytes, .timeout = 60)
{
	char img[300];

	make_dir();
	in_dir(img, "long-tags.img");
	long_tag_image(img);
	struct run r = run_args((const char *const[]){ "drain", "--file", img, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	/* Not a terminal: JSON lines unless asked. */
	cr_assert(strncmp(r.out, "{\"type\":\"snapshot\"", 18) == 0, "%s", r.out);
	run_free(&r);
	r = run_args((const char *const[]){ "drain", "--file", img, "--format", "table", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	/* Every row's SCHEMA column starts where the header's does. */
	const char *hdr = strstr(r.out, "SCHEMA");
	cr_assert_not_null(hdr, "%s", r.out);
	size_t col = (size_t)(hdr - r.out);
	size_t rows = 0;
	for (const char *l = strchr(r.out, '\n') + 1; strncmp(l, "snap", 4) == 0;
	     l = strchr(l, '\n') + 1) {
		cr_assert_eq(strncmp(l + col, "t.v1", 4), 0, "row %zu is misaligned:\n%s", rows,
			     r.out);
		rows++;
	}
	cr_assert_eq(rows, 4);
	cr_assert_not_null(strstr(r.out, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
			   "the 63-byte tag is whole");
	run_free(&r);
	/* And the image's file error reads as one message, not two. */
	r = run_args((const char *const[]){ "drain", "--file", "/nonexistent/x.img", NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(one_line(r.err) && !strstr(r.err, "cannot read image: cannot"), "%s", r.err);
	run_free(&r);
	remove_dir();
}

Test(cli, stat_watch_gives_rates_and_a_time_on_every_line, .timeout = 120)
{
	char sock[300], co[300], ce[300], fo[300], fe[300];

	make_dir();
	in_dir(sock, "s.sock");
	in_dir(co, "coord.out");
	in_dir(ce, "coord.err");
	in_dir(fo, "f.out");
	in_dir(fe, "f.err");
	/* A writer lapping a small log, and a follower we stop: every sample sees it lapped. */
	pid_t coord = start(co, ce,
			    (const char *const[]){ "coordinator", "--socket", sock, "--interval-ms",
						   "1", "--log-bytes", "64K", "--payload-bytes",
						   "1K", "--tag-mode", "unique", NULL });
	await_serving(co, coord);
	pid_t f = start(fo, fe,
			(const char *const[]){ "drain", "--socket", sock, "--follow", "--quiet",
					       "--format", "jsonl", NULL });
	json_decref(await_stat(sock, 0, 1, (const pid_t[]){ f, 0 }, (const char *const[]){ fe }));
	kill(f, SIGSTOP);
	struct run r = run_args((const char *const[]){ "stat", "--socket", sock, "--watch",
						       "--iterations", "4", "--format", "json",
						       NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	size_t n = 0;
	char *save = NULL;
	double stores_per_s = 0;
	json_int_t lapped = 0;
	for (char *l = strtok_r(r.out, "\n", &save); l; l = strtok_r(NULL, "\n", &save), n++) {
		json_t *j = json_loads(l, 0, NULL);
		json_t *rates = json_object_get(j, "rates");

		cr_assert_not_null(j, "%s", l);
		cr_assert(json_is_string(json_object_get(j, "time")), "line %zu has no time", n);
		if (n == 0) {
			cr_assert(json_is_null(rates), "no rates before a second sample");
		} else {
			cr_assert(json_is_object(rates), "line %zu has no rates", n);
			stores_per_s += json_number_value(json_object_get(rates, "stores_per_s"));
			cr_assert(json_is_number(json_object_get(rates, "log_bytes_per_s")));
			json_t *c = json_array_get(json_object_get(j, "consumers"), 0);
			cr_assert(json_is_number(json_object_get(c, "lapped_per_s")), "%s", l);
			lapped = geti(c, "lapped_seen");
		}
		json_decref(j);
	}
	cr_assert_eq(n, 4);
	cr_assert_gt(stores_per_s, 0, "the writer stores: a rate above 0");
	/* Stopped, its cursor stays while the log moves past it: seen lapped. */
	cr_assert_gt(lapped, 0, "a stopped consumer behind a lapping writer is seen lapped");
	kill(f, SIGCONT);
	kill(coord, SIGTERM);
	cr_assert_eq(finish(coord), 0);
	cr_assert_eq(finish(f), 0, "%s", tu_slurp(fe));
	remove_dir();
}
