/*
 * Consumer drains: FIFO order, the five-way accounting, all-versions
 * mode, per-consumer event truncation, torn records.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../coordinator/bridge_internal.h"
#include "testutil.h"

struct seen {
	size_t n;
	char tags[256][SB_TAG_MAX + 1];
	uint64_t seqs[256];
	uint64_t seeds[256];
	int bad_payloads;
};

static int collect(void *user, const struct sb_entry *e)
{
	struct seen *s = user;
	uint64_t seed = 0;

	if (tu_report_check(e->report, e->report_len, &seed) != 0)
		s->bad_payloads++;
	if (s->n < 256) {
		strcpy(s->tags[s->n], e->tag);
		s->seqs[s->n] = e->store_seq;
		s->seeds[s->n] = seed;
	}
	s->n++;
	return 0;
}

static struct sb_bridge *bridge;
static struct sb_consumer *consumer;
static uint8_t reportbuf[300 << 10];

static void store(const char *tag, size_t n, uint64_t seed)
{
	struct sb_report r = { .schema = "s", .msgpack = reportbuf };

	r.msgpack_len = tu_report(reportbuf, n, seed);
	cr_assert_eq(sb_bridge_store(bridge, tag, &r), 0, "store %s: %s", tag, sb_last_error());
}

static void open_consumer(uint32_t flags)
{
	int fd;

	cr_assert_eq(sb_bridge_data_fd(bridge, &fd), 0);
	cr_assert_eq(sb_consumer_open_fd(fd, flags, &consumer), 0, "%s", sb_last_error());
	close(fd);
}

static void setup(uint32_t cap, uint32_t events, uint64_t log_bytes)
{
	struct sb_config cfg;

	tu_config(&cfg, cap, events, log_bytes);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &bridge), 0, "%s", sb_last_error());
}

static void teardown(void)
{
	sb_consumer_close(consumer);
	sb_bridge_destroy(bridge);
	consumer = NULL;
	bridge = NULL;
}

static void assert_adds_up(const struct sb_drain_counts *d, uint64_t stores)
{
	cr_assert_eq(d->stores, stores);
	cr_assert_eq(d->delivered + d->superseded + d->evicted + d->lapped + d->torn, d->stores,
		     "%llu + %llu + %llu + %llu + %llu != %llu", (unsigned long long)d->delivered,
		     (unsigned long long)d->superseded, (unsigned long long)d->evicted,
		     (unsigned long long)d->lapped, (unsigned long long)d->torn,
		     (unsigned long long)d->stores);
}

Test(consumer, delivers_resident_records_in_fifo_order_and_counts_superseded, .timeout = 10,
     .fini = teardown)
{
	struct seen s = { 0 };
	struct sb_drain_counts d;

	setup(8, 64, SB_LOG_BYTES_MIN);
	open_consumer(0);
	store("a", 100, 1);
	store("b", 100, 2);
	store("c", 100, 3);
	store("a", 100, 4); /* supersedes store 1, moves a to the back */
	cr_assert_eq(sb_consumer_drain(consumer, collect, &s, &d), 0, "%s", sb_last_error());
	assert_adds_up(&d, 4);
	cr_assert_eq(d.delivered, 3);
	cr_assert_eq(d.superseded, 1);
	cr_assert_eq(s.n, 3);
	cr_assert_str_eq(s.tags[0], "b");
	cr_assert_str_eq(s.tags[1], "c");
	cr_assert_str_eq(s.tags[2], "a");
	cr_assert_eq(s.seeds[2], 4, "the newest version of a is delivered");
	cr_assert_eq(s.bad_payloads, 0);
	uint64_t cursor;
	sb_consumer_cursor(consumer, &cursor);
	cr_assert_eq(cursor, 4);
}

