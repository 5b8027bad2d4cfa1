/*
 * ring/format/aux_record.h - what an aux-log record holds (aux_record.c).
 *
 * An aux record is an sb_rec of kind SB_REC_KERNEL_OP or
 * SB_REC_CGROUP_PROCS whose seq is the 1-based aux sequence, followed by
 *   tag      tag_len bytes (1..SB_KOP_TAG_MAX)
 *   cgroup   schema_len bytes (cgroup.procs: 1..SB_CGROUP_NAME_MAX; kernel op: 0)
 *   payload  report_len bytes of msgpack: the kernel-op reply
 *            (snapbridge/aux.h), or the pids as an array of int32
 * stats_len, flags and every other field are 0.
 */
#ifndef SB_RING_FORMAT_AUX_RECORD_H
#define SB_RING_FORMAT_AUX_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <snapbridge/aux.h>
#include <snapbridge/consumer.h>

#include "../layout.h"

/* Check cgroup.procs arguments as sb_bridge_record_cgroup_procs documents. */
int sb__cgroup_check(const char *tag, const char *cgroup, const int32_t *pids, size_t n,
		     size_t *tag_len, size_t *cgroup_len);

/* The largest encoded pid list: an array header and SB_CGROUP_PIDS_MAX int32s. */
#define SB_PIDS_ENC_MAX (5u + 5u * SB_CGROUP_PIDS_MAX)

/* The pids as a msgpack array of integers; *buf is malloc'd. */
int sb__pids_encode(const int32_t *pids, size_t n, void **buf, size_t *len);

/* A single-block struct sb_cgroup_procs from its parts. */
int sb__cgroup_procs_new(const char *tag, size_t tag_len, const char *cgroup, size_t cgroup_len,
			 const int32_t *pids, size_t n, struct sb_cgroup_procs **out);

/* What a parsed aux item points into; sb__aux_owned_free() releases it. */
struct sb_aux_owned {
	char *tag;
	struct sb_kop_reply *reply;
	struct sb_cgroup_procs *procs;
};

/*
 * Parse an aux record copied out of the log (rec->len bytes, already
 * bounded by sb__log_copy) into item, whose pointers go into rec and own.
 * Returns -EBADMSG (with sb_last_error() saying why) for a record that
 * cannot be right; own then holds nothing.
 */
int sb__aux_parse(const struct sb_rec *rec, struct sb_aux_item *item, struct sb_aux_owned *own);
void sb__aux_owned_free(struct sb_aux_owned *own);

#endif
