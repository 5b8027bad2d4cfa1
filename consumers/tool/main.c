/*
 * snapbridge - the command-line tool. Git-style subcommands; each one
 * lives in its own file and is listed here. `snapbridge help CMD` is
 * `snapbridge CMD --help`.
 *
 * `bench` is compiled in only where SB_TOOL_WITH_BENCH is defined: the
 * build tree's developer binary. The installed tool leaves the benchmark
 * (and its baselines, iceoryx among them) out.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "tool.h"
#ifdef SB_TOOL_WITH_BENCH
#include "bench.h"
#endif

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "coordinator", sb_cmd_coordinator, "run a coordinator with a synthetic capture source" },
	{ "drain", sb_cmd_drain, "drain snapshots in FIFO order (a table, or JSON lines)" },
	{ "events", sb_cmd_events, "print the bridge's diagnostic events" },
	{ "stat", sb_cmd_stat, "show a region's config, counters, rates and consumers" },
	{ "save", sb_cmd_save, "write a consistent image of a live region to a file" },
	{ "export", sb_cmd_export, "publish a bridge to NATS JetStream, exactly once" },
#ifdef SB_TOOL_WITH_BENCH
	{ "bench", sb_bench_main, "measure throughput and latency next to pipes, rings, iceoryx" },
#endif
	{ "demo", sb_cmd_demo, "run a coordinator and consumer processes, check the accounting" },
	{ "version", sb_cmd_version, "print the version and the region ABI" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int usage(FILE *to, int code)
{
	fprintf(to, "usage: snapbridge <command> [options]\n"
		    "       snapbridge help <command>\n"
		    "\n"
		    "Publish capture results across processes through shared memory: run a\n"
		    "coordinator, drain what it stores, look at a live region or an image.\n"
		    "\n"
		    "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(to, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(to, "  %-12s %s\n", "help", "show a command's options and examples");
	fprintf(to, "\n"
		    "options:\n"
		    "  --help             show this help\n"
		    "  --version          print the version and the region ABI\n"
		    "\n"
		    "Every command takes --help (with examples) and --version. Exit status: 0,\n"
		    "1 on a failure, 2 on a usage error, 3 when a follower's coordinator died.\n"
		    "\n"
		    "examples:\n"
		    "  snapbridge coordinator --socket /tmp/sb.sock --count 1000 --interval-ms 5\n"
		    "  snapbridge drain --socket /tmp/sb.sock --follow\n"
		    "  snapbridge help drain\n");
	return code;
}

static int version_usage(FILE *to, int code)
{
	fprintf(to, "usage: snapbridge version\n"
		    "\n"
		    "Print the tool's version, the version of the library it runs with, and\n"
		    "the region ABI and layout hash that library reads and writes.\n"
		    "\n"
		    "options:\n"
		    "  --help             show this help\n"
		    "  --version          the same as the command\n"
		    "\n"
		    "example:\n"
		    "  snapbridge version\n");
	return code;
}

int sb_cmd_version(int argc, char **argv)
{
	static const struct option longopts[] = { SB_TOOL_COMMON_LONGOPTS, { 0 } };
	int c;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h')
			sb_tool_common_option("version", c, version_usage);
		else if (c != SB_OPT_VERSION)
			return sb_tool_bad_option("version", c, argv);
	}
	int err = sb_tool_options_done("version", 0, argc, argv);
	if (err)
		return err;
	sb_tool_print_version(stdout);
	return 0;
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

/* Run a command, then make sure its output was written (help to /dev/full fails). */
static int finish(const char *cmd, int ret)
{
	int out = sb_tool_output_done(cmd, stdout, 0);

	return ret ? ret : out;
}

/* snapbridge help [CMD]: the command's own --help (help --help: the top-level one). */
static int help(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help"))
		return finish(NULL, usage(stdout, 0));
	if (!strcmp(argv[1], "--version")) {
		sb_tool_print_version(stdout);
		return finish(NULL, 0);
	}
	if (argc > 2)
		return sb_tool_usage_error("help", "unexpected argument '%s'", argv[2]);
	const struct command *cmd = find(argv[1]);
	if (!cmd)
		return sb_tool_usage_error("help", "unknown command '%s'", argv[1]);
	char *args[] = { argv[1], "--help", NULL };
	return finish(cmd->name, cmd->run(2, args));
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { SB_TOOL_COMMON_LONGOPTS, { 0 } };
	int c;

	/* Options before the command: only --help and --version ("+": stop at the command). */
	while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		if (c == 'h')
			return finish(NULL, usage(stdout, 0));
		if (c == SB_OPT_VERSION) {
			sb_tool_print_version(stdout);
			return finish(NULL, 0);
		}
		return sb_tool_bad_option(NULL, c, argv);
	}
	if (optind >= argc) {
		usage(stderr, 0);
		return SB_EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (!strcmp(name, "help"))
		return help(argc - optind, argv + optind);
	const struct command *cmd = find(name);
	if (!cmd)
		return sb_tool_usage_error(NULL, "unknown command '%s'", name);
	char **sub = argv + optind;
	int subc = argc - optind;
#ifdef SB_TOOL_WITH_BENCH
	/* bench parses its own options (bench/bench.c); --version is the tool's, as everywhere. */
	if (cmd->run == sb_bench_main && subc == 2 && !strcmp(sub[1], "--version")) {
		sb_tool_print_version(stdout);
		return finish(cmd->name, 0);
	}
#endif
	optind = 0; /* a fresh getopt_long scan for the command's own options */
	return finish(cmd->name, cmd->run(subc, sub));
}
