/*
 * The reference's defensive paths. They are unreachable through the API,
 * so a test hook desynchronises a record's fate from its slot, the state
 * they exist to survive: nothing may be lost silently, and an event must
 * say what happened.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../coordinator/bridge_internal.h"
#include "testutil.h"

static struct sb_bridge *b;
static uint8_t buf[256];

static void store(const char *tag)
{
	struct sb_report r = { .schema = "v1",
			       .msgpack = buf,
			       .msgpack_len = tu_report(buf, 32, tag[0]) };
	cr_assert_eq(sb_bridge_store(b, tag, &r), 0, "%s", sb_last_error());
}

static void make(uint32_t cap)
{
	struct sb_config cfg;

	tu_config(&cfg, cap, 64, SB_LOG_BYTES_MIN);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0);
}

static void destroy(void)
{
	sb_bridge_destroy(b);
	b = NULL;
}

static const struct sb_event *find_event(const struct sb_events *ev, enum sb_event_kind kind)
{
	for (size_t i = 0; i < ev->count; i++)
		if (ev->items[i].kind == kind)
			return &ev->items[i];
	return NULL;
}

Test(bridge_invariants, drain_ordered_surfaces_unordered_report_at_tail_with_event, .timeout = 10,
     .fini = destroy)
{
	struct sb_entries e;
	struct sb_events ev;

	make(8);
	store("a");
	store("b");
	store("c");
	cr_assert_eq(sb__bridge_debug_desync(b, "a"), 0);
	cr_assert_eq(sb_bridge_drain_ordered(b, &e), 0);
	cr_assert_eq(e.count, 3, "the desynchronised report is not dropped");
	cr_assert_str_eq(e.items[0].tag, "b");
	cr_assert_str_eq(e.items[1].tag, "c");
	cr_assert_str_eq(e.items[2].tag, "a", "it is surfaced at the tail");
	cr_assert_eq(tu_report_check(e.items[2].report, e.items[2].report_len, NULL), 0);
	sb_entries_free(&e);

	cr_assert_eq(sb_bridge_drain_events(b, &ev), 0);
	const struct sb_event *v = find_event(&ev, SB_EVENT_DRAIN_ORDERING_INVARIANT_VIOLATION);
	cr_assert_not_null(v);
	cr_assert_str_eq(v->tag, "a");
	cr_assert_str_eq(v->detail, "drain_ordered");
	sb_events_free(&ev);

	bool empty;
	sb_bridge_is_empty(b, &empty);
	cr_assert(empty);
}

Test(bridge_invariants, drain_ordered_with_stats_names_its_variant_in_the_event, .timeout = 10,
     .fini = destroy)
{
	struct sb_entries e;
	struct sb_events ev;

	make(8);
	store("a");
	store("b");
	cr_assert_eq(sb__bridge_debug_desync(b, "b"), 0);
	cr_assert_eq(sb_bridge_drain_ordered_with_stats(b, &e), 0);
	cr_assert_eq(e.count, 2);
	cr_assert_str_eq(e.items[1].tag, "b");
	cr_assert_eq(e.items[1].stats.kind, SB_STATS_MISSING);
	cr_assert_eq(e.items[1].stats.missing.kind, SB_MISSING_NO_SCHEDULER_BINARY);
	sb_entries_free(&e);
	cr_assert_eq(sb_bridge_drain_events(b, &ev), 0);
	const struct sb_event *v = find_event(&ev, SB_EVENT_DRAIN_ORDERING_INVARIANT_VIOLATION);
	cr_assert_not_null(v);
	cr_assert_str_eq(v->detail, "drain_ordered_with_stats");
	sb_events_free(&ev);
}

Test(bridge_invariants, unordered_drain_returns_everything_without_an_event, .timeout = 10,
     .fini = destroy)
{
	struct sb_entries e;
	size_t n;

	make(8);
	store("a");
	store("b");
	cr_assert_eq(sb__bridge_debug_desync(b, "a"), 0);
	cr_assert_eq(sb_bridge_drain(b, &e), 0);
	cr_assert_eq(e.count, 2);
	sb_entries_free(&e);
	sb_bridge_event_count(b, &n);
	cr_assert_eq(n, 0, "the reference's unordered drain records nothing");
}

Test(bridge_invariants, new_tag_at_cap_with_no_ordered_report_evicts_itself, .timeout = 10,
     .fini = destroy)
{
	struct sb_events ev;
	bool has;

	/*
	 * The reference pushes the new tag onto its order list and then pops the
	 * front: with every older tag missing from the list, that is the new tag.
	 */
	make(2);
	store("a");
	store("b");
	cr_assert_eq(sb__bridge_debug_desync(b, "a"), 0);
	cr_assert_eq(sb__bridge_debug_desync(b, "b"), 0);
	store("c");

	cr_assert_eq(sb_bridge_drain_events(b, &ev), 0);
	const struct sb_event *v = find_event(&ev, SB_EVENT_EVICTION);
	cr_assert_not_null(v);
	cr_assert_str_eq(v->tag, "c");
	cr_assert_str_eq(v->detail, "c");
	cr_assert_eq(v->cap, 2);
	cr_assert_null(find_event(&ev, SB_EVENT_CAP_INVARIANT_VIOLATION));
	sb_events_free(&ev);
	sb_bridge_has(b, "c", &has);
	cr_assert_not(has);
	sb_bridge_has(b, "a", &has);
	cr_assert(has, "the desynchronised reports stay, as in the reference");
	size_t n;
	sb_bridge_len(b, &n);
	cr_assert_eq(n, 2);
}

