/*
 * test_bridge_drain.c - taking reports out of the in-process bridge: FIFO
 * order, one latest version per tag, drains that empty the bridge, what
 * each drain variant keeps of stats and metadata, and exact round-trips of
 * reports, stats and every missing-stats reason.
 */
#include "bridge_fixtures.h"

static const enum fx_drain_kind ALL_DRAINS[] = { FX_DRAIN, FX_DRAIN_ORDERED, FX_DRAIN_WITH_STATS };

/* ------------------------------------------------------------ ordering */

Test(bridge_drain, drain_ordered_returns_oldest_insertion_first, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	const char *tags[] = { "periodic_000", "zeta", "periodic_001", "alpha", "periodic_002" };
	for (size_t i = 0; i < 5; i++)
		fx_store_hi(b, tags[i]);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	fx_expect_order(&e, tags, 5);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_drain, drain_ordered_with_stats_returns_oldest_insertion_first, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	const char *tags[] = { "c", "a", "b", "d" };
	for (size_t i = 0; i < 4; i++)
		fx_store_hi(b, tags[i]);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	fx_expect_order(&e, tags, 4);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_drain, overwritten_tag_drains_once_at_its_latest_position, .timeout = 10)
{
	for (size_t d = 1; d < 3; d++) {
		struct sb_bridge *b = fx_bridge(0, 0, 0);
		fx_store(b, "a", "v1", FX_DOC_HI, sizeof(FX_DOC_HI));
		fx_store_hi(b, "b");
		fx_store_hi(b, "c");
		fx_store(b, "a", "v2", FX_DOC_YO, sizeof(FX_DOC_YO));
		fx_store_hi(b, "d");
		struct sb_entries e;
		fx_drain(b, ALL_DRAINS[d], &e);
		const char *want[] = { "b", "c", "a", "d" };
		fx_expect_order(&e, want, 4);
		cr_assert_str_eq(e.items[2].schema, "v2", "drain returned a stale version of a");
		fx_expect_report(&e.items[2], FX_DOC_YO, sizeof(FX_DOC_YO));
		sb_entries_free(&e);
		sb_bridge_destroy(b);
	}
}

