/* consumers/tool/tool.h - what the subcommands share. */
#ifndef SB_TOOL_H
#define SB_TOOL_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <msgpack.h>

#include <snapbridge/snapbridge.h>

/*
 * Exit codes: 0 success, 1 a runtime failure, 2 a usage error, 3 a
 * follower (drain/events --follow) whose coordinator died without closing.
 */
#define SB_EXIT_RUNTIME 1
#define SB_EXIT_USAGE	2
#define SB_EXIT_DEAD	3

/* The subcommands (one file each). */
int sb_cmd_coordinator(int argc, char **argv);
int sb_cmd_export(int argc, char **argv);
int sb_cmd_drain(int argc, char **argv);
int sb_cmd_events(int argc, char **argv);
int sb_cmd_stat(int argc, char **argv);
int sb_cmd_save(int argc, char **argv);
int sb_cmd_demo(int argc, char **argv);
int sb_cmd_version(int argc, char **argv);

/*
 * Options every subcommand takes, for its getopt_long table: --help
 * ('h') and --version (SB_OPT_VERSION).
 */
enum { SB_OPT_VERSION = 0x100, SB_OPT_WAIT, SB_OPT_EXPECT_UID };
#define SB_TOOL_COMMON_LONGOPTS                                                            \
	{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, SB_OPT_VERSION }

/*
 * The source options of drain, events, stat, save, export: --socket
 * ('s'), --file ('f'), --pid ('P'), --wait[=MS] (SB_OPT_WAIT) and
 * --expect-uid UID (SB_OPT_EXPECT_UID); give each to
 * sb_tool_source_option().
 */
#define SB_TOOL_SOURCE_LONGOPTS                                                            \
	{ "socket", required_argument, NULL, 's' }, { "file", required_argument, NULL, 'f' }, \
	    { "pid", required_argument, NULL, 'P' },                                           \
	    { "wait", optional_argument, NULL, SB_OPT_WAIT },                                  \
	    { "expect-uid", required_argument, NULL, SB_OPT_EXPECT_UID }

/* The --help line of --expect-uid, for the commands that take --socket. */
#define SB_TOOL_EXPECT_UID_HELP                                                            \
	"  --expect-uid UID   with --socket: the uid its server must run as (default:\n"   \
	"                     yours, or root)\n"

/* The line `--version` and `snapbridge version` print (to out). */
void sb_tool_print_version(FILE *out);

/*
 * For --help ('h') and --version: print (usage(stdout, 0) for help) and
 * exit with the status sb_tool_help_done() gives. Returns otherwise.
 */
void sb_tool_common_option(const char *cmd, int c, int (*usage)(FILE *to, int code));

/* ---- messages (common.c) ---------------------------------------------------------- */

/*
 * One line on stderr: "snapbridge CMD: <message> (see 'snapbridge CMD
 * --help')". Returns SB_EXIT_USAGE.
 */
int sb_tool_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "snapbridge CMD: <message>" on stderr. Returns SB_EXIT_RUNTIME. */
int sb_tool_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The message for getopt_long()'s '?' or ':' (optstring must start with
 * ':'): which option was unknown or lacked its value. Returns SB_EXIT_USAGE.
 */
int sb_tool_bad_option(const char *cmd, int c, char **argv);

/* A decimal in [min, max] for --flag; 0, or SB_EXIT_USAGE with the message printed. */
int sb_tool_parse_u64(const char *cmd, const char *flag, const char *s, uint64_t min, uint64_t max,
		      uint64_t *out);

/*
 * A size in bytes in [min, max] for --flag: a whole number with an
 * optional binary suffix K, M or G (also KiB, MiB, GiB, k): "18M",
 * "256K", "4096". 0, or SB_EXIT_USAGE with the message printed.
 */
int sb_tool_parse_size(const char *cmd, const char *flag, const char *s, uint64_t min,
		       uint64_t max, uint64_t *out);

/* bytes in binary units for people: "812 B", "256 KiB", "18.0 MiB". Returns buf. */
const char *sb_tool_human_bytes(uint64_t bytes, char *buf, size_t n);

/* The wall clock as ISO 8601 UTC with milliseconds ("2025-01-31T12:00:00.123Z"). */
const char *sb_tool_iso_time(char *buf, size_t n);

/*
 * Whether fd is a terminal that takes cursor controls (\r\033[K, a
 * redraw): a tty whose TERM is set and not "dumb".
 */
bool sb_tool_fancy_terminal(int fd);

/*
 * Before frame n (from 1) of a --watch table on stdout: home and clear
 * where the terminal takes cursor controls, a blank line between frames
 * otherwise (TERM=dumb, a pipe).
 */
void sb_tool_watch_frame(uint64_t n);

/* The second between --watch frames, in slices: false once a stop signal came. */
bool sb_tool_watch_pause(void);

/* ---- attaching (common.c) --------------------------------------------------------- */

