/*
 * test_periodic.c - the strict periodic_NNN tag matcher and the
 * periodic_real_count floor built on it.
 */
#include "bridge_fixtures.h"

#include <snapbridge/types.h>

/* ------------------------------------------------------------ matcher */

Test(periodic, is_periodic_accepts_canonical_three_digit_index, .timeout = 10)
{
	cr_assert(sb_tag_is_periodic("periodic_000"));
	cr_assert(sb_tag_is_periodic("periodic_007"));
	cr_assert(sb_tag_is_periodic("periodic_123"));
	cr_assert(sb_tag_is_periodic("periodic_999"));
}

Test(periodic, is_periodic_rejects_user_tag_collisions, .timeout = 10)
{
	static const char *const rejected[] = {
		"periodic_kaslr",
		"periodic_user_baseline",
		"periodic_",
		"periodic_1",
		"periodic_12",
		"periodic_1234",
		"periodic_00a",
		"periodic_007 ",
		"PERIODIC_000",
		"capture_my_thing",
		"",
		"periodic",
	};
	for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++)
		cr_assert_not(sb_tag_is_periodic(rejected[i]), "\"%s\" accepted as periodic",
			      rejected[i]);
}

Test(periodic, is_periodic_rejects_near_misses_around_the_digits, .timeout = 10)
{
	static const char *const rejected[] = {
		" periodic_000", "xperiodic_000",
		"periodic-000",	 "Periodic_000",
		"periodic__00",	 "periodic_-01",
		"periodic_+01",	 "periodic_0 1",
		"periodic_1e2",	 "periodic_\xd9\xa1\xd9\xa2", /* non-ASCII digits */
	};
	for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++)
		cr_assert_not(sb_tag_is_periodic(rejected[i]), "\"%s\" accepted as periodic",
			      rejected[i]);
}

/* ------------------------------------------------- periodic_real_count */

static void store_tagged(struct sb_bridge *b, const char *tag, bool placeholder)
{
	struct sb_report r = fx_report("single", placeholder, FX_DOC_HI, sizeof(FX_DOC_HI));
	int rc = sb_bridge_store(b, tag, &r);
	cr_assert_eq(rc, 0, "store(%s): %d (%s)", tag, rc, sb_last_error());
}

Test(periodic, periodic_real_count_ignores_user_tag_with_periodic_prefix, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	store_tagged(b, "periodic_000", false);	  /* real periodic capture */
	store_tagged(b, "periodic_kaslr", false); /* real, but a user tag */
	store_tagged(b, "periodic_001", true);	  /* canonical, but a placeholder */
	cr_assert_eq(fx_len(b), 3);
	cr_assert_eq(fx_periodic_real(b), 1,
		     "only periodic_000 counts: periodic_kaslr is a user tag and periodic_001 "
		     "is a placeholder");
	sb_bridge_destroy(b);
}

Test(periodic, periodic_real_count_is_zero_for_new_bridge, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	cr_assert_eq(fx_periodic_real(b), 0);
	sb_bridge_destroy(b);
}

Test(periodic, periodic_real_count_counts_every_real_canonical_tag, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	char tag[16];
	for (int i = 0; i < 10; i++) {
		snprintf(tag, sizeof(tag), "periodic_%03d", i);
		store_tagged(b, tag, i % 3 == 0); /* 0, 3, 6, 9 are placeholders */
	}
	store_tagged(b, "snap", false);
	cr_assert_eq(fx_periodic_real(b), 6);
	sb_bridge_destroy(b);
}

Test(periodic, periodic_real_count_follows_overwrites, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(0, 0, 0);
	store_tagged(b, "periodic_004", true);
	cr_assert_eq(fx_periodic_real(b), 0);
	store_tagged(b, "periodic_004", false); /* a real capture replaces the placeholder */
	cr_assert_eq(fx_periodic_real(b), 1);
	store_tagged(b, "periodic_004", false);
	cr_assert_eq(fx_periodic_real(b), 1, "an overwrite must not count twice");
	store_tagged(b, "periodic_004", true);
	cr_assert_eq(fx_periodic_real(b), 0);
	sb_bridge_destroy(b);
}

Test(periodic, periodic_real_count_drops_evicted_and_drained_tags, .timeout = 10)
{
	struct sb_bridge *b = fx_bridge(2, 0, 0);
	store_tagged(b, "periodic_000", false);
	store_tagged(b, "periodic_001", false);
	cr_assert_eq(fx_periodic_real(b), 2);
	store_tagged(b, "user", false); /* evicts periodic_000 */
	cr_assert_eq(fx_periodic_real(b), 1);
	struct sb_entries e;
	fx_drain(b, FX_DRAIN_ORDERED, &e);
	sb_entries_free(&e);
	cr_assert_eq(fx_periodic_real(b), 0);
	sb_bridge_destroy(b);
}
