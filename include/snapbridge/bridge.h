/*
 * snapbridge/bridge.h - the coordinator's side: a SnapshotBridge whose
 * state lives in a sealed memfd that consumer processes map read-only.
 *
 * The bridge keeps up to max_snapshots reports, one per tag. Storing an
 * existing tag overwrites it and moves it to the back of the FIFO;
 * storing a new tag at the cap evicts the oldest tag. Every store is
 * also appended to a record log that consumers drain (see consumer.h);
 * when the log needs bytes, the oldest records are reclaimed and any of
 * them still resident is evicted. Diagnostic events (overwrite, eviction,
 * capture unavailable, invariant violations) go to a capped event ring.
 *
 * Thread safety: every function may be called from any thread at once,
 * except sb_bridge_destroy(). Stores serialise only on a short critical
 * section (reservation and index update); the copy of the report runs
 * outside it, so a large store does not hold up small ones. has() takes
 * no lock at all.
 *
 * Caveats:
 * - Drains are destructive for everyone: they empty the bridge, and
 *   consumers that had not read a drained record count it as evicted.
 * - The bridge never waits for a consumer; a slow consumer is lapped.
 */
#ifndef SNAPBRIDGE_BRIDGE_H
#define SNAPBRIDGE_BRIDGE_H

#include <snapbridge/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sb_bridge;

/* Defaults of sb_config_default(). */
#define SB_DEFAULT_MAX_SNAPSHOTS 64
#define SB_DEFAULT_MAX_EVENTS	 1024
#define SB_DEFAULT_MAX_WATCH	 3
/* 64 reports of 256 KiB with their headers, plus one at the wrap. */
#define SB_DEFAULT_LOG_BYTES (18u << 20)
#define SB_DEFAULT_AUX_BYTES (4u << 20)

/* Limits sb_bridge_create() enforces (-EINVAL outside them). */
#define SB_MAX_SNAPSHOTS_LIMIT 65536
#define SB_MAX_EVENTS_LIMIT    (1u << 20)
#define SB_MAX_WATCH_LIMIT     64
#define SB_LOG_BYTES_MIN       (64u << 10)
#define SB_LOG_BYTES_MAX       (1u << 30)

struct sb_config {
	uint32_t max_snapshots; /* resident reports, 1..SB_MAX_SNAPSHOTS_LIMIT */
	uint32_t max_events;	/* retained events, 1..SB_MAX_EVENTS_LIMIT */
	uint32_t max_watch;	/* user watch slots, 0..SB_MAX_WATCH_LIMIT */
	uint32_t reserved;	/* must be 0 */
	uint64_t log_bytes;	/* record log, SB_LOG_BYTES_MIN..MAX, rounded up to 64 */
	uint64_t aux_bytes;	/* aux log, same bounds, rounded up to 64 */
};

void sb_config_default(struct sb_config *cfg);

/*
 * The capture callback: fill *out and return 1 when a report was produced,
 * return 0 when none could be (the bridge records CaptureUnavailable).
 * Anything else counts as 0. The report's buffers must stay valid until
 * release (if set) is called with the same report, right after the store.
 */
typedef int (*sb_capture_fn)(void *user, const char *tag, struct sb_report *out);
typedef void (*sb_release_fn)(void *user, struct sb_report *report);

struct sb_bridge_ops {
	sb_capture_fn capture; /* NULL: every capture is unavailable */
	sb_release_fn release; /* optional */
	void *user;
};

/*
 * Create a bridge: allocate and seal its memfds, map them, publish the
 * header. cfg NULL means defaults; ops NULL means no capture callback.
 * Returns -EINVAL for a config outside the limits (sb_last_error() names
 * the field), -ENOMEM, or the errno of memfd_create/ftruncate/mmap.
 */
int sb_bridge_create(const struct sb_config *cfg, const struct sb_bridge_ops *ops,
		     struct sb_bridge **out);

/*
 * Mark the region closed (consumers see the coordinator closed), then
 * unmap and free. No other call on this bridge may be running or follow.
 * Consumers that hold the data descriptor keep reading what was stored.
 */
void sb_bridge_destroy(struct sb_bridge *bridge);

/* The config in effect (sizes rounded up as documented). */
int sb_bridge_config(const struct sb_bridge *bridge, struct sb_config *out);

/*
 * A new read-only descriptor of the data memfd for a consumer: it cannot
 * be mapped writable, written, or resealed. The caller owns and closes it.
 */
int sb_bridge_data_fd(const struct sb_bridge *bridge, int *fd_out);

/*
 * A new read-write descriptor of the control memfd (the page where
 * consumers announce themselves and ask to be woken). With
 * sb_bridge_data_fd() it lets a coordinator hand a consumer both
 * descriptors by a route of its own (inheritance, its own socket); see
 * sb_consumer_open_fds(). The caller owns and closes it.
 */
int sb_bridge_control_fd(const struct sb_bridge *bridge, int *fd_out);

/* Defaults of sb_serve_config_default(). */
#define SB_DEFAULT_HEARTBEAT_MS 100

