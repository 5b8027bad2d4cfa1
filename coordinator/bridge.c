/*
 * coordinator/bridge.c - the writer side: SnapshotBridge semantics over
 * the shared region.
 *
 * The resident set (tag -> newest report, FIFO by last store) is not kept
 * in a separate list: every store appends a record to the log, and log
 * order is store order, so the FIFO is "the RESIDENT records of the log,
 * oldest first". Each record carries a fate word the writer updates when
 * the record stops being resident (superseded, evicted, drained); that is
 * what lets a consumer classify every store exactly.
 *
 * Locking: b->lock (coordinator/lock.h) covers reservation, the index,
 * the fate words, events and the private state below it. Payload copies
 * run outside the lock; the record stays BUSY until its copy is
 * committed. has() takes no lock.
 */
#define _GNU_SOURCE
#include "bridge_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"
#include "../ring/format/msgpack.h"
#include "../ring/format/missing_stats.h"
#include "../ring/error.h"
#include "../ring/liveness.h"
#include "../ring/slots.h"
#include "../ring/format/snapshot.h"

void sb_config_default(struct sb_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_snapshots = SB_DEFAULT_MAX_SNAPSHOTS;
	cfg->max_events = SB_DEFAULT_MAX_EVENTS;
	cfg->max_watch = SB_DEFAULT_MAX_WATCH;
	cfg->log_bytes = SB_DEFAULT_LOG_BYTES;
	cfg->aux_bytes = SB_DEFAULT_AUX_BYTES;
}

static int check_ring_bytes(const char *name, uint64_t *bytes)
{
	if (*bytes < SB_LOG_BYTES_MIN || *bytes > SB_LOG_BYTES_MAX)
		return sb__fail(-EINVAL, "%s is %llu: it must be between %u and %u bytes", name,
				(unsigned long long)*bytes, SB_LOG_BYTES_MIN, SB_LOG_BYTES_MAX);
	*bytes = (*bytes + SB_REC_ALIGN - 1) & ~(uint64_t)(SB_REC_ALIGN - 1);
	return 0;
}

static int check_config(struct sb_config *cfg)
{
	if (cfg->max_snapshots == 0 || cfg->max_snapshots > SB_MAX_SNAPSHOTS_LIMIT)
		return sb__fail(-EINVAL, "max_snapshots is %u: it must be 1..%u",
				cfg->max_snapshots, SB_MAX_SNAPSHOTS_LIMIT);
	if (cfg->max_events == 0 || cfg->max_events > SB_MAX_EVENTS_LIMIT)
		return sb__fail(-EINVAL, "max_events is %u: it must be 1..%u", cfg->max_events,
				SB_MAX_EVENTS_LIMIT);
	if (cfg->max_watch > SB_MAX_WATCH_LIMIT)
		return sb__fail(-EINVAL, "max_watch is %u: it must be 0..%u", cfg->max_watch,
				SB_MAX_WATCH_LIMIT);
	if (cfg->flags & ~(uint32_t)SB_BRIDGE_VALIDATE_MSGPACK)
		return sb__fail(-EINVAL, "config.flags has unknown bits 0x%x",
				cfg->flags & ~(uint32_t)SB_BRIDGE_VALIDATE_MSGPACK);
	int err = check_ring_bytes("log_bytes", &cfg->log_bytes);
	return err ? err : check_ring_bytes("aux_bytes", &cfg->aux_bytes);
}

