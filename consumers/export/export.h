/*
 * consumers/export/export.h - snapbridge's copy in NATS JetStream: an
 * exporter that follows one region and publishes what it drains, exactly
 * once and in order, and a reader that gets it back.
 *
 * A module of its own (libsnapbridge_export), built only over the public
 * consumer API (include/snapbridge/) and libnats; the core library does
 * not depend on it. docs/ARCHITECTURE.md ("Export to NATS JetStream")
 * describes the wire format and the resume rule; this header is the
 * contract of each call.
 *
 *   region --drain--> window of unacknowledged publishes --> stream
 *            (one         (bounded: messages, bytes)        <prefix>.<host>.snap.<tag>
 *            consumer)    acks come back on a libnats       <prefix>.<host>.event ...
 *                         thread, in any order
 *
 * Every function returns 0 or a negative errno; on failure
 * sbx_last_error() holds one line saying what was wrong (thread-local).
 * Handles are used by one thread at a time.
 */
#ifndef SB_EXPORT_EXPORT_H
#define SB_EXPORT_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nats/nats.h>

#include <snapbridge/snapbridge.h>

#define SBX_DEFAULT_URL		 "nats://127.0.0.1:4222"
#define SBX_DEFAULT_PREFIX	 "snapbridge"
#define SBX_DEFAULT_WINDOW	 256	     /* unacknowledged messages */
#define SBX_DEFAULT_WINDOW_BYTES (32u << 20) /* ... and their bytes */
#define SBX_DEFAULT_SUMMARY_MS	 2000
#define SBX_DEFAULT_SETTLE_MS	 200
#define SBX_DEFAULT_ACK_WAIT_MS	 5000
#define SBX_HOST_MAX		 64  /* --host: printable ASCII, no blanks */
#define SBX_PREFIX_MAX		 128 /* --subject-prefix: dot-separated tokens */
#define SBX_STREAM_MAX		 64
/* Hex text of a region id, with its NUL. */
#define SBX_REGION_TEXT (2 * SB_REGION_ID_BYTES + 1)

/* The message for the calling thread's last failure in this module; never NULL. */
const char *sbx_last_error(void);

/* id as 32 lowercase hex digits into out (SBX_REGION_TEXT bytes). Returns out. */
char *sbx_region_text(const uint8_t id[SB_REGION_ID_BYTES], char *out);

/* ---- where the copy lives ------------------------------------------------------------ */

struct sbx_target {
	const char *url;    /* one URL or several, comma-separated; NULL: SBX_DEFAULT_URL */
	const char *stream; /* letters, digits, '-' and '_' */
	const char *prefix; /* NULL: SBX_DEFAULT_PREFIX */
};

/*
 * Check a target's names without connecting: -EINVAL with the reason
 * (an empty or malformed stream name or prefix).
 */
int sbx_target_check(const struct sbx_target *t);

/* Check a --host value: 1..SBX_HOST_MAX printable ASCII bytes, no blanks. */
int sbx_host_check(const char *host);

/* ---- the wire format (wire.c) -------------------------------------------------------- */

/*
 * Subject tokens: bytes in [A-Za-z0-9_-] stand for themselves, every
 * other byte is %XX (two uppercase hex digits). Reversible and never
 * empty for a non-empty input; out needs 3 * len + 1 bytes. Returns the
 * token's length.
 */
size_t sbx_token_escape(const char *in, size_t len, char *out);

/*
 * The inverse: -EBADMSG for anything sbx_token_escape() cannot produce
 * (a stray %, bad hex, an escaped byte that did not need it, a byte
 * outside the token set, a result over cap - 1 bytes or holding a NUL).
 * out is NUL-terminated.
 */
int sbx_token_unescape(const char *tok, size_t toklen, char *out, size_t cap, size_t *len);

enum sbx_kind {
	SBX_SNAP = 1,	  /* <prefix>.<host>.snap.<tag> */
	SBX_EVENT,	  /* <prefix>.<host>.event */
	SBX_KERNEL_OP,	  /* <prefix>.<host>.kernel_op */
	SBX_CGROUP_PROCS, /* <prefix>.<host>.cgroup_procs */
	SBX_SUMMARY,	  /* <prefix>.<host>.summary */
	SBX_RESUME,	  /* <prefix>.<host>.resume: an exporter (re)started */
};

