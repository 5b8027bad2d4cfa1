/*
 * Random corruption of a real region: whatever bytes a hostile writer
 * leaves, attaching and draining return an error or a result whose
 * accounting adds up, and never crash or read out of bounds (run this
 * suite under ASan to check the latter).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../ring/layout.h"
#include "testutil.h"

#define ITERATIONS 1500

static uint8_t *base_image;
static size_t image_size;

/* A region with every record shape: stats, missing reasons, overwrites, laps, pads. */
static void build_base(void)
{
	struct sb_config cfg;
	struct sb_bridge *b;
	static uint8_t buf[12 << 10];
	int fd;

	tu_config(&cfg, 8, 8, SB_LOG_BYTES_MIN);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0);
	for (int i = 0; i < 40; i++) {
		char tag[16];
		uint64_t elapsed = (uint64_t)i;
		struct sb_report r = { .schema = "s", .placeholder = i % 7 == 0, .msgpack = buf };
		struct sb_stats ok = { .kind = SB_STATS_OK,
				       .msgpack = "\x81\xa1k\x01",
				       .msgpack_len = 4 };
		struct sb_stats missing = {
			.kind = SB_STATS_MISSING,
			.missing = { .kind = SB_MISSING_SCHEDULER_ERROR, .err = 5, .text = "args" }
		};

		r.msgpack_len = tu_report(buf, (size_t)(i * 997) % (10 << 10) + 16, (uint64_t)i);
		snprintf(tag, sizeof(tag), "t%d", i % 12);
		cr_assert_eq(sb_bridge_store_with_stats_and_step(b, tag, &r, i % 2 ? &ok : &missing,
								 &elapsed, &elapsed, (uint16_t)i),
			     0);
	}
	cr_assert_eq(sb_bridge_data_fd(b, &fd), 0);
	base_image = tu_read_region(fd, &image_size);
	cr_assert_not_null(base_image);
	close(fd);
	sb_bridge_destroy(b);
}

/* A sealed memfd holding image, as a consumer would receive it. */
static int sealed_memfd(const uint8_t *image)
{
	int fd = memfd_create("corrupt", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, image, image_size), (ssize_t)image_size);
	cr_assert_eq(
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL),
	    0);
	return fd;
}

static bool allowed(int rc)
{
	return rc == 0 || rc == -EBADMSG || rc == -EPROTO || rc == -EAGAIN;
}

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

Test(region_corruption, random_bytes_anywhere_never_crash_and_accounting_adds_up, .timeout = 120)
{
	const struct sb_header *h;
	uint8_t *image;
	uint64_t rng = 0x5eed;
	unsigned attached = 0, drained = 0;

	build_base();
	h = (const struct sb_header *)base_image;
	image = malloc(image_size);
	for (int it = 0; it < ITERATIONS; it++) {
		memcpy(image, base_image, image_size);
		/* Aim most flips at the parts readers interpret. */
		const struct sb_section *targets[] = { NULL, &h->sections[SB_SEC_HOT],
						       &h->sections[SB_SEC_INDEX],
						       &h->sections[SB_SEC_LOG],
						       &h->sections[SB_SEC_EVENTS] };
		int flips = 1 + (int)(next(&rng) % 12);
		for (int f = 0; f < flips; f++) {
			const struct sb_section *t = targets[next(&rng) % 5];
			uint64_t off = t ? t->offset + next(&rng) % t->size : next(&rng) % 512;
			image[off] = (uint8_t)next(&rng);
		}

		int fd = sealed_memfd(image);
		struct sb_consumer *c = NULL;
		uint32_t flags = (it % 3 == 0) ? SB_CONSUMER_ALL_VERSIONS : 0;
		int rc = sb_consumer_open_fd(fd, flags, &c);
		close(fd);
		cr_assert(allowed(rc), "iteration %d: open returned %d", it, rc);
		if (rc)
			continue;
		attached++;
		sb_consumer_set_writer_gone(c, it % 2);
		for (int round = 0; round < 2; round++) {
			struct sb_drain_counts d;
			struct sb_events ev;
			size_t n;
			bool has;

			rc = sb_consumer_drain(c, NULL, NULL, &d);
			cr_assert(allowed(rc), "iteration %d: drain returned %d (%s)", it, rc,
				  sb_last_error());
			cr_assert_eq(d.delivered + d.superseded + d.evicted + d.lapped + d.torn,
				     d.stores, "iteration %d: accounting does not add up", it);
			drained += rc == 0;
			rc = sb_consumer_drain_events(c, &ev);
			cr_assert(allowed(rc), "iteration %d: drain_events returned %d", it, rc);
			sb_events_free(&ev);
			cr_assert(allowed(sb_consumer_len(c, &n)));
			cr_assert(allowed(sb_consumer_has(c, "t3", &has)));
		}
		sb_consumer_close(c);
	}
	cr_log_info("%u of %d corrupted regions attached, %u drains succeeded", attached,
		    ITERATIONS, drained);
	/* The flips must leave most regions attachable, or the test exercises nothing. */
	cr_assert_gt(attached, ITERATIONS / 2, "only %u of %d regions attached", attached,
		     ITERATIONS);
	cr_assert_gt(drained, ITERATIONS / 4);
	free(image);
	free(base_image);
}
