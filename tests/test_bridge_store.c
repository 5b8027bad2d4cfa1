/*
 * test_bridge_store.c - storing into the in-process bridge: config limits,
 * overwrite, FIFO eviction at the cap, lock-step parallel fields, the
 * byte budget of the record log, and argument errors that change nothing.
 */
#include "bridge_fixtures.h"

#include <criterion/parameterized.h>

/* ---------------------------------------------------------------- config */

static void expect_config_rejected(const struct sb_config *cfg, const char *field)
{
	struct sb_bridge *b = NULL;
	int rc = sb_bridge_create(cfg, NULL, &b);
	cr_assert_eq(rc, -EINVAL, "%s: create returned %d, expected -EINVAL", field, rc);
	const char *msg = sb_last_error();
	cr_assert(msg != NULL && strstr(msg, field) != NULL,
		  "sb_last_error() should name %s, got \"%s\"", field, msg ? msg : "(null)");
}

Test(bridge_config, default_config_matches_documented_defaults, .timeout = 10)
{
	struct sb_config cfg;
	memset(&cfg, 0xa5, sizeof(cfg));
	sb_config_default(&cfg);
	cr_assert_eq(cfg.max_snapshots, SB_DEFAULT_MAX_SNAPSHOTS);
	cr_assert_eq(cfg.max_events, SB_DEFAULT_MAX_EVENTS);
	cr_assert_eq(cfg.max_watch, SB_DEFAULT_MAX_WATCH);
	cr_assert_eq(cfg.flags, 0, "no msgpack walk by default");
	cr_assert_eq(cfg.log_bytes, SB_DEFAULT_LOG_BYTES);
	cr_assert_eq(cfg.aux_bytes, SB_DEFAULT_AUX_BYTES);
	cr_assert_eq(SB_DEFAULT_MAX_SNAPSHOTS, 64);
	cr_assert_eq(SB_DEFAULT_MAX_EVENTS, 1024);
	cr_assert_eq(SB_DEFAULT_MAX_WATCH, 3);
}

Test(bridge_config, null_config_creates_bridge_with_defaults, .timeout = 10)
{
	struct sb_bridge *b = NULL;
	cr_assert_eq(sb_bridge_create(NULL, NULL, &b), 0, "%s", sb_last_error());
	struct sb_config got;
	cr_assert_eq(sb_bridge_config(b, &got), 0);
	cr_assert_eq(got.max_snapshots, SB_DEFAULT_MAX_SNAPSHOTS);
	cr_assert_eq(got.max_events, SB_DEFAULT_MAX_EVENTS);
	cr_assert_eq(got.max_watch, SB_DEFAULT_MAX_WATCH);
	cr_assert_eq(got.flags, 0);
	cr_assert_eq(got.log_bytes, SB_DEFAULT_LOG_BYTES);
	cr_assert_eq(got.aux_bytes, SB_DEFAULT_AUX_BYTES);
	sb_bridge_destroy(b);
}

Test(bridge_config, log_and_aux_bytes_are_rounded_up_to_64, .timeout = 10)
{
	struct sb_config cfg;
	sb_config_default(&cfg);
	cfg.log_bytes = SB_LOG_BYTES_MIN + 1;
	cfg.aux_bytes = SB_LOG_BYTES_MIN + 63;
	struct sb_bridge *b = NULL;
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0, "%s", sb_last_error());
	struct sb_config got;
	cr_assert_eq(sb_bridge_config(b, &got), 0);
	cr_assert_eq(got.log_bytes, SB_LOG_BYTES_MIN + 64);
	cr_assert_eq(got.aux_bytes, SB_LOG_BYTES_MIN + 64);
	sb_bridge_destroy(b);
}

Test(bridge_config, accepts_values_at_the_lower_limits, .timeout = 10)
{
	struct sb_config cfg;
	sb_config_default(&cfg);
	cfg.max_snapshots = 1;
	cfg.max_events = 1;
	cfg.max_watch = 0;
	cfg.log_bytes = SB_LOG_BYTES_MIN;
	cfg.aux_bytes = SB_LOG_BYTES_MIN;
	struct sb_bridge *b = NULL;
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0, "%s", sb_last_error());
	struct sb_config got;
	cr_assert_eq(sb_bridge_config(b, &got), 0);
	cr_assert_eq(got.max_snapshots, 1);
	cr_assert_eq(got.max_events, 1);
	cr_assert_eq(got.max_watch, 0);
	cr_assert_eq(got.log_bytes, SB_LOG_BYTES_MIN);
	sb_bridge_destroy(b);
}

/*
 * Every out-of-range config field, one case each: the value is set on a
 * default config, and create must refuse it with -EINVAL and a message
 * naming the field.
 */
enum cfg_field { F_MAX_SNAPSHOTS, F_MAX_EVENTS, F_MAX_WATCH, F_LOG_BYTES, F_AUX_BYTES, F_FLAGS };

/* No pointers: Criterion hands the case to a re-executed worker (another address space). */
struct bad_config {
	enum cfg_field field;
	uint64_t value;
	char name[16]; /* what the message must name */
};

