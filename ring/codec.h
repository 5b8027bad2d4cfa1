/*
 * ring/codec.h - the encodings inside records: msgpack validation and the
 * msgpack form of missing-stats reasons.
 */
#ifndef SB_RING_CODEC_H
#define SB_RING_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <snapbridge/types.h>

/* The largest encoded missing-stats reason. */
#define SB_MISSING_ENC_MAX (SB_REASON_MAX + 128)

/*
 * 0 when buf holds exactly one well-formed msgpack object, else -EINVAL
 * with sb__msgpack_error() saying where it breaks (the caller names what
 * it was checking). Allocates nothing; every length is checked against
 * the bytes left. Formats nothing on success: it sits on the store path.
 */
int sb__msgpack_check(const void *buf, size_t len);
const char *sb__msgpack_error(void);

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
