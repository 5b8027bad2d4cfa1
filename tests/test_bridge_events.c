/*
 * test_bridge_events.c - the bridge's diagnostic events and the capture
 * path: every event the public API can raise with its exact fields, the
 * event cap with its truncation marker, and capture / capture_with_step
 * with their release callback.
 */
#include <unistd.h>

#include <snapbridge/consumer.h>

#include "bridge_fixtures.h"

/* ------------------------------------------------------- capture fixture */

/*
 * A scripted capture callback: returns `ret`, and when ret == 1 fills the
 * report from `doc` (a private heap copy per call, so release can check and
 * scribble on it).
 */
struct capture_script {
	int ret;
	const char *schema;
	bool placeholder;
	const uint8_t *doc;
	size_t doc_len;
	int captures;
	int releases;
	char last_tag[SB_TAG_MAX + 2];
	const void *produced[16];
	int released_matching;
};

static int scripted_capture(void *user, const char *tag, struct sb_report *out)
{
	struct capture_script *s = user;
	s->captures++;
	snprintf(s->last_tag, sizeof(s->last_tag), "%s", tag ? tag : "(null)");
	if (s->ret != 1)
		return s->ret;
	uint8_t *copy = malloc(s->doc_len);
	cr_assert_not_null(copy);
	memcpy(copy, s->doc, s->doc_len);
	if (s->captures <= 16)
		s->produced[s->captures - 1] = copy;
	out->schema = s->schema;
	out->placeholder = s->placeholder;
	out->msgpack = copy;
	out->msgpack_len = s->doc_len;
	return 1;
}

static void scripted_release(void *user, struct sb_report *report)
{
	struct capture_script *s = user;
	s->releases++;
	cr_assert_not_null(report);
	for (int i = 0; i < s->captures && i < 16; i++)
		if (s->produced[i] == report->msgpack) {
			s->released_matching++;
			s->produced[i] = NULL; /* a second release of it will not match */
		}
	/* The bridge copied the report; scribbling on it now must not matter. */
	memset((void *)report->msgpack, 0xee, report->msgpack_len);
	free((void *)report->msgpack);
}

static struct sb_bridge *capture_bridge(struct capture_script *s, uint32_t max_events)
{
	struct sb_bridge_ops ops = {
		.capture = scripted_capture,
		.release = scripted_release,
		.user = s,
	};
	return fx_bridge_ops(0, max_events, 0, &ops);
}

static void expect_single_capture_unavailable(struct sb_bridge *b, const char *tag)
{
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 1, "expected one event, got %zu", ev.count);
	cr_assert_eq(ev.items[0].kind, SB_EVENT_CAPTURE_UNAVAILABLE, "kind %d",
		     (int)ev.items[0].kind);
	cr_assert_str_eq(ev.items[0].tag, tag);
	cr_assert_eq(ev.items[0].seq, 1);
	sb_events_free(&ev);
}

/* ------------------------------------------------ CaptureUnavailable */

Test(bridge_events, capture_returning_zero_records_capture_unavailable, .timeout = 10)
{
	struct capture_script s = { .ret = 0 };
	struct sb_bridge *b = capture_bridge(&s, 0);
	bool stored = true;
	cr_assert_eq(sb_bridge_capture(b, "snap_a", &stored), 0);
	cr_assert_not(stored);
	cr_assert_eq(s.captures, 1);
	cr_assert_str_eq(s.last_tag, "snap_a");
	cr_assert_eq(s.releases, 0, "release called for a capture that produced nothing");
	cr_assert_eq(fx_len(b), 0);
	cr_assert_not(fx_has(b, "snap_a"));
	cr_assert_eq(fx_event_count(b), 1);
	expect_single_capture_unavailable(b, "snap_a");
	sb_bridge_destroy(b);
}

Test(bridge_events, capture_without_callback_records_capture_unavailable, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0); /* ops NULL */
	bool stored = true;
	cr_assert_eq(sb_bridge_capture(b, "snap_a", &stored), 0);
	cr_assert_not(stored);
	cr_assert_eq(fx_len(b), 0);
	expect_single_capture_unavailable(b, "snap_a");
	sb_bridge_destroy(b);
}

