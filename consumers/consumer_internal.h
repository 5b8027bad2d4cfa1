/*
 * consumers/consumer_internal.h - a consumer's private state, shared by
 * consumer.c (attach to a region, drain), aux.c (the aux log, accessor
 * waits), connect.c (getting hold of a region), control.c (its control
 * page), liveness.c (is the coordinator alive) and wait.c (waiting for
 * news). Not installed.
 */
#ifndef SB_CONSUMERS_CONSUMER_INTERNAL_H
#define SB_CONSUMERS_CONSUMER_INTERNAL_H

#include <snapbridge/consumer.h>

#include "../ring/accessor.h"
#include "../ring/control.h"
#include "../ring/events.h"
#include "../ring/layout.h"
#include "../ring/log.h"
#include "../ring/wake.h"

/* The adaptive spin of a wait before it sleeps (wait.c). */
#define SB_SPIN_MIN_NS	 500
#define SB_SPIN_START_NS 4000
#define SB_SPIN_MAX_NS	 50000

/* The three things a consumer drains; a wait looks at those it has drained. */
enum sb_chan {
	SB_CHAN_REC = 0, /* sb_consumer_drain */
	SB_CHAN_EV,	 /* sb_consumer_drain_events */
	SB_CHAN_AUX,	 /* sb_consumer_drain_aux */
	SB_CHAN_COUNT,
};

struct sb_consumer {
	const uint8_t *base;
	size_t size;
	bool mapped; /* munmap base on close; else free it (an image) */
	/*
	 * The header as validated. The writer could change the shared one after
	 * validation, so every size and offset comes from this copy.
	 */
	struct sb_header hdr;
	const struct sb_hot *hot;
	const struct sb_slot *slots;
	uint32_t max_snapshots;
	struct sb_log log; /* read-only use: the pointers are never stored through */
	struct sb_evring events;

	uint32_t flags;
	bool writer_gone;
	struct sb_log_reader rec; /* our place in the record log */
	uint64_t ev_cursor;	  /* last event sequence taken */
	struct sb_drain_counts totals;
	struct sb_buf buf;
	char text[SB_REASON_MAX + 1];

	/* The aux log (consumers/aux_log.c), read with the same reader core. */
	struct sb_log aux;
	struct sb_log_reader aux_rec;
	struct sb_aux_counts aux_totals;

	/* Wake-ups (wait.c): used[ch] once channel ch was drained; news comes from positions. */
	bool used[SB_CHAN_COUNT];
	uint64_t spin_ns; /* the adaptive spin before sleeping */
	/*
	 * The arm the coordinator holds for us (ring/wake.h C3), valid while
	 * the bell still reads armed_bell: no need to send it again.
	 */
	bool armed_valid;
	uint32_t armed_bell;
	struct sb_arm armed;

	/* The control page, connection and liveness; absent (NULL / -1) for an image. */
	struct sb_ctl *page; /* our own control page, mapped read-write */
	int conn_fd;	     /* the connection: arms go out, wake bytes come in */
	bool disconnected;   /* the coordinator hung up on us: no more bells */
	int pidfd;	     /* the coordinator process: readable once it exits */
	bool image;	     /* a saved image: nothing will ever change */
	int coord_final;     /* 0, or SB_COORD_CLOSED / SB_COORD_DEAD once known */
};

/* A zeroed consumer with every descriptor -1 and no control page; NULL on ENOMEM. */
struct sb_consumer *sb__consumer_new(void);

/* Validate the mapped header and set up the views; flags as sb_consumer_open_fd(). */
int sb__consumer_attach(struct sb_consumer *c, uint32_t flags);

/* Whether channel ch has anything left to drain, from the positions (exact). */
bool sb__chan_unread(const struct sb_consumer *c, enum sb_chan ch);

/* A drain of ch ran: from now on a wait reports ch's news. */
void sb__chan_used(struct sb_consumer *c, enum sb_chan ch);

/* How this consumer's positions read for the wake protocol (ring/wake.h). */
void sb__consumer_view(const struct sb_consumer *c, struct sb_wake_view *v);

/* The coordinator's state as sb_consumer_coordinator() reports it. */
enum sb_coord_state sb__consumer_coord_state(struct sb_consumer *c);

/* Update our control page's hints after a drain or before a wait (cursor, heartbeat). */
void sb__consumer_touch(struct sb_consumer *c);

/* B3 of the accessor waits, for this consumer (wait.c). */
void sb__consumer_accessor_sleeper(struct sb_consumer *c, struct sb_accessor_sleeper *z);

#endif
