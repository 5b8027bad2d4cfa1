/*
 * The region as untrusted input: descriptors that are not sealed memfds,
 * read-only enforcement, and images whose header or records are corrupt.
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

static struct sb_bridge *bridge;
static int data_fd = -1;
static uint8_t *image;
static size_t image_size;
static char path[] = "/tmp/sb-test-image-XXXXXX";

static void setup(void)
{
	struct sb_config cfg;
	uint8_t buf[512];

	tu_config(&cfg, 8, 16, SB_LOG_BYTES_MIN);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &bridge), 0);
	for (int i = 0; i < 3; i++) {
		char tag[8];
		struct sb_report r = { .msgpack = buf, .msgpack_len = tu_report(buf, 100, i) };
		snprintf(tag, sizeof(tag), "t%d", i);
		cr_assert_eq(sb_bridge_store(bridge, tag, &r), 0);
	}
	cr_assert_eq(sb_bridge_data_fd(bridge, &data_fd), 0);
	image = tu_read_region(data_fd, &image_size);
	cr_assert_not_null(image);
}

static void teardown(void)
{
	free(image);
	if (data_fd >= 0)
		close(data_fd);
	sb_bridge_destroy(bridge);
	unlink(path);
	data_fd = -1;
}

/* Write image (possibly edited) to a temp file and try to open it. */
static int open_image(size_t size, struct sb_consumer **c)
{
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, image, size), (ssize_t)size);
	close(fd);
	return sb_consumer_open_image(path, 0, c);
}

static struct sb_header *hdr(void)
{
	return (struct sb_header *)image;
}

TestSuite(region, .init = setup, .fini = teardown, .timeout = 10);

Test(region, data_fd_cannot_be_mapped_writable_written_or_resealed)
{
	errno = 0;
	void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, data_fd, 0);
	cr_assert_eq(w, MAP_FAILED);
	cr_assert(errno == EACCES || errno == EPERM, "errno %d", errno);

	cr_assert_eq(write(data_fd, "x", 1), -1);
	cr_assert_eq(errno, EBADF);

	void *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, data_fd, 0);
	cr_assert_neq(r, MAP_FAILED);
	cr_assert_eq(mprotect(r, 4096, PROT_READ | PROT_WRITE), -1);
	cr_assert_eq(errno, EACCES);
	munmap(r, 4096);

	cr_assert_eq(fcntl(data_fd, F_ADD_SEALS, F_SEAL_WRITE), -1, "F_SEAL_SEAL is set");
	int seals = fcntl(data_fd, F_GET_SEALS);
	cr_assert_eq(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL | F_SEAL_FUTURE_WRITE),
		     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL | F_SEAL_FUTURE_WRITE);
}

Test(region, unsealed_memfd_is_refused)
{
	struct sb_consumer *c = NULL;
	int fd = memfd_create("unsealed", MFD_CLOEXEC);

	cr_assert_eq(write(fd, image, image_size), (ssize_t)image_size);
	cr_assert_eq(sb_consumer_open_fd(fd, 0, &c), -EPERM);
	cr_assert_null(c);
	cr_assert(strstr(sb_last_error(), "seals"), "message: %s", sb_last_error());
	close(fd);
}

Test(region, pipe_and_closed_descriptors_are_refused)
{
	struct sb_consumer *c = NULL;
	int p[2];

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(sb_consumer_open_fd(p[0], 0, &c), -EBADF);
	close(p[0]);
	close(p[1]);
	cr_assert_eq(sb_consumer_open_fd(p[0], 0, &c), -EBADF);
	cr_assert_eq(sb_consumer_open_fd(-1, 0, &c), -EBADF);
	cr_assert_null(c);
}

Test(region, saved_image_drains_like_the_live_region)
{
	struct sb_consumer *c;
	struct sb_drain_counts d;

	cr_assert_eq(open_image(image_size, &c), 0, "%s", sb_last_error());
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, &d), 0);
	cr_assert_eq(d.delivered, 3);
	cr_assert_eq(d.stores, 3);
	sb_consumer_close(c);
}

Test(region, image_with_wrong_magic_is_refused_naming_the_magic)
{
	struct sb_consumer *c = NULL;

	memcpy(hdr()->magic, "NOTMAGIC", 8);
	cr_assert_eq(open_image(image_size, &c), -EBADMSG);
	cr_assert_null(c);
	cr_assert(strstr(sb_last_error(), "magic"), "message: %s", sb_last_error());
}

Test(region, image_from_another_abi_or_layout_is_refused)
{
	struct sb_consumer *c = NULL;

	hdr()->abi_major = SB_ABI_MAJOR + 1;
	cr_assert_eq(open_image(image_size, &c), -EPROTO);
	cr_assert(strstr(sb_last_error(), "ABI"), "message: %s", sb_last_error());
	hdr()->abi_major = SB_ABI_MAJOR;
	hdr()->layout_hash ^= 1;
	unlink(path);
	strcpy(path, "/tmp/sb-test-image-XXXXXX");
	cr_assert_eq(open_image(image_size, &c), -EPROTO);
	cr_assert(strstr(sb_last_error(), "layout"), "message: %s", sb_last_error());
	cr_assert_null(c);
}

Test(region, truncated_image_is_refused)
{
	struct sb_consumer *c = NULL;

	cr_assert_eq(open_image(image_size - 4096, &c), -EBADMSG);
	cr_assert(strstr(sb_last_error(), "bytes"), "message: %s", sb_last_error());
	cr_assert_null(c);
}