Test(bridge_events, capture_with_null_capture_fn_records_capture_unavailable, .timeout = 10)
{
	struct capture_script s = { .ret = 1 };
	struct sb_bridge_ops ops = { .capture = NULL, .release = scripted_release, .user = &s };
	struct sb_bridge *b = fx_bridge_ops(0, 0, 0, &ops);
	bool stored = true;
	cr_assert_eq(sb_bridge_capture_with_step(b, "snap_b", 3, &stored), 0);
	cr_assert_not(stored);
	cr_assert_eq(s.releases, 0);
	cr_assert_eq(fx_len(b), 0);
	expect_single_capture_unavailable(b, "snap_b");
	sb_bridge_destroy(b);
}

Test(bridge_events, capture_returning_other_than_one_counts_as_unavailable, .timeout = 10)
{
	static const int rets[] = { 2, -1, -EIO };
	for (size_t i = 0; i < 3; i++) {
		struct capture_script s = { .ret = rets[i] };
		struct sb_bridge *b = capture_bridge(&s, 0);
		bool stored = true;
		cr_assert_eq(sb_bridge_capture(b, "x", &stored), 0, "callback returned %d",
			     rets[i]);
		cr_assert_not(stored, "callback returned %d", rets[i]);
		cr_assert_eq(fx_len(b), 0);
		cr_assert_eq(s.releases, 0);
		expect_single_capture_unavailable(b, "x");
		sb_bridge_destroy(b);
	}
}

Test(bridge_events, capture_with_step_unavailable_records_capture_unavailable, .timeout = 10)
{
	struct capture_script s = { .ret = 0 };
	struct sb_bridge *b = capture_bridge(&s, 0);
	bool stored = true;
	cr_assert_eq(sb_bridge_capture_with_step(b, "step_snap", 2, &stored), 0);
	cr_assert_not(stored);
	cr_assert_str_eq(s.last_tag, "step_snap");
	expect_single_capture_unavailable(b, "step_snap");
	sb_bridge_destroy(b);
}

/* ------------------------------------------------------- Overwrite */

Test(bridge_events, overwrite_event_carries_tag_and_prior_schema, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	fx_store(b, "dup", "schema/v1", FX_DOC_HI, sizeof(FX_DOC_HI));
	cr_assert_eq(fx_event_count(b), 0);
	fx_store(b, "dup", "schema/v2", FX_DOC_YO, sizeof(FX_DOC_YO));
	fx_store(b, "dup", NULL, FX_DOC_HI, sizeof(FX_DOC_HI));
	fx_store(b, "dup", "schema/v4", FX_DOC_HI, sizeof(FX_DOC_HI));
	cr_assert_eq(fx_event_count(b), 3);
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 3);
	const char *prior[] = { "schema/v1", "schema/v2", "" };
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(ev.items[i].kind, SB_EVENT_OVERWRITE, "event %zu kind %d", i,
			     (int)ev.items[i].kind);
		cr_assert_str_eq(ev.items[i].tag, "dup");
		cr_assert_str_eq(ev.items[i].detail, prior[i],
				 "overwrite %zu: detail \"%s\", expected prior schema \"%s\"", i,
				 ev.items[i].detail, prior[i]);
		cr_assert_eq(ev.items[i].seq, i + 1);
	}
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

Test(bridge_events, overwrite_event_detail_holds_63_byte_prior_schema, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	char schema[SB_SCHEMA_MAX + 1];
	memset(schema, 'q', SB_SCHEMA_MAX);
	schema[SB_SCHEMA_MAX] = '\0';
	fx_store(b, "dup", schema, FX_DOC_HI, sizeof(FX_DOC_HI));
	fx_store(b, "dup", "new", FX_DOC_HI, sizeof(FX_DOC_HI));
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 1);
	cr_assert_str_eq(ev.items[0].detail, schema);
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

/* ------------------------------------------------------- Eviction */

Test(bridge_events, cap_eviction_event_names_evicted_tag_new_tag_cap_and_cause, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(2, 0, 0);
	fx_store_hi(b, "old");
	fx_store_hi(b, "mid");
	fx_store_hi(b, "new");
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 1);
	const struct sb_event *x = &ev.items[0];
	cr_assert_eq(x->kind, SB_EVENT_EVICTION);
	cr_assert_eq(x->seq, 1);
	cr_assert_str_eq(x->tag, "old");
	cr_assert_str_eq(x->detail, "new");
	cr_assert_eq(x->cap, 2);
	cr_assert_eq(x->cause, SB_EVICT_CAP);
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

