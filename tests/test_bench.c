/*
 * tests/test_bench.c - `snapbridge bench` still runs: its smoke mode (one
 * repetition of a thousand records per measurement, small rings) writes
 * JSON that parses, names the machine, has a figure from every system
 * that is present and rows of every report shape, and no row whose timed
 * phase took more page faults than the mark (every ring was written in
 * full before timing). No figure is checked against a threshold: this is
 * not a timed test. Its command line: one-line usage errors (exit 2),
 * --help and --version.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char json_path[64], out_path[64];

static void setup(void)
{
	snprintf(json_path, sizeof(json_path), "/tmp/sb-test-bench-%d.json", (int)getpid());
	snprintf(out_path, sizeof(out_path), "/tmp/sb-test-bench-%d.out", (int)getpid());
}

static void teardown(void)
{
	unlink(json_path);
	unlink(out_path);
}

/*
 * Run the CLI with stdout and stderr into out (or /dev/null), with envp
 * (NULL: ours); returns its exit status.
 */
static int run_tool_env(char *const argv[], const char *out, char *const envp[])
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork failed");
	if (pid == 0) {
		int fd = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)
			     : open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (envp)
			execve(SB_TOOL, argv, envp);
		else
			execv(SB_TOOL, argv);
		_exit(127);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "snapbridge bench died of signal %d", WTERMSIG(st));
	return WEXITSTATUS(st);
}

static int run_tool(char *const argv[], const char *out)
{
	return run_tool_env(argv, out, NULL);
}

