/*
 * consumers/image.c - a consistent image of a live region in a file
 * (sb_consumer_save_image), and the region's header and counters as a
 * moment's view (sb_consumer_stat).
 *
 * The writer keeps going while we copy, so a plain copy of the mapping
 * could hold a record whose bytes were being reused, an event slot half
 * rewritten, or a slot mid-update. The image is built with the readers'
 * own code (the reader core of ring/log.h, ring/events.h's V0-V3, the
 * slot seqlock) and then its hot words are set to describe exactly what
 * was copied intact:
 *
 *   record log  from the tail to the head loaded at the start (R1), each
 *               record copied and checked as a drain copies it (R2-R3);
 *               one still being written is waited for briefly, else the
 *               image ends before it. tail and head are that window's
 *               ends, store_seq its last store; older stores read as
 *               lapped, as they would live. A lap during the copy starts
 *               the whole image again.
 *   events      event_seq = the one loaded before the copy (V0); a slot
 *               rewritten during the copy is zeroed, so it reads as
 *               dropped (EventLogTruncated) rather than as a wrong event.
 *   index       each slot copied inside its seqlock; one that stays busy
 *               is left empty.
 *   aux log     the same as the record log.
 *   counters    copied as they were (informational, like a live stat),
 *               with the accessor worker's words and the watch count.
 *
 * The image goes to a temporary file next to the output, is opened and
 * drained with sb_consumer_open_image() as a self-check, and is renamed
 * into place only then: on any error there is no output file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"
#include "../ring/accessor.h"
#include "../ring/error.h"
#include "../ring/liveness.h"
#include "../ring/slots.h"
#include "consumer_internal.h"

/* Whole-image attempts before giving up on a writer that laps us every time. */
#define SAVE_ATTEMPTS 8
/* How long to wait for a record the writer is still copying. */
#define BUSY_WAIT_NS (200ull * 1000000ull)

struct ring_copy {
	const struct sb_log *log; /* the live log */
	const char *what, *noun;
	const uint64_t *seq_word;
	uint8_t *img; /* its section in the image */
	uint64_t img_head, img_tail, img_seq;
	uint64_t records; /* non-PAD records in the image window */
};

/* The PAD record a reader passed over at the ring's end, as the writer wrote it. */
static void put_pad(struct ring_copy *r, uint64_t pos, uint64_t len)
{
	struct sb_rec *p = (struct sb_rec *)(r->img + pos % r->log->size);

	memset(p, 0, sizeof(*p));
	p->len = (uint32_t)len;
	p->kind = SB_REC_PAD;
	p->commit = SB_REC_COMMITTED;
}

/*
 * Copy one record ring (the record log or the aux log) into the image with
 * the reader core: every record from the tail on, each copied intact
 * (R1-R3), one in flight waited for briefly (then the image ends before
 * it). Returns 0, -EAGAIN (the writer lapped the copy: try again),
 * -EBADMSG.
 */
