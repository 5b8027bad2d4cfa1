/*
 * consumers/tool/common.c - what every subcommand needs: messages in one
 * format, option values, attaching to a source, stop signals, JSON lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

static void vmessage(const char *cmd, const char *fmt, va_list ap, bool hint)
{
	fprintf(stderr, "snapbridge%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	vfprintf(stderr, fmt, ap);
	if (hint)
		fprintf(stderr, " (see 'snapbridge%s%s --help')", cmd ? " " : "", cmd ? cmd : "");
	fputc('\n', stderr);
}

int sb_tool_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(cmd, fmt, ap, true);
	va_end(ap);
	return SB_EXIT_USAGE;
}

int sb_tool_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(cmd, fmt, ap, false);
	va_end(ap);
	return SB_EXIT_RUNTIME;
}

int sb_tool_bad_option(const char *cmd, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return sb_tool_usage_error(cmd, "option '%s' needs a value", arg);
	if (optopt && optopt < 128 && !strchr(arg, '='))
		return sb_tool_usage_error(cmd, "unknown option '-%c'", optopt);
	if (strncmp(arg, "--", 2) == 0 && strchr(arg, '='))
		return sb_tool_usage_error(cmd, "option '%.*s' is unknown or takes no value",
					   (int)(strchr(arg, '=') - arg), arg);
	return sb_tool_usage_error(cmd, "unknown option '%s'", arg);
}

int sb_tool_parse_u64(const char *cmd, const char *flag, const char *s, uint64_t min, uint64_t max,
		      uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!s || *s < '0' || *s > '9') /* strtoull would skip blanks and take a sign */
		goto bad;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	return sb_tool_usage_error(cmd, "--%s needs a whole number from %llu to %llu, got '%s'",
				   flag, (unsigned long long)min, (unsigned long long)max,
				   s ? s : "");
}

int sb_tool_parse_size(const char *cmd, const char *flag, const char *s, uint64_t min,
		       uint64_t max, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {
		{ "", 0 },	  { "B", 0 },	  { "K", 10 },	   { "k", 10 },	  { "KB", 10 },
		{ "KiB", 10 },	  { "M", 20 },	  { "MB", 20 },	   { "MiB", 20 }, { "G", 30 },
		{ "GB", 30 },	  { "GiB", 30 },
	};
	char *end;
	unsigned long long v;
	char lo[24], hi[24];

	errno = 0;
	if (!s || *s < '0' || *s > '9')
		goto bad;
	v = strtoull(s, &end, 10);
	if (errno)
		goto bad;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (v > (UINT64_MAX >> units[i].shift))
			goto bad;
		v <<= units[i].shift;
		if (v < min || v > max)
			goto bad;
		*out = v;
		return 0;
	}
bad:
	return sb_tool_usage_error(cmd, "--%s needs a size from %s to %s (e.g. 256K, 18M), got '%s'",
				   flag, sb_tool_human_bytes(min, lo, sizeof(lo)),
				   sb_tool_human_bytes(max, hi, sizeof(hi)), s ? s : "");
}

const char *sb_tool_human_bytes(uint64_t bytes, char *buf, size_t n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%llu B", (unsigned long long)bytes);
	else if (bytes % (1ull << (10 * u)) == 0 && v < 10000)
		snprintf(buf, n, "%.0f %s", v, unit[u]); /* exact: 256 KiB, 18 MiB */
	else
		snprintf(buf, n, "%.1f %s", v, unit[u]);
	return buf;
}

const char *sb_tool_iso_time(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%03ldZ", sec, ts.tv_nsec / 1000000);
	return buf;
}

bool sb_tool_fancy_terminal(int fd)
{
	const char *term = getenv("TERM");

	return isatty(fd) && term && *term && strcmp(term, "dumb") != 0;
}

void sb_tool_watch_frame(uint64_t n)
{
	if (sb_tool_fancy_terminal(STDOUT_FILENO))
		fputs("\033[H\033[2J", stdout);
	else if (n > 1)
		fputc('\n', stdout);
}