ParameterizedTestParameters(bridge_config, rejects_every_out_of_range_field)
{
	static struct bad_config cases[] = {
		{ F_MAX_SNAPSHOTS, 0, "max_snapshots" },
		{ F_MAX_SNAPSHOTS, SB_MAX_SNAPSHOTS_LIMIT + 1ull, "max_snapshots" },
		{ F_MAX_EVENTS, 0, "max_events" },
		{ F_MAX_EVENTS, SB_MAX_EVENTS_LIMIT + 1ull, "max_events" },
		{ F_MAX_WATCH, SB_MAX_WATCH_LIMIT + 1ull, "max_watch" },
		{ F_LOG_BYTES, 4096, "log_bytes" },
		{ F_LOG_BYTES, SB_LOG_BYTES_MIN - 1ull, "log_bytes" },
		{ F_LOG_BYTES, (uint64_t)SB_LOG_BYTES_MAX + 1, "log_bytes" },
		{ F_LOG_BYTES, UINT64_MAX, "log_bytes" },
		{ F_AUX_BYTES, 64, "aux_bytes" },
		{ F_AUX_BYTES, (uint64_t)SB_LOG_BYTES_MAX + 1, "aux_bytes" },
		{ F_FLAGS, SB_BRIDGE_VALIDATE_MSGPACK | 1u << 31, "flags" }, /* an unknown bit */
	};
	return cr_make_param_array(struct bad_config, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_config *c, bridge_config, rejects_every_out_of_range_field,
		  .timeout = 10)
{
	struct sb_config cfg;

	sb_config_default(&cfg);
	switch (c->field) {
	case F_MAX_SNAPSHOTS:
		cfg.max_snapshots = (uint32_t)c->value;
		break;
	case F_MAX_EVENTS:
		cfg.max_events = (uint32_t)c->value;
		break;
	case F_MAX_WATCH:
		cfg.max_watch = (uint32_t)c->value;
		break;
	case F_LOG_BYTES:
		cfg.log_bytes = c->value;
		break;
	case F_AUX_BYTES:
		cfg.aux_bytes = c->value;
		break;
	case F_FLAGS:
		cfg.flags = (uint32_t)c->value;
		break;
	}
	expect_config_rejected(&cfg, c->name);
}

/* ----------------------------------------------------------------- store */

Test(bridge_store, new_bridge_is_empty, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	cr_assert_eq(fx_len(b), 0);
	cr_assert(fx_is_empty(b));
	cr_assert_not(fx_has(b, "a"));
	cr_assert_eq(fx_event_count(b), 0);
	sb_bridge_destroy(b);
}

Test(bridge_store, store_makes_only_that_tag_resident, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	fx_store_hi(b, "a");
	cr_assert_eq(fx_len(b), 1);
	cr_assert_not(fx_is_empty(b));
	cr_assert(fx_has(b, "a"));
	cr_assert_not(fx_has(b, "b"));
	cr_assert_not(fx_has(b, "A"));
	cr_assert_eq(fx_event_count(b), 0, "a fresh store must not raise an event");
	fx_store_hi(b, "b");
	cr_assert_eq(fx_len(b), 2);
	cr_assert(fx_has(b, "b"));
	sb_bridge_destroy(b);
}

Test(bridge_store, store_accepts_63_byte_tag_and_schema, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	char tag[SB_TAG_MAX + 1], schema[SB_SCHEMA_MAX + 1];
	memset(tag, 't', SB_TAG_MAX);
	tag[SB_TAG_MAX] = '\0';
	memset(schema, 's', SB_SCHEMA_MAX);
	schema[SB_SCHEMA_MAX] = '\0';
	fx_store(b, tag, schema, FX_DOC_HI, sizeof(FX_DOC_HI));
	cr_assert(fx_has(b, tag));
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	cr_assert_eq(e.count, 1);
	cr_assert_str_eq(e.items[0].tag, tag);
	cr_assert_str_eq(e.items[0].schema, schema);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_store, overwrite_keeps_one_resident_entry_per_tag, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	fx_store_hi(b, "a");
	fx_store(b, "a", "s2", FX_DOC_YO, sizeof(FX_DOC_YO));
	fx_store(b, "a", "s3", FX_DOC_HI, sizeof(FX_DOC_HI));
	cr_assert_eq(fx_len(b), 1);
	cr_assert(fx_has(b, "a"));
	sb_bridge_destroy(b);
}

Test(bridge_store, overwrite_replaces_report_schema_and_placeholder, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	struct sb_report r1 = fx_report("old", true, FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_report r2 = fx_report("new", false, FX_DOC_YO, sizeof(FX_DOC_YO));
	cr_assert_eq(sb_bridge_store(b, "a", &r1), 0);
	cr_assert_eq(sb_bridge_store(b, "a", &r2), 0);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	cr_assert_eq(e.count, 1);
	cr_assert_str_eq(e.items[0].schema, "new");
	cr_assert_not(e.items[0].placeholder);
	fx_expect_report(&e.items[0], FX_DOC_YO, sizeof(FX_DOC_YO));
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

/* -------------------------------------------------------- FIFO at the cap */

Test(bridge_fifo, cap_eviction_drops_oldest_resident_tag, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(3, 0, 0);
	fx_store_hi(b, "a");
	fx_store_hi(b, "b");
	fx_store_hi(b, "c");
	cr_assert_eq(fx_len(b), 3);
	cr_assert_eq(fx_event_count(b), 0, "filling up to the cap must not evict");
	fx_store_hi(b, "d");
	cr_assert_eq(fx_len(b), 3);
	cr_assert_not(fx_has(b, "a"), "oldest tag must be evicted at the cap");
	cr_assert(fx_has(b, "b"));
	cr_assert(fx_has(b, "c"));
	cr_assert(fx_has(b, "d"));

	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 1);
	cr_assert_eq(ev.items[0].kind, SB_EVENT_EVICTION);
	cr_assert_str_eq(ev.items[0].tag, "a");
	cr_assert_str_eq(ev.items[0].detail, "d");
	cr_assert_eq(ev.items[0].cap, 3);
	cr_assert_eq(ev.items[0].cause, SB_EVICT_CAP);
	sb_events_free(&ev);

	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	const char *want[] = { "b", "c", "d" };
	fx_expect_order(&e, want, 3);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_fifo, cap_eviction_repeats_in_store_order, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(2, 0, 0);
	char tag[16];
	for (int i = 0; i < 6; i++) {
		snprintf(tag, sizeof(tag), "t%d", i);
		fx_store_hi(b, tag);
		cr_assert_eq(fx_len(b), i < 2 ? (size_t)i + 1 : 2);
	}
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 4);
	for (int i = 0; i < 4; i++) {
		char evicted[16], by[16];
		snprintf(evicted, sizeof(evicted), "t%d", i);
		snprintf(by, sizeof(by), "t%d", i + 2);
		cr_assert_eq(ev.items[i].kind, SB_EVENT_EVICTION);
		cr_assert_str_eq(ev.items[i].tag, evicted);
		cr_assert_str_eq(ev.items[i].detail, by);
		cr_assert_eq(ev.items[i].cause, SB_EVICT_CAP);
		cr_assert_not(fx_has(b, evicted));
	}
	sb_events_free(&ev);
	cr_assert(fx_has(b, "t4"));
	cr_assert(fx_has(b, "t5"));
	sb_bridge_destroy(b);
}

Test(bridge_fifo, overwrite_moves_tag_to_back_of_fifo, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(3, 0, 0);
	fx_store_hi(b, "a");
	fx_store_hi(b, "b");
	fx_store_hi(b, "c");
	fx_store_hi(b, "a"); /* a is now the newest */
	fx_store_hi(b, "d"); /* so b, not a, is the oldest */
	cr_assert(fx_has(b, "a"), "an overwritten tag must not be evicted as the oldest");
	cr_assert_not(fx_has(b, "b"));
	cr_assert_eq(fx_len(b), 3);

	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 2);
	cr_assert_eq(ev.items[0].kind, SB_EVENT_OVERWRITE);
	cr_assert_eq(ev.items[1].kind, SB_EVENT_EVICTION);
	cr_assert_str_eq(ev.items[1].tag, "b");
	cr_assert_str_eq(ev.items[1].detail, "d");
	sb_events_free(&ev);

	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	const char *want[] = { "c", "a", "d" };
	fx_expect_order(&e, want, 3);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_fifo, overwrite_at_cap_evicts_nothing, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(2, 0, 0);
	fx_store_hi(b, "a");
	fx_store_hi(b, "b");
	fx_store_hi(b, "a");
	cr_assert_eq(fx_len(b), 2);
	cr_assert(fx_has(b, "a"));
	cr_assert(fx_has(b, "b"));
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 1);
	cr_assert_eq(ev.items[0].kind, SB_EVENT_OVERWRITE);
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

