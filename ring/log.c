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
