/*
 * ring/log.c - the record byte ring: the writer's commit wait, the
 * reader's copy-then-validate, and the reader core both logs' drains and
 * the image copy share. The protocol is stated in log.h; the writer's
 * reservation is inline there.
 */
#include "log.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "clock.h"
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

int sb__rec_await_commit(const struct sb_rec *rec, uint64_t deadline_ns)
{
	/* Pairs with W4 in the copying thread: its bytes are in once we see it. */
	while (sb_load_acquire(&rec->commit) == SB_REC_BUSY) {
		if (deadline_ns != UINT64_MAX && sb__mono_ns() > deadline_ns)
			return -ETIMEDOUT;
		sched_yield();
	}
	return 0;
}

bool sb__log_lapped(const struct sb_log *log, uint64_t pos)
{
	/* R3: pairs with W1's tail store and release fence. */
	sb_fence_acquire();
	return (int64_t)(pos - sb_load_relaxed(log->tail)) < 0;
}

/* A record length at pos: whole 64-byte units, inside the ring's end and below the head. */
static bool len_fits(const struct sb_log *log, uint64_t pos, uint64_t head, uint32_t len)
{
	return len >= sizeof(struct sb_rec) && len % SB_REC_ALIGN == 0 &&
	       len <= log->size - pos % log->size && len <= head - pos;
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
	bool len_ok = len_fits(log, pos, head, len);

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

bool sb__log_news(const struct sb_log *log, uint64_t pos)
{
	uint64_t head = sb_load_acquire(log->head); /* R1: pairs with W3 */

	if (head == pos)
		return false;
	if (head - pos > log->size || pos % SB_REC_ALIGN || sb__log_lapped(log, pos))
		return true; /* lapped, or a position no reader holds: let the drain say */
	const struct sb_rec *rec = sb__log_rec(log, pos);
	if (sb_load_acquire(&rec->commit) != SB_REC_BUSY) /* R2: pairs with W4 */
		return true;
	return sb__log_lapped(log, pos); /* R3: a BUSY word in reclaimed bytes is a lap */
}

/* ---- the reader core ------------------------------------------------------------------ */

/* Most lap restarts one drain makes before returning what it has. */
#define SB_READER_MAX_LAPS 64

void sb__reader_init(struct sb_log_reader *r, const struct sb_log *log, const char *what,
		     const char *noun, const uint64_t *seq_word, enum sb_reader_start start)
{
	*r = (struct sb_log_reader){ .log = log, .what = what, .noun = noun, .seq_word = seq_word };
	r->gap_ok = true;
	if (start == SB_READER_AT_END) {
		/*
		 * The sequence first, then the head: W3 publishes the head before
		 * the sequence, so every record at or after this head is newer
		 * than the cursor, and anything in between counts as lapped.
		 */
		r->cursor = sb__log_newest_seq(seq_word);
		r->pos = sb_load_acquire(log->head);	/* R1: pairs with W3 */
	} else {
		r->pos = sb_load_acquire(log->tail); /* pairs with W1 */
	}
}

int sb__reader_seek(struct sb_log_reader *r, uint64_t seq)
{
	uint64_t newest = sb__log_newest_seq(r->seq_word);

	if (seq > newest)
		return sb__fail(-ERANGE,
				"cannot resume after %s %llu: the region's newest %s is %llu",
				r->noun, (unsigned long long)seq, r->noun,
				(unsigned long long)newest);
	r->pos = sb_load_acquire(r->log->tail); /* pairs with W1 */
	r->cursor = seq;
	r->gap_ok = true;
	r->seeking = true;
	return 0;
}

void sb__reader_begin(struct sb_log_reader *r)
{
	r->laps = 0;
	r->head = sb_load_acquire(r->log->head); /* R1: pairs with W3 */
	/*
	 * A hostile head may promise 2^64 bytes: read at most one ring's worth
	 * per drain, in bytes (a count of records would let small records run
	 * to several rings' worth behind a writer that laps us).
	 */
	r->budget = r->log->size;
}

/*
 * A drain gave up after its most lap restarts. Head first, then tail: the
 * tail can only have moved on since, so an honest writer gives
 * head - tail <= size here. More than that is a region that lies, and no
 * number of retries would get past it.
 */
static int lap_limit(const struct sb_log_reader *r)
{
	uint64_t head = sb_load_acquire(r->log->head); /* R1: pairs with W3 */
	uint64_t tail = sb_load_acquire(r->log->tail); /* pairs with W1 */

	if ((int64_t)(head - tail) > (int64_t)r->log->size)
		return sb__fail(-EBADMSG,
				"the %s head %llu is more than a ring ahead of its tail %llu",
				r->what, (unsigned long long)head, (unsigned long long)tail);
	return 0; /* a writer that laps us over and over: the next drain goes on */
}

int sb__reader_next(struct sb_log_reader *r, struct sb_buf *buf, uint32_t *fate)
{
	unsigned laps = 0;

	while (r->pos != r->head && r->budget > 0) {
		int got = (r->head - r->pos > r->log->size)
			      ? SB_READ_LAPPED
			      : sb__log_copy(r->log, r->pos, r->head, buf, fate);
		if (got < 0)
			return got;
		if (got == SB_READ_LAPPED) {
			/* The writer reused bytes we had not read: resume at its tail. */
			r->laps++;
			if (++laps > SB_READER_MAX_LAPS)
				return lap_limit(r) ? -EBADMSG : SB_READER_END;
			r->pos = sb_load_acquire(r->log->tail); /* pairs with W1 */
			/* R1 again, after the tail, so the head is not older than it. */
			r->head = sb_load_acquire(r->log->head);
			r->gap_ok = true;
			continue;
		}
		const struct sb_rec *rec = (const struct sb_rec *)buf->p;
		if (got == SB_READ_BUSY)
			return SB_READER_BUSY; /* not read yet: nothing spent */
		r->budget -= rec->len < r->budget ? rec->len : r->budget;
		if (rec->kind == SB_REC_PAD || (r->seeking && rec->seq <= r->cursor)) {
			r->pos += rec->len; /* a pad, or accounted for before the seek */
			continue;
		}
		return SB_READER_RECORD;
	}
	return SB_READER_END;
}

int sb__reader_pass(struct sb_log_reader *r, const struct sb_rec *rec, uint64_t *total,
		    uint64_t *lapped, uint64_t *outcome)
{
	if (rec->seq <= r->cursor)
		return sb__fail(-EPROTO, "%s record has sequence %llu, not after the cursor %llu",
				r->what, (unsigned long long)rec->seq,
				(unsigned long long)r->cursor);
	uint64_t gap = rec->seq - r->cursor - 1;
	if (gap && !r->gap_ok)
		return sb__fail(-EPROTO, "%s records %llu..%llu are missing without a lap",
				r->what, (unsigned long long)r->cursor + 1,
				(unsigned long long)rec->seq - 1);
	*lapped += gap;
	*total += gap + 1;
	(*outcome)++;
	r->cursor = rec->seq;
	r->gap_ok = false;
	r->seeking = false;
	r->pos += rec->len;
	return 0;
}

bool sb__reader_unread(const struct sb_log_reader *r)
{
	return r->pos != sb_load_acquire(r->log->head); /* R1: pairs with W3 */
}

void sb__log_span(const struct sb_log *log, uint64_t *head, uint64_t *tail)
{
	*head = sb_load_acquire(log->head); /* R1: pairs with W3 */
	*tail = sb_load_acquire(log->tail); /* pairs with W1's store */
}

uint64_t sb__log_oldest_seq(const struct sb_log *log)
{
	for (int attempt = 0; attempt < 4; attempt++) {
		uint64_t head = sb_load_acquire(log->head); /* R1: pairs with W3 */
		uint64_t tail = sb_load_acquire(log->tail); /* pairs with W1's store */
		uint64_t pos = tail;

		if (head == tail || head - tail > log->size)
			return 0;
		/* At most one PAD record (the ring's end) before the first record. */
		for (int step = 0; step < 2 && pos != head; step++) {
			const struct sb_rec *rec = sb__log_rec(log, pos);
			uint32_t len = sb_load_relaxed(&rec->len);
			uint16_t kind = sb_load_relaxed(&rec->kind);
			uint64_t seq = sb_load_relaxed(&rec->seq);

			if (sb__log_lapped(log, pos)) /* R3 */
				break; /* the writer moved on: read again */
			if (!len_fits(log, pos, head, len))
				return 0;
			if (kind != SB_REC_PAD)
				return seq;
			pos += len;
		}
	}
	return 0;
}
