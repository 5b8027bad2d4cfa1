/*
 * ring/wake.h - the wake protocol: how a consumer sleeps until the writer
 * publishes something it has not read, without any consumer being able
 * to change another's wake-ups or what a store costs.
 *
 * Where each side sleeps and what it trusts:
 *
 *   consumer: sleeps on the bell in its OWN control page (ring/control.h)
 *             or polls its connection; tells the coordinator it is about
 *             to sleep by sending an arm message on its connection.
 *   serving thread: keeps every consumer's arm in a private table (one
 *             entry per connection; coordinator/peers.c); the arm's
 *             positions are hints about that consumer alone.
 *   store path: loads one PRIVATE word ("someone is armed") after it
 *             publishes; no word any consumer can map is ever woken.
 *   waker thread: sleeps on a private kick word; rings the bell of every
 *             armed consumer (one FUTEX_WAKE with nr_wake 1, or one byte
 *             sent MSG_DONTWAIT on a polling consumer's connection).
 *
 * The steps, with the pairs they form. armed and kick hold one bit per
 * channel (enum sb_wake_chan), so a consumer waiting for accessor news
 * is not rung for every store:
 *
 *   store path (any publishing thread; no lock held), publishing chans
 *     N1  publish: a record's commit (W4), an event (E3), an aux head (W3),
 *         an accessor generation (A2), a coordinator drain's fates: each a
 *         release store, made by the caller
 *     N2  compiler barrier - the serving thread's membarrier() at M3 makes
 *         it a full fence where it matters; a seq_cst fence instead when
 *         membarrier() is unavailable
 *     N3  load armed (relaxed); nothing of chans set: done, no system call
 *     N4  taken = fetch_and(armed, ~chans) & chans (acquire: pairs with
 *         M2); if any, kick the waker: fetch_or(kick, taken) (release:
 *         pairs with K1), and FUTEX_WAKE_PRIVATE(kick, 1) only if the waker
 *         was ASLEEP
 *   serving thread, for the arms that arrived in one batch
 *     M0  an arm that is behind already (something was published past its
 *         positions) is rung at once (F2-F3) and goes no further: it sets
 *         no bit, so it costs the store path nothing
 *     M1  mark each other consumer armed in the table (its mode, channels
 *         and positions)
 *     M2  fetch_or(armed, their channels) (release)    -- pairs with N4
 *     M3  membarrier(PRIVATE_EXPEDITED), or a seq_cst fence
 *     M4  for each consumer just marked: anything published past its
 *         positions (sb__wake_news)? Then ring it now (F1-F3). Then clear
 *         the bits of armed that no consumer left armed waits on.
 *   waker thread
 *     K1  pending = exchange(kick, 0) (acquire: pairs with N4); ring every
 *         consumer armed on a channel in pending (F1-F3); nothing pending:
 *         CAS 0 -> ASLEEP and FUTEX_WAIT_PRIVATE(kick, ASLEEP)
 *   ringing one consumer (waker, serving thread, destroy)
 *     F1  clear its mark in the table
 *     F2  fetch_add_release(bell, 1)                  -- pairs with C1 / C4
 *     F3  FUTEX_WAKE(bell, 1), or send one byte (MSG_DONTWAIT)
 *   consumer
 *     C1  g = load_acquire(bell)
 *     C2  anything published past its positions? -> READY, no sleep
 *     C3  send the arm (mode, channels, positions), unless the arm it
 *         sent when the bell read g is still pending (same arm, bell
 *         unmoved)
 *     C4  FUTEX_WAIT(bell, g, <= 50 ms), or return ARMED and poll
 *
 * Why no wake-up is lost. N1-N3 against M2-M4 is the store-buffer
 * pattern: either the store's N3 loads its channel's bit from M2 (or
 * later), or
 * M4 sees the store's N1 (the membarrier forces a full barrier on every
 * thread of the process between M2 and M4, so a store thread's N1 - N3
 * either precede it, and are visible to M4, or follow it, and N3 sees
 * M2). In the first case the kick reaches a waker pass that runs after
 * M1 (M1 -> M2 -> N4 -> kick -> K1 are each ordered), so that pass rings
 * the consumer unless another ring got there first; a store that finds
 * the bit already taken by another store is covered by that store's
 * kick, which reaches a pass after its own N1 too. M4's clearing is
 * safe because only the serving thread sets bits: a bit no marked
 * consumer waits on has nobody to ring. Every ring of this
 * arm comes after the coordinator received it, so after C1: the bell has
 * moved from g, and FUTEX_WAIT either sees that (EAGAIN) or is woken by
 * F3. A ring from an older arm only wakes the consumer spuriously.
 *
 * What a store costs. Nobody armed: N2 is a compiler barrier, N3 one
 * load of a coordinator-private line. Somebody armed: one exchange, and
 * one FUTEX_WAKE_PRIVATE only if the waker thread sleeps - once per
 * waiting period, however many consumers wait, since the first store
 * takes the bit. Nothing on the store path depends on what a consumer
 * wrote: the flag is set only by the serving thread, from the table.
 *
 * What a consumer can do to the others: nothing through shared memory
 * (its page is its own; the data region is read-only). It can send arms
 * as fast as it likes; the serving thread takes at most SB_ARM_MSGS
 * messages per connection per wake-up and marks arm batches at most
 * every SB_ARM_BATCH_NS; an arm that is behind is rung at M0 and sets no
 * bit, so only an arm that waits for news to come can make a store kick
 * the waker - at most once per batch - and its own bell rings are its own.
 *
 * Safety nets: the serving thread rings, every heartbeat, each armed
 * consumer whose positions are behind what was published; a futex waiter
 * also wakes every 50 ms to check liveness.
 */