Test(bridge_fifo, cap_of_one_keeps_only_newest_tag, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(1, 0, 0);
	fx_store_hi(b, "a");
	fx_store_hi(b, "b");
	cr_assert_eq(fx_len(b), 1);
	cr_assert_not(fx_has(b, "a"));
	cr_assert(fx_has(b, "b"));
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	const char *want[] = { "b" };
	fx_expect_order(&e, want, 1);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

/* ------------------------------------------------- lock-step parallel fields */

static void store_full(struct sb_bridge *b, const char *tag, const void *stats_doc,
		       size_t stats_len, uint64_t elapsed, uint64_t boundary, uint16_t step)
{
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_stats st = { .kind = SB_STATS_OK,
			       .msgpack = stats_doc,
			       .msgpack_len = stats_len };
	int rc = sb_bridge_store_with_stats_and_step(b, tag, &r, &st, &elapsed, &boundary, step);
	cr_assert_eq(rc, 0, "store_with_stats_and_step(%s): %d (%s)", tag, rc, sb_last_error());
}

static const struct sb_entry *drain_one(struct sb_bridge *b, struct sb_entries *e, const char *tag)
{
	fx_drain(b, FX_DRAIN_WITH_STATS, e);
	cr_assert_eq(e->count, 1, "expected one entry, got %zu", e->count);
	cr_assert_str_eq(e->items[0].tag, tag);
	return &e->items[0];
}

Test(bridge_fields, store_with_stats_and_step_keeps_every_field, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	store_full(b, "periodic_000", FX_DOC_MAP, sizeof(FX_DOC_MAP), 1500, 1000, 2);
	struct sb_entries e;
	const struct sb_entry *en = drain_one(b, &e, "periodic_000");
	cr_assert_eq(en->stats.kind, SB_STATS_OK);
	cr_assert_eq(en->stats.msgpack_len, sizeof(FX_DOC_MAP));
	cr_assert_eq(memcmp(en->stats.msgpack, FX_DOC_MAP, sizeof(FX_DOC_MAP)), 0);
	cr_assert(en->meta.has_elapsed);
	cr_assert_eq(en->meta.elapsed_ms, 1500);
	cr_assert(en->meta.has_boundary);
	cr_assert_eq(en->meta.boundary_offset_ms, 1000);
	cr_assert(en->meta.has_step);
	cr_assert_eq(en->meta.step_index, 2);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_fields, overwrite_without_fields_clears_every_parallel_field, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	store_full(b, "a", FX_DOC_MAP, sizeof(FX_DOC_MAP), 1500, 1000, 2);
	fx_store_hi(b, "a"); /* plain store: no stats, elapsed, boundary or step */
	struct sb_entries e;
	const struct sb_entry *en = drain_one(b, &e, "a");
	fx_expect_no_scheduler_binary(en);
	fx_expect_no_meta(en);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_fields, overwrite_with_null_stats_and_elapsed_clears_them, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	store_full(b, "a", FX_DOC_MAP, sizeof(FX_DOC_MAP), 1500, 1000, 2);
	struct sb_report r = fx_report("s", false, FX_DOC_YO, sizeof(FX_DOC_YO));
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", &r, NULL, NULL), 0);
	struct sb_entries e;
	const struct sb_entry *en = drain_one(b, &e, "a");
	fx_expect_report(en, FX_DOC_YO, sizeof(FX_DOC_YO));
	fx_expect_no_scheduler_binary(en);
	fx_expect_no_meta(en);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_fields, overwrite_with_stats_clears_boundary_and_step, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	store_full(b, "a", FX_DOC_MAP, sizeof(FX_DOC_MAP), 1500, 1000, 2);
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_stats st = { .kind = SB_STATS_OK,
			       .msgpack = FX_DOC_YO,
			       .msgpack_len = sizeof(FX_DOC_YO) };
	uint64_t elapsed = 77;
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", &r, &st, &elapsed), 0);
	struct sb_entries e;
	const struct sb_entry *en = drain_one(b, &e, "a");
	cr_assert_eq(en->stats.kind, SB_STATS_OK);
	cr_assert_eq(en->stats.msgpack_len, sizeof(FX_DOC_YO));
	cr_assert_eq(memcmp(en->stats.msgpack, FX_DOC_YO, sizeof(FX_DOC_YO)), 0);
	cr_assert(en->meta.has_elapsed);
	cr_assert_eq(en->meta.elapsed_ms, 77);
	cr_assert_not(en->meta.has_boundary, "stale boundary survived the overwrite");
	cr_assert_not(en->meta.has_step, "stale step survived the overwrite");
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_fields, overwrite_replaces_every_parallel_field, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	store_full(b, "a", FX_DOC_MAP, sizeof(FX_DOC_MAP), 1500, 1000, 2);
	store_full(b, "a", FX_DOC_YO, sizeof(FX_DOC_YO), 2500, 2000, 3);
	struct sb_entries e;
	const struct sb_entry *en = drain_one(b, &e, "a");
	cr_assert_eq(en->stats.kind, SB_STATS_OK);
	cr_assert_eq(en->stats.msgpack_len, sizeof(FX_DOC_YO));
	cr_assert_eq(memcmp(en->stats.msgpack, FX_DOC_YO, sizeof(FX_DOC_YO)), 0);
	cr_assert_eq(en->meta.elapsed_ms, 2500);
	cr_assert_eq(en->meta.boundary_offset_ms, 2000);
	cr_assert_eq(en->meta.step_index, 3);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_fields, overwrite_replaces_missing_stats_reason, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_stats st = { .kind = SB_STATS_MISSING,
			       .missing = { .kind = SB_MISSING_NO_SCHEDULER, .text = "gone" } };
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", &r, &st, NULL), 0);
	struct sb_stats st2 = { .kind = SB_STATS_MISSING,
				.missing = { .kind = SB_MISSING_CANCELLED } };
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", &r, &st2, NULL), 0);
	struct sb_entries e;
	const struct sb_entry *en = drain_one(b, &e, "a");
	cr_assert_eq(en->stats.kind, SB_STATS_MISSING);
	cr_assert_eq(en->stats.missing.kind, SB_MISSING_CANCELLED);
	cr_assert_null(en->stats.missing.text, "the prior reason's text leaked into the overwrite");
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_fields, eviction_sweeps_parallel_fields_of_evicted_tag, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(1, 0, 0);
	store_full(b, "a", FX_DOC_MAP, sizeof(FX_DOC_MAP), 1500, 1000, 2);
	fx_store_hi(b, "b"); /* evicts a */
	cr_assert_not(fx_has(b, "a"));
	fx_store_hi(b, "a"); /* evicts b; a comes back with nothing bundled */
	struct sb_entries e;
	const struct sb_entry *en = drain_one(b, &e, "a");
	fx_expect_no_scheduler_binary(en);
	fx_expect_no_meta(en);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_fields, zero_elapsed_and_step_zero_are_present_not_absent, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	store_full(b, "a", FX_DOC_MAP, sizeof(FX_DOC_MAP), 0, 0, 0);
	struct sb_entries e;
	const struct sb_entry *en = drain_one(b, &e, "a");
	cr_assert(en->meta.has_elapsed);
	cr_assert_eq(en->meta.elapsed_ms, 0);
	cr_assert(en->meta.has_boundary);
	cr_assert_eq(en->meta.boundary_offset_ms, 0);
	cr_assert(en->meta.has_step, "step 0 is the baseline phase, not absence");
	cr_assert_eq(en->meta.step_index, 0);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_fields, absent_stats_kind_is_the_same_as_null_stats, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_stats st = { .kind = SB_STATS_ABSENT };
	uint64_t elapsed = 9;
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", &r, &st, &elapsed), 0);
	struct sb_entries e;
	const struct sb_entry *en = drain_one(b, &e, "a");
	fx_expect_no_scheduler_binary(en);
	cr_assert(en->meta.has_elapsed);
	cr_assert_eq(en->meta.elapsed_ms, 9);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

/* ------------------------------------------------------- byte budget */

#define BIG_PAYLOAD (20u << 10)

/*
 * With a 64 KiB log, 20 KiB reports cannot all stay: the log reclaims its
 * oldest records, evicting those still resident, oldest first.
 */
Test(bridge_bytes, byte_budget_evicts_oldest_resident_records_in_fifo_order, .timeout = 10)
{
	enum { N = 8 };
	struct sb_bridge *b = fx_bridge(0, 0, SB_LOG_BYTES_MIN);
	uint8_t *docs[N];
	size_t lens[N];
	char tags[N][8];
	size_t evicted = 0;
	for (int i = 0; i < N; i++) {
		snprintf(tags[i], sizeof(tags[i]), "t%d", i);
		docs[i] = fx_bin_doc(BIG_PAYLOAD, 100 + i, &lens[i]);
		fx_store(b, tags[i], "big", docs[i], lens[i]);

		struct sb_events ev;
		fx_drain_events(b, &ev);
		for (size_t k = 0; k < ev.count; k++) {
			const struct sb_event *x = &ev.items[k];
			cr_assert_eq(x->kind, SB_EVENT_EVICTION, "unexpected event kind %d",
				     (int)x->kind);
			cr_assert_eq(x->cause, SB_EVICT_BYTES, "cap cannot evict below 64 tags");
			cr_assert_str_eq(x->tag, tags[evicted],
					 "byte eviction #%zu dropped %s, expected oldest %s",
					 evicted, x->tag, tags[evicted]);
			cr_assert_str_eq(x->detail, tags[i],
					 "eviction detail must name the store needing bytes");
			cr_assert_not(fx_has(b, x->tag), "%s still resident after eviction",
				      x->tag);
			evicted++;
		}
		sb_events_free(&ev);
		cr_assert(fx_has(b, tags[i]), "newest store %s is not resident", tags[i]);
		cr_assert_eq(fx_len(b), (size_t)i + 1 - evicted);
	}
	size_t len = fx_len(b);
	cr_assert_leq(len, 3, "4 x 20 KiB cannot be resident in a 64 KiB log (len %zu)", len);
	cr_assert_geq(len, 2, "a 64 KiB log must hold the newest two 20 KiB records");
	cr_assert_eq(evicted, N - len);

	/* The survivors are the newest stores, intact, in store order. */
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	cr_assert_eq(e.count, len);
	for (size_t k = 0; k < e.count; k++) {
		size_t i = evicted + k;
		cr_assert_str_eq(e.items[k].tag, tags[i]);
		fx_expect_report(&e.items[k], docs[i], lens[i]);
	}
	sb_entries_free(&e);
	for (int i = 0; i < N; i++)
		free(docs[i]);
	sb_bridge_destroy(b);
}

Test(bridge_bytes, reclaiming_superseded_versions_evicts_nothing, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, SB_LOG_BYTES_MIN);
	size_t len;
	uint8_t *doc = NULL;
	for (int i = 0; i < 8; i++) {
		free(doc);
		doc = fx_bin_doc(BIG_PAYLOAD, 200 + i, &len);
		fx_store(b, "same", "big", doc, len);
	}
	cr_assert_eq(fx_len(b), 1);
	cr_assert(fx_has(b, "same"));
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 7, "expected 7 overwrites, got %zu events", ev.count);
	for (size_t k = 0; k < ev.count; k++)
		cr_assert_eq(ev.items[k].kind, SB_EVENT_OVERWRITE,
			     "event %zu has kind %d: reclaiming a superseded record is no eviction",
			     k, (int)ev.items[k].kind);
	sb_events_free(&ev);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	cr_assert_eq(e.count, 1);
	fx_expect_report(&e.items[0], doc, len);
	sb_entries_free(&e);
	free(doc);
	sb_bridge_destroy(b);
}