struct sb_serve_config {
	/*
	 * Where consumers connect: a filesystem path (created 0600, or 0660
	 * with allowed_gid), or "@name" for a name in the abstract namespace.
	 */
	const char *socket;
	/* -1: only peers with the coordinator's uid. Else members of this group too. */
	int64_t allowed_gid;
	uint32_t heartbeat_ms; /* liveness beat interval, 10..60000 */
	uint32_t reserved;     /* must be 0 */
	/*
	 * Where refusals, reclaimed consumer slots and serving errors are
	 * reported, one line each without a newline. NULL: stderr.
	 */
	void (*log)(void *user, const char *line);
	void *log_user;
};

void sb_serve_config_default(struct sb_serve_config *cfg);

/*
 * Serve consumers on a Unix socket, from a thread of the bridge's own.
 * Each peer is checked with SO_PEERCRED (same uid, or allowed_gid) and
 * gets a versioned hello with a read-only data descriptor and a
 * read-write control descriptor; anyone else is refused with the
 * reason logged and sent back. The thread also writes the heartbeat and
 * reclaims the control slots of consumers that died. It never takes the
 * bridge lock: serving never slows a store.
 *
 * A socket path that a dead coordinator left behind is replaced; one a
 * live coordinator serves is not (-EADDRINUSE), and a path that is not a
 * socket is never removed (-EEXIST). sb_bridge_destroy() stops serving,
 * wakes every waiting consumer with "closed" and removes the socket.
 * Returns 0, -EALREADY (serving already), -EINVAL, -ENAMETOOLONG, or the
 * errno of the socket call that failed.
 */
int sb_bridge_serve(struct sb_bridge *bridge, const struct sb_serve_config *cfg);

/*
 * The attached consumers (their control-page slots): up to cap of them
 * into out, and *n = how many are attached (may exceed cap). The values
 * come from the consumers and are hints: see struct sb_consumer_info.
 */
int sb_bridge_consumers(struct sb_bridge *bridge, struct sb_consumer_info *out, size_t cap,
			size_t *n);

/*
 * Store a report under tag (1..SB_TAG_MAX bytes). Overwrites an existing
 * tag (event Overwrite, FIFO position refreshed, every parallel field
 * replaced or cleared); at the cap, evicts the oldest tag (event
 * Eviction). Returns -EINVAL for a NULL or empty tag, a NULL report, a
 * report or stats that is not exactly one msgpack object, or an unknown
 * missing-stats kind; -ENAMETOOLONG for a tag or schema over the limit;
 * -E2BIG when the record could never fit in the log. On error nothing
 * changed.
 */
int sb_bridge_store(struct sb_bridge *bridge, const char *tag, const struct sb_report *report);

/*
 * Store with the stats captured at the same boundary. stats NULL or
 * SB_STATS_ABSENT means none; elapsed_ms NULL means absent. Errors as
 * sb_bridge_store().
 */
int sb_bridge_store_with_stats(struct sb_bridge *bridge, const char *tag,
			       const struct sb_report *report, const struct sb_stats *stats,
			       const uint64_t *elapsed_ms);

/* As sb_bridge_store_with_stats(), plus the boundary offset and step index. */
int sb_bridge_store_with_stats_and_step(struct sb_bridge *bridge, const char *tag,
					const struct sb_report *report,
					const struct sb_stats *stats, const uint64_t *elapsed_ms,
					const uint64_t *boundary_offset_ms, uint16_t step_index);

/*
 * Run the capture callback for tag and store what it returns. *stored is
 * true when a report was stored, false when the callback produced none
 * (event CaptureUnavailable). Errors as sb_bridge_store().
 */
int sb_bridge_capture(struct sb_bridge *bridge, const char *tag, bool *stored);
int sb_bridge_capture_with_step(struct sb_bridge *bridge, const char *tag, uint16_t step_index,
				bool *stored);

/* Resident report count, and whether it is zero. */
int sb_bridge_len(struct sb_bridge *bridge, size_t *out);
int sb_bridge_is_empty(struct sb_bridge *bridge, bool *out);

/* Whether tag has a resident report. Lock-free (an RCU hash lookup). */
int sb_bridge_has(struct sb_bridge *bridge, const char *tag, bool *out);

/* Resident reports under a strict periodic_NNN tag that are not placeholders. */
int sb_bridge_periodic_real_count(struct sb_bridge *bridge, uint32_t *out);

/*
 * Take every resident report, leaving the bridge empty. sb_bridge_drain()
 * drops the stats and metadata (its entries have SB_STATS_ABSENT and no
 * meta); the ordered variants return FIFO order (oldest insertion first,
 * an overwritten tag at its latest position); drain_ordered_with_stats
 * also returns stats (absent stats become Missing NoSchedulerBinary) and
 * metadata. Free the result with sb_entries_free().
 */
int sb_bridge_drain(struct sb_bridge *bridge, struct sb_entries *out);
int sb_bridge_drain_ordered(struct sb_bridge *bridge, struct sb_entries *out);
int sb_bridge_drain_ordered_with_stats(struct sb_bridge *bridge, struct sb_entries *out);

/*
 * Take every retained event in order. If the event cap dropped any since
 * the last drain, one EventLogTruncated{count = dropped} is appended last.
 * Free with sb_events_free().
 */
int sb_bridge_drain_events(struct sb_bridge *bridge, struct sb_events *out);

/* Retained events, not counting the truncation marker a drain would add. */
int sb_bridge_event_count(struct sb_bridge *bridge, size_t *out);

#ifdef __cplusplus
}
#endif
#endif