#ifndef SB_RING_WAKE_H
#define SB_RING_WAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "control.h"
#include "events.h"
#include "log.h"

/* A consumer's arm: how it waits. */
enum sb_arm_mode {
	SB_ARM_FUTEX = 1, /* asleep on its bell (sb_consumer_wait) */
	SB_ARM_POLL = 2,  /* polls its connection (sb_consumer_arm) */
};

/* What an arm waits for: a bit per channel. */
enum sb_wake_chan {
	SB_WAKE_REC = 1u << 0,	    /* a committed record at rec_pos */
	SB_WAKE_EV = 1u << 1,	    /* an event after ev_cursor */
	SB_WAKE_AUX = 1u << 2,	    /* an aux record at aux_pos */
	SB_WAKE_ACCESSOR = 1u << 3, /* accessor_gen moved from the one given */
};
#define SB_WAKE_CHANS 0xfu

/*
 * The arm message, consumer -> coordinator, one SOCK_SEQPACKET message.
 * Every field is a hint about the sender alone.
 */
struct sb_arm {
	char magic[4]; /* "ARM1", no NUL */
	uint32_t mode; /* enum sb_arm_mode */
	uint32_t chans;
	uint32_t accessor_gen;
	uint64_t rec_pos;
	uint64_t ev_cursor;
	uint64_t aux_pos;
};
SB_ASSERT_LAYOUT(struct sb_arm, mode, 4);
SB_ASSERT_LAYOUT(struct sb_arm, chans, 8);
SB_ASSERT_LAYOUT(struct sb_arm, accessor_gen, 12);
SB_ASSERT_LAYOUT(struct sb_arm, rec_pos, 16);
SB_ASSERT_LAYOUT(struct sb_arm, ev_cursor, 24);
SB_ASSERT_LAYOUT(struct sb_arm, aux_pos, 32);
SB_ASSERT_SIZE(struct sb_arm, 40);

#define SB_ARM_MAGIC "ARM1"
/* Messages the serving thread takes from one connection per wake-up. */
#define SB_ARM_MSGS 4
/* The least time between two arm batches (M2-M4) of the serving thread. */
#define SB_ARM_BATCH_NS 50000u

/* Fill an arm; chans 0 is refused by the coordinator. */
void sb__arm_init(struct sb_arm *a, uint32_t mode, uint32_t chans);

/* Check len received bytes as an arm. 0, or -EBADMSG with the reason. */
int sb__arm_parse(const void *buf, size_t len, struct sb_arm *out);

