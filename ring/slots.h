/*
 * ring/slots.h - the slot index: one seqlocked slot per resident report.
 *
 * The coordinator writes a slot between ck_sequence_write_begin() and
 * ck_sequence_write_end() (odd while writing: S1/S2). A reader copies the
 * slot between two loads of the same even sequence (S1 pairs with the
 * reader's retry check, S2 with its begin load). Readers never spin
 * forever: a writer that died inside a write section leaves the slot odd,
 * and the reader gives up with -EAGAIN.
 */
#ifndef SB_RING_SLOTS_H
#define SB_RING_SLOTS_H

#include <ck_sequence.h>

#include "layout.h"

_Static_assert(sizeof(ck_sequence_t) == sizeof(uint32_t), "ck_sequence_t is one word");

/* Inline: the store path opens and closes a slot's section once or twice per store. */
static inline void sb__slot_write_begin(struct sb_slot *slot)
{
	ck_sequence_write_begin(
	    (ck_sequence_t *)(void *)&slot->seq); /* S1: odd, then store fence */
}

static inline void sb__slot_write_end(struct sb_slot *slot)
{
	ck_sequence_write_end((ck_sequence_t *)(void *)&slot->seq); /* S2: store fence, then even */
}

/* Copy a consistent slot, or -EAGAIN after a bounded number of tries. */
int sb__slot_read(const struct sb_slot *slot, struct sb_slot *copy);

#endif