Test(bridge_bytes, report_bigger_than_log_fails_with_e2big_and_changes_nothing, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, SB_LOG_BYTES_MIN);
	size_t keep_len, huge_len;
	uint8_t *keep = fx_bin_doc(BIG_PAYLOAD, 7, &keep_len);
	uint8_t *huge = fx_bin_doc(SB_LOG_BYTES_MIN + 4096, 8, &huge_len);
	fx_store(b, "keep", "s", keep, keep_len);

	struct sb_report r = fx_report("s", false, huge, huge_len);
	cr_assert_eq(sb_bridge_store(b, "huge", &r), -E2BIG);
	fx_expect_error_message();
	cr_assert_eq(sb_bridge_store(b, "keep", &r), -E2BIG, "overwrite with a huge report");

	cr_assert_eq(fx_len(b), 1);
	cr_assert(fx_has(b, "keep"), "a rejected store must not evict to make room");
	cr_assert_not(fx_has(b, "huge"));
	cr_assert_eq(fx_event_count(b), 0);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	cr_assert_eq(e.count, 1);
	cr_assert_eq(e.items[0].store_seq, 1);
	fx_expect_report(&e.items[0], keep, keep_len);
	sb_entries_free(&e);
	free(keep);
	free(huge);
	sb_bridge_destroy(b);
}

