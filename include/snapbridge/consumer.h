/*
 * snapbridge/consumer.h - the reader's side: map a bridge's region
 * read-only and drain it in FIFO order, with exact accounting.
 *
 * A consumer keeps a cursor: the store_seq of the last store it has
 * accounted for. A drain walks the record log from there to the newest
 * committed record and gives every store in that window exactly one
 * outcome:
 *
 *   delivered   the record was the tag's resident version when read
 *               (in all-versions mode: any record still in the log);
 *   superseded  a newer store of the same tag had replaced it;
 *   evicted     the cap, the byte budget or a coordinator drain removed it;
 *   lapped      the writer reused its bytes before the consumer copied them;
 *   torn        the writer died while writing it (never delivered).
 *
 * delivered + superseded + evicted + lapped + torn == stores, always.
 *
 * The region is untrusted: every offset and length is bounded before
 * use, and a record is copied out and then re-validated. A corrupt region
 * yields -EBADMSG (or -EPROTO for a protocol violation) and a message from
 * sb_last_error(), never a crash or an out-of-bounds read.
 *
 * What the library checks, by default: the record log's framing, every
 * record header and every length in it, fates, sequences, events, and the
 * encoded reason of missing stats (decoded by the library, so bounded and
 * validated first). What it does not interpret: the bytes of a report
 * and of SB_STATS_OK stats. They are handed over as the coordinator stored
 * them, a length and a pointer into the consumer's own copy; the library
 * never parses them, so no record can make a drain crash, hang or
 * allocate more than the record's own length. A caller that decodes them
 * treats them as untrusted input: either with a decoder that bounds what
 * it allocates, or after sb_msgpack_check() or SB_CONSUMER_VALIDATE_MSGPACK
 * (or the coordinator's SB_BRIDGE_VALIDATE_MSGPACK, for bytes from a
 * coordinator it trusts).
 * Both are off by default because a walk of a dump-shaped report costs
 * several times its copy (docs/BENCHMARKS.md).
 *
 * Attaching: over the coordinator's socket (sb_consumer_connect, which
 * checks who serves it), from a socket the coordinator handed over
 * (sb_consumer_open_socket), by the coordinator's pid for a privileged
 * tool (sb_consumer_open_pid), from a plain data descriptor
 * (sb_consumer_open_fd), or from a saved image (sb_consumer_open_image).
 * A consumer attached over a socket gets a control page of its own - the
 * only memory it writes, shared with the coordinator and nobody else -
 * with the futex word it sleeps on, and tells the coordinator over its
 * connection when it is about to wait.
 *
 * Isolation: nothing one consumer does (whatever it writes or punches
 * into its page, whatever it sends, however many threads it puts to sleep
 * on any word it can map) changes another consumer's wake-ups, liveness
 * answer or accounting, or what a store costs (docs/ARCHITECTURE.md,
 * "What a consumer can do").
 *
 * Waiting: sb_consumer_wait() sleeps until the writer publishes, the
 * coordinator closes or dies, or a deadline; sb_consumer_pollfd() gives
 * a descriptor for an epoll loop instead. A waiting consumer is rung at
 * once, by the coordinator's waker thread. Bounds that hold even if a
 * ring were lost, and whatever other consumers do: a consumer asleep in
 * sb_consumer_wait() looks again within 50 ms (its liveness slice); a
 * polling one is rung within one heartbeat period (100 ms by default) by
 * the serving thread's safety net. A consumer with nobody to ring it (a
 * plain descriptor, attached by pid to a coordinator that does not
 * serve, or hung up on) looks every 10 ms.
 *
 * Thread safety: a consumer handle is used by one thread at a time.
 * Consumers never write to the data region and never block the writer.
 */
#ifndef SNAPBRIDGE_CONSUMER_H
#define SNAPBRIDGE_CONSUMER_H

#include <sys/types.h>

#include <snapbridge/aux.h>
#include <snapbridge/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sb_consumer;

