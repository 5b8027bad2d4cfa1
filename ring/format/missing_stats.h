/*
 * ring/format/missing_stats.h - the msgpack form of a missing-stats reason
 * (the stats bytes of a record whose stats are SB_STATS_MISSING).
 */
#ifndef SB_RING_FORMAT_MISSING_STATS_H
#define SB_RING_FORMAT_MISSING_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <snapbridge/types.h>

/* The largest encoded missing-stats reason. */
#define SB_MISSING_ENC_MAX (SB_REASON_MAX + 128)

/* -EINVAL for an unknown kind, -ENAMETOOLONG for text over SB_REASON_MAX. */
int sb__missing_check(const struct sb_missing *m);

/* Encode m into out (cap >= SB_MISSING_ENC_MAX). */
int sb__missing_encode(const struct sb_missing *m, uint8_t *out, size_t cap, size_t *len);

/*
 * Decode an untrusted encoded reason. m->text points into text, which
 * must hold SB_REASON_MAX + 1 bytes. -EBADMSG when it is not a reason.
 */
int sb__missing_decode(const void *buf, size_t len, struct sb_missing *m, char *text);

#endif
