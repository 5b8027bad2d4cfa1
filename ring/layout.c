/*
 * ring/layout.c - planning, stamping and validating the region header, and
 * the library version and region format a build reads (sb_version).
 */
#include "layout.h"

#include <errno.h>
#include <string.h>

#include <snapbridge/bridge.h>
#include <snapbridge/snapbridge.h>

#include "error.h"

#define FIELD(type, f) offsetof(type, f), sizeof(((type *)0)->f)

uint64_t sb__layout_hash(void)
{
	/* Every size and offset a reader depends on, in a fixed order. */
	static const uint64_t shape[] = {
		sizeof(struct sb_header),
		FIELD(struct sb_header, sections),
		FIELD(struct sb_header, max_snapshots),
		FIELD(struct sb_header, log_bytes),
		FIELD(struct sb_header, aux_bytes),
		FIELD(struct sb_header, coord_pid),
		FIELD(struct sb_header, coord_start_time),
		FIELD(struct sb_header, region_id),
		FIELD(struct sb_header, heartbeat_ns),
		FIELD(struct sb_header, closed),
		FIELD(struct sb_header, heartbeat_period_ms),
		FIELD(struct sb_header, serve_name),
		sizeof(struct sb_hot),
		FIELD(struct sb_hot, store_seq),
		FIELD(struct sb_hot, log_head),
		FIELD(struct sb_hot, log_tail),
		FIELD(struct sb_hot, event_seq),
		FIELD(struct sb_hot, aux_head),
		FIELD(struct sb_hot, aux_tail),
		FIELD(struct sb_hot, aux_seq),
		FIELD(struct sb_hot, reserved_line),
		FIELD(struct sb_hot, resident),
		FIELD(struct sb_hot, overwrites),
		FIELD(struct sb_hot, evicted_cap),
		FIELD(struct sb_hot, evicted_bytes),
		FIELD(struct sb_hot, drained),
		FIELD(struct sb_hot, capture_unavailable),
		FIELD(struct sb_hot, wakes),
		FIELD(struct sb_hot, accessor_seqno),
		FIELD(struct sb_hot, accessor_state),
		FIELD(struct sb_hot, accessor_gen),
		FIELD(struct sb_hot, accessor_installed),
		FIELD(struct sb_hot, watch_count),
		sizeof(struct sb_slot),
		FIELD(struct sb_slot, flags),
		FIELD(struct sb_slot, store_seq),
		FIELD(struct sb_slot, record_pos),
		FIELD(struct sb_slot, step_index),
		FIELD(struct sb_slot, tag_len),
		FIELD(struct sb_slot, report_len),
		FIELD(struct sb_slot, tag),
		FIELD(struct sb_slot, schema),
		sizeof(struct sb_rec),
		FIELD(struct sb_rec, fate),
		FIELD(struct sb_rec, len),
		FIELD(struct sb_rec, kind),
		FIELD(struct sb_rec, seq),
		FIELD(struct sb_rec, slot),
		FIELD(struct sb_rec, report_len),
		FIELD(struct sb_rec, stats_len),
		FIELD(struct sb_rec, step_index),
		sizeof(struct sb_event_slot),
		FIELD(struct sb_event_slot, kind),
		FIELD(struct sb_event_slot, tag),
		FIELD(struct sb_event_slot, detail),
		sizeof(struct sb_peers),
		FIELD(struct sb_peers, count),
		FIELD(struct sb_peers, entries),
		sizeof(struct sb_peer_entry),
		FIELD(struct sb_peer_entry, cursor),
		FIELD(struct sb_peer_entry, heartbeat_ns),
		FIELD(struct sb_peer_entry, attached_ns),
		FIELD(struct sb_peer_entry, armed),
		SB_REC_BUSY,
		SB_REC_COMMITTED,
		SB_F_KNOWN,
		SB_EVICT_NONE,
		SB_EVICT_CAP,
		SB_EVICT_BYTES,
	};
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (size_t i = 0; i < sizeof(shape) / sizeof(shape[0]); i++) {
		for (int b = 0; b < 8; b++) {
			h ^= (shape[i] >> (8 * b)) & 0xff;
			h *= 0x100000001b3ull;
		}
	}
	return h;
}

