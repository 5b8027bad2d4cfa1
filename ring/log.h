/*
 * ring/log.h - a byte ring of records with free-running positions, used
 * for both the record log and the aux log: the writer's half (W1-W4), the
 * reader's copy-then-validate (R1-R3), and the reader core every drain of
 * either log and the image copy run on (struct sb_log_reader).
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
 * Wait until the record at rec is committed (W4 pairs), by a writer that
 * is alive: the coordinator's own threads (deadline UINT64_MAX), or a
 * reader that gives a live writer a moment (the image copy). 0, or
 * -ETIMEDOUT at the deadline (CLOCK_MONOTONIC ns).
 */
int sb__rec_await_commit(const struct sb_rec *rec, uint64_t deadline_ns);

/*
 * Called by the writer for each record the reclaim step drops (PAD
 * records excluded), before the tail moves past it.
 */
typedef void (*sb_reclaim_fn)(void *arg, struct sb_rec *rec, uint64_t pos);

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
			(void)sb__rec_await_commit(old, UINT64_MAX);
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

/*
 * W3s, after W3: the sequence of the newest record (store_seq, aux_seq). A
 * reader that loads it finds that record's header below the head.
 */
static inline void sb__log_publish_seq(uint64_t *seq_word, uint64_t seq)
{
	sb_store_release(seq_word, seq); /* W3s: pairs with sb__log_newest_seq */
}

/* The newest sequence published (W3s pairs): every record up to it is below the head. */
static inline uint64_t sb__log_newest_seq(const uint64_t *seq_word)
{
	return sb_load_acquire(seq_word); /* pairs with W3s */
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

/*
 * Would a reader at pos get past it now: a record committed there (or any
 * word but BUSY, which the drain then judges), or pos reclaimed under it
 * (the reader restarts at the tail)? False at the head and at a record in
 * flight. Reads the tail first, as sb__log_copy does, so an honest
 * position is read only while its bytes are its record's.
 */
bool sb__log_news(const struct sb_log *log, uint64_t pos);

/* ---- the reader core ------------------------------------------------------------------ */

/*
 * One reader's place in one log. Every record between its cursor and the
 * head gets exactly one outcome from the drain that reads it, or counts
 * as lapped when the writer reclaimed it first; the drain decides what a
 * record means (sb__reader_next hands it over, sb__reader_pass gives it
 * its outcome). Nothing in the struct is derived: whether anything is
 * left to read is a question for the positions (sb__reader_unread).
 */
struct sb_log_reader {
	const struct sb_log *log;
	const char *what;  /* "log" or "aux", for messages */
	const char *noun;  /* what a sequence counts: "store", "aux record" */
	uint64_t pos;	   /* the next record */
	uint64_t cursor;   /* the sequence of the last record accounted for */
	bool gap_ok;	   /* lapped, or just placed: sequences may be missing before pos */
	bool seeking;	   /* records up to cursor were accounted for elsewhere: pass them over */
	uint64_t head;	   /* R1 at this drain's start */
	uint64_t budget;   /* bytes this drain may still read */
	unsigned laps;	   /* lap restarts since sb__reader_begin */
	const uint64_t *seq_word; /* the writer's newest sequence (store_seq, aux_seq) */
};

/* Which records a new reader starts from. */
enum sb_reader_start {
	SB_READER_AT_TAIL, /* the oldest still in the log; older ones count as lapped */
	SB_READER_AT_END,  /* only records published after this call */
};

void sb__reader_init(struct sb_log_reader *r, const struct sb_log *log, const char *what,
		     const char *noun, const uint64_t *seq_word, enum sb_reader_start start);

/*
 * Resume after sequence seq (accounted for elsewhere): from the tail on,
 * records up to seq are passed over uncounted, what was reclaimed after it
 * counts as lapped. -ERANGE when seq is newer than the newest.
 */
int sb__reader_seek(struct sb_log_reader *r, uint64_t seq);

/* A drain starts: R1, and its budget of one ring's worth of bytes. */
void sb__reader_begin(struct sb_log_reader *r);

enum {
	SB_READER_END = 0,    /* at the head, the budget spent, or lapped too often */
	SB_READER_RECORD = 1, /* a committed record is in buf */
	SB_READER_BUSY = 2,   /* a record not committed yet: buf holds its header */
};

/*
 * The next record, copied into buf (R2-R3; fate: its fate word, may be
 * NULL): lap restarts, PAD records, records passed over by a seek and the
 * budget are handled here. Returns SB_READER_*, or -EBADMSG for a record
 * or a head that cannot be right. Nothing moves until sb__reader_pass.
 */
int sb__reader_next(struct sb_log_reader *r, struct sb_buf *buf, uint32_t *fate);

/*
 * The record in buf (from sb__reader_next) gets its outcome: *outcome,
 * *total and, for the sequences it skips over after a lap, *lapped count
 * it; the cursor and the position pass it. -EPROTO, with nothing moved,
 * for a sequence that cannot follow the cursor.
 */
int sb__reader_pass(struct sb_log_reader *r, const struct sb_rec *rec, uint64_t *total,
		    uint64_t *lapped, uint64_t *outcome);

/* Anything left to read, a record in flight included (R1). */
bool sb__reader_unread(const struct sb_log_reader *r);

/* Head (R1) and then tail, for a reader that only counts bytes: head - tail <= size when honest. */
void sb__log_span(const struct sb_log *log, uint64_t *head, uint64_t *tail);

/*
 * The sequence of the oldest record still in the log, read from its header
 * and kept only if the tail did not pass it meanwhile (R3); 0 when the log
 * is empty or the writer keeps lapping the read.
 */
uint64_t sb__log_oldest_seq(const struct sb_log *log);

#endif
