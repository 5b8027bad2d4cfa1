/*
 * snapbridge.h - publish capture results across processes through shared
 * memory. Include this header for the whole API:
 *
 *   bridge.h    the coordinator (writer) side
 *   consumer.h  the read-only consumer side
 *   types.h     reports, stats, entries, events, errors
 *   aux.h       kernel ops, cgroup.procs snapshots, accessor states
 */
#ifndef SNAPBRIDGE_H
#define SNAPBRIDGE_H

#include <snapbridge/types.h>
#include <snapbridge/aux.h>
#include <snapbridge/bridge.h>
#include <snapbridge/consumer.h>

/* The version of these headers (CMakeLists.txt checks it against the project's). */
#define SNAPBRIDGE_VERSION	 "0.1.0"
#define SNAPBRIDGE_VERSION_MAJOR 0
#define SNAPBRIDGE_VERSION_MINOR 1
#define SNAPBRIDGE_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The version of the library linked at run time, e.g. "0.1.0" (which may
 * differ from SNAPBRIDGE_VERSION, the headers' version, when a program
 * runs against a newer shared library of the same major version). Never
 * NULL; thread-safe.
 */
const char *sb_version(void);

struct sb_version_info {
	const char *version; /* as sb_version() */
	uint32_t major, minor, patch;
	/*
	 * The region format this library writes and reads: a consumer refuses
	 * a region of another ABI major or layout hash (-EPROTO).
	 */
	uint32_t abi_major, abi_minor;
	uint64_t layout_hash;
};

/* Fill out (if not NULL) with the linked library's version and region format. */
void sb_version_info(struct sb_version_info *out);

#ifdef __cplusplus
}
#endif

#endif
