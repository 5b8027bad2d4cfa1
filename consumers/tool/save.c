/*
 * snapbridge save - write a consistent image of a live region to a file,
 * for post-mortem work with `drain --file` / `stat --file`. The image is
 * taken by sb_consumer_save_image() (consumers/image.c says how it stays
 * consistent while the writer goes on); this command holds the stop
 * signals off while the temporary file exists.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>

#include "tool.h"

static const char *const cmd = "save";

static int usage(FILE *to, int code)
{
	fprintf(to, "usage: snapbridge save (--socket PATH | --pid PID) --output FILE\n"
		    "\n"
		    "Write a consistent image of a live coordinator's region to FILE, for\n"
		    "post-mortem work: 'snapbridge drain --file FILE' and 'stat --file FILE'\n"
		    "read it. Every record and event in the image is exactly what the writer\n"
		    "committed and its accounting adds up, as if the coordinator had stopped\n"
		    "when the copy began (see docs/CLI.md). FILE is written to a temporary\n"
		    "file in the same directory and renamed into place when complete; on any\n"
		    "error no FILE is left behind. FILE is created mode 0600.\n"
		    "\n"
		    "options:\n"
		    "  --socket PATH      connect to a coordinator\n"
		    SB_TOOL_EXPECT_UID_HELP
		    "  --pid PID          attach to a coordinator by pid (needs ptrace access)\n"
		    "  --wait[=MS]        wait for the coordinator to appear (at most MS ms)\n"
		    "  --output FILE      where the image goes (replaced if it is a regular file)\n"
		    "  --help             show this help\n"
		    "  --version          print the version and the region ABI\n"
		    "\n"
		    "example:\n"
		    "  snapbridge save --socket /tmp/sb.sock --output /tmp/sb.img\n"
		    "  snapbridge drain --file /tmp/sb.img --format table\n");
	return code;
}

int sb_cmd_save(int argc, char **argv)
{
	static const struct option longopts[] = {
		SB_TOOL_SOURCE_LONGOPTS,
		{ "output", required_argument, NULL, 'o' },
		SB_TOOL_COMMON_LONGOPTS,
		{ 0 },
	};
	struct sb_source src = { 0 };
	const char *output = NULL;
	int c, ret;

	while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'h':
		case SB_OPT_VERSION:
			sb_tool_common_option(cmd, c, usage);
			break;
		default:
			if (!sb_tool_source_option(cmd, &src, c, optarg))
				return sb_tool_bad_option(cmd, c, argv);
			break;
		}
	}
	ret = sb_tool_options_done(cmd, 0, argc, argv);
	if (!ret)
		ret = sb_tool_check_source(cmd, &src, false, true);
	if (ret)
		return ret;
	if (!output || !*output)
		return sb_tool_usage_error(cmd, "--output FILE is required");

	/* Not interrupted while the temporary file exists: it is removed or renamed first. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);

	struct sb_consumer *cons = NULL;
	struct sb_image_info info;
	ret = sb_tool_attach(cmd, &src, SB_CONSUMER_START_AT_END, &cons);
	if (ret)
		return ret;
	sigprocmask(SIG_BLOCK, &block, &old);
	int err = sb_consumer_save_image(cons, output, &info);
	sigprocmask(SIG_SETMASK, &old, NULL);
	sb_consumer_close(cons);
	if (err)
		return sb_tool_fail(cmd, "%s", sb_last_error());
	printf("snapbridge save: wrote %s (%llu bytes; stores 1..%llu, %llu record%s in the "
	       "log)\n",
	       output, (unsigned long long)info.region_bytes, (unsigned long long)info.stores,
	       (unsigned long long)info.records, info.records == 1 ? "" : "s");
	return sb_tool_output_done(cmd, stdout, 0);
}