/* ---------------------------------------------------------------- errors */

/*
 * A bridge holding one report "keep" (store_seq 1) and no events. After a
 * rejected call, expect_unchanged() checks that nothing moved: same len,
 * no event, keep intact, and the next store still gets store_seq 2.
 */
static struct sb_bridge *bridge_with_keep(void)
{
	struct sb_bridge *b = fx_bridge(4, 0, 0);
	fx_store(b, "keep", "s1", FX_DOC_HI, sizeof(FX_DOC_HI));
	return b;
}

/* The same with SB_BRIDGE_VALIDATE_MSGPACK: stores check their msgpack. */
static struct sb_bridge *validating_bridge_with_keep(void)
{
	struct sb_config cfg;
	struct sb_bridge *b = NULL;

	sb_config_default(&cfg);
	cfg.max_snapshots = 4;
	cfg.flags = SB_BRIDGE_VALIDATE_MSGPACK;
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0, "%s", sb_last_error());
	fx_store(b, "keep", "s1", FX_DOC_HI, sizeof(FX_DOC_HI));
	return b;
}

static void expect_unchanged(struct sb_bridge *b, const char *bad_tag)
{
	cr_assert_eq(fx_len(b), 1, "a rejected store changed len");
	cr_assert_eq(fx_event_count(b), 0, "a rejected store raised an event");
	cr_assert(fx_has(b, "keep"));
	if (bad_tag != NULL && bad_tag[0] != '\0' && strlen(bad_tag) <= SB_TAG_MAX)
		cr_assert_not(fx_has(b, bad_tag));
	fx_store(b, "next", "s2", FX_DOC_YO, sizeof(FX_DOC_YO));
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	const char *want[] = { "keep", "next" };
	fx_expect_order(&e, want, 2);
	cr_assert_str_eq(e.items[0].schema, "s1");
	fx_expect_report(&e.items[0], FX_DOC_HI, sizeof(FX_DOC_HI));
	cr_assert_eq(e.items[0].store_seq, 1);
	cr_assert_eq(e.items[1].store_seq, 2, "a rejected store consumed a store_seq");
	sb_entries_free(&e);
}

