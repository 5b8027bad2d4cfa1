/*
 * snapbridge - the command-line tool. Git-style subcommands; each one
 * lives in its own file and is listed here.
 */
#include <stdio.h>
#include <string.h>

#include <snapbridge/snapbridge.h>

#include "bench.h"
#include "tool.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "bench", sb_bench_main, "measure throughput and latency next to pipes, rings, iceoryx" },
	{ "demo", sb_cmd_demo, "store captures with overwrites and evictions, then drain them" },
	{ "version", sb_cmd_version, "print the version and the region ABI" },
};

static void usage(FILE *to)
{
	fprintf(to, "usage: snapbridge <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(to, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(to, "\nRun 'snapbridge <command> --help' for a command's options.\n");
}

int sb_cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("snapbridge %s\n", SNAPBRIDGE_VERSION);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return SB_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		return sb_cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "snapbridge: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return SB_EXIT_USAGE;
}
