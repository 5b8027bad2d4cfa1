/*
 * consumers/liveness.c - is the coordinator alive, closed or dead?
 *
 * Closed is the region's closed word, stored before any hang-up. Dead
 * needs the coordinator process to be gone: its pidfd readable (opened
 * only when the pid's start time is the region's), or, when no pidfd
 * could be had (another pid namespace, an old kernel), a heartbeat older
 * than four periods together with a pid that is gone or was reused. A
 * hang-up of the connection alone is never death: the coordinator may
 * have dropped this consumer (it sent something that is not an arm) and
 * live on; the consumer is then only disconnected - no more bells, so
 * its waits sleep in short slices. An image is a copy that nothing will
 * ever change: closed or dead from the start.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"
#include "../ring/error.h"
#include "../ring/liveness.h"
#include "../shm/shm.h"
#include "consumer_internal.h"

/* A heartbeat older than this many periods is stale. */
#define STALE_PERIODS 4

const char *sb_coord_state_name(enum sb_coord_state state)
{
	switch (state) {
	case SB_COORD_ALIVE:
		return "alive";
	case SB_COORD_CLOSED:
		return "closed";
	case SB_COORD_DEAD:
		return "dead";
	}
	return "unknown";
}

/* Did the peer of a connection hang up? (Wake bytes make it readable too.) */
static bool hung_up(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* A pidfd is readable once its process has exited. */
static bool exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) > 0 && p.revents != 0;
}

/* Without a pidfd: a stale beat and a pid that is not the coordinator. */
static bool looks_dead(struct sb_consumer *c)
{
	const struct sb_header *shared = (const struct sb_header *)c->base;
	uint64_t beat;
	uint32_t period;

	sb__beat_read(shared, &beat, &period);
	uint64_t now = sb__mono_ns();

	if (period && now >= beat && now - beat < (uint64_t)period * STALE_PERIODS * 1000000ull)
		return false;
	int32_t pid = c->hdr.coord_pid;
	return pid <= 0 || sb__proc_start_time(pid) != c->hdr.coord_start_time;
}

static enum sb_coord_state settle(struct sb_consumer *c, enum sb_coord_state st)
{
	c->coord_final = st;
	c->writer_gone = true; /* nobody will finish a record left half-written */
	return st;
}

enum sb_coord_state sb__consumer_coord_state(struct sb_consumer *c)
{
	const struct sb_header *shared = (const struct sb_header *)c->base;

	if (c->coord_final)
		return c->coord_final;
	/* Acquire: pairs with the release store of closed in sb_bridge_destroy. */
	if (sb__region_closed(shared))
		return settle(c, SB_COORD_CLOSED);
	if (c->image)
		return settle(c, SB_COORD_DEAD); /* a copy: its writer is gone for it */
	if (c->conn_fd >= 0 && !c->disconnected && hung_up(c->conn_fd))
		c->disconnected = true; /* no more bells; whether it lives is asked below */
	bool gone = c->pidfd >= 0 ? exited(c->pidfd) : looks_dead(c);
	if (!gone)
		return SB_COORD_ALIVE;
	/* closed is stored before any hang-up or exit: read it again to tell the two apart. */
	return settle(c, sb__region_closed(shared) ? SB_COORD_CLOSED : SB_COORD_DEAD);
}

int sb_consumer_coordinator(struct sb_consumer *c, enum sb_coord_state *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_coordinator: NULL argument");
	*out = sb__consumer_coord_state(c);
	return 0;
}
