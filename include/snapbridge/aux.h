/*
 * snapbridge/aux.h - the bridge's side channels: kernel-op requests and
 * replies, cgroup.procs snapshots, the accessor worker's states, and the
 * msgpack form kernel ops travel in.
 *
 * The coordinator keeps its own destructive logs of kernel-op replies and
 * cgroup.procs snapshots (bridge.h: drain, first-match lookup) and also
 * appends every entry to the region's aux log, which consumers drain in
 * order with exact accounting (consumer.h: sb_consumer_drain_aux).
 *
 * Decoded objects (sb_kop_*_decode, the coordinator's drains and lookups)
 * are single allocations: every pointer inside points into the same block,
 * and one sb_kop_request_free / sb_kop_reply_free / sb_cgroup_procs_free
 * releases it.
 */
#ifndef SNAPBRIDGE_AUX_H
#define SNAPBRIDGE_AUX_H

#include <snapbridge/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds on kernel ops and cgroup.procs records (bytes, without the NUL). */
#define SB_KOP_TAG_MAX	   256
#define SB_KOP_REASON_MAX  256
#define SB_KOP_TARGET_MAX  256
#define SB_KOP_REPLY_MAX   (1u << 20) /* an encoded reply */
#define SB_KOP_ENTRIES_MAX 4096	      /* entries of a request, values of a reply */
#define SB_CGROUP_NAME_MAX 4096
#define SB_CGROUP_PIDS_MAX (1u << 20)

enum sb_kop_mode {
	SB_KOP_HOT = 0,	 /* while the guest runs */
	SB_KOP_COLD = 1, /* while it is frozen */
};

enum sb_kop_direction {
	SB_KOP_READ = 0,
	SB_KOP_WRITE = 1,
};

enum sb_kop_value_kind {
	SB_KOP_NONE = 0,   /* no value: the entry of a read request */
	SB_KOP_U32 = 1,	   /* num */
	SB_KOP_U64 = 2,	   /* num */
	SB_KOP_BYTES = 3,  /* bytes, len */
	SB_KOP_OR_U32 = 4, /* num: a u32 OR-ed into the target (a write that sets bits) */
};

struct sb_kop_value {
	enum sb_kop_value_kind kind;
	uint64_t num; /* U32 and OR_U32 fit in 32 bits */
	const uint8_t *bytes;
	size_t len;
};

/* One kernel location and, for a write, the value to put there. */
struct sb_kop_entry {
	const char *target; /* symbol or address expression, 1..SB_KOP_TARGET_MAX bytes */
	struct sb_kop_value value;
};

struct sb_kop_request {
	uint64_t id;
	enum sb_kop_mode mode;
	enum sb_kop_direction direction;
	const char *tag; /* 1..SB_KOP_TAG_MAX bytes */
	const struct sb_kop_entry *entries;
	size_t n_entries; /* 0..SB_KOP_ENTRIES_MAX */
};

struct sb_kop_reply {
	uint64_t id; /* the request's */
	bool success;
	const char *reason; /* why it failed; NULL or 0..SB_KOP_REASON_MAX bytes */
	const struct sb_kop_value *read_values;
	size_t n_values; /* 0..SB_KOP_ENTRIES_MAX */
};

/* One entry of the coordinator's kernel-op log: the request's tag and the reply. */
struct sb_kop_record {
	char *tag;
	struct sb_kop_reply *reply;
};

struct sb_kop_log {
	size_t count;
	struct sb_kop_record *items;
};

/*
 * A cgroup.procs snapshot: the thread-group leaders a cgroup held when it
 * was read. Duplicate tags and cgroups are kept apart, never merged.
 */
struct sb_cgroup_procs {
	char *tag;    /* 1..SB_KOP_TAG_MAX bytes */
	char *cgroup; /* 1..SB_CGROUP_NAME_MAX bytes */
	int32_t *pids;
	size_t n_pids; /* 0..SB_CGROUP_PIDS_MAX; 0: the cgroup existed and was empty */
};

struct sb_cgroup_procs_log {
	size_t count;
	struct sb_cgroup_procs **items;
};

/*
 * The accessor worker's state, as published in the region. The worker
 * starts TRYING, moves to SUCCEEDED on its first publish (and stays there
 * while later publishes bump the seqno), and ends FAILED_PERMANENTLY when
 * it gives up for good.
 */
enum sb_worker_state {
	SB_WORKER_TRYING = 0,
	SB_WORKER_SUCCEEDED = 1,
	SB_WORKER_FAILED_PERMANENTLY = 2,
};

/* "Trying", "Succeeded", "FailedPermanently"; NULL for anything else. */
const char *sb_worker_state_name(enum sb_worker_state state);

/*
 * msgpack forms (maps with string keys, so any msgpack tool shows them
 * readably):
 *   request {"id": uint, "mode": "hot"|"cold", "direction": "read"|"write",
 *            "tag": str, "entries": [{"target": str, "value": V}]}
 *   reply   {"id": uint, "success": bool, "reason": str|nil, "read_values": [V]}
 *   V       nil | {"u32": uint} | {"u64": uint} | {"bytes": bin} | {"or_u32": uint}
 * Optional when decoding: an entry's "value" (nil), a reply's "reason"
 * (nil) and "read_values" ([]); every other key is required, and unknown
 * or repeated keys are refused. Encoding checks every bound above
 * (-EINVAL, -ENAMETOOLONG, -E2BIG for a document over SB_KOP_REPLY_MAX,
 * found before anything is packed) and writes nothing on error; *buf is
 * malloc'd, free() it. Decoding treats the bytes as hostile and returns
 * -EBADMSG for anything that is not exactly one such map within the
 * bounds; it allocates at most a small multiple of len.
 */
int sb_kop_request_encode(const struct sb_kop_request *req, void **buf, size_t *len);
int sb_kop_request_decode(const void *buf, size_t len, struct sb_kop_request **out);
void sb_kop_request_free(struct sb_kop_request *req);

int sb_kop_reply_encode(const struct sb_kop_reply *reply, void **buf, size_t *len);
int sb_kop_reply_decode(const void *buf, size_t len, struct sb_kop_reply **out);
void sb_kop_reply_free(struct sb_kop_reply *reply);

/* Free what a drain or lookup returned (NULL is fine). */
void sb_kop_log_free(struct sb_kop_log *log);
void sb_kop_value_free(struct sb_kop_value *value);
void sb_cgroup_procs_free(struct sb_cgroup_procs *procs);
void sb_cgroup_procs_log_free(struct sb_cgroup_procs_log *log);

#ifdef __cplusplus
}
#endif
#endif