static void expect_store_fails(struct sb_bridge *b, const char *tag, const struct sb_report *r,
			       int want)
{
	int rc = sb_bridge_store(b, tag, r);
	cr_assert_eq(rc, want, "store(%s) returned %d, expected %d", tag ? tag : "(null)", rc,
		     want);
	fx_expect_error_message();
}

Test(bridge_errors, store_rejects_null_bridge, .timeout = 10)
{
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	cr_assert_eq(sb_bridge_store(NULL, "a", &r), -EINVAL);
	cr_assert_eq(sb_bridge_store_with_stats(NULL, "a", &r, NULL, NULL), -EINVAL);
	cr_assert_eq(sb_bridge_store_with_stats_and_step(NULL, "a", &r, NULL, NULL, NULL, 0),
		     -EINVAL);
}

Test(bridge_errors, store_rejects_null_tag, .timeout = 10)
{
	struct sb_bridge *b = bridge_with_keep();
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	expect_store_fails(b, NULL, &r, -EINVAL);
	expect_unchanged(b, NULL);
	sb_bridge_destroy(b);
}

Test(bridge_errors, store_rejects_empty_tag, .timeout = 10)
{
	struct sb_bridge *b = bridge_with_keep();
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	expect_store_fails(b, "", &r, -EINVAL);
	expect_unchanged(b, NULL);
	sb_bridge_destroy(b);
}

