/*
 * fuzz_image.c - attach to and drain a hostile region image: what
 * sb_consumer_open_image() does after reading the file, on memory.
 *
 * At start-up a real bridge is filled (overwrites, evictions by count and
 * by bytes, a wrapped log with a pad, stats, missing-stats reasons, events,
 * an event ring that overflowed, kernel-op replies and cgroup.procs
 * snapshots in the aux log) and its data region copied: two templates.
 * An input is a list of patches applied to a copy of one template, so that
 * small inputs reach deep into the log, the index and the event ring, and
 * any byte of the header can be hit as well:
 *   byte 0       bit 0 ALL_VERSIONS, bit 1 START_AT_END, bit 2 the writer is
 *                alive (a BUSY record ends a drain instead of being torn),
 *                bit 3 which template
 *   then         { u32 offset (little-endian, taken modulo the image size),
 *                  u8 n, n bytes }...
 * Every call the consumer makes must return 0 or a documented error, never
 * read outside its copy (ASan), never hang, and the outcomes of every drain
 * must add up to the stores it accounted for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <snapbridge/snapbridge.h>

#include "../../consumers/consumer_internal.h"
#include "../testutil.h"
#include "fuzz.h"

SB_FUZZ_MAIN

static uint8_t *templates[2];
static size_t template_size[2];

static void store(struct sb_bridge *b, const char *tag, size_t n, uint64_t seed,
		  const struct sb_stats *stats)
{
	static uint8_t buf[40 << 10];
	struct sb_report r = { .schema = "fz",
			       .msgpack = buf,
			       .msgpack_len = tu_report(buf, n, seed) };
	uint64_t elapsed = seed * 10;

	if (sb_bridge_store_with_stats_and_step(b, tag, &r, stats, &elapsed, &elapsed,
						(uint16_t)seed) != 0) {
		fprintf(stderr, "fuzz_image: store %s: %s\n", tag, sb_last_error());
		exit(1);
	}
}

/* Aux records: a kernel-op reply with values, a failed one, cgroup.procs snapshots. */
static void fill_aux(struct sb_bridge *b, int n)
{
	static const uint8_t bytes[] = { 9, 8, 7 };
	const struct sb_kop_value values[] = { { .kind = SB_KOP_U32, .num = 5 },
					       { .kind = SB_KOP_BYTES, .bytes = bytes, .len = 3 } };
	const struct sb_kop_reply ok = {
		.id = 1, .success = true, .read_values = values, .n_values = 2
	};
	const struct sb_kop_reply bad = { .id = 2, .success = false, .reason = "no symbol" };
	int32_t pids[64];

	for (int i = 0; i < n; i++) {
		for (int k = 0; k < 64; k++)
			pids[k] = 100 + i + k;
		if (sb_bridge_record_kernel_op_reply(b, "kop", i % 2 ? &bad : &ok) != 0 ||
		    sb_bridge_record_cgroup_procs(b, "cg", "/sys/fs/cgroup/fz", pids,
						  (size_t)(i * 7 % 64)) != 0) {
			fprintf(stderr, "fuzz_image: aux: %s\n", sb_last_error());
			exit(1);
		}
	}
}