static char *slurp(const char *path)
{
	static char buf[16384];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	cr_assert_not_null(f, "%s", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static double number(json_t *m, const char *key)
{
	json_t *v = json_object_get(m, key);

	return json_is_number(v) ? json_number_value(v) : -1;
}

Test(bench, smoke_run_reports_a_figure_for_every_present_system, .init = setup, .fini = teardown,
     .timeout = 240)
{
	char *argv[] = { SB_TOOL, "bench", "--smoke", "--json", json_path, NULL };
	json_error_t jerr;

	cr_assert_eq(run_tool(argv, NULL), 0, "snapbridge bench --smoke failed");
	json_t *root = json_load_file(json_path, 0, &jerr);
	cr_assert_not_null(root, "%s:%d: %s", json_path, jerr.line, jerr.text);

	json_t *machine = json_object_get(root, "machine");
	cr_assert(json_is_string(json_object_get(machine, "cpu")), "machine.cpu missing");
	cr_assert(json_is_string(json_object_get(machine, "kernel")), "machine.kernel missing");
	cr_assert_gt(number(machine, "cores"), 0, "machine.cores missing");
	double mark = number(machine, "fault_mark_per_1000");
	cr_assert_gt(mark, 0, "machine.fault_mark_per_1000 missing");

	json_t *list = json_object_get(root, "measurements");
	cr_assert(json_is_array(list) && json_array_size(list) > 0, "no measurements");
	static const char *const systems[] = { "snapbridge",  "memcpy",	   "raw_ring", "pipe",
					       "unix_stream", "mutex_map", "raw_futex" };
	static const char *const shapes[] = { "bin", "dump" };
	unsigned seen[sizeof(systems) / sizeof(systems[0])] = { 0 }, shaped[2] = { 0 };
	size_t i;
	json_t *m;
	json_array_foreach(list, i, m)
	{
		const char *bench = json_string_value(json_object_get(m, "bench"));
		const char *system = json_string_value(json_object_get(m, "system"));
		const char *shape = json_string_value(json_object_get(m, "shape"));

		cr_assert(bench && system && shape, "measurement %zu has no bench, system or shape",
			  i);
		if (json_object_get(m, "skipped")) {
			/* Only an optional baseline may be absent, and it must say why. */
			cr_assert_str_eq(system, "iceoryx", "%s %s skipped", bench, system);
			cr_assert(json_is_string(json_object_get(m, "skipped")));
			continue;
		}
		cr_assert_null(json_object_get(m, "failed"), "%s %s failed", bench, system);
		if (!strcmp(bench, "wake")) {
			cr_assert_gt(number(m, "p50_ns"), 0, "wake %s has no p50", system);
		} else {
			cr_assert_gt(number(m, "records_per_s"), 0, "%s %s size %.0f: no rate",
				     bench, system, number(m, "size"));
			cr_assert_gt(number(m, "bytes_per_s"), 0);
			double fk = number(m, "faults_per_1000");
			cr_assert_geq(fk, 0, "%s %s %s %.0f: no fault count", bench, system, shape,
				      number(m, "size"));
#ifndef __SANITIZE_ADDRESS__
			/*
			 * Warm-ups wrote every ring first: no timed phase ran on fresh
			 * pages. (Under ASan, whose allocator quarantines what is freed,
			 * mutex_map's copies always come from fresh memory.)
			 */
			cr_assert_leq(fk, mark,
				      "%s %s %s %.0f B: %.1f page faults per 1000 timed records "
				      "(%.0f writer, %.0f consumers)",
				      bench, system, shape, number(m, "size"), fk,
				      number(m, "faults"), number(m, "consumer_faults"));
			cr_assert(json_is_false(json_object_get(m, "over_fault_mark")));
#endif
		}
		json_t *acc = json_object_get(m, "accounting");
		if (acc) {
			double sum = number(acc, "delivered") + number(acc, "superseded") +
				     number(acc, "evicted") + number(acc, "lapped") +
				     number(acc, "torn");
			cr_assert_eq(sum, number(acc, "stores"), "%s %s: outcomes do not add up",
				     bench, system);
		}
		for (unsigned k = 0; k < sizeof(systems) / sizeof(systems[0]); k++)
			seen[k] += !strcmp(system, systems[k]);
		for (unsigned k = 0; k < 2; k++)
			shaped[k] += strcmp(bench, "wake") && !strcmp(shape, shapes[k]);
	}
	for (unsigned k = 0; k < sizeof(systems) / sizeof(systems[0]); k++)
		cr_assert_gt(seen[k], 0, "no figure from %s", systems[k]);
	for (unsigned k = 0; k < 2; k++)
		cr_assert_gt(shaped[k], 0, "no row of shape %s", shapes[k]);
	json_decref(root);
}

Test(bench, a_bad_option_is_one_line_naming_it_and_exit_2, .init = setup, .fini = teardown,
     .timeout = 30)
{
	char *unknown[] = { SB_TOOL, "bench", "--no-such-option", NULL };
	char *only[] = { SB_TOOL, "bench", "--only", "no_such_system", NULL };
	char *shape[] = { SB_TOOL, "bench", "--shape", "cube", NULL };
	char *missing[] = { SB_TOOL, "bench", "--json", NULL };
	char *size[] = { SB_TOOL, "bench", "--sizes", "64,3K", NULL };
	char *const *cases[] = { unknown, only, shape, missing, size };
	const char *names[] = { "--no-such-option", "no_such_system", "cube", "--json", "'3K'" };

	for (unsigned i = 0; i < 5; i++) {
		cr_assert_eq(run_tool(cases[i], out_path), 2, "%s: not a usage error", names[i]);
		const char *out = slurp(out_path);
		cr_assert(strstr(out, names[i]), "the message does not name %s: %s", names[i], out);
		cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "not one line: %s", out);
		cr_assert(strstr(out, "--help"), "no pointer to --help: %s", out);
	}
}

Test(bench, help_has_examples_and_version_prints_it, .init = setup, .fini = teardown, .timeout = 30)
{
	char *help[] = { SB_TOOL, "bench", "--help", NULL };
	char *version[] = { SB_TOOL, "bench", "--version", NULL };

	cr_assert_eq(run_tool(help, out_path), 0);
	const char *out = slurp(out_path);
	cr_assert(strstr(out, "usage: snapbridge bench"), "%s", out);
	cr_assert(strstr(out, "--shape"), "%s", out);
	cr_assert(strstr(out, "examples:\n  snapbridge bench"), "%s", out);
	cr_assert_eq(run_tool(version, out_path), 0);
	/* The tool answers --version for every command, bench included. */
	cr_assert(!strncmp(slurp(out_path), "snapbridge ", 11) && strstr(slurp(out_path), " 0."),
		  "%s", slurp(out_path));
}

/* Without gnuplot everything else is written, the plot's absence is said once, and it succeeds. */
Test(bench, no_gnuplot_skips_only_the_plot, .init = setup, .fini = teardown, .timeout = 120)
{
	char svg[80];
	char *argv[] = { SB_TOOL,	 "bench",   "--smoke", "--only",
			 "store,memcpy", "--sizes", "4K",      "--json",
			 json_path,	 "--svg",   svg,       NULL };
	char *envp[] = { "PATH=/nonexistent", NULL };

	snprintf(svg, sizeof(svg), "%s.svg", json_path);
	cr_assert_eq(run_tool_env(argv, out_path, envp), 0, "%s", slurp(out_path));
	const char *out = slurp(out_path);
	const char *first = strstr(out, "gnuplot");
	cr_assert(first, "the skipped plot is not mentioned: %s", out);
	const char *eol = strchr(first, '\n');
	cr_assert_null(eol ? strstr(eol, "gnuplot") : NULL, "said on more than one line: %s", out);
	cr_assert_eq(access(json_path, R_OK), 0, "the JSON was not written");
	cr_assert_neq(access(svg, F_OK), 0, "an SVG appeared without gnuplot");
	/* --sizes took 4K as 4096 bytes, and only that size was measured. */
	json_error_t jerr;
	json_t *root = json_load_file(json_path, 0, &jerr), *m;
	size_t i, rows = 0;
	cr_assert_not_null(root, "%s:%d: %s", json_path, jerr.line, jerr.text);
	json_array_foreach(json_object_get(root, "measurements"), i, m)
	{
		cr_assert_eq(number(m, "size"), 4096, "a row of %.0f bytes", number(m, "size"));
		rows++;
	}
	cr_assert_gt(rows, 0, "no row measured");
	json_decref(root);
	unlink(svg);
}
