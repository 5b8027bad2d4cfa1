/*
 * consumers/consumer.c - the read-only side: attach to a region, drain the
 * record log from a private cursor with exact accounting, drain events.
 *
 * Nothing here stores to the region. Every value loaded from it is
 * checked before use (ring/log.c bounds each record; ring/format/snapshot.c each
 * field inside a record copy).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <snapbridge/consumer.h>

#include "../ring/atomics.h"
#include "../ring/format/msgpack.h"
#include "../ring/error.h"
#include "../ring/events.h"
#include "../ring/slots.h"
#include "../ring/layout.h"
#include "../ring/log.h"
#include "../ring/format/snapshot.h"
#include "../shm/shm.h"
#include "consumer_internal.h"

int sb__consumer_attach(struct sb_consumer *c, uint32_t flags)
{
	const struct sb_header *h = &c->hdr;
	int err;

	memcpy(&c->hdr, c->base, sizeof(c->hdr));
	err = sb__header_validate(h, c->size);
	if (err)
		return err;
	c->hot = (const struct sb_hot *)(c->base + h->sections[SB_SEC_HOT].offset);
	c->slots = (const struct sb_slot *)(c->base + h->sections[SB_SEC_INDEX].offset);
	c->max_snapshots = h->max_snapshots;
	c->log =
	    (struct sb_log){ (uint8_t *)(c->base + h->sections[SB_SEC_LOG].offset), h->log_bytes,
			     (uint64_t *)&c->hot->log_head, (uint64_t *)&c->hot->log_tail };
	c->events = (struct sb_evring){ (struct sb_event_slot *)(c->base +
								 h->sections[SB_SEC_EVENTS].offset),
					h->max_events, (uint64_t *)&c->hot->event_seq };
	c->aux =
	    (struct sb_log){ (uint8_t *)(c->base + h->sections[SB_SEC_AUX].offset), h->aux_bytes,
			     (uint64_t *)&c->hot->aux_head, (uint64_t *)&c->hot->aux_tail };
	c->flags = flags;
	/* Stores older than the tail were reclaimed before we came: lapped. */
	enum sb_reader_start start =
	    flags & SB_CONSUMER_START_AT_END ? SB_READER_AT_END : SB_READER_AT_TAIL;
	sb__reader_init(&c->rec, &c->log, "log", "store", &c->hot->store_seq, start);
	sb__reader_init(&c->aux_rec, &c->aux, "aux", "aux record", &c->hot->aux_seq, start);
	if (start == SB_READER_AT_END)
		c->ev_cursor = sb__event_head(&c->events);
	return 0;
}

int sb_consumer_open_image(const char *path, uint32_t flags, struct sb_consumer **out)
{
	struct stat st;
	int err;

	if (!out || !path)
		return sb__fail(-EINVAL, "sb_consumer_open_image: NULL argument");
	*out = NULL;
	if (flags & ~(uint32_t)(SB_CONSUMER_ALL_VERSIONS | SB_CONSUMER_START_AT_END |
				SB_CONSUMER_VALIDATE_MSGPACK))
		return sb__fail(-EINVAL, "unknown consumer flags 0x%x", flags);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sb__fail(-errno, "cannot open image %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return sb__fail(-EBADF, "%s is not a regular file", path);
	}
	if ((uint64_t)st.st_size < sizeof(struct sb_header) ||
	    (uint64_t)st.st_size > SB_REGION_MAX) {
		close(fd);
		return sb__fail(-EBADMSG, "%s is %lld bytes: not a snapbridge image", path,
				(long long)st.st_size);
	}
	struct sb_consumer *c = sb__consumer_new();
	uint8_t *data = malloc((size_t)st.st_size);
	if (!c || !data) {
		free(c);
		free(data);
		close(fd);
		return sb__fail(-ENOMEM, "out of memory reading %s", path);
	}
	/* A private copy: a file changing under us cannot fault or race the reader. */
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	c->base = data;
	c->size = got;
	c->mapped = false;
	c->writer_gone = true;
	c->image = true; /* nothing will change it: a wait answers at once */
	if (got != (size_t)st.st_size) {
		sb_consumer_close(c);
		return sb__fail(-EIO, "short read of %s (%zu of %lld bytes)", path, got,
				(long long)st.st_size);
	}
	err = sb__consumer_attach(c, flags);
	if (err) {
		char why[400];

		snprintf(why, sizeof(why), "%s", sb_last_error());
		sb_consumer_close(c);
		return sb__fail(err, "%s: %s", path, why);
	}
	*out = c;
	return 0;
}

bool sb__chan_unread(const struct sb_consumer *c, enum sb_chan ch)
{
	switch (ch) {
	case SB_CHAN_REC:
		return sb__reader_unread(&c->rec);
	case SB_CHAN_EV:
		return sb__event_head(&c->events) != c->ev_cursor; /* V0: pairs with E3 */
	case SB_CHAN_AUX:
		return sb__reader_unread(&c->aux_rec);
	case SB_CHAN_COUNT:
		break;
	}
	return false;
}