static uint64_t page_up(uint64_t n)
{
	return (n + SB_PAGE - 1) & ~(uint64_t)(SB_PAGE - 1);
}

void sb__layout_plan(const struct sb_config *cfg, struct sb_plan *plan)
{
	const uint64_t sizes[SB_SEC_COUNT] = {
		[SB_SEC_HOT] = sizeof(struct sb_hot),
		[SB_SEC_INDEX] = (uint64_t)cfg->max_snapshots * sizeof(struct sb_slot),
		[SB_SEC_LOG] = cfg->log_bytes,
		[SB_SEC_EVENTS] = (uint64_t)cfg->max_events * sizeof(struct sb_event_slot),
		[SB_SEC_AUX] = cfg->aux_bytes,
		[SB_SEC_PEERS] = sizeof(struct sb_peers),
	};
	uint64_t at = SB_PAGE; /* the header owns page 0 */

	for (int i = 0; i < SB_SEC_COUNT; i++) {
		plan->sections[i].offset = at;
		plan->sections[i].size = sizes[i];
		at = page_up(at + sizes[i]);
	}
	plan->region_size = at;
}

void sb__header_init(struct sb_header *hdr, const struct sb_config *cfg, const struct sb_plan *plan)
{
	memcpy(hdr->magic, SB_MAGIC, 8);
	hdr->abi_major = SB_ABI_MAJOR;
	hdr->abi_minor = SB_ABI_MINOR;
	hdr->header_size = sizeof(*hdr);
	hdr->layout_hash = sb__layout_hash();
	hdr->region_size = plan->region_size;
	hdr->section_count = SB_SEC_COUNT;
	memcpy(hdr->sections, plan->sections, sizeof(plan->sections));
	hdr->max_snapshots = cfg->max_snapshots;
	hdr->max_events = cfg->max_events;
	hdr->max_watch = cfg->max_watch;
	hdr->slot_size = sizeof(struct sb_slot);
	hdr->event_size = sizeof(struct sb_event_slot);
	hdr->rec_align = SB_REC_ALIGN;
	hdr->log_bytes = cfg->log_bytes;
	hdr->aux_bytes = cfg->aux_bytes;
}

static const char *const section_names[SB_SEC_COUNT] = {
	[SB_SEC_HOT] = "hot words",  [SB_SEC_INDEX] = "slot index",
	[SB_SEC_LOG] = "record log", [SB_SEC_EVENTS] = "event ring",
	[SB_SEC_AUX] = "aux log",    [SB_SEC_PEERS] = "consumer list",
};

static bool ring_size_ok(uint64_t n)
{
	return n >= SB_LOG_BYTES_MIN && n <= SB_LOG_BYTES_MAX && n % SB_REC_ALIGN == 0;
}