bool sb_tool_watch_pause(void)
{
	for (int i = 0; i < 10 && !sb_tool_stop; i++) {
		struct timespec ts = { 0, 100000000 };

		nanosleep(&ts, NULL);
	}
	return !sb_tool_stop;
}

void sb_tool_print_version(FILE *out)
{
	struct sb_version_info v;

	sb_version_info(&v);
	/* The tool's version is the library's it was built with; the library is the one running. */
	fprintf(out, "snapbridge %s (library %s, region ABI %u.%u, layout %016llx)\n",
		SNAPBRIDGE_VERSION, v.version, v.abi_major, v.abi_minor,
		(unsigned long long)v.layout_hash);
}

void sb_tool_common_option(const char *cmd, int c, int (*usage)(FILE *to, int code))
{
	if (c == 'h')
		exit(sb_tool_help_done(cmd, usage(stdout, 0)));
	if (c == SB_OPT_VERSION) {
		sb_tool_print_version(stdout);
		exit(sb_tool_help_done(cmd, 0));
	}
}

bool sb_tool_source_option(const char *cmd, struct sb_source *src, int c, const char *arg)
{
	switch (c) {
	case SB_OPT_WAIT:
		src->wait = true;
		src->wait_ms = 0;
		if (arg)
			src->wait_err =
			    sb_tool_parse_u64(cmd, "wait", arg, 1, 86400000, &src->wait_ms);
		return true;
	case SB_OPT_EXPECT_UID:
		src->expect = true;
		src->expect_err =
		    sb_tool_parse_u64(cmd, "expect-uid", arg, 0, UINT32_MAX - 1, &src->expect_uid);
		return true;
	case 's':
		src->socket = arg;
		return true;
	case 'f':
		src->file = arg;
		return true;
	case 'P':
		src->pid = arg;
		return true;
	case SB_OPT_NATS:
		src->nats = arg;
		return true;
	case SB_OPT_STREAM:
		src->stream = arg;
		return true;
	case SB_OPT_HOST:
		src->host = arg;
		return true;
	case SB_OPT_SUBJECT_PREFIX:
		src->subject_prefix = arg;
		return true;
	}
	return false;
}

int sb_tool_options_done(const char *cmd, int err, int argc, char **argv)
{
	if (err)
		return err;
	if (optind < argc)
		return sb_tool_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return 0;
}

/* A process id from text, or -1. */
static long parse_pid(const char *s)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	long pid = strtol(s, &end, 10);
	return errno || *end || pid <= 0 || pid > 0x3fffffff ? -1 : pid;
}

/* The longest socket path the kernel takes (sun_path less its NUL). */
#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

int sb_tool_check_source(const char *cmd, const struct sb_source *src, bool file_ok, bool pid_ok)
{
	int n = !!src->socket + !!src->file + !!src->pid;

	if (src->wait_err)
		return src->wait_err;
	if (src->expect_err)
		return src->expect_err;
	if (src->expect && !src->socket)
		return sb_tool_usage_error(cmd, "--expect-uid only applies with --socket");
	if (src->file && !file_ok)
		return sb_tool_usage_error(cmd, "--file is not accepted here: give --socket PATH");
	if (src->pid && !pid_ok)
		return sb_tool_usage_error(cmd, "--pid is not accepted here: give --socket PATH");
	if (n == 0)
		return sb_tool_usage_error(
		    cmd, "say where to read from: %s",
		    file_ok ? (pid_ok ? "--socket PATH, --file IMAGE or --pid PID"
				      : "--socket PATH or --file IMAGE")
			    : (pid_ok ? "--socket PATH or --pid PID" : "--socket PATH"));
	if (n > 1)
		return sb_tool_usage_error(cmd, "give only one of --socket, --file and --pid");
	if ((src->socket && !*src->socket) || (src->file && !*src->file))
		return sb_tool_usage_error(cmd, "--%s needs a non-empty value",
					   src->socket ? "socket" : "file");
	if (src->socket && (strlen(src->socket) > SOCKET_PATH_MAX || !strcmp(src->socket, "@")))
		return sb_tool_usage_error(
		    cmd, "--socket '%.40s...' is %zu bytes; a Unix socket name takes 1 to %zu",
		    src->socket, strlen(src->socket), SOCKET_PATH_MAX);
	if (src->pid && parse_pid(src->pid) < 0)
		return sb_tool_usage_error(cmd, "--pid needs a process id, got '%s'", src->pid);
	if (src->file && src->wait)
		return sb_tool_usage_error(cmd, "--wait needs a live source (--socket or --pid), "
						"not an image");
	return 0;
}