Test(bridge_errors, store_rejects_64_byte_tag_with_enametoolong, .timeout = 10)
{
	struct sb_bridge *b = bridge_with_keep();
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	char tag[SB_TAG_MAX + 2];
	memset(tag, 'x', SB_TAG_MAX + 1);
	tag[SB_TAG_MAX + 1] = '\0';
	expect_store_fails(b, tag, &r, -ENAMETOOLONG);
	/* Its 63-byte prefix must not have been stored either. */
	tag[SB_TAG_MAX] = '\0';
	cr_assert_not(fx_has(b, tag));
	expect_unchanged(b, tag);
	sb_bridge_destroy(b);
}

Test(bridge_errors, store_rejects_64_byte_schema_with_enametoolong, .timeout = 10)
{
	struct sb_bridge *b = bridge_with_keep();
	char schema[SB_SCHEMA_MAX + 2];
	memset(schema, 's', SB_SCHEMA_MAX + 1);
	schema[SB_SCHEMA_MAX + 1] = '\0';
	struct sb_report r = fx_report(schema, false, FX_DOC_HI, sizeof(FX_DOC_HI));
	expect_store_fails(b, "a", &r, -ENAMETOOLONG);
	expect_store_fails(b, "keep", &r, -ENAMETOOLONG);
	expect_unchanged(b, "a");
	sb_bridge_destroy(b);
}

Test(bridge_errors, store_rejects_null_report, .timeout = 10)
{
	struct sb_bridge *b = bridge_with_keep();
	expect_store_fails(b, "a", NULL, -EINVAL);
	expect_unchanged(b, "a");
	sb_bridge_destroy(b);
}

Test(bridge_errors, validating_store_rejects_report_that_is_not_msgpack, .timeout = 10)
{
	struct sb_bridge *b = validating_bridge_with_keep();
	static const uint8_t never_used[] = { 0xc1 };
	struct sb_report r = fx_report("s", false, never_used, sizeof(never_used));
	expect_store_fails(b, "a", &r, -EINVAL);
	expect_unchanged(b, "a");
	sb_bridge_destroy(b);
}

Test(bridge_errors, validating_store_rejects_truncated_report, .timeout = 10)
{
	struct sb_bridge *b = validating_bridge_with_keep();
	static const uint8_t short_bin[] = { 0xc4, 0x05, 0x01, 0x02 }; /* 5 promised, 2 given */
	static const uint8_t short_str[] = { 0xa5, 'a', 'b' };
	struct sb_report r = fx_report("s", false, short_bin, sizeof(short_bin));
	expect_store_fails(b, "a", &r, -EINVAL);
	r = fx_report("s", false, short_str, sizeof(short_str));
	expect_store_fails(b, "a", &r, -EINVAL);
	expect_unchanged(b, "a");
	sb_bridge_destroy(b);
}

Test(bridge_errors, validating_store_rejects_report_of_two_objects, .timeout = 10)
{
	struct sb_bridge *b = validating_bridge_with_keep();
	static const uint8_t two[] = { 0xa2, 'h', 'i', 0x01 };
	struct sb_report r = fx_report("s", false, two, sizeof(two));
	expect_store_fails(b, "a", &r, -EINVAL);
	expect_unchanged(b, "a");
	sb_bridge_destroy(b);
}

Test(bridge_errors, validating_store_rejects_empty_report, .timeout = 10)
{
	struct sb_bridge *b = validating_bridge_with_keep();
	struct sb_report r = fx_report("s", false, FX_DOC_HI, 0);
	expect_store_fails(b, "a", &r, -EINVAL);
	expect_unchanged(b, "a");
	sb_bridge_destroy(b);
}