/* ------------------------------------------------------- causes */

/*
 * Only an Eviction has a cause (cap or bytes); every other kind carries
 * SB_EVICT_NONE, both from the coordinator's drain and from a consumer's.
 */
Test(bridge_events, only_evictions_carry_a_cause, .timeout = 10)
{
	struct capture_script s = { .ret = 0 };
	struct sb_bridge *b = capture_bridge(&s, 0);
	struct sb_consumer *c = NULL;
	struct sb_events ev, cev;
	bool stored;
	int fd;

	cr_assert_eq(sb_bridge_data_fd(b, &fd), 0);
	cr_assert_eq(sb_consumer_open_fd(fd, 0, &c), 0, "%s", sb_last_error());
	close(fd);
	cr_assert_eq(sb_bridge_capture(b, "gone", &stored), 0); /* CaptureUnavailable */
	fx_store_hi(b, "a");
	fx_store_hi(b, "a"); /* Overwrite */
	for (int i = 0; i < SB_DEFAULT_MAX_SNAPSHOTS; i++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "t%d", i);
		fx_store_hi(b, tag); /* the last one evicts "a" by the cap */
	}
	cr_assert_eq(sb_consumer_drain_events(c, &cev), 0, "%s", sb_last_error());
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 3);
	cr_assert_eq(cev.count, 3);
	for (size_t i = 0; i < ev.count; i++) {
		enum sb_evict_cause want =
		    ev.items[i].kind == SB_EVENT_EVICTION ? SB_EVICT_CAP : SB_EVICT_NONE;
		cr_assert_eq(ev.items[i].cause, want, "%s carries cause %d",
			     sb_event_kind_name(ev.items[i].kind), ev.items[i].cause);
		cr_assert_eq(cev.items[i].kind, ev.items[i].kind);
		cr_assert_eq(cev.items[i].cause, want, "a consumer sees %s with cause %d",
			     sb_event_kind_name(cev.items[i].kind), cev.items[i].cause);
	}
	cr_assert_eq(ev.items[0].kind, SB_EVENT_CAPTURE_UNAVAILABLE);
	cr_assert_eq(ev.items[1].kind, SB_EVENT_OVERWRITE);
	cr_assert_eq(ev.items[2].kind, SB_EVENT_EVICTION);
	sb_events_free(&ev);
	sb_events_free(&cev);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

/* ------------------------------------------------------- sequencing */

Test(bridge_events, events_drain_in_order_with_consecutive_one_based_seq, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(1, 0, 0);
	bool stored;
	cr_assert_eq(sb_bridge_capture(b, "gone", &stored), 0); /* 1: CaptureUnavailable */
	fx_store_hi(b, "a");
	fx_store_hi(b, "a"); /* 2: Overwrite */
	fx_store_hi(b, "b"); /* 3: Eviction of a */
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 3);
	cr_assert_eq(ev.items[0].kind, SB_EVENT_CAPTURE_UNAVAILABLE);
	cr_assert_eq(ev.items[1].kind, SB_EVENT_OVERWRITE);
	cr_assert_eq(ev.items[2].kind, SB_EVENT_EVICTION);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(ev.items[i].seq, i + 1, "event %zu seq %llu", i,
			     (unsigned long long)ev.items[i].seq);
	sb_events_free(&ev);
	/* The sequence is the bridge's history: it goes on after a drain. */
	cr_assert_eq(sb_bridge_capture(b, "gone2", &stored), 0);
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 1);
	cr_assert_eq(ev.items[0].seq, 4);
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

Test(bridge_events, drain_events_empties_the_log, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	bool stored;
	cr_assert_eq(sb_bridge_capture(b, "x", &stored), 0);
	cr_assert_eq(sb_bridge_capture(b, "y", &stored), 0);
	cr_assert_eq(fx_event_count(b), 2);
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 2);
	sb_events_free(&ev);
	cr_assert_eq(fx_event_count(b), 0);
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 0, "second drain returned %zu events", ev.count);
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

Test(bridge_events, report_drains_leave_events_alone, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	fx_store_hi(b, "a");
	fx_store_hi(b, "a");
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	sb_entries_free(&e);
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	sb_entries_free(&e);
	fx_drain(b, FX_DRAIN, &e);
	sb_entries_free(&e);
	cr_assert_eq(fx_event_count(b), 1, "a report drain consumed or added events");
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 1);
	cr_assert_eq(ev.items[0].kind, SB_EVENT_OVERWRITE);
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

