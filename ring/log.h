/*
 * ring/log.h - a byte ring of records with free-running positions, used
 * for both the record log and the aux log.
 *
 * Protocol (positions are u64 byte counts that only grow; pos % size is
 * the offset in the section):
 *
 *   writer (one at a time, under the bridge lock)
 *     W1  reclaim: advance tail over the oldest records until the new one
 *         fits, letting the caller evict what it drops; store tail, then
 *         sb_fence_release()                      -- pairs with R3
 *     W2  write a PAD record if the new one would cross the ring's end,
 *         and the new record's header with commit = BUSY
 *     W3  store_release(head)                     -- pairs with R1
 *   copier (the storing thread, after the lock is dropped)
 *     W4  copy the payload, store_release(commit = COMMITTED) -- pairs with R2
 *
 *   reader
 *     R1  load_acquire(head): every header below it is at least BUSY
 *     R2  load_acquire(commit) at pos: COMMITTED means the bytes are in
 *     R3  copy the record, sb_fence_acquire(), load tail: if the tail
 *         passed pos, the copy may hold reused bytes and is discarded
 *         ("lapped"). The writer never waits for readers.
 */
#ifndef SB_RING_LOG_H
#define SB_RING_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "atomics.h"
#include "layout.h"

struct sb_log {
	uint8_t *base; /* the section; writable only in the coordinator */
	uint64_t size; /* bytes, a multiple of SB_REC_ALIGN */
	uint64_t *head;
	uint64_t *tail;
	/*
	 * The writer's own: *tail % size, kept as the tail moves so that the
	 * writer finds a record without dividing (a log need not be a power
	 * of two). Unused by readers.
	 */
	uint64_t tail_off;
};

/* A growable private buffer a reader copies records into. */
struct sb_buf {
	uint8_t *p;
	size_t cap;
};

void sb__buf_free(struct sb_buf *buf);

static inline struct sb_rec *sb__log_rec(const struct sb_log *log, uint64_t pos)
{
	return (struct sb_rec *)(log->base + pos % log->size);
}

/*
 * The writer's record at pos, for tail <= pos <= tail + size (every
 * record the writer holds: the tail moves only under its lock). No
 * division: the offset is counted from the tail's.
 */
static inline struct sb_rec *sb__log_wrec(const struct sb_log *log, uint64_t pos)
{
	uint64_t off = log->tail_off + (pos - sb_load_relaxed(log->tail)); /* its own store */

	return (struct sb_rec *)(log->base + (off >= log->size ? off - log->size : off));
}

static inline uint32_t sb__rec_len(size_t payload)
{
	return (uint32_t)((sizeof(struct sb_rec) + payload + SB_REC_ALIGN - 1) &
			  ~(size_t)(SB_REC_ALIGN - 1));
}

/*
 * Called by the writer for each record the reclaim step drops (PAD
 * records excluded), before the tail moves past it.
 */
typedef void (*sb_reclaim_fn)(void *arg, struct sb_rec *rec, uint64_t pos);

/* Wait until a record some thread is copying has been committed (W4 pairs). */
void sb__rec_wait_committed(const struct sb_rec *rec);

/*
 * W1-W2: make room for a record of len bytes (a multiple of SB_REC_ALIGN,
 * at most the ring size); return its header, and its position in *pos.
 * The caller fills the header (commit is already BUSY) and then calls
 * sb__log_publish().
 * Waits for an older record that another thread is still copying if its
 * bytes are needed. Caller holds the writer lock. Inline: the store path
 * runs it once per store, with fn known at the call.
 */
static inline struct sb_rec *sb__log_reserve_rec(struct sb_log *log, uint32_t len, sb_reclaim_fn fn,
						 void *arg, uint64_t *pos)
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
		if (sb_load_acquire(&old->commit) == SB_REC_BUSY) /* pairs with W4 */
			sb__rec_wait_committed(old);
		if (old->kind != SB_REC_PAD)
			fn(arg, old, tail);
		tail += old->len;
		/* Records never cross the ring's end: the offset wraps only onto 0. */
		log->tail_off =
		    log->tail_off + old->len == log->size ? 0 : log->tail_off + old->len;
	}
	if (tail != moved)
		sb_store_relaxed(log->tail, tail);
	/*
	 * W1: readers see the tail before any reclaimed byte changes. The fence
	 * runs even when this call moved nothing: the bytes about to be written
	 * may have been reclaimed by an earlier store on another thread, and the
	 * ordering must not rest on the lock alone.
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
	*pos = head;
	return rec;
}

/* sb__log_reserve_rec() for a caller that wants the position only. */
static inline uint64_t sb__log_reserve(struct sb_log *log, uint32_t len, sb_reclaim_fn fn,
				       void *arg)
{
	uint64_t pos;

	(void)sb__log_reserve_rec(log, len, fn, arg, &pos);
	return pos;
}

/* W3: publish every header written up to new_head. */
static inline void sb__log_publish(struct sb_log *log, uint64_t new_head)
{
	sb_store_release(log->head, new_head); /* W3: pairs with R1 */
}

/* W4: the record's bytes are complete. */
static inline void sb__rec_commit(struct sb_rec *rec)
{
	sb_store_release(&rec->commit, SB_REC_COMMITTED); /* W4: pairs with R2 */
}

enum sb_read {
	SB_READ_OK = 0,
	SB_READ_LAPPED,
	SB_READ_BUSY,
};

/*
 * R2-R3: copy the record at pos (tail <= pos < head, 64-byte aligned) into
 * buf. Returns SB_READ_OK with *fate loaded between copy and re-check,
 * SB_READ_LAPPED, SB_READ_BUSY (not committed yet; buf holds just the
 * header, whose seq and len are valid), or -EBADMSG for a
 * header that cannot be right, -ENOMEM.
 */
int sb__log_copy(const struct sb_log *log, uint64_t pos, uint64_t head, struct sb_buf *buf,
		 uint32_t *fate);

/* Whether the writer has reclaimed pos (tail moved past it). */
bool sb__log_lapped(const struct sb_log *log, uint64_t pos);

#endif