int sb__header_validate(const struct sb_header *hdr, uint64_t region_size)
{
	if (region_size < sizeof(*hdr))
		return sb__fail(-EBADMSG, "region is %llu bytes, smaller than the %zu-byte header",
				(unsigned long long)region_size, sizeof(*hdr));
	if (memcmp(hdr->magic, SB_MAGIC, 8) != 0)
		return sb__fail(-EBADMSG, "not a snapbridge region: magic is not \"%s\"", SB_MAGIC);
	if (hdr->abi_major != SB_ABI_MAJOR)
		return sb__fail(-EPROTO,
				"region has ABI %u.%u, this build reads ABI %u.x: use a matching "
				"snapbridge",
				hdr->abi_major, hdr->abi_minor, SB_ABI_MAJOR);
	if (hdr->layout_hash != sb__layout_hash())
		return sb__fail(-EPROTO,
				"region layout hash %016llx differs from this build's %016llx: "
				"the writer was built with another struct layout",
				(unsigned long long)hdr->layout_hash,
				(unsigned long long)sb__layout_hash());
	if (hdr->header_size != sizeof(*hdr))
		return sb__fail(-EBADMSG, "header_size is %u, expected %zu", hdr->header_size,
				sizeof(*hdr));
	if (hdr->region_size != region_size)
		return sb__fail(
		    -EBADMSG, "header says the region is %llu bytes but the mapping is %llu",
		    (unsigned long long)hdr->region_size, (unsigned long long)region_size);
	if (hdr->section_count != SB_SEC_COUNT)
		return sb__fail(-EBADMSG, "section_count is %u, expected %d", hdr->section_count,
				SB_SEC_COUNT);
	if (hdr->max_snapshots == 0 || hdr->max_snapshots > SB_MAX_SNAPSHOTS_LIMIT ||
	    hdr->max_events == 0 || hdr->max_events > SB_MAX_EVENTS_LIMIT ||
	    hdr->max_watch > SB_MAX_WATCH_LIMIT)
		return sb__fail(
		    -EBADMSG, "config out of range: max_snapshots %u, max_events %u, max_watch %u",
		    hdr->max_snapshots, hdr->max_events, hdr->max_watch);
	if (hdr->slot_size != sizeof(struct sb_slot) ||
	    hdr->event_size != sizeof(struct sb_event_slot) || hdr->rec_align != SB_REC_ALIGN)
		return sb__fail(-EBADMSG, "slot, event or record size differs from this build");
	static const uint8_t no_id[sizeof(hdr->region_id)];
	if (memcmp(hdr->region_id, no_id, sizeof(no_id)) == 0)
		return sb__fail(-EBADMSG, "region id is all zero: the writer never stamped it");
	if (!ring_size_ok(hdr->log_bytes) || !ring_size_ok(hdr->aux_bytes))
		return sb__fail(-EBADMSG, "log_bytes %llu or aux_bytes %llu out of range",
				(unsigned long long)hdr->log_bytes,
				(unsigned long long)hdr->aux_bytes);

	const uint64_t want[SB_SEC_COUNT] = {
		[SB_SEC_HOT] = sizeof(struct sb_hot),
		[SB_SEC_INDEX] = (uint64_t)hdr->max_snapshots * sizeof(struct sb_slot),
		[SB_SEC_LOG] = hdr->log_bytes,
		[SB_SEC_EVENTS] = (uint64_t)hdr->max_events * sizeof(struct sb_event_slot),
		[SB_SEC_AUX] = hdr->aux_bytes,
		[SB_SEC_PEERS] = sizeof(struct sb_peers),
	};
	uint64_t prev_end = sizeof(*hdr);

	/* Sections come in order, page aligned, disjoint and inside the region. */
	for (int i = 0; i < SB_SEC_COUNT; i++) {
		const struct sb_section *s = &hdr->sections[i];

		if (s->size != want[i])
			return sb__fail(-EBADMSG, "%s section is %llu bytes, config implies %llu",
					section_names[i], (unsigned long long)s->size,
					(unsigned long long)want[i]);
		if (s->offset % SB_PAGE != 0 || s->offset < prev_end || s->offset > region_size ||
		    s->size > region_size - s->offset)
			return sb__fail(
			    -EBADMSG, "%s section [%llu, +%llu) is misplaced in a %llu-byte region",
			    section_names[i], (unsigned long long)s->offset,
			    (unsigned long long)s->size, (unsigned long long)region_size);
		prev_end = s->offset + s->size;
	}
	return 0;
}

/* ---- what this build of the library is and which regions it reads ---------- */

const char *sb_version(void)
{
	return SNAPBRIDGE_VERSION;
}

void sb_version_info(struct sb_version_info *out)
{
	if (!out)
		return;
	*out = (struct sb_version_info){
		.version = SNAPBRIDGE_VERSION,
		.major = SNAPBRIDGE_VERSION_MAJOR,
		.minor = SNAPBRIDGE_VERSION_MINOR,
		.patch = SNAPBRIDGE_VERSION_PATCH,
		.abi_major = SB_ABI_MAJOR,
		.abi_minor = SB_ABI_MINOR,
		.layout_hash = sb__layout_hash(),
	};
}