/* ------------------------------------------------------- event cap */

static void raise_unavailable(struct sb_bridge *b, int from, int to)
{
	char tag[16];
	bool stored;
	for (int i = from; i < to; i++) {
		snprintf(tag, sizeof(tag), "e%d", i);
		cr_assert_eq(sb_bridge_capture(b, tag, &stored), 0);
		cr_assert_not(stored);
	}
}

Test(bridge_events, event_cap_keeps_newest_and_appends_truncation_marker_last, .timeout = 10)
{
	enum { N = 4, K = 3 };
	struct sb_bridge *b = fx_bridge(0, N, 0);
	raise_unavailable(b, 0, N + K);
	cr_assert_eq(fx_event_count(b), N, "event_count must stop at the cap");
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, N + 1, "expected %d newest events + marker, got %zu", N, ev.count);
	for (int i = 0; i < N; i++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "e%d", K + i);
		cr_assert_eq(ev.items[i].kind, SB_EVENT_CAPTURE_UNAVAILABLE);
		cr_assert_str_eq(ev.items[i].tag, tag, "retained event %d is %s, expected %s", i,
				 ev.items[i].tag, tag);
		cr_assert_eq(ev.items[i].seq, (uint64_t)(K + i + 1));
	}
	const struct sb_event *m = &ev.items[N];
	cr_assert_eq(m->kind, SB_EVENT_LOG_TRUNCATED, "last event kind %d", (int)m->kind);
	cr_assert_eq(m->count, K, "marker count %llu, expected %d", (unsigned long long)m->count,
		     K);
	cr_assert_eq(m->seq, 0, "the synthetic marker has seq 0");
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

Test(bridge_events, truncation_counter_resets_after_drain, .timeout = 10)
{
	enum { N = 4 };
	struct sb_bridge *b = fx_bridge(0, N, 0);
	raise_unavailable(b, 0, N + 5);
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, N + 1);
	cr_assert_eq(ev.items[N].kind, SB_EVENT_LOG_TRUNCATED);
	cr_assert_eq(ev.items[N].count, 5);
	sb_events_free(&ev);

	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 0, "drain after a truncated drain must be empty (no marker)");
	sb_events_free(&ev);

	/* Below the cap again: no marker. */
	raise_unavailable(b, 100, 102);
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 2);
	cr_assert_str_eq(ev.items[0].tag, "e100");
	cr_assert_str_eq(ev.items[1].tag, "e101");
	sb_events_free(&ev);

	/* Overflowing again counts only the new drops. */
	raise_unavailable(b, 200, 200 + N + 2);
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, N + 1);
	cr_assert_str_eq(ev.items[0].tag, "e202");
	cr_assert_eq(ev.items[N].kind, SB_EVENT_LOG_TRUNCATED);
	cr_assert_eq(ev.items[N].count, 2);
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

Test(bridge_events, event_count_excludes_truncation_marker, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 2, 0);
	raise_unavailable(b, 0, 2);
	cr_assert_eq(fx_event_count(b), 2);
	raise_unavailable(b, 2, 3); /* drops one */
	cr_assert_eq(fx_event_count(b), 2, "the pending truncation marker is not counted");
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 3);
	cr_assert_eq(ev.items[2].kind, SB_EVENT_LOG_TRUNCATED);
	cr_assert_eq(ev.items[2].count, 1);
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

Test(bridge_events, events_at_exactly_the_cap_have_no_marker, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 3, 0);
	raise_unavailable(b, 0, 3);
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 3);
	for (size_t i = 0; i < ev.count; i++)
		cr_assert_neq(ev.items[i].kind, SB_EVENT_LOG_TRUNCATED);
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

Test(bridge_events, event_cap_of_one_keeps_only_newest_event, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(2, 1, 0);
	bool stored;
	cr_assert_eq(sb_bridge_capture(b, "lost", &stored), 0);
	fx_store_hi(b, "a");
	fx_store_hi(b, "a"); /* Overwrite replaces CaptureUnavailable */
	cr_assert_eq(fx_event_count(b), 1);
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 2);
	cr_assert_eq(ev.items[0].kind, SB_EVENT_OVERWRITE);
	cr_assert_str_eq(ev.items[0].tag, "a");
	cr_assert_eq(ev.items[1].kind, SB_EVENT_LOG_TRUNCATED);
	cr_assert_eq(ev.items[1].count, 1);
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