static void make_template(int which)
{
	struct sb_config cfg;
	struct sb_bridge *b;
	int fd;
	uint8_t st[32];
	struct sb_stats ok = { .kind = SB_STATS_OK,
			       .msgpack = st,
			       .msgpack_len = tu_report(st, 8, 1) };
	struct sb_stats miss = { .kind = SB_STATS_MISSING,
				 .missing = {
				     .kind = SB_MISSING_SCHEDULER_ERROR, .text = "-x", .err = 5 } };

	tu_config(&cfg, 4, 8, SB_LOG_BYTES_MIN);
	if (sb_bridge_create(&cfg, NULL, &b) != 0 || sb_bridge_data_fd(b, &fd) != 0) {
		fprintf(stderr, "fuzz_image: bridge: %s\n", sb_last_error());
		exit(1);
	}
	if (which == 0) {
		/* A few small records: overwrite, stats, a missing reason, events. */
		store(b, "a", 40, 1, &ok);
		store(b, "b", 60, 2, &miss);
		store(b, "a", 20, 3, NULL);
		store(b, "c", 10, 4, &ok);
		fill_aux(b, 2);
	} else {
		/* Wrapped: large records force pads, byte evictions and laps; cap evictions too. */
		for (uint64_t i = 0; i < 14; i++) {
			char tag[8];
			snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(i % 6));
			store(b, tag, (size_t)(1000 + (i * 7919) % 20000), i + 1,
			      i % 3 ? &ok : &miss);
		}
		fill_aux(b, 40);
	}
	templates[which] = tu_read_region(fd, &template_size[which]);
	if (!templates[which]) {
		fprintf(stderr, "fuzz_image: cannot read the region\n");
		exit(1);
	}
	close(fd);
	sb_bridge_destroy(b);
}

void sb_fuzz_init(void)
{
	make_template(0);
	make_template(1);
}

static int check_entry(void *user, const struct sb_entry *e)
{
	(void)user;
	SB_FUZZ_CHECK(strnlen(e->tag, sizeof(e->tag)) < sizeof(e->tag));
	SB_FUZZ_CHECK(strnlen(e->schema, sizeof(e->schema)) < sizeof(e->schema));
	/* Touch every byte handed out: ASan checks they are inside the copy. */
	volatile uint8_t sum = 0;
	for (size_t i = 0; i < e->report_len; i++)
		sum += ((const uint8_t *)e->report)[i];
	if (e->stats.kind == SB_STATS_OK)
		for (size_t i = 0; i < e->stats.msgpack_len; i++)
			sum += ((const uint8_t *)e->stats.msgpack)[i];
	if (e->stats.kind == SB_STATS_MISSING && e->stats.missing.text)
		SB_FUZZ_CHECK(strlen(e->stats.missing.text) <= SB_REASON_MAX);
	(void)sum;
	return 0;
}

static int check_aux(void *user, const struct sb_aux_item *it)
{
	(void)user;
	SB_FUZZ_CHECK(it->kind == SB_AUX_KERNEL_OP || it->kind == SB_AUX_CGROUP_PROCS);
	SB_FUZZ_CHECK(it->tag && strlen(it->tag) <= SB_KOP_TAG_MAX);
	volatile uint8_t sum = 0;
	for (size_t i = 0; i < it->msgpack_len; i++)
		sum += ((const uint8_t *)it->msgpack)[i];
	if (it->kind == SB_AUX_KERNEL_OP) {
		SB_FUZZ_CHECK(it->reply && it->reply->n_values <= SB_KOP_ENTRIES_MAX);
		for (size_t i = 0; i < it->reply->n_values; i++)
			if (it->reply->read_values[i].kind == SB_KOP_BYTES)
				for (size_t k = 0; k < it->reply->read_values[i].len; k++)
					sum += it->reply->read_values[i].bytes[k];
	} else {
		SB_FUZZ_CHECK(it->procs && it->procs->n_pids <= SB_CGROUP_PIDS_MAX);
		for (size_t i = 0; i < it->procs->n_pids; i++)
			sum += (uint8_t)it->procs->pids[i];
		SB_FUZZ_CHECK(strlen(it->procs->cgroup) <= SB_CGROUP_NAME_MAX);
	}
	(void)sum;
	return 0;
}