/* 128 random bits, never all zero (readers refuse a zero id as unstamped). */
static int make_region_id(uint8_t id[SB_REGION_ID_BYTES])
{
	static const uint8_t zero[SB_REGION_ID_BYTES];

	do {
		size_t got = 0;

		while (got < SB_REGION_ID_BYTES) {
			ssize_t n = getrandom(id + got, SB_REGION_ID_BYTES - got, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return sb__fail(-errno, "getrandom for the region id: %s",
						strerror(errno));
			got += (size_t)n;
		}
	} while (memcmp(id, zero, SB_REGION_ID_BYTES) == 0);
	return 0;
}

int sb_bridge_create(const struct sb_config *cfg_in, const struct sb_bridge_ops *ops,
		     struct sb_bridge **out)
{
	uint8_t region_id[SB_REGION_ID_BYTES];
	struct sb_config cfg;
	struct sb_plan plan;
	struct sb_bridge *b;
	int err;

	if (!out)
		return sb__fail(-EINVAL, "sb_bridge_create: out is NULL");
	*out = NULL;
	if (cfg_in)
		cfg = *cfg_in;
	else
		sb_config_default(&cfg);
	err = check_config(&cfg);
	if (err)
		return err;

	b = calloc(1, sizeof(*b));
	if (!b)
		return sb__fail(-ENOMEM, "out of memory for a bridge");
	b->data.fd = -1;
	b->cfg = cfg;
	if (ops)
		b->ops = *ops;
	sb__lock_init(&b->lock);
	sb__aux_log_init(b);
	sb__accessor_init(b);
	b->free_slots = malloc(sizeof(uint32_t) * cfg.max_snapshots);
	if (!b->free_slots) {
		err = sb__fail(-ENOMEM, "out of memory for %u slots", cfg.max_snapshots);
		goto fail;
	}
	for (uint32_t i = 0; i < cfg.max_snapshots; i++)
		b->free_slots[i] = cfg.max_snapshots - 1 - i;
	b->nfree = cfg.max_snapshots;
	err = sb__tagindex_init(&b->index, cfg.max_snapshots, SB_TAG_BUCKETS_PER_SLOT);
	if (err)
		goto fail;

	err = make_region_id(region_id);
	if (err)
		goto fail;
	sb__layout_plan(&cfg, &plan);
	err = sb__shm_create("snapbridge-data", plan.region_size, F_SEAL_FUTURE_WRITE | F_SEAL_SEAL,
			     &b->data);
	if (err)
		goto fail;

	uint8_t *base = b->data.map;
	b->hdr = (struct sb_header *)base;
	b->hot = (struct sb_hot *)(base + plan.sections[SB_SEC_HOT].offset);
	b->slots = (struct sb_slot *)(base + plan.sections[SB_SEC_INDEX].offset);
	b->log = (struct sb_log){ base + plan.sections[SB_SEC_LOG].offset, cfg.log_bytes,
				  &b->hot->log_head, &b->hot->log_tail };
	b->aux = (struct sb_log){ base + plan.sections[SB_SEC_AUX].offset, cfg.aux_bytes,
				  &b->hot->aux_head, &b->hot->aux_tail };
	b->events = (struct sb_evring){
		(struct sb_event_slot *)(base + plan.sections[SB_SEC_EVENTS].offset),
		cfg.max_events, &b->hot->event_seq
	};

	/* The memfd is fresh and zeroed; no descriptor has left this process yet. */
	sb__header_init(b->hdr, &cfg, &plan);
	b->hdr->coord_pid = getpid();
	b->hdr->coord_start_time = sb__proc_start_time(getpid());
	memcpy(b->hdr->region_id, region_id, sizeof(region_id));
	/* Nothing reads the region before a descriptor leaves: no pair needed yet. */
	sb__beat(b->hdr, sb__mono_ns());
	/* Before any other thread can see the bridge: the store path reads wake.fenced plainly. */
	sb__wake_init(&b->wake, &b->hot->wakes);
	*out = b;
	return 0;
fail:
	sb__shm_destroy(&b->data);
	sb__tagindex_fini(&b->index);
	free(b->free_slots);
	sb__aux_log_fini(b);
	sb__accessor_fini(b);
	free(b);
	return err;
}

void sb_bridge_destroy(struct sb_bridge *b)
{
	if (!b)
		return;
	/*
	 * Readers that still hold the memfd see a clean shutdown. Release: a
	 * reader that sees closed also sees every store before it. closed is
	 * set before any connection is hung up, so a consumer that sees the
	 * hang-up and then reads closed tells "closed" from "died".
	 */
	sb__region_close(b->hdr);
	/* Every attached consumer, asleep or polling, in any wait, looks again and sees it. */
	sb__serve_ring_all(b);
	sb__serve_stop(b);
	sb__tagindex_fini(&b->index);
	sb__shm_destroy(&b->data);
	free(b->free_slots);
	sb__aux_log_fini(b);
	sb__accessor_fini(b);
	free(b);
}

int sb_bridge_config(const struct sb_bridge *b, struct sb_config *out)
{
	if (!b || !out)
		return sb__fail(-EINVAL, "sb_bridge_config: NULL argument");
	*out = b->cfg;
	return 0;
}

int sb_bridge_region_id(const struct sb_bridge *b, uint8_t id[SB_REGION_ID_BYTES])
{
	if (!b || !id)
		return sb__fail(-EINVAL, "sb_bridge_region_id: NULL argument");
	memcpy(id, b->hdr->region_id, SB_REGION_ID_BYTES);
	return 0;
}

int sb_bridge_data_fd(const struct sb_bridge *b, int *fd_out)
{
	if (!b || !fd_out)
		return sb__fail(-EINVAL, "sb_bridge_data_fd: NULL argument");
	return sb__shm_ro_fd(&b->data, fd_out);
}

/* ---- events (under the lock) ------------------------------------------ */

static void bump(uint64_t *counter)
{
	/* Informational counters: the lock orders writers, readers want no ordering. */
	sb_store_relaxed(counter, sb_load_relaxed(counter) + 1);
}

/* ---- the resident set (under the lock) --------------------------------- */

static void slot_name(const struct sb_slot *s, char tag[SB_TAG_MAX + 1])
{
	memcpy(tag, s->tag, s->tag_len);
	tag[s->tag_len] = '\0';
}

/* Unindex the tag in slot and mark the slot empty for readers. */
static void clear_slot(struct sb_bridge *b, uint32_t slot)
{
	struct sb_slot *s = &b->slots[slot];

	sb__tagindex_del_held(&b->index, slot);
	sb__slot_write_begin(s);
	s->flags = 0;
	sb__slot_write_end(s);
}

/* Drop the resident report in slot: clear it and return it to the free list. */
static void unresident(struct sb_bridge *b, uint32_t slot)
{
	clear_slot(b, slot);
	b->free_slots[b->nfree++] = slot;
	b->resident--;
	sb_store_relaxed(&b->hot->resident, b->resident);
}

/* The slot says rec is its tag's resident report (the reference's `reports` map). */
static bool slot_holds(const struct sb_bridge *b, const struct sb_rec *rec)
{
	if (rec->kind != SB_REC_SNAPSHOT || rec->slot >= b->cfg.max_snapshots)
		return false;
	const struct sb_slot *s = &b->slots[rec->slot];
	return (s->flags & SB_F_RESIDENT) && s->store_seq == rec->seq;
}

/* rec is resident and in FIFO order (the reference's `order` as well). */
static bool is_resident_record(const struct sb_bridge *b, const struct sb_rec *rec)
{
	return sb_load_relaxed(&rec->fate) == SB_FATE_RESIDENT && slot_holds(b, rec);
}

static void evict(struct sb_bridge *b, struct sb_rec *rec, enum sb_fate fate,
		  const struct sb_tag *new_tag)
{
	const struct sb_slot *s = &b->slots[rec->slot];
	bool by_bytes = fate == SB_FATE_EVICTED_BYTES;

	sb_store_relaxed(&rec->fate, (uint32_t)fate);
	unresident(b, rec->slot); /* clears the slot's flags; its tag stays until reused */
	bump(by_bytes ? &b->hot->evicted_bytes : &b->hot->evicted_cap);
	sb__event_eviction(&b->events, s->tag, s->tag_len, (const char *)new_tag->word,
			   new_tag->len, b->cfg.max_snapshots,
			   by_bytes ? SB_EVICT_BYTES : SB_EVICT_CAP);
}

/*
 * Defensive: more reports are resident than the cap allows and none of
 * them is in FIFO order. Like the reference, drop them all (loudly) to
 * restore the invariant rather than loop.
 */
static void clear_after_cap_violation(struct sb_bridge *b)
{
	uint64_t n = b->resident;

	for (uint32_t i = 0; i < b->cfg.max_snapshots; i++) {
		struct sb_slot *s = &b->slots[i];

		if (!(s->flags & SB_F_RESIDENT))
			continue;
		struct sb_rec *rec = sb__log_wrec(&b->log, s->record_pos);
		if (slot_holds(b, rec))
			sb_store_relaxed(&rec->fate, (uint32_t)SB_FATE_EVICTED_CAP);
		clear_slot(b, i);
	}
	for (uint32_t i = 0; i < b->cfg.max_snapshots; i++)
		b->free_slots[i] = b->cfg.max_snapshots - 1 - i;
	b->nfree = b->cfg.max_snapshots;
	b->resident = 0;
	sb_store_relaxed(&b->hot->resident, 0);
	sb__event_cap_violation(&b->events, n, b->cfg.max_snapshots);
}

/*
 * Make room at the cap for new_tag, as the reference's loop does after it
 * inserts the new tag: while the reports resident with it would be more
 * than the cap, pop the FIFO front and evict it (one Eviction each). When
 * nothing older is left in FIFO order, the front is the new tag itself: it
 * is evicted (Eviction{new, new}), and if more reports than the cap are
 * still resident after that (an invariant the API cannot break), all of
 * them are cleared with CapInvariantViolation. Returns false when the new
 * tag was popped: the caller stores its record already evicted.
 */
static bool make_room(struct sb_bridge *b, const struct sb_tag *new_tag)
{
	uint64_t head = sb_load_relaxed(&b->hot->log_head);
	uint64_t tail = sb_load_relaxed(&b->hot->log_tail);
	uint64_t pos = (int64_t)(b->resident_cursor - tail) < 0 ? tail : b->resident_cursor;

	/* Each record is passed over at most once: the cursor only moves forward. */
	while (b->resident >= b->cfg.max_snapshots) {
		struct sb_rec *rec = NULL;

		for (; pos != head; pos += rec->len) {
			rec = sb__log_wrec(&b->log, pos);
			if (is_resident_record(b, rec))
				break;
		}
		if (pos == head)
			break;
		evict(b, rec, SB_FATE_EVICTED_CAP, new_tag);
		pos += rec->len;
	}
	b->resident_cursor = pos;
	if (b->resident < b->cfg.max_snapshots)
		return true;
	bump(&b->hot->evicted_cap);
	sb__event_eviction(&b->events, (const char *)new_tag->word, new_tag->len,
			   (const char *)new_tag->word, new_tag->len, b->cfg.max_snapshots,
			   SB_EVICT_CAP);
	if (b->resident > b->cfg.max_snapshots)
		clear_after_cap_violation(b);
	return false;
}

struct reclaim_ctx {
	struct sb_bridge *b;
	const struct sb_tag *new_tag;
	int64_t replacing; /* the slot this store overwrites, or -1 */
};

static void reclaim_record(void *arg, struct sb_rec *rec, uint64_t pos)
{
	struct reclaim_ctx *ctx = arg;

	(void)pos;
	/*
	 * The slot is the authority: a resident report never loses its bytes
	 * silently. The slot this store overwrites still names its old record
	 * until the store refills it: that record is superseded, not evicted.
	 */
	if (slot_holds(ctx->b, rec) && (int64_t)rec->slot != ctx->replacing)
		evict(ctx->b, rec, SB_FATE_EVICTED_BYTES, ctx->new_tag);
}

/* ---- store -------------------------------------------------------------- */

/* A store's arguments, checked, with the tag and schema padded to whole words. */
struct store_args {
	struct sb_tag tag;
	const struct sb_report *report;
	uint64_t schema[SB_TAG_WORDS]; /* zero-padded words: copied 64 bytes at a time */
	size_t schema_len;
	const void *stats;
	size_t stats_len;
	uint16_t flags;
	uint64_t elapsed_ms;
	uint64_t boundary_offset_ms;
	uint16_t step_index;
};

_Static_assert(sizeof(((struct sb_slot *)0)->tag) == sizeof(((struct sb_tag *)0)->word) &&
		       sizeof(((struct sb_slot *)0)->schema) == SB_TAG_WORDS * 8 &&
		       SB_SCHEMA_MAX == SB_TAG_MAX,
	       "slot tags and schemas are copied as whole padded buffers");

/* With SB_BRIDGE_VALIDATE_MSGPACK: bytes that must be one msgpack object. */
static int check_msgpack(const struct sb_bridge *b, const char *what, const char *tag,
			 const void *p, size_t len)
{
	if (!(b->cfg.flags & SB_BRIDGE_VALIDATE_MSGPACK) || sb__msgpack_check(p, len) == 0)
		return 0;
	return sb__fail(-EINVAL, "%s for %s is not one msgpack object: %s", what, tag,
			sb__msgpack_error());
}

/* What the store calls other than sb_bridge_store() add, each NULL when not given. */
struct store_extras {
	const struct sb_stats *stats;
	const uint64_t *elapsed_ms;
	const uint64_t *boundary_offset_ms;
	const uint16_t *step_index;
};

/* Stats and step: absent from sb_bridge_store(), whose arguments are checked without them. */
static int prepare_extras(const struct sb_bridge *b, const char *tag, const struct store_extras *x,
			  struct store_args *a, uint8_t *missing_buf)
{
	const struct sb_stats *stats = x->stats;
	int err;

	if (stats && stats->kind == SB_STATS_OK) {
		if (!stats->msgpack && stats->msgpack_len)
			return sb__fail(-EINVAL, "stats for %s have %zu bytes at NULL", tag,
					stats->msgpack_len);
		err = check_msgpack(b, "stats", tag, stats->msgpack, stats->msgpack_len);
		if (err)
			return err;
		a->stats = stats->msgpack;
		a->stats_len = stats->msgpack_len;
		a->flags |= SB_F_HAS_STATS | SB_F_STATS_OK;
	} else if (stats && stats->kind == SB_STATS_MISSING) {
		err = sb__missing_encode(&stats->missing, missing_buf, SB_MISSING_ENC_MAX,
					 &a->stats_len);
		if (err)
			return err;
		a->stats = missing_buf;
		a->flags |= SB_F_HAS_STATS;
	} else if (stats && stats->kind != SB_STATS_ABSENT) {
		return sb__fail(-EINVAL, "stats kind %d for %s is unknown", (int)stats->kind, tag);
	}
	a->flags |= (x->elapsed_ms ? SB_F_HAS_ELAPSED : 0) |
		    (x->boundary_offset_ms ? SB_F_HAS_BOUNDARY : 0) |
		    (x->step_index ? SB_F_HAS_STEP : 0);
	a->elapsed_ms = x->elapsed_ms ? *x->elapsed_ms : 0;
	a->boundary_offset_ms = x->boundary_offset_ms ? *x->boundary_offset_ms : 0;
	a->step_index = x->step_index ? *x->step_index : 0;
	return 0;
}

static int prepare(struct sb_bridge *b, const char *tag, const struct sb_report *report,
		   const struct store_extras *x, struct store_args *a, uint8_t *missing_buf)
{
	size_t tag_len;
	int err;

	if (!b)
		return sb__fail(-EINVAL, "bridge is NULL");
	tag_len = tag ? strnlen(tag, SB_TAG_MAX + 1) : 0;
	if (tag_len == 0 || tag_len > SB_TAG_MAX)
		return sb__check_tag(tag, &tag_len); /* it says which rule the tag breaks */
	if (!report)
		return sb__fail(-EINVAL, "report for %s is NULL", tag);
	a->report = report;
	a->schema_len = report->schema ? strnlen(report->schema, SB_SCHEMA_MAX + 1) : 0;
	if (a->schema_len > SB_SCHEMA_MAX)
		return sb__fail(-ENAMETOOLONG, "schema of %s is longer than %d bytes", tag,
				SB_SCHEMA_MAX);
	if (!report->msgpack && report->msgpack_len)
		return sb__fail(-EINVAL, "report for %s has %zu bytes at NULL", tag,
				report->msgpack_len);
	err = check_msgpack(b, "report", tag, report->msgpack, report->msgpack_len);
	if (err)
		return err;
	a->flags = report->placeholder ? SB_F_PLACEHOLDER : 0;
	a->stats = NULL;
	a->stats_len = 0;
	a->elapsed_ms = 0;
	a->boundary_offset_ms = 0;
	a->step_index = 0;
	if (x) {
		err = prepare_extras(b, tag, x, a, missing_buf);
		if (err)
			return err;
	}
	/* Every check passed: only now the copies the locked steps work from. */
	sb__tag_make(&a->tag, tag, tag_len);
	sb__words_make(a->schema, report->schema, a->schema_len);
	return 0;
}

/*
 * Under the lock, before W1: the slot the new record will fill. An
 * overwrite supersedes the tag's record (event Overwrite); a new tag takes
 * a free slot, evicting the oldest resident tag at the cap. Returns
 * UINT32_MAX when nothing in FIFO order could be evicted: the record is
 * stored already evicted, as the reference pops the new tag itself.
 */
static uint32_t pick_slot(struct sb_bridge *b, const struct store_args *a, bool overwrite,
			  uint32_t found)
{
	if (overwrite) {
		const struct sb_slot *s = &b->slots[found];

		sb_store_relaxed(&sb__log_wrec(&b->log, s->record_pos)->fate,
				 (uint32_t)SB_FATE_SUPERSEDED);
		bump(&b->hot->overwrites);
		/* The slot still holds the prior schema: it is rewritten at S1-S2. */
		sb__event_overwrite(&b->events, (const char *)a->tag.word, a->tag.len, s->schema,
				    s->schema_len);
		return found;
	}
	if (b->resident >= b->cfg.max_snapshots && !make_room(b, &a->tag))
		return UINT32_MAX;
	return b->free_slots[--b->nfree];
}

/*
 * W1-W3 (ring/log.h), then W3s: reserve the record (reclaiming, and
 * evicting by bytes, what it overwrites), write its header, publish the
 * head and then the store sequence.
 */
static struct sb_rec *reserve_record(struct sb_bridge *b, const struct store_args *a,
				     uint32_t len, uint64_t seq, uint32_t slot, int64_t replacing,
				     uint64_t *pos_out)
{
	struct reclaim_ctx ctx = { b, &a->tag, replacing };
	uint64_t pos;
	/* W1-W2 */
	struct sb_rec *rec = sb__log_reserve_rec(&b->log, len, reclaim_record, &ctx, &pos);

	sb_store_relaxed(&rec->fate, (uint32_t)(slot == UINT32_MAX ? SB_FATE_EVICTED_CAP
								   : SB_FATE_RESIDENT));
	rec->kind = SB_REC_SNAPSHOT;
	rec->flags = a->flags;
	rec->seq = seq;
	rec->slot = slot;
	rec->tag_len = (uint16_t)a->tag.len;
	rec->schema_len = (uint16_t)a->schema_len;
	rec->report_len = (uint32_t)a->report->msgpack_len;
	rec->stats_len = (uint32_t)a->stats_len;
	rec->elapsed_ms = a->elapsed_ms;
	rec->boundary_offset_ms = a->boundary_offset_ms;
	rec->step_index = a->step_index;
	sb__log_publish(&b->log, pos + len); /* W3 */
	/* W3s: after W3, so a reader that loads store_seq finds that store's header below the head. */
	sb__log_publish_seq(&b->hot->store_seq, seq);
	*pos_out = pos;
	return rec;
}

/* S1-S2: the slot names the new record; a new tag is indexed after it. */
static void fill_slot(struct sb_bridge *b, const struct store_args *a, uint32_t slot,
		      bool new_tag, uint64_t seq, uint64_t pos)
{
	struct sb_slot *s = &b->slots[slot];

	sb__slot_write_begin(s); /* S1 */
	s->flags = SB_F_RESIDENT | a->flags;
	s->store_seq = seq;
	s->record_pos = pos;
	s->elapsed_ms = a->elapsed_ms;
	s->boundary_offset_ms = a->boundary_offset_ms;
	s->step_index = a->step_index;
	s->report_len = (uint32_t)a->report->msgpack_len;
	s->stats_len = (uint32_t)a->stats_len;
	if (new_tag) {
		memcpy(s->tag, a->tag.word, sizeof(s->tag));
		s->tag_len = (uint16_t)a->tag.len;
	}
	memcpy(s->schema, a->schema, sizeof(s->schema));
	s->schema_len = (uint16_t)a->schema_len;
	sb__slot_write_end(s); /* S2 */
	if (new_tag) {
		sb__tagindex_add_held(&b->index, &a->tag, slot);
		b->resident++;
		sb_store_relaxed(&b->hot->resident, b->resident);
	}
}

/* Unlocked: the record's body. Its header says it is BUSY until W4. */
static void copy_body(struct sb_rec *rec, uint32_t len, const struct store_args *a)
{
	uint8_t *body = (uint8_t *)(rec + 1);
	size_t room = len - sizeof(*rec);

	/*
	 * Tag and schema as whole 64-byte blocks (fixed-size copies, no call):
	 * what lands past each is overwritten by what comes next. The body is
	 * a multiple of 64 holding at least the tag, so the tag's block always
	 * fits; the schema's only where the record has that much room after it.
	 */
	memcpy(body, a->tag.word, sizeof(a->tag.word));
	body += a->tag.len;
	if (a->tag.len + sizeof(a->schema) <= room)
		memcpy(body, a->schema, sizeof(a->schema));
	else if (a->schema_len)
		memcpy(body, a->schema, a->schema_len);
	body += a->schema_len;
	if (a->report->msgpack_len)
		memcpy(body, a->report->msgpack, a->report->msgpack_len);
	body += a->report->msgpack_len;
	if (a->stats_len)
		memcpy(body, a->stats, a->stats_len);
}

static int store_prepared(struct sb_bridge *b, const struct store_args *a)
{
	size_t payload = a->tag.len + a->schema_len + a->report->msgpack_len + a->stats_len;
	uint32_t found, slot;
	uint64_t pos;

	/* A record may take at most half the ring, so it can always be placed after a pad. */
	if (payload > b->log.size / 2 - sizeof(struct sb_rec))
		return sb__fail(-E2BIG,
				"%s: a %zu-byte record can never fit a %llu-byte log (limit: half "
				"the log); raise log_bytes",
				(const char *)a->tag.word, payload,
				(unsigned long long)b->log.size);
	uint32_t len = sb__rec_len(payload);

	sb__lock(&b->lock);
	bool overwrite = sb__tagindex_find_held(&b->index, &a->tag, &found) == 0;
	uint64_t seq = sb_load_relaxed(&b->hot->store_seq) + 1;
	slot = pick_slot(b, a, overwrite, found);
	struct sb_rec *rec =
	    reserve_record(b, a, len, seq, slot, overwrite ? (int64_t)found : -1, &pos);
	if (slot != UINT32_MAX)
		fill_slot(b, a, slot, !overwrite, seq, pos);
	sb__unlock(&b->lock);

	/* The copy runs unlocked: other stores proceed while this one fills its record. */
	copy_body(rec, len, a);
	sb__rec_commit(rec); /* W4 */
	sb__bridge_notify(b, SB_WAKE_REC | SB_WAKE_EV);
	return 0;
}

/* x: NULL for a plain sb_bridge_store(). */
static int store_full(struct sb_bridge *b, const char *tag, const struct sb_report *report,
		      const struct store_extras *x)
{
	struct store_args a; /* every field set below: no clearing of its padded buffers */
	uint8_t missing_buf[SB_MISSING_ENC_MAX];
	int err = prepare(b, tag, report, x, &a, missing_buf);

	return err ? err : store_prepared(b, &a);
}

int sb_bridge_store(struct sb_bridge *b, const char *tag, const struct sb_report *report)
{
	return store_full(b, tag, report, NULL);
}

int sb_bridge_store_with_stats(struct sb_bridge *b, const char *tag, const struct sb_report *report,
			       const struct sb_stats *stats, const uint64_t *elapsed_ms)
{
	return store_full(b, tag, report, &(struct store_extras){ stats, elapsed_ms, NULL, NULL });
}

int sb_bridge_store_with_stats_and_step(struct sb_bridge *b, const char *tag,
					const struct sb_report *report,
					const struct sb_stats *stats, const uint64_t *elapsed_ms,
					const uint64_t *boundary_offset_ms, uint16_t step_index)
{
	struct store_extras x = { stats, elapsed_ms, boundary_offset_ms, &step_index };

	return store_full(b, tag, report, &x);
}

static int capture(struct sb_bridge *b, const char *tag, const uint16_t *step, bool *stored)
{
	struct sb_report report = { 0 };
	size_t len;
	int err;

	if (!b || !stored)
		return sb__fail(-EINVAL, "capture: bridge or stored is NULL");
	err = sb__check_tag(tag, &len);
	if (err)
		return err;
	*stored = false;
	if (!b->ops.capture || b->ops.capture(b->ops.user, tag, &report) != 1) {
		sb__lock(&b->lock);
		bump(&b->hot->capture_unavailable);
		sb__event_capture_unavailable(&b->events, tag, len);
		sb__unlock(&b->lock);
		sb__bridge_notify(b, SB_WAKE_EV);
		return 0;
	}
	struct store_extras x = { .step_index = step };
	err = store_full(b, tag, &report, step ? &x : NULL);
	if (b->ops.release)
		b->ops.release(b->ops.user, &report);
	*stored = err == 0;
	return err;
}

int sb_bridge_capture(struct sb_bridge *b, const char *tag, bool *stored)
{
	return capture(b, tag, NULL, stored);
}

int sb_bridge_capture_with_step(struct sb_bridge *b, const char *tag, uint16_t step_index,
				bool *stored)
{
	return capture(b, tag, &step_index, stored);
}

/* ---- queries ------------------------------------------------------------ */

int sb_bridge_len(struct sb_bridge *b, size_t *out)
{
	if (!b || !out)
		return sb__fail(-EINVAL, "sb_bridge_len: NULL argument");
	*out = sb_load_relaxed(&b->hot->resident);
	return 0;
}

int sb_bridge_is_empty(struct sb_bridge *b, bool *out)
{
	if (!b || !out)
		return sb__fail(-EINVAL, "sb_bridge_is_empty: NULL argument");
	*out = sb_load_relaxed(&b->hot->resident) == 0;
	return 0;
}

int sb_bridge_has(struct sb_bridge *b, const char *tag, bool *out)
{
	size_t len;
	int err;

	if (!b || !out)
		return sb__fail(-EINVAL, "sb_bridge_has: NULL argument");
	err = sb__check_tag(tag, &len);
	if (err)
		return err;
	struct sb_tag t;
	uint32_t slot;
	sb__tag_make(&t, tag, len);
	err = sb__tagindex_find(&b->index, &t, &slot);
	if (err == -EAGAIN) {
		/* A key stayed mid-update: its writer holds the lock, so wait for it there. */
		sb__lock(&b->lock);
		err = sb__tagindex_find_held(&b->index, &t, &slot);
		sb__unlock(&b->lock);
	}
	*out = err == 0;
	return 0;
}

int sb_bridge_periodic_real_count(struct sb_bridge *b, uint32_t *out)
{
	char tag[SB_TAG_MAX + 1];
	uint32_t n = 0;

	if (!b || !out)
		return sb__fail(-EINVAL, "sb_bridge_periodic_real_count: NULL argument");
	sb__lock(&b->lock);
	for (uint32_t i = 0; i < b->cfg.max_snapshots; i++) {
		const struct sb_slot *s = &b->slots[i];

		if (!(s->flags & SB_F_RESIDENT) || (s->flags & SB_F_PLACEHOLDER))
			continue;
		slot_name(s, tag);
		n += sb_tag_is_periodic(tag);
	}
	sb__unlock(&b->lock);
	*out = n;
	return 0;
}

/* ---- drains ------------------------------------------------------------- */

enum drain_variant {
	DRAIN_PLAIN,
	DRAIN_ORDERED,
	DRAIN_ORDERED_WITH_STATS,
};

/* Copy one resident record out as an owned entry shaped for the variant. */
static int copy_record(struct sb_rec *rec, enum drain_variant v, struct sb_entry *out)
{
	char text[SB_REASON_MAX + 1];
	struct sb_entry view;
	int err;

	(void)sb__rec_await_commit(rec, UINT64_MAX); /* a store may still be copying it */
	err = sb__rec_parse(rec, &view, text);
	if (err)
		return err;
	if (v != DRAIN_ORDERED_WITH_STATS) {
		memset(&view.stats, 0, sizeof(view.stats));
		memset(&view.meta, 0, sizeof(view.meta));
	} else if (view.stats.kind == SB_STATS_ABSENT) {
		view.stats.kind = SB_STATS_MISSING;
		view.stats.missing.kind = SB_MISSING_NO_SCHEDULER_BINARY;
	}
	return sb__entry_dup(&view, out);
}

/*
 * Find the resident records in FIFO order (log order), then any resident
 * slot the walk did not reach (an invariant violation, surfaced last).
 * Returns how many positions were written to pos; *n_ordered of them came
 * from the walk.
 */
static size_t collect_resident(struct sb_bridge *b, uint64_t *pos_out, size_t *n_ordered,
			       uint8_t *seen)
{
	uint64_t head = sb_load_relaxed(&b->hot->log_head);
	uint64_t tail = sb_load_relaxed(&b->hot->log_tail);
	uint64_t pos = (int64_t)(b->resident_cursor - tail) < 0 ? tail : b->resident_cursor;
	size_t n = 0;

	for (struct sb_rec *rec; pos != head; pos += rec->len) {
		rec = sb__log_wrec(&b->log, pos);
		if (is_resident_record(b, rec)) {
			seen[rec->slot] = 1;
			pos_out[n++] = pos;
		}
	}
	*n_ordered = n;
	for (uint32_t i = 0; i < b->cfg.max_snapshots; i++) {
		uint64_t at = b->slots[i].record_pos;

		/* Reclaim evicts what a slot holds, so the record is still in the log. */
		if ((b->slots[i].flags & SB_F_RESIDENT) && !seen[i] && at - tail < head - tail &&
		    slot_holds(b, sb__log_wrec(&b->log, at)))
			pos_out[n++] = at;
	}
	return n;
}

static int drain(struct sb_bridge *b, enum drain_variant v, struct sb_entries *out)
{
	static const char *const variant_names[] = {
		[DRAIN_ORDERED] = "drain_ordered",
		[DRAIN_ORDERED_WITH_STATS] = "drain_ordered_with_stats",
	};
	size_t cap, n = 0, n_ordered = 0, copied = 0;
	int err = 0;

	if (!b || !out)
		return sb__fail(-EINVAL, "drain: bridge or out is NULL");
	out->count = 0;
	out->items = NULL;
	cap = b->cfg.max_snapshots;
	struct sb_entry *items = calloc(cap, sizeof(*items));
	uint64_t *positions = calloc(cap, sizeof(*positions));
	uint8_t *seen = calloc(cap, 1);
	if (!items || !positions || !seen) {
		err = sb__fail(-ENOMEM, "out of memory draining %zu entries", cap);
		goto out;
	}

	sb__lock(&b->lock);
	n = collect_resident(b, positions, &n_ordered, seen);
	for (; copied < n && !err; copied++)
		err = copy_record(sb__log_wrec(&b->log, positions[copied]), v, &items[copied]);
	if (!err) {
		/* Everything is copied: only now does the drain remove anything. */
		for (size_t i = 0; i < n; i++) {
			sb_store_relaxed(&sb__log_wrec(&b->log, positions[i])->fate,
					 (uint32_t)SB_FATE_DRAINED);
			bump(&b->hot->drained);
			if (i >= n_ordered && v != DRAIN_PLAIN)
				sb__event_drain_ordering_violation(&b->events, items[i].tag,
								   strlen(items[i].tag),
								   variant_names[v]);
		}
		for (uint32_t i = 0; i < b->cfg.max_snapshots; i++)
			if (b->slots[i].flags & SB_F_RESIDENT)
				unresident(b, i);
		b->resident_cursor = sb_load_relaxed(&b->hot->log_head);
	}
	sb__unlock(&b->lock);
	if (!err && n)
		sb__bridge_notify(b, SB_WAKE_REC | SB_WAKE_EV); /* fates, and maybe events */
out:
	free(positions);
	free(seen);
	out->items = items;
	out->count = copied;
	if (err) {
		sb_entries_free(out); /* nothing was removed; no partial result */
		return err;
	}
	out->count = n;
	return 0;
}

int sb_bridge_drain(struct sb_bridge *b, struct sb_entries *out)
{
	return drain(b, DRAIN_PLAIN, out);
}

int sb_bridge_drain_ordered(struct sb_bridge *b, struct sb_entries *out)
{
	return drain(b, DRAIN_ORDERED, out);
}

int sb_bridge_drain_ordered_with_stats(struct sb_bridge *b, struct sb_entries *out)
{
	return drain(b, DRAIN_ORDERED_WITH_STATS, out);
}

int sb_bridge_drain_events(struct sb_bridge *b, struct sb_events *out)
{
	if (!b || !out)
		return sb__fail(-EINVAL, "sb_bridge_drain_events: NULL argument");
	out->count = 0;
	out->items = NULL;
	sb__lock(&b->lock);
	uint64_t head = sb_load_relaxed(&b->hot->event_seq);
	uint64_t first = b->events_drained + 1;

	if (head - b->events_drained > b->cfg.max_events)
		first = head - b->cfg.max_events + 1;
	uint64_t dropped = first - (b->events_drained + 1);
	size_t n = (size_t)(head + 1 - first) + (dropped > 0);
	struct sb_event *items = calloc(n ? n : 1, sizeof(*items));
	if (!items) {
		sb__unlock(&b->lock);
		return sb__fail(-ENOMEM, "out of memory for %zu events", n);
	}
	size_t k = 0;
	for (uint64_t e = first; e <= head; e++)
		if (sb__event_read(&b->events, e, &items[k]) == 0)
			k++;
	if (dropped > 0) {
		items[k].kind = SB_EVENT_LOG_TRUNCATED;
		items[k].count = dropped;
		k++;
	}
	b->events_drained = head;
	sb__unlock(&b->lock);
	out->items = items;
	out->count = k;
	return 0;
}

int sb_bridge_event_count(struct sb_bridge *b, size_t *out)
{
	if (!b || !out)
		return sb__fail(-EINVAL, "sb_bridge_event_count: NULL argument");
	sb__lock(&b->lock);
	uint64_t pending = sb_load_relaxed(&b->hot->event_seq) - b->events_drained;
	sb__unlock(&b->lock);
	*out = pending > b->cfg.max_events ? b->cfg.max_events : (size_t)pending;
	return 0;
}

/* ---- test hooks ----------------------------------------------------------- */

void sb__bridge_debug_inflate_resident(struct sb_bridge *b)
{
	sb__lock(&b->lock);
	b->resident++;
	sb__unlock(&b->lock);
}

int sb__bridge_debug_desync(struct sb_bridge *b, const char *tag)
{
	size_t len;
	int err = sb__check_tag(tag, &len);

	if (err)
		return err;
	struct sb_tag t;
	uint32_t slot;
	sb__tag_make(&t, tag, len);
	sb__lock(&b->lock);
	err = sb__tagindex_find_held(&b->index, &t, &slot);
	if (err == 0)
		sb_store_relaxed(&sb__log_wrec(&b->log, b->slots[slot].record_pos)->fate,
				 (uint32_t)SB_FATE_SUPERSEDED);
	sb__unlock(&b->lock);
	return err == 0 ? 0 : sb__fail(-ENOENT, "tag %s is not resident", tag);
}