Test(region, section_outside_the_region_is_refused)
{
	struct sb_consumer *c = NULL;

	hdr()->sections[SB_SEC_EVENTS].offset = image_size; /* starts at the very end */
	cr_assert_eq(open_image(image_size, &c), -EBADMSG);
	cr_assert(strstr(sb_last_error(), "event ring"), "message: %s", sb_last_error());
	cr_assert_null(c);
}

Test(region, config_that_disagrees_with_sections_is_refused)
{
	struct sb_consumer *c = NULL;

	hdr()->max_snapshots = 1000; /* the index section is sized for 8 */
	cr_assert_eq(open_image(image_size, &c), -EBADMSG);
	cr_assert(strstr(sb_last_error(), "slot index"), "message: %s", sb_last_error());
}

Test(region, record_length_crossing_its_section_is_an_error_not_a_crash)
{
	struct sb_consumer *c = NULL;
	struct sb_drain_counts d;
	struct sb_rec *rec = (struct sb_rec *)(image + hdr()->sections[SB_SEC_LOG].offset);

	rec->len = 0x7fffffc0; /* far past the log and the head */
	cr_assert_eq(open_image(image_size, &c), 0);
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, &d), -EBADMSG);
	cr_assert(strstr(sb_last_error(), "corrupt"), "message: %s", sb_last_error());
	cr_assert_eq(d.delivered, 0);
	sb_consumer_close(c);
}

Test(region, record_field_lengths_crossing_the_record_are_an_error)
{
	struct sb_consumer *c = NULL;
	struct sb_rec *rec = (struct sb_rec *)(image + hdr()->sections[SB_SEC_LOG].offset);

	rec->report_len = 1u << 20; /* more than the 192-byte record holds */
	cr_assert_eq(open_image(image_size, &c), 0);
	cr_assert_eq(sb_consumer_drain(c, NULL, NULL, NULL), -EBADMSG);
	cr_assert(strstr(sb_last_error(), "malformed"), "message: %s", sb_last_error());
	sb_consumer_close(c);
}

Test(region, missing_image_file_is_reported)
{
	struct sb_consumer *c = NULL;

	cr_assert_eq(sb_consumer_open_image("/nonexistent/snapbridge.img", 0, &c), -ENOENT);
	cr_assert(strstr(sb_last_error(), "/nonexistent/snapbridge.img"));
}

static struct sb_hot *hot(void)
{
	return (struct sb_hot *)(image + hdr()->sections[SB_SEC_HOT].offset);
}

Test(region, event_sequence_near_two_to_the_64_neither_wraps_nor_overflows)
{
	struct sb_consumer *c = NULL;
	struct sb_events ev;

	hot()->event_seq = UINT64_MAX;
	int fd = mkstemp(path);
	cr_assert_eq(write(fd, image, image_size), (ssize_t)image_size);
	close(fd);
	cr_assert_eq(sb_consumer_open_image(path, SB_CONSUMER_START_AT_END, &c), 0);
	cr_assert_eq(sb_consumer_drain_events(c, &ev), 0);
	cr_assert_eq(ev.count, 0);
	sb_events_free(&ev);
	sb_consumer_close(c);

	cr_assert_eq(sb_consumer_open_image(path, 0, &c), 0);
	cr_assert_eq(sb_consumer_drain_events(c, &ev), -EPROTO, "2^64 - 1 events since 0");
	cr_assert(strstr(sb_last_error(), "event sequence"), "message: %s", sb_last_error());
	sb_consumer_close(c);
}

Test(region, head_far_beyond_the_ring_is_bounded_work_not_a_hang)
{
	struct sb_consumer *c = NULL;
	struct sb_drain_counts d;
	const struct sb_section *log = &hdr()->sections[SB_SEC_LOG];

	/* A log full of committed 64-byte pads and a head 2^62 bytes away. */
	for (uint64_t off = 0; off < log->size; off += 64) {
		struct sb_rec *r = (struct sb_rec *)(image + log->offset + off);
		memset(r, 0, sizeof(*r));
		r->commit = SB_REC_COMMITTED;
		r->kind = SB_REC_PAD;
		r->len = 64;
	}
	hot()->log_tail = 0;
	hot()->log_head = 1ull << 62;
	cr_assert_eq(open_image(image_size, &c), 0);
	for (int i = 0; i < 3; i++) {
		int r = sb_consumer_drain(c, NULL, NULL, &d);
		cr_assert(r == 0 || r == -EBADMSG, "drain returned %d", r);
		cr_assert_eq(d.delivered, 0);
	}
	sb_consumer_close(c);
}

Test(region, record_that_fails_validation_leaves_the_consumer_unchanged)
{
	struct sb_consumer *c = NULL;
	struct sb_drain_counts d, totals;
	struct sb_rec *rec = (struct sb_rec *)(image + hdr()->sections[SB_SEC_LOG].offset);
	uint64_t cursor;

	rec->fate = 99;
	rec->seq = 70; /* also as if 69 earlier stores had been lapped */
	hot()->log_tail = 0;
	cr_assert_eq(open_image(image_size, &c), 0);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(sb_consumer_drain(c, NULL, NULL, &d), -EBADMSG, "drain %d", i);
		cr_assert(strstr(sb_last_error(), "fate"), "message: %s", sb_last_error());
		sb_consumer_totals(c, &totals);
		cr_assert_eq(totals.stores, 0);
		cr_assert_eq(totals.lapped, 0);
		sb_consumer_cursor(c, &cursor);
		cr_assert_eq(cursor, 0);
	}
	sb_consumer_close(c);
}
