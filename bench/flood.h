/*
 * bench/flood.h - serving under a connection flood (issue 14's "the
 * heartbeat never falls more than one period late").
 *
 * A coordinator process serves on a socket with the default heartbeat
 * (100 ms) and counts what its serving thread logs. For the run's length
 * it samples the age of its own heartbeat every millisecond, through a
 * reader of its region (sb_region_stat.heartbeat_age_ns), while a thread
 * of its own times one honest consumer's connect halfway through. In the
 * flooded case two processes of another uid (65534) call connect() and
 * hang up as fast as they can meanwhile: a connection that gets into the
 * listen backlog is accepted and refused by SO_PEERCRED (logged: 5 lines
 * a second, then one counting the rest), most are turned away at once by
 * the full backlog. In the quiet case nobody does. Needs root (to run the
 * flooders as another uid); elsewhere the part is skipped, saying so.
 */
#ifndef SB_BENCH_FLOOD_H
#define SB_BENCH_FLOOD_H

#include <stdbool.h>
#include <stdint.h>

#include "harness.h"

#define SBB_FLOOD_UID 65534

struct sbb_flood_result {
	double worst_age_ms[SBB_REPS];	 /* the oldest heartbeat seen while sampling */
	double lines_per_s[SBB_REPS];	 /* lines the serving thread logged */
	double refusals_per_s[SBB_REPS]; /* connections it accepted and refused */
	double connect_ms[SBB_REPS];	 /* the honest consumer's sb_consumer_connect() */
	double attempts_per_s[SBB_REPS]; /* the flooders' connect() calls (0 when quiet) */
	unsigned heartbeat_ms;
	bool ok;
};

/* Whether this process may run the flooders (root); if not, why in why. */
bool sbb_flood_possible(char *why, size_t len);

/*
 * Repetition rep of one case: flooded or quiet, ms long. Fills slot rep
 * of res and prints one progress line on stderr. Returns 0 or -errno (the
 * children's messages are on stderr).
 */
int sbb_flood_run(bool flood, unsigned ms, unsigned rep, unsigned reps,
		  struct sbb_flood_result *res);

#endif