enum sb_consumer_flags {
	/* Deliver every stored version still in the log, not only resident ones. */
	SB_CONSUMER_ALL_VERSIONS = 1u << 0,
	/*
	 * Start at the newest store instead of the oldest still in the log
	 * (skip history). Without it, stores older than the log's tail at
	 * attach count as lapped in the first drain.
	 */
	SB_CONSUMER_START_AT_END = 1u << 1,
	/*
	 * Check every delivered report and stats document before the callback
	 * sees it: each must be exactly one well-formed msgpack object, every
	 * length and container count bounded by the bytes that follow (a walk
	 * that allocates nothing). A record that fails is -EBADMSG. Off by
	 * default; see "What the library checks" above.
	 */
	SB_CONSUMER_VALIDATE_MSGPACK = 1u << 2,
};

struct sb_drain_counts {
	uint64_t stores; /* stores accounted for; the sum of the five below */
	uint64_t delivered;
	uint64_t superseded;
	uint64_t evicted;
	uint64_t lapped;
	uint64_t torn;
};

/*
 * Attach to a region through a descriptor of the data memfd alone
 * (sb_bridge_data_fd). The descriptor must be a memfd sealed against
 * shrinking, growing, resealing and future writes, whose size matches the
 * header; it is mapped PROT_READ only. The caller keeps fd (the consumer
 * holds its own mapping). Without a connection nobody rings this
 * consumer: its waits look every 10 ms. Returns -EBADF, -EPERM (missing
 * seals), -EBADMSG (a header that fails validation), -EPROTO (another ABI
 * or layout), -ENOMEM.
 */
int sb_consumer_open_fd(int fd, uint32_t flags, struct sb_consumer **out);

/*
 * Connect to a coordinator serving on socket (a path, or "@name" for an
 * abstract name; see sb_bridge_serve), check who serves it, check its
 * hello, the descriptors' seals and sizes and the region's header, map
 * the data read-only and this consumer's control page read-write. The
 * serving process must run as this process's effective uid or as root
 * (its SO_PEERCRED; an abstract name can be bound by anyone first):
 * sb_consumer_connect_with() names another uid. Waits at most 5 s for the
 * hello. Returns -ENOENT / -ECONNREFUSED (nobody serves there), -EACCES
 * (the coordinator refused this uid, or the server runs as another uid),
 * -EBUSY (64 consumers attached), -EPROTO (another snapbridge version),
 * -EBADMSG (a malformed hello or region), -ETIMEDOUT, -ECONNRESET (hung
 * up before the hello), -ENAMETOOLONG (a name over 107 bytes);
 * sb_last_error() says more.
 * Caveat: if the coordinator fork()s without exec(), its children keep
 * the connection open after it dies; sb_consumer_wait() still notices
 * through a pidfd, but a polling consumer sees no hang-up.
 */
int sb_consumer_connect(const char *socket, uint32_t flags, struct sb_consumer **out);

/* Options of sb_consumer_connect_with(); sb_connect_config_default() sets them. */
struct sb_connect_config {
	uint32_t flags;	   /* enum sb_consumer_flags */
	uint32_t reserved; /* must be 0 */
	/*
	 * The uid the process serving the socket must run as. -1 (the
	 * default): this process's effective uid, or root.
	 */
	int64_t expect_uid;
};

void sb_connect_config_default(struct sb_connect_config *cfg);

/* sb_consumer_connect() with options; -EINVAL for a bad config. */
int sb_consumer_connect_with(const char *socket, const struct sb_connect_config *cfg,
			     struct sb_consumer **out);

/*
 * Attach through a socket the coordinator handed over
 * (sb_bridge_consumer_socket, passed on by inheritance or SCM_RIGHTS):
 * as sb_consumer_connect() from the hello on. The process that made the
 * socket must run as this process's effective uid or root. Takes fd in
 * every case: it is closed on failure, and owned by the consumer on
 * success (sb_consumer_pollfd returns it).
 */
int sb_consumer_open_socket(int fd, uint32_t flags, struct sb_consumer **out);