/* Where a command reads from: exactly one of the three (or a NATS stream, below). */
struct sb_source {
	const char *socket;
	const char *file;
	const char *pid; /* as given */
	/*
	 * --wait[=MS]: retry while nobody serves the socket yet (or the pid has
	 * no region yet), up to wait_ms (0: until a stop signal).
	 */
	bool wait;
	uint64_t wait_ms;
	int wait_err; /* a malformed --wait value: its usage error, reported by check_source */
	/* --expect-uid UID: the uid the process serving --socket must run as */
	bool expect;
	uint64_t expect_uid;
	int expect_err; /* a malformed --expect-uid value, as wait_err */
	/* --nats URL and its --stream, --host, --subject-prefix (nats_source.c) */
	const char *nats, *stream, *host, *subject_prefix;
};

/*
 * An option of SB_TOOL_SOURCE_LONGOPTS (the codes every subcommand's
 * option table uses). True when c was one.
 */
bool sb_tool_source_option(const char *cmd, struct sb_source *src, int c, const char *arg);

/*
 * After the option loop: err (an option's parse error) if set, else a
 * usage error for a stray operand, else 0.
 */
int sb_tool_options_done(const char *cmd, int err, int argc, char **argv);

/*
 * Check that exactly one source was given (allowed: which of socket, file
 * and pid this command accepts), a socket path that fits, a --wait only
 * with a live source. 0, or SB_EXIT_USAGE with the message.
 */
int sb_tool_check_source(const char *cmd, const struct sb_source *src, bool file_ok, bool pid_ok);

/*
 * Attach as the source says, waiting as --wait says. 0, SB_EXIT_RUNTIME
 * with the reason printed (naming a path that is not a socket, or a
 * socket no snapbridge coordinator serves), SB_EXIT_USAGE for a socket
 * name the kernel cannot take.
 */
int sb_tool_attach(const char *cmd, const struct sb_source *src, uint32_t flags,
		   struct sb_consumer **out);

/* ---- signals and time (common.c) -------------------------------------------------- */

/* Set by SIGINT / SIGTERM once sb_tool_catch_stop_signals() ran. */
extern volatile sig_atomic_t sb_tool_stop;
void sb_tool_catch_stop_signals(void);

uint64_t sb_tool_mono_ns(void);

/* ---- JSON (common.c, mpjson.c) ---------------------------------------------------- */

/* Print v compactly as one line on out and drop the reference. 0 or -EIO / -ENOMEM. */
int sb_tool_print_json_line(FILE *out, json_t *v);

/* Standard base64 (RFC 4648, padded) of n bytes as a new JSON string; NULL on ENOMEM. */
json_t *sb_tool_base64_json(const void *p, size_t n);

/*
 * Decode exactly one msgpack object of len bytes into JSON; see
 * docs/CLI.md for the rules (bin and ext as base64, integers exact,
 * maps with non-string or duplicate keys as arrays of [key, value]).
 * Returns 0 with *out set, -EBADMSG for bytes that are not one msgpack
 * object (err says why), -ENOMEM.
 */
int sb_mp_to_json(const void *buf, size_t len, json_t **out, char *err, size_t errlen);

/* Text as a JSON string, or as base64 when it is not UTF-8. NULL on ENOMEM. */
json_t *sb_tool_text_json(const char *s, size_t n);

/* A missing-stats reason or stats document as the drain JSON shows it. */
json_t *sb_tool_stats_json(const struct sb_stats *st);

/*
 * Region text (tags, schemas, cgroup names, reasons) made safe for a
 * terminal: printable ASCII kept, every other byte as \xNN. Returns buf.
 */
const char *sb_tool_safe(const char *s, char *buf, size_t n);

/*
 * End of output: flush, then 0 when everything was written or the reader
 * went away (EPIPE: quietly, as | head expects), else one line naming the
 * error and SB_EXIT_RUNTIME. write_err: an earlier write's -errno, or 0.
 */
int sb_tool_output_done(const char *cmd, FILE *out, int write_err);

/* After --help printed its text with code: the exit status, failing if it was not written. */
int sb_tool_help_done(const char *cmd, int code);

/* ---- tables (table.c) ------------------------------------------------------------ */

#define SB_TABLE_MAX_COLS 12

struct sb_table_row;

/* Columns sized to their content; see table.c. */
struct sb_table {
	FILE *out;
	size_t ncols;
	const char *names[SB_TABLE_MAX_COLS];
	bool right[SB_TABLE_MAX_COLS]; /* right-aligned (numbers) */
	size_t width[SB_TABLE_MAX_COLS];
	bool header_done;
	struct sb_table_row *rows; /* buffered until the next flush */
	size_t nrows, cap;
};

/* ncols column names; align: one letter per column, 'l' or 'r' (NULL: all left). */
void sb_table_init(struct sb_table *t, FILE *out, size_t ncols, const char *const names[],
		   const char *align);

