/*
 * snapbridge demo - a bridge, a few hundred stores with overwrites and
 * evictions, a read-only consumer draining alongside, the coordinator's
 * own drain, and a summary that checks the accounting adds up.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include <snapbridge/snapbridge.h>

#include "tool.h"

struct demo_opts {
	unsigned stores;
	unsigned payload;
};

/* A report: {"seq": n, "payload": <bin of a pattern seeded by n>}. */
static void build_report(msgpack_sbuffer *sb, unsigned n, unsigned payload, uint8_t *scratch)
{
	msgpack_packer pk;

	for (unsigned i = 0; i < payload; i++)
		scratch[i] = (uint8_t)(n * 131u + i * 7u);
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "seq", 3);
	msgpack_pack_uint32(&pk, n);
	msgpack_pack_str_with_body(&pk, "payload", 7);
	msgpack_pack_bin_with_body(&pk, scratch, payload);
}

static int count_entry(void *user, const struct sb_entry *e)
{
	(void)e;
	(*(unsigned *)user)++;
	return 0;
}

static int usage(FILE *to, int code)
{
	fprintf(to, "usage: snapbridge demo [--stores N] [--payload-bytes N]\n\n"
		    "Stores N captures (default 400) into an in-process bridge capped at 16\n"
		    "snapshots: periodic_NNN tags, a hot tag that is overwritten, and unique\n"
		    "tags that force evictions. A read-only consumer drains while the stores\n"
		    "run; the summary shows that every store is accounted for.\n\n"
		    "example:\n  snapbridge demo --stores 1000 --payload-bytes 4096\n");
	return code;
}

int sb_cmd_demo(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "stores", required_argument, NULL, 's' },
		{ "payload-bytes", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct demo_opts o = { .stores = 400, .payload = 1024 };
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *end;
		unsigned long v;

		switch (c) {
		case 's':
		case 'p':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v == 0 || v > 1000000) {
				fprintf(
				    stderr,
				    "snapbridge demo: --%s needs a number 1..1000000, got '%s'\n",
				    c == 's' ? "stores" : "payload-bytes", optarg);
				return SB_EXIT_USAGE;
			}
			if (c == 's')
				o.stores = (unsigned)v;
			else
				o.payload = (unsigned)v;
			break;
		case 'h':
			return usage(stdout, 0);
		default:
			return usage(stderr, SB_EXIT_USAGE);
		}
	}

	struct sb_config cfg;
	struct sb_bridge *b = NULL;
	struct sb_consumer *cons = NULL;
	int fd = -1, err;

	sb_config_default(&cfg);
	cfg.max_snapshots = 16;
	cfg.max_events = 64;
	err = sb_bridge_create(&cfg, NULL, &b);
	if (!err)
		err = sb_bridge_data_fd(b, &fd);
	if (!err)
		err = sb_consumer_open_fd(fd, 0, &cons);
	if (err) {
		fprintf(stderr, "snapbridge demo: %s\n", sb_last_error());
		sb_bridge_destroy(b);
		return SB_EXIT_RUNTIME;
	}

	msgpack_sbuffer sb;
	uint8_t *scratch = malloc(o.payload);
	unsigned delivered_cb = 0;
	struct sb_drain_counts d;
	msgpack_sbuffer_init(&sb);

	for (unsigned i = 0; i < o.stores && !err; i++) {
		char tag[SB_TAG_MAX + 1];
		uint64_t elapsed = i * 10ull;

		if (i % 5 == 0)
			snprintf(tag, sizeof(tag), "hot_tag");
		else if (i % 5 == 1)
			snprintf(tag, sizeof(tag), "periodic_%03u", (i / 5) % 1000);
		else
			snprintf(tag, sizeof(tag), "capture_%u", i);
		build_report(&sb, i, o.payload, scratch);
		struct sb_report r = { .schema = "demo.v1",
				       .msgpack = sb.data,
				       .msgpack_len = sb.size };
		struct sb_stats st = { .kind = SB_STATS_MISSING,
				       .missing = { .kind = SB_MISSING_DURING_FREEZE } };
		err = sb_bridge_store_with_stats(b, tag, &r, i % 2 ? &st : NULL, &elapsed);
		if (!err && i % 50 == 49)
			err = sb_consumer_drain(cons, count_entry, &delivered_cb, NULL);
	}
	if (!err)
		err = sb_consumer_drain(cons, count_entry, &delivered_cb, NULL);
	if (err) {
		fprintf(stderr, "snapbridge demo: %s\n", sb_last_error());
		goto out;
	}
	sb_consumer_totals(cons, &d);

	struct sb_entries entries;
	struct sb_events events;
	err = sb_bridge_drain_ordered_with_stats(b, &entries);
	if (!err)
		err = sb_bridge_drain_events(b, &events);
	if (err) {
		fprintf(stderr, "snapbridge demo: %s\n", sb_last_error());
		goto out;
	}
	unsigned by_kind[SB_EVENT_LOG_TRUNCATED + 1] = { 0 };
	uint64_t truncated = 0;
	for (size_t i = 0; i < events.count; i++) {
		by_kind[events.items[i].kind]++;
		if (events.items[i].kind == SB_EVENT_LOG_TRUNCATED)
			truncated = events.items[i].count;
	}

	bool adds_up = d.delivered + d.superseded + d.evicted + d.lapped + d.torn == d.stores &&
		       d.stores == o.stores;
	printf("snapbridge demo: %u stores of %u-byte reports, cap %u snapshots\n\n", o.stores,
	       o.payload, cfg.max_snapshots);
	printf("  consumer (read-only, drained every 50 stores)\n");
	printf("    stores accounted   %8llu\n", (unsigned long long)d.stores);
	printf("    delivered          %8llu\n", (unsigned long long)d.delivered);
	printf("    superseded         %8llu\n", (unsigned long long)d.superseded);
	printf("    evicted            %8llu\n", (unsigned long long)d.evicted);
	printf("    lapped             %8llu\n", (unsigned long long)d.lapped);
	printf("    torn               %8llu\n", (unsigned long long)d.torn);
	printf("    adds up            %8s\n\n", adds_up ? "yes" : "NO");
	printf("  coordinator drain_ordered_with_stats: %zu resident reports, FIFO order:\n    ",
	       entries.count);
	for (size_t i = 0; i < entries.count; i++)
		printf("%s%s", entries.items[i].tag, i + 1 < entries.count ? ", " : "\n\n");
	printf("  events: %u overwrites, %u evictions, %zu retained, %llu dropped at the cap\n",
	       by_kind[SB_EVENT_OVERWRITE], by_kind[SB_EVENT_EVICTION],
	       events.count - (truncated > 0), (unsigned long long)truncated);
	if (!adds_up)
		err = -EPROTO;
	sb_entries_free(&entries);
	sb_events_free(&events);
out:
	msgpack_sbuffer_destroy(&sb);
	free(scratch);
	sb_consumer_close(cons);
	if (fd >= 0)
		close(fd);
	sb_bridge_destroy(b);
	return err ? SB_EXIT_RUNTIME : 0;
}
