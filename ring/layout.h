/*
 * ring/layout.h - the data region's ABI: every struct that lives in
 * shared memory, with its size and field offsets pinned at build time.
 *
 *   offset 0        +------------------------------------------+
 *                   | header: magic, ABI, layout hash, size,    |  written once by
 *                   | section table, config, coordinator pid,   |  the coordinator
 *                   | start time, region id | heartbeat, closed |  before any fd
 *                   | (own line)                                |  leaves it
 *   4096            +------------------------------------------+
 *                   | hot words, one per 64-byte line:          |
 *                   | store_seq, log head/tail, event_seq,      |  writer: stores,
 *                   | aux head/tail/seq, counters,              |  readers: load
 *                   | accessor seqno/state/gen, watch count     |
 *   sections[INDEX] +------------------------------------------+
 *                   | slot[max_snapshots]: seqlock, tag, schema,|  seqlock-guarded
 *                   | store_seq and position of resident record |
 *   sections[LOG]   +------------------------------------------+
 *                   | record log: byte ring, free-running u64   |  records of
 *                   | positions, 64-byte aligned records        |  struct sb_rec
 *   sections[EVENTS]+------------------------------------------+
 *                   | event slot[max_events], stamped with seq  |
 *   sections[AUX]   +------------------------------------------+
 *                   | aux log: byte ring like the record log    |
 *   sections[PEERS] +------------------------------------------+
 *                   | the attached consumers as the serving     |  serving thread,
 *                   | thread lists them, under a seqlock        |  every beat
 *                   +------------------------------------------+
 *
 * Rules (STYLE.md "Shared memory is an ABI"): fixed-width types only,
 * explicit padding, reserved fields zero, hot words alone on their cache
 * line, and a _Static_assert for every size and offset. Readers take
 * section offsets from the header, never from these structs' placement.
 */
#ifndef SB_RING_LAYOUT_H
#define SB_RING_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define SB_MAGIC     "SNAPBRDG"
#define SB_ABI_MAJOR 1
#define SB_ABI_MINOR 0
#define SB_PAGE	     4096u
#define SB_LINE	     64u
#define SB_REC_ALIGN 64u

