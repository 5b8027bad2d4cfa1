/*
 * ring/format/msgpack.h - msgpack as snapbridge checks and writes it:
 * the validator that bounds untrusted documents without allocating, and
 * packing into a growable buffer that remembers a failed write.
 */
#ifndef SB_RING_FORMAT_MSGPACK_H
#define SB_RING_FORMAT_MSGPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

/*
 * 0 when buf holds exactly one well-formed msgpack object, else -EINVAL
 * with sb__msgpack_error() saying where it breaks (the caller names what
 * it was checking). Allocates nothing; every length is checked against
 * the bytes left. Formats nothing on success: it sits on the store path.
 */
int sb__msgpack_check(const void *buf, size_t len);
const char *sb__msgpack_error(void);

/* A msgpack-c packer into a growable buffer; the first failed write sticks. */
struct sb_pack {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	bool failed;
};

void sb__pack_init(struct sb_pack *p);

/*
 * Hand over what was packed (*buf, for free()), or -ENOMEM when a write
 * failed and -E2BIG when it is longer than max; the buffer is freed then.
 */
int sb__pack_finish(struct sb_pack *p, size_t max, const char *what, void **buf, size_t *len);

#endif
