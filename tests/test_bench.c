/*
 * tests/test_bench.c - `snapbridge bench` still runs: its smoke mode (one
 * repetition of a few hundred records per measurement) writes JSON that
 * parses, names the machine, and has a figure from every system that is
 * present. No figure is checked against a threshold: this is not a timed
 * test.
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

static char json_path[64];

static void setup(void)
{
	snprintf(json_path, sizeof(json_path), "/tmp/sb-test-bench-%d.json", (int)getpid());
}

static void teardown(void)
{
	unlink(json_path);
}

/* Run the CLI with its output thrown away; returns its exit status. */
static int run_tool(char *const argv[])
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork failed");
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execv(SB_TOOL, argv);
		_exit(127);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "snapbridge bench died of signal %d", WTERMSIG(st));
	return WEXITSTATUS(st);
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

	cr_assert_eq(run_tool(argv), 0, "snapbridge bench --smoke failed");
	json_t *root = json_load_file(json_path, 0, &jerr);
	cr_assert_not_null(root, "%s:%d: %s", json_path, jerr.line, jerr.text);

	json_t *machine = json_object_get(root, "machine");
	cr_assert(json_is_string(json_object_get(machine, "cpu")), "machine.cpu missing");
	cr_assert(json_is_string(json_object_get(machine, "kernel")), "machine.kernel missing");
	cr_assert_gt(number(machine, "cores"), 0, "machine.cores missing");

	json_t *list = json_object_get(root, "measurements");
	cr_assert(json_is_array(list) && json_array_size(list) > 0, "no measurements");
	static const char *const systems[] = { "snapbridge",  "memcpy",	   "raw_ring", "pipe",
					       "unix_stream", "mutex_map", "raw_futex" };
	unsigned seen[sizeof(systems) / sizeof(systems[0])] = { 0 };
	size_t i;
	json_t *m;
	json_array_foreach(list, i, m)
	{
		const char *bench = json_string_value(json_object_get(m, "bench"));
		const char *system = json_string_value(json_object_get(m, "system"));

		cr_assert(bench && system, "measurement %zu has no bench or system", i);
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
	}
	for (unsigned k = 0; k < sizeof(systems) / sizeof(systems[0]); k++)
		cr_assert_gt(seen[k], 0, "no figure from %s", systems[k]);
	json_decref(root);
}

Test(bench, unknown_only_name_is_a_usage_error, .timeout = 30)
{
	char *argv[] = { SB_TOOL, "bench", "--only", "no_such_system", NULL };

	cr_assert_eq(run_tool(argv), 2);
}
