/*
 * ring/error.h - the per-thread message behind sb_last_error().
 *
 * A failing function sets the message and returns its -errno in one step:
 *     return sb__fail(-EINVAL, "tag is empty");
 */
#ifndef SB_RING_ERROR_H
#define SB_RING_ERROR_H

__attribute__((format(printf, 2, 3))) int sb__fail(int err, const char *fmt, ...);

#endif
