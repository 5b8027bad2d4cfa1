/*
 * bridge_fixtures.h - helpers shared by the in-process bridge suites:
 * hand-built msgpack documents with seeded payloads, bridge construction,
 * and asserting wrappers around the query calls.
 *
 * Documents are built by hand (fixstr, bin8/16/32 headers) so the suites
 * do not depend on msgpack-c.
 */
#ifndef SNAPBRIDGE_TESTS_BRIDGE_FIXTURES_H
#define SNAPBRIDGE_TESTS_BRIDGE_FIXTURES_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snapbridge/bridge.h>

/* "hi" as a msgpack fixstr: the smallest report that is one object. */
static const uint8_t FX_DOC_HI[] = { 0xa2, 'h', 'i' };
/* "yo" as a fixstr: a second, distinguishable small report. */
static const uint8_t FX_DOC_YO[] = { 0xa2, 'y', 'o' };
/* {"a": 1} as a fixmap: a small stats document. */
static const uint8_t FX_DOC_MAP[] = { 0x81, 0xa1, 'a', 0x01 };

static inline uint8_t fx_pattern_byte(uint32_t seed, size_t i)
{
	uint32_t x = seed * 2654435761u + (uint32_t)i * 40503u + (uint32_t)(i >> 16);
	x ^= x >> 13;
	x *= 0x5bd1e995u;
	x ^= x >> 15;
	return (uint8_t)x;
}

static inline void fx_fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = fx_pattern_byte(seed, i);
}

/*
 * A msgpack bin object of payload_len seeded bytes (bin8, bin16 or bin32
 * header as the length requires). Caller frees.
 */
static inline uint8_t *fx_bin_doc(size_t payload_len, uint32_t seed, size_t *len_out)
{
	size_t hdr = payload_len <= 0xff ? 2 : payload_len <= 0xffff ? 3 : 5;
	uint8_t *d = malloc(hdr + payload_len);
	cr_assert_not_null(d);
	if (hdr == 2) {
		d[0] = 0xc4;
		d[1] = (uint8_t)payload_len;
	} else if (hdr == 3) {
		d[0] = 0xc5;
		d[1] = (uint8_t)(payload_len >> 8);
		d[2] = (uint8_t)payload_len;
	} else {
		d[0] = 0xc6;
		d[1] = (uint8_t)(payload_len >> 24);
		d[2] = (uint8_t)(payload_len >> 16);
		d[3] = (uint8_t)(payload_len >> 8);
		d[4] = (uint8_t)payload_len;
	}
	fx_fill_pattern(d + hdr, payload_len, seed);
	*len_out = hdr + payload_len;
	return d;
}

static inline struct sb_report fx_report(const char *schema, bool placeholder, const void *doc,
					 size_t len)
{
	struct sb_report r = {
		.schema = schema,
		.placeholder = placeholder,
		.msgpack = doc,
		.msgpack_len = len,
	};
	return r;
}

static inline struct sb_bridge *fx_bridge_ops(uint32_t max_snapshots, uint32_t max_events,
					      uint64_t log_bytes, const struct sb_bridge_ops *ops)
{
	struct sb_config cfg;
	sb_config_default(&cfg);
	if (max_snapshots)
		cfg.max_snapshots = max_snapshots;
	if (max_events)
		cfg.max_events = max_events;
	if (log_bytes)
		cfg.log_bytes = log_bytes;
	struct sb_bridge *b = NULL;
	int rc = sb_bridge_create(&cfg, ops, &b);
	cr_assert_eq(rc, 0, "sb_bridge_create: %d (%s)", rc, sb_last_error());
	cr_assert_not_null(b);
	return b;
}

/* A bridge with defaults except the given non-zero values. */
static inline struct sb_bridge *fx_bridge(uint32_t max_snapshots, uint32_t max_events,
					  uint64_t log_bytes)
{
	return fx_bridge_ops(max_snapshots, max_events, log_bytes, NULL);
}

static inline size_t fx_len(struct sb_bridge *b)
{
	size_t n = 12345;
	int rc = sb_bridge_len(b, &n);
	cr_assert_eq(rc, 0, "sb_bridge_len: %d", rc);
	return n;
}

static inline bool fx_is_empty(struct sb_bridge *b)
{
	bool e = false;
	int rc = sb_bridge_is_empty(b, &e);
	cr_assert_eq(rc, 0, "sb_bridge_is_empty: %d", rc);
	return e;
}

static inline bool fx_has(struct sb_bridge *b, const char *tag)
{
	bool h = false;
	int rc = sb_bridge_has(b, tag, &h);
	cr_assert_eq(rc, 0, "sb_bridge_has(%s): %d", tag, rc);
	return h;
}

