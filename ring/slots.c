#include "slots.h"

#include <errno.h>
#include <string.h>

#include <ck_pr.h>
#include <ck_sequence.h>

#include "error.h"

_Static_assert(sizeof(ck_sequence_t) == sizeof(uint32_t), "ck_sequence_t is one word");

static ck_sequence_t *seqlock(struct sb_slot *slot)
{
	return (ck_sequence_t *)(void *)&slot->seq;
}

void sb__slot_write_begin(struct sb_slot *slot)
{
	ck_sequence_write_begin(seqlock(slot)); /* S1: odd, then store fence */
}

void sb__slot_write_end(struct sb_slot *slot)
{
	ck_sequence_write_end(seqlock(slot)); /* S2: store fence, then even */
}

int sb__slot_read(const struct sb_slot *slot, struct sb_slot *copy)
{
	const ck_sequence_t *sq = (const ck_sequence_t *)(const void *)&slot->seq;

	for (int tries = 0; tries < 10000; tries++) {
		unsigned int v = ck_pr_load_uint(&sq->sequence);

		if (v & 1) { /* a write section is open */
			ck_pr_stall();
			continue;
		}
		ck_pr_fence_load(); /* pairs with S2 */
		memcpy(copy, slot, sizeof(*copy));
		if (!ck_sequence_read_retry(sq, v)) /* pairs with S1 */
			return 0;
	}
	return sb__fail(-EAGAIN, "index slot stayed busy: its writer may have died mid-update");
}
