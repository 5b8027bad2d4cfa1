/*
 * snapbridge - the command-line tool. Git-style subcommands; each one
 * lives in its own file and is listed here.
 */
#include <stdio.h>
#include <string.h>

#include <snapbridge/snapbridge.h>

#include "../../ring/layout.h"
#include "bench.h"
#include "tool.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "coordinator", sb_cmd_coordinator, "run a coordinator with a synthetic capture source" },
	{ "drain", sb_cmd_drain, "drain snapshots in FIFO order (JSON lines or a table)" },
	{ "events", sb_cmd_events, "print the bridge's diagnostic events" },
	{ "stat", sb_cmd_stat, "show a region's config, counters and consumers" },
	{ "save", sb_cmd_save, "write a consistent image of a live region to a file" },
	{ "export", sb_cmd_export, "publish a bridge to NATS JetStream, exactly once" },
	{ "bench", sb_bench_main, "measure throughput and latency next to pipes, rings, iceoryx" },
	{ "demo", sb_cmd_demo, "run a coordinator and consumer processes, check the accounting" },
	{ "version", sb_cmd_version, "print the version and the region ABI" },
};

static void usage(FILE *to)
{
	fprintf(to, "usage: snapbridge <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(to, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(to, "\nRun 'snapbridge <command> --help' for a command's options.\n");
}

int sb_cmd_version(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: snapbridge version\n\nPrint the tool's version and the region ABI "
		       "it reads and writes.\n\nexample:\n  snapbridge version\n");
		return 0;
	}
	if (argc > 1)
		return sb_tool_usage_error("version", "unexpected argument '%s'", argv[1]);
	printf("snapbridge %s (region ABI %u.%u, layout %016llx)\n", SNAPBRIDGE_VERSION,
	       SB_ABI_MAJOR, SB_ABI_MINOR, (unsigned long long)sb__layout_hash());
	return 0;
}

/* Run a command, then make sure its output was written (help to /dev/full fails). */
static int finish(const char *cmd, int ret)
{
	int out = sb_tool_output_done(cmd, stdout, 0);

	return ret ? ret : out;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return SB_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return finish(NULL, 0);
	}
	if (!strcmp(argv[1], "--version"))
		return finish("version", sb_cmd_version(argc - 1, argv + 1));
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return finish(commands[i].name, commands[i].run(argc - 1, argv + 1));
	return sb_tool_usage_error(NULL, "unknown command '%s'", argv[1]);
}