/*
 * Attach to the bridge of a running coordinator by its pid, taking its
 * data memfd with pidfd_getfd() (Linux 5.6+). If the coordinator serves
 * (the region names where), the consumer then connects there, checking
 * that the listener is pid itself and hands over this same memfd, and
 * gets a control page and wake-ups like sb_consumer_connect(); otherwise
 * it stays data-only (waits look every 10 ms). Either way a pidfd tells
 * its liveness. Needs ptrace access to pid (same uid with a permissive
 * kernel.yama.ptrace_scope, or CAP_SYS_PTRACE): -EPERM otherwise, -ESRCH
 * when there is no such process, -ENOENT when it has no snapbridge
 * region, -ENOTUNIQ when it has several (connect to its socket instead),
 * -ENOSYS on older kernels.
 */
int sb_consumer_open_pid(pid_t pid, uint32_t flags, struct sb_consumer **out);

/*
 * Open a region image saved to a file. It is read into private memory
 * and validated like a live region. Nothing will ever change it: the
 * coordinator reads as closed (if it had closed when the image was
 * saved) or dead from the start, sb_consumer_wait() returns at once, and
 * an unfinished record counts as torn.
 */
int sb_consumer_open_image(const char *path, uint32_t flags, struct sb_consumer **out);

/* Unmap, close every descriptor the consumer holds (the coordinator then forgets it). */
void sb_consumer_close(struct sb_consumer *consumer);

enum sb_wait_status {
	SB_WAIT_READY = 1, /* something was published since the last drain: drain now */
	SB_WAIT_TIMEOUT,   /* the deadline passed with nothing new */
	SB_WAIT_CLOSED,	   /* the coordinator shut down cleanly; nothing more will come */
	SB_WAIT_DEAD,	   /* the coordinator died; what it committed is still readable */
	SB_WAIT_ARMED,	   /* sb_consumer_arm(): poll sb_consumer_pollfd() now */
};

/*
 * Block until the writer publishes something this consumer has not
 * drained (records since the last sb_consumer_drain(), events since the
 * last sb_consumer_drain_events(), whichever of the two it has used), the
 * coordinator closes or dies, or timeout_ms passes (-1: no limit, 0: do
 * not block). News is reported before closed or dead, so draining until
 * the status is CLOSED or DEAD loses nothing.
 *
 * It spins briefly (adaptively, a few microseconds), then tells the
 * coordinator over its connection that it waits (once per waiting period)
 * and sleeps on the bell in its own control page, which the
 * coordinator's waker rings. The coordinator's death is noticed through
 * a pidfd within 50 ms (without one: a heartbeat four periods old and a
 * pid that is gone); a hang-up alone is not death. Once CLOSED or DEAD,
 * later drains count an unfinished record as torn. An image answers at
 * once. Returns 0 with *status set, or -EINVAL.
 */
int sb_consumer_wait(struct sb_consumer *consumer, int timeout_ms, enum sb_wait_status *status);

/*
 * A descriptor for poll/epoll (POLLIN) that becomes readable when the
 * consumer should call sb_consumer_arm() again: the writer published
 * after an arm, or the coordinator closed or died. It is the connection
 * to the coordinator; the consumer owns it: do not read, write or close
 * it. Only for consumers attached over a socket (sb_consumer_connect,
 * _open_socket, or _open_pid to a serving coordinator; -EOPNOTSUPP
 * otherwise). The waker sends one byte where it would ring the bell, so
 * it costs a send and a poll wake-up more than sb_consumer_wait().
 */
int sb_consumer_pollfd(struct sb_consumer *consumer, int *fd);

/*
 * Before polling sb_consumer_pollfd(): *status = SB_WAIT_ARMED means
 * "nothing new, poll now"; READY, CLOSED or DEAD mean act on that instead
 * (as for sb_consumer_wait). Never blocks. -ENOTCONN when the
 * coordinator hung up on this consumer though it lives (nothing will make
 * the descriptor readable but the hang-up: use sb_consumer_wait).
 */
int sb_consumer_arm(struct sb_consumer *consumer, enum sb_wait_status *status);

enum sb_coord_state {
	SB_COORD_ALIVE = 1,
	SB_COORD_CLOSED, /* shut down cleanly */
	SB_COORD_DEAD,	 /* gone without closing: killed or crashed */
};

/* "alive", "closed", "dead". */
const char *sb_coord_state_name(enum sb_coord_state state);

