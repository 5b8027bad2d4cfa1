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

#include "layout.h"

void sb__slot_write_begin(struct sb_slot *slot);
void sb__slot_write_end(struct sb_slot *slot);

/* Copy a consistent slot, or -EAGAIN after a bounded number of tries. */
int sb__slot_read(const struct sb_slot *slot, struct sb_slot *copy);

#endif