/* Nobody serves there yet: what --wait waits out. */
static bool not_there_yet(const struct sb_source *src, int err)
{
	struct stat st;

	if (!src->socket)
		return err == -ENOENT;
	if (src->socket[0] != '@' && stat(src->socket, &st) == 0 && !S_ISSOCK(st.st_mode))
		return false; /* a file where the socket should be will not become one */
	return err == -ENOENT || err == -ECONNREFUSED;
}

/* Why connecting to a socket failed, in the words of what is wrong there. */
static int socket_failure(const char *cmd, const struct sb_source *src, int err)
{
	const char *path = src->socket;
	struct stat st;

	if (path[0] != '@' && stat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return sb_tool_fail(cmd, "%s is not a socket (%s); give the path a coordinator "
					 "serves on",
				    path,
				    S_ISDIR(st.st_mode)	   ? "a directory"
				    : S_ISREG(st.st_mode)  ? "a regular file"
				    : S_ISFIFO(st.st_mode) ? "a FIFO"
							   : "not a socket");
	switch (err) {
	case -ENOENT:
	case -ECONNREFUSED:
		if (src->wait && src->wait_ms)
			return sb_tool_fail(cmd,
					    "%s (waited %llu ms for it; start one with 'snapbridge "
					    "coordinator --socket %s')",
					    sb_last_error(), (unsigned long long)src->wait_ms,
					    path);
		if (src->wait)
			return sb_tool_fail(cmd, "%s (stopped while waiting for it)",
					    sb_last_error());
		return sb_tool_fail(cmd,
				    "%s (start one with 'snapbridge coordinator --socket %s', or "
				    "give --wait)",
				    sb_last_error(), path);
	case -EPROTOTYPE: /* a stream or datagram socket: not ours */
	case -EBADMSG:	  /* the peer said something that is not a hello */
	case -ECONNRESET: /* it hung up without a hello */
	case -ETIMEDOUT:  /* it said nothing */
		return sb_tool_fail(cmd, "%s is not a snapbridge coordinator: %s", path,
				    sb_last_error());
	}
	return sb_tool_fail(cmd, "cannot connect to %s: %s", path, sb_last_error());
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

int sb_tool_attach(const char *cmd, const struct sb_source *src, uint32_t flags,
		   struct sb_consumer **out)
{
	uint64_t deadline = src->wait_ms ? sb_tool_mono_ns() + src->wait_ms * 1000000ull : 0;
	long pid = src->pid ? parse_pid(src->pid) : 0;
	int err;

	if (src->file) {
		err = sb_consumer_open_image(src->file, flags, out);
		return err ? sb_tool_fail(cmd, "%s", sb_last_error()) : 0;
	}
	if (src->pid && pid < 0)
		return sb_tool_fail(cmd, "--pid needs a process id, got '%s'", src->pid);
	if (src->wait)
		sb_tool_catch_stop_signals(); /* a waiting script can still be stopped */
	struct sb_connect_config cc;
	sb_connect_config_default(&cc);
	cc.flags = flags;
	if (src->expect)
		cc.expect_uid = (int64_t)src->expect_uid;
	for (;;) {
		err = src->socket ? sb_consumer_connect_with(src->socket, &cc, out)
				  : sb_consumer_open_pid((pid_t)pid, flags, out);
		if (!err)
			return 0;
		if (!src->wait || !not_there_yet(src, err) || sb_tool_stop ||
		    (deadline && sb_tool_mono_ns() >= deadline))
			break;
		nap_ms(20);
	}
	if (err == -ENAMETOOLONG)
		return sb_tool_usage_error(cmd, "%s", sb_last_error());
	if (src->socket)
		return socket_failure(cmd, src, err);
	return sb_tool_fail(cmd, "cannot attach to pid %ld: %s", pid, sb_last_error());
}

volatile sig_atomic_t sb_tool_stop;

static void on_stop(int sig)
{
	(void)sig;
	sb_tool_stop = 1;
}

void sb_tool_catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* the terminal went away: close cleanly too */
	/* A closed pipe reader (| head) ends us through EPIPE on write, not a signal. */
	signal(SIGPIPE, SIG_IGN);
}

uint64_t sb_tool_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int sb_tool_print_json_line(FILE *out, json_t *v)
{
	int err = 0;

	if (!v)
		return -ENOMEM;
	/* JSON_COMPACT keeps one object per line; keys stay in insertion order. */
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
	json_decref(v);
	if (!s)
		return -ENOMEM;
	if (fputs(s, out) == EOF || fputc('\n', out) == EOF)
		err = errno ? -errno : -EIO;
	free(s);
	return err;
}

json_t *sb_tool_base64_json(const void *p, size_t n)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *in = p;
	size_t outlen = (n + 2) / 3 * 4;
	char *s = malloc(outlen + 1);
	size_t o = 0;

	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		s[o++] = abc[v >> 18 & 63];
		s[o++] = abc[v >> 12 & 63];
		s[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
		s[o++] = i + 2 < n ? abc[v & 63] : '=';
	}
	json_t *j = json_stringn(s, o);
	free(s);
	return j;
}