static inline size_t fx_event_count(struct sb_bridge *b)
{
	size_t n = 12345;
	int rc = sb_bridge_event_count(b, &n);
	cr_assert_eq(rc, 0, "sb_bridge_event_count: %d", rc);
	return n;
}

static inline uint32_t fx_periodic_real(struct sb_bridge *b)
{
	uint32_t n = 12345;
	int rc = sb_bridge_periodic_real_count(b, &n);
	cr_assert_eq(rc, 0, "sb_bridge_periodic_real_count: %d", rc);
	return n;
}

/* Store a small document; asserts success. */
static inline void fx_store(struct sb_bridge *b, const char *tag, const char *schema,
			    const void *doc, size_t len)
{
	struct sb_report r = fx_report(schema, false, doc, len);
	int rc = sb_bridge_store(b, tag, &r);
	cr_assert_eq(rc, 0, "sb_bridge_store(%s): %d (%s)", tag, rc, sb_last_error());
}

static inline void fx_store_hi(struct sb_bridge *b, const char *tag)
{
	fx_store(b, tag, "s", FX_DOC_HI, sizeof(FX_DOC_HI));
}

enum fx_drain_kind { FX_DRAIN, FX_DRAIN_ORDERED, FX_DRAIN_WITH_STATS };

static inline void fx_drain(struct sb_bridge *b, enum fx_drain_kind kind, struct sb_entries *out)
{
	int rc;
	memset(out, 0, sizeof(*out));
	switch (kind) {
	case FX_DRAIN:
		rc = sb_bridge_drain(b, out);
		break;
	case FX_DRAIN_ORDERED:
		rc = sb_bridge_drain_ordered(b, out);
		break;
	default:
		rc = sb_bridge_drain_ordered_with_stats(b, out);
		break;
	}
	cr_assert_eq(rc, 0, "drain(%d): %d (%s)", (int)kind, rc, sb_last_error());
	cr_assert(out->count == 0 || out->items != NULL);
}

static inline void fx_drain_events(struct sb_bridge *b, struct sb_events *out)
{
	memset(out, 0, sizeof(*out));
	int rc = sb_bridge_drain_events(b, out);
	cr_assert_eq(rc, 0, "sb_bridge_drain_events: %d", rc);
	cr_assert(out->count == 0 || out->items != NULL);
}

/* The drained entry under tag, or NULL. */
static inline const struct sb_entry *fx_find(const struct sb_entries *e, const char *tag)
{
	for (size_t i = 0; i < e->count; i++)
		if (strcmp(e->items[i].tag, tag) == 0)
			return &e->items[i];
	return NULL;
}

/* Assert the entries' tags are exactly tags[0..n) in that order. */
static inline void fx_expect_order(const struct sb_entries *e, const char *const *tags, size_t n)
{
	cr_assert_eq(e->count, n, "drained %zu entries, expected %zu", e->count, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(e->items[i].tag, tags[i], "entry %zu is %s, expected %s", i,
				 e->items[i].tag, tags[i]);
}

/* Assert an entry's report is exactly doc[0..len). */
static inline void fx_expect_report(const struct sb_entry *en, const void *doc, size_t len)
{
	cr_assert_eq(en->report_len, len, "%s: report_len %zu, expected %zu", en->tag,
		     en->report_len, len);
	cr_assert_not_null(en->report, "%s: NULL report", en->tag);
	const uint8_t *a = en->report, *b = doc;
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			cr_assert_fail("%s: report byte %zu is 0x%02x, expected 0x%02x", en->tag, i,
				       a[i], b[i]);
}

static inline void fx_expect_no_meta(const struct sb_entry *en)
{
	cr_assert_not(en->meta.has_elapsed, "%s: has_elapsed", en->tag);
	cr_assert_not(en->meta.has_boundary, "%s: has_boundary", en->tag);
	cr_assert_not(en->meta.has_step, "%s: has_step", en->tag);
}

/* Stats as drain_ordered_with_stats reports an absent slot. */
static inline void fx_expect_no_scheduler_binary(const struct sb_entry *en)
{
	cr_assert_eq(en->stats.kind, SB_STATS_MISSING, "%s: stats kind %d, expected MISSING",
		     en->tag, (int)en->stats.kind);
	cr_assert_eq(en->stats.missing.kind, SB_MISSING_NO_SCHEDULER_BINARY,
		     "%s: missing kind %d, expected NoSchedulerBinary", en->tag,
		     (int)en->stats.missing.kind);
	cr_assert_null(en->stats.missing.text, "%s: NoSchedulerBinary carries text", en->tag);
}

/* Assert sb_last_error() says something after a failed call. */
static inline void fx_expect_error_message(void)
{
	const char *m = sb_last_error();
	cr_assert_not_null(m);
	cr_assert_gt(strlen(m), 0, "failed call left sb_last_error() empty");
}

#endif