Test(consumer, all_versions_mode_delivers_every_stored_version, .timeout = 10, .fini = teardown)
{
	struct seen s = { 0 };
	struct sb_drain_counts d;

	setup(2, 64, SB_LOG_BYTES_MIN);
	open_consumer(SB_CONSUMER_ALL_VERSIONS);
	store("a", 64, 1);
	store("a", 64, 2);
	store("b", 64, 3);
	store("c", 64, 4); /* evicts a at the cap */
	cr_assert_eq(sb_consumer_drain(consumer, collect, &s, &d), 0);
	assert_adds_up(&d, 4);
	cr_assert_eq(d.delivered, 4);
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(s.seqs[i], i + 1, "store order");
}

Test(consumer, cap_eviction_before_read_counts_as_evicted, .timeout = 10, .fini = teardown)
{
	struct sb_drain_counts d;
	struct seen s = { 0 };

	setup(2, 64, SB_LOG_BYTES_MIN);
	open_consumer(0);
	store("a", 64, 1);
	store("b", 64, 2);
	store("c", 64, 3);
	cr_assert_eq(sb_consumer_drain(consumer, collect, &s, &d), 0);
	assert_adds_up(&d, 3);
	cr_assert_eq(d.evicted, 1);
	cr_assert_eq(d.delivered, 2);
	cr_assert_str_eq(s.tags[0], "b");
}

Test(consumer, coordinator_drain_removes_records_for_consumers, .timeout = 10, .fini = teardown)
{
	struct sb_drain_counts d;
	struct sb_entries e;

	setup(8, 64, SB_LOG_BYTES_MIN);
	open_consumer(0);
	store("a", 64, 1);
	store("b", 64, 2);
	cr_assert_eq(sb_bridge_drain_ordered(bridge, &e), 0);
	cr_assert_eq(e.count, 2);
	sb_entries_free(&e);
	cr_assert_eq(sb_consumer_drain(consumer, NULL, NULL, &d), 0);
	assert_adds_up(&d, 2);
	cr_assert_eq(d.evicted, 2,
		     "drained records are gone for a consumer that had not read them");
}

Test(consumer, lapped_records_are_counted_exactly_and_never_delivered, .timeout = 10,
     .fini = teardown)
{
	struct seen s = { 0 };
	struct sb_drain_counts d;
	char tag[16];

	/* 64 KiB log, 10 KiB records: the writer reuses bytes after about 6 stores. */
	setup(64, 64, SB_LOG_BYTES_MIN);
	open_consumer(0);
	for (int i = 0; i < 20; i++) {
		snprintf(tag, sizeof(tag), "t%d", i);
		store(tag, 10 << 10, (uint64_t)i + 100);
	}
	cr_assert_eq(sb_consumer_drain(consumer, collect, &s, &d), 0, "%s", sb_last_error());
	assert_adds_up(&d, 20);
	cr_assert_gt(d.lapped, 0);
	cr_assert_eq(d.delivered, 20 - d.lapped - d.evicted);
	cr_assert_eq(s.bad_payloads, 0);
	/* What survived is the newest stores, each with its own payload. */
	for (size_t i = 0; i < s.n; i++)
		cr_assert_eq(s.seeds[i], s.seqs[i] - 1 + 100);
	cr_assert_eq(s.seqs[s.n - 1], 20);
}

Test(consumer, start_at_end_skips_history, .timeout = 10, .fini = teardown)
{
	struct seen s = { 0 };
	struct sb_drain_counts d;

	setup(8, 64, SB_LOG_BYTES_MIN);
	store("old", 64, 1);
	open_consumer(SB_CONSUMER_START_AT_END);
	store("new", 64, 2);
	cr_assert_eq(sb_consumer_drain(consumer, collect, &s, &d), 0);
	assert_adds_up(&d, 1);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.tags[0], "new");
}