Test(bridge_events, event_kind_names_are_the_reference_variant_names, .timeout = 10)
{
	cr_assert_str_eq(sb_event_kind_name(SB_EVENT_CAPTURE_UNAVAILABLE), "CaptureUnavailable");
	cr_assert_str_eq(sb_event_kind_name(SB_EVENT_OVERWRITE), "Overwrite");
	cr_assert_str_eq(sb_event_kind_name(SB_EVENT_EVICTION), "Eviction");
	cr_assert_str_eq(sb_event_kind_name(SB_EVENT_DRAIN_ORDERING_INVARIANT_VIOLATION),
			 "DrainOrderingInvariantViolation");
	cr_assert_str_eq(sb_event_kind_name(SB_EVENT_CAP_INVARIANT_VIOLATION),
			 "CapInvariantViolation");
	cr_assert_str_eq(sb_event_kind_name(SB_EVENT_LOG_TRUNCATED), "EventLogTruncated");
}

/* ------------------------------------------------------- capture stores */

Test(bridge_capture, capture_stores_the_callback_report_without_step, .timeout = 10)
{
	struct capture_script s = { .ret = 1,
				    .schema = "cap/v1",
				    .placeholder = true,
				    .doc = FX_DOC_HI,
				    .doc_len = sizeof(FX_DOC_HI) };
	struct sb_bridge *b = capture_bridge(&s, 0);
	bool stored = false;
	cr_assert_eq(sb_bridge_capture(b, "snap", &stored), 0, "%s", sb_last_error());
	cr_assert(stored);
	cr_assert_str_eq(s.last_tag, "snap");
	cr_assert(fx_has(b, "snap"));
	cr_assert_eq(fx_len(b), 1);
	cr_assert_eq(fx_event_count(b), 0);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	cr_assert_eq(e.count, 1);
	cr_assert_str_eq(e.items[0].tag, "snap");
	cr_assert_str_eq(e.items[0].schema, "cap/v1");
	cr_assert(e.items[0].placeholder);
	fx_expect_report(&e.items[0], FX_DOC_HI, sizeof(FX_DOC_HI));
	fx_expect_no_scheduler_binary(&e.items[0]);
	fx_expect_no_meta(&e.items[0]);
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_capture, capture_with_step_stamps_the_step_index, .timeout = 10)
{
	struct capture_script s = {
		.ret = 1, .schema = "cap", .doc = FX_DOC_YO, .doc_len = sizeof(FX_DOC_YO)
	};
	struct sb_bridge *b = capture_bridge(&s, 0);
	bool stored = false;
	cr_assert_eq(sb_bridge_capture_with_step(b, "s7", 7, &stored), 0, "%s", sb_last_error());
	cr_assert(stored);
	cr_assert_eq(sb_bridge_capture_with_step(b, "s0", 0, &stored), 0);
	cr_assert(stored);
	cr_assert_eq(sb_bridge_capture_with_step(b, "smax", UINT16_MAX, &stored), 0);
	cr_assert(stored);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	const char *want[] = { "s7", "s0", "smax" };
	fx_expect_order(&e, want, 3);
	const uint16_t steps[] = { 7, 0, UINT16_MAX };
	for (size_t i = 0; i < 3; i++) {
		cr_assert(e.items[i].meta.has_step, "%s lost its step", e.items[i].tag);
		cr_assert_eq(e.items[i].meta.step_index, steps[i]);
		cr_assert_not(e.items[i].meta.has_elapsed);
		cr_assert_not(e.items[i].meta.has_boundary);
		fx_expect_no_scheduler_binary(&e.items[i]);
		fx_expect_report(&e.items[i], FX_DOC_YO, sizeof(FX_DOC_YO));
	}
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_capture, plain_capture_overwrite_clears_the_step, .timeout = 10)
{
	struct capture_script s = {
		.ret = 1, .schema = "cap", .doc = FX_DOC_HI, .doc_len = sizeof(FX_DOC_HI)
	};
	struct sb_bridge *b = capture_bridge(&s, 0);
	bool stored;
	cr_assert_eq(sb_bridge_capture_with_step(b, "t", 5, &stored), 0);
	cr_assert_eq(sb_bridge_capture(b, "t", &stored), 0);
	cr_assert(stored);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_WITH_STATS, &e);
	cr_assert_eq(e.count, 1);
	cr_assert_not(e.items[0].meta.has_step, "the step of the overwritten capture survived");
	sb_entries_free(&e);
	struct sb_events ev;
	fx_drain_events(b, &ev);
	cr_assert_eq(ev.count, 1);
	cr_assert_eq(ev.items[0].kind, SB_EVENT_OVERWRITE);
	cr_assert_str_eq(ev.items[0].tag, "t");
	cr_assert_str_eq(ev.items[0].detail, "cap");
	sb_events_free(&ev);
	sb_bridge_destroy(b);
}

