/*
 * ring/log.c - the record byte ring: writer reservation and reclaim,
 * reader copy-then-validate. The protocol is stated in log.h.
 */
#include "log.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "error.h"

void sb__buf_free(struct sb_buf *buf)
{
	free(buf->p);
	buf->p = NULL;
	buf->cap = 0;
}

static int buf_reserve(struct sb_buf *buf, size_t n)
{
	if (n <= buf->cap)
		return 0;
	size_t cap = buf->cap ? buf->cap : 4096;
	while (cap < n)
		cap *= 2;
	uint8_t *p = realloc(buf->p, cap);
	if (!p)
		return sb__fail(-ENOMEM, "out of memory copying a %zu-byte record", n);
	buf->p = p;
	buf->cap = cap;
	return 0;
}

void sb__rec_wait_committed(const struct sb_rec *rec)
{
	/* Pairs with W4 in the copying thread: its bytes are in once we see it. */
	while (sb_load_acquire(&rec->commit) == SB_REC_BUSY)
		sched_yield();
}

uint64_t sb__log_reserve(struct sb_log *log, uint32_t len, sb_reclaim_fn fn, void *arg)
{
	uint64_t head = sb_load_relaxed(log->head); /* only lock holders store it */
	uint64_t tail = sb_load_relaxed(log->tail);
	uint64_t head_off = log->tail_off + (head - tail);

	head_off = head_off >= log->size ? head_off - log->size : head_off;
	uint64_t room_to_end = log->size - head_off;
	uint64_t pad = room_to_end < len ? room_to_end : 0;
	uint64_t moved = tail;

	while (head + pad + len - tail > log->size) {
		struct sb_rec *old = (struct sb_rec *)(log->base + log->tail_off);

		/* Its bytes are about to be reused: it must be complete first. */
		sb__rec_wait_committed(old);
		if (old->kind != SB_REC_PAD)
			fn(arg, old, tail);
		tail += old->len;
		/* Records never cross the ring's end: the offset wraps only onto 0. */
		log->tail_off = log->tail_off + old->len == log->size ? 0 : log->tail_off + old->len;
	}
	if (tail != moved)
		sb_store_relaxed(log->tail, tail);
	/*
	 * W1: readers see the tail before any reclaimed byte changes. The fence
	 * runs even when this call moved nothing: the bytes about to be written
	 * may have been reclaimed by an earlier store on another thread, and the
	 * ordering must not rest on the mutex alone.
	 */
	sb_fence_release();
	if (pad) {
		struct sb_rec *p = (struct sb_rec *)(log->base + head_off);

		memset(p, 0, sizeof(*p));
		p->len = (uint32_t)pad;
		p->kind = SB_REC_PAD;
		sb_store_relaxed(&p->commit, SB_REC_COMMITTED);
		head += pad;
		head_off = 0;
	}
	struct sb_rec *rec = (struct sb_rec *)(log->base + head_off);
	memset(rec, 0, sizeof(*rec));
	sb_store_relaxed(&rec->commit, SB_REC_BUSY);
	rec->len = len;
	return head;
}

void sb__log_publish(struct sb_log *log, uint64_t new_head)
{
	/* W3: pairs with R1; the headers below new_head are written. */
	sb_store_release(log->head, new_head);
}

void sb__rec_commit(struct sb_rec *rec)
{
	/* W4: pairs with R2; the payload is complete. */
	sb_store_release(&rec->commit, SB_REC_COMMITTED);
}

bool sb__log_lapped(const struct sb_log *log, uint64_t pos)
{
	/* R3: pairs with W1's tail store and release fence. */
	sb_fence_acquire();
	return (int64_t)(pos - sb_load_relaxed(log->tail)) < 0;
}

/*
 * Copy n bytes of the record at pos into buf, then R3. The reader advances
 * by the copy's length, so it must equal the one already bounded (len).
 */
static int copy_checked(const struct sb_log *log, uint64_t pos, const struct sb_rec *rec, size_t n,
			uint32_t len, struct sb_buf *buf, uint32_t *fate)
{
	int err = buf_reserve(buf, n);

	if (err)
		return err;
	memcpy(buf->p, rec, n);
	if (fate)
		*fate = sb_load_relaxed(&rec->fate);
	if (sb__log_lapped(log, pos))
		return SB_READ_LAPPED;
	if (((const struct sb_rec *)buf->p)->len != len)
		return sb__fail(-EBADMSG, "log record at %llu changed length while being read",
				(unsigned long long)pos);
	return SB_READ_OK;
}

int sb__log_copy(const struct sb_log *log, uint64_t pos, uint64_t head, struct sb_buf *buf,
		 uint32_t *fate)
{
	if (pos % SB_REC_ALIGN != 0 || (int64_t)(head - pos) < (int64_t)sizeof(struct sb_rec))
		return sb__fail(-EBADMSG,
				"log position %llu is not a record boundary below head %llu",
				(unsigned long long)pos, (unsigned long long)head);
	if (sb__log_lapped(log, pos))
		return SB_READ_LAPPED;

	const struct sb_rec *rec = sb__log_rec(log, pos);
	uint32_t commit = sb_load_acquire(&rec->commit); /* R2: pairs with W4 */
	uint32_t len = sb_load_relaxed(&rec->len);
	uint64_t room_to_end = log->size - pos % log->size;
	bool len_ok = len >= sizeof(struct sb_rec) && len % SB_REC_ALIGN == 0 &&
		      len <= room_to_end && len <= head - pos;

	if (commit == SB_REC_BUSY && len_ok) {
		/* The header was complete before head moved past it (W2 before W3). */
		int r = copy_checked(log, pos, rec, sizeof(*rec), len, buf, NULL);
		return r == SB_READ_OK ? SB_READ_BUSY : r;
	}
	if (commit != SB_REC_COMMITTED || !len_ok) {
		/* Garbage is expected if the writer is reusing these bytes. */
		if (sb__log_lapped(log, pos))
			return SB_READ_LAPPED;
		return sb__fail(-EBADMSG,
				"log record at %llu is corrupt: commit word %08x, length %u "
				"(room to ring end %llu, to head %llu)",
				(unsigned long long)pos, commit, len,
				(unsigned long long)room_to_end, (unsigned long long)(head - pos));
	}
	/* On SB_READ_OK the copy is the record as committed. */
	return copy_checked(log, pos, rec, len, len, buf, fate);
}