Test(consumer, each_consumer_sees_event_truncation_with_exact_count, .timeout = 10,
     .fini = teardown)
{
	struct sb_events ev;

	setup(8, 4, SB_LOG_BYTES_MIN);
	open_consumer(0);
	for (int i = 0; i < 10; i++)
		store("same", 64, (uint64_t)i); /* 9 Overwrite events into a 4-slot ring */
	cr_assert_eq(sb_consumer_drain_events(consumer, &ev), 0);
	cr_assert_eq(ev.count, 5);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(ev.items[i].kind, SB_EVENT_OVERWRITE);
		cr_assert_eq(ev.items[i].seq, (uint64_t)(6 + i));
	}
	cr_assert_eq(ev.items[4].kind, SB_EVENT_LOG_TRUNCATED);
	cr_assert_eq(ev.items[4].count, 5);
	sb_events_free(&ev);
	cr_assert_eq(sb_consumer_drain_events(consumer, &ev), 0);
	cr_assert_eq(ev.count, 0, "a second drain has nothing new and no marker");
	sb_events_free(&ev);
	/* The coordinator's own event view is independent of the consumer's. */
	size_t n;
	sb_bridge_event_count(bridge, &n);
	cr_assert_eq(n, 4);
}

Test(consumer, unfinished_record_waits_for_live_writer_and_is_torn_when_writer_gone, .timeout = 10,
     .fini = teardown)
{
	struct seen s = { 0 };
	struct sb_drain_counts d;

	setup(8, 64, SB_LOG_BYTES_MIN);
	open_consumer(0);
	store("a", 64, 1);
	store("b", 64, 2);
	store("c", 64, 3);
	/* Make store 2 look as if its writer died mid-copy. */
	struct sb_rec *rec = sb__log_rec(&bridge->log, bridge->slots[1].record_pos);
	cr_assert_eq(rec->seq, 2);
	rec->commit = SB_REC_BUSY;

	cr_assert_eq(sb_consumer_drain(consumer, collect, &s, &d), 0);
	assert_adds_up(&d, 1);
	cr_assert_eq(s.n, 1, "the drain stops at a record a live writer is still writing");

	sb_consumer_set_writer_gone(consumer, true);
	cr_assert_eq(sb_consumer_drain(consumer, collect, &s, &d), 0);
	assert_adds_up(&d, 2);
	cr_assert_eq(d.torn, 1);
	cr_assert_eq(d.delivered, 1);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.tags[1], "c", "the torn record is skipped, never delivered");
	rec->commit = SB_REC_COMMITTED; /* let destroy-time code see a sane log */
}