Test(bridge_drain, unordered_drain_returns_each_resident_tag_once_latest_version, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	fx_store(b, "a", "v1", FX_DOC_HI, sizeof(FX_DOC_HI));
	fx_store_hi(b, "b");
	fx_store(b, "a", "v2", FX_DOC_YO, sizeof(FX_DOC_YO));
	fx_store_hi(b, "c");
	struct sb_entries e;
	fx_drain(b, FX_DRAIN, &e);
	cr_assert_eq(e.count, 3);
	const char *tags[] = { "a", "b", "c" };
	for (size_t i = 0; i < 3; i++) {
		size_t seen = 0;
		for (size_t k = 0; k < e.count; k++)
			seen += strcmp(e.items[k].tag, tags[i]) == 0;
		cr_assert_eq(seen, 1, "tag %s drained %zu times", tags[i], seen);
	}
	const struct sb_entry *a = fx_find(&e, "a");
	cr_assert_str_eq(a->schema, "v2");
	fx_expect_report(a, FX_DOC_YO, sizeof(FX_DOC_YO));
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_drain, drain_ordered_after_cap_eviction_returns_newest_in_order, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(3, 0, 0);
	const char *tags[] = { "p0", "p1", "p2", "p3", "p4" };
	for (size_t i = 0; i < 5; i++)
		fx_store_hi(b, tags[i]);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	fx_expect_order(&e, tags + 2, 3);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_drain, store_seq_counts_every_store_from_one, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	fx_store_hi(b, "a"); /* 1 */
	fx_store_hi(b, "b"); /* 2 */
	fx_store_hi(b, "a"); /* 3 */
	fx_store_hi(b, "c"); /* 4 */
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	const char *want[] = { "b", "a", "c" };
	fx_expect_order(&e, want, 3);
	cr_assert_eq(e.items[0].store_seq, 2);
	cr_assert_eq(e.items[1].store_seq, 3);
	cr_assert_eq(e.items[2].store_seq, 4);
	sb_entries_free(&e);
	/* History continues across a drain. */
	fx_store_hi(b, "d");
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	cr_assert_eq(e.count, 1);
	cr_assert_eq(e.items[0].store_seq, 5);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

/* ------------------------------------------------- drains empty the bridge */

Test(bridge_drain, every_drain_variant_empties_the_bridge, .timeout = 10)
{
	for (size_t d = 0; d < 3; d++) {
		struct sb_bridge *b = fx_bridge(0, 0, 0);
		fx_store_hi(b, "a");
		fx_store_hi(b, "b");
		struct sb_entries e;
		fx_drain(b, ALL_DRAINS[d], &e);
		cr_assert_eq(e.count, 2, "drain variant %zu", d);
		sb_entries_free(&e);

		cr_assert_eq(fx_len(b), 0, "drain variant %zu left len != 0", d);
		cr_assert(fx_is_empty(b));
		cr_assert_not(fx_has(b, "a"));
		cr_assert_not(fx_has(b, "b"));
		cr_assert_eq(fx_periodic_real(b), 0);
		for (size_t d2 = 0; d2 < 3; d2++) {
			fx_drain(b, ALL_DRAINS[d2], &e);
			cr_assert_eq(e.count, 0, "second drain (%zu after %zu) not empty", d2, d);
			sb_entries_free(&e);
		}
		sb_bridge_destroy(b);
	}
}

Test(bridge_drain, drain_of_empty_bridge_returns_no_entries, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	for (size_t d = 0; d < 3; d++) {
		struct sb_entries e;
		fx_drain(b, ALL_DRAINS[d], &e);
		cr_assert_eq(e.count, 0);
		sb_entries_free(&e);
	}
	sb_bridge_destroy(b);
}

Test(bridge_drain, drained_tag_is_not_evicted_by_later_stores, .timeout = 10)
{
	/* After a drain the cap counts only the new stores. */
	struct sb_bridge *b = fx_bridge(2, 0, 0);
	fx_store_hi(b, "a");
	fx_store_hi(b, "b");
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	sb_entries_free(&e);
	struct sb_events ev;
	fx_drain_events(b, &ev);
	sb_events_free(&ev);
	fx_store_hi(b, "c");
	fx_store_hi(b, "a");
	cr_assert_eq(fx_len(b), 2);
	cr_assert_eq(fx_event_count(b), 0, "a drained tag must be neither evicted nor overwritten");
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	const char *want[] = { "c", "a" };
	fx_expect_order(&e, want, 2);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

/* ----------------------------------------------- stats and metadata by variant */

static void store_with_everything(struct sb_bridge *b, const char *tag)
{
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_stats st = { .kind = SB_STATS_OK,
			       .msgpack = FX_DOC_MAP,
			       .msgpack_len = sizeof(FX_DOC_MAP) };
	uint64_t elapsed = 10, boundary = 20;
	int rc = sb_bridge_store_with_stats_and_step(b, tag, &r, &st, &elapsed, &boundary, 4);
	cr_assert_eq(rc, 0, "%s", sb_last_error());
}

Test(bridge_drain, drain_drops_stats_and_metadata, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	store_with_everything(b, "a");
	struct sb_entries e;
	fx_drain(b, FX_DRAIN, &e);
	cr_assert_eq(e.count, 1);
	cr_assert_eq(e.items[0].stats.kind, SB_STATS_ABSENT);
	fx_expect_no_meta(&e.items[0]);
	fx_expect_report(&e.items[0], FX_DOC_HI, sizeof(FX_DOC_HI));
	sb_entries_free(&e);
	/* The dropped stats are gone, not left behind for a later drain. */
	fx_store_hi(b, "a");
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	cr_assert_eq(e.count, 1);
	fx_expect_no_scheduler_binary(&e.items[0]);
	fx_expect_no_meta(&e.items[0]);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_drain, drain_ordered_drops_stats_and_metadata, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	store_with_everything(b, "a");
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	cr_assert_eq(e.count, 1);
	cr_assert_eq(e.items[0].stats.kind, SB_STATS_ABSENT);
	fx_expect_no_meta(&e.items[0]);
	sb_entries_free(&e);
	fx_store_hi(b, "a");
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	cr_assert_eq(e.count, 1);
	fx_expect_no_scheduler_binary(&e.items[0]);
	fx_expect_no_meta(&e.items[0]);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_drain, drain_ordered_with_stats_turns_absent_stats_into_no_scheduler_binary,
     .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	uint64_t elapsed = 3;
	cr_assert_eq(sb_bridge_store(b, "plain", &r), 0);
	cr_assert_eq(sb_bridge_store_with_stats(b, "null_stats", &r, NULL, &elapsed), 0);
	cr_assert_eq(sb_bridge_store_with_stats_and_step(b, "step_only", &r, NULL, NULL, NULL, 1),
		     0);
	store_with_everything(b, "full");
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	const char *want[] = { "plain", "null_stats", "step_only", "full" };
	fx_expect_order(&e, want, 4);
	for (size_t i = 0; i < 3; i++)
		fx_expect_no_scheduler_binary(&e.items[i]);
	cr_assert_eq(e.items[3].stats.kind, SB_STATS_OK, "real stats must not become missing");

	fx_expect_no_meta(&e.items[0]);
	cr_assert(e.items[1].meta.has_elapsed);
	cr_assert_eq(e.items[1].meta.elapsed_ms, 3);
	cr_assert_not(e.items[1].meta.has_boundary);
	cr_assert_not(e.items[1].meta.has_step);
	cr_assert_not(e.items[2].meta.has_elapsed);
	cr_assert_not(e.items[2].meta.has_boundary);
	cr_assert(e.items[2].meta.has_step);
	cr_assert_eq(e.items[2].meta.step_index, 1);
	cr_assert(e.items[3].meta.has_elapsed && e.items[3].meta.has_boundary &&
		  e.items[3].meta.has_step);
	cr_assert_eq(e.items[3].meta.elapsed_ms, 10);
	cr_assert_eq(e.items[3].meta.boundary_offset_ms, 20);
	cr_assert_eq(e.items[3].meta.step_index, 4);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

/* ------------------------------------------------------------ round-trips */

struct missing_case {
	const char *tag;
	struct sb_missing m;
	bool has_text;
};

Test(bridge_drain, every_missing_kind_round_trips_with_its_fields, .timeout = 10)
{
	const struct missing_case cases[] = {
		{ "no_bin", { .kind = SB_MISSING_NO_SCHEDULER_BINARY }, false },
		{ "no_sched",
		  { .kind = SB_MISSING_NO_SCHEDULER, .text = "scheduler exited" },
		  true },
		{ "freeze", { .kind = SB_MISSING_DURING_FREEZE }, false },
		{ "cancel", { .kind = SB_MISSING_CANCELLED }, false },
		{ "sched_err",
		  { .kind = SB_MISSING_SCHEDULER_ERROR, .err = 110, .text = "stats --json -a" },
		  true },
		{ "no_resp",
		  { .kind = SB_MISSING_MISSING_RESP, .text = "args: {\"target\":1}" },
		  true },
		{ "req_big",
		  { .kind = SB_MISSING_REQUEST_TOO_LARGE, .size = 5000000000ull, .max = 65536 },
		  false },
		{ "resp_big",
		  { .kind = SB_MISSING_RESPONSE_TOO_LARGE, .size = 1048577, .max = UINT64_MAX },
		  false },
		{ "poisoned", { .kind = SB_MISSING_MUTEX_POISONED }, false },
	};
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	for (size_t i = 0; i < n; i++) {
		struct sb_stats st = { .kind = SB_STATS_MISSING, .missing = cases[i].m };
		int rc = sb_bridge_store_with_stats(b, cases[i].tag, &r, &st, NULL);
		cr_assert_eq(rc, 0, "store %s: %d (%s)", cases[i].tag, rc, sb_last_error());
	}
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	cr_assert_eq(e.count, n);
	for (size_t i = 0; i < n; i++) {
		const struct sb_entry *en = &e.items[i];
		const struct sb_missing *want = &cases[i].m;
		cr_assert_str_eq(en->tag, cases[i].tag);
		cr_assert_eq(en->stats.kind, SB_STATS_MISSING, "%s", en->tag);
		cr_assert_eq(en->stats.missing.kind, want->kind, "%s: kind %d, expected %d",
			     en->tag, (int)en->stats.missing.kind, (int)want->kind);
		if (cases[i].has_text) {
			cr_assert_not_null(en->stats.missing.text, "%s: text lost", en->tag);
			cr_assert_str_eq(en->stats.missing.text, want->text, "%s", en->tag);
		} else {
			cr_assert_null(en->stats.missing.text, "%s: variant has no text", en->tag);
		}
		if (want->kind == SB_MISSING_SCHEDULER_ERROR)
			cr_assert_eq(en->stats.missing.err, want->err, "%s", en->tag);
		if (want->kind == SB_MISSING_REQUEST_TOO_LARGE ||
		    want->kind == SB_MISSING_RESPONSE_TOO_LARGE) {
			cr_assert_eq(en->stats.missing.size, want->size, "%s", en->tag);
			cr_assert_eq(en->stats.missing.max, want->max, "%s", en->tag);
		}
	}
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_drain, missing_reason_text_of_max_length_round_trips, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	char text[SB_REASON_MAX + 1];
	for (size_t i = 0; i < SB_REASON_MAX; i++)
		text[i] = (char)('a' + fx_pattern_byte(5, i) % 26);
	text[SB_REASON_MAX] = '\0';
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_stats st = { .kind = SB_STATS_MISSING,
			       .missing = {
				   .kind = SB_MISSING_SCHEDULER_ERROR, .err = -5, .text = text } };
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", &r, &st, NULL), 0, "%s", sb_last_error());
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	cr_assert_eq(e.count, 1);
	cr_assert_eq(e.items[0].stats.missing.kind, SB_MISSING_SCHEDULER_ERROR);
	cr_assert_eq(e.items[0].stats.missing.err, -5);
	cr_assert_not_null(e.items[0].stats.missing.text);
	cr_assert_str_eq(e.items[0].stats.missing.text, text);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_drain, stats_msgpack_round_trips_byte_for_byte, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	size_t big_len;
	uint8_t *big = fx_bin_doc(3000, 42, &big_len);
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_stats st_small = { .kind = SB_STATS_OK,
				     .msgpack = FX_DOC_MAP,
				     .msgpack_len = sizeof(FX_DOC_MAP) };
	struct sb_stats st_big = { .kind = SB_STATS_OK, .msgpack = big, .msgpack_len = big_len };
	cr_assert_eq(sb_bridge_store_with_stats(b, "small", &r, &st_small, NULL), 0);
	cr_assert_eq(sb_bridge_store_with_stats(b, "big", &r, &st_big, NULL), 0);
	memset(big, 0, big_len); /* the bridge must have copied it */

	uint8_t *want = fx_bin_doc(3000, 42, &big_len);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	cr_assert_eq(e.count, 2);
	cr_assert_eq(e.items[0].stats.kind, SB_STATS_OK);
	cr_assert_eq(e.items[0].stats.msgpack_len, sizeof(FX_DOC_MAP));
	cr_assert_eq(memcmp(e.items[0].stats.msgpack, FX_DOC_MAP, sizeof(FX_DOC_MAP)), 0);
	cr_assert_eq(e.items[1].stats.kind, SB_STATS_OK);
	cr_assert_eq(e.items[1].stats.msgpack_len, big_len);
	cr_assert_eq(memcmp(e.items[1].stats.msgpack, want, big_len), 0,
		     "stats bytes changed in the round-trip");
	sb_entries_free(&e);
	free(big);
	free(want);
	sb_bridge_destroy(b);
}

Test(bridge_drain, report_bytes_round_trip_byte_for_byte, .timeout = 10)
{
	static const size_t sizes[] = { 0, 1, 255, 256, 4095, 65535, 65536, 300000 };
	const size_t n = sizeof(sizes) / sizeof(sizes[0]);
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	uint8_t *docs[sizeof(sizes) / sizeof(sizes[0])];
	size_t lens[sizeof(sizes) / sizeof(sizes[0])];
	char tag[16];
	for (size_t i = 0; i < n; i++) {
		docs[i] = fx_bin_doc(sizes[i], 1000 + (uint32_t)i, &lens[i]);
		snprintf(tag, sizeof(tag), "r%zu", i);
		fx_store(b, tag, "s", docs[i], lens[i]);
		/* The caller keeps its buffer: scribbling on it must not reach the bridge. */
		memset(docs[i], 0xee, lens[i]);
		free(docs[i]);
		docs[i] = fx_bin_doc(sizes[i], 1000 + (uint32_t)i, &lens[i]);
	}
	for (size_t d = 0; d < 3; d++) {
		if (d > 0)
			for (size_t i = 0; i < n; i++) {
				snprintf(tag, sizeof(tag), "r%zu", i);
				fx_store(b, tag, "s", docs[i], lens[i]);
			}
		struct sb_entries e;
		fx_drain(b, ALL_DRAINS[d], &e);
		cr_assert_eq(e.count, n);
		for (size_t i = 0; i < n; i++) {
			snprintf(tag, sizeof(tag), "r%zu", i);
			const struct sb_entry *en = fx_find(&e, tag);
			cr_assert_not_null(en, "%s missing from drain %zu", tag, d);
			fx_expect_report(en, docs[i], lens[i]);
		}
		sb_entries_free(&e);
	}
	for (size_t i = 0; i < n; i++)
		free(docs[i]);
	sb_bridge_destroy(b);
}

Test(bridge_drain, schema_and_placeholder_round_trip, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	char long_schema[SB_SCHEMA_MAX + 1];
	memset(long_schema, 'k', SB_SCHEMA_MAX);
	long_schema[SB_SCHEMA_MAX] = '\0';
	struct sb_report r0 = fx_report(NULL, false, FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_report r1 = fx_report("", true, FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_report r2 = fx_report("snapshot/v2", true, FX_DOC_YO, sizeof(FX_DOC_YO));
	struct sb_report r3 = fx_report(long_schema, false, FX_DOC_YO, sizeof(FX_DOC_YO));
	for (size_t d = 0; d < 3; d++) {
		cr_assert_eq(sb_bridge_store(b, "null_schema", &r0), 0);
		cr_assert_eq(sb_bridge_store(b, "empty_schema", &r1), 0);
		cr_assert_eq(sb_bridge_store(b, "named", &r2), 0);
		cr_assert_eq(sb_bridge_store(b, "long", &r3), 0);
		struct sb_entries e;
		fx_drain(b, ALL_DRAINS[d], &e);
		cr_assert_eq(e.count, 4);
		const struct sb_entry *en = fx_find(&e, "null_schema");
		cr_assert_not_null(en);
		cr_assert_str_eq(en->schema, "", "a NULL schema means \"\"");
		cr_assert_not(en->placeholder);
		en = fx_find(&e, "empty_schema");
		cr_assert_not_null(en);
		cr_assert_str_eq(en->schema, "");
		cr_assert(en->placeholder);
		en = fx_find(&e, "named");
		cr_assert_not_null(en);
		cr_assert_str_eq(en->schema, "snapshot/v2");
		cr_assert(en->placeholder);
		fx_expect_report(en, FX_DOC_YO, sizeof(FX_DOC_YO));
		en = fx_find(&e, "long");
		cr_assert_not_null(en);
		cr_assert_str_eq(en->schema, long_schema);
		cr_assert_not(en->placeholder);
		sb_entries_free(&e);
	}
	sb_bridge_destroy(b);
}

Test(bridge_drain, missing_kind_names_are_the_reference_variant_names, .timeout = 10)
{
	cr_assert_str_eq(sb_missing_kind_name(SB_MISSING_NO_SCHEDULER_BINARY), "NoSchedulerBinary");
	cr_assert_str_eq(sb_missing_kind_name(SB_MISSING_NO_SCHEDULER), "NoScheduler");
	cr_assert_str_eq(sb_missing_kind_name(SB_MISSING_DURING_FREEZE), "DuringFreeze");
	cr_assert_str_eq(sb_missing_kind_name(SB_MISSING_CANCELLED), "Cancelled");
	cr_assert_str_eq(sb_missing_kind_name(SB_MISSING_SCHEDULER_ERROR), "SchedulerError");
	cr_assert_str_eq(sb_missing_kind_name(SB_MISSING_MISSING_RESP), "MissingResp");
	cr_assert_str_eq(sb_missing_kind_name(SB_MISSING_REQUEST_TOO_LARGE), "RequestTooLarge");
	cr_assert_str_eq(sb_missing_kind_name(SB_MISSING_RESPONSE_TOO_LARGE), "ResponseTooLarge");
	cr_assert_str_eq(sb_missing_kind_name(SB_MISSING_MUTEX_POISONED), "MutexPoisoned");
}