void sb__chan_used(struct sb_consumer *c, enum sb_chan ch)
{
	c->used[ch] = true;
}

void sb__consumer_view(const struct sb_consumer *c, struct sb_wake_view *v)
{
	*v = (struct sb_wake_view){ &c->log, &c->aux, &c->events, c->hot };
}

int sb_consumer_set_writer_gone(struct sb_consumer *c, bool gone)
{
	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	c->writer_gone = gone;
	return 0;
}

static int classify(const struct sb_consumer *c, uint32_t fate, uint64_t **counter,
		    struct sb_drain_counts *d)
{
	if (c->flags & SB_CONSUMER_ALL_VERSIONS && fate >= SB_FATE_RESIDENT &&
	    fate <= SB_FATE_DRAINED) {
		*counter = &d->delivered;
		return 0;
	}
	switch (fate) {
	case SB_FATE_RESIDENT:
		*counter = &d->delivered;
		return 0;
	case SB_FATE_SUPERSEDED:
		*counter = &d->superseded;
		return 0;
	case SB_FATE_EVICTED_CAP:
	case SB_FATE_EVICTED_BYTES:
	case SB_FATE_DRAINED:
		*counter = &d->evicted;
		return 0;
	}
	return sb__fail(-EBADMSG, "log record has unknown fate %u", fate);
}

static void add_counts(struct sb_drain_counts *to, const struct sb_drain_counts *d)
{
	to->stores += d->stores;
	to->delivered += d->delivered;
	to->superseded += d->superseded;
	to->evicted += d->evicted;
	to->lapped += d->lapped;
	to->torn += d->torn;
}

/*
 * A drain that found nothing new backs off for a moment before it returns
 * (SB_IDLE_PAUSES pause instructions: 0.75 us on the development machine), as any spin on a
 * word another CPU writes should. A caller that polls sb_consumer_drain in
 * a loop otherwise keeps the writer's head and the newest record's header
 * under constant reads while the writer stores, and on a CPU that shares
 * its core with the writer's it takes the writer's execution slots: in the
 * benchmark's end-to-end run at 4 KB, a polling consumer without it slowed
 * the writer it waited for by about 5% (docs/BENCHMARKS.md).
 */
#define SB_IDLE_PAUSES 32

static void idle_pause(void)
{
	for (int k = 0; k < SB_IDLE_PAUSES; k++)
		sb_cpu_relax();
}

int sb_consumer_drain(struct sb_consumer *c, sb_entry_fn fn, void *user,
		      struct sb_drain_counts *counts)
{
	struct sb_log_reader *r;
	struct sb_drain_counts d = { 0 };
	int ret = 0, step;

	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	r = &c->rec;
	sb__chan_used(c, SB_CHAN_REC);
	sb__reader_begin(r);

	uint32_t fate = 0;
	while (ret == 0 && (step = sb__reader_next(r, &c->buf, &fate)) > 0) {
		const struct sb_rec *rec = (const struct sb_rec *)c->buf.p;
		if (rec->kind != SB_REC_SNAPSHOT) {
			ret = sb__fail(-EBADMSG, "log record at %llu has kind %u",
				       (unsigned long long)r->pos, rec->kind);
			break;
		}
		if (step == SB_READER_BUSY) {
			if (!c->writer_gone)
				break; /* being written; its commit is news, and we resume here */
			/* The writer died inside this store. */
			ret = sb__reader_pass(r, rec, &d.stores, &d.lapped, &d.torn);
			continue;
		}
		uint64_t *outcome;
		struct sb_entry view;
		ret = classify(c, fate, &outcome, &d);
		if (ret)
			break;
		if (outcome != &d.delivered) {
			ret = sb__reader_pass(r, rec, &d.stores, &d.lapped, outcome);
			continue;
		}
		ret = sb__rec_parse(rec, &view, c->text);
		/* Report and stats bytes are the caller's to interpret; checked only when asked. */
		if (ret == 0 && (c->flags & SB_CONSUMER_VALIDATE_MSGPACK) &&
		    (sb__msgpack_check(view.report, view.report_len) ||
		     (view.stats.kind == SB_STATS_OK &&
		      sb__msgpack_check(view.stats.msgpack, view.stats.msgpack_len))))
			ret = sb__fail(-EBADMSG, "record %llu (%s) holds invalid msgpack: %s",
				       (unsigned long long)rec->seq, view.tag, sb__msgpack_error());
		if (ret == 0)
			ret = sb__reader_pass(r, rec, &d.stores, &d.lapped, outcome);
		if (ret == 0 && fn)
			ret = fn(user, &view);
	}
	if (ret == 0 && step < 0)
		ret = step;
	if (ret == 0 && d.stores == 0)
		idle_pause(); /* nothing new: a caller polling in a loop is spinning */
	add_counts(&c->totals, &d);
	sb__consumer_touch(c);
	if (counts)
		*counts = d;
	return ret;
}

