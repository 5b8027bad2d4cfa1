#include "slots.h"

#include <errno.h>
#include <string.h>

#include <ck_pr.h>
#include <ck_sequence.h>

#include "error.h"

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