static bool documented(int err)
{
	return err == 0 || err == -EBADMSG || err == -EPROTO || err == -EAGAIN || err == -ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int which = (data[0] >> 3) & 1;
	size_t n = template_size[which];
	/* Exactly the region's size, so ASan sees a read past its end; kept across inputs. */
	static uint8_t *images[2];
	if (!images[which])
		images[which] = malloc(n);
	uint8_t *image = images[which];

	memcpy(image, templates[which], n);
	for (size_t i = 1; i + 5 <= size;) {
		uint32_t off;
		memcpy(&off, data + i, 4);
		size_t len = data[i + 4];
		i += 5;
		off %= (uint32_t)n;
		if (len > size - i)
			len = size - i;
		if (len > n - off)
			len = n - off;
		memcpy(image + off, data + i, len);
		i += len;
	}

	struct sb_consumer *c = sb__consumer_new();
	c->base = image; /* taken back before sb_consumer_close, which would free it */
	c->size = n;
	c->mapped = false;
	c->writer_gone = !(data[0] & 4);
	uint32_t flags = data[0] & (SB_CONSUMER_ALL_VERSIONS | SB_CONSUMER_START_AT_END);
	int err = sb__consumer_attach(c, flags);
	SB_FUZZ_CHECK(documented(err));
	if (err == 0) {
		for (int round = 0; round < 4; round++) {
			struct sb_drain_counts d, t;

			err = sb_consumer_drain(c, check_entry, NULL, &d);
			SB_FUZZ_CHECK(documented(err));
			SB_FUZZ_CHECK(d.stores ==
				      d.delivered + d.superseded + d.evicted + d.lapped + d.torn);
			sb_consumer_totals(c, &t);
			SB_FUZZ_CHECK(t.stores ==
				      t.delivered + t.superseded + t.evicted + t.lapped + t.torn);
			struct sb_aux_counts a;
			err = sb_consumer_drain_aux(c, check_aux, NULL, &a);
			SB_FUZZ_CHECK(documented(err));
			SB_FUZZ_CHECK(a.records == a.delivered + a.lapped);
		}
		struct sb_events ev;
		err = sb_consumer_drain_events(c, &ev);
		SB_FUZZ_CHECK(documented(err));
		if (err == 0) {
			SB_FUZZ_CHECK(ev.count <= c->events.n + 1);
			for (size_t i = 0; i < ev.count; i++) {
				SB_FUZZ_CHECK(strnlen(ev.items[i].tag, sizeof(ev.items[i].tag)) <
					      sizeof(ev.items[i].tag));
				SB_FUZZ_CHECK(
				    strnlen(ev.items[i].detail, sizeof(ev.items[i].detail)) <
				    sizeof(ev.items[i].detail));
			}
			sb_events_free(&ev);
		}
		size_t len;
		bool has;
		uint64_t v;
		SB_FUZZ_CHECK(documented(sb_consumer_len(c, &len)));
		SB_FUZZ_CHECK(documented(sb_consumer_has(c, "t1", &has)));
		SB_FUZZ_CHECK(sb_consumer_store_count(c, &v) == 0);
		SB_FUZZ_CHECK(sb_consumer_cursor(c, &v) == 0);
	}
	c->base = NULL;
	sb_consumer_close(c);
	return 0;
}

void sb_fuzz_seeds(const char *dir)
{
	/* The templates untouched, with each mode; then a few typical patches. */
	uint8_t in[64];

	for (uint8_t mode = 0; mode < 16; mode += 1) {
		char name[32];
		if (mode & 2 && mode & 4)
			continue;
		in[0] = mode;
		snprintf(name, sizeof(name), "template%d-mode%d", (mode >> 3) & 1, mode & 7);
		sb_fuzz_seed(dir, name, in, 1);
	}
	/* Patch the first record header's len (log section of template 0). */
	const struct sb_header *h = (const struct sb_header *)templates[0];
	uint32_t off = (uint32_t)h->sections[SB_SEC_LOG].offset + 8;
	in[0] = 0;
	memcpy(in + 1, &off, 4);
	in[5] = 4;
	memcpy(in + 6, "\xc0\xff\x00\x00", 4);
	sb_fuzz_seed(dir, "patch-rec-len", in, 10);
	/* Patch the log head (hot words) far ahead. */
	off = (uint32_t)h->sections[SB_SEC_HOT].offset + 64;
	memcpy(in + 1, &off, 4);
	in[5] = 8;
	memcpy(in + 6, "\x00\x00\x00\x00\x00\x00\x00\x40", 8);
	sb_fuzz_seed(dir, "patch-head", in, 14);
}
