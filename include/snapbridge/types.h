/*
 * snapbridge/types.h - values shared by the coordinator and consumer APIs.
 *
 * Every function in snapbridge returns 0 on success or a negative errno.
 * On failure, sb_last_error() returns a sentence naming what was wrong for
 * the calling thread's most recent failed call.
 */
#ifndef SNAPBRIDGE_TYPES_H
#define SNAPBRIDGE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest tag and schema name, in bytes, not counting the NUL. */
#define SB_TAG_MAX    63
#define SB_SCHEMA_MAX 63
/* Longest free text carried by a missing-stats reason (reason or args). */
#define SB_REASON_MAX 1024

/*
 * A region's identity: 128 random bits made by sb_bridge_create(), never
 * all zero. With a store_seq it names one record anywhere (an export
 * keys its de-duplication on the pair); a restarted coordinator makes a
 * new region with a new id. Written as 32 lowercase hex digits.
 */
#define SB_REGION_ID_BYTES 16

/*
 * A capture report: an opaque msgpack document with a schema name and a
 * placeholder flag (a placeholder stands in for a capture that produced
 * no real state). The bridge copies everything it is given; the caller
 * keeps ownership of its buffers.
 */
struct sb_report {
	const char *schema; /* 0..SB_SCHEMA_MAX bytes; NULL means "" */
	bool placeholder;
	const void *msgpack; /* exactly one msgpack object */
	size_t msgpack_len;
};

/* Why the stats that should accompany a periodic capture are missing. */
enum sb_missing_kind {
	SB_MISSING_NO_SCHEDULER_BINARY = 1,
	SB_MISSING_NO_SCHEDULER, /* text: reason */
	SB_MISSING_DURING_FREEZE,
	SB_MISSING_CANCELLED,
	SB_MISSING_SCHEDULER_ERROR,    /* err, text: args */
	SB_MISSING_MISSING_RESP,       /* text: args */
	SB_MISSING_REQUEST_TOO_LARGE,  /* size, max */
	SB_MISSING_RESPONSE_TOO_LARGE, /* size, max */
	SB_MISSING_MUTEX_POISONED,
};

struct sb_missing {
	enum sb_missing_kind kind;
	const char *text; /* reason or args; NULL where the variant has none */
	int32_t err;	  /* SchedulerError's errno */
	uint64_t size;	  /* Request/ResponseTooLarge */
	uint64_t max;
};

enum sb_stats_kind {
	SB_STATS_ABSENT = 0, /* no stats were bundled with the capture */
	SB_STATS_OK,	     /* msgpack holds the stats document */
	SB_STATS_MISSING,    /* missing says why there are none */
};

struct sb_stats {
	enum sb_stats_kind kind;
	const void *msgpack; /* SB_STATS_OK: exactly one msgpack object */
	size_t msgpack_len;
	struct sb_missing missing; /* SB_STATS_MISSING */
};

/* The per-capture metadata that travels with a report. */
struct sb_meta {
	bool has_elapsed;
	bool has_boundary;
	bool has_step;
	uint64_t elapsed_ms;	     /* since run start, when the capture fired */
	uint64_t boundary_offset_ms; /* the workload boundary it was scheduled for */
	uint16_t step_index;	     /* 0 = baseline, 1..N = scenario steps */
};

/*
 * One drained snapshot. In an sb_entries array every pointer is owned by
 * the array and freed by sb_entries_free(); in a consumer callback they
 * point into the consumer's copy and live until the callback returns.
 */
struct sb_entry {
	char tag[SB_TAG_MAX + 1];
	char schema[SB_SCHEMA_MAX + 1];
	uint64_t store_seq; /* 1-based position of the store in the bridge's history */
	bool placeholder;
	const void *report;
	size_t report_len;
	struct sb_stats stats;
	struct sb_meta meta;
};

struct sb_entries {
	size_t count;
	struct sb_entry *items;
};

void sb_entries_free(struct sb_entries *entries);

enum sb_event_kind {
	SB_EVENT_CAPTURE_UNAVAILABLE = 1, /* tag */
	SB_EVENT_OVERWRITE,		  /* tag, detail = prior schema */
	SB_EVENT_EVICTION,		  /* tag = evicted, detail = new tag, cap, cause */
	SB_EVENT_DRAIN_ORDERING_INVARIANT_VIOLATION, /* tag, detail = drain variant */
	SB_EVENT_CAP_INVARIANT_VIOLATION,	     /* count = reports_len, cap */
	SB_EVENT_LOG_TRUNCATED,			     /* count = dropped_count; synthetic */
};

/* Why an Eviction happened. Every other kind of event has no cause (SB_EVICT_NONE). */
enum sb_evict_cause {
	SB_EVICT_NONE = 0,  /* not an eviction */
	SB_EVICT_CAP = 1,   /* the resident count reached max_snapshots */
	SB_EVICT_BYTES = 2, /* the record log needed the bytes for a newer record */
};

struct sb_event {
	enum sb_event_kind kind;
	uint64_t seq; /* 1-based event sequence; 0 for the synthetic truncation marker */
	char tag[SB_TAG_MAX + 1];
	char detail[SB_TAG_MAX + 1];
	uint64_t cap;
	uint64_t count;
	enum sb_evict_cause cause;
};

struct sb_events {
	size_t count;
	struct sb_event *items;
};

void sb_events_free(struct sb_events *events);

/*
 * One consumer attached to a coordinator. slot, attached_ns, waiting and
 * polling come from the serving thread's own table; pid is the peer's
 * SO_PEERCRED (for a sb_bridge_consumer_socket hand-over, the consumer's
 * claim). cursor and heartbeat are what the consumer claims in its own
 * control page: bounded and sanity-checked, but not proof.
 */
struct sb_consumer_info {
	uint32_t slot;		   /* its entry in the serving thread's table */
	int32_t pid;		   /* 0 when not known */
	uint64_t cursor;	   /* the last store_seq it accounted for */
	uint64_t lag;		   /* stores it has not accounted for yet (when lag_valid) */
	uint64_t heartbeat_age_ns; /* since it last drained or waited */
	uint64_t attached_ns;	   /* CLOCK_MONOTONIC when it attached */
	bool lag_valid;		   /* false when its cursor is ahead of the stores */
	bool waiting;		   /* armed: about to sleep in a wait, or polling */
	bool polling;		   /* ... on its pollable descriptor */
};

/* "NoSchedulerBinary", "Overwrite", ...: the reference's variant names. */
const char *sb_missing_kind_name(enum sb_missing_kind kind);
const char *sb_event_kind_name(enum sb_event_kind kind);

/* True for exactly "periodic_" followed by three ASCII digits. */
bool sb_tag_is_periodic(const char *tag);

/*
 * Whether buf holds exactly one well-formed msgpack object, every count in
 * it covered by the bytes that follow. Check untrusted bytes with it
 * before msgpack-c unpacks them: msgpack-c reserves memory for a
 * container's declared count first, so "2^32 elements" in five bytes
 * would ask for gigabytes. Iterative, so any nesting depth is safe to
 * check. (Aux payloads a drain delivers have passed it already; reports
 * and stats only with SB_CONSUMER_VALIDATE_MSGPACK: see consumer.h.)
 * Returns 0, or -EBADMSG with sb_last_error() saying where.
 */
int sb_msgpack_check(const void *buf, size_t len);

/* CLOCK_MONOTONIC in nanoseconds: the clock of every deadline_ns argument. */
uint64_t sb_monotonic_ns(void);

/*
 * The message for the calling thread's most recent failed snapbridge call:
 * what was wrong, the value, what to do. Never NULL; "" when none.
 */
const char *sb_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