/* Buffer a row of ncells cells (<= ncols), then rest (may be NULL). 0 or -ENOMEM. */
int sb_table_row(struct sb_table *t, size_t ncells, const char *const cells[], const char *rest);

/* Print the buffered rows (and the header first, or again when a column grew). 0 or -errno. */
int sb_table_flush(struct sb_table *t);

void sb_table_free(struct sb_table *t);

/* ---- NATS JetStream: export.c writes, nats_source.c reads (docs/CLI.md) ----------------- */

/* getopt codes of the NATS options, above every printable short option. */
enum { SB_OPT_NATS = 0x181, SB_OPT_STREAM, SB_OPT_HOST, SB_OPT_SUBJECT_PREFIX };
#define SB_NATS_LONGOPTS                                                                           \
	{ "nats", required_argument, NULL, SB_OPT_NATS },                                          \
	    { "stream", required_argument, NULL, SB_OPT_STREAM },                                  \
	    { "host", required_argument, NULL, SB_OPT_HOST },                                      \
	{                                                                                          \
		"subject-prefix", required_argument, NULL, SB_OPT_SUBJECT_PREFIX                   \
	}

/* The --help lines of the options above, for drain, events and stat (--nats's: what). */
#define SB_NATS_HELP(what)                                                                         \
	"  --nats URL         " what "\n"                                                          \
	"  --stream NAME      with --nats: the stream (default snapbridge)\n"                      \
	"  --host H           with --nats: only this host (default: every host)\n"                 \
	"  --subject-prefix P\n"                                                                   \
	"                     with --nats: subjects start with P (default snapbridge)\n"

/* drain/stat --nats: the stream's names and that no region source came with it. */
int sb_nats_check_source(const char *cmd, const struct sb_source *src);

/* The source check of a command that also reads NATS: the stream's, or the region's. */
static inline int sb_tool_check_any_source(const char *cmd, const struct sb_source *src,
					   bool file_ok, bool pid_ok)
{
	if (src->nats || src->stream || src->host || src->subject_prefix)
		return sb_nats_check_source(cmd, src);
	return sb_tool_check_source(cmd, src, file_ok, pid_ok);
}

/* drain's printers, for what drain --nats reads back (drain.c hands them over). */
struct sb_drain_sink {
	void *user;
	int (*entry)(void *user, const struct sb_entry *e);   /* non-zero: stop */
	int (*aux)(void *user, const struct sb_aux_item *it); /* non-zero: stop */
	void (*event)(void *user, const struct sb_event *ev); /* counts it, prints if asked */
	bool (*stopped)(void *user);			      /* a write failed */
	void (*round)(void *user); /* a follower's round: what was printed goes out now */
};

/* The summary of drain --nats: the exporters' accounting with what was read. */
struct sb_nats_drain_result {
	struct sb_drain_counts counts; /* delivered = snapshots read back */
	struct sb_aux_counts aux;
	const char *coordinator;
	json_t *hosts; /* per host and region; owned by the caller */
};

/*
 * Read the stream from its start (and with follow, until SIGINT or
 * timeout_ms with nothing new) through sink. 0, or SB_EXIT_RUNTIME with
 * one line printed (an unreachable URL, a missing stream, a message that
 * is not ours).
 */
int sb_nats_drain(const char *cmd, const struct sb_source *src, bool follow, int64_t timeout_ms,
		  const struct sb_drain_sink *sink, struct sb_nats_drain_result *res);

/* stat --nats: per-host counts and lag, once or (watch) every second. */
int sb_nats_stat(const char *cmd, const struct sb_source *src, bool table, bool watch,
		 uint64_t iterations);

/* 32 lowercase hex digits of a region id as a JSON string. */
json_t *sb_tool_region_json(const uint8_t id[SB_REGION_ID_BYTES]);

/* ---- the synthetic capture source (synth.c) --------------------------------------- */

/*
 * The coordinator's reports: a msgpack map
 *   {"seq": n, "tag": t, "stored_ns": CLOCK_MONOTONIC, "seed": s,
 *    "pattern": bin(payload bytes from s), "checksum": FNV-1a 64 of pattern}
 * so that a consumer can check every byte without knowing anything else.
 * Returns 0 or -ENOMEM.
 */
int sb_synth_report(msgpack_sbuffer *sb, uint64_t seq, const char *tag, uint64_t stored_ns,
		    size_t payload_bytes);

struct sb_synth_info {
	uint64_t seq;
	uint64_t stored_ns;
	uint64_t seed;
	uint64_t checksum;
};

/*
 * Whether report is a synthetic report whose pattern matches its seed and
 * its checksum. 0 with *info filled, or -EBADMSG (why says what failed).
 */
int sb_synth_check(const void *report, size_t len, struct sb_synth_info *info, char *why,
		   size_t whylen);

/* FNV-1a, 64 bits. */
uint64_t sb_synth_fnv1a(const void *p, size_t n);

#endif