/* The five-way record accounting and its two siblings, cumulative per region. */
struct sbx_counts {
	struct sb_drain_counts rec; /* delivered = exported */
	uint64_t events, events_truncated;
	struct sb_aux_counts aux;
};

/* Where an exporter stands in each of the region's sequences. */
struct sbx_cursors {
	uint64_t store_seq; /* the last store accounted for */
	uint64_t event_seq; /* the last event taken */
	uint64_t aux_seq;   /* the last aux record accounted for */
};

/* What a summary message says (and what the exporter reports at the end). */
struct sbx_summary {
	struct sbx_cursors at;	  /* every message up to these is in the stream */
	struct sbx_counts counts; /* accounting up to `at` */
	uint64_t coordinator_stores;
	enum sb_coord_state coordinator;
	bool final;
	uint64_t published, resent, duplicates, out_of_order, late, reconnects;
	uint64_t time_ns; /* CLOCK_REALTIME when published */
};

/* A message read back from the stream, decoded and checked. */
struct sbx_msg {
	enum sbx_kind kind;
	char host[SBX_HOST_MAX + 1];
	uint8_t region[SB_REGION_ID_BYTES];
	uint64_t seq;		  /* store, event or aux seq; summary: at.store_seq */
	uint64_t stream_seq;	  /* its place in the stream */
	bool has_counts;	  /* snap, event, kernel_op, cgroup_procs: counts of its kind */
	struct sbx_counts counts; /* the accounting up to and including this message */
	struct sb_entry entry;	  /* SBX_SNAP; pointers into the message or below */
	struct sb_event event;	  /* SBX_EVENT */
	struct sb_aux_item aux;	  /* SBX_KERNEL_OP, SBX_CGROUP_PROCS */
	struct sbx_summary summary;
	/* owned */
	char text[SB_REASON_MAX + 1];
	struct sb_kop_reply *reply;
	struct sb_cgroup_procs procs;
	natsMsg *raw;
};

/*
 * Decode msg (read from a stream whose subjects start with prefix) into
 * out, which then owns msg. Everything is checked: the subject's shape,
 * every header, the envelope's msgpack (bounded, never trusted).
 * -EBADMSG with sbx_last_error() naming the subject, the stream sequence
 * and what is wrong for a message that is not a snapbridge export (msg is
 * then still the caller's). Free with sbx_msg_free().
 */
int sbx_msg_decode(natsMsg *msg, const char *prefix, struct sbx_msg *out);
void sbx_msg_free(struct sbx_msg *m);

/*
 * Build the messages the exporter publishes, ready for
 * js_PublishMsgAsync (headers set, Nats-Msg-Id included). counts is the
 * accounting after this message, for its kind. -ENOMEM, -E2BIG (over
 * max_payload bytes).
 */
struct sbx_buf {
	uint8_t *p;
	size_t cap;
};
struct sbx_origin {
	const char *prefix;
	const char *host;
	uint8_t region[SB_REGION_ID_BYTES];
	int64_t max_payload;
	struct sbx_buf *scratch; /* reused for message bodies; NULL: one allocation each */
};
int sbx_snap_msg(const struct sbx_origin *o, const struct sb_entry *e, natsMsg **out);
/* A truncation marker (seq 0) stands at event_head, the event its drain reached. */
int sbx_event_msg(const struct sbx_origin *o, const struct sb_event *ev, uint64_t event_head,
		  natsMsg **out);
int sbx_aux_msg(const struct sbx_origin *o, const struct sb_aux_item *it, natsMsg **out);
int sbx_summary_msg(const struct sbx_origin *o, const struct sbx_summary *s, const char *run,
		    uint64_t n, natsMsg **out);
/* The fence a (re)started exporter publishes before it reads where to resume. */
int sbx_resume_msg(const struct sbx_origin *o, const char *run, natsMsg **out);
/*
 * Add the accounting header of a snap, event or aux message built above:
 * the counts of its kind after it (snap: rec; event: events; aux: aux).
 */
int sbx_set_counts(natsMsg *m, enum sbx_kind kind, const struct sbx_counts *c);

/* ---- a connection to the stream (conn.c) --------------------------------------------- */

struct sbx_conn {
	natsConnection *nc;
	jsCtx *js;
	natsOptions *opts;
	jsOptions jo;
	char url[1024];
	char stream[SBX_STREAM_MAX + 1];
	char prefix[SBX_PREFIX_MAX + 1];
};