static int copy_ring(struct sb_consumer *c, struct ring_copy *r, char *why, size_t whylen)
{
	struct sb_log_reader rd;
	uint64_t deadline = sb__mono_ns() + BUSY_WAIT_NS, total = 0, lapped = 0;
	uint32_t fate = 0;
	int step;

	sb__reader_init(&rd, r->log, r->what, r->noun, r->seq_word, SB_READER_AT_TAIL);
	sb__reader_begin(&rd);
	r->img_tail = rd.pos;
	r->img_seq = 0;
	r->records = 0;
	uint64_t expect = rd.pos; /* where the last record copied ends */
	while ((step = sb__reader_next(&rd, &c->buf, &fate)) > 0 && !rd.laps) {
		if (step == SB_READER_BUSY) {
			if (sb__rec_await_commit(sb__log_rec(r->log, rd.pos), deadline) == 0)
				continue; /* committed now: read it again */
			break;	  /* still being written: the image ends before it */
		}
		const struct sb_rec *rec = (const struct sb_rec *)c->buf.p;
		uint8_t *at = r->img + rd.pos % r->log->size;
		if (rd.pos != expect)
			put_pad(r, expect, rd.pos - expect);
		memcpy(at, rec, rec->len);
		((struct sb_rec *)at)->fate = fate; /* as loaded between the copy and R3 */
		int err = sb__reader_pass(&rd, rec, &total, &lapped, &r->records);
		if (err) {
			snprintf(why, whylen, "%s", sb_last_error());
			return err;
		}
		r->img_seq = rec->seq;
		expect = rd.pos;
	}
	if (step < 0) {
		snprintf(why, whylen, "%s", sb_last_error());
		return step;
	}
	if (rd.laps) {
		snprintf(why, whylen, "the writer reused the %s's records while they were copied",
			 r->what);
		return -EAGAIN;
	}
	if (rd.pos != expect)
		put_pad(r, expect, rd.pos - expect);
	r->img_head = rd.pos;
	/* Only a log that has no record yet may leave the image's window empty. */
	if (!r->img_seq && (r->img_tail || r->img_head)) {
		snprintf(why, whylen, "the oldest %s record stayed in flight", r->what);
		return -EAGAIN;
	}
	return 0;
}

static void copy_events(const struct sb_consumer *c, uint8_t *img, uint64_t *img_seq)
{
	const struct sb_header *h = &c->hdr;
	struct sb_event_slot *out =
	    (struct sb_event_slot *)(img + h->sections[SB_SEC_EVENTS].offset);
	uint64_t n = h->max_events;
	uint64_t e_head = sb__event_head(&c->events); /* V0: pairs with E3 */

	memset(out, 0, n * sizeof(*out));
	for (uint64_t e = e_head > n ? e_head - n + 1 : 1; e <= e_head; e++) {
		struct sb_event_slot copy;

		/* Rewritten under us: the slot stays zero and reads as dropped. */
		if (sb__event_copy(&c->events, e, &copy) == 0)
			out[(e - 1) % n] = copy;
	}
	*img_seq = e_head;
}

static void copy_index(const struct sb_consumer *c, uint8_t *img)
{
	const struct sb_header *h = &c->hdr;
	struct sb_slot *out = (struct sb_slot *)(img + h->sections[SB_SEC_INDEX].offset);

	for (uint32_t i = 0; i < h->max_snapshots; i++)
		if (sb__slot_read(&c->slots[i], &out[i]) != 0)
			memset(&out[i], 0, sizeof(out[i]));
}

/* Build the whole image in memory. 0, -EAGAIN, -EBADMSG (why says more). */
static int build_image(struct sb_consumer *c, uint8_t *img, struct ring_copy *log,
		       struct ring_copy *aux, char *why, size_t whylen)
{
	const struct sb_header *h = &c->hdr;
	const struct sb_header *live_hdr = (const struct sb_header *)c->base;
	const struct sb_hot *hot = c->hot;
	struct sb_hot *ihot = (struct sb_hot *)(img + h->sections[SB_SEC_HOT].offset);
	uint64_t ev_seq;
	int err;

	*aux = (struct ring_copy){
		.log = &c->aux,
		.what = "aux",
		.noun = "aux record",
		.seq_word = &hot->aux_seq,
		.img = img + h->sections[SB_SEC_AUX].offset,
	};
	*log = (struct ring_copy){
		.log = &c->log,
		.what = "log",
		.noun = "store",
		.seq_word = &hot->store_seq,
		.img = img + h->sections[SB_SEC_LOG].offset,
	};
	memset(img, 0, h->region_size);
	memcpy(img, h, sizeof(*h)); /* the validated copy */
	struct sb_header *ih = (struct sb_header *)img;
	sb__beat_read(live_hdr, &ih->heartbeat_ns, &ih->heartbeat_period_ms);
	ih->closed = sb__region_closed(live_hdr);

