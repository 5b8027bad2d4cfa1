/*
 * ring/clock.h - CLOCK_MONOTONIC in nanoseconds: the clock of the
 * heartbeat and of the control page's consumer heartbeats. It is
 * system-wide, so values written by one process compare with another's.
 */
#ifndef SB_RING_CLOCK_H
#define SB_RING_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t sb__mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