int sb_consumer_totals(const struct sb_consumer *c, struct sb_drain_counts *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_totals: NULL argument");
	*out = c->totals;
	return 0;
}

int sb_consumer_cursor(const struct sb_consumer *c, uint64_t *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_cursor: NULL argument");
	*out = c->rec.cursor;
	return 0;
}

int sb_consumer_store_count(const struct sb_consumer *c, uint64_t *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_store_count: NULL argument");
	*out = sb__log_newest_seq(&c->hot->store_seq);
	return 0;
}

int sb_consumer_region_id(const struct sb_consumer *c, uint8_t id[SB_REGION_ID_BYTES])
{
	if (!c || !id)
		return sb__fail(-EINVAL, "sb_consumer_region_id: NULL argument");
	memcpy(id, c->hdr.region_id, SB_REGION_ID_BYTES);
	return 0;
}

int sb_consumer_seek(struct sb_consumer *c, uint64_t store_seq)
{
	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	int err = sb__reader_seek(&c->rec, store_seq);
	if (!err)
		memset(&c->totals, 0, sizeof(c->totals)); /* they count from here on */
	return err;
}

int sb_consumer_seek_events(struct sb_consumer *c, uint64_t event_seq)
{
	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	uint64_t head = sb__event_head(&c->events); /* V0: pairs with E3 */
	if (event_seq > head)
		return sb__fail(-ERANGE,
				"cannot resume after event %llu: the region's newest event is %llu",
				(unsigned long long)event_seq, (unsigned long long)head);
	c->ev_cursor = event_seq;
	return 0;
}

int sb_consumer_event_cursor(const struct sb_consumer *c, uint64_t *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_event_cursor: NULL argument");
	*out = c->ev_cursor;
	return 0;
}

int sb_consumer_drain_events(struct sb_consumer *c, struct sb_events *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_drain_events: NULL argument");
	out->count = 0;
	out->items = NULL;
	uint64_t head = sb__event_head(&c->events); /* V0: pairs with E3 */
	uint64_t pending = head - c->ev_cursor;
	uint64_t n_ring = c->events.n;

	/* Subtraction, never "e <= head": sequences near 2^64 must not wrap a loop. */
	if (pending > (1ull << 62))
		return sb__fail(-EPROTO, "event sequence moved from %llu to %llu",
				(unsigned long long)c->ev_cursor, (unsigned long long)head);
	uint64_t n = pending < n_ring ? pending : n_ring;
	uint64_t lost = pending - n;
	struct sb_event *items = calloc((size_t)n + 1, sizeof(*items));
	if (!items)
		return sb__fail(-ENOMEM, "out of memory for %llu events", (unsigned long long)n);
	size_t k = 0;
	for (uint64_t i = 0; i < n; i++) {
		int r = sb__event_read(&c->events, head - n + 1 + i, &items[k]);
		if (r < 0) {
			free(items);
			return r;
		}
		if (r == 1)
			lost++; /* overwritten while we read */
		else
			k++;
	}
	if (lost) {
		items[k].kind = SB_EVENT_LOG_TRUNCATED;
		items[k].count = lost;
		k++;
	}
	c->ev_cursor = head;
	/* Only a drain that succeeded makes events something a wait reports. */
	sb__chan_used(c, SB_CHAN_EV);
	out->items = items;
	out->count = k;
	return 0;
}

int sb_consumer_watch_count(const struct sb_consumer *c, uint32_t *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_watch_count: NULL argument");
	uint64_t n = sb_load_relaxed(&c->hot->watch_count);
	/* A hostile region could claim more than the cap it published. */
	if (n > c->hdr.max_watch)
		return sb__fail(-EBADMSG, "the region claims %llu watches over its cap of %u",
				(unsigned long long)n, c->hdr.max_watch);
	*out = (uint32_t)n;
	return 0;
}

int sb_consumer_len(struct sb_consumer *c, size_t *out)
{
	struct sb_slot s;
	size_t n = 0;

	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_len: NULL argument");
	for (uint32_t i = 0; i < c->max_snapshots; i++) {
		int err = sb__slot_read(&c->slots[i], &s);
		if (err)
			return err;
		n += (s.flags & SB_F_RESIDENT) != 0;
	}
	*out = n;
	return 0;
}

int sb_consumer_has(struct sb_consumer *c, const char *tag, bool *out)
{
	struct sb_slot s;

	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_has: NULL argument");
	size_t len;
	int err = sb__check_tag(tag, &len); /* as sb_bridge_has() */
	if (err)
		return err;
	*out = false;
	for (uint32_t i = 0; i < c->max_snapshots; i++) {
		err = sb__slot_read(&c->slots[i], &s);
		if (err)
			return err;
		if ((s.flags & SB_F_RESIDENT) && s.tag_len == len && memcmp(s.tag, tag, len) == 0) {
			*out = true;
			break;
		}
	}
	return 0;
}
