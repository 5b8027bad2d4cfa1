/*
 * ring/peers.h - the consumer list in the data region (struct sb_peers),
 * both halves: the serving thread writes it, every consumer reads it for
 * sb_consumer_peers (no consumer may read another's control page).
 *
 * A seqlock with one writer, the serving thread (the D labels: the
 * region's directory of consumers):
 *   writer
 *     D1  store seq + 1 (odd); release fence   -- pairs with D4
 *         rewrite count, published_ns, entries
 *     D2  store_release(seq + 2) (even)        -- pairs with D3
 *   reader
 *     D3  load_acquire(seq): odd means retry
 *         copy count and entries
 *     D4  acquire fence; load seq again: changed means retry, the copy
 *         may mix two writes
 *
 * A reader gives up after a bounded number of tries: the writer is one
 * thread and finishes fast, so a seq that stays odd means it died in
 * the middle. count is bounded before it is trusted.
 */
#ifndef SB_RING_PEERS_H
#define SB_RING_PEERS_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "atomics.h"
#include "error.h"
#include "layout.h"

/* Reads of a list being rewritten before giving up. */
#define SB_PEERS_TRIES 10000

/* Writer: replace the list with n entries (n <= SB_PEERS_MAX). One thread only. */
static inline void sb__peers_write(struct sb_peers *shared, const struct sb_peer_entry *e,
				   uint32_t n, uint64_t now_ns)
{
	uint32_t seq = sb_load_relaxed(&shared->seq); /* we are its only writer */

	sb_store_relaxed(&shared->seq, seq + 1); /* D1: odd */
	sb_fence_release();
	memcpy(shared->entries, e, sizeof(shared->entries));
	sb_store_relaxed(&shared->count, n);
	sb_store_relaxed(&shared->published_ns, now_ns);
	sb_store_release(&shared->seq, seq + 2); /* D2: even */
}

/*
 * Reader: a consistent copy of the list into out[SB_PEERS_MAX] and its
 * length into *count; -EAGAIN when it stayed busy, -EBADMSG when it
 * claims more entries than it has room for.
 */
static inline int sb__peers_read(const struct sb_peers *shared, uint32_t *count,
				 struct sb_peer_entry *out)
{
	for (int tries = 0; tries < SB_PEERS_TRIES; tries++) {
		uint32_t v = sb_load_acquire(&shared->seq); /* D3: pairs with D2 */
		if (v & 1)
			continue;
		uint32_t n = sb_load_relaxed(&shared->count);
		if (n > SB_PEERS_MAX)
			n = SB_PEERS_MAX + 1; /* judged after the re-check: it may be torn */
		memcpy(out, shared->entries, sizeof(shared->entries));
		sb_fence_acquire(); /* D4: pairs with D1's fence */
		if (sb_load_relaxed(&shared->seq) != v)
			continue;
		if (n > SB_PEERS_MAX)
			return sb__fail(-EBADMSG, "the region lists more than %u consumers",
					SB_PEERS_MAX);
		*count = n;
		return 0;
	}
	return sb__fail(-EAGAIN, "the consumer list stayed busy: its writer may have died "
				 "mid-update");
}

#endif