/*
 * Is the coordinator alive, closed or dead? Closed is read from the
 * region. Dead needs the coordinator process gone: its pidfd readable
 * when the consumer has one (opened only if the pid's start time is the
 * region's), else a heartbeat older than four periods and a pid that is
 * gone or was reused. A hang-up of the connection alone never means
 * dead. An image is closed or dead from the start. Never blocks. Once
 * closed or dead, the answer does not change.
 */
int sb_consumer_coordinator(struct sb_consumer *consumer, enum sb_coord_state *out);

/*
 * The consumers attached to the same coordinator, as its serving thread
 * last published them in the region (every heartbeat, and when one comes
 * or goes): the same fields as sb_bridge_consumers. No consumer reads
 * another's control page. -EAGAIN if the list stayed mid-update,
 * -EOPNOTSUPP for an image.
 */
int sb_consumer_peers(struct sb_consumer *consumer, struct sb_consumer_info *out, size_t cap,
		      size_t *n);

/*
 * Called once per delivered record, in store order. The entry's pointers
 * are valid until the callback returns. Return 0 to go on; any other value
 * stops the drain after this record and is returned by the drain.
 */
typedef int (*sb_entry_fn)(void *user, const struct sb_entry *entry);

/*
 * Drain from the cursor to the newest committed record. counts (optional)
 * receives this call's outcomes; the cursor moves past every store
 * accounted for. A record still being written by a live writer ends the
 * drain; the next drain resumes there. One call reads at most one log's
 * worth of records, so a caller that wants everything drains until the
 * cursor reaches sb_consumer_store_count(). A record that fails
 * validation is reported (-EBADMSG / -EPROTO) and leaves the cursor and
 * counts as they were. Never blocks; a drain that finds nothing new
 * pauses the CPU for about a microsecond before returning, so that a
 * caller polling it in a loop does not compete with the writer.
 */
int sb_consumer_drain(struct sb_consumer *consumer, sb_entry_fn fn, void *user,
		      struct sb_drain_counts *counts);

/* Outcomes summed over every drain of this consumer. */
int sb_consumer_totals(const struct sb_consumer *consumer, struct sb_drain_counts *out);

/* The store_seq of the last store accounted for (0 before the first). */
int sb_consumer_cursor(const struct sb_consumer *consumer, uint64_t *out);

/* Stores the writer has made so far (the newest store_seq). */
int sb_consumer_store_count(const struct sb_consumer *consumer, uint64_t *out);

/* The region's id (types.h), from the header validated at attach. */
int sb_consumer_region_id(const struct sb_consumer *consumer, uint8_t id[SB_REGION_ID_BYTES]);

/*
 * Resume where an earlier reader of the same region stopped (an exporter
 * restarted after a crash): the cursor becomes store_seq, and the next
 * drain delivers from store store_seq + 1 on. Records at or before it
 * still in the log are passed over without being counted; stores after
 * it whose bytes are already reclaimed count as lapped. The totals
 * (sb_consumer_totals) start again from zero. Returns -ERANGE when store_seq
 * is beyond the newest store (the caller's position is not from this
 * region), leaving the consumer as it was.
 */
int sb_consumer_seek(struct sb_consumer *consumer, uint64_t store_seq);

/*
 * The same for events: the next sb_consumer_drain_events() returns events
 * after event_seq (those the ring has overwritten since show up as one
 * EventLogTruncated). -ERANGE beyond the newest event.
 */
int sb_consumer_seek_events(struct sb_consumer *consumer, uint64_t event_seq);

/*
 * The last event sequence taken: where the last sb_consumer_drain_events()
 * stopped (the event it reached, even when that one was overwritten and
 * counted in EventLogTruncated), or what sb_consumer_seek_events() set.
 */
int sb_consumer_event_cursor(const struct sb_consumer *consumer, uint64_t *out);

/*
 * Take the events published since this consumer's last event drain. If the
 * writer overwrote some before they were read, one EventLogTruncated with
 * their count is appended last. Free with sb_events_free().
 */
int sb_consumer_drain_events(struct sb_consumer *consumer, struct sb_events *out);

/* Read the resident index: how many tags are resident, and whether tag is. */
int sb_consumer_len(struct sb_consumer *consumer, size_t *out);
int sb_consumer_has(struct sb_consumer *consumer, const char *tag, bool *out);

