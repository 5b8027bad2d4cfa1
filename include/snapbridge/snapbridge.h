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

#define SNAPBRIDGE_VERSION "0.1.0"

#endif
