/*
 * ring/format/kernel_op.h - internal helpers of the kernel-op codec
 * (kernel_op.c; the msgpack schema of requests and replies is in
 * snapbridge/aux.h).
 */
#ifndef SB_RING_FORMAT_KERNEL_OP_H
#define SB_RING_FORMAT_KERNEL_OP_H

#include <stddef.h>

#include <snapbridge/aux.h>

/* 0 when tag is 1..SB_KOP_TAG_MAX bytes (*len set), else -EINVAL / -ENAMETOOLONG. */
int sb__kop_check_tag(const char *tag, size_t *len);

#endif
