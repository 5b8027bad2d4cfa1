/* consumers/tool/tool.h - what the subcommands share. */
#ifndef SB_TOOL_H
#define SB_TOOL_H

/* Exit codes: 0 success, 1 a runtime failure, 2 a usage error. */
#define SB_EXIT_RUNTIME 1
#define SB_EXIT_USAGE	2

int sb_cmd_demo(int argc, char **argv);
int sb_cmd_version(int argc, char **argv);

#endif
