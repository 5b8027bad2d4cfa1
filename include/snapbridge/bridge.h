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

#include <snapbridge/aux.h>
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

/*
 * sb_config.flags. SB_BRIDGE_VALIDATE_MSGPACK: every store checks that its
 * report and stats are each exactly one well-formed msgpack object and
 * refuses them (-EINVAL) otherwise. Off by default: the check walks every
 * object of the document, which costs several times the copy of a report
 * shaped like a real dump (docs/BENCHMARKS.md), and it protects no
 * consumer (a consumer reads an untrusted region either way; see
 * SB_CONSUMER_VALIDATE_MSGPACK in consumer.h). Without it the bytes are
 * stored as given.
 */
#define SB_BRIDGE_VALIDATE_MSGPACK (1u << 0)

struct sb_config {
	uint32_t max_snapshots; /* resident reports, 1..SB_MAX_SNAPSHOTS_LIMIT */
	uint32_t max_events;	/* retained events, 1..SB_MAX_EVENTS_LIMIT */
	uint32_t max_watch;	/* user watch slots, 0..SB_MAX_WATCH_LIMIT */
	uint32_t flags;		/* SB_BRIDGE_*; unknown bits are refused */
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

/*
 * The watch-register callback: arm a watch on symbol. Return 0 when it is
 * armed; otherwise a negative errno, with a sentence in why (why_len bytes,
 * NUL-terminated) saying what went wrong (symbol unresolved, alignment,
 * no free hardware slot...).
 */
typedef int (*sb_watch_register_fn)(void *user, const char *symbol, char *why, size_t why_len);

/*
 * The kernel-op callback: carry out req and fill *reply, which arrives
 * set to {id = req->id, success = false, reason = "the kernel-op callback
 * left the reply unset"}. The reply's buffers must stay valid until
 * kernel_op_release (if set) is called with it, right after the bridge
 * has copied it.
 */
typedef void (*sb_kernel_op_fn)(void *user, const struct sb_kop_request *req,
				struct sb_kop_reply *reply);
typedef void (*sb_kop_release_fn)(void *user, struct sb_kop_reply *reply);

struct sb_bridge_ops {
	sb_capture_fn capture;		     /* NULL: every capture is unavailable */
	sb_release_fn release;		     /* optional */
	void *user;			     /* passed to every callback */
	sb_watch_register_fn watch_register; /* NULL: watches cannot be registered */
	sb_kernel_op_fn kernel_op;	     /* NULL: kernel ops are "not installed" */
	sb_kop_release_fn kernel_op_release; /* optional */
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

/* The region's id (types.h), as every consumer of this bridge reads it. */
int sb_bridge_region_id(const struct sb_bridge *bridge, uint8_t id[SB_REGION_ID_BYTES]);

/*
 * A new read-only descriptor of the data memfd for a consumer: it cannot
 * be mapped writable, written, or resealed. The caller owns and closes it.
 */
int sb_bridge_data_fd(const struct sb_bridge *bridge, int *fd_out);

/* Defaults of sb_serve_config_default(). */
#define SB_DEFAULT_HEARTBEAT_MS 100

struct sb_serve_config {
	/*
	 * Where consumers connect: a filesystem path (created 0600, or 0660
	 * with allowed_gid), or "@name" for a name in the abstract namespace.
	 * NULL: no socket; consumers come only through
	 * sb_bridge_consumer_socket().
	 */
	const char *socket;
	/* -1: only peers with the coordinator's uid. Else members of this group too. */
	int64_t allowed_gid;
	uint32_t heartbeat_ms; /* liveness beat interval, 10..60000 */
	uint32_t reserved;     /* must be 0 */
	/*
	 * Where refusals, hang-ups and serving errors are reported, one line
	 * each without a newline; lines about peers at most 5 a second, then
	 * one line counting those left out. NULL: stderr.
	 */
	void (*log)(void *user, const char *line);
	void *log_user;
};

void sb_serve_config_default(struct sb_serve_config *cfg);

/*
 * Serve consumers, from two threads of the bridge's own (every signal
 * blocked): a serving thread and a waker.
 *
 * The serving thread accepts on a Unix socket (unless cfg->socket is
 * NULL). Each peer is checked with SO_PEERCRED (same uid, or allowed_gid)
 * and gets a versioned hello with a read-only data descriptor and a
 * control page of its own (a one-page memfd nobody else holds); anyone
 * else is refused with the reason logged and sent back. Afterwards a
 * consumer sends only "arm" messages, saying it is about to wait and how
 * far it has read; the serving thread keeps them in a table of its own.
 * It also writes the heartbeat every heartbeat_ms and publishes the list
 * of attached consumers into the region for sb_consumer_peers().
 *
 * Work per wake-up is bounded (8 accepts, 4 messages per consumer), so
 * under a flood of connections the heartbeat is at most one period late
 * and a stop takes effect at once; lines about refused or dropped peers
 * are rate-limited. A consumer that sends anything but arms is hung up
 * on (that consumer alone). At most 64 consumers are attached at once;
 * the 65th is refused with -EBUSY.
 *
 * The waker rings the bell of each armed consumer when a publication
 * kicks it. A store's own cost does not depend on consumers: with nobody
 * armed it makes no system call; with somebody armed it makes at most
 * one (FUTEX_WAKE_PRIVATE of the waker) per waiting period, however many
 * consumers wait and whatever they do. Neither thread takes the bridge
 * lock.
 *
 * A socket path that a dead coordinator left behind is replaced; one a
 * live coordinator serves is not (-EADDRINUSE), and a path that is not a
 * socket is never removed (-EEXIST). sb_bridge_destroy() stops serving,
 * wakes every waiting consumer with "closed" and removes the socket.
 * Returns 0, -EALREADY (serving already), -EINVAL, -ENAMETOOLONG, or the
 * errno of the socket or thread call that failed.
 */
int sb_bridge_serve(struct sb_bridge *bridge, const struct sb_serve_config *cfg);

/*
 * Hand a consumer over by a route of the coordinator's own (inheritance,
 * SCM_RIGHTS on its own socket): a connected SOCK_SEQPACKET socket whose
 * other end the serving thread has already admitted like an accepted
 * connection (its hello waits in it). Give *fd_out to
 * sb_consumer_open_socket() in the consumer. The bridge must serve
 * (sb_bridge_serve, socket may be NULL): -ENOTCONN otherwise; -EBUSY
 * when 64 consumers are attached. *fd_out is close-on-exec; the caller
 * owns it until it hands it on.
 */
int sb_bridge_consumer_socket(struct sb_bridge *bridge, int *fd_out);

/*
 * The consumers attached through the serving thread (over the socket or
 * a hand-over; a consumer of a plain data descriptor is not known to the
 * coordinator), from its own table: up to cap of them into out, and *n =
 * how many are attached (may exceed cap); 0 when the bridge does not
 * serve. Whether each waits, and how, is the
 * table's; cursor and heartbeat are each consumer's claims about itself:
 * see struct sb_consumer_info.
 */
int sb_bridge_consumers(struct sb_bridge *bridge, struct sb_consumer_info *out, size_t cap,
			size_t *n);

/*
 * Store a report under tag (1..SB_TAG_MAX bytes). Overwrites an existing
 * tag (event Overwrite, FIFO position refreshed, every parallel field
 * replaced or cleared); at the cap, evicts the oldest tag (event
 * Eviction). The report's bytes are copied as given: they should be one
 * msgpack object, and are checked to be only with SB_BRIDGE_VALIDATE_MSGPACK.
 * Returns -EINVAL for a NULL or empty tag, a NULL report, an unknown
 * missing-stats kind, or (with SB_BRIDGE_VALIDATE_MSGPACK) a report or
 * stats that is not exactly one msgpack object; -ENAMETOOLONG for a tag or
 * schema over the limit; -E2BIG when the record could never fit in the
 * log. On error nothing changed.
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

/*
 * Whether tag has a resident report. Normally lock-free (an RCU hash
 * lookup); takes the bridge lock for one lookup when an index entry it must
 * compare stays mid-update (the storing thread was preempted).
 */
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

/* ---- watch slots ---------------------------------------------------------- */

/*
 * Register a watch on symbol (1..SB_KOP_TARGET_MAX bytes). A slot is
 * reserved first, with a compare-and-swap on the published count, so
 * concurrent registrations can never take the count past max_watch, not
 * even for a moment; then the watch-register callback runs. If there is
 * no callback or it fails, the slot is released; on success it stays
 * taken for the bridge's life. max_watch counts user watches only (the
 * reference's slot 0, kept for the host's own trigger, is not one).
 * Returns 0; -ENOSPC when all max_watch slots are taken; -ENOSYS when no
 * callback is installed; the callback's negative errno (-EIO if it
 * returned something else) with its reason in sb_last_error(); -EINVAL /
 * -ENAMETOOLONG for the symbol.
 */
int sb_bridge_register_watch(struct sb_bridge *bridge, const char *symbol);

/*
 * Watch slots taken, as published in the region (consumers read it too):
 * committed ones plus any reserved while their callback runs, so it can
 * drop back when a callback fails. Never above max_watch.
 */
int sb_bridge_watch_count(struct sb_bridge *bridge, uint32_t *out);

/* ---- accessor state ------------------------------------------------------- */

/*
 * Install the accessor worker's state in the region: seqno 0, state
 * TRYING. Until then both waits below succeed at once (seqno 0), as the
 * reference's bridges without accessor state do. -EALREADY if installed.
 */
int sb_bridge_accessor_install(struct sb_bridge *bridge);

/*
 * Worker side. publish: seqno + 1 (release), state SUCCEEDED, wake every
 * waiter in this and other processes; *seqno (optional) gets the new
 * value. retry: back to TRYING while a re-init runs (the seqno stays).
 * fail: state FAILED_PERMANENTLY, wake every waiter. Each costs one
 * FUTEX_WAKE system call. -ENODEV when no accessor state is installed;
 * -ENOTRECOVERABLE after fail (the worker is gone for good).
 */
int sb_bridge_accessor_publish(struct sb_bridge *bridge, uint64_t *seqno);
int sb_bridge_accessor_retry(struct sb_bridge *bridge);
int sb_bridge_accessor_fail(struct sb_bridge *bridge);

/* The publish seqno (acquire): 0 when no accessor state is installed. */
int sb_bridge_accessor_publish_seqno(struct sb_bridge *bridge, uint64_t *out);

/*
 * Block until the worker leaves TRYING, or until deadline_ns
 * (CLOCK_MONOTONIC, see sb_monotonic_ns()). Event-driven: it sleeps on a
 * futex the worker's publish and fail wake. Returns 0 at once without
 * accessor state; 0 when the worker reached SUCCEEDED;
 * -ENOTRECOVERABLE when it is FAILED_PERMANENTLY; -ETIMEDOUT at the
 * deadline. sb_last_error() then starts with op_label and says which.
 */
int sb_bridge_wait_worker_not_trying(struct sb_bridge *bridge, uint64_t deadline_ns,
				     const char *op_label);

/*
 * Block until the publish seqno advances past seqno_before; *seqno
 * (optional) gets the value seen. Returns 0 with *seqno = 0 at once
 * without accessor state; -ENOTRECOVERABLE when the worker is
 * FAILED_PERMANENTLY; -ETIMEDOUT at the deadline, with the observed
 * worker state and the legend "0=Trying / 1=Succeeded /
 * 2=FailedPermanently" in sb_last_error().
 */
int sb_bridge_wait_publish_advance(struct sb_bridge *bridge, uint64_t seqno_before,
				   uint64_t deadline_ns, const char *op_label, uint64_t *seqno);

/* ---- kernel ops ------------------------------------------------------------- */

/*
 * Run req through the kernel-op callback and log (req->tag, reply): in
 * the coordinator's own log and in the region's aux log. *reply (may be
 * NULL) gets a copy the caller frees with sb_kop_reply_free(). Returns
 * -ENOSYS, logging nothing, when no callback is installed; -EINVAL /
 * -ENAMETOOLONG / -E2BIG for a request outside the bounds of aux.h (the
 * callback does not run, nothing is logged). When the callback's reply
 * breaks a bound or cannot fit the aux log, the op has still run: a
 * failed reply naming the refusal is logged in its place, and the
 * refusal's error is returned.
 */
int sb_bridge_dispatch_kernel_op(struct sb_bridge *bridge, const struct sb_kop_request *req,
				 struct sb_kop_reply **reply);

/*
 * Log a reply produced elsewhere, as dispatch would have. A tag or reply
 * outside the bounds (-EINVAL, -ENAMETOOLONG, -E2BIG) is refused and
 * nothing is logged: the caller still has the reply.
 */
int sb_bridge_record_kernel_op_reply(struct sb_bridge *bridge, const char *tag,
				     const struct sb_kop_reply *reply);

/*
 * Take the coordinator's kernel-op log, oldest first, leaving it empty.
 * The coordinator's logs keep every entry until drained (the reference's
 * contract): a long-running coordinator that does not read them must
 * drain them, or they grow without bound. Consumers read the aux log.
 * Consumers reading the aux log are not affected. Free with
 * sb_kop_log_free().
 */
int sb_bridge_drain_kernel_ops(struct sb_bridge *bridge, struct sb_kop_log *out);

/*
 * The first read value of the first successful reply logged under tag
 * that has read values, without draining. -ENOENT when there is none.
 * Free a BYTES value with sb_kop_value_free().
 */
int sb_bridge_kernel_op_value(struct sb_bridge *bridge, const char *tag, struct sb_kop_value *out);

/* ---- cgroup.procs snapshots ---------------------------------------------- */

/*
 * Append (tag, cgroup, pids) to the coordinator's log and the aux log.
 * Never merges: the same tag or cgroup twice gives two entries. tag is
 * 1..SB_KOP_TAG_MAX bytes, cgroup 1..SB_CGROUP_NAME_MAX, n_pids up to
 * SB_CGROUP_PIDS_MAX (pids may be NULL when 0). -EINVAL, -ENAMETOOLONG,
 * -E2BIG (also when the record cannot fit the aux log); nothing is
 * logged on error.
 */
int sb_bridge_record_cgroup_procs(struct sb_bridge *bridge, const char *tag, const char *cgroup,
				  const int32_t *pids, size_t n_pids);

/* Take the log in insertion order, leaving it empty. Free with sb_cgroup_procs_log_free(). */
int sb_bridge_drain_cgroup_procs(struct sb_bridge *bridge, struct sb_cgroup_procs_log *out);

/*
 * A copy of the first snapshot logged under tag, without draining.
 * -ENOENT when there is none. Free with sb_cgroup_procs_free().
 */
int sb_bridge_cgroup_procs_by_tag(struct sb_bridge *bridge, const char *tag,
				  struct sb_cgroup_procs **out);

/* ---- the thread's active bridge ------------------------------------------- */

/*
 * Code deep in a call stack (a scenario's capture op, say) finds its
 * bridge through the calling thread's active bridge rather than a
 * parameter. Installing returns a guard; restoring the guard puts back
 * the bridge that was active before, so installs nest. The guard does
 * not own the bridge: destroy it only after the guard is restored.
 */
struct sb_bridge_guard {
	struct sb_bridge *prev;
	bool armed; /* false once restored */
};

struct sb_bridge_guard sb_bridge_set_thread_local(struct sb_bridge *bridge);
void sb_bridge_guard_restore(struct sb_bridge_guard *guard);

/* The calling thread's active bridge, or NULL. */
struct sb_bridge *sb_active_bridge(void);

/*
 * Run fn with the active bridge and store its result in *result. Returns
 * -ENOENT without calling fn when this thread has no active bridge.
 */
int sb_with_active_bridge(int (*fn)(struct sb_bridge *bridge, void *user), void *user, int *result);

/*
 * Make bridge the active one until the end of the enclosing block, however
 * the block is left:
 *     { SB_ACTIVE_BRIDGE_SCOPE(bridge); run_scenario(); }
 */
#define SB_ACTIVE_BRIDGE_SCOPE(bridge) SB__SCOPE_(bridge, __COUNTER__)
#define SB__SCOPE_(bridge, n)	       SB__SCOPE__(bridge, n)
#define SB__SCOPE__(bridge, n)                                                                     \
	struct sb_bridge_guard sb__scope_guard_##n                                                 \
	    __attribute__((cleanup(sb_bridge_guard_restore), unused)) =                            \
		sb_bridge_set_thread_local(bridge)

#ifdef __cplusplus
}
#endif
#endif