	/* Counters first: informational, a moment before the log is taken. */
	ihot->resident = sb_load_relaxed(&hot->resident);
	ihot->overwrites = sb_load_relaxed(&hot->overwrites);
	ihot->evicted_cap = sb_load_relaxed(&hot->evicted_cap);
	ihot->evicted_bytes = sb_load_relaxed(&hot->evicted_bytes);
	ihot->drained = sb_load_relaxed(&hot->drained);
	ihot->capture_unavailable = sb_load_relaxed(&hot->capture_unavailable);
	ihot->wakes = sb_load_relaxed(&hot->wakes);
	struct sb_accessor_view av;
	sb__accessor_read(hot, &av);
	ihot->accessor_seqno = av.seqno;
	ihot->accessor_state = av.state;
	ihot->accessor_gen = sb_load_relaxed(&hot->accessor_gen);
	ihot->accessor_installed = av.installed;
	ihot->watch_count = sb_load_relaxed(&hot->watch_count);

	copy_index(c, img);
	copy_events(c, img, &ev_seq);
	err = copy_ring(c, log, why, whylen);
	if (!err)
		err = copy_ring(c, aux, why, whylen);
	if (err)
		return err;
	ihot->store_seq = log->img_seq;
	ihot->log_head = log->img_head;
	ihot->log_tail = log->img_tail;
	ihot->event_seq = ev_seq;
	ihot->aux_head = aux->img_head;
	ihot->aux_tail = aux->img_tail;
	ihot->aux_seq = aux->img_seq;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/*
 * Write the image, leaving holes where whole pages are zero (most of an
 * idle log): the file reads back the same and takes only what is used.
 */
static int write_image(int fd, const uint8_t *p, size_t n)
{
	for (size_t off = 0; off < n;) {
		size_t chunk = n - off < SB_PAGE ? n - off : SB_PAGE;

		if (all_zero(p + off, chunk)) {
			off += chunk;
			continue;
		}
		ssize_t w = pwrite(fd, p + off, chunk, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		off += (size_t)w;
	}
	return ftruncate(fd, (off_t)n) == 0 ? 0 : -errno;
}

/* Read the written image back as a consumer would: it must open and add up. */
static int self_check(const char *path, uint64_t *stores, char *why, size_t whylen)
{
	struct sb_consumer *ic;
	struct sb_events ev;
	struct sb_drain_counts d;
	uint64_t before, after, count = 0;
	int err = sb_consumer_open_image(path, 0, &ic);

	if (err) {
		snprintf(why, whylen, "%s", sb_last_error());
		return err;
	}
	do {
		sb_consumer_cursor(ic, &before);
		err = sb_consumer_drain(ic, NULL, NULL, NULL);
		sb_consumer_cursor(ic, &after);
		sb_consumer_store_count(ic, &count);
	} while (!err && after < count && after != before);
	if (!err)
		err = sb_consumer_drain_events(ic, &ev);
	if (err) {
		snprintf(why, whylen, "%s", sb_last_error());
	} else {
		sb_events_free(&ev);
		sb_consumer_totals(ic, &d);
		if (d.stores != count ||
		    d.delivered + d.superseded + d.evicted + d.lapped + d.torn != d.stores) {
			snprintf(why, whylen,
				 "its accounting does not add up (%llu of %llu stores)",
				 (unsigned long long)d.stores, (unsigned long long)count);
			err = -EBADMSG;
		}
		*stores = count;
	}
	sb_consumer_close(ic);
	return err;
}

/* Refuse anything at path but a regular file: rename() would replace the node itself. */
static int check_output(const char *path, const char *when)
{
	struct stat st;

	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return sb__fail(-EEXIST, "refusing to replace %s: it %s not a regular file", path,
				when);
	return 0;
}

int sb_consumer_save_image(struct sb_consumer *c, const char *path, struct sb_image_info *info)
{
	struct ring_copy log, aux;
	char why[400] = "", *tmp = NULL, *dircopy = NULL;
	uint8_t *img = NULL;
	int fd = -1, err;

	if (!c || !path || !*path)
		return sb__fail(-EINVAL, "sb_consumer_save_image: NULL or empty argument");
	if (!c->mapped)
		return sb__fail(-EOPNOTSUPP, "an image is saved from a live region, not an image");
	err = check_output(path, "exists and is");
	if (err)
		return err;
	img = malloc(c->hdr.region_size);
	dircopy = strdup(path);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	const char *dir = dircopy ? dirname(dircopy) : NULL;
	if (!img || !dir || asprintf(&tmp, "%s/.%s.XXXXXX", dir, base) < 0) {
		tmp = NULL;
		err = sb__fail(-ENOMEM, "out of memory for a %llu-byte image",
			       (unsigned long long)c->hdr.region_size);
		goto out;
	}
	for (int attempt = 0; attempt < SAVE_ATTEMPTS; attempt++) {
		err = build_image(c, img, &log, &aux, why, sizeof(why));
		if (err != -EAGAIN)
			break;
	}
	if (err) {
		err = sb__fail(err, "cannot take an image%s: %s",
			       err == -EAGAIN ? " (the writer outran every attempt; give the "
						"coordinator a bigger log)"
					      : "",
			       why);
		goto out;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		err = sb__fail(-errno, "cannot create a file next to %s: %s", path,
			       strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	err = write_image(fd, img, c->hdr.region_size);
	if (!err && fsync(fd) != 0)
		err = -errno;
	if (close(fd) != 0 && !err)
		err = -errno;
	if (err) {
		err = sb__fail(err, "cannot write %s: %s", path, strerror(-err));
		goto out;
	}
	uint64_t stores = 0;
	err = self_check(tmp, &stores, why, sizeof(why));
	if (err) {
		err = sb__fail(err, "the image does not read back: %s", why);
		goto out;
	}
	err = check_output(path, "is no longer");
	if (err)
		goto out;
	if (rename(tmp, path) != 0) {
		err = sb__fail(-errno, "cannot put the image at %s: %s", path, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd); /* the rename itself survives a crash */
		close(dfd);
	}
	if (info)
		*info = (struct sb_image_info){
			.region_bytes = c->hdr.region_size,
			.stores = stores,
			.records = log.records,
			.aux_records = aux.records,
		};
out:
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(dircopy);
	free(img);
	return err;
}

/* ---- the region at a glance ----------------------------------------------- */

int sb_consumer_stat(struct sb_consumer *c, struct sb_region_stat *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_stat: NULL argument");
	const struct sb_header *h = &c->hdr;
	const struct sb_hot *hot = c->hot;
	uint64_t beat;
	uint32_t period;

	sb__beat_read((const struct sb_header *)c->base, &beat, &period);
	uint64_t now = sb__mono_ns();
	uint64_t head, tail;

	sb__log_span(&c->log, &head, &tail);

	*out = (struct sb_region_stat){
		.abi_major = h->abi_major,
		.abi_minor = h->abi_minor,
		.layout_hash = h->layout_hash,
		.region_bytes = h->region_size,
		.coordinator_pid = h->coord_pid,
		.max_snapshots = h->max_snapshots,
		.max_events = h->max_events,
		.max_watch = h->max_watch,
		.log_bytes = h->log_bytes,
		.aux_bytes = h->aux_bytes,
		.stores = sb_load_relaxed(&hot->store_seq),
		.resident = sb_load_relaxed(&hot->resident),
		.overwrites = sb_load_relaxed(&hot->overwrites),
		.evicted_cap = sb_load_relaxed(&hot->evicted_cap),
		.evicted_bytes = sb_load_relaxed(&hot->evicted_bytes),
		.drained = sb_load_relaxed(&hot->drained),
		.capture_unavailable = sb_load_relaxed(&hot->capture_unavailable),
		.events = sb_load_relaxed(&hot->event_seq),
		.wakes = sb_load_relaxed(&hot->wakes),
		.log_written_bytes = head,
		.log_used_bytes = head - tail <= h->log_bytes ? head - tail : h->log_bytes,
		.oldest_seq = sb__log_oldest_seq(&c->log),
		.heartbeat_known = beat && now >= beat && c->mapped,
		.heartbeat_age_ns = beat && now >= beat && c->mapped ? now - beat : 0,
	};
	return 0;
}