/* ---- the aux log: kernel-op replies and cgroup.procs snapshots ---------- */

enum sb_aux_kind {
	SB_AUX_KERNEL_OP = 1,
	SB_AUX_CGROUP_PROCS = 2,
};

/*
 * One aux record as a consumer sees it. Every pointer is valid until the
 * callback returns.
 */
struct sb_aux_item {
	enum sb_aux_kind kind;
	uint64_t seq;	 /* 1-based position in the bridge's aux history */
	const char *tag; /* the kernel op's or the cgroup.procs capture's tag */
	/* SB_AUX_KERNEL_OP: the reply, decoded */
	const struct sb_kop_reply *reply;
	/* SB_AUX_CGROUP_PROCS: tag, cgroup and pids */
	const struct sb_cgroup_procs *procs;
	/* The record's msgpack payload as stored: the reply, or the pids array. */
	const void *msgpack;
	size_t msgpack_len;
};

/*
 * Aux outcomes: records == delivered + lapped, always. (An aux record is
 * committed before it is published, so none is ever in flight or torn.)
 */
struct sb_aux_counts {
	uint64_t records;
	uint64_t delivered;
	uint64_t lapped; /* the writer reused their bytes before we read them */
};

typedef int (*sb_aux_fn)(void *user, const struct sb_aux_item *item);

/*
 * Drain the aux log from this consumer's aux cursor, in append order: each
 * record is delivered to fn, or counted lapped when the writer reused its
 * bytes first. counts (optional) gets this call's outcomes. One call reads
 * at most one log's worth; a callback's non-zero return stops the drain
 * after that record and is returned; a record that fails validation
 * returns -EBADMSG / -EPROTO and leaves the cursor and counts as they
 * were. Kernel-op replies and cgroup.procs snapshots never supersede or
 * evict each other. After the first aux drain, sb_consumer_wait() also
 * reports aux news.
 */
int sb_consumer_drain_aux(struct sb_consumer *consumer, sb_aux_fn fn, void *user,
			  struct sb_aux_counts *counts);

/* Aux outcomes summed over every aux drain of this consumer. */
int sb_consumer_aux_totals(const struct sb_consumer *consumer, struct sb_aux_counts *out);

/* Aux records appended so far (the newest aux sequence). */
int sb_consumer_aux_count(const struct sb_consumer *consumer, uint64_t *out);

/*
 * sb_consumer_seek() for the aux log: the next aux drain delivers from
 * aux sequence aux_seq + 1 on; earlier records still in the log are
 * passed over uncounted, later ones already reclaimed count as lapped;
 * the aux totals start again from zero. -ERANGE beyond the newest aux
 * record.
 */
int sb_consumer_seek_aux(struct sb_consumer *consumer, uint64_t aux_seq);

/* The aux sequence of the last aux record accounted for (0 before the first). */
int sb_consumer_aux_cursor(const struct sb_consumer *consumer, uint64_t *out);

/* ---- the coordinator's watch slots and accessor worker ------------------ */

/* Watch slots the coordinator has taken (as sb_bridge_watch_count). */
int sb_consumer_watch_count(const struct sb_consumer *consumer, uint32_t *out);

/*
 * The accessor worker's publish seqno and state, as the coordinator
 * published them. *installed is false (seqno 0, state TRYING) when the
 * coordinator never installed accessor state.
 */
int sb_consumer_accessor(const struct sb_consumer *consumer, bool *installed, uint64_t *seqno,
			 enum sb_worker_state *state);

/*
 * The two accessor waits of sb_bridge_wait_worker_not_trying() and
 * sb_bridge_wait_publish_advance(), from a consumer process: the same
 * results and diagnostics, sleeping on the same futex in the read-only
 * region. Additionally -EPIPE when the coordinator closes or dies before
 * the condition holds (noticed within 50 ms), and -EBADMSG when the
 * region holds a worker state that is not one of the three.
 */
int sb_consumer_wait_worker_not_trying(struct sb_consumer *consumer, uint64_t deadline_ns,
				       const char *op_label);