#define SB_ASSERT_LAYOUT(type, field, off)                                                         \
	_Static_assert(offsetof(type, field) == (off), #type "." #field " moved")
#define SB_ASSERT_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " size changed")

enum sb_section_id {
	SB_SEC_HOT = 0,
	SB_SEC_INDEX,
	SB_SEC_LOG,
	SB_SEC_EVENTS,
	SB_SEC_AUX,
	SB_SEC_PEERS,
	SB_SEC_COUNT,
};
#define SB_SECTION_SLOTS 8
/* sockaddr_un's sun_path, rounded up to a line. */
#define SB_SERVE_NAME_MAX 128

struct sb_section {
	uint64_t offset;
	uint64_t size;
};
SB_ASSERT_SIZE(struct sb_section, 16);

/* Page 0. Everything above `heartbeat_ns` is written once, before publishing. */
struct sb_header {
	char magic[8]; /* "SNAPBRDG", no NUL */
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t header_size;
	uint64_t layout_hash;
	uint64_t region_size;
	uint32_t section_count;
	uint32_t reserved0;
	struct sb_section sections[SB_SECTION_SLOTS];
	/* config */
	uint32_t max_snapshots;
	uint32_t max_events;
	uint32_t max_watch;
	uint32_t slot_size;
	uint32_t event_size;
	uint32_t rec_align;
	uint64_t log_bytes;
	uint64_t aux_bytes;
	/* the coordinator */
	int32_t coord_pid;
	uint32_t reserved1;
	uint64_t coord_start_time; /* /proc/PID/stat starttime, clock ticks after boot */
	/*
	 * 128 random bits from getrandom() at create: with a store_seq, names
	 * a record everywhere (exports); a restarted coordinator is a new
	 * region. Never all zero.
	 */
	uint8_t region_id[16];
	uint8_t reserved2[80];
	/* Liveness, on its own line: writer stores, readers load. */
	uint64_t heartbeat_ns;	      /* CLOCK_MONOTONIC of the last beat */
	uint32_t closed;	      /* 1 once the coordinator shut down cleanly */
	uint32_t heartbeat_period_ms; /* beat interval while serving; 0: no beat */
	uint8_t reserved4[48];
	/*
	 * Where the coordinator serves (its socket path or "@name", NUL
	 * padded; empty when it does not), stored by sb_bridge_serve before
	 * its thread starts: sb_consumer_open_pid connects there. A hint: the
	 * consumer checks that whoever answers hands over this same region.
	 */
	char serve_name[SB_SERVE_NAME_MAX];
	uint8_t tail[SB_PAGE - 384 - SB_SERVE_NAME_MAX];
};
SB_ASSERT_LAYOUT(struct sb_header, abi_major, 8);
SB_ASSERT_LAYOUT(struct sb_header, header_size, 12);
SB_ASSERT_LAYOUT(struct sb_header, layout_hash, 16);
SB_ASSERT_LAYOUT(struct sb_header, region_size, 24);
SB_ASSERT_LAYOUT(struct sb_header, section_count, 32);
SB_ASSERT_LAYOUT(struct sb_header, sections, 40);
SB_ASSERT_LAYOUT(struct sb_header, max_snapshots, 168);
SB_ASSERT_LAYOUT(struct sb_header, log_bytes, 192);
SB_ASSERT_LAYOUT(struct sb_header, aux_bytes, 200);
SB_ASSERT_LAYOUT(struct sb_header, coord_pid, 208);
SB_ASSERT_LAYOUT(struct sb_header, coord_start_time, 216);
SB_ASSERT_LAYOUT(struct sb_header, region_id, 224);
SB_ASSERT_LAYOUT(struct sb_header, reserved2, 240);
SB_ASSERT_LAYOUT(struct sb_header, heartbeat_ns, 320);
SB_ASSERT_LAYOUT(struct sb_header, closed, 328);
SB_ASSERT_LAYOUT(struct sb_header, heartbeat_period_ms, 332);
SB_ASSERT_LAYOUT(struct sb_header, serve_name, 384);
SB_ASSERT_SIZE(struct sb_header, SB_PAGE);

/* One hot word and the rest of its cache line. */
#define SB_HOT_WORD(name)                                                                          \
	uint64_t name;                                                                             \
	uint8_t name##_pad[SB_LINE - 8]

/*
 * The writer's hot words. Only the coordinator stores to them; consumers
 * load them. Positions and sequences are free-running and never wrap in
 * practice (2^64 bytes); readers compare them only by subtraction.
 */
struct sb_hot {
	SB_HOT_WORD(store_seq); /* stores reserved so far = newest store_seq */
	SB_HOT_WORD(log_head);	/* end of the newest reserved record */
	SB_HOT_WORD(log_tail);	/* oldest byte still valid; moves BEFORE bytes are reused */
	SB_HOT_WORD(event_seq); /* events fully written */
	SB_HOT_WORD(aux_head);
	SB_HOT_WORD(aux_tail);
	SB_HOT_WORD(aux_seq);
	/*
	 * No word of the data region is a futex anyone is woken on: every
	 * consumer may map it and sleep threads on any word of it. Consumers
	 * sleep on the bell in their own control page (ring/wake.h).
	 */
	uint8_t reserved_line[SB_LINE];
	SB_HOT_WORD(resident); /* resident report count */
	/* Monotonic counters for stat; relaxed, informational. */
	SB_HOT_WORD(overwrites);
	SB_HOT_WORD(evicted_cap);
	SB_HOT_WORD(evicted_bytes);
	SB_HOT_WORD(drained);
	SB_HOT_WORD(capture_unavailable);
	SB_HOT_WORD(wakes); /* times a publication kicked the waker thread (ring/wake.h, N4) */
	/*
	 * The accessor worker (ring/accessor.h), one line written by its
	 * transitions under the bridge's accessor lock: the publish seqno,
	 * the state (enum sb_worker_state), a generation bumped after every
	 * change (the coordinator's own threads sleep on it with private
	 * futexes; consumers arm on it and sleep on their bell), and whether
	 * accessor state was installed.
	 */
	uint64_t accessor_seqno;
	uint32_t accessor_state;
	uint32_t accessor_gen;
	uint32_t accessor_installed;
	uint8_t accessor_pad[SB_LINE - 20];
	/* watch slots taken (committed, or reserved while their callback runs); <= max_watch always
	 */
	SB_HOT_WORD(watch_count);
};
SB_ASSERT_LAYOUT(struct sb_hot, store_seq, 0);
SB_ASSERT_LAYOUT(struct sb_hot, log_head, 64);
SB_ASSERT_LAYOUT(struct sb_hot, log_tail, 128);
SB_ASSERT_LAYOUT(struct sb_hot, event_seq, 192);
SB_ASSERT_LAYOUT(struct sb_hot, aux_head, 256);
SB_ASSERT_LAYOUT(struct sb_hot, aux_tail, 320);
SB_ASSERT_LAYOUT(struct sb_hot, aux_seq, 384);
SB_ASSERT_LAYOUT(struct sb_hot, reserved_line, 448);
SB_ASSERT_LAYOUT(struct sb_hot, resident, 512);
SB_ASSERT_LAYOUT(struct sb_hot, overwrites, 576);
SB_ASSERT_LAYOUT(struct sb_hot, evicted_cap, 640);
SB_ASSERT_LAYOUT(struct sb_hot, evicted_bytes, 704);
SB_ASSERT_LAYOUT(struct sb_hot, drained, 768);
SB_ASSERT_LAYOUT(struct sb_hot, capture_unavailable, 832);
SB_ASSERT_LAYOUT(struct sb_hot, wakes, 896);
SB_ASSERT_LAYOUT(struct sb_hot, accessor_seqno, 960);
SB_ASSERT_LAYOUT(struct sb_hot, accessor_state, 968);
SB_ASSERT_LAYOUT(struct sb_hot, accessor_gen, 972);
SB_ASSERT_LAYOUT(struct sb_hot, accessor_installed, 976);
SB_ASSERT_LAYOUT(struct sb_hot, watch_count, 1024);
SB_ASSERT_SIZE(struct sb_hot, 1088);

/* Slot flags (sb_slot.flags) and record flags (sb_rec.flags). */
enum {
	SB_F_RESIDENT = 1u << 0, /* slot only: holds a resident report */
	SB_F_PLACEHOLDER = 1u << 1,
	SB_F_HAS_STATS = 1u << 2, /* stats bytes present */
	SB_F_STATS_OK = 1u << 3,  /* ... and hold stats (else a missing reason) */
	SB_F_HAS_ELAPSED = 1u << 4,
	SB_F_HAS_BOUNDARY = 1u << 5,
	SB_F_HAS_STEP = 1u << 6,
};
#define SB_F_KNOWN 0x7fu

/*
 * One resident report in the index. Written by the coordinator inside a
 * ck_sequence write section; readers copy it between two equal even
 * sequence values.
 */
struct sb_slot {
	uint32_t seq; /* a ck_sequence_t: odd while being written */
	uint32_t flags;
	uint64_t store_seq;
	uint64_t record_pos; /* log position of the resident record */
	uint64_t elapsed_ms;
	uint64_t boundary_offset_ms;
	uint16_t step_index;
	uint16_t tag_len;
	uint16_t schema_len;
	uint16_t reserved0;
	uint32_t report_len;
	uint32_t stats_len;
	uint64_t reserved1;
	char tag[64];	 /* tag_len bytes, NUL-padded */
	char schema[64]; /* schema_len bytes, NUL-padded */
};
SB_ASSERT_LAYOUT(struct sb_slot, flags, 4);
SB_ASSERT_LAYOUT(struct sb_slot, store_seq, 8);
SB_ASSERT_LAYOUT(struct sb_slot, record_pos, 16);
SB_ASSERT_LAYOUT(struct sb_slot, elapsed_ms, 24);
SB_ASSERT_LAYOUT(struct sb_slot, boundary_offset_ms, 32);
SB_ASSERT_LAYOUT(struct sb_slot, step_index, 40);
SB_ASSERT_LAYOUT(struct sb_slot, tag_len, 42);
SB_ASSERT_LAYOUT(struct sb_slot, schema_len, 44);
SB_ASSERT_LAYOUT(struct sb_slot, report_len, 48);
SB_ASSERT_LAYOUT(struct sb_slot, stats_len, 52);
SB_ASSERT_LAYOUT(struct sb_slot, tag, 64);
SB_ASSERT_LAYOUT(struct sb_slot, schema, 128);
SB_ASSERT_SIZE(struct sb_slot, 192);

/* sb_rec.commit: written BUSY at reservation, COMMITTED once the bytes are in. */
#define SB_REC_BUSY	 0x59535542u /* "BUSY" */
#define SB_REC_COMMITTED 0x544d4f43u /* "COMT" */

/* sb_rec.fate: what became of a snapshot record after it was stored. */
enum sb_fate {
	SB_FATE_RESIDENT = 1,	   /* still the tag's resident version */
	SB_FATE_SUPERSEDED = 2,	   /* a newer store of the tag replaced it */
	SB_FATE_EVICTED_CAP = 3,   /* evicted at the max_snapshots cap */
	SB_FATE_EVICTED_BYTES = 4, /* evicted because the log needed its bytes */
	SB_FATE_DRAINED = 5,	   /* taken by a coordinator-side drain */
};

enum sb_rec_kind {
	SB_REC_SNAPSHOT = 1,
	SB_REC_PAD = 2, /* fills the ring's end; no store_seq */
	SB_REC_KERNEL_OP = 3,
	SB_REC_CGROUP_PROCS = 4,
};

/*
 * A record header in the log. Records are contiguous, 64-byte aligned and
 * never wrap: a PAD record fills the end of the ring instead. After the
 * header come tag_len tag bytes, schema_len schema bytes, report_len
 * report bytes and stats_len stats bytes.
 */
struct sb_rec {
	uint32_t commit; /* SB_REC_BUSY / SB_REC_COMMITTED */
	uint32_t fate;	 /* enum sb_fate; changes after commit */
	uint32_t len;	 /* whole record, multiple of SB_REC_ALIGN */
	uint16_t kind;	 /* enum sb_rec_kind */
	uint16_t flags;	 /* SB_F_* except SB_F_RESIDENT */
	uint64_t seq;	 /* store_seq (log) or aux sequence (aux log) */
	uint32_t slot;
	uint16_t tag_len;
	uint16_t schema_len;
	uint32_t report_len;
	uint32_t stats_len;
	uint64_t elapsed_ms;
	uint64_t boundary_offset_ms;
	uint16_t step_index;
	uint16_t reserved0;
	uint32_t reserved1;
};
SB_ASSERT_LAYOUT(struct sb_rec, fate, 4);
SB_ASSERT_LAYOUT(struct sb_rec, len, 8);
SB_ASSERT_LAYOUT(struct sb_rec, kind, 12);
SB_ASSERT_LAYOUT(struct sb_rec, flags, 14);
SB_ASSERT_LAYOUT(struct sb_rec, seq, 16);
SB_ASSERT_LAYOUT(struct sb_rec, slot, 24);
SB_ASSERT_LAYOUT(struct sb_rec, tag_len, 28);
SB_ASSERT_LAYOUT(struct sb_rec, schema_len, 30);
SB_ASSERT_LAYOUT(struct sb_rec, report_len, 32);
SB_ASSERT_LAYOUT(struct sb_rec, stats_len, 36);
SB_ASSERT_LAYOUT(struct sb_rec, elapsed_ms, 40);
SB_ASSERT_LAYOUT(struct sb_rec, boundary_offset_ms, 48);
SB_ASSERT_LAYOUT(struct sb_rec, step_index, 56);
SB_ASSERT_SIZE(struct sb_rec, 64);

/* sb_event_slot.stamp bit set while the slot is being rewritten. */
#define SB_STAMP_WRITING (1ull << 63)

/* One event. stamp is the event's 1-based sequence once fully written. */
struct sb_event_slot {
	uint64_t stamp;
	uint32_t kind;	/* enum sb_event_kind */
	uint32_t cause; /* enum sb_evict_cause */
	uint64_t cap;
	uint64_t count;
	uint8_t tag_len;
	uint8_t detail_len;
	uint8_t reserved0[6];
	char tag[64];
	char detail[64];
	uint8_t reserved1[24];
};
SB_ASSERT_LAYOUT(struct sb_event_slot, kind, 8);
SB_ASSERT_LAYOUT(struct sb_event_slot, cap, 16);
SB_ASSERT_LAYOUT(struct sb_event_slot, count, 24);
SB_ASSERT_LAYOUT(struct sb_event_slot, tag_len, 32);
SB_ASSERT_LAYOUT(struct sb_event_slot, tag, 40);
SB_ASSERT_LAYOUT(struct sb_event_slot, detail, 104);
SB_ASSERT_SIZE(struct sb_event_slot, 192);

/*
 * The attached consumers, as the serving thread lists them (the same
 * entries as sb_bridge_consumers): consumers read it for
 * sb_consumer_peers, since none may read another's control page. The
 * serving thread, the only writer, rewrites it under seq (odd while
 * writing: D1-D4 in ring/peers.h) on every heartbeat and whenever
 * a consumer comes or goes. cursor and heartbeat_ns are each consumer's
 * claims about itself; readers bound them.
 */
#define SB_PEERS_MAX 64

struct sb_peer_entry {
	int32_t pid;	       /* SO_PEERCRED, or the consumer's own claim for a hand-over */
	uint32_t slot;	       /* its index in the serving thread's table */
	uint64_t cursor;       /* claimed */
	uint64_t heartbeat_ns; /* claimed, CLOCK_MONOTONIC */
	uint64_t attached_ns;  /* the coordinator's clock when it was admitted */
	uint32_t armed;	       /* 0, or enum sb_arm_mode of its pending arm */
	uint32_t reserved0;
	uint8_t reserved[24];
};
SB_ASSERT_LAYOUT(struct sb_peer_entry, slot, 4);
SB_ASSERT_LAYOUT(struct sb_peer_entry, cursor, 8);
SB_ASSERT_LAYOUT(struct sb_peer_entry, heartbeat_ns, 16);
SB_ASSERT_LAYOUT(struct sb_peer_entry, attached_ns, 24);
SB_ASSERT_LAYOUT(struct sb_peer_entry, armed, 32);
SB_ASSERT_SIZE(struct sb_peer_entry, 64);

struct sb_peers {
	uint32_t seq;	/* seqlock: odd while being rewritten */
	uint32_t count; /* entries in use, <= SB_PEERS_MAX */
	uint64_t published_ns;
	uint8_t pad[SB_LINE - 16];
	struct sb_peer_entry entries[SB_PEERS_MAX];
};
SB_ASSERT_LAYOUT(struct sb_peers, count, 4);
SB_ASSERT_LAYOUT(struct sb_peers, published_ns, 8);
SB_ASSERT_LAYOUT(struct sb_peers, entries, 64);
SB_ASSERT_SIZE(struct sb_peers, 64 + 64 * SB_PEERS_MAX);

/* Where each section goes for a config; filled by sb__layout_plan(). */
struct sb_plan {
	uint64_t region_size;
	struct sb_section sections[SB_SEC_COUNT];
};

struct sb_config;

/* Hash of every struct size and field offset above: a build with another layout refuses. */
uint64_t sb__layout_hash(void);

/* Place the sections for a validated config. */
void sb__layout_plan(const struct sb_config *cfg, struct sb_plan *plan);

/* Fill a fresh (zeroed) header for cfg and plan. */
void sb__header_init(struct sb_header *hdr, const struct sb_config *cfg,
		     const struct sb_plan *plan);

/*
 * Check a header a reader mapped (or copied) from an untrusted region of
 * region_size bytes: magic, ABI, layout hash, sizes, every section inside
 * the region, page aligned and disjoint, config consistent with the
 * sections. Returns 0, -EPROTO (other ABI/layout) or -EBADMSG; sets
 * sb_last_error().
 */
int sb__header_validate(const struct sb_header *hdr, uint64_t region_size);

#endif