/* What the news check reads: a region as either side maps it. */
struct sb_wake_view {
	const struct sb_log *log;
	const struct sb_log *aux;
	const struct sb_evring *events;
	const struct sb_hot *hot;
};

/*
 * M4 / C2: has anything been published past a's positions, on the
 * channels it names? A record counts once committed (or once its bytes
 * were reclaimed: the reader then restarts at the tail); a position that
 * cannot be right counts as news, so a lying arm only wakes its sender.
 */
bool sb__wake_news(const struct sb_wake_view *v, const struct sb_arm *a);

/* ---- the coordinator's half ------------------------------------------- */

/* sb_wake.kick: the channels kicked, and whether the waker sleeps. */
#define SB_KICK_ASLEEP (1u << 31)

/* Private to the coordinator process: no consumer can map any of it. */
struct sb_wake {
	uint32_t armed;	  /* channels the table holds arms for (M2); publishers take them (N4) */
	uint32_t fenced;  /* membarrier() unavailable: N2 and M3 are seq_cst fences */
	uint64_t *kicked; /* hot->wakes: how many times N4 kicked, informational */
	/* The waker's words change often: never on the line publishers read armed from. */
	uint8_t apart[SB_LINE];
	uint32_t kick; /* the waker thread's futex word: channels kicked | SB_KICK_ASLEEP */
	uint32_t stop; /* the waker thread should return */
};

/*
 * Register this process for membarrier(PRIVATE_EXPEDITED), or fall back
 * to fences. Called once, before the bridge is shared with any thread.
 */
void sb__wake_init(struct sb_wake *w, uint64_t *kicked);

/* N4's slow path: kick the waker thread for the channels taken. */
void sb__wake_kick(struct sb_wake *w, uint32_t taken);

/*
 * N2-N4, after publishing on chans (enum sb_wake_chan bits). No system
 * call unless a consumer is armed on one of them.
 */
static inline void sb__wake_publish(struct sb_wake *w, uint32_t chans)
{
	if (w->fenced)
		sb_fence_seqcst(); /* N2 without membarrier: pairs with M3's fence */
	else
		sb_compiler_barrier();		  /* N2: M3's membarrier() is the fence */
	if (sb_load_relaxed(&w->armed) & chans) { /* N3 */
		/* N4: acquire pairs with M2, so the waker sees the marks behind it. */
		uint32_t taken = sb_fetch_and_acquire(&w->armed, ~chans) & chans;
		if (taken)
			sb__wake_kick(w, taken);
	}
}

/* M2-M3 for a batch of arms on chans; M4 comes after. */
void sb__wake_arm_publish(struct sb_wake *w, uint32_t chans);

/*
 * M4's end: keep only the bits of still, the channels some consumer left
 * armed in the table waits on. Only the serving thread sets bits.
 */
void sb__wake_arm_keep(struct sb_wake *w, uint32_t still);

/*
 * K1: wait until kicked or stopped. Returns the channels kicked (ring
 * every consumer armed on one, then call again), or 0.
 */
uint32_t sb__wake_take(struct sb_wake *w);

/* Make the waker thread return: sb__wake_stopped() turns true, and it is woken. */
void sb__wake_stop(struct sb_wake *w);
bool sb__wake_stopped(struct sb_wake *w);

/*
 * F2-F3: ring one consumer's bell. mode SB_ARM_FUTEX wakes one sleeper on
 * the bell, SB_ARM_POLL sends one byte on fd (never blocking); both for
 * a consumer whose mode is unknown (the close). Never blocks.
 */
void sb__wake_ring(struct sb_ctl *page, int fd, uint32_t mode);

/* ---- the consumer's half ---------------------------------------------- */

/* C1. */
static inline uint32_t sb__wake_bell(const struct sb_ctl *page)
{
	return sb_load_acquire(&page->bell); /* C1: pairs with F2 */
}

/* C3: send an arm on the connection, never blocking. 0 or -errno (-EAGAIN: buffer full). */
int sb__wake_arm_send(int fd, const struct sb_arm *a);

/* C4: sleep on the bell while it reads seen, at most ns. */
void sb__wake_sleep(const struct sb_ctl *page, uint32_t seen, uint64_t ns);

#endif
