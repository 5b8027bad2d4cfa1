/*
 * The region id and resuming a reader where another stopped (what an
 * exporter restarted after a crash relies on): the id is random, never
 * zero, the same for the bridge and every consumer, and a region without
 * one is refused; sb_consumer_seek and its event and aux siblings pass
 * over what was read before without counting it, count what the writer
 * reclaimed meanwhile as lapped, and refuse a position beyond the writer.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <snapbridge/snapbridge.h>

#include "testutil.h"

static struct sb_bridge *bridge;
static uint8_t reportbuf[8192];

static void setup_bridge(uint32_t cap, uint64_t log_bytes)
{
	struct sb_config cfg;

	tu_config(&cfg, cap, 64, log_bytes);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &bridge), 0, "%s", sb_last_error());
}

static void teardown(void)
{
	sb_bridge_destroy(bridge);
	bridge = NULL;
}

static struct sb_consumer *open_consumer(void)
{
	struct sb_consumer *c;
	int fd;

	cr_assert_eq(sb_bridge_data_fd(bridge, &fd), 0);
	cr_assert_eq(sb_consumer_open_fd(fd, 0, &c), 0, "%s", sb_last_error());
	close(fd);
	return c;
}

/* Store seq with a report seeded by its store_seq (tu_tally checks it). */
static void store_tag(const char *tag, uint64_t seed, size_t n)
{
	struct sb_report r = { .schema = "s", .msgpack = reportbuf };

	r.msgpack_len = tu_report(reportbuf, n, seed);
	cr_assert_eq(sb_bridge_store(bridge, tag, &r), 0, "%s", sb_last_error());
}

static void store_unique(uint64_t from, uint64_t to, size_t n)
{
	char tag[32];

	for (uint64_t i = from; i <= to; i++) {
		snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)i);
		store_tag(tag, i, n);
	}
}

static bool all_zero(const uint8_t *id)
{
	for (int i = 0; i < SB_REGION_ID_BYTES; i++)
		if (id[i])
			return false;
	return true;
}

Test(region_id, is_random_never_zero_and_the_same_for_every_reader, .fini = teardown)
{
	uint8_t a[SB_REGION_ID_BYTES], b[SB_REGION_ID_BYTES], seen[SB_REGION_ID_BYTES];
	struct sb_bridge *other;

	setup_bridge(8, SB_LOG_BYTES_MIN);
	cr_assert_eq(sb_bridge_create(NULL, NULL, &other), 0);
	cr_assert_eq(sb_bridge_region_id(bridge, a), 0);
	cr_assert_eq(sb_bridge_region_id(other, b), 0);
	sb_bridge_destroy(other);
	cr_assert(!all_zero(a) && !all_zero(b));
	cr_assert(memcmp(a, b, sizeof(a)) != 0, "two bridges share a region id");

	struct sb_consumer *c = open_consumer();
	cr_assert_eq(sb_consumer_region_id(c, seen), 0);
	cr_assert(memcmp(a, seen, sizeof(a)) == 0, "the consumer sees another id");
	sb_consumer_close(c);
	cr_assert_eq(sb_consumer_region_id(NULL, seen), -EINVAL);
	cr_assert_eq(sb_bridge_region_id(NULL, seen), -EINVAL);
}

Test(region_id, an_image_without_one_is_refused, .fini = teardown)
{
	char path[] = "/tmp/sb-test-resume-XXXXXX";
	size_t size;
	int fd;

	setup_bridge(8, SB_LOG_BYTES_MIN);
	cr_assert_eq(sb_bridge_data_fd(bridge, &fd), 0);
	uint8_t *copy = tu_read_region(fd, &size);
	close(fd);
	cr_assert_not_null(copy);
	memset(copy + 224, 0, SB_REGION_ID_BYTES); /* the header's region_id */
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, copy, size), (ssize_t)size);
	close(fd);
	free(copy);

	struct sb_consumer *c = NULL;
	int err = sb_consumer_open_image(path, 0, &c);
	unlink(path);
	cr_assert_eq(err, -EBADMSG, "an unstamped region was accepted (%d)", err);
	cr_assert(strstr(sb_last_error(), "region id"), "message: %s", sb_last_error());
}

Test(seek, resumes_after_a_store_and_passes_over_earlier_ones_uncounted, .fini = teardown)
{
	struct tu_tally t = { .contiguous = true };
	struct sb_drain_counts d;
	uint64_t cursor;

	setup_bridge(64, SB_LOG_BYTES_MIN);
	store_unique(1, 10, 100);
	struct sb_consumer *c = open_consumer();
	cr_assert_eq(sb_consumer_seek(c, 4), 0, "%s", sb_last_error());
	t.last_seq = 4;
	cr_assert_eq(tu_drain_to_end(c, tu_tally_entry, &t), 0, "%s", sb_last_error());
	cr_assert_eq(t.delivered, 6, "delivered %llu", (unsigned long long)t.delivered);
	cr_assert_eq(t.bad, 0);
	sb_consumer_totals(c, &d);
	cr_assert_eq(d.stores, 6, "stores before the seek were counted");
	cr_assert_eq(d.lapped, 0);
	sb_consumer_cursor(c, &cursor);
	cr_assert_eq(cursor, 10);

	/* At the newest store: nothing to deliver, later stores come next, totals restart. */
	cr_assert_eq(sb_consumer_seek(c, 10), 0);
	sb_consumer_totals(c, &d);
	cr_assert_eq(d.stores, 0, "the totals did not start again");
	store_unique(11, 12, 100);
	t.last_seq = 10;
	cr_assert_eq(tu_drain_to_end(c, tu_tally_entry, &t), 0);
	cr_assert_eq(t.delivered, 8);
	cr_assert_eq(t.bad, 0);
	sb_consumer_totals(c, &d);
	cr_assert_eq(d.stores, 2);
	sb_consumer_close(c);
}

