/*
 * ring/control.h - the control page: the one page consumers may write.
 *
 *   offset 0     +------------------------------------------------+
 *                | header: magic, ABI, layout hash, slot count    |  coordinator, once
 *   64           +------------------------------------------------+
 *                | armed: "someone is about to sleep, wake us"    |  consumers set 1,
 *                |                                                |  writer swaps to 0
 *   128          +------------------------------------------------+
 *                | slot[SB_CTL_SLOTS], one cache line each:       |  the consumer that
 *                | owner pid, waiting, start time, cursor,        |  owns the slot
 *                | heartbeat                                      |  (claimed by CAS)
 *   4096         +------------------------------------------------+
 *
 * The data region is read-only to consumers, so everything a consumer
 * needs to tell the coordinator lives here, in a separate memfd sealed
 * against shrinking and growing (a consumer cannot make the coordinator
 * fault) but not against writes.
 *
 * Trust: any consumer can write any byte of this page. The coordinator
 * reads it only as hints - whether to call FUTEX_WAKE, whether to kick
 * the serving thread, the lag it reports - never as an index, a length
 * or a pointer, and never in a way that can block. What a hostile
 * consumer (same uid, or the allowed group) can do with it: make every
 * store pay one FUTEX_WAKE and one eventfd write, delay other consumers'
 * wake-ups by up to their 50 ms sleep slice (by clearing armed), fill
 * the slot table, or spoil the header so later attaches fail. It cannot
 * change a byte of the data region or make the coordinator wait.
 *
 * Wake protocol (pairs with the wake_gen word in the data region):
 *   consumer, about to sleep on wake_gen:
 *     C1  store slot.waiting; exchange(armed, 1)          (seq_cst)
 *     C2  g = load wake_gen (seq_cst): moved past what the last drain
 *         saw -> do not sleep
 *     C3  FUTEX_WAIT(wake_gen, g), or poll the connection socket
 *   writer, after publishing anything:
 *     N1  fetch_add(wake_gen, 1)                           (seq_cst)
 *     N2  load armed; if 1 and exchange(armed, 0) was 1:
 *     N3    fetch_add(wake_gen, 1), FUTEX_WAKE every sleeper, and if a
 *           slot says POLL, kick the serving thread, which sends one
 *           byte on each polling consumer's connection
 *   C1/C2 against N1/N2 is the store-buffer pattern: with both sides
 *   sequentially consistent, either the consumer sees the new wake_gen
 *   at C2, or the writer sees armed at N2. FUTEX_WAIT re-checks
 *   wake_gen == g in the kernel, so a wake between C2 and C3 is not lost.
 *   N3's second bump covers a late N2: a writer delayed between N1 and N2
 *   can take an arm made after its N1 (by a consumer that already saw
 *   that N1 and found nothing new); the bump makes that consumer's
 *   FUTEX_WAIT return at once instead of sleeping on a spent arm.
 *   C1 is an exchange, not a store, so that each arm extends the release
 *   sequence the writer's exchange reads from: whichever consumer's arm it
 *   takes, every earlier slot.waiting store is visible to it.
 *   A burst of stores costs one wake: the first takes armed, the rest see 0.
 *   An arm nobody takes (the consumer found news at C2, timed out or
 *   died) costs the next store one FUTEX_WAKE with nobody to wake.
 */
#ifndef SB_RING_CONTROL_H
#define SB_RING_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "layout.h"

#define SB_CTL_MAGIC "SNAPCTRL"
#define SB_CTL_SIZE  SB_PAGE
#define SB_CTL_SLOTS 62u

/* sb_ctl_slot.waiting */
enum sb_ctl_waiting {
	SB_CTL_WAIT_NONE = 0,
	SB_CTL_WAIT_FUTEX = 1, /* asleep on wake_gen */
	SB_CTL_WAIT_POLL = 2,  /* polls its connection (sb_consumer_pollfd) */
};

struct sb_ctl_header {
	char magic[8]; /* "SNAPCTRL", no NUL */
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t size;
	uint64_t layout_hash;
	uint32_t nslots;
	uint32_t slot_size;
	uint8_t reserved[32];
};
SB_ASSERT_LAYOUT(struct sb_ctl_header, abi_major, 8);
SB_ASSERT_LAYOUT(struct sb_ctl_header, size, 12);
SB_ASSERT_LAYOUT(struct sb_ctl_header, layout_hash, 16);
SB_ASSERT_LAYOUT(struct sb_ctl_header, nslots, 24);
SB_ASSERT_LAYOUT(struct sb_ctl_header, slot_size, 28);
SB_ASSERT_SIZE(struct sb_ctl_header, 64);

/*
 * One attached consumer. owner is claimed by compare-and-swap from 0 (by
 * the coordinator's serving thread for a socket consumer, by the consumer
 * itself when it attached by pid); the rest is written by the owner.
 */
struct sb_ctl_slot {
	int32_t owner;	     /* pid of the consumer, 0 when free */
	uint32_t waiting;    /* enum sb_ctl_waiting */
	uint64_t start_time; /* the owner's /proc start time: tells pid reuse apart */
	uint64_t cursor;     /* store_seq the consumer has accounted for */
	uint64_t heartbeat_ns;
	uint64_t attached_ns;
	uint8_t reserved[24];
};
SB_ASSERT_LAYOUT(struct sb_ctl_slot, waiting, 4);
SB_ASSERT_LAYOUT(struct sb_ctl_slot, start_time, 8);
SB_ASSERT_LAYOUT(struct sb_ctl_slot, cursor, 16);
SB_ASSERT_LAYOUT(struct sb_ctl_slot, heartbeat_ns, 24);
SB_ASSERT_LAYOUT(struct sb_ctl_slot, attached_ns, 32);
SB_ASSERT_SIZE(struct sb_ctl_slot, 64);

struct sb_ctl {
	struct sb_ctl_header hdr;
	uint32_t armed;
	uint8_t armed_pad[SB_LINE - 4];
	struct sb_ctl_slot slots[SB_CTL_SLOTS];
};
SB_ASSERT_LAYOUT(struct sb_ctl, armed, 64);
SB_ASSERT_LAYOUT(struct sb_ctl, slots, 128);
SB_ASSERT_SIZE(struct sb_ctl, SB_CTL_SIZE);

/* Stamp a fresh (zeroed) control page. */
void sb__ctl_init(struct sb_ctl *ctl);

/* Check a mapped control page's header (magic, ABI, hash, slot geometry). -EBADMSG / -EPROTO. */
int sb__ctl_validate(const struct sb_ctl *ctl);

/*
 * Claim a free slot for pid (CAS owner 0 -> pid) and fill in the rest.
 * Returns the slot index, -EBUSY when all are taken, -EINVAL for pid <= 0.
 */
int sb__ctl_claim(struct sb_ctl *ctl, int32_t pid, uint64_t start_time, uint64_t now_ns);

/* Free slot i if it is still owned by pid. Returns 1 when it was freed. */
int sb__ctl_release(struct sb_ctl *ctl, uint32_t i, int32_t pid);

/*
 * List the claimed slots into out[0..cap) as struct sb_consumer_info,
 * judging lag against stores. Every value is bounded, never trusted.
 * Returns how many slots are claimed (may exceed cap).
 */
struct sb_consumer_info;
size_t sb__ctl_list(const struct sb_ctl *ctl, uint64_t stores, uint64_t now_ns,
		    struct sb_consumer_info *out, size_t cap);

#endif