Test(bridge_errors, default_store_keeps_bytes_that_are_not_msgpack_as_given, .timeout = 10)
{
	struct sb_bridge *b = bridge_with_keep();
	static const uint8_t never_used[] = { 0xc1, 0x00, 0xff };
	static const uint8_t two[] = { 0x01, 0x02 };
	struct sb_report r = fx_report("s", false, never_used, sizeof(never_used));
	struct sb_stats st = { .kind = SB_STATS_OK, .msgpack = two, .msgpack_len = sizeof(two) };
	struct sb_entries e;

	cr_assert_eq(sb_bridge_store_with_stats(b, "raw", &r, &st, NULL), 0, "%s", sb_last_error());
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	cr_assert_eq(e.count, 2);
	fx_expect_report(&e.items[1], never_used, sizeof(never_used));
	cr_assert_eq(e.items[1].stats.msgpack_len, sizeof(two));
	cr_assert_eq(memcmp(e.items[1].stats.msgpack, two, sizeof(two)), 0);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_errors, validating_store_rejects_stats_that_are_not_one_msgpack_object, .timeout = 10)
{
	struct sb_bridge *b = validating_bridge_with_keep();
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	static const uint8_t bad[] = { 0xc1 };
	static const uint8_t two[] = { 0x01, 0x02 };
	uint64_t elapsed = 5;
	struct sb_stats st = { .kind = SB_STATS_OK, .msgpack = bad, .msgpack_len = sizeof(bad) };
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", &r, &st, &elapsed), -EINVAL);
	st.msgpack = two;
	st.msgpack_len = sizeof(two);
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", &r, &st, &elapsed), -EINVAL);
	st.msgpack_len = 0;
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", &r, &st, &elapsed), -EINVAL);
	st.msgpack = bad;
	st.msgpack_len = sizeof(bad);
	cr_assert_eq(sb_bridge_store_with_stats_and_step(b, "keep", &r, &st, &elapsed, &elapsed, 1),
		     -EINVAL);
	fx_expect_error_message();
	expect_unchanged(b, "a");
	sb_bridge_destroy(b);
}

Test(bridge_errors, store_rejects_unknown_missing_kind, .timeout = 10)
{
	struct sb_bridge *b = bridge_with_keep();
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_stats st = { .kind = SB_STATS_MISSING };
	st.missing.kind = (enum sb_missing_kind)0;
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", &r, &st, NULL), -EINVAL);
	st.missing.kind = (enum sb_missing_kind)(SB_MISSING_MUTEX_POISONED + 1);
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", &r, &st, NULL), -EINVAL);
	st.missing.kind = (enum sb_missing_kind)99;
	cr_assert_eq(sb_bridge_store_with_stats_and_step(b, "keep", &r, &st, NULL, NULL, 0),
		     -EINVAL);
	fx_expect_error_message();
	expect_unchanged(b, "a");
	sb_bridge_destroy(b);
}

Test(bridge_errors, step_variant_validates_tag_like_store, .timeout = 10)
{
	struct sb_bridge *b = bridge_with_keep();
	struct sb_report r = fx_report("s", false, FX_DOC_HI, sizeof(FX_DOC_HI));
	char tag[SB_TAG_MAX + 2];
	memset(tag, 'y', SB_TAG_MAX + 1);
	tag[SB_TAG_MAX + 1] = '\0';
	uint64_t v = 1;
	cr_assert_eq(sb_bridge_store_with_stats_and_step(b, tag, &r, NULL, &v, &v, 1),
		     -ENAMETOOLONG);
	cr_assert_eq(sb_bridge_store_with_stats_and_step(b, "", &r, NULL, &v, &v, 1), -EINVAL);
	cr_assert_eq(sb_bridge_store_with_stats(b, NULL, &r, NULL, &v), -EINVAL);
	cr_assert_eq(sb_bridge_store_with_stats(b, "a", NULL, NULL, &v), -EINVAL);
	expect_unchanged(b, "a");
	sb_bridge_destroy(b);
}

Test(bridge_errors, rejected_overwrite_keeps_prior_report_and_position, .timeout = 10)
{
	struct sb_bridge *b = validating_bridge_with_keep();
	fx_store(b, "other", "s", FX_DOC_HI, sizeof(FX_DOC_HI));
	static const uint8_t bad[] = { 0xc1 };
	struct sb_report r = fx_report("s9", true, bad, sizeof(bad));
	expect_store_fails(b, "keep", &r, -EINVAL);
	cr_assert_eq(fx_event_count(b), 0, "a rejected overwrite raised an Overwrite event");
	cr_assert_eq(fx_len(b), 2);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	const char *want[] = { "keep", "other" };
	fx_expect_order(&e, want, 2);
	cr_assert_str_eq(e.items[0].schema, "s1");
	cr_assert_not(e.items[0].placeholder);
	fx_expect_report(&e.items[0], FX_DOC_HI, sizeof(FX_DOC_HI));
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_errors, capture_rejects_bad_tag_and_records_nothing, .timeout = 10)
{
	struct sb_bridge *b = bridge_with_keep();
	bool stored = true;
	char tag[SB_TAG_MAX + 2];
	memset(tag, 'z', SB_TAG_MAX + 1);
	tag[SB_TAG_MAX + 1] = '\0';
	cr_assert_eq(sb_bridge_capture(b, "", &stored), -EINVAL);
	cr_assert_eq(sb_bridge_capture(b, NULL, &stored), -EINVAL);
	cr_assert_eq(sb_bridge_capture(b, tag, &stored), -ENAMETOOLONG);
	cr_assert_eq(sb_bridge_capture_with_step(b, tag, 1, &stored), -ENAMETOOLONG);
	expect_unchanged(b, NULL);
	sb_bridge_destroy(b);
}