/*
 * Connect (at most connect_ms per attempt) and set up a JetStream context
 * whose asynchronous publishes report to ack_fn. With create, make the
 * stream when it is missing (subjects "<prefix>.>", file storage,
 * replicas); either way, check that the stream takes every subject under
 * "<prefix>.<host>." (host may be "*"). Without own_reconnect the library
 * reconnects forever (backoff 100 ms to 2 s); with it a lost connection
 * closes (natsConnection_IsClosed) and the owner calls sbx_conn_redial().
 * -ECONNREFUSED (nobody serves the URL), -ENOENT (no such stream),
 * -EEXIST (the stream takes other subjects), -EPROTO (the server has no
 * JetStream), with the reason.
 */
struct sbx_conn_config {
	const struct sbx_target *target;
	const char *host;
	bool create;
	uint32_t replicas;
	uint32_t connect_ms;
	uint32_t api_wait_ms; /* one JetStream API request, at most; 0: connect_ms */
	uint32_t retry_ms;    /* keep asking a cluster that elects leaders; 0: 5 s */
	int64_t max_pending;  /* asynchronous publishes in flight, at most */
	jsPubAckHandler ack_fn;
	void *ack_user;
	bool own_reconnect;
};
int sbx_conn_open(const struct sbx_conn_config *cfg, struct sbx_conn *out);

/*
 * Drop the connection (whatever it had buffered is never sent) and dial
 * a new one with the same options. -ECONNREFUSED while nobody answers.
 */
int sbx_conn_redial(struct sbx_conn *c);

/* Whether the connection is up. */
bool sbx_conn_up(const struct sbx_conn *c);

void sbx_conn_close(struct sbx_conn *c);

/*
 * The stream's last message on subject (wildcards allowed), decoded:
 * 0 with *out set, 1 when there is none, or -EBADMSG (not ours),
 * -EIO (the request failed).
 */
int sbx_conn_last(struct sbx_conn *c, const char *subject, struct sbx_msg *out);

/* ---- the exporter (exporter.c) ------------------------------------------------------- */

struct sbx_export;

struct sbx_export_config {
	struct sbx_target target;
	const char *host; /* NULL: gethostname() */
	uint32_t replicas;
	uint32_t window;       /* 0: SBX_DEFAULT_WINDOW */
	uint64_t window_bytes; /* 0: SBX_DEFAULT_WINDOW_BYTES */
	uint32_t summary_ms;   /* 0: SBX_DEFAULT_SUMMARY_MS */
	uint32_t settle_ms;    /* before reading the resume point; 0: none */
	uint32_t ack_wait_ms;  /* 0: SBX_DEFAULT_ACK_WAIT_MS */
	uint32_t connect_ms;   /* 0: 5000 */
	bool once;	       /* done once caught up (an image), not when the coordinator ends */
	/* Lines worth telling a person (reconnects, resends, late messages); may be NULL. */
	void (*log)(void *user, const char *line);
	void *log_user;
};

/*
 * Connect, create or check the stream. Nothing is published yet.
 * Errors as sbx_conn_open(), plus -EINVAL for a bad name.
 */
int sbx_export_open(const struct sbx_export_config *cfg, struct sbx_export **out);

/*
 * Start exporting the region consumer c (attached by the caller, never
 * drained before). Waits settle_ms (a killed exporter's last publishes
 * reach the stream), publishes a resume marker and waits for its ack
 * (every publish the stream had queued before is then stored), then
 * reads the stream's last message of each kind for this host: when it
 * is of this region, the exporter continues after it (sb_consumer_seek
 * and friends) with the accounting it carries; otherwise it starts at
 * the oldest record still in the region (older stores count as lapped).
 * -EBADMSG when such a message is not ours. The exporter does not own c.
 */
int sbx_export_attach(struct sbx_export *x, struct sb_consumer *c);

/*
 * One round: take acknowledgements, recover from failures (resend in
 * order once everything in flight is answered and the connection is
 * back), drain the region into the window while it has room, publish a
 * summary when due. Sleeps at most timeout_ms for news (a store, an
 * acknowledgement). *done becomes true when the source can give nothing
 * more (the coordinator closed or died, or an image, and everything is
 * drained). Never slows the coordinator: a full window only stops the
 * draining, and the region laps the exporter (counted).
 * Returns 0, or a negative errno for what cannot be resent (-E2BIG: a
 * record over the server's max_payload).
 */