Test(bridge_capture, release_is_called_once_per_produced_report, .timeout = 10)
{
	struct capture_script s = {
		.ret = 1, .schema = "cap", .doc = FX_DOC_HI, .doc_len = sizeof(FX_DOC_HI)
	};
	struct sb_bridge *b = capture_bridge(&s, 0);
	bool stored;
	cr_assert_eq(sb_bridge_capture(b, "a", &stored), 0);
	cr_assert_eq(s.releases, 1, "release not called right after the store");
	cr_assert_eq(sb_bridge_capture_with_step(b, "b", 1, &stored), 0);
	cr_assert_eq(sb_bridge_capture(b, "a", &stored), 0);
	cr_assert_eq(s.captures, 3);
	cr_assert_eq(s.releases, 3);
	cr_assert_eq(s.released_matching, 3, "release got a report the callback did not produce");
	s.ret = 0;
	cr_assert_eq(sb_bridge_capture(b, "c", &stored), 0);
	cr_assert_not(stored);
	cr_assert_eq(s.releases, 3, "release called for a capture that produced nothing");

	/* release scribbled on and freed each buffer: the stored copies are intact. */
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	const char *want[] = { "b", "a" };
	fx_expect_order(&e, want, 2);
	for (size_t i = 0; i < 2; i++)
		fx_expect_report(&e.items[i], FX_DOC_HI, sizeof(FX_DOC_HI));
	sb_entries_free(&e);
	sb_bridge_destroy(b);
}

Test(bridge_capture, capture_without_release_still_stores, .timeout = 10)
{
	static const uint8_t doc[] = { 0xa3, 'a', 'b', 'c' };
	struct capture_script s = { .ret = 1, .schema = "cap", .doc = doc, .doc_len = sizeof(doc) };
	struct sb_bridge_ops ops = { .capture = scripted_capture, .release = NULL, .user = &s };
	struct sb_bridge *b = fx_bridge_ops(0, 0, 0, &ops);
	bool stored = false;
	cr_assert_eq(sb_bridge_capture(b, "a", &stored), 0);
	cr_assert(stored);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	cr_assert_eq(e.count, 1);
	fx_expect_report(&e.items[0], doc, sizeof(doc));
	sb_entries_free(&e);
	free((void *)s.produced[0]);
	sb_bridge_destroy(b);
}

Test(bridge_capture, capture_of_invalid_report_fails_like_store_and_still_releases, .timeout = 10)
{
	static const uint8_t bad[] = { 0xc1 };
	struct capture_script s = { .ret = 1, .schema = "cap", .doc = bad, .doc_len = sizeof(bad) };
	struct sb_bridge_ops ops = { .capture = scripted_capture, .release = scripted_release, .user = &s };
	struct sb_config cfg;
	struct sb_bridge *b = NULL;
	bool stored = false;

	sb_config_default(&cfg);
	cfg.flags = SB_BRIDGE_VALIDATE_MSGPACK; /* the capture's store checks what it stores */
	cr_assert_eq(sb_bridge_create(&cfg, &ops, &b), 0, "%s", sb_last_error());
	cr_assert_eq(sb_bridge_capture(b, "a", &stored), -EINVAL);
	fx_expect_error_message();
	cr_assert_eq(s.releases, 1, "the produced report was never released");
	cr_assert_eq(fx_len(b), 0);
	cr_assert_not(fx_has(b, "a"));
	cr_assert_eq(fx_event_count(b), 0, "a failed store is not a CaptureUnavailable");
	sb_bridge_destroy(b);
}