Test(bridge_invariants, resident_count_over_cap_with_no_order_pops_the_new_tag_then_clears_all,
     .timeout = 10, .fini = destroy)
{
	struct sb_events ev;
	struct sb_entries e;
	bool has;

	/*
	 * The reference inserts c (4 reports against a cap of 2), pops the only
	 * tag in its order list, c itself (Eviction{c, c}), is still over the
	 * cap with an empty order list, and clears everything: c does not
	 * survive either.
	 */
	make(2);
	store("a");
	store("b");
	cr_assert_eq(sb__bridge_debug_desync(b, "a"), 0);
	cr_assert_eq(sb__bridge_debug_desync(b, "b"), 0);
	sb__bridge_debug_inflate_resident(b); /* 3 "resident" against a cap of 2 */
	store("c");

	cr_assert_eq(sb_bridge_drain_events(b, &ev), 0);
	cr_assert_eq(ev.count, 2, "Eviction{c, c}, then CapInvariantViolation");
	cr_assert_eq(ev.items[0].kind, SB_EVENT_EVICTION);
	cr_assert_str_eq(ev.items[0].tag, "c");
	cr_assert_str_eq(ev.items[0].detail, "c");
	cr_assert_eq(ev.items[1].kind, SB_EVENT_CAP_INVARIANT_VIOLATION);
	cr_assert_eq(ev.items[1].count, 3, "reports_len at the bulk clear");
	cr_assert_eq(ev.items[1].cap, 2);
	sb_events_free(&ev);
	for (const char *t = "abc"; *t; t++) {
		char tag[2] = { *t, 0 };
		sb_bridge_has(b, tag, &has);
		cr_assert_not(has, "%s survived the bulk clear", tag);
	}
	cr_assert_eq(sb_bridge_drain_ordered(b, &e), 0);
	cr_assert_eq(e.count, 0, "the new report was popped before the clear");
	sb_entries_free(&e);
}

Test(bridge_invariants, resident_count_over_cap_evicts_from_the_front_until_back_at_cap,
     .timeout = 10, .fini = destroy)
{
	struct sb_events ev;
	bool has;

	/* 3 "resident" (a, b and one that is not there) against a cap of 2: c needs two pops. */
	make(2);
	store("a");
	store("b");
	sb__bridge_debug_inflate_resident(b);
	store("c");

	cr_assert_eq(sb_bridge_drain_events(b, &ev), 0);
	cr_assert_eq(ev.count, 2, "one Eviction per popped tag, and nothing else");
	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(ev.items[i].kind, SB_EVENT_EVICTION);
		cr_assert_str_eq(ev.items[i].tag, i == 0 ? "a" : "b", "FIFO order");
		cr_assert_str_eq(ev.items[i].detail, "c");
		cr_assert_eq(ev.items[i].cause, SB_EVICT_CAP);
	}
	sb_events_free(&ev);
	sb_bridge_has(b, "c", &has);
	cr_assert(has, "the new tag is stored once the count is back at the cap");
	sb_bridge_has(b, "b", &has);
	cr_assert_not(has);
}

Test(bridge_invariants, byte_reclaim_evicts_a_desynchronised_report_instead_of_orphaning_it,
     .timeout = 10, .fini = destroy)
{
	struct sb_entries e;
	static uint8_t big[20 << 10];
	bool has;

	make(8);
	store("a");
	cr_assert_eq(sb__bridge_debug_desync(b, "a"), 0);
	/* 64 KiB log: four 20 KiB stores reclaim a's bytes. */
	for (int i = 0; i < 4; i++) {
		char tag[8];
		struct sb_report r = { .msgpack = big,
				       .msgpack_len =
					   tu_report(big, sizeof(big) - 16, (uint64_t)i) };
		snprintf(tag, sizeof(tag), "big%d", i);
		cr_assert_eq(sb_bridge_store(b, tag, &r), 0);
	}
	sb_bridge_has(b, "a", &has);
	cr_assert_not(has, "a was evicted by bytes, not left pointing at reused bytes");
	cr_assert_eq(sb_bridge_drain_ordered(b, &e), 0);
	for (size_t i = 0; i < e.count; i++)
		cr_assert_eq(tu_report_check(e.items[i].report, e.items[i].report_len, NULL), 0);
	sb_entries_free(&e);
}

Test(bridge_invariants, desync_hook_refuses_a_tag_that_is_not_resident, .timeout = 10,
     .fini = destroy)
{
	make(2);
	cr_assert_eq(sb__bridge_debug_desync(b, "nope"), -ENOENT);
}