Test(seek, counts_what_the_writer_reclaimed_meanwhile_as_lapped, .fini = teardown)
{
	struct tu_tally t = { 0 };
	struct sb_drain_counts d;

	/* 64 KiB of log, 4 KiB records: the oldest go long before store 100. */
	setup_bridge(256, SB_LOG_BYTES_MIN);
	store_unique(1, 100, 4000);
	struct sb_consumer *c = open_consumer();
	cr_assert_eq(sb_consumer_seek(c, 3), 0);
	t.last_seq = 3;
	cr_assert_eq(tu_drain_to_end(c, tu_tally_entry, &t), 0, "%s", sb_last_error());
	sb_consumer_totals(c, &d);
	cr_assert_eq(d.stores, 97);
	cr_assert_gt(d.lapped, 0, "nothing counted lapped");
	cr_assert_eq(d.delivered + d.lapped, 97, "delivered %llu lapped %llu",
		     (unsigned long long)d.delivered, (unsigned long long)d.lapped);
	cr_assert_eq(t.bad, 0);
	sb_consumer_close(c);
}

Test(seek, beyond_the_writer_is_refused_and_changes_nothing, .fini = teardown)
{
	struct tu_tally t = { .contiguous = true };
	uint64_t cursor;

	setup_bridge(64, SB_LOG_BYTES_MIN);
	store_unique(1, 5, 100);
	struct sb_consumer *c = open_consumer();
	cr_assert_eq(sb_consumer_seek(c, 6), -ERANGE);
	cr_assert(strstr(sb_last_error(), "newest store is 5"), "%s", sb_last_error());
	cr_assert_eq(sb_consumer_seek_events(c, 1000), -ERANGE);
	cr_assert_eq(sb_consumer_seek_aux(c, 1), -ERANGE);
	sb_consumer_cursor(c, &cursor);
	cr_assert_eq(cursor, 0);
	cr_assert_eq(tu_drain_to_end(c, tu_tally_entry, &t), 0);
	cr_assert_eq(t.delivered, 5, "the refused seek moved the consumer");
	cr_assert_eq(sb_consumer_seek(NULL, 0), -EINVAL);
	sb_consumer_close(c);
}

Test(seek, events_resume_after_the_event_named, .fini = teardown)
{
	struct sb_events evs;
	uint64_t at;

	setup_bridge(2, SB_LOG_BYTES_MIN);
	store_unique(1, 6, 100); /* cap 2: four evictions, events 1..4 */
	struct sb_consumer *c = open_consumer();
	cr_assert_eq(sb_consumer_event_cursor(c, &at), 0);
	cr_assert_eq(at, 0);
	cr_assert_eq(sb_consumer_seek_events(c, 2), 0);
	cr_assert_eq(sb_consumer_drain_events(c, &evs), 0);
	cr_assert_eq(evs.count, 2);
	cr_assert_eq(evs.items[0].seq, 3);
	cr_assert_eq(evs.items[1].seq, 4);
	sb_events_free(&evs);
	cr_assert_eq(sb_consumer_event_cursor(c, &at), 0);
	cr_assert_eq(at, 4);
	sb_consumer_close(c);
}

Test(seek, aux_resumes_after_the_record_named, .fini = teardown)
{
	struct sb_aux_counts a;
	uint64_t at;

	setup_bridge(8, SB_LOG_BYTES_MIN);
	for (uint64_t i = 1; i <= 7; i++)
		cr_assert_eq(tu_aux_put(bridge, i), 0, "%s", sb_last_error());
	struct sb_consumer *c = open_consumer();
	cr_assert_eq(sb_consumer_drain_aux(c, NULL, NULL, &a), 0, "%s", sb_last_error());
	cr_assert_eq(a.records, 7);
	cr_assert_eq(sb_consumer_seek_aux(c, 5), 0);
	cr_assert_eq(sb_consumer_drain_aux(c, NULL, NULL, &a), 0, "%s", sb_last_error());
	cr_assert_eq(a.records, 2);
	cr_assert_eq(a.delivered, 2);
	cr_assert_eq(sb_consumer_aux_totals(c, &a), 0);
	cr_assert_eq(a.records, 2, "the aux totals did not start again");
	cr_assert_eq(sb_consumer_aux_cursor(c, &at), 0);
	cr_assert_eq(at, 7);
	sb_consumer_close(c);
}