static json_t *text(const char *s)
{
	return s ? sb_tool_text_json(s, strlen(s)) : json_string("");
}

json_t *sb_tool_stats_json(const struct sb_stats *st)
{
	char err[128];
	json_t *j = NULL;

	switch (st->kind) {
	case SB_STATS_ABSENT:
		return json_null();
	case SB_STATS_OK:
		if (sb_mp_to_json(st->msgpack, st->msgpack_len, &j, err, sizeof(err)) != 0)
			return json_pack("{s:s}", "undecodable", err);
		return j;
	case SB_STATS_MISSING:
		break;
	}
	const struct sb_missing *m = &st->missing;
	j = json_pack("{s:s}", "missing", sb_missing_kind_name(m->kind));
	if (!j)
		return NULL;
	switch (m->kind) {
	case SB_MISSING_NO_SCHEDULER:
		json_object_set_new(j, "reason", text(m->text));
		break;
	case SB_MISSING_SCHEDULER_ERROR:
		json_object_set_new(j, "errno", json_integer(m->err));
		/* fall through */
	case SB_MISSING_MISSING_RESP:
		json_object_set_new(j, "args", text(m->text));
		break;
	case SB_MISSING_REQUEST_TOO_LARGE:
	case SB_MISSING_RESPONSE_TOO_LARGE:
		json_object_set_new(j, "size", json_integer((json_int_t)m->size));
		json_object_set_new(j, "max", json_integer((json_int_t)m->max));
		break;
	default:
		break;
	}
	return j;
}

const char *sb_tool_safe(const char *s, char *buf, size_t n)
{
	size_t o = 0;

	if (!s)
		s = "";
	for (; *s && o + 5 < n; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f) {
			buf[o++] = (char)c;
		} else {
			/* Region text is untrusted: no terminal escapes reach a screen. */
			snprintf(buf + o, n - o, "\\x%02x", c);
			o += 4;
		}
	}
	buf[o] = '\0';
	return buf;
}

int sb_tool_output_done(const char *cmd, FILE *out, int write_err)
{
	if (!write_err && fflush(out) != 0)
		write_err = errno ? -errno : -EIO;
	if (!write_err)
		return 0;
	if (write_err == -EPIPE)
		return 0; /* the reader went away (| head): it has what it wanted */
	return sb_tool_fail(cmd, "cannot write the output: %s", strerror(-write_err));
}

int sb_tool_help_done(const char *cmd, int code)
{
	int out = sb_tool_output_done(cmd, stdout, 0);

	return out ? out : code;
}