Test(consumer, resident_index_is_readable_by_consumers, .timeout = 10, .fini = teardown)
{
	size_t n;
	bool has;

	setup(2, 64, SB_LOG_BYTES_MIN);
	open_consumer(0);
	store("a", 64, 1);
	store("b", 64, 2);
	store("c", 64, 3);
	cr_assert_eq(sb_consumer_len(consumer, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(sb_consumer_has(consumer, "a", &has), 0);
	cr_assert_not(has, "a was evicted");
	cr_assert_eq(sb_consumer_has(consumer, "c", &has), 0);
	cr_assert(has);
}

Test(consumer, start_at_end_consumer_lapped_before_its_first_read_accounts_every_store,
     .timeout = 10, .fini = teardown)
{
	struct sb_drain_counts d;
	char tag[16];

	setup(64, 64, SB_LOG_BYTES_MIN);
	store("history", 64, 1);
	open_consumer(SB_CONSUMER_START_AT_END);
	for (int i = 0; i < 100; i++) { /* 100 x 2 KiB through a 64 KiB log */
		snprintf(tag, sizeof(tag), "t%d", i);
		store(tag, 2048, (uint64_t)i);
	}
	cr_assert_eq(sb_consumer_drain(consumer, NULL, NULL, &d), 0, "%s", sb_last_error());
	assert_adds_up(&d, 100);
	cr_assert_gt(d.lapped, 0);
}

Test(consumer, header_scribbled_after_attach_does_not_change_what_the_consumer_reads, .timeout = 10,
     .fini = teardown)
{
	struct seen s = { 0 };
	struct sb_drain_counts d;

	setup(8, 64, SB_LOG_BYTES_MIN);
	open_consumer(0);
	store("a", 64, 1);
	/* The writer may scribble its header after a consumer validated it. */
	bridge->hdr->log_bytes = 0;
	bridge->hdr->max_snapshots = 1u << 30;
	bridge->hdr->sections[SB_SEC_LOG].offset = 1ull << 40;
	cr_assert_eq(sb_consumer_drain(consumer, collect, &s, &d), 0);
	cr_assert_eq(d.delivered, 1);
	size_t n;
	cr_assert_eq(sb_consumer_len(consumer, &n), 0);
	cr_assert_eq(n, 1);
}

Test(consumer, missing_reason_with_huge_container_counts_is_refused_without_allocating,
     .timeout = 10, .fini = teardown)
{
	char reason[400];
	struct sb_report r = { .msgpack = reportbuf };
	struct sb_drain_counts d;

	/*
	 * 2 GiB of address space: msgpack-c reserving 48 bytes per declared item
	 * would fail. Under ASan (which maps terabytes of shadow up front) its
	 * allocator's own size limit aborts such a request instead.
	 */
#ifndef __SANITIZE_ADDRESS__
	struct rlimit lim = { 2ull << 30, 2ull << 30 };
	cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
#endif
	setup(8, 64, SB_LOG_BYTES_MIN);
	open_consumer(0);
	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	struct sb_stats st = { .kind = SB_STATS_MISSING,
			       .missing = { .kind = SB_MISSING_NO_SCHEDULER, .text = reason } };
	r.msgpack_len = tu_report(reportbuf, 16, 1);
	cr_assert_eq(sb_bridge_store_with_stats(bridge, "a", &r, &st, NULL), 0);

	/* Replace the encoded reason with 32 nested map32 headers of 2^28 pairs each. */
	struct sb_rec *rec = sb__log_rec(&bridge->log, bridge->slots[0].record_pos);
	uint8_t *stats = (uint8_t *)(rec + 1) + rec->tag_len + rec->schema_len + rec->report_len;
	memset(stats, 0xc0, rec->stats_len);
	for (int i = 0; i < 32; i++)
		memcpy(stats + 5 * i, "\xdf\x10\x00\x00\x00", 5);
	cr_assert_eq(sb_consumer_drain(consumer, NULL, NULL, &d), -EBADMSG);
	/* Refused by the bounded pre-check, before msgpack-c could reserve anything. */
	cr_assert(strstr(sb_last_error(), "not a bounded msgpack map"), "message: %s",
		  sb_last_error());
}

/*
 * Report bytes are the caller's to interpret: a default consumer hands over
 * what the coordinator stored, one with SB_CONSUMER_VALIDATE_MSGPACK refuses
 * a report (or stats) that is not exactly one msgpack object, and leaves its
 * cursor and counts where they were.
 */
static void store_bytes(const char *tag, const uint8_t *bytes, size_t n, bool as_stats)
{
	static const uint8_t one = 0x01;
	struct sb_report r = { .schema = "s", .msgpack = as_stats ? &one : bytes };
	struct sb_stats st = { .kind = SB_STATS_OK, .msgpack = bytes, .msgpack_len = n };

	r.msgpack_len = as_stats ? 1 : n;
	cr_assert_eq(sb_bridge_store_with_stats(bridge, tag, &r, as_stats ? &st : NULL, NULL), 0,
		     "%s", sb_last_error());
}

static int take_report(void *user, const struct sb_entry *e)
{
	struct seen *s = user;

	memcpy(s->tags[s->n % 256], e->report, e->report_len < 8 ? e->report_len : 8);
	s->n++;
	return 0;
}

Test(consumer, default_consumer_delivers_report_bytes_as_stored, .timeout = 10, .fini = teardown)
{
	static const uint8_t not_msgpack[] = { 0xc1, 0xff, 0x00 };
	struct seen s = { 0 };
	struct sb_drain_counts d;

	setup(8, 64, SB_LOG_BYTES_MIN);
	open_consumer(0);
	store_bytes("a", not_msgpack, sizeof(not_msgpack), false);
	store_bytes("b", not_msgpack, sizeof(not_msgpack), true);
	cr_assert_eq(sb_consumer_drain(consumer, take_report, &s, &d), 0, "%s", sb_last_error());
	cr_assert_eq(d.delivered, 2);
	cr_assert_eq(memcmp(s.tags[0], not_msgpack, sizeof(not_msgpack)), 0);
}

Test(consumer, validating_consumer_refuses_report_or_stats_that_is_not_msgpack, .timeout = 10,
     .fini = teardown)
{
	static const uint8_t truncated[] = { 0xc4, 0x05, 0x01 }; /* bin of 5, 1 given */
	static const uint8_t doc[] = { 0x81, 0xa1, 'k', 0x02 };
	struct seen s = { 0 };
	struct sb_drain_counts d;
	uint64_t cursor;

	setup(8, 64, SB_LOG_BYTES_MIN);
	open_consumer(SB_CONSUMER_VALIDATE_MSGPACK);
	store_bytes("ok", doc, sizeof(doc), false);
	store_bytes("bad", truncated, sizeof(truncated), false);
	cr_assert_eq(sb_consumer_drain(consumer, take_report, &s, &d), -EBADMSG);
	cr_assert(strstr(sb_last_error(), "invalid msgpack"), "message: %s", sb_last_error());
	cr_assert_eq(s.n, 1, "the record before the bad one was delivered");
	cr_assert_eq(sb_consumer_cursor(consumer, &cursor), 0);
	cr_assert_eq(cursor, 1, "the bad record moved the cursor");
	cr_assert_eq(sb_consumer_drain(consumer, take_report, &s, &d), -EBADMSG,
		     "the next drain meets the same record");
	cr_assert_eq(d.stores, 0);

	sb_consumer_close(consumer);
	sb_bridge_destroy(bridge);
	setup(8, 64, SB_LOG_BYTES_MIN);
	open_consumer(SB_CONSUMER_VALIDATE_MSGPACK);
	store_bytes("st", truncated, sizeof(truncated), true);
	cr_assert_eq(sb_consumer_drain(consumer, NULL, NULL, &d), -EBADMSG, "bad stats passed");
}

Test(consumer, default_log_holds_the_cap_of_256_kib_reports_without_byte_eviction, .timeout = 30,
     .fini = teardown)
{
	struct seen s = { 0 };
	struct sb_drain_counts d;
	char tag[16];

	cr_assert_eq(sb_bridge_create(NULL, NULL, &bridge), 0);
	open_consumer(0);
	/* Twice the cap of full-size reports, with schema and missing stats. */
	for (int i = 0; i < 2 * SB_DEFAULT_MAX_SNAPSHOTS; i++) {
		struct sb_report r = { .schema = "dump.v1", .msgpack = reportbuf };
		struct sb_stats st = { .kind = SB_STATS_MISSING,
				       .missing = { .kind = SB_MISSING_DURING_FREEZE } };

		r.msgpack_len = tu_report(reportbuf, 256 << 10, (uint64_t)i);
		snprintf(tag, sizeof(tag), "periodic_%03d", i);
		cr_assert_eq(sb_bridge_store_with_stats(bridge, tag, &r, &st, NULL), 0);
	}
	cr_assert_eq(sb_consumer_drain(consumer, collect, &s, &d), 0);
	assert_adds_up(&d, 2 * SB_DEFAULT_MAX_SNAPSHOTS);
	cr_assert_eq(d.delivered, SB_DEFAULT_MAX_SNAPSHOTS, "the newest 64 are all resident");
	cr_assert_eq(d.evicted + d.lapped, SB_DEFAULT_MAX_SNAPSHOTS,
		     "the older ones were evicted at the cap (some bytes since reused)");
	cr_assert_eq(s.bad_payloads, 0);

	struct sb_events ev;
	cr_assert_eq(sb_bridge_drain_events(bridge, &ev), 0);
	for (size_t i = 0; i < ev.count; i++)
		cr_assert_neq(ev.items[i].cause, SB_EVICT_BYTES,
			      "a cap's worth of 256 KiB reports fits the default log");
	sb_events_free(&ev);
}