int sb_consumer_wait_publish_advance(struct sb_consumer *consumer, uint64_t seqno_before,
				     uint64_t deadline_ns, const char *op_label, uint64_t *seqno);

/* ---- the region at a glance, and images ---------------------------------- */

/*
 * A region's header, config and the writer's counters, as one call reads
 * them. The counters are relaxed reads (each exact, together a moment's
 * view: they may disagree by the stores made while they were read).
 */
struct sb_region_stat {
	/* header */
	uint32_t abi_major, abi_minor;
	uint64_t layout_hash;
	uint64_t region_bytes;
	int32_t coordinator_pid; /* in the coordinator's pid namespace */
	/* config */
	uint32_t max_snapshots, max_events, max_watch;
	uint64_t log_bytes, aux_bytes;
	/* counters */
	uint64_t stores;	 /* the newest store_seq */
	uint64_t resident;	 /* reports resident now */
	uint64_t overwrites;	 /* stores that replaced a resident report of their tag */
	uint64_t evicted_cap;	 /* reports evicted at the snapshot cap */
	uint64_t evicted_bytes;	 /* ... because the record log needed the space */
	uint64_t drained;	 /* reports removed by the coordinator's own drains */
	uint64_t capture_unavailable;
	uint64_t events;	    /* the newest event sequence */
	uint64_t wakes;		    /* times the writer woke sleeping consumers */
	uint64_t log_written_bytes; /* bytes ever written to the record log (rate = throughput) */
	uint64_t log_used_bytes;    /* bytes the log holds now, <= log_bytes */
	/*
	 * The store_seq of the oldest record still in the log (0 when the log
	 * is empty or the writer lapped every try to read it): a consumer whose
	 * cursor is below oldest_seq - 1 has lost the stores between to laps.
	 */
	uint64_t oldest_seq;
	/* liveness: the age of the coordinator's heartbeat (live regions only) */
	bool heartbeat_known;
	uint64_t heartbeat_age_ns;
};

/*
 * Read the region's header, config and counters into out. Never blocks,
 * never writes to the region; works on an image too (heartbeat_known is
 * then false). Returns 0 or -EINVAL.
 */
int sb_consumer_stat(struct sb_consumer *consumer, struct sb_region_stat *out);

struct sb_image_info {
	uint64_t region_bytes; /* the image file's size */
	uint64_t stores;       /* the newest store_seq in the image */
	uint64_t records;      /* records in the image's record log */
	uint64_t aux_records;  /* ... and in its aux log */
};

/*
 * Write a consistent image of the live region this consumer is attached
 * to into the file path, for sb_consumer_open_image(). The writer keeps
 * storing meanwhile: the image is copied with the readers' own protocols,
 * so every record and event in it is byte-for-byte what the writer
 * committed and draining it adds up exactly as if the coordinator had
 * stopped at the image's newest store (docs/CLI.md, "save"). The index
 * and counters are a moment's view.
 *
 * The file is written to ".NAME.XXXXXX" in path's directory, fsynced,
 * opened and drained in full as a check, then renamed over path (mode
 * 0600, sparse where whole pages are zero) and the directory fsynced: on
 * any error no file is left at path. It never replaces what is not a
 * regular file (a symlink, FIFO, device or directory: -EEXIST). A process
 * killed while it runs may leave the temporary behind: block the stop
 * signals around the call to avoid that. info (optional) says what was
 * written. Uses the consumer's handle only to read (not its cursor).
 * Returns 0, -EOPNOTSUPP (the consumer reads an image, not a live
 * region), -EAGAIN (the writer lapped the copy on every one of eight
 * attempts: a bigger log helps), -EBADMSG (a corrupt region), -ENOMEM,
 * or the -errno of a failed file operation; sb_last_error() says which.
 */
int sb_consumer_save_image(struct sb_consumer *consumer, const char *path,
			   struct sb_image_info *info);

/*
 * Tell the consumer the writer is gone (crashed): a record it left
 * unfinished is then counted as torn and skipped instead of waited for.
 */
int sb_consumer_set_writer_gone(struct sb_consumer *consumer, bool gone);

#ifdef __cplusplus
}
#endif
#endif
