/* consumers/export/wire.h - what the export module's files share internally. */
#ifndef SB_EXPORT_WIRE_H
#define SB_EXPORT_WIRE_H

#include "export.h"

/* Set sbx_last_error() from fmt and return err. */
int sbx__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "snap", "event", ...: the subject token of a kind. */
const char *sbx__kind_name(enum sbx_kind k);

/* "<prefix>.<escaped host>." into buf (3 * SBX_HOST_MAX + SBX_PREFIX_MAX + 3 bytes). */
void sbx__host_subject(const char *prefix, const char *host, char *buf, size_t n);

/* CLOCK_MONOTONIC in ms. */
uint64_t sbx__now_ms(void);

#endif
