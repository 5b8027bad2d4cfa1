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

/* Exit codes: 0 success, 1 a runtime failure, 2 a usage error. */
#define SB_EXIT_RUNTIME 1
#define SB_EXIT_USAGE	2

/* The subcommands (one file each). */
int sb_cmd_coordinator(int argc, char **argv);
int sb_cmd_export(int argc, char **argv);
int sb_cmd_drain(int argc, char **argv);
int sb_cmd_events(int argc, char **argv);
int sb_cmd_stat(int argc, char **argv);
int sb_cmd_save(int argc, char **argv);
int sb_cmd_demo(int argc, char **argv);
int sb_cmd_version(int argc, char **argv);

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

/* ---- attaching (common.c) --------------------------------------------------------- */

/* Where a command reads from: exactly one of the three (or a NATS stream, below). */
struct sb_source {
	const char *socket;
	const char *file;
	const char *pid; /* as given */
	/* --nats URL and its --stream, --host, --subject-prefix (nats_source.c) */
	const char *nats, *stream, *host, *subject_prefix;
};

/*
 * Check that exactly one source was given (allowed: which of socket, file
 * and pid this command accepts). 0, or SB_EXIT_USAGE with the message.
 */
/*
 * An option naming a source: -s/--socket, -f/--file, -P/--pid (the short
 * codes every subcommand's option table uses). True when c was one.
 */
bool sb_tool_source_option(struct sb_source *src, int c, const char *arg);

/*
 * After the option loop: err (an option's parse error) if set, else a
 * usage error for a stray operand, else 0.
 */
int sb_tool_options_done(const char *cmd, int err, int argc, char **argv);

int sb_tool_check_source(const char *cmd, const struct sb_source *src, bool file_ok, bool pid_ok);

/* Attach as the source says. 0, or SB_EXIT_RUNTIME with the reason printed. */
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