int sbx_export_pump(struct sbx_export *x, int timeout_ms, bool *done);

/*
 * Wait up to timeout_ms for every message in flight to be acknowledged
 * (resending as pump does), then publish the final summary and wait for
 * it. -ETIMEDOUT when something is still unconfirmed (a restart resumes
 * it).
 */
int sbx_export_finish(struct sbx_export *x, int timeout_ms);

/* The accounting confirmed so far (what the next summary would say). */
void sbx_export_summary(struct sbx_export *x, struct sbx_summary *out);

/* The host name in use, and the region id once attached. */
const char *sbx_export_host(const struct sbx_export *x);
void sbx_export_region(const struct sbx_export *x, uint8_t id[SB_REGION_ID_BYTES]);
/* Where attach resumed: cursors (0s for a fresh region) and whether a previous run was found. */
void sbx_export_resumed(const struct sbx_export *x, struct sbx_cursors *at, bool *resumed);

void sbx_export_close(struct sbx_export *x);

/* ---- reading the stream back (reader.c) ---------------------------------------------- */

struct sbx_reader;

struct sbx_reader_config {
	struct sbx_target target;
	const char *host; /* NULL: every host */
	bool follow;	  /* keep reading new messages */
	/*
	 * How long to keep asking a cluster that is electing leaders (0: 30 s);
	 * a server that refuses the connection fails at once.
	 */
	uint32_t connect_ms;
};

/* Connect and subscribe to "<prefix>.<host or *>.>" from the stream's start. */
int sbx_reader_open(const struct sbx_reader_config *cfg, struct sbx_reader **out);

/*
 * The next message, decoded, in stream order. Returns 0 with *out filled
 * (free it with sbx_msg_free), 1 at the end (without follow: everything
 * there was at open was read; with follow: nothing new for timeout_ms),
 * -EBADMSG for a message that is not ours (sbx_last_error() names it),
 * -EIO when the stream cannot be read.
 */
int sbx_reader_next(struct sbx_reader *r, int timeout_ms, struct sbx_msg *out);

void sbx_reader_close(struct sbx_reader *r);

/*
 * Per-host state of a stream (stat --nats), without reading it through:
 * message counts per kind from the stream's subject list, and each
 * host's newest accounting from its last summary and last snapshot.
 * Free with sbx_stream_stat_free().
 */
struct sbx_host_stat {
	char host[SBX_HOST_MAX + 1];
	uint64_t msgs[SBX_RESUME + 1]; /* per kind, every region */
	bool has_state;
	uint8_t region[SB_REGION_ID_BYTES]; /* of the newest message below */
	struct sbx_cursors at;		    /* the newest accounting: where it stands */
	struct sbx_counts counts;
	uint64_t last_store; /* the newest exported store_seq of that region (0: none) */
	bool has_summary;
	struct sbx_summary summary; /* the newest summary of that region */
};

struct sbx_stream_stat {
	uint64_t messages, bytes, first_seq, last_seq;
	size_t n;
	struct sbx_host_stat *hosts;
};

int sbx_stream_stat(const struct sbx_reader_config *cfg, struct sbx_stream_stat *out);
void sbx_stream_stat_free(struct sbx_stream_stat *s);

/* ---- a local server for tests and benchmarks (natsd.c) --------------------------------- */

struct sbx_natsd {
	pid_t pid;
	int port, cluster_port;
	char name[16];
	char dir[256]; /* its store, log and ports file */
	char url[64];
};

/*
 * Start "nats-server -js" on 127.0.0.1 with its state under dir (made if
 * missing) as server name: port 0 lets the server pick (read back from
 * its ports file). With routes (comma-separated route URLs, this one's
 * included) it joins a cluster listening on cluster_port. Waits up to
 * timeout_ms until it accepts connections; the server dies with the
 * calling thread. -ENOENT (no nats-server on PATH), -ECHILD (it exited),
 * -ETIMEDOUT, with the reason.
 */
int sbx_natsd_start(struct sbx_natsd *d, const char *dir, const char *name, int port,
		    int cluster_port, const char *routes, int timeout_ms);

/* Send sig to the server and reap it. */
void sbx_natsd_stop(struct sbx_natsd *d, int sig);

/* A loopback TCP port nobody listens on right now, or -errno. */
int sbx_free_port(void);

/* Remove dir and everything under it (a server's state), best effort. */
void sbx_remove_tree(const char *dir);

#endif
