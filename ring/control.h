/*
 * ring/control.h - a consumer's control page: one page per consumer,
 * made by the serving thread when it hands the region over, and shared
 * with that consumer alone.
 *
 *   offset 0   +-----------------------------------------------+
 *              | header: magic, ABI, layout hash, size          |  coordinator, once
 *   64         +-----------------------------------------------+
 *              | bell (u32): the futex word this consumer sleeps |  coordinator bumps it
 *              | on (ring/wake.h, F2 / C1 / C4)                  |  and wakes one sleeper
 *   128        +-----------------------------------------------+
 *              | hints: pid, cursor, heartbeat_ns                |  consumer writes,
 *              |                                                 |  coordinator lists
 *   192        +-----------------------------------------------+
 *              | reserved                                        |
 *   4096       +-----------------------------------------------+
 *
 * The data region is read-only to consumers, so this page is the only
 * memory a consumer writes. It is a memfd of its own, sealed against
 * shrinking, growing and further seals (never against writes), mapped by
 * the coordinator and by the one consumer it was handed to. Nobody else
 * holds it, so whatever that consumer writes here - a bell it rings
 * itself, lies in its hints, a hole punched into the page (which only
 * zeroes it) - concerns that consumer alone.
 *
 * The coordinator never reads a decision from this page: its table of
 * attached consumers, their connections and their arms is its own
 * memory (coordinator/peers.c). It reads the hints only to list them
 * (sb_bridge_consumers), bounded, as claims about that consumer.
 */
#ifndef SB_RING_CONTROL_H
#define SB_RING_CONTROL_H

#include <stdint.h>

#include "layout.h"

#define SB_CTL_MAGIC "SNAPCTRL"
#define SB_CTL_SIZE  SB_PAGE

struct sb_ctl_header {
	char magic[8]; /* "SNAPCTRL", no NUL */
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t size;
	uint64_t layout_hash;
	uint8_t reserved[40];
};
SB_ASSERT_LAYOUT(struct sb_ctl_header, abi_major, 8);
SB_ASSERT_LAYOUT(struct sb_ctl_header, size, 12);
SB_ASSERT_LAYOUT(struct sb_ctl_header, layout_hash, 16);
SB_ASSERT_SIZE(struct sb_ctl_header, 64);

struct sb_ctl {
	struct sb_ctl_header hdr;
	/* The coordinator bumps it (release) to wake this consumer; its own line. */
	uint32_t bell;
	uint8_t bell_pad[SB_LINE - 4];
	/* Written by the consumer (relaxed), read by the coordinator for its listing. */
	int32_t pid; /* the consumer's pid as it sees it */
	uint32_t reserved0;
	uint64_t cursor;       /* store_seq it has accounted for */
	uint64_t heartbeat_ns; /* CLOCK_MONOTONIC of its last drain or wait */
	uint8_t hints_pad[SB_LINE - 24];
	uint8_t tail[SB_CTL_SIZE - 3 * SB_LINE];
};
SB_ASSERT_LAYOUT(struct sb_ctl, bell, 64);
SB_ASSERT_LAYOUT(struct sb_ctl, pid, 128);
SB_ASSERT_LAYOUT(struct sb_ctl, cursor, 136);
SB_ASSERT_LAYOUT(struct sb_ctl, heartbeat_ns, 144);
SB_ASSERT_SIZE(struct sb_ctl, SB_CTL_SIZE);

/* Stamp a fresh (zeroed) control page. */
void sb__ctl_init(struct sb_ctl *ctl);

/* Check a mapped control page's header (magic, ABI, hash, size). -EBADMSG / -EPROTO. */
int sb__ctl_validate(const struct sb_ctl *ctl);

#endif
