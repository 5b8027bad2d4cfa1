/*
 * test_reclaim_overwrite.c - a store that overwrites a tag whose resident
 * record sits at the log's tail and must be reclaimed to make room.
 * Found by tests/tsan/tsan_stress.c: the reclaim took the record for an
 * eviction, unindexed the tag and freed its slot while the store went on
 * to refill that slot, so the tag vanished from has(), len() undercounted,
 * the freed slot was handed to another tag, and the hash table later
 * deleted a node twice.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* Log: 64 KiB. x1 1 KiB, a1 31 KiB, x2 31 KiB, then a2 needs a1's bytes. */
static struct sb_bridge *fill(struct sb_consumer **c)
{
	struct sb_config cfg;
	struct sb_bridge *b;
	static uint8_t buf[32 << 10];
	const struct {
		const char *tag;
		size_t n;
	} stores[] = { { "x", 1 << 10 }, { "a", 31 << 10 }, { "x", 31 << 10 }, { "a", 10 << 10 } };
	int fd;

	tu_config(&cfg, 4, 64, SB_LOG_BYTES_MIN);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0, "%s", sb_last_error());
	cr_assert_eq(sb_bridge_data_fd(b, &fd), 0);
	cr_assert_eq(sb_consumer_open_fd(fd, 0, c), 0, "%s", sb_last_error());
	close(fd);
	for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]); i++) {
		/* Payload sizes leave room for the record header and the tag. */
		struct sb_report r = { .msgpack = buf,
				       .msgpack_len = tu_report(buf, stores[i].n - 256, i + 1) };
		cr_assert_eq(sb_bridge_store(b, stores[i].tag, &r), 0, "store %zu: %s", i,
			     sb_last_error());
	}
	return b;
}

Test(reclaim_overwrite, overwritten_tag_stays_indexed_and_counted, .timeout = 10)
{
	struct sb_consumer *c;
	struct sb_bridge *b = fill(&c);
	size_t len, clen;
	bool has_a, has_x, chas_a;

	cr_assert_eq(sb_bridge_has(b, "a", &has_a), 0);
	cr_assert_eq(sb_bridge_has(b, "x", &has_x), 0);
	cr_assert_eq(sb_bridge_len(b, &len), 0);
	cr_assert(has_a, "the tag just stored must be resident");
	cr_assert(has_x);
	cr_assert_eq(len, 2, "two tags are resident, len() says %zu", len);
	cr_assert_eq(sb_consumer_has(c, "a", &chas_a), 0);
	cr_assert_eq(sb_consumer_len(c, &clen), 0);
	cr_assert(chas_a);
	cr_assert_eq(clen, 2);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(reclaim_overwrite, reclaimed_old_version_is_superseded_not_evicted, .timeout = 10)
{
	struct sb_consumer *c;
	struct sb_bridge *b = fill(&c);
	struct sb_events ev;
	struct sb_drain_counts d;

	cr_assert_eq(sb_bridge_drain_events(b, &ev), 0);
	for (size_t i = 0; i < ev.count; i++)
		cr_assert_neq(ev.items[i].kind, SB_EVENT_EVICTION,
			      "an overwrite must not report an eviction of %s", ev.items[i].tag);
	sb_events_free(&ev);
	/* x1 and a1 were reclaimed before the consumer read them: lapped. */
	cr_assert_eq(tu_drain_to_end(c, NULL, NULL), 0, "%s", sb_last_error());
	cr_assert_eq(sb_consumer_totals(c, &d), 0);
	cr_assert_eq(d.stores, 4);
	cr_assert_eq(d.delivered, 2, "x2 and a2 are resident, delivered %llu",
		     (unsigned long long)d.delivered);
	cr_assert_eq(d.evicted, 0);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

Test(reclaim_overwrite, freed_slot_is_not_shared_by_two_tags, .timeout = 10)
{
	struct sb_consumer *c;
	struct sb_bridge *b = fill(&c);
	static uint8_t buf[64];
	struct sb_report r = { .msgpack = buf, .msgpack_len = tu_report(buf, 16, 9) };
	struct sb_entries en;

	/* New tags take free slots; none may take a's. */
	cr_assert_eq(sb_bridge_store(b, "y", &r), 0, "%s", sb_last_error());
	cr_assert_eq(sb_bridge_store(b, "z", &r), 0, "%s", sb_last_error());
	cr_assert_eq(sb_bridge_drain(b, &en), 0, "%s", sb_last_error());
	cr_assert_eq(en.count, 4, "x, a, y, z are resident; drain returned %zu", en.count);
	bool seen_a = false;
	for (size_t i = 0; i < en.count; i++)
		seen_a |= strcmp(en.items[i].tag, "a") == 0;
	cr_assert(seen_a);
	sb_entries_free(&en);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}
