/* bench/raw_ring.c - see raw_ring.h. */
#define _GNU_SOURCE
#include "raw_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../ring/atomics.h"

#define RR_HDR	 4096
#define RR_ALIGN 16

struct rr_rec {
	uint64_t seq; /* 0: padding to the ring's end */
	uint32_t len; /* payload bytes */
	uint32_t pad;
};

static uint64_t *tail_word(const uint8_t *map)
{
	return (uint64_t *)map;
}

static uint64_t *intent_word(const uint8_t *map)
{
	return (uint64_t *)(map + 64);
}

static uint64_t *first_word(const uint8_t *map)
{
	return (uint64_t *)(map + 128);
}

static uint64_t rec_size(uint32_t len)
{
	return (sizeof(struct rr_rec) + len + RR_ALIGN - 1) & ~(uint64_t)(RR_ALIGN - 1);
}

int rr_create(uint64_t size, struct rr_ring *out)
{
	memset(out, 0, sizeof(*out));
	out->size = size & ~(uint64_t)(RR_ALIGN - 1);
	out->fd = memfd_create("raw-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (out->fd < 0)
		return -errno;
	if (ftruncate(out->fd, (off_t)(RR_HDR + out->size)) != 0)
		goto fail;
	out->map = mmap(NULL, RR_HDR + out->size, PROT_READ | PROT_WRITE, MAP_SHARED, out->fd, 0);
	if (out->map == MAP_FAILED)
		goto fail;
	/* Every later mapping, in any process, is read-only. */
	if (fcntl(out->fd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) != 0) {
		munmap(out->map, RR_HDR + out->size);
		goto fail;
	}
	return 0;
fail:;
	int err = -errno;
	close(out->fd);
	out->fd = -1;
	return err;
}

void rr_destroy(struct rr_ring *r)
{
	if (r->map && r->map != MAP_FAILED)
		munmap(r->map, RR_HDR + r->size);
	if (r->fd >= 0)
		close(r->fd);
	r->map = NULL;
	r->fd = -1;
}

void rr_append(struct rr_ring *r, const void *payload, uint32_t len)
{
	uint64_t need = rec_size(len);
	uint64_t off = r->head % r->size;
	uint64_t pad = off + need > r->size ? r->size - off : 0;
	uint8_t *data = r->map + RR_HDR;
	uint64_t end = r->head + pad + need;

	/* W0: the oldest whole record after this one is written (a padding counts as one). */
	while (end - r->first > r->size) {
		const struct rr_rec *old = (const struct rr_rec *)(data + r->first % r->size);
		r->first += rec_size(old->len); /* a padding's len makes it fill to the end */
	}
	sb_store_relaxed(first_word(r->map), r->first);
	/* W1 (release: after W0): readers of bytes below end - size discard their copy. */
	sb_store_release(intent_word(r->map), end);
	sb_fence_release(); /* W1 before the record's bytes */
	if (pad) {
		struct rr_rec *p = (struct rr_rec *)(data + off);
		p->seq = 0;
		p->len = (uint32_t)(pad - sizeof(*p));
		r->head += pad;
		off = 0;
	}
	struct rr_rec *rec = (struct rr_rec *)(data + off);
	rec->seq = ++r->seq;
	rec->len = len;
	memcpy(rec + 1, payload, len);
	r->head += need;
	sb_store_release(tail_word(r->map), r->head); /* W3: pairs with R1 */
}

int rr_reader_open(int fd, uint64_t size, struct rr_reader *out)
{
	memset(out, 0, sizeof(*out));
	out->size = size & ~(uint64_t)(RR_ALIGN - 1);
	out->map_len = RR_HDR + out->size;
	out->map = mmap(NULL, out->map_len, PROT_READ, MAP_SHARED, fd, 0);
	if (out->map == MAP_FAILED)
		return -errno;
	out->cursor = sb_load_acquire(tail_word(out->map)); /* pairs with W3 */
	return 0;
}

void rr_reader_close(struct rr_reader *rd)
{
	munmap((void *)rd->map, rd->map_len);
}

/* The oldest whole record: W0 is ordered before the tail_intent that showed the lap. */
static uint64_t resume_at(const struct rr_reader *rd)
{
	return sb_load_relaxed(first_word(rd->map));
}

long rr_read(struct rr_reader *rd, void *buf, size_t cap, uint64_t *seq, uint64_t *lost)
{
	const uint8_t *data = rd->map + RR_HDR;

	for (;;) {
		uint64_t tail = sb_load_acquire(tail_word(rd->map)); /* R1: pairs with W3 */
		if (tail == rd->cursor)
			return 0;
		if (tail - rd->cursor > rd->size) {
			/* Lapped before we even looked: resume at the oldest whole record. */
			rd->cursor = resume_at(rd);
			continue;
		}
		uint64_t off = rd->cursor % rd->size;
		if (rd->size - off < sizeof(struct rr_rec))
			return -EBADMSG;
		struct rr_rec h;
		memcpy(&h, data + off, sizeof(h));
		uint64_t need =
		    (sizeof(h) + (uint64_t)h.len + RR_ALIGN - 1) & ~(uint64_t)(RR_ALIGN - 1);
		bool bad = need > rd->size - off || (h.seq && h.len > cap);
		if (!bad && h.seq)
			memcpy(buf, data + off + sizeof(h), h.len);
		sb_fence_acquire();					 /* R3: pairs with W1 */
		uint64_t intent = sb_load_acquire(intent_word(rd->map)); /* and W0 before it */
		if (intent - rd->cursor > rd->size) {
			rd->cursor = resume_at(rd); /* our copy may be torn */
			continue;
		}
		if (bad)
			return -EBADMSG;
		rd->cursor += need;
		if (!h.seq)
			continue; /* padding */
		if (rd->next_seq && h.seq != rd->next_seq) {
			if (h.seq < rd->next_seq)
				return -EBADMSG;
			*lost += h.seq - rd->next_seq;
		}
		rd->next_seq = h.seq + 1;
		*seq = h.seq;
		return (long)h.len;
	}
}
